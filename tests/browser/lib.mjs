// Shared by the browser scenarios (dashboard.mjs, graphiql.mjs): one JSON line per check on
// stdout, Debian's Chromium with the network limited to loopback, a watchdog, and the
// GraphQL calls the scenarios make themselves to compare with what the page shows.

import { chromium } from 'playwright-core';

const started = Date.now();
const results = [];

/** Records one check and prints it as a JSON line. */
export function check(name, ok, detail = null) {
  const line = { check: name, ok: Boolean(ok), detail };
  results.push(line);
  process.stdout.write(`${JSON.stringify(line)}\n`);
  return Boolean(ok);
}

/** Exit status: non-zero when any check failed (or none ran). */
export function exitCode() {
  return results.length > 0 && results.every((r) => r.ok) ? 0 : 1;
}

/** Seconds since the script started, for details. */
export const elapsed = () => Math.round((Date.now() - started) / 100) / 10;

/** Kills the script (after `cleanup`) if it runs longer than `seconds`. */
export function watchdog(seconds, cleanup = () => {}) {
  const timer = setTimeout(async () => {
    check('finished in time', false, `still running after ${seconds} s`);
    try {
      await cleanup();
    } finally {
      process.exit(1);
    }
  }, seconds * 1000);
  timer.unref();
}

/** Required environment variable, or exit with a failed check. */
export function env(name) {
  const v = process.env[name];
  if (!v) {
    check(`environment: ${name}`, false, `${name} is not set`);
    process.exit(1);
  }
  return v;
}

const ASSETS = new Set(['document', 'stylesheet', 'script', 'image', 'font', 'media', 'manifest']);

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/**
 * Debian's Chromium with one context whose every request goes through a route: requests to
 * a host other than loopback are aborted and recorded in `net.blocked`. Console errors,
 * page errors and same-origin responses with status >= 400 are recorded too.
 */
export async function launch(origin, viewport) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run'],
    timeout: 30_000,
  });
  const context = await browser.newContext({ viewport, locale: 'id-ID', timezoneId: 'Asia/Jakarta' });
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(15_000);
  const net = { blocked: [], consoleErrors: [], pageErrors: [], badResponses: [], failed: [] };
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    let host = '';
    try {
      host = new URL(url).hostname;
    } catch {
      host = '';
    }
    const scheme = url.split(':', 1)[0];
    // data:, blob: (no host, never on the network) pass; everything else must be loopback.
    if ((scheme === 'http' || scheme === 'https' || scheme === 'ws' || scheme === 'wss') && !LOOPBACK.has(host)) {
      net.blocked.push(url);
      await route.abort('blockedbyclient').catch(() => {});
      return;
    }
    await route.continue().catch(() => {});
  });
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      const loc = msg.location();
      net.consoleErrors.push(`${msg.text()}${loc?.url ? ` (${loc.url}:${loc.lineNumber})` : ''}`);
    }
  });
  page.on('pageerror', (err) => net.pageErrors.push(String(err?.stack || err)));
  page.on('response', (resp) => {
    if (resp.status() >= 400 && sameOrigin(resp.url(), origin)) {
      net.badResponses.push(`${resp.status()} ${resp.request().method()} ${resp.url()}`);
    }
  });
  // An asset the browser refuses (a stylesheet or script of the wrong type, say) fails with no
  // response event: same-origin assets that fail count as bad too. Fetches and streams the
  // page cancels itself (a subscription closed at logout) are only recorded.
  page.on('requestfailed', (req) => {
    const line = `${req.method()} ${req.url()}: ${req.failure()?.errorText}`;
    if (sameOrigin(req.url(), origin) && ASSETS.has(req.resourceType())) {
      net.badResponses.push(`failed ${line} (${req.resourceType()})`);
    } else {
      net.failed.push(line);
    }
  });
  return { browser, context, page, net };
}

function sameOrigin(url, origin) {
  try {
    return new URL(url).origin === new URL(origin).origin;
  } catch {
    return false;
  }
}

/** POST /graphql with `query` (and `token` as a bearer), the parsed JSON answer. */
export async function gql(origin, query, { token, variables } = {}) {
  const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const resp = await fetch(`${origin}/graphql`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await resp.text();
  try {
    return JSON.parse(text);
  } catch {
    return { errors: [{ message: `HTTP ${resp.status}, not JSON: ${text.slice(0, 200)}` }] };
  }
}

/**
 * Horizontal overflow at the current viewport: the document's scroll width, and the visible
 * elements whose right edge passes the viewport's (elements clipped by a scrolling or
 * clipping container of their own, inside the viewport, do not count; html and body do
 * not clip: content cut off at the page's edge is overflow too).
 */
export async function horizontalOverflow(page) {
  return page.evaluate(() => {
    const iw = window.innerWidth;
    const describe = (el) => {
      let s = el.tagName.toLowerCase();
      if (el.id) s += `#${el.id}`;
      const testid = el.getAttribute('data-testid');
      if (testid) s += `[data-testid=${testid}]`;
      if (typeof el.className === 'string' && el.className.trim()) {
        s += `.${el.className.trim().split(/\s+/).slice(0, 3).join('.')}`;
      }
      return s;
    };
    const clippedInside = (el) => {
      for (let a = el.parentElement; a && a !== document.body && a !== document.documentElement; a = a.parentElement) {
        const ox = getComputedStyle(a).overflowX;
        if (ox !== 'visible') {
          return a.getBoundingClientRect().right <= iw + 1;
        }
      }
      return false;
    };
    const offenders = [];
    for (const el of document.querySelectorAll('body *')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      if (r.right <= iw + 1) continue;
      const cs = getComputedStyle(el);
      if (cs.visibility === 'hidden' || cs.display === 'none') continue;
      if (clippedInside(el)) continue;
      // Report the outermost offender only: its descendants stick out because it does.
      if (offenders.some((o) => o.el.contains(el))) continue;
      offenders.push({ el, right: Math.round(r.right), width: Math.round(r.width) });
    }
    return {
      innerWidth: iw,
      scrollWidth: document.documentElement.scrollWidth,
      offenders: offenders.slice(0, 15).map((o) => `${describe(o.el)} right=${o.right} width=${o.width}`),
      offenderCount: offenders.length,
    };
  });
}

/** `f()` until it returns a truthy value or `ms` pass; the last value. */
export async function poll(f, ms, every = 250) {
  const until = Date.now() + ms;
  let last;
  for (;;) {
    last = await f();
    if (last || Date.now() >= until) return last;
    await new Promise((r) => setTimeout(r, every));
  }
}
