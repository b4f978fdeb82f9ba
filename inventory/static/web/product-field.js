/* product-field.js — a product typed by code, name or UDI-DI, with suggestions.
 *
 * A hospital's catalog holds tens of thousands of products: too many for a <select>. The field is a
 * text input whose <datalist> is filled, as one types, from the page's suggestion endpoint
 * (inventory/web/views/stock.py `product_suggestions`, JSON {products: [{code, label}]}). Picking a
 * suggestion puts the product's internal code in the field; the server looks the code up.
 *
 * Markup: <input list="ID" data-suggest-url="…"> <datalist id="ID"></datalist> (the URL may carry a
 * query of its own, e.g. `?hospital=` to offer one hospital's catalog; `q` is added to it).
 * Without JavaScript the field still takes a typed code.
 */
(function () {
  "use strict";

  var DELAY_MS = 150;

  function attach(input) {
    var list = document.getElementById(input.getAttribute("list"));
    var url = input.getAttribute("data-suggest-url");
    if (!list || !url || input.dataset.productFieldAttached) return;
    input.dataset.productFieldAttached = "1";
    var timer = null;
    var asked = null;

    function fill(products) {
      list.replaceChildren.apply(list, products.map(function (product) {
        var option = document.createElement("option");
        option.value = product.code;
        option.label = product.label;
        option.textContent = product.label;
        return option;
      }));
      input.dispatchEvent(new CustomEvent("spd:suggestions", { detail: { count: products.length } }));
    }

    function ask() {
      var text = input.value.trim();
      if (text === asked) return;
      asked = text;
      if (!text) { fill([]); return; }
      fetch(url + (url.indexOf("?") < 0 ? "?" : "&") + "q=" + encodeURIComponent(text), {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      })
        .then(function (response) { return response.ok ? response.json() : { products: [] }; })
        .then(function (body) { if (asked === text) fill(body.products || []); })
        .catch(function () { /* no suggestions: the typed code still works */ });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, DELAY_MS);
    });
  }

  function attachAll(root) {
    root.querySelectorAll("input[list][data-suggest-url]").forEach(attach);
  }

  window.SPD = window.SPD || {};
  window.SPD.productField = { attach: attach, attachAll: attachAll };
})();
