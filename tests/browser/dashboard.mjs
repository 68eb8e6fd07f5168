// The dashboard (GET /) in Debian's Chromium against a running gateway:
//   node tests/browser/dashboard.mjs
// env: SIMPUL_URL (http://127.0.0.1:PORT), SIMPUL_TOKEN (an INTERNAL staff JWT), SIMPUL_DIR (the
// deployment folder of that gateway, a copy this script modifies and restores), SCREENSHOT_DIR.
// Optional: ALERT_WAIT_MS, STALE_WAIT_MS, DELIVERY_WAIT_MS (20000 each).
// One JSON line per check on stdout; exits non-zero when any failed. tests/it/dashboard.rs
// runs it with the tourism-falling rule evaluated every second.
//
// What it changes in SIMPUL_DIR, to see the page follow live:
// - data/opd/disparbud/visits.csv: Pantai Pelang's (Panggul, 35.03.01) monthly visits of 2025
//   set to half of the same month of 2024: the tourism-falling rule raises an alert for
//   Panggul (before, it fires only for Munjungan and Kampak).
// - data/opd/dpmptsp/public_services.json: garbage: the dpmptsp file source keeps serving its
//   last good copy, STALE.
// Both files are restored at the end.

import fs from 'node:fs';
import path from 'node:path';

import { check, elapsed, env, exitCode, gql, horizontalOverflow, launch, poll, watchdog } from './lib.mjs';

const ORIGIN = env('SIMPUL_URL').replace(/\/+$/, '');
const TOKEN = env('SIMPUL_TOKEN');
const DIR = env('SIMPUL_DIR');
const SHOTS = env('SCREENSHOT_DIR');
const ALERT_WAIT = Number(process.env.ALERT_WAIT_MS || 20_000);
const STALE_WAIT = Number(process.env.STALE_WAIT_MS || 20_000);
const DELIVERY_WAIT = Number(process.env.DELIVERY_WAIT_MS || 20_000);

// The demo data's official figures (data/README.md): Dukcapil's DKB population of the
// regency, and BPS's latest poverty rate (P0, March Susenas).
const POPULATION = 753810;
const POVERTY_RATE = 10.29;
const POVERTY_YEAR = 2025;
const DISTRICTS = 14;

// The alert this script causes, and the source it takes down.
const ALERT_RULE = 'tourism-falling';
const ALERT_REGION = '35.03.01';
const ALERT_DESTINATION = 'pelang';
const VISITS = path.join(DIR, 'data/opd/disparbud/visits.csv');
const STALE_SOURCE = 'dpmptsp';
const STALE_FILE = path.join(DIR, 'data/opd/dpmptsp/public_services.json');

fs.mkdirSync(SHOTS, { recursive: true });

// Files changed by this script, restored at the end (and by the watchdog).
const originals = new Map();
function change(file, text) {
  if (!originals.has(file)) originals.set(file, fs.readFileSync(file));
  fs.writeFileSync(file, text);
}
function restore(file) {
  if (originals.has(file)) {
    fs.writeFileSync(file, originals.get(file));
    originals.delete(file);
  }
}
function restoreAll() {
  for (const file of [...originals.keys()]) restore(file);
}

let browser;
watchdog(110, async () => {
  restoreAll();
  await browser?.close().catch(() => {});
});

/** Attributes of the elements matching `selector`, as plain objects. */
const attrs = (page, selector, names) =>
  page.$$eval(
    selector,
    (els, names) => els.map((el) => Object.fromEntries(names.map((n) => [n, el.getAttribute(n)]))),
    names,
  );

/** One element's attribute, or null when the element is not there. */
async function attr(page, selector, name) {
  const el = await page.$(selector);
  return el ? el.getAttribute(name) : null;
}

/** Waits for `selector` to have `name` = `value`; the value last seen. */
async function waitAttr(page, selector, name, value, ms) {
  try {
    await page.waitForFunction(
      ([s, n, v]) => document.querySelector(s)?.getAttribute(n) === v,
      [selector, name, value],
      { timeout: ms, polling: 200 },
    );
  } catch {
    // reported by the caller with the last value seen
  }
  return attr(page, selector, name);
}

async function screenshotAndOverflow(page, width, height, label) {
  await page.setViewportSize({ width, height });
  // Let layout (and any resize observers, charts) settle.
  await page.waitForTimeout(500);
  const file = path.join(SHOTS, `${label}-${width}x${height}.png`);
  try {
    await page.screenshot({ path: file, fullPage: true, timeout: 15_000 });
    // What a projector or a phone shows first, without scrolling (docs/dashboard.png).
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(200);
    await page.screenshot({ path: file.replace(/\.png$/, '-screen.png'), timeout: 15_000 });
    check(`screenshot ${label} ${width}x${height}`, fs.statSync(file).size > 0, file);
  } catch (e) {
    check(`screenshot ${label} ${width}x${height}`, false, String(e.message || e));
  }
  const o = await horizontalOverflow(page);
  check(
    `${label} at ${width}x${height}: nothing overflows horizontally`,
    o.scrollWidth <= o.innerWidth && o.offenderCount === 0,
    o,
  );
}

/** Sets a form control by name: select, checkbox or text. */
async function setControl(form, name, value) {
  const el = await form.$(`[name="${name}"]`);
  if (!el) throw new Error(`no control named ${name}`);
  const tag = await el.evaluate((e) => e.tagName.toLowerCase());
  const type = await el.evaluate((e) => (e.getAttribute('type') || '').toLowerCase());
  if (tag === 'select') {
    if (value === undefined) return;
    // Options may be filled in asynchronously (villages of the chosen district).
    await el.evaluate(
      (e, v) =>
        new Promise((resolve, reject) => {
          const until = Date.now() + 8000;
          const tick = () => {
            if ([...e.options].some((o) => o.value === v)) resolve();
            else if (Date.now() > until) reject(new Error(`option ${v} never appeared in ${e.name}`));
            else setTimeout(tick, 100);
          };
          tick();
        }),
      value,
    );
    await el.selectOption(value);
  } else if (type === 'checkbox' || type === 'radio') {
    await el.setChecked(Boolean(value));
  } else {
    await el.fill(String(value));
  }
}

async function main() {
  // --- the API's own answers -------------------------------------------------------------
  const api = await gql(
    ORIGIN,
    '{ regency { name population { total period } poverty { rate { year value breakdown } } } districts { code } }',
  );
  const population = api?.data?.regency?.population?.total ?? null;
  const rates = (api?.data?.regency?.poverty?.rate ?? []).filter((o) => o.value !== null);
  const latest = rates.reduce((a, o) => (a === null || o.year > a.year ? o : a), null);
  check('API: regency population total is the official figure', population === POPULATION, {
    api: population,
    expected: POPULATION,
    errors: api?.errors ?? null,
  });
  check(
    'API: latest poverty rate is the official figure',
    latest !== null && latest.value === POVERTY_RATE && latest.year === POVERTY_YEAR,
    { api: latest, expected: { value: POVERTY_RATE, year: POVERTY_YEAR }, errors: api?.errors ?? null },
  );
  check('API: the regency has 14 districts', api?.data?.districts?.length === DISTRICTS, {
    api: api?.data?.districts?.length ?? null,
  });

  // --- load ------------------------------------------------------------------------------
  const launched = await launch(ORIGIN, { width: 1920, height: 1080 });
  browser = launched.browser;
  const { page, net } = launched;
  let navigations = 0;
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) navigations += 1;
  });

  let resp = null;
  try {
    resp = await page.goto(`${ORIGIN}/`, { waitUntil: 'load' });
  } catch (e) {
    check('GET / loads', false, String(e.message || e));
  }
  const ctype = resp?.headers()['content-type'] ?? null;
  check('GET / is the dashboard (200, text/html)', resp?.status() === 200 && /text\/html/.test(ctype ?? ''), {
    status: resp?.status() ?? null,
    contentType: ctype,
  });
  let ready = false;
  try {
    await page.waitForSelector('body[data-ready=true]', { state: 'attached', timeout: 15_000 });
    ready = true;
  } catch {
    // reported below
  }
  check('body[data-ready=true]', ready, { after: elapsed(), bodyAttrs: await attrs(page, 'body', ['data-ready']) });
  check('loaded with no console errors', net.consoleErrors.length === 0 && net.pageErrors.length === 0, {
    console: net.consoleErrors,
    pageerror: net.pageErrors,
  });
  check('loaded with no request leaving loopback', net.blocked.length === 0, net.blocked);
  check('loaded with no same-origin response >= 400', net.badResponses.length === 0, net.badResponses);
  if (!ready) return;

  // --- the numbers -----------------------------------------------------------------------
  const pop = await attr(page, '[data-testid=population-total]', 'data-value');
  check('population-total shows the API figure', pop !== null && Number(pop) === population && Number(pop) === POPULATION, {
    dom: pop,
    api: population,
    expected: POPULATION,
  });
  const rate = await attr(page, '[data-testid=poverty-rate]', 'data-value');
  const rateYear = await attr(page, '[data-testid=poverty-rate]', 'data-year');
  check(
    'poverty-rate shows the API figure and year',
    rate !== null &&
      Number(rate) === latest?.value &&
      Number(rate) === POVERTY_RATE &&
      Number(rateYear) === latest?.year &&
      Number(rateYear) === POVERTY_YEAR,
    { dom: { value: rate, year: rateYear }, api: latest, expected: { value: POVERTY_RATE, year: POVERTY_YEAR } },
  );
  const rows = await page.$$eval('[data-testid=district-table] [data-testid=district-row]', (e) => e.length);
  check('district-table has 14 district-rows', rows === DISTRICTS, { rows });
  const tiles = await page.$$eval('[data-testid=district-grid] [data-testid=district-tile]', (e) => e.length);
  check('district-grid has 14 district-tiles', tiles === DISTRICTS, { tiles });

  // --- public view: screenshots, overflow --------------------------------------------------
  await screenshotAndOverflow(page, 1920, 1080, 'dashboard');
  await screenshotAndOverflow(page, 390, 844, 'dashboard');
  await page.setViewportSize({ width: 1920, height: 1080 });

  // --- login -------------------------------------------------------------------------------
  let loggedIn = false;
  try {
    await page.fill('[data-testid=login-token]', TOKEN);
    await page.click('[data-testid=login-submit]');
    const view = await waitAttr(page, '[data-testid=view-badge]', 'data-view', 'INTERNAL', 10_000);
    loggedIn = view === 'INTERNAL';
    check('login: view-badge shows INTERNAL', loggedIn, { dataView: view });
  } catch (e) {
    check('login: view-badge shows INTERNAL', false, String(e.message || e));
  }
  const live = await waitAttr(page, '[data-testid=alerts-live]', 'data-state', 'open', 15_000);
  check('alerts-live is open', live === 'open', { dataState: live });
  if (!loggedIn) return;

  // From here on the page must follow without a reload: a marker a reload would clear.
  await page.evaluate(() => {
    window.__simpulNoReload = 'still here';
  });
  const navigationsBefore = navigations;
  const noReload = async () =>
    navigations === navigationsBefore && (await page.evaluate(() => window.__simpulNoReload)) === 'still here';

  // --- an alert raised during the test appears live ---------------------------------------
  // (An alert shown as resolved, should the page show those, is not the new one.)
  const alertSel = `[data-testid=alert][data-rule="${ALERT_RULE}"][data-region="${ALERT_REGION}"]:not([data-status=RESOLVED])`;
  const before = await page.$$eval(alertSel, (e) => e.length);
  // For details: the alerts of the rule the page shows (rule, region, status).
  const shownOfRule = async () =>
    (await attrs(page, '[data-testid=alert]', ['data-rule', 'data-region', 'data-status']))
      .filter((a) => a['data-rule'] === ALERT_RULE)
      .map((a) => `${a['data-region']} ${a['data-status'] ?? ''}`.trim());
  const alertsShown = { total: await page.$$eval('[data-testid=alert]', (e) => e.length), [ALERT_RULE]: await shownOfRule() };
  check('before the change, no tourism-falling alert for Panggul', before === 0, {
    matching: before,
    shown: alertsShown,
  });
  const visits = fs.readFileSync(VISITS, 'utf8');
  change(VISITS, lowerVisits(visits));
  const t0 = Date.now();
  let appeared = false;
  try {
    await page.waitForFunction(([s, n]) => document.querySelectorAll(s).length > n, [alertSel, before], {
      timeout: ALERT_WAIT,
      polling: 200,
    });
    appeared = true;
  } catch {
    // reported below
  }
  const apiAlerts = await gql(ORIGIN, `{ alerts(region: "${ALERT_REGION}") { rule regionCode key status } }`, {
    token: TOKEN,
  });
  check(`a new alert (${ALERT_RULE}, ${ALERT_REGION}) appears without a reload`, appeared && (await noReload()), {
    seconds: (Date.now() - t0) / 1000,
    appeared,
    navigations: navigations - navigationsBefore,
    shown: { total: await page.$$eval('[data-testid=alert]', (e) => e.length), [ALERT_RULE]: await shownOfRule() },
    api: apiAlerts?.data?.alerts ?? apiAlerts?.errors,
  });

  // --- a source taken down shows as stale, with its age --------------------------------------
  const sourceSel = `[data-testid=source][data-source="${STALE_SOURCE}"]`;
  const statusBefore = await attr(page, sourceSel, 'data-status');
  check(`source ${STALE_SOURCE} is listed and UP before`, statusBefore === 'UP', { dataStatus: statusBefore });
  change(STALE_FILE, '{"this is": not json at all\u0000\u00ff garbage');
  const t1 = Date.now();
  const status = await waitAttr(page, sourceSel, 'data-status', 'STALE', STALE_WAIT);
  const age = status === 'STALE' ? await page.textContent(`${sourceSel} [data-testid=source-age]`).catch(() => null) : null;
  const apiSources = await gql(ORIGIN, '{ sources { name status staleSeconds } }', { token: TOKEN });
  check(`source ${STALE_SOURCE} shows STALE live`, status === 'STALE' && (await noReload()), {
    seconds: (Date.now() - t1) / 1000,
    dataStatus: status,
    api: (apiSources?.data?.sources ?? []).find((s) => s.name === STALE_SOURCE) ?? apiSources?.errors,
  });
  check(
    `source ${STALE_SOURCE} shows its age`,
    typeof age === 'string' && age.trim() !== '' && /\d/.test(age),
    { sourceAge: age },
  );
  restore(STALE_FILE);

  // --- a complaint gets a receipt and is delivered ----------------------------------------
  try {
    const form = await page.waitForSelector('form[data-testid=complaint-form]', { state: 'attached' });
    await form.scrollIntoViewIfNeeded();
    await setControl(form, 'category', 'INFRASTRUCTURE');
    await setControl(form, 'districtCode', '35.03.01');
    await setControl(form, 'villageCode', '35.03.01.2001');
    await setControl(
      form,
      'description',
      'Jalan desa di Besuki rusak berlubang sepanjang 200 meter (uji peramban otomatis).',
    );
    await setControl(form, 'contact', '081234567890');
    await setControl(form, 'confidential', false);
    await page.click('[data-testid=complaint-submit]');
  } catch (e) {
    check('complaint form filled and submitted', false, String(e.message || e));
  }
  let receipt = null;
  try {
    await page.waitForFunction(
      () => document.querySelector('[data-testid=complaint-receipt]')?.getAttribute('data-receipt'),
      null,
      { timeout: 10_000, polling: 200 },
    );
  } catch {
    // reported below
  }
  receipt = await attr(page, '[data-testid=complaint-receipt]', 'data-receipt');
  check('complaint-receipt has a receipt', Boolean(receipt), { dataReceipt: receipt });
  if (receipt) {
    const delivered = await waitAttr(page, '[data-testid=complaint-status]', 'data-status', 'DELIVERED', DELIVERY_WAIT);
    check('complaint-status reaches DELIVERED', delivered === 'DELIVERED', { dataStatus: delivered });
    const r = await gql(ORIGIN, 'query($r: ID!) { complaintStatus(receipt: $r) { id status deliveredAt } }', {
      variables: { r: receipt },
    });
    const cs = r?.data?.complaintStatus ?? null;
    check(
      'complaintStatus from the API matches the page',
      cs !== null && cs.id === receipt && cs.status === 'DELIVERED' && cs.status === delivered,
      { api: cs ?? r?.errors ?? null, dom: { receipt, status: delivered } },
    );
  }

  // --- staff view: screenshots, overflow --------------------------------------------------
  await screenshotAndOverflow(page, 1920, 1080, 'dashboard-staff');
  await screenshotAndOverflow(page, 390, 844, 'dashboard-staff');

  // --- the whole session ----------------------------------------------------------------
  check('no reload during the session', await noReload(), { navigations: navigations - navigationsBefore });
  check('no console errors during the session', net.consoleErrors.length === 0 && net.pageErrors.length === 0, {
    console: net.consoleErrors,
    pageerror: net.pageErrors,
  });
  check('no request left loopback during the session', net.blocked.length === 0, net.blocked);
  check('no same-origin response >= 400 during the session', net.badResponses.length === 0, net.badResponses);
}

/** visits.csv with Pantai Pelang's 2025 monthly visits at half of the same month of 2024. */
function lowerVisits(csv) {
  const lines = csv.split('\n');
  const header = lines[0].split(',');
  const col = (n) => header.indexOf(n);
  const [cDest, cKind, cYear, cMonth, cVisitors] = ['destination_id', 'kind', 'year', 'month', 'visitors'].map(col);
  // Plain rows (no quoted commas before the visitors column in MONTH rows of this file).
  const parsed = lines.map((l) => l.split(','));
  const base = new Map();
  for (const f of parsed) {
    if (f[cDest] === ALERT_DESTINATION && f[cKind] === 'MONTH' && f[cYear] === '2024') {
      base.set(f[cMonth], Number(f[cVisitors]));
    }
  }
  let changed = 0;
  const out = parsed.map((f, i) => {
    if (f[cDest] === ALERT_DESTINATION && f[cKind] === 'MONTH' && f[cYear] === '2025' && base.has(f[cMonth])) {
      f[cVisitors] = String(Math.floor(base.get(f[cMonth]) / 2));
      changed += 1;
      return f.join(',');
    }
    return lines[i];
  });
  if (changed < 3) throw new Error(`visits.csv: only ${changed} monthly rows of ${ALERT_DESTINATION} in 2025`);
  return out.join('\n');
}

try {
  await main();
} catch (e) {
  check('scenario ran to the end', false, String(e?.stack || e));
} finally {
  restoreAll();
  await browser?.close().catch(() => {});
}
process.exit(exitCode());
