/*
 * The status page: one static HTML document with its CSS and script inline (no build step, no CDN). It holds no
 * secret and no data: the script asks for an account (or instance) token, keeps it in sessionStorage, and reads the
 * status and dead-letter routes next to it (`<prefix>/status`, `<prefix>/dead-letters/...`) with it. Everything
 * it shows is written with `textContent`, never parsed as HTML. Kept free of backticks and `${` so it can live in
 * this template literal.
 */

export const STATUS_PAGE_STYLE = `
:root { color-scheme: light; --fg: #1f2933; --muted: #616e7c; --line: #d9dee4; --bg: #f5f7fa; --ok: #1e7b34;
  --warn: #9a6700; --bad: #b42318; --accent: #2563eb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 16px; padding: 10px 20px; background: #111827; color: #fff; }
header h1 { font-size: 16px; margin: 0; font-weight: 600; }
header .spacer { flex: 1; }
header button { background: transparent; color: #fff; border: 1px solid #4b5563; }
main { padding: 16px 20px; max-width: 1400px; }
button { font: inherit; padding: 4px 10px; border-radius: 4px; border: 1px solid var(--line); background: #fff;
  cursor: pointer; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
input[type=password] { font: inherit; padding: 5px 8px; border: 1px solid var(--line); border-radius: 4px;
  width: 320px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 14px 16px; margin-bottom: 16px; }
.summary { display: flex; gap: 24px; flex-wrap: wrap; margin-bottom: 12px; color: var(--muted); }
.summary b { color: var(--fg); }
.filters { display: flex; gap: 16px; flex-wrap: wrap; align-items: center; margin-bottom: 10px; }
.filters label { display: inline-flex; gap: 6px; align-items: center; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.error { color: var(--bad); max-width: 360px; overflow-wrap: anywhere; }
tr.selected td { background: #eef4ff; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
  background: #e5e7eb; }
.badge.active, .badge.connected { background: #dcfce7; color: var(--ok); }
.badge.paused, .badge.connecting, .badge.remote { background: #fef3c7; color: var(--warn); }
.badge.error, .badge.deaf, .badge.disconnected, .badge.none { background: #fee2e2; color: var(--bad); }
a.instance { color: var(--accent); text-decoration: none; font-weight: 600; cursor: pointer; }
.muted { color: var(--muted); }
.message { padding: 8px 12px; border-radius: 4px; margin-bottom: 12px; }
.message.bad { background: #fee2e2; color: var(--bad); }
.message.ok { background: #dcfce7; color: var(--ok); }
.empty { padding: 24px; text-align: center; color: var(--muted); }
.card.flush { padding: 0; }
.filters .spacer { flex: 1; }
#detail h2 { margin: 0 0 4px; font-size: 16px; }
#detail p { margin-top: 0; }
#detail h3 { font-size: 14px; margin-bottom: 6px; }
[hidden] { display: none !important; }
`;

export const STATUS_PAGE_SCRIPT = `
"use strict";
(function () {
  var KEY = "ryze-chatwoot-status-token";
  var REFRESH_MS = 5000;
  var api = location.pathname.replace(/\\/ui\\/?$/, "");
  var $ = function (id) { return document.getElementById(id); };
  var state = { rows: [], selected: null, timer: null, now: null };

  function token() { return sessionStorage.getItem(KEY); }
  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }
  function badge(value) { return el("span", value === null ? "-" : value, "badge " + (value || "")); }
  function ago(iso, now) {
    if (!iso) return "-";
    var seconds = Math.max(0, Math.round((Date.parse(now) - Date.parse(iso)) / 1000));
    if (seconds < 60) return seconds + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
    return Math.floor(seconds / 86400) + " d ago";
  }
  function stamp(iso, now) {
    var node = el("span", ago(iso, now), "time");
    if (iso) node.title = iso;
    return node;
  }

  function call(method, path) {
    return fetch(api + path, { method: method, headers: { token: token() }, cache: "no-store" }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (body) {
        if (res.status === 401) { forget("That token was refused: " + errorText(body)); throw new Error("refused"); }
        if (!res.ok) throw new Error(errorText(body) + " (HTTP " + res.status + ")");
        return body;
      });
    });
  }
  function errorText(body) { return body && body.error && body.error.message ? body.error.message : "request failed"; }

  function show(which) {
    $("login").hidden = which !== "login";
    $("app").hidden = which !== "app";
    $("logout").hidden = which !== "app";
  }
  function forget(reason) {
    sessionStorage.removeItem(KEY);
    clearTimeout(state.timer);
    state.selected = null;
    $("login-error").textContent = reason || "";
    $("login-error").hidden = !reason;
    show("login");
  }
  function setNotice(text, kind) {
    var node = $("notice");
    node.textContent = text || "";
    node.className = "message " + (kind || "");
    node.hidden = !text;
  }

  function matches(row) {
    var wanted = [];
    document.querySelectorAll("input[data-filter]").forEach(function (box) { if (box.checked) wanted.push(box.dataset.filter); });
    if (wanted.length === 0) return true;
    return wanted.some(function (filter) {
      if (filter === "deaf") return row.realtime === "deaf";
      if (filter === "paused") return row.status === "paused";
      if (filter === "error") return row.status === "error";
      if (filter === "dead") return row.dead_letters > 0;
      return false;
    });
  }

  function renderTable(now) {
    var body = $("rows");
    body.replaceChildren();
    var shown = state.rows.filter(matches);
    shown.forEach(function (row) {
      var tr = el("tr");
      tr.dataset.instance = row.instance;
      if (row.instance === state.selected) tr.className = "selected";
      var link = el("a", row.instance, "instance");
      link.href = "#" + encodeURIComponent(row.instance);
      link.addEventListener("click", function (event) { event.preventDefault(); select(row.instance); });
      var cells = [
        link, badge(row.status), badge(row.realtime), el("span", row.chatwoot_version || "unknown"),
        el("span", row.outbox_depth), stamp(row.oldest_due_at, now), el("span", row.dead_letters),
        stamp(row.last_inbound_at, now), stamp(row.last_outbound_at, now), el("span", row.last_error || "")
      ];
      var classes = ["", "", "", "", "num", "", "num", "", "", "error"];
      cells.forEach(function (cell, index) {
        var td = el("td", null, classes[index]);
        td.appendChild(cell);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    $("empty").hidden = shown.length > 0;
    $("empty").textContent = state.rows.length === 0 ? "No integrations yet." : "No integration matches the filters.";
    var count = function (test) { return state.rows.filter(test).length; };
    $("sum-total").textContent = state.rows.length;
    $("sum-error").textContent = count(function (r) { return r.status === "error"; });
    $("sum-paused").textContent = count(function (r) { return r.status === "paused"; });
    $("sum-deaf").textContent = count(function (r) { return r.realtime === "deaf"; });
    $("sum-dead").textContent = state.rows.reduce(function (n, r) { return n + r.dead_letters; }, 0);
  }

  function renderDetail(now) {
    var section = $("detail");
    var row = state.rows.filter(function (r) { return r.instance === state.selected; })[0];
    if (!row) { section.hidden = true; return; }
    section.hidden = false;
    $("detail-name").textContent = row.instance;
    $("detail-facts").textContent = "Chatwoot " + (row.chatwoot_version || "version unknown") + " at " +
      row.chatwoot_base_url + ", account " + row.chatwoot_account_id + ", inbox " + row.chatwoot_inbox_id +
      ", " + row.delivery + " delivery";
    return call("GET", "/dead-letters/" + encodeURIComponent(row.instance) + "?limit=20").then(function (page) {
      var body = $("dead-rows");
      body.replaceChildren();
      page.dead_letters.forEach(function (item) {
        var tr = el("tr");
        tr.dataset.id = item.id;
        var retry = el("button", "Retry");
        retry.addEventListener("click", function () { retryItem(row.instance, item.id, retry); });
        [el("span", item.id.slice(0, 8), "id"), el("span", item.direction + " " + item.kind), el("span", item.chat || (item.conversation_id ? "conversation " + item.conversation_id : "-")),
          el("span", item.error), el("span", item.attempts), stamp(item.created_at, now), retry].forEach(function (cell, index) {
          var td = el("td", null, index === 3 ? "error" : index === 4 ? "num" : "");
          td.appendChild(cell);
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
      $("dead-empty").hidden = page.dead_letters.length > 0;
    });
  }

  function retryItem(instance, id, button) {
    button.disabled = true;
    call("POST", "/dead-letters/" + encodeURIComponent(instance) + "/" + encodeURIComponent(id) + "/retry").then(function () {
      setNotice("Dead letter " + id.slice(0, 8) + " queued for retry.", "ok");
      return refresh();
    }).catch(function (error) {
      button.disabled = false;
      if (error.message !== "refused") setNotice(error.message, "bad");
    });
  }

  function select(instance) {
    state.selected = state.selected === instance ? null : instance;
    setNotice("");
    refresh();
  }

  function refresh() {
    clearTimeout(state.timer);
    if (!token()) { show("login"); return Promise.resolve(); }
    return call("GET", "/status").then(function (status) {
      state.rows = status.integrations;
      state.now = status.generated_at;
      show("app");
      $("updated").textContent = "updated " + new Date(status.generated_at).toLocaleTimeString();
      renderTable(status.generated_at);
      return renderDetail(status.generated_at);
    }).catch(function (error) {
      if (error.message !== "refused") setNotice(error.message, "bad");
    }).then(function () {
      if (token()) state.timer = setTimeout(refresh, REFRESH_MS);
      document.body.dataset.loaded = String(Number(document.body.dataset.loaded || "0") + 1);
    });
  }

  $("login-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var value = $("token").value.trim();
    if (!value) return;
    sessionStorage.setItem(KEY, value);
    $("token").value = "";
    $("login-error").hidden = true;
    refresh();
  });
  $("logout").addEventListener("click", function () { forget(""); });
  $("refresh").addEventListener("click", function () { refresh(); });
  document.querySelectorAll("input[data-filter]").forEach(function (box) {
    box.addEventListener("change", function () { renderTable(state.now); });
  });
  refresh();
})();
`;

export const STATUS_PAGE_BODY = `
<header>
  <h1>Chatwoot bridge status</h1>
  <span class="spacer"></span>
  <span id="updated" class="muted"></span>
  <button id="logout" type="button" hidden>Forget token</button>
</header>
<main>
  <section id="login" class="card" hidden>
    <form id="login-form" autocomplete="off">
      <p>Enter an account token (it owns every instance of its account) or an instance token. It is kept in this
      tab only (sessionStorage) and sent with each request as the <code>token</code> header.</p>
      <div id="login-error" class="message bad" hidden></div>
      <input id="token" type="password" aria-label="token" placeholder="caller token">
      <button class="primary" type="submit">Show status</button>
    </form>
  </section>
  <section id="app" hidden>
    <div id="notice" class="message" hidden></div>
    <div class="summary">
      <span>integrations <b id="sum-total">0</b></span>
      <span>error <b id="sum-error">0</b></span>
      <span>paused <b id="sum-paused">0</b></span>
      <span>deaf <b id="sum-deaf">0</b></span>
      <span>dead letters <b id="sum-dead">0</b></span>
    </div>
    <div class="filters">
      <span class="muted">Show only:</span>
      <label><input type="checkbox" data-filter="deaf"> deaf</label>
      <label><input type="checkbox" data-filter="paused"> paused</label>
      <label><input type="checkbox" data-filter="error"> error</label>
      <label><input type="checkbox" data-filter="dead"> dead letters &gt; 0</label>
      <span class="spacer"></span>
      <button id="refresh" type="button">Refresh</button>
    </div>
    <div class="card flush">
      <table>
        <thead><tr><th>Instance</th><th>Status</th><th>Realtime</th><th>Chatwoot</th><th>Outbox</th>
          <th>Oldest due</th><th>Dead</th><th>Last in</th><th>Last out</th><th>Last error</th></tr></thead>
        <tbody id="rows"></tbody>
      </table>
      <div id="empty" class="empty" hidden></div>
    </div>
    <section id="detail" class="card" hidden>
      <h2 id="detail-name"></h2>
      <p id="detail-facts" class="muted"></p>
      <h3>Recent dead letters</h3>
      <table>
        <thead><tr><th>Id</th><th>Kind</th><th>Chat</th><th>Error</th><th>Attempts</th><th>Queued</th><th></th></tr></thead>
        <tbody id="dead-rows"></tbody>
      </table>
      <div id="dead-empty" class="empty" hidden>No dead letters.</div>
    </section>
  </section>
</main>
`;
