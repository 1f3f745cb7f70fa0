// The web page of `seca serve`: plain JavaScript, no build step, nothing from the internet.
// Every URL is relative, so the page also works behind a reverse proxy under a path prefix.
"use strict";

const POLL_MS = 500;          // a followed job's progress
const HEALTH_MS = 10000;      // the header, and whether another client grew the model
const TOKEN_KEY = "seca-serve-token";
const FINISHED = ["done", "failed", "cancelled"];

const $ = (id) => document.getElementById(id);

const state = {
  health: null,
  classes: [],
  job: null,              // the job followed in the Teach panel (its last view)
  pollTimer: null,
  pollTrouble: false,     // the learn alert shows a polling failure (cleared when the server answers again)
  predictRun: 0,          // only the latest predict request's answer is shown
  thumbnails: [],         // object URLs to revoke when new predictions replace them
  rows: 0,                // class rows made so far (for unique ids)
};

// ---- small helpers ---------------------------------------------------------------------------------

/** An element with attributes (or properties: className, textContent, hidden...) and children. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key in node && !key.startsWith("aria") && key !== "style") node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

const percent = (score) => `${(100 * score).toFixed(1)}%`;
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : /(s|sh|ch|x)$/.test(word) ? "es" : "s"}`;
const clock = (seconds) => (seconds ? new Date(seconds * 1000).toLocaleTimeString() : "");

/** A loss as 3 decimals, or in scientific notation when that would read 0.000. */
function lossText(value) {
  const v = Number(value);
  if (!Number.isFinite(v)) return String(value);
  return v === 0 || Math.abs(v) >= 0.01 ? v.toFixed(3) : v.toExponential(2);
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/** Show a sentence in an alert region (role="alert" announces it); an empty one hides it. */
function say(regionId, message) {
  $(regionId).textContent = message || "";
}

class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status;  // 0: no answer (network)
  }
}

/** Calls the API; answers the JSON body, or throws an ApiError whose message is one sentence to show. */
async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { cache: "no-store", ...options });
  } catch (e) {
    throw new ApiError("Could not reach the server (network error): is seca serve still running?");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = null;
  }
  if (!response.ok) {
    const sentence = body && typeof body.error === "string" ? body.error
      : `the server answered ${response.status} ${response.statusText}`.trim();
    throw new ApiError(sentence, response.status);
  }
  if (body === null) throw new ApiError(`the server's answer to ${path} was not JSON`);
  return body;
}

/** Headers for requests that change the model: the token, when the server asks for one. */
function authHeaders() {
  const token = $("token").value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// ---- header: what is served ------------------------------------------------------------------------

async function loadHealth() {
  try {
    const h = await api("health");
    const grown = state.health && (state.health.classes !== h.classes || state.health.tasks !== h.tasks);
    state.health = h;
    say("health-error", "");
    renderHealth(h);
    if (grown) refreshModel();  // another client (or the CLI) taught the model meanwhile
  } catch (e) {
    say("health-error", e.message);
  }
}

function renderHealth(h) {
  $("summary").textContent = `A ${h.method} classifier on ${h.backbone} that knows ` +
    `${plural(h.classes, "class")} from ${plural(h.tasks, "task")}, and keeps learning while it serves.`;
  $("h-method").textContent = h.method;
  $("h-backbone").textContent = h.backbone;
  $("h-classes").textContent = h.classes;
  $("h-tasks").textContent = h.tasks;
  $("h-jobs").textContent = h.running ? `1 running, ${h.queued} queued` : `${h.queued} queued`;
  $("h-version").textContent = h.version;
  if (h.epochs) $("epochs").placeholder = `default: ${h.epochs}`;
  $("h-token").textContent = h.token_required ? "needs the token" : "open";
  $("health").hidden = false;
  $("token-field").hidden = !h.token_required;
}

/** Classes, history and jobs: after a job finishes, or when the header sees the model grown. */
function refreshModel() {
  loadClasses();
  loadHistory();
  loadJobs();
}

// ---- predict -----------------------------------------------------------------------------------------

async function predict(event) {
  if (event) event.preventDefault();
  say("predict-error", "");
  const files = Array.from($("predict-files").files);
  const topK = Number($("top-k").value || 1);
  if (!files.length) return say("predict-error", "Choose one or more images to classify first.");
  if (!Number.isInteger(topK) || topK < 1) return say("predict-error", "Top classes must be a whole number, 1 or more.");

  const run = ++state.predictRun;
  const form = new FormData();
  for (const file of files) form.append("images", file, file.name);
  form.append("top_k", String(topK));
  $("predict-button").disabled = true;
  $("predict-status").textContent = `Classifying ${plural(files.length, "image")}…`;
  try {
    const answer = await api("predict", { method: "POST", body: form });
    if (run === state.predictRun) renderPredictions(files, answer.predictions);
  } catch (e) {
    if (run === state.predictRun) {
      say("predict-error", e.message);
      $("predict-status").textContent = "";
    }
  } finally {
    if (run === state.predictRun) $("predict-button").disabled = false;
  }
}

function renderPredictions(files, predictions) {
  state.thumbnails.forEach((url) => URL.revokeObjectURL(url));
  state.thumbnails = [];
  const list = $("predictions");
  list.replaceChildren(...predictions.map((p, k) => predictionItem(files[k], p)));
  $("predict-status").textContent = `${plural(predictions.length, "image")} classified.`;
}

function predictionItem(file, p) {
  const url = file ? URL.createObjectURL(file) : null;
  if (url) state.thumbnails.push(url);
  const bars = el("ol", { className: "bars" }, p.top_k.map((t) =>
    el("li", {},
      el("span", { className: "bar-label", textContent: t.label }),
      el("span", { className: "bar", "aria-hidden": "true" },
        el("span", { className: "bar-fill", style: `width: ${Math.max(0, Math.min(100, 100 * t.score))}%` })),
      el("span", { className: "bar-value", textContent: percent(t.score) }))));
  return el("li", { className: "prediction" },
    url ? el("img", { src: url, alt: "", className: "thumb", width: 96, height: 96 }) : el("div", { className: "thumb" }),
    el("div", { className: "prediction-body" },
      el("p", { className: "file", textContent: p.file }),
      el("p", {}, el("strong", { className: "top-label", textContent: p.label }), ` ${percent(p.score)}`),
      bars));
}

// ---- teach: the class rows ---------------------------------------------------------------------------

function addClassRow(focus = false) {
  const row = $("class-row-template").content.firstElementChild.cloneNode(true);
  const n = ++state.rows;
  for (const input of row.querySelectorAll("[data-id]")) input.id = `class-${n}-${input.dataset.id}`;
  for (const label of row.querySelectorAll("[data-for]")) label.htmlFor = `class-${n}-${label.dataset.for}`;
  row.querySelector(".remove-class").addEventListener("click", () => removeClassRow(row));
  row.querySelectorAll("[data-drop]").forEach((zone) => makeDropZone(zone, zone.querySelector("input[type=file]")));
  $("class-rows").append(row);
  numberClassRows();
  if (focus) row.querySelector(".class-name").focus();
}

function removeClassRow(row) {
  row.remove();
  numberClassRows();
  $("add-class").focus();
}

/** Legends "Class 1, 2, ..." and the remove buttons' names follow the rows' order; one row stays. */
function numberClassRows() {
  const rows = $("class-rows").querySelectorAll(".class-row");
  rows.forEach((row, k) => {
    row.querySelector(".class-number").textContent = k + 1;
    const remove = row.querySelector(".remove-class");
    remove.hidden = rows.length === 1;
    remove.setAttribute("aria-label", `Remove class ${k + 1}`);
  });
}

function resetLearnForm() {
  $("class-rows").replaceChildren();
  addClassRow();
  $("epochs").value = "";
}

/** The task as multipart form data, or a sentence saying what is missing (and the field to fix). */
function learnForm() {
  const form = new FormData();
  const seen = new Set();
  let tests = 0;
  for (const [k, row] of Array.from($("class-rows").querySelectorAll(".class-row")).entries()) {
    const nameInput = row.querySelector(".class-name");
    const name = nameInput.value.trim();
    const images = Array.from(row.querySelector(".class-images").files);
    if (!name) return { problem: `Class ${k + 1} needs a name.`, field: nameInput };
    if (seen.has(name.toLowerCase())) return { problem: `The class '${name}' is named twice.`, field: nameInput };
    if (!images.length) {
      return { problem: `The class '${name}' needs training images.`, field: row.querySelector(".class-images") };
    }
    seen.add(name.toLowerCase());
    for (const file of images) {
      form.append("images", file, file.name);
      form.append("labels", name);
    }
    for (const file of row.querySelector(".class-tests").files) {
      form.append("eval_images", file, file.name);
      form.append("eval_labels", name);
      tests += 1;
    }
  }
  const epochs = $("epochs").value.trim();
  if (epochs) {
    if (!/^[1-9][0-9]*$/.test(epochs)) return { problem: "Epochs must be a whole number, 1 or more.", field: $("epochs") };
    form.append("epochs", epochs);
  }
  return { form, tests };
}

async function learn(event) {
  event.preventDefault();
  say("learn-error", "");
  const { form, problem, field } = learnForm();
  if (problem) {
    say("learn-error", problem);
    if (field) field.focus();
    return;
  }
  $("learn-button").disabled = true;
  try {
    const answer = await api("learn", { method: "POST", body: form, headers: authHeaders() });
    follow({ id: answer.job, state: answer.state, classes: answer.classes, step: 0, steps: 0, losses: {} });
    loadJobs();
  } catch (e) {
    say("learn-error", e.message);
  } finally {
    $("learn-button").disabled = false;
  }
}

// ---- teach: following a job --------------------------------------------------------------------------

/** Show ``job`` in the Teach panel and poll it until it finishes. */
function follow(job) {
  clearTimeout(state.pollTimer);
  state.job = null;
  renderJob(job);
  if (!FINISHED.includes(job.state)) state.pollTimer = setTimeout(poll, POLL_MS);
}

async function poll() {
  const id = state.job && state.job.id;
  if (!id) return;
  try {
    const job = await api(`jobs/${encodeURIComponent(id)}`);
    if (!state.job || state.job.id !== id) return;  // another job is followed now
    const before = state.job.state;
    renderJob(job);
    if (job.state !== before) {
      loadJobs();
      loadHealth();  // the header's job counts
    }
    if (state.pollTrouble) say("learn-error", "");  // the server answers again: clear only polling's own line
    state.pollTrouble = false;
    if (FINISHED.includes(job.state)) return finished(job);
  } catch (e) {
    if (e.status === 404) return say("learn-error", e.message);  // the server forgot it (restarted): stop
    state.pollTrouble = true;
    say("learn-error", `${e.message} (still trying)`);  // a network blip: keep polling
  }
  state.pollTimer = setTimeout(poll, POLL_MS);
}

function finished(job) {
  loadHealth();
  refreshModel();
  if (job.state === "done") resetLearnForm();
}

function renderJob(job) {
  const changed = !state.job || state.job.state !== job.state || state.job.id !== job.id;
  state.job = job;
  const panel = $("job");
  panel.hidden = false;
  panel.dataset.state = job.state;
  $("job-id").textContent = job.id;
  $("job-badge").textContent = job.state;
  $("job-badge").className = `badge state-${job.state}`;
  $("job-classes").textContent = (job.classes || []).join(", ");
  if (changed) $("job-state").textContent = stateSentence(job);  // role=status: announced on change only

  const progress = $("job-progress");
  progress.max = Math.max(job.steps || 0, 1);
  progress.value = job.state === "done" ? progress.max : Math.min(job.step || 0, progress.max);
  progress.hidden = job.state === "failed" || job.state === "cancelled";

  const detail = [];
  if (job.steps) detail.push(`step ${job.step} of ${job.steps}`);
  if (job.epochs) detail.push(`epoch ${job.epoch || 0} of ${job.epochs}`);
  for (const [name, value] of Object.entries(job.losses || {})) detail.push(`${name} ${lossText(value)}`);
  if (job.images_per_s) detail.push(`${job.images_per_s.toFixed(1)} images/s`);
  $("job-detail").textContent = detail.join(" · ");

  $("job-result").textContent = resultSentence(job);
  $("job-result").className = `job-result ${job.state === "failed" ? "failed" : ""}`;
  $("job-cancel").hidden = FINISHED.includes(job.state);
}

function stateSentence(job) {
  const words = {
    queued: "Queued: waiting for its turn.", training: "Training…", evaluating: "Evaluating on the test images…",
    saving: "Saving the model…", done: "Done: the model serves the new classes.", failed: "Failed: the model is unchanged.",
    cancelled: "Cancelled: the model is unchanged.",
  };
  return words[job.state] || `State: ${job.state}.`;
}

function resultSentence(job) {
  if (job.state === "failed") return job.error || "The job failed.";
  if (job.state !== "done") return "";
  const took = job.started && job.finished ? ` in ${duration(job.finished - job.started)}` : "";
  const learned = `Learned ${plural(job.classes.length, "new class")} from ${plural(job.images, "image")}${took}.`;
  const ev = job.entry && job.entry.eval;
  if (!ev) return `${learned} No test images were given, so no accuracy was measured.`;
  return `${learned} Accuracy ${ev.accuracy.toFixed(1)}% on ${plural(ev.images, "test image")} ` +
    `of ${plural(ev.classes, "class")}.`;
}

async function cancelJob() {
  if (!state.job) return;
  say("learn-error", "");
  try {
    const job = await api(`jobs/${encodeURIComponent(state.job.id)}`, { method: "DELETE", headers: authHeaders() });
    renderJob(job);
    loadJobs();
  } catch (e) {
    say("learn-error", e.message);
  }
}

// ---- classes -----------------------------------------------------------------------------------------

async function loadClasses() {
  try {
    const answer = await api("classes");
    state.classes = answer.classes;
    say("classes-error", "");
    renderClasses(answer.tasks);
  } catch (e) {
    say("classes-error", e.message);
  }
}

function renderClasses(tasks) {
  const box = $("classes");
  if (!tasks.length) {
    box.replaceChildren(el("p", { className: "empty", textContent: "No class yet: teach the first task." }));
    return;
  }
  box.replaceChildren(el("ol", { className: "tasks" }, tasks.map((names, t) =>
    el("li", {},
      el("span", { className: "task-name", textContent: `Task ${t + 1}` }),
      el("ul", { className: "class-list", "aria-label": `Classes of task ${t + 1}` },
        names.map((name) => el("li", { className: "class-chip", textContent: name })))))));
}

// ---- history -----------------------------------------------------------------------------------------

async function loadHistory() {
  try {
    const answer = await api("history");
    say("history-error", "");
    renderHistory(answer.history);
  } catch (e) {
    say("history-error", e.message);
  }
}

const accuracyOf = (entry) => (entry.eval && typeof entry.eval.accuracy === "number" ? entry.eval.accuracy : null);

function renderHistory(history) {
  $("history-chart").replaceChildren(historyChart(history));
  const table = $("history-table");
  table.hidden = !history.length;
  table.tBodies[0].replaceChildren(...history.map((entry, k) => {
    const acc = accuracyOf(entry);
    const perTask = entry.eval && Array.isArray(entry.eval.per_task)
      ? entry.eval.per_task.map((a) => (typeof a === "number" ? a.toFixed(1) : "–")).join(" · ") : "";
    return el("tr", {},
      el("th", { scope: "row", textContent: (entry.task ?? k) + 1 }),
      el("td", { textContent: (entry.classes || []).join(", "), title: entry.data || "" }),
      el("td", { className: "num", textContent: entry.images ?? "" }),
      el("td", { className: "num", textContent: acc === null ? "not measured" : `${acc.toFixed(1)}%` }),
      el("td", { className: "num", textContent: perTask }),
      el("td", { className: "num", textContent: duration(entry.seconds) }));
  }));
}

/** A small SVG line chart of the accuracy after each task; tasks learned without test images leave a gap. */
function historyChart(history) {
  const chart = historyLines(history);
  const gaps = history.filter((entry) => accuracyOf(entry) === null).length;
  if (!gaps || chart.tagName === "P") return chart;
  const note = `${plural(gaps, "task")} learned without test images: no point drawn for ${gaps === 1 ? "it" : "them"}.`;
  return el("figure", { className: "chart-figure" }, chart, el("figcaption", { className: "hint", textContent: note }));
}

function historyLines(history) {
  const points = history.map((entry, k) => ({ task: k + 1, acc: accuracyOf(entry) }));
  if (!history.length) return el("p", { className: "empty", textContent: "No task learned yet." });
  if (points.every((p) => p.acc === null)) {
    return el("p", { className: "empty",
      textContent: "No task was evaluated: give test images when teaching to see the accuracy here." });
  }
  const W = 360, H = 180, left = 40, right = 12, top = 12, bottom = 32;
  const x = (task) => (history.length === 1 ? (left + W - right) / 2
    : left + ((task - 1) * (W - left - right)) / (history.length - 1));
  const y = (acc) => top + ((100 - acc) * (H - top - bottom)) / 100;
  const NS = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs = {}, text) => {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const measured = points.filter((p) => p.acc !== null);
  const described = measured.map((p) => `task ${p.task}: ${p.acc.toFixed(1)}%`).join(", ");
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "history-svg",
    "aria-label": `Accuracy after each task: ${described}` });
  for (const acc of [0, 50, 100]) {  // grid and y axis
    chart.append(svg("line", { x1: left, x2: W - right, y1: y(acc), y2: y(acc), class: "grid" }));
    chart.append(svg("text", { x: left - 6, y: y(acc) + 4, "text-anchor": "end", class: "tick" }, `${acc}%`));
  }
  for (const p of points) {  // x axis
    chart.append(svg("text", { x: x(p.task), y: H - bottom + 16, "text-anchor": "middle", class: "tick" }, p.task));
  }
  chart.append(svg("text", { x: (left + W - right) / 2, y: H - 2, "text-anchor": "middle", class: "axis" }, "task"));
  let run = [];  // consecutive measured points are joined; a gap breaks the line
  const flush = () => {
    if (run.length > 1) {
      chart.append(svg("polyline", { points: run.map((p) => `${x(p.task)},${y(p.acc)}`).join(" "), class: "line" }));
    }
    run = [];
  };
  for (const p of points) (p.acc === null ? flush() : run.push(p));
  flush();
  for (const p of measured) {
    const dot = svg("circle", { cx: x(p.task), cy: y(p.acc), r: 4, class: "dot" });
    dot.append(svg("title", {}, `task ${p.task}: ${p.acc.toFixed(1)}%`));
    chart.append(dot);
  }
  return chart;
}

// ---- jobs --------------------------------------------------------------------------------------------

async function loadJobs() {
  try {
    const answer = await api("jobs");
    say("jobs-error", "");
    renderJobs(answer.jobs);
    // After a reload, keep following a job still in progress.
    const open = answer.jobs.filter((j) => !FINISHED.includes(j.state));
    if (!state.job && open.length) follow(open[open.length - 1]);
  } catch (e) {
    say("jobs-error", e.message);
  }
}

function renderJobs(jobs) {
  const list = $("jobs");
  if (!jobs.length) {
    list.replaceChildren(el("li", { className: "empty", textContent: "No job since the server started." }));
    return;
  }
  list.replaceChildren(...jobs.slice(-10).reverse().map((job) => {
    const acc = job.entry ? accuracyOf(job.entry) : null;
    return el("li", {},
      el("span", { className: `badge state-${job.state}`, textContent: job.state }),
      el("span", { className: "job-classes", textContent: job.classes.join(", ") }),
      el("span", { className: "job-meta",
        textContent: [clock(job.created), acc === null ? "" : `accuracy ${acc.toFixed(1)}%`].filter(Boolean).join(" · ") }),
      job.error ? el("span", { className: "job-error", textContent: job.error }) : null);
  }));
}

// ---- drag and drop -----------------------------------------------------------------------------------

/** Files dropped on ``zone`` go to its file ``input``, as if chosen. */
function makeDropZone(zone, input) {
  const over = (on) => (e) => {
    e.preventDefault();
    zone.classList.toggle("dragging", on);
  };
  zone.addEventListener("dragenter", over(true));
  zone.addEventListener("dragover", over(true));
  zone.addEventListener("dragleave", over(false));
  zone.addEventListener("drop", (e) => {
    over(false)(e);
    if (!e.dataTransfer || !e.dataTransfer.files.length) return;
    input.files = e.dataTransfer.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });
}

// ---- start -------------------------------------------------------------------------------------------

function start() {
  const token = $("token");
  token.value = sessionStorage.getItem(TOKEN_KEY) || "";
  token.addEventListener("input", () => sessionStorage.setItem(TOKEN_KEY, token.value));

  $("predict-form").addEventListener("submit", predict);
  $("predict-files").addEventListener("change", () => predict());  // choosing (or dropping) images predicts at once
  $("top-k").addEventListener("change", () => $("predict-files").files.length && predict());
  makeDropZone(document.querySelector("[data-drop-for]"), $("predict-files"));

  $("learn-form").addEventListener("submit", learn);
  $("add-class").addEventListener("click", () => addClassRow(true));
  $("job-cancel").addEventListener("click", cancelJob);
  resetLearnForm();

  // A file dropped outside a drop zone would replace the page: ignore it instead.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());

  loadHealth();
  refreshModel();
  setInterval(loadHealth, HEALTH_MS);
}

document.addEventListener("DOMContentLoaded", start);
