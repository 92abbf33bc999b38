// Inputs in the page's language (every form works without this script; CSP: no inline script).
// - Arabic pages: number fields show and take Eastern Arabic digits; the form still sends Latin digits.
// - Date fields show the chosen day in both calendars, in the page's language (the browser draws the
//   field itself in its own locale).
// - File fields: a button and the chosen names in the page's language instead of the browser's words.
(function () {
  "use strict";

  var EASTERN = "٠١٢٣٤٥٦٧٨٩";
  var PERSIAN = "۰۱۲۳۴۵۶۷۸۹";
  var page = document.documentElement;
  var arabic = page.lang === "ar";

  function toEastern(text) {
    return text.replace(/[0-9]/g, function (d) { return EASTERN[Number(d)]; }).replace(/\./g, "٫");
  }

  function toLatin(text) {
    return text
      .replace(/[٠-٩]/g, function (d) { return String(EASTERN.indexOf(d)); })
      .replace(/[۰-۹]/g, function (d) { return String(PERSIAN.indexOf(d)); })
      .replace(/[٫]/g, ".").replace(/[٬،]/g, "");
  }

  function words() {
    return document.body ? document.body.dataset : {};
  }

  // --- numbers ----------------------------------------------------------------------------------------
  function easternNumberField(input) {
    input.type = "text";
    input.inputMode = input.step === "any" ? "decimal" : "numeric";
    input.setAttribute("pattern", "[0-9٠-٩۰-۹.٫\\-]*");
    input.setAttribute("data-eastern-digits", "");
    input.value = toEastern(input.value);
    input.addEventListener("input", function () {
      var caret = input.selectionStart;
      input.value = toEastern(input.value);
      if (caret !== null) { input.setSelectionRange(caret, caret); }
    });
  }

  function latinBeforeSending(form) {
    form.querySelectorAll("input[data-eastern-digits]").forEach(function (input) {
      input.value = toLatin(input.value);
    });
  }

  // A plain submit sends the fields as they are: make them Latin first (capture: before htmx reads them).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && !form.hasAttribute("hx-post") && !form.hasAttribute("hx-get")) {
      latinBeforeSending(form);
    }
  }, true);

  // An htmx request: rewrite what it sends, and leave the fields as the user sees them.
  document.addEventListener("htmx:configRequest", function (event) {
    var source = event.detail.elt;
    var form = source && (source.tagName === "FORM" ? source : source.closest("form"));
    if (!form) { return; }
    form.querySelectorAll("input[data-eastern-digits]").forEach(function (input) {
      if (!input.name) { return; }
      var latin = toLatin(input.value);
      if (event.detail.formData) { event.detail.formData.set(input.name, latin); }
      else { event.detail.parameters[input.name] = latin; }
    });
  });

  // --- dates ------------------------------------------------------------------------------------------
  // The day in words as the server writes it (api/web/i18n.py both_calendars): the weekday, the Hijri date
  // (Umm al-Qura, from the browser's Intl calendar), then the Gregorian one, with the server's month names.
  var umalqura = new Intl.DateTimeFormat("en-u-ca-islamic-umalqura-nu-latn",
    { day: "numeric", month: "numeric", year: "numeric", timeZone: "UTC" });

  function listed(name) { return (words()[name] || "").split("|"); }

  function hijriParts(day) {
    var parts = {};
    umalqura.formatToParts(day).forEach(function (part) { parts[part.type] = Number(part.value); });
    return parts;
  }

  function dayInWords(value) {
    var parts = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || "");
    if (!parts) { return ""; }
    var day = new Date(Date.UTC(Number(parts[1]), Number(parts[2]) - 1, Number(parts[3])));
    var hijri = hijriParts(day);
    var weekday = listed("weekdays")[(day.getUTCDay() + 6) % 7];
    var hijriMonth = listed("hijriMonths")[hijri.month - 1];
    var month = listed("gregorianMonths")[day.getUTCMonth()];
    if (arabic) {
      return toEastern(weekday + " " + hijri.day + " " + hijriMonth + " " + hijri.year + "هـ (" +
        day.getUTCDate() + " " + month + " " + day.getUTCFullYear() + "م)");
    }
    return weekday + " " + hijri.day + " " + hijriMonth + " " + hijri.year + " AH (" +
      day.getUTCDate() + " " + month + " " + day.getUTCFullYear() + ")";
  }

  function describedDate(input) {
    input.setAttribute("data-in-words", "");
    var shown = document.createElement("output");
    shown.className = "date-in-words";
    shown.id = (input.id || input.name) + "-in-words";
    shown.setAttribute("for", input.id || "");
    shown.setAttribute("aria-live", "polite");
    input.insertAdjacentElement("afterend", shown);
    var described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    described.push(shown.id);
    input.setAttribute("aria-describedby", described.join(" "));
    var update = function () { shown.textContent = dayInWords(input.value); };
    input.addEventListener("change", update);
    input.addEventListener("input", update);
    update();
  }

  // --- files ------------------------------------------------------------------------------------------
  function chosenText(input) {
    var files = input.files ? Array.prototype.map.call(input.files, function (f) { return f.name; }) : [];
    if (!files.length) { return words().noFile || ""; }
    if (files.length === 1) { return files[0]; }
    var count = arabic ? toEastern(String(files.length)) : String(files.length);
    return (words().filesChosen || "%n").replace("%n", count) + ": " + files.join("، ");
  }

  function namedFileField(input) {
    var picker = document.createElement("span");
    picker.className = "file-picker";
    var button = document.createElement("span");
    button.className = "button file-button";
    button.setAttribute("aria-hidden", "true");
    button.textContent = input.multiple ? (words().chooseFiles || "") : (words().chooseFile || "");
    var names = document.createElement("span");
    names.className = "file-names";
    names.setAttribute("aria-live", "polite");
    input.parentNode.insertBefore(picker, input);
    picker.appendChild(input);
    picker.appendChild(button);
    picker.appendChild(names);
    input.classList.add("file-native");
    var update = function () { names.textContent = chosenText(input); };
    input.addEventListener("change", update);
    input.form && input.form.addEventListener("reset", function () { setTimeout(update, 0); });
    update();
  }

  function enhance(root) {
    if (arabic) {
      root.querySelectorAll('input[type="number"]').forEach(easternNumberField);
    }
    root.querySelectorAll('input[type="date"]:not([data-in-words])').forEach(describedDate);
    root.querySelectorAll('input[type="file"]:not(.file-native)').forEach(namedFileField);
  }

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:afterSettle", function () { enhance(document); });
}());
