// "Print" buttons on the printable visit summary and prescription (no inline handlers: the CSP forbids them).
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-print]");
    if (!button) return;
    event.preventDefault();
    window.print();
  });
})();
