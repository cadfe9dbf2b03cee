// Plots drawn in the browser from the API's numbers, as plain SVG: bars, curves, heat maps.
import { h, svg } from "./dom.js";

export const PALETTE = ["#1a73e8", "#e8710a", "#188038", "#d93025", "#9334e6", "#12b5cb", "#e52592", "#f9ab00", "#5f6368", "#7cb342"];
export const colorOf = (i) => PALETTE[((i % PALETTE.length) + PALETTE.length) % PALETTE.length];
export const SPLITS = [["TRAIN", "#1a73e8"], ["VALIDATION", "#f9ab00"], ["TEST", "#188038"], ["UNASSIGNED", "#9aa0a6"]];

/** Stacked horizontal bars: examples per label per split. rows: [{label, TRAIN, VALIDATION, TEST, UNASSIGNED}]. */
export function splitBars(rows) {
  const width = 560, bar = 18, gap = 6, left = 150, top = 26;
  const max = Math.max(1, ...rows.map((r) => SPLITS.reduce((a, [k]) => a + (r[k] || 0), 0)));
  const height = top + rows.length * (bar + gap) + 4;
  const el = svg("svg", { class: "chart splits", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": "examples per label per split" });
  SPLITS.forEach(([k, c], i) => {
    el.append(svg("rect", { x: left + i * 100, y: 4, width: 10, height: 10, fill: c }), svg("text", { x: left + 14 + i * 100, y: 13, class: "legend" }, k.toLowerCase()));
  });
  rows.forEach((r, i) => {
    const y = top + i * (bar + gap);
    el.append(svg("text", { x: left - 6, y: y + bar - 5, "text-anchor": "end", class: "axis" }, r.label.length > 22 ? `${r.label.slice(0, 21)}…` : r.label));
    let x = left;
    let total = 0;
    for (const [k, c] of SPLITS) {
      const n = r[k] || 0;
      total += n;
      const w = ((width - left - 50) * n) / max;
      if (w > 0) el.append(svg("rect", { x, y, width: w, height: bar, fill: c }, svg("title", {}, `${r.label} · ${k.toLowerCase()}: ${n}`)));
      x += w;
    }
    el.append(svg("text", { x: x + 4, y: y + bar - 5, class: "axis" }, String(total)));
  });
  return el;
}

/** A precision-recall curve (recall on x, precision on y) with the point at the chosen threshold. */
export function prCurve(series, marker) {
  const W = 320, H = 260, L = 40, B = 30, T = 10, R = 10;
  const X = (r) => L + r * (W - L - R), Y = (p) => T + (1 - p) * (H - T - B);
  const el = svg("svg", { class: "chart pr", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": "precision-recall curve" });
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    el.append(svg("line", { x1: X(0), x2: X(1), y1: Y(t), y2: Y(t), class: "gridline" }),
      svg("text", { x: L - 4, y: Y(t) + 4, "text-anchor": "end", class: "axis" }, t.toFixed(2)),
      svg("text", { x: X(t), y: H - B + 14, "text-anchor": "middle", class: "axis" }, t.toFixed(2)));
  }
  el.append(svg("text", { x: (L + W) / 2, y: H - 2, "text-anchor": "middle", class: "axis" }, "recall"),
    svg("text", { x: L + 4, y: T + 12, class: "axis" }, "precision"));
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => p.recall !== undefined).slice().sort((a, b) => (a.recall - b.recall) || (b.precision - a.precision));
    if (!pts.length) return;
    el.append(svg("polyline", { points: pts.map((p) => `${X(p.recall).toFixed(1)},${Y(p.precision).toFixed(1)}`).join(" "),
      fill: "none", stroke: s.color || colorOf(i), "stroke-width": 2, class: "curve", "data-series": s.name || "" }, svg("title", {}, s.name || "")));
  });
  if (marker) el.append(svg("circle", { cx: X(marker.recall || 0), cy: Y(marker.precision || 0), r: 5, class: "marker" }));
  return el;
}

/** A confusion matrix as a heat map: rows are the true labels, columns the predicted ones. */
export function heatmap(names, rows) {
  const n = names.length;
  const cell = Math.max(22, Math.min(48, Math.floor(420 / Math.max(1, n))));
  const L = 120, T = 90;
  const W = L + n * cell + 10, H = T + n * cell + 10;
  const el = svg("svg", { class: "chart heatmap", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": "confusion matrix" });
  const short = (s) => (s.length > 14 ? `${s.slice(0, 13)}…` : s);
  names.forEach((name, j) => el.append(svg("text", { x: L + j * cell + cell / 2, y: T - 6, transform: `rotate(-45 ${L + j * cell + cell / 2} ${T - 6})`, class: "axis" }, short(name))));
  rows.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    el.append(svg("text", { x: L - 6, y: T + i * cell + cell / 2 + 4, "text-anchor": "end", class: "axis" }, short(names[i] || "")));
    row.forEach((count, j) => {
      const share = count / total;
      const fill = i === j ? `rgba(24,128,56,${0.12 + 0.88 * share})` : `rgba(217,48,37,${share ? 0.12 + 0.88 * share : 0.03})`;
      el.append(svg("rect", { x: L + j * cell, y: T + i * cell, width: cell - 1, height: cell - 1, fill, class: "cell" },
        svg("title", {}, `true ${names[i]} → predicted ${names[j]}: ${count} (${Math.round(share * 100)}%)`)),
      svg("text", { x: L + j * cell + cell / 2, y: T + i * cell + cell / 2 + 4, "text-anchor": "middle", class: "cell-text" }, String(count)));
    });
  });
  el.append(svg("text", { x: 4, y: T - 6, class: "axis" }, "true ↓ / predicted →"));
  return el;
}

/** Boxes drawn over an image: an absolutely placed SVG in normalized coordinates. */
export function boxesOverlay(boxes) {
  const el = svg("svg", { class: "boxes", viewBox: "0 0 1 1", preserveAspectRatio: "none" });
  for (const b of boxes) {
    const [a, c] = b.vertices;
    el.append(svg("rect", { x: a.x, y: a.y, width: Math.max(0, c.x - a.x), height: Math.max(0, c.y - a.y), stroke: b.color,
      fill: "none", "stroke-width": 2, "vector-effect": "non-scaling-stroke", class: "box", "data-label": b.label }, svg("title", {}, b.title || b.label)));
  }
  return el;
}

/** A figure with an image and its boxes. */
export function imageWithBoxes(src, boxes, alt = "") {
  return h("div", { class: "imgbox" }, h("img", { src, alt, loading: "lazy" }), boxesOverlay(boxes));
}

/** Text with spans highlighted in a colour per entity type: spans [{start, end, label, color}]. */
export function highlighted(text, spans) {
  const out = h("p", { class: "snippet" });
  const sorted = spans.slice().sort((a, b) => a.start - b.start);
  let at = 0;
  for (const s of sorted) {
    if (s.start < at) continue;
    out.append(text.slice(at, s.start));
    const mark = h("mark", { class: "entity", "data-label": s.label, title: s.title || s.label }, text.slice(s.start, s.end), h("sub", {}, s.label));
    mark.style.backgroundColor = `${s.color}33`;
    mark.style.borderColor = s.color;
    out.append(mark);
    at = s.end;
  }
  out.append(text.slice(at));
  return out;
}
