// InferLab dashboards: the CSRF header on every htmx request, and uPlot charts drawn from
// data-chart attributes (JSON rendered by the server; no inline script, CSP script-src 'self').
(function () {
  "use strict";
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrf();
  });
  var colours = ["#2f6fdf", "#d9480f", "#2b8a3e", "#862e9c"];
  function draw(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn === "1" || typeof uPlot === "undefined") return;
      var spec = JSON.parse(el.getAttribute("data-chart"));
      if (!spec.x || spec.x.length === 0) return;
      var xs = spec.x.map(function (day) { return Date.parse(day + "T00:00:00Z") / 1000; });
      var series = [{}].concat(spec.series.map(function (s, i) {
        return { label: s.label, stroke: colours[i % colours.length], width: 2 };
      }));
      var data = [xs].concat(spec.series.map(function (s) { return s.values; }));
      var width = Math.max(320, Math.min(el.clientWidth || 900, 1100));
      new uPlot({ width: width, height: 220, series: series, scales: { x: { time: true } } }, data, el);
      el.dataset.drawn = "1";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); document.body.dataset.ready = "1"; });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.detail.elt.parentNode || document); });
  document.addEventListener("htmx:afterRequest", function (event) {  // a created key: the form is ready for the next
    var form = event.detail.elt;
    if (event.detail.successful && form.matches && form.matches("form[data-reset]")) form.reset();
  });
})();
