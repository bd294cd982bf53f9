"""Every page runs inside the entrypoint, ``app.py``: on a deep link to a fresh server too.

Streamlit's legacy multipage mode applies to an entrypoint with a ``pages/`` folder beside
it (this project's agreed layout): until some run of the process has called
``st.navigation``, a request for a page (a deep link such as ``/train`` on a freshly started
server, or every run under ``AppTest``) executes ``pages/<name>.py`` directly, without
``app.py``'s page config, sidebar and navigation.  Streamlit documents that calling
``st.navigation`` makes it ignore the ``pages/`` directory, and no configuration option
turns the legacy mode off before that first call.

So a page that finds itself running without the entrypoint (:func:`ensure_entrypoint`)
calls ``st.navigation`` with the app's own page list (:func:`app_pages`) and reruns: the
rerun executes ``app.py``, whose ``st.navigation`` routes to the same page (the page hash is
its URL path in both modes).  Only public API is used; the deep-link browser test and the
AppTest page tests (AppTest starts every run in the legacy mode) cover it.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Literal

import streamlit as st
from streamlit.navigation.page import StreamlitPage

_local = threading.local()

#: Navigation position of the app's page list.
POSITION: Literal["top"] = "top"


def app_pages() -> list[StreamlitPage]:
    """The app's pages, in navigation order (paths relative to ``app.py``)."""
    return [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/lessons.py", title="Lessons", icon=":material/school:"),
        st.Page("pages/spectrogram_lab.py", title="Spectrogram lab", icon=":material/graphic_eq:"),
        st.Page("pages/window_tradeoff.py", title="Window", icon=":material/view_week:"),
        st.Page("pages/adaptive_resolution.py", title="Adaptive resolution", icon=":material/compress:"),
        st.Page("pages/diffres_steps.py", title="How DiffRes computes", icon=":material/stairs:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/inspect.py", title="Inspect", icon=":material/search_insights:"),
    ]


class entrypoint_active:
    """Context manager ``app.py`` wraps around ``page.run()``."""

    def __enter__(self) -> entrypoint_active:
        _local.active = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _local.active = False


def ensure_entrypoint() -> None:
    """Call first in every page script: rerun through ``app.py`` when it was skipped."""
    if getattr(_local, "active", False):
        return
    st.navigation(app_pages(), position=POSITION)  # documented: from now on pages/ is not auto-run
    st.rerun()
