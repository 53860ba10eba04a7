// linkwatch dashboard: filters, panels drawn with Plotly.js, auto-refresh, CSV export.
"use strict";

const REFRESH_MS = Number(document.body.dataset.refreshMs) || 10000;
const THRESHOLD = Number(document.body.dataset.threshold) || 10;
const form = document.getElementById("filters");
const panelsEl = document.getElementById("panels");
const statusEl = document.getElementById("status");
const errorEl = document.getElementById("error");
const PLOT_CONFIG = { displaylogo: false, responsive: true };
const WIDE = new Set(["national_weekly", "region_weekly"]);
const SERIES_LABELS = {
  gp_consultation: "GP", ooh_contact: "Out-of-hours", hospital_episode: "Hospital",
  MALE: "Male", FEMALE: "Female",
};
let panels = [];
let refreshing = false;

function label(value) {
  return SERIES_LABELS[value] || String(value);
}

function queryString() {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(form)) {
    if (value !== "") params.set(key, value);
  }
  return params.toString();
}

function fillSelect(name, values, allLabel) {
  const select = form.elements[name];
  select.innerHTML = "";
  if (allLabel) select.add(new Option(allLabel, ""));
  for (const v of values) select.add(new Option(name === "ses_quintile" ? `Q${v}` : label(v), v));
}

function showError(message) {
  errorEl.hidden = !message;
  errorEl.textContent = message || "";
}

function hiddenSet(data) {
  return new Set(data.hidden.map((h) => `${h.row}:${h.column}`));
}

function cellText(data, hidden, rowIndex, column) {
  if (hidden.has(`${rowIndex}:${column}`)) return null;
  const v = data.rows[rowIndex][column];
  return v === null || v === undefined ? "" : String(v);
}

function renderTable(container, data, columns) {
  const hidden = hiddenSet(data);
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const c of columns) head.insertCell().outerHTML = `<th>${c}</th>`;
  const body = table.createTBody();
  data.rows.forEach((_, i) => {
    const tr = body.insertRow();
    for (const c of columns) {
      const td = tr.insertCell();
      const text = cellText(data, hidden, i, c);
      if (text === null) {
        td.textContent = `<${THRESHOLD}`;
        td.className = "suppressed";
        td.title = "suppressed: small number";
      } else {
        td.textContent = text;
        if (c === "evidence") td.className = "evidence";
      }
    }
  });
  container.replaceChildren(table);
}

function groupBy(rows, key) {
  const groups = new Map();
  for (const r of rows) {
    const k = r[key];
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(r);
  }
  return groups;
}

function layoutFor(extra) {
  return Object.assign({
    margin: { l: 50, r: 10, t: 10, b: 40 },
    legend: { orientation: "h", y: -0.18 },
    font: { size: 11 },
    hovermode: "x unified",
  }, extra || {});
}

function drawTimeseries(el, p, data) {
  const x = data.rows.map((r) => r[p.x]);
  const traces = [];
  if (data.columns.includes("upperbound_per_100k")) {
    traces.push({ x, y: data.rows.map((r) => r.expected_per_100k), name: "expected",
      mode: "lines", line: { color: "#7a8796", dash: "dot" } });
    traces.push({ x, y: data.rows.map((r) => r.upperbound_per_100k), name: "upper threshold",
      mode: "lines", fill: "tonexty", fillcolor: "rgba(122,135,150,0.18)",
      line: { color: "#aab3bd", width: 1 } });
  }
  traces.push({ x, y: data.rows.map((r) => r[p.y]), name: p.y.replaceAll("_", " "),
    mode: "lines+markers", line: { color: "#1f5f99" } });
  if (data.columns.includes("alarm")) {
    const alarms = data.rows.filter((r) => r.alarm === 1 && r[p.y] !== null);
    traces.push({ x: alarms.map((r) => r[p.x]), y: alarms.map((r) => r[p.y]), name: "alarm",
      mode: "markers", marker: { color: "#c62828", size: 11, symbol: "diamond" } });
  }
  const shapes = p.name === "ses_gap"
    ? [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 1, y1: 1, line: { color: "#999", dash: "dash" } }]
    : [];
  Plotly.react(el, traces, layoutFor({ shapes }), PLOT_CONFIG);
}

function drawSeries(el, p, data, kind) {
  const traces = [];
  for (const [series, rows] of groupBy(data.rows, p.series)) {
    const name = p.series === "ses_quintile" ? `Q${series}` : label(series);
    traces.push(kind === "bar"
      ? { type: "bar", name, x: rows.map((r) => label(r[p.x])), y: rows.map((r) => r[p.y]) }
      : { mode: "lines", name, x: rows.map((r) => r[p.x]), y: rows.map((r) => r[p.y]) });
  }
  Plotly.react(el, traces, layoutFor(kind === "bar" ? { barmode: "group", hovermode: "closest" } : {}), PLOT_CONFIG);
}

function drawBar(el, p, data) {
  const rows = [...data.rows].reverse();
  Plotly.react(el, [{ type: "bar", orientation: "h", x: rows.map((r) => r[p.y]),
    y: rows.map((r) => r[p.x].replaceAll("_", " ")), marker: { color: "#3a7ca5" } }],
  layoutFor({ margin: { l: 170, r: 10, t: 10, b: 30 }, hovermode: "closest" }), PLOT_CONFIG);
}

function drawSmallMultiples(el, p, data, regions) {
  const groups = groupBy(data.rows, p.series);
  const names = regions.filter((r) => groups.has(r) || form.elements.region.value === "");
  const columns = 4;
  const rowsN = Math.max(1, Math.ceil(names.length / columns));
  const traces = [];
  const annotations = [];
  const axes = {};
  names.forEach((name, i) => {
    const rows = groups.get(name) || [];
    const axis = i === 0 ? "" : String(i + 1);
    const hiddenWeeks = rows.filter((r) => r[p.y] === null).length;
    if (hiddenWeeks === rows.length) {
      // Nothing to draw: say why instead of showing empty axes.
      axes[`xaxis${axis}`] = { visible: false };
      axes[`yaxis${axis}`] = { visible: false };
      annotations.push({ text: rows.length ? `every week <${THRESHOLD}: suppressed` : "no events",
        xref: `x${axis} domain`, yref: `y${axis} domain`, x: 0.5, y: 0.5, showarrow: false,
        font: { size: 11, color: "#8a5a00" } });
    }
    traces.push({ x: rows.map((r) => r[p.x]), y: rows.map((r) => r[p.y]), mode: "lines",
      name, showlegend: false, xaxis: `x${axis}`, yaxis: `y${axis}`, connectgaps: false,
      line: { color: "#1f5f99" } });
    annotations.push({ text: hiddenWeeks ? `${name} (${hiddenWeeks} wk <${THRESHOLD})` : name,
      xref: `x${axis} domain`, yref: `y${axis} domain`, x: 0, y: 1.12, showarrow: false,
      xanchor: "left", font: { size: 11, color: hiddenWeeks ? "#8a5a00" : "#1d2733" } });
  });
  Plotly.react(el, traces, layoutFor(Object.assign({
    grid: { rows: rowsN, columns, pattern: "independent", ygap: 0.45, xgap: 0.08 },
    annotations, margin: { l: 40, r: 10, t: 24, b: 30 }, hovermode: "closest",
  }, axes)), PLOT_CONFIG);
}

function drawStats(el, data) {
  const row = data.rows[0] || {};
  el.innerHTML = "";
  const stats = document.createElement("div");
  stats.className = "stats";
  for (const c of data.columns) {
    const d = document.createElement("div");
    d.className = "stat";
    let v = row[c];
    if (typeof v === "number" && c.includes("rate")) v = `${(v * 100).toFixed(1)} %`;
    d.innerHTML = "<b></b><span></span>";
    d.querySelector("b").textContent = v === null || v === undefined ? "–" : String(v).replace("T", " ").slice(0, 19);
    d.querySelector("span").textContent = c.replaceAll("_", " ");
    stats.append(d);
  }
  el.append(stats);
}

function buildPanels(list) {
  panelsEl.innerHTML = "";
  for (const p of list) {
    const card = document.createElement("section");
    card.className = "panel" + (WIDE.has(p.name) ? " wide" : "");
    card.id = `panel-${p.name}`;
    card.dataset.panel = p.name;
    card.innerHTML = `<h2><span></span><a class="csv" download>CSV</a></h2>
      <p class="description"></p><div class="note"></div>
      <div class="${p.chart === "table" || p.chart === "stat" ? "body" : "chart"}"></div>
      ${p.chart === "table" || p.chart === "stat" ? "" : "<details><summary>Data</summary><div class=\"rows\"></div></details>"}`;
    card.querySelector("h2 span").textContent = p.title;
    card.querySelector(".description").textContent = p.description;
    panelsEl.append(card);
  }
}

async function fetchPanel(p, qs, regions) {
  const card = document.getElementById(`panel-${p.name}`);
  card.querySelector("a.csv").href = `/api/panels/${p.name}/csv?${qs}`;
  const response = await fetch(`/api/panels/${p.name}?${qs}`);
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  const note = card.querySelector(".note");
  const hiddenCounts = body.hidden.filter((h) => p.counts.includes(h.column)).length;
  const all = hiddenCounts > 0 && hiddenCounts >= body.rows.length * p.counts.length;
  note.textContent = hiddenCounts
    ? (all ? `All counts suppressed (<${THRESHOLD}): too few events to show for these filters`
      : `${hiddenCounts} small or revealing counts suppressed (<${THRESHOLD})`)
    : "";
  card.dataset.rows = String(body.rows.length);
  card.dataset.hidden = String(hiddenCounts);
  const chart = card.querySelector(".chart");
  const target = chart || card.querySelector(".body");
  if (body.rows.length === 0 && p.chart !== "stat") {
    if (chart) Plotly.purge(chart);
    target.innerHTML = `<div class="empty">No data for this period and filters.</div>`;
  } else if (p.chart === "timeseries") drawTimeseries(chart, p, body);
  else if (p.chart === "small_multiples") drawSmallMultiples(chart, p, body, regions);
  else if (p.chart === "grouped_bar") drawSeries(chart, p, body, "bar");
  else if (p.chart === "lines") drawSeries(chart, p, body, "lines");
  else if (p.chart === "bar") drawBar(chart, p, body);
  else if (p.chart === "stat") drawStats(target, body);
  else renderTable(target, body, body.columns.filter((c) => c !== "evidence").concat(["evidence"]));
  const rowsEl = card.querySelector("details .rows");
  if (rowsEl) renderTable(rowsEl, body, body.columns);
  card.dataset.loaded = "true";
  return body;
}

async function refresh() {
  if (refreshing) return;
  refreshing = true;
  const qs = queryString();
  const regions = Array.from(form.elements.region.options).map((o) => o.value).filter((v) => v);
  try {
    const results = await Promise.allSettled(panels.map((p) => fetchPanel(p, qs, regions)));
    const failed = results.find((r) => r.status === "rejected");
    showError(failed ? failed.reason.message : "");
    const fresh = results[panels.findIndex((p) => p.name === "freshness")];
    const f = fresh && fresh.status === "fulfilled" ? fresh.value.rows[0] : null;
    statusEl.textContent = `updated ${new Date().toLocaleTimeString()}` +
      (f ? ` · ${f.events_total} events · latest event ${String(f.latest_event_time).slice(0, 16).replace("T", " ")}` : "");
    document.body.dataset.refreshed = String(Date.now());
  } finally {
    refreshing = false;
  }
}

async function init() {
  try {
    const [choices, list] = await Promise.all([
      fetch("/api/filters").then(async (r) => { const b = await r.json(); if (!r.ok) throw new Error(b.detail); return b; }),
      fetch("/api/panels").then((r) => r.json()),
    ]);
    fillSelect("code_group", choices.code_group, null);
    fillSelect("region", choices.region, "All provinces");
    fillSelect("age_band", choices.age_band, "All ages");
    fillSelect("sex", choices.sex, "All");
    fillSelect("ses_quintile", choices.ses_quintile, "All quintiles");
    fillSelect("source", choices.source, "All sources");
    form.elements.date_from.value = choices.default_period.date_from;
    form.elements.date_to.value = choices.default_period.date_to;
    panels = list;
    buildPanels(panels);
    form.addEventListener("change", refresh);
    await refresh();
    setInterval(refresh, REFRESH_MS);
  } catch (err) {
    showError(`The dashboard cannot load: ${err.message}`);
    statusEl.textContent = "unavailable";
  }
}

init();
