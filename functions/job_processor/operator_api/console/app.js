// The escrow-jobs operator console. Plain JavaScript, shipped with the page (no CDN).
// The operator token lives in this tab's sessionStorage and travels only as a bearer
// header; every value from the API is put in the page as text, never as HTML.
"use strict";

const REFRESH_MS = 3000;
const PAGE = 20;
const state = { offset: 0, total: 0, selected: new Set(), detail: null, showPii: false };

const $ = (id) => document.getElementById(id);

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function when(iso) {
  if (!iso) return "-";
  const d = new Date(iso);
  return d.toISOString().replace("T", " ").slice(0, 19) + "Z";
}

function age(seconds) {
  if (!seconds) return "-";
  if (seconds < 90) return seconds.toFixed(1) + " s";
  if (seconds < 5400) return (seconds / 60).toFixed(1) + " min";
  return (seconds / 3600).toFixed(1) + " h";
}

// -- the API ----------------------------------------------------------------------------

class Unauthorized extends Error {}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem("token") };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
  });
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (response.status === 401) throw new Unauthorized("the token was refused");
  if (!response.ok) {
    const message = (data && data.error) || response.statusText;
    throw new Error(response.status + ": " + message);
  }
  return data;
}

function act(body) {
  return api("POST", "/api/jobs/process", { ...body, actor: sessionStorage.getItem("actor") });
}

function toast(text) {
  const node = $("toast");
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { node.hidden = true; }, 4000);
}

function confirmAction(text) {
  return new Promise((resolve) => {
    const dialog = $("confirm");
    $("confirm-text").textContent = text;
    dialog.returnValue = "cancel";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

async function confirmed(text, body, done) {
  if (!(await confirmAction(text))) return;
  try {
    const answer = await act(body);
    toast(done(answer));
  } catch (error) {
    handle(error);
  }
  await refresh();
}

function handle(error) {
  if (error instanceof Unauthorized) {
    signOut("The token was refused: sign in again.");
  } else {
    toast(String(error.message || error));
  }
}

// -- sign in ----------------------------------------------------------------------------

function signOut(message) {
  sessionStorage.removeItem("token");
  clearInterval(refresh.timer);
  $("app").hidden = true;
  $("who").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

async function signIn(event) {
  event.preventDefault();
  sessionStorage.setItem("token", $("login-token").value.trim());
  sessionStorage.setItem("actor", $("login-actor").value.trim());
  $("login-token").value = "";
  try {
    await api("GET", "/api/jobs/process");
  } catch (error) {
    signOut(error instanceof Unauthorized ? "Wrong token." : String(error.message));
    return;
  }
  start();
}

function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = sessionStorage.getItem("actor");
  refresh();
  clearInterval(refresh.timer);
  refresh.timer = setInterval(refresh, REFRESH_MS);
}

// -- overview and chart -------------------------------------------------------------------

async function refresh() {
  try {
    const [stats, history] = await Promise.all([
      api("GET", "/api/jobs/process"),
      api("GET", "/api/jobs/history"),
    ]);
    renderOverview(stats.overview, stats.deadLetterCount);
    renderChart(history);
    await loadJobs();
    if (state.detail) await showJob(state.detail, true);
    await loadAudit();
    $("refreshed").textContent = "refreshed " + new Date().toLocaleTimeString();
  } catch (error) {
    handle(error);
  }
}

function renderOverview(overview, deadTotal) {
  const body = $("overview").tBodies[0];
  body.replaceChildren();
  const types = $("f-type");
  const known = new Set([...types.options].map((o) => o.value));
  for (const [name, s] of Object.entries(overview.types)) {
    if (!known.has(name)) types.append(el("option", name, { value: name }));
    const row = el("tr", null, { "data-type": name });
    row.append(el("td", name));
    for (const n of [s.ready, s.scheduled, s.running, s.dead === null ? "-" : s.dead]) {
      row.append(el("td", n, { class: "num" }));
    }
    row.append(el("td", age(s.oldestReadyAgeS), { class: "num" }));
    const label = s.paused ? "paused" : "active";
    const cell = el("td");
    cell.append(el("span", label, { class: "state state-" + label }));
    row.append(cell);
    const button = el("button", s.paused ? "Resume" : "Pause", { type: "button" });
    button.addEventListener("click", () => {
      const verb = s.paused ? "resume" : "pause";
      const text = s.paused
        ? `Resume ${name}? Its waiting jobs will be claimed again.`
        : `Pause ${name}? Its jobs will wait (still counted) until it is resumed.`;
      confirmed(text, { action: verb + "-type", type: name }, (a) =>
        a.changed ? `${name} ${verb}d` : `${name} was ${verb}d already`);
    });
    const actions = el("td");
    actions.append(button);
    row.append(actions);
    body.append(row);
  }
  const total = el("tr");
  total.append(el("th", "total"));
  for (const n of [overview.ready, overview.scheduled, overview.running, deadTotal]) {
    total.append(el("th", n, { class: "num" }));
  }
  total.append(el("th", age(overview.oldestReadyAgeS), { class: "num" }));
  total.append(el("th", overview.paused.length ? overview.paused.length + " paused" : ""));
  total.append(el("th"));
  body.append(total);
}

function renderChart(history) {
  const svg = $("chart");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const points = history.points || [];
  const peak = Math.max(1, ...points.map((p) => p.succeeded + p.retried + p.deadLettered));
  const width = 600 / Math.max(points.length, 1);
  points.forEach((p, i) => {
    const failed = p.retried + p.deadLettered;
    const bars = [["ok", p.succeeded, 0], ["bad", failed, p.succeeded]];
    for (const [cls, value, below] of bars) {
      if (!value) continue;
      const rect = document.createElementNS(ns, "rect");
      const h = (value / peak) * 110;
      rect.setAttribute("x", String(i * width + 0.5));
      rect.setAttribute("width", String(Math.max(width - 1, 1)));
      rect.setAttribute("y", String(120 - (below / peak) * 110 - h));
      rect.setAttribute("height", String(h));
      rect.setAttribute("class", cls);
      const title = document.createElementNS(ns, "title");
      title.textContent = `${when(p.at)}: ${p.succeeded} succeeded, ${failed} failed`;
      rect.append(title);
      svg.append(rect);
    }
  });
  const sum = (k) => points.reduce((a, p) => a + p[k], 0);
  $("chart-source").textContent =
    `(${history.source}: ${sum("succeeded")} succeeded, ` +
    `${sum("retried") + sum("deadLettered")} failed; peak ${peak}/min)`;
}

// -- the jobs list --------------------------------------------------------------------------

function listQuery() {
  const params = new URLSearchParams({
    state: $("f-state").value,
    order: $("f-order").value,
    offset: String(state.offset),
    limit: String(PAGE),
  });
  if ($("f-type").value) params.set("type", $("f-type").value);
  return params;
}

async function loadJobs() {
  if (state.search) {
    const params = new URLSearchParams({ escrowId: state.search });
    const found = await api("GET", "/api/jobs?" + params);
    renderJobs(found.jobs, false);
    $("page-info").textContent = "";
    $("list-note").textContent =
      `${found.total} waiting, running or dead job(s) of escrow ${state.search}` +
      (found.complete ? "" : " (search truncated)") + ". Succeeded jobs are found by job id.";
    return;
  }
  const page = await api("GET", "/api/jobs?" + listQuery());
  state.total = page.total;
  const dead = page.state === "dead";
  renderJobs(page.jobs, dead);
  const last = Math.min(state.offset + page.jobs.length, page.total);
  $("page-info").textContent = page.total
    ? `${state.offset + 1}-${last} of ${page.total}${page.complete ? "" : "+"}` : "none";
  $("list-note").textContent = "";
  $("prev").disabled = state.offset === 0;
  $("next").disabled = last >= page.total;
}

function renderJobs(jobs, selectable) {
  const body = $("jobs").tBodies[0];
  body.replaceChildren();
  $("bulk").hidden = !selectable;
  const visible = new Set(jobs.map((j) => j.id));
  for (const id of [...state.selected]) if (!visible.has(id)) state.selected.delete(id);
  for (const job of jobs) {
    const row = el("tr", null, { class: "clickable", "data-id": job.id });
    const pick = el("td");
    if (selectable) {
      const box = el("input", null, { type: "checkbox", "aria-label": "select " + job.id });
      box.checked = state.selected.has(job.id);
      box.addEventListener("click", (e) => {
        e.stopPropagation();
        if (box.checked) state.selected.add(job.id); else state.selected.delete(job.id);
        $("selected-count").textContent = state.selected.size + " selected";
      });
      pick.append(box);
    }
    row.append(pick, el("td", job.id.slice(0, 13) + "…", { title: job.id }), el("td", job.type));
    const st = el("td");
    st.append(el("span", job.state, { class: "state state-" + job.state }));
    row.append(st, el("td", job.transactionId || "-"));
    row.append(el("td", `${job.attempts}/${job.maxAttempts}`, { class: "num" }));
    const due = job.state === "dead" ? job.finishedAt : job.nextRunAt;
    row.append(el("td", when(due)), el("td", job.lastError || "", { class: "err" }));
    row.addEventListener("click", () => { state.showPii = false; showJob(job.id); });
    body.append(row);
  }
  $("selected-count").textContent = state.selected.size + " selected";
}

function bulk(verb) {
  const ids = [...state.selected];
  if (!ids.length) { toast("select dead jobs first"); return; }
  const text = verb === "replay"
    ? `Replay ${ids.length} dead-lettered job(s) with fresh attempts?`
    : `Delete ${ids.length} dead-lettered job(s) for good?`;
  confirmed(text, { action: verb + "-dead-letter", ids }, (a) => {
    state.selected.clear();
    return verb === "replay" ? `replayed ${a.replayed}` : `purged ${a.purged}`;
  });
}

// -- one job --------------------------------------------------------------------------------

async function showJob(id, quiet) {
  let job;
  try {
    const query = state.showPii ? "?showPii=true" : "";
    job = await api("GET", "/api/jobs/" + encodeURIComponent(id) + query);
  } catch (error) {
    if (quiet && String(error.message).startsWith("404")) {
      state.detail = null; // purged, or its record expired
      $("detail").hidden = true;
    } else if (!quiet) {
      handle(error);
    }
    return;
  }
  state.detail = id;
  $("detail").hidden = false;
  $("d-id").textContent = job.id;
  $("detail").dataset.state = job.state;
  const fields = $("d-fields");
  fields.replaceChildren();
  const shown = {
    type: job.type, state: job.state, escrow: job.transactionId,
    attempts: `${job.attempts} of ${job.maxAttempts}`, created: when(job.createdAt),
    "next due": ["queued", "scheduled"].includes(job.state) ? when(job.nextRunAt) : "-",
    finished: when(job.finishedAt),
    "dedupe key": job.dedupeKey, "correlation id": job.correlationId,
    "last error": job.lastError,
  };
  for (const [k, v] of Object.entries(shown)) {
    fields.append(el("dt", k), el("dd", v === null || v === undefined ? "-" : v));
  }
  const history = $("d-history").tBodies[0];
  history.replaceChildren();
  for (const e of job.history) {
    const row = el("tr", null, { "data-kind": e.kind });
    for (const v of [e.attempt ?? "", e.kind.replace("_", " "), when(e.startedAt), when(e.at),
      e.processor || "", e.error || "", when(e.nextRunAt), e.actor || ""]) {
      row.append(el("td", v));
    }
    row.children[5].className = "err";
    history.append(row);
  }
  $("d-payload").textContent = JSON.stringify(job.payload, null, 2);
  $("d-pii").textContent = job.piiShown ? "Hide personal data" : "Show personal data";
  const actions = $("d-actions");
  actions.replaceChildren();
  const button = (label, handler, danger) => {
    const b = el("button", label, { type: "button", class: danger ? "danger" : "" });
    b.addEventListener("click", handler);
    actions.append(b);
  };
  if (job.state === "dead") {
    button("Replay", () => confirmed(`Replay job ${job.id} with fresh attempts?`,
      { action: "replay-dead-letter", ids: [job.id] }, () => "replayed " + job.id));
    button("Purge", () => confirmed(`Delete job ${job.id} for good?`,
      { action: "purge-dead-letter", ids: [job.id] }, () => "purged " + job.id), true);
  }
  if (job.state === "queued" || job.state === "scheduled") {
    if (job.state === "scheduled") {
      button("Run now", () => confirmed(`Run job ${job.id} now?`,
        { action: "run-job-now", id: job.id }, () => "due now: " + job.id));
    }
    button("Cancel job", () => confirmed(`Cancel job ${job.id}? It will not run.`,
      { action: "cancel-job", id: job.id }, () => "cancelled " + job.id), true);
  }
}

async function loadAudit() {
  const log = await api("GET", "/api/jobs/audit?limit=20");
  const body = $("audit").tBodies[0];
  body.replaceChildren();
  for (const e of log.entries) {
    const what = e.type || e.partner || (e.ids.length ? e.ids.join(", ") : "") || "-";
    const row = el("tr");
    row.append(el("td", when(e.at)), el("td", e.actor), el("td", `${e.action} (${e.count})`),
      el("td", what, { class: "err" }));
    body.append(row);
  }
}

// -- wiring ---------------------------------------------------------------------------------

function init() {
  $("login-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut("Signed out."));
  for (const id of ["f-state", "f-type", "f-order"]) {
    $(id).addEventListener("change", () => {
      state.offset = 0; state.search = null; state.selected.clear(); loadJobs().catch(handle);
    });
  }
  $("prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE); loadJobs().catch(handle);
  });
  $("next").addEventListener("click", () => { state.offset += PAGE; loadJobs().catch(handle); });
  $("replay-selected").addEventListener("click", () => bulk("replay"));
  $("purge-selected").addEventListener("click", () => bulk("purge"));
  $("d-pii").addEventListener("click", () => {
    state.showPii = !state.showPii;
    if (state.detail) showJob(state.detail);
  });
  $("search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("search").value.trim();
    if (!text) { state.search = null; loadJobs().catch(handle); return; }
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text)) {
      state.showPii = false;
      await showJob(text);
      return;
    }
    state.search = text;
    loadJobs().catch(handle);
  });
  $("login-actor").value = sessionStorage.getItem("actor") || "";
  if (sessionStorage.getItem("token")) start();
}

document.addEventListener("DOMContentLoaded", init);
