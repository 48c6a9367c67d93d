// facelive.js: the screen-flash challenge client. An ES module, no dependencies.
//
//   import { faceliveCheck } from "https://liveness.example.com/static/facelive.js";
//   await faceliveCheck({ server, sessionId, clientToken, element });
//
// It fetches the session's challenge (GET {server}/v1/sessions/{id}/challenge with the client
// token), opens the camera, shows a photosensitivity warning and waits for the user's consent,
// plays the server's colours full screen (or over `element`) while it films the face (about
// 10 frames per second, 480 px on the long side, JPEG quality 0.85, each stamped with the ms
// since the challenge started), then uploads them (POST .../frames). It resolves when the
// server has accepted the upload ({status: "received"}); it never learns the verdict: the
// site's backend fetches that with its API key. It rejects with a FaceliveError (`code`:
// "camera", "cancelled", "unsafe_challenge", "network", or the server's error code).
//
// Photosensitive safety: the colours come from the server, which keeps WCAG 2.3.1 (at most 3
// changes per second, no saturated red); this client refuses a challenge that breaks those
// rules anyway, and always shows a warning first unless the page has shown its own
// (`warning: false`).

const MIN_STEP_MS = 350; // > 1000/3 ms: at most 3 colour changes in any second
const MAX_RED_RATIO = 0.6; // R/(R+G+B); WCAG calls >= 0.8 a saturated red
const FRAME_INTERVAL_MS = 100; // ~10 fps
const MAX_SIDE = 480; // px, long side of an uploaded frame
const MIN_SIDE = 320;
const JPEG_QUALITY = 0.85;
const CAMERA_WARMUP_MS = 400;

export const WARNING_TEXT =
  "This check flashes the screen in different colours (at most 3 changes per second, no " +
  "red flashes) for about 7 seconds while your camera films your face. If you are " +
  "sensitive to flashing lights, do not continue.";

export class FaceliveError extends Error {
  constructor(code, message, status) {
    super(message);
    this.name = "FaceliveError";
    this.code = code;
    this.status = status || 0;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function apiUrl(server, path) {
  const base = (server || "").replace(/\/+$/, "");
  return base + path;
}

async function request(url, options) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store", credentials: "omit", ...options });
  } catch (err) {
    throw new FaceliveError("network", "the facelive server cannot be reached (" +
      ((err && err.message) || err) + ")");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    body = null;
  }
  if (!response.ok) {
    const e = (body && body.error) || {};
    throw new FaceliveError(e.code || "http_" + response.status,
      e.message || "the server answered " + response.status, response.status);
  }
  return body;
}

function redRatio(rgb, linear) {
  const v = rgb.map((c) => {
    const x = c / 255;
    if (!linear) return x;
    return x <= 0.04045 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4);
  });
  const total = v[0] + v[1] + v[2];
  return total > 0 ? v[0] / total : 0;
}

// The photosensitive rules, checked again on this side (defence in depth).
export function checkChallenge(challenge) {
  const steps = (challenge && challenge.steps) || [];
  if (!steps.length) throw new FaceliveError("unsafe_challenge", "the challenge has no steps");
  let t = 0;
  for (const s of steps) {
    const c = s.colour;
    if (!Array.isArray(c) || c.length !== 3 || c.some((x) => !(x >= 0 && x <= 255))) {
      throw new FaceliveError("unsafe_challenge", "a step has no valid colour");
    }
    if (s.start_ms !== t || !(s.duration_ms >= MIN_STEP_MS)) {
      throw new FaceliveError("unsafe_challenge",
        "a colour step is shorter than " + MIN_STEP_MS + " ms or not contiguous");
    }
    if (redRatio(c, false) > MAX_RED_RATIO || redRatio(c, true) > MAX_RED_RATIO) {
      throw new FaceliveError("unsafe_challenge", "the challenge contains a saturated red");
    }
    t += s.duration_ms;
  }
  return t;
}

function colourAt(steps, t) {
  for (const s of steps) {
    if (t < s.start_ms + s.duration_ms) return s.colour;
  }
  return steps[steps.length - 1].colour;
}

function cameraError(err) {
  const name = (err && err.name) || "";
  let text = "The camera could not be started (" + (name || "unknown error") + ").";
  if (name === "NotAllowedError" || name === "SecurityError") {
    text = "Camera permission was denied.";
  } else if (name === "NotFoundError" || name === "OverconstrainedError") {
    text = "No camera was found.";
  } else if (name === "NotReadableError" || name === "AbortError") {
    text = "The camera is in use by another application.";
  }
  return new FaceliveError("camera", text);
}

async function openCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new FaceliveError("camera", "Camera access needs a secure context (https).");
  }
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" },
    });
  } catch (err) {
    throw cameraError(err);
  }
}

function el(tag, style, text) {
  const node = document.createElement(tag);
  Object.assign(node.style, style || {});
  if (text) node.textContent = text;
  return node;
}

// The full-screen (or over-element) layer: colour background, a small mirrored preview, the
// warning panel. Styles are set through the CSSOM, so a strict CSP (no inline styles) is fine.
function buildLayer(element) {
  const layer = el("div", {
    position: element ? "absolute" : "fixed", inset: "0", zIndex: "2147483646",
    background: "rgb(40, 40, 40)", display: "flex", flexDirection: "column",
    alignItems: "center", justifyContent: "center", gap: "1rem",
    font: "16px/1.4 system-ui, sans-serif", color: "#fff",
  });
  layer.dataset.facelive = "layer";
  if (element && getComputedStyle(element).position === "static") {
    element.style.position = "relative";
  }
  const video = el("video", {
    width: "160px", maxWidth: "40%", borderRadius: "8px", transform: "scaleX(-1)",
    background: "#000",
  });
  video.muted = true;
  video.playsInline = true;
  video.setAttribute("playsinline", "");
  video.autoplay = true;
  const panel = el("div", {
    maxWidth: "28rem", background: "rgba(0, 0, 0, 0.75)", padding: "1rem",
    borderRadius: "8px", textAlign: "center",
  });
  panel.setAttribute("role", "alertdialog");
  panel.setAttribute("aria-live", "assertive");
  const text = el("p", { margin: "0 0 0.75rem" });
  const start = el("button", { fontSize: "1rem", padding: "0.4rem 1rem", margin: "0 0.5rem" },
    "Start");
  start.type = "button";
  start.dataset.facelive = "start";
  const cancel = el("button", { fontSize: "1rem", padding: "0.4rem 1rem", margin: "0 0.5rem" },
    "Cancel");
  cancel.type = "button";
  cancel.dataset.facelive = "cancel";
  panel.append(text, start, cancel);
  layer.append(video, panel);
  (element || document.body).appendChild(layer);
  return { layer, video, panel, text, start, cancel };
}

function waitForConsent(ui) {
  ui.start.disabled = false;
  ui.start.focus();
  return new Promise((resolve, reject) => {
    ui.start.addEventListener("click", () => resolve(), { once: true });
    ui.cancel.addEventListener("click",
      () => reject(new FaceliveError("cancelled", "the user cancelled the check")),
      { once: true });
  });
}

async function videoReady(video, stream) {
  video.srcObject = stream;
  try {
    await video.play();
  } catch (err) {
    // autoplay of a muted stream is allowed; ignore a rejected play() and wait for frames
  }
  const deadline = performance.now() + 10000;
  while (!(video.videoWidth > 0 && video.readyState >= 2)) {
    if (performance.now() > deadline) {
      throw new FaceliveError("camera", "The camera gives no picture.");
    }
    await sleep(50);
  }
}

function frameSize(video) {
  const w = video.videoWidth, h = video.videoHeight;
  const scale = Math.min(1, MAX_SIDE / Math.max(w, h));
  let cw = Math.round(w * scale), ch = Math.round(h * scale);
  if (Math.max(cw, ch) < MIN_SIDE) {
    const up = MIN_SIDE / Math.max(cw, ch);
    cw = Math.round(cw * up);
    ch = Math.round(ch * up);
  }
  return [cw, ch];
}

function toJpeg(canvas) {
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob)
      : reject(new FaceliveError("camera", "a frame could not be encoded"))),
    "image/jpeg", JPEG_QUALITY);
  });
}

// Play the colours from t = 0 and film until captureMs; returns [{blob, t}].
async function playAndCapture(ui, video, challenge, onProgress) {
  const steps = challenge.steps;
  const captureMs = challenge.capture_ms || (challenge.total_ms + (challenge.tail_ms || 0));
  const [cw, ch] = frameSize(video);
  const canvas = el("canvas");
  canvas.width = cw;
  canvas.height = ch;
  const ctx = canvas.getContext("2d");
  const pending = [];
  let raf = 0;
  const paint = (t) => {
    const c = colourAt(steps, t);
    ui.layer.style.background = "rgb(" + c[0] + ", " + c[1] + ", " + c[2] + ")";
  };
  paint(0);
  const t0 = performance.now();
  const loop = () => {
    const t = performance.now() - t0;
    paint(t);
    if (t < captureMs) raf = requestAnimationFrame(loop);
  };
  raf = requestAnimationFrame(loop);
  try {
    let next = 0;
    let last = -Infinity;
    for (;;) {
      const t = performance.now() - t0;
      if (t >= next && t - last >= 5) {
        ctx.drawImage(video, 0, 0, cw, ch);
        const stamp = performance.now() - t0;
        pending.push(toJpeg(canvas).then((blob) => ({ blob, t: Math.round(stamp * 10) / 10 })));
        last = stamp;
        next += FRAME_INTERVAL_MS;
        if (next <= t) next = t + FRAME_INTERVAL_MS; // behind: do not burst
        if (onProgress) onProgress("challenge", Math.min(1, stamp / captureMs));
        if (stamp >= captureMs) break;
      }
      const wait = Math.min(next, captureMs) - (performance.now() - t0);
      await sleep(Math.max(0, Math.min(wait, FRAME_INTERVAL_MS)));
    }
  } finally {
    cancelAnimationFrame(raf);
  }
  return Promise.all(pending);
}

async function enterFullscreen(node) {
  try {
    if (node.requestFullscreen && !document.fullscreenElement) await node.requestFullscreen();
  } catch (err) {
    // not allowed (iframe, no user gesture): the fixed layer covers the page anyway
  }
}

async function leaveFullscreen() {
  try {
    if (document.fullscreenElement && document.exitFullscreen) await document.exitFullscreen();
  } catch (err) {
    // ignore
  }
}

/**
 * Run the challenge of one session and upload the frames.
 * @param {object} options
 * @param {string} options.server      facelive's base URL ("" for the page's own origin)
 * @param {string} options.sessionId   from the site's backend (POST /v1/sessions)
 * @param {string} options.clientToken from the site's backend; never an API key
 * @param {HTMLElement} [options.element] play the colours over this element (default: the
 *   whole screen; full screen is requested on the user's click)
 * @param {string|false} [options.warning] the photosensitivity warning shown before the
 *   colours, with Start / Cancel (default WARNING_TEXT); false only when the page has shown
 *   the same warning and the user agreed
 * @param {function} [options.onProgress] called with (stage, fraction): "camera",
 *   "consent", "challenge", "uploading", "received"
 * @returns {Promise<{status: string, sessionId: string, frames: number}>}
 */
export async function faceliveCheck(options) {
  const { server = "", sessionId, clientToken, element = null, onProgress = null } =
    options || {};
  const warning = options && options.warning === false ? false
    : (options && options.warning) || WARNING_TEXT;
  if (!sessionId || !clientToken) {
    throw new FaceliveError("usage", "faceliveCheck needs sessionId and clientToken");
  }
  const auth = { Authorization: "Bearer " + clientToken };
  const base = apiUrl(server, "/v1/sessions/" + encodeURIComponent(sessionId));
  const progress = (stage, f) => { if (onProgress) onProgress(stage, f); };

  progress("camera", 0);
  const stream = await openCamera();
  const ui = buildLayer(element);
  // The warning shows at once; Start is enabled when the camera gives a picture.
  ui.text.textContent = warning === false ? "Starting the camera\u2026" : warning;
  ui.start.disabled = true;
  if (warning === false) ui.start.hidden = true;
  try {
    await videoReady(ui.video, stream);
    if (warning !== false) {
      progress("consent", 0);
      await waitForConsent(ui);
    }
    if (!element) enterFullscreen(ui.layer); // inside the click's user activation
    ui.panel.remove();
    const challenge = await request(base + "/challenge", { headers: auth });
    checkChallenge(challenge);
    await sleep(CAMERA_WARMUP_MS);
    const frames = await playAndCapture(ui, ui.video, challenge, progress);
    progress("uploading", 0);
    const form = new FormData();
    frames.forEach((f, i) => {
      form.append("frames", f.blob, "frame-" + String(i).padStart(3, "0") + ".jpg");
    });
    form.append("timestamps", JSON.stringify(frames.map((f) => f.t)));
    form.append("nonce", challenge.nonce);
    const answer = await request(base + "/frames", { method: "POST", headers: auth, body: form });
    progress("received", 1);
    return { status: (answer && answer.status) || "received", sessionId, frames: frames.length };
  } finally {
    stream.getTracks().forEach((track) => track.stop());
    ui.layer.remove();
    leaveFullscreen();
  }
}

export default faceliveCheck;
