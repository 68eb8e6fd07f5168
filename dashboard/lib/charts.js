// Chart.js (vendored UMD, global `Chart`) with the dashboard's theme. One chart per canvas:
// drawing again updates it in place.

const instances = new WeakMap();

export const COLOURS = {
  blue: "#60a5fa",
  cyan: "#22d3ee",
  amber: "#fbbf24",
  orange: "#fb923c",
  red: "#f87171",
  green: "#34d399",
  violet: "#a78bfa",
  grey: "#94a3b8",
  text: "#cbd5e1",
  grid: "rgba(148, 163, 184, 0.18)",
};

let themed = false;

function theme(Chart) {
  if (themed) return;
  themed = true;
  Chart.defaults.color = COLOURS.text;
  Chart.defaults.borderColor = COLOURS.grid;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.font.size = 12;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.responsive = true;
  Chart.defaults.plugins.legend.labels.boxWidth = 12;
  Chart.defaults.plugins.tooltip.padding = 8;
  if (matchMedia("(prefers-reduced-motion: reduce)").matches) Chart.defaults.animation = false;
}

/**
 * Draws `config` on `canvas` (creates the chart, or replaces data and options of the one
 * there). Returns false when Chart.js is missing: the caller shows its table instead.
 */
export function drawChart(canvas, config) {
  const Chart = globalThis.Chart;
  if (typeof Chart !== "function") {
    canvas.parentElement?.setAttribute("data-empty", "Grafik tidak dapat dimuat (Chart.js tidak tersedia).");
    return false;
  }
  theme(Chart);
  const existing = instances.get(canvas);
  if (existing && existing.config.type === config.type) {
    existing.data = config.data;
    existing.options = config.options ?? {};
    existing.update();
    return true;
  }
  existing?.destroy();
  instances.set(canvas, new Chart(canvas, config));
  return true;
}

/** Axis tick callback formatting numbers the Indonesian way. */
export function tickFormat(format) {
  return (value) => format(Number(value));
}
