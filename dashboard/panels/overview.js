// Regency overview: population (Disdukcapil, DKB) and official BPS poverty, with the
// poverty trend chart.

import { $, replace } from "../lib/dom.js";
import { formatInt, formatNumber, formatPct, formatPeriod, formatIdr } from "../lib/format.js";
import { loader, showStatus, clearStatus, errorsAt } from "../lib/panel.js";
import { describeErrors } from "../lib/api.js";
import { sparkline } from "../lib/sparkline.js";
import { changeBadge, demoChip, detailList } from "../lib/widgets.js";
import { drawChart, COLOURS, tickFormat } from "../lib/charts.js";

const DOC = "regency-overview";

export function initOverview({ request }) {
  const populationCard = $("#kpi-population");
  const povertyCard = $("#kpi-poverty");
  const chartFigure = $("#chart-poverty");

  return loader([populationCard, povertyCard, chartFigure], async (current) => {
    const { data, errors } = await request(DOC);
    if (!current()) return;
    const regency = data.regency;

    renderPopulation(populationCard, regency, errorsAt(errors, "regency", "population"));
    renderPoverty(povertyCard, chartFigure, regency?.poverty, errorsAt(errors, "regency", "poverty"));
  });
}

function renderPopulation(card, regency, errors) {
  const p = regency?.population;
  const value = $("[data-testid=population-total]", card);
  if (!p) {
    showStatus(card, errors.length ? describeErrors(errors, DOC) : "Data penduduk belum tersedia.", "error");
    return;
  }
  clearStatus(card);
  value.value = String(p.total);
  value.dataset.value = String(p.total);
  value.textContent = formatInt(p.total);

  const history = regency.populationHistory ?? [];
  replace(
    $(".kpi-detail", card),
    detailList([
      ["Periode", formatPeriod(p.period), " ", demoChip(p.demo, p.note)],
      ["Laki-laki / perempuan", `${formatInt(p.male)} / ${formatInt(p.female)}`],
      p.households !== null && ["Kepala keluarga", `${formatInt(p.households)} KK`],
      p.density !== null && ["Kepadatan", `${formatInt(p.density)} jiwa/km²`],
      p.growthPct !== null && [
        "Pertumbuhan setahun",
        changeBadge(p.growthPct, { digits: 2, suffix: "%" }),
      ],
    ]),
    history.length > 1 &&
      sparkline(
        history.map((x) => x.total),
        {
          label: `Tren penduduk ${formatPeriod(history[0].period)} sampai ${formatPeriod(history.at(-1).period)}: ${formatInt(history[0].total)} menjadi ${formatInt(history.at(-1).total)} jiwa`,
        },
      ),
  );
}

function renderPoverty(card, figure, poverty, errors) {
  const value = $("[data-testid=poverty-rate]", card);
  const rates = (poverty?.rate ?? []).filter((o) => typeof o.value === "number").sort((a, b) => a.year - b.year);
  if (rates.length === 0) {
    const message = errors.length ? describeErrors(errors, DOC) : "Data kemiskinan BPS belum tersedia.";
    showStatus(card, message, "error");
    showStatus(figure, message, "error");
    value.textContent = "–";
    return;
  }
  clearStatus(card);
  clearStatus(figure);
  const latest = rates.at(-1);
  const previous = rates.at(-2);
  value.value = String(latest.value);
  value.dataset.value = String(latest.value);
  value.dataset.year = String(latest.year);
  value.textContent = formatPct(latest.value);

  const poor = latestOf(poverty.poorCount);
  const line = latestOf(poverty.povertyLine);
  replace(
    $(".kpi-detail", card),
    detailList([
      ["Tahun", String(latest.year)],
      previous && [
        `Dibanding ${previous.year}`,
        changeBadge(latest.value - previous.value, { polarity: "LOWER_IS_BETTER", suffix: " poin" }),
      ],
      poor && ["Penduduk miskin", `${formatNumber(poor.value, 2)} ribu jiwa (${poor.year})`],
      line && ["Garis kemiskinan", `${formatIdr(line.value)}/kapita/bulan`],
    ]),
    sparkline(
      rates.map((r) => r.value),
      { label: `Tren P0 ${rates[0].year}–${latest.year}: ${formatPct(rates[0].value)} menjadi ${formatPct(latest.value)}` },
    ),
  );

  const poorByYear = new Map((poverty.poorCount ?? []).map((o) => [o.year, o.value]));
  drawChart($("canvas", figure), {
    type: "bar",
    data: {
      labels: rates.map((r) => String(r.year)),
      datasets: [
        {
          type: "line",
          label: "P0 (%)",
          data: rates.map((r) => r.value),
          borderColor: COLOURS.amber,
          backgroundColor: COLOURS.amber,
          yAxisID: "pct",
          tension: 0.25,
          pointRadius: 3,
        },
        {
          type: "bar",
          label: "Penduduk miskin (ribu jiwa)",
          data: rates.map((r) => poorByYear.get(r.year) ?? null),
          backgroundColor: "rgba(96, 165, 250, 0.35)",
          borderColor: COLOURS.blue,
          borderWidth: 1,
          yAxisID: "count",
        },
      ],
    },
    options: {
      interaction: { mode: "index", intersect: false },
      plugins: {
        tooltip: {
          callbacks: {
            label: (c) =>
              c.dataset.yAxisID === "pct"
                ? `P0: ${formatPct(c.parsed.y)}`
                : `Penduduk miskin: ${formatNumber(c.parsed.y, 2)} ribu jiwa`,
          },
        },
      },
      scales: {
        pct: { position: "left", ticks: { callback: tickFormat((v) => formatPct(v, 1)) } },
        count: { position: "right", grid: { drawOnChartArea: false }, ticks: { callback: tickFormat((v) => formatNumber(v, 0)) } },
      },
    },
  });
}

function latestOf(series) {
  const list = (series ?? []).filter((o) => typeof o.value === "number");
  return list.length ? list.reduce((a, b) => (b.year > a.year ? b : a)) : null;
}
