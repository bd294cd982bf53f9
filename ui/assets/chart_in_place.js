// One plotly chart, updated in place (ui/view.py's chart component).
//
// Streamlit's own plotly element gives a chart a new identity whenever its figure changes, so
// every changed chart is unmounted, mounted and drawn twice. Here the element's identity is its
// key: each new figure for that key reaches this function with the same parent element, and
// Plotly.react redraws the same plot once.
//
// data (bytes, UTF-8 JSON): {"src": URL of plotly.min.js, "config": {...}, "figure": {data, layout}}.
// plotly.js is loaded once per browser tab from the plotly package installed next to the app.

const decoder = new TextDecoder();

function loadPlotly(src) {
  if (window.Plotly && window.Plotly.react) return Promise.resolve(window.Plotly);
  if (!window.__diffresPlotly) {
    window.__diffresPlotly = new Promise((resolve, reject) => {
      const tag = document.createElement("script");
      tag.src = src;
      tag.async = true;
      tag.onload = () => resolve(window.Plotly);
      tag.onerror = () => {
        window.__diffresPlotly = null;
        reject(new Error(`plotly.js did not load from ${src}`));
      };
      document.head.appendChild(tag);
    });
  }
  return window.__diffresPlotly;
}

async function drawLatest(gd) {
  // one draw at a time per chart; figures that arrive meanwhile collapse into the newest
  gd.__diffresBusy = true;
  try {
    while (gd.__diffresNext && !gd.__diffresGone) {
      const spec = gd.__diffresNext;
      gd.__diffresNext = null;
      const plotly = await loadPlotly(spec.src);
      if (gd.__diffresGone) break;
      await plotly.react(gd, spec.figure.data || [], spec.figure.layout || {}, spec.config || {});
    }
  } catch (err) {
    gd.textContent = `This chart could not be drawn: ${err && err.message ? err.message : err}`;
  } finally {
    gd.__diffresBusy = false;
  }
}

function followWidth(gd) {
  // the plot follows its container's width (sidebar toggles, tabs and expanders opening),
  // not only the window's: one resize per frame at most
  let frame = 0;
  let width = gd.clientWidth;
  const observer = new ResizeObserver(() => {
    if (frame || gd.clientWidth === width) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      width = gd.clientWidth;
      if (window.Plotly && gd._fullLayout && !gd.__diffresGone) window.Plotly.Plots.resize(gd);
    });
  });
  observer.observe(gd);
  return observer;
}

export default function ({ parentElement, data }) {
  let gd = parentElement.querySelector(":scope > .diffres-chart");
  if (!gd) {
    gd = document.createElement("div");
    gd.className = "diffres-chart";
    parentElement.appendChild(gd);
    gd.__diffresObserver = followWidth(gd);
  }
  if (data) {
    gd.__diffresNext = JSON.parse(typeof data === "string" ? data : decoder.decode(data));
    if (!gd.__diffresBusy) drawLatest(gd);
  }
  return () => {
    gd.__diffresGone = true;
    gd.__diffresObserver.disconnect();
    if (window.Plotly) window.Plotly.purge(gd);
  };
}
