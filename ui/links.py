"""Linked views: one zoom and one time crosshair across every time figure of a page.

Figures say what their x axis is in ``layout.meta`` (:data:`diffres.figures.TIME_LINK` for
seconds, :func:`diffres.figures.frame_link` for the classifier's output-frame columns); a small
script (``ui/assets/linked_views.js``, installed once per browser tab) then links them in the
browser: zooming one time figure zooms all of them, hovering one draws a crosshair at that
time in all of them, and hovering a column of the classifier's input shades the time it covers.
Browser-side on purpose: zoom and hover never reach Python, and a rerun per mouse move would be
far too slow.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import streamlit as st

_SCRIPT = Path(__file__).resolve().parent / "assets" / "linked_views.js"


@cache
def _script() -> str:
    return _SCRIPT.read_text(encoding="utf-8")


def install() -> None:
    """Install the linking script (idempotent in the browser; call once per run)."""
    st.html(f"<script>{_script()}</script>", unsafe_allow_javascript=True, width="content")
