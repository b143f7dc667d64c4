// A stacked bar chart as SVG, one bar per day and one segment per model, built from the numbers
// alone (no library): each segment carries its day, model and value as data attributes and a
// <title>, so screen readers, tooltips and tests read the same numbers the API gave.
const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 560;
const HEIGHT = 260;
const MARGIN = { top: 12, right: 8, bottom: 28, left: 64 };

export const PALETTE = ["#1f77b4", "#e4572e", "#2a9d8f", "#9b5de5", "#f4a261", "#577590", "#d62828", "#6a994e"];

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// A round top for the axis: 1, 2 or 5 times a power of ten, at least `max`.
function niceCeiling(max) {
  if (max <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

// days: ["YYYY-MM-DD", …] oldest first; models: names in legend order; value(day, model): a number.
export function stackedBars({ title, days, models, value, format }) {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const totals = days.map((d) => models.reduce((sum, m) => sum + value(d, m), 0));
  const top = niceCeiling(Math.max(0, ...totals));
  const svg = el("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", class: "bars", "data-max": top });
  svg.append(el("title", {}, title));

  for (const fraction of [0, 0.5, 1]) {
    const y = MARGIN.top + plotH * (1 - fraction);
    svg.append(el("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y, y2: y, class: "grid" }));
    svg.append(el("text", { x: MARGIN.left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, format(top * fraction)));
  }

  const slot = plotW / Math.max(1, days.length);
  const barW = Math.max(2, slot * 0.7);
  const labelEvery = Math.ceil(days.length / 6);
  days.forEach((day, i) => {
    const x = MARGIN.left + i * slot + (slot - barW) / 2;
    let y = MARGIN.top + plotH;
    models.forEach((model, k) => {
      const v = value(day, model);
      if (!(v > 0)) return;
      const h = (v / top) * plotH;
      y -= h;
      const rect = el("rect", {
        x: x.toFixed(2), y: y.toFixed(2), width: barW.toFixed(2), height: Math.max(h, 0.5).toFixed(2),
        fill: PALETTE[k % PALETTE.length], class: "bar", "data-day": day, "data-model": model, "data-value": v,
      });
      rect.append(el("title", {}, `${day} · ${model}: ${format(v)}`));
      svg.append(rect);
    });
    // Counted back from the last day, so today always has its label and none overlap.
    if ((days.length - 1 - i) % labelEvery === 0) {
      svg.append(el("text", { x: (x + barW / 2).toFixed(2), y: HEIGHT - 8, "text-anchor": "middle", class: "axis" }, day.slice(5)));
    }
  });
  return svg;
}
