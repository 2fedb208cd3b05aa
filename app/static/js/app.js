// HMS page behaviour. Loaded as a file: the CSP allows no inline script.
(function () {
  "use strict";

  function toast(message) {
    var area = document.getElementById("toast-area");
    if (!area) return;
    var el = document.createElement("div");
    el.className = "alert alert-danger alert-dismissible shadow-sm";
    el.setAttribute("role", "alert");
    el.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close";
    close.setAttribute("data-bs-dismiss", "alert");
    close.setAttribute("aria-label", "Close");
    el.appendChild(close);
    area.appendChild(el);
  }

  // htmx does not swap error answers (except 422, by config): tell the user instead of doing nothing.
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var status = xhr.status;
    var type = xhr.getResponseHeader("Content-Type") || "";
    if (status === 409 && type.indexOf("text/plain") === 0 && xhr.responseText && xhr.responseText.length < 300) {
      toast(xhr.responseText);  // the server's own reason, e.g. "too late to cancel online"
      return;
    }
    var messages = {
      400: "The page is out of date. Reload it and try again.",
      403: "You do not have access to that.",
      404: "That item no longer exists.",
      409: "That change conflicts with the current state. Reload the page.",
      429: "Too many requests. Wait a moment and try again."
    };
    toast(messages[status] || "Something went wrong (" + status + "). Nothing was changed; try again.");
  });
  // A plain (not htmx) POST form: show the pressed button's spinner while the next page loads, and ignore a
  // second submit (a double click) until then. htmx forms have their own indicator and never get here: htmx
  // calls preventDefault on the form before this document-level listener runs.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || (form.method || "").toLowerCase() !== "post") return;
    if (form.dataset.submitting) {
      event.preventDefault();
      return;
    }
    form.dataset.submitting = "1";
    form.setAttribute("aria-busy", "true");
    if (event.submitter) event.submitter.classList.add("htmx-request");
  });
  // Back to a page kept in the browser's cache: its forms may be submitted again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-submitting]").forEach(function (form) {
      delete form.dataset.submitting;
      form.removeAttribute("aria-busy");
      form.querySelectorAll(".htmx-request").forEach(function (el) { el.classList.remove("htmx-request"); });
    });
  });
  document.addEventListener("htmx:sendError", function () {
    toast("The server could not be reached. Check your connection and try again.");
  });
})();
