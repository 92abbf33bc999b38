// Draws a BPMN diagram with the vendored bpmn-js viewer (NavigatedViewer: drag to pan) and marks done, current and
// overdue steps, or a heatmap's colours and figures. The XML comes with each label in the page's language (the
// server puts an element's `name_ar` or `name_en` in its `name`: api/web/pages/directives.py, localized_bpmn); Arabic
// labels are set right to left.
// The view is fitted to the box's width, never so small that labels are under READABLE_PX, centred on the current
// steps.
// The bpmn.io watermark that bpmn-js adds stays visible (its licence requires it).
(function () {
  "use strict";

  // Naskh looks smaller than Latin at the same size.
  var FONT_SIZE = { ar: 13, en: 12 };
  // Fitted to the width, a big model would shrink its labels to 6 px: never below 10.5 px on screen.
  var READABLE_PX = 10.5;
  var LARGEST_FIT = 1.5;
  var ZOOM_STEP = 1.25;
  var ZOOM_LIMITS = [0.2, 4];
  var MARGIN = 20;
  var PAN_STEP = 60;
  var ARABIC = /[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF]/;

  function list(element, name) {
    try { return JSON.parse(element.getAttribute(name) || "[]"); } catch (e) { return []; }
  }

  function pageLanguage() {
    return (document.documentElement.lang || "ar").toLowerCase().indexOf("en") === 0 ? "en" : "ar";
  }

  // bpmn-js measures labels to wrap them: with the page's own font, loaded first, the measure is the one drawn.
  function textStyle(language) {
    var family = window.getComputedStyle(document.body).fontFamily;
    var lineHeight = language === "ar" ? 1.4 : 1.2;
    return {
      defaultStyle: { fontFamily: family, fontSize: FONT_SIZE[language], fontWeight: "normal", lineHeight: lineHeight },
      externalStyle: { fontSize: FONT_SIZE[language] - 1, lineHeight: lineHeight }
    };
  }

  function fontsLoaded(style) {
    if (!document.fonts || !document.fonts.load) { return Promise.resolve(); }
    var font = style.defaultStyle.fontSize + "px " + style.defaultStyle.fontFamily;
    return Promise.all([document.fonts.load(font, "تنسيق"), document.fonts.load(font, "Tansiq")])
      .catch(function () { return null; });
  }

  // Arabic labels run right to left; bpmn-js places each line by its left end, which is the end of an RTL line.
  function orientLabels(container) {
    container.querySelectorAll("text").forEach(function (text) {
      if (ARABIC.test(text.textContent)) {
        text.setAttribute("direction", "rtl");
        text.setAttribute("text-anchor", "end");
      }
    });
  }

  // The drawing takes the keyboard focus (arrow keys pan it): it says what it is.
  function describe(element) {
    var svg = element.querySelector("svg");
    if (!svg) { return; }
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", element.getAttribute("aria-label") || "");
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
      // never drawn smaller than its own size: a zoomed-out diagram of a big model keeps readable badges
      overlays.add(id, "heat", { position: { top: shape.height + 4, left: -8 }, html: badge, scale: { min: 1 } });
    });
  }

  function bounds(shapes) {
    var box = null;
    shapes.forEach(function (shape) {
      var right = shape.x + shape.width, bottom = shape.y + shape.height;
      box = box ? { left: Math.min(box.left, shape.x), top: Math.min(box.top, shape.y),
                    right: Math.max(box.right, right), bottom: Math.max(box.bottom, bottom) }
                : { left: shape.x, top: shape.y, right: right, bottom: bottom };
    });
    return box;
  }

  // Where a window of `size` starts along one axis: the whole diagram when it fits, else around `focus` (or from
  // the diagram's start), without leaving the diagram.
  function start(from, to, size, focus) {
    var low = from - MARGIN, high = to + MARGIN;
    if (high - low <= size) { return low - (size - (high - low)) / 2; }
    if (focus === null) { return low; }
    return Math.min(Math.max(focus - size / 2, low), high - size);
  }

  // The fitted view: the diagram's width in the box, its smallest labels READABLE_PX high at least, the focused
  // shapes centred.
  function fit(canvas, focused, language) {
    var box = canvas.viewbox();
    var inner = box.inner, outer = box.outer;
    var scale = outer.width / (inner.width + 2 * MARGIN);
    scale = Math.min(Math.max(scale, READABLE_PX / (FONT_SIZE[language] - 1)), LARGEST_FIT);
    var width = outer.width / scale, height = outer.height / scale;
    var focus = bounds(focused);
    canvas.viewbox({
      x: start(inner.x, inner.x + inner.width, width, focus ? (focus.left + focus.right) / 2 : null),
      y: start(inner.y, inner.y + inner.height, height, focus ? (focus.top + focus.bottom) / 2 : null),
      width: width,
      height: height
    });
  }

  // Zooms by `factor` around the middle of the box.
  function zoom(canvas, factor) {
    var box = canvas.viewbox();
    var scale = Math.min(Math.max(box.scale * factor, ZOOM_LIMITS[0]), ZOOM_LIMITS[1]);
    var width = box.outer.width / scale, height = box.outer.height / scale;
    canvas.viewbox({ x: box.x + (box.width - width) / 2, y: box.y + (box.height - height) / 2,
                     width: width, height: height });
  }

  function controls(figure, canvas, focused, language) {
    var tools = figure.querySelector("[data-diagram-tools]");
    if (!tools) { return; }
    var actions = {
      "in": function () { zoom(canvas, ZOOM_STEP); },
      "out": function () { zoom(canvas, 1 / ZOOM_STEP); },
      "reset": function () { fit(canvas, focused, language); }
    };
    tools.querySelectorAll("button[data-zoom]").forEach(function (button) {
      button.addEventListener("click", actions[button.getAttribute("data-zoom")]);
    });
    tools.hidden = false;
  }

  // With the focus on the drawing, the arrow keys pan it (bpmn-js wants Ctrl as well), + and - zoom, 0 fits again.
  function keys(element, canvas, focused, language) {
    var svg = element.querySelector("svg");
    if (!svg) { return; }
    var moves = { ArrowLeft: [PAN_STEP, 0], ArrowRight: [-PAN_STEP, 0], ArrowUp: [0, PAN_STEP], ArrowDown: [0, -PAN_STEP] };
    svg.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) { return; }
      var move = moves[event.key];
      if (move) { canvas.scroll({ dx: move[0], dy: move[1] }); }
      else if (event.key === "+" || event.key === "=") { zoom(canvas, ZOOM_STEP); }
      else if (event.key === "-") { zoom(canvas, 1 / ZOOM_STEP); }
      else if (event.key === "0") { fit(canvas, focused, language); }
      else { return; }
      event.preventDefault();
    });
  }

  function mark(element, canvas, registry) {
    [["data-done", "marker-done"], ["data-current", "marker-current"], ["data-overdue", "marker-overdue"],
     ["data-failed", "marker-failed"]]
      .forEach(function (pair) {
        list(element, pair[0]).forEach(function (id) {
          if (registry.get(id)) { canvas.addMarker(id, pair[1]); }
        });
      });
  }

  // The shapes to centre: the current steps, else the failed or overdue ones.
  function focusOf(element, registry) {
    var ids = list(element, "data-current");
    if (!ids.length) { ids = list(element, "data-failed").concat(list(element, "data-overdue")); }
    return ids.map(function (id) { return registry.get(id); }).filter(Boolean);
  }

  function draw(element) {
    var figure = element.parentNode;
    var failed = figure.querySelector("[data-diagram-error]");
    if (typeof window.BpmnJS !== "function") {
      if (failed) { failed.hidden = false; }
      return;
    }
    var language = pageLanguage();
    var style = textStyle(language);
    var viewer = new window.BpmnJS({ container: element, textRenderer: style });
    fetch(element.getAttribute("data-xml-url"), { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (xml) {
        return fontsLoaded(style).then(function () { return viewer.importXML(xml); });
      })
      .then(function () {
        var canvas = viewer.get("canvas");
        var registry = viewer.get("elementRegistry");
        orientLabels(element);
        describe(element);
        mark(element, canvas, registry);
        heat(element, viewer, registry, canvas);
        var focused = focusOf(element, registry);
        fit(canvas, focused, language);
        controls(figure, canvas, focused, language);
        keys(element, canvas, focused, language);
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
