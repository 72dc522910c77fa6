// Small SVG charts written for the console (no library): a live line chart of several series
// and a sparkline. Each keeps the last `size` points it was given.

const SVG = "http://www.w3.org/2000/svg";
// Colours with at least 4.5:1 contrast against white, told apart by dash pattern too.
const COLOURS = ["#1f5fa8", "#b3261e", "#2e7d32", "#6a3fa0", "#8a5a00", "#00696f", "#a0306f"];
const DASHES = ["", "6 3", "2 3", "8 3 2 3", "1 2", "10 4", "4 4"];

function el(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) if (value <= m * step) return m * step;
  return 10 * step;
}

export function formatRate(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

// A line chart of named series over time; `push(values)` adds one point per series.
export class LineChart {
  constructor(title, { size = 60, unit = "rows/s" } = {}) {
    this.size = size;
    this.unit = unit;
    this.series = new Map(); // name -> number[]
    this.figure = document.createElement("figure");
    this.figure.className = "chart";
    this.svg = el("svg", { viewBox: "0 0 600 200", role: "img", preserveAspectRatio: "none" });
    this.svgTitle = el("title");
    this.svgTitle.textContent = title;
    this.svg.append(this.svgTitle);
    this.caption = document.createElement("figcaption");
    this.caption.textContent = title;
    this.legend = document.createElement("ul");
    this.legend.className = "legend";
    this.figure.append(this.caption, this.svg, this.legend);
  }

  push(values) {
    for (const [name, value] of Object.entries(values)) {
      if (!this.series.has(name)) this.series.set(name, []);
    }
    for (const [name, points] of this.series) {
      points.push(name in values ? values[name] : null);
      if (points.length > this.size) points.shift();
    }
    this.render();
  }

  render() {
    const W = 600, H = 200, left = 48, right = 8, top = 8, bottom = 20;
    while (this.svg.lastChild !== this.svgTitle) this.svg.lastChild.remove();
    let max = 0;
    for (const points of this.series.values()) for (const v of points) if (v !== null && v > max) max = v;
    max = niceMax(max);
    const x = (i) => left + (i / Math.max(1, this.size - 1)) * (W - left - right);
    const y = (v) => top + (1 - v / max) * (H - top - bottom);
    for (const frac of [0, 0.5, 1]) {
      const yy = y(max * frac);
      this.svg.append(el("line", { x1: left, x2: W - right, y1: yy, y2: yy, class: "grid" }));
      const label = el("text", { x: left - 4, y: yy + 4, "text-anchor": "end", class: "axis" });
      label.textContent = formatRate(max * frac);
      this.svg.append(label);
    }
    const unit = el("text", { x: left, y: H - 4, class: "axis" });
    unit.textContent = `${this.unit}, last ${this.size} samples`;
    this.svg.append(unit);
    this.legend.replaceChildren();
    const summary = [];
    let index = 0;
    for (const [name, points] of this.series) {
      const colour = COLOURS[index % COLOURS.length];
      const dash = DASHES[index % DASHES.length];
      const offset = this.size - points.length;
      let d = "";
      points.forEach((v, i) => {
        if (v === null) return;
        d += `${d && points[i - 1] !== null ? "L" : "M"}${x(offset + i).toFixed(1)},${y(v).toFixed(1)}`;
      });
      if (d) {
        const path = el("path", { d, fill: "none", stroke: colour, "stroke-width": 2 });
        if (dash) path.setAttribute("stroke-dasharray", dash);
        path.setAttribute("vector-effect", "non-scaling-stroke");
        this.svg.append(path);
      }
      const last = points.length ? points[points.length - 1] : null;
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.borderTopColor = colour;
      swatch.style.borderTopStyle = dash ? "dashed" : "solid";
      item.append(swatch, `${name}: ${formatRate(last)} ${this.unit}`);
      this.legend.append(item);
      summary.push(`${name} ${formatRate(last)}`);
      index += 1;
    }
    this.svgTitle.textContent = `${this.caption.textContent}: ${summary.join(", ") || "no data yet"}`;
  }
}

// A sparkline of one series, as an inline SVG that says its last value to screen readers.
export function sparkline(points, label) {
  const W = 80, H = 20;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", class: "spark" });
  const title = el("title");
  const last = points.length ? points[points.length - 1] : null;
  title.textContent = `${label}: ${formatRate(last)}`;
  svg.append(title);
  const values = points.filter((v) => v !== null);
  if (values.length > 1) {
    const max = Math.max(...values) || 1;
    const step = W / Math.max(1, points.length - 1);
    let d = "";
    points.forEach((v, i) => {
      if (v === null) return;
      d += `${d ? "L" : "M"}${(i * step).toFixed(1)},${(H - 1 - (v / max) * (H - 2)).toFixed(1)}`;
    });
    svg.append(el("path", { d, fill: "none", stroke: "#1f5fa8", "stroke-width": 1.5 }));
  }
  return svg;
}
