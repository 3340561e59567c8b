// Experiment page: tick runs, then Compare opens /compare/?runs=1,2,3 (a URL to paste to a teammate);
// "Columns…" opens the column chooser; a filtered table's count arrives after the page; the status and epochs of
// the runs on the page follow the runs' event stream (live.js; nothing is polled when it cannot open), and a run
// launched meanwhile shows up.
(function () {
  var chooser = document.getElementById("column-chooser");
  var toggle = document.getElementById("choose-columns");
  if (chooser && toggle) {
    toggle.addEventListener("click", function () {
      chooser.hidden = !chooser.hidden;
      toggle.setAttribute("aria-expanded", String(!chooser.hidden));
      if (!chooser.hidden) chooser.scrollIntoView({ behavior: "smooth", block: "nearest" });
    });
  }

  // A query's or a tag's runs are counted after the page has loaded (counting reads every run).
  var counting = document.querySelector("#run-count [data-count-url]");
  if (counting) {
    fetch(counting.getAttribute("data-count-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (data.error) return;
        counting.textContent = data.more
          ? "More than " + data.limit.toLocaleString() + " runs match the filter"
          : Gymnos.counted(data.count, "run") + " matching the filter";
        counting.setAttribute("data-counted", String(data.count));
      });
  }

  var form = document.getElementById("compare-form");
  if (!form) return;
  var button = document.getElementById("compare-button");
  var count = document.getElementById("selected-count");
  var all = document.getElementById("select-all");
  function boxes() { return Array.prototype.slice.call(form.querySelectorAll("input[name=runs]")); }
  function selected() { return boxes().filter(function (b) { return b.checked; }).map(function (b) { return b.value; }); }
  function update() {
    var n = selected().length;
    button.disabled = n < 1;
    count.textContent = n ? n + " selected" + (n === 1 ? " (pick another to compare)" : "") : "Tick two or more runs to compare them.";
  }
  form.addEventListener("change", update);
  all.addEventListener("change", function () { boxes().forEach(function (b) { b.checked = all.checked; }); update(); });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    window.location = form.action + "?runs=" + selected().join(",");
  });
  update();

  // Status and epochs cells: set as text from the runs' events (no request, no HTML built). A status change of a
  // run the table does not show (a run launched meanwhile) reads the table again, once per such run, at most once a
  // second; the runs ticked stay ticked.
  var table = document.getElementById("executions");
  if (table && table.getAttribute("data-events")) {
    var rows = {}, asked = {}, due = null;
    var rowsUrl = table.getAttribute("data-rows");
    var index = function () {
      rows = {};
      document.querySelectorAll("#executions tbody tr").forEach(function (row) {
        var box = row.querySelector("input[name=runs]");
        if (box) rows[box.value] = row;
      });
    };
    var reread = function () {
      due = null;
      var ticked = selected();
      fetch(rowsUrl, { credentials: "same-origin" }).then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.text();
      }).then(function (html) {
        Gymnos.swapFragment(document.getElementById("executions-box"), html);
        boxes().forEach(function (b) { b.checked = ticked.indexOf(b.value) >= 0; });
        all = document.getElementById("select-all");
        all.addEventListener("change", function () { boxes().forEach(function (b) { b.checked = all.checked; }); update(); });
        index();
        update();
      }, function () { /* the next new run asks again */ });
    };
    index();
    Gymnos.live({
      url: table.getAttribute("data-events"),
      poll: function () { return false; },  // the table did not poll before the stream: it does not now
      on: {
        run: function (event) {
          var row = rows[String(event.run)];
          if (!row) {
            if (event.kind === "status" && rowsUrl && !asked[event.run]) {
              asked[event.run] = true;
              if (due === null) due = setTimeout(reread, 1000);
            }
            return;
          }
          if (event.kind === "status") {
            var badge = row.querySelector(".badge");
            badge.className = "badge " + event.status;
            badge.textContent = event.status;
          } else if (event.kind === "epoch") {
            var cell = row.children[5], total = cell.textContent.split("/")[1];
            cell.textContent = total ? event.epoch + "/" + total : String(event.epoch);
          }
        },
      },
    });
  }
})();
