// One dataset: its tabs Items, Import, Train, Evaluate and Test & use.
import { listAll, upload, v1, waitOperation } from "./api.js";
import { go, state, ui } from "./app.js";
import { SPLITS, colorOf, highlighted, imageWithBoxes, splitBars } from "./charts.js";
import { clear, fmtNum, fmtTime, h, lastPart, progressBar, showError } from "./dom.js";
import { evaluationView, predictView } from "./model.js";
import { kindKey, operationView, stateOf } from "./operations.js";
import { modelTypes, problemOf, recommendedBudget } from "./problems.js";

const TABS = [["items", "Items"], ["import", "Import"], ["train", "Train"], ["evaluate", "Evaluate"], ["predict", "Test & use"]];

export async function datasetPage(el, r, alive) {
  const name = `projects/${r.project}/locations/${r.location}/datasets/${r.id}`;
  const ds = await v1("GET", name);
  if (!alive()) return;
  const p = problemOf(ds);
  const tab = TABS.some(([t]) => t === r.tab) ? r.tab : (ds.exampleCount ? "items" : "import");
  document.title = `${ds.displayName} · Automill`;
  const body = h("section", { class: "tab-body", id: `tab-${tab}` });
  clear(el,
    h("div", { class: "page-head" }, h("h1", {}, ds.displayName),
      h("span", { class: "muted" }, `${p.label} · ${(ds.exampleCount || 0).toLocaleString()} examples · ID ${r.id}`)),
    h("nav", { class: "tabs" }, TABS.map(([t, label]) => h("a", { href: ui(`${name}?tab=${t}`), "data-nav": true, "data-tab": t, class: t === tab ? "active" : "" }, label))),
    body);
  const ctx = { ds, p, name, parent: name.split("/datasets/")[0], r, alive };
  await { items: itemsTab, import: importTab, train: trainTab, evaluate: evaluateTab, predict: predictTab }[tab](body, ctx);
}

// -- Items ------------------------------------------------------------------------------------------
async function itemsTab(el, ctx) {
  const { name, p, r } = ctx;
  const label = h("select", { id: "filter-label" }, h("option", { value: "" }, "All labels"));
  const use = h("select", { id: "filter-use" }, h("option", { value: "" }, "All splits"), SPLITS.map(([k]) => h("option", { value: k }, k.toLowerCase())));
  const chart = h("div", { class: "card", id: "label-counts" });
  const grid = h("div", { class: p.isImage ? "items images" : "items texts", id: "items" });
  const pager = h("div", { class: "pager" });
  label.value = r.params.get("label") || "";
  use.value = r.params.get("mlUse") || "";
  const colors = new Map();
  let tokens = [""];
  clear(el, chart, h("div", { class: "filters" }, h("label", {}, "Label ", label), h("label", {}, "Split ", use)), grid, pager);

  async function load(index) {
    const terms = [];
    if (use.value) terms.push(`mlUse=${use.value}`);
    if (label.value) terms.push(`annotationSpecId=${label.value}`);
    const q = new URLSearchParams({ pageSize: p.isImage ? "24" : "20" });
    if (terms.length) q.set("filter", terms.join(" AND "));
    if (tokens[index]) q.set("pageToken", tokens[index]);
    const page = await v1("GET", `${name}/examples?${q}`);
    if (!ctx.alive()) return;
    if (page.labelCounts && index === 0) {
      if (label.options.length === 1) {
        page.labelCounts.forEach((c, i) => { colors.set(c.annotationSpecId, colorOf(i)); label.append(h("option", { value: c.annotationSpecId }, c.displayName)); });
        label.value = r.params.get("label") || "";
        clear(chart, h("h2", {}, "Examples per label"), page.labelCounts.length
          ? splitBars(page.labelCounts.map((c) => ({ ...c, label: c.displayName })))
          : h("p", { class: "muted" }, "No labels yet."));
      }
      ctx.total = page.totalSize || 0;
    }
    tokens = tokens.slice(0, index + 1);
    if (page.nextPageToken) tokens[index + 1] = page.nextPageToken;
    const examples = page.examples || [];
    clear(grid, examples.length ? examples.map((ex) => itemCard(ex, p, colors)) : h("p", { class: "muted" }, "No examples match."));
    const size = Number(q.get("pageSize"));
    const from = index * size + 1;
    clear(pager,
      h("button", { id: "prev-page", disabled: index === 0, onclick: () => load(index - 1) }, "‹ Previous"),
      h("span", { class: "muted", id: "page-info" }, examples.length ? `${from}–${from + examples.length - 1} of ${(ctx.total || 0).toLocaleString()}` : ""),
      h("button", { id: "next-page", disabled: !page.nextPageToken, onclick: () => load(index + 1) }, "Next ›"));
    grid.dataset.page = String(index);
  }
  const refilter = () => {
    tokens = [""];
    const q = new URLSearchParams({ tab: "items" });
    if (label.value) q.set("label", label.value);
    if (use.value) q.set("mlUse", use.value);
    history.replaceState(null, "", `${location.pathname}?${q}`);
    load(0);
  };
  label.addEventListener("change", refilter);
  use.addEventListener("change", refilter);
  await load(0);
}

function itemCard(ex, p, colors) {
  const anns = ex.annotations || [];
  const chips = h("div", { class: "chips" }, anns.filter((a) => !a.textExtraction && !a.imageObjectDetection).map((a) => {
    const c = h("span", { class: "chip" }, a.textSentiment ? `sentiment ${a.textSentiment.sentiment}` : a.displayName);
    c.style.borderColor = colors.get(a.annotationSpecId) || "#999";
    return c;
  }), h("span", { class: `split ${ex.mlUse.toLowerCase()}` }, ex.mlUse.toLowerCase()));
  if (p.isImage) {
    const boxes = anns.filter((a) => a.imageObjectDetection).map((a) => ({
      vertices: a.imageObjectDetection.boundingBox.normalizedVertices.map((v) => ({ x: v.x || 0, y: v.y || 0 })),
      color: colors.get(a.annotationSpecId) || "#f00", label: a.displayName,
    }));
    const counts = {};
    for (const b of boxes) counts[b.label] = (counts[b.label] || 0) + 1;
    return h("figure", { class: "item", "data-example": lastPart(ex.name), "data-boxes": boxes.length },
      imageWithBoxes(`v1/${ex.name}:media`, boxes, lastPart(ex.sourceUri || ex.name)),
      h("figcaption", {}, chips, boxes.length ? h("span", { class: "muted" }, Object.entries(counts).map(([k, v]) => `${k} ×${v}`).join(", ")) : null));
  }
  const text = (ex.textSnippet && ex.textSnippet.content) || "";
  const spans = anns.filter((a) => a.textExtraction).map((a) => ({
    start: Number(a.textExtraction.textSegment.startOffset || 0), end: Number(a.textExtraction.textSegment.endOffset || 0),
    label: a.displayName, color: colors.get(a.annotationSpecId) || "#f00",
  }));
  const shown = spans.length ? highlighted(text, spans) : h("p", { class: "snippet" }, text.length > 600 ? `${text.slice(0, 600)}…` : text);
  return h("div", { class: "item text", "data-example": lastPart(ex.name), "data-spans": spans.length }, shown, chips);
}

// -- Import -----------------------------------------------------------------------------------------
async function importTab(el, ctx) {
  const { name, p, parent, r } = ctx;
  const history = h("div", { id: "imports" });
  const gcs = h("input", { id: "import-uri", name: "inputUris", size: 60, placeholder: "gs://bucket/path/file.csv" });
  const general = h("div", { class: "field-error" });
  const gcsForm = h("form", { class: "card", id: "import-gcs" }, h("h2", {}, "Select a CSV or JSONL file on Cloud Storage"),
    h("label", { "data-field": "input_uris inputUris gcs_source input_config" }, "File path ", gcs, h("span", { class: "field-error" })),
    general, h("button", { class: "primary", type: "submit" }, "Import"));
  gcsForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    showError(gcsForm, null, general);
    try { await startImport([gcs.value.trim()]); } catch (err) { showError(gcsForm, err, general); }
  });

  const files = h("input", { type: "file", id: "upload-files", multiple: true, accept: p.isImage ? ".csv,.jsonl,image/*" : ".csv,.jsonl,.txt,.pdf" });
  const dest = h("input", { id: "upload-dest", size: 50, value: `gs://automill-uploads/${r.id}/${new Date().toISOString().replace(/\D/g, "").slice(0, 14)}` });
  const labelIn = h("input", { id: "upload-label", size: 20, placeholder: "optional" });
  const progress = h("div", { id: "upload-progress" });
  const upError = h("div", { class: "field-error" });
  const upForm = h("form", { class: "card", id: "import-upload" }, h("h2", {}, "Upload files from your computer"),
    h("p", { class: "muted" }, p.isImage
      ? "Pick a CSV or JSONL that lists your images, and the images; or only images (they get the label below, or none)."
      : "Pick CSV or JSONL files (with the text files or PDFs they name)."),
    h("label", { "data-field": "file files" }, "Files ", files, h("span", { class: "field-error" })),
    h("label", { "data-field": "prefix bucket" }, "Destination folder ", dest, h("span", { class: "field-error" })),
    p.isImage && p.kind === "image" ? h("label", {}, "Label for images without a CSV ", labelIn) : null,
    progress, upError, h("button", { class: "primary", type: "submit" }, "Upload and import"));
  upForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    showError(upForm, null, upError);
    const picked = [...files.files];
    const m = dest.value.trim().match(/^gs:\/\/([^/]+)\/?(.*)$/);
    if (!picked.length) { showError(upForm, { field: "files", message: "pick at least one file" }, upError); return; }
    if (!m) { showError(upForm, { field: "prefix", message: "the destination must be gs://BUCKET/FOLDER" }, upError); return; }
    const [, bucket, folder] = m;
    if (!/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(bucket) || bucket.includes("..")) {
      showError(upForm, { field: "prefix", message: `${bucket} is not a bucket name: 3 to 63 lower-case letters, digits, '-', '_' or '.'` }, upError);
      return;
    }
    const prefix = folder.replace(/\/?$/, "/").replace(/^\/$/, "");
    try {
      clear(progress, progressBar(0, "uploading…"));
      await upload(parent, bucket, prefix, picked, (f) => clear(progress, progressBar(f, `uploading ${Math.round(f * 100)}%`)));
      let indexes = picked.filter((f) => /\.(csv|jsonl)$/i.test(f.name)).map((f) => `gs://${bucket}/${prefix}${f.name}`);
      if (!indexes.length && p.isImage) {
        const rows = picked.map((f) => `UNASSIGNED,gs://${bucket}/${prefix}${f.name}${labelIn.value ? `,${labelIn.value}` : ""}`);
        const csv = new File([rows.join("\n") + "\n"], "uploaded.csv", { type: "text/csv" });
        await upload(parent, bucket, prefix, [csv]);
        indexes = [`gs://${bucket}/${prefix}uploaded.csv`];
      }
      clear(progress, progressBar(1, `uploaded ${picked.length} files`));
      if (!indexes.length) throw Object.assign(new Error("no CSV or JSONL file among the uploads: nothing to import"), { field: "files" });
      await startImport(indexes);
    } catch (err) { clear(progress); showError(upForm, err, upError); }
  });

  async function startImport(uris) {
    const op = await v1("POST", `${name}:importData`, { inputConfig: { gcsSource: { inputUris: uris } } });
    await loadHistory();
    const slot = history.querySelector(`[data-op="${lastPart(op.name)}"]`);
    await waitOperation(op.name, (o) => { const view = operationView(o); const s = history.querySelector(`[data-op="${lastPart(o.name)}"]`) || slot; if (s) s.replaceWith(view); }, ctx.alive);
  }
  async function loadHistory() {
    const ops = await listAll(`${parent}/operations`, "operations", { filter: `worksOn="${name}"` });
    const imports = ops.filter((o) => kindKey(o) === "importDataDetails").reverse();
    clear(history, h("h2", {}, "Imports"), imports.length ? imports.map(operationView) : h("p", { class: "muted" }, "No imports yet."));
    for (const o of imports.filter((x) => !x.done)) waitOperation(o.name, (n) => { const s = history.querySelector(`[data-op="${lastPart(n.name)}"]`); if (s) s.replaceWith(operationView(n)); }, ctx.alive).catch(() => {});
  }
  clear(el, gcsForm, upForm, history);
  await loadHistory();
}

// -- Train ------------------------------------------------------------------------------------------
async function trainTab(el, ctx) {
  const { name, p, parent, r } = ctx;
  const list = h("div", { id: "trainings" });
  const panel = h("aside", { class: "side-panel", id: "train-panel", hidden: true });
  clear(el, h("div", { class: "page-head" }, h("h2", {}, "Models"),
    h("button", { class: "primary", id: "train-new", onclick: () => openPanel(panel, ctx, null, () => load()) }, "Train new model")), list, panel);

  async function load() {
    const [models, ops] = await Promise.all([
      listAll(`${parent}/models`, "model", { filter: `dataset_id=${r.id}` }),
      listAll(`${parent}/operations`, "operations", { filter: `worksOn="${name}"` }),
    ]);
    if (!ctx.alive()) return;
    const trainings = ops.filter((o) => kindKey(o) === "createModelDetails").reverse();
    const made = new Set(trainings.map((o) => o.response && o.response.name).filter(Boolean));
    const rows = trainings.map((op) => (op.response && op.response.name
      ? modelRow(models.find((m) => m.name === op.response.name) || op.response, ctx, load, panel, true)
      : trainingRow(op, load)));
    for (const m of models) if (!made.has(m.name)) rows.push(modelRow(m, ctx, load, panel, true));
    clear(list, rows.length ? rows : h("p", { class: "muted" }, "No models yet: train one with “Train new model”."));
    if (trainings.some((o) => !o.done)) setTimeout(() => ctx.alive() && load(), 2000);
  }
  await load();
  if (r.params.get("resume")) {
    const base = await v1("GET", `${parent}/models/${r.params.get("resume")}`).catch(() => null);
    if (base) openPanel(panel, ctx, base, () => load());
  }
}

function trainingRow(op, reload) {
  const st = stateOf(op);
  const meta = op.metadata || {};
  const started = new Date(meta.createTime);
  const elapsed = Math.max(0, ((st === "running" ? Date.now() : new Date(meta.updateTime)) - started) / 1000);
  return h("div", { class: `card training ${st}`, "data-op": lastPart(op.name), "data-state": st },
    h("div", { class: "op-head" }, h("strong", {}, "Training"), " ", h("span", { class: `state ${st}` }, st),
      h("span", { class: "muted" }, ` started ${fmtTime(meta.createTime)} · ${Math.round(elapsed)} s elapsed`)),
    st === "running" ? progressBar((meta.progressPercent || 0) / 100, `${meta.progressPercent || 0}% ${meta.stage || ""}`) : null,
    op.error && op.error.message ? h("p", { class: "field-error" }, op.error.message) : null,
    st === "running" ? h("button", { class: "danger", "data-cancel": lastPart(op.name), onclick: async (e) => {
      e.target.disabled = true;
      await v1("POST", `${op.name}:cancel`, {}).catch(() => {});
      setTimeout(reload, 800);
    } }, "Cancel training") : null);
}

function modelRow(m, ctx, reload, panel) {
  const p = problemOf(m);
  const meta = m[p.modelKey] || {};
  const why = h("span", { class: "muted eligibility" });
  const resume = h("button", { class: "link", "data-resume": lastPart(m.name), hidden: true, onclick: () => openPanel(panel, ctx, m, reload) }, "Resume training");
  v1("GET", `${m.name}:resumeEligibility`).then((e) => {
    if (e.eligible) resume.hidden = false;
    else why.textContent = `Not resumable: ${(e.reasons || []).map((x) => x.message).join("; ")}`;
  }).catch(() => {});
  return h("div", { class: "card model", "data-model": lastPart(m.name) },
    h("div", { class: "op-head" }, h("a", { href: ui(`${m.name}?tab=evaluate`), "data-nav": true }, h("strong", {}, m.displayName)),
      " ", h("span", { class: "state succeeded" }, "trained"), h("span", { class: "muted" }, ` ${fmtTime(m.createTime)} · ${m.deploymentState === "DEPLOYED" ? "deployed" : "not deployed"}`)),
    h("p", { class: "muted" }, [meta.modelType ? `model type ${meta.modelType}` : "", meta.stopReason ? `stop reason ${meta.stopReason}` : "",
      meta.trainCostMilliNodeHours ? `cost ${fmtNum(meta.trainCostMilliNodeHours)} of ${fmtNum(meta.trainBudgetMilliNodeHours)} milli node hours` : "",
      meta.baseModelId ? `resumed from ${meta.baseModelId}` : ""].filter(Boolean).join(" · ")),
    h("div", { class: "buttons" }, h("a", { href: ui(`${m.name}?tab=evaluate`), "data-nav": true, class: "button" }, "See full evaluation"), resume, why));
}

function openPanel(panel, ctx, base, reload) {
  const { ds, p, parent, r } = ctx;
  const limits = ((state.info && state.info.budgets) || {})[p.modelKey] || {};
  const stamp = new Date().toISOString().replace(/\D/g, "").slice(0, 14);
  const name = h("input", { id: "model-name", maxlength: 32, value: `${ds.displayName}_${stamp}`.slice(0, 32) });
  const types = modelTypes(p.kind);
  const current = base ? (base[p.modelKey] || {}).modelType : "mobile-versatile-1";
  const radios = types.map((t) => h("label", { class: "radio" }, h("input", { type: "radio", name: "modelType", value: t.value, checked: t.value === current, disabled: !!base }),
    h("strong", {}, t.label), h("span", { class: "muted" }, ` ${t.value} — ${t.hint}`)));
  const recommended = recommendedBudget(p.kind, ds.exampleCount || 0, limits);
  const budget = h("input", { type: "number", id: "budget", value: recommended, min: limits.min, max: limits.max, step: 1 });
  const fmt = (n) => Number(n).toLocaleString();
  const general = h("div", { class: "field-error" });
  const form = h("form", { id: "train-form", novalidate: true }, // the API checks, and says why next to the field
    h("h2", {}, base ? `Resume training of ${base.displayName}` : "Train new model"),
    h("h3", {}, "1. Define your model"),
    h("label", { "data-field": "display_name displayName" }, "Model name ", name, h("span", { class: "field-error" })),
    base ? h("p", { class: "muted", id: "base-model" }, `Base model: ${base.displayName} (${lastPart(base.name)}), same model type and labels`) : null,
    h("h3", {}, "2. Optimize model for"), h("div", { "data-field": "model_type modelType model_metadata" }, radios, h("span", { class: "field-error" })),
    h("h3", {}, "3. Set a node hour budget"),
    h("label", { "data-field": "train_budget_milli_node_hours trainBudgetMilliNodeHours train_budget" }, "Budget (milli node hours) ", budget, h("span", { class: "field-error" })),
    h("p", { class: "muted", id: "budget-help" },
      `Recommended for ${(ds.exampleCount || 0).toLocaleString()} examples: ${recommended.toLocaleString()} milli node hours. `,
      `One node hour (1,000) is one worker process of this server for one hour; training stops early when the model stops improving. `,
      limits.max ? h("span", { id: "budget-limits" }, `The API accepts ${fmt(limits.min)} to ${fmt(limits.max)} `,
        `(none or 0: this server's default, ${fmt(limits.default)})`,
        limits.cap ? `; this server caps every training at ${fmt(limits.cap)}: a larger budget trains with ${fmt(limits.cap)}.` : ".") : null),
    general,
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary", id: "start-training" }, "Start training"),
      h("button", { type: "button", class: "link", onclick: () => { panel.hidden = true; } }, "Cancel")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    showError(form, null, general);
    const checked = form.querySelector("input[name=modelType]:checked");
    const body = { displayName: name.value, datasetId: r.id,
      [p.modelKey]: { modelType: checked ? checked.value : "", trainBudgetMilliNodeHours: budget.value } };
    if (base) body.baseModelId = lastPart(base.name);
    try {
      await v1("POST", `${parent}/models`, body);
      panel.hidden = true;
      reload();
    } catch (err) { showError(form, err, general); }
  });
  clear(panel, form);
  panel.hidden = false;
  name.focus();
}

// -- Evaluate and Test & use: the chosen model's pages ------------------------------------------------
async function pickModel(el, ctx, tab, view) {
  const { parent, r } = ctx;
  const models = await listAll(`${parent}/models`, "model", { filter: `dataset_id=${r.id}` });
  if (!ctx.alive()) return;
  if (!models.length) { clear(el, h("p", { class: "muted" }, "No trained model yet: train one on the Train tab.")); return; }
  models.sort((a, b) => (a.createTime < b.createTime ? 1 : -1));
  const chosen = models.find((m) => lastPart(m.name) === r.params.get("model")) || models[0];
  const select = h("select", { id: "model-select" }, models.map((m) => h("option", { value: lastPart(m.name), selected: m === chosen }, `${m.displayName} (${lastPart(m.name)})`)));
  select.addEventListener("change", () => go(ui(`${ctx.name}?tab=${tab}&model=${select.value}`)));
  const body = h("div");
  clear(el, h("div", { class: "filters" }, h("label", {}, "Model ", select), h("a", { href: ui(`${chosen.name}?tab=${tab}`), "data-nav": true }, "open model page")), body);
  await view(body, chosen, ctx.alive);
}
const evaluateTab = (el, ctx) => pickModel(el, ctx, "evaluate", evaluationView);
const predictTab = (el, ctx) => pickModel(el, ctx, "predict", predictView);
