/*
 * drover dashboard. Reads everything from drover web's JSON API; every
 * value from Redis is inserted with textContent (job fields are hostile
 * input), never as HTML. Changes are POSTs carrying the CSRF token that
 * GET /api/session hands out.
 */
'use strict';

(function () {
  const POLL_MS = 2000;            // queues and chart
  const WORKERS_MS = 5000;         // workers
  const HISTORY_S = 300;           // chart span
  const DEAD_PAGE = 20;
  const KNOWN_STATES = new Set(['ready', 'running', 'delayed', 'dead', 'ok',
                                'failed', 'cancelled', 'pending']);

  const state = {
    csrf: null,
    queues: [],                    // names, from the config
    history: new Map(),            // queue -> [{t, processed, failed}]
    rates: [],                     // [{t, p, f}] for the chart's queue
    deadQueue: null,
    deadPages: [],                 // stack of "after" ids of pages shown
    deadAfter: '',
    deadNext: null,
    clockSkew: 0,                  // server time - browser time, ms
  };

  // ------------------------------------------------------------ helpers
  function $(id) { return document.getElementById(id); }

  // el('td', {class: 'num'}, 'text' | node | [nodes]) -- text as text only
  function el(tag, attrs, content) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (k === 'class') e.className = v;
        else if (k.startsWith('data-')) e.setAttribute(k, v);
        else e[k] = v;
      }
    }
    append(e, content);
    return e;
  }

  function append(e, content) {
    if (content === undefined || content === null) return;
    if (Array.isArray(content)) content.forEach(c => append(e, c));
    else if (content instanceof Node) e.appendChild(content);
    else e.appendChild(document.createTextNode(String(content)));
  }

  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }

  function fmtNum(n) {
    if (n === null || n === undefined) return '?';
    return Number(n).toLocaleString('en-US');
  }

  function fmtRate(r) {
    if (!isFinite(r)) return '–';
    return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
  }

  function fmtAxis(v) {
    if (v === 0) return '0';
    return v >= 10 ? Math.round(v).toLocaleString('en-US') : String(+v.toFixed(2));
  }

  function fmtTime(ms) {
    if (!ms) return '?';
    const d = new Date(Number(ms));
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }

  function fmtAge(ms) {
    if (ms === null || ms === undefined) return '?';
    let s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + 's ago';
    let m = Math.floor(s / 60); s %= 60;
    if (m < 60) return m + 'm ' + s + 's ago';
    const h = Math.floor(m / 60); m %= 60;
    if (h < 48) return h + 'h ' + m + 'm ago';
    return Math.floor(h / 24) + 'd ' + (h % 24) + 'h ago';
  }

  let toastTimer = null;
  function toast(text, isError) {
    const t = $('toast');
    t.textContent = text;
    t.className = isError ? 'toast error' : 'toast';
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 3500);
  }

  function setConn(ok, text) {
    $('conn').className = 'dot ' + (ok ? 'dot-ok' : 'dot-bad');
    $('conn-text').textContent = text;
  }

  function banner(text) {
    const b = $('banner');
    b.textContent = text || '';
    b.hidden = !text;
  }

  // ------------------------------------------------------------ API
  async function api(method, path, body) {
    const opts = { method, headers: {}, credentials: 'same-origin' };
    if (method === 'POST') {
      opts.headers['X-CSRF-Token'] = state.csrf;
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body || {});
    }
    const r = await fetch(path, opts);
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status === 401) {
      banner('Not logged in: open /login?token=YOUR_TOKEN once in this browser.');
    }
    if (!r.ok) {
      const msg = data && data.error ? data.error : 'HTTP ' + r.status;
      const err = new Error(msg);
      err.status = r.status;
      throw err;
    }
    return data;
  }

  function q(name) { return encodeURIComponent(name); }

  // ------------------------------------------------------------ queues
  // one row per queue, built once and updated in place: a button never
  // vanishes under the pointer between two polls
  const queueRows = new Map();      // name -> {tr, cells, pauseBtn, paused}

  function queueRow(name) {
    let r = queueRows.get(name);
    if (r) return r;
    r = { cells: {}, paused: false };
    const tr = el('tr', { 'data-queue': name }, el('td', { class: 'qname' }, name));
    for (const k of ['ready', 'running', 'delayed', 'dead', 'processed', 'failed', 'retried', 'cancelled']) {
      r.cells[k] = el('td', { class: 'num ' + k });
      tr.appendChild(r.cells[k]);
    }
    r.badge = el('span', { class: 'badge' });
    tr.appendChild(el('td', { class: 'state' }, r.badge));
    r.pauseBtn = el('button', { class: 'btn btn-small', type: 'button' });
    r.pauseBtn.addEventListener('click', () => pauseQueue(name, !r.paused));
    const deadBtn = el('button', { class: 'btn btn-small btn-ghost', type: 'button' },
                       'Dead letters');
    deadBtn.addEventListener('click', () => {
      $('dead-queue').value = name;
      showDead(name, '');
      $('dead-list').scrollIntoView({ behavior: 'smooth' });
    });
    tr.appendChild(el('td', { class: 'actions' }, [r.pauseBtn, ' ', deadBtn]));
    $('queues').querySelector('tbody').appendChild(tr);
    r.tr = tr;
    queueRows.set(name, r);
    return r;
  }

  function renderQueues(data) {
    const tot = { ready: 0, running: 0, delayed: 0, dead: 0 };
    for (const s of data.queues) {
      for (const k of Object.keys(tot)) tot[k] += s[k] || 0;
      const r = queueRow(s.name);
      for (const k of Object.keys(r.cells)) r.cells[k].textContent = fmtNum(s[k]);
      r.paused = !!s.paused;
      r.badge.className = r.paused ? 'badge paused' : 'badge';
      r.badge.textContent = r.paused ? 'paused' : 'active';
      r.pauseBtn.textContent = r.paused ? 'Resume' : 'Pause';
      r.pauseBtn.setAttribute('data-action', r.paused ? 'resume' : 'pause');
    }
    for (const k of Object.keys(tot)) $('t-' + k).textContent = fmtNum(tot[k]);
    $('queues-time').textContent = 'as of ' + new Date(data.time).toLocaleTimeString();
  }

  function record(data) {
    const t = data.time / 1000;
    for (const s of data.queues) {
      let h = state.history.get(s.name);
      if (!h) { h = []; state.history.set(s.name, h); }
      h.push({ t, processed: s.processed || 0, failed: s.failed || 0 });
      while (h.length && h[0].t < t - HISTORY_S - 10) h.shift();
    }
  }

  // rates of the chart's queue (or the sum of all) between samples
  function computeRates() {
    const which = $('chart-queue').value;
    const names = which ? [which] : Array.from(state.history.keys());
    const byT = new Map();
    for (const n of names) {
      const h = state.history.get(n) || [];
      for (let i = 1; i < h.length; i++) {
        const dt = h[i].t - h[i - 1].t;
        if (dt <= 0) continue;
        const key = h[i].t;
        const cur = byT.get(key) || { t: key, p: 0, f: 0 };
        // a counter that went down (purged stats) counts as zero
        cur.p += Math.max(0, h[i].processed - h[i - 1].processed) / dt;
        cur.f += Math.max(0, h[i].failed - h[i - 1].failed) / dt;
        byT.set(key, cur);
      }
    }
    state.rates = Array.from(byT.values()).sort((a, b) => a.t - b.t);
    const last = state.rates[state.rates.length - 1];
    $('t-pps').textContent = last ? fmtRate(last.p) : '–';
    $('t-fps').textContent = last ? fmtRate(last.f) : '–';
  }

  function niceMax(v) {
    if (v <= 1) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 4, 6, 8, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function drawChart() {
    const c = $('chart');
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (c.width !== Math.round(w * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const left = 48, right = 8, top = 10, bottom = 8;
    const pw = w - left - right, ph = h - top - bottom;
    const now = Date.now() / 1000;
    // the span grows with the history kept, from one minute to HISTORY_S
    const first = state.rates.length ? state.rates[0].t : now;
    const span = Math.min(HISTORY_S, Math.max(60, Math.ceil((now - first) / 60) * 60));
    const t0 = now - span;
    const pts = state.rates.filter(r => r.t >= t0);
    $('chart-span').textContent = 'last ' + (span / 60) + (span === 60 ? ' minute' : ' minutes');
    let max = 0;
    for (const r of pts) max = Math.max(max, r.p, r.f);
    max = niceMax(max * 1.1);
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = '#667085';
    g.strokeStyle = '#eaecf0';
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const y = top + ph - (ph * i) / 4;
      g.beginPath(); g.moveTo(left, Math.round(y) + 0.5); g.lineTo(left + pw, Math.round(y) + 0.5); g.stroke();
      g.fillText(fmtAxis((max * i) / 4), left - 8, y);
    }
    const step = span > 60 ? 60 : 15;
    for (let m = 1; m < span / step; m++) {
      const x = left + (pw * (m * step)) / span;
      g.beginPath(); g.moveTo(Math.round(x) + 0.5, top); g.lineTo(Math.round(x) + 0.5, top + ph); g.stroke();
    }
    const X = t => left + ((t - t0) / span) * pw;
    const Y = v => top + ph - (v / max) * ph;
    function line(key, stroke, fill) {
      if (pts.length < 1) return;
      g.beginPath();
      pts.forEach((r, i) => { if (i === 0) g.moveTo(X(r.t), Y(r[key])); else g.lineTo(X(r.t), Y(r[key])); });
      if (fill) {
        g.lineTo(X(pts[pts.length - 1].t), top + ph);
        g.lineTo(X(pts[0].t), top + ph);
        g.closePath();
        g.fillStyle = fill; g.fill();
        g.beginPath();
        pts.forEach((r, i) => { if (i === 0) g.moveTo(X(r.t), Y(r[key])); else g.lineTo(X(r.t), Y(r[key])); });
      }
      g.strokeStyle = stroke; g.lineWidth = 2; g.lineJoin = 'round'; g.stroke();
    }
    line('p', '#1f6feb', 'rgba(31,111,235,0.12)');
    line('f', '#d92d20', null);
  }

  function fillQueueSelects() {
    for (const id of ['chart-queue', 'dead-queue', 'lookup-queue', 'run-queue']) {
      const s = $(id);
      const keep = s.value;
      for (const n of state.queues) s.appendChild(el('option', { value: n }, n));
      if (keep) s.value = keep;
    }
  }

  async function pollQueues() {
    try {
      const data = await api('GET', '/api/queues');
      setConn(true, 'live');
      banner('');
      state.clockSkew = data.time - Date.now();
      record(data);
      renderQueues(data);
      computeRates();
    } catch (e) {
      setConn(false, e.status ? 'error' : 'offline');
      if (e.status !== 401) banner('Cannot read the queues: ' + e.message);
    }
    drawChart();
  }

  async function pauseQueue(name, pause) {
    try {
      await api('POST', '/api/queues/' + q(name) + (pause ? '/pause' : '/resume'));
      toast((pause ? 'Paused ' : 'Resumed ') + name);
    } catch (e) {
      toast('Failed: ' + e.message, true);
    }
    pollQueues();
  }

  // ------------------------------------------------------------ workers
  async function pollWorkers() {
    let data;
    try { data = await api('GET', '/api/workers'); } catch (e) { return; }
    const now = Date.now() + state.clockSkew;
    const tbody = $('workers').querySelector('tbody');
    clear(tbody);
    for (const w of data.workers) {
      const beat = w.beat_at !== null ? now - w.beat_at : null;
      tbody.appendChild(el('tr', { 'data-worker': w.id }, [
        el('td', { class: 'mono' }, w.id),
        el('td', null, w.host || '?'),
        el('td', { class: 'num' }, w.pid === null ? '?' : String(w.pid)),
        el('td', null, (w.queues || []).join(', ')),
        el('td', { class: 'num busy' }, w.busy === null ? '?' : fmtNum(w.busy)),
        el('td', null, w.started_at !== null ? fmtAge(now - w.started_at).replace(' ago', '') : '?'),
        el('td', null, [fmtAge(beat), ' ',
                        w.state === 'ok' ? null : el('span', { class: 'badge stale' }, w.state)]),
      ]));
    }
    $('workers-empty').hidden = data.workers.length !== 0;
    $('workers-count').textContent = data.workers.length + (data.workers.length === 1 ? ' worker' : ' workers');
  }

  // ------------------------------------------------------------ dead letters
  // fields: [{name, value}, ...] as the API gives them, in entry order
  function fieldsTable(fields) {
    const t = el('table', { class: 'fields' });
    for (const f of fields) t.appendChild(el('tr', null, [el('th', null, f.name), el('td', null, f.value)]));
    return t;
  }

  function fieldOf(fields, name) {
    let v = null;
    for (const f of fields) if (f.name === name) v = f.value;
    return v;
  }

  function renderDead(data) {
    const list = $('dead-list');
    clear(list);
    for (const e of data.entries) {
      const retry = el('button', { class: 'btn btn-small btn-primary', type: 'button' }, 'Retry');
      retry.setAttribute('data-action', 'retry');
      // by entry id: exactly this entry, even when others share its job id
      retry.addEventListener('click', () => retryOne(e.entry_id));
      const box = el('div', { class: 'dead-entry', 'data-entry': e.entry_id }, [
        el('div', { class: 'dead-head' }, [
          el('div', { class: 'title' }, [
            el('span', { class: 'job' }, e.job || e.pipeline || '(no job field)'),
            el('span', { class: 'mono' }, e.id || e.entry_id),
            el('span', { class: 'hint' }, [
              'attempts ', e.attempts === null ? '?' : e.attempts,
              ' · failed ', e.failed_at !== null ? fmtTime(e.failed_at) : '?',
              ' · entry ', e.entry_id]),
          ]),
          retry,
        ]),
        el('div', { class: 'dead-error' }, e.error || ''),
        fieldsTable(e.fields),
      ]);
      list.appendChild(box);
    }
    if (data.entries.length === 0) list.appendChild(el('p', { class: 'empty' }, 'No dead letters in ' + data.queue + '.'));
    $('dead-summary').textContent = fmtNum(data.total) + ' dead ' + (data.total === 1 ? 'entry' : 'entries') + ' in ' + data.queue + ', oldest first';
    state.deadNext = data.next;
    $('dead-next').disabled = !data.next;
    $('dead-prev').disabled = state.deadPages.length === 0;
    $('dead-first').disabled = state.deadPages.length === 0;
    $('dead-page').textContent = 'page ' + (state.deadPages.length + 1);
  }

  async function showDead(queue, after) {
    if (queue !== state.deadQueue) state.deadPages = [];
    state.deadQueue = queue;
    state.deadAfter = after;
    let path = '/api/queues/' + q(queue) + '/dead?count=' + DEAD_PAGE;
    if (after) path += '&after=' + encodeURIComponent(after);
    try {
      renderDead(await api('GET', path));
    } catch (e) {
      toast('Dead letters: ' + e.message, true);
    }
  }

  async function retryOne(id) {
    try {
      const r = await api('POST', '/api/queues/' + q(state.deadQueue) + '/dead/retry', { id });
      toast('Moved ' + r.moved + ' back to ' + state.deadQueue);
    } catch (e) {
      toast('Retry failed: ' + e.message, true);
    }
    showDead(state.deadQueue, state.deadAfter);
    pollQueues();
  }

  // a destructive button asks for a second click within 4 s
  function armed(btn, label, action) {
    let timer = null;
    btn.addEventListener('click', () => {
      if (!btn.classList.contains('armed')) {
        btn.classList.add('armed');
        btn.textContent = 'Click again: ' + label;
        timer = setTimeout(() => { btn.classList.remove('armed'); btn.textContent = label; }, 4000);
        return;
      }
      clearTimeout(timer);
      btn.classList.remove('armed');
      btn.textContent = label;
      action();
    });
  }

  // ------------------------------------------------------------ job lookup
  async function lookup(ev) {
    ev.preventDefault();
    const queue = $('lookup-queue').value;
    const id = $('lookup-id').value.trim();
    const out = $('job');
    clear(out);
    if (!id) return;
    let data;
    try {
      data = await api('GET', '/api/queues/' + q(queue) + '/jobs/' + q(id));
    } catch (e) {
      if (e.status === 404 && await isRun(queue, id)) {
        // a graph run's first entry leaves the stream when the run starts
        const show = el('button', { class: 'btn btn-small', type: 'button', id: 'job-show-run' }, 'Show the run');
        show.addEventListener('click', () => {
          $('run-queue').value = queue;
          $('run-id').value = id;
          showRun(queue, id, false);
          $('run').scrollIntoView();
        });
        out.appendChild(el('p', { class: 'empty' }, [id + ' is a graph pipeline run in ' + queue + '. ', show]));
        return;
      }
      out.appendChild(el('p', { class: 'empty' },
        e.status === 404 ? 'drover knows nothing of ' + id + ' in ' + queue + '.' : 'Error: ' + e.message));
      return;
    }
    // where it waits, else the outcome its result records
    const st = data.where !== 'none' ? data.where : (data.result && data.result.status) || 'finished';
    const head = el('div', { class: 'job-state' }, [
      el('span', { class: 'badge ' + (KNOWN_STATES.has(st) ? st : '') }, st),
      el('span', { class: 'mono' }, data.id),
      data.due_at !== null ? el('span', { class: 'hint' }, 'due ' + fmtTime(data.due_at)) : null,
      data.job && data.job.entry_id ? el('span', { class: 'hint' }, 'entry ' + data.job.entry_id) : null,
      data.consumer ? el('span', { class: 'hint' }, 'on ' + data.consumer) : null,
    ]);
    out.appendChild(head);
    if (data.where === 'ready' || data.where === 'running' || data.where === 'delayed') {
      const cancel = el('button', { class: 'btn btn-small btn-danger', type: 'button', id: 'job-cancel' }, 'Cancel');
      armed(cancel, 'Cancel', () => cancelJob(queue, id));
      head.appendChild(cancel);
    }
    if (data.result) {
      const pr = fieldOf(data.result.fields, 'progress');
      if (pr !== null && pr !== '') {
        const p = el('progress', { max: 100, value: Number(pr) || 0 });
        out.appendChild(el('div', { class: 'row' }, [p, ' ', pr + '% ', fieldOf(data.result.fields, 'progress_msg') || '']));
      }
      out.appendChild(el('h3', { class: 'hint' }, 'result'));
      out.appendChild(fieldsTable(data.result.fields));
    }
    if (data.job) {
      out.appendChild(el('h3', { class: 'hint' }, 'fields'));
      out.appendChild(fieldsTable(data.job.fields));
    }
  }

  // a waiting or delayed job is removed, a running one stopped by its worker
  async function cancelJob(queue, id) {
    try {
      const r = await api('POST', '/api/queues/' + q(queue) + '/jobs/' + q(id) + '/cancel');
      toast('Cancelled ' + id + ': ' + r.ready + ' waiting, ' + r.delayed + ' delayed, ' +
            r.running + ' running');
    } catch (e) {
      toast('Cancel failed: ' + e.message, true);
    }
    pollQueues();
    $('lookup').requestSubmit();
  }

  // ------------------------------------------------------------ graph run
  // A graph pipeline run drawn as SVG: one column per depth (a node sits
  // one column right of its deepest need), edges from each need, each
  // node coloured by its state; on_failure (compensation) nodes in a last
  // column of their own. Hover shows a node's details as a tooltip, a
  // click shows them below the graph. Refreshed while the run runs.
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const NODE_STATES = new Set(['waiting', 'queued', 'running', 'ok', 'dead',
                               'skipped', 'cancelled', 'standby']);
  const RUN_POLL_MS = 2000;
  const NODE_W = 168, NODE_H = 56, COL_GAP = 64, ROW_GAP = 18, PAD = 12;
  const run = { queue: null, id: null, selected: null, timer: null, seq: 0, last: null };

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function nodeState(n) {
    return NODE_STATES.has(n.state) ? n.state : 'unknown';
  }

  // "ok · 2 attempts", "running · 3/10"
  function nodeLine(n) {
    let s = n.state === null ? '?' : n.state;
    if (n.for_each && n.items !== null) s += ' · ' + (n.items_done || 0) + '/' + n.items;
    else if (n.attempts) s += ' · ' + n.attempts + (n.attempts === 1 ? ' attempt' : ' attempts');
    return s;
  }

  // label: value rows of a node's details (text only)
  function nodeDetails(n) {
    const rows = [['state', n.state], ['queue', n.queue],
                  ['needs', n.needs.length ? n.needs.join(', ') : '–'],
                  ['attempts', n.attempts], ['started', n.started_at ? fmtTime(n.started_at) : null],
                  ['finished', n.finished_at ? fmtTime(n.finished_at) : null]];
    if (n.for_each) rows.push(['items', (n.items_done || 0) + '/' + (n.items === null ? '?' : n.items)]);
    if (n.on_failure) rows.push(['kind', 'compensation (on_failure)']);
    rows.push(['error', n.error]);
    return rows.filter(r => r[1] !== null && r[1] !== undefined && r[1] !== '');
  }

  // the column of each node: 0 without needs, else one past its deepest
  // need; compensation nodes after every other column
  function layout(nodes) {
    const byName = new Map(nodes.map(n => [n.name, n]));
    const depth = new Map();
    function d(n, seen) {
      if (depth.has(n.name)) return depth.get(n.name);
      if (seen.has(n.name)) return 0;           // a cycle: config refuses it
      seen.add(n.name);
      let v = 0;
      for (const m of n.needs) if (byName.has(m)) v = Math.max(v, d(byName.get(m), seen) + 1);
      depth.set(n.name, v);
      return v;
    }
    nodes.forEach(n => d(n, new Set()));
    let last = 0;
    nodes.forEach(n => { if (!n.on_failure) last = Math.max(last, depth.get(n.name)); });
    const cols = [];
    nodes.forEach(n => {
      const c = n.on_failure ? last + 1 : depth.get(n.name);
      (cols[c] = cols[c] || []).push(n);
    });
    const pos = new Map();
    cols.forEach((col, c) => (col || []).forEach((n, r) => pos.set(n.name, {
      x: PAD + c * (NODE_W + COL_GAP), y: PAD + r * (NODE_H + ROW_GAP) })));
    const rows = Math.max(1, ...cols.map(col => (col || []).length));
    return { pos, width: 2 * PAD + cols.length * NODE_W + (cols.length - 1) * COL_GAP,
             height: 2 * PAD + rows * NODE_H + (rows - 1) * ROW_GAP };
  }

  function drawGraph(data) {
    const lay = layout(data.nodes);
    const g = svg('svg', { id: 'run-graph', width: lay.width, height: lay.height,
                           viewBox: '0 0 ' + lay.width + ' ' + lay.height,
                           role: 'img', 'aria-label': 'graph of run ' + data.id });
    const defs = svg('defs');
    const marker = svg('marker', { id: 'run-arrow', viewBox: '0 0 10 10', refX: 10, refY: 5,
                                   markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
    marker.appendChild(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow' }));
    defs.appendChild(marker);
    g.appendChild(defs);
    for (const n of data.nodes) {
      const to = lay.pos.get(n.name);
      for (const m of n.needs) {
        const from = lay.pos.get(m);
        if (!from) continue;
        const x1 = from.x + NODE_W, y1 = from.y + NODE_H / 2, x2 = to.x, y2 = to.y + NODE_H / 2;
        const mx = (x1 + x2) / 2;
        g.appendChild(svg('path', { class: 'gedge', 'data-from': m, 'data-to': n.name,
                                    d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`,
                                    'marker-end': 'url(#run-arrow)' }));
      }
    }
    for (const n of data.nodes) {
      const p = lay.pos.get(n.name);
      const st = nodeState(n);
      const cls = 'gnode state-' + st + (n.on_failure ? ' compensation' : '') +
                  (run.selected === n.name ? ' selected' : '');
      const node = svg('g', { class: cls, 'data-node': n.name, 'data-state': st,
                              transform: `translate(${p.x} ${p.y})`, tabindex: 0 });
      node.appendChild(svg('title', {}, n.name + '\n' +
        nodeDetails(n).map(r => r[0] + ': ' + r[1]).join('\n')));
      node.appendChild(svg('rect', { width: NODE_W, height: NODE_H, rx: 8, ry: 8 }));
      node.appendChild(svg('text', { x: 12, y: 22, class: 'gname' },
                           n.name.length > 20 ? n.name.slice(0, 19) + '…' : n.name));
      node.appendChild(svg('text', { x: 12, y: 42, class: 'gstate' }, nodeLine(n)));
      if (n.for_each && n.items) {
        const w = NODE_W - 24, done = Math.min(1, (n.items_done || 0) / n.items);
        node.appendChild(svg('rect', { x: 12, y: NODE_H - 8, width: w, height: 3, class: 'gbar' }));
        node.appendChild(svg('rect', { x: 12, y: NODE_H - 8, width: w * done, height: 3, class: 'gbar-done' }));
      }
      const pick = () => { run.selected = n.name; renderRun(data); };
      node.addEventListener('click', pick);
      node.addEventListener('keydown', ev => { if (ev.key === 'Enter') pick(); });
      g.appendChild(node);
    }
    return g;
  }

  function renderRun(data) {
    const out = $('run');
    clear(out);
    const status = data.status || '?';
    const head = el('div', { class: 'job-state' }, [
      el('span', { class: 'badge ' + (KNOWN_STATES.has(status) ? status : ''), id: 'run-status' }, status),
      el('span', { class: 'mono' }, data.id),
      el('span', { class: 'hint' }, 'pipeline ' + (data.pipeline || '?')),
      el('span', { class: 'hint' }, 'created ' + fmtTime(data.created_at)),
      data.finished_at ? el('span', { class: 'hint' }, 'finished ' + fmtTime(data.finished_at)) : null,
    ]);
    out.appendChild(head);
    if (data.error) out.appendChild(el('div', { class: 'dead-error' },
      (data.dead_node ? data.dead_node + ': ' : '') + data.error));
    out.appendChild(el('div', { class: 'graph-wrap' }, drawGraph(data)));
    const legend = el('div', { class: 'graph-legend' });
    for (const s of NODE_STATES) {
      legend.appendChild(el('span', { class: 'gkey state-' + s }, s));
    }
    legend.appendChild(el('span', { class: 'gkey compensation' }, 'compensation'));
    out.appendChild(legend);
    const sel = data.nodes.find(n => n.name === run.selected);
    if (sel) {
      const t = el('table', { class: 'fields', id: 'run-node' });
      t.appendChild(el('tr', {}, [el('th', {}, 'node'), el('td', {}, sel.name)]));
      for (const [k, v] of nodeDetails(sel)) t.appendChild(el('tr', {}, [el('th', {}, k), el('td', {}, v)]));
      if (sel.result !== null) t.appendChild(el('tr', {}, [el('th', {}, 'result'), el('td', {}, sel.result)]));
      out.appendChild(t);
    } else {
      out.appendChild(el('p', { class: 'hint' }, 'Click a node for its details.'));
    }
  }

  async function isRun(queue, id) {
    try {
      await api('GET', '/api/queues/' + q(queue) + '/runs/' + q(id));
      return true;
    } catch (e) {
      return false;
    }
  }

  async function showRun(queue, id, again) {
    const seq = again ? run.seq : ++run.seq;
    if (!again) { run.queue = queue; run.id = id; run.selected = null; }
    clearTimeout(run.timer);
    let data;
    try {
      data = await api('GET', '/api/queues/' + q(queue) + '/runs/' + q(id));
    } catch (e) {
      if (seq !== run.seq) return;
      if (again && e.status !== 404) {  // keep the graph; try again
        run.timer = setTimeout(() => showRun(queue, id, true), RUN_POLL_MS);
        return;
      }
      const out = $('run');
      clear(out);
      out.appendChild(el('p', { class: 'empty' },
        e.status === 404 ? 'No pipeline run ' + id + ' on ' + queue + '.' : 'Error: ' + e.message));
      return;
    }
    if (seq !== run.seq) return;   // another run was asked for meanwhile
    // redraw only what changed: a tooltip or a click survives a poll
    const text = JSON.stringify(data);
    if (!again || text !== run.last) renderRun(data);
    run.last = text;
    if (data.status === 'running') {
      run.timer = setTimeout(() => showRun(queue, id, true), RUN_POLL_MS);
    }
  }

  function runLookup(ev) {
    ev.preventDefault();
    const id = $('run-id').value.trim();
    clear($('run'));
    if (id) showRun($('run-queue').value, id, false);
  }

  // ------------------------------------------------------------ start
  async function start() {
    let s;
    try {
      s = await api('GET', '/api/session');
    } catch (e) {
      setConn(false, 'no session');
      if (e.status !== 401) banner('Cannot reach drover web: ' + e.message);
      return;
    }
    state.csrf = s.csrf;
    state.queues = s.queues;
    $('redis-url').textContent = s.redis;
    fillQueueSelects();
    $('chart-queue').addEventListener('change', () => { computeRates(); drawChart(); });
    $('dead-queue').addEventListener('change', () => showDead($('dead-queue').value, ''));
    $('dead-next').addEventListener('click', () => {
      state.deadPages.push(state.deadAfter);
      showDead(state.deadQueue, state.deadNext);
    });
    $('dead-prev').addEventListener('click', () => showDead(state.deadQueue, state.deadPages.pop() || ''));
    $('dead-first').addEventListener('click', () => { state.deadPages = []; showDead(state.deadQueue, ''); });
    $('dead-retry-all').addEventListener('click', async () => {
      try {
        const r = await api('POST', '/api/queues/' + q(state.deadQueue) + '/dead/retry', { all: true });
        toast('Moved ' + r.moved + ' back to ' + state.deadQueue);
      } catch (e) { toast('Retry all failed: ' + e.message, true); }
      state.deadPages = [];
      showDead(state.deadQueue, '');
      pollQueues();
    });
    armed($('dead-purge'), 'Purge', async () => {
      try {
        const r = await api('POST', '/api/queues/' + q(state.deadQueue) + '/dead/purge');
        toast('Purged ' + r.purged + ' from ' + state.deadQueue);
      } catch (e) { toast('Purge failed: ' + e.message, true); }
      state.deadPages = [];
      showDead(state.deadQueue, '');
      pollQueues();
    });
    $('lookup').addEventListener('submit', lookup);
    $('run-lookup').addEventListener('submit', runLookup);
    window.addEventListener('resize', drawChart);
    showDead(state.queues[0], '');
    pollQueues();
    pollWorkers();
    setInterval(pollQueues, POLL_MS);
    setInterval(pollWorkers, WORKERS_MS);
  }

  document.addEventListener('DOMContentLoaded', start);
})();
