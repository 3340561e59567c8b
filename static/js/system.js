// System metrics: the run page's System panel (live while the run trains, epoch ends marked) and the
// compare page's overlay of one system metric across the runs.
(function () {
  var plotConfig = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  var RUN = "#3b5bdb", MACHINE = "#868e96", READ = "#2b8a3e", WRITE = "#e8590c";
  var GPU_COLORS = ["#7048e8", "#c2255c", "#0c8599", "#e67700", "#5c940d", "#862e9c", "#1971c2", "#495057"];
  var RUN_COLORS = ["#3b5bdb", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#e67700", "#5c940d", "#862e9c", "#495057"];
  var MAX_EPOCH_LINES = 200, MAX_POINTS = 20000;

  // What each field is called on a chart and in the compare page's menu.
  var LABELS = {
    cpu_percent: "CPU of this run (% of one core)", system_cpu_percent: "CPU of the machine (%)",
    memory_mb: "memory of this run (MB)", system_memory_mb: "memory in use on the machine (MB)",
    system_memory_percent: "memory in use on the machine (%)",
    disk_read_bytes_per_s: "disk reads (bytes/s)", disk_write_bytes_per_s: "disk writes (bytes/s)",
  };
  var GPU_LABELS = {
    utilization_percent: "utilisation (%)", memory_used_mb: "memory used (MB)", memory_total_mb: "memory total (MB)",
    temperature_c: "temperature (°C)", power_w: "power (W)",
  };
  function label(field) {
    var gpu = /^gpu_(\d+)_(\w+)$/.exec(field);
    if (gpu) return "GPU " + gpu[1] + " " + (GPU_LABELS[gpu[2]] || gpu[2]);
    return LABELS[field] || field;
  }

  // The run page's charts: [id, title, y-axis, [field, name, colour, axis]...]; GPU charts get a line per GPU.
  // The machine's memory goes on a right-hand axis: gigabytes of it would flatten the run's own line.
  var CHARTS = [
    ["cpu", "CPU", "%", [["cpu_percent", "this run (% of one core)", RUN], ["system_cpu_percent", "machine (all cores)", MACHINE]]],
    ["memory", "Memory", "MB", [["memory_mb", "this run (resident)", RUN], ["system_memory_mb", "machine (in use, right axis)", MACHINE, "y2"]]],
    ["gpu-utilization", "GPU utilisation", "%", "utilization_percent"],
    ["gpu-memory", "GPU memory", "MB", "memory_used_mb"],
    ["disk", "Disk (this run)", "bytes/s", [["disk_read_bytes_per_s", "read", READ], ["disk_write_bytes_per_s", "write", WRITE]]],
    ["gpu-temperature", "GPU temperature", "°C", "temperature_c"],
    ["gpu-power", "GPU power", "W", "power_w"],
  ];

  function gpuLines(fields, kind) {
    return Object.keys(fields).filter(function (f) { return new RegExp("^gpu_\\d+_" + kind + "$").test(f); }).sort()
      .map(function (f, i) { return [f, "GPU " + /^gpu_(\d+)_/.exec(f)[1], GPU_COLORS[i % GPU_COLORS.length]]; });
  }

  function epochShapes(ends) {
    var step = Math.max(1, Math.ceil(ends.length / MAX_EPOCH_LINES));
    var shapes = [];
    for (var i = step - 1; i < ends.length; i += step) {
      shapes.push({ type: "line", xref: "x", yref: "paper", x0: ends[i], x1: ends[i], y0: 0, y1: 1,
                    line: { color: "#adb5bd", width: 1, dash: "dot" } });
    }
    return shapes;
  }

  function runPanel(panel) {
    var url = panel.getAttribute("data-url");
    var box = panel.querySelector(".system-charts");
    var empty = panel.querySelector(".system-empty");
    var summaryBox = panel.querySelector(".system-summary");
    var state = { offset: null, series: {}, epochs: [], interval: null };

    function merge(data) {
      if (!data.append) {
        state.series = data.series; state.epochs = data.epoch_ends;
      } else {
        Object.keys(data.series).forEach(function (field) {
          var old = state.series[field], add = data.series[field];
          if (!old) { state.series[field] = add; return; }
          old.x = old.x.concat(add.x); old.y = old.y.concat(add.y);
          if (old.x.length > MAX_POINTS) {  // a long live session: keep every other point
            old.x = old.x.filter(function (_, i) { return i % 2 === 0; });
            old.y = old.y.filter(function (_, i) { return i % 2 === 0; });
          }
        });
        state.epochs = state.epochs.concat(data.epoch_ends);
      }
      if (data.interval) state.interval = data.interval;
      state.offset = data.offset;
      if (data.summary && Object.keys(data.summary).length) showSummary(data.summary);
    }

    function showSummary(summary) {
      var parts = [];
      if (summary.peak_memory_mb != null) parts.push("peak memory " + Math.round(summary.peak_memory_mb) + " MB");
      if (summary.mean_cpu_percent != null) parts.push("mean CPU " + summary.mean_cpu_percent.toFixed(0) + "% of one core");
      if (summary.mean_gpu_percent != null) parts.push("mean GPU " + summary.mean_gpu_percent.toFixed(0) + "%");
      if (summary.samples) parts.push(Gymnos.counted(summary.samples, "sample") + (summary.interval_s ? " every " + summary.interval_s + " s" : ""));
      summaryBox.textContent = parts.join(" · ");
      state.interval = state.interval || summary.interval_s;
    }

    // How many samples the series hold: a chart of fewer than two is a dot in an empty frame.
    function sampleCount() {
      return Object.keys(state.series).reduce(function (most, field) { return Math.max(most, state.series[field].x.length); }, 0);
    }

    function draw(live) {
      var fields = state.series;
      var drawn = 0;
      var samples = sampleCount();
      if (samples === 1) {
        box.replaceChildren();  // the summary above says what the one sample measured
        empty.hidden = false;
        var every = state.interval ? " (interval " + state.interval + " s)" : "";
        empty.textContent = live
          ? "1 sample so far" + every + "; the charts start at the second."
          : "1 sample" + every + ": too short to chart; the line above gives what it measured.";
        panel.querySelector(".system-epochs-hint").hidden = true;
        return;
      }
      CHARTS.forEach(function (chart) {
        var lines = typeof chart[3] === "string" ? gpuLines(fields, chart[3]) : chart[3].filter(function (l) { return fields[l[0]]; });
        if (!lines.length) return;
        drawn += 1;
        var id = "system-chart-" + chart[0];
        var div = document.getElementById(id);
        if (!div) {
          div = document.createElement("div");
          div.id = id; div.className = "chart";
          box.appendChild(div);
          box.querySelectorAll(".js-plotly-plot").forEach(function (d) { Plotly.Plots.resize(d); });
        }
        var traces = lines.map(function (line) {
          var s = fields[line[0]];
          return { x: s.x, y: s.y, name: line[1], mode: s.x.length <= 30 ? "lines+markers" : "lines",
                   yaxis: line[3] || "y", line: { color: line[2], width: 2 },
                   hovertemplate: "%{y:.4g}<extra>" + line[1] + "</extra>" };
        });
        var layout = {
          title: { text: chart[1], font: { size: 14 }, x: 0.01 }, margin: { l: 60, r: 15, t: 40, b: 40 },
          xaxis: { title: { text: "seconds since the run started" }, rangemode: "tozero" },
          yaxis: { title: { text: chart[2] }, rangemode: "tozero" },
          hovermode: "x unified", legend: { orientation: "h", y: 1.12, x: 1, xanchor: "right" },
          shapes: epochShapes(state.epochs), paper_bgcolor: "#fff", plot_bgcolor: "#fff",
        };
        if (traces.some(function (t) { return t.yaxis === "y2"; })) {
          layout.margin.r = 60;
          layout.yaxis2 = { title: { text: chart[2] + " (machine)" }, overlaying: "y", side: "right",
                            rangemode: "tozero", showgrid: false };
        }
        Plotly.react(div, traces, layout, plotConfig);
      });
      empty.hidden = drawn > 0;
      if (!drawn) empty.textContent = live ? empty.getAttribute("data-live") : empty.getAttribute("data-ended");
      panel.querySelector(".system-epochs-hint").hidden = !(drawn && state.epochs.length);
    }

    function refresh() {
      var ask = url + (state.offset ? "?offset=" + state.offset : "");
      return Gymnos.getJSON(ask).then(function (data) {
        merge(data);
        draw(data.live);
        return data.live;
      });
    }
    // While the run page follows its stream (live.js sets body[data-live=live]) the panel reads what is new when a
    // "system" event says a sample was written (execution.js passes it on), from its offset, so what it shows
    // equals a reload; every 2 s instead while the page polls, from when its training curves are drawn
    // (poll.js: Gymnos.firstDraw); a poll that finds nothing new costs the server one empty read.
    var read = false;
    function following() { return document.body.getAttribute("data-live") === "live"; }
    document.addEventListener("gymnos:system", function () { if (following()) refresh(); });
    Gymnos.firstDraw.then(function () {
      Gymnos.poll(function () {
        if (read && following()) return true;  // the stream says when (a poll tick costs nothing meanwhile)
        read = true;
        return refresh();
      }, 2000);
    });
  }

  function comparePanel(panel) {
    var url = panel.getAttribute("data-url");
    var select = panel.querySelector("select");
    var div = panel.querySelector(".chart");
    var note = panel.querySelector(".system-empty");

    function load(metric) {
      Gymnos.getJSON(url + (url.indexOf("?") < 0 ? "?" : "&") + "metric=" + encodeURIComponent(metric || "")).then(function (data) {
        if (!data.metrics.length) {
          note.textContent = "None of these runs recorded system metrics."; note.hidden = false;
          select.disabled = true; div.hidden = true;
          return;
        }
        if (!select.options.length) {
          data.metrics.forEach(function (name) { select.add(new Option(label(name), name)); });
        }
        select.value = data.metric;
        note.hidden = true; div.hidden = false;
        var traces = data.runs.map(function (run) {
          var colour = RUN_COLORS[run.order % RUN_COLORS.length];
          return { x: run.x, y: run.y, name: run.label, mode: "lines", line: { color: colour, width: 2 },
                   hovertemplate: "%{y:.4g}<extra>" + run.label + "</extra>" };
        });
        Plotly.react(div, traces, {
          title: { text: label(data.metric), font: { size: 14 }, x: 0.01 }, margin: { l: 60, r: 15, t: 40, b: 80 },
          xaxis: { title: { text: "seconds since the run started" }, rangemode: "tozero" },
          yaxis: { rangemode: "tozero" }, hovermode: "closest", showlegend: true,
          legend: { orientation: "h", x: 0, y: -0.3, xanchor: "left", yanchor: "top", font: { size: 11 } },
        }, plotConfig);
      }, function () {
        note.textContent = "Could not load the system metrics; reload the page to try again."; note.hidden = false;
      });
    }
    select.addEventListener("change", function () { load(select.value); });
    load(null);
  }

  document.querySelectorAll("[data-system-panel=run]").forEach(runPanel);
  document.querySelectorAll("[data-system-panel=compare]").forEach(comparePanel);
})();
