// DOM helpers shared by the pages: elements built from data with textContent (never as HTML),
// notices, rule metrics and rates.

import { ApiError } from "./api.js";

// h("a", {href: "#/"}, "text", child, ...): an element; attributes starting with "on" are listeners.
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// A message at the top of the page; errors are announced at once (role=alert).
export function notify(message, kind = "info") {
  const box = document.getElementById("notice");
  box.replaceChildren();
  if (!message) return;
  box.append(h("p", { class: `note ${kind}`, role: kind === "error" ? "alert" : null }, message));
}

// What an error says to the reader, with the way out when the token is missing or wrong.
export function describeError(error) {
  if (error instanceof ApiError) {
    if (error.status === 401) {
      return `${error.message} — type the server's token in the API token field above and press Log in.`;
    }
    return error.message;
  }
  if (error instanceof TypeError) return `The server cannot be reached (${error.message}).`;
  return String(error && error.message ? error.message : error);
}

export function errorBox(error) {
  return h("p", { class: "note error", role: "alert" }, describeError(error));
}

// A button that asks once more before it acts: the first press arms it for five seconds.
export function confirmButton(label, confirmLabel, action, attrs = {}) {
  let armed = null;
  const button = h("button", { type: "button", class: "danger", ...attrs }, label);
  button.addEventListener("click", async () => {
    if (!armed) {
      button.textContent = confirmLabel;
      armed = setTimeout(() => { armed = null; button.textContent = label; }, 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    button.disabled = true;
    try { await action(); } finally { button.disabled = false; button.textContent = label; }
  });
  return button;
}

// The nodes of a rule's status, in eKuiper's names: [{node, kind, metrics: {records_in_total, ...}}].
export function nodesOf(status) {
  const nodes = new Map();
  for (const [key, value] of Object.entries(status || {})) {
    const m = /^((source|op|sink)_.+)_0_([a-z_]+)$/.exec(key);
    if (!m) continue;
    if (!nodes.has(m[1])) nodes.set(m[1], { node: m[1], kind: m[2], metrics: {} });
    nodes.get(m[1]).metrics[m[3]] = value;
  }
  return [...nodes.values()];
}

// A rule's totals: rows in (out of its sources), rows out (sent by its sinks), exceptions.
export function totalsOf(status) {
  let rowsIn = 0, rowsOut = 0, errors = 0;
  for (const { kind, metrics } of nodesOf(status)) {
    if (kind === "source") rowsIn += Number(metrics.records_out_total || 0);
    if (kind === "sink") rowsOut += Number(metrics.records_out_total || 0);
    errors += Number(metrics.exceptions_total || 0);
  }
  return { rowsIn, rowsOut, errors };
}

// Rates of counters between polls: rate(key, count) -> per second since the last call (null
// the first time, and after the counter went back, as when a rule restarts).
export class Rates {
  constructor() { this.last = new Map(); }
  rate(key, count, now = performance.now()) {
    const before = this.last.get(key);
    this.last.set(key, { count, now });
    if (!before || count < before.count || now <= before.now) return null;
    return ((count - before.count) * 1000) / (now - before.now);
  }
}

export function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), mm = Math.floor((s % 3600) / 60);
  const parts = [];
  if (d) parts.push(`${d} d`);
  if (d || hh) parts.push(`${hh} h`);
  if (d || hh || mm) parts.push(`${mm} min`);
  parts.push(`${s % 60} s`);
  return parts.join(" ");
}

export function formatTime(ms) {
  return ms ? new Date(ms).toLocaleString() : "never";
}

export function statusBadge(status, message) {
  return h("span", { class: `badge ${status}`, title: message || null }, status);
}

// Put `rows` (each with a data-key) into `tbody`, keeping the rows and cells that did not
// change, so a refresh every second leaves the keyboard focus (a button) and a screen reader's
// place where they were.
export function syncRows(tbody, rows) {
  const old = new Map([...tbody.rows].map((r) => [r.dataset.key, r]));
  rows.forEach((row, i) => {
    let target = row;
    const existing = old.get(row.dataset.key);
    if (existing) {
      old.delete(row.dataset.key);
      if (existing.cells.length === row.cells.length) {
        [...row.cells].forEach((cell, j) => {
          if (existing.cells[j].outerHTML !== cell.outerHTML) existing.cells[j].replaceWith(cell);
        });
        target = existing;
      } else {
        existing.remove();
      }
    }
    if (tbody.rows[i] !== target) tbody.insertBefore(target, tbody.rows[i] || null);
  });
  for (const r of old.values()) r.remove();
}
