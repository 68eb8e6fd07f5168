// Tourism: monthly visits (all destinations), the latest month against the same month a year
// earlier, the year to date, and the monthly chart by year.

import { $, replace } from "../lib/dom.js";
import { formatInt, formatPeriod, formatCompact } from "../lib/format.js";
import { loader, showStatus, clearStatus, showPartial } from "../lib/panel.js";
import { sparkline } from "../lib/sparkline.js";
import { changeBadge, demoChip, detailList } from "../lib/widgets.js";
import { drawChart, COLOURS, tickFormat } from "../lib/charts.js";

const DOC = "tourism";
const YEAR_COLOURS = [COLOURS.grey, COLOURS.violet, COLOURS.green, COLOURS.cyan];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"];

export function initTourism({ request }) {
  const card = $("#kpi-tourism");
  const figure = $("#chart-tourism");
  return loader([card, figure], async (current) => {
    const { data, errors } = await request(DOC);
    if (!current()) return;
    const months = (data.regency?.tourism ?? []).slice().sort((a, b) => a.year - b.year || a.month - b.month);
    const number = $(".kpi-number", card);
    if (months.length === 0) {
      number.textContent = "–";
      const message = errors.length ? "Data kunjungan wisata tidak tersedia." : "Belum ada data kunjungan.";
      showStatus(card, message, "error");
      showStatus(figure, message, "error");
      return;
    }
    showPartial(card, errors, DOC);
    clearStatus(figure);

    const latest = months.at(-1);
    const yearAgo = months.find((m) => m.year === latest.year - 1 && m.month === latest.month);
    const ytd = months.filter((m) => m.year === latest.year);
    const ytdBefore = months.filter((m) => m.year === latest.year - 1 && m.month <= latest.month);
    const sum = (list) => list.reduce((s, m) => s + m.visitors, 0);
    const ytdChange =
      ytdBefore.length === ytd.length && sum(ytdBefore) > 0 ? ((sum(ytd) - sum(ytdBefore)) / sum(ytdBefore)) * 100 : null;

    number.value = String(latest.visitors);
    number.dataset.value = String(latest.visitors);
    number.dataset.period = latest.period;
    number.textContent = formatInt(latest.visitors);

    const nataru = (data.tourismEventTotals ?? []).at(-1);
    replace(
      $(".kpi-detail", card),
      detailList([
        ["Bulan", formatPeriod(latest.period, true), " ", demoChip(latest.demo)],
        yearAgo && [
          `Dibanding ${formatPeriod(yearAgo.period)}`,
          changeBadge(((latest.visitors - yearAgo.visitors) / yearAgo.visitors) * 100, {
            polarity: "HIGHER_IS_BETTER", digits: 1, suffix: "%",
          }),
        ],
        [
          `Jan–${MONTHS[latest.month - 1]} ${latest.year}`,
          formatInt(sum(ytd)),
          " ",
          ytdChange !== null ? changeBadge(ytdChange, { polarity: "HIGHER_IS_BETTER", digits: 1, suffix: "%" }) : "",
        ],
        ["Destinasi melapor", `${formatInt(latest.destinations)} dari ${formatInt((data.destinations ?? []).length)}`],
        nataru && ["Libur " + nataru.event, formatInt(nataru.visitors)],
      ]),
      sparkline(months.slice(-24).map((m) => m.visitors), {
        label: `Kunjungan per bulan ${formatPeriod(months.at(-24)?.period ?? months[0].period)} sampai ${formatPeriod(latest.period)}`,
        kind: "bar",
      }),
    );

    const years = [...new Set(months.map((m) => m.year))].slice(-3);
    drawChart($("canvas", figure), {
      type: "line",
      data: {
        labels: MONTHS,
        datasets: years.map((year, i) => ({
          label: String(year),
          data: MONTHS.map((_, m) => months.find((x) => x.year === year && x.month === m + 1)?.visitors ?? null),
          borderColor: YEAR_COLOURS[(YEAR_COLOURS.length - years.length + i) % YEAR_COLOURS.length],
          backgroundColor: YEAR_COLOURS[(YEAR_COLOURS.length - years.length + i) % YEAR_COLOURS.length],
          borderWidth: year === latest.year ? 3 : 1.5,
          pointRadius: year === latest.year ? 3 : 0,
          tension: 0.25,
        })),
      },
      options: {
        interaction: { mode: "index", intersect: false },
        plugins: {
          tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${formatInt(c.parsed.y)} kunjungan` } },
        },
        scales: { y: { beginAtZero: true, ticks: { callback: tickFormat((v) => formatCompact(v, 0)) } } },
      },
    });
  });
}

