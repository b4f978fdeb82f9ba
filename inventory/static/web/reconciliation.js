/* reconciliation.js — the start form warns, as the days are chosen, when the period has days the
   HIS may still be settling (after the last settled day, data-last-settled): their use may yet be
   billed. The server says it again when the run is asked for. */
(function () {
  "use strict";

  function start() {
    var form = document.querySelector('[data-form="run"]');
    if (!form) return;
    var warning = form.querySelector('[data-note="unsettled"]');
    var first = form.querySelector('[name="period_start"]');
    var last = form.querySelector('[name="period_end"]');
    var settled = warning && warning.dataset.lastSettled;
    if (!warning || !first || !settled) return;

    function check() {
      var end = (last && last.value) || first.value;  // ISO dates compare as text
      warning.hidden = !(end && end > settled);
    }

    first.addEventListener("input", check);
    if (last) last.addEventListener("input", check);
    check();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
