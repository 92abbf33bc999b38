// Draws a BPMN diagram with the vendored bpmn-js viewer and marks done, current and overdue steps.
// The bpmn.io watermark that bpmn-js adds stays visible (its licence requires it).
(function () {
  "use strict";

  function list(element, name) {
    try { return JSON.parse(element.getAttribute(name) || "[]"); } catch (e) { return []; }
  }

  function draw(element) {
    var failed = element.parentNode.querySelector("[data-diagram-error]");
    if (typeof window.BpmnJS !== "function") {
      if (failed) { failed.hidden = false; }
      return;
    }
    var viewer = new window.BpmnJS({ container: element });
    fetch(element.getAttribute("data-xml-url"), { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (xml) { return viewer.importXML(xml); })
      .then(function () {
        var canvas = viewer.get("canvas");
        var registry = viewer.get("elementRegistry");
        canvas.zoom("fit-viewport", "auto");
        [["data-done", "marker-done"], ["data-current", "marker-current"], ["data-overdue", "marker-overdue"],
         ["data-failed", "marker-failed"]]
          .forEach(function (pair) {
            list(element, pair[0]).forEach(function (id) {
              if (registry.get(id)) { canvas.addMarker(id, pair[1]); }
            });
          });
        element.setAttribute("data-drawn", "true");
      })
      .catch(function () {
        if (failed) { failed.hidden = false; }
        element.setAttribute("data-drawn", "failed");
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-xml-url]").forEach(draw);
  });
})();
