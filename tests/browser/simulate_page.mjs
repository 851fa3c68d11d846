// `touchpointctl simulate --html --compare` in a real browser (Debian's
// chromium, headless, through puppeteer-core): the page loads offline with
// no console error and no request, and every figure it draws is what the
// same replay prints as JSON lines, counted here independently.
//
//   node simulate_page.mjs --ctl build/daemon/touchpointctl --config A.yaml \
//     --purchases P.csv --events E.csv --out DIR
//
// Writes DIR/other.yaml (A with a wider send window, a later care-tips step
// and a tighter WeCom cap), DIR/report.html, and screenshots at 1280x800:
// DIR/simulate-*.png. Exits 1 with what differs.
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {parseArgs} from 'node:util';
import {browsers, launch, Failures, screenshot} from './browser.mjs';

const {values: args} = parseArgs({options: {
  ctl: {type: 'string'}, config: {type: 'string'}, purchases: {type: 'string'},
  events: {type: 'string'}, out: {type: 'string'}}});
fs.mkdirSync(args.out, {recursive: true});
const fail = new Failures();

// The other rules: each change moves, adds or drops touchpoints.
const configA = fs.readFileSync(args.config, 'utf8');
const configB = configA
  .replace('send_window: {from: "10:00", to: "20:30"}', 'send_window: {from: "08:00", to: "22:00"}')
  .replace('{after: 7d, topic: care-tips}', '{after: 9d, topic: care-tips}')
  .replace('{max: 4, per: month, sinks: [wecom]}', '{max: 3, per: month, sinks: [wecom]}');
if (configB === configA) throw new Error('the config changes found nothing to change in ' + args.config);
const otherPath = path.join(args.out, 'other.yaml');
fs.writeFileSync(otherPath, configB);

function lines(config) {
  const out = execFileSync(args.ctl, ['simulate', '--config', config, '--purchases', args.purchases,
                                      '--events', args.events], {maxBuffer: 1 << 30}).toString();
  return out.split('\n').filter(Boolean).map(l => JSON.parse(l));
}
const runs = [lines(args.config), lines(otherPath)];
const htmlPath = path.join(args.out, 'report.html');
execFileSync(args.ctl, ['simulate', '--config', args.config, '--purchases', args.purchases, '--events',
                        args.events, '--html', htmlPath, '--compare', otherPath], {stdio: 'inherit'});
const reportByTier = JSON.parse(execFileSync(args.ctl, ['simulate', '--config', args.config, '--purchases',
  args.purchases, '--events', args.events, '--report', '--by', 'tier', '--json']).toString());

// What the page should show, from the JSON lines.
function localDay(iso, zone) {
  return new Intl.DateTimeFormat('en-CA', {timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit'})
    .format(new Date(iso));
}
function expected(touchpoints, zone) {
  const perDay = new Map();    // day -> cadence -> fired
  const heat = [...Array(7)].map(() => Array(24).fill(0));
  const funnel = new Map();    // cadence/topic -> state -> n
  const statuses = {};
  for (const t of touchpoints) {
    statuses[t.status] = (statuses[t.status] || 0) + 1;
    const key = t.cadence + '/' + t.topic;
    if (!funnel.has(key)) funnel.set(key, {});
    funnel.get(key)[t.status] = (funnel.get(key)[t.status] || 0) + 1;
    if (t.status !== 'fired') continue;
    const day = localDay(t.fire_at, zone);
    if (!perDay.has(day)) perDay.set(day, {});
    perDay.get(day)[t.cadence] = (perDay.get(day)[t.cadence] || 0) + 1;
    // fire_at is in the buyer's zone: its own date and hour are local.
    const local = t.fire_at.slice(0, 19);
    const weekday = (new Date(local.slice(0, 10) + 'T00:00:00Z').getUTCDay() + 6) % 7;  // Monday 0
    heat[weekday][Number(local.slice(11, 13))] += 1;
  }
  return {perDay, heat, funnel, statuses, count: touchpoints.length};
}

// Each browser in turn; Chromium's screenshots are the ones the docs show.
for (const name of browsers) {
  fail.prefix = name + ': ';
  const shot = (base) => path.join(args.out, base + (name === 'chromium' ? '' : '-' + name) + '.png');
  const browser = await launch(name);
  try {
    const page = await browser.newPage();
    await page.setViewport({width: 1280, height: 800});
    fail.watch(page, 'file:');
    await page.goto('file://' + path.resolve(htmlPath), {waitUntil: 'load'});
    await page.waitForFunction(() => window.tp && Object.keys(window.tp.charts).length >= 5);

    const pageData = await page.evaluate(() => {
      const charts = {};
      for (const [id, c] of Object.entries(window.tp.charts)) {
        charts[id] = {labels: c.data.labels, datasets: c.data.datasets.map(d => ({label: d.label, data: d.data}))};
      }
      const heat = {};
      for (const table of document.querySelectorAll('table.heat')) {
        heat[table.id] = [...table.querySelectorAll('td')].map(td => Number(td.dataset.count));
      }
      const cards = {};
      for (const run of document.querySelectorAll('.run')) {
        cards[run.dataset.run] = Object.fromEntries([...run.querySelectorAll('.card')].map(
          c => [c.dataset.key, Number(c.querySelector('.n').textContent.replace(/,/g, ''))]));
      }
      const stepFired = Object.fromEntries([...document.querySelectorAll('.run[data-run="0"] #outcomes-step tbody tr')]
        .map(tr => [tr.dataset.key, Number(tr.children[1].textContent.replace(/,/g, ''))]));
      const tierRows = Object.fromEntries([...document.querySelectorAll('.run[data-run="0"] #outcomes-tier tbody tr')]
        .map(tr => [tr.dataset.key, [...tr.children].map(td => td.textContent)]));
      const compare = Object.fromEntries([...document.querySelectorAll('.run[data-run="compare"] tbody tr')]
        .map(tr => [tr.dataset.step, Object.fromEntries([...tr.querySelectorAll('td[data-field]')]
          .map(td => [td.dataset.field, Number(td.textContent.replace(/,/g, ''))]))]));
      const journeys = [...document.querySelectorAll('.run[data-run="0"] .journey')].map(j => ({
        buyer: j.dataset.buyer, touchpoints: j.querySelectorAll('li[data-touchpoint]').length,
        purchases: j.querySelectorAll('li.purchase').length}));
      return {charts, heat, cards, tierRows, stepFired, compare, journeys, report: window.tpReport};
    });

    for (const [n, touchpoints] of runs.entries()) {
      const run = pageData.report.runs[n];
      const want = expected(touchpoints, run.timezone);
      const cards = pageData.cards[String(n)];
      fail.equal(cards.touchpoints, want.count, `run ${n}: touchpoints planned`);
      for (const s of ['fired', 'cancelled', 'suppressed', 'skipped', 'pending']) {
        fail.equal(cards[s], want.statuses[s] || 0, `run ${n}: ${s}`);
      }
      // The load chart: fires per day and cadence, as drawn.
      const load = pageData.charts['load-' + n];
      const drawn = new Map();
      load.labels.forEach((day, i) => {
        for (const d of load.datasets) {
          if (d.label === 'held by a cap' || !d.data[i]) continue;
          if (!drawn.has(day)) drawn.set(day, {});
          drawn.get(day)[d.label] = d.data[i];
        }
      });
      fail.equal(Object.fromEntries(drawn), Object.fromEntries(want.perDay), `run ${n}: load per day`);
      const held = load.datasets.find(d => d.label === 'held by a cap').data.reduce((a, b) => a + b, 0);
      fail.equal(held, cards.cap_deferrals, `run ${n}: cap deferrals drawn`);
      fail.equal(pageData.heat['heat-' + n], want.heat.flat(), `run ${n}: heat map`);
      // Quiet hours (outside the send window) stay empty.
      const window = n === 0 ? [10, 20] : [8, 21];
      const outside = want.heat.flat().filter((c, i) => (i % 24 < window[0] || i % 24 > window[1]) && c > 0);
      fail.equal(outside.length, 0, `run ${n}: fires in quiet hours`);
      // The funnel chart, by cadence and topic.
      const funnel = pageData.charts['funnel-' + n];
      const byTopic = new Map();
      funnel.labels.forEach((label, i) => {
        const row = run.funnel[i];
        fail.equal(label, row.cadence + '/' + row.step, `run ${n}: funnel label ${i}`);
        const key = row.cadence + '/' + row.topic;
        if (!byTopic.has(key)) byTopic.set(key, {});
        for (const d of funnel.datasets) {
          if (d.data[i]) byTopic.get(key)[d.label] = (byTopic.get(key)[d.label] || 0) + d.data[i];
        }
      });
      for (const key of new Set([...want.funnel.keys(), ...byTopic.keys()])) {
        fail.equal(byTopic.get(key) || {}, want.funnel.get(key) || {}, `run ${n}: funnel ${key}`);
      }
    }

    // Outcomes by step: each step's fires, as the JSON lines count them.
    const firedBySteps = {};
    for (const t of runs[0]) {
      if (t.status !== 'fired') continue;
      const step = pageData.report.runs[0].funnel.find(s => s.cadence === t.cadence && s.topic === t.topic).step;
      firedBySteps[t.cadence + '/' + step] = (firedBySteps[t.cadence + '/' + step] || 0) + 1;
    }
    fail.equal(pageData.stepFired, firedBySteps, 'outcomes by step: fired');

    // Outcomes by tier, as `simulate --report --json` prints them.
    for (const row of reportByTier.rows) {
      const cells = pageData.tierRows[row.key];
      if (!cells) { fail.add(`outcomes: no row for tier ${row.key}`); continue; }
      fail.equal(cells[1], row.purchases.toLocaleString('en-US'), `outcomes ${row.key}: purchases`);
      const rate = row.repurchase_rate === null ? '–' : (100 * row.repurchase_rate).toFixed(1) + '%';
      fail.equal(cells[3], rate, `outcomes ${row.key}: repurchase rate`);
    }

    // What changes: appear, disappear and move, by id.
    const [a, b] = runs.map(r => new Map(r.map(t => [t.id, t])));
    const diff = {};
    const entry = (t) => (diff[t.cadence + '/' + (pageData.report.runs[0].funnel.find(
      s => s.cadence === t.cadence && s.topic === t.topic) || {step: t.topic}).step] ??= {appear: 0, disappear: 0, moved: 0});
    for (const [id, t] of b) {
      const before = a.get(id);
      if (t.status === 'fired' && (!before || before.status !== 'fired')) entry(t).appear++;
      else if (t.status === 'fired' && Date.parse(before.fire_at) !== Date.parse(t.fire_at)) entry(t).moved++;
    }
    for (const [id, t] of a) {
      if (t.status === 'fired' && b.get(id)?.status !== 'fired') entry(t).disappear++;
    }
    let moved = 0;
    const none = {appear: 0, disappear: 0, moved: 0};
    for (const key of new Set([...Object.keys(diff), ...Object.keys(pageData.compare)])) {
      fail.equal(pageData.compare[key], diff[key] || none, `compare ${key}`);
      moved += (diff[key] || none).moved;
    }
    if (moved === 0) fail.add('compare: the other rules moved nothing; the test would prove nothing');

    // Journeys: every touchpoint of the buyer shown.
    if (pageData.journeys.length === 0) fail.add('journeys: none shown');
    for (const j of pageData.journeys) {
      const theirs = runs[0].filter(t => t.buyer_id === j.buyer).length;
      fail.equal(j.touchpoints, Math.min(theirs, 200), `journey of ${j.buyer}: touchpoints`);
      if (j.purchases === 0) fail.add(`journey of ${j.buyer}: no purchase shown`);
    }

    // Screenshots, each tab.
    const tabs = await page.$$('nav.tabs button');
    const names = ['compare', 'run-a', 'run-b'];
    for (const [i, tab] of tabs.entries()) {
      await tab.click();
      await screenshot(page, shot(`simulate-${names[i]}`));
    }
    await tabs[1].click();
    for (const [section, part] of [['#heat-0', 'heatmap'], ['#funnel-0', 'funnel'], ['.journeys', 'journeys']]) {
      await page.$eval(section, e => e.scrollIntoView());
      await screenshot(page, shot(`simulate-${part}`));
    }
    const size = fs.statSync(htmlPath).size;
    console.log(`report.html: ${Math.round(size / 1024)} KiB, ${runs[0].length} and ${runs[1].length} touchpoints`);
  } finally {
    await browser.close();
  }
}
process.exit(fail.report());
