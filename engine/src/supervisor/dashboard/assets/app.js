// The locald dashboard: services with their controls, and the logs, live.
// Data comes from the supervisor's JSON API and its event stream
// (/api/events); every text from a service is put in the page as text,
// never as HTML. The token from the address locald prints is kept in this
// origin's storage (per port, unlike a cookie) and sent with each request.
"use strict";

const MAX_LINES = 5000; // lines kept in the page; the log files keep all
const COLOURS = ["#6e7781", "#ff7b72", "#3fb950", "#d29922", "#58a6ff", "#bc8cff", "#39c5cf", "#e6edf3"];
const BRIGHT = ["#8b949e", "#ffa198", "#56d364", "#e3b341", "#79c0ff", "#d2a8ff", "#56d4dd", "#ffffff"];
// The hues `locald up` gives services in a terminal (cyan, yellow, green,
// magenta, blue, red), in the same order: a service looks the same in both.
const SERVICE_COLOURS = ["#56d4dd", "#e3b341", "#56d364", "#d2a8ff", "#79c0ff", "#ffa198"];

const $ = (id) => document.getElementById(id);
const state = { services: [], selected: "", filter: "", following: true, token: "" };
// Resolved by the first list of services, which gives the colours.
let servicesKnown;
const firstServices = new Promise((resolve) => (servicesKnown = resolve));
const TOKEN_KEY = "locald-dashboard-token";
const NO_TOKEN = "open the address `locald dashboard` prints: this page's token is missing or belongs to an earlier supervisor";

// The token of the address (kept, then taken out of the address bar), or
// the one kept from an earlier visit.
function takeToken() {
  const fromAddress = new URLSearchParams(location.search).get("token");
  if (fromAddress) {
    localStorage.setItem(TOKEN_KEY, fromAddress);
    history.replaceState(null, "", "/");
    return fromAddress;
  }
  return localStorage.getItem(TOKEN_KEY) || "";
}

function api(path, options = {}) {
  return fetch(path, { ...options, headers: { Authorization: "Bearer " + state.token } });
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- services -------------------------------------------------------------

function ago(ms) {
  const s = Math.max(0, Math.floor((Date.now() - ms) / 1000));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  return Math.floor(s / 86400) + "d";
}

const RUNNING = new Set(["starting", "running", "healthy", "unhealthy"]);

function renderServices() {
  const body = $("services");
  body.replaceChildren();
  for (const svc of state.services) {
    const row = el("tr");
    row.dataset.service = svc.name;
    if (svc.name === state.selected) row.classList.add("selected");
    const name = el("td", "name", svc.name);
    name.title = "show only this service's logs";
    name.addEventListener("click", () => selectService(svc.name === state.selected ? "" : svc.name));
    row.append(name);
    const stateCell = el("td");
    stateCell.append(el("span", "state " + svc.state, svc.stopping ? "stopping" : svc.state));
    row.append(stateCell, el("td", "kind", svc.kind));
    const port = el("td", "port");
    if (svc.url) {
      const link = el("a", "", String(svc.port));
      link.href = svc.url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      port.append(link);
    }
    row.append(port, el("td", "health", svc.health), el("td", "restarts", String(svc.restarts)));
    row.append(el("td", "uptime", RUNNING.has(svc.state) ? ago(svc.since_unix_ms) : ""));
    row.append(el("td", "exit", svc.exit_code === null || svc.exit_code === undefined ? "" : String(svc.exit_code)));
    const actions = el("td", "actions");
    for (const action of ["start", "stop", "restart"]) {
      const button = el("button", "", action);
      button.dataset.action = action;
      button.addEventListener("click", () => control(`/api/services/${encodeURIComponent(svc.name)}/${action}`, button));
      actions.append(button);
    }
    row.append(actions);
    body.append(row);
  }
  const select = $("service-filter");
  const names = state.services.map((s) => s.name);
  const have = [...select.options].slice(1).map((o) => o.value);
  if (names.join("\n") !== have.join("\n")) {
    select.replaceChildren(el("option", "", "all services"));
    select.options[0].value = "";
    for (const n of names) {
      const option = el("option", "", n);
      option.value = n;
      select.append(option);
    }
    select.value = state.selected;
  }
}

async function control(path, button) {
  if (button) button.disabled = true;
  try {
    const answer = await api(path, { method: "POST" });
    if (answer.status === 401) notice(NO_TOKEN);
    else if (!answer.ok) notice(await answer.text());
    else notice("");
  } catch (error) {
    notice("the supervisor did not answer: " + error);
  } finally {
    if (button) button.disabled = false;
  }
}

function notice(text) {
  const node = $("notice");
  node.textContent = text.trim();
  node.hidden = !text.trim();
}

// ---- logs -----------------------------------------------------------------

// By the service's place in the project, as in the terminal; a name the
// project no longer has (old lines after a reload) by a hash of the name.
function serviceColour(name) {
  let index = state.services.findIndex((service) => service.name === name);
  if (index < 0) {
    index = 0;
    for (const c of name) index = (index * 31 + c.codePointAt(0)) >>> 0;
  }
  return SERVICE_COLOURS[index % SERVICE_COLOURS.length];
}

// Text with ANSI SGR colour codes → spans (text only; other escapes dropped).
function ansi(text) {
  const out = document.createDocumentFragment();
  let style = {};
  const pattern = /\x1b\[([0-9;]*)m|\x1b\[[0-9;?]*[A-Za-z]|\x1b[^\[]/g;
  let last = 0;
  const push = (part) => {
    if (!part) return;
    if (!style.color && !style.bold && !style.italic && !style.underline) {
      out.append(document.createTextNode(part));
      return;
    }
    const span = el("span", "", part);
    if (style.color) span.style.color = style.color;
    if (style.bold) span.style.fontWeight = "bold";
    if (style.italic) span.style.fontStyle = "italic";
    if (style.underline) span.style.textDecoration = "underline";
    out.append(span);
  };
  for (const match of text.matchAll(pattern)) {
    push(text.slice(last, match.index));
    last = match.index + match[0].length;
    if (match[1] === undefined) continue;
    const codes = match[1] === "" ? [0] : match[1].split(";").map(Number);
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) style = {};
      else if (c === 1) style.bold = true;
      else if (c === 3) style.italic = true;
      else if (c === 4) style.underline = true;
      else if (c === 22) style.bold = false;
      else if (c === 39) style.color = undefined;
      else if (c >= 30 && c <= 37) style.color = COLOURS[c - 30];
      else if (c >= 90 && c <= 97) style.color = BRIGHT[c - 90];
      else if (c === 38 && codes[i + 1] === 5) { style.color = xterm(codes[i + 2]); i += 2; }
      else if (c === 38 && codes[i + 1] === 2) { style.color = `rgb(${codes[i + 2] | 0},${codes[i + 3] | 0},${codes[i + 4] | 0})`; i += 4; }
    }
  }
  push(text.slice(last));
  return out;
}

function xterm(n) {
  n = n | 0;
  if (n < 8) return COLOURS[n];
  if (n < 16) return BRIGHT[n - 8];
  if (n < 232) {
    n -= 16;
    const v = (x) => (x === 0 ? 0 : 55 + x * 40);
    return `rgb(${v(Math.floor(n / 36))},${v(Math.floor(n / 6) % 6)},${v(n % 6)})`;
  }
  const g = 8 + (n - 232) * 10;
  return `rgb(${g},${g},${g})`;
}

function lineNode(service, stream, time, text) {
  const node = el("div", "l " + stream);
  node.dataset.service = service;
  node.dataset.text = text.toLowerCase();
  node.append(el("span", "t", time.slice(11, 23)));
  const name = el("span", "s", service);
  name.style.color = serviceColour(service);
  node.append(name);
  const body = el("span", "x");
  body.append(ansi(text));
  node.append(body);
  if (!visible(node)) node.classList.add("hidden");
  return node;
}

function visible(node) {
  if (state.selected && node.dataset.service !== state.selected) return false;
  if (state.filter && !(node.dataset.text || "").includes(state.filter)) return false;
  return true;
}

function appendLines(nodes) {
  const log = $("log");
  const fragment = document.createDocumentFragment();
  for (const node of nodes) fragment.append(node);
  log.append(fragment);
  let extra = log.childElementCount - MAX_LINES;
  while (extra-- > 0) log.firstElementChild.remove();
  if (state.following) log.scrollTop = log.scrollHeight;
  else $("jump").hidden = false;
}

function refilter() {
  for (const node of $("log").children) node.classList.toggle("hidden", !visible(node));
  if (state.following) $("log").scrollTop = $("log").scrollHeight;
}

function selectService(name) {
  state.selected = name;
  $("service-filter").value = name;
  renderServices();
  refilter();
}

function follow(on) {
  state.following = on;
  $("follow").textContent = on ? "following" : "paused (scrolled up)";
  $("follow").classList.toggle("paused", !on);
  if (on) {
    $("jump").hidden = true;
    $("log").scrollTop = $("log").scrollHeight;
  }
}

// ---- wiring ---------------------------------------------------------------

// The history comes from the log files, the live lines from the event
// stream. The stream is opened first and the history read once it is open
// (then every line is in one or the other: none printed in between is
// lost); live batches wait while the history loads, and lines the history
// already holds (same service, stream, time and text: written just before
// the files were read) are dropped.
const live = { waiting: null, known: null };

function lineKey(service, stream, time, text) {
  return `${service}\u0000${stream}\u0000${time}\u0000${text}`;
}

async function loadHistory() {
  live.waiting = [];
  try {
    await firstServices;
    const answer = await api("/api/logs?lines=1000");
    if (answer.status === 401) notice(NO_TOKEN);
    if (!answer.ok) return;
    const lines = await answer.json();
    $("log").replaceChildren();
    appendLines(lines.map((l) => lineNode(l.service, l.stream, l.time, l.line)));
    const keys = new Set(lines.map((l) => lineKey(l.service, l.stream, l.time, l.line)));
    const last = lines.reduce((latest, l) => (l.time > latest ? l.time : latest), "");
    live.known = { keys, last };
    // Only batches written around the read can repeat it; forget it soon.
    setTimeout(() => {
      if (live.known && live.known.keys === keys) live.known = null;
    }, 5000);
  } finally {
    const waiting = live.waiting || [];
    live.waiting = null;
    showBatches(waiting);
  }
}

function showBatches(batches) {
  const known = live.known;
  const nodes = [];
  for (const batch of batches) {
    const check = known && batch.time <= known.last;
    for (const line of batch.lines) {
      if (check && known.keys.has(lineKey(batch.service, batch.stream, batch.time, line))) continue;
      nodes.push(lineNode(batch.service, batch.stream, batch.time, line));
    }
  }
  appendLines(nodes);
}

function connect() {
  const events = new EventSource("/api/events?token=" + encodeURIComponent(state.token));
  const connection = $("connection");
  events.addEventListener("open", () => {
    connection.textContent = "live";
    connection.className = "connection live";
    // At first and after every reconnection: what was missed is in the files.
    loadHistory().catch(() => {});
  });
  events.addEventListener("error", () => {
    // A refusal closes the stream for good; a lost connection is retried.
    const closed = events.readyState === EventSource.CLOSED;
    connection.textContent = closed ? "disconnected" : "disconnected (retrying)";
    connection.className = "connection lost";
    if (closed) notice(NO_TOKEN);
  });
  events.addEventListener("services", (event) => {
    const data = JSON.parse(event.data);
    $("project").textContent = data.project;
    document.title = data.project + " · locald";
    state.services = data.services;
    renderServices();
    servicesKnown();
  });
  events.addEventListener("logs", (event) => {
    const batches = JSON.parse(event.data);
    if (live.waiting) live.waiting.push(...batches);
    else showBatches(batches);
  });
  events.addEventListener("lagged", (event) => {
    appendLines([el("div", "gap", `… some lines were not shown here (${event.data} batches); \`locald logs\` has them all`)]);
  });
}

document.addEventListener("DOMContentLoaded", async () => {
  state.token = takeToken();
  for (const button of document.querySelectorAll("[data-all]")) {
    button.addEventListener("click", () => control(`/api/all/${button.dataset.all}`, button));
  }
  $("service-filter").addEventListener("change", (event) => selectService(event.target.value));
  $("text-filter").addEventListener("input", (event) => {
    state.filter = event.target.value.toLowerCase();
    refilter();
  });
  const log = $("log");
  log.addEventListener("scroll", () => {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
    if (atBottom !== state.following) follow(atBottom);
  });
  // The log's box shrinks when the services table grows (or the window
  // does): no scroll event comes, so keep the tail in view here.
  new ResizeObserver(() => {
    if (state.following) log.scrollTop = log.scrollHeight;
  }).observe(log);
  $("jump").addEventListener("click", () => follow(true));
  setInterval(renderUptimes, 1000);
  connect();
});

function renderUptimes() {
  for (const svc of state.services) {
    const row = document.querySelector(`tr[data-service="${CSS.escape(svc.name)}"] td.uptime`);
    if (row) row.textContent = RUNNING.has(svc.state) ? ago(svc.since_unix_ms) : "";
  }
}
