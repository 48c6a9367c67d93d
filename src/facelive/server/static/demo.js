// The screen-flash challenge demo (served with `facelive serve --demo` only), at the top of the
// page. It creates a demo session (POST demo/sessions: no API key is involved), pauses the page's
// single-image loop (app.js) and runs faceliveCheck() from facelive.js, which explains and asks
// before the camera, plays the colours with progress and Cancel, and shows the outcome in plain
// words. Unlike a real site, the demo asks for its own verdict (GET demo/sessions/{id}/result,
// demo sessions only) and also shows it, with the reasons, at the top of the page.
import { faceliveCheck, outcomeText } from "./facelive.js";

const body = document.body;
const section = document.getElementById("challenge");

function payload(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
  } catch (err) {
    return {};
  }
}

async function json(url, options) {
  let resp;
  try {
    resp = await fetch(url, { cache: "no-store", ...options });
  } catch (err) {
    throw Object.assign(new Error("This page cannot reach the verification service. Check " +
      "your connection and try again."), { code: "network" });
  }
  let data = null;
  try { data = await resp.json(); } catch (err) { data = null; }
  return { resp, data };
}

function serverError(answer, fallback) {
  const e = (answer && answer.data && answer.data.error) || {};
  return Object.assign(new Error(e.message || fallback),
    { code: e.code || "error", status: answer ? answer.resp.status : 0 });
}

// The demo's stand-in for a site's backend: poll the demo result (about a minute at most).
async function demoResult(server, sessionId, clientToken, reasons) {
  const headers = { Authorization: "Bearer " + clientToken };
  for (let i = 0; i < 120; i++) {
    const answer = await json(server + "/demo/sessions/" + encodeURIComponent(sessionId) +
      "/result", { headers });
    if (answer.resp.status === 202) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      continue;
    }
    if (!answer.resp.ok) throw serverError(answer, "no result");
    reasons.push(...(payload(answer.data.token || "").reasons || []));
    return answer.data.decision;
  }
  throw new Error("no result in time");
}

function show(ui, kind, title, advice, reasons) {
  ui.result.dataset.decision = kind;
  ui.result.textContent = title;
  ui.result.hidden = false;
  ui.advice.textContent = advice || "";
  ui.advice.hidden = !advice;
  ui.reasons.replaceChildren(...reasons.map((r) => {
    const li = document.createElement("li");
    li.textContent = r;
    return li;
  }));
  ui.why.hidden = !reasons.length;
  ui.result.scrollIntoView({ block: "nearest" });
  ui.result.focus({ preventScroll: true });
}

async function run(server, ui) {
  ui.button.disabled = true;
  ui.result.hidden = true;
  ui.advice.hidden = true;
  ui.why.hidden = true;
  ui.status.textContent = "";
  document.dispatchEvent(new Event("facelive:pause"));
  const reasons = [];
  try {
    const created = await json(server + "/demo/sessions", { method: "POST" });
    if (!created.resp.ok) throw serverError(created, "cannot create a demo session");
    const { session_id: sessionId, client_token: clientToken } = created.data;
    const out = await faceliveCheck({
      server, sessionId, clientToken,
      result: () => demoResult(server, sessionId, clientToken, reasons),
    });
    const [title, advice] = outcomeText(out.decision);
    show(ui, out.decision, title, advice, reasons);
    ui.status.textContent = "A real site's backend gets this decision with its API key, as a " +
      "token signed by the server (GET v1/sessions/{id}/result).";
  } catch (err) {
    const [title, advice] = outcomeText(err);
    show(ui, err.code === "cancelled" ? "cancelled" : "error", title, advice, reasons);
  } finally {
    ui.button.disabled = false;
    document.dispatchEvent(new Event("facelive:resume"));
  }
}

if (section && body.dataset.demo === "on") {
  section.hidden = false;
  document.getElementById("single-title").hidden = false;
  document.getElementById("single-hint").textContent = "Each camera picture is judged on its " +
    "own, about 3 a second: it says whether a picture looks like a live face, not that anyone " +
    "is in front of the camera. It pauses while the challenge runs.";
  const server = new URL(".", document.baseURI).href.replace(/\/$/, "");
  const ui = {
    button: document.getElementById("challenge-start"),
    status: document.getElementById("challenge-status"),
    result: document.getElementById("challenge-result"),
    advice: document.getElementById("challenge-advice"),
    why: document.getElementById("challenge-why"),
    reasons: document.getElementById("challenge-reasons"),
  };
  ui.button.addEventListener("click", () => run(server, ui));
}
