// Behaviour every page shares, wired here because the Content-Security-Policy runs no inline handler
// (no onclick= or onsubmit= in a template). Delegated from the document, so it also holds for the
// fragments the live pages swap in.
//   <form data-confirm="Cancel this run?">   asks before it submits
//   <input data-select-on-click>             selects its text when clicked (a link to copy)
// It loads first, before every page's own script (not deferred), so Gymnos.counted is there for them.
window.Gymnos = window.Gymnos || {};
// "1 run", "3 runs", "1 epoch of 25": a count and its noun agreeing, as experiments.display.counted says them.
Gymnos.counted = function (count, noun, plural) {
  return Number(count).toLocaleString("en") + " " + (count === 1 ? noun : plural || noun + "s");
};
// The id of a run page's chart box for a metric: first_curve.js makes the box, execution.js draws Plotly's chart in it.
Gymnos.chartId = function (name) { return "chart-" + name.replace(/[^a-zA-Z0-9_-]/g, "_"); };
(function () {
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
  });
  document.addEventListener("click", function (event) {
    var input = event.target.closest("input[data-select-on-click]");
    if (input) input.select();
  });
})();
