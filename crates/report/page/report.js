// The report page of a sweep: trial table, curves per optimizer, parallel coordinates, the
// hyperparameters' importance, a slice per hyperparameter and the best trial's confusion matrix, drawn as SVG from the JSON in #sweep-data. Every name
// and value from the database goes into the page through textContent or an attribute,
// never as HTML. Served by `sweep serve`, it polls for the epochs written since it last
// looked (`?after=N`).
'use strict';
(function () {
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const embedded = JSON.parse(document.getElementById('sweep-data').textContent);
  const live = embedded.live;
  const METRIC_NAMES = {
    train_loss: 'training loss',
    val_loss: 'validation loss',
    val_acc: 'validation accuracy',
    val_f1: 'validation macro F1',
  };
  // The built-in trainer's charts; a command trial's sweep draws those of them its program
  // reports, and its objective.
  const BUILT_IN_CHARTS = ['train_loss', 'val_loss', 'val_f1'];
  const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b',
    '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

  const state = {
    key: null, sweep: '', objective: 'val_f1', minimise: false, axes: [], figureAxis: 'optimizer',
    trials: new Map(), epochs: new Map(), last: 0, confusion: null, newest: null, importance: null,
    sort: { column: 'objective', descending: null }, statusFilter: '', paramFilters: {},
    bestK: 0, selected: null, filterOptions: '',
  };

  // ---- small builders --------------------------------------------------------------------

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function valueText(v) {
    if (v === undefined || v === null) return '';
    return typeof v === 'string' ? v : JSON.stringify(v);
  }

  function fmt(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return '';
    return Number(v).toFixed(digits === undefined ? 4 : digits);
  }

  function tickText(v) {
    if (v === 0) return '0';
    const a = Math.abs(v);
    if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
    return String(Number(v.toPrecision(4)));
  }

  function paramsText(t) {
    return state.axes
      .filter((a) => a in t.params)
      .map((a) => a + '=' + valueText(t.params[a]))
      .join(' ');
  }

  function colourOf(t) {
    return PALETTE[(t.number - 1) % PALETTE.length];
  }

  // ---- the data --------------------------------------------------------------------------

  function reset() {
    state.trials = new Map();
    state.epochs = new Map();
    state.last = 0;
    state.confusion = null;
    state.newest = null;
  }

  function merge(d) {
    state.key = d.key;
    state.sweep = d.sweep;
    state.objective = d.objective;
    state.minimise = d.minimise;
    state.axes = d.axes;
    state.figureAxis = d.figure_axis;
    state.trials = new Map(d.trials.map((t) => [t.id, t]));
    for (const [trial, epoch, values] of d.epochs) {
      // A row is [trial, epoch] with each metric it has as a property: row[name].
      const row = [trial, epoch];
      d.metrics.forEach((name, i) => {
        if (values[i] !== null) row[name] = values[i];
      });
      if (!state.epochs.has(trial)) state.epochs.set(trial, new Map());
      state.epochs.get(trial).set(epoch, row);
      state.newest = row;
    }
    state.last = d.last;
    if ('confusion' in d) state.confusion = d.confusion;
    state.importance = d.importance;
  }

  // The metrics charted: the built-in ones some epoch has (all three before any epoch), then
  // the objective when it is none of them.
  function chartMetrics() {
    const seen = new Set();
    for (const rows of state.epochs.values()) {
      for (const row of rows.values()) for (const name of Object.keys(row)) seen.add(name);
    }
    const some = BUILT_IN_CHARTS.filter((name) => seen.has(name));
    const list = seen.size ? some : BUILT_IN_CHARTS.slice();
    if (!list.includes(state.objective)) list.push(state.objective);
    return list;
  }

  function epochsOf(t) {
    const rows = state.epochs.get(t.id);
    if (!rows) return [];
    return Array.from(rows.values()).sort((a, b) => a[1] - b[1]);
  }

  function epochCount() {
    let n = 0;
    for (const rows of state.epochs.values()) n += rows.size;
    return n;
  }

  function better(a, b) {
    return state.minimise ? a < b : a > b;
  }

  // A trial's objective, or for one still training, the best of its epochs so far.
  function score(t) {
    if (t.objective !== null && t.objective !== undefined) return t.objective;
    const index = state.objective;
    let best = null;
    for (const row of epochsOf(t)) {
      const v = row[index];
      if (v !== null && isFinite(v) && (best === null || better(v, best))) best = v;
    }
    return best;
  }

  function bestFirst(a, b) {
    const x = score(a);
    const y = score(b);
    if (x === null && y === null) return a.number - b.number;
    if (x === null) return 1;
    if (y === null) return -1;
    if (x === y) return a.number - b.number;
    return better(x, y) ? -1 : 1;
  }

  function filtered() {
    return Array.from(state.trials.values()).filter((t) => {
      if (state.statusFilter && t.status !== state.statusFilter) return false;
      for (const [axis, value] of Object.entries(state.paramFilters)) {
        if (value !== '' && valueText(t.params[axis]) !== value) return false;
      }
      return true;
    });
  }

  // The trials every view shows: those the filters let through, best first, the best K.
  function visibleTrials() {
    const ranked = filtered().sort(bestFirst);
    return state.bestK > 0 ? ranked.slice(0, state.bestK) : ranked;
  }

  // ---- the tooltip and the selection ------------------------------------------------------

  const tooltip = document.getElementById('tooltip');

  function showTooltip(event, lines) {
    tooltip.textContent = lines.join('\n');
    tooltip.hidden = false;
    const x = Math.min(event.clientX + 14, window.innerWidth - tooltip.offsetWidth - 4);
    const y = Math.min(event.clientY + 14, window.innerHeight - tooltip.offsetHeight - 4);
    tooltip.style.left = Math.max(0, x) + 'px';
    tooltip.style.top = Math.max(0, y) + 'px';
  }

  function hideTooltip() {
    tooltip.hidden = true;
  }

  function select(id) {
    state.selected = state.selected === id ? null : id;
    render();
  }

  function trialLines(t) {
    const lines = ['trial ' + t.number + ' (' + t.status + ')'];
    const params = paramsText(t);
    if (params) lines.push(params);
    return lines;
  }

  // ---- header, filters, table -------------------------------------------------------------

  function renderHeader() {
    document.title = 'sweep ' + state.sweep;
    document.getElementById('title').textContent = 'Sweep ' + state.sweep;
    const trials = Array.from(state.trials.values());
    const counts = {};
    for (const t of trials) counts[t.status] = (counts[t.status] || 0) + 1;
    const parts = Object.entries(counts).map(([s, n]) => n + ' ' + s);
    let text = trials.length + ' trials: ' + parts.join(', ') + '. Objective: ' + state.objective +
      (state.minimise ? ' (lower is better)' : ' (higher is better)') + '.';
    const best = trials.filter((t) => t.status === 'done').sort(bestFirst)[0];
    if (best) text += ' Best: trial ' + best.number + ' (' + paramsText(best) + '), ' + fmt(best.objective) + '.';
    document.getElementById('stats').textContent = text;
    const count = epochCount();
    const counter = document.getElementById('epoch-count');
    counter.dataset.count = String(count);
    let newest = count + ' epochs recorded';
    if (state.newest) {
      const t = state.trials.get(state.newest[0]);
      if (t) newest += '; newest: trial ' + t.number + ', epoch ' + state.newest[1];
    }
    counter.textContent = newest;
  }

  function renderFilters() {
    const trials = Array.from(state.trials.values());
    const statuses = Array.from(new Set(trials.map((t) => t.status))).sort();
    const values = {};
    for (const axis of state.axes) {
      values[axis] = Array.from(new Set(trials.filter((t) => axis in t.params)
        .map((t) => valueText(t.params[axis])))).sort(compareText);
    }
    const signature = JSON.stringify([statuses, values]);
    if (signature === state.filterOptions) return;
    state.filterOptions = signature;
    const fill = (selectNode, options, current) => {
      selectNode.replaceChildren(el('option', { value: '' }, 'all'));
      for (const o of options) selectNode.appendChild(el('option', { value: o }, o));
      selectNode.value = options.includes(current) ? current : '';
    };
    fill(document.getElementById('filter-status'), statuses, state.statusFilter);
    const box = document.getElementById('param-filters');
    box.replaceChildren();
    for (const axis of state.axes) {
      const label = el('label', {}, axis + ' ');
      const selectNode = el('select', { 'data-axis': axis, class: 'param-filter' });
      fill(selectNode, values[axis], state.paramFilters[axis] || '');
      selectNode.addEventListener('change', () => {
        state.paramFilters[axis] = selectNode.value;
        render();
      });
      label.appendChild(selectNode);
      box.appendChild(label);
    }
  }

  function compareText(a, b) {
    const x = Number(a);
    const y = Number(b);
    if (a !== '' && b !== '' && !isNaN(x) && !isNaN(y)) return x - y;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  // Whether the sweep is a search (its trials were drawn at random first, then suggested):
  // then the table says how each was chosen.
  function searched() {
    for (const t of state.trials.values()) {
      if (t.origin === 'startup' || t.origin === 'model') return true;
    }
    return false;
  }

  function columns() {
    const cols = [{ id: 'trial', label: 'trial', key: (t) => t.number }];
    for (const axis of state.axes) {
      cols.push({ id: 'param:' + axis, label: axis, key: (t) => t.params[axis] });
    }
    cols.push({ id: 'status', label: 'status', key: (t) => t.status });
    if (searched()) cols.push({ id: 'origin', label: 'origin', key: (t) => t.origin });
    cols.push({ id: 'epochs', label: 'epochs', key: (t) => epochsOf(t).length });
    cols.push({ id: 'best_epoch', label: 'best epoch', key: (t) => t.best_epoch });
    cols.push({ id: 'objective', label: state.objective, key: score });
    return cols;
  }

  function compareValues(x, y) {
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return compareText(valueText(x), valueText(y));
  }

  function renderTable(visible) {
    const cols = columns();
    const column = cols.find((c) => c.id === state.sort.column) || cols[cols.length - 1];
    // The objective sorts best first unless asked otherwise; every other column ascending.
    let descending = state.sort.descending;
    if (descending === null) descending = column.id === 'objective' ? !state.minimise : false;
    const rows = visible.slice().sort((a, b) => {
      const x = column.key(a);
      const y = column.key(b);
      const missing = (v) => v === null || v === undefined;
      if (missing(x) || missing(y)) {
        return missing(x) === missing(y) ? a.number - b.number : missing(x) ? 1 : -1;
      }
      const order = compareValues(x, y);
      return (descending ? -order : order) || a.number - b.number;
    });
    const head = el('tr');
    for (const c of cols) {
      const th = el('th', { 'data-column': c.id }, c.label);
      if (c.id === column.id) th.className = descending ? 'sorted desc' : 'sorted';
      th.addEventListener('click', () => {
        state.sort = { column: c.id, descending: c.id === column.id ? !descending : null };
        render();
      });
      head.appendChild(th);
    }
    const table = document.getElementById('trials');
    table.tHead.replaceChildren(head);
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const t of rows) {
      const tr = el('tr', { 'data-trial': t.id });
      if (t.id === state.selected) tr.className = 'selected';
      const first = el('td', { class: 'num' });
      first.appendChild(el('span', { class: 'swatch', style: 'background:' + colourOf(t) }));
      first.appendChild(document.createTextNode(String(t.number)));
      tr.appendChild(first);
      for (const axis of state.axes) tr.appendChild(el('td', {}, valueText(t.params[axis])));
      const status = el('td', {});
      status.appendChild(el('span', { class: 'status-' + t.status }, t.status));
      // A note that starts with the status (`stopped at epoch 3: …`) goes on from it.
      if (t.note && t.note.startsWith(t.status + ' ')) {
        status.appendChild(el('span', { class: 'note' }, t.note.slice(t.status.length)));
      } else if (t.note) {
        status.appendChild(el('span', { class: 'note' }, ' \u2014 ' + t.note));
      }
      tr.appendChild(status);
      if (searched()) tr.appendChild(el('td', {}, t.origin || ''));
      tr.appendChild(el('td', { class: 'num' }, epochsOf(t).length));
      tr.appendChild(el('td', { class: 'num' }, t.best_epoch === null ? '' : t.best_epoch));
      const s = score(t);
      const objective = el('td', { class: 'num' }, fmt(s));
      if (t.objective === null && s !== null) {
        objective.classList.add('note');
        objective.title = 'best so far';
      }
      tr.appendChild(objective);
      tr.addEventListener('click', () => select(t.id));
      body.appendChild(tr);
    }
    document.getElementById('shown').textContent =
      'showing ' + visible.length + ' of ' + state.trials.size + ' trials';
  }

  // ---- scales and axes --------------------------------------------------------------------

  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / count;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
    const ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
      ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    return ticks;
  }

  function quantile(sorted, q) {
    if (!sorted.length) return 0;
    const i = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
    return sorted[i];
  }

  // ---- curves per optimizer ---------------------------------------------------------------

  function groupsOf(trials) {
    const axis = state.axes.includes(state.figureAxis) ? state.figureAxis : null;
    const all = Array.from(state.trials.values());
    const keys = axis
      ? Array.from(new Set(all.map((t) => valueText(t.params[axis])))).sort(compareText)
      : ['all'];
    return keys.map((key) => ({
      key,
      title: axis ? state.figureAxis + ': ' + key : 'all trials',
      trials: trials.filter((t) => !axis || valueText(t.params[axis]) === key),
    }));
  }

  function renderCurves(visible) {
    const box = document.getElementById('curves');
    box.replaceChildren();
    let maxEpoch = 2;
    for (const t of state.trials.values()) {
      for (const row of epochsOf(t)) maxEpoch = Math.max(maxEpoch, row[1]);
    }
    for (const group of groupsOf(visible)) {
      const figure = el('div', { class: 'figure', 'data-group': group.key });
      figure.appendChild(el('h3', {}, group.title));
      const charts = el('div', { class: 'charts' });
      for (const metric of chartMetrics()) charts.appendChild(chart(group, metric, maxEpoch));
      figure.appendChild(charts);
      figure.appendChild(legend(group));
      box.appendChild(figure);
    }
  }

  // Which colour is which trial: one entry per curve of the figure, its params without the
  // figure's own axis; a dashed sample for a trial that did not train to the end.
  function legend(group) {
    const box = el('div', { class: 'legend' });
    const own = state.axes.includes(state.figureAxis) ? state.figureAxis : null;
    for (const t of group.trials) {
      if (!epochsOf(t).length) continue;
      const item = el('span', { class: 'legend-item', 'data-trial': t.id });
      if (t.id === state.selected) item.classList.add('selected');
      const sample = svgEl('svg', { width: 18, height: 10, class: 'legend-sample' });
      const line = svgEl('line', { x1: 1, x2: 17, y1: 5, y2: 5, stroke: colourOf(t) });
      if (!['done', 'running'].includes(t.status)) line.classList.add('dashed');
      sample.appendChild(line);
      item.appendChild(sample);
      const params = state.axes
        .filter((a) => a !== own && a in t.params)
        .map((a) => a + '=' + valueText(t.params[a]))
        .join(' ');
      const status = ['done', 'running'].includes(t.status) ? '' : ' (' + t.status + ')';
      item.appendChild(document.createTextNode(t.number + (params ? ' ' + params : '') + status));
      item.addEventListener('click', () => select(t.id));
      box.appendChild(item);
    }
    return box;
  }

  let clipCount = 0;

  function chart(group, metric, maxEpoch) {
    const W = 380;
    const H = 240;
    const m = { l: 52, r: 12, t: 22, b: 34 };
    const index = metric;
    const svg = svgEl('svg', {
      width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, class: 'chart', 'data-metric': metric,
    });
    svg.appendChild(svgEl('text', { x: m.l, y: 14, class: 'title' }, METRIC_NAMES[metric] || metric));
    const series = group.trials
      .map((t) => ({ t, rows: epochsOf(t).filter((r) => r[index] !== null && isFinite(r[index])) }))
      .filter((s) => s.rows.length > 0);
    if (!series.length) {
      svg.appendChild(svgEl('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' },
        'no epochs yet'));
      return svg;
    }
    const values = series.flatMap((s) => s.rows.map((r) => r[index])).sort((a, b) => a - b);
    let lo = values[0];
    let hi = values[values.length - 1];
    // One diverged trial (a loss of 1e30) must not flatten every other curve: the range
    // stops a little above the bulk, and what is above is clipped.
    const q = quantile(values, 0.95);
    if (metric !== 'val_f1' && hi > q + 2 * (q - lo)) hi = q + (q - lo) * 0.5;
    if (!(hi > lo)) {
      hi = lo + 0.5;
      lo -= 0.5;
    }
    const pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
    if (metric === 'val_f1') {
      lo = Math.max(lo, 0);
      hi = Math.min(hi, 1);
    }
    const x = (e) => m.l + ((e - 1) / (maxEpoch - 1)) * (W - m.l - m.r);
    const y = (v) => H - m.b - ((v - lo) / (hi - lo)) * (H - m.t - m.b);
    const grid = svgEl('g', { class: 'grid' });
    const axis = svgEl('g', { class: 'axis' });
    for (const v of niceTicks(lo, hi, 5)) {
      grid.appendChild(svgEl('line', { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }));
      axis.appendChild(svgEl('text', { x: m.l - 5, y: y(v) + 4, 'text-anchor': 'end' }, tickText(v)));
    }
    const epochTicks = niceTicks(1, maxEpoch, Math.min(maxEpoch - 1, 8)).filter((e) => Number.isInteger(e));
    for (const e of epochTicks) {
      axis.appendChild(svgEl('text', { x: x(e), y: H - m.b + 14, 'text-anchor': 'middle' }, e));
    }
    axis.appendChild(svgEl('text', { x: (m.l + W - m.r) / 2, y: H - 4, 'text-anchor': 'middle' }, 'epoch'));
    axis.appendChild(svgEl('path', { d: 'M' + m.l + ' ' + m.t + 'V' + (H - m.b) + 'H' + (W - m.r), fill: 'none' }));
    svg.appendChild(grid);
    svg.appendChild(axis);
    const clip = 'clip' + clipCount++;
    const defs = svgEl('defs');
    const clipPath = svgEl('clipPath', { id: clip });
    // A little room on both sides, so that a marker at the first or last epoch is whole.
    clipPath.appendChild(svgEl('rect', { x: m.l - 6, y: m.t - 2, width: W - m.l - m.r + 12, height: H - m.t - m.b + 4 }));
    defs.appendChild(clipPath);
    svg.appendChild(defs);
    const lines = svgEl('g', { 'clip-path': 'url(#' + clip + ')' });
    const points = [];
    const paths = new Map();
    for (const s of series) {
      const d = s.rows.map((r, i) => (i ? 'L' : 'M') + x(r[1]).toFixed(1) + ' ' + y(r[index]).toFixed(1)).join('');
      const path = svgEl('path', {
        d: s.rows.length === 1 ? d + 'l0 0' : d,
        class: 'curve',
        stroke: colourOf(s.t),
        'stroke-linecap': 'round',
        'data-trial': s.t.id,
      });
      if (!['done', 'running'].includes(s.t.status)) path.classList.add('dashed');
      if (s.t.id === state.selected) path.classList.add('selected');
      paths.set(s.t.id, path);
      lines.appendChild(path);
      // One epoch makes no line: a marker shows where it is.
      if (s.rows.length === 1) {
        const r = s.rows[0];
        const marker = svgEl('circle', {
          cx: x(r[1]).toFixed(1), cy: y(r[index]).toFixed(1), r: 4, class: 'curve-marker',
          fill: colourOf(s.t), 'data-trial': s.t.id,
        });
        if (s.t.id === state.selected) marker.classList.add('selected');
        lines.appendChild(marker);
      }
      for (const r of s.rows) points.push({ x: x(r[1]), y: y(r[index]), t: s.t, epoch: r[1], value: r[index] });
    }
    if (state.selected !== null && paths.has(state.selected)) {
      svg.classList.add('has-selection');
      lines.appendChild(paths.get(state.selected));
    }
    svg.appendChild(lines);
    let hovered = null;
    const nearest = (event) => {
      const box = svg.getBoundingClientRect();
      const px = ((event.clientX - box.left) * W) / box.width;
      const py = ((event.clientY - box.top) * H) / box.height;
      let best = null;
      let bestDistance = 30 * 30;
      for (const p of points) {
        const d = (p.x - px) * (p.x - px) + (p.y - py) * (p.y - py);
        if (d < bestDistance) {
          best = p;
          bestDistance = d;
        }
      }
      return best;
    };
    svg.addEventListener('mousemove', (event) => {
      const p = nearest(event);
      if (hovered) hovered.classList.remove('hover');
      hovered = null;
      if (!p) return hideTooltip();
      hovered = paths.get(p.t.id);
      hovered.classList.add('hover');
      showTooltip(event, trialLines(p.t).concat(['epoch ' + p.epoch + ': ' + METRIC_NAMES[metric] + ' ' + fmt(p.value)]));
    });
    svg.addEventListener('mouseleave', () => {
      if (hovered) hovered.classList.remove('hover');
      hideTooltip();
    });
    svg.addEventListener('click', (event) => {
      const p = nearest(event);
      if (p) select(p.t.id);
    });
    return svg;
  }

  // ---- parallel coordinates ---------------------------------------------------------------

  // A vertical axis: evenly spaced values for a grid's few values or for text, a linear
  // (or, over more than a decade and a bit, logarithmic) scale for many numbers and for the
  // objective (`continuous`).
  function axisScale(values, top, bottom, continuous) {
    const present = values.filter((v) => v !== undefined && v !== null);
    const numeric = present.length > 0 && present.every((v) => typeof v === 'number');
    const distinct = Array.from(new Set(present.map(valueText))).sort(compareText);
    if (!numeric || (distinct.length <= 12 && !continuous)) {
      const at = (v) => {
        const i = distinct.indexOf(valueText(v));
        if (i < 0) return null;
        return distinct.length === 1 ? (top + bottom) / 2 : bottom - (i / (distinct.length - 1)) * (bottom - top);
      };
      return { at, ticks: distinct.map((d) => ({ label: d, y: at(numeric ? Number(d) : d) })) };
    }
    const lo = Math.min(...present);
    let hi = Math.max(...present);
    const log = !continuous && lo > 0 && hi / lo >= 20;
    const f = log ? Math.log10 : (v) => v;
    if (!(hi > lo)) hi = lo + 1;
    const at = (v) => (typeof v === 'number' ? bottom - ((f(v) - f(lo)) / (f(hi) - f(lo))) * (bottom - top) : null);
    const ticks = log
      ? niceTicks(Math.log10(lo), Math.log10(hi), 4).map((e) => Math.pow(10, e))
      : niceTicks(lo, hi, 5);
    return { at, ticks: ticks.map((v) => ({ label: tickText(v), y: at(v) })) };
  }

  function rampColour(f) {
    // Light blue (worst) to dark red (best).
    const a = [158, 202, 225];
    const b = [165, 15, 21];
    const c = a.map((v, i) => Math.round(v + (b[i] - v) * Math.max(0, Math.min(1, f))));
    return 'rgb(' + c.join(',') + ')';
  }

  function renderParallel(visible) {
    const box = document.getElementById('parallel');
    box.replaceChildren();
    const all = Array.from(state.trials.values());
    const names = state.axes.concat([state.objective]);
    const W = Math.max(420, 120 * names.length);
    const H = 300;
    const m = { l: 60, r: 60, t: 44, b: 24 };
    const svg = svgEl('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, id: 'parallel-svg' });
    const xs = names.map((_, i) => (names.length === 1 ? W / 2 : m.l + (i * (W - m.l - m.r)) / (names.length - 1)));
    const scales = names.map((name, i) =>
      i < state.axes.length
        ? axisScale(all.map((t) => t.params[name]), m.t, H - m.b, false)
        : axisScale(all.map(score), m.t, H - m.b, true));
    const scores = all.map(score).filter((v) => v !== null);
    const worst = scores.length ? (state.minimise ? Math.max(...scores) : Math.min(...scores)) : 0;
    const bestScore = scores.length ? (state.minimise ? Math.min(...scores) : Math.max(...scores)) : 1;
    const lines = svgEl('g');
    const segments = [];
    const paths = new Map();
    for (const t of visible) {
      const pts = [];
      names.forEach((name, i) => {
        const v = i < state.axes.length ? t.params[name] : score(t);
        const y = v === null || v === undefined ? null : scales[i].at(v);
        if (y !== null) pts.push([xs[i], y]);
      });
      if (pts.length < 1) continue;
      const s = score(t);
      const f = s === null || bestScore === worst ? 0.5 : (s - worst) / (bestScore - worst);
      const path = svgEl('path', {
        d: pts.map((p, i) => (i ? 'L' : 'M') + p[0].toFixed(1) + ' ' + p[1].toFixed(1)).join(''),
        class: 'pc-line',
        stroke: s === null ? '#bbb' : rampColour(f),
        'data-trial': t.id,
      });
      if (t.id === state.selected) path.classList.add('selected');
      paths.set(t.id, path);
      lines.appendChild(path);
      for (let i = 1; i < pts.length; i++) segments.push({ a: pts[i - 1], b: pts[i], t });
    }
    if (state.selected !== null && paths.has(state.selected)) {
      svg.classList.add('has-selection');
      lines.appendChild(paths.get(state.selected));
    }
    svg.appendChild(lines);
    names.forEach((name, i) => {
      const g = svgEl('g', { class: 'axis pc-axis' });
      // The last axis's labels go on its right, where no line runs; the others keep a white
      // halo, so that the lines arriving at a value stop short of its label.
      const right = i === names.length - 1 && names.length > 1;
      g.appendChild(svgEl('line', { x1: xs[i], x2: xs[i], y1: m.t, y2: H - m.b }));
      g.appendChild(svgEl('text', { x: xs[i], y: m.t - 22, 'text-anchor': 'middle', class: 'title' }, name));
      for (const tick of scales[i].ticks) {
        if (tick.y === null) continue;
        g.appendChild(svgEl('line', { x1: xs[i] + (right ? 3 : -3), x2: xs[i], y1: tick.y, y2: tick.y }));
        const label = tick.label.length > 14 ? tick.label.slice(0, 13) + '\u2026' : tick.label;
        const text = right
          ? svgEl('text', { x: xs[i] + 5, y: tick.y + 4, 'text-anchor': 'start' }, label)
          : svgEl('text', { x: xs[i] - 5, y: tick.y + 4, 'text-anchor': 'end' }, label);
        text.appendChild(svgEl('title', {}, tick.label));
        g.appendChild(text);
      }
      svg.appendChild(g);
    });
    let hovered = null;
    const nearest = (event) => {
      const r = svg.getBoundingClientRect();
      const px = ((event.clientX - r.left) * W) / r.width;
      const py = ((event.clientY - r.top) * H) / r.height;
      let best = null;
      let bestDistance = 8;
      for (const s of segments) {
        const [x1, y1] = s.a;
        const [x2, y2] = s.b;
        const len = (x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1);
        const u = len ? Math.max(0, Math.min(1, ((px - x1) * (x2 - x1) + (py - y1) * (y2 - y1)) / len)) : 0;
        const d = Math.hypot(px - (x1 + u * (x2 - x1)), py - (y1 + u * (y2 - y1)));
        if (d < bestDistance) {
          best = s.t;
          bestDistance = d;
        }
      }
      return best;
    };
    svg.addEventListener('mousemove', (event) => {
      const t = nearest(event);
      if (hovered) hovered.classList.remove('hover');
      hovered = null;
      if (!t) return hideTooltip();
      hovered = paths.get(t.id);
      hovered.classList.add('hover');
      showTooltip(event, trialLines(t).concat([state.objective + ' ' + (score(t) === null ? '(none yet)' : fmt(score(t)))]));
    });
    svg.addEventListener('mouseleave', () => {
      if (hovered) hovered.classList.remove('hover');
      hideTooltip();
    });
    svg.addEventListener('click', (event) => {
      const t = nearest(event);
      if (t) select(t.id);
    });
    box.appendChild(svg);
  }

  // ---- importance and slices -------------------------------------------------------------

  function percent(v) {
    return (100 * v).toFixed(1) + '%';
  }

  // Each term's share of the objective's variance as a bar, its 95% interval as a whisker;
  // computed by the report (exact on a complete grid, else an estimate: the method says).
  function renderImportance() {
    const box = document.getElementById('importance');
    box.replaceChildren();
    const imp = state.importance;
    document.getElementById('importance-method').textContent = imp ? imp.description : '';
    const leftOut = document.getElementById('importance-left-out');
    leftOut.replaceChildren();
    for (const line of imp ? imp.left_out : []) leftOut.appendChild(el('li', {}, 'left out: ' + line));
    if (!imp || imp.shares.length === 0) {
      box.appendChild(el('p', { class: 'empty' }, 'not enough finished trials yet'));
      return;
    }
    const row = 24;
    const m = { l: 170, r: 56, t: 6, b: 30 };
    const W = 540;
    const H = m.t + row * imp.shares.length + m.b;
    const x = (v) => m.l + Math.max(0, Math.min(1, v)) * (W - m.l - m.r);
    const svg = svgEl('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, id: 'importance-svg', 'data-method': imp.method });
    const bottom = m.t + row * imp.shares.length;
    for (let tick = 0; tick <= 4; tick++) {
      const at = x(tick / 4);
      const g = svgEl('g', { class: 'grid' });
      g.appendChild(svgEl('line', { x1: at, x2: at, y1: m.t, y2: bottom }));
      svg.appendChild(g);
      svg.appendChild(svgEl('text', { x: at, y: bottom + 14, 'text-anchor': 'middle' }, tick * 25 + '%'));
    }
    svg.appendChild(svgEl('text', { x: x(0.5), y: bottom + 27, 'text-anchor': 'middle' }, 'share of the objective\u2019s variance'));
    imp.shares.forEach((s, i) => {
      const y = m.t + i * row;
      const label = s.term.length > 28 ? s.term.slice(0, 27) + '\u2026' : s.term;
      svg.appendChild(svgEl('text', { x: m.l - 6, y: y + row / 2 + 4, 'text-anchor': 'end' }, label));
      const bar = svgEl('rect', {
        x: x(0), y: y + 4, width: Math.max(1, x(s.share) - x(0)), height: row - 8,
        class: 'imp-bar ' + s.kind, 'data-term': s.term,
      });
      const interval = s.interval ? ', 95% interval ' + percent(s.interval[0]) + '\u2013' + percent(s.interval[1]) : '';
      bar.appendChild(svgEl('title', {}, s.term + ': ' + percent(s.share) + interval));
      svg.appendChild(bar);
      if (s.interval) {
        const [lo, hi] = s.interval.map(x);
        const mid = y + row / 2;
        svg.appendChild(svgEl('line', { x1: lo, x2: hi, y1: mid, y2: mid, class: 'whisker' }));
        for (const end of [lo, hi]) svg.appendChild(svgEl('line', { x1: end, x2: end, y1: mid - 5, y2: mid + 5, class: 'whisker' }));
      }
      svg.appendChild(svgEl('text', { x: W - 4, y: y + row / 2 + 4, 'text-anchor': 'end' }, percent(s.share)));
    });
    box.appendChild(svg);
  }

  // One panel per hyperparameter: each shown trial's objective (its best so far while it
  // trains) against its value, the best of them highlighted.
  function renderSlices(visible) {
    const box = document.getElementById('slices');
    box.replaceChildren();
    const all = Array.from(state.trials.values());
    const scored = visible.filter((t) => score(t) !== null);
    const best = scored.length ? scored.slice().sort(bestFirst)[0] : null;
    const W = 260;
    const H = 210;
    const m = { l: 52, r: 14, t: 24, b: 40 };
    const ys = axisScale(all.map(score), m.t, H - m.b, true);
    for (const name of state.axes) {
      // Inset from the axes, so that the first and last values' points clear them.
      const xs = axisScale(all.map((t) => t.params[name]), W - m.r - 14, m.l + 14, false);
      const svg = svgEl('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, class: 'slice', 'data-axis': name });
      svg.appendChild(svgEl('text', { x: (m.l + W - m.r) / 2, y: 14, 'text-anchor': 'middle', class: 'title' }, name));
      const g = svgEl('g', { class: 'axis' });
      g.appendChild(svgEl('line', { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
      g.appendChild(svgEl('line', { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
      for (const tick of xs.ticks) {
        if (tick.y === null) continue;
        const label = tick.label.length > 10 ? tick.label.slice(0, 9) + '\u2026' : tick.label;
        g.appendChild(svgEl('line', { x1: tick.y, x2: tick.y, y1: H - m.b, y2: H - m.b + 3 }));
        g.appendChild(svgEl('text', { x: tick.y, y: H - m.b + 15, 'text-anchor': 'middle' }, label));
      }
      for (const tick of ys.ticks) {
        if (tick.y === null) continue;
        g.appendChild(svgEl('line', { x1: m.l - 3, x2: m.l, y1: tick.y, y2: tick.y }));
        g.appendChild(svgEl('text', { x: m.l - 5, y: tick.y + 4, 'text-anchor': 'end' }, tick.label));
      }
      g.appendChild(svgEl('text', { x: (m.l + W - m.r) / 2, y: H - 6, 'text-anchor': 'middle' }, name));
      svg.appendChild(g);
      let bestPoint = null;
      for (const t of scored) {
        const px = xs.at(t.params[name]);
        if (px === null || px === undefined) continue;
        // A trial's own small offset, so that trials sharing a value do not hide each other.
        const jitter = (((t.number * 0.618034) % 1) - 0.5) * 8;
        const point = svgEl('circle', {
          cx: (px + jitter).toFixed(1), cy: ys.at(score(t)).toFixed(1), r: 4,
          class: 'slice-point', 'data-trial': t.id,
        });
        point.appendChild(svgEl('title', {}, trialLines(t).concat([state.objective + ' ' + fmt(score(t))]).join('\n')));
        if (t.id === state.selected) point.classList.add('selected');
        point.addEventListener('click', () => select(t.id));
        if (best && t.id === best.id) bestPoint = point;
        else svg.appendChild(point);
      }
      if (bestPoint) {
        bestPoint.classList.add('best');
        bestPoint.setAttribute('r', 6);
        svg.appendChild(bestPoint);
      }
      box.appendChild(svg);
    }
  }

  // ---- the best trial's confusion matrix --------------------------------------------------

  function blues(f) {
    const c = [[247, 8], [251, 48], [255, 107]].map(([a, b]) => Math.round(a + (b - a) * f));
    return 'rgb(' + c.join(',') + ')';
  }

  function renderConfusion() {
    const box = document.getElementById('confusion');
    box.replaceChildren();
    const c = state.confusion;
    const title = document.getElementById('confusion-title');
    if (!c) {
      title.textContent = 'Confusion matrix';
      box.appendChild(el('p', { class: 'empty' }, 'no finished trial yet'));
      return;
    }
    title.textContent = 'Confusion matrix of trial ' + c.number + ' at epoch ' + c.epoch;
    const n = Math.max(1, c.classes);
    const counts = new Map(c.cells.map(([a, p, k]) => [a * n + p, k]));
    const totals = new Array(n).fill(0);
    for (const [a, , k] of c.cells) if (a < n) totals[a] += k;
    const cell = Math.max(3, Math.min(36, Math.floor(400 / n)));
    const m = { l: 46, t: 10, b: 40 };
    const W = m.l + cell * n + 10;
    const H = m.t + cell * n + m.b;
    const svg = svgEl('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, id: 'confusion-svg' });
    const every = n > 20 ? 10 : 1;
    for (let a = 0; a < n; a++) {
      for (let p = 0; p < n; p++) {
        const k = counts.get(a * n + p) || 0;
        const f = totals[a] ? k / totals[a] : 0;
        svg.appendChild(svgEl('rect', {
          x: m.l + p * cell, y: m.t + a * cell, width: cell, height: cell, fill: blues(f),
          class: 'cell', 'data-actual': a, 'data-predicted': p,
        }));
        if (n <= 20 && k > 0) {
          svg.appendChild(svgEl('text', {
            x: m.l + (p + 0.5) * cell, y: m.t + (a + 0.5) * cell + 4, 'text-anchor': 'middle',
            style: 'pointer-events:none;font-size:' + Math.min(11, cell * 0.4) + 'px;fill:' + (f > 0.5 ? '#fff' : '#222'),
          }, k));
        }
      }
      if (a % every === 0) {
        svg.appendChild(svgEl('text', { x: m.l - 4, y: m.t + (a + 0.5) * cell + 4, 'text-anchor': 'end' }, a));
        svg.appendChild(svgEl('text', { x: m.l + (a + 0.5) * cell, y: m.t + n * cell + 13, 'text-anchor': 'middle' }, a));
      }
    }
    svg.appendChild(svgEl('text', { x: m.l + (n * cell) / 2, y: H - 6, 'text-anchor': 'middle' }, 'predicted'));
    svg.appendChild(svgEl('text', {
      x: 12, y: m.t + (n * cell) / 2, 'text-anchor': 'middle',
      transform: 'rotate(-90 12 ' + (m.t + (n * cell) / 2) + ')',
    }, 'true'));
    svg.addEventListener('mousemove', (event) => {
      const target = event.target;
      if (!target.classList || !target.classList.contains('cell')) return hideTooltip();
      const a = Number(target.dataset.actual);
      const p = Number(target.dataset.predicted);
      const k = counts.get(a * n + p) || 0;
      const share = totals[a] ? ' (' + ((100 * k) / totals[a]).toFixed(1) + '% of class ' + a + ')' : '';
      showTooltip(event, ['true ' + a + ', predicted ' + p, k + ' of ' + totals[a] + share]);
    });
    svg.addEventListener('mouseleave', hideTooltip);
    box.appendChild(svg);
  }

  // ---- everything -------------------------------------------------------------------------

  function render() {
    renderHeader();
    renderFilters();
    const visible = visibleTrials();
    if (state.selected !== null && !state.trials.has(state.selected)) state.selected = null;
    renderTable(visible);
    renderCurves(visible);
    renderParallel(visible);
    renderImportance();
    renderSlices(visible);
    renderConfusion();
    document.body.dataset.rendered = String(state.last);
  }

  document.getElementById('filter-status').addEventListener('change', (event) => {
    state.statusFilter = event.target.value;
    render();
  });
  document.getElementById('best-k').addEventListener('input', (event) => {
    const k = parseInt(event.target.value, 10);
    state.bestK = isFinite(k) && k > 0 ? k : 0;
    render();
  });

  merge(embedded.data);
  render();

  if (live) {
    const status = document.getElementById('live-status');
    const poll = async () => {
      const have = state.confusion ? '&confusion=' + state.confusion.trial : '';
      try {
        const response = await fetch(live.poll + '?after=' + state.last + have, { cache: 'no-store' });
        if (!response.ok) throw new Error('HTTP ' + response.status);
        const d = await response.json();
        if (d.key !== state.key) {
          // Another database (replaced) or another sweep of that name: start over.
          reset();
          state.key = d.key;
          setTimeout(poll, 0);
          return;
        }
        merge(d);
        render();
        status.textContent = 'live: updated ' + new Date().toLocaleTimeString() + ';';
        status.className = '';
      } catch (error) {
        status.textContent = 'live: cannot read the sweep (' + error.message + '), retrying;';
        status.className = 'error';
      }
      setTimeout(poll, live.interval_ms);
    };
    status.textContent = 'live;';
    setTimeout(poll, live.interval_ms);
  }
})();
