"""Runs found on disk: the Train page's checkpoints from earlier sessions (a reload starts a
new session, but the files stay), listed, reopened and resumed, or deleted on request.

A run's card says where its data came from (``data_kind``, ``data_key``, ``dataset`` and,
for the user's own data, ``data_ref``: the zip or bucket folder relative to the runs
folder), so reopening rebuilds the :class:`~ui.data_sources.DataSource`, and
:func:`ui.runs.prepare` resumes the trainer from the checkpoint with it.  Cards are untrusted
files like any other: they are checked with :func:`diffres.cards.parse_card` and a bad one
is listed as unreadable, never shown raw.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

import diffres
from diffres.cards import MAX_CARD_BYTES, parse_card
from diffres.datasets import BUILTIN_DATASETS, DATASET_INFO
from diffres.training import TrainConfig
from ui import runs as R
from ui.data_sources import DataSource
from ui.session import runs_root, session_id

__all__ = ["DiskRun", "find", "reopen", "delete", "source_of"]

#: Most runs listed.
MAX_LISTED = 12


@dataclass(frozen=True)
class DiskRun:
    """A saved run on disk.

    Attributes:
        path: its ``.pt``.
        card: its checked model card (``{}`` when the card is unreadable: ``problem`` says why).
        session: the session folder it was saved in.
        modified: seconds since the epoch of the last save.
        problem: why it cannot be reopened ("" when it can).
    """

    path: Path
    card: dict[str, Any]
    session: str
    modified: float
    problem: str = ""

    @property
    def this_session(self) -> bool:
        return self.session == session_id()

    @property
    def label(self) -> str:
        return str(self.card.get("run") or self.path.stem)

    @property
    def progress(self) -> str:
        planned = (self.card.get("training") or {}).get("epochs")
        done = self.card.get("epochs")
        if self.card.get("complete"):
            return f"complete, {done} epochs"
        return f"epoch {done} of {planned}" if planned else f"epoch {done}"


def source_of(card: dict[str, Any]) -> DataSource | None:
    """The data source a run was trained on, rebuilt from its card; None when that data is
    no longer on the server (the user's uploads are temporary)."""
    kind, name = card.get("data_kind"), card.get("dataset")
    training = card.get("training") or {}
    if kind == "builtin" and name in BUILTIN_DATASETS:
        quick = training.get("max_files_per_class")
        quick = quick if isinstance(quick, int) and quick > 0 else None
        description = DATASET_INFO[name]["description"]
        return DataSource("builtin", name, f"builtin:{name}:{quick or 0}", name, quick, description)
    ref = card.get("data_ref")
    if kind in ("zip", "buckets") and isinstance(ref, str) and ".." not in Path(ref).parts:
        path = runs_root() / ref
        if path.exists():
            key = str(card.get("data_key") or f"{kind}:{path.name}")
            description = f"Your data from run {card.get('run')}."
            return DataSource(kind, str(name or path.stem), key, str(path), None, description)
    return None


def _read(pt: Path) -> DiskRun:
    card_file = pt.with_suffix(".json")
    try:
        modified = pt.stat().st_mtime
        if card_file.stat().st_size > MAX_CARD_BYTES:
            raise diffres.CheckpointError("its model card is too large")
        card = parse_card(card_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        return DiskRun(pt, {}, pt.parent.parent.name, 0.0, f"its model card cannot be read ({type(err).__name__})")
    except diffres.CheckpointError as err:
        return DiskRun(pt, {}, pt.parent.parent.name, modified, f"its model card is unusable: {err}")
    problem = ""
    if source_of(card) is None:
        problem = "the data it was trained on is no longer on the server (it can still be downloaded)"
    elif not isinstance(card.get("training"), dict):
        problem = "it holds no training settings (saved for inference only)"
    return DiskRun(pt, card, pt.parent.parent.name, modified, problem)


def find(limit: int = MAX_LISTED) -> list[DiskRun]:
    """Saved runs under the runs folder (every session), newest first, except those open in
    this session."""
    open_now = {str(r.checkpoint) for r in R.runs().values() if r.checkpoint is not None}
    found = []
    root = runs_root()
    for pt in root.glob("*/*/*.pt") if root.is_dir() else ():
        if str(pt) not in open_now:
            found.append(_read(pt))
    found.sort(key=lambda d: -d.modified)
    return found[:limit]


def reopen(entry: DiskRun) -> R.Run | None:
    """Make ``entry`` this session's active run (it resumes from its checkpoint when prepared;
    see :func:`ui.runs.prepare`); None when it cannot be reopened."""
    source = source_of(entry.card)
    if entry.problem or source is None:
        return None
    try:
        config = TrainConfig.from_dict(entry.card["training"])
    except (diffres.DiffResError, TypeError, KeyError):
        return None
    reg = R.runs()
    number = 1 + max((r.number for r in reg.values()), default=0)
    rid = f"run{number:02d}-{uuid.uuid4().hex[:6]}"
    run = R.Run(
        rid, number, config, source, entry.path.parent, status="paused", resume_from=entry.path, remote=R.serving()
    )
    reg[rid] = run
    st.session_state[R.KEY_ACTIVE] = rid
    st.session_state[R.KEY_PINNED] = (rid, None)
    return run


def delete(entry: DiskRun) -> None:
    """Delete a saved run's checkpoint and card (only on a person's request), and its folder
    when that leaves it empty."""
    for p in (entry.path, entry.path.with_suffix(".json")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    with contextlib.suppress(OSError):
        entry.path.parent.rmdir()


def age(entry: DiskRun) -> str:
    seconds = max(0.0, time.time() - entry.modified)
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


# --------------------------------------------------------------------------- widgets


def _reopen(entry: DiskRun) -> None:
    ss = st.session_state
    ss["_train_skip_chunk"] = True
    if reopen(entry) is None:
        ss["_disk_runs_error"] = f"{entry.label} cannot be reopened: {entry.problem or 'its settings are unusable'}."


def _delete(entry: DiskRun) -> None:
    st.session_state["_train_skip_chunk"] = True
    delete(entry)
    st.session_state["_disk_runs_note"] = f"Deleted {entry.path.name} and its model card."


def section() -> None:
    """The Train page's "Runs on disk": every saved run not open in this session, with
    Reopen (continue training it), Download and Delete (asks first)."""
    ss = st.session_state
    found = find()
    if not found:
        if ss.get("_disk_runs_note"):
            st.success(ss.pop("_disk_runs_note"))
        return
    st.subheader("Runs on disk")
    st.caption(
        "Checkpoints saved on this server, newest first, also from before a reload (each browser session has its "
        "own folder). **Reopen** loads a run with its own settings and data so Play continues it; nothing is "
        "deleted unless you ask."
    )
    for message, show in (("_disk_runs_error", st.error), ("_disk_runs_note", st.success)):
        if ss.get(message):
            show(ss.pop(message))
    for k, entry in enumerate(found):
        c = st.container(horizontal=True, vertical_alignment="center")  # the buttons wrap, never truncate
        text = c.container(width="stretch")
        where = "this session" if entry.this_session else f"session {entry.session[:15]}"
        if entry.card:
            text.markdown(
                f"**{entry.label}** · {entry.card.get('dataset', '?')} · {entry.card.get('frontend', '?')} · "
                f"{entry.progress} · {where}, {age(entry)}"
            )
        else:
            text.markdown(f"**{entry.path.name}** · {where}")
        if entry.problem:
            text.caption(f"Cannot be reopened: {entry.problem}.")
        c.button(
            "Reopen",
            key=f"disk_reopen_{k}",
            icon=":material/history:",
            on_click=_reopen,
            args=(entry,),
            disabled=bool(entry.problem),
            help="Load this run (weights, optimiser, history) to look at it or continue training it.",
        )
        c.download_button(
            "Download",
            data=entry.path.read_bytes if entry.path.is_file() else b"",
            file_name=entry.path.name,
            mime="application/octet-stream",
            key=f"disk_dl_{k}",
            on_click="ignore",
            icon=":material/download:",
        )
        with c.popover("Delete", icon=":material/delete:"):
            st.markdown(f"Delete **{entry.path.name}** and its model card for good?")
            st.button("Delete for good", key=f"disk_del_{k}", type="primary", on_click=_delete, args=(entry,))
