// What every panel does around its data: a busy state, an error shown inside the panel
// (never an exception), a retry button, and answers of an older load dropped.

import { h, replace } from "./dom.js";
import { ApiError, describeErrors } from "./api.js";

/** The status line of a panel (created after its heading when absent). */
function statusOf(section) {
  let status = section.querySelector(":scope > .panel-status, :scope > header + .panel-status");
  if (!status) {
    status = h("div", { class: "panel-status", role: "status", "aria-live": "polite" });
    const header = section.querySelector(":scope > header");
    if (header) header.after(status);
    else section.prepend(status);
  }
  return status;
}

/** Shows `message` in the panel's status line; kind: "error" | "warning" | "info". */
export function showStatus(section, message, kind = "info", retry = null) {
  const status = statusOf(section);
  status.className = `panel-status is-${kind}`;
  status.setAttribute("role", kind === "error" ? "alert" : "status");
  replace(
    status,
    h("span", {}, message),
    retry && h("button", { type: "button", class: "link-button", on: { click: retry } }, "Coba lagi"),
  );
}

export function clearStatus(section) {
  const status = section.querySelector(".panel-status");
  if (status) {
    status.className = "panel-status";
    status.replaceChildren();
  }
}

/** Shows the errors of a partial answer, if any, as a warning (or clears the status). */
export function showPartial(section, errors, documentId) {
  if (errors?.length) showStatus(section, `Sebagian data tidak tersedia: ${describeErrors(errors, documentId)}`, "warning");
  else clearStatus(section);
}

/** Errors whose path starts with `prefix` (e.g. ["regency", "poverty"]). */
export function errorsAt(errors, ...prefix) {
  return (errors ?? []).filter((e) => prefix.every((p, i) => e.path?.[i] === p));
}

/**
 * Makes a loader for panel sections: `const load = loader(sections, async (current) => …)`.
 * `load()` marks them busy, runs the task, shows a failure in every section with a retry
 * button, and resolves (never rejects) when done. `current()` is false once a newer load
 * started: the task should then not render.
 */
export function loader(sections, task) {
  const list = Array.isArray(sections) ? sections : [sections];
  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    const current = () => mine === seq;
    list.forEach((s) => s.setAttribute("aria-busy", "true"));
    try {
      await task(current);
    } catch (e) {
      if (current()) {
        const message = e instanceof ApiError ? e.message : "Terjadi galat saat menampilkan data.";
        if (!(e instanceof ApiError)) reportBug(e);
        list.forEach((s) => {
          showStatus(s, message, "error", () => load());
          // Figures still showing their loading placeholder show "no value" instead.
          s.querySelectorAll("data").forEach((d) => d.textContent === "…" && (d.textContent = "–"));
        });
      }
    } finally {
      if (current()) list.forEach((s) => s.removeAttribute("aria-busy"));
    }
  };
  return load;
}

/** A bug in the page itself: the panel says something went wrong; developers see it here. */
function reportBug(e) {
  console.debug("[dasbor] galat tampilan:", e);
}
