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
function fetchJSON(url) {
  return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (response) {
    if (!response.ok) throw new Error(url + ": " + response.status);
    return response.json();
  });
}
// The data a page draws first, asked for as soon as this script runs (it comes before Plotly, the page's largest
// script, which takes a few hundred ms to parse and run): each element's data-early-json URL. The first getJSON of
// that URL takes the answer already on its way; later ones ask again.
var early = {};
document.querySelectorAll("[data-early-json]").forEach(function (element) {
  var url = element.getAttribute("data-early-json");
  early[url] = fetchJSON(url);
  early[url].catch(function () { /* told to whoever asks for it */ });
});
Gymnos.getJSON = function (url) {
  var answer = early[url];
  if (answer) { delete early[url]; return answer; }
  return fetchJSON(url);
};
// What a page draws first (its training curves) goes before the rest: the panels below start once Gymnos.drawn()
// has been called and the browser has had a frame to paint it. Pages that never call it start them at once.
(function () {
  var drawn = null;
  Gymnos.firstDraw = new Promise(function (resolve) { drawn = resolve; });
  Gymnos.drawn = function () {
    requestAnimationFrame(function () { setTimeout(drawn, 0); });
    setTimeout(drawn, 100);  // a tab opened in the background draws no frame: not waited for
  };
  if (!document.querySelector("[data-draws-first]")) drawn();
})();
// Put a fragment the server rendered (one of our templates, every value escaped by Django) in place
// of `box`'s content. The one place a script turns HTML into nodes (tests/test_static_js.py keeps it
// so): DOMParser builds an inert document, where nothing runs, and its nodes are moved in; anything
// from a folder or a user that reaches the page otherwise goes in as text (textContent).
Gymnos.swapFragment = function (box, html) {
  var parsed = new DOMParser().parseFromString(html, "text/html");
  box.replaceChildren.apply(box, Array.prototype.slice.call(parsed.body.childNodes));
};
