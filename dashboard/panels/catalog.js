// Satu Data catalog: data freshness ("per tanggal …", datasets overdue for their declared
// frequency) and coverage per OPD ("data yang masuk: 79%").

import { $, h, replace } from "../lib/dom.js";
import { formatDate, formatInt, formatPct } from "../lib/format.js";
import { loader, showPartial } from "../lib/panel.js";
import { opdLabel } from "../lib/labels.js";
import { store } from "../lib/store.js";

const DOC = "catalog";

/** Allowed age per declared frequency (one period plus a publication lag), as rules/source-stale.toml. */
const MAX_AGE_DAYS = { DAILY: 3, WEEKLY: 10, MONTHLY: 45, QUARTERLY: 120, SEMESTER: 210, ANNUAL: 400 };
const DAY_MS = 86_400_000;

export function overdueDays(dataset, now = Date.now()) {
  const max = MAX_AGE_DAYS[dataset.frequency];
  if (!max || !dataset.lastUpdated) return 0;
  const updated = Date.parse(`${dataset.lastUpdated}T00:00:00+07:00`);
  return Math.max(0, Math.floor((now - updated) / DAY_MS) - max);
}

export function initCatalog({ request }) {
  const freshness = $("[data-testid=freshness]");
  const panel = $("#coverage");

  return loader(panel, async (current) => {
    let result;
    try {
      result = await request(DOC);
    } catch (e) {
      freshness.textContent = "Tanggal data tidak tersedia";
      freshness.dataset.state = "error";
      throw e;
    }
    const { data, errors } = result;
    if (!current()) return;
    const catalog = data.catalog;
    if (!catalog) throw new Error("no catalog");
    store.set("catalog", catalog);
    showPartial(panel, errors, DOC);
    renderFreshness(freshness, catalog.datasets ?? []);
    renderCoverage(panel, catalog);
  });
}

function renderFreshness(el, datasets) {
  const dated = datasets.filter((d) => d.lastUpdated && MAX_AGE_DAYS[d.frequency]);
  const latest = dated.map((d) => d.lastUpdated).sort().at(-1);
  const overdue = dated.filter((d) => overdueDays(d) > 0);
  el.dataset.date = latest ?? "";
  el.dataset.state = overdue.length ? "overdue" : "ok";
  el.title = overdue.length
    ? `Lewat jadwal pemutakhiran:\n${overdue.map((d) => `• ${d.title} (${d.id}): per tanggal ${formatDate(d.lastUpdated)}`).join("\n")}`
    : "Semua dataset berkala diperbarui sesuai frekuensinya";
  replace(
    el,
    h("span", { class: "freshness-date" }, latest ? `Data per tanggal ${formatDate(latest)}` : "Tanggal data belum diketahui"),
    overdue.length > 0 &&
      h("span", { class: "freshness-overdue" }, ` · ${formatInt(overdue.length)} dari ${formatInt(dated.length)} dataset lewat jadwal pemutakhiran`),
  );
}

function renderCoverage(panel, catalog) {
  replace(
    $(".coverage-total", panel),
    h("span", { class: "big" }, `Data yang masuk: ${formatPct(catalog.coveragePct, 0)}`),
    h(
      "span",
      { class: "muted" },
      ` · ${formatPct(catalog.liveCoveragePct, 0)} terhubung langsung · ${formatInt(catalog.datasetCount)} dataset: ` +
        `${formatInt(catalog.live)} langsung, ${formatInt(catalog.snapshot)} salinan, ${formatInt(catalog.missing)} belum masuk` +
        (catalog.demoDatasets ? ` · ${formatInt(catalog.demoDatasets)} berisi data demo` : ""),
    ),
  );
  const datasetsByOpd = groupBy(catalog.datasets ?? [], (d) => d.opd);
  replace(
    $(".coverage-list", panel),
    (catalog.byOpd ?? []).map((o) => {
      const missing = (datasetsByOpd.get(o.opd) ?? []).filter((d) => d.state === "MISSING").map((d) => d.title);
      return h(
        "li",
        {
          class: "coverage-item",
          dataset: { testid: "coverage", opd: o.opd, pct: o.coveragePct },
          title: missing.length ? `Belum masuk: ${missing.join("; ")}` : "Semua dataset sudah masuk",
        },
        h(
          "div",
          { class: "coverage-head" },
          h("span", { class: "coverage-name" }, opdLabel(o.opd)),
          h("span", { class: "coverage-pct" }, `data yang masuk: ${formatPct(o.coveragePct, 0)}`),
        ),
        h(
          "div",
          { class: "stacked", role: "img", "aria-label": `${formatPct(o.liveCoveragePct, 0)} langsung, ${formatPct(o.coveragePct - o.liveCoveragePct, 0)} berkas` },
          h("span", { class: "seg-live", style: { width: `${o.liveCoveragePct}%` } }),
          h("span", { class: "seg-snapshot", style: { width: `${Math.max(0, o.coveragePct - o.liveCoveragePct)}%` } }),
        ),
        h(
          "p",
          { class: "coverage-counts" },
          `${formatInt(o.datasetCount)} dataset: ${formatInt(o.live)} langsung, ${formatInt(o.snapshot)} salinan, ${formatInt(o.missing)} belum`,
        ),
      );
    }),
  );
}

function groupBy(list, key) {
  const map = new Map();
  for (const item of list) {
    const k = key(item);
    if (!map.has(k)) map.set(k, []);
    map.get(k).push(item);
  }
  return map;
}
