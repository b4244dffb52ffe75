// attnmap batch index: one row per item, filtered, sorted and paged in the browser (only one page
// of rows is ever in the DOM, so 10,000+ items stay fast).
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const data = JSON.parse($('attnmap-index').textContent);
  const C = {}; data.columns.forEach((name, i) => { C[name] = i; });
  const items = data.items;
  const lower = items.map((it) => [it[C.id], it[C.image], it[C.prompt], it[C.answer], it[C.error]].join('\n').toLowerCase());
  const state = { filter: '', status: '', sortKey: null, sortDir: 1, page: 0 };
  let view = items.map((_, i) => i);
  $('title').textContent = data.title;
  document.title = data.title;

  function recompute() {
    const f = state.filter.toLowerCase();
    view = [];
    for (let i = 0; i < items.length; i++) {
      if (state.status && items[i][C.status] !== state.status) continue;
      if (f && !lower[i].includes(f)) continue;
      view.push(i);
    }
    if (state.sortKey) {
      const k = C[state.sortKey], dir = state.sortDir;
      const numeric = state.sortKey === 'probability';
      const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
      view.sort((a, b) => {
        const x = items[a][k], y = items[b][k];
        const c = numeric ? x - y : collator.compare(String(x), String(y));
        return c * dir || a - b;
      });
    }
    state.page = Math.min(state.page, Math.max(0, Math.ceil(view.length / data.page_size) - 1));
    render();
  }

  function cell(tr, text, cls) {
    const td = tr.insertCell();
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function render() {
    const tbody = $('items').tBodies[0];
    tbody.textContent = '';
    const from = state.page * data.page_size;
    const to = Math.min(view.length, from + data.page_size);
    for (let v = from; v < to; v++) {
      const it = items[view[v]];
      const tr = tbody.insertRow();
      tr.dataset.index = String(view[v]);
      const thumb = tr.insertCell();
      thumb.className = 'thumb';
      if (it[C.thumbnail]) {
        const img = document.createElement('img');
        img.loading = 'lazy';
        img.alt = '';
        img.src = it[C.thumbnail];
        thumb.appendChild(img);
      }
      const idCell = tr.insertCell();
      if (it[C.viewer]) {
        const a = document.createElement('a');
        a.href = it[C.viewer];
        a.textContent = it[C.id];
        idCell.appendChild(a);
      } else {
        idCell.textContent = it[C.id];
      }
      const path = document.createElement('div');
      path.className = 'path';
      path.textContent = it[C.image];
      idCell.appendChild(path);
      cell(tr, it[C.prompt], 'prompt');
      cell(tr, it[C.answer]);
      cell(tr, it[C.probability] >= 0 ? it[C.probability].toFixed(3) : '');
      cell(tr, it[C.status], 'status-' + it[C.status]);
      cell(tr, it[C.error], 'err');
    }
    const pages = Math.max(1, Math.ceil(view.length / data.page_size));
    $('count').textContent = view.length + ' of ' + items.length + ' items';
    $('page').textContent = 'page ' + (state.page + 1) + ' / ' + pages;
    $('prev').disabled = state.page === 0;
    $('next').disabled = state.page >= pages - 1;
    for (const th of document.querySelectorAll('#items th')) {
      th.classList.toggle('sorted-asc', th.dataset.key === state.sortKey && state.sortDir > 0);
      th.classList.toggle('sorted-desc', th.dataset.key === state.sortKey && state.sortDir < 0);
    }
  }

  let debounce = null;
  $('filter').addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { state.filter = $('filter').value; state.page = 0; recompute(); }, 120);
  });
  $('status').addEventListener('change', () => { state.status = $('status').value; state.page = 0; recompute(); });
  $('prev').addEventListener('click', () => { state.page = Math.max(0, state.page - 1); render(); });
  $('next').addEventListener('click', () => { state.page += 1; render(); });
  for (const th of document.querySelectorAll('#items th')) {
    th.addEventListener('click', () => {
      const key = th.dataset.key === 'thumbnail' ? 'image' : th.dataset.key;
      if (state.sortKey === key) state.sortDir = -state.sortDir; else { state.sortKey = key; state.sortDir = 1; }
      recompute();
    });
  }
  // Read-only test hook (docs/viewer.md).
  window.attnmapIndex = {
    state: () => Object.assign({ shown: view.length, total: items.length, pageSize: data.page_size }, state),
    visibleIds: () => Array.from($('items').tBodies[0].rows, (tr) => items[+tr.dataset.index][C.id]),
  };
  recompute();
  window.attnmapIndex.ready = true;
})();
