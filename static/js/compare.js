// Compare page: one chart per metric, one line per run (same colour for a run in every chart). While a compared
// run is queued or training, the runs' stream (only these runs: live.js) says when to read the data again (an epoch
// or a status change, at most once a second); every 2 s instead while the stream cannot open.
(function () {
  var url = JSON.parse(document.getElementById("compare-data-url").textContent);
  var eventsBox = document.getElementById("compare-events-url");
  var eventsUrl = eventsBox ? JSON.parse(eventsBox.textContent) : "";
  var COLORS = ["#3b5bdb", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#e67700", "#5c940d", "#862e9c", "#495057"];
  var box = document.getElementById("charts");
  // Chart controls (log y, smoothing, x by epoch or wall time): chart_controls.js, remembered in the browser.
  var controls = GymnosChartControls.state(), drawn = null, data = null, listening = null;
  GymnosChartControls.render(box, function (value) { controls = value; if (drawn) drawn(); });
  var color = {}, label = {}, forkedAt = {}, divs = {};
  var continueBox = document.getElementById("continue-parents");
  continueBox.addEventListener("change", function () { if (drawn) drawn(); });
  function offsetOf(run) { return continueBox.checked && controls.x === "epoch" ? forkedAt[run] || 0 : 0; }

  function chartDiv(name) {
    if (!divs[name]) {
      var div = document.createElement("div");
      div.className = "chart";
      div.setAttribute("data-metric", name);
      box.appendChild(div);
      divs[name] = div;
    }
    return divs[name];
  }

  function show(answer) {
    data = answer;
    color = {}; label = {}; forkedAt = {};
    data.runs.forEach(function (run, i) { color[run.id] = COLORS[i % COLORS.length]; label[run.id] = run.name; });
    // A fork compared beside its parent: its x is the parent's epoch it started from plus its own (by epoch only).
    data.runs.forEach(function (run) {
      if (run.parent !== null && run.forked_at_epoch !== null && label[run.parent] !== undefined) forkedAt[run.id] = run.forked_at_epoch;
    });
    document.getElementById("continue-parents-box").hidden = Object.keys(forkedAt).length === 0;
    document.querySelectorAll(".swatch").forEach(function (el) {
      el.style.cssText = "display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;background:" + color[el.getAttribute("data-run")];
    });
    var names = Object.keys(data.metrics);
    document.getElementById("charts-empty").textContent = names.length
      ? "Each run keeps its colour in every chart, as in the Runs table above; the legends name them."
      : data.live ? "No epoch has ended yet: the charts appear with the first." : "These runs recorded no per-epoch metrics.";
    // Every chart's box first, so each is drawn at its final width in the grid.
    names.forEach(chartDiv);
    var times = {}, measured = true;
    data.runs.forEach(function (run) {
      times[run.id] = (run.epoch_seconds || {}).seconds || [];
      if (!(run.epoch_seconds || {}).measured) measured = false;
    });
    drawn = function () {
      names.forEach(function (name) {
        var traces = [];
        data.metrics[name].forEach(function (t) {
          var offset = offsetOf(t.run);
          traces = traces.concat(GymnosChartControls.traces({ x: t.x.map(function (x) { return x + offset; }), y: t.y, name: label[t.run], color: color[t.run],
            hovertemplate: "%{y:.4g}<extra>" + label[t.run] + "</extra>" }, controls, times[t.run]));
        });
        Plotly.react(divs[name], traces, GymnosChartControls.axes({
          title: { text: name, font: { size: 14 }, x: 0.01 }, margin: { l: 55, r: 15, t: 40, b: 80 },
          hovermode: "closest", showlegend: true,  // below the axis's title: each run by its name, in its colour
          legend: { orientation: "h", x: 0, y: -0.3, xanchor: "left", yanchor: "top", font: { size: 11 } },
        }, controls, measured), { displaylogo: false, responsive: true });
      });
      GymnosChartControls.note(controls, measured);
    };
    drawn();
  }

  function refresh() {
    return Gymnos.getJSON(url).then(function (answer) {
      show(answer);
      if (!answer.live && listening) listening.stop();  // every compared run ended: nothing more to follow
      return answer.live;
    });
  }

  var due = null;
  function soon() {
    if (due === null) due = setTimeout(function () { due = null; refresh(); }, 1000);
  }

  function follow() {
    listening = Gymnos.live({
      url: eventsUrl,
      modeBox: document.getElementById("live-mode"),
      opened: refresh,  // what happened before the stream opened
      poll: refresh,
      on: { run: soon },
    });
  }

  Gymnos.getJSON(url).then(function (answer) {
    show(answer);
    if (answer.live) follow();
  }, function () {
    document.getElementById("charts-empty").textContent = "Could not load the chart data; reload the page to try again.";
  });
})();
