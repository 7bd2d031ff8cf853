// Drives the web explorer in Debian's headless Chromium (through playwright-core; no browser is
// ever downloaded). Run by tests/browser.rs, which builds the site, serves it on loopback under a
// sub-path, and compares the numbers written here with the native CLI's.
//
// Besides what each page does, every page type is checked with axe-core at 1280×900 and at
// 390×844 (no serious or critical violation), at phone size for horizontal scrolling and the
// menu, for its title, for the keyboard reaching the upload, for scroll restoration, and for
// the engine (the worker's wasm) being fetched only by the upload page.
//
// Environment: SITE_URL (ending in /), IMAGE (an image to upload), BAD_IMAGE (a text file named
// .jpg), HUGE_IMAGE (a PNG header of 30000×30000), OUT (results JSON: per backend, and
// `figures`), SHOTS (screenshot folder), CHROMIUM (default /usr/bin/chromium), UPLOAD_ONLY.
import { chromium } from 'playwright-core';
import { writeFileSync, readFileSync } from 'node:fs';
import { env, checks, launch, shooter, axeCheck, phoneChecks, desktopNav, DESKTOP, PHONE } from './common.mjs';

const site = env('SITE_URL');
// UPLOAD_ONLY=1: only the uploads (a site of another model, e.g. ResNet-50).
const uploadOnly = env('UPLOAD_ONLY', '') === '1';
const shots = env('SHOTS');
const image = env('IMAGE');
const { check, finish } = checks();
const figures = {};

const browser = await launch(chromium);
const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
const page = await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(`1280: ${e.message}`));
const shot = shooter(page, shots);
const hash = () => page.evaluate(() => location.hash);

// Every request of the context (the page's and its workers'), and the two wasm bodies' sizes.
const requests = [];
const bodies = [];
const wasm = {};
context.on('request', (r) => requests.push(r.url()));
context.on('response', (r) => {
  const kind = /\/salient-app-[^/?]*_bg\.wasm(\?|$)/.test(r.url()) ? 'app' : /\/salient-worker_bg\.wasm(\?|$)/.test(r.url()) ? 'worker' : null;
  if (kind && r.status() === 200) {
    bodies.push(r.body().then((b) => { wasm[kind] = Math.max(wasm[kind] ?? 0, b.length); }, (e) => { wasm[`${kind}_error`] = e.message; }));
  }
});
let transferred = 0;
context.on('requestfinished', (r) => {
  const worker = /\/salient-worker_bg\.wasm(\?|$)/.test(r.url());
  bodies.push(r.sizes().then((s) => {
    transferred += s.responseBodySize + s.responseHeadersSize;
    if (worker) wasm.worker_transferred = s.responseBodySize;
  }, (e) => { if (worker) wasm.worker_error = e.message; }));
});

const titles = {};
const title = async (what) => {
  // The title follows the route in an effect: give it a frame.
  await page.waitForTimeout(50);
  titles[what] = await page.title();
};

const modes = ['Overlay', 'Image', 'Soft mask', 'Side by side', 'Ground truth'];

if (!uploadOnly) {
  // Browse: the class list, search, filter, sort.
  const t0 = Date.now();
  await page.goto(site);
  await page.waitForSelector('.class-card');
  figures.class_list_ms = Date.now() - t0;
  const classes = await page.locator('.class-card').count();
  check(classes === 10, `the class list shows the dataset's 10 classes (saw ${classes})`);
  await title('class list');
  await desktopNav(page, check, 'the class list');
  await axeCheck(page, check, 'the class list at 1280×900');
  await shot('01-classes');
  await page.fill('#class-search', 'n00000003');
  await page.waitForTimeout(100);
  check(await page.locator('.class-card').count() === 1, 'search by WordNet id narrows the list to one class');
  await page.fill('#class-search', '');
  await page.check('.check input');
  await page.waitForTimeout(100);
  const withSpurious = await page.locator('.class-card').count();
  check(withSpurious === 9, `"only classes with spurious features" keeps 9 of 10 (saw ${withSpurious})`);
  await page.uncheck('.check input');
  await page.selectOption('.sort select', 'spurious');
  await page.waitForTimeout(100);
  const firstAfterSort = await page.locator('.class-card .card-title').first().textContent();
  check(firstAfterSort === 'class 0', `sorting by spurious features puts class 0 (two) first (saw ${firstAfterSort})`);

  // A class, a feature, its images; view modes and the opacity slider; back and forward.
  await page.click('.class-card a >> nth=0');
  await page.waitForSelector('.feature-card');
  check(await hash() === '#/class/0', 'a class card links to #/class/0');
  check(await page.locator('.feature-card .badge.spurious').count() === 2, 'class 0 shows its two spurious features');
  await title('class');
  await axeCheck(page, check, 'a class page at 1280×900');
  await shot('02-class');
  await page.click('.feature-card a >> nth=0');
  await page.waitForSelector('.image-card canvas.heat');
  const featureHash = await hash();
  check(/^#\/class\/0\/feature\/\d+$/.test(featureHash), `a feature card links to its page (${featureHash})`);
  await title('feature');
  await page.waitForTimeout(500);
  await shot('03-feature-overlay');
  await page.locator('.slider input').evaluate((el) => { el.value = '0.2'; el.dispatchEvent(new Event('input', { bubbles: true })); });
  const opacity = await page.locator('canvas.heat').first().evaluate((c) => c.style.opacity);
  check(opacity === '0.2', `the opacity slider sets the heatmap's opacity (${opacity})`);
  const shownModes = [];
  for (const mode of modes) {
    const button = page.locator(`.segmented button:text-is("${mode}")`);
    if (await button.count() === 0) continue;
    shownModes.push(mode);
    await button.click();
    const pressed = await page.$$eval('.segmented button', (bs) => bs.map((b) => `${b.textContent}=${b.getAttribute('aria-pressed')}`));
    check(pressed.every((p) => p.endsWith(p.startsWith(`${mode}=`) ? '=true' : '=false')), `the "${mode}" view is the one pressed (${pressed.join(', ')})`);
    if (mode === 'Soft mask') check(await page.locator('.image-card canvas.thumb.mask').count() > 0, 'the soft-mask view draws the masks');
    if (mode === 'Side by side') await page.waitForSelector('.triple');
    await page.waitForTimeout(200);
    await axeCheck(page, check, `the feature page (${mode}) at 1280×900`);
  }
  check(['Overlay', 'Image', 'Soft mask', 'Side by side'].every((m) => shownModes.includes(m)), `the feature page offers the four view modes (${shownModes.join(', ')})`);
  await shot('04-feature-side-by-side');
  await page.click('.image-card a >> nth=1');
  await page.waitForSelector('.large');
  const imageHash = await hash();
  check(imageHash.startsWith(featureHash + '/image/'), `an image links to its own page (${imageHash})`);
  await page.goBack();
  await page.waitForSelector('.image-card');
  check(await hash() === featureHash, 'back returns to the feature page');
  await page.goForward();
  await page.waitForSelector('.large');
  check(await hash() === imageHash, 'forward returns to the image page');
  await page.goto(site + imageHash);
  await page.waitForSelector('.large canvas.heat');
  check(true, 'a deep link to an image page opens it directly');
  await title('image');
  await axeCheck(page, check, 'an image page at 1280×900');
  await shot('05-image');
  await page.goto(site + '#/no/such/page');
  await page.waitForSelector('h1');
  check((await page.textContent('h1')) === 'Not found', 'an unknown deep link says so');
  await axeCheck(page, check, 'the not-found page at 1280×900');
}

// The engine only on the upload page: nothing of the worker while browsing.
await Promise.all(bodies);
if (!uploadOnly) {
  const browsing = requests.length;
  const engineWhileBrowsing = requests.filter((u) => u.includes('salient-worker'));
  check(browsing > 0 && engineWhileBrowsing.length === 0,
    `browsing requests nothing of the engine (${browsing} requests${engineWhileBrowsing.length ? `, among them ${engineWhileBrowsing.join(', ')}` : ''})`);
  figures.browse_requests = browsing;
  figures.browse_bytes = transferred;
  check(wasm.app !== undefined, `the main bundle salient-app-*_bg.wasm was fetched while browsing (${wasm.app_error ?? 'seen'})`);
}

// Upload on each backend.
const results = {};
for (const backend of ['cpu', 'webgpu']) {
  const t0 = Date.now();
  await page.goto(`${site}?backend=${backend}#/upload`);
  await page.waitForSelector('#upload', { state: 'attached' });
  if (backend === 'cpu') {
    // The keyboard reaches the file input from the top of the page.
    const input = page.locator('#upload');
    const box = await input.boundingBox();
    check(await input.isVisible() && box && box.width >= 10 && box.height >= 10,
      `the file input #upload is visible (${box ? `${Math.round(box.width)}×${Math.round(box.height)}` : 'no box'})`);
    let presses = 0;
    let focused = '';
    while (presses < 30) {
      await page.keyboard.press('Tab');
      presses += 1;
      focused = await page.evaluate(() => { const e = document.activeElement; return e ? `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}` : ''; });
      if (focused === 'input#upload') break;
    }
    check(focused === 'input#upload', `Tab from the top of the upload page reaches #upload (${presses} presses, last focus ${focused})`);
    figures.tabs_to_upload = presses;
  }
  await page.waitForSelector('.status.ready, .status.error', { timeout: 120000 });
  figures[`${backend}_model_ready_ms`] = Date.now() - t0;
  const status = await page.textContent('.status');
  check(status.includes(backend === 'cpu' ? 'CPU' : 'WebGPU'), `the ${backend} backend is shown (${status.trim()})`);
  await page.evaluate(() => { window.salientLastResult = undefined; });
  await page.setInputFiles('#upload', image);
  await page.waitForFunction(() => window.salientLastResult, null, { timeout: 300000 });
  results[backend] = JSON.parse(await page.evaluate(() => window.salientLastResult));
  figures[`${backend}_upload_to_heatmap_ms`] = Math.round(results[backend].upload_to_heatmap_ms);
  await page.waitForSelector('#top5 li');
  check(await page.locator('#top5 li').count() === 5, `${backend}: five predictions are shown`);
  // (The ResNet-50 site labels 2 of its 1000 classes: an upload predicts an unlabelled one.)
  if (!uploadOnly) {
    check(await page.locator('#core-heatmap').count() === 1 && await page.locator('#spurious-heatmap').count() === 1,
      `${backend}: core and spurious heatmaps are shown`);
  }
  check(await page.locator('#top-heatmap').count() === 1, `${backend}: the heatmap of the top features is shown`);
  if (backend === 'cpu') {
    await title('upload');
    await axeCheck(page, check, 'the upload page with results at 1280×900');
  }
  await shot(`06-upload-${backend}`);
}
await Promise.all(bodies);
check(requests.some((u) => /\/salient-worker_bg\.wasm(\?|$)/.test(u)), 'the upload page fetched the engine (salient-worker_bg.wasm)');
check(wasm.app !== undefined && wasm.app < 1_000_000, `the main bundle salient-app-*_bg.wasm is under 1,000,000 bytes (${wasm.app ?? wasm.app_error ?? 'never fetched'})`);
figures.app_wasm_bytes = wasm.app;
figures.worker_wasm_bytes = wasm.worker ?? wasm.worker_transferred ?? `unknown (${wasm.worker_error ?? 'no response seen'})`;

if (!uploadOnly) {
  // The weights came from the browser's cache the second time.
  await page.goto(`${site}?backend=cpu#/upload`);
  await page.reload();
  await page.waitForSelector('.status.ready', { timeout: 120000 });
  check((await page.textContent('.status')).includes("from the browser's cache"), 'a second visit loads the weights from Cache Storage');

  // Bad uploads get clear messages.
  for (const [file, needle] of [[env('BAD_IMAGE'), 'not a JPEG, PNG or WebP image'], [env('HUGE_IMAGE'), 'over the limit']]) {
    await page.setInputFiles('#upload', file);
    // The answer to this file (the message starts with its name), not the one before it.
    const name = file.split('/').pop();
    await page.waitForFunction((n) => document.querySelector('#upload-error')?.textContent.includes(n), name, { timeout: 60000 });
    const text = await page.textContent('#upload-error');
    check(text.includes(needle), `a bad upload is explained: ${text}`);
  }
  await shot('07-upload-error');

  // Annotate a pair and export the labels.
  await page.goto(site + '#/annotate/0');
  await page.waitForSelector('form.questions');
  await axeCheck(page, check, 'the annotate page at 1280×900');
  await shot('08-annotate');
  await page.click('form.questions button[type=submit]');
  check((await page.textContent('form.questions .error')).includes('Answer all three questions'), 'an incomplete answer is refused');
  await page.check('input[name=main] >> nth=2');
  await page.check('input[name=confidence] >> nth=3');
  await page.fill('form.questions textarea#reasons', 'the red region is the sky behind the object');
  await page.click('form.questions button[type=submit]');
  await page.waitForFunction(() => location.hash === '#/annotate/1');
  check(true, 'saving moves to the next pair');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('button:has-text("Export labels")')]);
  const csv = readFileSync(await download.path(), 'utf8');
  const firstPair = JSON.parse(await page.evaluate(async () => JSON.stringify((await (await fetch('data/annotate.json')).json()).pairs[0])));
  check(csv.startsWith('class,feature,label,rank,votes_main_object,votes_separate_object,votes_background\n'), 'the export is Salient\'s annotation CSV');
  check(csv.includes(`${firstPair.class},${firstPair.feature},spurious,${firstPair.rank},0,0,1`), `the exported row holds the answer:\n${csv}`);

  const distinct = new Set(Object.values(titles));
  check(Object.keys(titles).length === 5 && distinct.size === 5 && !distinct.has(''),
    `the class list, class, feature, image and upload pages have distinct titles (${Object.entries(titles).map(([k, v]) => `${k}: "${v}"`).join('; ')})`);
}

// The same pages on a phone.
const phone = await (await browser.newContext({ viewport: PHONE })).newPage();
phone.on('pageerror', (e) => errors.push(`390: ${e.message}`));
const phoneShot = shooter(phone, shots);
if (!uploadOnly) {
  await phone.goto(site);
  await phone.waitForSelector('.class-card');
  await phoneChecks(phone, check, 'the class list');
  await phoneShot('11-phone-classes');
  await phone.click('.class-card a >> nth=0');
  await phone.waitForSelector('.feature-card');
  await phoneChecks(phone, check, 'a class page');
  await phoneShot('12-phone-class');
  await phone.click('.feature-card a >> nth=0');
  await phone.waitForSelector('.image-card canvas.heat');
  for (const mode of modes) {
    const button = phone.locator(`.segmented button:text-is("${mode}")`);
    if (await button.count() === 0) continue;
    await button.click();
    await phone.waitForTimeout(200);
    await phoneChecks(phone, check, `the feature page (${mode})`);
    await phoneShot(`13-phone-feature-${mode.replaceAll(' ', '-').toLowerCase()}`);
  }

  // Scroll positions: a new page starts at the top, Back returns to where the reader was.
  await phone.click('.segmented button:text-is("Overlay")');
  await phone.evaluate(() => window.scrollTo(0, 0));
  const cards = phone.locator('.image-card');
  const last = cards.nth((await cards.count()) - 1);
  await last.scrollIntoViewIfNeeded();
  await phone.evaluate(() => window.scrollBy(0, 40));
  await phone.waitForTimeout(300);
  const before = await phone.evaluate(() => window.scrollY);
  check(before >= 100, `the feature page scrolls down at 390×844 (scrollY ${before})`);
  await last.locator('a').click();
  await phone.waitForSelector('.large');
  await phone.waitForTimeout(300);
  const onImage = await phone.evaluate(() => window.scrollY);
  check(onImage === 0, `an image page opened from a scrolled feature page starts at the top (scrollY ${onImage})`);
  await phoneChecks(phone, check, 'an image page');
  await phoneShot('14-phone-image');
  await phone.goBack();
  await phone.waitForSelector('.image-card');
  const restored = await phone.waitForFunction((b) => Math.abs(window.scrollY - b) <= 50 && window.scrollY, before, { timeout: 5000 })
    .then((h) => h.jsonValue(), async () => phone.evaluate(() => window.scrollY));
  check(Math.abs(restored - before) <= 50, `Back restores the feature page's scroll position (${restored}, was ${before})`);
  figures.scroll_before = before;
  figures.scroll_restored = restored;

  await phone.goto(site + '#/no/such/page');
  await phone.waitForSelector('h1:text-is("Not found")');
  await phoneChecks(phone, check, 'the not-found page');
  await phone.goto(site + '#/annotate/0');
  await phone.waitForSelector('form.questions');
  await phoneChecks(phone, check, 'the annotate page');
  await phoneShot('15-phone-annotate');
}
await phone.goto(`${site}?backend=cpu#/upload`);
await phone.waitForSelector('.status.ready', { timeout: 120000 });
await phone.setInputFiles('#upload', image);
await phone.waitForFunction(() => window.salientLastResult, null, { timeout: 300000 });
await phone.waitForSelector('#top5 li');
await phone.waitForTimeout(200);
await phoneChecks(phone, check, 'the upload page with results');
await phoneShot('16-phone-upload');

check(errors.length === 0, `no errors in the page (${errors.join('; ')})`);
results.figures = figures;
console.log(`figures: ${JSON.stringify(figures)}`);
writeFileSync(env('OUT'), JSON.stringify(results));
await browser.close();
finish();
