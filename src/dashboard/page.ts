/**
 * The dashboard's page: HTML, CSS and plain JavaScript, no framework and no build step, served by
 * the handler from these strings (so they ship inside dist/ and nothing comes from a CDN). The
 * script reads one server-sent-event stream for the page it shows, updates table cells in place,
 * and draws the last minute's rate as an inline SVG polyline.
 */

/** The page for a dashboard mounted at `prefix` ('' or '/dashboard'). */
export function pageHtml(prefix: string): string {
  const base = prefix.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Conveyor dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${base}/app.css">
</head>
<body data-base="${base}">
<header>
  <h1>Conveyor</h1>
  <span id="kind" class="kind"></span>
  <span id="live" class="live">connecting</span>
  <div id="totals" class="totals"></div>
</header>
<div id="flash" class="flash hidden" role="status"></div>
<form id="token-box" class="box hidden"><label>Bearer token <input id="token" type="password" autocomplete="off"></label> <button>Use</button></form>
<main>
  <section>
    <div class="bar">
      <h2>Topics and channels</h2>
      <input id="filter" type="search" placeholder="filter topics" aria-label="filter topics">
      <button id="prev">‹</button><span id="pager-text" class="muted"></span><button id="next">›</button>
    </div>
    <table id="topics" class="grid">
      <thead><tr><th>name</th><th>depth</th><th>in flight</th><th>deferred</th><th>requeued</th><th>timed out</th><th>messages</th><th>rate (last minute)</th><th>consumers</th><th class="act-h">actions</th></tr></thead>
      <tbody></tbody>
    </table>
    <p id="empty-topics" class="muted hidden">No topics match.</p>
  </section>
  <section id="peek" class="hidden">
    <div class="bar"><h2 id="peek-title">Peek</h2><button id="peek-close">Close</button></div>
    <div id="peek-list"></div>
  </section>
  <section>
    <h2>Consumers of this process</h2>
    <table id="consumers" class="grid">
      <thead><tr><th>topic</th><th>channel</th><th>running</th><th>waiting</th><th>processed</th><th>retried</th><th>dead</th><th>p50</th><th>p99</th></tr></thead>
      <tbody></tbody>
    </table>
    <p id="consumers-none" class="muted hidden">No runtime consumers are reported to this dashboard.</p>
  </section>
  <section>
    <div class="bar">
      <h2>Dead letters</h2>
      <select id="dead-topic" aria-label="dead-letter topic"><option value="">dead letters of…</option></select>
      <button id="dead-reload">Reload</button>
      <button id="replay-selected" class="act">Replay selected</button>
      <button id="replay-all" class="act">Replay all</button>
      <button id="discard-selected" class="act danger">Discard selected</button>
      <button id="discard-all" class="act danger">Discard all</button>
    </div>
    <div id="dead-list"></div>
  </section>
</main>
<div id="publish" class="modal hidden">
  <form id="pub-form" class="box">
    <h2>Publish a message</h2>
    <label>topic <input id="pub-topic" required></label>
    <label>as <select id="pub-format"><option value="json">JSON</option><option value="cbor">CBOR (from JSON)</option><option value="msgpack">MessagePack (from JSON)</option><option value="raw">raw text</option></select></label>
    <textarea id="pub-body" rows="6" aria-label="message body">{}</textarea>
    <div><button type="submit" class="act">Publish</button> <button type="button" id="pub-cancel">Cancel</button></div>
  </form>
</div>
<div id="confirm" class="modal hidden" role="dialog" aria-modal="true">
  <div class="box"><p id="confirm-text"></p><button id="confirm-yes">Confirm</button> <button id="confirm-no">Cancel</button></div>
</div>
<script src="${base}/app.js"></script>
</body>
</html>
`;
}

export const APP_CSS = `:root { --bg: #0f1419; --panel: #171d24; --line: #263040; --text: #d8dee6; --muted: #8593a3; --accent: #4fb3ff; --warn: #f0b429; --bad: #ff6b6b; --ok: #3ddc97; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
header { display: flex; align-items: center; gap: 14px; padding: 10px 18px; border-bottom: 1px solid var(--line); background: var(--panel); flex-wrap: wrap; }
h1 { font-size: 17px; margin: 0; letter-spacing: .5px; }
h2 { font-size: 14px; margin: 0 0 8px; }
.kind { color: var(--muted); }
.live { padding: 1px 8px; border-radius: 9px; background: #3a2a10; color: var(--warn); font-size: 12px; }
.live.on { background: #0f3325; color: var(--ok); }
.totals { display: flex; gap: 16px; margin-left: auto; color: var(--muted); }
.totals b { color: var(--text); font-size: 15px; }
main { padding: 12px 18px; display: grid; gap: 18px; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 12px; overflow-x: auto; }
.bar { display: flex; align-items: center; gap: 8px; margin-bottom: 8px; flex-wrap: wrap; }
.bar h2 { margin: 0 8px 0 0; }
table.grid { border-collapse: collapse; width: 100%; }
.grid th, .grid td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; white-space: nowrap; }
.grid th { color: var(--muted); font-weight: 500; }
.grid td:nth-child(n+2):nth-child(-n+7) { font-variant-numeric: tabular-nums; }
tr.channel td:first-child { padding-left: 28px; }
tr.channel { background: #131920; }
tr.paused .name { color: var(--warn); }
.badge { font-size: 11px; padding: 0 6px; border-radius: 8px; background: #3a2a10; color: var(--warn); }
.client { display: inline-block; margin-right: 6px; padding: 0 6px; border-radius: 4px; background: #1e2833; font-size: 12px; }
.spark { width: 120px; height: 24px; vertical-align: middle; margin-left: 6px; }
.spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; }
.spark .axis { stroke: var(--line); stroke-width: 1; }
.grid td.clients, .grid td:nth-child(9) { white-space: normal; max-width: 260px; }
.grid td:last-child button { padding: 1px 6px; }
.rate { display: inline-block; min-width: 56px; }
button { background: #222c38; color: var(--text); border: 1px solid var(--line); border-radius: 4px; padding: 2px 8px; font: inherit; cursor: pointer; margin-right: 3px; }
button:hover { border-color: var(--accent); }
button.danger { color: var(--bad); }
button:disabled { opacity: .4; cursor: default; }
button.toggle { border: none; background: none; padding: 0 4px; }
input, select, textarea { background: #0c1116; color: var(--text); border: 1px solid var(--line); border-radius: 4px; padding: 3px 6px; font: inherit; }
textarea { width: 100%; font-family: ui-monospace, monospace; }
.muted { color: var(--muted); }
.mono, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
pre { margin: 2px 0; white-space: pre-wrap; word-break: break-all; max-width: 520px; max-height: 160px; overflow: auto; }
.fmt { color: var(--muted); font-size: 11px; }
.code { color: var(--bad); font-weight: 600; }
.err { color: var(--bad); }
.hidden { display: none !important; }
.flash { position: fixed; right: 18px; bottom: 18px; background: #0f3325; color: var(--ok); padding: 8px 12px; border-radius: 6px; z-index: 20; }
.flash.bad { background: #3a1616; color: var(--bad); }
.modal { position: fixed; inset: 0; background: rgba(0, 0, 0, .55); display: flex; align-items: center; justify-content: center; z-index: 10; }
.box { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 16px; min-width: 320px; display: grid; gap: 10px; }
#token-box { margin: 12px 18px; }
.ro .act, .ro .act-h { display: none; }
`;

export const APP_JS = String.raw`'use strict';
(function () {
  var base = document.body.getAttribute('data-base') || '';
  var state = { page: 1, q: '', per: 50, open: {}, snap: null, deadTopic: '', letters: [], token: sessionStorage.getItem('conveyor-token') || '' };
  var controller = null;

  function $(sel) { return document.querySelector(sel); }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]; });
  }
  function fmt(n) {
    if (n === undefined || n === null) return '–';
    if (typeof n !== 'number') return esc(n);
    if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + 'M';
    if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + 'k';
    return String(Math.round(n * 100) / 100);
  }
  function ms(n) { return n === undefined ? '–' : n < 1 ? n.toFixed(2) + ' ms' : n.toFixed(1) + ' ms'; }
  function auth(extra) {
    var h = extra || {};
    if (state.token) h.authorization = 'Bearer ' + state.token;
    return h;
  }
  function flash(text, bad) {
    var el = $('#flash');
    el.textContent = text;
    el.className = bad ? 'flash bad' : 'flash';
    clearTimeout(flash.timer);
    flash.timer = setTimeout(function () { el.className = 'flash hidden'; }, 6000);
  }

  function call(method, path, body) {
    return fetch(base + '/api/' + path, {
      method: method,
      headers: auth(body ? { 'content-type': 'application/json' } : {}),
      body: body ? JSON.stringify(body) : undefined,
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (res.status === 401) { askToken(); throw new Error('a bearer token is needed'); }
        if (!res.ok) throw new Error(data.error || res.statusText);
        return data;
      });
    });
  }

  function askToken() {
    $('#token-box').classList.remove('hidden');
    setLive(false, 'token needed');
  }

  function setLive(on, text) {
    var el = $('#live');
    el.className = on ? 'live on' : 'live';
    el.textContent = text || (on ? 'live' : 'reconnecting');
  }

  // Server-sent events read with fetch, so the bearer token can go in a header (EventSource cannot send one).
  function connect() {
    if (controller) controller.abort();
    var mine = new AbortController();
    controller = mine;
    var qs = new URLSearchParams({ page: String(state.page), q: state.q, per: String(state.per) });
    fetch(base + '/api/events?' + qs.toString(), { headers: auth({ accept: 'text/event-stream' }), signal: mine.signal })
      .then(function (res) {
        if (res.status === 401) { askToken(); return; }
        if (!res.ok || !res.body) throw new Error(res.statusText);
        setLive(true);
        var reader = res.body.getReader();
        var decoder = new TextDecoder();
        var buf = '';
        function pump() {
          return reader.read().then(function (r) {
            if (r.done) throw new Error('stream ended');
            buf += decoder.decode(r.value, { stream: true });
            var at;
            while ((at = buf.indexOf('\n\n')) >= 0) {
              onEvent(buf.slice(0, at));
              buf = buf.slice(at + 2);
            }
            return pump();
          });
        }
        return pump();
      })
      .catch(function () {
        if (mine.signal.aborted) return;
        setLive(false);
        setTimeout(function () { if (controller === mine) connect(); }, 2000);
      });
  }

  function onEvent(chunk) {
    var event = 'message';
    var data = '';
    chunk.split('\n').forEach(function (line) {
      if (line.indexOf('event:') === 0) event = line.slice(6).trim();
      else if (line.indexOf('data:') === 0) data += line.slice(5).trim();
    });
    if (event === 'snapshot') render(JSON.parse(data));
    else if (event === 'problem') flash(JSON.parse(data).error, true);
  }

  function spark(series) {
    var w = 120, h = 24;
    if (!series || series.length < 2) return '<svg class="spark" viewBox="0 0 120 24" role="img" aria-label="no rate yet"></svg>';
    var max = Math.max.apply(null, series.concat([1]));
    var step = w / 60;
    var x0 = w - (series.length - 1) * step;
    var pts = series.map(function (v, i) { return (x0 + i * step).toFixed(1) + ',' + (h - 1 - (v / max) * (h - 2)).toFixed(1); });
    // The x axis is always the last minute, so a chart that just started fills from the right.
    return '<svg class="spark" viewBox="0 0 120 24" role="img" aria-label="messages per second, last minute, peak ' + fmt(max) + '/s">' +
      '<line class="axis" x1="0" y1="23.5" x2="120" y2="23.5"/><polyline points="' + pts.join(' ') + '"/></svg>';
  }

  // Rows are kept and only their changed cells rewritten, so a button under the pointer stays the same element.
  function upsert(tbody, rows) {
    var existing = {};
    Array.prototype.forEach.call(tbody.children, function (tr) { existing[tr.getAttribute('data-key')] = tr; });
    var prev = null;
    rows.forEach(function (r) {
      var tr = existing[r.key];
      if (!tr) { tr = document.createElement('tr'); tr.setAttribute('data-key', r.key); }
      delete existing[r.key];
      tr.className = r.cls || '';
      r.cells.forEach(function (html, i) {
        var td = tr.children[i];
        if (!td) { td = document.createElement('td'); tr.appendChild(td); }
        if (td.getAttribute('data-h') !== html) { td.innerHTML = html; td.setAttribute('data-h', html); }
      });
      while (tr.children.length > r.cells.length) tr.removeChild(tr.lastChild);
      var want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== tr) tbody.insertBefore(tr, want);
      prev = tr;
    });
    Object.keys(existing).forEach(function (k) { existing[k].remove(); });
  }

  function btn(act, label, topic, channel, extra) {
    return '<button class="act ' + (extra || '') + '" data-act="' + act + '" data-topic="' + esc(topic) + '"' +
      (channel !== undefined ? ' data-channel="' + esc(channel) + '"' : '') + '>' + label + '</button>';
  }

  function render(snap) {
    state.snap = snap;
    document.body.classList.toggle('ro', !!snap.readOnly);
    $('#kind').textContent = snap.kind + (snap.readOnly ? ' · read-only' : '');
    var t = snap.totals;
    $('#totals').innerHTML =
      '<span><b data-total="topics">' + fmt(t.topics) + '</b> topics</span><span><b>' + fmt(t.channels) + '</b> channels</span>' +
      '<span><b data-total="depth">' + fmt(t.depth) + '</b> queued</span><span><b>' + fmt(t.inFlight) + '</b> in flight</span>' +
      '<span><b data-total="rate">' + fmt(t.rate) + '</b> msg/s</span>';
    var v = snap.view;
    $('#pager-text').textContent = v.matching + ' topics · page ' + v.page + ' of ' + v.pages;
    $('#prev').disabled = v.page <= 1;
    $('#next').disabled = v.page >= v.pages;
    if (v.page !== state.page) state.page = v.page;

    var rows = [];
    snap.topics.forEach(function (topic) {
      var open = !!state.open[topic.name];
      rows.push({
        key: 't:' + topic.name,
        cls: 'topic' + (topic.paused ? ' paused' : ''),
        cells: [
          '<button class="toggle" data-toggle="' + esc(topic.name) + '" aria-expanded="' + open + '">' + (open ? '▾' : '▸') + '</button> <span class="name">' + esc(topic.name) + '</span>' +
            (topic.paused ? ' <span class="badge">paused</span>' : ''),
          '<span data-fig="depth">' + fmt(topic.depth) + '</span>', '–', '–', '–', '–',
          '<span data-fig="messages">' + fmt(topic.messages) + '</span>',
          '<span class="rate" data-fig="rate">' + fmt(topic.rate) + '/s</span>' + spark(topic.series),
          topic.channels.length + ' channel' + (topic.channels.length === 1 ? '' : 's'),
          btn(topic.paused ? 'unpause' : 'pause', topic.paused ? 'Unpause' : 'Pause', topic.name) + btn('empty', 'Empty', topic.name) +
            btn('delete', 'Delete', topic.name, undefined, 'danger') + btn('publish', 'Publish', topic.name),
        ],
      });
      if (!open) return;
      topic.channels.forEach(function (c) {
        var clients = c.clients.map(function (k) {
          return '<span class="client" title="' + esc(k.host || '') + '">' + esc(k.id) + ' · RDY ' + k.ready + ' · ' + k.inFlight + ' in flight</span>';
        }).join('') || '<span class="muted">none</span>';
        rows.push({
          key: 'c:' + topic.name + '/' + c.name,
          cls: 'channel' + (c.paused ? ' paused' : ''),
          cells: [
            '<span class="name">↳ ' + esc(c.name) + '</span>' + (c.paused ? ' <span class="badge">paused</span>' : ''),
            '<span data-fig="depth">' + fmt(c.depth) + '</span>', fmt(c.inFlight), fmt(c.deferred), fmt(c.requeued), fmt(c.timedOut), fmt(c.messages),
            '<span class="rate">' + fmt(c.rate) + '/s</span>' + spark(c.series),
            clients,
            btn(c.paused ? 'unpause' : 'pause', c.paused ? 'Unpause' : 'Pause', topic.name, c.name) + btn('empty', 'Empty', topic.name, c.name) +
              btn('delete', 'Delete', topic.name, c.name, 'danger') + (snap.canPeek ? '<button data-peek="' + esc(topic.name) + '" data-channel="' + esc(c.name) + '">Peek</button>' : ''),
          ],
        });
      });
    });
    upsert($('#topics tbody'), rows);
    $('#empty-topics').classList.toggle('hidden', snap.topics.length > 0);

    upsert($('#consumers tbody'), snap.consumers.map(function (c) {
      return {
        key: c.topic + '/' + c.channel,
        cells: [esc(c.topic), esc(c.channel), fmt(c.running), fmt(c.waiting), '<span data-fig="processed">' + fmt(c.processed) + '</span>', fmt(c.retried),
          '<span data-fig="dead">' + fmt(c.dead) + '</span>', ms(c.p50) + (c.per ? ' /' + c.per : ''), ms(c.p99) + (c.per ? ' /' + c.per : '')],
      };
    }));
    $('#consumers-none').classList.toggle('hidden', snap.consumers.length > 0);

    var select = $('#dead-topic');
    var options = snap.dead.map(function (d) { return d.topic + '\u0000' + d.depth; }).join('\n');
    if (select.getAttribute('data-h') !== options) {
      select.setAttribute('data-h', options);
      var chosen = select.value;
      select.innerHTML = '<option value="">dead letters of…</option>' + snap.dead.map(function (d) {
        return '<option value="' + esc(d.topic) + '">' + esc(d.topic) + ' (' + fmt(d.depth) + ')</option>';
      }).join('');
      select.value = chosen;
    }
  }

  function shownBody(b) {
    var head = '<span class="fmt">' + esc(b.format) + ' · ' + b.size + ' B</span>';
    if (b.json !== undefined) {
      var text = JSON.stringify(b.json);
      if (text.length > 2000) text = text.slice(0, 2000) + '…';
      return head + '<pre class="json">' + esc(text) + '</pre>';
    }
    return head + (b.error ? ' <span class="err">' + esc(b.error) + '</span>' : '') + '<pre class="hex">' + esc((b.hex || '').replace(/(..)/g, '$1 ').slice(0, 1500)) + (b.truncated ? '…' : '') + '</pre>';
  }

  function loadDead() {
    var topic = $('#dead-topic').value;
    state.deadTopic = topic;
    if (!topic) { $('#dead-list').innerHTML = ''; return Promise.resolve(); }
    return call('GET', 'dead?topic=' + encodeURIComponent(topic) + '&n=200').then(function (data) {
      state.letters = data.letters;
      var rows = data.letters.map(function (l) {
        return '<tr data-dead="' + esc(l.id) + '"><td><input type="checkbox" class="pick" value="' + esc(l.id) + '" aria-label="select ' + esc(l.id) + '"></td>' +
          '<td class="mono">' + esc(l.id) + '</td><td><span class="code">' + esc(l.code || '') + '</span> ' + esc(l.reason || '') + '</td>' +
          '<td>' + esc(l.topic) + (l.channel ? '/' + esc(l.channel) : '') + '</td><td>' + fmt(l.attempts) + '</td><td>' + esc(l.at || '') + '</td>' +
          '<td>' + shownBody(l.body) + '</td></tr>';
      }).join('');
      $('#dead-list').innerHTML = data.letters.length === 0 ? '<p class="muted">No dead letters in ' + esc(topic) + '.dead.</p>' :
        '<table class="grid"><thead><tr><th></th><th>id</th><th>error</th><th>from</th><th>attempts</th><th>died</th><th>body</th></tr></thead><tbody>' + rows + '</tbody></table>';
    }).catch(function (e) { flash(e.message, true); });
  }

  function deadAction(kind, all) {
    var topic = state.deadTopic;
    if (!topic) return flash('choose a dead-letter topic first', true);
    var ids = all ? 'all' : Array.prototype.map.call(document.querySelectorAll('.pick:checked'), function (el) { return el.value; });
    if (!all && ids.length === 0) return flash('select dead letters first', true);
    var what = all ? 'every dead letter of ' + topic : ids.length + ' dead letter' + (ids.length === 1 ? '' : 's');
    var text = kind === 'replay' ? 'Replay ' + what + ' to the original topic?' : 'Discard ' + what + '? They are gone for good.';
    confirmStep(text).then(function (yes) {
      if (!yes) return;
      return call('POST', kind, { topic: topic, ids: ids }).then(function (r) {
        flash((kind === 'replay' ? 'Replayed ' : 'Discarded ') + r.done.length + (r.missing.length ? '; not found: ' + r.missing.join(', ') : ''));
        return loadDead();
      });
    }).catch(function (e) { flash(e.message, true); });
  }

  function peek(topic, channel) {
    call('GET', 'peek?topic=' + encodeURIComponent(topic) + '&channel=' + encodeURIComponent(channel) + '&n=20').then(function (data) {
      var rows = data.messages.map(function (m) {
        return '<tr><td class="mono">' + esc(m.id) + '</td><td>' + m.attempts + '</td><td>' + new Date(m.timestamp).toISOString() + '</td><td>' + shownBody(m.body) + '</td></tr>';
      }).join('');
      $('#peek-title').textContent = 'Next messages of ' + topic + '/' + channel + (data.partial ? ' (more queued than shown)' : '');
      $('#peek-list').innerHTML = data.messages.length === 0 ? '<p class="muted">Nothing queued.</p>' :
        '<table class="grid"><thead><tr><th>id</th><th>attempts</th><th>published</th><th>body</th></tr></thead><tbody>' + rows + '</tbody></table>';
      $('#peek').classList.remove('hidden');
      $('#peek').scrollIntoView({ block: 'nearest' });
    }).catch(function (e) { flash(e.message, true); });
  }

  var pending = null;
  function confirmStep(text) {
    $('#confirm-text').textContent = text;
    $('#confirm').classList.remove('hidden');
    $('#confirm-yes').focus();
    return new Promise(function (resolve) { pending = resolve; });
  }
  function answer(yes) {
    $('#confirm').classList.add('hidden');
    var p = pending;
    pending = null;
    if (p) p(yes);
  }

  function act(action, topic, channel) {
    if (action === 'publish') {
      $('#pub-topic').value = topic;
      $('#publish').classList.remove('hidden');
      $('#pub-body').focus();
      return;
    }
    var what = channel !== undefined ? 'channel ' + topic + '/' + channel : 'topic ' + topic;
    var warn = action === 'empty' ? ' Its queued messages are dropped.' : action === 'delete' ? ' Its messages are dropped and its consumers disconnected.' : '';
    confirmStep(action[0].toUpperCase() + action.slice(1) + ' ' + what + '?' + warn).then(function (yes) {
      if (!yes) return;
      return call('POST', 'action', { action: action, topic: topic, channel: channel }).then(function () { flash(action + ' ' + what + ': done'); });
    }).catch(function (e) { flash(e.message, true); });
  }

  document.addEventListener('click', function (e) {
    var el = e.target.closest('button');
    if (!el) return;
    if (el.hasAttribute('data-act')) act(el.getAttribute('data-act'), el.getAttribute('data-topic'), el.hasAttribute('data-channel') ? el.getAttribute('data-channel') : undefined);
    else if (el.hasAttribute('data-toggle')) {
      var name = el.getAttribute('data-toggle');
      if (state.open[name]) delete state.open[name]; else state.open[name] = true;
      if (state.snap) render(state.snap);
    } else if (el.hasAttribute('data-peek')) peek(el.getAttribute('data-peek'), el.getAttribute('data-channel'));
  });
  $('#confirm-yes').addEventListener('click', function () { answer(true); });
  $('#confirm-no').addEventListener('click', function () { answer(false); });
  document.addEventListener('keydown', function (e) { if (e.key === 'Escape' && pending) answer(false); });
  $('#prev').addEventListener('click', function () { state.page = Math.max(1, state.page - 1); connect(); });
  $('#next').addEventListener('click', function () { state.page += 1; connect(); });
  var typing = null;
  $('#filter').addEventListener('input', function (e) {
    clearTimeout(typing);
    typing = setTimeout(function () { state.q = e.target.value; state.page = 1; connect(); }, 250);
  });
  $('#dead-topic').addEventListener('change', loadDead);
  $('#dead-reload').addEventListener('click', loadDead);
  $('#replay-selected').addEventListener('click', function () { deadAction('replay', false); });
  $('#replay-all').addEventListener('click', function () { deadAction('replay', true); });
  $('#discard-selected').addEventListener('click', function () { deadAction('discard', false); });
  $('#discard-all').addEventListener('click', function () { deadAction('discard', true); });
  $('#peek-close').addEventListener('click', function () { $('#peek').classList.add('hidden'); });
  $('#pub-cancel').addEventListener('click', function () { $('#publish').classList.add('hidden'); });
  $('#pub-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var topic = $('#pub-topic').value;
    confirmStep('Publish this message to ' + topic + '?').then(function (yes) {
      if (!yes) return;
      return call('POST', 'publish', { topic: topic, format: $('#pub-format').value, body: $('#pub-body').value }).then(function (r) {
        $('#publish').classList.add('hidden');
        flash('published ' + r.id + ' to ' + topic);
      });
    }).catch(function (err) { flash(err.message, true); });
  });
  $('#token-box').addEventListener('submit', function (e) {
    e.preventDefault();
    state.token = $('#token').value;
    sessionStorage.setItem('conveyor-token', state.token);
    $('#token-box').classList.add('hidden');
    connect();
  });
  connect();
})();
`;
