/* app.js — page start-up for every page: wires the scan fields (scan-field.js) and the product
   fields (product-field.js), buttons marked data-print (print the page, with print.css), and keeps
   the current page's menu entry in view on a phone.
   Page-specific scripts go in a template's {% block scripts %}. */
(function () {
  "use strict";

  function start() {
    if (window.SPD && window.SPD.scanField) window.SPD.scanField.attachAll(document);
    if (window.SPD && window.SPD.productField) window.SPD.productField.attachAll(document);
    showCurrentMenuEntry();
    document.addEventListener("click", function (event) {
      if (event.target.closest && event.target.closest("[data-print]")) window.print();
    });
  }

  /* On a phone the menu is one row that scrolls sideways: the current page's entry is scrolled into it. */
  function showCurrentMenuEntry() {
    var current = document.querySelector(".mainnav a[aria-current=page]");
    var menu = current && current.closest(".mainnav");
    if (!menu || menu.scrollWidth <= menu.clientWidth) return;
    var right = current.offsetLeft + current.offsetWidth;
    if (right > menu.scrollLeft + menu.clientWidth) menu.scrollLeft = right - menu.clientWidth + 16;
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
