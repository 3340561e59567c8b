// Curation: the experiment table's bulk actions, and the experiments page's disk panel.
(function () {
  function bytes(n) {
    if (n === null || n === undefined) return "—";
    var units = ["bytes", "KB", "MB", "GB", "TB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + " " + units[i];
  }

  // --- bulk actions: each button opens the confirmation page with the ticked runs -----------------
  var actions = document.getElementById("bulk-actions");
  var form = document.getElementById("compare-form");
  if (actions && form) {
    var buttons = Array.prototype.slice.call(actions.querySelectorAll("button[data-bulk]"));
    var selected = function () {
      return Array.prototype.slice.call(form.querySelectorAll("input[name=runs]"))
        .filter(function (box) { return box.checked; })
        .map(function (box) { return box.value; });
    };
    var update = function () {
      var none = selected().length === 0;
      buttons.forEach(function (button) { button.disabled = none; });
    };
    form.addEventListener("change", update);
    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        var runs = selected();
        if (!runs.length) return;
        window.location = actions.dataset.url + "?action=" + encodeURIComponent(button.dataset.bulk) +
          "&runs=" + runs.join(",") + "&next=" + encodeURIComponent(window.location.pathname + window.location.search);
      });
    });
    update();
  }

  // --- the disk panel: filled from /disk.json after the page has loaded -------------------------
  var disk = document.getElementById("disk");
  if (disk) {
    fetch(disk.dataset.url, { credentials: "same-origin" })
      .then(function (response) { if (!response.ok) throw new Error(response.status); return response.json(); })
      .then(function (data) {
        var line = "Runs " + bytes(data.runs_bytes) + " (checkpoints " + bytes(data.checkpoint_bytes) + ")";
        if (data.trash.runs) line += ", trash " + bytes(data.trash.bytes) + " in " + Gymnos.counted(data.trash.runs, "run");
        line += "; trainings root " + bytes(data.root_bytes);
        if (data.filesystem) line += "; " + bytes(data.filesystem.free) + " free of " + bytes(data.filesystem.total);
        document.getElementById("disk-line").textContent = line;
        var list = document.getElementById("disk-list");
        data.experiments.forEach(function (row) {
          var item = document.createElement("li");
          var name = document.createElement("strong");
          name.textContent = row.name;
          item.appendChild(name);
          item.appendChild(document.createTextNode(
            " " + Gymnos.counted(row.runs, "run") + ", " + bytes(row.bytes) +
            " (checkpoints " + bytes(row.checkpoints) + ")"));
          list.appendChild(item);
        });
      })
      .catch(function (error) { document.getElementById("disk-line").textContent = "Disk usage could not be read (" + error.message + ")."; });
  }
})();
