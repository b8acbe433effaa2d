// The one way to call the server: JSON in and out, errors as ApiError with the server's message.

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}
export function detailText(body) {
  if (!body) return "";
  if (typeof body === "string") return body;
  const d = body.detail;
  if (Array.isArray(d)) return d.map((e) => `${(e.loc || []).slice(1).join(".") || "request"}: ${e.msg}`).join("; ");
  return d || JSON.stringify(body);
}
export async function api(path, opts = {}) {
  const init = { credentials: "same-origin", ...opts };
  if (opts.json !== undefined) {
    init.method = init.method || "POST";
    init.headers = { "Content-Type": "application/json", ...(opts.headers || {}) };
    init.body = JSON.stringify(opts.json);
    delete init.json;
  }
  const res = await fetch(path, init);
  const type = res.headers.get("content-type") || "";
  const body = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new ApiError(res.status, detailText(body) || `HTTP ${res.status}`);
  return body;
}
