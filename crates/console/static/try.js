// The try-it panel: talks to the chatbot through the chat API as the widget
// does (start a session, send, stream the reply), signed in by the console's
// cookie, then shows the turn's path through the pipeline and its cost.
(function () {
  "use strict";
  const panel = document.getElementById("try");
  if (!panel) return;
  const form = document.getElementById("try-form");
  const input = document.getElementById("try-message");
  const log = document.getElementById("try-log");
  const version = document.getElementById("try-version");
  const status = document.getElementById("try-status");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const chatbot = panel.dataset.chatbot;
  let session = null;

  function headers() {
    return { "Content-Type": "application/json", "X-CSRFToken": csrf };
  }

  async function call(method, path, body) {
    const r = await fetch(path, {
      method: method,
      headers: headers(),
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      throw new Error(data.detail || data.error || ("HTTP " + r.status));
    }
    return data;
  }

  function entry(role, text) {
    const li = document.createElement("li");
    li.className = "msg " + role;
    const who = document.createElement("div");
    who.className = "meta";
    who.textContent = role === "human" ? "You" : "Bot";
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = text;
    li.append(who, body);
    log.append(li);
    return li;
  }

  function cents(cost) {
    return Math.round(parseFloat(cost || "0") * 1e8);
  }

  async function describe(li) {
    const traces = await call("GET", "/api/sessions/" + session + "/traces/");
    const last = traces.results[traces.results.length - 1];
    if (!last) return;
    const e8 = last.nodes.reduce((sum, n) => sum + cents(n.cost), 0);
    const info = document.createElement("div");
    info.className = "trace-info";
    info.textContent = "path: " + last.path.join(" → ") + " · cost: $" + (e8 / 1e8).toFixed(8) +
      " · " + last.duration_ms + " ms";
    li.append(info);
  }

  function stream(task) {
    return new Promise((resolve, reject) => {
      const li = entry("ai", "");
      const text = li.querySelector(".text");
      const es = new EventSource("/api/chat/" + session + "/" + task + "/stream/");
      es.addEventListener("delta", (ev) => {
        text.textContent += JSON.parse(ev.data).content;
      });
      es.addEventListener("complete", (ev) => {
        const done = JSON.parse(ev.data);
        if (done.message) text.textContent = done.message.content;
        es.close();
        resolve(li);
      });
      es.addEventListener("error", (ev) => {
        es.close();
        let why = "the reply failed";
        try { why = JSON.parse(ev.data).error || why; } catch (_) { /* a dropped connection */ }
        text.textContent = "(" + why + ")";
        reject(new Error(why));
      });
    });
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const message = input.value.trim();
    if (!message) return;
    input.value = "";
    status.textContent = "Sending…";
    try {
      if (!session) {
        const body = { chatbot_id: chatbot };
        if (version.value) body.version_number = parseInt(version.value, 10);
        session = (await call("POST", "/api/chat/start/", body)).session_id;
        version.disabled = true;
        panel.dataset.session = session;
      }
      entry("human", message);
      const sent = await call("POST", "/api/chat/" + session + "/message/", { message: message });
      status.textContent = "The bot is answering…";
      const li = await stream(sent.task_id);
      await describe(li);
      status.textContent = "";
    } catch (err) {
      status.textContent = "Error: " + err.message;
    }
  });
})();
