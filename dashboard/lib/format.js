// Indonesian formatting (id-ID): 753.810; 10,29%; Rp 1,97 T; times in WIB.

const LOCALE = "id-ID";
const TIME_ZONE = "Asia/Jakarta";
const cache = new Map();

function nf(options) {
  const key = JSON.stringify(options);
  if (!cache.has(key)) cache.set(key, new Intl.NumberFormat(LOCALE, options));
  return cache.get(key);
}

const isNum = (v) => typeof v === "number" && Number.isFinite(v);
export const DASH = "–";

/** 753810 → "753.810" */
export function formatInt(v) {
  return isNum(v) ? nf({ maximumFractionDigits: 0 }).format(v) : DASH;
}

/** 10.294 → "10,29" (at most `digits` decimals). */
export function formatNumber(v, digits = 2, minDigits = 0) {
  return isNum(v)
    ? nf({ maximumFractionDigits: digits, minimumFractionDigits: minDigits }).format(v)
    : DASH;
}

/** 10.29 → "10,29%" (the value is already in percent). */
export function formatPct(v, digits = 2) {
  return isNum(v) ? `${formatNumber(v, digits)}%` : DASH;
}

/** Signed change: 0.42 → "+0,42", -1.2 → "−1,2". */
export function formatSigned(v, digits = 2, suffix = "") {
  if (!isNum(v)) return DASH;
  const abs = formatNumber(Math.abs(v), digits);
  const sign = v > 0 ? "+" : v < 0 ? "−" : "±";
  return `${sign}${abs}${suffix}`;
}

/** 75446 → "75 rb"; 1969000000000 → "1,97 T". */
export function formatCompact(v, digits = 1) {
  return isNum(v) ? nf({ notation: "compact", maximumFractionDigits: digits }).format(v) : DASH;
}

/** Rupiah (a number, or the exact decimal string of a `Rupiah` field), compact:
 * "Rp 1,97 T", "Rp 19,2 M", "Rp 450.334". */
export function formatIdr(v, digits = 2) {
  if (typeof v === "string" && v.trim() !== "") v = Number(v);
  if (!isNum(v)) return DASH;
  return Math.abs(v) >= 1e6 ? `Rp ${formatCompact(v, digits)}` : `Rp ${formatInt(v)}`;
}

const dateFormat = new Intl.DateTimeFormat(LOCALE, { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });
const dateTimeFormat = new Intl.DateTimeFormat(LOCALE, {
  day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", timeZone: TIME_ZONE,
});
const timeFormat = new Intl.DateTimeFormat(LOCALE, { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZone: TIME_ZONE });
const monthFormat = new Intl.DateTimeFormat(LOCALE, { month: "short", year: "numeric", timeZone: "UTC" });
const monthLongFormat = new Intl.DateTimeFormat(LOCALE, { month: "long", year: "numeric", timeZone: "UTC" });

/** "2025-11-26" → "26 November 2025" (a calendar date, no time zone shift). */
export function formatDate(ymd) {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(ymd ?? "");
  if (!m) return DASH;
  return dateFormat.format(new Date(Date.UTC(+m[1], +m[2] - 1, +m[3])));
}

/** RFC 3339 → "2 Des 2026, 13.50 WIB". */
export function formatDateTime(iso) {
  const d = iso ? new Date(iso) : null;
  return d && !Number.isNaN(d.getTime()) ? `${dateTimeFormat.format(d)} WIB` : DASH;
}

/** RFC 3339 or Date → "13.50.02" (WIB). */
export function formatTime(iso) {
  const d = iso instanceof Date ? iso : iso ? new Date(iso) : null;
  return d && !Number.isNaN(d.getTime()) ? timeFormat.format(d) : DASH;
}

/** Seconds → "12 detik", "3 menit 4 detik", "2 jam 5 menit", "4 hari 3 jam". */
export function formatDuration(seconds) {
  if (!isNum(seconds)) return DASH;
  const s = Math.max(0, Math.floor(seconds));
  const units = [
    [86400, "hari"],
    [3600, "jam"],
    [60, "menit"],
    [1, "detik"],
  ];
  const parts = [];
  let rest = s;
  for (const [size, name] of units) {
    const n = Math.floor(rest / size);
    if (n > 0 || (size === 1 && parts.length === 0)) parts.push(`${n} ${name}`);
    rest -= n * size;
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

/** Seconds ago → "baru saja", "12 detik lalu", "3 menit lalu". */
export function formatAgo(seconds) {
  if (!isNum(seconds)) return DASH;
  if (seconds < 2) return "baru saja";
  return `${formatDuration(seconds).split(" ").slice(0, 2).join(" ")} lalu`;
}

const ROMAN = ["", "I", "II", "III", "IV"];

/**
 * Period labels of the API → Indonesian:
 * "2024-S2" → "Semester II 2024", "2025-Q3" → "Triwulan III 2025", "2025-10" → "Okt 2025".
 */
export function formatPeriod(period, long = false) {
  if (typeof period !== "string") return DASH;
  let m = /^(\d{4})-S([12])$/.exec(period);
  if (m) return `Semester ${ROMAN[+m[2]]} ${m[1]}`;
  m = /^(\d{4})-Q([1-4])$/.exec(period);
  if (m) return `Triwulan ${ROMAN[+m[2]]} ${m[1]}`;
  m = /^(\d{4})-(\d{2})$/.exec(period);
  if (m) return (long ? monthLongFormat : monthFormat).format(new Date(Date.UTC(+m[1], +m[2] - 1, 1)));
  return period;
}

/** Short month label for chart axes: "2025-10" → "Okt 25". */
export function formatMonthShort(period) {
  const m = /^(\d{4})-(\d{2})$/.exec(period ?? "");
  if (!m) return period ?? "";
  const month = new Intl.DateTimeFormat(LOCALE, { month: "short", timeZone: "UTC" }).format(
    new Date(Date.UTC(+m[1], +m[2] - 1, 1)),
  );
  return `${month} ${m[1].slice(2)}`;
}
