// Draws a BPMN diagram with the vendored bpmn-js viewer and marks done, current and overdue steps, or a
// heatmap's colours and figures.
// The bpmn.io watermark that bpmn-js adds stays visible (its licence requires it).
(function () {
  "use strict";

  function list(element, name) {
    try { return JSON.parse(element.getAttribute(name) || "[]"); } catch (e) { return []; }
  }

  // A heatmap: each step's colour band (heat-0 calm to heat-3 hot) and a badge with its figures under it.
  function heat(element, viewer, registry, canvas) {
    var raw = element.getAttribute("data-heat");
    if (!raw) { return; }
    var steps;
    try { steps = JSON.parse(raw); } catch (e) { return; }
    var overlays = viewer.get("overlays");
    Object.keys(steps).forEach(function (id) {
      var shape = registry.get(id);
      if (!shape) { return; }
      canvas.addMarker(id, "heat-" + steps[id].band);
      var badge = document.createElement("div");
      badge.className = "heat-badge heat-badge-" + steps[id].band;
      badge.setAttribute("data-element", id);
      badge.textContent = steps[id].label;
      // never drawn smaller than its own size: a fitted diagram of a big model is zoomed out
      overlays.add(id, "heat", { position: { top: shape.height + 4, left: -8 }, html: badge, scale: { min: 1 } });
    });
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
        heat(element, viewer, registry, canvas);
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
