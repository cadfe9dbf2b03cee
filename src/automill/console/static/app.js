// The console's shell: reads the URL, signs in when the server has keys, draws the page it names,
// and tells of every operation that ends (on whichever console page is open).
import { ApiError, call, root, session, setCsrf, v1, whenSignedOut } from "./api.js";
import { clear, h, toast } from "./dom.js";
import { datasetsPage } from "./datasets.js";
import { datasetPage } from "./dataset.js";
import { modelPage } from "./model.js";
import { operationsPage } from "./operations.js";

export const state = { info: null, generation: 0 };
const main = () => document.getElementById("main");

/** The page URL of a console path (relative to the server root), for links and navigation. */
export const ui = (path) => `ui/${path}`;

export function go(url, replace = false) {
  const target = new URL(url, document.baseURI);
  if (replace) history.replaceState(null, "", target); else history.pushState(null, "", target);
  render();
}

function route() {
  const rest = decodeURIComponent(location.pathname.slice(root.length)).replace(/\/+$/, "");
  const params = new URLSearchParams(location.search);
  const m = rest.match(/^ui\/projects\/([^/]+)\/locations\/([^/]+)(?:\/(datasets|models|operations)(?:\/([^/]+))?)?$/);
  if (rest === "ui/signin") return { page: "signin" };
  if (!m) return { page: "home" };
  const [, project, loc, what = "datasets", id = ""] = m;
  return { page: id ? what.replace(/s$/, "") : what, project, location: loc, id, tab: params.get("tab") || "", params };
}

function header(r) {
  const nav = document.getElementById("nav");
  if (!r.project) { clear(nav); return; }
  const base = `projects/${r.project}/locations/${r.location}`;
  clear(nav,
    h("a", { href: ui(`${base}/datasets`), "data-nav": true, class: r.page.startsWith("dataset") ? "active" : "" }, "Datasets"),
    h("a", { href: ui(`${base}/operations`), "data-nav": true, class: r.page === "operations" ? "active" : "" }, "Operations"),
    h("span", { class: "muted project" }, `${r.project} · ${r.location}`));
  const who = document.getElementById("who");
  const p = state.info && state.info.principal;
  if (p && !p.anonymous) {
    clear(who, h("span", { class: "muted" }, `${p.name} (${p.role})`), " ",
      h("button", { class: "link", id: "signout", onclick: signOut }, "Sign out"));
  } else clear(who, h("span", { class: "muted" }, "local user"));
}

async function signOut() {
  try { await session.signOut(); } catch { /* the cookie is cleared either way */ }
  setCsrf("");
  state.info = await session.get();
  go(ui("signin"));
}

/** The session info the server put into the page shell (saves a request before the first page). */
function embeddedInfo() {
  const el = document.getElementById("session-info");
  if (!el) return null;
  el.remove(); // once: later renders ask the server
  try { return JSON.parse(el.textContent); } catch { return null; }
}

export async function render() {
  const gen = ++state.generation;
  const r = route();
  if (!state.info) state.info = embeddedInfo() || await session.get();
  setCsrf(state.info.csrfToken);
  if (!state.info.signedIn && r.page !== "signin") { go(ui("signin"), true); return; }
  if (r.page === "home" || (r.page === "signin" && state.info.signedIn)) {
    go(state.info.home || ui(`projects/${state.info.defaultProject}/locations/${state.info.defaultLocation}/datasets`), true);
    return;
  }
  header(r);
  const alive = () => gen === state.generation;
  const el = main();
  clear(el);
  document.title = "Automill";
  try {
    if (r.page === "signin") signInPage(el);
    else if (r.page === "datasets") await datasetsPage(el, r, alive);
    else if (r.page === "dataset") await datasetPage(el, r, alive);
    else if (r.page === "model") await modelPage(el, r, alive);
    else if (r.page === "operations" || r.page === "operation") await operationsPage(el, r, alive);
  } catch (err) {
    if (!alive()) return;
    clear(el, h("div", { class: "error-box" }, h("h2", {}, err instanceof ApiError ? `${err.code || err.status}` : "Error"),
      h("p", {}, err.message)));
  }
  if (alive()) el.dataset.ready = r.page;
}

function signInPage(el) {
  document.title = "Sign in · Automill";
  const input = h("input", { type: "password", id: "key", name: "key", autocomplete: "off", placeholder: "am_…", required: true, size: 60 });
  const form = h("form", { class: "card signin", id: "signin" },
    h("h1", {}, "Sign in"),
    h("p", {}, "This server requires an API key. An administrator creates one with ", h("code", {}, "automill keys create"), "."),
    h("label", { "data-field": "key" }, "API key", input, h("span", { class: "field-error" })),
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  if (state.info && state.info.reason) form.querySelector(".field-error").textContent = state.info.reason;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const info = await session.signIn(input.value);
      setCsrf(info.csrfToken);
      state.info = await session.get();
      go(info.home, true);
    } catch (err) {
      form.querySelector(".field-error").textContent = err.message;
    }
  });
  clear(el, form);
  input.focus();
}

// -- notifications: every operation of the project that ends while a console page is open ------------
// A long poll of the events extension (GET ui-api/v1/projects/P/events): a toast per ended operation,
// on whichever console page is open, and a badge with the number of operations still running.
let cursor = "";
let watching = "";
async function watchEvents() {
  for (;;) {
    const r = route();
    if (!r.project || !state.info || !state.info.signedIn) { await sleep(2000); continue; }
    if (watching !== r.project) { watching = r.project; cursor = ""; }
    try {
      const q = new URLSearchParams(cursor ? { after: cursor, waitSeconds: "25" } : { after: "now" });
      const page = await call("GET", `ui-api/v1/projects/${r.project}/events?${q}`);
      if (watching !== r.project) continue;
      const first = !cursor;
      cursor = page.nextCursor || cursor;
      if (first) continue;
      for (const ev of page.events || []) {
        const failed = ev.state !== "SUCCEEDED";
        const what = ev.kind ? ev.kind[0].toUpperCase() + ev.kind.slice(1).replace(/_/g, " ") : "Operation";
        toast(`${what}${ev.displayName ? ` of ${ev.displayName}` : ""} ${ev.state.toLowerCase()}${failed && ev.error ? `: ${ev.error.message}` : ""}`,
          failed ? "bad" : "good", (ev.link || "").replace(/^\/+/, ""));
        document.dispatchEvent(new CustomEvent("automill:operation-done", { detail: ev }));
      }
      if ((page.events || []).length) runningBadge();
    } catch { await sleep(5000); }
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function runningBadge() {
  const r = route();
  if (!r.project || !state.info || !state.info.signedIn) return;
  const parent = `projects/${r.project}/locations/${r.location}`;
  try {
    const page = await v1("GET", `${parent}/operations?filter=${encodeURIComponent("done=false")}&pageSize=1000`);
    const n = (page.operations || []).length;
    const badge = document.getElementById("running");
    badge.hidden = n === 0;
    clear(badge, h("a", { href: ui(`${parent}/operations?done=false`), "data-nav": true, id: "running-count" }, `${n} running`));
  } catch { /* the next round tries again */ }
}

document.addEventListener("click", (e) => {
  const a = e.target.closest && e.target.closest("a[data-nav]");
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  go(a.getAttribute("href"));
});
window.addEventListener("popstate", render);
whenSignedOut(() => { state.info = null; go(ui("signin"), true); });
// The page first; the notifications' long poll and the running badge start once it is drawn, so that
// their requests never delay the page's own.
render().finally(() => setTimeout(() => {
  watchEvents();
  runningBadge();
  setInterval(runningBadge, 5000);
}, 50));
