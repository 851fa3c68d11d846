// touchpointd's status page (/ui/, docs/operations.md "The status page").
// Everything comes from the documented API: /healthz, /v1/status,
// /v1/dead-letters, /v1/reports/outcomes and /v1/buyers/{id}. With `auth`
// configured the page asks for a token once, keeps it for the tab
// (sessionStorage) and sends it as a Bearer header; nothing is shown
// without it. Read-only, except replaying dead letters, which asks first.
'use strict';

(() => {
  const {el, fmt, pct, palette, panel, cards, chartBox, table, charts} = tp;
  const refreshSeconds = 15;
  let token = sessionStorage.getItem('tp-token') || '';
  let timer = null;

  class Unauthorized extends Error {}

  // A call to the daemon, relative to /ui/ (so it works behind a proxy's
  // prefix); JSON in and out.
  async function call(path, options) {
    const headers = {Accept: 'application/json'};
    if (token) headers.Authorization = 'Bearer ' + token;
    if (options && options.body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch('../' + path, {
      method: (options && options.method) || 'GET', headers, cache: 'no-store',
      body: options && options.body !== undefined ? JSON.stringify(options.body) : undefined,
    });
    if (response.status === 401) throw new Unauthorized();
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new Error((body && body.error) || response.status + ' ' + response.statusText);
    return body;
  }

  const main = el('main', {});
  const header = el('header', {class: 'top'}, el('h1', {}, 'Touchpoint'),
                    el('span', {class: 'sub', id: 'as-of'}, ''),
                    el('nav', {class: 'tabs'},
                       el('button', {id: 'refresh', onclick: () => load()}, 'Refresh'),
                       el('button', {id: 'forget-token', hidden: true, onclick: () => forget()}, 'Forget token')));
  document.body.append(header, main);

  function forget() {
    token = '';
    sessionStorage.removeItem('tp-token');
    askForToken('');
  }

  function askForToken(message) {
    clearTimeout(timer);
    const input = el('input', {type: 'password', id: 'token', autocomplete: 'off', 'aria-label': 'API token'});
    const form = el('form', {class: 'inline', id: 'token-form', onsubmit: (e) => {
      e.preventDefault();
      token = input.value.trim();
      sessionStorage.setItem('tp-token', token);
      outcomesStarted = false;
      load();
    }}, input, el('button', {class: 'act', type: 'submit'}, 'Use token'));
    main.replaceChildren(panel('This daemon needs a token',
      'auth is configured: paste one of the tokens of its token_file. It is kept for this tab only ' +
      'and sent as "Authorization: Bearer" on each call.',
      form, message ? el('p', {class: 'error', id: 'token-error'}, message) : null));
    input.focus();
  }

  function badge(state) {
    return el('span', {class: 'badge ' + state}, state);
  }

  function health(h) {
    const rows = [
      ['status', badge(h.status)],
      ['config', h.config.path + ' (sha256 ' + h.config.sha256.slice(0, 12) + '…, loaded ' + h.config.loaded_at + ')'],
      ['storage', [badge(h.storage.state), ' ' + fmt(h.storage.room_bytes) + ' bytes of room',
                   h.storage.reason ? ' · ' + h.storage.reason : '']],
      ['firing', [badge(h.firing.state), h.firing.consecutive_failures
                   ? ' ' + fmt(h.firing.consecutive_failures) + ' failures in a row: ' + h.firing.last_error : '']],
    ];
    if (h.config.last_reload) {
      rows.push(['last reload', [badge(h.config.last_reload.ok ? 'ok' : 'bad'), ' ' + h.config.last_reload.at,
                                 ...(h.config.last_reload.errors || []).map(e => el('div', {class: 'error'}, e))]]);
    }
    if (h.config.replan) {
      const r = h.config.replan;
      rows.push(['re-plan', r.state + ' · ' + fmt(r.buyers) + ' buyers, ' + fmt(r.moved) + ' moved' +
                 (r.failures ? ' · ' + r.failures + ' failures: ' + r.last_error : '')]);
    }
    return panel('Health', 'GET /healthz', el('table', {class: 'grid', id: 'health'},
      el('tbody', {}, rows.map(([k, v]) => el('tr', {}, el('th', {class: 'l'}, k), el('td', {class: 'l'}, v))))));
  }

  function sinks(status) {
    const rows = status.sinks.map(s => el('tr', {'data-sink': s.name},
      el('td', {class: 'l'}, s.name), el('td', {class: 'l'}, s.type), el('td', {class: 'l'}, badge(s.state)),
      el('td', {}, fmt(s.consecutive_failures)), el('td', {'data-field': 'outbox'}, fmt(s.outbox)),
      el('td', {'data-field': 'dead_letters'}, fmt(s.dead_letters)), el('td', {class: 'l'}, s.last_error || '')));
    const queues = status.queues.map(q => el('tr', {'data-queue': q.name},
      el('td', {class: 'l'}, q.name), el('td', {'data-field': 'messages'}, fmt(q.messages))));
    return panel('Sinks and queues', 'Push sinks: circuit state, failures in a row, the outbox waiting for ' +
                 'them and their dead letters. Embedded queues: messages waiting to be leased or acked.',
      el('div', {class: 'cols'},
         el('div', {id: 'sinks'}, rows.length ? table(['sink', 'type', 'state', 'failures', 'outbox', 'dead letters', 'last error'], rows)
                                              : el('p', {class: 'muted'}, 'No push sinks.')),
         el('div', {id: 'queues'}, queues.length ? table(['queue', 'messages'], queues) : el('p', {class: 'muted'}, 'No queues.'))));
  }

  function pending(status) {
    const p = status.pending;
    const cadences = [...new Set(p.days.flatMap(d => Object.keys(d.cadences)))].sort();
    const [box, canvas] = chartBox('pending-chart', false);
    // A slow count is given again for a while (docs/api.md): say when it was made.
    const older = Date.parse(status.as_of) - Date.parse(p.days_as_of) >= 1000;
    const node = panel('Pending touchpoints, next 30 days',
      'By the day (' + p.timezone + ') each may next fire, stacked by cadence. Due before today: ' +
      fmt(p.before) + ' (firing, or held by the send window or a cap); after 30 days: ' + fmt(p.later) + '.' +
      (older ? ' The days, before today and after them, as counted at ' + p.days_as_of + '.' : ''),
      cards([['pending in all', p.total, 'total'], ['due before today', p.before, 'before'],
             ['next 30 days', p.days.reduce((a, d) => a + d.total, 0), 'days'], ['later', p.later, 'later']]),
      box);
    queueMicrotask(() => {
      if (charts.pending) charts.pending.destroy();
      charts.pending = new Chart(canvas, {
        type: 'bar',
        data: {labels: p.days.map(d => d.day),
               datasets: cadences.map((c, i) => ({label: c, data: p.days.map(d => d.cadences[c] || 0),
                                                   backgroundColor: palette[i % palette.length]}))},
        options: {scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true}},
                  plugins: {legend: {position: 'bottom'}}, interaction: {mode: 'index', intersect: false}},
      });
    });
    return node;
  }

  function deadLetters(list) {
    const replay = async (what, body, path) => {
      if (!window.confirm('Replay ' + what + '? ' + 'Each goes back to its outbox, due now, and is delivered again.')) return;
      try {
        const r = await call(path, {method: 'POST', body});
        setNote(r.waiting ? what + ' waits in its outbox already' : 'replayed ' + r.replayed);
        load();
      } catch (e) {
        if (e instanceof Unauthorized) return askForToken('The token was refused.');
        setNote('replay failed: ' + e.message, true);
      }
    };
    const rows = list.dead_letters.map(d => el('tr', {'data-dead-letter': d.id},
      el('td', {}, d.id), el('td', {class: 'l'}, d.sink), el('td', {class: 'l'}, d.touchpoint_id),
      el('td', {}, d.attempts), el('td', {class: 'l'}, d.dead_at), el('td', {class: 'l'}, d.last_error),
      el('td', {}, el('button', {class: 'act secondary', 'data-replay': d.id,
                                 onclick: () => replay('dead letter ' + d.id + ' (' + d.sink + ')', undefined,
                                                       'v1/dead-letters/' + d.id + '/replay')}, 'Replay'))));
    return panel('Dead letters', 'Events a push sink gave up on, oldest first (the first 100). Replaying asks first.',
      rows.length ? [table(['id', 'sink', 'touchpoint', 'attempts', 'dead at', 'last error', ''], rows),
                     el('p', {}, el('button', {class: 'act', id: 'replay-all',
                       onclick: () => replay('every dead letter', {all: true}, 'v1/dead-letters/replay')}, 'Replay all'))]
                   : el('p', {class: 'muted', id: 'no-dead-letters'}, 'None.'));
  }

  // The outcomes panel stays across refreshes: a report reads the whole
  // database (a second or so at a million purchases) and the daemon makes
  // one at a time, so it is loaded at start, every 5 minutes and on demand,
  // and a refused one (503, another report under way) keeps the last.
  const outcomesBody = el('div', {id: 'outcomes'}, el('p', {class: 'muted'}, 'Loading…'));
  const outcomesNote = el('span', {class: 'muted', id: 'outcomes-note'}, '');
  const outcomesPanel = panel('Outcomes', 'GET /v1/reports/outcomes by tier and by topic, over all purchases ' +
    '(docs/outcomes.md); refreshed every 5 minutes.',
    el('p', {}, el('button', {class: 'act secondary', id: 'outcomes-refresh', onclick: () => loadOutcomes()},
                  'Refresh outcomes'), ' ', outcomesNote),
    outcomesBody);
  let outcomesTimer = null;
  async function loadOutcomes() {
    clearTimeout(outcomesTimer);
    outcomesTimer = setTimeout(loadOutcomes, 300 * 1000);
    try {
      // One after the other: the daemon computes one report at a time.
      const byTier = await call('v1/reports/outcomes?by=tier');
      const byTopic = await call('v1/reports/outcomes?by=topic');
      outcomesBody.replaceChildren(outcomes(byTier, byTopic));
      outcomesNote.textContent = 'as of ' + byTier.as_of;
      document.body.dataset.outcomesLoaded = String(Date.now());
    } catch (e) {
      if (e instanceof Unauthorized) return askForToken('The token was refused.');
      outcomesNote.textContent = 'not refreshed: ' + e.message;
    }
  }

  function outcomes(byTier, byTopic) {
    const tiers = byTier.rows.map(r => el('tr', {'data-key': r.key},
      el('td', {class: 'l'}, r.key), el('td', {}, fmt(r.purchases)), el('td', {}, pct(r.trust_rate)),
      el('td', {}, pct(r.repurchase_rate)), el('td', {}, fmt(r.open))));
    const topics = byTopic.rows.map(r => el('tr', {'data-key': r.key},
      el('td', {class: 'l'}, r.key), el('td', {}, fmt(r.fired)), el('td', {}, fmt(r.engaged)),
      el('td', {}, pct(r.engagement_rate)), el('td', {}, fmt(r.repurchases))));
    return el('div', {class: 'cols'},
         el('div', {id: 'outcomes-tier'}, table(['tier', 'purchases', 'trust rate', 'repurchase rate', 'open'], tiers)),
         el('div', {id: 'outcomes-topic'}, table(['topic', 'fired', 'engaged', 'engagement', 'repurchases'], topics)));
  }

  function buyerLookup() {
    const input = el('input', {type: 'text', id: 'buyer-id', placeholder: 'buyer id', 'aria-label': 'buyer id'});
    const out = el('div', {id: 'buyer'});
    const form = el('form', {class: 'inline', id: 'buyer-form', onsubmit: async (e) => {
      e.preventDefault();
      const id = input.value.trim();
      if (!id) return;
      out.replaceChildren(el('p', {class: 'muted'}, 'Looking up ' + id + '…'));
      try {
        out.replaceChildren(timeline(await call('v1/buyers/' + encodeURIComponent(id))));
      } catch (err) {
        if (err instanceof Unauthorized) return askForToken('The token was refused.');
        out.replaceChildren(el('p', {class: 'error'}, err.message));
      }
    }}, input, el('button', {class: 'act', type: 'submit'}, 'Show timeline'));
    return panel('Buyer', 'The last 100 purchases and their touchpoints, each with its status, why, and its history.', form, out);
  }

  function timeline(b) {
    const items = [];
    for (const p of b.purchases) {
      items.push([Date.parse(p.purchased_at), el('li', {class: 'purchase'},
        el('div', {class: 'when'}, p.purchased_at),
        el('div', {}, 'bought ' + p.quantity + ' × ' + p.product + ' (order ' + p.order_id + ', tier ' + p.tier + ')'))]);
    }
    for (const t of b.touchpoints) {
      const when = t.fire_at || t.next_at || t.due_at;
      items.push([Date.parse(when), el('li', {'data-touchpoint': t.id},
        el('div', {class: 'when'}, t.fire_at ? t.fire_at + ' (due ' + t.due_at + ')' : 'due ' + t.due_at +
           (t.next_at && t.next_at !== t.due_at ? ', next ' + t.next_at : '')),
        el('div', {}, t.cadence + ' / ' + t.step + ' ', badge(t.status)),
        t.reason ? el('div', {class: 'why'}, t.reason) : null,
        (t.history || []).length ? el('div', {class: 'why'}, t.history.map(h => h.at + ' ' + h.status + (h.reason ? ': ' + h.reason : '')).join(' · ')) : null)]);
    }
    items.sort((x, y) => x[0] - y[0]);
    return el('div', {class: 'journey', 'data-buyer': b.buyer_id},
      el('h3', {}, b.buyer_id + ' ', el('span', {class: 'muted'}, '(' + b.tier + (b.opted_out ? ', opted out' : '') + ')')),
      b.earlier_purchases > 0 ? el('p', {class: 'sub'}, 'The last ' + b.purchases.length + ' purchases; ' +
        b.earlier_purchases + ' earlier ones and their touchpoints are not shown.') : null,
      el('ol', {class: 'timeline'}, items.map(i => i[1])));
  }

  function setNote(text, bad) {
    const note = document.getElementById('as-of');
    note.textContent = text;
    note.className = bad ? 'sub error' : 'sub';
  }

  let lookup = null;  // kept across refreshes, with what it shows
  let outcomesStarted = false;
  async function load() {
    clearTimeout(timer);
    try {
      const [h, status, dead] = await Promise.all([
        call('healthz'), call('v1/status'), call('v1/dead-letters?limit=100')]);
      lookup = lookup || buyerLookup();
      main.replaceChildren(health(h), sinks(status), pending(status), deadLetters(dead),
                           outcomesPanel, lookup);
      if (!outcomesStarted) {
        outcomesStarted = true;
        loadOutcomes();
      }
      document.getElementById('forget-token').hidden = !token;
      setNote('as of ' + status.as_of + ' · refreshed every ' + refreshSeconds + ' s');
      document.body.dataset.loaded = String(Date.now());
      timer = setTimeout(load, refreshSeconds * 1000);
    } catch (e) {
      if (e instanceof Unauthorized) return askForToken(token ? 'The token was refused.' : '');
      setNote('could not load: ' + e.message, true);
      timer = setTimeout(load, refreshSeconds * 1000);
    }
  }
  load();
})();
