// Chart controls of the execution and compare pages: log-scale y, smoothing (TensorBoard's exponential
// moving average, 0 to 0.99, the raw line kept faint), and x by epoch or by wall time. Remembered in
// this browser, per user, for every chart of both pages.
window.GymnosChartControls = (function () {
  var DEFAULTS = { log: false, smoothing: 0, x: "epoch" };

  function storageKey() {
    var user = document.querySelector(".topbar .user span");
    return "gymnos.chart-controls." + (user ? user.textContent.trim() : "shared");
  }

  function state() {
    var saved = {};
    try { saved = JSON.parse(window.localStorage.getItem(storageKey()) || "{}") || {}; } catch (e) { saved = {}; }
    var smoothing = Number(saved.smoothing);
    return {
      log: saved.log === true,
      smoothing: isFinite(smoothing) ? Math.min(0.99, Math.max(0, smoothing)) : 0,
      x: saved.x === "time" ? "time" : "epoch",
    };
  }

  function save(value) {
    try { window.localStorage.setItem(storageKey(), JSON.stringify(value)); } catch (e) { /* private mode: not remembered */ }
  }

  // <tag> with the given properties and children (nodes or text): the controls are built as nodes, not HTML.
  function element(tag, properties, children) {
    var node = Object.assign(document.createElement(tag), properties);
    node.append.apply(node, children || []);
    return node;
  }

  // The controls, above the charts box; onChange(state) redraws.
  function render(chartsBox, onChange) {
    var current = state();
    var box = document.createElement("div");
    box.className = "chart-controls";
    box.id = "chart-controls";
    box.style.cssText = "display:flex;gap:1.25rem;align-items:center;flex-wrap:wrap;margin:.25rem 0 .75rem;font-size:.88rem";
    var log = element("input", { type: "checkbox", id: "chart-log" });
    var smoothing = element("input", { type: "range", id: "chart-smoothing", min: "0", max: "0.99", step: "0.01" });
    smoothing.style.verticalAlign = "middle";
    var shown = element("output", { id: "chart-smoothing-value" });
    var x = element("select", { id: "chart-x" });
    x.add(new Option("epoch", "epoch"));
    x.add(new Option("wall time", "time"));
    box.append(
      element("label", {}, [log, " Log scale (y)"]),
      element("label", {}, ["Smoothing ", smoothing, " ", shown]),
      element("label", {}, ["X axis ", x]),
      element("span", { className: "muted small", id: "chart-x-note" }));
    chartsBox.parentNode.insertBefore(box, chartsBox);
    log.checked = current.log;
    smoothing.value = String(current.smoothing);
    shown.textContent = current.smoothing.toFixed(2);
    x.value = current.x;
    function changed() {
      var value = { log: log.checked, smoothing: Number(smoothing.value), x: x.value };
      shown.textContent = value.smoothing.toFixed(2);
      save(value);
      onChange(value);
    }
    [log, x].forEach(function (input) { input.addEventListener("change", changed); });
    smoothing.addEventListener("input", changed);
    return current;
  }

  // TensorBoard's smoothing: an exponential moving average, debiased so the first points are not pulled to 0.
  // A value that is not a finite number is kept as it is and does not move the average.
  function smooth(ys, weight) {
    var last = 0, count = 0, out = [];
    for (var i = 0; i < ys.length; i++) {
      var y = ys[i];
      if (y === null || y === undefined || !isFinite(y)) { out.push(y); continue; }
      last = last * weight + (1 - weight) * y;
      count += 1;
      out.push(last / (weight === 1 ? 1 : 1 - Math.pow(weight, count)));
    }
    return out;
  }

  // Epoch numbers (from 1) as seconds from the run's start; an epoch without a time keeps no point.
  function xs(epochs, seconds, current) {
    if (current.x !== "time") return epochs;
    return epochs.map(function (epoch) { var s = seconds && seconds[epoch - 1]; return s === undefined ? null : s; });
  }

  // Plotly traces of one series: the line as drawn (smoothed when asked, the raw one faint beside it).
  // series: {x: [epochs], y: [...], name, color, dash, width, mode, hovertemplate}; seconds: that run's epoch ends.
  function traces(series, current, seconds) {
    var x = xs(series.x, seconds, current);
    var line = { color: series.color, width: series.width || 2 };
    if (series.dash) line.dash = series.dash;
    var main = { x: x, y: series.y, name: series.name, mode: series.mode || "lines", line: line };
    if (series.hovertemplate) main.hovertemplate = series.hovertemplate;
    if (!(current.smoothing > 0)) return [main];
    var faint = { x: x, y: series.y, name: series.name + " (raw)", mode: "lines", showlegend: false, hoverinfo: "skip",
                  opacity: 0.25, line: { color: series.color, width: 1 } };
    if (series.dash) faint.line.dash = series.dash;
    main.y = smooth(series.y, current.smoothing);
    main.mode = "lines";
    return [faint, main];
  }

  // The axes as the controls ask: y logarithmic, x in epochs or seconds.
  function axes(layout, current, measured) {
    layout.yaxis = Object.assign({}, layout.yaxis || {}, { type: current.log ? "log" : "linear" });
    var title = current.x === "time" ? (measured === false ? "seconds from start (estimated)" : "seconds from start") : "epoch";
    layout.xaxis = Object.assign({}, layout.xaxis || {}, { title: { text: title } });
    return layout;
  }

  function note(current, measured) {
    var element = document.getElementById("chart-x-note");
    if (!element) return;
    element.textContent = current.x === "time" && measured === false
      ? "Estimated from the fit time: epochs spread evenly (system metrics record each epoch's end)."
      : "";
  }

  return { state: state, render: render, smooth: smooth, traces: traces, axes: axes, xs: xs, note: note, DEFAULTS: DEFAULTS };
})();
