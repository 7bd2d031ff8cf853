// The paper's release as a masks-only site (1000 classes, the MTurk labels), served by
// `salient serve`, in Debian's headless Chromium on a throttled network (40 ms latency,
// 20 Mbit/s down, 5 up) with the browser cache off. Run by tests/browser.rs
// (paper_release_site_in_chromium), which builds and serves the site.
//
// Environment: SITE_URL (ending in /), EXPECTED_REASONS (JSON: the five workers' reasons for
// class 325, feature 1797, in the CSV's order), SITE_BYTES and PER_CLASS_BYTES (sizes measured
// by the test, passed through into the figures), OUT (results JSON), SHOTS (screenshot folder),
// CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { writeFileSync } from 'node:fs';
import { env, checks, launch, shooter, axeCheck, phoneChecks, DESKTOP, PHONE } from './common.mjs';

const site = env('SITE_URL');
const expectedReasons = JSON.parse(env('EXPECTED_REASONS'));
const shots = env('SHOTS');
const { check, finish } = checks();
const figures = { site_bytes: Number(env('SITE_BYTES')), per_class_bytes: Number(env('PER_CLASS_BYTES')) };
const CLASS = 325;
const RANKED = [1305, 604, 1797, 595, 1582];
const SPURIOUS = [1797, 595];

const browser = await launch(chromium);
const errors = [];

async function throttled(viewport) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`${viewport.width}: ${e.message}`));
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 40, downloadThroughput: 20e6 / 8, uploadThroughput: 5e6 / 8 });
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  return page;
}

/// Navigates to `hash` by clicking its link (or by setting it) and measures, in the page, the
/// time until `selector` matches at least `count` elements.
async function timeTo(page, hash, selector, count) {
  return page.evaluate(([hash, selector, count]) => new Promise((resolve, reject) => {
    const t0 = performance.now();
    const link = document.querySelector(`a[href="${hash}"]`);
    if (link) link.click(); else location.hash = hash;
    const timer = setTimeout(() => reject(new Error(`${selector} ×${count} not shown within 30 s of ${hash}`)), 30000);
    const tick = () => {
      if (document.querySelectorAll(selector).length >= count) {
        clearTimeout(timer);
        resolve(performance.now() - t0);
      } else requestAnimationFrame(tick);
    };
    tick();
  }), [hash, selector, count]);
}

// The class list, from nothing: first paint, then all 1000 classes.
const page = await throttled(DESKTOP);
const shot = shooter(page, shots);
await page.goto(site, { waitUntil: 'commit' });
const listed = await page.waitForFunction(() => document.querySelectorAll('.class-card').length >= 1000 && performance.now(), null, { timeout: 60000 });
figures.list_ms = Math.round(await listed.jsonValue());
const fcp = await page.evaluate(() => performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint')?.startTime ?? null);
figures.fcp_ms = fcp === null ? null : Math.round(fcp);
check(fcp !== null && fcp <= 1000, `first contentful paint within 1000 ms on a 20 Mbit/s, 40 ms link, cache off (${figures.fcp_ms} ms)`);
const classes = await page.locator('.class-card').count();
check(classes === 1000, `the class list shows the release's 1000 classes (${classes}, all shown after ${figures.list_ms} ms)`);
check(await page.locator('details.picker').count() === 1, 'the masks-only site offers to show the images (details.picker) on the class list');
await axeCheck(page, check, 'the release class list at 1280×900');
await shot('21-release-classes', false);

// Class 325 (sulphur butterfly): the paper's ranks, the spurious ones with their votes.
const classHash = `#/class/${CLASS}`;
figures.class_ms = Math.round(await timeTo(page, classHash, '.feature-card', RANKED.length));
check(figures.class_ms <= 2000, `class ${CLASS}'s page is shown within 2000 ms (${figures.class_ms} ms)`);
check(await page.evaluate(() => location.hash) === classHash, `the class card links to ${classHash}`);
const cards = await page.$$eval('.feature-card', (cs) => cs.map((c) => ({
  title: c.querySelector('.card-title')?.textContent ?? '',
  spurious: c.querySelector('.badge.spurious')?.textContent ?? null,
  core: c.querySelector('.badge.core')?.textContent ?? null,
})));
const order = cards.map((c) => Number(/Feature (\d+)/.exec(c.title)?.[1]));
check(JSON.stringify(order) === JSON.stringify(RANKED), `class ${CLASS}'s features in the paper's rank order ${RANKED.join(', ')} (${order.join(', ')})`);
for (const [k, feature] of order.entries()) {
  const c = cards[k];
  if (SPURIOUS.includes(feature)) {
    check(c.spurious !== null && c.spurious.includes('of 5 votes'), `feature ${feature} is badged spurious with its votes ("${c.spurious ?? c.core}")`);
  } else {
    check(c.spurious === null && c.core !== null, `feature ${feature} is badged core ("${c.core ?? c.spurious}")`);
  }
}
check(await page.locator('details.picker').count() === 1, `class ${CLASS}'s page offers to show the images (details.picker)`);
await axeCheck(page, check, `class ${CLASS}'s page at 1280×900`);
await shot('22-release-class');

// Feature 1797: the five workers' answers, their reasons verbatim.
const featureHash = `${classHash}/feature/1797`;
figures.feature_ms = Math.round(await timeTo(page, featureHash, 'section.provenance table tbody tr', 1));
const rows = await page.$$eval('section.provenance table tbody tr', (rs) => rs.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));
check(rows.length === 5, `feature 1797's page shows the five workers' answers (${rows.length} rows)`);
const reasons = rows.map((r) => r[r.length - 1]);
check(JSON.stringify(reasons) === JSON.stringify(expectedReasons),
  `the reasons are the CSV's, verbatim and in order:\n    shown    ${JSON.stringify(reasons)}\n    expected ${JSON.stringify(expectedReasons)}`);
check(await page.locator('details.picker').count() === 1, 'feature 1797\'s page offers to show the images (details.picker)');
check(await page.locator('.image-card canvas.heat').count() >= 1, 'feature 1797\'s masks are drawn');
await axeCheck(page, check, 'feature 1797\'s page at 1280×900');
await shot('23-release-feature');

// The same three pages on a phone.
const phone = await throttled(PHONE);
const phoneShot = shooter(phone, shots);
await phone.goto(site);
await phone.waitForFunction(() => document.querySelectorAll('.class-card').length >= 1000, null, { timeout: 60000 });
await phoneChecks(phone, check, 'the release class list');
await phoneShot('24-release-phone-classes', false);
await timeTo(phone, classHash, '.feature-card', RANKED.length);
await phoneChecks(phone, check, `class ${CLASS}'s page`);
await phoneShot('25-release-phone-class');
await timeTo(phone, featureHash, 'section.provenance table tbody tr', 5);
await phoneChecks(phone, check, 'feature 1797\'s page');
await phoneShot('26-release-phone-feature');

check(errors.length === 0, `no errors in the page (${errors.join('; ')})`);
console.log(`figures: ${JSON.stringify(figures)}`);
writeFileSync(env('OUT'), JSON.stringify({ figures }));
await browser.close();
finish();
