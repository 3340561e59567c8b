// Queue page: the queue fragment read again when a run changes (the runs' event stream, live.js), at most once a
// second, and every 30 s for the workers' heartbeats; every few seconds instead while the stream cannot open.
(function () {
  var box = document.getElementById("queue");
  var seconds = Number(box.getAttribute("data-refresh")) || 3;
  function refresh() {
    return fetch(box.getAttribute("data-url"), { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error(response.status);
      return response.text();
    }).then(function (html) { Gymnos.swapFragment(box, html); return true; });
  }
  var due = null;
  function soon() {
    if (due === null) due = setTimeout(function () { due = null; refresh(); }, 1000);
  }
  var listening = Gymnos.live({
    url: box.getAttribute("data-events"),
    modeBox: document.getElementById("live-mode"),
    pollMs: seconds * 1000,
    opened: refresh,
    poll: refresh,
    on: { run: soon },
  });
  setInterval(function () { if (listening.mode() === "live" && !document.hidden) refresh(); }, 30000);
})();
