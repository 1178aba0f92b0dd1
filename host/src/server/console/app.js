// Hookhost web console: one tenant's clusters and operations, read through
// the HTTP API with the token kept in sessionStorage (this tab only).
// Whatever the API answers is untrusted (cluster names, hook messages): it is
// shown with textContent and attributes only, never parsed as HTML.
'use strict';

const TOKEN_KEY = 'hookhost-token';
const SVG_NS = 'http://www.w3.org/2000/svg';
const LIST_EVERY_MS = 5000;
const RUNNING_OP_EVERY_MS = 1000;

// What is shown; `session` changes at each log in and out, so that a reply
// that arrives after it is dropped.
const state = { session: 0, cluster: null, op: null, ops: new Map(), listTimer: null, opTimer: null };

const $ = (id) => document.getElementById(id);

/** An HTML element with attributes and text or element children. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ''));
  return node;
}

/** An SVG element with attributes and, optionally, text. */
function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

class AuthError extends Error {}

/** GET /api/v1{path} with the token; `optional`: a 404 is null, not an error. */
async function api(path, { optional = false } = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY) || '';
  const res = await fetch('/api/v1' + path, { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' });
  if (res.status === 401) throw new AuthError('That token is no tenant\u2019s (401 Unauthorized). Check it and log in again.');
  if (optional && res.status === 404) return null;
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${path}: ${(body && body.error) || res.status + ' ' + res.statusText}`);
  return body;
}

const enc = encodeURIComponent;

/** Milliseconds since the epoch of an RFC 3339 time (microseconds cut to ms). */
function ms(text) {
  return typeof text === 'string' ? Date.parse(text.replace(/(\.\d{3})\d+/, '$1')) : NaN;
}

function showError(message) {
  $('error').textContent = message || '';
  $('error').hidden = !message;
}

/** A failed request: a bad token logs out; anything else shows in the banner. */
function fail(error) {
  if (error instanceof AuthError) {
    logOut(error.message);
  } else {
    showError(error instanceof TypeError ? 'Cannot reach the server: ' + error.message : error.message);
  }
}

function stopTimers() {
  clearInterval(state.listTimer);
  clearTimeout(state.opTimer);
  state.listTimer = state.opTimer = null;
}

function logOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopTimers();
  Object.assign(state, { session: state.session + 1, cluster: null, op: null, ops: new Map() });
  for (const id of ['main', 'logout', 'error', 'cluster-detail', 'op-detail']) $(id).hidden = true;
  for (const id of ['cluster-rows', 'op-rows', 'node-rows', 'health-changes', 'monitor', 'timeline', 'journal']) $(id).replaceChildren();
  $('tenant').textContent = '';
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('login-error').hidden = !message;
  $('token').value = '';
  $('token').focus();
}

async function logIn() {
  const session = ++state.session;
  try {
    const me = await api('/whoami');
    if (session !== state.session) return;
    $('tenant').textContent = 'tenant ' + me.tenant;
    $('login').hidden = true;
    $('main').hidden = false;
    $('logout').hidden = false;
    await refresh();
    state.listTimer = setInterval(() => refresh().catch(fail), LIST_EVERY_MS);
  } catch (error) {
    fail(error);
  }
}

/** Both lists, and the selected cluster. */
async function refresh() {
  const session = state.session;
  const [clusters, ops] = await Promise.all([api('/clusters'), api('/operations')]);
  if (session !== state.session) return;
  showError('');
  renderClusters(clusters);
  renderOps(ops);
  if (state.cluster) await showCluster();
}

/** A table row that selects `id` when clicked; its first cell is a button for the keyboard. */
function row(id, onSelect, selected, cells) {
  const tr = el('tr', { 'data-id': id }, el('td', {}, el('button', { type: 'button', class: 'link' }, id)));
  for (const [col, text, status] of cells) {
    tr.append(el('td', status === undefined ? { 'data-col': col } : { 'data-col': col, 'data-status': status }, text));
  }
  if (selected) tr.classList.add('selected');
  tr.addEventListener('click', () => onSelect(id).catch(fail));
  return tr;
}

function renderClusters(clusters) {
  const rows = clusters.map((c) => {
    const app = c.app && c.app.app ? `${c.app.app} ${c.app.version}` : '';
    return row(c.id, selectCluster, c.id === state.cluster, [
      ['name', c.name], ['app', app], ['status', c.status, c.status], ['nodes', c.nodes],
    ]);
  });
  $('cluster-rows').replaceChildren(...rows);
  $('clusters-empty').hidden = clusters.length > 0;
}

function renderOps(ops) {
  state.ops = new Map(ops.map((op) => [op.id, op]));
  // Newest first.
  const sorted = [...ops].sort((a, b) => (ms(b.created_at) - ms(a.created_at)) || (a.id < b.id ? 1 : -1));
  const rows = sorted.map((op) => row(op.id, selectOp, op.id === state.op, [
    ['kind', op.kind], ['cluster', op.cluster_id], ['status', op.status, op.status], ['created', op.created_at],
  ]));
  $('op-rows').replaceChildren(...rows);
  $('ops-empty').hidden = ops.length > 0;
}

function markSelected(tbody, id) {
  for (const tr of $(tbody).children) tr.classList.toggle('selected', tr.dataset.id === id);
}

async function selectCluster(id) {
  state.cluster = id;
  markSelected('cluster-rows', id);
  await showCluster();
}

/** The selected cluster: its nodes with their health, and its monitor charts. */
async function showCluster() {
  const id = state.cluster;
  const monitor = api(`/clusters/${enc(id)}/monitor`, { optional: true }).catch((error) => {
    // Monitoring is optional: only a bad token matters here.
    if (error instanceof AuthError) throw error;
    return null;
  });
  const [cluster, samples] = await Promise.all([api(`/clusters/${enc(id)}`), monitor]);
  if (id !== state.cluster) return;
  const app = cluster.app && cluster.app.app ? ` · ${cluster.app.app} ${cluster.app.version}` : '';
  $('cluster-title').textContent = `${cluster.name} · ${cluster.id}${app} · ${cluster.status}`;
  // `health: {nodes: {id: …}, transitions: […]}` (also a bare `{id: …}`); absent until checks ran.
  const health = cluster.health || {};
  const byNode = health.nodes && typeof health.nodes === 'object' ? health.nodes : health;
  const rows = (cluster.nodes || []).map((node) => {
    const status = node.deleted ? 'deleted' : node.joining ? 'joining' : node.instance_id ? 'running' : 'stopped';
    let h = byNode[node.node_id] || {};
    // Results about an earlier instance say nothing of this one.
    if (h.instance_id && h.instance_id !== node.instance_id) h = {};
    const healthStatus = h.status || 'unknown';
    const checks = h.checked_at ? `${h.successes ?? 0} ok, ${h.failures ?? 0} failed` : '';
    const last = h.checked_at ? `${h.checked_at}${h.message ? ': ' + h.message : ''}` : '';
    return el('tr', { 'data-id': node.node_id },
      el('td', { 'data-col': 'node', class: 'mono' }, node.node_id),
      el('td', { 'data-col': 'role' }, node.role),
      el('td', { 'data-col': 'ip', class: 'mono' }, node.ip || ''),
      el('td', { 'data-col': 'instance', class: 'mono' }, node.instance_id || ''),
      el('td', { 'data-col': 'status', 'data-status': status === 'running' ? 'running-node' : status }, status),
      el('td', { 'data-col': 'health', 'data-status': healthStatus }, healthStatus),
      el('td', { 'data-col': 'checks' }, checks),
      el('td', { 'data-col': 'last-check', class: 'message' }, last));
  });
  $('node-rows').replaceChildren(...rows);
  // The latest health changes, newest first.
  const changes = (Array.isArray(health.transitions) ? health.transitions : []).slice(-5).reverse();
  $('health-changes').replaceChildren(...changes.map((t) => el('li', {},
    `${t.at} ${t.node_id} (${t.role}): ${t.from} \u2192 `, el('span', { 'data-status': t.to }, t.to),
    t.message ? ` \u2014 ${t.message}` : '', t.action ? ` (health action: ${t.action})` : '')));
  $('health-changes').hidden = changes.length === 0;
  renderMonitor(samples);
  $('cluster-detail').hidden = false;
}

/** One chart per numeric item, one polyline per node. */
function renderMonitor(samples) {
  const charts = [];
  if (samples && Array.isArray(samples.items) && samples.nodes && typeof samples.nodes === 'object') {
    const nodes = Object.keys(samples.nodes).sort();
    for (const item of samples.items) {
      const series = nodes.map((node) => (Array.isArray(samples.nodes[node]) ? samples.nodes[node] : [])
        .map((p) => [Number(p && p.at_ms), Number(p && p.values && p.values[item])])
        .filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v))
        .sort((a, b) => a[0] - b[0]));
      if (series.some((s) => s.length > 0)) charts.push(chart(String(item), nodes, series));
    }
  }
  $('monitor').replaceChildren(...charts);
}

function chart(item, nodes, series) {
  const [W, H, left, top, bottom] = [320, 130, 44, 8, 16];
  const points = series.flat();
  const t0 = Math.min(...points.map((p) => p[0]));
  const t1 = Math.max(t0 + 1, ...points.map((p) => p[0]));
  const v0 = Math.min(0, ...points.map((p) => p[1]));
  const v1 = Math.max(v0 + 1e-9, ...points.map((p) => p[1]));
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (W - left - 4);
  const y = (v) => H - bottom - ((v - v0) / (v1 - v0)) * (H - top - bottom);
  const plot = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, 'data-item': item, role: 'img' });
  plot.append(svg('title', {}, `${item} by node`),
    svg('line', { class: 'axis', x1: left, y1: top, x2: left, y2: H - bottom }),
    svg('line', { class: 'axis', x1: left, y1: H - bottom, x2: W - 4, y2: H - bottom }),
    svg('text', { x: left - 4, y: top + 8, 'text-anchor': 'end' }, +v1.toPrecision(4)),
    svg('text', { x: left - 4, y: H - bottom, 'text-anchor': 'end' }, +v0.toPrecision(4)),
    svg('text', { x: left, y: H - 3 }, new Date(t0).toLocaleTimeString()),
    svg('text', { x: W - 4, y: H - 3, 'text-anchor': 'end' }, new Date(t1).toLocaleTimeString()));
  const legend = [];
  series.forEach((s, i) => {
    if (s.length === 0) return;
    const line = svg('polyline', { class: `series-${i % 6}`, 'data-node': nodes[i], points: s.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ') });
    line.append(svg('title', {}, nodes[i]));
    plot.append(line);
    legend.push(el('span', { class: `series-${i % 6}` }, '\u25a0 '), nodes[i] + '  ');
  });
  return el('figure', { 'data-item': item }, plot, el('figcaption', {}, el('b', {}, item), ' ', ...legend));
}

async function selectOp(id) {
  state.op = id;
  clearTimeout(state.opTimer);
  markSelected('op-rows', id);
  await showOp();
}

/** The selected operation: journal and timeline, redrawn every second while it runs. */
async function showOp() {
  const id = state.op;
  clearTimeout(state.opTimer);
  const [doc, events] = await Promise.all([api(`/operations/${enc(id)}`), api(`/operations/${enc(id)}/events`)]);
  if (id !== state.op) return;
  const op = doc.operation || {};
  const kind = (state.ops.get(id) || {}).kind || (op.request && op.request.kind) || '';
  const running = op.status === 'running' && !doc.interrupted;
  $('op-title').textContent = `${id} · ${kind} · cluster ${op.cluster_id} · ${doc.interrupted ? 'interrupted' : op.status}`;
  $('op-error').textContent = op.error || '';
  $('op-error').hidden = !op.error;
  renderTimeline(events, Date.now());
  renderJournal(op, doc.steps || []);
  $('op-detail').hidden = false;
  if (running) {
    state.opTimer = setTimeout(() => showOp().catch(fail), RUNNING_OP_EVERY_MS);
  }
}

/** Like `hookhost op show`: a row per service and node, a bar per invocation from its start to its end. */
function renderTimeline(events, now) {
  const spans = events.map((e) => {
    const start = ms(e.started_at);
    const end = e.outcome === 'running' ? Math.max(start, now) : e.outcome === 'interrupted' ? start : ms(e.ended_at) || start;
    return { e, start, end: Math.max(start, end) };
  }).filter((s) => Number.isFinite(s.start));
  const rows = [];
  const rowOf = new Map();
  for (const s of spans) {
    const key = `${s.e.service}\u0000${s.e.node_id}`;
    if (!rowOf.has(key)) {
      rowOf.set(key, rows.length);
      rows.push(`${s.e.service} · ${s.e.role} ${s.e.node_id}`);
    }
  }
  if (spans.length === 0) {
    $('timeline').replaceChildren(el('p', { class: 'empty' }, 'No hook has run.'));
    $('legend').replaceChildren();
    return;
  }
  const [W, label, rowH, head] = [1100, 260, 18, 20];
  const t0 = Math.min(...spans.map((s) => s.start));
  const total = Math.max(1, Math.max(...spans.map((s) => s.end)) - t0);
  const plotW = W - label - 10;
  const x = (t) => label + ((t - t0) / total) * plotW;
  const H = head + rows.length * rowH + 4;
  const plot = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img' });
  plot.append(svg('title', {}, `${spans.length} hook invocations over ${(total / 1000).toFixed(3)} s`));
  for (let i = 0; i <= 5; i++) {
    const at = label + (plotW * i) / 5;
    plot.append(svg('line', { x1: at, y1: head - 4, x2: at, y2: H }),
      svg('text', { x: at, y: 12, 'text-anchor': i === 0 ? 'start' : i === 5 ? 'end' : 'middle' }, `+${((total * i) / 5000).toFixed(2)}s`));
  }
  rows.forEach((name, i) => plot.append(svg('text', { x: 4, y: head + i * rowH + 12 }, name)));
  for (const { e, start, end } of spans) {
    const bar = svg('rect', {
      x: x(start).toFixed(1), y: head + rowOf.get(`${e.service}\u0000${e.node_id}`) * rowH + 2,
      width: Math.max(3, x(end) - x(start)).toFixed(1), height: rowH - 4, rx: 2,
      'data-outcome': e.outcome, 'data-service': e.service, 'data-node': e.node_id,
    });
    const took = `${e.outcome === 'running' ? 'for ' : ''}${((end - start) / 1000).toFixed(3)} s`;
    const detail = e.message ? ` \u2014 ${e.code != null ? 'error ' + e.code + ': ' : ''}${e.message}` : '';
    bar.append(svg('title', {}, `${e.service} on ${e.node_id} (${e.role}), attempt ${e.attempt}: ${e.outcome} ${took}${detail}`));
    plot.append(bar);
  }
  $('timeline').replaceChildren(plot);
  const seen = [...new Set(spans.map((s) => s.e.outcome))];
  $('legend').replaceChildren(...seen.map((o) => el('li', {}, el('span', { 'data-outcome': o }), o)));
}

/** The plan's steps with what the journal says of each, as `op show` lists them. */
function renderJournal(op, records) {
  const plan = op.plan || {};
  const main = (plan.steps || []).length;
  const items = [...(plan.steps || []), ...(plan.recovery || [])].map((step, i) => {
    const record = records.find((r) => r.index === i);
    const outcome = record ? record.outcome || 'running' : 'pending';
    const took = record && record.ended_at ? ` ${((ms(record.ended_at) - ms(record.started_at)) / 1000).toFixed(3)}s` : '';
    const action = step.action || {};
    const what = [action.kind, action.service].filter(Boolean).join(' ');
    const li = el('li', { value: i < main ? i + 1 : i + 1 - main },
      i >= main ? 'recovery: ' : '', el('b', { 'data-status': outcome === 'ok' ? 'succeeded' : outcome }, outcome), took, ' ', what,
      el('div', { class: 'seed' }, step.seed || ''));
    if (record && record.message) li.append(el('div', { class: 'message' }, record.message));
    return li;
  });
  $('journal').replaceChildren(...items);
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('token').value.trim();
    if (!token) {
      $('login-error').textContent = 'Paste a token first.';
      $('login-error').hidden = false;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    logIn();
  });
  $('logout').addEventListener('click', () => logOut(''));
  if (sessionStorage.getItem(TOKEN_KEY)) logIn();
  else logOut('');
});
