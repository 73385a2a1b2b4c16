/**
 * The console (issue #16 item 7): one static HTML file, no build step, no framework. It reads
 * /status.json and /api/… with fetch every 2 s and swaps each table's rows in one step once the
 * answer is in, so nothing blinks; a narrow screen hides the secondary columns. Every value goes in
 * with textContent, never as HTML, since caller IDs and CRM answers come from outside. On a
 * PostgreSQL outbox, shared by a fleet, the webhooks and dead letters show each one's PBX (issue #17). Actions
 * POST JSON with the session cookie the login form sets (HttpOnly: the script never sees the token).
 */
export const CONSOLE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pbxhook console</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 1rem 1.5rem; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; } h2 { font-size: 1.1rem; margin: 1.4rem 0 .4rem; } h3 { font-size: 1rem; margin: .8rem 0 .3rem; }
  .scroll { overflow-x: auto; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #ddd; vertical-align: top; }
  th { background: #f4f4f4; white-space: nowrap; }
  tr.pick { cursor: pointer; } tr.pick:hover { background: #f7f9fc; } tr.sel { background: #eef3fb; }
  .ok { color: #176f2c; } .bad { color: #a4161a; } .warn { color: #9a5b00; } .muted { color: #777; }
  .badge { display: inline-block; padding: 0 .4rem; border-radius: .6rem; font-size: 12px; border: 1px solid currentColor; }
  pre { background: #f6f6f6; padding: .5rem; white-space: pre-wrap; word-break: break-all; font-size: 12px; margin: .2rem 0; max-height: 16rem; overflow: auto; }
  button { font: inherit; padding: .15rem .6rem; cursor: pointer; }
  #story { border: 1px solid #ccd; border-radius: 6px; padding: .5rem 1rem; margin-top: .8rem; }
  #auth { float: right; } #auth input { width: 12rem; }
  #notice { min-height: 1.2em; }
  input[type=search] { font: inherit; padding: .2rem .4rem; width: 16rem; max-width: 60vw; }
  .journey td:first-child { white-space: nowrap; }
  @media (max-width: 720px) {
    body { margin: .6rem; } .wide { display: none; } #auth { float: none; margin-bottom: .5rem; }
    th, td { padding: .2rem .3rem; }
  }
</style>
</head>
<body>
<form id="auth" method="post" action="login">
  <input type="password" name="token" placeholder="ops.token" autocomplete="current-password" aria-label="ops.token">
  <button id="login" type="submit">log in</button>
  <button id="logout" type="submit" formaction="logout">log out</button>
</form>
<h1>pbxhook <span id="pbx" class="muted">…</span></h1>
<p id="summary" class="muted">loading…</p>
<p id="write" class="bad" hidden></p>
<p id="notice" role="status"></p>

<h2>Endpoints</h2>
<div class="scroll"><table id="endpoints"><thead><tr><th>endpoint</th><th>state</th><th>owed</th><th>oldest</th><th class="wide">last success</th><th>last error</th><th class="wide">attempts/min</th><th>dead</th><th></th></tr></thead><tbody></tbody></table></div>

<h2>Live calls</h2>
<div class="scroll"><table id="calls"><thead><tr><th>call</th><th>direction</th><th>customer</th><th>started</th><th>legs</th></tr></thead><tbody></tbody></table></div>

<h2>Recent webhooks</h2>
<div class="scroll"><table id="webhooks"><thead><tr><th>queued</th><th class="pbx" hidden>pbx</th><th>endpoint</th><th>call</th><th class="wide">#</th><th>event</th><th class="wide">attempts</th><th>state</th><th>next / why</th></tr></thead><tbody></tbody></table></div>
<section id="story" hidden></section>

<h2>Dead letters</h2>
<div class="scroll"><table id="dead"><thead><tr><th>time</th><th class="pbx" hidden>pbx</th><th>endpoint</th><th>call</th><th>attempts</th><th>last error</th></tr></thead><tbody></tbody></table></div>

<h2>Call journeys</h2>
<p><input id="q" type="search" placeholder="number, call id or extension" aria-label="search calls"> <span class="muted">live and recent calls</span></p>
<div id="journeys"></div>

<script>
const $ = (id) => document.getElementById(id);
const time = (ms) => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '');
const clock = (ms) => (ms ? new Date(ms).toISOString().slice(11, 19) : '');
const ago = (s) => (s == null ? '' : s < 90 ? Math.round(s) + ' s' : s < 5400 ? Math.round(s / 60) + ' min' : Math.round(s / 3600) + ' h');
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text != null) e.textContent = text; if (cls) e.className = cls; return e; };
const STATE_CLS = { ok: 'ok', delivered: 'ok', failing: 'warn', failed_waiting: 'warn', paused: 'bad', dead: 'bad', disabled: 'muted' };
let selected = null;

/** Cells: a string, or {text, cls, node}; the rows replace the old ones in one step. */
function fill(id, rows, empty) {
  const body = document.querySelector('#' + id + ' tbody');
  const heads = document.querySelectorAll('#' + id + ' thead th:not([hidden])');
  const cols = heads.length;
  const trs = (rows.length ? rows : [{ cells: [empty] }]).map((r) => {
    const tr = document.createElement('tr');
    const cells = Array.isArray(r) ? r : r.cells;
    if (r.key != null) { tr.dataset.key = r.key; tr.className = 'pick' + (String(r.key) === String(selected) ? ' sel' : ''); tr.onclick = () => openStory(r.key); }
    cells.forEach((c, i) => {
      const td = document.createElement('td');
      if (c && typeof c === 'object') { if (c.node) td.append(c.node); else td.textContent = c.text ?? ''; if (c.cls) td.className = c.cls; }
      else td.textContent = c ?? '';
      const th = heads[i];
      if (th && th.classList.contains('wide')) td.classList.add('wide');
      if (cells.length === 1) td.colSpan = cols;
      tr.append(td);
    });
    return tr;
  });
  body.replaceChildren(...trs);
}

function waitText(w) {
  switch (w.reason) {
    case 'done': return '';
    case 'sending': return 'sending now';
    case 'due': return 'due now';
    case 'schedule': return 'retry ' + clock(w.at) + ' (schedule step ' + w.step + ')';
    case 'retry-after': return 'retry ' + clock(w.at) + ' (Retry-After)';
    case 'behind': return 'behind #' + w.seq + ' of its call (webhook ' + w.id + ')';
    case 'paused': return 'endpoint paused' + (w.at ? ', probe ' + clock(w.at) : '');
    case 'disabled': return 'endpoint not enabled';
  }
  return w.reason;
}

function button(label, kind, body, id) {
  const b = el('button', label);
  if (id) b.id = id;
  b.onclick = async (ev) => { ev.stopPropagation(); await act(kind, body); };
  return b;
}

async function act(kind, body) {
  const notice = $('notice');
  try {
    const r = await fetch('api/actions/' + kind, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), credentials: 'same-origin' });
    const a = await r.json();
    notice.textContent = r.ok ? a.message : 'refused (' + r.status + '): ' + a.error;
    notice.className = r.ok ? 'ok' : 'bad';
  } catch (err) { notice.textContent = 'action failed: ' + err; notice.className = 'bad'; }
  refresh();
}

async function getJson(url) {
  const r = await fetch(url, { cache: 'no-store', credentials: 'same-origin' });
  if (!r.ok) throw new Error(url + ': ' + r.status);
  return r.json();
}

function renderEndpoints(list) {
  fill('endpoints', list.map((e) => {
    const tools = el('span');
    if (e.state === 'paused') tools.append(button('probe now', 'probe', { endpoint: e.name }));
    if (e.dead > 0) tools.append(button('resend all dead', 'resend-dead', { endpoint: e.name }));
    const err = e.lastError ? (e.lastError.status ? e.lastError.status + ' ' : '') + (e.lastError.code ?? '') + ': ' + e.lastError.error + ' (' + clock(e.lastError.at) + ')' : '';
    return [e.name, { node: el('span', e.state, 'badge ' + (STATE_CLS[e.state] ?? '')) }, String(e.depth), ago(e.oldestUndeliveredSeconds),
      time(e.lastDeliveredAt), { text: err, cls: err ? 'bad' : '' }, String(e.attemptsPerMinute), String(e.dead), { node: tools }];
  }), 'no endpoint');
}

async function openStory(id) {
  selected = id;
  for (const tr of document.querySelectorAll('#webhooks tbody tr')) tr.classList.toggle('sel', tr.dataset.key === String(id));
  await renderStory();
}

async function renderStory() {
  const box = $('story');
  if (selected == null) { box.hidden = true; return; }
  let w;
  try { w = await getJson('api/webhooks/' + encodeURIComponent(selected)); } catch { box.hidden = true; return; }
  const parts = [];
  const head = el('h3', 'Webhook ' + w.id + ' · ' + w.endpoint + ' · call ' + w.call + ' #' + w.seq + ' · ' + w.event + ' · ');
  head.append(el('span', w.state, 'badge ' + (STATE_CLS[w.state] ?? '')));
  parts.push(head, el('p', w.webhookId + (waitText(w.wait) ? ' · next: ' + waitText(w.wait) : '') + (w.error ? ' · ' + w.error : ''), 'muted wait'));
  const tools = el('p');
  if (w.state === 'dead') tools.append(button('resend', 'resend', { id: String(w.id) }, 'resend'));
  if (w.state === 'failed_waiting' || (w.wait && w.wait.reason === 'behind')) tools.append(button('retry lane now', 'retry-lane', { lane: w.lane, pbx: w.pbx }, 'retry-lane'));
  const close = el('button', 'close'); close.onclick = () => { selected = null; renderStory(); };
  tools.append(' ', close);
  parts.push(tools);
  const att = el('table'); att.id = 'attempts';
  const hr = el('tr'); for (const h of ['#', 'started', 'status', 'latency', 'outcome', 'error', 'response']) hr.append(el('th', h));
  att.append(hr);
  for (const a of w.attempts) {
    const tr = el('tr');
    const resp = el('td'); if (a.response) resp.append(el('pre', a.response));
    for (const c of [String(a.n), time(a.startedAt), a.status == null ? '' : String(a.status), a.latencyMs == null ? '' : a.latencyMs + ' ms', a.outcome ?? 'in flight', (a.errorCode ? a.errorCode + ': ' : '') + (a.error ?? '')]) tr.append(el('td', c));
    tr.append(resp);
    att.append(tr);
  }
  if (w.attempts.length === 0) { const tr = el('tr'); const td = el('td', 'no attempt yet'); td.colSpan = 7; tr.append(td); att.append(tr); }
  parts.push(el('h3', 'Attempts'), el('div', null, 'scroll'));
  parts[parts.length - 1].append(att);
  const req = w.request;
  parts.push(el('h3', 'Request'), el('pre', req.method + ' ' + req.url + '\\n' + Object.entries(req.headers).map(([k, v]) => k + ': ' + v).join('\\n') + '\\n\\n' + req.body));
  box.replaceChildren(...parts);
  box.hidden = false;
}

function renderJourneys(calls) {
  const box = $('journeys');
  if (!calls) { box.replaceChildren(el('p', 'no journal in this process', 'muted')); return; }
  const cards = calls.map((c) => {
    const card = el('div'); card.className = 'journey-card';
    card.append(el('h3', c.id + ' · ' + c.direction + ' · ' + c.customer + (c.did ? ' → ' + c.did : '') + ' · ' + (c.endedAt ? 'ended ' + clock(c.endedAt) : 'live')));
    const t = el('table'); t.className = 'journey';
    for (const s of c.steps) {
      const tr = el('tr');
      tr.append(el('td', clock(s.at)), el('td', s.text));
      const hooks = el('td');
      for (const h of s.webhooks) {
        const span = el('span', h.endpoint + ': ' + (h.event ?? '') + ' ', 'wh');
        span.append(el('span', h.state ?? 'not sent', 'badge ' + (STATE_CLS[h.state] ?? 'muted')));
        if (h.id != null) { span.style.cursor = 'pointer'; span.onclick = () => openStory(h.id); }
        hooks.append(span, el('br'));
      }
      tr.append(hooks);
      t.append(tr);
    }
    const wrap = el('div', null, 'scroll'); wrap.append(t); card.append(wrap);
    return card;
  });
  box.replaceChildren(...(cards.length ? cards : [el('p', 'no call matches', 'muted')]));
}

async function refresh() {
  try {
    const [s, eps, whs, js] = await Promise.all([getJson('status.json'), getJson('api/endpoints'), getJson('api/webhooks'),
      getJson('api/calls?q=' + encodeURIComponent($('q').value)).catch(() => null)]);
    const standby = s.pbx.state === 'standby';
    $('pbx').textContent = (s.pbx.name ? s.pbx.name + ': ' : '') + s.pbx.type + ' ' + s.pbx.address + ' — ' +
      (s.pbx.connected ? 'connected' : standby ? 'standby: ' + (s.lease ?? 'waiting for the lease') : s.pbx.state === 'connecting' ? 'CONNECTING' : 'DISCONNECTED');
    $('pbx').className = s.pbx.connected ? 'ok' : standby ? 'muted' : 'bad';
    // A shared outbox's rows may be any PBX's; one PBX's own outbox needs no column saying so.
    const fleet = s.outboxStore === 'postgres';
    for (const th of document.querySelectorAll('th.pbx')) th.hidden = !fleet;
    const pbxCell = (name) => (fleet ? [name] : []);
    $('summary').textContent =
      s.calls.length + (s.calls.length === 1 ? ' live call' : ' live calls') + ' · outbox ' + Object.entries(s.outbox).map(([k, v]) => k + ' ' + v).join(', ') + ' · updated ' + time(s.now);
    const w = s.outboxWrite ?? { outbox: 'writing' };
    $('write').hidden = w.outbox !== 'failing';
    $('write').textContent = w.outbox === 'failing'
      ? 'OUTBOX CANNOT BE WRITTEN since ' + w.outboxError.since.replace('T', ' ').slice(0, 19) + ' (' + w.outboxError.code + ': ' + w.outboxError.message +
        '): nothing is dropped, delivery resumes once the disk has room'
      : '';
    renderEndpoints(eps.endpoints);
    fill('calls', s.calls.map((c) => [c.id, c.direction, c.customer, time(c.startedAt),
      c.legs.map((l) => l.party + ' ' + (l.disposition ?? (l.answeredAt ? 'talking' : 'ringing'))).join(', ')]), 'no live call');
    fill('webhooks', whs.webhooks.map((h) => ({ key: h.id, cells: [time(h.createdAt), ...pbxCell(h.pbx), h.endpoint, h.call, String(h.seq), h.event, String(h.attempts),
      { text: h.state, cls: 'state ' + (STATE_CLS[h.state] ?? '') }, { text: waitText(h.wait) + (h.error && h.state !== 'delivered' ? ' · ' + h.error : ''), cls: 'why' }] })), 'none yet');
    fill('dead', s.dead.map((d) => [time(d.at), ...pbxCell(d.pbx), d.endpoint, d.call, String(d.attempts), d.error ?? '']), 'none');
    renderJourneys(js && js.calls);
    if (selected != null) await renderStory();
  } catch (err) {
    $('summary').textContent = 'status unavailable: ' + err;
  }
}
let typing;
$('q').addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(refresh, 300); });
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
