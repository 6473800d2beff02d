/* evrun's web UI: a job's log (loaded after app.js, whose helpers it
   uses: h, api, token, fmtDuration...).

   - ANSI: the SGR escape sequences of a step's output (colours, bold,
     underline) become styled spans; other escape sequences and control
     characters are dropped.  Text only ever goes in as text nodes.
   - JobLog: one fold (<details>) per step; each stream of a step is
     decoded as UTF-8 across chunks (a chunk may end inside a character)
     and cut into lines; a line without its newline yet shows as a
     partial line until it is complete.
   - follow(): the job's Server-Sent Events stream read with fetch() (the
     token goes in a header; EventSource cannot send one), asked again
     with Last-Event-ID when it is cut. */
'use strict';

const LOG_LINES_MAX = 10000;      /* lines of one step kept on the page */
const PARTIAL_MAX = 65536;        /* characters of a line without its newline yet */

/* ----------------------------------------------------------------- ANSI */

/* The SGR state of a stream: colours (0-15 a class, 16-255 or [r, g, b]
   a colour) and attributes. */
function sgrNew() {
  return { fg: null, bg: null, b: false, dim: false, i: false, u: false, inv: false };
}

function sgrApply(st, params) {
  const p = params.split(/[;:]/).map((x) => (x === '' ? 0 : parseInt(x, 10)));
  for (let k = 0; k < p.length; k++) {
    const n = p[k];
    if (n === 0) Object.assign(st, sgrNew());
    else if (n === 1) st.b = true;
    else if (n === 2) st.dim = true;
    else if (n === 3) st.i = true;
    else if (n === 4) st.u = true;
    else if (n === 7) st.inv = true;
    else if (n === 22) st.b = st.dim = false;
    else if (n === 23) st.i = false;
    else if (n === 24) st.u = false;
    else if (n === 27) st.inv = false;
    else if (n >= 30 && n <= 37) st.fg = n - 30;
    else if (n >= 90 && n <= 97) st.fg = n - 90 + 8;
    else if (n >= 40 && n <= 47) st.bg = n - 40;
    else if (n >= 100 && n <= 107) st.bg = n - 100 + 8;
    else if (n === 39) st.fg = null;
    else if (n === 49) st.bg = null;
    else if (n === 38 || n === 48) {
      let c = null;
      if (p[k + 1] === 5 && k + 2 < p.length) { c = p[k + 2] & 255; k += 2; }
      else if (p[k + 1] === 2 && k + 4 < p.length) {
        c = [p[k + 2] & 255, p[k + 3] & 255, p[k + 4] & 255];
        k += 4;
      } else break;
      if (n === 38) st.fg = c; else st.bg = c;
    }
  }
}

/* xterm's 256 colours past the 16: a 6x6x6 cube, then 24 greys. */
function rgb256(n) {
  if (Array.isArray(n)) return `rgb(${n[0]}, ${n[1]}, ${n[2]})`;
  if (n >= 232) { const v = 8 + (n - 232) * 10; return `rgb(${v}, ${v}, ${v})`; }
  const c = n - 16, v = (x) => (x ? 55 + x * 40 : 0);
  return `rgb(${v(Math.floor(c / 36))}, ${v(Math.floor(c / 6) % 6)}, ${v(c % 6)})`;
}

function sgrSpan(text, st) {
  let fg = st.fg, bg = st.bg;
  if (st.inv) { fg = st.bg === null ? 0 : st.bg; bg = st.fg === null ? 15 : st.fg; }
  if (fg === null && bg === null && !st.b && !st.dim && !st.i && !st.u)
    return document.createTextNode(text);
  const span = document.createElement('span');
  const cls = [];
  if (typeof fg === 'number' && fg < 16) cls.push('fg' + fg);
  if (typeof bg === 'number' && bg < 16) cls.push('bg' + bg);
  if (st.b) cls.push('b');
  if (st.dim) cls.push('dim');
  if (st.i) cls.push('i');
  if (st.u) cls.push('u');
  span.className = cls.join(' ');
  if (fg !== null && !(typeof fg === 'number' && fg < 16)) span.style.color = rgb256(fg);
  if (bg !== null && !(typeof bg === 'number' && bg < 16)) span.style.backgroundColor = rgb256(bg);
  span.textContent = text;
  return span;
}

/* Appends text (one line, no newline) to parent as text and styled
   spans; escape sequences other than SGR and control characters other
   than tab are dropped.  st is the stream's SGR state, carried on. */
function ansiLine(text, st, parent) {
  let run = '';
  const flush = () => { if (run) { parent.append(sgrSpan(run, st)); run = ''; } };
  for (let i = 0; i < text.length;) {
    const c = text.charCodeAt(i);
    if (c === 0x1b) {
      const n = text[i + 1];
      if (n === '[') {                        /* CSI: parameters, intermediates, final */
        let j = i + 2;
        while (j < text.length && text.charCodeAt(j) >= 0x30 && text.charCodeAt(j) <= 0x3f) j++;
        const params = text.slice(i + 2, j);
        while (j < text.length && text.charCodeAt(j) >= 0x20 && text.charCodeAt(j) <= 0x2f) j++;
        if (j < text.length && text[j] === 'm') { flush(); sgrApply(st, params); }
        i = j + 1;
      } else if (n === ']') {                 /* OSC: up to BEL or ESC \ */
        let j = i + 2;
        while (j < text.length && text.charCodeAt(j) !== 7 && text.charCodeAt(j) !== 0x1b) j++;
        i = j < text.length && text.charCodeAt(j) === 0x1b ? j + 2 : j + 1;
      } else i += 2;
      continue;
    }
    if ((c < 0x20 && c !== 9) || c === 0x7f) { i++; continue; }
    run += text[i++];
  }
  flush();
}

/* ------------------------------------------------------------------ log */

function b64bytes(s) {
  let bin = '';
  try { bin = atob(s); } catch (e) { bin = ''; }     /* not base64: nothing */
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const encoder = new TextEncoder();

/* A job's log: one fold (<details>) per step, its lines below. */
class JobLog {
  constructor(id) {
    this.id = id;
    this.el = h('div', { class: 'log', id: 'log' });
    this.empty = h('div', { class: 'empty' }, 'No output yet.');
    this.el.append(this.empty);
    this.sections = new Map();
    this.started = new Map();   /* step -> the attempt whose step.started came */
  }

  section(name) {
    let s = this.sections.get(name);
    if (s) return s;
    const dot = h('span', { class: 'dot' });
    const info = h('span', { class: 'info' });
    const body = h('div', { class: 'body' });
    const el = h('details', { class: 'step-log', 'data-step': name, open: true },
      h('summary', null, dot, h('span', { class: 'name' }, name), info), body);
    s = { name, el, dot, info, body, lines: 0, dropped: 0, droppedEl: null, streams: {} };
    this.sections.set(name, s);
    this.empty.remove();
    this.el.append(el);
    return s;
  }

  /* The steps of the job's detail: a fold for each, in order, with its
     state. */
  steps(steps) {
    for (const st of steps || []) {
      const s = this.section(st.name);
      s.dot.className = 'dot ' + stClass(st.status);
      const ms = st.duration_ms !== undefined ? st.duration_ms
        : (st.status === 'running' ? spanMs(st.started) : null);
      s.info.textContent = String(st.status).replace('_', ' ')
        + (ms !== null && ms !== undefined ? ' \u00b7 ' + fmtDuration(ms) : '')
        + ' \u00b7 ' + s.lines + (s.lines === 1 ? ' line' : ' lines');
      s.el.dataset.status = st.status;
    }
    /* in the steps' order (a step's output may come before the detail
       names it); moved only when out of order, not to disturb a reader */
    const want = (steps || []).map((st) => this.sections.get(st.name).el);
    if (want.some((el, i) => this.el.children[i] !== el))
      for (const el of want) this.el.append(el);
  }

  reveal(name) {
    const s = this.sections.get(name);
    if (!s) return;
    s.el.open = true;
    s.el.scrollIntoView({ block: 'start', behavior: 'smooth' });
  }

  foldAll(fold) {
    for (const s of this.sections.values()) s.el.open = !fold;
  }

  /* A line element into s (tail: the partial line at the end). */
  line(s, text, sgr, cls) {
    const tx = h('span', { class: 'tx' });
    ansiLine(text, sgr, tx);
    return h('div', { class: 'line' + (cls ? ' ' + cls : '') }, h('span', { class: 'ln' }), tx);
  }

  add(s, el) {
    s.lines++;
    el.firstChild.textContent = String(s.lines);
    s.body.append(el);
    if (s.body.childElementCount - (s.droppedEl ? 1 : 0) > LOG_LINES_MAX) {
      const first = s.droppedEl ? s.droppedEl.nextElementSibling : s.body.firstElementChild;
      first.remove();
      s.dropped++;
      if (!s.droppedEl) {
        s.droppedEl = h('div', { class: 'dropped' });
        s.body.prepend(s.droppedEl);
      }
      s.droppedEl.textContent = s.dropped + ' earlier lines are not shown (evrun-cli logs '
        + this.id + ' --step ' + s.name + ' has them all)';
    }
  }

  meta(name, text) {
    if (typeof name !== 'string') return;
    const s = this.section(name);
    const el = h('div', { class: 'line meta' }, h('span', { class: 'ln' }), h('span', { class: 'tx' }, text));
    this.moveTails(s, () => s.body.append(el));
  }

  /* Runs fn with the partial lines of s taken out, then puts them back
     at the end. */
  moveTails(s, fn) {
    const tails = Object.values(s.streams).map((o) => o.tail).filter(Boolean);
    tails.forEach((t) => t.remove());
    fn();
    tails.forEach((t) => s.body.append(t));
  }

  output(d) {
    if (typeof d.step !== 'string') return;
    const s = this.section(d.step);
    const key = d.stream === 'stderr' ? 'stderr' : 'stdout';
    const o = s.streams[key] || (s.streams[key] = { dec: new TextDecoder('utf-8'), partial: '',
      sgr: sgrNew(), tail: null });
    const bytes = typeof d.bytes === 'string' ? encoder.encode(d.bytes)
      : (d.bytes && typeof d.bytes.base64 === 'string' ? b64bytes(d.bytes.base64) : new Uint8Array());
    this.take(s, o, key, o.partial + o.dec.decode(bytes, { stream: true }));
  }

  take(s, o, key, text) {
    const parts = text.split('\n');
    o.partial = parts.pop();
    if (o.partial.length > PARTIAL_MAX) { parts.push(o.partial); o.partial = ''; }
    const cls = key === 'stderr' ? 'err' : '';
    if (o.tail) { o.tail.remove(); o.tail = null; }
    this.moveTails(s, () => {
      for (let p of parts) {
        if (p.endsWith('\r')) p = p.slice(0, -1);
        const cr = p.lastIndexOf('\r');     /* a progress line drawn over: its last state */
        this.add(s, this.line(s, cr >= 0 ? p.slice(cr + 1) : p, o.sgr, cls));
      }
    });
    if (o.partial) {
      const cr = o.partial.lastIndexOf('\r');
      o.tail = this.line(s, cr >= 0 ? o.partial.slice(cr + 1) : o.partial,
        Object.assign({}, o.sgr), cls + ' partial');
      o.tail.firstChild.textContent = String(s.lines + 1);
      s.body.append(o.tail);
    }
  }

  /* What is left of every stream of step s becomes a line (its step
     ended: nothing more comes, and the line goes above its end's). */
  flush(s) {
    for (const [key, o] of Object.entries(s.streams)) {
      const rest = o.partial + o.dec.decode();
      o.partial = '';
      if (rest) this.take(s, o, key, rest + '\n');
    }
  }

  /* The job ended: what is left of every stream becomes a line. */
  end() {
    for (const s of this.sections.values()) this.flush(s);
  }

  event(ev) {
    /* a reader at the bottom of the page stays there as lines come */
    const atEnd = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    this.record(ev);
    if (atEnd && window.scrollY > 0) window.scrollTo(0, document.body.scrollHeight);
  }

  record(ev) {
    const d = ev.data || {};
    switch (ev.type) {
    case 'step.output': this.output(d); break;
    case 'step.finished':
      if (typeof d.step === 'string' && this.sections.has(d.step))
        this.flush(this.sections.get(d.step));
      /* a step that never started has no duration */
      this.meta(d.step, (d.status || 'finished')
        + (d.exit_code > 0 ? ' with exit code ' + d.exit_code : '')
        + (this.started.get(d.step) === (d.attempt || 0)
          ? ' after ' + fmtDuration(d.duration) : ', never started')
        + (d.reason ? ': ' + d.reason : '')
        + (d.allowed ? ' (failure allowed)' : ''));
      break;
    case 'step.skipped': this.meta(d.step, 'skipped' + (d.reason ? ': ' + d.reason : '')); break;
    case 'step.started':
      this.started.set(d.step, d.attempt || 0);
      if (d.attempt > 1) this.meta(d.step, 'attempt ' + d.attempt);
      break;
    default: break;
    }
  }
}

/* ------------------------------------------------------------------ SSE */

/* Parses one Server-Sent Events message (its lines). */
function sseMessage(block) {
  const m = { event: 'message', data: null, id: null };
  for (const line of block.split('\n')) {
    if (!line || line[0] === ':') continue;
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    let value = c < 0 ? '' : line.slice(c + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'data') m.data = m.data === null ? value : m.data + '\n' + value;
    else if (field === 'event') m.event = value;
    else if (field === 'id') m.id = value;
  }
  return m;
}

const sleep = (ms, signal) => new Promise((res) => {
  const t = setTimeout(res, ms);
  if (signal) signal.addEventListener('abort', () => { clearTimeout(t); res(); }, { once: true });
});

/* The message of an error answer's JSON body ('' when it has none). */
async function answerMessage(resp) {
  try {
    const js = JSON.parse(await resp.text());
    return (js && js.error && typeof js.error.message === 'string') ? js.error.message : '';
  } catch (e) {
    return '';
  }
}

/* Follows job id's events until job.finished: onEvent(event) for each,
   once; onState('live' | 'reconnecting ...' | 'ended' | ...).  A stream
   that is cut (the gateway restarted, the network went away) is asked
   again with Last-Event-ID: the last id taken.  A refusal shows the
   gateway's reason: the token page says why on 401 (as api() does), and
   'reconnecting (HTTP 503: MESSAGE)' on another. */
async function follow(id, signal, onEvent, onState) {
  let last = 0, delay = 500;
  while (!signal.aborted) {
    let ended = false;
    try {
      const headers = { Authorization: 'Bearer ' + token(), Accept: 'text/event-stream' };
      if (last) headers['Last-Event-ID'] = String(last);
      const resp = await fetch(API + '/jobs/' + id + '/log', { headers, signal, cache: 'no-store' });
      if (resp.status === 401) {
        const why = await answerMessage(resp);
        /* the page left meanwhile: another call's 401 showed the token page,
           with its reason, and this body's read was cut (no reason) */
        if (signal.aborted) return;
        sessionStorage.removeItem(TOKEN_KEY);
        askToken(why || 'the token was refused: make another with evrun-cli token');
        return;
      }
      if (resp.status === 404) { onState('no such job'); return; }
      if (!resp.ok || !resp.body) {
        const why = resp.ok ? '' : await answerMessage(resp);
        throw new Error('HTTP ' + resp.status + (why ? ': ' + why : ''));
      }
      onState('live');
      delay = 500;
      const reader = resp.body.getReader();
      const dec = new TextDecoder('utf-8');
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        /* lines end with \n, \r\n or \r: all made \n (a \r at the end
           waits, the \n of its \r\n may come next) */
        buf += dec.decode(value, { stream: true });
        const hold = buf.endsWith('\r') ? '\r' : '';
        buf = (hold ? buf.slice(0, -1) : buf).replace(/\r\n?/g, '\n') + hold;
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const m = sseMessage(buf.slice(0, cut));
          buf = buf.slice(cut + 2);
          if (m.event === 'error') {
            let msg = 'the gateway ended the stream';
            try { msg = JSON.parse(m.data).message || msg; } catch (e) { /* as it is */ }
            throw new Error(msg);
          }
          if (m.data === null) continue;
          const n = m.id !== null ? parseInt(m.id, 10) : NaN;
          if (!isNaN(n) && n <= last) continue;     /* taken already */
          if (!isNaN(n)) last = n;
          let ev;
          try { ev = JSON.parse(m.data); } catch (e) { continue; }
          onEvent(ev);
          if (ev.type === 'job.finished') ended = true;
        }
      }
      if (!ended) {
        /* a stream that ends without job.finished: a job cancelled while
           queued has no events at all; any other is asked again */
        const job = await api('GET', '/jobs/' + id);
        if (FINAL.has(job.status) && !job.events) ended = true;
      }
    } catch (e) {
      if (signal.aborted || e instanceof AuthError) return;
      onState('reconnecting (' + e.message + ')');
    }
    if (ended) { onState('ended'); return; }
    await sleep(delay, signal);
    delay = Math.min(delay * 2, 8000);
  }
}
