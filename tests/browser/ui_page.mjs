// touchpointd's status page (/ui/) in a real browser (Debian's chromium,
// headless) against a real daemon: with `auth` on, nothing shows until the
// token is given (a wrong one is refused); then every figure the page
// shows is the API's, the pending chart's days are what the buyers'
// timelines say, a dead letter is replayed only once the operator
// confirms, and a buyer lookup shows the timeline. Screenshots at
// 1280x800 go to OUT_DIR.
//
//   node ui_page.mjs --daemon build/daemon/touchpointd --out DIR
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {parseArgs} from 'node:util';
import {browsers, launch, Failures, screenshot} from './browser.mjs';

const {values: args} = parseArgs({options: {daemon: {type: 'string'}, out: {type: 'string'}}});
const out = path.resolve(args.out);
fs.rmSync(out, {recursive: true, force: true});
fs.mkdirSync(out, {recursive: true});
const fail = new Failures();
const token = 'ui-test-token-' + process.pid;

// A free port, and a port nothing listens on (the failing webhook's).
async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const {port} = s.address();
      s.close(() => resolve(port));
    });
  });
}
const port = await freePort();
const deadPort = await freePort();
const base = `http://127.0.0.1:${port}`;

fs.writeFileSync(path.join(out, 'api.token'), token + '\n');
fs.writeFileSync(path.join(out, 'crm.secret'), 'whsec_' + Buffer.from('0123456789abcdef0123456789abcdef').toString('base64') + '\n');
// No send window: the test passes at any hour. Days are Shanghai's, not
// UTC's. A webhook nobody answers, tried once, so the day-1 touchpoints
// become dead letters.
fs.writeFileSync(path.join(out, 'touchpoint.yaml'), `version: 1
timezone: Asia/Shanghai
auth: {token_file: api.token}
products:
  daily: {supply_days: 15}
tiers:
  - {name: regular, min_purchases: 2}
  - {name: novice}
sinks:
  - {name: outbox, type: queue}
  - name: crm
    type: webhook
    url: "http://127.0.0.1:${deadPort}/hook"
    secret_file: crm.secret
    retry: {initial: 1s, max_delay: 1s, max_attempts: 1}
cadences:
  - name: trust
    steps:
      - {after: 1d, topic: how-to-wear}
      - {after: 3d, topic: comfort-check}
      - {after: 7d, topic: care-tips}
  - name: repurchase
    cancel_on_repurchase: true
    sinks: [outbox]
    steps:
      - {anchor: runout, after: -3d, topic: reorder}
`);
const daemon = spawn(args.daemon, ['--config', path.join(out, 'touchpoint.yaml'), '--listen', `127.0.0.1:${port}`,
                                   '--database', path.join(out, 'tp.db')],
                     {stdio: ['ignore', fs.openSync(path.join(out, 'daemon.log'), 'w'), fs.openSync(path.join(out, 'daemon.err'), 'w')]});
const stop = () => { try { daemon.kill('SIGTERM'); } catch { /* gone */ } };
process.on('exit', stop);

async function api(p, options = {}) {
  const r = await fetch(base + p, {method: options.method || 'GET',
    headers: {Authorization: 'Bearer ' + token, 'Content-Type': 'application/json'},
    body: options.body ? JSON.stringify(options.body) : undefined});
  const body = await r.json();
  if (!r.ok) throw new Error(`${p}: ${r.status} ${JSON.stringify(body)}`);
  return body;
}
async function until(what, check, seconds = 20) {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch { /* not yet */ }
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise(r => setTimeout(r, 100));
  }
}
await until('the daemon', async () => (await fetch(base + '/healthz')).ok);

// Five buyers: lin bought a day and a minute ago (her day-1 step fires, to the dead
// webhook too), the others over the last hours (their steps are ahead).
const ago = (ms) => new Date(Date.now() - ms).toISOString();
const buyers = ['lin', 'wu', 'mei', 'nan', 'zhao'];
await api('/v1/purchases', {method: 'POST', body: buyers.map((b, i) => ({
  // zhao buys for two months: her reorder is after the 30 days.
  order_id: 'o-' + b, buyer_id: b, product: 'daily', quantity: b === 'zhao' ? 4 : 2, amount: 120 + i,
  purchased_at: ago(i === 0 ? 86400e3 + 60e3 : (i + 1) * 3600e3), timezone: 'UTC'}))});
await until('a dead letter', async () => (await api('/v1/dead-letters')).dead_letters.length > 0);

// Bought long ago by a buyer seen in each browser's last check.
const walkInAt = ago(400 * 86400e3);

// Each browser in turn; Chromium's screenshots are the ones the docs show.
for (const name of browsers) {
  fail.prefix = name + ': ';
  const shot = (base) => path.join(out, base + (name === 'chromium' ? '' : '-' + name) + '.png');
  const browser = await launch(name);
  let replayPosts = 0;
  try {
    const page = await browser.newPage();
    await page.setViewport({width: 1280, height: 800});
    fail.watch(page, base + '/');
    page.on('request', r => {
      if (r.method() === 'POST' && r.url().includes('/v1/dead-letters/')) replayPosts++;
    });

    // No token: a prompt, and nothing of the daemon's data.
    fail.expected = /status of 401/;
    await page.goto(base + '/ui', {waitUntil: 'load'});  // redirected to /ui/
    fail.equal(new URL(page.url()).pathname, '/ui/', 'the page address');
    await page.waitForSelector('#token-form');
    fail.equal(await page.$('#sinks'), null, 'sinks shown without a token');
    await screenshot(page, shot('ui-token'));
    await page.type('#token', 'wrong');
    await page.click('#token-form button');
    await page.waitForSelector('#token-error');
    fail.equal(await page.$eval('#token-error', e => e.textContent), 'The token was refused.', 'a wrong token');
    await page.type('#token', token);
    await page.click('#token-form button');
    await page.waitForSelector('body[data-loaded]');
    await page.waitForSelector('body[data-outcomes-loaded]');
    fail.expected = null;

    const status = await api('/v1/status');
    const shown = await page.evaluate(() => {
      const cell = (sel) => { const e = document.querySelector(sel); return e ? Number(e.textContent.replace(/,/g, '')) : null; };
      const chart = window.tp.charts.pending;
      return {
        crmDead: cell('tr[data-sink="crm"] td[data-field="dead_letters"]'),
        crmOutbox: cell('tr[data-sink="crm"] td[data-field="outbox"]'),
        outbox: cell('tr[data-queue="outbox"] td[data-field="messages"]'),
        total: cell('.card[data-key="total"] .n'),
      before: cell('.card[data-key="before"] .n'),
      later: cell('.card[data-key="later"] .n'),
        labels: chart.data.labels,
        datasets: chart.data.datasets.map(d => ({label: d.label, data: d.data})),
        deadRows: document.querySelectorAll('tr[data-dead-letter]').length,
        health: Object.fromEntries([...document.querySelectorAll('#health tr')].map(
          tr => [tr.querySelector('th').textContent, tr.querySelector('td').textContent])),
        tierRows: Object.fromEntries([...document.querySelectorAll('#outcomes-tier tbody tr')].map(
          tr => [tr.dataset.key, Number(tr.children[1].textContent.replace(/,/g, ''))])),
      };
    });
    const crm = status.sinks.find(s => s.name === 'crm');
    fail.equal(shown.crmDead, crm.dead_letters, 'crm dead letters');
    fail.equal(shown.crmOutbox, crm.outbox, 'crm outbox');
    fail.equal(shown.outbox, status.queues.find(q => q.name === 'outbox').messages, 'outbox queue');
    if (crm.dead_letters < 1) fail.add('the crm webhook has no dead letter');
    const dead = await api('/v1/dead-letters');
    fail.equal(shown.deadRows, dead.dead_letters.length, 'dead letter rows');
    const healthz = await (await fetch(base + '/healthz')).json();
    fail.equal(shown.health.firing, healthz.firing.state, 'the firing row');

    // The pending chart, against the buyers' own timelines.
    const want = {};
    let pendingTotal = 0;
    const shanghaiDay = new Intl.DateTimeFormat('en-CA', {timeZone: 'Asia/Shanghai', year: 'numeric',
                                                          month: '2-digit', day: '2-digit'});
    for (const b of buyers) {
      for (const t of (await api('/v1/buyers/' + b)).touchpoints) {
        if (t.status !== 'pending') continue;
        ++pendingTotal;
        const day = shanghaiDay.format(new Date(Date.parse(t.next_at)));
        (want[day] ??= {})[t.cadence] = (want[day]?.[t.cadence] || 0) + 1;
      }
    }
    const drawn = {};
    shown.labels.forEach((day, i) => {
      for (const d of shown.datasets) if (d.data[i]) (drawn[day] ??= {})[d.label] = d.data[i];
    });
    fail.equal(shown.labels.length, 30, 'days on the chart');
    fail.equal(shown.labels[0], shanghaiDay.format(new Date()), 'the first day: today in Shanghai');
    const horizon = shown.labels[shown.labels.length - 1];
    let before = 0, later = 0;
    for (const [day, counts] of Object.entries(want)) {
      const n = Object.values(counts).reduce((a, b) => a + b, 0);
      if (day < shown.labels[0]) before += n;
      if (day > horizon) later += n;
      if (day < shown.labels[0] || day > horizon) delete want[day];
    }
    fail.equal(drawn, want, 'pending per day');
    fail.equal(shown.total, pendingTotal, 'pending in all');
    fail.equal([shown.before, shown.later], [before, later], 'pending before today and after the 30 days');
    if (later === 0) fail.add('nothing pending after the 30 days: the test proves little');
    if (Object.keys(want).length < 3) fail.add('fewer than three days with pending touchpoints: the test proves little');

    // Outcomes by tier, as the API gives them.
    const byTier = await api('/v1/reports/outcomes?by=tier');
    fail.equal(shown.tierRows, Object.fromEntries(byTier.rows.map(r => [r.key, r.purchases])), 'outcomes by tier');

    await screenshot(page, shot('ui-status'));
    await page.$eval('#pending-chart', e => e.scrollIntoView());
    await screenshot(page, shot('ui-pending'));

    // Replay: dismissed, nothing is sent; confirmed, the dead letter goes back.
    let dialogs = 0;
    let answer = false;
    page.on('dialog', async d => { ++dialogs; answer ? await d.accept() : await d.dismiss(); });
    await page.$eval('tr[data-dead-letter]', e => e.scrollIntoView());
    await screenshot(page, shot('ui-dead-letters'));
    await page.click('tr[data-dead-letter] button[data-replay]');
    await new Promise(r => setTimeout(r, 300));
    fail.equal([dialogs, replayPosts], [1, 0], 'a dismissed replay: dialogs and POSTs');
    answer = true;
    const loaded = await page.$eval('body', b => b.dataset.loaded);
    await page.click('tr[data-dead-letter] button[data-replay]');
    await page.waitForFunction(was => document.body.dataset.loaded !== was, {}, loaded);
    fail.equal([dialogs, replayPosts], [2, 1], 'a confirmed replay: dialogs and POSTs');
    fail.equal(await page.$eval('#as-of', e => e.textContent.startsWith('as of') || e.textContent), true,
               'the page after the replay');

    // A buyer's timeline.
    await page.type('#buyer-id', 'lin');
    await page.click('#buyer-form button');
    await page.waitForSelector('#buyer .journey[data-buyer="lin"]');
    const lin = await api('/v1/buyers/lin');
    fail.equal(await page.$$eval('#buyer li[data-touchpoint]', l => l.length), lin.touchpoints.length, 'lin\'s touchpoints');
    fail.equal(await page.$$eval('#buyer li.purchase', l => l.length), lin.purchases.length, 'lin\'s purchases');
    await page.$eval('#buyer', e => e.scrollIntoView());
    await screenshot(page, shot('ui-buyer'));

    // A buyer with more purchases than a timeline shows (long past: every
    // step skipped, nothing else on the page moves): the page says so.
    await api('/v1/purchases', {method: 'POST', body: Array.from({length: 102}, (_, i) => ({
      order_id: 'walk-in-' + i, buyer_id: 'walk-in', product: 'daily', quantity: 1, amount: 10,
      purchased_at: walkInAt, timezone: 'UTC'}))});
    await page.$eval('#buyer-id', e => { e.value = ''; });
    await page.type('#buyer-id', 'walk-in');
    await page.click('#buyer-form button');
    await page.waitForSelector('#buyer .journey[data-buyer="walk-in"]');
    fail.equal(await page.$$eval('#buyer li.purchase', l => l.length), 100, 'walk-in\'s purchases shown');
    fail.equal(await page.$eval('#buyer .journey p.sub', e => e.textContent),
               'The last 100 purchases; 2 earlier ones and their touchpoints are not shown.',
               'walk-in\'s earlier purchases');

    // The page's files carry the policy; the API is still closed without a token.
    const shell = await fetch(base + '/ui/');
    if (!(shell.headers.get('content-security-policy') || '').includes("script-src 'self'")) {
      fail.add('the page is served without its Content-Security-Policy');
    }
    fail.equal((await fetch(base + '/v1/status')).status, 401, '/v1/status without a token');
    fail.equal((await fetch(base + '/ui/secret.txt')).status, 404, 'a file the page does not have');
  } finally {
    await browser.close();
  }
}
stop();
process.exit(fail.report());
