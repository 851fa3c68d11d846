// What the browser tests share: Debian's chromium and firefox-esr, headless, and a list of
// failures that also collects every console error, uncaught exception,
// refused resource (a Content-Security-Policy violation among them) and
// request to anywhere the page should not reach.
import puppeteer from 'puppeteer-core';

// The browsers every page is tested in: Debian's chromium (over the
// DevTools protocol) and firefox-esr (over WebDriver BiDi).
export const browsers = ['chromium', 'firefox'];

export function launch(name = 'chromium') {
  if (name === 'firefox') {
    return puppeteer.launch({browser: 'firefox', headless: true,
                             executablePath: process.env.TP_FIREFOX || '/usr/bin/firefox-esr'});
  }
  return puppeteer.launch({
    executablePath: process.env.TP_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // The sandbox needs user namespaces, which CI's root containers lack.
    args: ['--no-sandbox', '--disable-gpu', '--font-render-hinting=none', '--lang=en-US'],
  });
}

// Sorts object keys, so two objects compare by content.
export function canon(value) {
  if (Array.isArray(value)) return value.map(canon);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map(k => [k, canon(value[k])]));
  }
  return value;
}

export class Failures {
  constructor() { this.list = []; this.prefix = ''; }
  add(message) { this.list.push(this.prefix + message); }
  equal(got, want, what) {
    const g = JSON.stringify(canon(got)), w = JSON.stringify(canon(want));
    if (g !== w) this.add(`${what}: got ${g}, want ${w}`);
  }
  // Every console error or warning, page error, failed request and request
  // whose URL does not start with `allowed`.
  // `this.expected`, while set, is a RegExp of console messages that are
  // expected (a 401 while no token is given, say).
  watch(page, allowed) {
    page.on('console', m => {
      if (this.expected && this.expected.test(m.text())) return;
      if (m.type() === 'error' || m.type() === 'warn') this.add(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', e => this.add(`page error: ${e.message}`));
    page.on('requestfailed', r => this.add(`request failed: ${r.url()} (${r.failure()?.errorText})`));
    page.on('request', r => {
      // data: URLs (the page's empty icon) never leave the browser.
      if (!r.url().startsWith(allowed) && !r.url().startsWith('data:')) this.add(`request to ${r.url()}`);
    });
  }
  report() {
    for (const f of this.list) console.error('FAIL ' + f);
    if (this.list.length === 0) console.log('ok');
    return this.list.length === 0 ? 0 : 1;
  }
}

// A 1280x800 screenshot of what the viewport shows (canvases included,
// which full-page captures in headless mode leave blank).
export async function screenshot(page, file) {
  await page.evaluate(() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.screenshot({path: file});
}
