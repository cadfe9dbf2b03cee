// Datasets: the list (name, type, examples, created, last import), create and delete.
import { listAll, v1, waitOperation } from "./api.js";
import { go, ui } from "./app.js";
import { clear, esc, fmtInt, fmtTime, h, lastPart, showError } from "./dom.js";
import { TYPES, problemOf } from "./problems.js";
import { importState } from "./operations.js";

export async function datasetsPage(el, r, alive) {
  const parent = `projects/${r.project}/locations/${r.location}`;
  document.title = "Datasets · Automill";
  const table = h("tbody");
  const form = createForm(parent);
  clear(el, h("div", { class: "page-head" }, h("h1", {}, "Datasets"),
    h("button", { class: "primary", id: "new-dataset", onclick: () => { form.hidden = !form.hidden; form.querySelector("input").focus(); } }, "+ New dataset")),
  form,
  h("table", { class: "grid", id: "datasets" },
    h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Type"), h("th", { class: "num" }, "Examples"),
      h("th", {}, "Created"), h("th", {}, "Last import"), h("th", {}))), table));
  // One page of datasets first (drawn at once), then the last import of each from the operations list.
  const tokens = [r.params.get("pageToken") || ""];
  const q = new URLSearchParams({ pageSize: "100" });
  if (tokens[0]) q.set("pageToken", tokens[0]);
  const page = await v1("GET", `${parent}/datasets?${q}`);
  if (!alive()) return;
  const datasets = page.datasets || [];
  // The rows as one HTML string, set at once (no per-row DOM calls or listeners: one click handler
  // on the table serves every Delete button); a thousand-dataset project draws in one layout.
  table.innerHTML = datasets.length ? datasets.map((d) => {
    const id = esc(lastPart(d.name));
    return `<tr data-name="${esc(d.displayName)}" data-id="${id}"><td><a href="${esc(ui(d.name))}" data-nav>${esc(d.displayName)}</a></td>`
      + `<td>${esc(problemOf(d).label)}</td><td class="num">${fmtInt(d.exampleCount)}</td><td>${esc(fmtTime(d.createTime))}</td>`
      + `<td class="last-import pending"><span class="muted">…</span></td>`
      + `<td class="actions"><button class="link danger" data-delete="${id}">Delete</button></td></tr>`;
  }).join("") : '<tr><td colspan="6" class="muted">No datasets yet: create one with “New dataset”.</td></tr>';
  table.addEventListener("click", async (e) => {
    const button = e.target.closest && e.target.closest("button");
    if (!button) return;
    const cell = button.closest("td");
    const id = button.closest("tr").dataset.id;
    if (button.dataset.delete) {
      clear(cell, h("span", {}, "Delete? "), h("button", { class: "danger", "data-confirm": id }, "Delete"),
        h("button", { class: "link", "data-keep": id }, "Cancel"));
    } else if (button.dataset.keep) {
      clear(cell, h("button", { class: "link danger", "data-delete": id }, "Delete"));
    } else if (button.dataset.confirm) {
      button.disabled = true;
      try {
        const op = await v1("DELETE", `${parent}/datasets/${id}`);
        await waitOperation(op.name);
        datasetsPage(el, r, alive);
      } catch (err) { clear(cell, h("span", { class: "field-error" }, err.message)); }
    }
  });
  if (page.nextPageToken || tokens[0]) {
    el.append(h("div", { class: "pager" },
      tokens[0] ? h("a", { href: ui(`${parent}/datasets`), "data-nav": true }, "‹ First page") : null,
      page.nextPageToken ? h("a", { href: ui(`${parent}/datasets?pageToken=${encodeURIComponent(page.nextPageToken)}`), "data-nav": true, id: "next-datasets" }, "Next page ›") : null));
  }
  listAll(`${parent}/operations`, "operations", { max: 20000 }).then((ops) => {
    if (!alive()) return;
    const lastImport = new Map();
    for (const op of ops) {
      const on = op.metadata && op.metadata.worksOn;
      if (on && op.metadata.importDataDetails !== undefined) lastImport.set(on, op); // oldest first: the last wins
    }
    for (const row of table.querySelectorAll("tr[data-id]")) {
      const cell = row.querySelector("td.last-import");
      const imp = lastImport.get(`${parent}/datasets/${row.dataset.id}`);
      clear(cell, imp ? importState(imp) : h("span", { class: "muted" }, "none"));
      cell.classList.remove("pending");
    }
  }).catch(() => {});
}

function createForm(parent) {
  const name = h("input", { name: "displayName", id: "dataset-name", required: true, maxlength: 64, placeholder: "my_dataset" });
  const type = h("select", { name: "type", id: "dataset-type" }, TYPES.map((t) => h("option", { value: t.id }, t.label)));
  const smax = h("input", { type: "number", id: "sentiment-max", value: 4, min: 1, max: 10 });
  const smaxRow = h("label", { "data-field": "sentiment_max sentimentMax", hidden: true }, "Sentiment max (1–10)", smax, h("span", { class: "field-error" }));
  type.addEventListener("change", () => { smaxRow.hidden = type.value !== "sentiment"; });
  const general = h("div", { class: "field-error" });
  const form = h("form", { class: "card", id: "create-dataset", hidden: true },
    h("h2", {}, "New dataset"),
    h("label", { "data-field": "display_name displayName" }, "Dataset name", name, h("span", { class: "field-error" })),
    h("label", { "data-field": "dataset_metadata" }, "Objective", type, h("span", { class: "field-error" })),
    smaxRow, general,
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Create"),
      h("button", { type: "button", class: "link", onclick: () => { form.hidden = true; } }, "Cancel")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const t = TYPES.find((x) => x.id === type.value);
    const meta = t.id === "sentiment" ? { sentimentMax: Number(smax.value) } : t.meta;
    showError(form, null, general);
    try {
      const op = await v1("POST", `${parent}/datasets`, { displayName: name.value, [t.key]: meta });
      const finished = await waitOperation(op.name);
      if (finished.error) throw Object.assign(new Error(finished.error.message), { field: "" });
      go(ui(`${finished.response.name}?tab=import`));
    } catch (err) { showError(form, err, general); }
  });
  return form;
}
