// brandbot web chat: plain JS, no build step. Talks to POST /api/chat (see bot/channels/web.py).
// The fan id lives in the brandbot_fan cookie: signed, HttpOnly, issued by the server with the
// page (or GET /api/persona, which the page awaits before its first message), so a retried
// first message is the same fan's retry, never a second fan.
// While the page is visible it polls GET /api/chat/pending every few seconds, so what an
// operator writes (or the bot says when a handoff times out) appears without the fan typing.
// Those messages carry an id: the page shows each id once and acknowledges what it showed
// (POST /api/chat/ack); the server sends them again until it has the acknowledgement.
"use strict";
(function () {
  var LABELS = {
    zh: { send: "发送", placeholder: "说点什么…", other: "EN", sending: "对方正在输入…",
          failed: "没发出去，请再试一次。", slow: "发得太快了，请稍等一下再试。",
          unavailable: "暂时发不出去，请过几分钟再发一次。",
          title: "和{name}聊天" },
    en: { send: "Send", placeholder: "Say something…", other: "中文", sending: "typing…",
          failed: "Could not send; please try again.",
          slow: "Too many messages; please wait a moment.",
          unavailable: "The chat cannot take messages right now; please send it again in a few " +
                       "minutes.", title: "Chat with {name}" },
  };
  var params = new URLSearchParams(location.search);
  var ref = params.get("ref");            // ?ref=CODE: a referral or campaign code, sent once
  var personaId = params.get("persona");  // ?persona=ID when the daemon serves several
  var lang = params.get("lang") || localStorage.getItem("brandbot_lang") ||
             ((navigator.language || "zh").toLowerCase().indexOf("zh") === 0 ? "zh" : "en");
  if (!LABELS[lang]) lang = "zh";
  var persona = null;
  var POLL_MS = 4000;
  var polling = false;
  var shown = {};      // outbox message ids already on the page: a re-sent one is not shown twice
  var ready = null;    // GET /api/persona: done before the first message (the fan cookie)
  var $ = function (id) { return document.getElementById(id); };

  function label(key) { return LABELS[lang][key]; }

  function render() {
    document.documentElement.lang = lang;
    $("send").textContent = label("send");
    $("text").placeholder = label("placeholder");
    $("lang").textContent = label("other");
    if (persona) {
      var name = (persona.name && (persona.name[lang] || persona.name[persona.default_language]))
                 || persona.id;
      $("title").textContent = label("title").replace("{name}", name);
      document.title = $("title").textContent;
    }
  }

  function add(cls, text) {
    var li = document.createElement("li");
    li.className = cls;
    li.textContent = text;   // never innerHTML: replies and fan text are plain text
    $("log").appendChild(li);
    $("log").scrollTop = $("log").scrollHeight;
  }

  // Replies from the server: bot replies (no id) are shown; outbox messages (an id) are shown
  // once and acknowledged, also when they came again because an earlier acknowledgement was lost.
  function showReplies(replies) {
    var ids = [];
    (replies || []).forEach(function (r) {
      if (typeof r.id === "number") {
        ids.push(r.id);
        if (shown[r.id]) return;
        shown[r.id] = true;
      }
      add("bot", r.text);
    });
    if (ids.length) acknowledge(ids);
  }

  function acknowledge(ids) {
    var body = { ids: ids };
    if (personaId) body.persona = personaId;
    fetch("/api/chat/ack", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body),
    }).catch(function () {
      // not acknowledged: they come again with the next poll, and are not shown twice
    });
  }

  function msgId() {
    var a = new Uint8Array(12);
    crypto.getRandomValues(a);
    return "m-" + Array.prototype.map.call(a, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function send(text, attempt, id) {
    var body = { text: text, msg_id: id };
    if (personaId) body.persona = personaId;
    if (ref) body.ref = ref;
    $("status").textContent = label("sending");
    $("send").disabled = true;
    // The cookie first: without it a retry of this message would be another fan's.
    return ready.then(function () {
      return fetch("/api/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify(body),
      });
    }).then(function (res) {
      if (res.status === 429) return { slow: true };
      // 503: the daemon could not keep the message (disk full). Its body carries the persona's
      // apology; an immediate retry would meet the same, so the fan is told to send it later.
      if (res.status === 503) {
        return res.json().then(function (data) {
          return { unavailable: (data && data.replies) || [] };
        }, function () { return { unavailable: [] }; });
      }
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json();
    }).then(function (data) {
      $("status").textContent = "";
      if (data.slow) { add("error", label("slow")); return; }  // no retry: it would count too
      if (data.unavailable) {  // nothing was kept: ?ref= still goes with the next message
        if (data.unavailable.length) data.unavailable.forEach(function (r) { add("bot", r.text); });
        else add("error", label("unavailable"));
        return;
      }
      ref = null;  // the code counts on the first message only
      showReplies(data.replies);
    }).catch(function () {
      // The same msg_id on retry: the daemon answers a repeated id from its log, never twice.
      if (attempt < 2) return send(text, attempt + 1, id);
      add("error", label("failed"));
      $("status").textContent = "";
    }).then(function () { $("send").disabled = false; $("text").focus(); });
  }

  function poll() {
    if (polling || document.hidden) return;
    polling = true;
    fetch("/api/chat/pending" + (personaId ? "?persona=" + encodeURIComponent(personaId) : ""), {
      credentials: "same-origin",
      cache: "no-store",
    }).then(function (res) {
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json();
    }).then(function (data) {
      showReplies(data.replies);
    }).catch(function () {
      // the next poll tries again; messages wait on the server until acknowledged
    }).then(function () { polling = false; });
  }

  $("form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = $("text").value.trim();
    if (!text) return;
    $("text").value = "";
    add("fan", text);
    send(text, 0, msgId());
  });

  $("lang").addEventListener("click", function () {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("brandbot_lang", lang);
    render();
  });

  render();
  // Also sets the fan cookie if the page came without one (a cached page, a cleared cookie).
  ready = fetch("/api/persona" + (personaId ? "?persona=" + encodeURIComponent(personaId) : ""),
                { credentials: "same-origin" })
    // A 404 (unknown ?persona=) or 429 is no persona: its {"error": ...} must not become the title.
    .then(function (res) { return res.ok ? res.json() : null; })
    .then(function (data) { if (data) { persona = data; render(); } })
    .catch(function () {});
  poll();  // what waited while the page was closed comes now, not after the first interval
  $("text").focus();
  setInterval(poll, POLL_MS);
  document.addEventListener("visibilitychange", poll);
})();
