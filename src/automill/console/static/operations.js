// Operations: the list with the API's filters (done, worksOn) and a kind filter, details, cancel;
// and the helpers other pages use to show one operation's progress and partial failures.
import { listAll, v1 } from "./api.js";
import { ui } from "./app.js";
import { clear, fmtTime, h, lastPart, progressBar } from "./dom.js";

const KINDS = {
  createDatasetDetails: "Create dataset", deleteDetails: "Delete", importDataDetails: "Import", exportDataDetails: "Export data",
  createModelDetails: "Training", deployModelDetails: "Deploy", undeployModelDetails: "Undeploy",
  exportModelDetails: "Export model", batchPredictDetails: "Batch prediction",
};

export function kindKey(op) { return Object.keys(op.metadata || {}).find((k) => k in KINDS) || ""; }
export function kindOf(op) { return KINDS[kindKey(op)] || "Operation"; }

export function stateOf(op) {
  if (!op.done) return "running";
  if (op.error && op.error.code) return op.error.code === 1 || /cancel/i.test(op.error.message || "") ? "cancelled" : "failed";
  return "succeeded";
}

/** A short state badge of an import (or any) operation: running 40% / succeeded / failed. */
export function importState(op) {
  const st = stateOf(op);
  const pf = ((op.metadata || {}).partialFailures || []).length;
  const pct = (op.metadata || {}).progressPercent || 0;
  return h("span", { class: `state ${st}`, title: (op.error && op.error.message) || "" },
    st === "running" ? `running ${pct}%` : st, pf ? ` (${pf} row errors)` : "");
}

/** Progress, stage, error and partial failures of one operation, redrawn as it is polled. */
export function operationView(op) {
  const meta = op.metadata || {};
  const st = stateOf(op);
  const failures = meta.partialFailures || [];
  return h("div", { class: `op ${st}`, "data-op": lastPart(op.name), "data-state": st },
    h("div", { class: "op-head" }, h("strong", {}, kindOf(op)), " ", h("span", { class: `state ${st}` }, st),
      h("span", { class: "muted" }, ` ${fmtTime(meta.createTime)}`)),
    st === "running" ? progressBar((meta.progressPercent || 0) / 100, `${meta.progressPercent || 0}% ${meta.stage || ""}`) : null,
    op.error && op.error.message ? h("p", { class: "field-error" }, op.error.message) : null,
    failures.length ? h("details", { class: "failures", open: true }, h("summary", {}, `${failures.length} partial failures`),
      h("ul", {}, failures.map((f) => h("li", {}, f.message)))) : null);
}

export async function operationsPage(el, r, alive) {
  const parent = `projects/${r.project}/locations/${r.location}`;
  document.title = "Operations · Automill";
  const done = h("select", { id: "filter-done" }, h("option", { value: "" }, "All"),
    h("option", { value: "false" }, "Running"), h("option", { value: "true" }, "Done"));
  const kind = h("select", { id: "filter-kind" }, h("option", { value: "" }, "All kinds"),
    Object.entries(KINDS).map(([k, v]) => h("option", { value: k }, v)));
  const on = h("input", { id: "filter-works-on", placeholder: "dataset or model ID", size: 24 });
  done.value = r.params.get("done") || "";
  kind.value = r.params.get("kind") || "";
  on.value = r.params.get("worksOn") || "";
  const body = h("tbody");
  const detail = h("div", { id: "op-detail" });
  const apply = () => {
    const q = new URLSearchParams();
    for (const [k, v] of [["done", done.value], ["kind", kind.value], ["worksOn", on.value]]) if (v) q.set(k, v);
    history.replaceState(null, "", `${location.pathname}${q.toString() ? `?${q}` : ""}`);
    load();
  };
  for (const x of [done, kind]) x.addEventListener("change", apply);
  on.addEventListener("change", apply);
  clear(el, h("div", { class: "page-head" }, h("h1", {}, "Operations")),
    h("div", { class: "filters" }, h("label", {}, "State ", done), h("label", {}, "Kind ", kind), h("label", {}, "Works on ", on)),
    h("table", { class: "grid", id: "operations" }, h("thead", {}, h("tr", {}, h("th", {}, "Operation"), h("th", {}, "Kind"),
      h("th", {}, "Works on"), h("th", {}, "State"), h("th", {}, "Created"), h("th", {}, "Updated"), h("th", {}))), body), detail);

  async function load() {
    const terms = [];
    if (done.value) terms.push(`done=${done.value}`);
    if (on.value) terms.push(`worksOn=${on.value.trim()}`);
    const ops = await listAll(`${parent}/operations`, "operations", { filter: terms.join(" AND "), max: 5000 });
    if (!alive()) return;
    const shown = ops.filter((o) => !kind.value || kindKey(o) === kind.value).reverse();
    clear(body, shown.length ? shown.map((op) => row(op)) : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No operations.")));
    const selected = r.params.get("op");
    const pick = selected && shown.find((o) => lastPart(o.name) === selected);
    if (pick) showDetail(pick);
  }

  function showDetail(op) {
    clear(detail, h("h2", {}, `Operation ${lastPart(op.name)}`), operationView(op), h("pre", { class: "json" }, JSON.stringify(op, null, 2)));
  }

  function row(op) {
    const meta = op.metadata || {};
    const target = meta.worksOn || "";
    const st = stateOf(op);
    const cancel = st === "running" ? h("button", { class: "link danger", "data-cancel": lastPart(op.name), onclick: async (e) => {
      e.target.disabled = true;
      try { await v1("POST", `${op.name}:cancel`, {}); } catch (err) { e.target.replaceWith(h("span", { class: "field-error" }, err.message)); return; }
      setTimeout(load, 800);
    } }, "Cancel") : null;
    return h("tr", { "data-op": lastPart(op.name) },
      h("td", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); showDetail(op); } }, lastPart(op.name))),
      h("td", {}, kindOf(op)),
      h("td", {}, target ? h("a", { href: ui(target), "data-nav": true }, lastPart(target)) : ""),
      h("td", {}, importState(op)), h("td", {}, fmtTime(meta.createTime)), h("td", {}, fmtTime(meta.updateTime)), h("td", {}, cancel));
  }
  await load();
  const refresh = setInterval(() => (alive() ? load().catch(() => {}) : clearInterval(refresh)), 4000);
}
