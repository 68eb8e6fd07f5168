// GraphQL over HTTP with persisted operations: every request names an operation of
// dashboard/operations/ by its documentId (the file stem) and never sends a query text.

import { auth } from "./auth.js";

const ENDPOINT = new URL("graphql", document.baseURI).href;
const TIMEOUT_MS = 30_000;

export class ApiError extends Error {
  /**
   * @param {string} message Indonesian, ready to show
   * @param {{code?: string, status?: number, errors?: object[], retryAfter?: number}} info
   */
  constructor(message, { code = "ERROR", status = 0, errors = [], retryAfter = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.status = status;
    this.errors = errors;
    this.retryAfter = retryAfter;
  }
}

const REFUSED_TOKEN = "Token staf ditolak (kedaluwarsa atau tidak sah). Anda kembali ke tampilan publik.";

/**
 * Runs a persisted operation. Resolves to `{ data, errors }` (errors of a partial answer:
 * a source that failed leaves only its fields null); rejects with an ApiError when there is
 * no data at all.
 * `files`: [{ path: "variables.photos.0", file: File }] sends a GraphQL multipart request;
 * `token`: another bearer token than the session's (to check one before logging in).
 */
export async function request(documentId, variables = {}, { files = [], signal, token = auth.token } = {}) {
  // application/json: a request the server refuses still answers 200 with `errors` (the
  // GraphQL-over-HTTP rule for that media type), so the page reads them like any answer.
  const headers = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const operation = { documentId, variables };
  let body;
  if (files.length > 0) {
    // GraphQL multipart request spec; the header makes it a non-simple (preflighted) request.
    headers["apollo-require-preflight"] = "true";
    body = new FormData();
    body.append("operations", JSON.stringify(operation));
    body.append("map", JSON.stringify(Object.fromEntries(files.map((f, i) => [String(i), [f.path]]))));
    files.forEach((f, i) => body.append(String(i), f.file, f.file.name));
  } else {
    headers["content-type"] = "application/json";
    body = JSON.stringify(operation);
  }

  const sentToken = token;
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      headers,
      body,
      credentials: "same-origin",
      signal: signal ?? AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (e) {
    if (e?.name === "TimeoutError") throw new ApiError("Server terlalu lama menjawab.", { code: "TIMEOUT" });
    if (e?.name === "AbortError") throw new ApiError("Permintaan dibatalkan.", { code: "ABORTED" });
    throw new ApiError("Server Simpul tidak dapat dihubungi. Periksa jaringan.", { code: "NETWORK" });
  }

  const payload = await readJson(response);
  const errors = Array.isArray(payload?.errors) ? payload.errors : [];

  if (response.status === 401) {
    // Only the token that was sent is logged out (a login may have happened meanwhile).
    if (sentToken && auth.token === sentToken) auth.logout(REFUSED_TOKEN);
    throw new ApiError(REFUSED_TOKEN, { code: "UNAUTHENTICATED", status: 401, errors });
  }
  if (response.status === 429) {
    const retryAfter = Number(response.headers.get("retry-after")) || null;
    const wait = retryAfter ? ` dalam ${retryAfter} detik` : " sebentar lagi";
    throw new ApiError(`Terlalu banyak permintaan; coba lagi${wait}.`, {
      code: "RATE_LIMITED", status: 429, errors, retryAfter,
    });
  }
  if (response.status === 413) {
    throw new ApiError("Berkas terlalu besar (paling besar 5 MB per foto).", { code: "TOO_LARGE", status: 413, errors });
  }
  if (payload === undefined) {
    throw new ApiError(`Server menjawab ${response.status} tanpa data.`, { code: "HTTP", status: response.status });
  }
  if (payload.data === null || payload.data === undefined) {
    throw new ApiError(describeErrors(errors, documentId) || `Server menjawab ${response.status}.`, {
      code: errors[0]?.extensions?.code ?? "ERROR", status: response.status, errors,
    });
  }
  return { data: payload.data, errors };
}

async function readJson(response) {
  const type = response.headers.get("content-type") ?? "";
  if (!type.includes("json")) return undefined;
  try {
    return await response.json();
  } catch {
    return undefined;
  }
}

/** One Indonesian sentence for a list of GraphQL errors (sources named, duplicates merged). */
export function describeErrors(errors, documentId = "") {
  const sentences = new Set();
  for (const e of errors ?? []) sentences.add(describeError(e, documentId));
  return [...sentences].join(" ");
}

function describeError(error, documentId) {
  const code = error?.extensions?.code;
  const connector = error?.extensions?.connector;
  const message = String(error?.message ?? "galat tidak dikenal");
  if (message === "PersistedQueryNotFound") {
    return `Operasi "${documentId}" tidak dikenal server (dashboard/operations/${documentId}.graphql).`;
  }
  if (connector) {
    const why = {
      SOURCE_UNAVAILABLE: "tidak dapat dihubungi",
      SOURCE_TIMEOUT: "terlalu lama menjawab",
      SOURCE_ERROR: "menjawab dengan galat",
      SOURCE_BAD_RESPONSE: "memberi jawaban yang tidak sah",
    }[code] ?? "gagal";
    return `Sumber ${connector} ${why}.`;
  }
  if (code === "RATE_LIMITED") return "Batas permintaan terlampaui; coba lagi nanti.";
  if (code === "FORBIDDEN") return "Tidak berhak membaca sebagian data ini.";
  return message.endsWith(".") ? message : `${message}.`;
}
