// Indonesian labels for the API's enums and codes (from the schema's descriptions).

export const COMPLAINT_CATEGORIES = {
  INFRASTRUCTURE: "Jalan, drainase, jembatan, penerangan",
  SOCIAL_AID: "Bantuan sosial",
  HEALTH: "Layanan kesehatan",
  MENTAL_HEALTH_PUBLIC_ORDER: "ODGJ dan ketertiban umum",
  CIVIL_REGISTRATION: "Administrasi kependudukan",
  EDUCATION: "Pendidikan",
  PUBLIC_SERVICE: "Pelayanan publik dan perizinan",
  OTHER: "Lainnya",
};

export const DELIVERY_STATUS = {
  PENDING: "Sedang dikirim ke meja pengaduan",
  DELIVERED: "Diterima meja pengaduan",
  FAILED: "Gagal terkirim; petugas sudah diberi tahu",
};

export const SOURCE_STATUS = {
  UP: "Normal",
  DEGRADED: "Terganggu",
  STALE: "Basi",
  DOWN: "Mati",
};

export const SOURCE_KIND = {
  sqlite: "SQLite",
  postgres: "PostgreSQL",
  mysql: "MySQL",
  http: "API HTTP",
  file: "Berkas",
};

export const ALERT_SEVERITY = { INFO: "Info", WARNING: "Waspada", CRITICAL: "Kritis" };
export const ALERT_STATUS = { OPEN: "Baru", ACKNOWLEDGED: "Ditangani", RESOLVED: "Selesai" };

/** Short names of the OPDs (slugs of the catalog), for tight spaces. */
export const OPD_SHORT = {
  bappeda: "Bappedalitbang",
  bpkad: "BPKAD",
  bps: "BPS",
  dinkes: "Dinkes PPKB",
  dinsos: "Dinsos PPPA",
  disdikpora: "Disdikpora",
  diskominfo: "Diskominfo",
  disparbud: "Disparbud",
  dpmptsp: "DPMPTSP",
  dukcapil: "Disdukcapil",
  pupr: "Dinas PUPR",
  satpolpp: "Satpol PP",
};

export const opdLabel = (slug) => OPD_SHORT[slug] ?? slug;
export const label = (table, key) => table[key] ?? key ?? "–";
