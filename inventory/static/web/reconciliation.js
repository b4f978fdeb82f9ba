/* reconciliation.js — the start form warns, as the days are chosen, when the period has days the
   HIS may still be settling (after the last settled day, data-last-settled): their use may yet be
   billed. The server says it again when the run is asked for. On a run page whose reports are
   being rendered by their task, the page polls their status and reloads when they are stored. */
(function () {
  "use strict";

  function waitForReports() {
    var pending = document.querySelector("[data-reports-pending][data-status-url]");
    if (!pending) return;
    function poll() {
      fetch(pending.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : { ready: false }; })
        .then(function (state) {
          if (state.ready) window.location.reload();
          else window.setTimeout(poll, 2000);
        })
        .catch(function () { window.setTimeout(poll, 6000); });
    }
    window.setTimeout(poll, 2000);
  }

  function start() {
    waitForReports();
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
