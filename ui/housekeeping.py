"""Cleaning up the app's folders on the server, without ever losing a saved run.

Each browser session writes under ``<runs root>/<session>/`` (:mod:`ui.session`):

- ``uploads/`` and ``buckets/`` are **temporary**: zips and checkpoints uploaded in the
  session, and the clips recorded into class buckets.  They are removed when the session
  ends (Streamlit drops its state a little after the tab closes: :func:`watch_session`
  registers a finaliser), except data that a saved run was trained on (so that run can be
  reopened and resumed), and by age (:data:`MAX_AGE_SECONDS`) in any case.
- ``run*/`` folders hold **saved runs** (``.pt`` + ``.json``): never removed here.  The Train
  page lists them and deletes one only when a person asks.  A run folder that never got a
  checkpoint, leftover temporary files of a killed save, and empty session folders go by
  age.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
import weakref
from pathlib import Path

import streamlit as st

__all__ = ["MAX_AGE_SECONDS", "TEMPORARY", "watch_session", "end_session", "prune", "referenced_data"]

#: Temporary data older than this is removed (saved runs never are).
MAX_AGE_SECONDS = 7 * 24 * 3600.0
#: Sub-folders of a session folder that hold temporary data.
TEMPORARY = ("uploads", "buckets")
#: Seconds between two prunes of the runs folder by one server process.
PRUNE_INTERVAL_SECONDS = 3600.0
_STALE_TMP_SECONDS = 3600.0
_KEY_MARKER = "_housekeeping_marker"
_lock = threading.Lock()
_last_prune = {"t": 0.0}


class _SessionMarker:
    """Lives in a session's state; its finaliser runs when Streamlit drops the session."""


def watch_session(folder: Path) -> None:
    """Once per session: clean ``folder``'s temporary data when the session ends; and, at most
    once an hour per process, :func:`prune` the whole runs folder."""
    ss = st.session_state
    if _KEY_MARKER not in ss:
        marker = _SessionMarker()
        weakref.finalize(marker, end_session, folder)
        ss[_KEY_MARKER] = marker
    with _lock:
        due = time.time() - _last_prune["t"] > PRUNE_INTERVAL_SECONDS
        if due:
            _last_prune["t"] = time.time()
    if due:
        prune(folder.parent)


def referenced_data(root: Path) -> set[Path]:
    """Data folders and files that saved runs were trained on (their cards' ``data_ref``)."""
    refs = set()
    for card_file in root.glob("*/*/*.json"):
        try:
            if card_file.stat().st_size > 256 * 1024:
                continue
            ref = json.loads(card_file.read_text()).get("data_ref")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(ref, str) and ".." not in Path(ref).parts:
            refs.add((root / ref).resolve())
    return refs


def _remove_unreferenced(folder: Path, keep: set[Path]) -> list[Path]:
    """Remove the entries of ``folder`` not in ``keep``; remove ``folder`` when it is left empty."""
    removed = []
    for entry in folder.iterdir() if folder.is_dir() else ():
        if entry.resolve() in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        removed.append(entry)
    with contextlib.suppress(OSError):
        folder.rmdir()  # only when empty
    return removed


def end_session(folder: Path) -> list[Path]:
    """A session ended: remove its temporary data except what a saved run was trained on."""
    keep = referenced_data(folder.parent)
    removed = []
    for name in TEMPORARY:
        removed += _remove_unreferenced(folder / name, keep)
    return removed


def _older(path: Path, seconds: float, now: float) -> bool:
    try:
        return now - path.stat().st_mtime > seconds
    except OSError:
        return False


def prune(root: Path, max_age_seconds: float = MAX_AGE_SECONDS, *, now: float | None = None) -> list[Path]:
    """Remove, under every session folder of ``root``: temporary data older than
    ``max_age_seconds``, run folders that never got a checkpoint and are that old, temporary
    files of a killed save older than an hour, and session folders left empty.  Never a
    ``.pt`` or its card.  Returns what was removed."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    for session in root.iterdir() if root.is_dir() else ():
        if not session.is_dir():
            continue
        for child in session.iterdir():
            if child.name in TEMPORARY and child.is_dir():
                old = {e.resolve() for e in child.iterdir() if not _older(e, max_age_seconds, now)}
                removed += _remove_unreferenced(child, old)
            elif child.is_dir():
                for tmp in child.glob(".*.tmp-*"):
                    if _older(tmp, _STALE_TMP_SECONDS, now):
                        with contextlib.suppress(OSError):
                            tmp.unlink()
                            removed.append(tmp)
                if not any(child.glob("*.pt")) and _older(child, max_age_seconds, now):
                    shutil.rmtree(child, ignore_errors=True)
                    removed.append(child)
        if not any(session.iterdir()) and _older(session, max_age_seconds, now):
            with contextlib.suppress(OSError):
                session.rmdir()
                removed.append(session)
    return removed
