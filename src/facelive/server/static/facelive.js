// facelive.js: the screen-flash challenge client. An ES module, no dependencies.
//
//   import { faceliveCheck } from "https://liveness.example.com/static/facelive.js";
//   const out = await faceliveCheck({ server, sessionId, clientToken, result });
//
// What the user goes through, in one layer over the page (or over `element`):
//
// 1. consent: what will happen (the screen changes colour for about 6 s while the camera films
//    the face; keep the face in view) and the photosensitivity warning, with Start / Cancel.
//    The camera is not asked for yet; the client checks meanwhile that the page can reach the
//    facelive server (a page whose origin is missing from the server's --cors-origins is told
//    so here, in plain words, before any camera prompt).
// 2. camera: the browser's camera prompt, after Start.
// 3. colours: the server's colours (GET {server}/v1/sessions/{id}/challenge with the client
//    token) played full screen while the camera films about 10 frames per second (480 px on
//    the long side, JPEG quality 0.85, each stamped with the ms since the first colour), with a
//    short instruction, a progress bar and Cancel (the button or Escape; leaving full screen or
//    hiding the page cancels too). A cancel tells the server (POST .../cancel).
// 4. checking: the frames are uploaded (POST .../frames); the server answers
//    {status: "received"}, never the verdict. When the page passes `result` (a function that
//    asks the site's own backend, which holds the API key), the client waits for it.
// 5. outcome, in plain words, never scores: "You're verified", "We could not confirm a live
//    person. Try again in better light, facing the screen", "Cancelled", or what went wrong
//    (camera, network, CORS, an expired session...), with Close.
//
// It resolves with {status: "received", sessionId, frames, decision} (decision: what `result`
// gave, else null) and rejects with a FaceliveError (`code`: "usage", "camera", "cancelled",
// "unsafe_challenge", "network", "cors", "result", or the server's error code).
//
// Photosensitive safety: the colours come from the server, which keeps WCAG 2.3.1 (every colour
// at least 350 ms, so at most 3 changes per second; no saturated red:
// facelive.challenge.sequence.check_photosensitive); this client checks the same rules again and
// refuses a challenge that breaks them, and always explains and asks first unless the page has
// done so itself (`warning: false`).

const MIN_STEP_MS = 350; // > 1000/3 ms: at most 3 colour changes in any second
const MAX_CHANGES_PER_SECOND = 3;
const MAX_RED_RATIO = 0.6; // R/(R+G+B); WCAG calls >= 0.8 a saturated red
const FRAME_INTERVAL_MS = 100; // ~10 fps
const MAX_SIDE = 480; // px, long side of an uploaded frame
const MIN_SIDE = 320;
const JPEG_QUALITY = 0.85;
const CAMERA_WARMUP_MS = 400;
const CANCEL_TIMEOUT_MS = 5000;

export const WARNING_TEXT =
  "The screen flashes in different colours (at most 3 changes per second, no red flashes). " +
  "If you are sensitive to flashing lights, do not continue.";

export const EXPLANATION_TEXT =
  "When you press Start, your browser asks to use the camera. Then the screen changes colour " +
  "for about 6 seconds while the camera films your face: keep your face in view, facing the " +
  "screen.";

// Added to the warning when the device asks for reduced motion.
export const REDUCED_MOTION_TEXT =
  "Your device asks for reduced motion: continue only if these colour changes are comfortable.";

export const INSTRUCTION_TEXT = "Keep your face in view and look at the screen";

// The outcomes, in plain words (title, advice). `outcomeText(decision)` picks one.
export const OUTCOMES = {
  live: ["You\u2019re verified", "Thank you. You can continue."],
  spoof: ["We could not confirm a live person",
    "Try again in better light, facing the screen, with your face in view."],
  unknown: ["We could not complete the check",
    "Make sure your face alone is in view, in good light, then try again."],
  received: ["Thank you", "Your check was sent; this site will confirm the result."],
};

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

function crossOrigin(server) {
  if (!server) return false;
  try {
    return new URL(server, location.href).origin !== location.origin;
  } catch (err) {
    return false;
  }
}

// A fetch that failed without an answer (TypeError): the server is down or unreachable, or it
// answered without the CORS headers this page's origin needs (the browser hides which). A
// no-cors request tells them apart: it succeeds (an opaque answer) when the server is reachable.
async function unreachable(server) {
  if (typeof navigator !== "undefined" && navigator.onLine === false) {
    return new FaceliveError("network", "You appear to be offline. Check your internet " +
      "connection and try again.");
  }
  if (crossOrigin(server)) {
    try {
      await fetch(apiUrl(server, "/healthz"), { mode: "no-cors", cache: "no-store",
        credentials: "omit" });
      return new FaceliveError("cors", "This page cannot reach the verification service: the " +
        "service does not accept requests from this page's address (check the site's CORS " +
        "settings: --cors-origins).");
    } catch (err) {
      // not reachable at all
    }
  }
  return new FaceliveError("network", "This page cannot reach the verification service. " +
    "Check your internet connection and try again.");
}

async function request(server, url, options) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store", credentials: "omit", ...options });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw await unreachable(server);
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

// The photosensitive rules of facelive.challenge.sequence.check_photosensitive, checked again
// on this side (defence in depth); returns the challenge's length in ms.
export function checkChallenge(challenge) {
  const steps = (challenge && challenge.steps) || [];
  if (!steps.length) throw new FaceliveError("unsafe_challenge", "the challenge has no steps");
  let t = 0;
  const changes = [];
  let previous = null;
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
    if (previous && c.some((x, i) => x !== previous[i])) changes.push(s.start_ms);
    previous = c;
    t += s.duration_ms;
  }
  for (let k = 0; k < changes.length; k++) {
    const inWindow = changes.slice(k).filter((x) => x <= changes[k] + 1000).length;
    if (inWindow > MAX_CHANGES_PER_SECOND) {
      throw new FaceliveError("unsafe_challenge", "more than " + MAX_CHANGES_PER_SECOND +
        " colour changes within one second");
    }
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
    text = "Camera permission was denied. Allow the camera for this site in your browser's " +
      "settings, then try again.";
  } else if (name === "NotFoundError" || name === "OverconstrainedError") {
    text = "No camera was found. Connect or enable a camera, then try again.";
  } else if (name === "NotReadableError" || name === "AbortError") {
    text = "The camera is in use by another application. Close it, then try again.";
  }
  return new FaceliveError("camera", text);
}

async function openCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new FaceliveError("camera", "Camera access needs a secure page (https).");
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

// The plain-words title and advice of an outcome: a decision ("live", "spoof", "unknown",
// "received") or a FaceliveError.
export function outcomeText(outcome) {
  if (typeof outcome === "string") return OUTCOMES[outcome] || OUTCOMES.unknown;
  const e = outcome || {};
  const code = e.code || "";
  if (code === "cancelled") return ["Cancelled", e.message];
  if (code === "camera") return ["The camera could not be used", e.message];
  if (code === "cors" || code === "network") { // the message without the title's words
    return ["This page cannot reach the verification service",
      String(e.message || "").replace(/^This page cannot reach the verification service[.:]\s*/, "")
        .replace(/^./, (c) => c.toUpperCase()) || "Please try again."];
  }
  if (code === "unsafe_challenge") {
    return ["The check was stopped for your safety",
      "Its colours broke the limits for flashing lights. Please try again later."];
  }
  if (code === "session_expired" || code === "session_not_found") {
    return ["This check has expired", "Please start again."];
  }
  if (code === "session_abandoned") return ["This check was cancelled", "Please start again."];
  if (code === "frames_submitted" || code === "nonce_used") {
    return ["This check was already used", "Please start again."];
  }
  if (e.status === 429 || code === "rate_limited" || code === "too_many_sessions") {
    return ["Too many checks right now", "Please wait a moment, then try again."];
  }
  if (e.status === 503 || code === "overloaded" || code === "not_ready") {
    return ["The verification service is busy", "Please try again in a moment."];
  }
  if (code === "result") return ["We could not get the result", "Please try again."];
  return ["Something went wrong", "Please try again." + (code ? " (" + code + ")" : "")];
}

function el(tag, style, text) {
  const node = document.createElement(tag);
  Object.assign(node.style, style || {});
  if (text) node.textContent = text;
  return node;
}

function button(label, name, primary) {
  const b = el("button", {
    font: "inherit", fontSize: "1rem", padding: "0.5rem 1.25rem", margin: "0.25rem 0.4rem 0",
    borderRadius: "6px", cursor: "pointer",
    border: primary ? "1px solid #1d4ed8" : "1px solid #9ca3af",
    background: primary ? "#2563eb" : "#f3f4f6", color: primary ? "#fff" : "#111827",
  }, label);
  b.type = "button";
  b.dataset.facelive = name;
  return b;
}

let layerCount = 0;

// The layer: colour background, a small mirrored camera preview, one panel whose content follows
// the state (data-facelive-state on the layer). Styles are set through the CSSOM, so a strict
// CSP (no inline styles) is fine.
function buildLayer(element) {
  const layer = el("div", {
    position: element ? "absolute" : "fixed", inset: "0", zIndex: "2147483646",
    background: "rgb(40, 40, 40)", display: "flex", flexDirection: "column",
    alignItems: "center", justifyContent: "center", gap: "1rem", padding: "1rem",
    boxSizing: "border-box", font: "16px/1.45 system-ui, sans-serif", color: "#fff",
  });
  layer.dataset.facelive = "layer";
  if (element && getComputedStyle(element).position === "static") {
    element.style.position = "relative";
  }
  const video = el("video", {
    width: "180px", maxWidth: "40%", borderRadius: "8px", transform: "scaleX(-1)",
    background: "#000", display: "none",
  });
  video.muted = true;
  video.playsInline = true;
  video.setAttribute("playsinline", "");
  video.autoplay = true;
  const panel = el("div", {
    maxWidth: "30rem", width: "100%", background: "rgba(0, 0, 0, 0.78)", padding: "1rem 1.25rem",
    borderRadius: "10px", textAlign: "center", boxSizing: "border-box",
  });
  const id = "facelive-title-" + (++layerCount);
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-modal", "true");
  panel.setAttribute("aria-labelledby", id);
  const title = el("h2", { margin: "0 0 0.5rem", fontSize: "1.3rem", lineHeight: "1.3" });
  title.id = id;
  title.dataset.facelive = "title";
  const text = el("p", { margin: "0 0 0.5rem" });
  text.dataset.facelive = "text";
  text.setAttribute("aria-live", "polite");
  const note = el("p", { margin: "0 0 0.75rem", fontSize: "0.9rem", color: "#e5e7eb" });
  note.dataset.facelive = "note";
  const bar = el("div", {
    height: "10px", background: "rgba(255, 255, 255, 0.25)", borderRadius: "5px",
    overflow: "hidden", margin: "0.25rem 0 0.75rem",
  });
  bar.dataset.facelive = "progress";
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-label", "Progress of the check");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  bar.setAttribute("aria-valuenow", "0");
  const fill = el("div", { height: "100%", width: "0%", background: "#fff" });
  bar.append(fill);
  const buttons = el("div", {});
  const start = button("Start", "start", true);
  const cancel = button("Cancel", "cancel", false);
  const close = button("Close", "close", true);
  buttons.append(start, cancel, close);
  panel.append(title, text, note, bar, buttons);
  layer.append(video, panel);
  (element || document.body).appendChild(layer);
  return { layer, video, panel, title, text, note, bar, fill, start, cancel, close };
}

// Show one state: its title, text, note, which buttons, the progress bar, the preview.
function show(ui, state, { title = "", text = "", note = "", buttons = [], progress = false,
  preview = false } = {}) {
  ui.layer.dataset.faceliveState = state;
  ui.title.textContent = title;
  ui.title.hidden = !title;
  ui.text.textContent = text;
  ui.text.hidden = !text;
  ui.note.textContent = note;
  ui.note.hidden = !note;
  ui.bar.hidden = !progress;
  ui.video.style.display = preview ? "block" : "none";
  for (const name of ["start", "cancel", "close"]) ui[name].hidden = !buttons.includes(name);
  if (state !== "colours") ui.layer.style.background = "rgb(40, 40, 40)";
  ui.panel.style.maxWidth = state === "colours" ? "24rem" : "30rem";
  ui.panel.style.padding = state === "colours" ? "0.6rem 1rem" : "1rem 1.25rem";
  const focus = buttons.includes("start") ? ui.start : buttons.includes("close") ? ui.close
    : buttons.includes("cancel") ? ui.cancel : null;
  if (focus) focus.focus({ preventScroll: true });
}

function setProgress(ui, fraction) {
  const pct = Math.max(0, Math.min(100, Math.round(fraction * 100)));
  ui.fill.style.width = pct + "%";
  ui.bar.setAttribute("aria-valuenow", String(pct));
}

async function videoReady(video, stream, stopped) {
  video.srcObject = stream;
  try {
    await video.play();
  } catch (err) {
    // autoplay of a muted stream is allowed; ignore a rejected play() and wait for frames
  }
  const deadline = performance.now() + 10000;
  while (!(video.videoWidth > 0 && video.readyState >= 2)) {
    stopped();
    if (performance.now() > deadline) {
      throw new FaceliveError("camera", "The camera gives no picture. Check it, then try again.");
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

// Play the colours from t = 0 and film until captureMs; returns [{blob, t}]. `stopped()` throws
// the cancellation as soon as the user cancels.
async function playAndCapture(ui, challenge, onProgress, stopped) {
  const video = ui.video;
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
    setProgress(ui, t / captureMs);
    const left = Math.max(0, Math.ceil((captureMs - t) / 1000));
    ui.note.textContent = left > 0 ? "About " + left + " s left" : "Done";
  };
  ui.note.hidden = false;
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
      stopped();
      const t = performance.now() - t0;
      if (t >= next && t - last >= 5) {
        ctx.drawImage(video, 0, 0, cw, ch);
        const stamp = performance.now() - t0;
        pending.push(toJpeg(canvas).then((blob) => ({ blob, t: Math.round(stamp * 10) / 10 })));
        last = stamp;
        next += FRAME_INTERVAL_MS;
        if (next <= t) next = t + FRAME_INTERVAL_MS; // behind: do not burst
        onProgress("challenge", Math.min(1, stamp / captureMs));
        if (stamp >= captureMs) break;
      }
      const wait = Math.min(next, captureMs) - (performance.now() - t0);
      await sleep(Math.max(0, Math.min(wait, FRAME_INTERVAL_MS)));
    }
  } finally {
    cancelAnimationFrame(raf);
  }
  const frames = await Promise.all(pending);
  stopped();
  return frames;
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

// Tell the server that this session was cancelled (POST .../cancel with the client token).
// Best effort: a server without the endpoint (404), a session already finished (409) or a
// network failure changes nothing for the user.
async function tellCancelled(base, auth) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), CANCEL_TIMEOUT_MS);
  try {
    const r = await fetch(base + "/cancel", { method: "POST", headers: auth, cache: "no-store",
      credentials: "omit", keepalive: true, signal: ctrl.signal });
    return r.status;
  } catch (err) {
    return 0;
  } finally {
    clearTimeout(timer);
  }
}

function clicked(node) {
  return new Promise((resolve) => node.addEventListener("click", () => resolve(node.dataset.facelive),
    { once: true }));
}

/**
 * Run the challenge of one session: explain and ask, film the face under the server's colours,
 * upload, and show the outcome in plain words.
 * @param {object} options
 * @param {string} options.server      facelive's base URL ("" for the page's own origin)
 * @param {string} options.sessionId   from the site's backend (POST /v1/sessions)
 * @param {string} options.clientToken from the site's backend; never an API key
 * @param {function} [options.result]  async (sessionId) => "live" | "spoof" | "unknown" (or an
 *   object with `decision`): asks the site's backend, which fetches the result with its API key
 *   and verifies the token; the layer then shows the outcome in plain words. Without it the
 *   client only knows that the server received the frames.
 * @param {HTMLElement} [options.element] play the colours over this element (default: the
 *   whole screen; full screen is requested on the user's click)
 * @param {string|false} [options.warning] the photosensitivity warning shown with the
 *   explanation and Start / Cancel (default WARNING_TEXT); false only when the page has shown
 *   the same explanation and warning and calls faceliveCheck from the user's click on its own
 *   Start button (the camera prompt comes at once)
 * @param {boolean} [options.showOutcome] show the outcome (and errors) in the layer until the
 *   user presses Close (default true); false: the layer closes at once and the page shows them
 * @param {AbortSignal} [options.signal] aborting it cancels the check like the Cancel button
 * @param {function} [options.onProgress] called with (stage, fraction): "consent", "camera",
 *   "challenge" (fraction 0-1), "uploading", "verifying", "result", "cancelled", "error"
 * @returns {Promise<{status: string, sessionId: string, frames: number, decision: ?string}>}
 */
export async function faceliveCheck(options) {
  const o = options || {};
  const { server = "", sessionId, clientToken, element = null, onProgress = null,
    result = null, signal = null } = o;
  const warning = o.warning === false ? false : o.warning || WARNING_TEXT;
  const showOutcome = o.showOutcome !== false;
  if (!sessionId || !clientToken) {
    throw new FaceliveError("usage", "faceliveCheck needs sessionId and clientToken");
  }
  const auth = { Authorization: "Bearer " + clientToken };
  const base = apiUrl(server, "/v1/sessions/" + encodeURIComponent(sessionId));
  const progress = (stage, f) => {
    if (onProgress) {
      try { onProgress(stage, f); } catch (err) { /* the page's callback: not ours */ }
    }
  };

  const ui = buildLayer(element);
  const abort = new AbortController(); // the user's cancel, for the fetches and the loops
  let cancelled = null;
  let uploaded = false;
  let stream = null;
  let watchFullscreen = false;
  let rejectCancelled = null;
  const whenCancelled = new Promise((resolve, reject) => { rejectCancelled = reject; });
  whenCancelled.catch(() => {});
  const cancel = () => {
    if (cancelled || uploaded) return;
    const sending = ui.layer.dataset.faceliveState === "checking";
    cancelled = new FaceliveError("cancelled", sending ? "The check was stopped."
      : "The check was stopped. No pictures were sent.");
    abort.abort();
    rejectCancelled(cancelled);
  };
  // an await that ends as soon as the user cancels
  const guard = (promise) => Promise.race([promise, whenCancelled]);
  const stopped = () => { if (cancelled) throw cancelled; };
  const onKey = (event) => {
    if (event.key !== "Escape") return;
    event.preventDefault();
    if (ui.layer.dataset.faceliveState === "outcome") ui.close.click();
    else cancel();
  };
  const onFullscreen = () => { if (watchFullscreen && !document.fullscreenElement) cancel(); };
  const onHidden = () => {
    if (document.hidden && ui.layer.dataset.faceliveState === "colours") cancel();
  };
  ui.cancel.addEventListener("click", cancel);
  document.addEventListener("keydown", onKey, true);
  document.addEventListener("fullscreenchange", onFullscreen);
  document.addEventListener("visibilitychange", onHidden);
  if (signal) {
    if (signal.aborted) cancel();
    signal.addEventListener("abort", cancel);
  }

  let outcome = null; // the value to resolve with, or the error to reject with
  try {
    stopped();
    // 1. consent, while checking that the server can be reached (no camera yet)
    const reach = request(server, apiUrl(server, "/healthz"), { signal: abort.signal })
      .then(() => null, (err) => err);
    if (warning !== false) {
      const reduced = window.matchMedia &&
        window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      show(ui, "consent", { title: "A quick check that you are here", text: EXPLANATION_TEXT,
        note: warning + (reduced ? " " + REDUCED_MOTION_TEXT : ""),
        buttons: ["start", "cancel"] });
      progress("consent", 0);
      const first = await guard(Promise.race([clicked(ui.start),
        reach.then((err) => err || new Promise(() => {}))]));
      if (first instanceof Error) throw first;
      if (!element) enterFullscreen(ui.layer); // inside the click's user activation
    }
    const unreached = await guard(reach);
    if (unreached) throw unreached;

    // 2. the camera, only now
    show(ui, "camera", { title: "Starting the camera",
      text: "Allow the camera when your browser asks.", buttons: ["cancel"] });
    progress("camera", 0);
    const opening = openCamera();
    opening.then((s) => { if (cancelled) s.getTracks().forEach((track) => track.stop()); },
      () => {});
    stream = await guard(opening);
    await videoReady(ui.video, stream, stopped);

    // 3. the colours
    const challenge = await request(server, base + "/challenge",
      { headers: auth, signal: abort.signal });
    checkChallenge(challenge);
    if (!element) await guard(enterFullscreen(ui.layer));
    show(ui, "colours", { title: INSTRUCTION_TEXT, buttons: ["cancel"], progress: true,
      preview: true });
    ui.cancel.textContent = "Cancel (Esc)";
    setProgress(ui, 0);
    watchFullscreen = !!document.fullscreenElement;
    await guard(sleep(CAMERA_WARMUP_MS));
    const frames = await playAndCapture(ui, challenge, progress, stopped);
    watchFullscreen = false;
    stream.getTracks().forEach((track) => track.stop());
    stream = null;

    // 4. upload, then the site's backend (when given)
    show(ui, "checking", { title: "Checking\u2026", text: "Sending the pictures.",
      buttons: ["cancel"] });
    ui.cancel.textContent = "Cancel";
    progress("uploading", 0);
    const form = new FormData();
    frames.forEach((f, i) => {
      form.append("frames", f.blob, "frame-" + String(i).padStart(3, "0") + ".jpg");
    });
    form.append("timestamps", JSON.stringify(frames.map((f) => f.t)));
    form.append("nonce", challenge.nonce);
    const answer = await request(server, base + "/frames",
      { method: "POST", headers: auth, body: form, signal: abort.signal });
    uploaded = true;
    const value = { status: (answer && answer.status) || "received", sessionId,
      frames: frames.length, decision: null };
    if (result) {
      show(ui, "checking", { title: "Checking\u2026", text: "Verifying." });
      progress("verifying", 0);
      let got;
      try {
        got = await result(sessionId);
      } catch (err) {
        throw new FaceliveError("result", "the site could not get the result (" +
          ((err && err.message) || err) + ")");
      }
      value.decision = String((got && typeof got === "object" ? got.decision : got) ||
        "unknown");
    }
    outcome = value;
    progress("result", 1);
  } catch (err) {
    if (cancelled) {
      outcome = cancelled;
    } else if (err instanceof FaceliveError) {
      outcome = err;
    } else {
      outcome = new FaceliveError("error", String((err && err.message) || err));
    }
    progress(outcome.code === "cancelled" ? "cancelled" : "error", 0);
  } finally {
    watchFullscreen = false;
    if (stream) stream.getTracks().forEach((track) => track.stop());
    if (signal) signal.removeEventListener("abort", cancel);
  }
  if (outcome === cancelled) tellCancelled(base, auth); // in the background
  try {
    leaveFullscreen();
    const failed = outcome instanceof Error;
    if (showOutcome && (failed || outcome.decision !== null)) {
      const [title, text] = outcomeText(failed ? outcome : outcome.decision);
      show(ui, "outcome", { title, text, buttons: ["close"] });
      ui.layer.dataset.faceliveOutcome = failed ? outcome.code : outcome.decision;
      await clicked(ui.close);
    }
  } finally {
    document.removeEventListener("keydown", onKey, true);
    document.removeEventListener("fullscreenchange", onFullscreen);
    document.removeEventListener("visibilitychange", onHidden);
    ui.layer.remove();
  }
  if (outcome instanceof Error) throw outcome;
  return outcome;
}

export default faceliveCheck;
