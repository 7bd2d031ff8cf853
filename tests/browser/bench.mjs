// The web explorer's speed in Debian's headless Chromium (a benchmark, not a test): time to
// first contentful paint of the class list, model load, upload-to-heatmap on each backend, and
// the tab's peak memory (its renderer process; the GPU process apart) with the model loaded.
// Run by `make bench-web`, which builds the demo site, serves it, and compares with native.
//
// Environment: SITE_URL (ending in /), IMAGE (an image to upload), RUNS (uploads per backend,
// default 5), NATIVE_MS (the same work natively, per image), BROWSE_WASM_GZIP_BYTES and
// ENGINE_WASM_GZIP_BYTES (the browsing bundle and the engine worker's), OUT (JSON figures),
// CHROMIUM (default /usr/bin/chromium). Prints a table.
import { chromium } from 'playwright-core';
import { readFileSync, writeFileSync } from 'node:fs';

const env = (k, d) => process.env[k] ?? d;
const site = env('SITE_URL');
const runs = Number(env('RUNS', '5'));
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

const browser = await chromium.launch({
  executablePath: env('CHROMIUM', '/usr/bin/chromium'),
  headless: true,
  args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--enable-unsafe-webgpu'],
});
const out = { first_paint_ms: [], class_list_ms: [], throttled: {} };
const cdp = await browser.newBrowserCDPSession();
// Peak resident memory (VmHWM, MB) of each live Chromium process of a type: the renderers are the
// tabs, the GPU process serves WebGPU for all of them.
const peakMb = async (type) => {
  const { processInfo } = await cdp.send('SystemInfo.getProcessInfo');
  return processInfo.filter((p) => p.type === type).map((p) => {
    try {
      const kb = readFileSync(`/proc/${p.id}/status`, 'utf8').match(/VmHWM:\s+(\d+)/);
      return kb ? Number(kb[1]) / 1024 : NaN;
    } catch { return NaN; }
  });
};

// First paint, each time in a fresh context (nothing cached).
for (let i = 0; i < 3; i++) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const t0 = Date.now();
  await page.goto(site);
  await page.waitForSelector('.class-card');
  out.class_list_ms.push(Date.now() - t0);
  out.first_paint_ms.push(await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN));
  await context.close();
}

// First paint and the class list on a throttled link (cold cache, 40 ms latency), as a visitor
// on 20 Mbps and 5 Mbps sees them.
for (const mbps of [20, 5]) {
  const fcp = [], list = [];
  for (let i = 0; i < 3; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const session = await context.newCDPSession(page);
    await session.send('Network.enable');
    await session.send('Network.setCacheDisabled', { cacheDisabled: true });
    await session.send('Network.emulateNetworkConditions', { offline: false, latency: 40, downloadThroughput: mbps * 1e6 / 8, uploadThroughput: 5e6 / 8 });
    const t0 = Date.now();
    await page.goto(site);
    await page.waitForSelector('.class-card', { timeout: 120000 });
    list.push(Date.now() - t0);
    fcp.push(await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN));
    await context.close();
  }
  out.throttled[`${mbps}mbps`] = { first_paint_ms: median(fcp), class_list_ms: median(list) };
}

for (const backend of ['cpu', 'webgpu']) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const t0 = Date.now();
  await page.goto(`${site}?backend=${backend}#/upload`);
  await page.waitForSelector('.status.ready, .status.error', { timeout: 300000 });
  const loadMs = Date.now() - t0;
  const status = (await page.textContent('.status')).trim();
  const times = [];
  for (let i = 0; i < runs; i++) {
    // The same file again fires no change event unless the input is cleared first.
    await page.evaluate(() => { window.salientLastResult = undefined; document.querySelector('#upload').value = ''; });
    await page.setInputFiles('#upload', env('IMAGE'));
    await page.waitForFunction(() => window.salientLastResult, null, { timeout: 300000 });
    times.push(JSON.parse(await page.evaluate(() => window.salientLastResult)).upload_to_heatmap_ms);
  }
  // This context's page is the newest, largest renderer: the tab with the model loaded.
  const tabPeakMb = Math.max(...(await peakMb('renderer')).filter(Number.isFinite));
  const gpuPeakMb = Math.max(0, ...(await peakMb('GPU')).filter(Number.isFinite));
  out[backend] = { status, load_ms: loadMs, upload_to_heatmap_ms: times, median_ms: median(times), tab_peak_mb: tabPeakMb, gpu_process_peak_mb: gpuPeakMb };
  await context.close();
}
out.first_paint_ms = median(out.first_paint_ms);
out.class_list_ms = median(out.class_list_ms);
await browser.close();
const native = Number(env('NATIVE_MS', 'NaN'));
out.native_ms = native;
out.browse_wasm_gzip_bytes = Number(env('BROWSE_WASM_GZIP_BYTES', 'NaN'));
out.engine_wasm_gzip_bytes = Number(env('ENGINE_WASM_GZIP_BYTES', 'NaN'));
if (process.env.OUT) writeFileSync(process.env.OUT, JSON.stringify(out, null, 2));
console.log(`browsing bundle (wasm, gzip): ${(out.browse_wasm_gzip_bytes / 1e3).toFixed(0)} kB; engine worker (upload page only): ${(out.engine_wasm_gzip_bytes / 1e6).toFixed(1)} MB`);
console.log(`first contentful paint: ${out.first_paint_ms.toFixed(0)} ms; class list shown: ${out.class_list_ms} ms (median of 3 cold loads, loopback)`);
for (const [link, r] of Object.entries(out.throttled)) {
  console.log(`at ${link} (40 ms latency, cold cache): first paint ${r.first_paint_ms.toFixed(0)} ms, class list ${r.class_list_ms} ms (median of 3)`);
}
console.log('| backend | model ready | upload to heatmap (median of ' + runs + ') | vs native | tab peak memory | GPU process peak |');
console.log('|---|---|---|---|---|---|');
for (const b of ['cpu', 'webgpu']) {
  const r = out[b];
  console.log(`| ${r.status.replace(/\s+/g, ' ')} | ${r.load_ms} ms | ${r.median_ms.toFixed(0)} ms | ${(r.median_ms / native).toFixed(1)}× | ${r.tab_peak_mb.toFixed(0)} MB | ${r.gpu_process_peak_mb.toFixed(0)} MB |`);
}
console.log(`| native (salient bench, batch 1) | | ${native.toFixed(1)} ms | 1.0× | | |`);
