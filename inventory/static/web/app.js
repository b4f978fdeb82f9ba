/* app.js — page start-up for every page: wires the scan fields (scan-field.js) and the product
   fields (product-field.js), and buttons marked data-print (print the page, with print.css).
   Page-specific scripts go in a template's {% block scripts %}. */
(function () {
  "use strict";

  function start() {
    if (window.SPD && window.SPD.scanField) window.SPD.scanField.attachAll(document);
    if (window.SPD && window.SPD.productField) window.SPD.productField.attachAll(document);
    document.addEventListener("click", function (event) {
      if (event.target.closest && event.target.closest("[data-print]")) window.print();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
