// attnmap viewer: decodes the inline data (docs/viewer.md) and draws the heatmap, the per-layer
// summary and the text self-attention. No network: everything it reads is in this document.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const hook = { ready: false, error: null };
  window.attnmapViewer = hook;

  function fail(message) {
    hook.error = String(message);
    const box = $('error');
    box.textContent = 'The viewer could not start: ' + message;
    box.hidden = false;
  }

  // ---- colormaps: 256-entry lookup tables from evenly spaced stops ----
  const STOPS = {
    jet: ['#000080', '#0000ff', '#0080ff', '#00ffff', '#80ff80', '#ffff00', '#ff8000', '#ff0000', '#800000'],
    viridis: ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'],
    turbo: ['#30123b', '#4145ab', '#4675ed', '#39a2fc', '#1bcfd4', '#24eca6', '#61fc6c', '#a4fc3b', '#d1e834',
      '#f3c63a', '#fe9b2d', '#f36315', '#d93806', '#b11901', '#7a0403'],
    inferno: ['#000004', '#1b0c41', '#4a0c6b', '#781c6d', '#a52c60', '#cf4446', '#ed6925', '#fb9b06', '#f7d13d', '#fcffa4'],
    gray: ['#000000', '#ffffff'],
  };
  const LUTS = {};
  for (const name of Object.keys(STOPS)) {
    const stops = STOPS[name].map((h) => [1, 3, 5].map((i) => parseInt(h.substr(i, 2), 16)));
    const lut = new Uint8Array(256 * 3);
    for (let i = 0; i < 256; i++) {
      const x = (i / 255) * (stops.length - 1);
      const k = Math.min(Math.floor(x), stops.length - 2);
      const f = x - k;
      for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(stops[k][c] * (1 - f) + stops[k + 1][c] * f);
    }
    LUTS[name] = lut;
  }

  function base64Bytes(text) {
    const bin = atob(text.trim());
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function inflate(bytes) {
    if (typeof DecompressionStream === 'undefined') throw new Error('this browser lacks DecompressionStream (Chromium 80+, Firefox 113+, Safari 16.4+)');
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return '–';
    if (v === 0) return '0';
    const a = Math.abs(v);
    return a >= 0.01 && a < 1000 ? v.toFixed(4) : v.toExponential(3);
  }

  function showToken(t) {
    if (t === '') return '∅';
    return t.replace(/\n/g, '↵').replace(/\t/g, '⇥').replace(/\r/g, '␍');
  }

  async function start() {
    const meta = JSON.parse($('attnmap-meta').textContent);
    let payload = base64Bytes($('attnmap-data').textContent);
    if (meta.compression === 'deflate') payload = await inflate(payload);
    const buffer = payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength);
    const block = (name) => {
      const b = meta.layout[name];
      if (!b) return null;
      const n = b.shape.reduce((a, x) => a * x, 1);
      if (b.dtype === 'f32') return new Float32Array(buffer, b.offset, n);
      return b.dtype === 'i32' ? new Int32Array(buffer, b.offset, n) : new Uint8Array(buffer, b.offset, n);
    };
    const L = meta.layers.length, H = meta.heads, S = meta.tokens.length;
    const [MH, MW] = meta.grid;
    // A video has T temporal patches, each an MH x MW grid (P tokens); its span is VP = T * P tokens,
    // t-major. An image is the case T = 1. Grid t starts at token FS[t]: right after grid t-1, or later
    // when the prompt writes text between them (Qwen3-VL's timestamps).
    const T = meta.video ? meta.video.frames : 1;
    const P = MH * MW, VP = T * P, IS = meta.image_start, Q = meta.query_positions.length;
    const FS = meta.frame_starts || Array.from({ length: T }, (_, t) => IS + t * P);
    const frameOf = new Int32Array(S).fill(-1);  // the grid holding each token, -1 for text
    FS.forEach((start, t) => frameOf.fill(t, start, start + P));
    const maps = block('maps');
    const groups = { u8: block('groups'), scale: block('groups_scale'), mass: block('groups_image_mass'), G: meta.groups.length, slots: H + 2 };
    const queries = { u8: block('queries'), scale: block('queries_scale'), mass: block('queries_image_mass'),
      slots: meta.layout.queries ? meta.layout.queries.shape[1] : 0 };

    // The pictures under the heatmap: the image, or one per temporal patch (null where missing).
    async function picture(id) {
      const el = $(id);
      const text = el ? el.textContent.trim() : '';
      if (!text) return null;
      try {
        return await createImageBitmap(new Blob([base64Bytes(text)], { type: 'image/jpeg' }));
      } catch (e) {
        return null;
      }
    }
    const pictures = [];
    if (meta.video) {
      for (let t = 0; t < T; t++) pictures.push(await picture('attnmap-frame-' + t));
    } else {
      pictures.push(await picture('attnmap-image'));
    }
    const image = pictures.find((p) => p) || null;  // sizes the canvas

    // ---- header ----
    $('title').textContent = meta.title;
    for (const line of meta.metadata) {
      const li = document.createElement('li');
      li.textContent = line;
      $('metadata').appendChild(li);
    }
    if (meta.notes.length) {
      $('notes').textContent = meta.notes.join(' ');
      $('notes').hidden = false;
    }

    // ---- decoding rows ----
    const slotOf = (head) => (head === 'mean' ? 0 : head === 'max' ? 1 : 2 + head);
    // A row's scales: one per temporal patch of the visual span (one for an image), then the text's.
    function decode(set, index) {
      const out = new Float32Array(S);
      const scales = set.scale.subarray(index * (T + 1), (index + 1) * (T + 1));
      const base = index * S;
      for (let k = 0; k < S; k++) {
        const scale = frameOf[k] >= 0 ? scales[frameOf[k]] : scales[T];
        out[k] = set.u8[base + k] * scale;
      }
      return out;
    }
    // The full row (float32 [S]) of (layer, head, query), or null when this page does not store it.
    function row(l, head, query) {
      const slot = slotOf(head);
      if (query.startsWith('g:')) {
        if (!groups.u8) return null;
        const g = +query.slice(2);
        return { values: decode(groups, (l * groups.slots + slot) * groups.G + g), mass: groups.mass[(l * groups.slots + slot) * groups.G + g] };
      }
      const q = +query.slice(2);
      if (!queries.u8 || slot >= queries.slots) return null;
      const i = (l * queries.slots + slot) * Q + q;
      return { values: decode(queries, i), mass: queries.mass[i] };
    }
    const promptGroup = meta.groups.findIndex((g) => g.name === 'prompt');
    // The map of the whole visual span (float32 [T * P], t-major) for (layer, head, query); the exact
    // maps.npy values for heads mean over the prompt tokens.
    function imageMap(l, head, query) {
      if (head === 'mean' && query === 'g:' + promptGroup) return maps.subarray(l * VP, (l + 1) * VP);
      const r = row(l, head, query);
      if (!r) return null;
      if (FS[T - 1] === IS + (T - 1) * P) return r.values.subarray(IS, IS + VP);
      const out = new Float32Array(VP);
      FS.forEach((start, t) => out.set(r.values.subarray(start, start + P), t * P));
      return out;
    }

    // ---- controls ----
    const state = {
      layer: Math.max(0, Math.min(L - 1, meta.initial.layer_index)),
      head: 'mean',
      query: 'g:' + Math.max(0, promptGroup),
      opacity: meta.initial.opacity,
      colormap: LUTS[meta.initial.colormap] ? meta.initial.colormap : 'jet',
      scale: 'layer',
      frame: 0,  // the temporal patch shown (always 0 for an image)
    };
    const layerInput = $('layer');
    layerInput.max = String(L - 1);
    layerInput.value = String(state.layer);
    const headSelect = $('heads');
    const addOption = (select, value, text) => {
      const o = document.createElement('option');
      o.value = value;
      o.textContent = text;
      select.appendChild(o);
    };
    addOption(headSelect, 'mean', 'mean of heads');
    addOption(headSelect, 'max', 'max of heads');
    for (let h = 0; h < H; h++) addOption(headSelect, String(h), 'head ' + h);
    const querySelect = $('query');
    meta.groups.forEach((g, gi) => {
      addOption(querySelect, 'g:' + gi, 'all ' + g.name + ' tokens (' + g.queries.length + ')');
      g.queries.forEach((q, k) => {
        addOption(querySelect, 'q:' + q, '  ' + g.name + ' ' + (k + 1) + ': ' + showToken(meta.tokens[meta.query_positions[q]]));
      });
    });
    querySelect.value = state.query;
    $('opacity').value = String(state.opacity);
    $('colormap').value = state.colormap;
    const frameInput = $('frame');
    if (meta.video) {
      frameInput.max = String(T - 1);
      frameInput.value = '0';
      $('frame-controls').hidden = false;
      $('scale').options[0].textContent = 'per layer (all frames)';
      $('scale').options[1].textContent = 'shared by all layers and frames';
      $('text-legend').textContent = 'Text columns share one colour scale (square root); the green-bordered ' +
        'video column, the total over the whole video span (every frame), has its own. Hover a cell for its value.';
    }

    // ---- the heatmap ----
    const canvas = $('map');
    const ctx = canvas.getContext('2d');
    // Small images are drawn larger and large ones smaller: the longest side is 560 CSS pixels.
    const longest = 560 * Math.min(2, window.devicePixelRatio || 1);
    const iw = image ? image.width : MW * 32, ih = image ? image.height : MH * 32;  // every frame has one size
    const fit = longest / Math.max(iw, ih);
    canvas.width = Math.max(1, Math.round(iw * fit));
    canvas.height = Math.max(1, Math.round(ih * fit));
    canvas.style.width = Math.round((canvas.width / longest) * 560) + 'px';
    const cells = document.createElement('canvas');
    cells.width = MW;
    cells.height = MH;
    const cellsCtx = cells.getContext('2d');
    let current = null, range = [0, 0];  // the shown grid (one frame of a video) and its colour range

    function rangeOf(values, acc) {
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (v < acc[0]) acc[0] = v;
        if (v > acc[1]) acc[1] = v;
      }
      return acc;
    }

    // The heatmap, its colour bar and labels; a frame change redraws only this.
    function drawMap() {
      const span = imageMap(state.layer, state.head, state.query);
      current = span ? span.subarray(state.frame * P, (state.frame + 1) * P) : null;
      const picture = pictures[state.frame];
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      if (picture) ctx.drawImage(picture, 0, 0, canvas.width, canvas.height);
      else { ctx.fillStyle = '#808080'; ctx.fillRect(0, 0, canvas.width, canvas.height); }
      const unavailable = $('unavailable');
      if (!current) {
        range = [0, 0];
        unavailable.textContent = 'This combination of heads and query is not stored in this page (see the note at the top).';
        unavailable.hidden = false;
      } else {
        unavailable.hidden = true;
        // Both scales span every frame of a video, so which frame holds the attention shows.
        if (state.scale === 'shared') {
          range = [Infinity, -Infinity];
          for (let l = 0; l < L; l++) rangeOf(imageMap(l, state.head, state.query), range);
        } else {
          range = rangeOf(span, [Infinity, -Infinity]);
        }
        const [lo, hi] = range;
        const lut = LUTS[state.colormap];
        const img = cellsCtx.createImageData(MW, MH);
        for (let i = 0; i < P; i++) {
          const t = hi > lo ? (current[i] - lo) / (hi - lo) : 0;
          const c = Math.max(0, Math.min(255, Math.round(t * 255)));
          img.data[i * 4] = lut[c * 3];
          img.data[i * 4 + 1] = lut[c * 3 + 1];
          img.data[i * 4 + 2] = lut[c * 3 + 2];
          img.data[i * 4 + 3] = 255;
        }
        cellsCtx.putImageData(img, 0, 0);
        ctx.save();
        ctx.globalAlpha = state.opacity;
        ctx.imageSmoothingEnabled = false;
        ctx.drawImage(cells, 0, 0, canvas.width, canvas.height);
        ctx.restore();
      }
      $('layer-label').textContent = 'layer ' + meta.layers[state.layer] + '  (' + (state.layer + 1) + '/' + L + ')';
      if (meta.video) {
        $('frame-label').textContent = meta.video.labels[state.frame] + '  (' + (state.frame + 1) + '/' + T + ')';
      }
      drawColorbar();
    }

    function draw() {
      drawMap();
      drawVision();
      drawChart();
      drawText();
    }

    function drawColorbar() {
      paintColorbar($('colorbar'));
      $('cb-lo').textContent = current ? fmt(range[0]) : '';
      const over = state.scale === 'shared' ? (meta.video ? ' (all layers, all frames)' : ' (all layers)')
        : (meta.video ? ' (this layer, all frames)' : ' (this layer)');
      $('cb-hi').textContent = current ? fmt(range[1]) + over : '';
    }

    function paintColorbar(bar) {
      const c = bar.getContext('2d');
      const img = c.createImageData(256, 1);
      const lut = LUTS[state.colormap];
      for (let i = 0; i < 256; i++) {
        img.data.set([lut[i * 3], lut[i * 3 + 1], lut[i * 3 + 2], 255], i * 4);
      }
      const row1 = document.createElement('canvas');
      row1.width = 256; row1.height = 1;
      row1.getContext('2d').putImageData(img, 0, 0);
      c.imageSmoothingEnabled = false;
      c.drawImage(row1, 0, 0, bar.width, bar.height);
    }

    // ---- hover ----
    const tooltip = $('tooltip');
    function cellAt(event) {
      const rect = canvas.getBoundingClientRect();
      const c = Math.floor(((event.clientX - rect.left) / rect.width) * MW);
      const r = Math.floor(((event.clientY - rect.top) / rect.height) * MH);
      return r >= 0 && r < MH && c >= 0 && c < MW ? [r, c] : null;
    }
    canvas.addEventListener('mousemove', (event) => {
      const cell = cellAt(event);
      if (!cell || !current) { tooltip.hidden = true; return; }
      const [r, c] = cell;
      const text = 'row ' + r + ', col ' + c + ': ' + fmt(current[r * MW + c]);
      tooltip.textContent = (meta.video ? 't' + state.frame + ', ' : '') + text;
      tooltip.dataset.row = r;
      tooltip.dataset.col = c;
      tooltip.dataset.frame = state.frame;
      tooltip.dataset.value = String(current[r * MW + c]);
      const wrap = canvas.getBoundingClientRect();
      tooltip.style.left = (event.clientX - wrap.left + 12) + 'px';
      tooltip.style.top = (event.clientY - wrap.top + 12) + 'px';
      tooltip.hidden = false;
      const where = meta.video ? meta.video.labels[state.frame] + ', ' : '';
      $('hover-readout').textContent = 'layer ' + meta.layers[state.layer] + ', ' + where + text +
        ' (token ' + (FS[state.frame] + r * MW + c) + ')';
    });
    canvas.addEventListener('mouseleave', () => { tooltip.hidden = true; });

    // ---- per-layer summary ----
    const pred = $('prediction');
    const parts = [];
    if (meta.next_token !== '') {
      parts.push('Next token: “' + meta.next_token + '”' + (meta.next_token_probability >= 0 ? ', p = ' + meta.next_token_probability.toFixed(3) : ''));
    }
    if (meta.answer !== '') parts.push('Answer: ' + meta.answer);
    pred.textContent = parts.join(' · ');

    const chart = $('chart');
    function drawChart() {
      const c = chart.getContext('2d');
      const w = chart.width, h = chart.height, pad = { l: 52, r: 52, t: 10, b: 30 };
      c.clearRect(0, 0, w, h);
      const xs = (i) => pad.l + (L === 1 ? (w - pad.l - pad.r) / 2 : (i / (L - 1)) * (w - pad.l - pad.r));
      const series = [
        { key: 'image_mass', color: '#2563eb', side: 'l' },
        { key: 'entropy', color: '#e07b00', side: 'r' },
      ];
      c.strokeStyle = '#ccc';
      c.strokeRect(pad.l, pad.t, w - pad.l - pad.r, h - pad.t - pad.b);
      c.fillStyle = '#6b6b70';
      c.font = '11px system-ui, sans-serif';
      for (const s of series) {
        const vals = meta.layer_summary.map((x) => x[s.key]);
        let lo = Math.min(...vals), hi = Math.max(...vals);
        const margin = (hi - lo) * 0.1 || Math.abs(hi) * 0.1 || 1;
        lo -= margin; hi += margin;
        const ys = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * (h - pad.t - pad.b);
        c.strokeStyle = s.color;
        c.lineWidth = 2;
        c.beginPath();
        vals.forEach((v, i) => (i ? c.lineTo(xs(i), ys(v)) : c.moveTo(xs(i), ys(v))));
        c.stroke();
        c.fillStyle = s.color;
        vals.forEach((v, i) => { c.beginPath(); c.arc(xs(i), ys(v), 2.5, 0, 7); c.fill(); });
        c.textAlign = s.side === 'l' ? 'right' : 'left';
        const x = s.side === 'l' ? pad.l - 4 : w - pad.r + 4;
        c.fillText(fmt(hi), x, pad.t + 9);
        c.fillText(fmt(lo), x, h - pad.b);
        c.fillText(fmt(vals[state.layer]), x, Math.max(pad.t + 24, Math.min(h - pad.b - 14, ys(vals[state.layer]) + 4)));
      }
      c.fillStyle = '#6b6b70';
      c.textAlign = 'center';
      const step = Math.max(1, Math.ceil(L / 10));
      for (let i = 0; i < L; i += step) c.fillText(String(meta.layers[i]), xs(i), h - 12);
      c.fillText('layer', (pad.l + w - pad.r) / 2, h - 1);
      c.strokeStyle = 'rgba(0,0,0,.5)';
      c.lineWidth = 1;
      c.setLineDash([4, 3]);
      c.beginPath();
      c.moveTo(xs(state.layer), pad.t);
      c.lineTo(xs(state.layer), h - pad.b);
      c.stroke();
      c.setLineDash([]);
    }
    chart.addEventListener('click', (event) => {
      const rect = chart.getBoundingClientRect();
      const x = ((event.clientX - rect.left) / rect.width) * chart.width;
      const i = Math.round(((x - 52) / (chart.width - 104)) * (L - 1));
      setLayer(Math.max(0, Math.min(L - 1, i)));
    });

    // ---- text self-attention ----
    const columns = [];  // {label, role, position, image}
    for (let k = 0; k < S; k++) {
      if (meta.roles[k] === 'image') {
        if (k === IS) {
          const label = (meta.video ? '[video ×' : '[image ×') + VP + ']';
          columns.push({ label, role: 'image', position: k, image: true });
        }
        continue;
      }
      columns.push({ label: showToken(meta.tokens[k]), role: meta.roles[k], position: k, image: false });
    }
    let textValues = null;  // [Q][columns] for the current layer and head, or null
    const matrix = $('text-matrix');
    let table = null, cellRows = null;  // built once; a redraw only recolours the cells
    function buildTable() {
      table = document.createElement('table');
      const thead = table.createTHead().insertRow();
      thead.appendChild(document.createElement('th'));
      columns.forEach((col) => {
        const th = document.createElement('th');
        th.textContent = col.label;
        th.className = 'role-' + col.role;
        th.title = (col.image && meta.video ? 'video' : col.role) + ' token ' + col.position +
          (col.image ? ' … ' + (FS[T - 1] + P - 1) : '');
        thead.appendChild(th);
      });
      const tbody = table.createTBody();
      cellRows = [];
      for (let q = 0; q < Q; q++) {
        const tr = tbody.insertRow();
        const pos = meta.query_positions[q];
        const th = document.createElement('th');
        th.textContent = showToken(meta.tokens[pos]);
        th.className = 'role-' + meta.roles[pos];
        th.title = meta.roles[pos] + ' token ' + pos;
        tr.appendChild(th);
        const tds = [];
        columns.forEach((col, ci) => {
          const td = tr.insertCell();
          td.dataset.q = q;
          td.dataset.c = ci;
          if (col.image) td.className = 'image-col';
          tds.push(td);
        });
        cellRows.push({ tr, tds });
      }
      // Titles are made when hovered: one listener instead of one string per cell and redraw.
      table.addEventListener('mouseover', (event) => {
        const td = event.target.closest('td');
        if (!td || !textValues) return;
        const q = +td.dataset.q, ci = +td.dataset.c;
        td.title = showToken(meta.tokens[meta.query_positions[q]]) + ' → ' + columns[ci].label + ': ' + fmt(textValues[q][ci]);
      });
    }
    function drawText() {
      const rows = [];
      for (let q = 0; q < Q; q++) {
        const r = row(state.layer, state.head, 'q:' + q);
        if (!r) { rows.length = 0; break; }
        rows.push(columns.map((col) => (col.image ? r.mass : r.values[col.position])));
      }
      const headText = state.head === 'mean' ? 'mean of heads' : state.head === 'max' ? 'max of heads' : 'head ' + state.head;
      $('text-caption').textContent = 'layer ' + meta.layers[state.layer] + ', ' + headText +
        ' — rows: query tokens, columns: text tokens (the ' + (meta.video ? 'video' : 'image') +
        ' span summed into one column)';
      if (!rows.length) {
        textValues = null;
        matrix.textContent = '';
        const p = document.createElement('p');
        p.textContent = 'Not stored in this page for ' + headText + ' (see the note at the top).';
        matrix.appendChild(p);
        return;
      }
      textValues = rows;
      if (!table) buildTable();
      if (table.parentNode !== matrix) { matrix.textContent = ''; matrix.appendChild(table); }
      // Text columns share one colour scale; the image column (a sum over the span) has its own.
      let max = 0, imageMax = 0;
      for (const r of rows) r.forEach((v, ci) => {
        if (columns[ci].image) imageMax = Math.max(imageMax, v); else max = Math.max(max, v);
      });
      const selectedGroup = state.query.startsWith('g:') ? meta.groups[+state.query.slice(2)] : null;
      rows.forEach((values, q) => {
        const { tr, tds } = cellRows[q];
        const selected = selectedGroup ? selectedGroup.queries.includes(q) : state.query === 'q:' + q;
        tr.className = selected ? 'current' : '';
        values.forEach((v, ci) => {
          const image = columns[ci].image;
          const m = image ? imageMax : max;
          const t = m > 0 ? Math.sqrt(Math.max(0, v) / m) : 0;
          tds[ci].style.backgroundColor = image
            ? 'rgb(' + Math.round(255 - 245 * t) + ',' + Math.round(255 - 130 * t) + ',' + Math.round(255 - 205 * t) + ')'
            : 'rgb(' + Math.round(255 - 218 * t) + ',' + Math.round(255 - 156 * t) + ',' + Math.round(255 - 20 * t) + ')';
        });
      });
    }

    // ---- the vision tower (--vision-blocks; docs/viewer.md, "Vision tower") ----
    // One map per requested block on the unmerged patch grid (VT x VH x VW patches), drawn over the
    // same picture as the decoder's map (the current frame of a video), with the main map's colormap,
    // opacity and scale select (per block and frame, or shared); the query patches outlined; a
    // windowed block's window borders.
    const V = meta.vision || null;
    const vis = { block: 0, current: null, range: [0, 0], bordersDrawn: false };
    let drawVision = () => {};
    if (V) {
      const [VT, VH, VW] = V.grid;
      const VB = V.blocks.length, VG = VH * VW;
      // Decoded once: float32 [VB, VT, VH, VW]; each (block, frame) has its own 8-bit scale.
      const vScale = block('vision_scale'), vU8 = block('vision_maps'), vWin = block('vision_windows');
      const vMaps = new Float32Array(VB * VT * VG);
      for (let i = 0; i < VB * VT; i++) {
        const sc = vScale[i];
        for (let k = 0; k < VG; k++) vMaps[i * VG + k] = vU8[i * VG + k] * sc;
      }
      const mapOf = (b, t) => vMaps.subarray((b * VT + t) * VG, (b * VT + t + 1) * VG);
      const isQuery = new Uint8Array(VT * VG);
      for (const k of V.query_patches) isQuery[k] = 1;
      // The windows a patch can receive attention from in a windowed block: those of the query
      // patches (a window never spans temporal patches); every window for the query "mean".
      const queryWindows = new Set();
      for (let k = 0; k < VT * VG; k++) {
        if (V.query_patches.length === 0 || isQuery[k]) queryWindows.add(Math.floor(k / VG) + ':' + vWin[k]);
      }
      // The tower attends within a temporal patch: a frame without query patches (text-peak on a
      // video: only the peak's frame has them) receives no attention at all.
      const queryFrames = new Set(V.query_patches.map((k) => Math.floor(k / VG)));
      const frameHasQuery = (t) => V.query_patches.length === 0 || queryFrames.has(t);
      // Per block and frame (each frame's map is its own attention: the tower never attends across
      // frames), or one range shared by every block and frame.
      const sharedRange = () => (vis.shared = vis.shared || rangeOf(vMaps, [Infinity, -Infinity]));
      vis.block = VB - 1;  // like the layers: the deepest requested block first
      $('vision-panel').hidden = false;
      document.querySelector('main').classList.add('with-vision');
      const blockInput = $('vision-block');
      blockInput.max = String(VB - 1);
      blockInput.value = String(vis.block);
      const windowsBox = $('vision-windows');
      if (!V.attention.includes('window')) windowsBox.parentNode.hidden = true;  // a model without windows
      const grain = VH + ' x ' + VW + ' patches of ' + V.patch_size + ' px' + (meta.video ? ' per frame' : '');
      $('vision-caption').textContent = '— the attention each patch receives from the query patches, on the ' + grain +
        ' (before the 2x2 merge); colormap and opacity as above' + (meta.video ? '; the frame follows the frame slider' : '');
      const q = document.createDocumentFragment();
      const nq = V.query_patches.length;
      const peak = V.query.startsWith('text-peak');
      const where = peak ? (V.query.startsWith('text-peak:') ? ' under the peak of decoder layer ' + V.query.slice(10) + '\u2019s map'
        : ' under the peak of the focus layer\u2019s map') : ' in the box';
      // a box on a video has the same patches in every frame: counted per frame
      const perFrame = meta.video && queryFrames.size === VT && nq % VT === 0;
      const count = perFrame ? nq / VT : nq;
      q.append('Query: ' + (V.query === 'mean' ? 'mean (every patch is a query)' :
        V.query + ' — ' + count + (count === 1 ? ' patch' : ' patches') + (perFrame ? ' per frame' : '') + where +
        (meta.video && !perFrame ? ' (' + (queryFrames.size === 1 ? meta.video.labels[[...queryFrames][0]].split(' · ')[0]
          : queryFrames.size + ' of ' + VT + ' frames') + ')' : '')));
      if (nq) {
        const sw = document.createElement('span');
        sw.className = 'swatch-outline';
        q.append('. ', sw, 'outlined');
      }
      if (V.attention.includes('window')) {
        const sw = document.createElement('span');
        sw.className = 'swatch-window';
        q.append(nq ? '; ' : '. ', sw, 'window borders (' + V.window_patches + 'x' + V.window_patches + ' patches, ' +
          V.window_patches * V.patch_size + ' px; smaller at the right and bottom edges)');
      }
      $('vision-query').append(q);

      const vcanvas = $('vision-map');
      const vctx = vcanvas.getContext('2d');
      // the main map's size, so the two compare side by side
      vcanvas.width = canvas.width;
      vcanvas.height = canvas.height;
      vcanvas.style.width = canvas.style.width;
      const vcells = document.createElement('canvas');
      vcells.width = VW;
      vcells.height = VH;
      const vcellsCtx = vcells.getContext('2d');
      const frameOf = () => Math.min(state.frame, VT - 1);

      drawVision = function () {
        const b = vis.block, t = frameOf();
        const windowed = V.attention[b] === 'window';
        vis.current = mapOf(b, t);
        vis.range = state.scale === 'shared' ? sharedRange().slice() : rangeOf(vis.current, [Infinity, -Infinity]);
        const [lo, hi] = vis.range;
        const picture = pictures[state.frame];
        vctx.clearRect(0, 0, vcanvas.width, vcanvas.height);
        if (picture) vctx.drawImage(picture, 0, 0, vcanvas.width, vcanvas.height);
        else { vctx.fillStyle = '#808080'; vctx.fillRect(0, 0, vcanvas.width, vcanvas.height); }
        const lut = LUTS[state.colormap];
        const img = vcellsCtx.createImageData(VW, VH);
        for (let i = 0; i < VG; i++) {
          const f = hi > lo ? (vis.current[i] - lo) / (hi - lo) : 0;
          const c = Math.max(0, Math.min(255, Math.round(f * 255)));
          img.data[i * 4] = lut[c * 3];
          img.data[i * 4 + 1] = lut[c * 3 + 1];
          img.data[i * 4 + 2] = lut[c * 3 + 2];
          img.data[i * 4 + 3] = 255;
        }
        vcellsCtx.putImageData(img, 0, 0);
        vctx.save();
        vctx.globalAlpha = state.opacity;
        vctx.imageSmoothingEnabled = false;
        vctx.drawImage(vcells, 0, 0, vcanvas.width, vcanvas.height);
        vctx.restore();
        const cw = vcanvas.width / VW, ch = vcanvas.height / VH;
        // The right and bottom side of each patch k of this frame where differs(k, its neighbour there,
        // -1 past the grid's edge) holds, as one path.
        const edges = (differs) => {
          vctx.beginPath();
          for (let r = 0; r < VH; r++) {
            for (let c = 0; c < VW; c++) {
              const k = t * VG + r * VW + c;
              if (differs(k, c + 1 < VW ? k + 1 : -1)) {
                const x = (c + 1) * cw;
                vctx.moveTo(x, r * ch); vctx.lineTo(x, (r + 1) * ch);
              }
              if (differs(k, r + 1 < VH ? k + VW : -1)) {
                const y = (r + 1) * ch;
                vctx.moveTo(c * cw, y); vctx.lineTo((c + 1) * cw, y);
              }
            }
          }
          vctx.stroke();
        };
        vis.bordersDrawn = windowed && windowsBox.checked;
        if (vis.bordersDrawn) {
          vctx.save();
          vctx.strokeStyle = 'rgba(255,255,255,0.95)';
          vctx.lineWidth = Math.max(1, Math.min(2, Math.round(cw / 8)));  // thin: the map shows through
          edges((k, next) => next >= 0 && vWin[k] !== vWin[next]);
          vctx.restore();
        }
        if (V.query_patches.length) {
          // The outline of the query patches of this frame: every side of a query patch whose
          // neighbour (or the grid's edge) is not a query patch.
          vctx.save();
          vctx.strokeStyle = '#ff00ff';
          vctx.lineWidth = Math.max(2, Math.min(4, Math.round(cw / 6)));
          vctx.lineCap = 'square';
          const out = (k, n) => isQuery[k] !== (n >= 0 ? isQuery[n] : 0);
          edges(out);
          // the grid's top and left edges (edges() draws the right and bottom side of each patch)
          vctx.beginPath();
          for (let r = 0; r < VH; r++) if (isQuery[t * VG + r * VW]) { vctx.moveTo(0, r * ch); vctx.lineTo(0, (r + 1) * ch); }
          for (let c = 0; c < VW; c++) if (isQuery[t * VG + c]) { vctx.moveTo(c * cw, 0); vctx.lineTo((c + 1) * cw, 0); }
          vctx.stroke();
          vctx.restore();
        }
        const wp = V.window_patches;
        $('vision-block-label').textContent = 'block ' + V.blocks[b] + ' · ' +
          (windowed ? 'windowed attention (' + wp + 'x' + wp + '-patch windows)' : 'full attention') +
          '  (' + (b + 1) + '/' + VB + ')' + (meta.video ? ' · ' + meta.video.labels[t].split(' · ')[0] : '');
        windowsBox.disabled = !windowed;
        $('vision-note').hidden = !windowed;
        const noQuery = $('vision-frame-note');
        noQuery.hidden = frameHasQuery(t);
        if (!frameHasQuery(t)) {
          noQuery.textContent = 'No query patch in this frame (' + meta.video.labels[t].split(' · ')[0] + '): the tower ' +
            'attends only within a frame, so this frame\u2019s map is zero.';
        }
        paintColorbar($('vision-colorbar'));
        $('vision-cb-lo').textContent = fmt(lo);
        $('vision-cb-hi').textContent = fmt(hi) + (state.scale === 'shared'
          ? (meta.video ? ' (all blocks, all frames)' : ' (all blocks)')
          : (meta.video ? ' (this block, this frame)' : ' (this block)'));
      };

      blockInput.addEventListener('input', () => { vis.block = +blockInput.value; drawVision(); });
      windowsBox.addEventListener('change', () => drawVision());
      const vtip = $('vision-tooltip');
      vcanvas.addEventListener('mousemove', (event) => {
        const rect = vcanvas.getBoundingClientRect();
        const c = Math.floor(((event.clientX - rect.left) / rect.width) * VW);
        const r = Math.floor(((event.clientY - rect.top) / rect.height) * VH);
        if (r < 0 || r >= VH || c < 0 || c >= VW) { vtip.hidden = true; return; }
        const b = vis.block, t = frameOf(), k = t * VG + r * VW + c, v = vis.current[r * VW + c];
        let text = 'block ' + V.blocks[b] + (meta.video ? ' · t' + t : '') + ' · patch (' + r + ', ' + c + ') · ' + fmt(v);
        if (V.attention[b] === 'window' && !queryWindows.has(t + ':' + vWin[k])) text += ' (outside the query\u2019s windows)';
        vtip.textContent = text;
        Object.assign(vtip.dataset, { block: V.blocks[b], frame: t, row: r, col: c, value: String(v) });
        vtip.style.left = (event.clientX - rect.left + 12) + 'px';
        vtip.style.top = (event.clientY - rect.top + 12) + 'px';
        vtip.hidden = false;
        const ps = V.patch_size;
        $('vision-readout').textContent = text + (isQuery[k] ? ', a query patch' : '') + ' — window ' + vWin[k] +
          ', pixels ' + c * ps + '–' + (c + 1) * ps + ' x ' + r * ps + '–' + (r + 1) * ps + ' of the resized image' +
          (meta.video ? ', ' + meta.video.labels[t] : '');
      });
      vcanvas.addEventListener('mouseleave', () => { vtip.hidden = true; });

      vis.hook = {
        state: () => ({ blockIndex: vis.block, block: V.blocks[vis.block], attention: V.attention[vis.block],
          windows: windowsBox.checked, bordersDrawn: vis.bordersDrawn, frame: frameOf(), range: vis.range.slice() }),
        cellValue: (r, c) => (r >= 0 && r < VH && c >= 0 && c < VW ? vis.current[r * VW + c] : null),
        currentMap: () => Array.from(vis.current),
        map: (b, t) => Array.from(mapOf(b, t)),
        windowId: (t, r, c) => vWin[t * VG + r * VW + c],
      };
    }

    // ---- wiring ----
    function setLayer(i) {
      state.layer = i;
      layerInput.value = String(i);
      draw();
    }
    layerInput.addEventListener('input', () => setLayer(+layerInput.value));
    headSelect.addEventListener('change', () => {
      state.head = headSelect.value === 'mean' || headSelect.value === 'max' ? headSelect.value : +headSelect.value;
      draw();
    });
    querySelect.addEventListener('change', () => { state.query = querySelect.value; draw(); });
    $('opacity').addEventListener('input', () => { state.opacity = +$('opacity').value; draw(); });
    $('colormap').addEventListener('change', () => { state.colormap = $('colormap').value; draw(); });
    $('scale').addEventListener('change', () => { state.scale = $('scale').value; draw(); });
    function setFrame(t) {
      state.frame = t;
      frameInput.value = String(t);
      drawMap();  // the chart and the text matrix do not depend on the frame
      drawVision();
    }
    frameInput.addEventListener('input', () => setFrame(+frameInput.value));
    let frameTimer = null;
    $('frame-play').addEventListener('click', () => {
      if (frameTimer) {
        clearInterval(frameTimer);
        frameTimer = null;
        $('frame-play').textContent = '▶ play';
        return;
      }
      $('frame-play').textContent = '❚❚ pause';
      frameTimer = setInterval(() => setFrame((state.frame + 1) % T), 500);
    });
    let timer = null;
    $('play').addEventListener('click', () => {
      if (timer) {
        clearInterval(timer);
        timer = null;
        $('play').textContent = '▶ play';
        return;
      }
      $('play').textContent = '❚❚ pause';
      timer = setInterval(() => setLayer((state.layer + 1) % L), 700);
    });

    // ---- the read-only test hook (docs/viewer.md) ----
    hook.info = { layers: meta.layers.slice(), heads: H, grid: [MH, MW], seq: S, queries: Q, detail: meta.detail,
      notes: meta.notes.slice(), groups: meta.groups.map((g) => g.name), frames: T,
      frameLabels: meta.video ? meta.video.labels.slice() : [],
      vision: V ? { blocks: V.blocks.slice(), attention: V.attention.slice(), grid: V.grid.slice(), patchSize: V.patch_size,
        windowPatches: V.window_patches, query: V.query, queryPatches: V.query_patches.slice() } : null };
    hook.state = () => ({ layerIndex: state.layer, layer: meta.layers[state.layer], head: state.head, query: state.query,
      opacity: state.opacity, colormap: state.colormap, scale: state.scale, range: range.slice(), available: !!current,
      playing: !!timer, frame: state.frame, framePlaying: !!frameTimer });
    hook.cellValue = (r, c) => (current && r >= 0 && r < MH && c >= 0 && c < MW ? current[r * MW + c] : null);
    hook.currentMap = () => (current ? Array.from(current) : null);
    hook.textColumns = () => columns.map((c) => ({ label: c.label, role: c.role, position: c.position }));
    hook.textValue = (q, col) => (textValues ? textValues[q][col] : null);
    hook.layerSummary = () => meta.layer_summary.map((x) => Object.assign({}, x));
    // The vision tower's section, or null without vision data: state(), cellValue(r, c), currentMap()
    // (the shown block and frame, decoded), map(blockIndex, t), windowId(t, r, c).
    hook.vision = V ? vis.hook : null;

    draw();
    hook.ready = true;
  }

  start().catch((e) => fail(e && e.message ? e.message : e));
})();
