// The page `touchpointctl simulate --html` writes: reads the digest(s) from
// #tp-data (docs/config.md, "Preview a change") and draws them. With
// --compare there are two runs and what changes between them.
'use strict';

(() => {
  const {el, fmt, pct, palette, stateColors, panel, cards, chartBox, table, dayLabels, charts} = tp;
  const data = JSON.parse(document.getElementById('tp-data').textContent);
  window.tpReport = data;
  const states = ['fired', 'cancelled', 'suppressed', 'skipped', 'pending'];
  const weekdays = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

  function summary(run) {
    const s = run.summary;
    return [
      cards([['buyers', s.buyers, 'buyers'], ['purchases', s.purchases, 'purchases'],
             ['duplicate rows', s.duplicates, 'duplicates'], ['events', s.events, 'events'],
             ['touchpoints planned', s.touchpoints, 'touchpoints']]),
      cards(states.map(k => [k, s.statuses[k], k]).concat([['cap deferrals', s.cap_deferrals, 'cap_deferrals']])),
    ];
  }

  function loadChart(run, id) {
    const load = run.load;
    const bars = load.held.length;
    const labels = dayLabels(load.first_day, load.bucket_days, bars);
    const datasets = load.cadences.map((c, i) => ({
      label: c, data: load.fired[i], stack: 'fired', backgroundColor: palette[i % palette.length],
    }));
    datasets.push({label: 'held by a cap', data: load.held, stack: 'held', backgroundColor: '#98a2b3'});
    const [box, canvas] = chartBox(id, false);
    const per = load.bucket_days === 1 ? 'day' : load.bucket_days + ' days';
    const note = 'Touchpoints fired per ' + per + ' (' + run.timezone + '), stacked by cadence; ' +
                 'beside them, the touchpoints a frequency cap held back that day (each once per day held).';
    const node = panel('Load per day', note, box);
    queueMicrotask(() => {
      charts[id] = new Chart(canvas, {
        type: 'bar', data: {labels, datasets},
        options: {scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true}},
                  plugins: {legend: {position: 'bottom'}}, interaction: {mode: 'index', intersect: false}},
      });
    });
    return node;
  }

  function heatmap(run, id) {
    let max = 0;
    for (const row of run.heatmap) for (const n of row) max = Math.max(max, n);
    const head = el('tr', {}, el('th', {}), [...Array(24).keys()].map(h => el('th', {}, String(h).padStart(2, '0'))));
    const rows = run.heatmap.map((row, d) => el('tr', {},
      el('th', {}, weekdays[d]),
      row.map((n, h) => {
        const td = el('td', {'data-count': n, 'data-day': weekdays[d], 'data-hour': h,
                             title: weekdays[d] + ' ' + String(h).padStart(2, '0') + ':00: ' + fmt(n) + ' fired'},
                      n > 0 && max > 0 && n / max >= 0.5 ? fmt(n) : '');
        td.style.background = n > 0 ? 'rgba(47,111,222,' + (0.12 + 0.88 * n / max).toFixed(3) + ')' : '#f2f4f7';
        if (n / max >= 0.5) td.style.color = '#fff';
        return td;
      })));
    return panel('When touchpoints fire',
                 'Fires by weekday and hour in each buyer\'s own time. Quiet hours stay empty.',
                 el('div', {class: 'scroll'}, el('table', {class: 'heat', id}, el('thead', {}, head), el('tbody', {}, rows))));
  }

  function funnel(run, id) {
    const steps = run.funnel;
    const [box, canvas] = chartBox(id, steps.length > 8);
    const rows = [];
    for (const s of steps) {
      rows.push(el('tr', {'data-step': s.cadence + '/' + s.step},
        el('td', {class: 'l'}, s.cadence + ' / ' + s.step, s.topic !== s.step ? el('span', {class: 'muted'}, ' (' + s.topic + ')') : null),
        el('td', {}, fmt(s.planned)), states.map(k => el('td', {'data-state': k}, fmt(s[k]))), el('td', {}, fmt(s.held))));
      const reasons = s.reasons.map(r => r.status + ': ' + r.reason + ' (' + fmt(r.count) + ')');
      if (s.other_reasons > 0) reasons.push('other reasons (' + fmt(s.other_reasons) + ')');
      if (reasons.length) rows.push(el('tr', {class: 'sub'}, el('td', {class: 'l', colspan: 8}, reasons.join(' · '))));
    }
    const node = panel('Funnel per cadence and step',
                       'Every touchpoint planned, and what became of it; under each step its most frequent reasons. ' +
                       '"held" counts a cap holding a touchpoint back, once per day held.',
                       box, table(['step', 'planned', ...states, 'held'], rows));
    queueMicrotask(() => {
      charts[id] = new Chart(canvas, {
        type: 'bar',
        data: {labels: steps.map(s => s.cadence + '/' + s.step),
               datasets: states.map(k => ({label: k, data: steps.map(s => s[k]), backgroundColor: stateColors[k]}))},
        options: {indexAxis: 'y', scales: {x: {stacked: true, beginAtZero: true}, y: {stacked: true}},
                  plugins: {legend: {position: 'bottom'}}},
      });
    });
    return node;
  }

  function outcomes(run) {
    if (!run.outcomes) {
      return panel('Outcomes', 'Give simulate --events to see what the touchpoints achieve.');
    }
    const tiers = run.outcomes.by_tier.rows.map(r => el('tr', {'data-key': r.key},
      el('td', {class: 'l'}, r.key), el('td', {}, fmt(r.purchases)), el('td', {}, pct(r.trust_rate)),
      el('td', {}, pct(r.repurchase_rate)), el('td', {}, fmt(r.repurchased)),
      el('td', {}, r.median_days_to_repurchase === null ? '–' : r.median_days_to_repurchase.toFixed(1))));
    const steps = run.outcomes.by_step.rows.map(r => el('tr', {'data-key': r.key},
      el('td', {class: 'l'}, r.key), el('td', {}, fmt(r.fired)), el('td', {}, fmt(r.engaged)),
      el('td', {}, pct(r.engagement_rate)), el('td', {}, fmt(r.repurchases)), el('td', {}, fmt(Math.round(r.revenue)))));
    return panel('Outcomes', 'Trust and repurchase by the tier a purchase was planned in; what each step ' +
                 'achieved (the events and repurchases credited to its touchpoints). docs/outcomes.md defines each figure.',
      el('div', {class: 'cols'},
         el('div', {id: 'outcomes-tier'}, table(['tier', 'purchases', 'trust rate', 'repurchase rate', 'repurchased', 'median days'], tiers)),
         el('div', {id: 'outcomes-step'}, table(['step', 'fired', 'engaged', 'engagement', 'repurchases', 'revenue'], steps))));
  }

  function journeys(run) {
    const list = run.journeys.map(j => {
      const items = [];
      for (const p of j.purchases) {
        items.push([Date.parse(p.at), el('li', {class: 'purchase'},
          el('div', {class: 'when'}, p.at), el('div', {}, 'bought ' + p.product + ' (order ' + p.order_id + ', tier ' + p.tier + ')'))]);
      }
      for (const t of j.touchpoints) {
        const why = [t.reason, t.held ? 'held ' + t.held + '× by a cap: ' + t.held_reason : ''].filter(Boolean).join('; ');
        items.push([Date.parse(t.fire_at || t.due_at), el('li', {'data-touchpoint': t.id},
          el('div', {class: 'when'}, t.fire_at ? t.fire_at + ' (due ' + t.due_at + ')' : t.due_at),
          el('div', {}, t.cadence + ' / ' + t.step + ' ', el('span', {class: 'badge ' + t.status}, t.status)),
          why ? el('div', {class: 'why'}, why) : null)]);
      }
      items.sort((a, b) => a[0] - b[0]);
      return el('div', {class: 'journey', 'data-buyer': j.buyer},
                el('h3', {}, j.buyer + ' ', el('span', {class: 'muted'}, '(' + j.tier + ')')),
                el('ol', {class: 'timeline'}, items.map(i => i[1])));
    });
    return panel('Sample journeys', 'A few buyers of each tier (the tier of their first purchase): every purchase ' +
                 'and touchpoint, with its status and why.', el('div', {class: 'journeys'}, list));
  }

  function runView(run, n) {
    return el('div', {class: 'run', 'data-run': n},
      panel('Summary', run.label + ' · days in ' + run.timezone, summary(run)),
      loadChart(run, 'load-' + n), heatmap(run, 'heat-' + n), funnel(run, 'funnel-' + n), outcomes(run), journeys(run));
  }

  function compareView(a, b, diff) {
    const rows = diff.steps.map(s => el('tr', {'data-step': s.key},
      el('td', {class: 'l'}, s.key), el('td', {}, fmt(s.a.planned)), el('td', {}, fmt(s.b.planned)),
      el('td', {}, fmt(s.a.fired)), el('td', {}, fmt(s.b.fired)),
      el('td', {'data-field': 'appear'}, fmt(s.appear)), el('td', {'data-field': 'disappear'}, fmt(s.disappear)),
      el('td', {'data-field': 'moved'}, fmt(s.moved)),
      el('td', {}, s.moved ? s.shift_hours.median.toFixed(1) + ' h' : '–'),
      el('td', {}, s.moved ? s.shift_hours.min.toFixed(1) + ' … ' + s.shift_hours.max.toFixed(1) + ' h' : '–')));
    // Both runs' fires per day on one axis.
    const byDay = [new Map(), new Map()];
    [a, b].forEach((run, k) => {
      const load = run.load;
      const labels = dayLabels(load.first_day, load.bucket_days, load.held.length);
      labels.forEach((d, i) => byDay[k].set(d, load.fired.reduce((sum, series) => sum + series[i], 0)));
    });
    const labels = [...new Set([...byDay[0].keys(), ...byDay[1].keys()])].sort();
    const [box, canvas] = chartBox('load-compare', false);
    queueMicrotask(() => {
      charts['load-compare'] = new Chart(canvas, {
        type: 'line',
        data: {labels, datasets: [a, b].map((run, k) => ({
          label: run.label, data: labels.map(d => byDay[k].get(d) || 0),
          borderColor: palette[k], backgroundColor: palette[k], pointRadius: 0, borderWidth: 2}))},
        options: {scales: {y: {beginAtZero: true}}, interaction: {mode: 'index', intersect: false},
                  plugins: {legend: {position: 'bottom'}}},
      });
    });
    return el('div', {class: 'run', 'data-run': 'compare'},
      panel('What changes', 'The same purchases' + (a.summary.events ? ' and events' : '') + ' under ' + a.label + ' (A) and ' +
            b.label + ' (B). Per step: touchpoints planned and fired under each; fires that appear (fired only under B), ' +
            'disappear (fired only under A) and move (fired under both at another time: by how many hours, B minus A).',
            table(['step', 'planned A', 'planned B', 'fired A', 'fired B', 'appear', 'disappear', 'moved',
                   'median move', 'range'], rows)),
      panel('Load per day, both', 'Touchpoints fired per day under A and under B.', box),
      el('div', {class: 'cols'},
         panel('Summary A', a.label, summary(a)), panel('Summary B', b.label, summary(b))));
  }

  function render() {
    const runs = data.runs;
    const views = runs.map((run, n) => runView(run, n));
    const names = runs.length === 1 ? [] : runs.map((r, n) => (n ? 'B: ' : 'A: ') + r.label);
    if (data.compare) {
      views.unshift(compareView(runs[0], runs[1], data.compare));
      names.unshift('Compare');
    }
    const nav = el('nav', {class: 'tabs', role: 'tablist'});
    const show = (i) => {
      views.forEach((v, k) => { v.hidden = k !== i; });
      [...nav.children].forEach((b, k) => b.setAttribute('aria-selected', String(k === i)));
    };
    names.forEach((name, i) => nav.append(el('button', {role: 'tab', onclick: () => show(i)}, name)));
    const title = runs.length === 1 ? runs[0].label : runs[0].label + ' vs ' + runs[1].label;
    document.body.append(
      el('header', {class: 'top'}, el('h1', {}, 'Touchpoint simulation'),
         el('span', {class: 'sub'}, title + ' · ' + data.generated_by), names.length ? nav : null),
      el('main', {}, views));
    show(0);
  }
  render();
})();
