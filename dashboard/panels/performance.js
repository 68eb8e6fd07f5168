// Programme realisation (SIPD / e-SAKIP) and budget absorption per OPD (BPKAD), for the
// latest period the absorption series has.

import { $, h, replace } from "../lib/dom.js";
import { formatIdr, formatInt, formatNumber, formatPct, formatPeriod, DASH } from "../lib/format.js";
import { loader, showPartial } from "../lib/panel.js";
import { ApiError } from "../lib/api.js";
import { opdLabel } from "../lib/labels.js";
import { progressBar, demoChip } from "../lib/widgets.js";
import { drawChart, COLOURS, tickFormat } from "../lib/charts.js";

const PERIOD_DOC = "performance-period";
const DOC = "performance";
const BEHIND_POINTS = 10; // as rules/programme-behind.toml

export function initPerformance({ request }) {
  const programmes = $("#programmes");
  const budget = $("#budget");

  return loader([programmes, budget], async (current) => {
    const period = await request(PERIOD_DOC);
    if (!current()) return;
    const latest = (period.data.absorption?.observations ?? [])
      .filter((o) => o.subPeriod >= 1 && o.subPeriod <= 12)
      .reduce((a, b) => (!a || b.year * 100 + b.subPeriod > a.year * 100 + a.subPeriod ? b : a), null);
    if (!latest) throw new ApiError("Periode penyerapan anggaran terakhir tidak diketahui.");
    const month = `${latest.year}-${String(latest.subPeriod).padStart(2, "0")}`;

    const { data, errors } = await request(DOC, { year: latest.year, month });
    if (!current()) return;
    showPartial(programmes, errors.filter((e) => e.path?.[0] === "programmePerformance"), DOC);
    showPartial(budget, errors.filter((e) => e.path?.[0] !== "programmePerformance"), DOC);
    renderProgrammes(programmes, data.programmePerformance ?? [], latest.year);
    renderBudget(budget, data.budgetAbsorption ?? [], data.budgets ?? [], month);
  });
}

const formatMeasure = (v, unit) => (unit === "persen" ? formatPct(v, 2) : formatNumber(v, 2));

function tone(pct, expected) {
  if (typeof pct !== "number") return "";
  if (expected - pct >= BEHIND_POINTS) return "bad";
  if (expected - pct >= BEHIND_POINTS / 2) return "warn";
  return "good";
}

function renderProgrammes(panel, rows, year) {
  const quarter = rows.reduce((q, r) => Math.max(q, r.quarter), 0);
  $("#programmes-period").textContent = quarter ? `${year} · sampai ${formatPeriod(`${year}-Q${quarter}`)}` : String(year);
  replace(
    $("tbody", panel),
    rows.length === 0
      ? h("tr", {}, h("td", { colspan: 7, class: "muted" }, `Belum ada laporan kinerja program ${year}.`))
      : rows.map((r) => {
          const expected = r.quarter * 25;
          const achievementTone = typeof r.achievementPct !== "number" ? "" : r.achievementPct >= 95 ? "good" : r.achievementPct >= 85 ? "warn" : "bad";
          return h(
            "tr",
            { dataset: { programme: r.id } },
            h(
              "th",
              { scope: "row" },
              h("span", { class: "row-name" }, r.programme),
              h("small", { class: "row-code" }, `${opdLabel(r.orgSlug)} · ${r.programmeCode}`, " ", demoChip(r.demo)),
            ),
            h("td", {}, r.indicator, h("small", { class: "row-code" }, r.polarity === "LOWER_IS_BETTER" ? "makin rendah makin baik" : r.unit)),
            h("td", { class: "num" }, formatMeasure(r.target, r.unit)),
            h("td", { class: "num" }, formatMeasure(r.realisation, r.unit)),
            h(
              "td",
              { class: "bar-cell" },
              h("span", { class: "bar-value" }, r.achievementPct === null ? DASH : formatPct(r.achievementPct, 1)),
              progressBar(r.achievementPct, { tone: achievementTone, label: `Capaian ${formatPct(r.achievementPct, 1)}` }),
            ),
            h("td", { class: "num", title: `Realisasi ${formatIdr(r.budgetRealisedIdr)}` }, formatIdr(r.budgetCeilingIdr)),
            h(
              "td",
              { class: "bar-cell" },
              h(
                "span",
                { class: "bar-value" },
                r.budgetAbsorptionPct === null ? DASH : formatPct(r.budgetAbsorptionPct, 1),
                h("small", {}, ` / jadwal ${formatPct(expected, 0)}`),
              ),
              progressBar(r.budgetAbsorptionPct, {
                marker: expected,
                tone: tone(r.budgetAbsorptionPct, expected),
                label: `Serapan ${formatPct(r.budgetAbsorptionPct, 1)}, jadwal linier ${formatPct(expected, 0)}`,
              }),
            ),
          );
        }),
  );
}

function renderBudget(panel, rows, budgets, month) {
  const monthNumber = Number(month.slice(5));
  const expected = (monthNumber / 12) * 100;
  const ceiling = rows.reduce((s, r) => s + Number(r.ceilingIdr), 0);
  const realised = rows.reduce((s, r) => s + Number(r.realisedIdr), 0);
  const total = ceiling > 0 ? (realised / ceiling) * 100 : null;
  const year = Number(month.slice(0, 4));
  const apbd =
    budgets.find((b) => b.year === year && b.stage === "REVISED") ?? budgets.find((b) => b.year === year && b.stage === "ORIGINAL");
  $("#budget-period").textContent = `kumulatif sampai ${formatPeriod(month, true)}`;

  replace(
    $(".budget-summary", panel),
    h(
      "p",
      { class: "budget-total" },
      h("span", { class: "big", dataset: { value: total ?? "" } }, total === null ? DASH : formatPct(total, 1)),
      ` terserap dari pagu ${formatIdr(ceiling)} (${formatInt(rows.length)} OPD) · jadwal linier ${formatPct(expected, 0)}`,
      " ",
      demoChip(rows.some((r) => r.demo)),
    ),
    apbd &&
      h(
        "p",
        { class: "muted", title: apbd.note ?? "" },
        `APBD ${apbd.year} ${apbd.stage === "REVISED" ? "perubahan" : "murni"}: pendapatan ${formatIdr(apbd.revenueIdr)}, belanja ${formatIdr(apbd.expenditureIdr)}, ${
          Number(apbd.surplusDeficitIdr) < 0 ? "defisit" : "surplus"
        } ${formatIdr(Math.abs(Number(apbd.surplusDeficitIdr)))}${apbd.documentRef ? ` (${apbd.documentRef})` : " (angka pemberitaan, belum dari Perda)"}`,
      ),
  );

  const sorted = rows.slice().sort((a, b) => b.absorptionPct - a.absorptionPct);
  const colour = (pct) => ({ bad: COLOURS.red, warn: COLOURS.amber, good: COLOURS.green })[tone(pct, expected)] ?? COLOURS.blue;
  drawChart($("canvas", panel), {
    type: "bar",
    data: {
      labels: sorted.map((r) => opdLabel(r.orgSlug)),
      datasets: [
        {
          label: "Penyerapan (%)",
          data: sorted.map((r) => r.absorptionPct),
          backgroundColor: sorted.map((r) => colour(r.absorptionPct)),
          borderRadius: 3,
        },
      ],
    },
    options: {
      indexAxis: "y",
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            title: (items) => sorted[items[0].dataIndex].organization?.name ?? items[0].label,
            label: (c) => {
              const r = sorted[c.dataIndex];
              return `${formatPct(r.absorptionPct, 1)}: ${formatIdr(r.realisedIdr)} dari ${formatIdr(r.ceilingIdr)}`;
            },
          },
        },
      },
      scales: {
        x: { min: 0, max: 100, ticks: { callback: tickFormat((v) => formatPct(v, 0)) } },
        y: { ticks: { autoSkip: false } },
      },
    },
  });
}
