// Live pages: one server-sent event stream per page (experiments/views/events.py), polling only as the fallback.
// Gymnos.live({url, after: fn() -> the last epoch shown (optional), on: {status: fn(data), epoch: fn(data), ...},
// opened: fn(), poll: fn() -> promise of "more?", modeBox: element}) opens the stream; while it cannot (no EventSource, the server answers 503, Redis
// went away: the "fallback" event) it polls `poll` every 2 s, and tries the stream again every 30 s. The mode box
// says which it uses. "end" (the run ended) and "revoked" (a share link) close the stream for good.
window.Gymnos = window.Gymnos || {};
Gymnos.live = function (options) {
  var POLL_MS = 2000, RETRY_MS = 30000, OPEN_MS = 10000;
  var source = null, mode = null, finished = false, received = 0;
  function say(text) {
    if (options.modeBox) options.modeBox.textContent = text;
    document.body.setAttribute("data-live", finished ? "" : mode || "");  // for tests, and a page without a mode box
  }
  function close() { if (source) { source.close(); source = null; } }
  function finish(text) { finished = true; close(); say(text); }
  function poll() {
    if (mode === "polling" || finished) return;
    mode = "polling";
    say("· polling every " + (options.pollMs || POLL_MS) / 1000 + " s");
    Gymnos.poll(function () {
      if (mode !== "polling" || finished) return false;
      return Promise.resolve(options.poll()).then(function (more) {
        if (more === false) finish("");
        return more !== false && mode === "polling";
      });
    }, options.pollMs || POLL_MS);
    setTimeout(retry, RETRY_MS);
  }
  function retry() {
    if (finished || mode !== "polling") return;
    open();
    setTimeout(retry, RETRY_MS);
  }
  function open() {
    if (!window.EventSource || !options.url) { poll(); return; }  // no url: a server that serves no streams
    close();
    var url = options.after ? options.url + "?after=" + encodeURIComponent(options.after()) : options.url;
    var opening = source = new EventSource(url, { withCredentials: true });
    // A stream that neither opens nor fails (a proxy that buffers it): poll meanwhile.
    setTimeout(function () { if (source === opening && mode !== "live") { close(); poll(); } }, OPEN_MS);
    source.onopen = function () {
      mode = "live";
      say("· live");
      if (options.opened) options.opened();
    };
    source.onerror = function () {
      // CONNECTING: the browser reconnects by itself (with Last-Event-ID). CLOSED: the server said no (503).
      if (source && source.readyState === EventSource.CLOSED) { close(); poll(); }
    };
    Object.keys(options.on).forEach(function (kind) {
      source.addEventListener(kind, function (event) {
        received += 1;
        document.body.setAttribute("data-live-events", String(received));  // for tests: what the page was told
        options.on[kind](JSON.parse(event.data));
      });
    });
    source.addEventListener("end", function () { finish(""); });
    source.addEventListener("revoked", function () { finish("· this share link was revoked"); });
    source.addEventListener("fallback", function () { close(); poll(); });
  }
  open();
  // stop(): the page has nothing more to follow (every run it shows ended): the stream closes, polling stops.
  return { mode: function () { return mode; }, stop: function () { finish(""); } };
};
