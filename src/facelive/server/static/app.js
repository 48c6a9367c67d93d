// facelive browser client: camera preview, face box, verdict. Plain JS, no dependencies.
// Sends about 3 JPEG frames per second (one at a time) to POST v1/liveness as multipart "image"
// (with --demo: POST demo/liveness, the same check without an API key, so that the demo works
// when API keys are configured). When the server asks for an API key, which a page must never
// hold, the loop stops and says so.
(() => {
  "use strict";

  const DEMO = document.body.dataset.demo === "on";
  const API_URL = new URL(DEMO ? "demo/liveness" : "v1/liveness", document.baseURI).href;
  const INTERVAL_MS = 333;        // ~3 frames per second
  const MAX_SIDE = 640;           // frames are scaled down to at most 640 px on the long side
  const JPEG_QUALITY = 0.85;
  const REQUEST_TIMEOUT_MS = 10000;

  const video = document.getElementById("video");
  const overlay = document.getElementById("overlay");
  const verdict = document.getElementById("verdict");
  const details = document.getElementById("details");
  const message = document.getElementById("message");
  const toggle = document.getElementById("toggle");
  const capture = document.createElement("canvas");

  let stream = null;
  let running = false;
  let generation = 0;             // bumps on stop so a stale loop ends

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function showMessage(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  function setVerdict(decision, text) {
    verdict.dataset.decision = decision;
    verdict.textContent = text;
  }

  function cameraErrorText(err) {
    const name = (err && err.name) || "";
    if (name === "NotAllowedError" || name === "PermissionDeniedError" || name === "SecurityError") {
      return "Camera permission was denied. Allow camera access for this site in your browser's " +
        "site settings, then reload the page.";
    }
    if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
      return "No camera was found. Connect a camera (or enable it), then reload the page.";
    }
    if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") {
      return "The camera could not be started: it may be in use by another application.";
    }
    return "The camera could not be started (" + (name || "unknown error") + ": " +
      ((err && err.message) || "") + ").";
  }

  async function startCamera() {
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw Object.assign(new Error("camera access needs a secure context"), { name: "InsecureContext" });
    }
    return navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" },
    });
  }

  function grabFrame() {
    const vw = video.videoWidth, vh = video.videoHeight;
    if (!vw || !vh || video.readyState < 2) return null;
    const scale = Math.min(1, MAX_SIDE / Math.max(vw, vh));
    capture.width = Math.round(vw * scale);
    capture.height = Math.round(vh * scale);
    capture.getContext("2d").drawImage(video, 0, 0, capture.width, capture.height);
    return new Promise((resolve) => capture.toBlob(resolve, "image/jpeg", JPEG_QUALITY))
      .then((blob) => blob && { blob, width: capture.width, height: capture.height });
  }

  function drawFace(face, width, height, decision) {
    overlay.width = width;
    overlay.height = height;
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    if (!face) return;
    ctx.lineWidth = Math.max(2, Math.round(width / 160));
    ctx.strokeStyle = decision === "live" ? "#22c55e" : decision === "spoof" ? "#ef4444" : "#eab308";
    ctx.strokeRect(face.x, face.y, face.w, face.h);
  }

  function showResult(r, frame) {
    drawFace(r.face, frame.width, frame.height, r.decision);
    if (r.decision === "live") setVerdict("live", "Live");
    else if (r.decision === "spoof") setVerdict("spoof", "Spoof");
    else if (!r.face) setVerdict("noface", "No face found");
    else setVerdict("unknown", "Unknown" + (r.reason ? ": " + r.reason : ""));
    const parts = [];
    if (r.score !== null && r.score !== undefined) {
      parts.push("P(live) " + r.score.toFixed(2) +
        (r.threshold !== null && r.threshold !== undefined ? " (threshold " + r.threshold.toFixed(2) + ")" : ""));
    }
    for (const [name, t] of Object.entries(r.tests || {})) {
      parts.push(name + " " + (t.score === null ? t.status : t.score.toFixed(2)));
    }
    parts.push(Math.round(r.ms) + " ms");
    details.textContent = parts.join(" \u00b7 ");
  }

  // One request; returns extra milliseconds to wait before the next one (back-off). An answer
  // that comes back after the loop was stopped or paused (gen is no longer current) is dropped.
  async function sendFrame(gen) {
    const frame = await grabFrame();
    if (!frame) return 0;
    const form = new FormData();
    form.append("image", frame.blob, "frame.jpg");
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), REQUEST_TIMEOUT_MS);
    let resp;
    try {
      resp = await fetch(API_URL, { method: "POST", body: form, signal: ctrl.signal });
    } catch (err) {
      showMessage(err.name === "AbortError" ? "The server did not answer in time; retrying."
        : "Cannot reach the liveness server; retrying.");
      return 2000;
    } finally {
      clearTimeout(timer);
    }
    if (gen !== generation) return 0;
    let body = null;
    try { body = await resp.json(); } catch (_) { body = null; }
    if (resp.ok && body && body.decision) {
      showMessage("");
      showResult(body, frame);
      return 0;
    }
    const err = (body && body.error) || {};
    if (resp.status === 401) {
      stop("Not available");
      showMessage("This server needs an API key for image checks, and a web page must never " +
        "hold one: send images from your backend with the key, or start the server with " +
        "--demo to try this page.");
      return 0;
    }
    if (resp.status === 503) {
      const retry = parseFloat(resp.headers.get("Retry-After") || "1");
      showMessage(err.code === "not_ready"
        ? "The server is not ready: " + (err.message || "models not loaded") + ". Retrying."
        : "The server is busy; retrying shortly.");
      return (Number.isFinite(retry) ? retry : 1) * 1000;
    }
    showMessage("Server error " + resp.status + (err.message ? ": " + err.message : "") + ".");
    return resp.status >= 500 ? 2000 : 1000;
  }

  async function loop(gen) {
    while (running && gen === generation) {
      const t0 = performance.now();
      let extra = 0;
      if (!document.hidden) extra = await sendFrame(gen);
      await sleep(Math.max(0, INTERVAL_MS - (performance.now() - t0)) + extra);
    }
  }

  async function start() {
    showMessage("");
    setVerdict("none", "Waiting for the camera\u2026");
    try {
      stream = await startCamera();
    } catch (err) {
      setVerdict("none", "No camera");
      showMessage(err.name === "InsecureContext"
        ? "Camera access needs a secure page: open this site over HTTPS (or on localhost)."
        : cameraErrorText(err));
      toggle.textContent = "Retry";
      running = false;
      return;
    }
    video.srcObject = stream;
    for (const track of stream.getVideoTracks()) {
      track.addEventListener("ended", () => {
        showMessage("The camera stopped (disconnected or switched off).");
        stop();
      });
    }
    try { await video.play(); } catch (_) { /* autoplay of a muted stream is allowed */ }
    setVerdict("none", "Checking\u2026");
    toggle.textContent = "Stop";
    running = true;
    generation += 1;
    loop(generation);
  }

  function stop(text) {
    running = false;
    generation += 1;
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    video.srcObject = null;
    drawFace(null, overlay.width, overlay.height);
    details.textContent = "";
    setVerdict("none", text || "Stopped");
    toggle.textContent = "Start";
  }

  toggle.addEventListener("click", () => (running ? stop() : start()));
  // The challenge demo (demo.js, --demo) pauses this loop while it runs (the camera is the
  // challenge's, and one page shows one verdict at a time), then resumes it.
  let pausedByDemo = false;
  document.addEventListener("facelive:pause", () => {
    if (running) { pausedByDemo = true; stop("Paused while the challenge runs"); }
  });
  document.addEventListener("facelive:resume", () => {
    if (pausedByDemo) { pausedByDemo = false; start(); }
  });
  start();
})();
