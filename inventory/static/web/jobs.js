/* jobs.js — keeps a background job's state up to date: every element with data-job-status-url
   (templates/web/jobs/_state.html) polls its small JSON status until the job is finished, and
   shows queued / running with its percentage / ready with the download / failed with why. */
(function () {
  "use strict";

  function show(element, visible) {
    if (element) element.hidden = !visible;
  }

  function render(box, state) {
    box.dataset.status = state.status;
    box.querySelector("[data-job-status]").textContent = state.status_label;
    box.querySelector("[data-job-percent]").textContent = state.status === "RUNNING" ? state.progress + " %" : "";
    var bar = box.querySelector("[data-job-progress]");
    bar.value = state.progress;
    bar.textContent = state.progress + " %";
    show(bar, !state.finished);
    show(box.querySelector("[data-job-waiting]"), !state.finished);
    var download = box.querySelector("[data-job-download]");
    var result = box.querySelector("[data-job-result]");
    if (state.download_url) download.href = state.download_url;
    if (state.result_url) result.href = state.result_url;
    box.querySelector("[data-job-file]").textContent = state.file_name || "";
    show(download, Boolean(state.download_url));
    show(result, Boolean(state.result_url));
    show(box.querySelector("[data-job-ready]"), Boolean(state.download_url || state.result_url));
    box.querySelector("[data-job-error]").textContent = state.error || "";
    show(box.querySelector("[data-job-failed]"), state.status === "FAILED");
  }

  function watch(box) {
    var url = box.dataset.jobStatusUrl;
    var every = parseInt(box.dataset.poll, 10) || 1000;

    function poll() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error(String(response.status));
          return response.json();
        })
        .then(function (state) {
          render(box, state);
          if (!state.finished) window.setTimeout(poll, every);
        })
        .catch(function () {
          window.setTimeout(poll, every * 3);  // a network hiccup: try again, more slowly
        });
    }

    if (box.dataset.status !== "READY" && box.dataset.status !== "FAILED") window.setTimeout(poll, every);
  }

  function start() {
    document.querySelectorAll("[data-job-status-url]").forEach(watch);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
