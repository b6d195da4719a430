// brandbot web chat: plain JS, no build step. Talks to POST /api/chat (see bot/channels/web.py).
// The fan id lives in the brandbot_fan cookie, set by the server on the first reply.
// While the page is visible it polls GET /api/chat/pending every few seconds, so what an
// operator writes (or the bot says when a handoff times out) appears without the fan typing.
"use strict";
(function () {
  var LABELS = {
    zh: { send: "发送", placeholder: "说点什么…", other: "EN", sending: "对方正在输入…",
          failed: "没发出去，请再试一次。", title: "和{name}聊天" },
    en: { send: "Send", placeholder: "Say something…", other: "中文", sending: "typing…",
          failed: "Could not send; please try again.", title: "Chat with {name}" },
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
    return fetch("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body),
    }).then(function (res) {
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json();
    }).then(function (data) {
      ref = null;  // the code counts on the first message only
      data.replies.forEach(function (r) { add("bot", r.text); });
      $("status").textContent = "";
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
      (data.replies || []).forEach(function (r) { add("bot", r.text); });
    }).catch(function () {
      // the next poll tries again; messages wait on the server until one succeeds
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
  fetch("/api/persona" + (personaId ? "?persona=" + encodeURIComponent(personaId) : ""))
    .then(function (res) { return res.json(); })
    .then(function (data) { persona = data; render(); })
    .catch(function () {});
  $("text").focus();
  setInterval(poll, POLL_MS);
  document.addEventListener("visibilitychange", poll);
})();
