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

import logging
import os
import threading
from types import TracebackType
from typing import Literal

import streamlit as st
from streamlit.navigation.page import StreamlitPage

_local = threading.local()
logger = logging.getLogger("diffres.app")

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


#: Environment variable: ``1`` lets exceptions through :class:`guard` (set by tests/conftest.py).
RAISE_ENV = "DIFFRES_APP_RAISE"
#: The message of :func:`show_unexpected` (tests and benchmarks/attack.py look for it).
UNEXPECTED = "This page stopped on an unexpected error"


def show_unexpected(exc: BaseException) -> None:
    """The last line of defence: log the traceback for the server's operator and show one
    sentence instead of a traceback.  Expected failures never get here: pages catch the
    library's typed errors and say what to do."""
    if isinstance(exc, MemoryError):
        logger.error("out of memory on a page", exc_info=exc)
        st.error(
            "The server ran out of memory for this. Try a shorter clip, a smaller dataset or fewer settings at once.",
            icon=":material/memory:",
        )
        return
    logger.error("unexpected error on a page", exc_info=exc)
    message = str(exc).splitlines()[0][:300] if str(exc) else ""
    st.error(
        f"{UNEXPECTED} ({type(exc).__name__}{': ' + message if message else ''}). The details are in the "
        "server's log; reloading the page starts it afresh.",
        icon=":material/error:",
    )


class guard:
    """Context manager: an exception that escapes it becomes :func:`show_unexpected`'s message
    (Streamlit's own rerun and stop signals are not ``Exception``s and pass).  Wraps every page
    (:class:`entrypoint_active`) and every fragment, whose reruns do not pass through
    ``app.py``.  With ``DIFFRES_APP_RAISE=1`` (the test suite) the exception propagates, so a
    bug still fails a test instead of becoming a message."""

    def __enter__(self) -> guard:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if isinstance(exc, Exception) and os.environ.get(RAISE_ENV) != "1":
            show_unexpected(exc)
            return True
        return False


class entrypoint_active(guard):
    """Context manager ``app.py`` wraps around ``page.run()``: marks the entrypoint as active
    (:func:`ensure_entrypoint`) and guards the page (:class:`guard`)."""

    def __enter__(self) -> entrypoint_active:
        _local.active = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        _local.active = False
        return super().__exit__(exc_type, exc, tb)


def ensure_entrypoint() -> None:
    """Call first in every page script: rerun through ``app.py`` when it was skipped."""
    if getattr(_local, "active", False):
        return
    st.navigation(app_pages(), position=POSITION)  # documented: from now on pages/ is not auto-run
    st.rerun()
