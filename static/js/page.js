// Behaviour every page shares, wired here because the Content-Security-Policy runs no inline handler
// (no onclick= or onsubmit= in a template). Delegated from the document, so it also holds for the
// fragments the live pages swap in.
//   <form data-confirm="Cancel this run?">   asks before it submits
//   <input data-select-on-click>             selects its text when clicked (a link to copy)
(function () {
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
  });
  document.addEventListener("click", function (event) {
    var input = event.target.closest("input[data-select-on-click]");
    if (input) input.select();
  });
})();
