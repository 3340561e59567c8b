// New-run form: the fields and the JSON stay in step. Changing a field rewrites its key in the
// JSON; editing the JSON refills the fields. (Without JavaScript the server does the same merge.)
(function () {
  var form = document.getElementById("run-form");
  var text = document.getElementById("id_config");
  var state = document.getElementById("json-state");
  // The callbacks offered as checkboxes, with what a new one starts with (experiments/forms.py CALLBACKS).
  var CALLBACKS = JSON.parse(document.getElementById("callback-defaults").textContent);
  function el(name) { return form.elements[name]; }
  function section(obj, keys) {
    keys.forEach(function (k) { if (typeof obj[k] !== "object" || obj[k] === null || Array.isArray(obj[k])) obj[k] = {}; obj = obj[k]; });
    return obj;
  }
  function number(name) { var v = el(name).value.trim(); return v === "" ? null : Number(v); }
  function checkedCallbacks() {
    return Array.prototype.slice.call(form.querySelectorAll("input[name=callbacks]")).filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
  }
  function parse() {
    try { var c = JSON.parse(text.value); state.textContent = ""; return c; }
    catch (e) { state.textContent = "The JSON does not parse yet: " + e.message; return null; }
  }
  function fieldToJSON(name) {
    var c = parse();
    if (!c || typeof c !== "object") return;
    if (name === "experiment_name" && el(name).value) section(c, ["experiment"]).name = el(name).value;
    if (name === "dataset" && el(name).value) { var d = section(c, ["dataset"]); delete d.path; delete d.target; d.name = el(name).value; }
    if ((name === "epochs" || name === "batch_size") && number(name) !== null) section(c, ["training"])[name] = number(name);
    if (["fit", "val", "test"].indexOf(name) >= 0 && number(name) !== null) section(c, ["training", "samples"])[name] = number(name);
    if (name === "optimizer" && el(name).value) {
      var comp = section(c, ["model", "compilation"]), cur = comp.optimizer;
      comp.optimizer = (cur && typeof cur === "object" && cur.type === el(name).value) ? cur : el(name).value;
    }
    if (name === "callbacks") {
      var t = section(c, ["training"]), wanted = checkedCallbacks();
      var kept = (Array.isArray(t.callbacks) ? t.callbacks : []).filter(function (cb) { return !(cb && CALLBACKS[cb.type] && wanted.indexOf(cb.type) < 0); });
      var present = kept.map(function (cb) { return cb && cb.type; });
      wanted.forEach(function (w) { if (present.indexOf(w) < 0) kept.push(JSON.parse(JSON.stringify(CALLBACKS[w]))); });
      t.callbacks = kept;
    }
    text.value = JSON.stringify(c, null, 2);
  }
  function jsonToFields() {
    var c = parse();
    if (!c || typeof c !== "object") return;
    function get(path) { return path.reduce(function (o, k) { return o && typeof o === "object" ? o[k] : undefined; }, c); }
    el("experiment_name").value = get(["experiment", "name"]) || "";
    var ds = get(["dataset", "name"]);
    el("dataset").value = Array.prototype.some.call(el("dataset").options, function (o) { return o.value === ds; }) ? ds : "";
    ["epochs", "batch_size"].forEach(function (n) { var v = get(["training", n]); el(n).value = v === undefined ? "" : v; });
    ["fit", "val", "test"].forEach(function (n) { var v = get(["training", "samples", n]); el(n).value = v === undefined ? "" : v; });
    var opt = get(["model", "compilation", "optimizer"]);
    opt = opt && typeof opt === "object" ? opt.type : opt;
    el("optimizer").value = Array.prototype.some.call(el("optimizer").options, function (o) { return o.value === opt; }) ? opt : "";
    var types = (get(["training", "callbacks"]) || []).map(function (cb) { return cb && cb.type; });
    form.querySelectorAll("input[name=callbacks]").forEach(function (b) { b.checked = types.indexOf(b.value) >= 0; });
  }
  ["experiment_name", "dataset", "epochs", "batch_size", "fit", "val", "test", "optimizer"].forEach(function (name) {
    el(name).addEventListener("change", function () { fieldToJSON(name); });
  });
  form.querySelectorAll("input[name=callbacks]").forEach(function (b) { b.addEventListener("change", function () { fieldToJSON("callbacks"); }); });
  var timer = null;
  text.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(jsonToFields, 400); });
})();
