// Passpro pages — our own few lines (no library): every page works without them.
// A [data-print] button prints the page; an error summary takes the focus so a screen reader reads it.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
  var summary = document.querySelector(".error-summary[tabindex]");
  if (summary) { summary.focus(); }
});
