/* evrun's web UI: every page, drawn from the gateway's JSON API
   (/api/v1, schema/openapi.yaml).

   - The token (`evrun-cli token`) is asked once and kept in the
     browser's sessionStorage (gone when the tab closes); every API call
     sends it as `Authorization: Bearer`.  It is never put in a URL.
   - Pages: #/jobs (polled every 2 s), #/job/ID (its steps as a graph of
     their needs, refreshed as its events arrive, and its live log; a
     refresh that fails for want of the gateway or gets no answer within
     REFRESH_WAIT_MS is tried again, as is one that still shows the job
     unfinished after its log ended, so the page does not stay on a
     state older than the log's),
     #/runners (and the broker's demand), #/pipelines (a start form per
     pipeline).
   - The live log is the Server-Sent Events stream of GET /jobs/ID/log,
     read with fetch() (EventSource cannot send a header): each event's
     id is remembered and sent back as Last-Event-ID when the stream is
     cut, so no line is lost or shown twice.
   - log.js holds the log (ANSI colours, folds per step) and the stream.
   - Nothing from the API is ever parsed as markup: every text goes in
     with textContent / text nodes (no innerHTML anywhere), and the page's
     Content-Security-Policy allows no inline script on top of that. */
'use strict';

const API = '/api/v1';
const TOKEN_KEY = 'evrun.token';
const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'timed_out', 'lost']);
const REFRESH_WAIT_MS = 10000;    /* a job page's refresh with no answer by then: again */
const REFRESH_RETRY_MS = [1000, 8000];    /* then again after this, doubling to the most */
const STATUSES = new Set(['pending', 'queued', 'starting', 'running', 'paused', 'succeeded',
  'failed', 'cancelled', 'timed_out', 'lost', 'skipped']);

/* ------------------------------------------------------------------ DOM */

/* An element: props are attributes (class, data-*, href...) or on*
   listeners; children are nodes or strings (as text, never markup). */
function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  setProps(el, props);
  for (const k of kids.flat(Infinity))
    if (k !== null && k !== undefined && k !== false) el.append(k instanceof Node ? k : String(k));
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, props, ...kids) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  for (const k of kids.flat(Infinity))
    if (k !== null && k !== undefined && k !== false) el.append(k instanceof Node ? k : String(k));
  return el;
}

function setProps(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

/* The CSS class of a status from the API (an unknown one gets none). */
function stClass(status) {
  return STATUSES.has(status) ? 'st-' + status : 'st-unknown';
}

function badge(status) {
  return h('span', { class: 'badge ' + stClass(status), 'data-status': status },
    String(status || '?').replace('_', ' '));
}

/* -------------------------------------------------------------- formats */

function fmtDuration(ms) {
  if (typeof ms === 'string') {     /* as an event's JSON has it: "8s45ms", "2m3s" */
    const units = { d: 86400000, h: 3600000, m: 60000, s: 1000, ms: 1 };
    let sum = 0;
    for (const [, n, u] of ms.matchAll(/(\d+)(ms|d|h|m|s)/g)) sum += n * units[u];
    if (!ms || ms.replace(/(\d+)(ms|d|h|m|s)/g, '')) return ms;
    ms = sum;
  }
  if (ms === null || ms === undefined || isNaN(ms) || ms < 0) return '';
  if (ms < 1000) return Math.round(ms) + ' ms';
  const s = Math.floor(ms / 1000);
  if (s < 60) return (ms / 1000).toFixed(s < 10 ? 1 : 0) + ' s';
  const m = Math.floor(s / 60);
  if (m < 60) return m + ' m ' + String(s % 60).padStart(2, '0') + ' s';
  return Math.floor(m / 60) + ' h ' + String(m % 60).padStart(2, '0') + ' m';
}

function fmtAgo(iso) {
  const t = Date.parse(iso);
  if (!iso || isNaN(t)) return '';
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 0) return 'in ' + fmtDuration(-s * 1000);
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return new Date(t).toISOString().slice(0, 16).replace('T', ' ');
}

function timeEl(iso) {
  return iso ? h('span', { title: iso }, fmtAgo(iso)) : '';
}

/* ms between two ISO times (the second absent: now). */
function spanMs(from, to) {
  const a = Date.parse(from);
  if (!from || isNaN(a)) return null;
  const b = to ? Date.parse(to) : Date.now();
  return isNaN(b) ? null : b - a;
}

/* ----------------------------------------------------------- the token */

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

class AuthError extends Error {}

/* Calls the API: the answer's JSON; throws Error with the API's message
   (AuthError on 401, after which the token is asked again).  signal, if
   given, ends the request (fetch's AbortError). */
async function api(method, path, body, headers, signal) {
  const h2 = Object.assign({ Authorization: 'Bearer ' + token() }, headers || {});
  const init = { method, headers: h2, cache: 'no-store' };
  if (signal) init.signal = signal;
  if (body !== undefined) {
    h2['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(API + path, init);
  const text = await resp.text();
  let js = null;
  try { js = text ? JSON.parse(text) : null; } catch (e) { js = null; }
  if (resp.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    askToken((js && js.error && js.error.message) || 'the token was refused');
    throw new AuthError('unauthorized');
  }
  if (!resp.ok) {
    const e = new Error((js && js.error && js.error.message) || ('HTTP ' + resp.status));
    e.status = resp.status;
    throw e;
  }
  return js;
}

let tokenMessage = '';
function askToken(msg) {
  tokenMessage = msg || '';
  route();
}

function viewToken(main) {
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off',
    spellcheck: 'false', placeholder: 'eyJhbGciOiJIUzI1NiIs...' });
  const err = h('div', { class: 'error', hidden: !tokenMessage }, tokenMessage);
  const save = async (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(t)) {
      err.hidden = false;
      err.textContent = 'That is no token: a token is three parts of letters, digits, - and _ '
        + 'joined by dots, as evrun-cli token prints it.';
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, t);
    try {
      await api('GET', '/runners');    /* a first call says whether it is good */
    } catch (e) {
      if (!(e instanceof AuthError)) { err.hidden = false; err.textContent = e.message; }
      return;
    }
    tokenMessage = '';
    route();
  };
  main.append(h('form', { class: 'token-box', onsubmit: save },
    h('h1', null, 'Sign in with a token'),
    h('p', null, 'Make one on the machine that runs evrun: ',
      h('code', null, 'evrun-cli token'), ' (or ', h('code', null, 'evrun-cli token --read-only'),
      ' to only look). It stays in this tab until it closes.'),
    err, input,
    h('button', { id: 'token-save', class: 'primary', type: 'submit' }, 'Use this token')));
  input.focus();
}

/* --------------------------------------------------------------- router */

let cleanup = null;     /* stops what the current page runs */

function setLive(text) {
  document.getElementById('live').textContent = text || '';
}

function route() {
  if (cleanup) cleanup();
  cleanup = null;
  setLive('');
  const main = document.getElementById('main');
  main.replaceChildren();
  const hash = location.hash || '#/jobs';
  const page = hash.split('/')[1] || 'jobs';
  for (const a of document.querySelectorAll('[data-nav]'))
    a.classList.toggle('active', a.dataset.nav === page || (page === 'job' && a.dataset.nav === 'jobs'));
  const forget = document.getElementById('forget');
  forget.hidden = !token();
  if (!token()) return viewToken(main);
  const m = /^#\/job\/([0-9A-Za-z]{26})$/.exec(hash);
  if (m) cleanup = viewJob(main, m[1].toUpperCase());
  else if (page === 'runners') cleanup = viewRunners(main);
  else if (page === 'pipelines') cleanup = viewPipelines(main);
  else cleanup = viewJobs(main);
}

/* Runs fn now and every ms while the page shows (paused while the tab is
   hidden); returns the stop function. */
function poll(fn, ms) {
  let timer = null, stopped = false;
  const tick = async () => {
    timer = null;
    if (stopped) return;
    if (!document.hidden) {
      try { await fn(); } catch (e) { if (e instanceof AuthError) return; }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; if (timer) clearTimeout(timer); };
}

function showError(box, e) {
  if (e instanceof AuthError) return;
  box.hidden = false;
  box.textContent = e.message;
}

/* ----------------------------------------------------------------- jobs */

function viewJobs(main) {
  let limit = 50;
  const pipeline = h('input', { id: 'filter-pipeline', placeholder: 'pipeline', size: 16 });
  const status = h('select', { id: 'filter-status' }, h('option', { value: '' }, 'any status'),
    [...FINAL, 'queued', 'running', 'paused'].sort().map((s) => h('option', { value: s }, s)));
  const err = h('div', { class: 'error', hidden: true });
  const tbody = h('tbody');
  const more = h('button', { type: 'button', hidden: true }, 'Show more');
  main.append(h('h1', null, 'Jobs'),
    h('div', { class: 'toolbar' }, pipeline, status), err,
    h('table', { class: 'list', id: 'jobs' },
      h('thead', null, h('tr', null, ['Status', 'Pipeline', 'Job', 'Steps', 'Runner', 'Created',
        'Duration'].map((t) => h('th', null, t)))), tbody),
    h('p', null, more));
  const load = async () => {
    const q = new URLSearchParams({ limit: String(limit) });
    if (pipeline.value.trim()) q.set('pipeline', pipeline.value.trim());
    if (status.value) q.set('status', status.value);
    let js;
    try {
      js = await api('GET', '/jobs?' + q);
    } catch (e) {
      showError(err, e);
      throw e;
    }
    err.hidden = true;
    tbody.replaceChildren(...js.jobs.map(jobRow));
    if (!js.jobs.length)
      tbody.append(h('tr', null, h('td', { colspan: 7, class: 'muted' },
        'No jobs yet: start one on the Pipelines page, or with evrun-cli run.')));
    more.hidden = !js.next_cursor || limit >= 1000;
    setLive('updated ' + new Date().toLocaleTimeString());
  };
  const stop = poll(load, 2000);
  const reload = () => load().catch(() => {});
  pipeline.addEventListener('change', reload);
  status.addEventListener('change', reload);
  more.addEventListener('click', () => { limit = Math.min(limit + 50, 1000); reload(); });
  return stop;
}

function jobRow(j) {
  const href = '#/job/' + encodeURIComponent(j.id);
  const total = j.steps_total || 0, done = j.steps_done || 0;
  const bar = h('span');
  bar.style.width = (total ? Math.round(100 * done / total) : 0) + '%';   /* CSSOM, no markup */
  return h('tr', { 'data-job': j.id },
    h('td', null, badge(j.status)),
    h('td', null, h('a', { href }, j.pipeline)),
    h('td', null, h('a', { href, class: 'mono' }, j.id)),
    h('td', null, h('span', { class: 'progress ' + stClass(j.status) }, bar), done + ' / ' + total),
    h('td', { class: 'mono' }, j.runner || ''),
    h('td', null, timeEl(j.created)),
    h('td', null, fmtDuration(spanMs(j.started, j.finished))));
}

/* -------------------------------------------------------------- runners */

function viewRunners(main) {
  const err = h('div', { class: 'error', hidden: true });
  const tbody = h('tbody');
  const dbody = h('tbody');
  const dnote = h('p', { class: 'muted', hidden: true }, 'The broker did not list its demand.');
  main.append(h('h1', null, 'Runners'), err,
    h('table', { class: 'list', id: 'runners' },
      h('thead', null, h('tr', null, ['Runner', 'State', 'Running', 'Labels', 'Heartbeat']
        .map((t) => h('th', null, t)))), tbody),
    h('h2', null, 'Demand'),
    h('p', { class: 'muted' }, 'Runners wanted for jobs that are coming (POST /api/v1/demand, ' +
      'GitHub workflow_job), kept by the broker until met or expired.'), dnote,
    h('table', { class: 'list', id: 'demand' },
      h('thead', null, h('tr', null, ['Demand', 'Wanted', 'Labels', 'Age', 'Seconds left',
        'Source'].map((t) => h('th', null, t)))), dbody));
  return poll(async () => {
    let js;
    try { js = await api('GET', '/runners'); } catch (e) { showError(err, e); throw e; }
    err.hidden = true;
    tbody.replaceChildren(...js.runners.map((r) => h('tr', { 'data-runner': r.id },
      h('td', { class: 'mono' }, r.id, r.ephemeral ? h('span', { class: 'chip' }, 'ephemeral') : ''),
      h('td', null, h('span', { class: 'badge ' + runnerClass(r.state) }, r.state)),
      h('td', null, r.running + ' / ' + r.capacity),
      h('td', null, (r.labels || []).map((l) => h('span', { class: 'chip' }, l))),
      h('td', null, timeEl(r.heartbeat)))));
    if (!js.runners.length)
      tbody.append(h('tr', null, h('td', { colspan: 5, class: 'muted' },
        'No runner has registered (evrun-cli up starts one).')));
    /* the demand: absent when the broker cannot say */
    dnote.hidden = Array.isArray(js.demand);
    dbody.replaceChildren(...(js.demand || []).map((d) => h('tr', { 'data-demand': d.id },
      h('td', { class: 'mono' }, d.id),
      h('td', null, d.count),
      h('td', null, (d.labels || []).map((l) => h('span', { class: 'chip' }, l))),
      h('td', null, timeEl(d.created)),
      h('td', null, d.ttl),
      h('td', null, d.reason || ''))));
    if (Array.isArray(js.demand) && !js.demand.length)
      dbody.append(h('tr', null, h('td', { colspan: 6, class: 'muted' },
        'No demand: no runner is wanted ahead of a job.')));
    setLive('updated ' + new Date().toLocaleTimeString());
  }, 3000);
}

const RUNNER_CLASS = new Map([['idle', 'st-succeeded'], ['busy', 'st-running'],
  ['draining', 'st-paused'], ['lost', 'st-failed'], ['stopped', 'st-cancelled']]);
function runnerClass(state) {
  return RUNNER_CLASS.get(state) || 'st-unknown';
}

/* ------------------------------------------------------------ pipelines */

function viewPipelines(main) {
  const err = h('div', { class: 'error', hidden: true });
  const tbody = h('tbody');
  let open = null;       /* the pipeline whose start form shows */
  main.append(h('h1', null, 'Pipelines'),
    h('p', { class: 'muted' }, 'The pipelines registered in the broker\'s pipelines_dir.'), err,
    h('table', { class: 'list', id: 'pipelines' },
      h('thead', null, h('tr', null, ['Pipeline', 'File', 'Waiting', 'Running', 'Last job',
        'Schedule', ''].map((t) => h('th', null, t)))), tbody));
  const rows = new Map();
  const load = async () => {
    let js;
    try { js = await api('GET', '/pipelines'); } catch (e) { showError(err, e); throw e; }
    err.hidden = true;
    for (const p of js.pipelines) {
      const key = p.file || p.name;
      const row = pipelineRow(p, () => {
        open = open === key ? null : key;
        for (const [k, r] of rows) r.form.hidden = k !== open;
        const f = rows.get(key);
        if (f && !f.form.hidden) f.form.querySelector('input').focus();
      });
      const old = rows.get(key);
      if (old) {
        old.tr.replaceWith(row);
        old.tr = row;
        if (old.shape !== formShape(p)) {
          /* the file now names another pipeline, or other args: the form
             (which posts the name and args it was made with) is made
             again from it, empty: what was typed was for the old one.
             An open form stays open and says so; a file that no longer
             loads has no Start, so its form closes. */
          if (!p.name && open === key) open = null;
          const form = startForm(p, open === key
            ? 'The pipeline file changed: this form was made again from it.' : '');
          form.hidden = open !== key;
          old.form.replaceWith(form);
          old.form = form;
          old.shape = formShape(p);
        }
      } else {
        const form = startForm(p);
        form.hidden = open !== key;
        rows.set(key, { tr: row, form, shape: formShape(p) });
        tbody.append(row, form);
      }
    }
    const seen = new Set(js.pipelines.map((p) => p.file || p.name));
    for (const [k, r] of rows)
      if (!seen.has(k)) { r.tr.remove(); r.form.remove(); rows.delete(k); }
    if (!js.pipelines.length && !tbody.querySelector('.none'))
      tbody.append(h('tr', { class: 'none' }, h('td', { colspan: 7, class: 'muted' },
        'No registered pipeline: put pipeline files in the broker\'s pipelines_dir.')));
    setLive('updated ' + new Date().toLocaleTimeString());
  };
  return poll(load, 5000);
}

/* What a start form is made from: a change of it makes the form again. */
function formShape(p) {
  return JSON.stringify([p.name || null, p.args || []]);
}

function pipelineRow(p, toggle) {
  const sc = p.schedule;
  return h('tr', { 'data-pipeline': p.name, 'data-file': p.file },
    h('td', null, h('strong', null, p.name || '(not loaded)'),
      p.concurrency ? h('div', { class: 'note' }, 'concurrency ' + p.concurrency) : '',
      p.load_error ? h('pre', { class: 'load-error' }, p.load_error) : ''),
    h('td', { class: 'mono' }, p.file || ''),
    h('td', null, String(p.waiting)),
    h('td', null, String(p.running)),
    h('td', null, p.last_job ? [badge(p.last_job.status), ' ',
      h('a', { href: '#/job/' + encodeURIComponent(p.last_job.id), class: 'mono' },
        p.last_job.id.slice(0, 10) + '\u2026')] : ''),
    h('td', null, sc ? [h('code', null, sc.cron), ' ', sc.timezone || '',
      sc.next_run ? h('div', { class: 'note' }, 'next ', timeEl(sc.next_run)) : ''] : ''),
    h('td', null, p.name ? h('button', { type: 'button', class: 'start primary', onclick: toggle },
      'Start\u2026') : ''));
}

function randomKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return 'ui-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/* The form under a pipeline's row: args as NAME = VALUE rows (one per
   arg of the pipeline, its default as the placeholder; a required one
   marked), labels; note, when given, above them. */
function startForm(p, note) {
  const args = h('div', { class: 'args' });
  const addArg = (name, value, spec) => {
    const hint = !spec ? 'value' : spec.required ? 'required' : 'default: ' + spec.default;
    const attrs = { class: 'arg-value', placeholder: hint, value: value || '', spellcheck: 'false' };
    if (spec && spec.required) attrs.required = true;
    if (spec && !spec.required) attrs['data-default'] = spec.default;
    if (spec && spec.description) attrs.title = spec.description;
    const row = h('div', { class: 'arg' },
      h('input', { class: 'arg-name', placeholder: 'NAME', value: name || '', spellcheck: 'false' }),
      h('input', attrs),
      h('button', { type: 'button', title: 'remove', onclick: () => row.remove() }, '\u00d7'));
    args.append(row);
  };
  for (const a of p.args || []) addArg(a.name, '', a);
  if (!(p.args || []).length) addArg();
  const labels = h('input', { class: 'labels', placeholder: 'label, label (optional)' });
  const err = h('div', { class: 'error', hidden: true });
  let key = randomKey();    /* one job however often it is sent (Idempotency-Key) */
  const submit = h('button', { type: 'submit', class: 'primary start-submit' }, 'Start ' + p.name);
  const onsubmit = async (ev) => {
    ev.preventDefault();
    const body = { pipeline: p.name, args: {} };
    for (const row of args.querySelectorAll('.arg')) {
      const n = row.querySelector('.arg-name').value.trim();
      const val = row.querySelector('.arg-value');
      /* a pipeline's arg left empty takes its default: not sent */
      if (n && (val.value !== '' || !val.hasAttribute('data-default'))) body.args[n] = val.value;
    }
    const ls = labels.value.split(',').map((s) => s.trim()).filter(Boolean);
    if (ls.length) body.labels = ls;
    submit.disabled = true;
    try {
      const js = await api('POST', '/jobs', body, { 'Idempotency-Key': key });
      key = randomKey();
      location.hash = '#/job/' + encodeURIComponent(js.id);
    } catch (e) {
      showError(err, e);
      /* a refusal (4xx) is final: the next try is a new start; after no
         answer or a 5xx the job may exist, so the same key asks again */
      if (e.status >= 400 && e.status < 500) key = randomKey();
    } finally {
      submit.disabled = false;
    }
  };
  return h('tr', { class: 'form', 'data-form': p.name },
    h('td', { colspan: 7 }, h('form', { class: 'start-form', onsubmit },
      note ? h('div', { class: 'note form-note' }, note) : '',
      h('label', null, 'Args (the pipeline\'s args: unset ones take their default)'), args,
      h('div', null, h('button', { type: 'button', onclick: () => addArg() }, '+ arg')),
      h('label', null, 'Runner labels'), labels, err, h('div', null, submit))));
}

/* ------------------------------------------------------------------ job */

function viewJob(main, id) {
  const ctl = new AbortController();
  const state = { id, job: null, ended: false, timer: null, refreshing: false, again: false,
    stopped: false, ctl: null, retryMs: REFRESH_RETRY_MS[0], due: 0 };
  const err = h('div', { class: 'error', hidden: true });
  const head = h('div');
  const dag = h('div', { class: 'dag-wrap', id: 'dag' });
  const log = new JobLog(id);
  const stream = h('span', { class: 'note', id: 'stream' });
  main.append(head, err, h('h2', null, 'Steps'), dag,
    h('h2', { class: 'log-head' }, 'Log ', stream, ' ',
      h('button', { type: 'button', onclick: () => log.foldAll(true) }, 'Fold all'), ' ',
      h('button', { type: 'button', onclick: () => log.foldAll(false) }, 'Unfold all')),
    log.el);

  /* The head, graph and steps from GET /jobs/ID.  Only events and the
     log's end ask for one: a refresh that failed (a network error: the
     gateway restarting, a connection it closed; a 5xx or 429), got no
     answer within REFRESH_WAIT_MS, or still shows the job unfinished once
     the log has ended is tried again later (state.retryMs, doubling),
     else the page would keep that state for good. */
  const refresh = async () => {
    if (state.stopped) return;
    if (state.refreshing) { state.again = true; return; }
    state.refreshing = true;
    const ac = state.ctl = new AbortController();
    const wait = setTimeout(() => ac.abort(), REFRESH_WAIT_MS);
    let again = false, failed = false;
    try {
      const job = await api('GET', '/jobs/' + id, undefined, undefined, ac.signal);
      state.job = job;
      err.hidden = true;
      drawHead(head, job, refresh, err);
      drawDag(dag, job, (name) => log.reveal(name));
      log.steps(job.steps);
      again = state.ended && !FINAL.has(job.status);
    } catch (e) {
      /* not a refusal that stays (404: no such job any more) */
      again = !(e instanceof AuthError) && !(e.status >= 400 && e.status < 500 && e.status !== 429);
      failed = again;
      if (!state.stopped)
        showError(err, ac.signal.aborted ? new Error('the gateway did not answer within '
          + REFRESH_WAIT_MS / 1000 + ' s: asking again') : e);
    } finally {
      clearTimeout(wait);
      state.refreshing = false;
      state.ctl = null;
    }
    if (state.stopped) return;
    if (state.again && !failed) {   /* events came meanwhile: their state, now */
      state.again = false;
      refresh();
    } else if (again) {   /* a failure waits its back-off, events or not */
      state.again = false;
      schedule(state.retryMs);
      state.retryMs = Math.min(state.retryMs * 2, REFRESH_RETRY_MS[1]);
    } else {
      state.retryMs = REFRESH_RETRY_MS[0];
    }
  };
  /* one timer: an earlier due time replaces a later one (an event while a
     back-off of seconds waits asks within 250 ms) */
  const schedule = (ms) => {
    const due = Date.now() + ms;
    if (state.timer && state.due <= due) return;
    clearTimeout(state.timer);
    state.due = due;
    state.timer = setTimeout(() => { state.timer = null; refresh(); }, ms);
  };
  const soon = () => schedule(250);
  refresh();
  /* running steps' durations move on: redrawn each second from the last detail */
  const tick = setInterval(() => {
    if (state.job && !FINAL.has(state.job.status)) {
      tickDag(dag, state.job);
      log.steps(state.job.steps);
    }
  }, 1000);
  follow(id, ctl.signal, (ev) => {
    log.event(ev);
    if (ev.type !== 'step.output') soon();
  }, (s) => {
    stream.textContent = s;
    stream.dataset.state = s.split(' ')[0];
    setLive('log: ' + s);
    if (s === 'ended') { state.ended = true; log.end(); soon(); }
  });
  return () => {
    state.stopped = true;
    ctl.abort();
    if (state.ctl) state.ctl.abort();
    clearInterval(tick);
    if (state.timer) clearTimeout(state.timer);
  };
}

function drawHead(head, job, refresh, err) {
  const act = (what) => async () => {
    try { await api('POST', '/jobs/' + job.id + '/' + what); refresh(); } catch (e) { showError(err, e); }
  };
  const live = !FINAL.has(job.status);
  const src = job.source;
  head.replaceChildren(
    h('h1', null, h('span', null, job.pipeline), h('span', { id: 'job-status', 'data-status': job.status },
      badge(job.status)),
    live ? h('span', null,
      job.status === 'paused' ? h('button', { type: 'button', onclick: act('resume') }, 'Resume')
        : h('button', { type: 'button', onclick: act('pause') }, 'Pause'), ' ',
      h('button', { type: 'button', class: 'danger', onclick: act('cancel') }, 'Cancel')) : ''),
    h('dl', { class: 'facts' },
      h('dt', null, 'Job'), h('dd', { class: 'mono' }, job.id),
      job.runner ? [h('dt', null, 'Runner'), h('dd', { class: 'mono' }, job.runner)] : '',
      h('dt', null, 'Created'), h('dd', null, timeEl(job.created)),
      job.started ? [h('dt', null, 'Duration'), h('dd', null, fmtDuration(spanMs(job.started, job.finished)))] : '',
      src ? [h('dt', null, 'Source'), h('dd', { class: 'mono' }, [src.kind, src.url, src.ref,
        src.sha ? src.sha.slice(0, 12) : ''].filter(Boolean).join(' '))] : '',
      job.reason ? [h('dt', null, 'Reason'), h('dd', null, job.reason)] : ''));
}

/* ------------------------------------------------------------------ DAG */

/* Each step's predecessors, as the engine orders them: in a pipeline
   where no step has needs, the step before; else its needs, and for a
   step with `when` and no needs every step above it.  A DAG whose steps
   need none (a file's needs: []) has them as empty lists. */
function stepEdges(steps) {
  const index = new Map(steps.map((s, i) => [s.name, i]));
  const dag = steps.some((s) => s.needs);
  return steps.map((s, i) => {
    if (s.name === 'on_error') return [];     /* drawn last: it runs once the job failed */
    if (!dag) return i ? [i - 1] : [];
    if (s.needs && s.needs.length) return s.needs.map((n) => index.get(n)).filter((k) => k !== undefined);
    if (s.when) return [...Array(i).keys()];
    return [];
  });
}

/* A node's second line: status, exit code, duration (a running step's so
   far). */
function stepSub(s) {
  const ms = s.duration_ms !== undefined ? s.duration_ms
    : (s.status === 'running' ? spanMs(s.started) : null);
  return String(s.status).replace('_', ' ') + (s.exit_code ? ' (exit ' + s.exit_code + ')' : '')
    + (ms !== null && ms !== undefined ? ' \u00b7 ' + fmtDuration(ms) : '');
}

/* The running steps' durations moved on, in place (the graph is not
   drawn again: a pointer on it keeps its tooltip). */
function tickDag(box, job) {
  const byName = new Map((job.steps || []).map((s) => [s.name, s]));
  for (const g of box.querySelectorAll('.node')) {
    const s = byName.get(g.dataset.step);
    if (s && s.status === 'running') g.querySelector('text.sub').textContent = stepSub(s);
  }
}

const NODE_W = 190, NODE_H = 50, GAP_X = 56, GAP_Y = 14, PAD = 10;

function drawDag(box, job, onclick) {
  const steps = job.steps || [];
  if (!steps.length) {
    box.replaceChildren(h('div', { class: 'muted' },
      FINAL.has(job.status) ? 'The job ran no step.' : 'Waiting for a runner to take the job\u2026'));
    return;
  }
  const preds = stepEdges(steps);
  const depth = new Array(steps.length).fill(-1);
  const depthOf = (i, seen) => {
    if (depth[i] >= 0) return depth[i];
    if (seen.has(i)) return 0;
    seen.add(i);
    let d = 0;
    for (const p of preds[i]) d = Math.max(d, depthOf(p, seen) + 1);
    depth[i] = d;
    return d;
  };
  steps.forEach((s, i) => depthOf(i, new Set()));
  /* on_error (it runs once the job failed) goes after everything */
  const maxd = Math.max(...depth);
  steps.forEach((s, i) => { if (s.name === 'on_error') depth[i] = maxd + 1; });
  const cols = [];
  steps.forEach((s, i) => { (cols[depth[i]] = cols[depth[i]] || []).push(i); });
  const pos = [];
  const rows = Math.max(...cols.map((c) => (c ? c.length : 0)));
  cols.forEach((c, d) => (c || []).forEach((i, r) => {
    const off = (rows - c.length) * (NODE_H + GAP_Y) / 2;
    pos[i] = { x: PAD + d * (NODE_W + GAP_X), y: PAD + off + r * (NODE_H + GAP_Y) };
  }));
  const width = PAD * 2 + cols.length * NODE_W + (cols.length - 1) * GAP_X;
  const height = PAD * 2 + rows * NODE_H + (rows - 1) * GAP_Y;
  const root = svg('svg', { class: 'dag', width, height, viewBox: `0 0 ${width} ${height}`,
    role: 'img', 'aria-label': 'the steps of the job and what each needs' },
  svg('defs', null, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, svg('path', { d: 'M0 0 10 5 0 10z' }))));
  steps.forEach((s, i) => preds[i].forEach((p) => {
    const a = pos[p], b = pos[i];
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x - 2, y2 = b.y + NODE_H / 2;
    const mx = (x1 + x2) / 2;
    root.append(svg('path', { class: 'edge', d: `M${x1} ${y1} C${mx} ${y1} ${mx} ${y2} ${x2} ${y2}`,
      'marker-end': 'url(#arrow)', 'data-from': steps[p].name, 'data-to': s.name }));
  }));
  steps.forEach((s, i) => {
    const name = s.name.length > 24 ? s.name.slice(0, 23) + '\u2026' : s.name;
    const tip = s.name + ': ' + s.status + (s.reason ? ' \u2014 ' + s.reason : '')
      + (s.needs && s.needs.length ? '\nneeds: ' + s.needs.join(', ') : '') + (s.when ? '\nwhen: ' + s.when : '');
    const g = svg('g', { class: 'node ' + stClass(s.status), 'data-step': s.name,
      'data-status': s.status, transform: `translate(${pos[i].x} ${pos[i].y})`, tabindex: 0 },
    svg('title', null, tip),
    svg('rect', { width: NODE_W, height: NODE_H, rx: 7 }),
    svg('text', { x: 12, y: 20 }, name),
    svg('text', { x: 12, y: 38, class: 'sub' }, stepSub(s)));
    g.addEventListener('click', () => onclick(s.name));
    g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') onclick(s.name); });
    root.append(g);
  });
  box.replaceChildren(root);
}

/* ---------------------------------------------------------------- start */

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', () => {
  document.getElementById('forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    askToken('');
  });
  route();
});
