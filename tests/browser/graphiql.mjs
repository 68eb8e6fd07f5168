// GraphiQL (GET /graphql as a browser asks for it) in Debian's Chromium against a running
// gateway, with the network limited to loopback:
//   node tests/browser/graphiql.mjs
// env: SIMPUL_URL (http://127.0.0.1:PORT), SCREENSHOT_DIR.
// One JSON line per check on stdout; exits non-zero when any failed. The vendored files it
// must be served from are assets/graphiql/ (GraphiQL 3.9.0, React 18 UMD).

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { check, elapsed, env, exitCode, gql, launch, watchdog } from './lib.mjs';

const ORIGIN = env('SIMPUL_URL').replace(/\/+$/, '');
const SHOTS = env('SCREENSHOT_DIR');
const VENDORED = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../assets/graphiql');
// Not GraphiQL's default query ({ regency { name } }): the answer must be this one's.
const QUERY = '{ regency { code name } }';

fs.mkdirSync(SHOTS, { recursive: true });

let browser;
watchdog(100, async () => {
  await browser?.close().catch(() => {});
});

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

async function main() {
  const api = await gql(ORIGIN, QUERY);
  const name = api?.data?.regency?.name ?? null;
  check('API: the regency is Kabupaten Trenggalek', name === 'Kabupaten Trenggalek', { api: name, errors: api?.errors ?? null });

  const launched = await launch(ORIGIN, { width: 1440, height: 900 });
  browser = launched.browser;
  const { page, net } = launched;

  // Every script the page runs, with its body's hash.
  const scripts = [];
  page.on('response', async (resp) => {
    if (resp.request().resourceType() !== 'script') return;
    let hash = null;
    try {
      hash = sha256(await resp.body());
    } catch {
      hash = null;
    }
    scripts.push({ url: resp.url(), status: resp.status(), sha256: hash });
  });

  let resp = null;
  try {
    resp = await page.goto(`${ORIGIN}/graphql`, { waitUntil: 'load' });
  } catch (e) {
    check('GET /graphql loads', false, String(e.message || e));
  }
  const ctype = resp?.headers()['content-type'] ?? null;
  check('GET /graphql (Accept: text/html) is a page (200, text/html)', resp?.status() === 200 && /text\/html/.test(ctype ?? ''), {
    status: resp?.status() ?? null,
    contentType: ctype,
    acceptSent: resp ? (await resp.request().allHeaders()).accept : null,
  });

  let rendered = false;
  try {
    await page.waitForSelector('.graphiql-container .graphiql-query-editor .CodeMirror', { state: 'visible', timeout: 15_000 });
    rendered = true;
  } catch {
    // reported below
  }
  check('the GraphiQL editor renders', rendered, { after: elapsed() });

  // Which GraphiQL and React: the vendored files, byte for byte, and React 18 globals.
  const vendored = {};
  for (const f of ['graphiql.min.js', 'react.production.min.js', 'react-dom.production.min.js']) {
    try {
      vendored[f] = sha256(fs.readFileSync(path.join(VENDORED, f)));
    } catch {
      vendored[f] = null;
    }
  }
  const served = (f) => scripts.find((s) => s.sha256 && s.sha256 === vendored[f]);
  const globals = await page.evaluate(() => ({
    react: window.React?.version ?? null,
    reactDom: window.ReactDOM?.version ?? null,
    graphiql: typeof window.GraphiQL,
  }));
  check(
    'GraphiQL 3.9 is served from the vendored graphiql.min.js',
    Boolean(served('graphiql.min.js')) && globals.graphiql === 'function',
    { served: served('graphiql.min.js')?.url ?? null, scripts, globals },
  );
  check(
    'React 18 UMD is served from the vendored files',
    Boolean(served('react.production.min.js')) &&
      Boolean(served('react-dom.production.min.js')) &&
      /^18\./.test(globals.react ?? '') &&
      /^18\./.test(globals.reactDom ?? ''),
    {
      react: served('react.production.min.js')?.url ?? null,
      reactDom: served('react-dom.production.min.js')?.url ?? null,
      globals,
    },
  );
  check(
    'every script comes from /assets/graphiql/ on this origin',
    scripts.length > 0 && scripts.every((s) => s.url.startsWith(`${ORIGIN}/assets/graphiql/`) && s.status === 200),
    scripts.map((s) => `${s.status} ${s.url}`),
  );

  // Run a query: set the editor's text, click the run button, read the response pane.
  let result = null;
  if (rendered) {
    try {
      await page.evaluate((q) => {
        const cm = document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror;
        cm.setValue(q);
      }, QUERY);
      await page.click('.graphiql-execute-button');
      await page.waitForFunction(
        (expected) => document.querySelector('.graphiql-response')?.textContent.includes(expected),
        name ?? 'Kabupaten Trenggalek',
        { timeout: 10_000, polling: 200 },
      );
    } catch (e) {
      check('running the query', false, String(e.message || e));
    }
    result = await page.$eval('.graphiql-response', (e) => e.textContent).catch(() => null);
  }
  check(
    'the result pane shows the answer to the query typed: "Kabupaten Trenggalek", code 35.03',
    typeof result === 'string' && result.includes('"Kabupaten Trenggalek"') && /"code":\s*"35\.03"/.test(result),
    {
      response: result?.slice(0, 300) ?? null,
    },
  );

  const file = path.join(SHOTS, 'graphiql.png');
  try {
    await page.screenshot({ path: file, timeout: 15_000 });
    check('screenshot graphiql', fs.statSync(file).size > 0, file);
  } catch (e) {
    check('screenshot graphiql', false, String(e.message || e));
  }

  check('no console errors', net.consoleErrors.length === 0 && net.pageErrors.length === 0, {
    console: net.consoleErrors,
    pageerror: net.pageErrors,
  });
  check('no request left loopback', net.blocked.length === 0, net.blocked);
  check('no same-origin response >= 400', net.badResponses.length === 0, net.badResponses);
}

try {
  await main();
} catch (e) {
  check('scenario ran to the end', false, String(e?.stack || e));
} finally {
  await browser?.close().catch(() => {});
}
process.exit(exitCode());
