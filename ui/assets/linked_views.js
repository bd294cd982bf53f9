// Linked views for DiffRes Explorer (installed once per browser tab by ui/links.py).
//
// Every plotly figure whose layout.meta.link is "time" (x axes in seconds):
//   - zooming or panning one zooms all of them (double-click resets all);
//   - hovering one draws a time crosshair in all of them.
// A figure whose layout.meta.link is "frames" (the classifier's view, one column per output
// frame, meta.spans[j] = [t0, t1] seconds): hovering column j shades the time it covers in
// every time figure.
// Uses window.Plotly, which ui/assets/chart_in_place.js loads once per tab; nothing else.
(() => {
  if (window.__diffresLinks) return;
  window.__diffresLinks = { version: 1 };
  const CROSS = "diffres-crosshair";
  const SPAN = "diffres-span";
  let syncing = false;
  let pending = null;

  const plotly = () => window.Plotly;
  const linked = (kind) =>
    Array.from(document.querySelectorAll(".js-plotly-plot")).filter(
      (gd) => gd.layout && gd.layout.meta && gd.layout.meta.link === kind
    );
  const xAxes = (gd) => Object.keys(gd.layout).filter((k) => /^xaxis\d*$/.test(k));

  function rangeOf(ev) {
    let r0, r1, auto = false;
    for (const [k, v] of Object.entries(ev || {})) {
      let m = k.match(/^xaxis\d*\.range\[(0|1)\]$/);
      if (m) { if (m[1] === "0") r0 = v; else r1 = v; }
      m = k.match(/^xaxis\d*\.range$/);
      if (m && Array.isArray(v)) { r0 = v[0]; r1 = v[1]; }
      if (/^xaxis\d*\.autorange$/.test(k) && v) auto = true;
    }
    return r0 !== undefined && r1 !== undefined ? { range: [r0, r1] } : auto ? { auto } : null;
  }

  function onZoom(gd, ev) {
    if (syncing || !plotly()) return;
    const r = rangeOf(ev);
    if (!r) return;
    syncing = true;
    const jobs = linked("time").filter((o) => o !== gd).map((o) => {
      const upd = {};
      for (const ax of xAxes(o)) {
        if (r.auto) upd[ax + ".autorange"] = true;
        else upd[ax + ".range"] = r.range.slice();
      }
      return plotly().relayout(o, upd);
    });
    Promise.allSettled(jobs).then(() => { syncing = false; });
  }

  function setMarks(name, shape) {
    // replace our shape (by name) in every time figure, keeping the figure's own shapes
    for (const o of linked("time")) {
      const own = (o.layout.shapes || []).filter((s) => s.name !== name);
      const next = shape ? own.concat([Object.assign({ name, xref: "x", yref: "paper" }, shape)]) : own;
      if (!shape && own.length === (o.layout.shapes || []).length) continue;
      plotly().relayout(o, { shapes: next });
    }
  }

  function later(fn) {
    pending = fn;
    requestAnimationFrame(() => { const f = pending; pending = null; if (f) f(); });
  }

  function onHover(gd, ev) {
    if (!plotly() || !ev || !ev.xvals || !ev.xvals.length) return;
    const x = Number(ev.xvals[0]);
    if (gd.layout.meta.link === "time") {
      later(() => setMarks(CROSS, { type: "line", x0: x, x1: x, y0: 0, y1: 1,
        line: { color: "rgba(0,150,255,0.8)", width: 1, dash: "dot" } }));
    } else {
      const spans = gd.layout.meta.spans || [];
      const j = Math.min(spans.length - 1, Math.max(0, Math.floor(x + 1e-9)));
      if (!spans.length) return;
      later(() => setMarks(SPAN, { type: "rect", x0: spans[j][0], x1: spans[j][1], y0: 0, y1: 1,
        fillcolor: "rgba(0,150,255,0.22)", line: { width: 0 }, layer: "above" }));
    }
  }

  function onUnhover(gd) {
    later(() => setMarks(gd.layout.meta.link === "time" ? CROSS : SPAN, null));
  }

  function bind() {
    for (const gd of document.querySelectorAll(".js-plotly-plot")) {
      if (gd.__diffresBound || !gd.on || !gd.layout || !gd.layout.meta || !gd.layout.meta.link) continue;
      gd.__diffresBound = true;
      gd.on("plotly_relayout", (ev) => { if (gd.layout.meta.link === "time") onZoom(gd, ev); });
      gd.on("plotly_hover", (ev) => onHover(gd, ev));
      gd.on("plotly_unhover", () => onUnhover(gd));
    }
  }
  setInterval(bind, 500);
  bind();
})();
