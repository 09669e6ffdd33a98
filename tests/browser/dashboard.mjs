// Drives the weir dashboard in Debian's headless Chromium and reports what it saw, for
// crates/weir/tests/dashboard.rs (which starts `weir up`, sends records meanwhile and asserts on the report).
//
//   node tests/browser/dashboard.mjs <url> <screenshot.png> [--token TOKEN] [--dark]
//
// The last line printed is the report as JSON. Exit status 0: every step ran (the report may still show
// problems: the Rust test judges); 1: a step timed out or failed (`error` in the report says which);
// 2: bad usage or no browser.
//
// Steps: load the page (entering TOKEN when it asks, then reloading to check it is not asked again);
// wait until it is live; sample the ingest-rate figure over several polls; wait for a delivered object
// with a preview and for the reconciliation of a delivery; take a full-page screenshot; then make the
// status API fail and check the page says it is disconnected and recovers once the API answers again.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.WEIR_CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 45_000;

const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const [, value] = args.splice(i, 2);
  return value;
};
const flag = (name) => {
  const i = args.indexOf(name);
  if (i >= 0) args.splice(i, 1);
  return i >= 0;
};
const token = option('--token');
const dark = flag('--dark');
const [url, screenshot] = args;
if (!url || !screenshot) {
  console.error('usage: node dashboard.mjs <url> <screenshot.png> [--token TOKEN] [--dark]');
  process.exit(2);
}
if (!existsSync(CHROMIUM)) {
  console.error(`${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) or set WEIR_CHROMIUM`);
  process.exit(2);
}

const report = {
  url,
  screenshot,
  error: null,
  step: 'launch',
  consoleErrors: [],
  pageErrors: [],
  failedRequests: [],
  badResponses: [],
  apiAuthorization: [],
  tokenDialogShown: null,
  tokenAskedAfterReload: null,
  storedToken: null,
  ingestSamples: [],
  object: null,
  reconciliation: null,
  stages: {},
  disconnectedText: null,
  reconnected: null,
};

// Problems after this point are provoked on purpose (the API is cut off), so they are not recorded.
let recording = true;

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    // This machine has no internet: Chromium's own background connections would only fail.
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

try {
  const context = await browser.newContext({
    viewport: { width: 1440, height: 1000 },
    deviceScaleFactor: 1,
    colorScheme: dark ? 'dark' : 'light',
  });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on('console', (m) => {
    if (recording && m.type() === 'error') report.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => {
    if (recording) report.pageErrors.push(String(e));
  });
  page.on('requestfailed', (r) => {
    if (recording) report.failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (recording && r.status() >= 400) report.badResponses.push(`${r.status()} ${r.url()}`);
  });
  page.on('request', (r) => {
    if (recording && new URL(r.url()).pathname.startsWith('/api/')) {
      report.apiAuthorization.push(r.headers().authorization ?? null);
    }
  });

  const connection = page.locator('[data-testid="connection"]');
  const waitForState = (state) =>
    page.waitForFunction((s) => document.querySelector('[data-testid="connection"]')?.dataset.state === s, state);

  report.step = 'load';
  await page.goto(url, { waitUntil: 'load' });

  if (token !== undefined) {
    report.step = 'token';
    const dialog = page.locator('[data-testid="token-dialog"]');
    await dialog.waitFor({ state: 'visible' });
    report.tokenDialogShown = true;
    await page.locator('[data-testid="token-input"]').fill(token);
    await page.locator('[data-testid="token-submit"]').click();
    await waitForState('live');
    // Entered once: a reload must use the stored token without asking.
    report.apiAuthorization = [];
    await page.reload({ waitUntil: 'load' });
    await waitForState('live');
    report.tokenAskedAfterReload = await dialog.isVisible();
    report.storedToken = await page.evaluate(() => localStorage.getItem('weir.token'));
  }

  report.step = 'live';
  await waitForState('live');

  report.step = 'ingest rate';
  // One sample per poll, until three polls in a row saw records arriving.
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  let lastPoll = null;
  for (;;) {
    const sample = await page.evaluate(() => {
      const figure = document.querySelector('[data-testid="ingest-rate"]');
      const chart = document.querySelector('[data-testid="ingest-chart"]');
      return {
        poll: Number(document.body.dataset.polls || 0),
        value: figure.dataset.value === '' || figure.dataset.value === undefined ? null : Number(figure.dataset.value),
        text: figure.textContent,
        total: Number(figure.dataset.total || 0),
        points: Number(chart.dataset.points || 0),
      };
    });
    if (sample.poll !== lastPoll) {
      report.ingestSamples.push(sample);
      lastPoll = sample.poll;
    }
    const last3 = report.ingestSamples.slice(-3);
    if (last3.length === 3 && last3.every((s) => s.value > 0)) break;
    if (Date.now() > deadline) throw new Error('the ingest rate did not show records arriving in three polls');
    await page.waitForTimeout(250);
  }

  report.step = 'object';
  const item = page.locator('[data-testid="objects"] li[data-key]').filter({
    has: page.locator('[data-testid="object-preview"]'),
  });
  await item.first().waitFor();
  report.object = await item.first().evaluate((li) => ({
    key: li.dataset.key,
    delivery: li.dataset.delivery,
    records: Number(li.dataset.records),
    preview: [...li.querySelectorAll('[data-testid="object-preview"] > div')].map((d) => d.textContent),
    text: li.innerText,
  }));

  report.step = 'reconciliation';
  const delivery = report.object.delivery;
  await page.waitForFunction((name) => {
    const row = [...document.querySelectorAll('[data-testid="reconciliation"] tr[data-delivery]')].find(
      (r) => r.dataset.delivery === name,
    );
    return row && Number(row.dataset.delivered) > 0 && row.dataset.holds === 'true';
  }, delivery);
  report.reconciliation = await page.evaluate((name) => {
    const row = [...document.querySelectorAll('[data-testid="reconciliation"] tr[data-delivery]')].find(
      (r) => r.dataset.delivery === name,
    );
    const d = row.dataset;
    return {
      delivery: d.delivery,
      in: Number(d.in),
      delivered: Number(d.delivered),
      dropped: Number(d.dropped),
      failed: Number(d.failed),
      buffered: Number(d.buffered),
      holds: d.holds === 'true',
      text: row.innerText,
    };
  }, delivery);

  report.step = 'stages';
  report.stages = await page.evaluate(() =>
    Object.fromEntries(
      [...document.querySelectorAll('[data-testid^="stage-"]')].map((s) => [
        s.dataset.testid.slice('stage-'.length),
        s.dataset.health,
      ]),
    ),
  );

  report.step = 'screenshot';
  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });

  report.step = 'disconnect';
  recording = false;
  await page.route('**/api/status', (route) => route.abort('connectionrefused'));
  await waitForState('disconnected');
  report.disconnectedText = await connection.innerText();
  await page.unroute('**/api/status');
  // Backoff doubles from 2 s to at most 10 s; the first retry comes within 2 s.
  await waitForState('live');
  report.reconnected = true;
  report.step = 'done';
} catch (e) {
  report.error = `${report.step}: ${e.message ?? e}`;
} finally {
  await browser.close();
}

console.log(JSON.stringify(report));
process.exit(report.error ? 1 : 0);
