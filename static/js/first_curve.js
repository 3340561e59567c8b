// A run page's training curves drawn at once as plain SVG from the data in the page (first-data), while Plotly's
// bundle still downloads and compiles in a fresh browser (issue 25: a first view under 500 ms). execution.js
// replaces each with its interactive chart as soon as Plotly has run. Deferred, and before Plotly in the page, so
// it runs as soon as the page is parsed. Only the DOM's own calls: a metric's name is set as text, never as markup.
(function () {
  var source = document.getElementById("first-data");
  var box = document.getElementById("charts");
  if (!source || !box) return;
  var charts;
  try { charts = JSON.parse(source.textContent).charts || {}; } catch (error) { return; }
  var names = Object.keys(charts);
  if (!names.length) return;
  var NS = "http://www.w3.org/2000/svg";
  var TRAIN = "#3b5bdb", VAL = "#e8590c", GRID = "#eee", TEXT = "#444";
  var MARGIN = { l: 55, r: 15, t: 40, b: 40 };  // Plotly's, in execution.js's layout()

  function element(name, attributes, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attributes).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, content, attributes) {
    var node = element("text", Object.assign({ x: x, y: y, fill: TEXT, "font-size": 11, "font-family": "sans-serif" }, attributes || {}), parent);
    node.textContent = content;
    return node;
  }

  // About five round steps (1, 2 or 5 times a power of ten) across [low, high].
  function ticks(low, high) {
    if (!(high > low)) return [low];
    var raw = (high - low) / 5, power = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * power; }).find(function (s) { return s >= raw; });
    var out = [];
    for (var value = Math.ceil(low / step) * step; value <= high + step * 1e-9; value += step) out.push(+value.toPrecision(12));
    return out;
  }

  function label(value) { return Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-3) ? value.toExponential(1) : String(+value.toPrecision(4)); }

  function points(series) {
    var out = [];
    (series ? series.x : []).forEach(function (x, i) {
      var y = series.y[i];
      if (typeof x === "number" && typeof y === "number" && isFinite(x) && isFinite(y)) out.push([x, y]);
    });
    return out;
  }

  function draw(name, chart) {
    var div = document.getElementById(Gymnos.chartId(name));
    if (!div) {
      div = document.createElement("div");
      div.id = Gymnos.chartId(name);
      div.className = "chart";
      div.setAttribute("data-metric", name);
      box.appendChild(div);
    }
    return function () {  // once every box is in the grid: each is measured at its final width
      var width = div.clientWidth || 460, height = div.clientHeight || 320;
      var lines = [[points(chart.train), name, TRAIN, null], [points(chart.val), "val_" + name, VAL, "3,3"]].filter(function (line) { return line[0].length; });
      var all = [].concat.apply([], lines.map(function (line) { return line[0]; }));
      var title = chart.val && chart.train ? name + " (train and val)" : name;
      var svg = element("svg", { class: "first-curve", width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": title });
      text(svg, 10, 24, title, { "font-size": 14 });
      if (all.length) {
        var ys = all.map(function (p) { return p[1]; }), low = Math.min.apply(null, ys), high = Math.max.apply(null, ys);
        var pad = (high - low) * 0.05 || Math.abs(high) * 0.05 || 1;
        low -= pad; high += pad;
        var xHigh = Math.max.apply(null, all.map(function (p) { return p[0]; })) || 1;
        var plotW = width - MARGIN.l - MARGIN.r, plotH = height - MARGIN.t - MARGIN.b;
        var sx = function (x) { return MARGIN.l + (x / xHigh) * plotW; };
        var sy = function (y) { return MARGIN.t + (1 - (y - low) / (high - low)) * plotH; };
        ticks(low, high).forEach(function (y) {
          element("line", { x1: MARGIN.l, x2: width - MARGIN.r, y1: sy(y), y2: sy(y), stroke: GRID }, svg);
          text(svg, MARGIN.l - 6, sy(y) + 4, label(y), { "text-anchor": "end" });
        });
        ticks(0, xHigh).forEach(function (x) {
          text(svg, sx(x), height - MARGIN.b + 16, label(x), { "text-anchor": "middle" });
        });
        text(svg, MARGIN.l + plotW / 2, height - 6, "epoch", { "text-anchor": "middle" });
        lines.forEach(function (line, index) {
          var path = line[0].map(function (p) { return sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1); }).join(" ");
          var attributes = { points: path, fill: "none", stroke: line[2], "stroke-width": 2 };
          if (line[3]) attributes["stroke-dasharray"] = line[3];
          element("polyline", attributes, svg);
          var at = width - MARGIN.r - 110 * (lines.length - index);
          element("line", { x1: at, x2: at + 20, y1: 20, y2: 20, stroke: line[2], "stroke-width": 2, "stroke-dasharray": line[3] || "none" }, svg);
          text(svg, at + 24, 24, line[1]);
        });
      }
      div.appendChild(svg);
    };
  }

  names.map(function (name) { return draw(name, charts[name]); }).forEach(function (finish) { finish(); });
  // Marked once painted: what the browser tests time a first view by (the interactive chart: gymnos:first-chart).
  // When Plotly drew its chart before the browser painted these, execution.js has marked it already.
  requestAnimationFrame(function () {
    setTimeout(function () {
      if (!performance.getEntriesByName("gymnos:first-curve").length) performance.mark("gymnos:first-curve");
    }, 0);
  });
})();
