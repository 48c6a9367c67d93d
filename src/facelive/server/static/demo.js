// The screen-flash challenge demo (served with `facelive serve --demo` only).
// It creates a demo session (POST demo/sessions: no API key is involved), runs faceliveCheck()
// from facelive.js, then, unlike a real site, asks for its own verdict (demo only).
import { faceliveCheck } from "./facelive.js";

const body = document.body;
const section = document.getElementById("challenge");

const STAGES = {
  camera: "Opening the camera\u2026",
  consent: "Read the warning, then press Start.",
  challenge: "Keep your face in view while the colours play\u2026",
  uploading: "Uploading the frames\u2026",
  received: "Uploaded; the server is verifying.",
};

function payload(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
  } catch (err) {
    return {};
  }
}

async function json(url, options) {
  const resp = await fetch(url, { cache: "no-store", ...options });
  let data = null;
  try { data = await resp.json(); } catch (err) { data = null; }
  return { resp, data };
}

async function run(server, status, result, reasons, button) {
  button.disabled = true;
  result.hidden = true;
  result.dataset.decision = "none";
  reasons.textContent = "";
  document.dispatchEvent(new Event("facelive:pause"));
  try {
    const created = await json(server + "/demo/sessions", { method: "POST" });
    if (!created.resp.ok) {
      const e = (created.data && created.data.error) || {};
      throw new Error(e.message || "cannot create a demo session");
    }
    const { session_id: sessionId, client_token: clientToken } = created.data;
    await faceliveCheck({
      server, sessionId, clientToken,
      onProgress: (stage) => { status.textContent = STAGES[stage] || stage; },
    });
    const headers = { Authorization: "Bearer " + clientToken };
    let answer = null;
    for (let i = 0; i < 120; i++) {
      answer = await json(server + "/demo/sessions/" + encodeURIComponent(sessionId) + "/result",
        { headers });
      if (answer.resp.status !== 202) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    if (!answer || !answer.resp.ok) {
      const e = (answer && answer.data && answer.data.error) || {};
      throw new Error(e.message || "no result");
    }
    const claims = payload(answer.data.token || "");
    const decision = answer.data.decision;
    result.dataset.decision = decision;
    result.textContent = decision === "live" ? "Live" : decision === "spoof" ? "Spoof"
      : "No decision";
    result.hidden = false;
    reasons.textContent = (claims.reasons && claims.reasons.length)
      ? "Reasons: " + claims.reasons.join("; ") : "Every check passed.";
    status.textContent = "Done. The site's backend would get this decision with its API key, " +
      "as a token signed by the server (GET v1/sessions/{id}/result).";
  } catch (err) {
    status.textContent = "The challenge did not complete: " + ((err && err.message) || err);
  } finally {
    button.disabled = false;
    document.dispatchEvent(new Event("facelive:resume"));
  }
}

if (section && body.dataset.demo === "on") {
  section.hidden = false;
  const server = new URL(".", document.baseURI).href.replace(/\/$/, "");
  const button = document.getElementById("challenge-start");
  const status = document.getElementById("challenge-status");
  const result = document.getElementById("challenge-result");
  const reasons = document.getElementById("challenge-reasons");
  button.addEventListener("click", () => run(server, status, result, reasons, button));
}
