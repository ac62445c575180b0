// The tierd dashboard's live updates: no build step, no framework.
// Each element with data-fragment is a server-rendered section; it is fetched
// again (and swapped in when it changed) on its timer (data-every, ms) and
// soon after a live event on one of its topics (data-topics, prefixes).
// Buttons with data-call="METHOD /api/..." call the API and show the answer.
"use strict";
(() => {
  const EVENT_TYPES = [
    "process_submitted", "process_started", "step_started", "step_progress", "step_completed",
    "step_failed", "step_retrying", "process_paused", "process_resumed", "process_completed",
    "process_failed", "process_cancelled", "process_timeout", "daemon_state", "schedule_fired",
    "batch_progress", "batch_completed", "dropped",
  ];
  const notice = document.getElementById("notice");
  const sections = [...document.querySelectorAll("[data-fragment]")];
  const pending = new Map();
  let noticeTimer = null;

  function say(text, bad) {
    notice.textContent = text;
    notice.className = bad ? "bad" : "good";
    notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { notice.hidden = true; }, bad ? 10000 : 4000);
  }

  async function call(method, path, body) {
    const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    let doc = null;
    try { doc = await response.json(); } catch (ignored) { doc = null; }
    if (!response.ok) {
      const error = doc && doc.error;
      throw new Error(error ? `${error.type}: ${error.message}` : `HTTP ${response.status}`);
    }
    return doc;
  }

  function finished(section) {
    return section.querySelector("[data-finished]") !== null;
  }

  async function refresh(section) {
    if (section.dataset.busy) { section.dataset.again = "1"; return; }
    section.dataset.busy = "1";
    try {
      const response = await fetch(section.dataset.fragment, { credentials: "same-origin" });
      if (response.status === 401) { window.location.assign("/login"); return; }
      const html = await response.text();
      if (html !== section.dataset.last) {
        section.innerHTML = html;
        section.dataset.last = html;
      }
    } catch (ignored) {
      // The runtime is away (restarting?): the next tick tries again.
    } finally {
      delete section.dataset.busy;
      if (section.dataset.again) { delete section.dataset.again; soon(section, 200); }
    }
  }

  function soon(section, delay) {
    if (pending.has(section)) return;
    pending.set(section, setTimeout(() => { pending.delete(section); refresh(section); }, delay));
  }

  for (const section of sections) {
    section.dataset.last = section.innerHTML;
    const every = Number(section.dataset.every || 0);
    if (every > 0) {
      setInterval(() => { if (!document.hidden && !finished(section)) refresh(section); }, every);
    }
  }

  const topics = sections.flatMap((s) => (s.dataset.topics || "").split(" ").filter(Boolean));
  if (topics.length && window.EventSource) {
    const query = topics.map((t) => `topic=${encodeURIComponent(t)}`).join("&");
    const source = new EventSource(`/api/events?${query}`);
    const onEvent = (message) => {
      let topic = "";
      try { topic = JSON.parse(message.data).topic || ""; } catch (ignored) { topic = ""; }
      for (const section of sections) {
        const wanted = (section.dataset.topics || "").split(" ").filter(Boolean);
        if (message.type === "dropped" || wanted.some((prefix) => topic.startsWith(prefix))) {
          soon(section, 250);
        }
      }
    };
    for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
    source.onerror = () => { document.body.dataset.live = "reconnecting"; };
    source.onopen = () => { document.body.dataset.live = "open"; };
  }

  document.addEventListener("click", async (click) => {
    const button = click.target.closest("button[data-call]");
    if (!button) return;
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    const [method, path] = button.dataset.call.split(" ");
    let body;
    if (button.dataset.body) body = JSON.parse(button.dataset.body);
    if (button.dataset.stepFrom) {
      const chosen = document.querySelector(button.dataset.stepFrom);
      body = chosen && chosen.value ? { from_step: chosen.value } : {};
    }
    button.disabled = true;
    try {
      await call(method, path, body);
      say(`${button.textContent.trim()}: done`, false);
      for (const section of sections) soon(section, 100);
    } catch (error) {
      say(`${button.textContent.trim()} refused: ${error.message}`, true);
    } finally {
      button.disabled = false;
    }
  });
})();
