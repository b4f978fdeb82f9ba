/* app.js — page start-up for every page: wires the scan fields (scan-field.js) and the product
   fields (product-field.js), buttons marked data-print (print the page, with print.css), keeps
   the current page's menu in view on a phone, and closes an open menu on Escape or a click
   elsewhere (the menus open and close without script: <details>).
   Page-specific scripts go in a template's {% block scripts %}. */
(function () {
  "use strict";

  function start() {
    if (window.SPD && window.SPD.scanField) window.SPD.scanField.attachAll(document);
    if (window.SPD && window.SPD.productField) window.SPD.productField.attachAll(document);
    showCurrentMenuEntry();
    document.addEventListener("click", function (event) {
      if (event.target.closest && event.target.closest("[data-print]")) window.print();
      closeMenus(event.target.closest ? event.target.closest(".mainnav details") : null);
    });
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") return;
      var open = document.querySelector(".mainnav details[open]");
      if (!open) return;
      open.open = false;
      open.querySelector("summary").focus();
    });
  }

  function closeMenus(except) {
    var open = document.querySelectorAll(".mainnav details[open]");
    for (var i = 0; i < open.length; i++) if (open[i] !== except) open[i].open = false;
  }

  /* On a phone the menu is one row that scrolls sideways: the current page's menu is scrolled into it. */
  function showCurrentMenuEntry() {
    var current = document.querySelector(".mainnav a.top[aria-current=page], .mainnav details.current > summary");
    var menu = current && current.closest(".menus");
    if (!menu || menu.scrollWidth <= menu.clientWidth) return;
    var box = current.getBoundingClientRect(), row = menu.getBoundingClientRect();
    if (box.right > row.right) menu.scrollLeft += box.right - row.right + 16;
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
