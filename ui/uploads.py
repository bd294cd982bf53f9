"""The one upload limit: ``server.maxUploadSize`` in ``.streamlit/config.toml``.

Every file uploader passes :func:`max_upload_mb` as its ``max_upload_size`` and every label or
message says :func:`limit_text`, so the widget refuses a larger file in the browser with its
own readable message ("File must be 50.0MB or smaller.") before the server would answer with
a bare HTTP 413.  A different limit is one line in the config (or ``--server.maxUploadSize``).
"""

from __future__ import annotations

import streamlit as st

__all__ = ["max_upload_mb", "limit_text"]


def max_upload_mb() -> int:
    """The server's upload limit in MB (``server.maxUploadSize``)."""
    return int(st.get_option("server.maxUploadSize"))


def limit_text() -> str:
    """``"up to 50 MB"``, for labels and help."""
    return f"up to {max_upload_mb()} MB"
