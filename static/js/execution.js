// Execution page: charts, status, files and the log tail update while the run trains (no reload): pushed by the
// run's event stream (live.js), polled every 2 s only while the stream cannot open.
(function () {
  var page = JSON.parse(document.getElementById("page-data").textContent);
  var chartsBox = document.getElementById("charts");
  var plotConfig = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  var TRAIN = "#3b5bdb", VAL = "#e8590c", MARK = "#2b8a3e", PARENT = "#adb5bd";
  // A fork's curves continue its parent's (x = the parent's epoch it started from + its own), by epoch only.
  var continueBox = document.getElementById("continue-parent");
  var lastStatus = null, lastFiles = null, lastHardware = null, lastEpoch = 0;

  function layout(title) {
    return {
      title: { text: title, font: { size: 14 }, x: 0.01 }, margin: { l: 55, r: 15, t: 40, b: 40 },
      xaxis: { title: { text: "epoch" }, rangemode: "tozero" }, hovermode: "x unified",
      legend: { orientation: "h", y: 1.12, x: 1, xanchor: "right" }, paper_bgcolor: "#fff", plot_bgcolor: "#fff",
    };
  }

  var chartId = Gymnos.chartId;

  function chartDiv(name) {
    var id = chartId(name);
    var div = document.getElementById(id);
    if (!div) {
      div = document.createElement("div");
      div.id = id;
      div.className = "chart";
      div.setAttribute("data-metric", name);
      chartsBox.appendChild(div);
    }
    return div;
  }

  // Chart controls (log y, smoothing, x by epoch or wall time): chart_controls.js, remembered in the browser.
  var controls = null, lastData = null;
  // The browser tests time a first view to the first chart drawn (performance.getEntriesByName), not only to load.
  var firstChart = false;

  // The first view draws its first chart (loss) alone, then yields a frame, so that it is painted before the
  // others are drawn (Plotly's first draw of a chart is the page's longest task); later draws draw them all at once.
  function drawCharts(data) {
    var staged = !firstChart;
    lastData = data;
    var current = controls || GymnosChartControls.state();
    var times = data.epoch_seconds || { seconds: [], measured: false };
    var names = Object.keys(data.charts);
    var parent = data.parent_curves;
    document.getElementById("continue-parent-box").hidden = !parent;
    var continuing = !!parent && continueBox.checked && current.x === "epoch";
    var offset = continuing ? parent.forked_at_epoch : 0;
    var shifted = function (xs) { return xs.map(function (x) { return x + offset; }); };
    document.getElementById("charts-empty").hidden = names.length > 0;
    var added = names.filter(function (name) { return !document.getElementById(chartId(name)); });
    names.forEach(chartDiv);  // every box first, so each chart is drawn at its final width
    if (added.length) {  // boxes already drawn narrowed to make room: redraw them at their new width
      chartsBox.querySelectorAll(".js-plotly-plot").forEach(function (div) { Plotly.Plots.resize(div); });
    }
    if (staged && names.length > 1) {
      var rest = names.slice(1);
      names = names.slice(0, 1);
      afterPaint(function () { if (lastData === data) rest.forEach(drawChart); });
    }
    names.forEach(drawChart);
    document.getElementById("checkpoint-hint").hidden = !(data.checkpoints && data.checkpoints.length);
    GymnosChartControls.note(current, times.measured);

    function drawChart(name) {
      var chart = data.charts[name], traces = [];
      // Markers while there are few points: one epoch drawn as a bare line is invisible.
      var mode = function (series) { return series.x.length <= 30 ? "lines+markers" : "lines"; };
      var before = continuing ? parent.charts[name] : null;
      if (before && before.train) traces.push({ x: before.train.x, y: before.train.y, name: "parent " + name, mode: mode(before.train), line: { color: PARENT } });
      if (before && before.val) traces.push({ x: before.val.x, y: before.val.y, name: "parent val_" + name, mode: mode(before.val), line: { color: PARENT, dash: "dot" } });
      if (chart.train) traces = traces.concat(GymnosChartControls.traces({ x: shifted(chart.train.x), y: chart.train.y, name: name, mode: mode(chart.train), color: TRAIN }, current, times.seconds));
      if (chart.val) traces = traces.concat(GymnosChartControls.traces({ x: shifted(chart.val.x), y: chart.val.y, name: "val_" + name, mode: mode(chart.val), color: VAL, dash: "dot" }, current, times.seconds));
      var markers = name === "loss" ? data.checkpoints : [];
      if (markers.length) {
        traces.push({
          x: shifted(GymnosChartControls.xs(markers.map(function (m) { return m.x; }), times.seconds, current)), y: markers.map(function (m) { return m.y; }),
          customdata: markers.map(function (m) { return m.fork_url || m.url; }),
          text: markers.map(function (m) { return m.name + (m.fork_url ? "<br>click to train on from here" : "<br>click to download"); }),
          name: "checkpoints", mode: "markers", hovertemplate: "%{text}<extra></extra>",
          marker: { symbol: "diamond", size: 11, color: MARK, line: { color: "#fff", width: 1 } },
        });
      }
      var div = chartDiv(name);
      var fresh = !div.classList.contains("js-plotly-plot");
      var sketch = div.querySelector("svg.first-curve");  // first_curve.js's, until Plotly's chart replaces it
      if (sketch) sketch.remove();
      var drawn = Plotly.react(div, traces, GymnosChartControls.axes(layout(chart.val && chart.train ? name + " (train and val)" : name), current, times.measured), plotConfig);
      if (!firstChart) {
        firstChart = true;
        drawn.then(function () {
          // Plotly drew before the browser painted first_curve.js's curves: these are the first on screen. Marked
          // before the chart, so that its time is never after the chart's (they were a few microseconds apart).
          if (!performance.getEntriesByName("gymnos:first-curve").length) performance.mark("gymnos:first-curve");
          performance.mark("gymnos:first-chart");
        });
      }
      if (fresh) {
        div.on("plotly_click", function (event) {
          var point = event.points && event.points.find(function (p) { return p.customdata; });
          if (point && point.customdata) window.location = point.customdata;
        });
      }
    }
  }

  // After the browser has had a frame to paint what was drawn (or 100 ms, in a tab drawing no frames).
  function afterPaint(fn) {
    var done = false;
    var once = function () { if (!done) { done = true; fn(); } };
    requestAnimationFrame(function () { setTimeout(once, 0); });
    setTimeout(once, 100);
  }
  controls = GymnosChartControls.render(chartsBox, function (value) { controls = value; if (lastData) drawCharts(lastData); });
  continueBox.addEventListener("change", function () { if (lastData) drawCharts(lastData); });

  function drawElapsed(stages) {
    var box = document.getElementById("elapsed");
    document.getElementById("elapsed-empty").hidden = stages.length > 0;
    if (!stages.length) return;
    Plotly.react(box, [{
      type: "bar", orientation: "h", y: stages.map(function (s) { return s[0].replace(/_/g, " "); }),
      x: stages.map(function (s) { return s[1]; }), marker: { color: TRAIN },
      hovertemplate: "%{y}: %{x:.3f} s<extra></extra>",
    }], { margin: { l: 150, r: 15, t: 10, b: 35 }, xaxis: { title: { text: "seconds" } }, yaxis: { autorange: "reversed" } }, plotConfig);
  }

  // The first answer is in the page (first-data: the charts' part, the status, files and hardware being the page's
  // own); every later one is asked for (data.json).
  var firstData = document.getElementById("first-data");
  function refresh() {
    var answer = firstData ? Promise.resolve(JSON.parse(firstData.textContent)) : Gymnos.getJSON(page.data_url);
    firstData = null;
    return answer.then(function (data) {
      if ("status_html" in data && data.status_html !== lastStatus) { Gymnos.swapFragment(document.getElementById("status"), data.status_html); lastStatus = data.status_html; }
      if ("files_html" in data && data.files_html !== lastFiles) { Gymnos.swapFragment(document.getElementById("files"), data.files_html); lastFiles = data.files_html; }
      if ("hardware_html" in data && data.hardware_html !== lastHardware) { Gymnos.swapFragment(document.getElementById("hardware"), data.hardware_html); lastHardware = data.hardware_html; }
      drawCharts(data);
      Gymnos.firstDraw.then(function () { drawElapsed(data.elapsed); });  // below the training curves: after them
      if (data.permalink && window.location.pathname !== data.permalink) {
        window.history.replaceState(null, "", data.permalink);
        // A queued run's page is titled "Queued run" until a worker names its folder.
        var parts = data.permalink.split("/").filter(Boolean);
        document.querySelector("h1").textContent = decodeURIComponent(parts[parts.length - 1]);
      }
      page.live = data.live;
      lastEpoch = data.epochs || 0;
      chartsBox.setAttribute("data-live", String(data.live));  // steps.js follows the run while this is true
      return data.live;
    });
  }

  // The log: the last 200 lines, then whatever is appended, like tail -f.
  var log = document.getElementById("log"), offset = null, buffer = "", MAX_LINES = 200;
  function followLog() {
    var url = page.log_url + (offset === null ? "" : "?offset=" + offset);
    return Gymnos.getJSON(url).then(function (chunk) {
      var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 20;
      buffer += chunk.data;
      var lines = buffer.split("\n");
      if (lines.length > MAX_LINES + 1) buffer = lines.slice(lines.length - MAX_LINES - 1).join("\n");
      log.textContent = buffer || (chunk.live ? "Waiting for the log…" : "No log was written.");
      if (atBottom || offset === null) log.scrollTop = log.scrollHeight;
      offset = chunk.offset;
      document.getElementById("log-state").textContent = chunk.live ? "· following" : "";
      return chunk.live || page.live;
    });
  }

  // One read of the log at a time; a read asked for meanwhile runs after it (from the offset it ends at).
  var logBusy = null, logAgain = false;
  function catchUpLog() {
    if (logBusy) { logAgain = true; return logBusy; }
    logBusy = followLog().then(function (more) {
      logBusy = null;
      if (logAgain) { logAgain = false; return catchUpLog(); }
      return more;
    }, function (error) { logBusy = null; throw error; });
    return logBusy;
  }

  function swapStatus(html) {
    if (html !== lastStatus) { Gymnos.swapFragment(document.getElementById("status"), html); lastStatus = html; }
  }

  // An epoch pushed by the stream: its values become the charts' next points (no request).
  function addEpoch(event) {
    if (!lastData || event.epoch <= lastEpoch) return;
    lastEpoch = event.epoch;
    Object.keys(event.metrics).forEach(function (name) {
      if (name.indexOf("test_") === 0 || name.indexOf("/") >= 0) return;  // no chart (experiments/charts.py)
      var key = name.indexOf("val_") === 0 ? "val" : "train", base = key === "val" ? name.slice(4) : name;
      var chart = lastData.charts[base] = lastData.charts[base] || {};
      var series = chart[key] = chart[key] || { x: [], y: [], points: 0 };
      series.x.push(event.epoch);
      series.y.push(event.metrics[name]);
      series.points += 1;
    });
    drawCharts(lastData);
  }

  // Log lines pushed by the stream: appended when they start where the page's copy ends, else read from the log.
  function addLog(event) {
    if (offset === null || event.end <= offset) return;
    var start = event.text === null ? -1 : event.end - new TextEncoder().encode(event.text).length;
    if (start !== offset) { catchUpLog(); return; }
    var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 20;
    buffer += event.text;
    var lines = buffer.split("\n");
    if (lines.length > MAX_LINES + 1) buffer = lines.slice(lines.length - MAX_LINES - 1).join("\n");
    log.textContent = buffer;
    if (atBottom) log.scrollTop = log.scrollHeight;
    offset = event.end;
  }

  function both() {
    return Promise.all([refresh(), catchUpLog()]).then(function (more) { return more[0] || more[1]; });
  }

  // The training curves first; the log, the time by stage and the panels below once they are drawn. Then the
  // run's stream pushes what happens (epochs, log lines, status); polling every 2 s only when it cannot open.
  var first = refresh();
  first.then(Gymnos.drawn, Gymnos.drawn);
  first.then(function (live) {
    Gymnos.firstDraw.then(function () {
      if (!live) { catchUpLog(); return; }  // no events_url (a WSGI server): Gymnos.live polls
      Gymnos.live({
        url: page.events_url,
        after: function () { return lastEpoch; },
        modeBox: document.getElementById("live-mode"),
        opened: catchUpLog,  // what was written while the stream was not open
        poll: both,
        on: {
          status: function (data) {
            swapStatus(data.status_html);
            if (!data.live && page.live) { page.live = false; both(); }  // its last files, evaluation and log lines
          },
          epoch: addEpoch,
          log: addLog,
          files: refresh,
          reload: refresh,
          // A system sample written: the System panel (system.js) reads what is new from its offset.
          system: function (sample) { document.dispatchEvent(new CustomEvent("gymnos:system", { detail: sample })); },
        },
      });
    });
  }, function () { Gymnos.firstDraw.then(function () { Gymnos.poll(both, 2000); }); });
})();
