// Progressive enhancement only: every page works without this file.
// Keeps the highlighted row in the span tree in step with the htmx-loaded detail panel.
document.addEventListener("htmx:afterSwap", function (event) {
  if (!event.detail.target || event.detail.target.id !== "span-detail") return;
  var article = event.detail.target.querySelector("[data-span]");
  var current = article ? article.getAttribute("data-span") : null;
  document.querySelectorAll("tr.span-row").forEach(function (row) {
    row.classList.toggle("selected", row.getAttribute("data-span") === current);
  });
});

// A <select data-autosubmit> submits its form on change (the project switcher); its
// Switch button stays for keyboards and no-JavaScript use. (No inline handlers: the CSP forbids them.)
document.addEventListener("change", function (event) {
  var el = event.target;
  if (el && el.matches && el.matches("select[data-autosubmit]") && el.form) el.form.requestSubmit();
});
