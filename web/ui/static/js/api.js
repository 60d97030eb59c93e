// The REST API from the pages: same-origin credentials (the session cookie), the CSRF
// token from <meta name="csrf-token"> on every unsafe request, JSON in and out. Errors
// are thrown as ApiError (the API's {"error": {code, message, fields}}) or NetworkError.

const BASE = "/api/v1";
const SAFE = new Set(["GET", "HEAD"]);

/** The API answered with an error. `fields` maps a dotted field path to what is wrong. */
export class ApiError extends Error {
  constructor(status, code, message, fields = {}, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.fields = fields;
    this.retryAfter = retryAfter;
  }
  get notFound() { return this.status === 404; }
  get conflict() { return this.status === 409; }
  get signedOut() { return this.status === 401; }
}

/** No answer at all (offline, server down). */
export class NetworkError extends Error {
  constructor(cause) {
    super("network error", { cause });
    this.name = "NetworkError";
  }
}

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content ?? "";
}

function url(path, query) {
  const target = new URL(BASE + path, window.location.origin);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null) continue;
    for (const item of Array.isArray(value) ? value : [value]) target.searchParams.append(key, item);
  }
  return target.pathname + target.search;
}

/**
 * request("PATCH", "/conversations/ID", { body: {...}, query: {...}, headers: {...}, signal })
 * → the parsed JSON (null for 204). A 401 (the session ended) sends the page to sign in.
 */
export async function request(method, path, { body, query, headers = {}, signal } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers }, signal };
  if (!SAFE.has(method)) init.headers["X-CSRF-Token"] = csrfToken();
  if (body !== undefined) {
    if (body instanceof FormData) {
      init.body = body;
    } else {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
  }
  let response;
  try {
    response = await fetch(url(path, query), init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new NetworkError(err);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = data?.error ?? {};
    const failure = new ApiError(
      response.status,
      error.code ?? "error",
      error.message ?? response.statusText,
      error.fields ?? {},
      response.headers.get("Retry-After"),
    );
    if (failure.signedOut) signIn();
    throw failure;
  }
  return data;
}

function signIn() {
  const next = window.location.pathname + window.location.search;
  window.location.assign(`/login?next=${encodeURIComponent(next)}`);
}

export const api = {
  get: (path, query, options = {}) => request("GET", path, { ...options, query }),
  post: (path, body, options = {}) => request("POST", path, { ...options, body }),
  patch: (path, body, options = {}) => request("PATCH", path, { ...options, body }),
  put: (path, body, options = {}) => request("PUT", path, { ...options, body }),
  delete: (path, options = {}) => request("DELETE", path, options),
};
