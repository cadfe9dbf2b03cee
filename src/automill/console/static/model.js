// One model: Evaluate, Test & use (deploy, predict, batch predict) and Export.
import { folderUrl, listFolder, upload, v1, waitOperation, listAll } from "./api.js";
import { ui } from "./app.js";
import { colorOf, heatmap, highlighted, imageWithBoxes, prCurve } from "./charts.js";
import { clear, fmtNum, h, lastPart, showError } from "./dom.js";
import { operationView } from "./operations.js";
import { problemOf } from "./problems.js";

const TABS = [["evaluate", "Evaluate"], ["predict", "Test & use"], ["export", "Export"]];

/** A sentiment model's scale is its dataset's (a model's metadata does not repeat it): copied in, for the
 * pages that show "sentiment 2 of 4". Other models are returned as they are. */
async function withSentimentMax(model) {
  const meta = model.textSentimentModelMetadata;
  if (!meta || meta.sentimentMax !== undefined) return model;
  const ds = await v1("GET", `${model.name.split("/models/")[0]}/datasets/${model.datasetId}`).catch(() => ({}));
  const max = (ds.textSentimentDatasetMetadata || {}).sentimentMax;
  return max === undefined ? model : { ...model, textSentimentModelMetadata: { ...meta, sentimentMax: max } };
}

export async function modelPage(el, r, alive) {
  const name = `projects/${r.project}/locations/${r.location}/models/${r.id}`;
  const model = await withSentimentMax(await v1("GET", name));
  if (!alive()) return;
  const p = problemOf(model);
  const tab = TABS.some(([t]) => t === r.tab) ? r.tab : "evaluate";
  const dsName = `projects/${r.project}/locations/${r.location}/datasets/${model.datasetId}`;
  document.title = `${model.displayName} · Automill`;
  const body = h("section", { class: "tab-body", id: `tab-${tab}` });
  clear(el,
    h("div", { class: "page-head" }, h("h1", {}, model.displayName),
      h("span", { class: "muted" }, `${p.label} · model ${r.id} · dataset `, h("a", { href: ui(`${dsName}?tab=train`), "data-nav": true }, model.datasetId))),
    h("nav", { class: "tabs" }, TABS.map(([t, label]) => h("a", { href: ui(`${name}?tab=${t}`), "data-nav": true, "data-tab": t, class: t === tab ? "active" : "" }, label))),
    body);
  await { evaluate: evaluationView, predict: predictView, export: exportView }[tab](body, model, alive);
}

// -- Evaluate ---------------------------------------------------------------------------------------
const METRIC_KEYS = ["classificationEvaluationMetrics", "textSentimentEvaluationMetrics", "textExtractionEvaluationMetrics", "imageObjectDetectionEvaluationMetrics"];
const metricsOf = (ev) => { const k = METRIC_KEYS.find((x) => ev[x]); return [k, k ? ev[k] : {}]; };
const entriesOf = (m) => m.confidenceMetricsEntry || m.confidenceMetricsEntries || [];

/** The entry whose threshold is closest to t (entries list thresholds from the API's evaluation). */
function atThreshold(entries, t) {
  let best = null;
  for (const e of entries) {
    const d = Math.abs((e.confidenceThreshold || 0) - t);
    if (!best || d < best.d) best = { d, e };
  }
  return best ? best.e : {};
}

export async function evaluationView(el, model, alive) {
  const evals = await listAll(`${model.name}/modelEvaluations`, "modelEvaluation");
  if (!alive()) return;
  const overall = evals.find((e) => !e.annotationSpecId) || evals[0];
  if (!overall) { clear(el, h("p", { class: "muted" }, "This model has no evaluation.")); return; }
  const perLabel = evals.filter((e) => e !== overall && e.annotationSpecId);
  const [kind, m] = metricsOf(overall);
  const content = h("div", { class: "evaluation", "data-kind": kind });
  clear(el, content);
  const header = h("p", { class: "muted" }, `${fmtNum(overall.evaluatedExampleCount)} test examples evaluated`);
  if (kind === "textSentimentEvaluationMetrics") {
    content.append(header, metricsTable([["Precision", m.precision], ["Recall", m.recall], ["F1", m.f1Score],
      ["Mean absolute error", m.meanAbsoluteError], ["Mean squared error", m.meanSquaredError],
      ["Linear kappa", m.linearKappa], ["Quadratic kappa", m.quadraticKappa]]), confusion(m.confusionMatrix),
    labelTable(perLabel, (e) => { const x = metricsOf(e)[1]; return [x.precision, x.recall, x.f1Score]; }, ["Precision", "Recall", "F1"]));
    return;
  }
  if (kind === "imageObjectDetectionEvaluationMetrics") {
    const entries = m.boundingBoxMetricsEntries || [];
    const at = (iou) => entries.find((x) => Math.abs((x.iouThreshold || 0) - iou) < 1e-6) || {};
    const iou = h("select", { id: "iou" }, entries.map((x) => h("option", { value: x.iouThreshold }, `IoU ${fmtNum(x.iouThreshold, 2)}`)));
    iou.value = String((at(0.5).iouThreshold ?? (entries[0] || {}).iouThreshold) || "");
    const holder = h("div");
    const draw = () => {
      const e = at(Number(iou.value));
      const labels = perLabel.map((pl, i) => ({ name: pl.displayName, color: colorOf(i), points: entriesOf(((metricsOf(pl)[1].boundingBoxMetricsEntries || []).find((x) => Math.abs(x.iouThreshold - Number(iou.value)) < 1e-6)) || {}) }));
      clear(holder, thresholdBlock(entriesOf(e), [{ name: "all labels", color: "#202124", points: entriesOf(e) }, ...labels]));
    };
    iou.addEventListener("change", draw);
    content.append(header, metricsTable([["mAP (IoU 0.5)", at(0.5).meanAveragePrecision], ["mAP (IoU 0.75)", at(0.75).meanAveragePrecision],
      ["mAP (averaged over IoU 0.5:0.95)", m.boundingBoxMeanAveragePrecision], ["Boxes evaluated", m.evaluatedBoundingBoxCount]]),
    h("div", { class: "filters" }, h("label", {}, "Curve at ", iou)), holder,
    labelTable(perLabel, (pl) => { const x = metricsOf(pl)[1]; const e5 = (x.boundingBoxMetricsEntries || []).find((y) => Math.abs(y.iouThreshold - 0.5) < 1e-6) || {}; return [e5.meanAveragePrecision, x.boundingBoxMeanAveragePrecision]; }, ["mAP@0.5", "mAP"]));
    draw();
    return;
  }
  const entries = entriesOf(m);
  const series = [{ name: "all labels", color: "#202124", points: entries },
    ...perLabel.map((pl, i) => ({ name: pl.displayName, color: colorOf(i), points: entriesOf(metricsOf(pl)[1]) }))];
  content.append(header, metricsTable([["Area under the PR curve", m.auPrc], ["Log loss", m.logLoss]].filter((x) => x[1] !== undefined)),
    thresholdBlock(entries, series),
    m.confusionMatrix ? confusion(m.confusionMatrix) : null,
    labelTable(perLabel, (pl) => { const x = metricsOf(pl)[1]; const e5 = atThreshold(entriesOf(x), 0.5); return [x.auPrc, e5.precision, e5.recall, e5.f1Score]; },
      ["Average precision", "Precision@0.5", "Recall@0.5", "F1@0.5"]));
}

function metricsTable(rows) {
  return h("table", { class: "metrics", id: "metrics" }, h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, fmtNum(v))))));
}

function thresholdBlock(entries, series) {
  const slider = h("input", { type: "range", id: "threshold", min: 0, max: 1, step: 0.01, value: 0.5 });
  const readout = h("div", { class: "readout", id: "threshold-readout" });
  const plot = h("div", { class: "plot", id: "pr-curve" });
  const draw = () => {
    const t = Number(slider.value);
    const e = atThreshold(entries, t);
    clear(readout, h("strong", {}, `Score threshold ${t.toFixed(2)}`), ` precision ${fmtNum(e.precision)} · recall ${fmtNum(e.recall)} · F1 ${fmtNum(e.f1Score)}`);
    clear(plot, prCurve(series, e), h("div", { class: "legend" }, series.map((s) => { const sw = h("span", { class: "swatch" }); sw.style.background = s.color; return h("span", {}, sw, s.name); })));
  };
  slider.addEventListener("input", draw);
  draw();
  return h("div", { class: "card threshold" }, h("h2", {}, "Precision and recall"), h("label", {}, "Score threshold ", slider), readout, plot);
}

function confusion(cm) {
  if (!cm || !cm.row) return null;
  const names = cm.displayName || cm.annotationSpecId || [];
  return h("div", { class: "card", id: "confusion" }, h("h2", {}, "Confusion matrix"), heatmap(names, cm.row.map((r) => (r.exampleCount || []).map(Number))));
}

function labelTable(perLabel, cells, heads) {
  if (!perLabel.length) return null;
  return h("div", { class: "card" }, h("h2", {}, "Per label"), h("table", { class: "grid", id: "per-label" },
    h("thead", {}, h("tr", {}, h("th", {}, "Label"), h("th", { class: "num" }, "Test items"), heads.map((x) => h("th", { class: "num" }, x)))),
    h("tbody", {}, perLabel.map((pl) => h("tr", {}, h("td", {}, pl.displayName), h("td", { class: "num" }, fmtNum(pl.evaluatedExampleCount)),
      cells(pl).map((v) => h("td", { class: "num" }, fmtNum(v))))))));
}

// -- Test & use -------------------------------------------------------------------------------------
export async function predictView(el, model, alive) {
  const p = problemOf(model);
  const deployBox = h("div", { class: "card", id: "deploy" });
  const tryBox = h("div", { class: "card", id: "try" });
  const batchBox = h("div", { class: "card", id: "batch" });
  clear(el, deployBox, tryBox, batchBox);

  async function drawDeploy() {
    const m = await v1("GET", model.name);
    if (!alive()) return;
    const deployed = m.deploymentState === "DEPLOYED";
    const status = h("div", { id: "deploy-status" });
    const btn = h("button", { class: deployed ? "" : "primary", id: deployed ? "undeploy" : "deploy-model", onclick: async () => {
      btn.disabled = true;
      try {
        const op = await v1("POST", `${model.name}:${deployed ? "undeploy" : "deploy"}`, {});
        await waitOperation(op.name, (o) => clear(status, operationView(o)), alive);
        drawDeploy();
      } catch (err) { clear(status, h("p", { class: "field-error" }, err.message)); btn.disabled = false; }
    } }, deployed ? "Remove deployment" : "Deploy model");
    if (!["DEPLOYED", "UNDEPLOYED"].includes(m.deploymentState)) setTimeout(() => alive() && drawDeploy(), 1500);
    clear(deployBox, h("h2", {}, "Deployment"), h("p", { "data-state": m.deploymentState, id: "deployment-state" }, deployed ? "Deployed: online predictions are served." : "Not deployed: deploy to try predictions (batch predictions work without)."), btn, status);
  }
  await drawDeploy();
  const sentimentMax = problemOf(await withSentimentMax(model)).meta.sentimentMax;

  const result = h("div", { id: "prediction" });
  const general = h("div", { class: "field-error" });
  const threshold = h("input", { type: "range", id: "predict-threshold", min: 0, max: 1, step: 0.01, value: 0.5 });
  let last = null;
  const input = p.isImage ? h("input", { type: "file", id: "predict-file", accept: "image/*" }) : h("textarea", { id: "predict-text", rows: 5, cols: 70, placeholder: "Paste text to analyse" });
  // Entity extraction also reads PDFs: the file is uploaded to a bucket folder, then predicted as a document.
  const pdf = p.kind === "extraction" ? h("input", { type: "file", id: "predict-pdf", accept: ".pdf,application/pdf" }) : null;
  const form = h("form", { id: "predict-form" }, h("h2", {}, "Try your model"),
    h("label", { "data-field": "payload text_snippet image content image_bytes" }, p.isImage ? "Image " : "Text ", input, h("span", { class: "field-error" })),
    pdf ? h("label", { "data-field": "document input_config files prefix" }, "or a PDF ", pdf, h("span", { class: "field-error" })) : null,
    ["image", "text", "detection"].includes(p.kind) ? h("label", {}, "Score threshold ", threshold) : null, general,
    h("button", { type: "submit", class: "primary", id: "predict" }, "Predict"), result);
  threshold.addEventListener("input", () => last && drawResult(last));
  clear(tryBox, form);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    showError(form, null, general);
    try {
      let payload;
      let image = "";
      if (p.isImage) {
        const f = input.files[0];
        if (!f) throw Object.assign(new Error("pick an image"), { field: "image" });
        const bytes = new Uint8Array(await f.arrayBuffer());
        let bin = "";
        for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        payload = { image: { imageBytes: btoa(bin) } };
        image = URL.createObjectURL(f);
      } else if (pdf && pdf.files[0]) {
        const parent = model.name.split("/models/")[0];
        const folder = `predict/${lastPart(model.name)}/${new Date().toISOString().replace(/\D/g, "").slice(0, 14)}`;
        const sent = await upload(parent, "automill-uploads", folder, [pdf.files[0]]);
        payload = { document: { inputConfig: { gcsSource: { inputUris: [sent.objects[0].uri] } } } };
      } else payload = { textSnippet: { content: input.value, mimeType: "text/plain" } };
      // Every label's score (classification) or every box down to 0.05 (detection); the slider then
      // picks what counts as predicted, without asking again.
      const params = p.kind === "detection" ? { score_threshold: "0.05" } : ["image", "text"].includes(p.kind) ? { score_threshold: "0" } : {};
      const out = await v1("POST", `${model.name}:predict`, { payload, params });
      const doc = out.preprocessedInput && out.preprocessedInput.document;
      last = { out, image, text: doc && doc.documentText ? doc.documentText.content : input.value };
      drawResult(last);
    } catch (err) { showError(form, err, general); }
  });

  function drawResult({ out, image, text }) {
    const items = out.payload || [];
    const t = Number(threshold.value);
    if (p.kind === "detection") {
      const kept = items.filter((a) => (a.imageObjectDetection.score || 0) >= t);
      const labels = [...new Set(items.map((a) => a.displayName))];
      clear(result, imageWithBoxes(image, kept.map((a) => ({
        vertices: a.imageObjectDetection.boundingBox.normalizedVertices.map((v) => ({ x: v.x || 0, y: v.y || 0 })),
        color: colorOf(labels.indexOf(a.displayName)), label: a.displayName, title: `${a.displayName} ${fmtNum(a.imageObjectDetection.score)}`,
      }))), h("ul", { class: "scores" }, kept.map((a) => h("li", { "data-label": a.displayName }, `${a.displayName} ${fmtNum(a.imageObjectDetection.score)}`))));
      return;
    }
    if (p.kind === "extraction") {
      const labels = [...new Set(items.map((a) => a.displayName))];
      const spans = items.map((a) => ({ start: Number(a.textExtraction.textSegment.startOffset || 0), end: Number(a.textExtraction.textSegment.endOffset || 0),
        label: a.displayName, color: colorOf(labels.indexOf(a.displayName)), title: `${a.displayName} ${fmtNum(a.textExtraction.score)}` }));
      clear(result, highlighted(text, spans), h("ul", { class: "scores" }, items.map((a) => h("li", { "data-label": a.displayName }, `${a.displayName}: “${a.textExtraction.textSegment.content || ""}” ${fmtNum(a.textExtraction.score)}`))));
      return;
    }
    if (p.kind === "sentiment") {
      const s = items[0] && items[0].textSentiment;
      clear(result, h("p", { class: "sentiment", "data-sentiment": s ? s.sentiment : "" }, `Sentiment ${s ? s.sentiment : "?"} of ${sentimentMax ?? "?"}`,
        out.metadata && out.metadata.sentiment_score ? ` (score ${out.metadata.sentiment_score})` : ""));
      return;
    }
    const sorted = items.slice().sort((a, b) => (b.classification.score || 0) - (a.classification.score || 0));
    clear(result, image ? h("img", { src: image, class: "preview" }) : null, h("ul", { class: "scores" }, sorted.map((a) => {
      const bar = h("span", { class: "bar" });
      bar.style.width = `${Math.round((a.classification.score || 0) * 100)}%`;
      const below = (a.classification.score || 0) < t;
      return h("li", { "data-label": a.displayName, class: below ? "below" : "", "data-below": below ? "true" : null },
        h("span", { class: "label" }, a.displayName), h("span", { class: "barbox" }, bar), fmtNum(a.classification.score));
    })));
  }

  const inUri = h("input", { id: "batch-input", size: 50, placeholder: "gs://bucket/inputs.csv" });
  const outUri = h("input", { id: "batch-output", size: 50, placeholder: "gs://bucket/predictions/" });
  const bStatus = h("div", { id: "batch-status" });
  const bError = h("div", { class: "field-error" });
  const bForm = h("form", { id: "batch-form" }, h("h2", {}, "Batch prediction"),
    h("label", { "data-field": "input_config input_uris gcs_source inputUris" }, "Input file ", inUri, h("span", { class: "field-error" })),
    h("label", { "data-field": "output_config output_uri_prefix gcs_destination outputUriPrefix" }, "Output folder ", outUri, h("span", { class: "field-error" })),
    bError, h("button", { type: "submit", class: "primary" }, "Start batch prediction"), bStatus);
  bForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    showError(bForm, null, bError);
    try {
      const op = await v1("POST", `${model.name}:batchPredict`, { inputConfig: { gcsSource: { inputUris: [inUri.value.trim()] } },
        outputConfig: { gcsDestination: { outputUriPrefix: outUri.value.trim() } } });
      const done = await waitOperation(op.name, (o) => clear(bStatus, operationView(o)), alive);
      const dir = ((done.metadata || {}).batchPredictDetails || {}).outputInfo;
      if (dir && dir.gcsOutputDirectory) {
        bStatus.append(h("p", { id: "batch-output-dir" }, `Results in ${dir.gcsOutputDirectory}`));
        bStatus.append(await folderView(model, dir.gcsOutputDirectory, "batch"));
      }
    } catch (err) { showError(bForm, err, bError); }
  });
  clear(batchBox, bForm);
}

// -- Export -----------------------------------------------------------------------------------------
export async function exportView(el, model, alive) {
  const p = problemOf(model);
  const formats = p.isImage ? [["tflite", "TF Lite"], ["onnx", "ONNX"], ["docker", "Container folder"]] : [["docker", "Container folder"]];
  const format = h("select", { id: "export-format" }, formats.map(([v, l]) => h("option", { value: v }, l)));
  const dest = h("input", { id: "export-dest", size: 50, value: `gs://automill-exports/${lastPart(model.name)}/` });
  const status = h("div", { id: "export-status" });
  const general = h("div", { class: "field-error" });
  const form = h("form", { class: "card", id: "export-form" }, h("h2", {}, "Export your model"),
    h("label", { "data-field": "model_format modelFormat" }, "Format ", format, h("span", { class: "field-error" })),
    h("label", { "data-field": "output_uri_prefix gcs_destination outputUriPrefix" }, "Destination folder ", dest, h("span", { class: "field-error" })),
    general, h("button", { type: "submit", class: "primary", id: "export" }, "Export"), status);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    showError(form, null, general);
    try {
      const op = await v1("POST", `${model.name}:export`, { outputConfig: { modelFormat: format.value, gcsDestination: { outputUriPrefix: dest.value.trim() } } });
      const done = await waitOperation(op.name, (o) => clear(status, operationView(o)), alive);
      const info = ((done.metadata || {}).exportModelDetails || {}).outputInfo;
      if (info && info.gcsOutputDirectory) {
        status.append(h("p", { id: "export-dir" }, `Exported to ${info.gcsOutputDirectory}`));
        status.append(await folderView(model, info.gcsOutputDirectory, "export"));
      }
    } catch (err) { showError(form, err, general); }
  });
  clear(el, form);
}

// -- A bucket folder's files (an export, batch prediction results): listed, and downloadable as one zip.
function fmtBytes(n) {
  const x = Number(n) || 0;
  if (x < 1024) return `${x} B`;
  const units = ["KiB", "MiB", "GiB"];
  let v = x / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export async function folderView(model, uri, id) {
  const parent = model.name.split("/models/")[0];
  const box = h("div", { class: "folder", id: `${id}-files` });
  try {
    const listing = await listFolder(parent, uri);
    const files = listing.objects || [];
    clear(box,
      h("a", { class: "button primary", id: `${id}-download`, href: folderUrl(parent, uri, "zip"), download: "" },
        `Download zip (${files.length} files, ${fmtBytes(listing.totalBytes)})`),
      h("table", { class: "grid files" }, h("tbody", {}, files.map((f) => h("tr", { "data-file": f.name },
        h("td", {}, f.name), h("td", { class: "num" }, fmtBytes(f.size)))))));
  } catch (err) { clear(box, h("p", { class: "field-error" }, `The files cannot be listed: ${err.message}`)); }
  return box;
}
