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
