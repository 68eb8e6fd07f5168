// The 14 kecamatan: a table with sparkline trends, and a grid coloured by a chosen indicator.
// Staff also get DTSEN and social-assistance indicators (district-welfare, INTERNAL).

import { $, h, replace } from "../lib/dom.js";
import { formatInt, formatNumber, formatPct, formatPeriod, DASH } from "../lib/format.js";
import { loader, showStatus, showPartial } from "../lib/panel.js";
import { sparkline } from "../lib/sparkline.js";
import { classify } from "../lib/scale.js";

const DOC = "districts";
const WELFARE_DOC = "district-welfare";

/** Months "YYYY-MM" ending at `last`, `count` of them, oldest first. */
function monthsUpTo(last, count) {
  const [y, m] = last.split("-").map(Number);
  return Array.from({ length: count }, (_, i) => {
    const d = new Date(Date.UTC(y, m - 1 - (count - 1 - i), 1));
    return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
  });
}

const latestOf = (list, key = "year") => (list?.length ? list.reduce((a, b) => (b[key] > a[key] ? b : a)) : null);

/** Derives every figure of one district once: the table, the grid and the tooltips read it. */
function summarize(d, windows, welfare) {
  const stunting = (d.stunting ?? []).filter((s) => typeof s.prevalencePct === "number").sort((a, b) => a.year - b.year);
  const tourismBy = new Map((d.tourism ?? []).map((t) => [t.period, t.visitors]));
  const complaintBy = new Map((d.complaintsByMonth ?? []).map((c) => [c.period, c.received]));
  const hasTourism = tourismBy.size > 0;
  const complaintAt = (p) => (complaintBy.has(p) ? complaintBy.get(p) : 0); // absent month: none
  const complaints12 = windows.complaints12.map(complaintAt);
  const suppressed = complaints12.filter((v) => v === null).length;
  const education = d.education ?? [];
  const students = education.reduce((s, e) => s + e.students, 0);
  const teachers = education.reduce((s, e) => s + e.teachers, 0);
  const decile1 = latestOf((welfare?.welfareDeciles ?? []).filter((w) => w.decile === 1), "period");
  const assistance = latestOf(welfare?.socialAssistance ?? [], "period");
  return {
    code: d.code,
    name: d.name,
    population: d.population?.total ?? null,
    density: d.population?.density ?? null,
    growth: d.population?.growthPct ?? null,
    populationTrend: (d.populationHistory ?? []).map((p) => p.total),
    populationPeriods: (d.populationHistory ?? []).map((p) => p.period),
    stunting: stunting.at(-1)?.prevalencePct ?? null,
    stuntingYear: stunting.at(-1)?.year ?? null,
    stuntingTrend: stunting.map((s) => s.prevalencePct),
    posyandu: d.health?.posyandu ?? null,
    lokus: d.health?.lokusVillages ?? null,
    tourism12: hasTourism ? windows.tourism12.reduce((s, p) => s + (tourismBy.get(p) ?? 0), 0) : null,
    tourismTrend: hasTourism ? windows.tourism24.map((p) => tourismBy.get(p) ?? null) : [],
    complaints12: complaints12.reduce((s, v) => s + (v ?? 1), 0), // a suppressed month had at least 1
    complaintsSuppressed: suppressed,
    complaintsTrend: windows.complaints24.map(complaintAt),
    schools: education.length ? education.reduce((s, e) => s + e.schools, 0) : null,
    studentsPerTeacher: teachers > 0 ? students / teachers : null,
    decile1: decile1?.households ?? null,
    decile1Period: decile1?.period ?? null,
    pkh: assistance?.pkhHouseholds ?? null,
    pkhPeriod: assistance?.period ?? null,
  };
}

const complaintsText = (r) => (r.complaintsSuppressed ? `≥ ${formatInt(r.complaints12)}` : formatInt(r.complaints12));

/** The indicators of the grid: value, format and whether more is better. */
const INDICATORS = [
  { id: "population", label: "Penduduk", unit: "jiwa", polarity: "NEUTRAL", value: (r) => r.population, format: formatInt },
  { id: "density", label: "Kepadatan penduduk", unit: "jiwa/km²", polarity: "NEUTRAL", value: (r) => r.density, format: formatInt },
  { id: "growth", label: "Pertumbuhan penduduk setahun", unit: "%", polarity: "NEUTRAL", value: (r) => r.growth, format: (v) => formatPct(v) },
  { id: "stunting", label: "Stunting (e-PPGBM, tahun terakhir)", unit: "%", polarity: "LOWER_IS_BETTER", value: (r) => r.stunting, format: (v) => formatPct(v) },
  { id: "lokus", label: "Desa lokus stunting", unit: "desa", polarity: "LOWER_IS_BETTER", value: (r) => r.lokus, format: formatInt },
  { id: "posyandu", label: "Posyandu", unit: "posyandu", polarity: "HIGHER_IS_BETTER", value: (r) => r.posyandu, format: formatInt },
  { id: "tourism", label: "Kunjungan wisata 12 bulan", unit: "kunjungan", polarity: "HIGHER_IS_BETTER", value: (r) => r.tourism12, format: formatInt },
  { id: "complaints", label: "Aduan 12 bulan", unit: "aduan", polarity: "LOWER_IS_BETTER", value: (r) => r.complaints12, format: formatInt, text: complaintsText },
  { id: "ratio", label: "Peserta didik per guru", unit: "", polarity: "LOWER_IS_BETTER", value: (r) => r.studentsPerTeacher, format: (v) => formatNumber(v, 1) },
  { id: "decile1", label: "Rumah tangga desil 1 DTSEN (staf)", unit: "rumah tangga", polarity: "LOWER_IS_BETTER", value: (r) => r.decile1, format: formatInt, staff: true },
  { id: "pkh", label: "Keluarga penerima PKH (staf)", unit: "keluarga", polarity: "NEUTRAL", value: (r) => r.pkh, format: formatInt, staff: true },
];

export function initDistricts({ request, auth }) {
  const tablePanel = $("#districts");
  const gridPanel = $("#district-grid-panel");
  const tbody = $("[data-testid=district-table] tbody", tablePanel);
  const grid = $("[data-testid=district-grid]", gridPanel);
  const select = $("[data-testid=grid-indicator]", gridPanel);
  const caption = $("#grid-caption", gridPanel);
  const legend = $("#grid-legend", gridPanel);
  let rows = [];
  let selected = "stunting";

  select.addEventListener("change", () => {
    selected = select.value;
    renderGrid();
  });

  function fillSelect(staff) {
    const options = INDICATORS.filter((i) => !i.staff || staff);
    if (!options.some((i) => i.id === selected)) selected = "stunting";
    replace(select, options.map((i) => h("option", { value: i.id, selected: i.id === selected }, i.label)));
    select.value = selected;
  }

  function renderGrid() {
    const indicator = INDICATORS.find((i) => i.id === selected) ?? INDICATORS[0];
    const { colourOf, breaks } = classify(rows.map(indicator.value), indicator.polarity);
    caption.textContent = `${indicator.label}${indicator.unit ? ` (${indicator.unit})` : ""}. ${
      indicator.polarity === "LOWER_IS_BETTER" ? "Makin gelap makin perlu perhatian." : "Makin gelap makin tinggi."
    }`;
    replace(
      grid,
      rows.map((r) => {
        const v = indicator.value(r);
        const colour = colourOf(v);
        const text = v === null ? DASH : indicator.text ? indicator.text(r) : indicator.format(v);
        return h(
          "li",
          {
            class: ["tile", colour === null && "tile-empty"],
            dataset: { testid: "district-tile", code: r.code, value: v ?? "" },
            style: colour ? { background: colour.colour, color: colour.text } : {},
          },
          h(
            "button",
            {
              type: "button",
              class: "tile-button",
              title: `${r.name}: ${text} — tampilkan di tabel`,
              on: { click: () => highlightRow(r.code) },
            },
            h("span", { class: "tile-name" }, r.name),
            h("span", { class: "tile-value" }, text),
          ),
        );
      }),
    );
    replace(
      legend,
      breaks.map((b) =>
        h("span", { class: "legend-item" }, h("i", { style: { background: b.colour } }), indicator.format(b.from)),
      ),
    );
  }

  function highlightRow(code) {
    const row = tbody.querySelector(`tr[data-code="${code}"]`);
    if (!row) return;
    row.scrollIntoView({ behavior: "smooth", block: "center" });
    row.classList.remove("is-highlighted");
    void row.offsetWidth; // restart the animation
    row.classList.add("is-highlighted");
  }

  function renderTable() {
    replace(
      tbody,
      rows.map((r) =>
        h(
          "tr",
          { dataset: { testid: "district-row", code: r.code } },
          h("th", { scope: "row" }, h("span", { class: "row-name" }, r.name), h("small", { class: "row-code" }, r.code)),
          h("td", { class: "num" }, formatInt(r.population)),
          h("td", { class: "spark-cell" }, r.populationTrend.length > 1 && sparkline(r.populationTrend, {
            label: `Penduduk ${r.name} ${formatPeriod(r.populationPeriods[0])}–${formatPeriod(r.populationPeriods.at(-1))}`,
          })),
          h("td", { class: "num" }, formatInt(r.density)),
          h("td", { class: "num", title: r.stuntingYear ? `Agustus ${r.stuntingYear}` : null }, r.stunting === null ? DASH : formatPct(r.stunting)),
          h("td", { class: "spark-cell" }, r.stuntingTrend.length > 1 && sparkline(r.stuntingTrend, { label: `Stunting e-PPGBM ${r.name} per tahun` })),
          h("td", { class: "num" }, formatInt(r.posyandu)),
          h("td", { class: "num" }, formatInt(r.lokus)),
          h("td", { class: "num" }, r.tourism12 === null ? h("span", { class: "muted", title: "Tidak ada destinasi tercatat" }, DASH) : formatInt(r.tourism12)),
          h("td", { class: "spark-cell" }, r.tourismTrend.length > 1 && sparkline(r.tourismTrend, { label: `Kunjungan wisata ${r.name}, 24 bulan`, kind: "bar" })),
          h(
            "td",
            {
              class: "num",
              title: r.complaintsSuppressed
                ? `${r.complaintsSuppressed} bulan dengan 1–4 aduan disamarkan untuk publik; dihitung 1`
                : null,
            },
            complaintsText(r),
          ),
          h("td", { class: "spark-cell" }, sparkline(r.complaintsTrend, { label: `Aduan ${r.name} per bulan, 24 bulan (celah: disamarkan)`, kind: "bar" })),
          h("td", { class: "num" }, formatInt(r.schools)),
          h("td", { class: "num" }, r.studentsPerTeacher === null ? DASH : formatNumber(r.studentsPerTeacher, 1)),
        ),
      ),
    );
  }

  return loader([tablePanel, gridPanel], async (current) => {
    const staff = auth.isStaff;
    const [main, welfare] = await Promise.all([
      request(DOC),
      staff ? request(WELFARE_DOC).catch((e) => ({ failed: e })) : Promise.resolve(null),
    ]);
    if (!current()) return;
    const districts = main.data.districts ?? [];
    if (districts.length === 0) throw new Error("no districts");

    // Each monthly series has its own latest month (tourism and complaints are not reported
    // at the same pace): the windows end there.
    const lastOf = (key) => districts.flatMap((d) => (d[key] ?? []).map((x) => x.period)).sort().at(-1);
    const lastTourism = lastOf("tourism") ?? "2025-01";
    const lastComplaint = lastOf("complaintsByMonth") ?? lastTourism;
    const windows = {
      tourism12: monthsUpTo(lastTourism, 12),
      tourism24: monthsUpTo(lastTourism, 24),
      complaints12: monthsUpTo(lastComplaint, 12),
      complaints24: monthsUpTo(lastComplaint, 24),
    };
    const welfareBy = new Map((welfare?.data?.districts ?? []).map((w) => [w.code, w]));
    rows = districts.map((d) => summarize(d, windows, welfareBy.get(d.code)));

    $("#districts-note", tablePanel).textContent =
      `Wisata s.d. ${formatPeriod(lastTourism, true)}, aduan s.d. ${formatPeriod(lastComplaint, true)} (tren 24 bulan)` +
      (staff ? " · angka persis (staf)" : " · aduan 1–4 per bulan disamarkan untuk publik");
    showPartial(tablePanel, main.errors, DOC);
    if (welfare?.failed) showStatus(gridPanel, `Indikator staf tidak tersedia: ${welfare.failed.message}`, "warning");
    else showPartial(gridPanel, [...main.errors, ...(welfare?.errors ?? [])], DOC);

    fillSelect(staff && !welfare?.failed);
    renderTable();
    renderGrid();
  });
}
