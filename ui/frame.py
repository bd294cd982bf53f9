"""Make sure every page runs inside the entrypoint (``app.py``), never on its own.

Streamlit still has its legacy multipage mode for apps with a ``pages/`` folder: until some
run of the process has called ``st.navigation``, a request for a page (a deep link on a
freshly started server, or every rerun under ``AppTest``) executes ``pages/<name>.py``
directly, without ``app.py``'s page config, sidebar and navigation.  ``app.py`` marks the
runs it wraps; a page that finds no mark switches the legacy mode off and reruns, so the
entrypoint runs and routes to the same page.
"""

from __future__ import annotations

import threading

import streamlit as st

_local = threading.local()


class entrypoint_active:
    """Context manager ``app.py`` wraps around ``page.run()``."""

    def __enter__(self):
        _local.active = True
        return self

    def __exit__(self, *exc):
        _local.active = False
        return False


def ensure_entrypoint() -> None:
    """Call first in every page script: rerun through ``app.py`` when it was skipped."""
    if getattr(_local, "active", False):
        return
    try:
        from streamlit.runtime.pages_manager import PagesManager

        PagesManager.uses_pages_directory = False
    except Exception:  # noqa: BLE001 - internal API moved: show the page without the frame
        return
    st.rerun()
