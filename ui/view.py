"""Chart output and the shared "time range to show" control (zoom at full resolution instead of
pooled columns)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Literal, cast

import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from diffres.figures.style import LAYOUT_TEMPLATE

_TEMPLATE = "diffres"
pio.templates[_TEMPLATE] = go.layout.Template(LAYOUT_TEMPLATE)


def chart(fig: go.Figure, *, key: str, where: DeltaGenerator | None = None, **kwargs: Any) -> None:
    """Draw a plotly figure in the app's look (:data:`diffres.figures.style.LAYOUT_TEMPLATE`).

    Every chart goes through here: ``theme=None`` (the figure carries its own template, so
    the browser draws the JSON as sent), ``width="stretch"`` unless given.  ``where`` is a
    column or container (default: the current one).
    """
    if not getattr(fig, "_diffres_look", False):  # a cached figure shared by sessions is set once
        fig.layout.template = _TEMPLATE
        fig._diffres_look = True
    kwargs.setdefault("width", "stretch")
    (where if where is not None else st).plotly_chart(fig, key=key, theme=None, **kwargs)


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
