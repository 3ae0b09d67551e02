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
  var COLORS = { legacy: "#4e79a7", candidate: "#f28e2b" };
  var CHARTS = [
    { key: "error_rate", title: "Error rate", unit: "%", scale: 100 },
    { key: "p95_ms", title: "p95 latency", unit: "ms", scale: 1 },
    { key: "fallback_rate", title: "Fallback rate", unit: "%", scale: 100 },
    { key: "calls", title: "Calls per step", unit: "", scale: 1 },
  ];

  function initCharts() {
    var root = document.getElementById("charts");
    if (!root) return;
    var state = { plots: {}, timer: null, busy: false };
    var grid = root.querySelector("[data-charts]");
    var status = root.querySelector("[data-chart-status]");
    var windowSel = root.querySelector("[data-chart-window]");
    var opSel = root.querySelector("[data-chart-operation]");
    window.switchoverCharts = state;

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

    function width(el) { return Math.max(200, Math.floor(el.clientWidth || 300)); }

    function draw(body) {
      var seen = {};
      specs(body).forEach(function (spec) {
        seen[spec.key] = true;
        var data = [body.t, values(body, spec, "legacy"), values(body, spec, "candidate")];
        var points = data[1].concat(data[2]).filter(function (v) { return v !== null; }).length;
        var plot = state.plots[spec.key];
        if (!plot) {
          var box = document.createElement("div");
          box.className = "chart";
          box.dataset.chart = spec.key;
          var h = document.createElement("h3");
          h.textContent = spec.title + (spec.unit ? " (" + spec.unit + ")" : "");
          box.appendChild(h);
          grid.appendChild(box);
          var opts = {
            width: width(box), height: 180,
            scales: { x: { time: true } },
            series: [
              {},
              { label: "legacy", stroke: COLORS.legacy, width: 2, spanGaps: false },
              { label: "candidate", stroke: COLORS.candidate, width: 2, spanGaps: false },
            ],
            axes: [{}, { size: 56, values: function (u, vals) { return vals.map(function (v) { return fmt(v, spec.unit); }); } }],
            legend: { live: false },
          };
          plot = { box: box, uplot: new uPlot(opts, data, box) };
          state.plots[spec.key] = plot;
        } else {
          plot.uplot.setData(data);
        }
        plot.box.dataset.points = String(points);
      });
      Object.keys(state.plots).forEach(function (key) {
        if (!seen[key]) { state.plots[key].uplot.destroy(); state.plots[key].box.remove(); delete state.plots[key]; }
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
          draw(res.body);
          state.last = res.body;
          var t = res.body.totals || {};
          var calls = ((t.legacy && t.legacy.calls) || 0) + ((t.candidate && t.candidate.calls) || 0);
          status.textContent = calls + " calls in the window · updated " + new Date().toLocaleTimeString();
          root.dataset.loaded = "true";
        })
        .catch(function () { status.textContent = "the server did not answer; retrying"; })
        .finally(function () { state.busy = false; });
    }

    windowSel.addEventListener("change", load);
    opSel.addEventListener("change", load);
    window.addEventListener("resize", function () {
      Object.keys(state.plots).forEach(function (k) {
        var p = state.plots[k]; p.uplot.setSize({ width: width(p.box), height: 180 });
      });
    });
    document.body.addEventListener("switchover-changed", load);
    load();
    state.timer = setInterval(load, (Number(root.dataset.refresh) || 5) * 1000);
  }
})();
