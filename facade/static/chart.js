// Draws the dashboard's two panels with the vendored uPlot (uPlot.iife.min.js, MIT; no CDN) from the
// JSON that facade/api/routes/dashboard.py:page_data embeds in the page:
//   1. close, the point forecast (median) and the 80% band (10%..90% quantiles), with a dashed marker
//      labelled with the alias where each stitched version takes over. It opens on the last 14 days
//      (at the full four months the lines and the band cannot be told apart); `#days=N` in the URL
//      opens on the last N days, `#days=0` on everything.
//   2. the cumulative error difference against persistence over the whole backtest (rising = the
//      model gains), which is also the range selector: it shades the window shown above, and a drag
//      across it shows that span above. Drag across panel 1 to zoom, double-click to see everything;
//      the buttons (7 days, 30 days, all, earlier/later) move the window. The cursor is synced.
// After every draw the panels' <div>s carry data-* attributes read from the uPlot instances (points
// per series, bands, markers drawn, the x range), so a headless browser test can tell what was
// drawn, not only that the page loaded.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var priceEl = document.getElementById("chart");
  var gainEl = document.getElementById("gain-chart");
  var COLORS = {
    close: "#1f3b73",
    prediction: "#e6550d",
    quantile: "rgba(230,85,13,0.45)",
    band: "rgba(255,127,14,0.22)",
    marker: "#7b3294",
    gain: "#2ca02c",
    gainFill: "rgba(44,160,44,0.15)",
    window: "rgba(31,59,115,0.10)"
  };
  var DAY = 86400, DEFAULT_DAYS = 14;
  var t = data.t;
  if (!t.length) { return; }
  var tMin = t[0], tMax = t[t.length - 1];
  var price = null, gain = null;

  function count(values) {
    var n = 0;
    for (var i = 0; i < values.length; i++) if (values[i] !== null) n++;
    return n;
  }
  function both(a, b) {
    var n = 0;
    for (var i = 0; i < a.length; i++) if (a[i] !== null && b[i] !== null) n++;
    return n;
  }
  function usd(u, v) { return v === null || v === undefined ? "\u2013" : Math.round(v).toLocaleString("en"); }
  function width() { return Math.max(320, priceEl.clientWidth || 1000); }

  // Dashed vertical markers where each alias's part starts; labels only on the price panel.
  function markers(u, el, labelled) {
    var ctx = u.ctx, px = uPlot.pxRatio, box = u.bbox, drawn = [];
    var lo = u.scales.x.min, hi = u.scales.x.max;
    ctx.save();
    ctx.beginPath();
    ctx.rect(box.left, box.top, box.width, box.height);
    ctx.clip();
    ctx.strokeStyle = COLORS.marker;
    ctx.fillStyle = COLORS.marker;
    ctx.lineWidth = 1.5 * px;
    ctx.setLineDash([5 * px, 4 * px]);
    ctx.font = (11 * px) + "px system-ui, sans-serif";
    ctx.textAlign = "right";
    data.boundaries.forEach(function (b) {
      if (b.t < lo || b.t > hi) return;
      var x = Math.round(u.valToPos(b.t, "x", true)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, box.top);
      ctx.lineTo(x, box.top + box.height);
      ctx.stroke();
      if (labelled) {  // rotated along the line, on its right unless at the right edge
        ctx.save();
        ctx.textBaseline = x > box.left + box.width - 16 * px ? "bottom" : "top";
        ctx.translate(x + (ctx.textBaseline === "top" ? 3 : -3) * px, box.top + 4 * px);
        ctx.rotate(-Math.PI / 2);
        var label = b.alias + " (v" + b.version + ")", w = ctx.measureText(label).width;
        ctx.fillStyle = "rgba(255,255,255,0.8)";
        ctx.fillRect(-w - 2 * px, ctx.textBaseline === "top" ? 0 : -13 * px, w + 4 * px, 13 * px);
        ctx.fillStyle = COLORS.marker;
        ctx.fillText(label, 0, 0);
        ctx.restore();
      }
      drawn.push(b.alias);
    });
    ctx.restore();
    el.setAttribute("data-boundaries", String(drawn.length));
    el.setAttribute("data-boundary-aliases", drawn.join(","));
    el.setAttribute("data-x-min", String(Math.round(lo)));
    el.setAttribute("data-x-max", String(Math.round(hi)));
  }

  // On the gain panel: shade the window the price panel shows.
  function shadeWindow(u) {
    if (!price) return;
    var lo = Math.max(price.scales.x.min, u.scales.x.min), hi = Math.min(price.scales.x.max, u.scales.x.max);
    var x0 = u.valToPos(lo, "x", true), x1 = u.valToPos(hi, "x", true), box = u.bbox;
    u.ctx.save();
    u.ctx.fillStyle = COLORS.window;
    u.ctx.fillRect(x0, box.top, Math.max(1, x1 - x0), box.height);
    u.ctx.restore();
    gainEl.setAttribute("data-window-min", String(Math.round(price.scales.x.min)));
    gainEl.setAttribute("data-window-max", String(Math.round(price.scales.x.max)));
  }

  // What was drawn, read back from the uPlot instance (for people and for the browser test).
  function described(u, el) {
    var shown = u.series.slice(1).filter(function (s) { return s.show; }).map(function (s) { return s.label; });
    el.setAttribute("data-drawn", "1");
    el.setAttribute("data-series", shown.join("|"));
    el.setAttribute("data-bands", String((u.bands || []).length));
    if (el === priceEl) {
      el.setAttribute("data-close-points", String(count(u.data[1])));
      el.setAttribute("data-prediction-points", String(count(u.data[2])));
      el.setAttribute("data-band-points", String(hasBand ? both(u.data[3], u.data[4]) : 0));
    } else {
      var last = u.data[1][u.data[1].length - 1];
      el.setAttribute("data-gain-points", String(count(u.data[1])));
      el.setAttribute("data-gain-last", last === null ? "" : String(last));
    }
  }

  function options(height, series, extra, zooms) {
    var o = {
      width: width(),
      height: height,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      cursor: {
        // hover is shared; drags and double-clicks act on their own panel only
        sync: { key: "btcf", setSeries: false, filters: { pub: function (type) { return type === "mousemove" || type === "mouseleave" || type === "mouseenter"; } } },
        drag: { x: true, y: false, setScale: zooms }
      },
      scales: { x: { time: true } },
      axes: [{}, { size: 70, values: function (u, splits) { return splits.map(function (v) { return usd(u, v); }); } }],
      series: [{ label: "UTC" }].concat(series)
    };
    for (var k in extra) o[k] = extra[k];
    return o;
  }

  var hasBand = both(data.lower, data.upper) > 0;
  price = new uPlot(
    options(400, [
      { label: "BTC close", stroke: COLORS.close, width: 2, value: usd },
      { label: "prediction (median)", stroke: COLORS.prediction, width: 1.5, value: usd },
      { label: "90% quantile", stroke: COLORS.quantile, width: 0.5, value: usd, show: hasBand },
      { label: "10% quantile", stroke: COLORS.quantile, width: 0.5, value: usd, show: hasBand }
    ], {
      bands: hasBand ? [{ series: [3, 4], fill: COLORS.band }] : [],
      hooks: {
        draw: [function (u) { markers(u, priceEl, true); described(u, priceEl); }],
        setScale: [function (u, key) { if (key === "x" && gain) gain.redraw(false); }]
      }
    }, true),
    [t, data.close, data.prediction, data.upper, data.lower],
    priceEl
  );

  if (count(data.gain) > 0) {
    gain = new uPlot(
      options(220, [
        { label: "cumulative gain vs persistence (USD)", stroke: COLORS.gain, width: 1.5, fill: COLORS.gainFill,
          fillTo: 0, value: usd }
      ], {
        hooks: {
          draw: [function (u) { shadeWindow(u); markers(u, gainEl, false); described(u, gainEl); }],
          setSelect: [function (u) {  // a drag here picks the window shown above
            var sel = u.select;
            if (sel.width > 0) {
              setRange(u.posToVal(sel.left, "x"), u.posToVal(sel.left + sel.width, "x"));
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            }
          }]
        }
      }, false),
      [t, data.gain],
      gainEl
    );
  } else {
    gainEl.textContent = "No predictions, so no comparison with persistence.";
  }

  function setRange(min, max) {
    var span = Math.max(max - min, 3600 * 6);
    if (min < tMin) { min = tMin; max = Math.min(tMax, min + span); }
    if (max > tMax) { max = tMax; min = Math.max(tMin, max - span); }
    price.setScale("x", { min: min, max: max });
  }
  document.getElementById("range").addEventListener("click", function (e) {
    var b = e.target.closest("button");
    if (!b) return;
    var lo = price.scales.x.min, hi = price.scales.x.max;
    if (b.dataset.days !== undefined) {
      var days = Number(b.dataset.days);
      if (days > 0) setRange(hi - days * DAY, hi); else setRange(tMin, tMax);
    } else {
      var step = (hi - lo) / 2 * Number(b.dataset.shift);
      setRange(lo + step, hi + step);
    }
  });
  var asked = /days=(\d+)/.exec(location.hash);
  var days = asked ? Number(asked[1]) : DEFAULT_DAYS;
  setRange(days > 0 ? tMax - days * DAY : tMin, tMax);

  window.addEventListener("resize", function () {
    [price, gain].forEach(function (c) { if (c) c.setSize({ width: width(), height: c.height }); });
  });
  window.dashboardCharts = { price: price, gain: gain };
})();
