// Small pieces shared by panels: change badges, progress bars, the "data demo" chip.

import { h } from "./dom.js";
import { formatSigned, formatPct } from "./format.js";

/**
 * "▲ +0,42 poin" coloured by whether the change is good: polarity HIGHER_IS_BETTER,
 * LOWER_IS_BETTER or NEUTRAL.
 */
export function changeBadge(delta, { polarity = "NEUTRAL", digits = 2, suffix = "", context = "" } = {}) {
  if (typeof delta !== "number" || !Number.isFinite(delta)) return null;
  const direction = delta > 0 ? "up" : delta < 0 ? "down" : "flat";
  const good =
    polarity === "NEUTRAL" || direction === "flat"
      ? "neutral"
      : (direction === "up") === (polarity === "HIGHER_IS_BETTER")
        ? "good"
        : "bad";
  const arrow = { up: "▲", down: "▼", flat: "■" }[direction];
  return h(
    "span",
    { class: `change change-${good}` },
    h("span", { "aria-hidden": "true" }, `${arrow} `),
    `${formatSigned(delta, digits, suffix)}${context ? ` ${context}` : ""}`,
  );
}

/**
 * A horizontal bar for a percentage (0–100+, clipped), with an optional marker (a schedule)
 * and an accessible label.
 */
export function progressBar(pct, { marker = null, tone = "", label = "" } = {}) {
  const width = Math.max(0, Math.min(100, Number(pct) || 0));
  return h(
    "div",
    {
      class: ["progress", tone && `progress-${tone}`],
      role: "img",
      "aria-label": label || formatPct(pct, 1),
    },
    h("div", { class: "progress-fill", style: { width: `${width}%` } }),
    marker !== null &&
      h("div", { class: "progress-marker", style: { left: `${Math.max(0, Math.min(100, marker))}%` }, title: `Jadwal ${formatPct(marker, 0)}` }),
  );
}

/** The chip that marks synthetic demo data; `note` explains which values. */
export function demoChip(demo, note = "") {
  if (!demo) return null;
  return h(
    "span",
    { class: "chip chip-demo", title: note || "Sebagian nilai adalah data demo sintetis, bukan statistik resmi." },
    "demo",
  );
}

/** A list of label/value lines for KPI cards. */
export function detailList(rows) {
  return h(
    "ul",
    { class: "detail-list" },
    rows.filter(Boolean).map(([label, ...value]) => h("li", {}, h("span", { class: "detail-label" }, label), h("span", { class: "detail-value" }, ...value))),
  );
}
