"""A shared "time range to show" control: zoom at full resolution instead of pooled columns."""

from __future__ import annotations

from typing import cast

import streamlit as st


def time_window(key: str, duration: float, digest: str, n_frames: int, max_columns: int) -> tuple[float, float] | None:
    """Range slider over the clip; returns ``(start, end)`` seconds, or None for the whole clip.

    Resets to the whole clip when the sound changes (a stale range could lie outside it).
    """
    ss = st.session_state
    duration = max(0.01, round(float(duration), 2))
    if ss.get(f"_{key}_digest") != digest or not isinstance(ss.get(key), (tuple, list)) or max(ss[key]) > duration:
        ss[key] = (0.0, duration)
        ss[f"_{key}_digest"] = digest
    pooled = n_frames > max_columns
    t0, t1 = cast(
        tuple[float, float],
        st.slider(
            "Time range shown (s)",
            0.0,
            duration,
            step=0.01,
            key=key,
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
