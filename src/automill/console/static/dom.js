// Small DOM helpers: h() builds HTML elements, svg() SVG ones; no framework, no build step.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  apply(el, props);
  append(el, children);
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

function apply(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) { el.replaceChildren(); append(el, children); return el; }

// One formatter each, made once: toLocaleString(...) builds a new Intl formatter on every call, which
// costs more than the rest of a table row.
const TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const INT = new Intl.NumberFormat();

export function fmtTime(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  return isNaN(d) ? ts : TIME.format(d);
}

export function fmtInt(n) { return INT.format(Number(n) || 0); }

export function fmtNum(n, digits = 3) {
  if (n === undefined || n === null || n === "") return "–";
  const x = Number(n);
  return Number.isInteger(x) ? INT.format(x) : x.toFixed(digits);
}

/** Text made safe to put into HTML markup (element content or a quoted attribute). */
export function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

export function lastPart(name) { return String(name || "").split("/").pop(); }

export function toast(text, kind = "info", href = "") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast ${kind}`, role: "status" }, href ? h("a", { href, "data-nav": true }, text) : text,
    h("button", { class: "link", onclick: () => item.remove(), "aria-label": "dismiss" }, "×"));
  box.append(item);
  setTimeout(() => item.remove(), 12000);
}

/** Show an API error next to the field it names (data-field on an element), else in `fallback`. */
export function showError(form, err, fallback) {
  for (const e of form.querySelectorAll(".field-error")) e.textContent = "";
  const field = (err && err.field) || "";
  let target = null;
  if (field) {
    for (const el of form.querySelectorAll("[data-field]")) {
      if (el.dataset.field.split(" ").some((f) => field === f || field.endsWith(f) || f.endsWith(field))) { target = el; break; }
    }
  }
  const box = target ? target.querySelector(".field-error") : fallback;
  if (box) box.textContent = err ? err.message : "";
}

export function progressBar(fraction, label = "") {
  const pct = Math.max(0, Math.min(100, Math.round((fraction || 0) * 100)));
  const bar = h("div", { class: "progress", role: "progressbar", "aria-valuenow": pct, "aria-valuemin": 0, "aria-valuemax": 100 },
    h("div", { class: "fill" }), h("span", {}, label || `${pct}%`));
  bar.firstChild.style.width = `${pct}%`;
  return bar;
}
