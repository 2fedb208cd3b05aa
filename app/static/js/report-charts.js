// Billing report charts. Loaded as a file on report pages only (the CSP allows no inline script).
//
// A chart is a <canvas data-chart='{"type": "bar"|"line"|"doughnut", "labels": [...],
// "datasets": [{"label": ..., "data": [...]}], "money": bool}'> (JSON in a data attribute: the template
// check refuses every <script> without src, and the CSP would refuse inline code anyway).
// Charts are drawn on load and again after every htmx swap (the date filter replaces the tables).
(function () {
  "use strict";

  var PALETTE = ["#0d6efd", "#198754", "#fd7e14", "#6f42c1", "#dc3545", "#20c997", "#6c757d", "#ffc107"];

  function spec(canvas) {
    try {
      return JSON.parse(canvas.getAttribute("data-chart"));
    } catch (error) {
      return null;
    }
  }

  function draw(canvas) {
    if (typeof Chart === "undefined") return;
    var data = spec(canvas);
    if (!data) return;
    var existing = Chart.getChart(canvas);
    if (existing) existing.destroy();
    var round = data.type === "doughnut";
    var datasets = data.datasets.map(function (dataset, i) {
      var colour = PALETTE[i % PALETTE.length];
      return {
        label: dataset.label,
        data: dataset.data.map(Number),
        backgroundColor: round ? data.labels.map(function (_, j) { return PALETTE[j % PALETTE.length]; }) : colour,
        borderColor: colour,
        borderWidth: data.type === "line" ? 2 : 0,
        pointRadius: data.labels.length > 60 ? 0 : 2,
        tension: 0.2
      };
    });
    var money = new Intl.NumberFormat(undefined, {minimumFractionDigits: 2, maximumFractionDigits: 2});
    new Chart(canvas, {
      type: data.type,
      data: {labels: data.labels, datasets: datasets},
      options: {
        responsive: true,
        maintainAspectRatio: true,
        aspectRatio: round ? 2 : 2.6,
        animation: false,
        plugins: {
          legend: {display: round || datasets.length > 1, position: round ? "right" : "top"},
          tooltip: {
            callbacks: data.money ? {
              label: function (ctx) {
                var value = ctx.parsed && typeof ctx.parsed === "object" ? ctx.parsed.y : ctx.parsed;
                return (ctx.dataset.label ? ctx.dataset.label + ": " : "") + money.format(value);
              }
            } : {}
          }
        },
        scales: round ? {} : {y: {beginAtZero: true}, x: {ticks: {autoSkip: true, maxRotation: 0}}}
      }
    });
    canvas.setAttribute("data-chart-drawn", "true");
  }

  function drawAll(root) {
    var canvases = (root || document).querySelectorAll("canvas[data-chart]");
    for (var i = 0; i < canvases.length; i++) draw(canvases[i]);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawAll(event.target); });
})();
