/* camera-scan.js — scanning with the phone's or tablet's camera where there is no wedge scanner.
 *
 * A button marked data-camera-scan="<input id>" (hidden until the browser can use a camera) opens the
 * camera over the page. Frames are read by the browser's own BarcodeDetector where it exists and
 * knows DataMatrix; elsewhere by ZXing (@zxing/library, vendored in static/web/vendor/ and loaded
 * only when needed, from this server: no CDN). Formats: GS1 DataMatrix, GS1-128 (Code 128) and QR.
 *
 * The decoded text goes the wedge scanner's way: FNC1 is read as the GS control character (ASCII 29),
 * shown in the field as "␝" like a scanner's GS key, and the field's form is submitted as if Enter
 * had been pressed — scan-field.js sends it (a data-scan-form) or the browser does (a plain form).
 * The camera stops after one code; the button reads the next.
 *
 * Cameras need a secure origin (https, or localhost): over plain http the button stays hidden.
 * The decoder's URL and the messages come from this script tag's data-* attributes.
 */
(function () {
  "use strict";

  var GS = "\x1d";
  var GS_MARK = "\u241d";
  var script = document.currentScript;
  var FORMATS = ["data_matrix", "code_128", "qr_code"];

  function message(name) {
    return (script && script.getAttribute("data-msg-" + name)) || "";
  }

  /* --- decoders: one interface, detect(video) -> Promise<text | null> ----------------------------- */

  function nativeDecoder() {
    if (!("BarcodeDetector" in window)) return Promise.resolve(null);
    return window.BarcodeDetector.getSupportedFormats().then(function (supported) {
      var formats = FORMATS.filter(function (format) { return supported.indexOf(format) >= 0; });
      if (formats.indexOf("data_matrix") < 0) return null; // UDIs are DataMatrix: ZXing reads it instead
      var detector = new window.BarcodeDetector({ formats: formats });
      return {
        name: "native",
        detect: function (video) {
          return detector.detect(video).then(function (codes) { return codes.length ? codes[0].rawValue : null; });
        },
      };
    }).catch(function () { return null; });
  }

  var zxingLoading = null;

  function loadZxing() {
    if (window.ZXing) return Promise.resolve(window.ZXing);
    if (!zxingLoading) {
      zxingLoading = new Promise(function (resolve, reject) {
        var tag = document.createElement("script");
        tag.src = script.getAttribute("data-decoder");
        tag.onload = function () { resolve(window.ZXing); };
        tag.onerror = reject;
        document.head.appendChild(tag);
      });
    }
    return zxingLoading;
  }

  function zxingDecoder() {
    return loadZxing().then(function (ZXing) {
      var hints = new Map();
      hints.set(ZXing.DecodeHintType.POSSIBLE_FORMATS, [
        ZXing.BarcodeFormat.DATA_MATRIX, ZXing.BarcodeFormat.CODE_128, ZXing.BarcodeFormat.QR_CODE,
      ]);
      hints.set(ZXing.DecodeHintType.ASSUME_GS1, true); // Code 128: FNC1 -> "]C1" first, GS after
      hints.set(ZXing.DecodeHintType.TRY_HARDER, true);
      var reader = new ZXing.MultiFormatReader();
      reader.setHints(hints);
      var canvas = document.createElement("canvas");
      return {
        name: "zxing",
        detect: function (video) {
          var width = video.videoWidth;
          var height = video.videoHeight;
          if (!width || !height) return Promise.resolve(null);
          var scale = Math.min(1, 1280 / width);
          canvas.width = Math.round(width * scale);
          canvas.height = Math.round(height * scale);
          canvas.getContext("2d", { willReadFrequently: true }).drawImage(video, 0, 0, canvas.width, canvas.height);
          try {
            var bitmap = new ZXing.BinaryBitmap(new ZXing.HybridBinarizer(
              new ZXing.HTMLCanvasElementLuminanceSource(canvas)));
            return Promise.resolve(reader.decodeWithState(bitmap).getText());
          } catch (error) {
            return Promise.resolve(null); // nothing readable in this frame
          } finally {
            reader.reset();
          }
        },
      };
    });
  }

  var decoder = null;

  function getDecoder() {
    if (!decoder) {
      decoder = nativeDecoder().then(function (native) { return native || zxingDecoder(); });
    }
    return decoder;
  }

  /* --- the camera panel ------------------------------------------------------------------------- */

  var session = null;

  function panel() {
    var box = document.createElement("div");
    box.className = "camera-panel";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-modal", "true");
    box.setAttribute("data-camera-panel", "");
    var video = document.createElement("video");
    video.setAttribute("playsinline", "");
    video.muted = true;
    var status = document.createElement("p");
    status.className = "camera-status";
    status.setAttribute("role", "status");
    status.textContent = message("starting");
    var close = document.createElement("button");
    close.type = "button";
    close.className = "camera-close";
    close.setAttribute("data-action", "close-camera");
    close.textContent = message("close") || "×";
    box.appendChild(video);
    box.appendChild(status);
    box.appendChild(close);
    return { box: box, video: video, status: status, close: close };
  }

  function stop() {
    if (!session) return;
    var current = session;
    session = null;
    current.running = false;
    if (current.stream) current.stream.getTracks().forEach(function (track) { track.stop(); });
    if (current.view.box.parentNode) current.view.box.parentNode.removeChild(current.view.box);
    current.input.focus();
  }

  function open(input) {
    if (session) stop();
    var view = panel();
    document.body.appendChild(view.box);
    session = { input: input, view: view, running: true, stream: null };
    var current = session;
    view.close.addEventListener("click", stop);
    view.box.addEventListener("keydown", function (event) { if (event.key === "Escape") stop(); });
    view.close.focus();
    navigator.mediaDevices.getUserMedia({
      audio: false, video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 720 } },
    }).then(function (stream) {
      current.stream = stream;
      if (!current.running) { stop(); return null; }
      view.video.srcObject = stream;
      return view.video.play().then(getDecoder);
    }).then(function (found) {
      if (!found || !current.running) return;
      view.box.setAttribute("data-decoder", found.name);
      document.body.setAttribute("data-camera-decoder", found.name); // which one read: native or zxing
      view.status.textContent = message("aim");
      loop(current, found);
    }).catch(function () {
      view.status.textContent = message("denied");
      view.box.setAttribute("data-camera-error", "");
    });
  }

  function loop(current, found) {
    if (!current.running) return;
    found.detect(current.view.video).then(function (text) {
      if (!current.running) return;
      if (text) {
        stop();
        deliver(current.input, text);
      } else {
        window.setTimeout(function () { loop(current, found); }, 120);
      }
    }, function () {
      window.setTimeout(function () { loop(current, found); }, 250);
    });
  }

  /* The decoded text into the field, as a wedge scanner would have typed it, then "Enter". */
  function deliver(input, text) {
    input.value = text.replace(/^[\r\n ]+|[\r\n ]+$/g, "").split(GS).join(GS_MARK);
    input.classList.remove("scan-ok", "scan-fail");
    input.focus();
    var form = input.form;
    if (!form) return;
    if (typeof form.requestSubmit === "function") {
      form.requestSubmit();
    } else {
      form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  }

  function start() {
    var usable = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
    Array.prototype.forEach.call(document.querySelectorAll("[data-camera-scan]"), function (button) {
      var input = document.getElementById(button.getAttribute("data-camera-scan"));
      if (!input || !usable) return;
      button.hidden = false;
      button.addEventListener("click", function () { open(input); });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }

  window.SPD = window.SPD || {};
  window.SPD.cameraScan = { open: open, stop: stop, deliver: deliver };
})();
