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

// Span tree keyboard navigation: j / ArrowDown and k / ArrowUp select the next / previous
// span (its detail loads as a click would); Enter or l / ArrowRight on a collapsed span expands it.
document.addEventListener("keydown", function (event) {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  var t = event.target;
  if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
  var rows = Array.prototype.slice.call(document.querySelectorAll("table.tree tr.span-row"));
  if (!rows.length) return;
  var current = document.querySelector("table.tree tr.span-row.selected");
  var i = rows.indexOf(current);
  var next = null;
  if (event.key === "j" || event.key === "ArrowDown") next = rows[Math.min(i + 1, rows.length - 1)];
  else if (event.key === "k" || event.key === "ArrowUp") next = rows[Math.max(i - 1, 0)];
  else if ((event.key === "l" || event.key === "ArrowRight") && current) {
    var expand = current.querySelector("a.expand");
    if (expand) { event.preventDefault(); expand.click(); }
    return;
  } else return;
  event.preventDefault();
  if (!next || next === current) return;
  rows.forEach(function (row) { row.classList.toggle("selected", row === next); });
  next.scrollIntoView({block: "nearest"});
  var link = next.querySelector("a.span-link");
  if (link) { link.focus({preventScroll: true}); link.click(); }
});
