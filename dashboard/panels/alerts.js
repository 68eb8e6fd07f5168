// Early warning: the open alerts, live over the `openAlerts` subscription (the whole list at
// once, then again on every change). Staff acknowledge and resolve them here.

import { $, h, replace, chip } from "../lib/dom.js";
import { formatDateTime, formatInt, formatAgo } from "../lib/format.js";
import { showStatus, clearStatus } from "../lib/panel.js";
import { describeErrors, ApiError } from "../lib/api.js";
import { ALERT_SEVERITY, ALERT_STATUS, opdLabel, label } from "../lib/labels.js";

const DOC = "open-alerts";
const FIRST_RESULT_TIMEOUT_MS = 12_000;
const SEVERITY_ORDER = { CRITICAL: 0, WARNING: 1, INFO: 2 };
const LIVE_TEXT = { open: "Langsung", connecting: "Menyambung…", closed: "Terputus, mencoba lagi…" };

export function initAlerts({ request, live, auth }) {
  const panel = $("#alerts");
  const list = $(".alert-list", panel);
  const liveState = $("[data-testid=alerts-live]", panel);
  const rulesBox = $(".rules", panel);
  const items = new Map(); // alert id → { li, alert }
  let socketState = "closed";
  let gotResult = false;
  let waiting = [];
  let subscribed = false;
  let firstList = true; // the first list of a view is not "new": only later arrivals flash

  function setLive() {
    const state = socketState === "open" ? (gotResult ? "open" : "connecting") : socketState;
    liveState.dataset.state = state;
    liveState.textContent = LIVE_TEXT[state];
    liveState.title = state === "open" ? "Peringatan baru muncul di sini tanpa memuat ulang" : "";
  }

  live.onState((state) => {
    socketState = state;
    if (state !== "open") gotResult = false;
    setLive();
  });

  function settle() {
    const done = waiting;
    waiting = [];
    done.forEach((resolve) => resolve());
  }

  function onNext(payload) {
    const alerts = payload?.data?.openAlerts;
    if (!Array.isArray(alerts)) {
      showStatus(panel, describeErrors(payload?.errors ?? [], DOC) || "Jawaban langganan tidak berisi peringatan.", "error");
    } else {
      clearStatus(panel);
      render(alerts);
    }
    gotResult = true;
    setLive();
    settle();
  }

  function onError(errors) {
    showStatus(panel, `Langganan peringatan ditolak: ${describeErrors(errors, DOC)} Dicoba lagi sebentar lagi.`, "error");
    settle();
  }

  function render(alerts) {
    const sorted = alerts
      .slice()
      .sort((a, b) => (SEVERITY_ORDER[a.severity] ?? 9) - (SEVERITY_ORDER[b.severity] ?? 9) || b.raisedAt.localeCompare(a.raisedAt));
    const seen = new Set();
    sorted.forEach((alert, index) => {
      seen.add(alert.id);
      let item = items.get(alert.id);
      if (!item) {
        item = { li: h("li", { class: firstList ? "alert" : "alert is-new" }), alert };
        items.set(alert.id, item);
        if (!firstList) setTimeout(() => item.li.classList.remove("is-new"), 4000);
      }
      item.alert = alert;
      fill(item);
      // Keep the order without moving nodes needlessly (a moved node loses focus).
      if (list.children[index] !== item.li) list.insertBefore(item.li, list.children[index] ?? null);
    });
    for (const [id, item] of items) {
      if (!seen.has(id)) {
        item.li.remove();
        items.delete(id);
      }
    }
    renderEmpty(sorted.length);
    updateHeading(sorted);
    firstList = false;
  }

  function renderEmpty(count) {
    const existing = panel.querySelector(".alerts-empty");
    existing?.remove();
    if (count > 0 && auth.isStaff) return;
    const message = auth.isStaff
      ? h("p", { class: "alerts-empty is-clear" }, "Tidak ada peringatan terbuka. Aturan peringatan dini terus menilai data.")
      : h(
          "div",
          { class: "alerts-empty is-locked" },
          h("p", { class: "empty-title" }, "Peringatan dini hanya untuk staf — masuk untuk melihat"),
          h("p", {}, "Peringatan dini beserta rekomendasinya terbatas untuk staf Pemkab. Tempel token staf di bagian atas halaman untuk melihatnya secara langsung."),
        );
    list.before(message);
  }

  function updateHeading(alerts) {
    const open = alerts.filter((a) => a.status === "OPEN").length;
    const critical = alerts.filter((a) => a.severity === "CRITICAL").length;
    $("#alerts-h").textContent =
      alerts.length === 0 ? "Peringatan dini" : `Peringatan dini · ${formatInt(alerts.length)} aktif${open ? ` (${open} baru)` : ""}${critical ? ` · ${critical} kritis` : ""}`;
  }

  function fill(item) {
    const a = item.alert;
    const li = item.li;
    li.className = ["alert", `sev-${a.severity.toLowerCase()}`, `status-${a.status.toLowerCase()}`, li.classList.contains("is-new") && "is-new"]
      .filter(Boolean)
      .join(" ");
    Object.assign(li.dataset, { testid: "alert", alertId: a.id, rule: a.rule, region: a.regionCode, status: a.status, severity: a.severity });

    if (!item.body) {
      item.body = h("div", { class: "alert-body" });
      item.actions = auth.isStaff ? actionsFor(item) : null;
      li.append(item.body);
      if (item.actions) li.append(item.actions.root);
    }
    replace(
      item.body,
      h(
        "div",
        { class: "alert-head" },
        chip(label(ALERT_SEVERITY, a.severity), `sev-${a.severity.toLowerCase()}`),
        h("h3", { class: "alert-title" }, a.title),
        chip(label(ALERT_STATUS, a.status), `status-${a.status.toLowerCase()}`),
        a.evidence?.stale && chip("data basi", "stale", "Sebagian data yang dibaca aturan ini basi"),
      ),
      h(
        "p",
        { class: "alert-meta" },
        h("span", { class: "alert-region" }, a.regionName),
        ` · ${a.regionCode} · ${opdLabel(a.opd)} · muncul ${formatDateTime(a.raisedAt)}`,
      ),
      h("p", { class: "alert-message" }, a.message),
      h("p", { class: "alert-recommendation" }, h("strong", {}, "Rekomendasi: "), a.recommendation),
      a.acknowledgedBy &&
        h("p", { class: "alert-followup" }, `Ditangani ${a.acknowledgedBy} · ${formatDateTime(a.acknowledgedAt)}`),
      (a.followUps ?? []).filter((f) => f.note).length > 0 &&
        h(
          "ul",
          { class: "followups" },
          a.followUps
            .filter((f) => f.note)
            .slice(-3)
            .map((f) => h("li", {}, h("b", {}, f.by), ` (${formatDateTime(f.at)}): ${f.note}`)),
        ),
    );
    item.actions?.update(a);
  }

  /** Staff controls of one alert: a note, Terima (acknowledge) and Selesaikan (resolve). */
  function actionsFor(item) {
    const noteId = `alert-note-${item.alert.id}`;
    const note = h("input", { id: noteId, type: "text", maxlength: 500, placeholder: "Catatan tindak lanjut (opsional)" });
    const ack = h("button", { type: "button", class: "button button-small" }, "Terima");
    const resolve = h("button", { type: "button", class: "button button-small button-quiet" }, "Selesaikan");
    const message = h("p", { class: "action-message", role: "status" });
    const root = h(
      "div",
      { class: "alert-actions" },
      h("label", { class: "visually-hidden", for: noteId }, "Catatan tindak lanjut"),
      note,
      ack,
      resolve,
      message,
    );
    const act = async (documentId, done) => {
      ack.disabled = resolve.disabled = true;
      message.className = "action-message";
      message.textContent = "Menyimpan…";
      try {
        const { data, errors } = await request(documentId, { id: item.alert.id, note: note.value.trim() || null });
        const result = data.acknowledgeAlert ?? data.resolveAlert;
        if (!result) throw new ApiError(describeErrors(errors, documentId) || "Peringatan tidak ditemukan.");
        note.value = "";
        message.textContent = done(result);
      } catch (e) {
        message.className = "action-message is-error";
        message.textContent = e instanceof ApiError ? e.message : "Gagal menyimpan.";
      } finally {
        update(item.alert);
      }
    };
    ack.addEventListener("click", () => act("acknowledge-alert", (r) => `Diterima oleh ${r.acknowledgedBy ?? "Anda"}.`));
    resolve.addEventListener("click", () => act("resolve-alert", (r) => `Diselesaikan oleh ${r.resolvedBy ?? "Anda"}.`));
    const update = (a) => {
      ack.disabled = a.status !== "OPEN";
      resolve.disabled = a.status === "RESOLVED";
    };
    return { root, update };
  }

  async function loadRules() {
    if (!auth.isStaff) {
      rulesBox.hidden = true;
      return;
    }
    try {
      const { data } = await request("staff-session");
      const rules = data.rules ?? [];
      const failing = rules.filter((r) => r.error);
      const last = rules.map((r) => r.lastRunAt).filter(Boolean).sort().at(-1);
      const firing = rules.reduce((s, r) => s + (r.firing ?? 0), 0);
      replace(
        rulesBox,
        h(
          "p",
          { class: failing.length ? "rules-line is-error" : "rules-line" },
          `${formatInt(rules.length)} aturan peringatan dini · ${formatInt(firing)} butir memicu`,
          last ? ` · penilaian terakhir ${formatAgo((Date.now() - Date.parse(last)) / 1000)}` : " · belum dinilai",
          failing.length ? ` · galat: ${failing.map((r) => r.id).join(", ")}` : "",
        ),
      );
      rulesBox.hidden = false;
    } catch {
      rulesBox.hidden = true;
    }
  }

  /** (Re)loads the panel: the subscription's next result after a view change. */
  function load() {
    // A view change re-renders every alert (staff controls appear or go).
    for (const item of items.values()) item.li.remove();
    items.clear();
    panel.querySelector(".alerts-empty")?.remove();
    firstList = true;
    gotResult = false;
    setLive();
    if (!subscribed) {
      subscribed = true;
      live.subscribe(DOC, {}, { next: onNext, error: onError });
    }
    loadRules();
    return new Promise((resolve) => {
      waiting.push(resolve);
      setTimeout(() => {
        if (!waiting.includes(resolve)) return;
        if (!gotResult) showStatus(panel, "Belum tersambung ke layanan peringatan langsung; mencoba terus.", "warning");
        waiting = waiting.filter((r) => r !== resolve);
        resolve();
      }, FIRST_RESULT_TIMEOUT_MS);
    });
  }

  return load;
}
