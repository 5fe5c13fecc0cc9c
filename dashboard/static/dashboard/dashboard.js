// The dashboard's own script: the tenant picker and the live call feed (a WebSocket).
// Every value from the feed is set as text (textContent), never as markup.
"use strict";

(function () {
  const MAX_ROWS = 200;

  function picker() {
    const form = document.querySelector("[data-tenant-picker]");
    if (!form) return;
    form.querySelector("select").addEventListener("change", (event) => {
      window.location.assign(event.target.value);
    });
  }

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function callRow(call) {
    const tr = document.createElement("tr");
    tr.className = call.plumbing ? "fresh plumbing" : "fresh";
    const time = new Date(call.time);
    tr.appendChild(cell(isNaN(time) ? call.time : time.toISOString().slice(11, 19)));
    tr.appendChild(cell(call.target || "—"));
    tr.appendChild(cell(call.credential || "—"));
    const what = cell(call.tool || call.route || call.method || "—");
    if (call.reason) what.title = call.reason;
    tr.appendChild(what);
    const decision = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = "decision " + (["allowed", "denied", "error"].includes(call.decision) ? call.decision : "");
    badge.textContent = call.decision;
    decision.appendChild(badge);
    tr.appendChild(decision);
    tr.appendChild(cell(String(call.status)));
    tr.appendChild(cell(Number(call.latency_ms).toFixed(1), "num"));
    return tr;
  }

  function moreRow(count) {
    const tr = document.createElement("tr");
    tr.className = "more";
    const td = cell(count + " more call" + (count === 1 ? "" : "s") + " in this batch (sampled)");
    td.colSpan = 7;
    tr.appendChild(td);
    return tr;
  }

  function feed() {
    const panel = document.querySelector("[data-feed-path]");
    if (!panel) return;
    const rows = panel.querySelector("[data-feed-rows]");
    const status = panel.querySelector("[data-feed-status]");
    const plumbing = panel.querySelector("[data-show-plumbing]");
    plumbing.addEventListener("change", () => panel.classList.toggle("show-plumbing", plumbing.checked));
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const url = scheme + window.location.host + panel.dataset.feedPath;
    let delay = 1000;

    function show(message) {
      const placeholder = rows.querySelector(".placeholder");
      if (placeholder) placeholder.remove();
      const fragment = document.createDocumentFragment();
      if (message.more > 0) fragment.appendChild(moreRow(message.more));
      for (const call of message.calls.slice().reverse()) fragment.appendChild(callRow(call));
      rows.insertBefore(fragment, rows.firstChild);
      while (rows.children.length > MAX_ROWS) rows.lastChild.remove();
    }

    function connect() {
      const socket = new WebSocket(url);
      socket.addEventListener("message", (event) => {
        let message;
        try { message = JSON.parse(event.data); } catch (e) { return; }
        if (message.type === "subscribed") {
          delay = 1000;
          status.textContent = "live";
          status.className = "status live";
        } else if (message.type === "calls" && Array.isArray(message.calls)) {
          show(message);
        }
      });
      socket.addEventListener("close", () => {
        status.textContent = "reconnecting…";
        status.className = "status";
        window.setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      });
    }
    connect();
  }

  document.addEventListener("DOMContentLoaded", () => {
    picker();
    feed();
  });
})();
