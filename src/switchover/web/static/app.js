/* switchover dashboard: confirmation dialogs and live charts (htmx + uPlot, vendored). */
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    // error fragments (4xx) are shown where the request aimed, not dropped
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "[45]..", swap: true, error: false },
      { code: "...", swap: false },
    ];
    initCharts();
  });

  // confirmation dialogs ----------------------------------------------------------------
  document.body.addEventListener("htmx:afterSwap", function (ev) {
    var target = ev.detail.target;
    if (target.id === "dialog") {
      var dialog = target.querySelector("dialog");
      if (dialog && !dialog.open) dialog.showModal();
    }
    if (target.id === "flash") {
      closeDialog();
      clearTimeout(window.__flashTimer);
      window.__flashTimer = setTimeout(function () { target.innerHTML = ""; }, 8000);
    }
  });
  document.body.addEventListener("click", function (ev) {
    if (ev.target.closest("[data-close]")) closeDialog();
  });
  function closeDialog() {
    var dialog = document.querySelector("#dialog dialog");
    if (dialog) { dialog.close(); dialog.remove(); }
  }

  // charts ----------------------------------------------------------------------------------
  // Each chart is sized by a ResizeObserver on its box: boxes are all placed in the grid
  // first, then measured once the grid has its columns, then kept at their box's width.
  var COLORS = { legacy: "#4e79a7", candidate: "#f28e2b" };
  var EVENT_COLORS = { phase: "#2e7d32", hold: "#b26a00", rollback: "#c62828", change: "#667085" };
  var HEIGHT = 180;
  var CHARTS = [
    { key: "error_rate", title: "Error rate", unit: "%", scale: 100 },
    { key: "p95_ms", title: "p95 latency", unit: "ms", scale: 1 },
    { key: "fallback_rate", title: "Fallback rate", unit: "%", scale: 100 },
    { key: "calls", title: "Calls per step", unit: "", scale: 1, count: true },
  ];

  function initCharts() {
    var root = document.getElementById("charts");
    if (!root) return;
    var state = { plots: {}, timer: null, busy: false, last: null, resized: 0 };
    var grid = root.querySelector("[data-charts]");
    var status = root.querySelector("[data-chart-status]");
    var windowSel = root.querySelector("[data-chart-window]");
    var opSel = root.querySelector("[data-chart-operation]");
    window.switchoverCharts = state;

    var observer = new ResizeObserver(function (entries) {
      entries.forEach(function (entry) {
        var plot = state.plots[entry.target.dataset.chart];
        var w = Math.floor(entry.contentRect.width);
        if (plot && w > 0 && w !== plot.uplot.width) {
          plot.uplot.setSize({ width: w, height: HEIGHT });
          state.resized++;
        }
      });
    });

    function url() {
      var q = "?window=" + encodeURIComponent(windowSel.value);
      if (opSel.value) q += "&operation=" + encodeURIComponent(opSel.value);
      return root.dataset.url + q;
    }

    function specs(body) {
      var list = CHARTS.slice();
      // streams' time to first chunk: the series is there only when the window has streams
      if (body.series.ttfb_p95_ms) {
        list.splice(2, 0, { key: "ttfb_p95_ms", title: "p95 time to first chunk", unit: "ms", scale: 1 });
      }
      Object.keys(body.series.outcomes || {}).sort().forEach(function (name) {
        list.push({ key: "outcome:" + name, title: "Outcome: " + name + " per call", unit: "%", scale: 100, outcome: name });
      });
      return list;
    }

    function values(body, spec, side) {
      var s = spec.outcome ? body.series.outcomes[spec.outcome] : body.series[spec.key];
      var raw = (s && s[side]) || [];
      return raw.map(function (v) { return v === null || v === undefined ? null : v * spec.scale; });
    }

    // The bucket in progress is drawn apart, dashed from the last whole bucket: a count
    // is projected to a whole step, so a minute half gone is not drawn as a drop.
    function split(body, spec, side) {
      var all = values(body, spec, side);
      var n = all.length;
      var whole = all.slice(), partial = all.map(function () { return null; });
      if (body.partial_from !== null && body.partial_from !== undefined && n > 0) {
        var last = all[n - 1];
        if (spec.count) {
          // no call yet in the step just begun says nothing: no point rather than a zero
          var elapsed = Math.max(10, body.now - body.partial_from);
          last = !last ? null : elapsed < body.step_s ? last * body.step_s / elapsed : last;
        }
        whole[n - 1] = null;
        partial[n - 1] = last;
        if (n > 1) partial[n - 2] = all[n - 2];
      }
      return [whole, partial];
    }

    function thresholdsOf(spec) {
      var body = state.last;
      return ((body && body.thresholds) || []).filter(function (t) { return t.chart === spec.key; })
        .map(function (t) { return { value: t.value * spec.scale, label: t.label }; });
    }

    function drawMarks(u, spec) {
      var body = state.last;
      if (!body) return;
      var ctx = u.ctx, box = u.bbox, dpr = window.devicePixelRatio || 1;
      ctx.save();
      ctx.font = Math.round(10 * dpr) + "px system-ui, sans-serif";
      ctx.lineWidth = Math.max(1, dpr);
      thresholdsOf(spec).forEach(function (t) {
        var y = u.valToPos(t.value, "y", true);
        if (y < box.top || y > box.top + box.height) return;
        ctx.strokeStyle = "#c62828";
        ctx.setLineDash([6 * dpr, 4 * dpr]);
        ctx.beginPath(); ctx.moveTo(box.left, y); ctx.lineTo(box.left + box.width, y); ctx.stroke();
        ctx.fillStyle = "#c62828";
        ctx.textAlign = "right";
        ctx.fillText(t.label, box.left + box.width - 4 * dpr, y - 3 * dpr);
        ctx.textAlign = "left";
      });
      ctx.setLineDash([2 * dpr, 3 * dpr]);
      (body.events || []).forEach(function (ev) {
        var x = u.valToPos(ev.t, "x", true);
        if (x < box.left || x > box.left + box.width) return;
        ctx.strokeStyle = EVENT_COLORS[ev.kind] || "#667085";
        ctx.beginPath(); ctx.moveTo(x, box.top); ctx.lineTo(x, box.top + box.height); ctx.stroke();
        ctx.fillStyle = ctx.strokeStyle;
        ctx.fillText(ev.label, x + 3 * dpr, box.top + 10 * dpr);
      });
      ctx.restore();
    }

    function options(spec, width) {
      function side(name, partial) {
        return {
          label: partial ? name + " (in progress)" : name,
          stroke: COLORS[name], width: 2, spanGaps: false,
          dash: partial ? [5, 4] : undefined,
          points: partial ? { show: true, size: 6, fill: "#fff" } : undefined,
        };
      }
      return {
        width: width, height: HEIGHT,
        scales: {
          x: { time: true, range: function () { var b = state.last; return [b.since, b.until]; } },
          y: {
            range: function (u, min, max) {
              var top = max === null || max === undefined ? 0 : max;
              thresholdsOf(spec).forEach(function (t) { top = Math.max(top, t.value * 1.15); });
              if (!(top > 0)) top = spec.unit === "%" ? 1 : 10;
              return [0, top * 1.05];
            },
          },
        },
        series: [{}, side("legacy"), side("candidate"), side("legacy", true), side("candidate", true)],
        axes: [{}, { size: 56, values: function (u, vals) { return vals.map(function (v) { return fmt(v, spec.unit); }); } }],
        legend: { show: false },
        hooks: { draw: [function (u) { drawMarks(u, spec); }] },
      };
    }

    function noData(body, plot) {
      var t = body.totals || {};
      var missing = ["legacy", "candidate"].filter(function (s) { return !(t[s] && t[s].calls); });
      plot.empty.textContent = missing.length === 2 ? "No data yet"
        : missing.length ? "No data yet: " + missing[0] : "";
      plot.empty.hidden = missing.length === 0;
      plot.box.dataset.nodata = missing.join(" ");
    }

    function draw(body) {
      var list = specs(body), fresh = [];
      list.forEach(function (spec) {
        if (state.plots[spec.key]) return;
        var box = document.createElement("div");
        box.className = "chart";
        box.dataset.chart = spec.key;
        var h = document.createElement("h3");
        h.textContent = spec.title + (spec.unit ? " (" + spec.unit + ")" : "");
        var empty = document.createElement("div");
        empty.className = "nodata";
        empty.hidden = true;
        box.appendChild(h);
        box.appendChild(empty);
        state.plots[spec.key] = { box: box, empty: empty, spec: spec, uplot: null };
        fresh.push(spec.key);
      });
      var seen = {};
      list.forEach(function (spec) { seen[spec.key] = true; grid.appendChild(state.plots[spec.key].box); });
      Object.keys(state.plots).forEach(function (key) {
        if (!seen[key]) {
          var p = state.plots[key];
          observer.unobserve(p.box);
          if (p.uplot) p.uplot.destroy();
          p.box.remove();
          delete state.plots[key];
        }
      });
      // every box is in the grid now: its width is the column's
      list.forEach(function (spec) {
        var plot = state.plots[spec.key];
        var l = split(body, spec, "legacy"), c = split(body, spec, "candidate");
        var data = [body.t, l[0], c[0], l[1], c[1]];
        var points = values(body, spec, "legacy").concat(values(body, spec, "candidate"))
          .filter(function (v) { return v !== null; }).length;
        if (!plot.uplot) {
          plot.uplot = new uPlot(options(spec, Math.max(1, Math.floor(plot.box.clientWidth))), data, plot.box);
          observer.observe(plot.box);
        } else {
          plot.uplot.setData(data);
        }
        plot.box.dataset.points = String(points);
        noData(body, plot);
      });
    }

    function fmt(v, unit) {
      if (v === null || v === undefined) return "";
      if (unit === "%") return (Math.abs(v) < 10 ? v.toFixed(1) : v.toFixed(0)) + "%";
      if (unit === "ms") return v >= 1000 ? (v / 1000).toFixed(1) + "s" : v.toFixed(0);
      return String(Math.round(v));
    }

    function operations(list) {
      var have = Array.prototype.map.call(opSel.options, function (o) { return o.value; });
      (list || []).forEach(function (op) {
        if (have.indexOf(op) < 0) { var o = document.createElement("option"); o.value = op; o.textContent = op; opSel.appendChild(o); }
      });
    }

    function load() {
      if (state.busy) return;
      state.busy = true;
      fetch(url(), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (res) {
          if (!res.ok) { status.textContent = res.body.error ? res.body.error.message : "could not load the charts"; return; }
          operations(res.body.operations);
          state.last = res.body;
          draw(res.body);
          var t = res.body.totals || {};
          var calls = ((t.legacy && t.legacy.calls) || 0) + ((t.candidate && t.candidate.calls) || 0);
          status.textContent = calls + " calls in the window · updated " + new Date().toLocaleTimeString();
          root.dataset.loaded = "true";
        })
        .catch(function (e) { status.textContent = "the server did not answer; retrying"; if (window.console) console.warn(e); })
        .finally(function () { state.busy = false; });
    }

    windowSel.addEventListener("change", load);
    opSel.addEventListener("change", load);
    document.body.addEventListener("switchover-changed", load);
    load();
    state.timer = setInterval(load, (Number(root.dataset.refresh) || 5) * 1000);
  }
})();
