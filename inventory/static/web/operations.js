/* operations.js — what a scan changes on the operation pages (receiving, use at the bedside, moves),
 * besides what scan-field.js already does (send the code, sound the tone, colour the result).
 *
 * It listens to the "spd:scan" event of each scan form and reads the answer's extra fields
 * (inventory/web/operations.py `scan_answer`):
 *   row      HTML of one <tr data-key="…">: put into the form's data-rows table body (data-rows-at
 *            "top" or "bottom"), replacing the row with the same data-key if there is one;
 *   line_no  (receiving) the line the scanned unit is: marked as checked in data-mark-lines;
 *   checked  (receiving) how many lines are checked, shown in [data-checked-count];
 *   next_key a new idempotency key for the form.
 * Rows with a [data-remove-row] button can be taken off the list. [data-count-of="#id"] shows how
 * many rows a list has; input[data-listed-from="#id"] holds their keys, so the server can tell a
 * unit scanned twice. A form with data-once disables its buttons once submitted; one with
 * data-needs-rows="#id" is not submitted while that list is empty (unless the button pressed has
 * data-no-check).
 */
(function () {
  "use strict";

  function rowsOf(tbody) {
    return Array.prototype.filter.call(tbody.querySelectorAll("tr[data-key]"), function (row) {
      return row.parentNode === tbody;
    });
  }

  /* Counts, the empty-list row and the listed keys of one list. */
  function refresh(tbody) {
    var rows = rowsOf(tbody);
    var empty = tbody.querySelector("tr[data-empty-row]");
    if (empty) empty.hidden = rows.length > 0;
    var selector = "#" + tbody.id;
    document.querySelectorAll('[data-count-of="' + selector + '"]').forEach(function (badge) {
      badge.textContent = String(rows.length);
    });
    document.querySelectorAll('input[data-listed-from="' + selector + '"]').forEach(function (input) {
      input.value = rows.map(function (row) { return row.getAttribute("data-key"); }).join(",");
    });
  }

  function parseRow(html) {
    var holder = document.createElement("tbody");
    holder.innerHTML = html.trim();
    return holder.querySelector("tr");
  }

  function place(form, html) {
    var tbody = document.querySelector(form.getAttribute("data-rows"));
    var row = html && parseRow(html);
    if (!tbody || !row) return;
    var key = row.getAttribute("data-key");
    var old = null;
    rowsOf(tbody).forEach(function (candidate) {
      if (candidate.getAttribute("data-key") === key) old = candidate;
    });
    if (old) {
      tbody.replaceChild(row, old);
    } else if (form.getAttribute("data-rows-at") === "top") {
      tbody.insertBefore(row, tbody.firstChild);
    } else {
      var empty = tbody.querySelector("tr[data-empty-row]");
      tbody.insertBefore(row, empty);
    }
    flash(row);
    refresh(tbody);
  }

  function flash(row) {
    row.classList.remove("just-scanned");
    void row.offsetWidth; // restart the highlight when the same row is scanned again
    row.classList.add("just-scanned");
    if (row.scrollIntoView) row.scrollIntoView({ block: "nearest" });
  }

  function markLine(form, body) {
    var tbody = document.querySelector(form.getAttribute("data-mark-lines"));
    if (!tbody || body.line_no == null) return;
    var row = tbody.querySelector('tr[data-line="' + body.line_no + '"]');
    if (row) {
      row.classList.add("scanned");
      var cell = row.querySelector("[data-scanned]");
      if (cell) cell.innerHTML = '<span class="check-mark">\u2714</span>';
      flash(row);
    }
    if (body.checked != null) {
      document.querySelectorAll("[data-checked-count]").forEach(function (count) {
        count.textContent = String(body.checked);
      });
    }
  }

  function onScan(event) {
    var form = event.currentTarget;
    var body = (event.detail && event.detail.body) || {};
    if (body.row && form.getAttribute("data-rows")) place(form, body.row);
    if (form.getAttribute("data-mark-lines")) markLine(form, body);
    if (body.next_key) {
      var key = form.querySelector("input[name=idempotency_key]");
      if (key) key.value = body.next_key;
    }
    if (body.ok) {
      form.querySelectorAll("[data-reset-to]").forEach(function (input) {
        input.value = input.getAttribute("data-reset-to");
      });
    }
  }

  function onClick(event) {
    var button = event.target.closest && event.target.closest("[data-remove-row]");
    if (!button) return;
    var row = button.closest("tr");
    var tbody = row && row.parentNode;
    if (!tbody) return;
    tbody.removeChild(row);
    refresh(tbody);
    var field = document.querySelector("form[data-scan-primary] [data-scan-field]");
    if (field) field.focus();
  }

  function onSubmit(event) {
    var form = event.target;
    var needs = form.getAttribute("data-needs-rows");
    // A button that only changes the list (e.g. adding a lot) may be pressed while it is empty.
    var submitter = event.submitter;
    if (needs && !(submitter && submitter.hasAttribute("data-no-check"))) {
      var tbody = document.querySelector(needs);
      if (tbody && rowsOf(tbody).length === 0) {
        event.preventDefault();
        window.alert(form.getAttribute("data-msg-empty") || "");
        return;
      }
    }
    if (form.hasAttribute("data-once")) {
      if (form.getAttribute("data-submitted")) {
        event.preventDefault();
        return;
      }
      form.setAttribute("data-submitted", "true");
      // Later, so that the pressed button's own name/value is still sent with this submit.
      window.setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (button) { button.disabled = true; });
      }, 0);
    }
  }

  function start() {
    document.querySelectorAll("form[data-scan-form]").forEach(function (form) {
      form.addEventListener("spd:scan", onScan);
    });
    document.querySelectorAll("tbody[id]").forEach(refresh);
    document.addEventListener("click", onClick);
    document.addEventListener("submit", onSubmit);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
