// Draws the dashboard's line chart as SVG from the JSON embedded in the page: no library, no CDN.
// After drawing, the <svg> carries data-points (points drawn) so a headless browser test can tell
// that data was plotted, not only that the page loaded.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var svg = document.getElementById("chart");
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var W = 1100, H = 420, L = 70, R = 10, T = 10, B = 30;
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);

  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
    return e;
  }

  var times = data.times.map(function (t) { return Date.parse(t + "Z"); });
  var series = [
    { name: "close", values: data.close, color: "#1f77b4" },
    { name: "prediction", values: data.prediction, color: "#d62728" }
  ];
  var lo = Infinity, hi = -Infinity;
  series.forEach(function (s) {
    s.values.forEach(function (v) { if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); } });
  });
  if (!times.length || !isFinite(lo)) { svg.setAttribute("data-points", "0"); return; }
  if (hi === lo) { hi += 1; lo -= 1; }
  var t0 = times[0], t1 = times[times.length - 1] || t0 + 1;
  function x(t) { return L + (t - t0) / Math.max(1, t1 - t0) * (W - L - R); }
  function y(v) { return T + (hi - v) / (hi - lo) * (H - T - B); }

  for (var i = 0; i <= 4; i++) {
    var v = lo + (hi - lo) * i / 4;
    el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#eee" });
    el("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11 }, Math.round(v).toLocaleString("en"));
  }
  [0, 0.5, 1].forEach(function (f) {
    var t = t0 + (t1 - t0) * f;
    el("text", { x: x(t), y: H - 8, "text-anchor": f === 0 ? "start" : f === 1 ? "end" : "middle", "font-size": 11 },
       new Date(t).toISOString().slice(0, 10));
  });

  var drawn = 0;
  series.forEach(function (s) {
    var pts = [];
    s.values.forEach(function (v, i) {
      if (v !== null) pts.push(x(times[i]).toFixed(1) + "," + y(v).toFixed(1));
    });
    if (pts.length) {
      el("polyline", { points: pts.join(" "), fill: "none", stroke: s.color, "stroke-width": 1,
                       "data-series": s.name, "data-points": pts.length });
    }
    svg.setAttribute("data-" + s.name + "-points", String(pts.length));
    drawn += pts.length;
  });
  svg.setAttribute("data-points", String(drawn));
})();
