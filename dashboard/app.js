// Smart Centre dashboard of Kabupaten Trenggalek: wires the panels to the gateway.
// Every panel's first load ends in data or in a message inside the panel; then
// <body data-ready="true">. A login or logout reloads every panel in the new view.

import { auth } from "./lib/auth.js";
import { request } from "./lib/api.js";
import { LiveClient } from "./lib/live.js";
import { initSession } from "./panels/session.js";
import { initOverview } from "./panels/overview.js";
import { initHealth } from "./panels/health.js";
import { initEducation } from "./panels/education.js";
import { initTourism } from "./panels/tourism.js";
import { initDistricts } from "./panels/districts.js";
import { initAlerts } from "./panels/alerts.js";
import { initSources } from "./panels/sources.js";
import { initCatalog } from "./panels/catalog.js";
import { initComplaints } from "./panels/complaints.js";
import { initComplaintForm } from "./panels/complaint-form.js";
import { initPerformance } from "./panels/performance.js";

const REFRESH_MS = 5 * 60_000;

const live = new LiveClient({
  token: () => auth.token,
  onTokenRefused: () => auth.logout("Token staf ditolak atau sudah kedaluwarsa. Anda kembali ke tampilan publik."),
});
const ctx = { request, live, auth };

initSession(ctx);

// Panels read once per view; `live` ones follow subscriptions and refresh themselves.
const data = {
  overview: initOverview(ctx),
  health: initHealth(ctx),
  education: initEducation(ctx),
  tourism: initTourism(ctx),
  districts: initDistricts(ctx),
  complaints: initComplaints(ctx),
  performance: initPerformance(ctx),
  catalog: initCatalog(ctx),
};
const liveLoads = {
  sources: initSources(ctx),
  alerts: initAlerts(ctx),
};
const form = initComplaintForm(ctx);

let generation = 0;

/** Loads every panel; marks the page ready once each ended (in data or in a message). */
async function loadAll({ withForm }) {
  const mine = ++generation;
  document.body.dataset.ready = "false";
  const loads = [...Object.values(data), ...Object.values(liveLoads)].map((load) => load());
  if (withForm) loads.push(form());
  await Promise.allSettled(loads);
  if (mine === generation) document.body.dataset.ready = "true";
}

auth.onChange(() => {
  live.restart();
  loadAll({ withForm: false });
});

loadAll({ withForm: true });

// A projector runs for days: read the data panels again now and then while visible.
setInterval(() => {
  if (document.visibilityState === "visible") Object.values(data).forEach((load) => load());
}, REFRESH_MS);
