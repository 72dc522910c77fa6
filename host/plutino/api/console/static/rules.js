// The Rules pages: the list, a rule's page (SQL, operator graph, live metrics, errors, the
// start/stop/restart/delete buttons) and the form that creates or edits a rule, whose SQL is
// checked as it is typed (POST /rules/validate) with the error shown at its line and column.

import { ApiError, del, get, post, put } from "./api.js";
import { go, POLL_MS } from "./app.js";
import { LineChart, formatRate, sparkline } from "./chart.js";
import {
  Rates, confirmButton, describeError, errorBox, formatTime, h, nodesOf, notify, statusBadge, syncRows, totalsOf,
} from "./dom.js";

const ruleUrl = (id) => `/rules/${encodeURIComponent(id)}`;
const HISTORY = 30;

export async function rulesPage(main, _params, ctx) {
  const body = h("tbody");
  const problem = h("div");
  const rates = new Rates();
  const history = new Map(); // rule id -> rows-in rates
  main.replaceChildren(
    h("h1", {}, "Rules"),
    h("p", {}, h("a", { href: "#/rules/new", class: "button" }, "New rule")),
    problem,
    h("div", { class: "scroll" }, h("table", { id: "rules-table", class: "stacking" },
      h("caption", {}, "Every rule, its status and its throughput (refreshed every second)"),
      h("thead", {}, h("tr", {}, ...["Rule", "Status", "Rows in/s", "Rows out/s", "Errors", "Rows in, last 30 s", "Actions"]
        .map((c) => h("th", { scope: "col" }, c)))),
      body)),
  );
  ctx.every(POLL_MS, async () => {
    let rules;
    try {
      rules = await get("/rules");
      problem.replaceChildren();
    } catch (error) {
      problem.replaceChildren(errorBox(error));
      return;
    }
    const statuses = await Promise.all(rules.slice(0, 100).map((r) =>
      r.status === "running" ? get(`${ruleUrl(r.id)}/status`).catch(() => null) : Promise.resolve(null)));
    if (!ctx.live) return;
    const rows = rules.map((rule, i) => {
      const status = statuses[i];
      const totals = status ? totalsOf(status) : null;
      const rin = totals ? rates.rate(`${rule.id}/in`, totals.rowsIn) : null;
      const rout = totals ? rates.rate(`${rule.id}/out`, totals.rowsOut) : null;
      const points = history.get(rule.id) || [];
      points.push(rin);
      if (points.length > HISTORY) points.shift();
      history.set(rule.id, points);
      const act = async (verb) => {
        try {
          await post(`${ruleUrl(rule.id)}/${verb}`);
          notify(`Rule ${rule.id}: ${verb} done.`);
        } catch (error) { notify(describeError(error), "error"); }
      };
      const toggle = rule.status === "running"
        ? h("button", { type: "button", onclick: () => act("stop"), "aria-label": `Stop rule ${rule.id}` }, "Stop")
        : h("button", { type: "button", onclick: () => act("start"), "aria-label": `Start rule ${rule.id}` }, "Start");
      // data-label: the column's name, which a phone shows beside each value (the header row is hidden there)
      return h("tr", { "data-rule": rule.id, "data-key": rule.id },
        h("th", { scope: "row" }, h("a", { href: `#${ruleUrl(rule.id)}` }, rule.id)),
        h("td", { "data-label": "Status" }, statusBadge(rule.status, rule.message),
          rule.message ? h("div", { class: "message" }, rule.message) : null),
        h("td", { class: "num", "data-metric": "in", "data-label": "Rows in/s" }, formatRate(rin)),
        h("td", { class: "num", "data-metric": "out", "data-label": "Rows out/s" }, formatRate(rout)),
        h("td", { class: "num", "data-metric": "errors", "data-label": "Errors" }, totals ? totals.errors : "–"),
        h("td", { "data-label": "Rows in, last 30 s" }, sparkline(points, `rows in per second of ${rule.id}`)),
        h("td", { "data-label": "Actions" }, toggle));
    });
    syncRows(body, rows.length ? rows
      : [h("tr", { "data-key": "" }, h("td", { colspan: 7 }, "No rules yet: create one with New rule."))]);
  });
}

// The operator graph: sources, then the operators in order, then the sinks (GET /rules/{id}/topo).
function graphOf(topo) {
  const order = [];
  const seen = new Set();
  const visit = (node) => {
    if (seen.has(node)) return;
    seen.add(node);
    order.push(node);
    for (const next of topo.edges[node] || []) visit(next);
  };
  for (const source of topo.sources || []) visit(source);
  const columns = [];
  const depth = new Map();
  for (const node of order) {
    const parents = order.filter((p) => (topo.edges[p] || []).includes(node));
    const d = parents.length ? Math.max(...parents.map((p) => depth.get(p) ?? 0)) + 1 : 0;
    depth.set(node, d);
    (columns[d] = columns[d] || []).push(node);
  }
  return columns;
}

export async function rulePage(main, [id], ctx) {
  const [rule, topo] = await Promise.all([get(ruleUrl(id)), get(`${ruleUrl(id)}/topo`)]);
  const header = h("div", { class: "rule-status", "aria-live": "polite" });
  const graph = h("ol", { class: "graph", "aria-label": "Operator graph, from the sources to the sinks" });
  const metricsBody = h("tbody");
  const errors = h("div", { id: "rule-errors" });
  const chart = new LineChart("Rows out per second, per operator");
  const rates = new Rates();
  const cells = new Map(); // node -> element showing its rate in the graph
  let asked = "";
  let drawn = ""; // the nodes the graph shows, to redraw it when they change (a first start, an edit)
  const drawGraph = (shape) => {
    cells.clear();
    const columns = graphOf(shape);
    drawn = columns.flat().sort().join(",");
    graph.replaceChildren(...columns.map((column, i) => h("li", { class: "stage" },
      h("span", { class: "visually-hidden" }, `Step ${i + 1}: `),
      h("ul", {}, ...column.map((node) => {
        const rate = h("span", { class: "node-rate" }, "–");
        cells.set(node, rate);
        return h("li", { class: `node ${node.split("_")[0]}` }, h("span", { class: "node-name" }, node), rate);
      })))));
    if (!columns.length) graph.append(h("li", {}, "The graph appears once the rule has started."));
  };
  drawGraph(topo);
  const act = async (verb) => {
    try {
      await post(`${ruleUrl(id)}/${verb}`);
      notify(`Rule ${id}: ${verb} done.`);
    } catch (error) { notify(describeError(error), "error"); }
  };
  const remove = confirmButton("Delete", "Confirm delete", async () => {
    try {
      await del(ruleUrl(id));
      go("/rules", `Rule ${id} is deleted.`);
    } catch (error) { notify(describeError(error), "error"); }
  }, { id: "rule-delete" });
  main.replaceChildren(
    h("p", { class: "crumbs" }, h("a", { href: "#/rules" }, "Rules"), " / ", id),
    h("h1", {}, `Rule ${id}`),
    header,
    h("div", { class: "actions", role: "group", "aria-label": "Rule actions" },
      h("button", { type: "button", id: "rule-start", onclick: () => act("start") }, "Start"),
      h("button", { type: "button", id: "rule-stop", onclick: () => act("stop") }, "Stop"),
      h("button", { type: "button", id: "rule-restart", onclick: () => act("restart") }, "Restart"),
      h("a", { class: "button", href: `#${ruleUrl(id)}/edit` }, "Edit"),
      remove),
    h("section", { "aria-labelledby": "r-sql" }, h("h2", { id: "r-sql" }, "SQL"), h("pre", { class: "sql" }, rule.sql || "")),
    h("section", { "aria-labelledby": "r-graph" }, h("h2", { id: "r-graph" }, "Operator graph"), graph),
    h("section", { "aria-labelledby": "r-metrics" }, h("h2", { id: "r-metrics" }, "Metrics"), chart.figure,
      h("div", { class: "scroll" }, h("table", { id: "metrics-table" },
        h("thead", {}, h("tr", {}, ...["Operator", "Rows in", "Rows out", "Rows out/s", "Latency (µs)", "Buffered", "Exceptions"]
          .map((c) => h("th", { scope: "col" }, c)))), metricsBody))),
    h("section", { "aria-labelledby": "r-errors" }, h("h2", { id: "r-errors" }, "Last errors"), errors),
    h("section", { "aria-labelledby": "r-actions" }, h("h2", { id: "r-actions" }, "Sinks and options"),
      h("pre", {}, JSON.stringify({ actions: rule.actions, options: rule.options }, null, 2))),
  );
  ctx.every(POLL_MS, async () => {
    let status;
    try {
      status = await get(`${ruleUrl(id)}/status`);
    } catch (error) {
      header.replaceChildren(errorBox(error));
      return;
    }
    if (!ctx.live) return;
    const nodes = nodesOf(status);
    const totals = totalsOf(status);
    const names = nodes.map((n) => n.node).sort().join(",");
    if (names && names !== drawn && names !== asked) {
      asked = names; // asked once per change, even if the topology names its nodes otherwise
      drawGraph(await get(`${ruleUrl(id)}/topo`).catch(() => ({ sources: [], edges: {} })));
    }
    main.querySelector("#rule-start").disabled = status.status === "running";
    main.querySelector("#rule-stop").disabled = status.status === "stopped";
    header.replaceChildren(
      h("p", {}, "Status: ", statusBadge(status.status, status.message), status.message ? ` — ${status.message}` : ""),
      h("dl", { class: "facts" },
        h("dt", {}, "Rows in"), h("dd", { id: "rule-rows-in" }, String(totals.rowsIn)),
        h("dt", {}, "Rows out"), h("dd", { id: "rule-rows-out" }, String(totals.rowsOut)),
        h("dt", {}, "Exceptions"), h("dd", {}, String(totals.errors)),
        h("dt", {}, "Worker"), h("dd", {}, status.worker || "none"),
        h("dt", {}, "Last start"), h("dd", {}, formatTime(status.lastStartTimestamp)),
        h("dt", {}, "Last stop"), h("dd", {}, formatTime(status.lastStopTimestamp))));
    const point = {};
    const recent = [];
    metricsBody.replaceChildren(...nodes.map(({ node, metrics }) => {
      const rate = rates.rate(node, Number(metrics.records_out_total || 0));
      point[node] = rate;
      if (cells.has(node)) cells.get(node).textContent = `${formatRate(rate)} rows/s`;
      if (metrics.last_exception) recent.push([metrics.last_exception_time || 0, node, metrics.last_exception]);
      return h("tr", {}, h("th", { scope: "row" }, node), h("td", { class: "num" }, metrics.records_in_total ?? "–"),
        h("td", { class: "num" }, metrics.records_out_total ?? "–"), h("td", { class: "num" }, formatRate(rate)),
        h("td", { class: "num" }, metrics.process_latency_us ?? "–"), h("td", { class: "num" }, metrics.buffer_length ?? "–"),
        h("td", { class: "num" }, metrics.exceptions_total ?? 0));
    }));
    if (status.status === "running") chart.push(point);
    recent.sort((a, b) => b[0] - a[0]);
    const items = recent.map(([time, node, text]) => h("li", {}, h("strong", {}, node), ` (${formatTime(time)}): ${text}`));
    if (status.status !== "running" && status.message) items.unshift(h("li", {}, h("strong", {}, "stopped"), `: ${status.message}`));
    errors.replaceChildren(items.length ? h("ul", {}, ...items) : h("p", {}, "No errors."));
  });
}

const DEFAULT_ACTIONS = '[{"log": {}}]';

export async function ruleEditPage(main, params, ctx) {
  const id = params[0];
  const editing = id !== undefined;
  const rule = editing ? await get(ruleUrl(id)) : { id: "", sql: "", actions: JSON.parse(DEFAULT_ACTIONS) };
  const idField = h("input", { id: "rule-id", name: "id", required: true, value: rule.id, readonly: editing,
    autocomplete: "off", spellcheck: "false", "aria-describedby": "rule-id-help" });
  const sqlField = h("textarea", { id: "rule-sql", name: "sql", rows: 6, required: true, spellcheck: "false",
    "aria-describedby": "sql-check" });
  sqlField.value = rule.sql || "";
  const actionsField = h("textarea", { id: "rule-actions", name: "actions", rows: 4, spellcheck: "false" });
  actionsField.value = JSON.stringify(rule.actions || [], null, 2);
  const optionsField = h("textarea", { id: "rule-options", name: "options", rows: 3, spellcheck: "false" });
  optionsField.value = rule.options ? JSON.stringify(rule.options, null, 2) : "";
  const check = h("div", { id: "sql-check", class: "check", "aria-live": "polite" });
  const saveProblem = h("div");

  const body = () => {
    const out = { id: idField.value.trim(), sql: sqlField.value };
    out.actions = JSON.parse(actionsField.value || "[]");
    if (optionsField.value.trim()) out.options = JSON.parse(optionsField.value);
    return out;
  };
  // Show where the SQL error is: the line, a caret under its column, and the caret moved there.
  const showError = (error) => {
    sqlField.setAttribute("aria-invalid", "true");
    const parts = [h("p", { class: "note error", id: "sql-error" }, error.message)];
    if (error.line) {
      const lines = sqlField.value.split("\n");
      const text = lines[error.line - 1] ?? "";
      const col = Math.max(1, error.col || 1);
      parts.unshift(h("p", { id: "sql-position" }, `Error at line ${error.line}, column ${col}:`));
      parts.push(h("pre", { class: "where", "aria-hidden": "true" },
        h("span", {}, text), "\n", h("span", { class: "caret" }, `${" ".repeat(col - 1)}^`)));
      const jump = h("button", { type: "button", id: "sql-jump" }, "Go to the error");
      jump.addEventListener("click", () => {
        const offset = lines.slice(0, error.line - 1).reduce((n, l) => n + l.length + 1, 0) + col - 1;
        sqlField.focus();
        sqlField.setSelectionRange(offset, offset);
      });
      parts.push(h("p", {}, jump));
    }
    check.replaceChildren(...parts);
  };
  let generation = 0;
  let timer = null;
  const validate = async () => {
    const mine = ++generation;
    let payload;
    try {
      payload = body();
    } catch (error) {
      check.replaceChildren(h("p", { class: "note error" }, `The sinks or options are not JSON: ${error.message}`));
      return;
    }
    if (!payload.sql.trim()) { check.replaceChildren(); sqlField.removeAttribute("aria-invalid"); return; }
    if (!payload.id) payload.id = "console_check";
    try {
      await post("/rules/validate", payload);
      if (mine !== generation) return;
      sqlField.removeAttribute("aria-invalid");
      check.replaceChildren(h("p", { class: "note ok", id: "sql-ok" }, "The rule is valid."));
    } catch (error) {
      if (mine !== generation) return;
      if (error instanceof ApiError && error.status === 400) showError(error);
      else check.replaceChildren(errorBox(error));
    }
  };
  const soon = () => { clearTimeout(timer); timer = setTimeout(validate, 400); };
  for (const field of [sqlField, actionsField, optionsField]) field.addEventListener("input", soon);
  const stop = ctx.stop.bind(ctx);
  ctx.stop = () => { clearTimeout(timer); generation += 1; stop(); };

  const form = h("form", { id: "rule-form", class: "form", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "rule-id" }, "Rule id"), idField,
      h("small", { id: "rule-id-help" }, editing ? "The id of a rule cannot change." : "Letters, digits, _ and -.")),
    h("div", { class: "field" }, h("label", { for: "rule-sql" }, "SQL"), sqlField),
    check,
    h("div", { class: "field" }, h("label", { for: "rule-actions" }, "Sinks (actions, JSON)"), actionsField),
    h("div", { class: "field" }, h("label", { for: "rule-options" }, "Options (JSON, optional)"), optionsField),
    saveProblem,
    h("p", {}, h("button", { type: "submit", id: "rule-save" }, editing ? "Save and restart" : "Create rule"),
      " ", h("a", { href: editing ? `#${ruleUrl(id)}` : "#/rules" }, "Cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let payload;
    try { payload = body(); } catch (error) {
      saveProblem.replaceChildren(h("p", { class: "note error", role: "alert" }, `The sinks or options are not JSON: ${error.message}`));
      return;
    }
    try {
      if (editing) await put(ruleUrl(id), payload);
      else await post("/rules", payload);
      go(ruleUrl(payload.id), `Rule ${payload.id} is ${editing ? "saved" : "created"}.`);
    } catch (error) {
      saveProblem.replaceChildren(errorBox(error));
      if (error instanceof ApiError && error.line) showError(error);
    }
  });
  main.replaceChildren(
    h("p", { class: "crumbs" }, h("a", { href: "#/rules" }, "Rules"), " / ", editing ? `${id} / edit` : "new"),
    h("h1", {}, editing ? `Edit rule ${id}` : "New rule"),
    h("p", {}, "The SQL is checked as you type (the rule is not created until you press the button)."),
    form);
  if (editing) validate();
  idField.focus();
}
