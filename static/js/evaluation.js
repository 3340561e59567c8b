// The Evaluation panels. On a run's page: the confusion matrix, ROC and PR curves and the per-class table
// (or predicted-vs-actual and residual plots), what could not be computed, and the model summary; it
// waits for the report while the run trains. On the compare page: every run's matrix on one colour scale
// (or its predicted-vs-actual plot), and the headline numbers as columns of the Runs table.
// Everything from the report is put on the page as text (textContent), never as HTML.
(function () {
  var plotConfig = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  var COLORS = ["#3b5bdb", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#e67700", "#5c940d", "#862e9c", "#495057"];
  var HEADLINE = { accuracy: "accuracy", macro_f1: "macro F1", roc_auc: "ROC AUC", r2: "R²", rmse: "RMSE" };
  var MAX_TABLE_ROWS = 200;

  function fmt(value) {
    if (value === null || value === undefined || typeof value !== "number") return "—";
    return Number(value.toPrecision(4)).toString();
  }
  // Plotly reads a few HTML tags in its labels: a class named "<b>x</b>" must stay text.
  function plain(text) { return String(text).replace(/</g, "‹").replace(/>/g, "›"); }
  function list(value) { return Array.isArray(value) ? value : []; }
  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }
  function table(headers, rows, numeric) {
    var wrap = el("div", null, "table-wrap"), t = el("table"), head = el("tr");
    headers.forEach(function (h, i) { head.appendChild(el("th", h, numeric[i] ? "num" : "")); });
    t.appendChild(el("thead")).appendChild(head);
    var body = t.appendChild(el("tbody"));
    rows.forEach(function (row) {
      var tr = body.appendChild(el("tr"));
      row.forEach(function (cell, i) { tr.appendChild(el("td", cell, numeric[i] ? "num" : "")); });
    });
    wrap.appendChild(t);
    return wrap;
  }
  function chart(box, id) {
    var div = el("div", null, "chart");
    div.id = id;
    box.appendChild(div);
    return div;
  }
  function layout(title, x, y, extra) {
    var base = {
      title: { text: plain(title), font: { size: 14 }, x: 0.01 }, margin: { l: 60, r: 15, t: 40, b: 50 },
      xaxis: { title: { text: x } }, yaxis: { title: { text: y } }, hovermode: "closest",
      legend: { orientation: "h", y: -0.25 }, paper_bgcolor: "#fff", plot_bgcolor: "#fff",
    };
    return Object.assign(base, extra || {});
  }

  function heatmap(div, matrix, title, showScale) {
    var labels = list(matrix.labels).map(plain);
    Plotly.newPlot(div, [{
      type: "heatmap", z: matrix.normalized, x: labels, y: labels, text: matrix.counts,
      texttemplate: labels.length <= 20 ? "%{text}" : "", zmin: 0, zmax: 1, colorscale: "Blues", reversescale: true, showscale: showScale,
      colorbar: { title: { text: "share of row" } },
      hovertemplate: "actual %{y}<br>predicted %{x}<br>%{text} samples (%{z:.1%} of the row)<extra></extra>",
    }], layout(title, "predicted", "actual", {
      xaxis: { title: { text: "predicted" }, type: "category", automargin: true },
      yaxis: { title: { text: "actual" }, type: "category", autorange: "reversed", automargin: true },
    }), plotConfig);
  }

  function curves(div, items, x, y, title, diagonal) {
    var traces = list(items).map(function (c, i) {
      var area = c.auc !== undefined ? "AUC " + fmt(c.auc) : "AP " + fmt(c.average_precision);
      return { x: c[x], y: c[y], mode: "lines", name: plain(c["class"]) + " (" + area + ")", line: { color: COLORS[i % COLORS.length], width: 2 } };
    });
    if (diagonal) traces.push({ x: [0, 1], y: [0, 1], mode: "lines", name: "chance", line: { color: "#adb5bd", dash: "dot" }, hoverinfo: "skip" });
    Plotly.newPlot(div, traces, layout(title, x === "fpr" ? "false positive rate" : "recall", y === "tpr" ? "true positive rate" : "precision",
      { xaxis: { title: { text: x === "fpr" ? "false positive rate" : "recall" }, range: [0, 1] }, yaxis: { title: { text: y === "tpr" ? "true positive rate" : "precision" }, range: [0, 1.02] } }), plotConfig);
  }

  function identity(actual, predicted) {
    var values = list(actual).concat(list(predicted)).filter(function (v) { return typeof v === "number"; });
    var low = Math.min.apply(null, values), high = Math.max.apply(null, values);
    return { x: [low, high], y: [low, high], mode: "lines", name: "predicted = actual", line: { color: "#adb5bd", dash: "dot" }, hoverinfo: "skip" };
  }

  function scatter(div, points, title, color, range) {
    var rows = list(points.rows);
    var trace = {
      x: points.actual, y: points.predicted, mode: "markers", type: "scatter", name: "samples",
      marker: { color: color, size: 5, opacity: 0.6 },
      text: rows.map(function (r) { return "row " + plain(r); }), hovertemplate: "%{text}<br>actual %{x:.4g}<br>predicted %{y:.4g}<extra></extra>",
    };
    var extra = range ? { xaxis: { title: { text: "actual" }, range: range }, yaxis: { title: { text: "predicted" }, range: range } } : {};
    Plotly.newPlot(div, [trace, identity(points.actual, points.predicted)], layout(title, "actual", "predicted", Object.assign({ showlegend: false }, extra)), plotConfig);
  }

  // --- one run's page ------------------------------------------------------------------------------

  function drawClassification(report, charts, tables) {
    var c = report.classification || {};
    var matrix = c.confusion_matrix;
    if (matrix && Array.isArray(matrix.counts)) heatmap(chart(charts, "evaluation-matrix"), matrix, "Confusion matrix (colour: share of the actual class)", true);
    var found = c.curves || {};
    if (list(found.roc).length) curves(chart(charts, "evaluation-roc"), found.roc, "fpr", "tpr", found.kind === "binary" ? "ROC curve (" + plain(found.positive) + " positive)" : "ROC curves, one-vs-rest", true);
    if (list(found.pr).length) curves(chart(charts, "evaluation-pr"), found.pr, "recall", "precision", "Precision-recall", false);

    var perClass = list(c.per_class);
    tables.appendChild(el("h3", "Per class"));
    tables.appendChild(table(["class", "precision", "recall", "F1", "support", "ROC AUC", "avg precision"],
      perClass.slice(0, MAX_TABLE_ROWS).map(function (r) {
        return [String(r["class"]), fmt(r.precision), fmt(r.recall), fmt(r.f1), String(r.support), fmt(r.roc_auc), fmt(r.average_precision)];
      }), [false, true, true, true, true, true, true]));
    if (perClass.length > MAX_TABLE_ROWS) tables.appendChild(el("p", "The first " + MAX_TABLE_ROWS + " of " + perClass.length + " classes; GET /api/executions/<id>/evaluation has them all.", "muted small"));
    var averages = c.averages || {};
    tables.appendChild(el("p", "Accuracy " + fmt(c.accuracy) + " · macro precision " + fmt((averages.macro || {}).precision) + ", recall " + fmt((averages.macro || {}).recall) + ", F1 " + fmt((averages.macro || {}).f1) + " · weighted F1 " + fmt((averages.weighted || {}).f1), "small"));
    var confused = list(c.most_confused);
    if (confused.length) {
      tables.appendChild(el("h3", "Most confused"));
      tables.appendChild(table(["actual", "predicted as", "samples", "share of actual"], confused.map(function (p) {
        return [String(p.actual), String(p.predicted), String(p.count), p.share === null ? "—" : (100 * p.share).toFixed(1) + "%"];
      }), [false, false, true, true]));
    }
  }

  function drawRegression(report, charts, tables) {
    var r = report.regression || {};
    var points = r.points || {};
    var sampled = points.sampled ? " (a sample of " + list(points.actual).length + " of " + points.total + ")" : "";
    scatter(chart(charts, "evaluation-scatter"), points, "Predicted vs actual" + sampled, "#3b5bdb");
    Plotly.newPlot(chart(charts, "evaluation-residuals"), [{
      x: points.predicted, y: points.residual, mode: "markers", type: "scatter", marker: { color: "#e8590c", size: 5, opacity: 0.6 },
      text: list(points.rows).map(function (row) { return "row " + plain(row); }), hovertemplate: "%{text}<br>predicted %{x:.4g}<br>residual %{y:.4g}<extra></extra>",
    }], layout("Residuals (actual − predicted) vs predicted", "predicted", "residual", { showlegend: false, shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 0, y1: 0, line: { color: "#adb5bd", dash: "dot" } }] }), plotConfig);
    var hist = r.residual_histogram || {}, edges = list(hist.edges), counts = list(hist.counts);
    Plotly.newPlot(chart(charts, "evaluation-histogram"), [{
      type: "bar", x: counts.map(function (_, i) { return (edges[i] + edges[i + 1]) / 2; }), y: counts,
      width: counts.map(function (_, i) { return edges[i + 1] - edges[i]; }), marker: { color: "#2b8a3e" },
      hovertemplate: "residual %{x:.4g}<br>%{y} samples<extra></extra>",
    }], layout("Residuals", "residual (actual − predicted)", "samples", { showlegend: false, bargap: 0.02 }), plotConfig);
    tables.appendChild(el("p", "MAE " + fmt(r.mae) + " · RMSE " + fmt(r.rmse) + " · R² " + fmt(r.r2) + " · median absolute error " + fmt(r.median_absolute_error), "small"));
    var worst = list(r.worst);
    if (worst.length) {
      tables.appendChild(el("h3", "Worst predictions"));
      var multi = worst.some(function (w) { return w.output !== undefined; });
      tables.appendChild(table(["row"].concat(multi ? ["output"] : [], ["actual", "predicted", "residual"]), worst.map(function (w) {
        return [String(w.row)].concat(multi ? [String(w.output)] : [], [fmt(w.actual), fmt(w.predicted), fmt(w.residual)]);
      }), [true].concat(multi ? [true] : [], [true, true, true])));
      tables.appendChild(el("p", report.rows === "dataset" ? "Rows are the dataset's rows, counted from 0 before the split." : "Rows are positions in the evaluated split, counted from 0.", "muted small"));
    }
  }

  function drawModel(model, box) {
    box.textContent = "";
    if (!model) return;
    box.appendChild(el("h3", "Model"));
    var params = model.params || {};
    var rows = list(model.layers).map(function (l) {
      return [String(l.name), String(l.type), Array.isArray(l.output_shape) ? "(" + l.output_shape.map(function (s) { return s === null ? "None" : s; }).join(", ") + ")" : "—",
        String(l.params), String(l.trainable), String(l.non_trainable)];
    });
    rows.push(["total", "", "", String(params.total), String(params.trainable), String(params.non_trainable)]);
    box.appendChild(table(["layer", "type", "output shape", "params", "trainable", "non-trainable"], rows, [false, false, false, true, true, true]));
    var size = model.model_h5_bytes;
    var note = (typeof size === "number" ? "model.h5 is " + (size >= 1048576 ? (size / 1048576).toFixed(1) + " MB" : (size / 1024).toFixed(1) + " KB") + "." : "");
    if (model.layers_total > list(model.layers).length) note += " The first " + list(model.layers).length + " of " + model.layers_total + " layers are listed; the totals count them all.";
    if (note) box.appendChild(el("p", note, "muted small"));
  }

  function drawReport(panel, report) {
    var split = report.split === "val" ? "validation split" : report.split === "test" ? "test split" : "no split";
    document.getElementById("evaluation-split").textContent = "· " + report.task + " on the " + split + " (" + (report.evaluated || 0) + " of " + Gymnos.counted(report.samples || 0, "sample") + ")";
    var headline = document.getElementById("evaluation-headline");
    headline.textContent = "";
    Object.keys(report.headline || {}).forEach(function (name) {
      var item = headline.appendChild(el("span", null, "evaluation-number"));
      item.appendChild(el("strong", fmt(report.headline[name])));
      item.appendChild(el("span", " " + (HEADLINE[name] || name), "muted small"));
    });
    var why = [report.task_from ? "Treated as " + report.task + " because of " + report.task_from + "." : "", report.split_note ? "Note: " + report.split_note + "." : ""];
    document.getElementById("evaluation-task").textContent = why.filter(Boolean).join(" ");
    var charts = document.getElementById("evaluation-charts"), tables = document.getElementById("evaluation-tables");
    charts.textContent = "";
    tables.textContent = "";
    if (report.classification) drawClassification(report, charts, tables);
    else if (report.regression) drawRegression(report, charts, tables);
    var notes = document.getElementById("evaluation-notes");
    notes.textContent = "";
    list(report.not_computed).forEach(function (n) {
      var li = notes.appendChild(el("li"));
      li.appendChild(el("strong", String(n.what) + ": "));
      li.appendChild(document.createTextNode(String(n.why)));
    });
    document.getElementById("evaluation-notes-head").hidden = !list(report.not_computed).length;
    drawModel(report.model, document.getElementById("evaluation-model"));
    document.getElementById("evaluation-empty").hidden = true;
    document.getElementById("evaluation-body").hidden = false;
    charts.querySelectorAll(".js-plotly-plot").forEach(function (div) { Plotly.Plots.resize(div); });
  }

  function runPage(panel) {
    var url = panel.getAttribute("data-url");
    Gymnos.firstDraw.then(function () {  // after the training curves above (poll.js)
      Gymnos.poll(function () {
        return Gymnos.getJSON(url).then(function (data) {
          if (data.available) { drawReport(panel, data.report); return false; }
          document.getElementById("evaluation-empty").textContent = data.reason;
          return data.live;  // keep asking while the run trains; it writes the report as it ends
        });
      }, 3000);
    });
  }

  // --- the compare page ----------------------------------------------------------------------------

  function addColumns(runs) {
    var names = Object.keys(HEADLINE).filter(function (name) { return runs.some(function (run) { return name in run.headline; }); });
    var swatch = document.querySelector("table .swatch[data-run]");
    if (!names.length || !swatch) return;
    var runsTable = swatch.closest("table"), byId = {};
    runs.forEach(function (run) { byId[run.id] = run; });
    var head = runsTable.querySelector("thead tr");
    names.forEach(function (name) {  // named as the table's search and sort name them
      var th = head.appendChild(el("th", "evaluation." + name, "num evaluation-col"));
      th.title = HEADLINE[name] + " from the evaluation report (test split)";
    });
    runsTable.querySelectorAll("tbody tr").forEach(function (tr) {
      var mark = tr.querySelector(".swatch[data-run]"), run = mark && byId[mark.getAttribute("data-run")];
      names.forEach(function (name) { tr.appendChild(el("td", run ? fmt(run.headline[name]) : "—", "num evaluation-col")); });
    });
    var caption = runsTable.closest(".panel").querySelector("p.muted.small");
    if (caption) caption.appendChild(document.createTextNode(" Then the evaluation report's headline numbers (evaluation.*), on each run's test split."));
  }

  function comparePage(panel) {
    var note = document.getElementById("compare-evaluation-note"), box = document.getElementById("compare-evaluation-charts");
    Gymnos.getJSON(panel.getAttribute("data-url")).then(function (data) {
      var runs = list(data.runs);
      addColumns(runs);
      var matrices = runs.filter(function (run) { return run.confusion; }), plots = runs.filter(function (run) { return run.points; });
      var divs = matrices.concat(plots).map(function (run) {
        var div = chart(box, "compare-evaluation-" + run.id);
        div.setAttribute("data-run", run.id);
        return div;
      });
      // One range for every predicted-vs-actual plot, so the runs are read on the same axes.
      var values = [];
      plots.forEach(function (run) { values = values.concat(list(run.points.actual), list(run.points.predicted)); });
      values = values.filter(function (v) { return typeof v === "number"; });
      var range = values.length ? [Math.min.apply(null, values), Math.max.apply(null, values)] : null;
      matrices.forEach(function (run, i) {
        heatmap(divs[i], run.confusion, plain(run.label) + " · accuracy " + fmt(run.headline.accuracy), true);
      });
      plots.forEach(function (run, i) {
        var shown = run.points.shown < run.points.total ? " (" + run.points.shown + " of " + run.points.total + " points)" : "";
        scatter(divs[matrices.length + i], run.points, plain(run.label) + " · R² " + fmt(run.headline.r2) + shown, COLORS[i % COLORS.length], range);
      });
      var missing = runs.filter(function (run) { return !run.confusion && !run.points; });
      note.textContent = matrices.length ? "Confusion matrices share one colour scale: the share of each actual class predicted as each class (0 to 1); the numbers are counts. " : "";
      if (plots.length) note.textContent += "Predicted-vs-actual plots share their axes. ";
      if (!matrices.length && !plots.length) note.textContent = "None of these runs has an evaluation report to compare. ";
      var reasons = document.getElementById("compare-evaluation-missing");
      missing.forEach(function (run) {
        var li = reasons.appendChild(el("li"));
        li.appendChild(el("strong", run.label + ": "));
        li.appendChild(document.createTextNode(run.reason || "no report"));
      });
    }, function () {
      note.textContent = "Could not load the evaluation reports; reload the page to try again.";
    });
  }

  var runPanel = document.getElementById("evaluation");
  if (runPanel) runPage(runPanel);
  var comparePanel = document.getElementById("compare-evaluation");
  if (comparePanel) comparePage(comparePanel);
})();
