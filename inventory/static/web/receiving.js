/* receiving.js — receiving (验收) at volume, besides operations.js and scan-field.js.
 *
 * After each scan of a form[data-live] the answer (inventory/web/views/receiving.py) carries:
 *   tally    {lines, scanned, accept, reject, unverified}: shown in [data-tally-count=…];
 *   summary  HTML of the per-product table: replaces the content of [data-product-summary];
 *   feed     (a note) one <li> of the latest scans: put on top of the form's data-feed list;
 *   row      (a note) the scanned line's <tr data-key>: replaces the row in data-note-rows, in
 *            place and without scrolling (the list may be long; the feed shows the scan on top).
 * A form[data-row-form] in a row (the quantity of a lot line) is sent the same way and its answer
 * replaces the row, the tally and the summary; its outcome shows in the page's scan result.
 * [data-print] prints the page. Choosing "accept without scanning" asks for the reason.
 */
(function () {
  "use strict";

  var FEED_LENGTH = 8;

  function parse(html, holderTag) {
    var holder = document.createElement(holderTag);
    holder.innerHTML = html.trim();
    return holder.firstElementChild;
  }

  function updateTally(tally) {
    if (!tally) return;
    Object.keys(tally).forEach(function (name) {
      document.querySelectorAll('[data-tally-count="' + name + '"]').forEach(function (count) {
        count.textContent = String(tally[name]);
      });
    });
    if (tally.scanned != null) {
      document.querySelectorAll("[data-checked-count]").forEach(function (count) {
        count.textContent = String(tally.scanned);
      });
    }
  }

  function updateSummary(html) {
    if (!html) return;
    document.querySelectorAll("[data-product-summary]").forEach(function (holder) { holder.innerHTML = html; });
  }

  function replaceRow(tbody, html) {
    var row = html && parse(html, "tbody");
    if (!tbody || !row) return;
    var old = tbody.querySelector('tr[data-key="' + row.getAttribute("data-key") + '"]');
    if (old) tbody.replaceChild(row, old); else tbody.insertBefore(row, tbody.firstChild);
    row.classList.add("just-scanned");
  }

  function addToFeed(list, html) {
    var item = html && parse(html, "ol");
    if (!list || !item) return;
    var empty = list.querySelector("[data-feed-empty]");
    if (empty) empty.remove();
    list.insertBefore(item, list.firstChild);
    while (list.children.length > FEED_LENGTH) list.removeChild(list.lastElementChild);
  }

  function onScan(event) {
    var form = event.currentTarget;
    var body = (event.detail && event.detail.body) || {};
    updateTally(body.tally);
    updateSummary(body.summary);
    if (form.getAttribute("data-feed")) addToFeed(document.querySelector(form.getAttribute("data-feed")), body.feed);
    if (form.getAttribute("data-note-rows") && body.row) {
      replaceRow(document.querySelector(form.getAttribute("data-note-rows")), body.row);
    }
  }

  function showOutcome(ok, message, problems) {
    var output = document.querySelector("form[data-scan-primary] [data-scan-result]");
    if (!output) return;
    output.className = "scan-result " + (ok ? "ok" : "fail");
    output.textContent = message || "";
    if (problems && problems.length) {
      var list = document.createElement("ul");
      problems.forEach(function (problem) {
        var item = document.createElement("li");
        item.textContent = problem.detail;
        item.setAttribute("data-code", problem.code || "");
        list.appendChild(item);
      });
      output.appendChild(list);
    }
  }

  function sendRowForm(event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-row-form]") || !window.fetch) return;
    event.preventDefault();
    var tbody = form.closest("tbody");
    fetch(form.action, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { Accept: "application/json", "X-Requested-With": "fetch" },
    }).then(function (response) {
      return response.json();
    }).then(function (body) {
      showOutcome(!!body.ok, body.message, body.problems);
      if (body.row) replaceRow(tbody, body.row);
      updateTally(body.tally);
      updateSummary(body.summary);
    }).catch(function () {
      showOutcome(false, document.body.getAttribute("data-msg-network") || "", []);
    });
  }

  function onChange(event) {
    var choice = event.target;
    if (!choice.matches || !choice.matches("input[name=accept_unscanned]")) return;
    var reason = document.getElementById("unscanned-reason");
    if (!reason) return;
    reason.required = choice.value === "1" && choice.checked;
    if (reason.required) reason.focus();
  }

  function start() {
    document.querySelectorAll("form[data-live]").forEach(function (form) {
      form.addEventListener("spd:scan", onScan);
    });
    document.addEventListener("submit", sendRowForm);
    document.addEventListener("change", onChange);
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
