// The staff login: a pasted JWT is checked against the gateway (an INTERNAL-only operation)
// before the page switches to the internal view; logout and refused tokens go back to PUBLIC.

import { $, byTestId } from "../lib/dom.js";
import { formatDateTime } from "../lib/format.js";
import { ApiError } from "../lib/api.js";
import { normalizeToken } from "../lib/auth.js";

const CHECK_DOC = "staff-session";

export function initSession({ request, auth }) {
  const form = $("#login-form");
  const input = byTestId("login-token");
  const submit = byTestId("login-submit");
  const session = $("#session");
  const who = $("#session-who");
  const logout = byTestId("logout");
  const badge = byTestId("view-badge");
  const message = $("#login-message");

  let quietTimer = 0;
  function say(text, kind = "info") {
    clearTimeout(quietTimer);
    message.textContent = text ?? "";
    message.className = `login-message${text ? ` is-${kind}` : ""}`;
    // Confirmations fade after a while; errors stay until the next action.
    if (text && kind !== "error") quietTimer = setTimeout(() => say(""), 8000);
  }

  function render() {
    const staff = auth.isStaff;
    badge.dataset.view = staff ? "INTERNAL" : "PUBLIC";
    badge.textContent = staff ? "Tampilan internal" : "Tampilan publik";
    document.body.dataset.view = staff ? "INTERNAL" : "PUBLIC";
    form.hidden = staff;
    session.hidden = !staff;
    if (staff) {
      const claims = auth.claims ?? {};
      const name = claims.sub ? String(claims.sub) : "staf";
      const tier = claims.tier ? String(claims.tier).toUpperCase() : "INTERNAL";
      who.textContent = `${name} · ${tier}${typeof claims.exp === "number" ? ` · berlaku sampai ${formatDateTime(new Date(claims.exp * 1000).toISOString())}` : ""}`;
    }
  }

  /** Whether the gateway takes `token` as a staff token; a message when it does not. */
  async function check(token) {
    try {
      const { data } = await request(CHECK_DOC, {}, { token });
      return Array.isArray(data.rules) ? null : "Token ini tidak membuka tampilan internal.";
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return "Token ditolak server: tanda tangan, masa berlaku atau penerbitnya tidak cocok.";
      if (e instanceof ApiError && e.code === "NETWORK") return e.message;
      if (e instanceof ApiError && e.errors.length) return "Token ini bukan token staf (perlu tier INTERNAL).";
      return e instanceof ApiError ? e.message : "Token tidak dapat diperiksa.";
    }
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const { token, error } = normalizeToken(input.value);
    if (error) {
      say(error, "error");
      input.focus();
      return;
    }
    submit.disabled = true;
    say("Memeriksa token…");
    const problem = await check(token);
    submit.disabled = false;
    if (problem) {
      say(problem, "error");
      input.focus();
      return;
    }
    input.value = "";
    say("Masuk sebagai staf: angka persis, data internal dan tindak lanjut peringatan.", "ok");
    auth.login(token);
  });

  logout.addEventListener("click", () => {
    auth.logout();
    say("Anda sudah keluar. Tampilan publik.", "info");
    input.focus();
  });

  auth.onChange(({ message: why }) => {
    render();
    if (why) say(why, "error");
  });

  render();

  // A token kept from earlier in this tab is checked again (it may have been revoked).
  if (auth.isStaff) {
    const kept = auth.token;
    check(kept).then((problem) => {
      if (problem && auth.token === kept) auth.logout(problem);
    });
  }
}
