// The console's shell: the log-in field, the router (pages are addressed by the fragment,
// #/rules/demo) and the Overview page. The other pages are in rules.js and resources.js.

import { get, setToken, token } from "./api.js";
import { LineChart, formatRate } from "./chart.js";
import { Rates, errorBox, formatDuration, h, notify, syncRows, totalsOf } from "./dom.js";
import { ruleEditPage, rulePage, rulesPage } from "./rules.js";
import { pluginsPage, streamsPage } from "./resources.js";

export const POLL_MS = 1000;

// Timers of the page on show; a new page stops them.
class PageContext {
  constructor() { this.timers = []; this.live = true; }
  every(ms, fn) {
    let running = false;
    const tick = async () => {
      if (running || !this.live) return;
      running = true;
      try { await fn(); } finally { running = false; }
    };
    tick();
    this.timers.push(setInterval(tick, ms));
  }
  stop() { this.live = false; this.timers.forEach(clearInterval); }
}

async function overviewPage(main, _params, ctx) {
  const facts = h("dl", { class: "facts" });
  const counts = h("dl", { class: "facts" });
  const workers = h("tbody");
  const chart = new LineChart("Rows per second, all rules");
  const rates = new Rates();
  const problem = h("div");
  main.replaceChildren(
    h("h1", {}, "Overview"), problem,
    h("section", { "aria-labelledby": "ov-server" }, h("h2", { id: "ov-server" }, "Server"), facts),
    h("section", { "aria-labelledby": "ov-counts" }, h("h2", { id: "ov-counts" }, "Counts"), counts),
    h("section", { "aria-labelledby": "ov-rates" }, h("h2", { id: "ov-rates" }, "Throughput"), chart.figure),
    h("section", { "aria-labelledby": "ov-workers" }, h("h2", { id: "ov-workers" }, "Rules and their workers"),
      h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Rule"), h("th", { scope: "col" }, "Status"),
          h("th", { scope: "col" }, "Worker"))), workers))),
  );
  const fill = (dl, pairs) => dl.replaceChildren(...pairs.flatMap(([k, v, id]) => [h("dt", {}, k), h("dd", { id }, v)]));
  ctx.every(POLL_MS * 2, async () => {
    try {
      const [info, rules, streams, tables, sources, sinks, functions] = await Promise.all([
        get("/"), get("/rules"), get("/streams"), get("/tables"), get("/plugins/sources"), get("/plugins/sinks"),
        get("/plugins/functions")]);
      problem.replaceChildren();
      fill(facts, [["Version", info.version, "ov-version"], ["Platform", `${info.os}/${info.arch}`],
        ["Uptime", formatDuration(info.upTimeSeconds), "ov-uptime"], ["Data directory", info.dataDir]]);
      const running = rules.filter((r) => r.status === "running");
      const statuses = await Promise.all(running.slice(0, 50).map((r) =>
        get(`/rules/${encodeURIComponent(r.id)}/status`).catch(() => null)));
      let rowsIn = 0, rowsOut = 0;
      statuses.forEach((s) => { if (s) { const t = totalsOf(s); rowsIn += t.rowsIn; rowsOut += t.rowsOut; } });
      // Sums over the running rules: a rule that stops takes its counts with it, so a fall is no rate.
      const rin = rates.rate("in", rowsIn), rout = rates.rate("out", rowsOut);
      chart.push({ "rows in": rin, "rows out": rout });
      fill(counts, [["Rules", `${rules.length} (${running.length} running)`, "ov-rules"],
        ["Streams", streams.length], ["Tables", tables.length],
        ["Plugins", `${sources.length} sources, ${sinks.length} sinks, ${functions.length} function plugins`],
        ["Rows in per second", formatRate(rin), "ov-rows-in"], ["Rows out per second", formatRate(rout), "ov-rows-out"]]);
      const workerOf = new Map(running.slice(0, 50).map((r, i) => [r.id, statuses[i] && statuses[i].worker]));
      syncRows(workers, rules.map((r) => h("tr", { "data-key": r.id },
        h("td", {}, h("a", { href: `#/rules/${encodeURIComponent(r.id)}` }, r.id)),
        h("td", {}, r.status, r.message ? ` — ${r.message}` : ""),
        h("td", {}, workerOf.get(r.id) || (r.status === "running" ? "in the server" : "none")))));
    } catch (error) {
      problem.replaceChildren(errorBox(error));
    }
  });
}

const ROUTES = [
  [/^\/?$/, "overview", overviewPage],
  [/^\/rules\/?$/, "rules", rulesPage],
  [/^\/rules\/new$/, "rules", ruleEditPage],
  [/^\/rules\/([^/]+)\/edit$/, "rules", ruleEditPage],
  [/^\/rules\/([^/]+)$/, "rules", rulePage],
  [/^\/streams\/?$/, "streams", streamsPage],
  [/^\/plugins\/?$/, "plugins", pluginsPage],
];

let current = null;
let pendingNotice = ""; // what the next page shows first (go(path, notice))

// A page shown after a link was followed takes the focus, so the keyboard goes on from its top
// and a screen reader reads its heading; the first page leaves the focus at the document's start.
async function navigate() {
  await route();
  document.getElementById("main").focus();
}

async function route() {
  const hash = location.hash || "#/";
  if (!hash.startsWith("#/") && current) return; // an in-page anchor, not a page
  const path = hash.startsWith("#/") ? hash.slice(1) : "/";
  if (current) current.stop();
  current = new PageContext();
  const main = document.getElementById("main");
  notify(pendingNotice);
  pendingNotice = "";
  for (const [pattern, section, page] of ROUTES) {
    const m = pattern.exec(path);
    if (!m) continue;
    for (const link of document.querySelectorAll("nav a")) {
      if (link.dataset.section === section) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const params = m.slice(1).map(decodeURIComponent);
    main.replaceChildren(h("p", {}, "Loading…"));
    try {
      await page(main, params, current);
    } catch (error) {
      main.replaceChildren(h("h1", {}, "Something went wrong"), errorBox(error));
    }
    const heading = main.querySelector("h1");
    document.title = heading ? `${heading.textContent} — Plutino console` : "Plutino console";
    return;
  }
  main.replaceChildren(h("h1", {}, "No such page"), h("p", {}, h("a", { href: "#/" }, "Back to the overview")));
}

// Show the current page again (after a log-in, or a change made on it).
export function refresh() { route(); }

export function go(path, notice = "") {
  pendingNotice = notice;
  if (location.hash === `#${path}`) route();
  else location.hash = path;
}

function setUpLogin() {
  const form = document.getElementById("login");
  const field = document.getElementById("token");
  const out = document.getElementById("logout-button");
  const show = () => {
    field.value = "";
    field.placeholder = token() ? "logged in" : "none set";
    out.hidden = !token();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(field.value.trim());
    show();
    route();
    notify(token() ? "Token saved for this browser tab." : "Token cleared.");
  });
  out.addEventListener("click", () => { setToken(""); show(); route(); notify("Logged out."); });
  show();
}

window.addEventListener("hashchange", navigate);
document.getElementById("skip").addEventListener("click", (event) => {
  event.preventDefault(); // keep the page's address: focus the content instead of following #main
  document.getElementById("main").focus();
});
setUpLogin();
route();
