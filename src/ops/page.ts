/**
 * The status page: one static HTML file that polls /status.json. Every value is put in the page
 * with textContent, never as HTML, since caller IDs and CRM error texts come from outside.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>pbxhook status</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5rem; color: #222; }
  h1 { font-size: 1.3rem; } h2 { font-size: 1.1rem; margin-top: 1.5rem; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #ddd; vertical-align: top; }
  th { background: #f4f4f4; }
  .ok { color: #176f2c; } .bad { color: #a4161a; } .muted { color: #777; }
  code { font-size: 12px; }
</style>
</head>
<body>
<h1>pbxhook <span id="pbx" class="muted">…</span></h1>
<p id="summary" class="muted">loading…</p>
<p id="write" class="bad" hidden></p>
<h2>Live calls</h2>
<table id="calls"><thead><tr><th>call</th><th>direction</th><th>customer</th><th>started</th><th>legs</th></tr></thead><tbody></tbody></table>
<h2>Recent webhooks</h2>
<table id="webhooks"><thead><tr><th>time</th><th>endpoint</th><th>call</th><th>event</th><th>state</th></tr></thead><tbody></tbody></table>
<h2>Dead letters</h2>
<table id="dead"><thead><tr><th>time</th><th>endpoint</th><th>call</th><th>attempts</th><th>last error</th></tr></thead><tbody></tbody></table>
<script>
const time = (ms) => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '');
function fill(id, rows, empty) {
  const body = document.querySelector('#' + id + ' tbody');
  body.replaceChildren();
  if (rows.length === 0) rows = [[empty]];
  for (const cells of rows) {
    const tr = document.createElement('tr');
    for (const c of cells) {
      const td = document.createElement('td');
      if (c && typeof c === 'object') { td.textContent = c.text; td.className = c.cls; } else td.textContent = c ?? '';
      if (cells.length === 1) td.colSpan = 5;
      tr.append(td);
    }
    body.append(tr);
  }
}
async function refresh() {
  try {
    const s = await (await fetch('status.json', { cache: 'no-store' })).json();
    document.getElementById('pbx').textContent = s.pbx.type + ' ' + s.pbx.address + ' — ' + (s.pbx.connected ? 'connected' : s.pbx.state === 'connecting' ? 'CONNECTING' : 'DISCONNECTED');
    document.getElementById('pbx').className = s.pbx.connected ? 'ok' : 'bad';
    document.getElementById('summary').textContent =
      s.calls.length + (s.calls.length === 1 ? ' live call' : ' live calls') + ' · outbox ' + Object.entries(s.outbox).map(([k, v]) => k + ' ' + v).join(', ') + ' · updated ' + time(s.now);
    const w = s.outboxWrite ?? { outbox: 'writing' };
    document.getElementById('write').hidden = w.outbox !== 'failing';
    document.getElementById('write').textContent = w.outbox === 'failing'
      ? 'OUTBOX CANNOT BE WRITTEN since ' + w.outboxError.since.replace('T', ' ').slice(0, 19) + ' (' + w.outboxError.code + ': ' + w.outboxError.message +
        '): nothing is dropped, delivery resumes once the disk has room'
      : '';
    fill('calls', s.calls.map((c) => [c.id, c.direction, c.customer, time(c.startedAt),
      c.legs.map((l) => l.party + ' ' + (l.disposition ?? (l.answeredAt ? 'talking' : 'ringing'))).join(', ')]), 'no live call');
    fill('webhooks', s.webhooks.map((w) => [time(w.at), w.endpoint, w.call, w.event,
      { text: w.state, cls: w.state === 'delivered' ? 'ok' : w.state === 'dead' ? 'bad' : '' }]), 'none yet');
    fill('dead', s.dead.map((d) => [time(d.at), d.endpoint, d.call, String(d.attempts), d.error ?? '']), 'none');
  } catch (err) {
    document.getElementById('summary').textContent = 'status unavailable: ' + err;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
