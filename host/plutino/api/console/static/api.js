// The REST API as the console calls it: same origin, the bearer token from sessionStorage,
// JSON bodies sent as application/json (the API refuses other bodies with 415).

const TOKEN_KEY = "plutino.console.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// An answer other than 2xx: `status`, the API's `{error, message, type}` as `body`, and for a
// SQL error the position (`line`, `col`, 1-based) the API gives or its message names.
export class ApiError extends Error {
  constructor(status, body) {
    const message = typeof body === "object" && body !== null && body.message ? body.message
      : (typeof body === "string" && body) || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.body = body;
    let line = typeof body === "object" && body !== null ? body.line : undefined;
    let col = typeof body === "object" && body !== null ? body.col : undefined;
    if (line === undefined) {
      const m = /at line (\d+), col (\d+)/.exec(message);
      if (m) { line = Number(m[1]); col = Number(m[2]); }
    }
    this.line = line;
    this.col = col;
  }
}

// Call the API: resolves to the parsed JSON (or the text of a text answer); rejects with
// ApiError for an HTTP error, with TypeError when the server cannot be reached.
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = text;
  if ((response.headers.get("content-type") || "").includes("json") && text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);
