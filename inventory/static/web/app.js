/* app.js — page start-up for every page: wires the scan fields (scan-field.js) and the product
   fields (product-field.js). Page-specific scripts go in a template's {% block scripts %}. */
(function () {
  "use strict";

  function start() {
    if (window.SPD && window.SPD.scanField) window.SPD.scanField.attachAll(document);
    if (window.SPD && window.SPD.productField) window.SPD.productField.attachAll(document);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
