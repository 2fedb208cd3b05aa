// The idle timeout's warning (app/templates/accounts/_session_timer.html): a dialog a minute before the session
// runs out, "Stay signed in" (a keep-alive request), and at the end a message that says what happened. What a
// form on the page held is then kept in this tab's sessionStorage and filled back in when the person has signed
// in again and is back on the page. Loaded as a file: the CSP allows no inline script.
(function () {
  "use strict";
  var KEPT = "hms:kept-form:";
  var SYNC = "hms:session-deadline";  // other tabs' activity moves this tab's deadline too
  var WARN_MS = 60 * 1000;
  var here = location.pathname + location.search;

  function fields(form) {
    return Array.prototype.filter.call(form.elements, function (el) {
      var type = (el.type || "").toLowerCase();
      return el.name && !el.disabled && ["password", "hidden", "file", "submit", "button", "reset"].indexOf(type) < 0;
    });
  }

  function changed(el) {
    if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
    if (el.tagName === "SELECT") {
      return Array.prototype.some.call(el.options, function (o) { return o.selected !== o.defaultSelected; });
    }
    return el.value !== el.defaultValue;
  }

  function saveForms() {
    var kept = [];
    document.querySelectorAll("main form").forEach(function (form, index) {
      var values = fields(form).filter(changed).map(function (el) {
        return {name: el.name, value: el.value, checked: el.checked, choice: el.type === "checkbox" || el.type === "radio"};
      });
      if (values.length) kept.push({index: index, values: values});
    });
    try {
      if (kept.length) sessionStorage.setItem(KEPT + here, JSON.stringify(kept));
    } catch (e) { /* storage full or off: the form stays on screen */ }
    return kept.length > 0;
  }

  function restoreForms() {
    var raw = null;
    try {
      raw = sessionStorage.getItem(KEPT + here);
      sessionStorage.removeItem(KEPT + here);
    } catch (e) { return; }
    if (!raw) return;
    var forms = document.querySelectorAll("main form");
    var restored = 0;
    JSON.parse(raw).forEach(function (saved) {
      var form = forms[saved.index];
      if (!form) return;
      saved.values.forEach(function (v) {
        fields(form).forEach(function (el) {
          if (el.name !== v.name) return;
          if (v.choice) {
            if (el.value === v.value) el.checked = v.checked;
          } else {
            el.value = v.value;
          }
          restored += 1;
        });
      });
      if (restored) {
        var note = document.createElement("div");
        note.className = "alert alert-warning";
        note.setAttribute("role", "status");
        note.setAttribute("data-testid", "form-restored");
        note.textContent = "You were signed out before this was saved. What you had typed is filled back in: " +
          "check it and save.";
        form.parentNode.insertBefore(note, form);
      }
    });
  }

  restoreForms();

  var dialog = document.getElementById("session-timer");
  if (!dialog || typeof dialog.showModal !== "function") return;
  var part = function (role) { return dialog.querySelector("[data-role=" + role + "]"); };
  var deadline = Date.now() + Number(dialog.dataset.remaining) * 1000;
  var lifetime = dialog.dataset.lifetime === "yes";
  var expired = false;
  var warnTimer = null;
  var endTimer = null;

  function show() {
    if (!dialog.open) dialog.showModal();
  }

  function schedule() {
    clearTimeout(warnTimer);
    clearTimeout(endTimer);
    var left = deadline - Date.now();
    warnTimer = setTimeout(warn, Math.max(0, left - WARN_MS));
    endTimer = setTimeout(expire, Math.max(0, left));
  }

  function moveDeadline(next, tellOthers) {
    if (expired || !(next > 0)) return;
    deadline = next;
    if (dialog.open && deadline - Date.now() > WARN_MS) dialog.close();
    if (tellOthers) {
      try { localStorage.setItem(SYNC, String(deadline)); } catch (e) { /* one tab only */ }
    }
    schedule();
  }

  function warn() {
    if (expired) return;
    part("title").textContent = "Are you still there?";
    part("text").textContent = lifetime
      ? "Your session ends in a minute: a session lasts at most " + dialog.dataset.maxHours + " hours. Save your work."
      : "You will be signed out in a minute because of inactivity.";
    part("stay").classList.toggle("d-none", lifetime);
    part("close").classList.toggle("d-none", !lifetime);
    show();
  }

  function expire() {
    if (expired) return;
    if (deadline - Date.now() > 1000) { schedule(); return; }  // another tab kept the session alive
    expired = true;
    var kept = saveForms();
    part("title").textContent = "You were signed out";
    part("text").textContent = (lifetime
      ? "Your session reached its time limit."
      : "You were signed out after " + dialog.dataset.idleMinutes + " minutes without activity.") +
      (kept ? " What you typed on this page is kept: sign in again and it will be filled back in."
            : " Sign in again to continue.");
    part("stay").classList.add("d-none");
    var signIn = part("sign-in");
    signIn.href = signIn.getAttribute("href") + "?next=" + encodeURIComponent(here);
    signIn.classList.remove("d-none");
    part("close").classList.remove("d-none");
    show();
  }

  part("stay").addEventListener("click", function () {
    var token = document.querySelector('meta[name="csrf-token"]');
    fetch(dialog.dataset.keepAliveUrl, {
      method: "POST", credentials: "same-origin",
      headers: {"X-CSRFToken": token ? token.content : "", "Accept": "application/json"}
    }).then(function (response) {
      if (!response.ok) throw new Error(String(response.status));
      return response.json();
    }).then(function (body) {
      moveDeadline(Date.now() + body.remaining_seconds * 1000, true);
      dialog.close();
    }).catch(function () {
      deadline = Date.now();
      expire();
    });
  });
  part("close").addEventListener("click", function () { dialog.close(); });

  // Each answer of this session tells how long it has left (HMS-Session-Remaining).
  document.addEventListener("htmx:afterRequest", function (event) {
    var left = event.detail.xhr && event.detail.xhr.getResponseHeader("HMS-Session-Remaining");
    if (left) moveDeadline(Date.now() + Number(left) * 1000, true);
  });
  // The server signed the session out (idle, another tab, the admin): keep the page's forms before htmx leaves.
  document.addEventListener("htmx:beforeOnLoad", function (event) {
    if (event.detail.xhr && event.detail.xhr.status === 401) saveForms();
  });
  // After the end, nothing is sent: it would be lost. The dialog says why instead.
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (expired) { event.preventDefault(); show(); }
  });
  document.addEventListener("submit", function (event) {
    if (!expired) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    saveForms();
    show();
  }, true);
  window.addEventListener("storage", function (event) {
    if (event.key === SYNC && Number(event.newValue) > deadline) moveDeadline(Number(event.newValue), false);
  });
  moveDeadline(deadline, true);
})();
