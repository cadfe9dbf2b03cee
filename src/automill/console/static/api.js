// The console's one door to the server: the public REST API (/v1) and the sign-in session.
// Every URL is relative to the server's root, read from <base href>, so a path prefix works.

export const root = new URL(document.baseURI).pathname;
let csrf = "";
let onSignedOut = () => {};

export function setCsrf(token) { csrf = token || ""; }
export function whenSignedOut(fn) { onSignedOut = fn; }

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.status || "";
    const violations = (err.details || []).flatMap((d) => d.fieldViolations || []);
    this.field = violations.length ? violations[0].field : "";
  }
}

export async function call(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  const res = await fetch(root + path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch { data = { error: { message: text.slice(0, 300) } }; }
  if (!res.ok) {
    if (res.status === 401 && !path.startsWith("ui/session")) onSignedOut();
    throw new ApiError(res.status, data);
  }
  return data;
}

/** GET/POST/... /v1/<path>. */
export const v1 = (method, path, body) => call(method, `v1/${path}`, body);

/** Every item of a paged list (at most `max`). */
export async function listAll(path, key, { filter = "", pageSize = 1000, max = 20000 } = {}) {
  const out = [];
  let token = "";
  do {
    const q = new URLSearchParams({ pageSize: String(pageSize) });
    if (filter) q.set("filter", filter);
    if (token) q.set("pageToken", token);
    const page = await v1("GET", `${path}?${q}`);
    out.push(...(page[key] || []));
    token = page.nextPageToken || "";
  } while (token && out.length < max);
  return out;
}

/** Poll an operation until it is done; `onUpdate(op)` after each read; `alive()` false stops it. */
export async function waitOperation(name, onUpdate, alive = () => true, every = 1000) {
  for (;;) {
    const op = await v1("GET", name);
    onUpdate && onUpdate(op);
    if (op.done || !alive()) return op;
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Upload files into gs://bucket/prefix through the browser upload endpoint; progress(0..1). */
export function upload(parent, bucket, prefix, files, progress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const f of files) form.append("file", f, f.name);
    const xhr = new XMLHttpRequest();
    const q = new URLSearchParams({ prefix });
    xhr.open("POST", `${root}upload/v1/${parent}/buckets/${encodeURIComponent(bucket)}/objects?${q}`);
    if (csrf) xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.upload.onprogress = (e) => e.lengthComputable && progress && progress(e.loaded / e.total);
    xhr.onload = () => {
      let data = {};
      try { data = JSON.parse(xhr.responseText || "{}"); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data); else reject(new ApiError(xhr.status, data));
    };
    xhr.onerror = () => reject(new ApiError(0, { error: { message: "the upload could not reach the server" } }));
    xhr.send(form);
  });
}

export const session = {
  get: () => call("GET", "ui/session"),
  signIn: (key) => call("POST", "ui/session", { key }),
  signOut: () => call("DELETE", "ui/session"),
};

/** gs://bucket/folder/ -> {bucket, prefix} (prefix without slashes at its ends), or null. */
export function splitGs(uri) {
  const m = /^gs:\/\/([^/]+)\/?(.*)$/.exec(String(uri || "").trim());
  return m ? { bucket: m[1], prefix: m[2].replace(/^\/+|\/+$/g, "") } : null;
}

/** The URL of a bucket folder's files (the browser download extension): alt "zip" for one zip of them all. */
export function folderUrl(parent, uri, alt = "") {
  const f = splitGs(uri);
  const q = new URLSearchParams({ prefix: f.prefix });
  if (alt) q.set("alt", alt);
  return `${root}download/v1/${parent}/buckets/${encodeURIComponent(f.bucket)}/objects?${q}`;
}

/** The files of a bucket folder: {folder, objects: [{uri, name, size}], totalBytes}. */
export function listFolder(parent, uri) {
  return call("GET", folderUrl(parent, uri).slice(root.length));
}
