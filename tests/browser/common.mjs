// What explorer.mjs and release.mjs share: the browser, the list of checks, axe-core, and the
// phone-size layout checks. A tool that is missing fails the run with a message; no check
// passes by not running.
import { existsSync, mkdirSync } from 'node:fs';

export const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) {
    console.error(`${k} is not set`);
    process.exit(2);
  }
  return v;
};

let axeSource;
try {
  axeSource = (await import('axe-core')).default.source;
} catch (e) {
  console.error(`axe-core is missing: run \`npm ci\` in tests/browser (make tools): ${e.message}`);
  process.exit(2);
}
if (typeof axeSource !== 'string' || axeSource.length < 100000) {
  console.error('axe-core has no `source`: reinstall it with `npm ci` in tests/browser');
  process.exit(2);
}

export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };

/// The list of checks: `check(ok, what)` prints and records; `finish()` exits 1 on any failure.
export function checks() {
  const failures = [];
  const check = (ok, what) => {
    if (!ok) failures.push(what);
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
    return ok;
  };
  const finish = () => {
    if (failures.length) {
      console.error(`${failures.length} browser checks failed:\n- ${failures.join('\n- ')}`);
      process.exit(1);
    }
  };
  // A step that cannot go on (a wait that times out) stops the run, with what failed before.
  process.on('uncaughtException', (e) => {
    console.error(`FAIL (the run stopped) ${e.stack ?? e}`);
    failures.push(`the run stopped: ${e.message}`);
    console.error(`${failures.length} browser checks failed:\n- ${failures.join('\n- ')}`);
    process.exit(1);
  });
  return { check, finish, failures };
}

export async function launch(chromium) {
  const executablePath = env('CHROMIUM', '/usr/bin/chromium');
  if (!existsSync(executablePath)) {
    console.error(`${executablePath} is missing: install Debian's chromium (or set CHROMIUM)`);
    process.exit(2);
  }
  return chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--enable-unsafe-webgpu'],
  });
}

export function shooter(page, dir) {
  mkdirSync(dir, { recursive: true });
  return (name, fullPage = true) => page.screenshot({ path: `${dir}/${name}.png`, fullPage });
}

/// axe-core on the whole document: fails on any serious or critical violation (each printed
/// with its rule id, impact, help and first target); lesser ones are printed as notes.
export async function axeCheck(page, check, where) {
  if (!await page.evaluate(() => typeof window.axe === 'object' && typeof window.axe.run === 'function')) {
    await page.addScriptTag({ content: axeSource });
  }
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length,
      target: (v.nodes[0]?.target ?? []).map((t) => (Array.isArray(t) ? t.join(' >>> ') : t)).join(' '),
      html: (v.nodes[0]?.html ?? '').replace(/\s+/g, ' ').slice(0, 160),
      summary: v.nodes[0]?.failureSummary?.split('\n').slice(0, 2).join(' ') ?? '',
    }));
  });
  const line = (v) => `${v.id} (${v.impact}): ${v.help} — first of ${v.nodes}: ${v.target} ${v.html} [${v.summary}]`;
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of violations.filter((v) => !bad.includes(v))) console.log(`note axe on ${where}: ${line(v)}`);
  check(bad.length === 0, `axe: no serious or critical violation on ${where}${bad.map((v) => `\n    ${line(v)}`).join('')}`);
  return violations.length;
}

/// No horizontal scrolling: the document is no wider than the window (nor than its own
/// visible width); on failure, the elements sticking out are named.
export async function noHorizontalScroll(page, check, where) {
  const m = await page.evaluate(() => {
    const root = document.documentElement;
    const name = (el) => {
      const parts = [];
      for (let e = el; e && e !== document.body && parts.length < 4; e = e.parentElement) {
        parts.unshift(e.tagName.toLowerCase() + (e.id ? `#${e.id}` : '') + [...e.classList].map((c) => `.${c}`).join(''));
      }
      return parts.join(' > ');
    };
    const limit = root.clientWidth;
    const wide = [...document.body.querySelectorAll('*')]
      .filter((e) => e.getBoundingClientRect().right > limit + 0.5 && e.getClientRects().length)
      // The innermost ones: an element whose child also sticks out is not the cause.
      .filter((e, _, all) => ![...e.children].some((c) => all.includes(c)))
      .slice(0, 4)
      .map((e) => `${name(e)} (right edge ${Math.round(e.getBoundingClientRect().right)} px)`);
    return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, innerWidth: window.innerWidth, wide };
  });
  const ok = m.scrollWidth <= m.innerWidth && m.scrollWidth <= m.clientWidth;
  check(ok, `${where}: no horizontal scroll (scrollWidth ${m.scrollWidth}, clientWidth ${m.clientWidth}, innerWidth ${m.innerWidth})`
    + (ok ? '' : `; wider than the window: ${m.wide.join('; ') || '(none found)'}`));
}

/// At phone size the header's menu button shows the navigation, and hides it again.
export async function menuOpensNav(page, check, where) {
  const button = page.locator('header.top button.menu');
  if (!check(await button.count() === 1 && await button.isVisible(), `${where}: the menu button is shown at phone size`)) return;
  const before = await page.evaluate(() => ({
    expanded: document.querySelector('header.top button.menu').getAttribute('aria-expanded'),
    open: document.querySelector('nav#nav')?.classList.contains('open'),
  }));
  await button.click();
  await page.waitForTimeout(50);
  const after = await page.evaluate(() => {
    const nav = document.querySelector('nav#nav');
    const links = nav ? [...nav.querySelectorAll('a')] : [];
    const shown = (e) => {
      const r = e.getBoundingClientRect();
      const s = getComputedStyle(e);
      return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'
        && r.left >= 0 && r.right <= window.innerWidth + 0.5;
    };
    return {
      expanded: document.querySelector('header.top button.menu').getAttribute('aria-expanded'),
      open: nav?.classList.contains('open'),
      links: links.length,
      shown: links.filter(shown).length,
    };
  });
  check(before.expanded === 'false' && !before.open && after.expanded === 'true' && after.open && after.links >= 3 && after.shown === after.links,
    `${where}: the menu button opens the navigation (aria-expanded ${before.expanded} → ${after.expanded}, nav.open ${before.open} → ${after.open}, ${after.shown} of ${after.links} links shown)`);
  await button.click();
  await page.waitForTimeout(50);
  const closed = await page.evaluate(() => document.querySelector('header.top button.menu').getAttribute('aria-expanded'));
  check(closed === 'false', `${where}: the menu button closes the navigation again (aria-expanded ${closed})`);
}

/// At desktop size the navigation is shown and the menu button is not.
export async function desktopNav(page, check, where) {
  const r = await page.evaluate(() => {
    const b = document.querySelector('header.top button.menu');
    const links = [...document.querySelectorAll('nav#nav a')];
    return {
      button: b ? getComputedStyle(b).display !== 'none' && b.getBoundingClientRect().width > 0 : false,
      links: links.length,
      shown: links.filter((a) => a.getBoundingClientRect().width > 0).length,
    };
  });
  check(!r.button && r.links >= 3 && r.shown === r.links, `${where}: at 1280 px the navigation is shown (${r.shown} of ${r.links} links) and the menu button is not (${r.button ? 'shown' : 'hidden'})`);
}

/// Everything checked at phone size on a page: axe, no horizontal scroll, the menu.
export async function phoneChecks(page, check, where) {
  await axeCheck(page, check, `${where} at 390×844`);
  await noHorizontalScroll(page, check, `${where} at 390×844`);
  await menuOpensNav(page, check, `${where} at 390×844`);
}
