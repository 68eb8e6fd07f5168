// The staff session: a JWT pasted by staff (minted with `simpul token --tier INTERNAL`), kept
// in sessionStorage for this tab only, sent as `authorization: Bearer` and in connection_init.

const KEY = "simpul.dashboard.token";
const events = new EventTarget();
let token = read();
let expiryTimer = 0;

function read() {
  try {
    return sessionStorage.getItem(KEY) || null;
  } catch {
    return null;
  }
}

function write(value) {
  try {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  } catch {
    // Storage refused (private mode): the session lasts as long as the page.
  }
}

/** The claims of a JWT (not verified here: the gateway does that), or null. */
export function decodeClaims(jwt) {
  const part = typeof jwt === "string" ? jwt.split(".")[1] : null;
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

/** A pasted token, trimmed, with a leading "Bearer " dropped; or an error message. */
export function normalizeToken(input) {
  const value = String(input ?? "").trim().replace(/^bearer\s+/i, "");
  if (!value) return { error: "Tempel token staf terlebih dahulu." };
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(value) || !decodeClaims(value)) {
    return { error: "Ini bukan token JWT (tiga bagian dipisah titik)." };
  }
  const claims = decodeClaims(value);
  if (typeof claims.exp === "number" && claims.exp * 1000 <= Date.now()) {
    return { error: "Token ini sudah kedaluwarsa; minta token baru." };
  }
  return { token: value, claims };
}

export const auth = {
  /** The current token, or null (anonymous: PUBLIC view). */
  get token() {
    return token;
  },
  get claims() {
    return decodeClaims(token);
  },
  get isStaff() {
    return token !== null;
  },
  /** Starts a staff session (the token was checked by the caller). */
  login(value) {
    token = value;
    write(value);
    scheduleExpiry();
    emit(null);
  },
  /** Ends the session; `message` says why when it was not the user's choice. */
  logout(message = null) {
    if (token === null) return;
    token = null;
    write(null);
    clearTimeout(expiryTimer);
    emit(message);
  },
  /** Calls `fn({ token, message })` after every login and logout. */
  onChange(fn) {
    events.addEventListener("change", (e) => fn(e.detail));
  },
};

function emit(message) {
  events.dispatchEvent(new CustomEvent("change", { detail: { token, message } }));
}

/** Logs out when the token's `exp` passes (the gateway would refuse it from then on). */
function scheduleExpiry() {
  clearTimeout(expiryTimer);
  const exp = decodeClaims(token)?.exp;
  if (typeof exp !== "number") return;
  const ms = exp * 1000 - Date.now();
  // setTimeout takes at most 2^31-1 ms; longer tokens are re-armed then.
  expiryTimer = setTimeout(
    () => (exp * 1000 <= Date.now() ? auth.logout("Token staf sudah kedaluwarsa. Anda kembali ke tampilan publik.") : scheduleExpiry()),
    Math.min(Math.max(ms, 0), 2 ** 31 - 1),
  );
}

if (token) {
  if (normalizeToken(token).error) {
    token = null;
    write(null);
  } else {
    scheduleExpiry();
  }
}
