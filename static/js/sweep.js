// Sweep page: while the sweep runs, re-render its counts, best trial and trials table (HTML the server
// renders) as its stream tells of a change, and redraw the three charts from the same answer.
(function () {
  var page = JSON.parse(document.getElementById("sweep-data").textContent);
  var STATUS_COLORS = { succeeded: "#3b5bdb", pruned: "#e8590c" };
  var CONFIG = { displaylogo: false, responsive: true };

  function show(id, on) { document.getElementById(id).hidden = !on; }

  function ended(trial) { return trial.value !== null && (trial.status === "succeeded" || trial.status === "pruned"); }

  function objectiveChart(summary) {
    var scored = summary.trials.filter(ended);
    var div = document.getElementById("objective-chart");
    show("objective-chart", scored.length > 0);
    if (!scored.length) return;
    var byStatus = {};
    scored.forEach(function (t) { (byStatus[t.status] = byStatus[t.status] || []).push(t); });
    var traces = Object.keys(byStatus).map(function (status) {
      var trials = byStatus[status];
      return {
        x: trials.map(function (t) { return t.number; }), y: trials.map(function (t) { return t.value; }),
        mode: "markers", type: "scatter", name: status, marker: { size: 9, color: STATUS_COLORS[status] || "#868e96" },
        text: trials.map(function (t) { return JSON.stringify(t.params); }),
        hovertemplate: "trial %{x}: %{y:.4g}<br>%{text}<extra>" + status + "</extra>",
      };
    });
    traces.push({
      x: summary.trials.map(function (t) { return t.number; }), y: summary.running_best,
      mode: "lines", type: "scatter", name: "best so far", line: { color: "#2b8a3e", width: 2, shape: "hv" },
      hovertemplate: "best after trial %{x}: %{y:.4g}<extra></extra>",
    });
    Plotly.react(div, traces, {
      margin: { l: 60, r: 15, t: 10, b: 40 }, xaxis: { title: { text: "trial" } },
      yaxis: { title: { text: summary.objective.which + " " + summary.objective.metric } },
      legend: { orientation: "h", y: -0.25 }, hovermode: "closest",
    }, CONFIG);
  }

  // An axis title that fits above its axis: the path's last two parts (optimizer.learning_rate).
  function short(name) { var parts = name.split("."); return parts.length > 2 ? parts.slice(-2).join(".") : name; }

  function dimension(name, scale, trials) {
    var values = trials.map(function (t) { return t.params[name]; });
    if (scale === "category") {
      var seen = [];
      values.forEach(function (v) { var k = JSON.stringify(v); if (seen.indexOf(k) < 0) seen.push(k); });
      return { label: short(name), values: values.map(function (v) { return seen.indexOf(JSON.stringify(v)); }),
               tickvals: seen.map(function (_, i) { return i; }), ticktext: seen };
    }
    if (scale === "log") {
      return { label: "log10 " + short(name), values: values.map(function (v) { return Math.log10(v); }) };
    }
    return { label: short(name), values: values };
  }

  // The first axis's ticks are written to its left and its title centred above it: room for both.
  function leftMargin(first) {
    var ticks = first.ticktext || first.values.map(function (v) { return String(Number(Number(v).toPrecision(3))); });
    var longest = Math.max.apply(null, ticks.map(function (t) { return String(t).length; }).concat([first.label.length / 2]));
    return Math.min(260, Math.max(80, Math.round(7 * longest + 30)));
  }

  function parcoordsChart(summary) {
    var trials = summary.trials.filter(ended);
    var div = document.getElementById("parcoords-chart");
    show("parcoords-chart", trials.length > 0);
    if (!trials.length) return;
    var dimensions = summary.parameters.map(function (name) { return dimension(name, summary.scales[name], trials); });
    var values = trials.map(function (t) { return t.value; });
    dimensions.push({ label: summary.objective.metric, values: values });
    Plotly.react(div, [{
      type: "parcoords", dimensions: dimensions,
      line: { color: values, colorscale: "Viridis", reversescale: summary.objective.direction === "maximize",
              showscale: true, colorbar: { title: { text: summary.objective.metric } } },
    }], { margin: { l: leftMargin(dimensions[0]), r: 90, t: 50, b: 20 } }, CONFIG);
  }

  function importanceChart(summary) {
    var names = Object.keys(summary.importance);
    var div = document.getElementById("importance-chart");
    show("importance-chart", names.length > 0);
    if (!names.length) return;
    names.sort(function (a, b) { return summary.importance[a] - summary.importance[b]; });
    Plotly.react(div, [{
      type: "bar", orientation: "h", x: names.map(function (n) { return summary.importance[n]; }), y: names,
      marker: { color: "#3b5bdb" }, hovertemplate: "%{y}: %{x:.3f}<extra></extra>",
    }], { margin: { l: 20, r: 15, t: 10, b: 40 }, xaxis: { title: { text: "importance" }, range: [0, 1] },
          yaxis: { automargin: true } }, CONFIG);  // the margin as wide as the longest path
  }

  function draw(summary) {
    objectiveChart(summary);
    parcoordsChart(summary);
    importanceChart(summary);
  }

  // It ended: nothing left to cancel, and "Started ..." is no longer news.
  function sweepEnded() {
    var cancel = document.getElementById("cancel-sweep");
    if (cancel) cancel.closest("form").remove();
    document.querySelectorAll(".messages li.started").forEach(function (item) {
      var list = item.parentNode;
      item.remove();
      if (!list.children.length) list.remove();
    });
  }

  function refresh() {
    return Gymnos.getJSON(page.data_url).then(function (data) {
      Gymnos.swapFragment(document.getElementById("sweep-summary"), data.html);
      draw(data.summary);
      var running = data.summary.status === "running";
      if (!running) { over = true; sweepEnded(); }
      return running;
    });
  }

  // While it runs: the sweep's stream (a trial queued or ended, a new best, its trials' status and epochs) says
  // when to read the summary again, at most once a second; polled every couple of seconds only while the stream
  // cannot open (a shared page, a WSGI server, Redis away). Gymnos.live's mode box says which.
  var due = null, over = false;
  function soon() {
    if (due === null) due = setTimeout(function () { due = null; refresh(); }, 1000);
  }
  draw(page.summary);
  if (page.live) {
    // Every 30 s as well while it listens: each read runs the sweep's safety check (a lost worker's trial told,
    // the advance job queued again), which a sweep whose worker died quietly sends no event to trigger.
    setInterval(function () { if (listening.mode() === "live" && !document.hidden && !over) refresh(); }, 30000);
    var listening = Gymnos.live({
      url: page.events_url,
      modeBox: document.getElementById("live-mode"),
      pollMs: page.poll_ms,
      opened: refresh,  // what happened before the stream opened
      poll: refresh,
      on: { run: soon, trial: soon, sweep: refresh },
    });
  } else sweepEnded();
})();
