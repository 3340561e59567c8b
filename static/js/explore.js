// Experiment page, "What works": for the runs the filter selects, a parallel-coordinates chart of the
// shown params and a metric (coloured by it), a scatter of one param against the metric, and a group-by.
// Dragging along an axis keeps the runs in that range: the range is added to the query, so the table
// (and the address, a link to paste) narrows to them.
(function () {
  var box = document.getElementById("explore");
  var config = document.getElementById("explore-data");
  if (!box || !config || typeof Plotly === "undefined") return;
  config = JSON.parse(config.textContent);
  var state = document.getElementById("explore-state");
  var metricSelect = document.getElementById("explore-metric");
  var xSelect = document.getElementById("explore-x");
  var groupSelect = document.getElementById("explore-group");
  var storageKey = "gymnos.explore." + window.location.pathname;
  var plotConfig = { displaylogo: false, responsive: true };
  var saved = {};
  try { saved = JSON.parse(window.localStorage.getItem(storageKey) || "{}") || {}; } catch (e) { saved = {}; }

  function label(name) { return name.replace(/^(params|metrics|system|evaluation)\./, ""); }
  // An axis title that fits above its axis: the path's last two parts (optimizer.type, network[0].units).
  function short(name) {
    var parts = label(name).split(".");
    return parts.length > 2 ? parts.slice(-2).join(".") : parts.join(".");
  }
  function fill(select, names, chosen) {
    select.replaceChildren();
    names.forEach(function (name) {
      var option = document.createElement("option");
      option.value = name;
      option.textContent = label(name);
      option.title = name;
      select.appendChild(option);
    });
    if (chosen && names.indexOf(chosen) >= 0) select.value = chosen;
  }
  // The params that differ between the runs come first everywhere: a param every run shares draws one dot.
  var varying = (config.varying || []).filter(function (name) { return config.params.indexOf(name) >= 0; });
  var axes = config.columns.length ? config.columns : (varying.length ? varying : config.params).slice(0, 6);
  function numeric(name) { return config.numeric.indexOf(name) >= 0; }
  // The scatter's x: a differing number (a rate, a width); the group-by: a differing choice (an optimizer).
  var xDefault = varying.filter(numeric)[0] || varying[0] || axes[0];
  var groupDefault = varying.filter(function (name) { return !numeric(name); })[0] || varying[0] || axes[0];
  function known(name) { return name && config.params.indexOf(name) >= 0 ? name : null; }
  var metricDefault = ["metrics.val_loss", "metrics.loss"].filter(function (m) { return config.metrics.indexOf(m) >= 0; })[0] || config.metrics[0];
  fill(metricSelect, config.metrics, saved.metric || metricDefault);
  fill(xSelect, config.params, known(saved.x) || xDefault);
  fill(groupSelect, config.params, known(saved.group) || groupDefault);

  // A name as the query language writes it: parts with other characters go in backticks.
  function queryName(name) {
    var dot = name.indexOf(".");
    var rest = name.slice(dot + 1);
    return /^[A-Za-z0-9_\-.\[\]]+$/.test(rest) && !/^[.\[]/.test(rest) ? name : name.slice(0, dot + 1) + "`" + rest + "`";
  }
  function quote(text) { return '"' + String(text).replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"'; }
  function number(value) { return String(value); }

  function currentParams() { return new URLSearchParams(window.location.search); }

  function dataUrl() {
    var params = currentParams();
    var query = new URLSearchParams();
    ["q", "status", "tag", "archived"].forEach(function (key) { if (params.get(key)) query.set(key, params.get(key)); });
    var cols = axes.slice();
    if (xSelect.value && cols.indexOf(xSelect.value) < 0) cols.push(xSelect.value);
    query.set("cols", cols.join(","));
    if (metricSelect.value) query.set("metric", metricSelect.value);
    if (groupSelect.value) query.set("group", groupSelect.value);
    return config.url + "?" + query.toString();
  }

  // One axis of the chart: numbers as they are; text (or a mix) as categories in sorted order, each tick's
  // text cut to MAX_TICK characters (the whole value is in the query a brush writes).
  var MAX_TICK = 24;
  function tick(text) { return text.length > MAX_TICK ? text.slice(0, MAX_TICK - 1) + "…" : text; }
  function dimension(name, values, keep) {
    var kept = keep.map(function (i) { return values[i]; });
    var numbers = kept.every(function (v) { return typeof v === "number"; });
    if (numbers) return { label: short(name), values: kept, name: name, kind: "number" };
    var categories = Array.from(new Set(kept.map(String))).sort();
    return {
      label: short(name), name: name, kind: "text", categories: categories,
      values: kept.map(function (v) { return categories.indexOf(String(v)); }),
      tickvals: categories.map(function (_, i) { return i; }), ticktext: categories.map(tick),
    };
  }

  // Plotly writes an axis's ticks to its left and centres its title above it: the first axis needs a left
  // margin as wide as its longest tick (or half its title), or "boston_housing" shows as "oston_housing".
  function leftMargin(first) {
    var ticks = first.kind === "text" ? first.ticktext : first.values.map(function (v) { return String(Number(v.toPrecision(3))); });
    var longest = Math.max.apply(null, ticks.map(function (t) { return t.length; }).concat([first.label.length / 2]));
    return Math.min(260, Math.max(70, Math.round(7 * longest + 30)));
  }

  var drawn = null;  // the dimensions as drawn, to turn a brush back into conditions

  function drawParallel(data) {
    var div = document.getElementById("parallel");
    var metric = data.metric;
    var columns = data.axes.filter(function (axis) { return axes.indexOf(axis.name) >= 0; });
    // Runs that have every shown value and the metric: a line needs a point on each axis.
    var keep = [];
    for (var i = 0; i < data.runs.length; i++) {
      var complete = metric && metric.values[i] !== null && columns.every(function (axis) { return axis.values[i] !== null; });
      if (complete) keep.push(i);
    }
    if (!metric || !keep.length) {
      Plotly.purge(div);
      var note = document.createElement("p");
      note.className = "muted small";
      note.textContent = "No run here has every shown param and " + (metric ? label(metric.name) : "a metric") + ".";
      div.replaceChildren(note);
      drawn = null;
      return keep.length;
    }
    div.replaceChildren();
    drawn = columns.map(function (axis) { return dimension(axis.name, axis.values, keep); });
    drawn.push(dimension(metric.name, metric.values, keep));
    var colors = keep.map(function (i) { return metric.values[i]; });
    Plotly.react(div, [{
      type: "parcoords",
      line: { color: colors, colorscale: "Viridis", showscale: true, colorbar: { title: { text: label(metric.name) } } },
      dimensions: drawn.map(function (d) {
        var out = { label: d.label, values: d.values };
        if (d.kind === "text") { out.tickvals = d.tickvals; out.ticktext = d.ticktext; out.range = [0, Math.max(1, d.categories.length - 1)]; }
        return out;
      }),
    }], { margin: { l: leftMargin(drawn[0]), r: 90, t: 50, b: 30 }, height: 380 }, plotConfig);
    if (!div.dataset.bound) {
      div.dataset.bound = "1";
      div.on("plotly_restyle", onBrush);
    }
    return keep.length;
  }

  function ranges(range) { return Array.isArray(range[0]) ? range : [range]; }

  // The drawn brushes as conditions of the query language.
  function brushConditions() {
    var div = document.getElementById("parallel");
    if (!drawn || !div.data || !div.data[0]) return [];
    var conditions = [];
    div.data[0].dimensions.forEach(function (dim, index) {
      var d = drawn[index];
      if (!d || !dim.constraintrange || !dim.constraintrange.length) return;
      var name = queryName(d.name);
      if (d.kind === "number") {
        // The runs' own values inside the range (give or take 2% of the axis, a few pixels): the query names
        // values a reader recognises (batch_size >= 64), and keeps the run drawn at the end of the axis.
        var low = Math.min.apply(null, d.values), high = Math.max.apply(null, d.values);
        var slack = (high - low) * 0.02;
        var parts = ranges(dim.constraintrange).map(function (r) {
          var inside = d.values.filter(function (v) { return v >= r[0] - slack && v <= r[1] + slack; });
          var a = inside.length ? Math.min.apply(null, inside) : r[0], b = inside.length ? Math.max.apply(null, inside) : r[1];
          return a === b ? name + " = " + number(a) : name + " >= " + number(a) + " and " + name + " <= " + number(b);
        });
        conditions.push(parts.length > 1 ? "(" + parts.map(function (p) { return "(" + p + ")"; }).join(" or ") + ")" : parts[0]);
      } else {
        var chosen = d.categories.filter(function (_, i) {
          return ranges(dim.constraintrange).some(function (r) { return i >= r[0] - 1e-9 && i <= r[1] + 1e-9; });
        });
        if (chosen.length) conditions.push(name + " in (" + chosen.map(quote).join(", ") + ")");
      }
    });
    return conditions;
  }

  var brushTimer = null;
  function onBrush() {
    clearTimeout(brushTimer);
    brushTimer = setTimeout(function () {
      var conditions = brushConditions();
      if (!conditions.length) return;
      var params = currentParams();
      var q = (params.get("q") || "").trim();
      params.set("q", (q ? "(" + q + ") and " : "") + conditions.join(" and "));
      params.delete("page");
      state.textContent = "Narrowing the table to the runs in range…";
      window.location.search = params.toString();
    }, 700);
  }

  function drawScatter(data) {
    var div = document.getElementById("scatter");
    var x = data.axes.filter(function (axis) { return axis.name === xSelect.value; })[0];
    var metric = data.metric;
    if (!x || !metric) { Plotly.purge(div); return; }
    var xs = [], ys = [], names = [], urls = [];
    data.runs.forEach(function (run, i) {
      if (x.values[i] === null || metric.values[i] === null) return;
      xs.push(x.values[i]); ys.push(metric.values[i]); names.push(run[1]); urls.push(run[2]);
    });
    Plotly.react(div, [{
      type: "scatter", mode: "markers", x: xs, y: ys, text: names, customdata: urls,
      marker: { size: 6, opacity: 0.6, color: "#3b5bdb" },
      hovertemplate: "%{text}<br>" + label(x.name) + ": %{x}<br>" + label(metric.name) + ": %{y:.4g}<extra></extra>",
    }], {
      title: { text: label(metric.name) + " by " + label(x.name), font: { size: 14 }, x: 0.01 },
      margin: { l: 55, r: 15, t: 40, b: 45 }, xaxis: { title: { text: label(x.name) } },
      yaxis: { title: { text: label(metric.name) } }, hovermode: "closest",
    }, plotConfig);
    if (!div.dataset.bound) {
      div.dataset.bound = "1";
      div.on("plotly_click", function (event) {
        var point = event.points && event.points[0];
        if (point && point.customdata) window.location = point.customdata;
      });
    }
  }

  function format(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value !== "number") return String(value);
    return Math.abs(value) >= 1e6 || (value !== 0 && Math.abs(value) < 1e-3) ? value.toExponential(3) : String(Number(value.toPrecision(4)));
  }

  function drawGroups(data) {
    var body = document.querySelector("#groups tbody");
    body.replaceChildren();
    var groups = data.groups;
    document.getElementById("group-name").textContent = groups ? label(groups.name) : "Group";
    if (!groups) return;
    groups.rows.forEach(function (row) {
      var tr = document.createElement("tr");
      var first = document.createElement("td");
      if (row.value === null) {
        var unset = document.createElement("span");
        unset.className = "muted";
        unset.textContent = "not set";
        first.appendChild(unset);
      } else {
        var link = document.createElement("a");
        var params = currentParams();
        var q = (params.get("q") || "").trim();
        var condition = queryName(groups.name) + " = " + (typeof row.value === "number" ? number(row.value) : quote(row.value));
        params.set("q", (q ? "(" + q + ") and " : "") + condition);
        params.delete("page");
        link.href = "?" + params.toString();
        link.textContent = String(row.value);
        link.title = "Only these runs";
        first.appendChild(link);
      }
      tr.appendChild(first);
      [row.runs, row.mean, row.min, row.max].forEach(function (value) {
        var td = document.createElement("td");
        td.className = "num";
        td.textContent = format(value);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    var notes = [];
    if (groups.more) notes.push("The 50 largest groups are shown.");
    if (groups.sampled) {
      notes.push("Runs are counted over every selected run; mean, min and max are those of the newest " +
        data.limit.toLocaleString() + " drawn above (a sample).");
    }
    notes.forEach(function (note) {
      var cell = document.createElement("td");
      cell.colSpan = 5;
      cell.className = "muted small";
      cell.textContent = note;
      body.appendChild(document.createElement("tr")).appendChild(cell);
    });
  }

  function load() {
    state.textContent = "Loading the runs the filter selects…";
    getJSON(dataUrl()).then(function (data) {
      var drawnRuns = drawParallel(data);
      drawScatter(data);
      drawGroups(data);
      var line = Gymnos.counted(data.shown, "run");
      if (data.truncated) line = "a sample: the newest " + data.limit.toLocaleString() + " runs of the selection";
      if (drawnRuns < data.shown) line += " (" + drawnRuns + " with every value drawn)";
      state.textContent = "Showing " + line + ".";
      box.setAttribute("data-loaded", "1");
    }, function (error) {
      state.textContent = "Could not load the chart data: " + error.message;
    });
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.error || response.statusText);
        return body;
      });
    });
  }

  // What a person chose is remembered (and wins over the defaults next time); the defaults are not, so they
  // follow the runs: the param that differs today may not be the one that differed last week.
  [metricSelect, xSelect, groupSelect].forEach(function (select) {
    select.addEventListener("change", function () {
      window.localStorage.setItem(storageKey, JSON.stringify({ metric: metricSelect.value, x: xSelect.value, group: groupSelect.value }));
      load();
    });
  });
  load();
})();
