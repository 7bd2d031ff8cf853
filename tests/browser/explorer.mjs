// Drives the web explorer in Debian's headless Chromium (through playwright-core; no browser is
// ever downloaded). Run by tests/browser.rs, which builds the site, serves it on loopback under a
// sub-path, and compares the numbers written here with the native CLI's.
//
// Environment: SITE_URL (ending in /), IMAGE (an image to upload), BAD_IMAGE (a text file named
// .jpg), HUGE_IMAGE (a PNG header of 30000×30000), OUT (results JSON), SHOTS (screenshot folder),
// CHROMIUM (default /usr/bin/chromium), UPLOAD_ONLY.
import { chromium } from 'playwright-core';
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';

const env = (k, d) => process.env[k] ?? d;
const site = env('SITE_URL');
// UPLOAD_ONLY=1: only the uploads (a site of another model, e.g. ResNet-50).
const uploadOnly = env('UPLOAD_ONLY') === '1';
const shots = env('SHOTS');
mkdirSync(shots, { recursive: true });
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); };

const browser = await chromium.launch({
  executablePath: env('CHROMIUM', '/usr/bin/chromium'),
  headless: true,
  args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--enable-unsafe-webgpu'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
const page = await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
const hash = () => page.evaluate(() => location.hash);

if (!uploadOnly) {
  // Browse: the class list, search, filter, sort.
  await page.goto(site);
  await page.waitForSelector('.class-card');
  const classes = await page.locator('.class-card').count();
  check(classes === 10, `the class list shows the dataset's 10 classes (saw ${classes})`);
  await shot('01-classes');
  await page.fill('.search', 'n00000003');
  await page.waitForTimeout(100);
  check(await page.locator('.class-card').count() === 1, 'search by WordNet id narrows the list to one class');
  await page.fill('.search', '');
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
  await shot('02-class');
  await page.click('.feature-card a >> nth=0');
  await page.waitForSelector('.image-card canvas.heat');
  const featureHash = await hash();
  check(/^#\/class\/0\/feature\/\d+$/.test(featureHash), `a feature card links to its page (${featureHash})`);
  await page.waitForTimeout(500);
  await shot('03-feature-overlay');
  await page.locator('.slider input').evaluate((el) => { el.value = '0.2'; el.dispatchEvent(new Event('input', { bubbles: true })); });
  const opacity = await page.locator('canvas.heat').first().evaluate((c) => c.style.opacity);
  check(opacity === '0.2', `the opacity slider sets the heatmap's opacity (${opacity})`);
  await page.click('.segmented button:has-text("Soft mask")');
  check(await page.locator('img.thumb.mask').count() > 0, 'the soft-mask view shows the masks');
  await page.click('.segmented button:has-text("Side by side")');
  await page.waitForSelector('.triple');
  await page.waitForTimeout(300);
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
  await shot('05-image');
  await page.goto(site + '#/no/such/page');
  await page.waitForSelector('h1');
  check((await page.textContent('h1')) === 'Not found', 'an unknown deep link says so');

}

// Upload on each backend.
const results = {};
for (const backend of ['cpu', 'webgpu']) {
  await page.goto(`${site}?backend=${backend}#/upload`);
  await page.waitForSelector('.status.ready, .status.error', { timeout: 120000 });
  const status = await page.textContent('.status');
  check(status.includes(backend === 'cpu' ? 'CPU' : 'WebGPU'), `the ${backend} backend is shown (${status.trim()})`);
  await page.evaluate(() => { window.salientLastResult = undefined; });
  await page.setInputFiles('#upload', env('IMAGE'));
  await page.waitForFunction(() => window.salientLastResult, null, { timeout: 300000 });
  results[backend] = JSON.parse(await page.evaluate(() => window.salientLastResult));
  await page.waitForSelector('#top5 li');
  check(await page.locator('#top5 li').count() === 5, `${backend}: five predictions are shown`);
  // (The ResNet-50 site labels 2 of its 1000 classes: an upload predicts an unlabelled one.)
  if (!uploadOnly) {
    check(await page.locator('#core-heatmap').count() === 1 && await page.locator('#spurious-heatmap').count() === 1,
      `${backend}: core and spurious heatmaps are shown`);
  }
  await shot(`06-upload-${backend}`);
}

if (!uploadOnly) {
  // The weights came from the browser's cache the second time.
  await page.goto(`${site}?backend=cpu#/upload`);
  await page.reload();
  await page.waitForSelector('.status.ready', { timeout: 120000 });
  check((await page.textContent('.status')).includes("from the browser's cache"), 'a second visit loads the weights from Cache Storage');

  // Bad uploads get clear messages.
  for (const [file, needle] of [[env('BAD_IMAGE'), 'not a JPEG, PNG or WebP image'], [env('HUGE_IMAGE'), 'over the limit']]) {
    await page.setInputFiles('#upload', file);
    await page.waitForSelector('#upload-error', { timeout: 60000 });
    const text = await page.textContent('#upload-error');
    check(text.includes(needle), `a bad upload is explained: ${text}`);
  }
  await shot('07-upload-error');

  // Annotate a pair and export the labels.
  await page.goto(site + '#/annotate/0');
  await page.waitForSelector('form.questions');
  await shot('08-annotate');
  await page.click('form.questions button[type=submit]');
  check((await page.textContent('form.questions .error')).includes('Answer all three questions'), 'an incomplete answer is refused');
  await page.check('input[name=main] >> nth=2');
  await page.check('input[name=confidence] >> nth=3');
  await page.fill('form.questions textarea', 'the red region is the sky behind the object');
  await page.click('form.questions button[type=submit]');
  await page.waitForFunction(() => location.hash === '#/annotate/1');
  check(true, 'saving moves to the next pair');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('button:has-text("Export labels")')]);
  const csv = readFileSync(await download.path(), 'utf8');
  const firstPair = JSON.parse(await page.evaluate(async () => JSON.stringify((await (await fetch('data/annotate.json')).json()).pairs[0])));
  check(csv.startsWith('class,feature,label,rank,votes_main_object,votes_separate_object,votes_background\n'), 'the export is Salient\'s annotation CSV');
  check(csv.includes(`${firstPair.class},${firstPair.feature},spurious,${firstPair.rank},0,0,1`), `the exported row holds the answer:\n${csv}`);

}

check(errors.length === 0, `no errors in the page (${errors.join('; ')})`);
writeFileSync(env('OUT'), JSON.stringify(results));
await browser.close();
if (failures.length) {
  console.error(`${failures.length} browser checks failed:\n- ${failures.join('\n- ')}`);
  process.exit(1);
}
