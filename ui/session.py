"""This session's identity and folder, and safe names for files in it.

Every run writes its checkpoints, and the Train page its uploads and bucket exports, under
``~/.cache/diffres-explorer/runs/<session>/`` (``$DIFFRES_RUNS_DIR/<session>/`` when set).
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import streamlit as st

from ui import housekeeping

#: Environment variable that moves the per-session runs folder (tests).
RUNS_DIR_ENV = "DIFFRES_RUNS_DIR"
DEFAULT_RUNS_ROOT = Path.home() / ".cache" / "diffres-explorer" / "runs"
KEY_SESSION = "train_session_id"


def session_id() -> str:
    ss = st.session_state
    if KEY_SESSION not in ss:
        ss[KEY_SESSION] = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]
    return str(ss[KEY_SESSION])


def runs_root() -> Path:
    """The folder holding every session's folder."""
    return Path(os.environ.get(RUNS_DIR_ENV) or DEFAULT_RUNS_ROOT).expanduser()


def session_dir() -> Path:
    path = runs_root() / session_id()
    path.mkdir(parents=True, exist_ok=True)
    housekeeping.watch_session(path)
    return path


def class_folder(name: str) -> str:
    """A safe folder name for a class that keeps what people typed where possible (spaces too)."""
    s = re.sub(r"[^\w .-]+", "_", str(name)).strip(" ._")
    return s[:60] or "class"


def slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-._")
    return s[:60] or "x"
