"""Where a training run's clips come from: a built-in set, the user's buckets, or a zip.

Datasets are ``st.cache_resource`` (read-only arrays; trainers never mutate them): built-ins
shared across sessions, user zips and bucket folders per session.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import streamlit as st

import diffres
from diffres.datasets import AudioDataset
from ui.session import session_dir, slug


@dataclass
class DataSource:
    """Where a run's clips come from.

    Attributes:
        kind: ``"builtin"``, ``"zip"`` or ``"buckets"``.
        name: built-in name, zip file name or ``"my classes"``.
        key: cache key (name + options, or content digest).
        path: built-in name, or the zip / folder on disk that ``load_folder_dataset`` reads.
        max_files_per_class: quick-run subset (built-ins).
        description: one line for people.
    """

    kind: str
    name: str
    key: str
    path: str
    max_files_per_class: int | None = None
    description: str = ""


@st.cache_resource(max_entries=6, show_spinner=False)
def builtin_dataset(name: str, max_files_per_class: int | None) -> AudioDataset:
    """A built-in dataset (read-only arrays, shared across sessions; trainers never mutate it)."""
    from diffres.datasets import load_dataset

    return load_dataset(name, max_files_per_class=max_files_per_class)


@st.cache_resource(max_entries=8, show_spinner=False, scope="session")
def folder_dataset(key: str, path: str) -> AudioDataset:
    """A user zip or bucket folder, read once per content digest (per session)."""
    from diffres.datasets import load_folder_dataset

    return load_folder_dataset(path)


def dataset_loader(source: DataSource) -> Callable[[], AudioDataset]:
    """A picklable function of no arguments that loads ``source``'s dataset, for a training
    process (:class:`diffres.training.remote.RemoteTrainer`; this process's caches stay here)."""
    from diffres.datasets import load_dataset, load_folder_dataset

    if source.kind == "builtin":
        return partial(load_dataset, source.path, max_files_per_class=source.max_files_per_class)
    return partial(load_folder_dataset, source.path)


def load_source(source: DataSource) -> AudioDataset:
    """The dataset of ``source`` (cached)."""
    if source.kind == "builtin":
        return builtin_dataset(source.path, source.max_files_per_class)
    return folder_dataset(source.key, source.path)


class _NotBuilt(Exception):
    """A built-in set is not built yet (raised, so that the cache keeps no answer for it)."""


@st.cache_data(max_entries=32, show_spinner=False)
def _builtin_counts(name: str, max_files_per_class: int | None) -> dict[str, dict[str, int]]:
    from diffres.datasets import builtin_class_counts

    counts = builtin_class_counts(name, max_files_per_class=max_files_per_class)
    if counts is None:
        raise _NotBuilt(name)
    return counts


def class_counts(source: DataSource) -> dict[str, dict[str, int]] | None:
    """``{split: {class: clips}}`` of ``source`` without preparing a run: a built-in set's from
    its manifest (None while it is not built yet), the user's data from its (cached) dataset,
    None when that cannot be read (the error shows when training starts)."""
    try:
        if source.kind == "builtin":
            return _builtin_counts(source.path, source.max_files_per_class)
        return load_source(source).class_counts()
    except (_NotBuilt, diffres.DiffResError, MemoryError, OSError):
        return None


def save_zip(data: bytes, name: str) -> tuple[str, Path]:
    """Store an uploaded zip in the session folder; returns (digest, path)."""
    digest = hashlib.sha1(data).hexdigest()[:16]
    folder = session_dir() / "uploads"
    folder.mkdir(exist_ok=True)
    path = folder / f"{digest}-{slug(Path(name).stem)}.zip"
    if not path.is_file():
        path.write_bytes(data)
    return digest, path
