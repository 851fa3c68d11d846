// Shared by Touchpoint's pages (the simulate report and the daemon's /ui):
// building the DOM from data, never from HTML strings, so that a buyer id or
// a reason is always text; and the charts' colours and defaults.
'use strict';

const tp = (() => {
  // el('td', {class: 'l', title: 'x'}, 'text', otherNode, ...)
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const number = new Intl.NumberFormat('en-US');
  function fmt(n) {
    return n === null || n === undefined ? '–' : number.format(n);
  }
  function pct(rate) {
    return rate === null || rate === undefined ? '–' : (100 * rate).toFixed(1) + '%';
  }

  const palette = ['#2f6fde', '#12b76a', '#f79009', '#7a5af8', '#ee46bc', '#06aed4',
                   '#84adff', '#a6ef67', '#fdb022', '#bdb4fe'];
  const stateColors = {fired: '#12b76a', cancelled: '#f79009', suppressed: '#fdb022',
                       skipped: '#f04438', pending: '#84adff', dead: '#912018'};

  function panel(title, note, ...children) {
    return el('section', {class: 'panel'}, el('h2', {}, title), note ? el('p', {class: 'note'}, note) : null,
              ...children);
  }
  function cards(items) {
    return el('div', {class: 'cards'},
              items.map(([k, n, id]) => el('div', {class: 'card', 'data-key': id || null},
                                           el('div', {class: 'n'}, fmt(n)), el('div', {class: 'k'}, k))));
  }
  function chartBox(id, tall) {
    const canvas = el('canvas', {id, role: 'img', 'aria-label': id});
    return [el('div', {class: tall ? 'chart-box tall' : 'chart-box'}, canvas), canvas];
  }
  function table(head, rows) {
    return el('div', {class: 'scroll'},
              el('table', {class: 'grid'},
                 el('thead', {}, el('tr', {}, head.map((h, i) => el('th', {class: i === 0 ? 'l' : null}, h)))),
                 el('tbody', {}, rows)));
  }

  // The days a load series covers, as YYYY-MM-DD labels.
  function dayLabels(firstDay, bucketDays, count) {
    const labels = [];
    if (!firstDay) return labels;
    const start = Date.parse(firstDay + 'T00:00:00Z');
    for (let i = 0; i < count; ++i) {
      labels.push(new Date(start + i * bucketDays * 86400000).toISOString().slice(0, 10));
    }
    return labels;
  }

  if (window.Chart) {
    Chart.defaults.animation = false;
    Chart.defaults.maintainAspectRatio = false;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  }
  return {el, fmt, pct, palette, stateColors, panel, cards, chartBox, table, dayLabels,
          charts: {}};
})();
window.tp = tp;
