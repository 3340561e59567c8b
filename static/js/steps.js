// Per-step metrics on the run page: a chart per metric on a step axis, drawn from the API (at most 2,000 points,
// M4), with the epoch boundaries; zooming (Plotly's relayout) asks the API for that range again, whole when it is
// small enough; a double click (autorange) goes back to the whole run.
(function () {
  var panel = document.getElementById("steps");
  if (!panel) return;
  var box = document.getElementById("step-charts");
  var plotConfig = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  var POINTS = 2000, MAX_EPOCH_LINES = 200, LINE = "#3b5bdb";

  function url(name, range) {
    var query = "?points=" + POINTS;
    if (range) query += "&from=" + Math.max(0, Math.floor(range[0])) + "&to=" + Math.max(0, Math.ceil(range[1]));
    return panel.getAttribute("data-url").replace("METRIC", encodeURIComponent(name)) + query;
  }

  // The epoch charts' controls (chart_controls.js: log-scale y, smoothing) apply here too; the x axis stays steps.
  // Smoothing runs over the points drawn (M4's, when the range is downsampled), as TensorBoard's does.
  function controls() {
    var current = GymnosChartControls.state();
    return { log: current.log, smoothing: current.smoothing, x: "epoch" };
  }

  function draw(div, name, series, range) {
    div.lastDrawn = { name: name, series: series, range: range };
    var current = controls();
    var shapes = series.epochs.slice(0, MAX_EPOCH_LINES).map(function (step) {
      return { type: "line", x0: step, x1: step, yref: "paper", y0: 0, y1: 1, line: { color: "#adb5bd", width: 1, dash: "dot" } };
    });
    var layout = {
      title: { text: name + " per step", font: { size: 14 }, x: 0.01 }, margin: { l: 55, r: 15, t: 40, b: 40 },
      xaxis: { title: { text: "step" } }, yaxis: { type: current.log ? "log" : "linear" }, hovermode: "x unified",
      shapes: shapes, showlegend: false, paper_bgcolor: "#fff", plot_bgcolor: "#fff",
    };
    if (range) { layout.xaxis.range = range; layout.xaxis.autorange = false; }
    var mode = series.step.length <= 30 ? "lines+markers" : "lines";
    var traces = GymnosChartControls.traces({ x: series.step, y: series.value, name: name, mode: mode, color: LINE, width: 1 }, current, null);
    Plotly.react(div, traces, layout, plotConfig);
    // What the chart holds now, for whoever reads the page (and its browser test).
    div.setAttribute("data-points", String(series.step.length));
    div.setAttribute("data-downsampled", String(series.downsampled));
  }

  function redrawAll() {
    box.querySelectorAll("[data-step-metric]").forEach(function (div) {
      if (div.lastDrawn) draw(div, div.lastDrawn.name, div.lastDrawn.series, div.lastDrawn.range);
    });
  }
  // The controls are execution.js's (rendered before this script runs); their changes are saved before the event ends.
  ["chart-log", "chart-smoothing"].forEach(function (id) {
    var input = document.getElementById(id);
    if (input) input.addEventListener(id === "chart-smoothing" ? "input" : "change", function () { setTimeout(redrawAll, 0); });
  });

  function load(div, name, range) {
    div.setAttribute("data-loading", "true");
    return Gymnos.getJSON(url(name, range)).then(function (series) {
      draw(div, name, series, range);
      div.removeAttribute("data-loading");
    });
  }

  function zoomed(div, name, event) {
    if (event["xaxis.autorange"]) return load(div, name, null);
    var start = event["xaxis.range[0]"], end = event["xaxis.range[1]"];
    if (start === undefined && event["xaxis.range"]) { start = event["xaxis.range"][0]; end = event["xaxis.range"][1]; }
    if (start !== undefined) return load(div, name, [start, end]);
  }

  // Every 3 s while the run is live (execution.js keeps #charts' data-live), new metrics get a chart and every
  // chart not zoomed in is drawn again; a zoomed one keeps its range until a double click.
  var charts = {};
  function follow() {
    return Gymnos.getJSON(panel.getAttribute("data-list-url")).then(function (answer) {
      var names = Object.keys(answer.metrics).sort();
      document.getElementById("steps-empty").hidden = names.length > 0;
      var loads = names.map(function (name) {
        var chart = charts[name];
        if (!chart) {
          var div = document.createElement("div");
          div.className = "chart";
          div.setAttribute("data-step-metric", name);
          box.appendChild(div);
          chart = charts[name] = { div: div, zoomed: false, count: -1 };
          return load(div, name, null).then(function () {
            div.on("plotly_relayout", function (event) {
              chart.zoomed = !event["xaxis.autorange"];
              zoomed(div, name, event);
            });
            chart.count = answer.metrics[name].count;
          });
        }
        if (chart.zoomed || chart.count === answer.metrics[name].count) return null;
        chart.count = answer.metrics[name].count;
        return load(chart.div, name, null);
      });
      return Promise.all(loads).then(function () {
        return document.getElementById("charts").getAttribute("data-live") !== "false";
      });
    });
  }
  Gymnos.firstDraw.then(function () { Gymnos.poll(follow, 3000); });  // after the training curves (poll.js)
})();
