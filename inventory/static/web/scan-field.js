/* scan-field.js — a keyboard-wedge scanner input, shared by every page that scans.
 *
 * A wedge scanner "types" the code and presses Enter. GS1 codes carry the group separator GS
 * (ASCII 29) between variable-length fields; a browser may deliver it as a key event (the
 * character itself, or Ctrl+] as some scanners emulate it) or drop it altogether. So:
 *   - a GS key event is caught and shown in the field as "␝" (U+241D), visible to the person;
 *   - a station whose scanner sends a substitute character instead (Device.config
 *     "gs_substitute", e.g. "|"; the page gives it as data-gs-substitute on the input or <body>)
 *     has it converted;
 *   - on Enter, "␝" and the substitute become a real \x1d before the code is sent.
 * The form is sent with fetch, asking for JSON (see inventory/web/problems.py `scan_response`):
 *   {ok, message, problems: [{code, detail, item}], redirect?, html?}
 * and the outcome is played as a short tone (WebAudio) and shown in colour next to the field.
 *
 * Markup:
 *   <form data-scan-form action="…" method="get|post" [data-scan-target="#list"] [data-scan-global]>
 *     <input data-scan-field name="code"> <output data-scan-result></output>
 *   </form>
 * Typing outside any form field (a scanner fired at the page), or pressing "/", goes to the page's
 * own scan field (form[data-scan-primary]) or else to the top bar's (form[data-scan-global]).
 * A session that expired meanwhile (the request is sent to the login page, or refused with a page
 * rather than JSON) is said as such, with a link to sign in again; the scanned code is kept in
 * sessionStorage and put back into the page's scan field after signing in (not sent by itself).
 * Each outcome is also dispatched on the form as a "spd:scan" CustomEvent (detail: {code, ok, body}).
 * Without JavaScript the form still submits normally and the server answers with a page.
 */
(function () {
  "use strict";

  var GS = "\x1d";
  var GS_MARK = "\u241d";

  function substituteFor(input) {
    var own = input.getAttribute("data-gs-substitute");
    if (own) return own;
    return document.body.getAttribute("data-gs-substitute") || "";
  }

  /* The code as the server must read it: every GS mark or substitute becomes a real GS. Only line
     ends are trimmed: a space at either end is data (a HIBC check character may be a space). */
  function normalise(text, substitute) {
    var code = text.split(GS_MARK).join(GS);
    if (substitute) code = code.split(substitute).join(GS);
    return code.replace(/^[\r\n]+|[\r\n]+$/g, "");
  }

  function insertAtCaret(input, text) {
    var start = input.selectionStart == null ? input.value.length : input.selectionStart;
    var end = input.selectionEnd == null ? input.value.length : input.selectionEnd;
    input.value = input.value.slice(0, start) + text + input.value.slice(end);
    input.selectionStart = input.selectionEnd = start + text.length;
  }

  function isGsKey(event) {
    if (event.key === GS || event.keyCode === 29 || event.which === 29) return true;
    // Scanners that emulate GS as Ctrl+] (the ASCII control-key convention).
    return event.ctrlKey && !event.altKey && !event.metaKey && (event.key === "]" || event.code === "BracketRight");
  }

  /* --- tones ------------------------------------------------------------------------------ */
  var audio = null;

  function beep(frequency, start, duration) {
    var oscillator = audio.createOscillator();
    var gain = audio.createGain();
    oscillator.type = "square";
    oscillator.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, audio.currentTime + start);
    gain.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + start + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + start + duration);
    oscillator.connect(gain).connect(audio.destination);
    oscillator.start(audio.currentTime + start);
    oscillator.stop(audio.currentTime + start + duration + 0.02);
  }

  function tone(ok) {
    try {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      audio = audio || new Context();
      if (audio.state === "suspended") audio.resume();
      if (ok) {
        beep(1318, 0, 0.12);
      } else {
        beep(220, 0, 0.16);
        beep(180, 0.2, 0.22);
      }
    } catch (error) {
      /* No sound is better than no scan. */
    }
  }

  /* --- showing the outcome ---------------------------------------------------------------- */
  function resultElement(form) {
    var output = form.querySelector("[data-scan-result]");
    if (!output) {
      output = document.createElement("output");
      output.setAttribute("data-scan-result", "");
      output.className = "scan-result";
      form.appendChild(output);
    }
    output.setAttribute("role", "status");
    output.setAttribute("aria-live", "assertive");
    return output;
  }

  function show(form, input, ok, message, problems) {
    var output = resultElement(form);
    output.className = "scan-result " + (ok ? "ok" : "fail");
    output.textContent = "";
    if (message) output.appendChild(document.createTextNode(message));
    if (problems && problems.length) {
      var list = document.createElement("ul");
      problems.forEach(function (problem) {
        var item = document.createElement("li");
        item.textContent = problem.detail + (problem.item ? " (" + problem.item + ")" : "");
        item.setAttribute("data-code", problem.code || "");
        list.appendChild(item);
      });
      output.appendChild(list);
    }
    input.classList.remove("scan-ok", "scan-fail");
    input.classList.add(ok ? "scan-ok" : "scan-fail");
  }

  /* --- sending ------------------------------------------------------------------------------ */
  function csrfToken(form) {
    var field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function send(form, input) {
    var code = normalise(input.value, substituteFor(input));
    if (!code) return;
    // What was sent, so that the answer clears only this code and not a next scan typed meanwhile.
    input.setAttribute("data-sent", input.value);
    var data = new FormData(form);
    data.set(input.name, code);
    var method = (form.getAttribute("method") || "get").toUpperCase();
    var url = form.getAttribute("action") || window.location.pathname;
    var options = { method: method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (method === "GET") {
      url += (url.indexOf("?") < 0 ? "?" : "&") + new URLSearchParams(data).toString();
    } else {
      options.body = data;
      options.headers["X-CSRFToken"] = csrfToken(form);
    }
    form.setAttribute("aria-busy", "true");
    fetch(url, options)
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (signedOut(response, type)) {
          keepForLater(input);
          return { ok: false, signedOut: true, message: document.body.getAttribute("data-msg-signed-out") || "", problems: [] };
        }
        if (type.indexOf("application/json") < 0) {
          return { ok: false, message: document.body.getAttribute("data-msg-unexpected") || "", problems: [] };
        }
        return response.json();
      })
      .then(function (body) { done(form, input, code, body); })
      .catch(function () {
        done(form, input, code, { ok: false, message: document.body.getAttribute("data-msg-network") || "", problems: [] });
      });
  }

  /* --- a session that expired while the page was open ------------------------------------- */
  var PENDING = "spd-pending-scan:";

  /* The answer of a signed-out request: Django sent the login page (a followed redirect) or
     refused with a page, not with a JSON refusal. */
  function signedOut(response, type) {
    var login = document.body.getAttribute("data-login-url") || "/login/";
    if (response.redirected && response.url.indexOf(login) >= 0) return true;
    return (response.status === 401 || response.status === 403) && type.indexOf("application/json") < 0;
  }

  /* Keep the scanned code for this page, so that signing in again does not lose the scan. */
  function keepForLater(input) {
    try { window.sessionStorage.setItem(PENDING + window.location.pathname, input.value); } catch (error) { /* private mode */ }
  }

  function signInLink() {
    var link = document.createElement("a");
    link.href = (document.body.getAttribute("data-login-url") || "/login/") + "?next=" + encodeURIComponent(window.location.pathname + window.location.search);
    link.textContent = document.body.getAttribute("data-msg-sign-in") || "Sign in";
    link.className = "button";
    link.setAttribute("data-action", "sign-in-again");
    return link;
  }

  /* After signing in again, the code scanned before is back in its field, not yet sent. */
  function restorePending(form, input) {
    if (!form.hasAttribute("data-scan-primary")) return;
    var key = PENDING + window.location.pathname;
    var pending = null;
    try { pending = window.sessionStorage.getItem(key); window.sessionStorage.removeItem(key); } catch (error) { return; }
    if (!pending) return;
    input.value = pending;
    var output = resultElement(form);
    output.className = "scan-result";
    output.textContent = document.body.getAttribute("data-msg-restored") || "";
    input.focus();
  }

  function done(form, input, code, body) {
    form.removeAttribute("aria-busy");
    tone(!!body.ok);
    show(form, input, !!body.ok, body.message, body.problems);
    if (body.signedOut) {
      resultElement(form).appendChild(signInLink());
      return;
    }
    form.dispatchEvent(new CustomEvent("spd:scan", { detail: { code: code, ok: !!body.ok, body: body } }));
    if (body.ok && body.html && form.getAttribute("data-scan-target")) {
      var target = document.querySelector(form.getAttribute("data-scan-target"));
      if (target) target.insertAdjacentHTML("afterbegin", body.html);
    }
    if (body.ok && body.redirect) {
      window.location.assign(body.redirect);
      return;
    }
    if (body.ok) {
      var sent = input.getAttribute("data-sent") || "";
      input.value = input.value.indexOf(sent) === 0 ? input.value.slice(sent.length) : input.value;
      input.focus();
    } else {
      input.focus();
      input.select();
    }
  }

  /* --- wiring ------------------------------------------------------------------------------- */
  function attach(form) {
    var input = form.querySelector("[data-scan-field]");
    if (!input || form.getAttribute("data-scan-ready")) return;
    form.setAttribute("data-scan-ready", "true");

    input.addEventListener("keydown", function (event) {
      if (isGsKey(event)) {
        event.preventDefault();
        insertAtCaret(input, GS_MARK);
      } else if (event.key === "Enter") {
        event.preventDefault();
        send(form, input);
      }
    });
    // Some browsers deliver the control character only as a keypress, or as input data.
    input.addEventListener("keypress", function (event) {
      if (event.charCode === 29) {
        event.preventDefault();
        insertAtCaret(input, GS_MARK);
      }
    });
    input.addEventListener("beforeinput", function (event) {
      if (event.data && event.data.indexOf(GS) >= 0) {
        event.preventDefault();
        insertAtCaret(input, event.data.split(GS).join(GS_MARK));
      }
    });
    input.addEventListener("input", function () {
      if (input.value.indexOf(GS) >= 0) input.value = input.value.split(GS).join(GS_MARK);
      input.classList.remove("scan-ok", "scan-fail");
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send(form, input);
    });
    restorePending(form, input);
  }

  /* The field typing goes to when nothing editable has the focus: the page's own scan field
     (form[data-scan-primary]) if it has one, else the one in the top bar (form[data-scan-global]). */
  function primaryInput() {
    return document.querySelector("form[data-scan-primary] [data-scan-field]")
      || document.querySelector("form[data-scan-global] [data-scan-field]");
  }

  function captureTyping(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isEditable(event.target) || event.key.length !== 1 || event.key === " ") return;
    var input = primaryInput();
    if (!input) return;
    event.preventDefault();
    input.focus();
    if (event.key === "/") {
      input.select();
    } else {
      input.value = "";
      insertAtCaret(input, event.key);
    }
  }

  function isEditable(element) {
    if (!element || !element.tagName) return false;
    var tag = element.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || element.isContentEditable;
  }

  /* A plain form field that may receive a scan (input[data-gs-field], e.g. the stock search): a GS
     key event shows as the mark, which the server reads as GS; the form submits as usual. */
  function attachGsField(input) {
    if (input.getAttribute("data-gs-ready")) return;
    input.setAttribute("data-gs-ready", "true");
    input.addEventListener("keydown", function (event) {
      if (isGsKey(event)) {
        event.preventDefault();
        insertAtCaret(input, GS_MARK);
      }
    });
    input.addEventListener("keypress", function (event) {
      if (event.charCode === 29) {
        event.preventDefault();
        insertAtCaret(input, GS_MARK);
      }
    });
    input.addEventListener("input", function () {
      if (input.value.indexOf(GS) >= 0) input.value = input.value.split(GS).join(GS_MARK);
    });
  }

  function attachAll(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("form[data-scan-form]"), attach);
    Array.prototype.forEach.call((root || document).querySelectorAll("input[data-gs-field]"), attachGsField);
  }

  document.addEventListener("keydown", captureTyping);

  window.SPD = window.SPD || {};
  window.SPD.scanField = { attach: attach, attachAll: attachAll, normalise: normalise, tone: tone, GS: GS, GS_MARK: GS_MARK };
})();
