// Tansiq web UI: small progressive enhancements (every page works without them). No inline script: CSP.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // htmx requests carry the CSRF token as a header.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  // Deadline fields: show the inputs of the chosen way (Gregorian date, Hijri date, time from now).
  function syncDeadline(fieldset) {
    var chosen = fieldset.querySelector("input[data-mode-switch]:checked");
    var mode = chosen ? chosen.value : "gregorian";
    fieldset.querySelectorAll(".mode-panel").forEach(function (panel) {
      var modes = (panel.getAttribute("data-mode") || "").split(" ");
      panel.hidden = modes.indexOf(mode) < 0;
    });
  }

  // Escalation actions: show the fields the chosen action needs.
  function syncAction(select) {
    var scope = select.closest("form");
    if (!scope) { return; }
    scope.querySelectorAll(".action-panel").forEach(function (panel) {
      panel.hidden = panel.getAttribute("data-for-action") !== select.value;
    });
  }

  // Bulk forms: "N selected" follows the ticked rows (the boxes name the form with their form= attribute).
  function syncSelected(output) {
    var form = output.closest("form");
    if (!form) { return; }
    var ticked = document.querySelectorAll('input[type="checkbox"][name="ids"][form="' + form.id + '"]:checked');
    // Arabic pages write Eastern Arabic digits, as the server does (some browsers default "ar" to Latin digits).
    var lang = document.documentElement.lang || "ar";
    output.textContent = new Intl.NumberFormat(lang === "ar" ? "ar-u-nu-arab" : lang).format(ticked.length);
  }

  function init(root) {
    root.querySelectorAll("fieldset[data-deadline]").forEach(syncDeadline);
    root.querySelectorAll("select[data-action-switch]").forEach(syncAction);
    document.querySelectorAll("output[data-selected-count]").forEach(syncSelected);
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("input[data-mode-switch]")) {
      syncDeadline(target.closest("fieldset[data-deadline]"));
    } else if (target.matches("select[data-action-switch]")) {
      syncAction(target);
    } else if (target.matches("input[data-select-all]")) {
      var name = target.getAttribute("data-select-all");
      document.querySelectorAll('input[type="checkbox"][name="' + name + '"]').forEach(function (box) {
        box.checked = target.checked;
      });
      document.querySelectorAll("output[data-selected-count]").forEach(syncSelected);
    } else if (target.matches('input[type="checkbox"][name="ids"]')) {
      document.querySelectorAll("output[data-selected-count]").forEach(syncSelected);
    } else if (target.matches("select[data-autosubmit]")) {
      target.form.submit();
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // Move focus to a form's error message so screen readers announce it.
  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    var error = document.getElementById("form-error");
    if (error) { error.focus(); }
  });
  document.addEventListener("htmx:afterSwap", function (event) { init(event.target); });
})();
