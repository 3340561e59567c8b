// Experiment page: tick runs, then Compare opens /compare/?runs=1,2,3 (a URL to paste to a teammate);
// "Columns…" opens the column chooser; a filtered table's count arrives after the page.
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
})();
