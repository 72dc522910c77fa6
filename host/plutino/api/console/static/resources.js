// The Streams and tables page (definitions, create, drop) and the Plugins page (kind,
// version, ABI tag, sha256, functions and their calls; install from a URL, check, delete).

import { api, del, get, post } from "./api.js";
import { refresh } from "./app.js";
import { confirmButton, describeError, errorBox, h, notify } from "./dom.js";

const KIND_PATHS = { stream: "/streams", table: "/tables" };

export async function streamsPage(main) {
  const [streams, tables] = await Promise.all([get("/streams"), get("/tables")]);
  const describe = (kind, name) => get(`${KIND_PATHS[kind]}/${encodeURIComponent(name)}`).catch((error) => ({ error }));
  const items = [...streams.map((n) => ["stream", n]), ...tables.map((n) => ["table", n])];
  const details = await Promise.all(items.map(([kind, name]) => describe(kind, name)));
  const list = h("div", { class: "cards", id: "stream-list" });
  items.forEach(([kind, name], i) => {
    const info = details[i];
    const drop = confirmButton(`Drop ${kind}`, `Confirm dropping ${name}`, async () => {
      try {
        const answer = await del(`${KIND_PATHS[kind]}/${encodeURIComponent(name)}`);
        refresh();
        notify(String(answer));
      } catch (error) { notify(describeError(error), "error"); }
    }, { "aria-label": `Drop ${kind} ${name}` });
    const fields = info.StreamFields && info.StreamFields.length
      ? info.StreamFields.map((f) => `${f.Name} ${f.FieldType}`).join(", ") : "schemaless";
    list.append(h("article", { class: "card", "data-name": name, "aria-labelledby": `def-${kind}-${name}` },
      h("h3", { id: `def-${kind}-${name}` }, `${name} `, h("span", { class: "tag" }, kind)),
      info.error ? errorBox(info.error) : [
        h("dl", { class: "facts" }, h("dt", {}, "Fields"), h("dd", {}, fields),
          h("dt", {}, "Type"), h("dd", {}, info.Options?.type ?? ""), h("dt", {}, "Format"), h("dd", {}, info.Options?.format ?? "")),
        h("pre", { class: "sql" }, info.Statement || "")],
      h("p", {}, drop)));
  });
  if (!items.length) list.append(h("p", {}, "No streams or tables yet."));

  const sql = h("textarea", { id: "stream-sql", rows: 4, spellcheck: "false", required: true,
    placeholder: 'CREATE STREAM demo2 () WITH (TYPE="random", CONF_KEY="ext")' });
  const problem = h("div");
  const form = h("form", { id: "stream-form", class: "form" },
    h("div", { class: "field" }, h("label", { for: "stream-sql" }, "CREATE STREAM or CREATE TABLE statement"), sql),
    problem, h("p", {}, h("button", { type: "submit" }, "Create")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const isTable = /^\s*create\s+table\b/i.test(sql.value);
    try {
      const answer = await post(isTable ? "/tables" : "/streams", { sql: sql.value });
      refresh();
      notify(String(answer));
    } catch (error) { problem.replaceChildren(errorBox(error)); }
  });
  main.replaceChildren(h("h1", {}, "Streams and tables"),
    h("section", { "aria-labelledby": "st-list" }, h("h2", { id: "st-list" }, "Definitions"), list),
    h("section", { "aria-labelledby": "st-new" }, h("h2", { id: "st-new" }, "Create"), form));
}

// The calls of each plugin (and function) since the server started, from GET /metrics.
async function pluginCalls() {
  const calls = new Map();
  try {
    const text = await api("GET", "/metrics");
    for (const line of String(text).split("\n")) {
      const m = /^plutino_plugin_(calls|rows|errors)_total\{kind="([^"]*)",plugin="([^"]*)",function="([^"]*)"\} (\S+)$/.exec(line);
      if (!m) continue;
      const key = `${m[2]}/${m[3]}`;
      if (!calls.has(key)) calls.set(key, new Map());
      const per = calls.get(key);
      if (!per.has(m[4])) per.set(m[4], {});
      per.get(m[4])[m[1]] = Number(m[5]);
    }
  } catch { /* the metrics are an extra: the page shows the plugins without them */ }
  return calls;
}

function callsText(per) {
  if (!per || !per.size) return "none yet";
  return [...per].map(([fn, c]) => `${fn ? `${fn}: ` : ""}${c.calls ?? 0} calls, ${c.rows ?? 0} rows, ${c.errors ?? 0} errors`).join("; ");
}

export async function pluginsPage(main) {
  const kinds = ["source", "sink", "function"];
  const [names, calls] = await Promise.all([Promise.all(kinds.map((k) => get(`/plugins/${k}s`))), pluginCalls()]);
  const sections = [];
  for (const [i, kind] of kinds.entries()) {
    const infos = await Promise.all(names[i].map((n) => get(`/plugins/${kind}s/${encodeURIComponent(n)}`).catch((error) => ({ name: n, error }))));
    const rows = infos.map((p) => {
      const base = `/plugins/${kind}s/${encodeURIComponent(p.name)}`;
      const output = h("div", { class: "check-output", "aria-live": "polite" });
      const checkButton = h("button", { type: "button", "aria-label": `Check ${kind} plugin ${p.name}` }, "Check");
      checkButton.addEventListener("click", async () => {
        try {
          const result = await get(`${base}/check`);
          output.replaceChildren(h("pre", {}, JSON.stringify(result, null, 2)));
        } catch (error) { output.replaceChildren(errorBox(error)); }
      });
      const remove = confirmButton("Delete", `Confirm deleting ${p.name}`, async () => {
        try {
          const answer = await del(base);
          refresh();
          notify(String(answer));
        } catch (error) { notify(describeError(error), "error"); }
      }, { "aria-label": `Delete ${kind} plugin ${p.name}` });
      // The store keeps no signer yet (the server's log names it at install): shown when the API gives it.
      const signer = p.signature ?? p.signer;
      const signature = signer ? (typeof signer === "string" ? signer : JSON.stringify(signer)) : "not recorded";
      return h("tr", { "data-plugin": `${kind}/${p.name}` },
        h("th", { scope: "row" }, p.name),
        h("td", {}, p.error ? describeError(p.error) : p.status ?? ""),
        h("td", {}, p.version ?? ""),
        h("td", {}, p.abi ?? "", p.platform ? h("div", { class: "message" }, [p.platform.os, p.platform.arch, p.platform.libc]
          .filter(Boolean).join(" ")) : null),
        h("td", {}, p.sha256 ? h("details", {}, h("summary", { "aria-label": `sha256 of ${p.name}, ${p.sha256.slice(0, 16)}…` },
          h("code", {}, `${p.sha256.slice(0, 16)}…`)), h("code", { class: "hash" }, p.sha256)) : ""),
        h("td", {}, signature),
        h("td", {}, (p.functions || []).join(", ")),
        h("td", {}, callsText(calls.get(`${kind}/${p.name}`))),
        h("td", {}, h("div", { class: "actions" }, checkButton, remove), output));
    });
    sections.push(h("section", { "aria-labelledby": `pl-${kind}` }, h("h2", { id: `pl-${kind}` }, `${kind[0].toUpperCase()}${kind.slice(1)} plugins`),
      h("div", { class: "scroll" }, h("table", { class: "plugins" },
        h("thead", {}, h("tr", {}, ...["Name", "Status", "Version", "ABI", "sha256", "Signature", "Functions", "Calls", "Actions"]
          .map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, ...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 9 }, `No ${kind} plugins.`))]))))));
  }

  const kind = h("select", { id: "plugin-kind" }, ...kinds.map((k) => h("option", { value: k }, k)));
  const name = h("input", { id: "plugin-name", required: true, autocomplete: "off" });
  const url = h("input", { id: "plugin-url", type: "url", required: true, placeholder: "https://example.com/echo.zip or file:///path/echo.zip" });
  const sha = h("input", { id: "plugin-sha256", autocomplete: "off", pattern: "[0-9a-fA-F]{64}" });
  const replace = h("input", { id: "plugin-replace", type: "checkbox" });
  const problem = h("div");
  const form = h("form", { id: "plugin-form", class: "form" },
    h("div", { class: "field" }, h("label", { for: "plugin-kind" }, "Kind"), kind),
    h("div", { class: "field" }, h("label", { for: "plugin-name" }, "Name"), name),
    h("div", { class: "field" }, h("label", { for: "plugin-url" }, "Package URL (zip)"), url),
    h("div", { class: "field" }, h("label", { for: "plugin-sha256" }, "sha256 of the zip (optional)"), sha),
    h("div", { class: "field inline" }, replace, h("label", { for: "plugin-replace" }, "Update the installed plugin of that name")),
    problem, h("p", {}, h("button", { type: "submit" }, "Install")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: name.value.trim(), file: url.value.trim() };
    if (sha.value.trim()) body.sha256 = sha.value.trim();
    const path = `/plugins/${kind.value}s`;
    try {
      const answer = replace.checked ? await api("PUT", `${path}/${encodeURIComponent(body.name)}`, body) : await post(path, body);
      refresh();
      notify(String(answer));
    } catch (error) { problem.replaceChildren(errorBox(error)); }
  });
  main.replaceChildren(h("h1", {}, "Plugins"), ...sections,
    h("section", { "aria-labelledby": "pl-install" }, h("h2", { id: "pl-install" }, "Install or update from a URL"),
      h("p", {}, "The server downloads the package itself (file:// or http(s)://) and checks it before it installs anything."), form));
}
