// Complaint statistics: the latest month, the last twelve months, the monthly chart (a
// continuous month axis: a month without a row had no complaint), and the categories of a
// chosen year (the latest by default).

import { $, h, replace } from "../lib/dom.js";
import { formatInt, formatNumber, formatPct, formatPeriod, formatMonthShort, DASH } from "../lib/format.js";
import { loader, showPartial, showStatus, clearStatus } from "../lib/panel.js";
import { COMPLAINT_CATEGORIES, opdLabel, label } from "../lib/labels.js";
import { drawChart, COLOURS, tickFormat } from "../lib/charts.js";
import { demoChip } from "../lib/widgets.js";

const DOC = "complaint-stats";
const CATEGORIES_DOC = "complaint-categories";
const SUPPRESSED = "1–4";
const SUPPRESSED_TITLE = "Angka 1–4 disamarkan untuk publik; staf melihat angka persis.";

/** The months from `first` to `last` ("YYYY-MM"), with the rows of `byPeriod` or zeros. */
function continuous(months) {
  if (months.length === 0) return [];
  const byPeriod = new Map(months.map((m) => [m.period, m]));
  const [y0, m0] = months[0].period.split("-").map(Number);
  const [y1, m1] = months.at(-1).period.split("-").map(Number);
  const out = [];
  for (let y = y0, m = m0; y < y1 || (y === y1 && m <= m1); m === 12 ? ((m = 1), (y += 1)) : (m += 1)) {
    const period = `${y}-${String(m).padStart(2, "0")}`;
    out.push(byPeriod.get(period) ?? { period, year: y, month: m, received: 0, resolved: 0, slaBreached: 0, avgResolutionDays: null });
  }
  return out;
}

const count = (v) => (v === null || v === undefined ? h("span", { title: SUPPRESSED_TITLE }, SUPPRESSED) : formatInt(v));

export function initComplaints({ request }) {
  const panel = $("#complaints");
  const yearSelect = $("#complaint-year", panel);
  const table = $(".category-table", panel);

  const loadCategories = loader([], async (current) => {
    const year = Number(yearSelect.value);
    if (!year) return;
    try {
      const { data, errors } = await request(CATEGORIES_DOC, { year });
      if (!current()) return;
      if (errors.length) showPartial(panel, errors, CATEGORIES_DOC);
      renderCategories(table, data.regency?.complaintsByCategory ?? [], year);
    } catch (e) {
      if (current()) showStatus(panel, `Aduan per kategori tidak tersedia: ${e.message}`, "warning", () => loadCategories());
    }
  });
  yearSelect.addEventListener("change", () => loadCategories());

  return loader(panel, async (current) => {
    const { data, errors } = await request(DOC);
    if (!current()) return;
    const rows = (data.regency?.complaintsByMonth ?? []).slice().sort((a, b) => a.period.localeCompare(b.period));
    if (rows.length === 0) {
      showStatus(panel, errors.length ? "Statistik aduan tidak tersedia." : "Belum ada aduan tercatat.", errors.length ? "error" : "info");
      return;
    }
    if (errors.length) showPartial(panel, errors, DOC);
    else clearStatus(panel);
    const months = continuous(rows);
    renderKpis(panel, months);
    renderChart(panel, months.slice(-24));

    const years = [...new Set(rows.map((m) => m.year))].sort((a, b) => b - a);
    const chosen = Number(yearSelect.value);
    replace(yearSelect, years.map((y) => h("option", { value: y }, String(y))));
    yearSelect.value = String(years.includes(chosen) ? chosen : years[0]);
    await loadCategories();
  });
}

function renderKpis(panel, months) {
  const latest = months.at(-1);
  const last12 = months.slice(-12);
  const sum = (key) => last12.reduce((s, m) => s + (m[key] ?? 0), 0);
  const hidden = last12.filter((m) => m.received === null).length;
  const kpi = (title, value, sub = "") =>
    h("div", { class: "mini-kpi" }, h("span", { class: "mini-label" }, title), h("span", { class: "mini-value" }, value), sub && h("span", { class: "mini-sub" }, sub));
  replace(
    $(".complaint-kpis", panel),
    kpi(`Diterima ${formatPeriod(latest.period, true)}`, count(latest.received), demoChip(latest.demo)),
    kpi("Selesai bulan itu", count(latest.resolved)),
    kpi("Lewat batas waktu", count(latest.slaBreached)),
    kpi("Rata-rata penyelesaian", typeof latest.avgResolutionDays === "number" ? `${formatNumber(latest.avgResolutionDays, 1)} hari` : DASH),
    kpi(
      `12 bulan s.d. ${formatPeriod(latest.period)}`,
      `${hidden ? "≥ " : ""}${formatInt(sum("received") + hidden)}`,
      sum("received") ? `${formatPct((sum("resolved") / sum("received")) * 100, 0)} selesai` : "",
    ),
  );
}

function renderChart(panel, months) {
  drawChart($("canvas", panel), {
    type: "bar",
    data: {
      labels: months.map((m) => formatMonthShort(m.period)),
      datasets: [
        { label: "Diterima", data: months.map((m) => m.received), backgroundColor: COLOURS.blue, borderRadius: 2 },
        { label: "Selesai", data: months.map((m) => m.resolved), backgroundColor: COLOURS.green, borderRadius: 2 },
        {
          type: "line",
          label: "Lewat batas waktu",
          data: months.map((m) => m.slaBreached),
          borderColor: COLOURS.red,
          backgroundColor: COLOURS.red,
          pointRadius: 2,
          tension: 0.2,
        },
      ],
    },
    options: {
      interaction: { mode: "index", intersect: false },
      plugins: {
        tooltip: {
          callbacks: {
            label: (c) => `${c.dataset.label}: ${c.raw === null ? `${SUPPRESSED} (disamarkan)` : formatInt(c.parsed.y)}`,
          },
        },
      },
      scales: {
        x: { ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 8 } },
        y: { beginAtZero: true, ticks: { precision: 0, callback: tickFormat(formatInt) } },
      },
    },
  });
}

function renderCategories(table, rows, year) {
  $("caption", table).textContent = `Aduan per kategori, ${year}`;
  const sorted = rows.slice().sort((a, b) => b.received - a.received);
  replace(
    $("tbody", table),
    sorted.length === 0
      ? h("tr", {}, h("td", { colspan: 5, class: "muted" }, `Belum ada aduan pada ${year}.`))
      : sorted.map((r) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, label(COMPLAINT_CATEGORIES, r.category)),
            h("td", {}, opdLabel(r.orgSlug)),
            h("td", { class: "num" }, formatInt(r.received)),
            h("td", { class: "num" }, formatInt(r.resolved)),
            h("td", { class: "num" }, formatInt(r.slaBreached)),
          ),
        ),
  );
}
