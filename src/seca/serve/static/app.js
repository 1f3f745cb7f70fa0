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
  predicted: null,        // the predictions on screen: {files, topK, version} (version: the model that made them)
  rows: 0,                // class rows made so far (for unique ids)
  history: null,          // the last /history answer drawn: {history, matrix}
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

// Numbers: one rule for the whole page. Every percentage has 2 decimals, in text, bars, chart and tables alike
// (as the server rounds them, and as its sentences write them); a loss has 3 decimals (its exact value on hover).
const percent = (score) => `${(100 * score).toFixed(2)}%`;        // a probability 0..1, in %
const pct = (value) => `${Number(value).toFixed(2)}%`;            // a value already in %
const isNumber = (value) => typeof value === "number" && Number.isFinite(value);
/** Percentage points with as few digits as they need, at most 2 decimals: 0.02 -> "2", 0.0053 -> "0.53". */
const points = (fraction) => String(Number((100 * fraction).toFixed(2)));
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : /(s|sh|ch|x)$/.test(word) ? "es" : "s"}`;
const clock = (seconds) => (seconds ? new Date(seconds * 1000).toLocaleTimeString() : "");

/** A loss as 3 decimals, or in scientific notation when that would read 0.000. */
function lossText(value) {
  const v = Number(value);
  if (!Number.isFinite(v)) return String(value);
  return v === 0 || Math.abs(v) >= 0.01 ? v.toFixed(3) : v.toExponential(2);
}

/** A loss to 3 significant digits, in scientific notation when small or large (the hover text). */
function lossExact(value) {
  const v = Number(value);
  if (!Number.isFinite(v)) return String(value);
  if (v === 0 || (Math.abs(v) >= 0.001 && Math.abs(v) < 1000)) return String(Number(v.toPrecision(3)));
  return v.toExponential(2).replace("e+", "e");
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
    const before = state.health;
    const grown = before && (before.model_version !== h.model_version ||
      before.classes !== h.classes || before.tasks !== h.tasks);
    state.health = h;
    say("health-error", "");
    renderHealth(h);
    markStale();
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
  const kept = h.kept_tests;
  $("h-kept").textContent = kept && kept.images
    ? `${plural(kept.images, "image")} of ${plural(kept.classes, "class")}` : "none";
  $("h-kept").title = "Test images kept with the model: every task taught from now on is measured on them too";
  $("h-chance").textContent = isNumber(h.chance) ? pct(h.chance) : "–";
  $("h-chance").title = "What guessing among the classes scores: 100% divided by the number of classes";
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

/** Classify the chosen images (or ``again``: the images of the predictions on screen, with their top classes). */
async function predict(event, again = false) {
  if (event) event.preventDefault();
  say("predict-error", "");
  const files = again && state.predicted ? state.predicted.files : Array.from($("predict-files").files);
  const topK = again && state.predicted ? state.predicted.topK : Number($("top-k").value || 1);
  if (!files.length) return say("predict-error", "Choose one or more images to classify first.");
  if (!Number.isInteger(topK) || topK < 1) return say("predict-error", "Top classes must be a whole number, 1 or more.");

  const run = ++state.predictRun;
  const form = new FormData();
  for (const file of files) form.append("images", file, file.name);
  form.append("top_k", String(topK));
  $("predict-button").disabled = true;
  $("predict-again").disabled = true;
  $("predict-status").textContent = `Classifying ${plural(files.length, "image")}…`;
  try {
    const answer = await api("predict", { method: "POST", body: form });
    if (run === state.predictRun) renderPredictions(files, topK, answer);
  } catch (e) {
    if (run === state.predictRun) {
      say("predict-error", e.message);
      $("predict-status").textContent = "";
    }
  } finally {
    if (run === state.predictRun) {
      $("predict-button").disabled = false;
      $("predict-again").disabled = false;
    }
  }
}

function renderPredictions(files, topK, answer) {
  state.thumbnails.forEach((url) => URL.revokeObjectURL(url));
  state.thumbnails = [];
  // The model that answered: the answer says which; an older server's answer is taken as the one in the header.
  const version = answer.model_version ?? (state.health && state.health.model_version);
  state.predicted = { files, topK, version };
  const margin = isNumber(answer.undecided_margin) ? answer.undecided_margin : null;
  const predictions = answer.predictions;
  $("predictions").replaceChildren(...predictions.map((p, k) => predictionItem(files[k], p, margin)));
  const undecided = predictions.filter((p) => p.undecided).length;
  $("predict-status").textContent = `${plural(predictions.length, "image")} classified` +
    (undecided ? `, ${undecided} of them undecided.` : ".");
  markStale();
}

/** The predictions on screen are marked stale when the served model is no longer the one that made them. */
function markStale() {
  const made = state.predicted && state.predicted.version;
  const now = state.health && state.health.model_version;
  const stale = Boolean(made && now && made !== now);
  $("predict-stale").hidden = !stale;
  $("predictions").classList.toggle("stale", stale);
  for (const item of $("predictions").querySelectorAll(".prediction")) item.classList.toggle("stale", stale);
}

function predictionItem(file, p, margin) {
  const url = file ? URL.createObjectURL(file) : null;
  if (url) state.thumbnails.push(url);
  const bars = el("ol", { className: "bars" }, p.top_k.map((t) =>
    el("li", {},
      el("span", { className: "bar-label", textContent: t.label, title: t.label }),
      el("span", { className: "bar", "aria-hidden": "true" },
        el("span", { className: "bar-fill", style: `width: ${Math.max(0, Math.min(100, 100 * t.score))}%` })),
      el("span", { className: "bar-value", textContent: percent(t.score) }))));
  const undecided = Boolean(p.undecided);
  // An undecided answer is not shown as if certain: a badge, no bold, and the reason in words.
  const top = undecided
    ? el("p", { className: "top" },
      el("span", { className: "badge undecided-badge", textContent: "undecided" }), " ",
      el("span", { className: "top-label", textContent: p.label }), ` ${percent(p.score)}`)
    : el("p", { className: "top" }, el("strong", { className: "top-label", textContent: p.label }), ` ${percent(p.score)}`);
  const within = margin === null ? "" : ` within ${points(margin)} points`;
  const note = undecided
    ? el("p", { className: "undecided-note",
      textContent: `undecided: its top two classes are${within || " too close"} ` +
        `(${isNumber(p.margin) ? `${points(p.margin)} points apart` : "nearly tied"}); the model cannot tell them apart.` })
    : null;
  return el("li", { className: `prediction${undecided ? " undecided" : ""}` },
    url ? el("img", { src: url, alt: "", className: "thumb", width: 96, height: 96 }) : el("div", { className: "thumb" }),
    el("div", { className: "prediction-body" },
      el("p", { className: "file", textContent: p.file, title: p.file }),
      top, note, bars));
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
  if (tests) form.append("keep_eval", $("keep-eval").checked ? "true" : "false");
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
  // Each loss term in plain words (the server's), its name and exact value on hover.
  const words = job.loss_words || {};
  for (const [name, value] of Object.entries(job.losses || {})) {
    detail.push(el("span", { className: "loss", "data-term": name, title: `${name} ${lossExact(value)}` },
      `${words[name] || name} ${lossText(value)}`));
  }
  if (job.images_per_s) detail.push(`${job.images_per_s.toFixed(1)} images/s`);
  $("job-detail").replaceChildren(...detail.flatMap((part, k) => (k ? [" · ", part] : [part])));

  const verdict = jobVerdict(job);
  panel.dataset.verdict = verdict;
  $("job-result").replaceChildren(...resultParts(job));
  $("job-result").className = `job-result${job.state === "failed" ? " failed" : ""}${verdict ? ` verdict-${verdict}` : ""}`;
  $("job-cancel").hidden = FINISHED.includes(job.state);
}

/** How a done job's result reads against its yardsticks: "warning" (the server's), "ok", or "unmeasured". */
function jobVerdict(job) {
  if (job.state !== "done") return "";
  const ev = job.entry && job.entry.eval;
  if (!ev || !isNumber(ev.accuracy)) return "unmeasured";
  return ev.warning ? "warning" : "ok";
}

/** "Accuracy 1.43% — chance 14.29%, always-the-most-frequent-class 50.00%": what a number means beside what
guessing scores. Old entries may lack the yardsticks: those missing are left out. */
function yardsticks(ev) {
  const beside = [];
  if (isNumber(ev.chance)) beside.push(`chance ${pct(ev.chance)}`);
  if (isNumber(ev.majority)) beside.push(`always-the-most-frequent-class ${pct(ev.majority)}`);
  return `Accuracy ${pct(ev.accuracy)}${beside.length ? ` — ${beside.join(", ")}` : ""}.`;
}

function stateSentence(job) {
  if (jobVerdict(job) === "warning") return "Done, with a warning: the model serves the new classes, but read the result.";
  const words = {
    queued: "Queued: waiting for its turn.", training: "Training…", evaluating: "Evaluating on the test images…",
    saving: "Saving the model…", done: "Done: the model serves the new classes.", failed: "Failed: the model is unchanged.",
    cancelled: "Cancelled: the model is unchanged.",
  };
  return words[job.state] || `State: ${job.state}.`;
}

/** The result box of a finished job: what was learned, and the accuracy beside chance and the majority class. */
function resultParts(job) {
  if (job.state === "failed") return [el("p", { textContent: job.error || "The job failed." })];
  if (job.state !== "done") return [];
  const took = job.started && job.finished ? ` in ${duration(job.finished - job.started)}` : "";
  const learned = el("p", { className: "learned",
    textContent: `Learned ${plural(job.classes.length, "new class")} from ${plural(job.images, "image")}${took}.` });
  const ev = job.entry && job.entry.eval;
  if (!ev || !isNumber(ev.accuracy)) {
    return [learned, el("p", { className: "unmeasured",
      textContent: "No test images were given, so no accuracy was measured: add test images when teaching to " +
        "measure it." })];
  }
  const perTask = Array.isArray(ev.per_task) ? ev.per_task : [];
  const newTask = perTask.length ? perTask[perTask.length - 1] : null;
  const kept = isNumber(ev.kept) && ev.kept ? ` (${ev.kept} of them kept from earlier tasks)` : "";
  const among = isNumber(ev.known) ? `; the model chooses among ${plural(ev.known, "class")}` : "";
  const measured = `Measured on ${plural(ev.images, "test image")} of ${plural(ev.classes, "class")}${kept}${among}.` +
    (isNumber(newTask) ? ` The new task's own test images: ${pct(newTask)}.` : "");
  const parts = [learned, el("p", { className: "yardsticks", textContent: yardsticks(ev) }),
    el("p", { className: "measured", textContent: measured })];
  if (ev.warning) {
    parts.push(
      el("p", { className: "warning-text" }, el("span", { "aria-hidden": "true", textContent: "⚠ " }), ev.warning),
      el("p", { className: "try", textContent: "What to try:" }),
      el("ul", { className: "try-list" },
        el("li", { textContent: "another backbone: a larger or better pretrained CLIP (seca new --backbone)" }),
        el("li", { textContent: "more training images per class" }),
        el("li", { textContent: "more epochs (the Epochs field above)" }),
        el("li", { textContent: "and check that the test images are of the classes they are labelled" })));
  }
  return parts;
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
    renderHistory(answer.history, answer.matrix || matrixFrom(answer.history));
  } catch (e) {
    say("history-error", e.message);
  }
}

const accuracyOf = (entry) => (entry.eval && isNumber(entry.eval.accuracy) ? entry.eval.accuracy : null);
const numberOr = (value) => (isNumber(value) ? value : null);

/** The accuracy matrix from the entries alone (an older server's /history has no "matrix"). */
function matrixFrom(history) {
  const accMatrix = history.map((entry, s) => {
    const row = entry.eval && Array.isArray(entry.eval.per_task) ? entry.eval.per_task : [];
    return Array.from({ length: s + 1 }, (_, j) => numberOr(row[j]));
  });
  return {
    acc_matrix: accMatrix,
    acc_per_step: accMatrix.map((row, s) => (row.every(isNumber) ? accuracyOf(history[s]) : null)),
    chance: history.map((entry) => numberOr(entry.eval && entry.eval.chance)),
    majority: history.map((entry) => numberOr(entry.eval && entry.eval.majority)),
  };
}

function renderHistory(history, matrix) {
  state.history = { history, matrix };
  $("history-chart").replaceChildren(historyChart(history, matrix));
  const table = $("history-table");
  table.hidden = !history.length;
  const rows = matrix.acc_matrix || [];
  table.tBodies[0].replaceChildren(...history.map((entry, k) => {
    const step = Number.isInteger(entry.task) ? entry.task : k;
    const ev = entry.eval || {};
    const acc = accuracyOf(entry);
    const chance = numberOr(ev.chance) ?? numberOr((matrix.chance || [])[step]);
    const majority = numberOr(ev.majority) ?? numberOr((matrix.majority || [])[step]);
    const row = rows[step] || [];
    // the accuracy, and beside it what guessing scores (chance; the majority class on hover)
    const accuracy = el("td", { className: "num accuracy" },
      el("span", { className: "value", textContent: acc === null ? "not measured" : pct(acc) }));
    if (ev.warning) {
      accuracy.append(" ", el("span", { className: "warn-mark", title: ev.warning, role: "img",
        "aria-label": `warning: ${ev.warning}`, textContent: "⚠" }));
    }
    if (chance !== null) {
      accuracy.append(el("span", { className: "chance", textContent: `chance ${pct(chance)}`,
        title: majority === null ? "" : `always answering the most frequent class: ${pct(majority)}` }));
    }
    return el("tr", { className: ev.warning ? "warned" : null },
      el("th", { scope: "row", textContent: step + 1 }),
      el("td", { className: "names", textContent: (entry.classes || []).join(", "), title: entry.data || "" }),
      accuracy,
      el("td", { className: "num per-task" }, row.flatMap((a, j) => [j ? " · " : "",
        el("span", { className: "cell", title: `task ${j + 1}'s test images after task ${step + 1}`,
          textContent: isNumber(a) ? a.toFixed(2) : "–" })])),
      el("td", { className: "num", textContent: entry.images ?? "" }),
      el("td", { className: "num", textContent: duration(entry.seconds) }));
  }));
}

const SVG_NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) if (value !== null && value !== undefined) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** An SVG group of ``children`` (nodes, or arrays of them). */
function group(attrs, ...children) {
  const node = svg("g", attrs);
  node.append(...children.flat());
  return node;
}

const SERIES_COLOURS = 8;  // style.css's --series-0 ... --series-7, used in turn

/** The history as a chart of the accuracy matrix: one line per task (its accuracy on its own test images after
each later task), a thicker line for all the classes seen so far, and chance dashed. A line joins values of one
test set only, and breaks where a value is missing. */
function historyChart(history, matrix) {
  const rows = matrix.acc_matrix || [];
  const steps = rows.length;
  if (!history.length || !steps) return el("p", { className: "empty", textContent: "No task learned yet." });
  const all = Array.from({ length: steps }, (_, s) => numberOr((matrix.acc_per_step || [])[s]));
  const chance = Array.from({ length: steps }, (_, s) => numberOr((matrix.chance || [])[s]));
  const tasks = Array.from({ length: steps }, (_, j) =>
    Array.from({ length: steps }, (_, s) => (s >= j ? numberOr((rows[s] || [])[j]) : null)));
  if (!tasks.some((line) => line.some(isNumber)) && !all.some(isNumber)) {
    return el("p", { className: "empty",
      textContent: "No accuracy measured yet: teach a task with test images (each class's \"Test images\") to " +
        "see it here, and keep them with the model to see it again after every later task." });
  }

  // one unit of the drawing is about one pixel on screen, whatever the width: the text stays readable
  const W = Math.round(Math.max(260, Math.min(560, $("history-chart").clientWidth || 360)));
  const H = 200, left = 40, right = 10, top = 10, bottom = 34;
  const span = (W - left - right) / Math.max(steps - 1, 1);
  const x = (s) => (steps === 1 ? (left + W - right) / 2 : left + s * span);
  const y = (acc) => top + ((100 - acc) * (H - top - bottom)) / 100;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "history-svg" });
  const title = "Accuracy after each task, on each task's test images";
  const said = (values) => values.map((v) => (v === null ? "none" : pct(v))).join(", ");
  const description = [
    ...tasks.map((line, j) => `task ${j + 1}'s test images after tasks ${j + 1} to ${steps}: ${said(line.slice(j))}`),
    `all classes seen so far: ${said(all)}`,
    `chance: ${said(chance)}`,
  ].join("; ");
  chart.setAttribute("aria-label", `${title}. ${description}.`);
  chart.append(svg("title", {}, title), svg("desc", {}, description));

  for (const acc of [0, 25, 50, 75, 100]) {  // grid and y axis
    chart.append(svg("line", { x1: left, x2: W - right, y1: y(acc), y2: y(acc), class: acc % 50 ? "grid minor" : "grid" }));
    if (acc % 50 === 0) {
      chart.append(svg("text", { x: left - 6, y: y(acc) + 4, "text-anchor": "end", class: "tick" }, `${acc}%`));
    }
  }
  const every = Math.ceil(steps / 12);  // at most about 12 labels on the x axis
  for (let s = 0; s < steps; s += 1) {
    if (s % every && s !== steps - 1) continue;
    chart.append(svg("text", { x: x(s), y: H - bottom + 15, "text-anchor": "middle", class: "tick" }, s + 1));
  }
  chart.append(svg("text", { x: (left + W - right) / 2, y: H - 3, "text-anchor": "middle", class: "axis" }, "after task"));

  /** The points of ``values`` (by step) as polylines broken at each missing value. */
  const runs = (values, at = (s, v) => [[x(s), y(v)]]) => {
    const lines = [];
    let run = [];
    values.forEach((v, s) => {
      if (v === null) {
        if (run.length) lines.push(run);
        run = [];
      } else run.push(...at(s, v));
    });
    if (run.length) lines.push(run);
    return lines.filter((points) => points.length > 1)
      .map((points) => svg("polyline", { points: points.map((p) => p.join(",")).join(" "), class: "line" }));
  };
  const dots = (values, name, r) => values.flatMap((v, s) => (v === null ? [] : [(() => {
    const dot = svg("circle", { cx: x(s), cy: y(v), r, class: "dot", "data-step": s + 1, "data-value": v });
    dot.append(svg("title", {}, `${name} after task ${s + 1}: ${pct(v)}`));
    return dot;
  })()]));

  // chance: a step for each task (the classes known then), dashed, under the rest
  const half = steps === 1 ? 40 : span / 2;
  const chanceGroup = group({ class: "series chance", "data-series": "chance" },
    runs(chance, (s, v) => [[Math.max(left, x(s) - half), y(v)], [Math.min(W - right, x(s) + half), y(v)]]));
  chanceGroup.prepend(svg("title", {}, `chance: ${said(chance)}`));
  chart.append(chanceGroup);
  chart.append(group({ class: "series all-seen", "data-series": "all" }, runs(all), dots(all, "all seen classes", 5)));
  tasks.forEach((line, j) => {  // over the all-seen line, so that a point on it stays visible
    const name = `task ${j + 1}'s test images`;
    chart.append(group({ class: `series task s${j % SERIES_COLOURS}`, "data-series": `task-${j + 1}` },
      runs(line), dots(line, name, 3.5)));
  });

  const legend = el("ul", { className: "legend", "aria-hidden": "true" },
    tasks.map((_, j) => el("li", {}, el("span", { className: `swatch s${j % SERIES_COLOURS}` }), `task ${j + 1}`)),
    el("li", {}, el("span", { className: "swatch all-seen" }), "all seen classes"),
    el("li", {}, el("span", { className: "swatch chance" }), "chance"));
  const notes = [];
  const unmeasured = history.filter((entry) => accuracyOf(entry) === null).map((entry, k) => (entry.task ?? k) + 1);
  if (unmeasured.length) {
    notes.push(`${unmeasured.length === 1 ? "Task" : "Tasks"} ${unmeasured.join(", ")} ` +
      `${unmeasured.length === 1 ? "was" : "were"} learned without test images: no accuracy after ` +
      `${unmeasured.length === 1 ? "it" : "them"}.`);
  }
  if (all.some((v) => v === null) && all.some(isNumber)) {
    notes.push("The all-seen line has a gap where not every task's test images were measured after that task.");
  }
  notes.push("Each task's line is measured on its own test images only; one line never joins two test sets.");
  return el("figure", { className: "chart-figure" }, chart, legend,
    el("figcaption", { className: "hint", textContent: notes.join(" ") }));
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
    const ev = job.entry && job.entry.eval;
    const acc = job.entry ? accuracyOf(job.entry) : null;
    const chance = ev && isNumber(ev.chance) ? ` (chance ${pct(ev.chance)})` : "";
    return el("li", { className: ev && ev.warning ? "warned" : null },
      el("span", { className: `badge state-${job.state}`, textContent: job.state }),
      el("span", { className: "job-classes", textContent: job.classes.join(", ") }),
      el("span", { className: "job-meta",
        textContent: [clock(job.created), acc === null ? "" : `accuracy ${pct(acc)}${chance}`].filter(Boolean).join(" · ") }),
      ev && ev.warning
        ? el("span", { className: "job-warning", title: ev.warning, textContent: `⚠ ${ev.warning.split(";")[0]}` }) : null,
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
  $("predict-again").addEventListener("click", () => predict(null, true));
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

  let resized = 0;  // the chart is drawn for its width: again when that changes (once a frame at most)
  window.addEventListener("resize", () => {
    cancelAnimationFrame(resized);
    resized = requestAnimationFrame(() => state.history && renderHistory(state.history.history, state.history.matrix));
  });

  loadHealth();
  refreshModel();
  setInterval(loadHealth, HEALTH_MS);
}

document.addEventListener("DOMContentLoaded", start);
