// "Sweep from this run": a row's range inputs or its choices, whichever its distribution takes; a row
// whose box is not ticked is dimmed, and changing any of its inputs ticks it.
(function () {
  var form = document.getElementById("sweep-form");
  function sync(row) {
    var kind = row.querySelector("select").value;
    row.querySelectorAll("[data-range]").forEach(function (input) { input.hidden = kind === "choice"; });
    row.querySelector("[data-choices]").hidden = kind !== "choice";
    var box = row.querySelector("input[type=checkbox]");
    row.classList.toggle("unused", !box.checked);
  }
  form.querySelectorAll("tr[data-row]").forEach(function (row) {
    sync(row);
    row.addEventListener("change", function (event) {
      var box = row.querySelector("input[type=checkbox]");
      if (event.target !== box) box.checked = true;
      sync(row);
    });
  });
})();
