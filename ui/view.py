"""Chart output and the shared "time range to show" control (zoom at full resolution instead of
pooled columns)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from typing import Any, Literal, cast

import plotly
import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st
import streamlit.components.v1 as components_v1
from streamlit import config as st_config
from streamlit.delta_generator import DeltaGenerator

from diffres.figures.style import LAYOUT_TEMPLATE

_TEMPLATE = "diffres"
pio.templates[_TEMPLATE] = go.layout.Template(LAYOUT_TEMPLATE)


_PLOTLY_JS_DIR = Path(plotly.__file__).resolve().parent / "package_data"  # plotly.min.js of the installed plotly
# DIFFRES_CHARTS=streamlit draws with st.plotly_chart instead (benchmarks/bench_app_latency.py's A/B)
_IN_PLACE = os.environ.get("DIFFRES_CHARTS", "in_place") != "streamlit"


@cache
def _chart_component() -> Any:
    js = (Path(__file__).resolve().parent / "assets" / "chart_in_place.js").read_text(encoding="utf-8")
    return st.components.v2.component("diffres_chart", js=js, isolate_styles=False)


def _plotly_js_url() -> str:
    """Where the browser loads plotly.js from: the installed plotly package's own copy, served by
    Streamlit's static route for component files (registered per run: it needs a script run)."""
    served = components_v1.declare_component("plotly_js", path=str(_PLOTLY_JS_DIR))
    base = str(st_config.get_option("server.baseUrlPath") or "").strip("/")
    return f"{'/' + base if base else ''}/component/{served.name}/plotly.min.js"


def chart(
    fig: go.Figure,
    *,
    key: str,
    where: DeltaGenerator | None = None,
    config: dict[str, Any] | None = None,
    width: Literal["stretch", "content"] | int = "stretch",
) -> None:
    """Draw a plotly figure in the app's look (:data:`diffres.figures.style.LAYOUT_TEMPLATE`).

    Every chart goes through here.  The chart's identity is ``key``: a new figure under the same
    key is drawn into the same plot in the browser (``Plotly.react``, one draw), where
    ``st.plotly_chart`` would unmount and draw it twice.  The figure carries its own template,
    so the browser draws the JSON as sent.  ``where`` is a column or container (default: the
    current one); ``config`` is plotly.js's config (modebar, export options).
    """
    if not getattr(fig, "_diffres_look", False):  # a cached figure shared by sessions is set once
        fig.layout.template = _TEMPLATE
        fig._diffres_look = True
    if not _IN_PLACE:
        (where if where is not None else st).plotly_chart(fig, key=key, theme=None, width=width, config=config)
        return
    src = json.dumps(_plotly_js_url())
    plot_config = json.dumps({"displaylogo": False, **(config or {})})
    payload = f'{{"src":{src},"config":{plot_config},"figure":{pio.to_json(fig, validate=False)}}}'
    with where if where is not None else contextlib.nullcontext():
        _chart_component()(key=key, data=payload.encode("utf-8"), width=width)


def metric_row(gap: Literal["small", "medium", "large"] = "large") -> Callable[..., DeltaGenerator]:
    """``st.metric`` for one row of metrics that wraps onto a new line in a narrow window
    instead of cutting values off (each metric at its content width).

    Example: ``metric = metric_row(); metric("Frames", "1,001")``.
    """
    return partial(st.container(horizontal=True, wrap=True, gap=gap).metric, width="content")


def time_window(key: str, duration: float, digest: str, n_frames: int, max_columns: int) -> tuple[float, float] | None:
    """Range slider over the clip; returns ``(start, end)`` seconds, or None for the whole clip.

    Resets to the whole clip when the sound changes (a stale range could lie outside it); a
    range restored from a link (no sound seen yet) is kept when it fits the clip.  The value
    persists across pages (and so travels in the page's link, :mod:`ui.share`).
    """
    ss = st.session_state
    duration = max(0.01, round(float(duration), 2))
    seen = ss.get(f"_{key}_digest")
    value = ss.get(key)
    fits = isinstance(value, (tuple, list)) and len(value) == 2 and 0.0 <= min(value) < max(value) <= duration
    if (seen is not None and seen != digest) or not fits:
        ss[key] = (0.0, duration)
    ss[f"_{key}_digest"] = digest
    ss[f"_{key}_whole"] = (0.0, duration)  # the default, left out of the page's link
    pooled = n_frames > max_columns
    t0, t1 = cast(
        tuple[float, float],
        st.slider(
            "Time range shown (s)",
            0.0,
            duration,
            step=0.01,
            key=key,
            persist_state="session",
            help="Draw only this stretch of the clip. Wide views are pooled for display (loudest cell per pixel "
            "column); a narrow range shows every frame. Computation always uses the whole clip; plotly's own zoom "
            "(drag on the figure) only magnifies what was sent.",
        ),
    )
    if t1 - t0 < 0.01:
        t1 = min(duration, t0 + 0.01)
    if pooled and (t1 - t0) >= duration - 1e-9:
        st.caption(
            f"{n_frames:,} frames are shown as at most {max_columns:,} columns; narrow the time range to see "
            "every frame."
        )
    return None if (t0 <= 0.0 and t1 >= duration) else (t0, t1)
