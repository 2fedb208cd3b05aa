// Vitals trend charts. Loaded (after the vendored Chart.js) only by the pages that show a trend.
//
// Each chart is a <canvas data-vitals-chart='{"labels": [...], "unit": "mmHg", "suggestedMin": 60,
//   "suggestedMax": 160, "datasets": [{"label": "Systolic", "data": [120, null, 131]}, ...]}'>; the server renders the
// numbers into that attribute (no inline script: the CSP forbids it) and the same numbers into an
// accessible table beneath the charts, which stays the source of truth for screen readers and print.
(function () {
  "use strict";

  var COLOURS = ["#0d6efd", "#d63384", "#198754", "#fd7e14", "#6f42c1"];

  function draw(canvas) {
    var spec;
    try {
      spec = JSON.parse(canvas.getAttribute("data-vitals-chart"));
    } catch (error) {
      return;
    }
    if (!spec || !spec.labels || !spec.labels.length) return;
    var datasets = spec.datasets.map(function (set, index) {
      var colour = COLOURS[index % COLOURS.length];
      return {
        label: set.label,
        data: set.data,
        borderColor: colour,
        backgroundColor: colour,
        pointRadius: 3,
        tension: 0.2,
        spanGaps: true
      };
    });
    new window.Chart(canvas, {
      type: "line",
      data: {labels: spec.labels, datasets: datasets},
      options: {
        responsive: true,
        maintainAspectRatio: true,
        aspectRatio: 2,
        animation: false,
        interaction: {mode: "index", intersect: false},
        plugins: {
          legend: {display: datasets.length > 1, position: "bottom"},
          tooltip: {
            callbacks: {
              label: function (context) {
                return context.dataset.label + ": " + context.formattedValue + (spec.unit ? " " + spec.unit : "");
              }
            }
          }
        },
        scales: {
          y: {
            title: {display: Boolean(spec.unit), text: spec.unit || ""},
            suggestedMin: spec.suggestedMin === null ? undefined : spec.suggestedMin,
            suggestedMax: spec.suggestedMax === null ? undefined : spec.suggestedMax
          }
        }
      }
    });
    canvas.setAttribute("data-chart-drawn", "true");
  }

  function drawAll(root) {
    if (!window.Chart) return;
    var canvases = (root || document).querySelectorAll("canvas[data-vitals-chart]");
    Array.prototype.forEach.call(canvases, function (canvas) {
      if (!canvas.hasAttribute("data-chart-drawn")) draw(canvas);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  } else {
    drawAll(document);
  }
  // A trend swapped in by htmx (e.g. a fragment of the same page) is drawn too.
  document.addEventListener("htmx:afterSettle", function (event) { drawAll(event.target); });
})();
