// The station dashboard's page. One EventSource on /api/events: the first
// event of a fresh stream is the snapshot (the same object GET /api/state
// returns), every later event one change (src/dash.h lists them). The page
// applies each change to its copy of the snapshot and redraws only what
// changed, once per animation frame. Text goes in with textContent only: slot
// labels and chip messages are never read as HTML.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  let model = null;          // the snapshot, kept current by the events
  let clockOffset = 0;       // server clock minus ours, ms
  let tiles = [];            // one element per slot
  const dirty = new Set();   // slot indexes to redraw
  let dirtyTop = false, dirtyFailures = false, frame = 0;

  const el = (tag, cls) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    return e;
  };
  const serverNow = () => Date.now() + clockOffset;

  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = h ? String(m).padStart(2, '0') : String(m);
    return (h ? h + ':' : '') + mm + ':' + String(r).padStart(2, '0');
  }
  function clockTime(ms) {
    const d = new Date(ms);
    return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  }

  // ---- drawing

  function buildGrid() {
    const grid = $('grid');
    grid.replaceChildren();
    grid.classList.toggle('dense', model.slots.length > 40);
    tiles = model.slots.map((s, i) => {
      const t = el('div', 'tile');
      t.dataset.index = String(i);
      const head = el('div', 'head');
      head.append(el('span', 'label'), el('span', 'state'));
      const bar = el('div', 'bar');
      bar.append(el('div', 'fill'));
      const norec = el('div', 'norec');
      norec.textContent = 'NOT RECORDED';
      t.append(head, el('div', 'stage'), bar, el('div', 'ident'), norec, el('div', 'result'), el('div', 'code'),
               el('div', 'time'));
      grid.append(t);
      return t;
    });
    model.slots.forEach((_, i) => dirty.add(i));
    dirtyTop = dirtyFailures = true;
  }

  // "last: FAIL at verifying: flash MD5 differs from the image's MD5"
  function resultText(s) {
    if (!s.last_result) return '';
    if (s.last_result !== 'fail') return 'last: ' + s.last_result.toUpperCase();
    return 'last: FAIL' + (s.last_stage_label ? ' at ' + s.last_stage_label : '') +
      (s.last_error_text ? ': ' + s.last_error_text : '');
  }
  // "MD5_MISMATCH, status 01 05"
  function codeText(s) {
    if (!s.last_error) return '';
    return s.last_error + (s.last_status ? ', status ' + s.last_status : '');
  }

  function drawTile(i) {
    const s = model.slots[i], t = tiles[i];
    if (!t) return;
    const flashing = s.state === 'flashing';
    t.dataset.state = s.state;
    t.dataset.result = s.last_result || '';
    t.querySelector('.label').textContent = s.slot;
    t.querySelector('.state').textContent = s.state_text;
    let stage = s.note || '';
    if (flashing) {
      stage = s.stage_label || 'starting';
      if (s.attempt > 1) stage += ' \u00b7 attempt ' + s.attempt;
    }
    t.querySelector('.stage').textContent = stage || '\u00a0';
    const bar = t.querySelector('.bar');
    bar.classList.toggle('idle', !flashing);
    const pct = flashing && s.total > 0 ? Math.min(100, (100 * s.done) / s.total) : 0;
    t.querySelector('.fill').style.width = pct.toFixed(1) + '%';
    bar.title = flashing && s.total > 0 ? s.done + ' / ' + s.total + ' bytes' : '';
    const ident = t.querySelector('.ident');
    ident.textContent = [s.mac, s.chip].filter(Boolean).join('  ') || '\u00a0';
    ident.title = s.chip_desc || '';
    t.querySelector('.norec').hidden = s.recorded;
    const res = t.querySelector('.result');
    res.textContent = resultText(s);
    res.title = s.last_message || '';
    t.querySelector('.code').textContent = codeText(s);
    t.querySelector('.time').textContent = duration(serverNow() - s.since_ms);
  }

  function unitsPerHour() {
    // As the server computes it (src/dash.h): units over the shift so far,
    // at least a minute.
    const c = model.counters;
    return (c.units * 3600000) / Math.max(serverNow() - c.started_ms, 60000);
  }

  function drawTop() {
    const c = model.counters;
    $('station').textContent = model.station;
    document.title = model.station + ' \u2013 espgang';
    $('c-passed').textContent = String(c.passed);
    $('c-failed').textContent = String(c.failed);
    const uph = unitsPerHour();
    $('c-uph').textContent = uph < 10 ? uph.toFixed(1) : String(Math.round(uph));
    $('c-fpy').textContent = c.first_pass_yield === null ? '\u2013' : (100 * c.first_pass_yield).toFixed(1) + '%';
    $('c-skipped').textContent = String(c.skipped);
    $('skipbox').hidden = !c.skipped;
    $('c-flashing').textContent = String(model.slots.filter((s) => s.state === 'flashing').length);
    $('c-shift').textContent = duration(serverNow() - model.started_ms);
  }

  function drawFailures() {
    const list = $('failures');
    list.replaceChildren(...model.failures.map((f) => {
      const li = el('li', f.will_retry ? 'retried' : '');
      const what = el('div', 'what');
      what.textContent = clockTime(f.time_ms) + '  ' + f.slot + '  ' + (f.mac || 'no MAC') + '  ' + f.stage_label +
        ': ' + f.error_text + (f.will_retry ? ' (retried)' : '');
      const detail = el('div', 'detail');
      detail.textContent = f.error + (f.status ? ', chip status ' + f.status : '') + ', attempt ' + f.attempt +
        (f.message ? ' \u2013 ' + f.message : '');
      li.append(what, detail);
      return li;
    }));
    $('nofail').hidden = model.failures.length > 0;
  }

  function draw() {
    frame = 0;
    if (!model) return;
    for (const i of dirty) drawTile(i);
    dirty.clear();
    if (dirtyTop) drawTop();
    if (dirtyFailures) drawFailures();
    dirtyTop = dirtyFailures = false;
  }
  function schedule() {
    if (!frame) frame = requestAnimationFrame(draw);
  }

  // ---- events: each applies one change to the model (src/dash.h)

  function clearLast(s) {
    Object.assign(s, { last_result: '', last_stage: '', last_stage_label: '', last_error: '', last_error_text: '',
                       last_status: '', last_message: '', last_finished_ms: 0, recorded: true });
  }
  function identity(s, e) {
    s.port = e.port || '';
    s.attempt = e.attempt;
    s.mac = e.mac || '';
    s.chip = e.chip || '';
    s.chip_desc = e.chip_desc || '';
  }
  const apply = {
    snapshot(e) {
      model = e;
      clockOffset = e.now_ms - Date.now();
      buildGrid();
    },
    slot_state(e, s) {
      Object.assign(s, { state: e.state, state_text: e.state_text, note: e.note, since_ms: e.since_ms });
      dirtyTop = true;
    },
    unit_start(e, s) {
      identity(s, e);
      Object.assign(s, { stage: '', stage_label: '', done: 0, total: 0 });
      if (e.attempt <= 1) clearLast(s);
    },
    stage(e, s) {
      Object.assign(s, { stage: e.stage, stage_label: e.stage_label, attempt: e.attempt, done: 0, total: 0 });
    },
    progress(e, s) {
      Object.assign(s, { done: e.done, total: e.total });
    },
    unit_identity(e, s) {
      identity(s, e);
    },
    unit_done(e, s) {
      identity(s, e);
      const failed = !!e.error;
      Object.assign(s, {
        stage: '', stage_label: '', done: 0, total: 0, last_result: e.result,
        last_stage: failed ? e.fail_stage : '', last_stage_label: failed ? e.fail_stage_label : '',
        last_error: failed ? e.error : '',
        last_error_text: failed ? e.error_text : '', last_status: (failed && e.status) || '',
        last_message: failed ? e.message : '', last_finished_ms: e.finished_ms || serverNow(), recorded: e.recorded,
      });
    },
    failure(e) {
      const f = Object.assign({}, e);
      delete f.event;
      model.failures.unshift(f);
      model.failures.length = Math.min(model.failures.length, model.max_failures);
      dirtyFailures = true;
    },
    counters(e) {
      const c = Object.assign({}, e);
      delete c.event;
      model.counters = c;
      dirtyTop = true;
    },
    message(e) {
      const m = $('message');
      m.textContent = clockTime(e.time_ms) + '  ' + e.text;
      m.hidden = false;
    },
  };

  function onEvent(msg) {
    let e;
    try {
      e = JSON.parse(msg.data);
    } catch {
      return;
    }
    const f = apply[e.event];
    if (!f || (!model && e.event !== 'snapshot')) return;
    const s = model && typeof e.index === 'number' ? model.slots[e.index] : undefined;
    if (typeof e.index === 'number' && !s) return;
    f(e, s);
    if (s) dirty.add(e.index);
    schedule();
  }

  // ---- connection

  function setConn(state, words) {
    const c = $('conn');
    c.dataset.conn = state;
    c.textContent = words;
  }
  function connect() {
    const es = new EventSource('/api/events');
    es.onopen = () => setConn('live', 'live');
    es.onmessage = onEvent;
    es.onerror = () => {
      if (es.readyState !== EventSource.CLOSED) {
        setConn('lost', 'reconnecting'); // the browser retries, resuming from the last id
        return;
      }
      es.close();
      // Refused (401 once the token changed, or not an event stream): ask
      // the server why, then try again from a fresh snapshot.
      fetch('/api/state', { cache: 'no-store' }).then((r) => {
        if (r.status === 401) setConn('denied', 'not authorised: open the URL espgang printed (with ?token=)');
        else setConn('lost', 'reconnecting');
      }, () => setConn('lost', 'station not reachable'));
      setTimeout(connect, 5000);
    };
  }

  setInterval(() => {
    if (!model) return;
    model.slots.forEach((_, i) => dirty.add(i)); // time in state
    dirtyTop = true;
    schedule();
  }, 1000);
  connect();
})();
