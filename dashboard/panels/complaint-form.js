// The complaint form: submitComplaint (an @outbox mutation: a receipt at once), then the
// receipt's status polled every 2 s until DELIVERED or FAILED. One idempotency key per form
// fill, so a double click or a retry after a network failure is still one complaint.

import { $, h, replace } from "../lib/dom.js";
import { formatDateTime, formatInt } from "../lib/format.js";
import { loader } from "../lib/panel.js";
import { ApiError, describeErrors } from "../lib/api.js";
import { COMPLAINT_CATEGORIES, DELIVERY_STATUS, label } from "../lib/labels.js";

const REGIONS_DOC = "complaint-regions";
const SUBMIT_DOC = "submit-complaint";
const STATUS_DOC = "complaint-status";
const POLL_MS = 2000;
const MAX_POLLS = 450; // 15 minutes
const LIMITS = { descriptionMin: 10, descriptionMax: 4000, contactMax: 100, photos: 4, photoBytes: 5 * 1024 * 1024 };
const PHOTO_TYPES = ["image/jpeg", "image/png", "image/webp"];
const FIELDS = ["category", "districtCode", "villageCode", "description", "contact", "photos"];

/** A random UUID; crypto.randomUUID needs a secure context, getRandomValues does not. */
export function newIdempotencyKey() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Which form field an API error is about (its message or path names the input field). */
export function fieldOfError(error) {
  const text = `${error?.message ?? ""} ${(error?.path ?? []).join(".")} ${JSON.stringify(error?.extensions ?? {})}`;
  if (/photos/.test(text)) return "photos";
  // Longest names first: "villageCode" before "districtCode" would not matter, but
  // a message about villageCode often names districtCode too ("… di kecamatan districtCode").
  if (/villageCode/.test(text)) return "villageCode";
  for (const field of ["districtCode", "description", "contact", "category"]) {
    if (new RegExp(`\\b${field}\\b`).test(text)) return field;
  }
  return null;
}

const FIELD_LABELS = {
  category: "Kategori",
  districtCode: "Kecamatan",
  villageCode: "Desa/kelurahan",
  description: "Isi laporan",
  contact: "Kontak",
  photos: "Foto",
};

/** The API's message in Indonesian where it is one of the gateway's own (English) forms. */
export function apiMessage(error) {
  const message = String(error?.message ?? "galat");
  let m = /ComplaintInput\.(\w+) holds (\d+) to (\d+) characters, not (\d+)/.exec(message);
  if (m) return `${FIELD_LABELS[m[1]] ?? m[1]} harus ${m[2]}–${formatInt(Number(m[3]))} karakter (sekarang ${formatInt(Number(m[4]))}).`;
  m = /ComplaintInput\.(\w+): \w+ cannot represent "(.*)"/.exec(message);
  if (m) return `${FIELD_LABELS[m[1]] ?? m[1]}: nilai "${m[2]}" tidak dikenal.`;
  m = /photos\.(\d+) is not a JPEG, PNG or WebP image/.exec(message);
  if (m) return `Foto ke-${Number(m[1]) + 1} bukan gambar JPEG, PNG atau WebP.`;
  return message;
}

export function initComplaintForm({ request }) {
  const section = $("#complaint");
  const form = $("[data-testid=complaint-form]", section);
  const submit = $("[data-testid=complaint-submit]", form);
  const formError = $("[data-testid=complaint-error]", form);
  const category = form.elements.namedItem("category");
  const district = form.elements.namedItem("districtCode");
  const village = form.elements.namedItem("villageCode");
  const description = form.elements.namedItem("description");
  const counter = $(".counter", form);
  const receiptBox = $("#complaint-receipt-box", section);
  const receiptId = $("[data-testid=complaint-receipt]", receiptBox);
  const statusEl = $("[data-testid=complaint-status]", receiptBox);
  const receiptDetail = $(".receipt-detail", receiptBox);

  let villagesByDistrict = new Map();
  let idempotencyKey = newIdempotencyKey();
  let submitting = false;
  let pollTimer = 0;
  let pollRun = 0;

  replace(
    category,
    h("option", { value: "" }, "Pilih kategori"),
    Object.entries(COMPLAINT_CATEGORIES).map(([value, text]) => h("option", { value }, text)),
  );

  district.addEventListener("change", () => {
    fillVillages();
    clearFieldError("districtCode");
  });
  description.addEventListener("input", () => {
    counter.textContent = formatInt(description.value.trim().length);
    counter.classList.toggle("is-over", description.value.trim().length > LIMITS.descriptionMax);
  });
  form.addEventListener("input", (e) => e.target.name && clearFieldError(e.target.name));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    send();
  });

  function fillVillages() {
    const villages = villagesByDistrict.get(district.value) ?? [];
    village.disabled = villages.length === 0;
    replace(
      village,
      h("option", { value: "" }, district.value ? "Tidak tahu / seluruh kecamatan" : "Pilih kecamatan dulu"),
      villages.map((v) => h("option", { value: v.code }, `${v.villageType === "KELURAHAN" ? "Kelurahan" : "Desa"} ${v.name}`)),
    );
  }

  // --- errors -------------------------------------------------------------------------

  const control = (field) => form.elements.namedItem(field);
  const errorEl = (field) => form.querySelector(`#${control(field).id}-error`);

  function setFieldError(field, message) {
    const el = errorEl(field);
    if (el) el.textContent = message;
    control(field).setAttribute("aria-invalid", "true");
  }

  function clearFieldError(field) {
    if (!FIELDS.includes(field)) return;
    const el = errorEl(field);
    if (el) el.textContent = "";
    control(field).removeAttribute("aria-invalid");
  }

  function showFormError(message) {
    formError.textContent = message;
    formError.hidden = !message;
  }

  function clearErrors() {
    FIELDS.forEach(clearFieldError);
    showFormError("");
  }

  /** The API's errors: each one next to its field when it names one, all in the summary. */
  function showApiErrors(errors, fallback) {
    const messages = [];
    let first = null;
    for (const error of errors) {
      const field = fieldOfError(error);
      const message =
        error?.extensions?.code === "RATE_LIMITED"
          ? "Batas pengiriman aduan dari perangkat ini tercapai; coba lagi nanti."
          : apiMessage(error);
      if (field) {
        setFieldError(field, message);
        first ??= field;
      }
      messages.push(message);
    }
    showFormError(`Aduan belum terkirim: ${messages.length ? [...new Set(messages)].join(" ") : fallback}`);
    if (first) control(first).focus();
  }

  // --- validation (the same bounds as ComplaintInput) ----------------------------------

  function validate(values, files) {
    const errors = {};
    if (!values.category) errors.category = "Pilih kategori aduan.";
    if (!values.districtCode) errors.districtCode = "Pilih kecamatan.";
    const length = values.description.length;
    if (length < LIMITS.descriptionMin) errors.description = `Isi laporan paling sedikit ${LIMITS.descriptionMin} karakter (sekarang ${length}).`;
    else if (length > LIMITS.descriptionMax) errors.description = `Isi laporan paling banyak ${formatInt(LIMITS.descriptionMax)} karakter (sekarang ${formatInt(length)}).`;
    if (values.contact.length > LIMITS.contactMax) errors.contact = `Kontak paling banyak ${LIMITS.contactMax} karakter.`;
    if (files.length > LIMITS.photos) errors.photos = `Paling banyak ${LIMITS.photos} foto.`;
    else if (files.some((f) => f.size > LIMITS.photoBytes)) errors.photos = "Setiap foto paling besar 5 MB.";
    else if (files.some((f) => f.type && !PHOTO_TYPES.includes(f.type))) errors.photos = "Foto harus JPEG, PNG atau WebP.";
    return errors;
  }

  // --- submit and follow the receipt ---------------------------------------------------

  async function send() {
    if (submitting) return; // a double click is one complaint
    clearErrors();
    const values = {
      category: category.value,
      districtCode: district.value,
      villageCode: village.value,
      description: description.value.trim(),
      contact: form.elements.namedItem("contact").value.trim(),
      confidential: form.elements.namedItem("confidential").checked,
    };
    const files = [...(form.elements.namedItem("photos").files ?? [])];
    const invalid = validate(values, files);
    const fields = Object.keys(invalid);
    if (fields.length) {
      fields.forEach((f) => setFieldError(f, invalid[f]));
      showFormError(`Periksa isian: ${Object.values(invalid).join(" ")}`);
      control(fields[0]).focus();
      return;
    }

    const variables = {
      input: {
        category: values.category,
        districtCode: values.districtCode,
        villageCode: values.villageCode || null,
        description: values.description,
        contact: values.contact || null,
        confidential: values.confidential,
        idempotencyKey,
      },
    };
    if (files.length) variables.photos = files.map(() => null);

    submitting = true;
    submit.disabled = true;
    submit.textContent = "Mengirim…";
    form.setAttribute("aria-busy", "true");
    try {
      const { data, errors } = await request(SUBMIT_DOC, variables, {
        files: files.map((file, i) => ({ path: `variables.photos.${i}`, file })),
      });
      const receipt = data.submitComplaint;
      if (!receipt) {
        showApiErrors(errors, "server tidak memberi tanda terima.");
        return;
      }
      // Accepted: the next fill is a new complaint with a key of its own.
      idempotencyKey = newIdempotencyKey();
      form.reset();
      fillVillages();
      counter.textContent = "0";
      showReceipt(receipt);
    } catch (e) {
      if (e instanceof ApiError && e.errors.length) showApiErrors(e.errors, e.message);
      else showFormError(`Aduan belum terkirim: ${e instanceof ApiError ? e.message : "galat tak terduga."} Kirim ulang aman: tidak membuat aduan ganda.`);
    } finally {
      submitting = false;
      submit.disabled = false;
      submit.textContent = "Kirim aduan";
      form.removeAttribute("aria-busy");
    }
  }

  function showReceipt(receipt) {
    receiptBox.hidden = false;
    receiptId.textContent = receipt.id;
    receiptId.dataset.receipt = receipt.id;
    updateStatus(receipt);
    receiptBox.scrollIntoView({ behavior: "smooth", block: "nearest" });
    poll(receipt);
  }

  function updateStatus(receipt, note = "") {
    statusEl.dataset.status = receipt.status;
    statusEl.className = `delivery delivery-${receipt.status.toLowerCase()}`;
    statusEl.textContent = `${receipt.status} · ${label(DELIVERY_STATUS, receipt.status)}`;
    replace(
      receiptDetail,
      `Diterima ${formatDateTime(receipt.acceptedAt)}`,
      receipt.deliveredAt ? ` · terkirim ${formatDateTime(receipt.deliveredAt)}` : "",
      receipt.trackingId ? ` · nomor pelacakan ${receipt.trackingId}` : "",
      note ? ` · ${note}` : "",
      h("br"),
      "Simpan nomor tanda terima ini untuk menanyakan posisi laporan Anda.",
    );
  }

  function poll(first) {
    clearTimeout(pollTimer);
    const run = ++pollRun;
    let last = first;
    let count = 0;
    const step = async () => {
      if (run !== pollRun) return;
      count += 1;
      let note = "";
      try {
        const { data, errors } = await request(STATUS_DOC, { receipt: first.id });
        if (data.complaintStatus) last = data.complaintStatus;
        else note = describeErrors(errors, STATUS_DOC) || "status belum dapat dibaca";
      } catch (e) {
        note = `status belum dapat diperiksa: ${e instanceof ApiError ? e.message : "galat"}`;
      }
      if (run !== pollRun) return;
      const finished = last.status === "DELIVERED" || last.status === "FAILED";
      if (!finished && count >= MAX_POLLS) note = "masih diproses; periksa lagi nanti";
      updateStatus(last, note);
      if (!finished && count < MAX_POLLS) pollTimer = setTimeout(step, POLL_MS);
    };
    pollTimer = setTimeout(step, POLL_MS);
  }

  // The regions of the selects: loaded with the page.
  return loader(section, async (current) => {
    const { data } = await request(REGIONS_DOC);
    if (!current()) return;
    const districts = data.districts ?? [];
    villagesByDistrict = new Map(districts.map((d) => [d.code, d.villages ?? []]));
    const chosen = district.value;
    replace(
      district,
      h("option", { value: "" }, "Pilih kecamatan"),
      districts.map((d) => h("option", { value: d.code }, d.name)),
    );
    district.value = chosen;
    fillVillages();
  });
}
