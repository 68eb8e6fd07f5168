// Health: stunting from its two sources, labelled and never mixed (administrative e-PPGBM
// vs the Kemenkes survey SKI/SSGI), health facilities and posyandu, and the stunting chart.

import { $, h, replace } from "../lib/dom.js";
import { formatInt, formatPct } from "../lib/format.js";
import { loader, showStatus, clearStatus, errorsAt } from "../lib/panel.js";
import { describeErrors } from "../lib/api.js";
import { sparkline } from "../lib/sparkline.js";
import { changeBadge, demoChip, detailList } from "../lib/widgets.js";
import { drawChart, COLOURS, tickFormat } from "../lib/charts.js";

const DOC = "health";

export function initHealth({ request }) {
  const adminCard = $("#kpi-stunting-admin");
  const surveyCard = $("#kpi-stunting-survey");
  const healthCard = $("#kpi-health");
  const figure = $("#chart-stunting");

  return loader([adminCard, surveyCard, healthCard, figure], async (current) => {
    const { data, errors } = await request(DOC);
    if (!current()) return;
    const regency = data.regency ?? {};
    const admin = (regency.stunting ?? []).filter((s) => typeof s.prevalencePct === "number");
    const survey = (regency.stuntingSurvey ?? []).filter((s) => typeof s.prevalencePct === "number");

    renderAdmin(adminCard, admin, errorsAt(errors, "regency", "stunting"));
    renderSurvey(surveyCard, survey, errorsAt(errors, "regency", "stuntingSurvey"));
    renderFacilities(healthCard, data.healthFacilities, regency.health, [
      ...errorsAt(errors, "healthFacilities"),
      ...errorsAt(errors, "regency", "health"),
    ]);
    renderChart(figure, admin, survey);
  });
}

function setNumber(card, value, year) {
  const el = $(".kpi-number", card);
  el.value = value === null ? "" : String(value);
  el.dataset.value = value === null ? "" : String(value);
  el.dataset.year = year === null ? "" : String(year);
  el.textContent = value === null ? "–" : formatPct(value);
}

// The card's number from the series' latest year, or its error when there is none:
// the latest and the year before, or null.
function headline(card, series, errors, missing) {
  if (series.length === 0) {
    setNumber(card, null, null);
    showStatus(card, errors.length ? describeErrors(errors, DOC) : missing, "error");
    return null;
  }
  clearStatus(card);
  const latest = series.at(-1);
  setNumber(card, latest.prevalencePct, latest.year);
  return { latest, previous: series.at(-2) };
}

function renderAdmin(card, series, errors) {
  const shown = headline(card, series, errors, "Data e-PPGBM belum tersedia.");
  if (!shown) return;
  const { latest, previous } = shown;
  replace(
    $(".kpi-detail", card),
    detailList([
      ["Penimbangan", `Agustus ${latest.year}`, " ", demoChip(latest.demo, latest.note)],
      ["Cakupan", "seluruh balita"],
      typeof latest.stunted === "number" && [
        "Balita stunting",
        `${formatInt(latest.stunted)} dari ${formatInt(latest.toddlersMeasured)} diukur`,
      ],
      previous && [
        `Dibanding ${previous.year}`,
        changeBadge(latest.prevalencePct - previous.prevalencePct, { polarity: "LOWER_IS_BETTER", suffix: " poin" }),
      ],
    ]),
    series.length > 1 &&
      sparkline(series.map((s) => s.prevalencePct), {
        label: `Tren stunting e-PPGBM ${series[0].year}–${latest.year}`,
      }),
  );
}

function renderSurvey(card, series, errors) {
  const shown = headline(card, series, errors, "Data survei stunting belum tersedia.");
  if (!shown) return;
  const { latest, previous } = shown;
  replace(
    $(".kpi-detail", card),
    detailList([
      ["Survei", `${latest.survey} (${latest.producer})`, " ", demoChip(latest.demo)],
      ["Cakupan", "sampel rumah tangga"],
      previous && [
        `${previous.survey}`,
        formatPct(previous.prevalencePct),
        " ",
        changeBadge(latest.prevalencePct - previous.prevalencePct, { polarity: "LOWER_IS_BETTER", suffix: " poin" }),
      ],
    ]),
    h("p", { class: "kpi-note" }, "Metode berbeda dari e-PPGBM: jangan dibandingkan langsung."),
  );
}

function renderFacilities(card, facilities, health, errors) {
  const number = $(".kpi-number", card);
  if (!Array.isArray(facilities) && !health) {
    number.textContent = "–";
    showStatus(card, errors.length ? describeErrors(errors, DOC) : "Data fasilitas kesehatan belum tersedia.", "error");
    return;
  }
  if (errors.length) showStatus(card, `Sebagian data tidak tersedia: ${describeErrors(errors, DOC)}`, "warning");
  else clearStatus(card);
  const list = facilities ?? [];
  const rsud = list.filter((f) => f.type === "RSUD");
  const puskesmas = list.filter((f) => f.type === "PUSKESMAS");
  const beds = rsud.reduce((sum, f) => sum + (f.beds ?? 0), 0);
  number.value = String(list.length);
  number.dataset.value = String(list.length);
  number.textContent = Array.isArray(facilities) ? formatInt(list.length) : "–";
  replace(
    $(".kpi-detail", card),
    detailList([
      Array.isArray(facilities) && [
        "RSUD",
        `${formatInt(rsud.length)}${beds ? ` (${formatInt(beds)} tempat tidur)` : ""}`,
        " ",
        demoChip(rsud.some((f) => f.demo)),
      ],
      Array.isArray(facilities) && ["Puskesmas", formatInt(puskesmas.length), " ", demoChip(puskesmas.some((f) => f.demo))],
      health && ["Posyandu", `${formatInt(health.posyandu)} (${health.year})`, " ", demoChip(health.demo)],
      health && ["Desa lokus stunting", formatInt(health.lokusVillages)],
    ]),
  );
}

function renderChart(figure, admin, survey) {
  if (admin.length === 0 && survey.length === 0) {
    showStatus(figure, "Belum ada data stunting untuk digambar.", "error");
    return;
  }
  clearStatus(figure);
  const years = [...new Set([...admin.map((s) => s.year), ...survey.map((s) => s.year)])].sort();
  const byYear = (series) => years.map((y) => series.find((s) => s.year === y)?.prevalencePct ?? null);
  const surveyName = new Map(survey.map((s) => [s.year, s.survey]));
  drawChart($("canvas", figure), {
    type: "line",
    data: {
      labels: years.map(String),
      datasets: [
        {
          label: "Administratif (e-PPGBM)",
          data: byYear(admin),
          borderColor: COLOURS.cyan,
          backgroundColor: COLOURS.cyan,
          pointRadius: 4,
          tension: 0.2,
          spanGaps: true,
        },
        {
          label: "Survei (SKI/SSGI)",
          data: byYear(survey),
          borderColor: COLOURS.orange,
          backgroundColor: COLOURS.orange,
          borderDash: [6, 4],
          pointStyle: "rectRot",
          pointRadius: 6,
          spanGaps: true,
        },
      ],
    },
    options: {
      interaction: { mode: "index", intersect: false },
      plugins: {
        tooltip: {
          callbacks: {
            label: (c) =>
              c.datasetIndex === 1
                ? `${surveyName.get(Number(c.label)) ?? "Survei"}: ${formatPct(c.parsed.y)}`
                : `e-PPGBM Agustus ${c.label}: ${formatPct(c.parsed.y)}`,
          },
        },
      },
      scales: { y: { beginAtZero: true, ticks: { callback: tickFormat((v) => formatPct(v, 0)) } } },
    },
  });
}
