// A poller shared by the live pages: calls fn every `interval` ms until fn's promise resolves to
// false; waits longer while the tab is hidden, and backs off after errors (a restarting server).
window.Gymnos = window.Gymnos || {};
Gymnos.poll = function (fn, interval) {
  var failures = 0;
  function next(delay) { setTimeout(tick, delay); }
  function tick() {
    if (document.hidden) { next(interval * 5); return; }
    Promise.resolve().then(fn).then(function (more) {
      failures = 0;
      if (more !== false) next(interval);
    }, function () {
      failures += 1;
      next(Math.min(interval * Math.pow(2, failures), 60000));
    });
  }
  tick();
};
Gymnos.getJSON = function (url) {
  return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (response) {
    if (!response.ok) throw new Error(url + ": " + response.status);
    return response.json();
  });
};
// Put a fragment the server rendered (one of our templates, every value escaped by Django) in place
// of `box`'s content. The one place a script turns HTML into nodes (tests/test_static_js.py keeps it
// so): DOMParser builds an inert document, where nothing runs, and its nodes are moved in; anything
// from a folder or a user that reaches the page otherwise goes in as text (textContent).
Gymnos.swapFragment = function (box, html) {
  var parsed = new DOMParser().parseFromString(html, "text/html");
  box.replaceChildren.apply(box, Array.prototype.slice.call(parsed.body.childNodes));
};
