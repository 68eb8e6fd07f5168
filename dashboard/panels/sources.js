// Source health: the status of every connector (UP, DEGRADED, STALE, DOWN), live over the
// `sourceStatusChanged` subscription, with the age of stale data ticking every second and
// the freshness of each source's datasets from the catalog.

import { $, h, replace, chip } from "../lib/dom.js";
import { formatAgo, formatDate, formatDuration, formatInt, formatNumber, formatTime } from "../lib/format.js";
import { loader, showPartial, showStatus } from "../lib/panel.js";
import { describeErrors } from "../lib/api.js";
import { SOURCE_KIND, SOURCE_STATUS, opdLabel, label } from "../lib/labels.js";
import { store } from "../lib/store.js";

const DOC = "sources";
const STAFF_DOC = "sources-internal";
const EVENTS_DOC = "source-status-changed";
const REFRESH_MS = 30_000;
const STATUS_ORDER = { DOWN: 0, STALE: 1, DEGRADED: 2, UP: 3 };
const LIVE_TEXT = { open: "Langsung", connecting: "Menyambung…", closed: "Terputus, mencoba lagi…" };

export function initSources({ request, live, auth }) {
  const panel = $("#sources");
  const list = $(".source-list", panel);
  const summary = $("#sources-summary", panel);
  const liveState = $("#sources-live", panel);
  /** name → { source, seenAt (performance.now() when its figures were read), li } */
  const items = new Map();
  let refetchTimer = 0;
  let subscribed = false;
  let wasOpen = false;

  // The age of STALE data and of the last success, from the figures read and the time since.
  function ageSeconds(item) {
    const s = item.source;
    const elapsed = (performance.now() - item.seenAt) / 1000;
    if (s.status === "STALE") return (s.staleSeconds ?? 0) + elapsed;
    return null;
  }

  function ageText(item) {
    const s = item.source;
    const since = s.lastSuccessAt ? (Date.now() - Date.parse(s.lastSuccessAt)) / 1000 : null;
    switch (s.status) {
      case "STALE":
        return `basi ${formatDuration(ageSeconds(item))}${s.staleSince ? ` (sejak ${formatTime(s.staleSince)})` : ""}`;
      case "DOWN":
        return since === null ? "mati, belum pernah berhasil" : `mati · terakhir berhasil ${formatAgo(since)}`;
      case "DEGRADED":
        return since === null ? "terganggu" : `terganggu · terakhir berhasil ${formatAgo(since)}`;
      default:
        return since === null ? "belum dipanggil" : `berhasil ${formatAgo(since)}`;
    }
  }

  /** Latest lastUpdated of the catalog's datasets per connector. */
  function freshnessByConnector() {
    const datasets = store.get("catalog")?.datasets ?? [];
    const map = new Map();
    for (const d of datasets) {
      if (!d.connector || !d.lastUpdated) continue;
      if (!map.has(d.connector) || map.get(d.connector) < d.lastUpdated) map.set(d.connector, d.lastUpdated);
    }
    return map;
  }

  function render() {
    const fresh = freshnessByConnector();
    const sorted = [...items.values()].sort(
      (a, b) =>
        (STATUS_ORDER[a.source.status] ?? 9) - (STATUS_ORDER[b.source.status] ?? 9) || a.source.name.localeCompare(b.source.name),
    );
    sorted.forEach((item, index) => {
      fill(item, fresh.get(item.source.name));
      if (list.children[index] !== item.li) list.insertBefore(item.li, list.children[index] ?? null);
    });
    const counts = Object.fromEntries(Object.keys(SOURCE_STATUS).map((k) => [k, 0]));
    sorted.forEach((i) => (counts[i.source.status] = (counts[i.source.status] ?? 0) + 1));
    summary.textContent =
      `${formatInt(sorted.length)} sumber: ${formatInt(counts.UP)} normal` +
      (counts.DEGRADED ? `, ${counts.DEGRADED} terganggu` : "") +
      (counts.STALE ? `, ${counts.STALE} basi` : "") +
      (counts.DOWN ? `, ${counts.DOWN} mati` : "");
    summary.dataset.state = counts.DOWN || counts.STALE ? "bad" : counts.DEGRADED ? "warn" : "ok";
  }

  function fill(item, freshDate) {
    const s = item.source;
    const li = item.li;
    li.className = `source status-${s.status.toLowerCase()}`;
    Object.assign(li.dataset, { testid: "source", source: s.name, status: s.status });
    const [short, ...rest] = (s.title ?? s.name).split(":");
    replace(
      li,
      h("span", { class: "status-dot", "aria-hidden": "true" }),
      h(
        "div",
        { class: "source-main" },
        h("span", { class: "source-title" }, short),
        h("span", { class: "source-sub" }, rest.join(":").trim() || s.title),
        h(
          "span",
          { class: "source-meta" },
          `${s.name} · ${label(SOURCE_KIND, s.kind)} · ${opdLabel(s.opd)}`,
          typeof s.latencyMs === "number" ? ` · ${formatNumber(s.latencyMs, s.latencyMs < 10 ? 1 : 0)} ms` : "",
          freshDate ? ` · data per tanggal ${formatDate(freshDate)}` : "",
        ),
        s.problem && h("span", { class: "source-problem" }, s.problem),
        !s.problem && s.lastError && s.status !== "UP" && h("span", { class: "source-problem" }, `Galat: ${s.lastError}`),
      ),
      h(
        "div",
        { class: "source-state" },
        chip(label(SOURCE_STATUS, s.status), `source-${s.status.toLowerCase()}`),
        h("span", { class: "source-age", dataset: { testid: "source-age" } }, ageText(item)),
      ),
    );
    item.ageEl = li.querySelector(".source-age");
  }

  function tick() {
    for (const item of items.values()) if (item.ageEl) item.ageEl.textContent = ageText(item);
  }
  setInterval(tick, 1000);

  function apply(sources) {
    const now = performance.now();
    const seen = new Set();
    for (const source of sources) {
      seen.add(source.name);
      const item = items.get(source.name) ?? { li: h("li"), source };
      item.source = source;
      item.seenAt = now;
      items.set(source.name, item);
    }
    for (const [name, item] of items) {
      if (!seen.has(name)) {
        item.li.remove();
        items.delete(name);
      }
    }
    render();
  }

  /** A pushed status change: shown at once, then the full figures are read again. */
  function onEvent(payload) {
    const event = payload?.data?.sourceStatusChanged;
    if (!event) return;
    const item = items.get(event.name);
    if (item) {
      const stale = event.status === "STALE";
      item.source = {
        ...item.source,
        status: event.status,
        staleSeconds: stale ? 0 : null,
        staleSince: stale ? event.at : null,
        problem: stale ? item.source.problem : null,
      };
      item.seenAt = performance.now();
      render();
      const li = item.li;
      li.classList.add("is-changed");
      setTimeout(() => li.classList.remove("is-changed"), 3000);
    }
    clearTimeout(refetchTimer);
    refetchTimer = setTimeout(() => load(), 400);
  }

  const load = loader(panel, async (current) => {
    if (!subscribed) {
      subscribed = true;
      live.subscribe(EVENTS_DOC, {}, {
        next: onEvent,
        error: (errors) => showStatus(panel, `Pembaruan langsung ditolak: ${describeErrors(errors, EVENTS_DOC)}`, "warning"),
      });
    }
    const documentId = auth.isStaff ? STAFF_DOC : DOC;
    const { data, errors } = await request(documentId);
    if (!current()) return;
    showPartial(panel, errors, documentId);
    apply(data.sources ?? []);
  });

  live.onState((state) => {
    liveState.dataset.state = state;
    liveState.textContent = LIVE_TEXT[state];
    // Events may have been missed while the socket was closed: read the figures again.
    if (state === "open" && wasOpen) load();
    if (state === "open") wasOpen = true;
  });

  store.on("catalog", () => items.size && render());
  setInterval(() => document.visibilityState === "visible" && load(), REFRESH_MS);
  return load;
}
