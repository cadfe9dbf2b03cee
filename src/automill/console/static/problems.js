// What the console knows of each problem type: its metadata keys, names, model types and budgets.

export const TYPES = [
  { id: "text-single", label: "Text classification (single-label)", key: "textClassificationDatasetMetadata", meta: { classificationType: "MULTICLASS" } },
  { id: "text-multi", label: "Text classification (multi-label)", key: "textClassificationDatasetMetadata", meta: { classificationType: "MULTILABEL" } },
  { id: "sentiment", label: "Text sentiment", key: "textSentimentDatasetMetadata", meta: { sentimentMax: 4 } },
  { id: "extraction", label: "Entity extraction", key: "textExtractionDatasetMetadata", meta: {} },
  { id: "image-single", label: "Image classification (single-label)", key: "imageClassificationDatasetMetadata", meta: { classificationType: "MULTICLASS" } },
  { id: "image-multi", label: "Image classification (multi-label)", key: "imageClassificationDatasetMetadata", meta: { classificationType: "MULTILABEL" } },
  { id: "detection", label: "Object detection", key: "imageObjectDetectionDatasetMetadata", meta: {} },
];

/** -> {key, meta, kind ("text"|"sentiment"|"extraction"|"image"|"detection"), label, modelKey} of a Dataset or Model. */
export function problemOf(resource) {
  const key = Object.keys(resource).find((k) => /(Dataset|Model)Metadata$/.test(k)) || "";
  const base = key.replace(/(Dataset|Model)Metadata$/, "");
  const meta = resource[key] || {};
  const kind = { textClassification: "text", textSentiment: "sentiment", textExtraction: "extraction",
    imageClassification: "image", imageObjectDetection: "detection" }[base] || "text";
  const multi = meta.classificationType === "MULTILABEL";
  const label = {
    text: `Text classification (${multi ? "multi" : "single"}-label)`, sentiment: `Sentiment (0–${meta.sentimentMax ?? "?"})`,
    extraction: "Entity extraction", image: `Image classification (${multi ? "multi" : "single"}-label)`, detection: "Object detection",
  }[kind];
  return { key, meta, kind, label, modelKey: `${base}ModelMetadata`, datasetKey: `${base}DatasetMetadata`, isImage: kind === "image" || kind === "detection" };
}

/** The "Optimize model for" choices: Google's three edge trade-offs and, where the type has it, cloud. */
export function modelTypes(kind) {
  const edge = [
    { value: "mobile-high-accuracy-1", label: "Higher accuracy", hint: "the most accurate model; larger and slower to predict" },
    { value: "mobile-versatile-1", label: "Best trade-off", hint: "balanced accuracy and prediction speed" },
    { value: "mobile-low-latency-1", label: "Faster prediction", hint: "the smallest, fastest model" },
  ];
  if (kind === "image" || kind === "detection") edge.unshift({ value: "cloud", label: "Cloud (best accuracy the budget allows)", hint: "not exportable to edge formats" });
  return edge;
}

/** A recommended node-hour budget (milli node hours) for `count` examples: a rule of thumb, shown as such,
 * kept inside what the API accepts (`budget`: {min, max, default, cap} from the server's session info). */
export function recommendedBudget(kind, count, budget) {
  const perExample = { image: 1, detection: 3, text: 0.02, sentiment: 0.02, extraction: 0.2 }[kind] ?? 0.05;
  const floor = kind === "image" || kind === "detection" ? 50 : 10;
  let value = Math.round(floor + perExample * count);
  if (budget.cap) value = Math.min(value, budget.cap);
  if (budget.max) value = Math.min(value, budget.max);
  return Math.max(budget.min || 1, value);
}
