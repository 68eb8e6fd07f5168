// Tiny inline SVG sparklines (no Chart.js instance per table cell).

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/**
 * A sparkline of `values` (numbers or null for a gap), drawn in a viewBox so that CSS sets
 * its size. `label` is read by screen readers ("Tren penduduk: 746.290 → 753.810").
 */
export function sparkline(values, { label = "", width = 100, height = 28, kind = "line" } = {}) {
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: "none",
    class: `spark spark-${kind}`,
    role: "img",
    "aria-label": label,
    focusable: "false",
  });
  const title = svg("title", {});
  title.textContent = label;
  root.append(title);

  const present = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  if (present.length === 0) return root;
  const min = Math.min(...present);
  const max = Math.max(...present);
  const pad = 2;
  const span = max - min || 1;
  const x = (i) => (values.length === 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (values.length - 1));
  const y = (v) => (max === min ? height / 2 : height - pad - ((v - min) * (height - 2 * pad)) / span);

  if (kind === "bar") {
    const w = Math.max(1, (width - 2 * pad) / values.length - 1);
    values.forEach((v, i) => {
      if (typeof v !== "number") {
        root.append(svg("rect", { x: pad + i * (w + 1), y: height - pad - 2, width: w, height: 2, class: "spark-gap" }));
        return;
      }
      const top = max === 0 ? height - pad : height - pad - (v / max) * (height - 2 * pad);
      root.append(svg("rect", { x: pad + i * (w + 1), y: top, width: w, height: Math.max(1, height - pad - top) }));
    });
    return root;
  }

  // Line: one path per run of numbers; a null breaks it.
  let d = "";
  let open = false;
  values.forEach((v, i) => {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      open = false;
      return;
    }
    d += `${open ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    open = true;
  });
  root.append(svg("path", { d, fill: "none", "vector-effect": "non-scaling-stroke" }));
  const lastIndex = values.findLastIndex((v) => typeof v === "number" && Number.isFinite(v));
  root.append(svg("circle", { cx: x(lastIndex), cy: y(values[lastIndex]), r: 2.2, class: "spark-dot" }));
  return root;
}
