// Queue page: re-render the queue fragment every few seconds.
(function () {
  var box = document.getElementById("queue");
  var seconds = Number(box.getAttribute("data-refresh")) || 3;
  Gymnos.poll(function () {
    return fetch(box.getAttribute("data-url"), { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error(response.status);
      return response.text();
    }).then(function (html) { Gymnos.swapFragment(box, html); return true; });
  }, seconds * 1000);
})();
