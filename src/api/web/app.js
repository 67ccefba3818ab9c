// roam6 Home Agent page: a live, server-paginated view of the bindings. Plain ES module, no
// build step. Every list is filtered, sorted and paged by the API, so 10,000+ bindings cost one
// page; the event stream (/api/v1/events) keeps the page, the moves timeline and an open guest
// view current. All text goes in through textContent.

const $ = (id) => document.getElementById(id);
const api = (path, opts = {}) =>
  fetch(path, { headers: { accept: 'application/json' }, ...opts }).then(async (r) => {
    const body = r.status === 204 ? null : await r.json().catch(() => null);
    if (!r.ok) throw new Error(body?.message ?? `HTTP ${r.status}`);
    return body;
  });

const state = { q: '', host: '', state: '', movedWithin: '', expiringWithin: '', sort: 'guest', order: 'asc', limit: 50, offset: 0 };
let page = null; // last list response
let listAbort = null;
let refetchTimer = null;
let lastListAt = 0;

// ---- formatting -------------------------------------------------------------------------------

function ago(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return `${dur(s)} ago`;
}
function dur(s) {
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d ${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}
function ms(v) {
  if (v === null || v === undefined) return '–';
  if (v === 0) return '<1 ms';
  if (v < 10) return `${Math.round(v * 10) / 10} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  return `${(v / 1000).toFixed(1)} s`;
}
const time = (iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const num = (n) => Number(n).toLocaleString();
const where = (addr, host) => (host ? `${host} · ${addr}` : addr);

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

/** Re-render `container` without losing keyboard focus on a link inside it. */
function keepFocus(container, render) {
  const a = document.activeElement;
  const href = a && container.contains(a) ? a.getAttribute('href') : null;
  render();
  if (href) container.querySelector(`a[href="${CSS.escape(href)}"]`)?.focus();
}

function announce(text) {
  $('announce').textContent = text;
}

// ---- the bindings table -------------------------------------------------------------------------

function query() {
  const p = new URLSearchParams({ limit: String(state.limit), offset: String(state.offset), sort: state.sort, order: state.order });
  for (const k of ['q', 'host', 'state', 'movedWithin', 'expiringWithin']) if (state[k]) p.set(k, state[k]);
  return p;
}

async function loadList() {
  listAbort?.abort();
  listAbort = new AbortController();
  lastListAt = Date.now();
  try {
    page = await api(`/api/v1/bindings?${query()}`, { signal: listAbort.signal });
    renderRows();
  } catch (e) {
    if (e.name === 'AbortError') return;
    const body = $('rows');
    body.replaceChildren(el('tr', {}, el('td', { colspan: '8', class: 'empty', text: `Could not load the bindings: ${e.message}` })));
  }
}

/** After events: refetch the page at most every 400 ms. */
function scheduleList() {
  if (refetchTimer) return;
  const wait = Math.max(0, 400 - (Date.now() - lastListAt));
  refetchTimer = setTimeout(() => {
    refetchTimer = null;
    void loadList();
  }, wait);
}

const flashing = new Set();

function renderRows() {
  const body = $('rows');
  if (!page) return;
  keepFocus(body, () => {
    if (page.bindings.length === 0) {
      body.replaceChildren(el('tr', {}, el('td', { colspan: '8', class: 'empty', text: page.total === 0 && !anyFilter() ? 'No bindings yet.' : 'No binding matches these filters.' })));
    } else {
      body.replaceChildren(...page.bindings.map(row));
    }
  });
  const from = page.total === 0 ? 0 : page.offset + 1;
  const to = page.offset + page.bindings.length;
  $('page-status').textContent = `${num(from)}–${num(to)} of ${num(page.total)} binding${page.total === 1 ? '' : 's'}`;
  $('prev').disabled = page.offset === 0;
  $('next').disabled = to >= page.total;
}

function anyFilter() {
  return !!(state.q || state.host || state.state || state.movedWithin || state.expiringWithin);
}

function row(b) {
  const left = Math.max(0, (Date.parse(b.expiresAt) - Date.now()) / 1000);
  const tr = el(
    'tr',
    { 'data-guest': b.guest, class: flashing.has(b.guest) ? 'flash' : undefined },
    el('td', {}, el('a', { href: `#guest=${encodeURIComponent(b.guest)}`, text: b.guest })),
    el('td', { class: b.host ? undefined : 'muted', text: b.host ?? '–' }),
    el('td', { class: 'mono', text: b.coa }),
    el('td', { class: 'mono', text: b.mnps.join(', ') }),
    el('td', { class: 'num', text: String(b.seq) }),
    el('td', { class: 'num', title: `expires ${new Date(b.expiresAt).toLocaleString()}`, text: dur(left) }),
    el('td', {}, el('span', { class: `state ${b.state}`, text: b.state })),
    el('td', { class: 'num', title: b.lastHandover ? `${where(b.lastHandover.from, b.lastHandover.fromHost)} → ${where(b.lastHandover.to, b.lastHandover.toHost)} at ${new Date(b.lastHandover.at).toLocaleString()}` : undefined, text: b.lastHandover ? ago(b.lastHandover.at) : '–' }),
  );
  return tr;
}

function setSortIndicators() {
  for (const th of document.querySelectorAll('th[data-sort]')) {
    if (th.dataset.sort === state.sort) th.setAttribute('aria-sort', state.order === 'asc' ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  }
}

function saveUrl() {
  const p = new URLSearchParams();
  for (const k of ['q', 'host', 'state', 'movedWithin', 'expiringWithin']) if (state[k]) p.set(k, state[k]);
  if (state.sort !== 'guest' || state.order !== 'asc') {
    p.set('sort', state.sort);
    p.set('order', state.order);
  }
  const search = p.size ? `?${p}` : '';
  history.replaceState(null, '', `${location.pathname}${search}${location.hash}`);
}

function wireFilters() {
  const p = new URLSearchParams(location.search);
  for (const k of ['q', 'host', 'state', 'movedWithin', 'expiringWithin']) if (p.get(k)) state[k] = p.get(k);
  if (p.get('sort')) state.sort = p.get('sort');
  if (p.get('order')) state.order = p.get('order');
  $('f-q').value = state.q;
  $('f-state').value = state.state;
  $('f-moved').value = state.movedWithin;
  $('f-expiring').value = state.expiringWithin;

  let debounce = null;
  $('f-q').addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      state.q = $('f-q').value.trim();
      state.offset = 0;
      saveUrl();
      void loadList();
    }, 200);
  });
  $('filters').addEventListener('submit', (e) => e.preventDefault());
  for (const [id, key] of [['f-host', 'host'], ['f-state', 'state'], ['f-moved', 'movedWithin'], ['f-expiring', 'expiringWithin']]) {
    $(id).addEventListener('change', () => {
      state[key] = $(id).value;
      state.offset = 0;
      saveUrl();
      void loadList();
    });
  }
  $('f-size').addEventListener('change', () => {
    state.limit = Number($('f-size').value);
    state.offset = 0;
    void loadList();
  });
  $('prev').addEventListener('click', () => {
    state.offset = Math.max(0, state.offset - state.limit);
    void loadList();
  });
  $('next').addEventListener('click', () => {
    state.offset += state.limit;
    void loadList();
  });
  for (const th of document.querySelectorAll('th[data-sort]')) {
    th.querySelector('button').addEventListener('click', () => {
      const key = th.dataset.sort;
      if (state.sort === key) state.order = state.order === 'asc' ? 'desc' : 'asc';
      else {
        state.sort = key;
        state.order = key === 'lastMove' ? 'desc' : 'asc';
      }
      state.offset = 0;
      setSortIndicators();
      saveUrl();
      void loadList();
    });
  }
  setSortIndicators();
}

// ---- header: health, hosts ------------------------------------------------------------------------

async function loadHealth() {
  try {
    const h = await api('/api/v1/health');
    $('stat-bindings').textContent = num(h.bindings);
    const pill = $('stat-health');
    pill.textContent = h.ready ? 'ready' : 'degraded';
    pill.className = `pill ${h.ready ? 'ok' : 'warn'}`;
    const failing = Object.entries(h.checks ?? {}).filter(([, c]) => !c.ok).map(([k, c]) => `${k}: ${c.detail ?? 'failing'}`);
    pill.title = failing.length ? failing.join('\n') : 'Redis and the data plane answer';
  } catch (e) {
    const pill = $('stat-health');
    pill.textContent = 'unreachable';
    pill.className = 'pill bad';
    pill.title = e.message;
  }
}

async function loadHosts() {
  try {
    const r = await api('/api/v1/hosts');
    $('stat-hosts').textContent = String(r.hosts.filter((h) => h.alive).length);
    const sel = $('f-host');
    const keep = state.host;
    sel.replaceChildren(el('option', { value: '', text: 'all hosts' }), ...r.hosts.map((h) => el('option', { value: h.host, text: `${h.host} (${num(h.bindings)})${h.alive ? '' : ' – down'}` })));
    sel.value = keep;
  } catch {
    /* header only */
  }
}

// ---- recent moves and the event log ------------------------------------------------------------------

const moves = [];

function moveItem(m, fresh) {
  return el(
    'li',
    { class: fresh ? 'new' : undefined },
    el('div', { class: 'when', text: `${time(m.at)} · ${ago(m.at)}` }),
    el('div', { class: 'who' }, el('a', { href: `#guest=${encodeURIComponent(m.guest)}`, text: m.guest })),
    el('div', { class: 'path', text: `${m.fromHost ?? m.from} → ${m.toHost ?? m.to}` }),
    m.haMs !== null && m.haMs !== undefined ? el('div', { class: 'dur', text: `HA ${ms(m.haMs)}` }) : null,
  );
}

function renderMoves() {
  const list = $('moves');
  keepFocus(list, () => {
    if (moves.length === 0) list.replaceChildren(el('li', { class: 'empty', text: 'No moves in the last hour.' }));
    else list.replaceChildren(...moves.slice(0, 30).map((m) => moveItem(m, m.fresh)));
  });
  $('stat-moves').textContent = num(moves.filter((m) => Date.now() - Date.parse(m.at) < 3600_000).length);
}

async function loadMoves() {
  try {
    const r = await api('/api/v1/moves?within=3600&limit=100');
    moves.splice(0, moves.length, ...r.moves);
    renderMoves();
  } catch {
    /* side panel only */
  }
}

function logEvent(e) {
  const list = $('events');
  const text =
    e.type === 'moved'
      ? `${time(e.at)} moved ${e.guest} ${e.fromHost ?? e.from} → ${e.host ?? e.coa}`
      : e.type === 'rejected'
        ? `${time(e.at)} rejected ${e.guest} ${e.status} ${e.statusText ?? ''}`
        : `${time(e.at)} ${e.type} ${e.guest}${e.coa ? ` ${e.host ?? e.coa}` : ''}`;
  list.prepend(el('li', { class: `t-${e.type}`, title: text, text }));
  while (list.children.length > 60) list.lastElementChild.remove();
}

// ---- the event stream -------------------------------------------------------------------------------

function connect() {
  const es = new EventSource('/api/v1/events');
  const pill = $('stat-stream');
  es.addEventListener('hello', () => {
    pill.textContent = 'live';
    pill.className = 'pill ok';
  });
  es.addEventListener('reset', () => {
    void loadList();
    void loadMoves();
  });
  es.onerror = () => {
    pill.textContent = 'reconnecting';
    pill.className = 'pill warn';
  };
  for (const type of ['created', 'updated', 'moved', 'deregistered', 'expired', 'revoked', 'rejected', 'held', 'released']) {
    es.addEventListener(type, (msg) => {
      const e = JSON.parse(msg.data);
      if (type !== 'updated') logEvent(e);
      if (type === 'moved') {
        moves.unshift({ guest: e.guest, from: e.from, to: e.coa, fromHost: e.fromHost, toHost: e.host, at: e.at, haMs: e.durationMs ?? null, fresh: true });
        moves.length = Math.min(moves.length, 200);
        renderMoves();
        announce(`${e.guest} moved to ${e.host ?? e.coa}`);
      }
      if (type !== 'rejected') {
        flashing.add(e.guest);
        setTimeout(() => flashing.delete(e.guest), 1600);
        if (type !== 'updated' || page?.bindings.some((b) => b.guest === e.guest)) scheduleList();
      }
      if (detail.guest === e.guest) void loadDetail();
    });
  }
}

// ---- one guest ----------------------------------------------------------------------------------------

const detail = { guest: null, timer: null, samples: [], last: null };

function openFromHash() {
  const m = /^#guest=(.+)$/.exec(location.hash);
  if (m) openDetail(decodeURIComponent(m[1]));
  else if ($('detail').open) $('detail').close();
}

function openDetail(guest) {
  if (detail.guest !== guest) {
    detail.samples = [];
    detail.last = null;
  }
  detail.guest = guest;
  $('d-title').textContent = guest;
  $('d-where').textContent = 'loading…';
  const dlg = $('detail');
  if (!dlg.open) dlg.showModal();
  clearInterval(detail.timer);
  detail.timer = setInterval(() => void loadDetail(), 2000);
  void loadDetail();
}

function closeDetail() {
  clearInterval(detail.timer);
  detail.guest = null;
  if (location.hash) history.replaceState(null, '', `${location.pathname}${location.search}`);
}

async function loadDetail() {
  const guest = detail.guest;
  if (!guest) return;
  let b;
  try {
    b = await api(`/api/v1/bindings/${encodeURIComponent(guest)}`);
  } catch (e) {
    if (detail.guest !== guest) return;
    $('d-where').textContent = e.message;
    $('d-fields').replaceChildren();
    $('d-history').replaceChildren();
    return;
  }
  if (detail.guest !== guest) return;
  const since = b.lastHandover?.at ?? b.registeredAt;
  $('d-where').textContent = `${b.state} at ${where(b.coa, b.host)} since ${time(since)} (${ago(since)})`;
  const kv = [
    ['MNPs', b.mnps.join(', ')],
    ['Care-of address', b.coa],
    ['Host', b.host ?? 'unknown'],
    ['HA address', b.haAddress],
    ['Sequence', String(b.seq)],
    ['Lifetime', `${dur(b.lifetimeSec)} granted · ${dur(b.lifetimeLeftSec)} left`],
    ['Registered', `${new Date(b.registeredAt).toLocaleString()} (${ago(b.registeredAt)})`],
    ['Last update', ago(b.updatedAt)],
    ['BUs', `${num(b.bus.accepted)} accepted · ${num(b.bus.rejected)} rejected · ${num(b.bus.dropped)} dropped`],
  ];
  if (b.lastRejection) kv.push(['Last rejection', `${b.lastRejection.status} ${b.lastRejection.statusText} · ${ago(b.lastRejection.at)}`]);
  if (b.dataplane) kv.push(['Data plane', `to guest ${num(b.dataplane.txPackets)} pkts · from guest ${num(b.dataplane.rxPackets)} pkts · ${num(b.dataplane.rxDropped)} dropped`]);
  $('d-fields').replaceChildren(...kv.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { class: /address|MNPs/.test(k) ? 'mono' : undefined, text: v })]));

  const h = b.history ?? [];
  $('d-history').replaceChildren(
    ...(h.length === 0
      ? [el('li', { class: 'empty', text: 'No handovers: at this CoA since it registered.' })]
      : h
          .slice()
          .reverse()
          .map((x) =>
            el(
              'li',
              {},
              el('div', { class: 'when', text: `${new Date(x.at).toLocaleString()} · ${ago(x.at)}` }),
              el('div', { class: 'path', text: `${where(x.from, x.fromHost)} → ${where(x.to, x.toHost)}` }),
              el('div', { class: 'dur', text: x.durationMs === null ? 'duration –' : `${ms(x.durationMs)}${x.durationSource === 'ha' ? ' (HA)' : ''}${x.migration ? ` · migration ${ms(x.migration.totalMs)}, pause ${ms(x.migration.pauseMs)}` : ''}` }),
            ),
          )),
  );
  sample(b.dataplane);
}

function sample(dp) {
  if (!dp) {
    $('d-traffic-hint').textContent = 'no data-plane counters for this binding';
    $('d-spark-empty').textContent = 'The data plane keeps no counters for this binding.';
    $('d-spark-empty').hidden = false;
    return;
  }
  $('d-spark-empty').textContent = 'Collecting samples…';
  const now = Date.now();
  if (detail.last) {
    const dt = (now - detail.last.t) / 1000;
    if (dt > 0) {
      detail.samples.push({ tx: Math.max(0, (dp.txPackets - detail.last.tx) / dt), rx: Math.max(0, (dp.rxPackets - detail.last.rx) / dt) });
      if (detail.samples.length > 60) detail.samples.shift();
    }
  }
  detail.last = { t: now, tx: dp.txPackets, rx: dp.rxPackets };
  const s = detail.samples;
  const cur = s.at(-1);
  $('d-tx').textContent = cur ? `${num(Math.round(cur.tx))} pkt/s` : '–';
  $('d-rx').textContent = cur ? `${num(Math.round(cur.rx))} pkt/s` : '–';
  $('d-traffic-hint').textContent = s.length ? `last ${s.length * 2} s, sampled every 2 s` : 'sampled every 2 s while open';
  const max = Math.max(1, ...s.map((x) => Math.max(x.tx, x.rx)));
  const line = (key) =>
    s.map((x, i) => `${((i / Math.max(1, s.length - 1)) * 300).toFixed(1)},${(58 - (x[key] / max) * 54).toFixed(1)}`).join(' ');
  const svg = $('d-spark');
  $('d-spark-empty').hidden = s.length >= 2;
  const ns = 'http://www.w3.org/2000/svg';
  for (const p of svg.querySelectorAll('polyline')) p.remove();
  for (const key of ['tx', 'rx']) {
    if (s.length < 2) continue;
    const pl = document.createElementNS(ns, 'polyline');
    pl.setAttribute('class', key);
    pl.setAttribute('points', line(key));
    svg.append(pl);
  }
}

// ---- start ----------------------------------------------------------------------------------------------

wireFilters();
$('d-close').addEventListener('click', () => $('detail').close());
$('detail').addEventListener('close', closeDetail);
$('detail').addEventListener('click', (e) => {
  if (e.target === $('detail')) $('detail').close(); // a click on the backdrop
});
window.addEventListener('hashchange', openFromHash);
void loadList();
void loadHealth();
void loadHosts();
void loadMoves();
// The queue dashboard exists when the HA has Redis (and so the orchestrator's queues).
fetch('/queues', { method: 'HEAD' }).then((r) => {
  if (r.ok) $('queues-link').hidden = false;
}, () => {});
connect();
openFromHash();
setInterval(() => {
  void loadHealth();
  void loadHosts();
}, 10_000);
// Ages and lifetimes tick without refetching.
setInterval(() => {
  renderRows();
  renderMoves();
}, 5_000);
