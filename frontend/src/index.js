// Embedding Evolution: the page TensorBoard renders in the plugin's iframe.
//
// The iframe's <base href> is plugin/embedding_evolution/, so "./runs" is our route. Every
// fetch is local; fonts are the system's. One Panel per shown tensor (two when comparing).
// Test hook: window.embeddingEvolution (see README "Embedding Evolution dashboard").

import createScatterplot from 'regl-scatterplot';

const POLL_MS = 3000;
const TRANSITION_MS = 600;
const PLAY_MS = 900;
const CATEGORY_LIMIT = 20;
const PALETTE = [
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
  '#bcbd22', '#17becf', '#aec7e8', '#ffbb78', '#98df8a', '#ff9896', '#c5b0d5', '#c49c94',
  '#f7b6d2', '#c7c7c7', '#dbdb8d', '#9edae5',
];
const OTHER_COLOR = '#d0d0d0';
const PLAIN_COLOR = '#4a6fa5';
const RAMP = Array.from({ length: 64 }, (_, i) => viridis(i / 63));
const PATH_COLORS = ['#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf'];

const STYLE = `
  body { margin: 0; font: 13px system-ui, sans-serif; color: #222; background: #fff; }
  #ee-toolbar { display: flex; gap: 8px; align-items: center; padding: 6px 10px;
    border-bottom: 1px solid #ddd; flex-wrap: wrap; }
  #ee-panels { display: flex; gap: 6px; padding: 6px; }
  .ee-panel { flex: 1; min-width: 0; display: flex; flex-direction: column; gap: 4px; }
  .ee-controls { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
  .ee-slider { flex: 1; min-width: 120px; }
  .ee-stage { position: relative; height: 560px; border: 1px solid #ddd; }
  .ee-stage canvas { width: 100%; height: 100%; display: block; }
  .ee-tooltip { position: absolute; pointer-events: none; background: rgba(255,255,255,.95);
    border: 1px solid #aaa; padding: 3px 6px; white-space: pre; display: none; z-index: 2; }
  .ee-legend { display: flex; flex-wrap: wrap; gap: 4px 10px; min-height: 18px; }
  .ee-legend span.ee-swatch { display: inline-block; width: 10px; height: 10px;
    margin-right: 3px; vertical-align: middle; }
  .ee-ramp { display: inline-block; width: 160px; height: 10px; vertical-align: middle; }
  .ee-neighbors { min-height: 40px; white-space: pre-wrap; }
  .ee-message { color: #a00; }
`;

// --- data ---------------------------------------------------------------------------------

async function getJson(route, params) {
  const response = await fetch(`./${route}?${new URLSearchParams(params || {})}`);
  if (!response.ok) throw new Error(`${route}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function getLayout(run, tag, step) {
  const response = await fetch(`./layout?${new URLSearchParams({ run, tag, step })}`);
  if (!response.ok) throw new Error(`layout: ${response.status} ${await response.text()}`);
  const buffer = await response.arrayBuffer();
  return new Float32Array(buffer); // little-endian, as every browser's host order
}

/** The `compare` command's output: one run with tags `<name> · a` / `<name> · b`. */
function compareSources(tags) {
  const pairs = [];
  for (const tag of tags) {
    const match = /^(.*) · a$/.exec(tag);
    if (match && tags.includes(`${match[1]} · b`)) pairs.push([tag, `${match[1]} · b`]);
  }
  return pairs;
}

// --- one scatter plot ---------------------------------------------------------------------

class Panel {
  constructor(app, root, index) {
    this.app = app;
    this.index = index;
    this.run = null;
    this.tag = null;
    this.steps = [];
    this.drawnStep = null;
    this.count = 0;
    this.layouts = new Map(); // step -> Float32Array (rows x 2)
    this.metadata = null; // {header, columns}
    this.labels = [];
    this.transform = null; // layout -> [-1, 1]: [cx, cy, scale]
    this.token = 0;
    this.drawing = Promise.resolve();
    this.colorColumn = '';
    this.colors = null; // {z: Float32Array, w: Float32Array, colorBy, pointColor, legend}
    this.paths = []; // rows drawn as paths across steps
    this.selected = [];
    this.build(root);
  }

  build(root) {
    const el = (tag, props = {}, parent = root) => {
      const node = Object.assign(document.createElement(tag), props);
      parent.appendChild(node);
      return node;
    };
    this.root = el('div', { className: 'ee-panel' });
    const controls = el('div', { className: 'ee-controls' }, this.root);
    this.runSelect = el('select', { title: 'run' }, controls);
    this.tagSelect = el('select', { title: 'tag' }, controls);
    this.play = el('button', { textContent: '▶', title: 'play / pause' }, controls);
    this.slider = el('input', { type: 'range', min: 0, max: 0, step: 1, value: 0,
      className: 'ee-slider', title: 'step' }, controls);
    this.stepLabel = el('span', { className: 'ee-step' }, controls);
    this.colorSelect = el('select', { title: 'colour by' }, controls);
    this.search = el('input', { type: 'search', placeholder: 'search labels', title: 'search' },
      controls);
    this.matches = el('span', { className: 'ee-matches' }, controls);
    this.projectorLink = el('a', { textContent: 'open in PROJECTOR', target: '_top' }, controls);
    const stage = el('div', { className: 'ee-stage' }, this.root);
    this.canvas = el('canvas', {}, stage);
    this.tooltip = el('div', { className: 'ee-tooltip' }, stage);
    this.legend = el('div', { className: 'ee-legend' }, this.root);
    this.neighborBox = el('div', { className: 'ee-neighbors' }, this.root);
    this.message = el('div', { className: 'ee-message' }, this.root);

    this.runSelect.addEventListener('change', () => this.choose(this.runSelect.value, null));
    this.tagSelect.addEventListener('change', () =>
      this.choose(this.run, this.tagSelect.value));
    this.slider.addEventListener('input', () => this.show(this.sliderStep()));
    this.play.addEventListener('click', () => this.togglePlay());
    this.colorSelect.addEventListener('change', () => this.colorBy(this.colorSelect.value));
    this.search.addEventListener('input', () => this.find(this.search.value));
    stage.addEventListener('mousemove', (event) => {
      const box = stage.getBoundingClientRect();
      this.tooltip.style.left = `${event.clientX - box.left + 12}px`;
      this.tooltip.style.top = `${event.clientY - box.top + 12}px`;
    });
  }

  createPlot() {
    const { width, height } = this.canvas.getBoundingClientRect();
    this.plot = createScatterplot({
      canvas: this.canvas,
      width,
      height,
      pointSize: 4,
      pointColor: PLAIN_COLOR,
      pointColorActive: '#ff0000',
      pointSizeSelected: 3,
      pointOutlineWidth: 2,
      lassoOnLongPress: true,
      spatialIndexUseWorker: false, // TensorBoard's CSP forbids blob: workers
      annotationLineWidth: 2,
    });
    this.plot.subscribe('pointOver', (row) => this.hover(row));
    this.plot.subscribe('pointOut', () => { this.tooltip.style.display = 'none'; });
    this.plot.subscribe('select', ({ points }) => {
      if (points.length === 1) this.clicked(points[0], true);
    });
    this.plot.subscribe('deselect', () => { this.neighborBox.textContent = ''; });
  }

  sliderStep() {
    return this.steps[Number(this.slider.value)];
  }

  setRuns(listing) {
    const runs = Object.keys(listing).sort();
    fillSelect(this.runSelect, runs, this.run);
    if (this.run === null && runs.length) {
      this.choose(runs[Math.min(this.index, runs.length - 1)], null);
      return;
    }
    const tags = this.run && listing[this.run] ? listing[this.run] : null;
    if (tags && this.tag && tags[this.tag]) this.updateSteps(tags[this.tag]);
  }

  async choose(run, tag, step = null) {
    const tags = this.app.listing[run] || {};
    const names = Object.keys(tags).sort();
    if (tag === null) tag = names[this.app.panels.indexOf(this) === 1 && names.length > 1 ? 1 : 0];
    if (tag === undefined) return;
    this.run = run;
    this.tag = tag;
    this.runSelect.value = run;
    fillSelect(this.tagSelect, names, tag);
    this.layouts = new Map();
    this.transform = null;
    this.drawnStep = null;
    this.metadata = null;
    this.labels = [];
    this.paths = [];
    this.colorColumn = '';
    this.colors = null;
    this.steps = [];
    this.neighborBox.textContent = '';
    const info = tags[tag];
    this.updateSteps(info, step === null ? info.steps[info.steps.length - 1] : step);
    fillSelect(this.colorSelect, ['', ...info.columns], '', (v) => v || 'no colour');
    const params = new URLSearchParams({ run, tag: `${tag}:` });
    this.projectorLink.href = `../../../#projector&${params}`;
    this.projectorLink.title = `the PROJECTOR tab, run ${run}`;
    const token = ++this.token;
    try {
      const metadata = await getJson('metadata', { run, tag, step: info.steps[info.steps.length - 1] });
      if (this.run !== run || this.tag !== tag) return;
      this.metadata = metadata;
      this.labels = metadata.columns.length ? metadata.columns[0] : [];
    } catch (error) {
      this.fail(error);
    }
    if (token === this.token) this.show(this.sliderStep());
  }

  updateSteps(info, step = null) {
    const keep = step === null ? this.sliderStep() : step;
    const atEnd = this.steps.length && Number(this.slider.value) === this.steps.length - 1;
    const grew = info.steps.length !== this.steps.length;
    this.steps = info.steps.slice();
    this.rows = info.rows;
    this.slider.max = String(Math.max(0, this.steps.length - 1));
    let index = this.steps.indexOf(keep);
    if (index < 0) index = this.steps.length - 1;
    this.slider.value = String(index);
    this.stepLabel.textContent = `step ${this.sliderStep()} (${this.steps.length} steps)`;
    if (grew && atEnd && this.playing === undefined) {
      // stay where the user looked; a new step shows on the slider
    }
  }

  layoutOf(step) {
    if (!this.layouts.has(step)) {
      const pending = getLayout(this.run, this.tag, step);
      this.layouts.set(step, pending);
      pending.catch(() => this.layouts.delete(step));
    }
    return this.layouts.get(step);
  }

  /** Draw `step`; a response that is no longer the slider's step is dropped. */
  async show(step) {
    if (step === undefined) return;
    this.stepLabel.textContent = `step ${step} (${this.steps.length} steps)`;
    const token = ++this.token;
    const run = this.run;
    const tag = this.tag;
    let coords;
    try {
      coords = await this.layoutOf(step);
    } catch (error) {
      this.fail(error);
      return;
    }
    if (token !== this.token || run !== this.run || tag !== this.tag) return; // stale
    this.drawing = this.drawing.then(() => {
      if (token !== this.token) return null; // a later step is on its way
      return this.draw(coords, step, token);
    }).catch((error) => this.fail(error));
    await this.drawing;
  }

  async draw(coords, step, token) {
    const rows = coords.length / 2;
    if (!this.plot) this.createPlot();
    if (!this.transform || this.count !== rows) this.transform = fitTransform(coords);
    const [cx, cy, scale] = this.transform;
    const x = new Float32Array(rows);
    const y = new Float32Array(rows);
    for (let i = 0; i < rows; i += 1) {
      x[i] = (coords[2 * i] - cx) * scale;
      y[i] = (coords[2 * i + 1] - cy) * scale;
    }
    const colors = this.colors;
    const points = { x, y };
    const options = { preventFilterReset: true };
    if (colors && colors.z.length === rows) {
      points.z = colors.z;
      points.w = colors.w;
      options.zDataType = 'categorical';
      options.wDataType = 'continuous';
    }
    const transition = this.count === rows && this.drawnStep !== null;
    if (transition) {
      options.transition = true;
      options.transitionDuration = TRANSITION_MS;
    }
    if (this.selected.length) options.select = this.selected;
    this.drawnStep = null; // positions() waits until the transition is over
    await this.plot.draw(points, options);
    this.count = rows;
    if (token === this.token) {
      this.drawnStep = step;
      this.drawnCoords = coords;
      this.drawPaths();
      this.app.changed();
    }
  }

  /** Drawn positions in layout coordinates, read back from the scatter plot. */
  positions() {
    if (!this.plot || this.drawnStep === null) return null;
    const points = this.plot.get('points');
    const [cx, cy, scale] = this.transform;
    const flat = new Float32Array(points.length * 2);
    for (let i = 0; i < points.length; i += 1) {
      flat[2 * i] = points[i][0] / scale + cx;
      flat[2 * i + 1] = points[i][1] / scale + cy;
    }
    return flat;
  }

  togglePlay() {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = null;
      this.play.textContent = '▶';
      return;
    }
    this.play.textContent = '⏸';
    if (Number(this.slider.value) >= this.steps.length - 1) this.slider.value = '0';
    this.show(this.sliderStep());
    this.timer = setInterval(() => {
      const next = Number(this.slider.value) + 1;
      if (next >= this.steps.length) {
        this.togglePlay();
        return;
      }
      this.slider.value = String(next);
      this.show(this.sliderStep());
    }, PLAY_MS);
  }

  // --- colour, search, hover, neighbours, paths ------------------------------------------

  colorBy(column) {
    this.colorColumn = column;
    this.legend.textContent = '';
    if (!column || !this.metadata) {
      this.colors = null;
      if (this.plot) this.plot.set({ colorBy: null, pointColor: PLAIN_COLOR });
    } else {
      const cells = this.metadata.columns[this.metadata.header.indexOf(column)] || [];
      this.colors = colorScale(cells);
      this.plot.set({ colorBy: this.colors.colorBy, pointColor: this.colors.pointColor });
      renderLegend(this.legend, this.colors);
    }
    if (this.drawnCoords) {
      const token = ++this.token;
      const coords = this.drawnCoords;
      const step = this.drawnStep;
      this.count = -1; // same positions: no transition
      this.drawing = this.drawing.then(() => this.draw(coords, step, token));
    }
  }

  /** The CSS colour row `row` is drawn in. */
  colorOf(row) {
    if (!this.colors) return PLAIN_COLOR;
    const c = this.colors;
    return c.colorBy === 'valueA' ? c.pointColor[c.z[row]] : c.pointColor[Math.round(c.w[row] * 63)];
  }

  find(query) {
    const needle = query.trim().toLowerCase();
    if (!needle) {
      this.matches.textContent = '';
      this.select([]);
      return;
    }
    const found = [];
    this.labels.forEach((label, row) => {
      if (label.toLowerCase().includes(needle)) found.push(row);
    });
    this.matches.textContent = `${found.length} match${found.length === 1 ? '' : 'es'}`;
    this.select(found);
    if (found.length && this.plot) this.plot.zoomToPoints(found, { padding: 0.4, transition: true });
  }

  select(rows) {
    this.selected = rows;
    if (!this.plot) return;
    if (rows.length) this.plot.select(rows, { preventEvent: true });
    else this.plot.deselect({ preventEvent: true });
  }

  hover(row) {
    const lines = [];
    if (this.metadata) {
      this.metadata.header.forEach((name, j) => lines.push(`${name}: ${this.metadata.columns[j][row]}`));
    }
    if (!lines.length) lines.push(`row ${row}`);
    this.tooltip.textContent = lines.join('\n');
    this.tooltip.style.display = 'block';
    this.hovered = row;
  }

  async clicked(row, link) {
    const step = this.drawnStep;
    this.paths = [row];
    this.drawPaths();
    if (link) this.app.linkSelection(this, this.labels[row]);
    this.neighborBox.textContent = `neighbours of ${this.labels[row] ?? row} at step ${step} …`;
    try {
      const answer = await getJson('neighbors', { run: this.run, tag: this.tag, step, row, k: 10 });
      if (step !== this.drawnStep) return;
      this.showNeighbors(answer);
    } catch (error) {
      this.fail(error);
    }
  }

  showNeighbors(answer) {
    this.neighbors = answer;
    const lines = [`${answer.label} at step ${answer.step}:`];
    for (const n of answer.neighbors) lines.push(`  ${n.label}  ${n.similarity.toFixed(3)}`);
    if (answer.previous) {
      const p = answer.previous;
      lines.push(`since step ${p.step}: joined ${p.joined.join(', ') || '—'}; left ${p.left.join(', ') || '—'}`);
    }
    this.neighborBox.textContent = lines.join('\n');
    const rows = [answer.row, ...answer.neighbors.map((n) => n.row).filter((r) => r !== null)];
    this.select(rows);
  }

  selectLabel(label) {
    const row = this.labels.indexOf(label);
    if (row >= 0) this.clicked(row, false);
  }

  /** Paths of `this.paths` across every step (fetches each step's layout once). */
  async drawPaths() {
    if (!this.plot || !this.transform) return;
    const rows = this.paths.slice();
    if (!rows.length) {
      this.pathVertices = [];
      this.plot.clearAnnotations();
      return;
    }
    const token = this.token;
    const layouts = await Promise.all(this.steps.map((s) => this.layoutOf(s)));
    if (token !== this.token && this.paths.join() !== rows.join()) return;
    const [cx, cy, scale] = this.transform;
    this.pathVertices = rows.map((row) =>
      layouts.map((coords) => [coords[2 * row], coords[2 * row + 1]]));
    this.plot.drawAnnotations(this.pathVertices.map((vertices, i) => ({
      vertices: vertices.map(([px, py]) => [(px - cx) * scale, (py - cy) * scale]),
      lineColor: PATH_COLORS[i % PATH_COLORS.length],
      lineWidth: 2,
    })));
  }

  fail(error) {
    console.warn(error); // eslint-disable-line no-console
    this.message.textContent = String(error.message || error);
  }
}

// --- the page -----------------------------------------------------------------------------

class App {
  constructor(body) {
    const style = document.createElement('style');
    style.textContent = STYLE;
    document.head.appendChild(style);
    const toolbar = document.createElement('div');
    toolbar.id = 'ee-toolbar';
    body.appendChild(toolbar);
    this.title = Object.assign(document.createElement('b'), { textContent: 'Embedding Evolution' });
    toolbar.appendChild(this.title);
    this.compare = Object.assign(document.createElement('button'), { textContent: 'compare side by side' });
    toolbar.appendChild(this.compare);
    this.status = Object.assign(document.createElement('span'), { className: 'ee-status' });
    toolbar.appendChild(this.status);
    this.panelsRoot = Object.assign(document.createElement('div'), { id: 'ee-panels' });
    body.appendChild(this.panelsRoot);
    this.listing = {};
    this.panels = [new Panel(this, this.panelsRoot, 0)];
    this.compare.addEventListener('click', () => this.toggleCompare());
    document.addEventListener('keydown', (event) => {
      if (event.target === document.body && (event.key === 'ArrowLeft' || event.key === 'ArrowRight')) {
        this.panels[0].slider.focus();
      }
    });
  }

  async poll() {
    try {
      this.listing = await getJson('runs');
      if (!Object.keys(this.listing).length) {
        this.status.textContent = 'No embedding snapshots in this log dir yet.';
      } else this.status.textContent = '';
      for (const panel of this.panels) panel.setRuns(this.listing);
    } catch (error) {
      this.status.textContent = String(error.message || error);
    }
    setTimeout(() => this.poll(), POLL_MS);
  }

  toggleCompare(run = null, tags = null) {
    if (this.panels.length === 2) {
      const second = this.panels.pop();
      if (second.plot) second.plot.destroy();
      second.root.remove();
      return;
    }
    const second = new Panel(this, this.panelsRoot, 1);
    this.panels.push(second);
    const first = this.panels[0];
    const pair = first.run ? compareSources(Object.keys(this.listing[first.run] || {})) : [];
    if (tags) {
      first.choose(run, tags[0]);
      second.setRuns(this.listing);
      second.choose(run, tags[1]);
    } else if (pair.length) {
      first.choose(first.run, pair[0][0]);
      second.setRuns(this.listing);
      second.choose(first.run, pair[0][1]);
    } else {
      second.setRuns(this.listing);
    }
  }

  linkSelection(source, label) {
    for (const panel of this.panels) if (panel !== source) panel.selectLabel(label);
  }

  changed() {}
}

// --- helpers ------------------------------------------------------------------------------

function fillSelect(select, values, chosen, text = (v) => v) {
  const same = select.options.length === values.length
    && values.every((v, i) => select.options[i].value === v);
  if (!same) {
    select.textContent = '';
    for (const value of values) select.appendChild(new Option(text(value), value));
  }
  if (chosen !== null && chosen !== undefined) select.value = chosen;
}

function fitTransform(coords) {
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < coords.length; i += 2) {
    const px = coords[i], py = coords[i + 1];
    if (px < minX) minX = px;
    if (px > maxX) maxX = px;
    if (py < minY) minY = py;
    if (py > maxY) maxY = py;
  }
  const half = Math.max(maxX - minX, maxY - minY, 1e-12) / 2;
  return [(minX + maxX) / 2, (minY + maxY) / 2, 0.9 / half];
}

function colorScale(cells) {
  const numbers = cells.map((c) => (c.trim() === '' ? NaN : Number(c)));
  const numeric = numbers.every((v) => Number.isFinite(v));
  const distinct = new Set(cells).size;
  const rows = cells.length;
  if (numeric && distinct > CATEGORY_LIMIT) {
    let lo = Infinity, hi = -Infinity;
    for (const v of numbers) { if (v < lo) lo = v; if (v > hi) hi = v; }
    const w = Float32Array.from(numbers, (v) => (hi > lo ? (v - lo) / (hi - lo) : 0));
    return { kind: 'continuous', z: new Float32Array(rows), w, colorBy: 'valueB', pointColor: RAMP, lo, hi };
  }
  const counts = new Map();
  for (const c of cells) counts.set(c, (counts.get(c) || 0) + 1);
  const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const top = ranked.slice(0, CATEGORY_LIMIT);
  const index = new Map(top.map(([c], i) => [c, i]));
  const other = top.length;
  const z = Float32Array.from(cells, (c) => (index.has(c) ? index.get(c) : other));
  const pointColor = [...PALETTE.slice(0, top.length), OTHER_COLOR];
  const legend = top.map(([c, n], i) => ({ label: c, count: n, color: PALETTE[i] }));
  if (ranked.length > top.length) {
    const rest = ranked.slice(top.length).reduce((s, [, n]) => s + n, 0);
    legend.push({ label: 'other', count: rest, color: OTHER_COLOR });
  }
  return { kind: 'categorical', z, w: new Float32Array(rows), colorBy: 'valueA', pointColor, legend };
}

function renderLegend(root, colors) {
  if (colors.kind === 'categorical') {
    for (const item of colors.legend) {
      const entry = document.createElement('span');
      entry.className = 'ee-legend-entry';
      const swatch = document.createElement('span');
      swatch.className = 'ee-swatch';
      swatch.style.background = item.color;
      entry.appendChild(swatch);
      entry.appendChild(document.createTextNode(`${item.label} (${item.count})`));
      root.appendChild(entry);
    }
  } else {
    const lo = document.createElement('span');
    lo.className = 'ee-legend-min';
    lo.textContent = String(colors.lo);
    const ramp = document.createElement('span');
    ramp.className = 'ee-ramp';
    ramp.style.background = `linear-gradient(to right, ${RAMP.join(',')})`;
    const hi = document.createElement('span');
    hi.className = 'ee-legend-max';
    hi.textContent = String(colors.hi);
    root.append(lo, ramp, hi);
  }
}

function viridis(t) {
  // A few stops of matplotlib's viridis, interpolated.
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const f = t * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(f));
  const u = f - i;
  const c = stops[i].map((v, k) => Math.round(v + (stops[i + 1][k] - v) * u));
  return `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

// --- entry point and test hook ------------------------------------------------------------

export async function render() {
  const app = new App(document.body);
  window.embeddingEvolution = {
    state() {
      const p = app.panels[0];
      return { run: p.run, tag: p.tag, step: p.drawnStep, count: p.drawnStep === null ? 0 : p.count };
    },
    positions(panel = 0) { return app.panels[panel] ? app.panels[panel].positions() : null; },
    steps(panel = 0) { return app.panels[panel].steps.slice(); },
    panels() {
      return app.panels.map((p) => ({ run: p.run, tag: p.tag, step: p.drawnStep, count: p.count }));
    },
    colorOf(row, panel = 0) { return app.panels[panel].colorOf(row); },
    selection(panel = 0) {
      const p = app.panels[panel];
      return p.plot ? Array.from(p.plot.get('selectedPoints')) : [];
    },
    neighbors(panel = 0) { return app.panels[panel].neighbors || null; },
    paths(panel = 0) { return app.panels[panel].pathVertices || []; },
    view(panel = 0) { const p = app.panels[panel]; return p.plot ? Array.from(p.plot.get('cameraView')) : null; },
    choose(run, tag, panel = 0) { return app.panels[panel].choose(run, tag); },
    click(row, panel = 0) { return app.panels[panel].clicked(row, true); },
    compare(run = null, tags = null) { app.toggleCompare(run, tags); },
  };
  await app.poll();
}
