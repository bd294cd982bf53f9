"""Datasets: the generated built-ins (``events``, ``digits``, ``instruments``, ``drums``,
``rhythms``),
user folders and zips, fixed train/val/test splits, and the on-disk cache.

Typical use::

    from diffres.datasets import load_dataset
    ds = load_dataset("events", seed=0)          # builds into the cache the first time
    x, y = ds.splits["train"].waveforms, ds.splits["train"].labels   # [N, n_samples], [N]

Built-in datasets are generated locally and deterministically from ``seed`` (no downloads;
sources in each generator module's docstring and ``DATASET_INFO[name]["description"]``).
``load_dataset`` also accepts a built dataset folder (with ``manifest.json``), a folder with
one sub-folder per class, or a ``.zip`` of one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import DatasetError, ParameterError
from . import digits, events, rhythms, soundfonts
from ._common import SAMPLE_RATE, ProgressFn
from .base import AudioDataset, Split
from .cache import MANIFEST, build, built_class_counts, cache_root, dataset_dir, load_built, read_manifest
from .folders import FOLDER_BUDGET, ZIP_BUDGET, DatasetBudget, load_folder_dataset
from .zips import (
    DEFAULT_MAX_ARCHIVE_BYTES,
    DEFAULT_MAX_ENTRIES,
    DEFAULT_MAX_RATIO,
    extract_zip_safely,
    prune_extractions,
)

__all__ = [
    "BUILTIN_DATASETS",
    "DATASET_INFO",
    "AudioDataset",
    "Split",
    "build_dataset",
    "builtin_class_counts",
    "export_dataset",
    "load_dataset",
    "load_folder_dataset",
    "extract_zip_safely",
    "prune_extractions",
    "DatasetBudget",
    "ZIP_BUDGET",
    "FOLDER_BUDGET",
    "dataset_path",
    "is_built",
    "cache_root",
    "DEFAULT_MAX_ARCHIVE_BYTES",
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_RATIO",
]

_GENERATORS: dict[str, Any] = {
    "events": events,
    "digits": digits,
    "instruments": soundfonts.INSTRUMENTS,
    "drums": soundfonts.DRUMS,
    "rhythms": rhythms,
}

BUILTIN_DATASETS: dict[str, list[str]] = {name: list(g.CLASSES) for name, g in _GENERATORS.items()}
"""Built-in dataset name -> class names in their fixed (label) order (scripts and the shipped
checkpoints rely on it)."""

DATASET_INFO: dict[str, dict[str, Any]] = {
    name: {
        "clip_seconds": float(g.CLIP_SECONDS),
        "description": g.DESCRIPTION,
        "needs_system_packages": list(g.NEEDS),
        "n_per_class": int(g.DEFAULT_N_PER_CLASS),
        "version": int(g.VERSION),
        "split": g.SPLIT_POLICY,
    }
    for name, g in _GENERATORS.items()
}
"""Per built-in name: ``clip_seconds``, ``description``, ``needs_system_packages`` (apt names),
``n_per_class`` (default clips per class), ``version`` (cache key), ``split`` (how the
held-out splits are chosen)."""


def _generator(name: str) -> Any:
    if not isinstance(name, str) or name not in _GENERATORS:
        raise DatasetError(
            f"unknown built-in dataset {name!r}; choose one of {', '.join(_GENERATORS)} "
            "or give a folder with one sub-folder per class"
        )
    return _GENERATORS[name]


def dataset_path(name: str, *, seed: int = 0, n_per_class: int | None = None) -> Path:
    """Cache directory where :func:`build_dataset` puts ``name`` (it may not exist yet)."""
    return dataset_dir(_generator(name), seed, n_per_class)


def is_built(name: str, *, seed: int = 0, n_per_class: int | None = None) -> bool:
    """True when the cache already holds a complete build (its manifest exists)."""
    return (dataset_path(name, seed=seed, n_per_class=n_per_class) / MANIFEST).is_file()


def builtin_class_counts(
    name: str, *, seed: int = 0, max_files_per_class: int | None = None
) -> dict[str, dict[str, int]] | None:
    """``{split: {class: count}}`` of a built-in dataset as :func:`load_dataset` with the same
    ``seed`` and ``max_files_per_class`` would return it, from the cache's manifest (no audio
    is read, nothing is built); None while the dataset is not built yet.

    Example:
        >>> counts = builtin_class_counts("events", max_files_per_class=10)
        >>> counts is None or sum(counts["train"].values()) + sum(counts["val"].values()) <= 80
        True
    """
    if not is_built(name, seed=seed):
        return None
    return built_class_counts(dataset_path(name, seed=seed), max_files_per_class=max_files_per_class)


def build_dataset(
    name: str,
    out_dir: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    progress: ProgressFn | None = None,
    n_per_class: int | None = None,
) -> Path:
    """Generate a built-in dataset into the cache (or ``out_dir``) and return the directory.

    Args:
        name: one of :data:`BUILTIN_DATASETS`.
        out_dir: target folder; default ``cache_root()/<name>-v<version>-seed<seed>[-n<n>]``.
        seed: int; the same seed gives byte-identical clips and the same splits.
        progress: ``progress(done, total, message)`` called as clips are written.
        n_per_class: clips per class (default ``DATASET_INFO[name]["n_per_class"]``); small
            values build tiny versions for tests.

    Returns:
        The directory holding ``<class>/<clip_id>.wav`` and ``manifest.json``.

    Raises:
        DatasetError: unknown name, or a system package is missing (the message names the
            apt package to install).

    Restartable: clips already on disk are kept; the manifest is written last, atomically.
    """
    gen = _generator(name)
    return build(gen, None if out_dir is None else Path(out_dir), seed=seed, n_per_class=n_per_class, progress=progress)


def export_dataset(
    name: str,
    out_dir: str | os.PathLike,
    *,
    split: str | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
    n_per_class: int | None = None,
) -> Path:
    """Write a built-in dataset as ``out_dir/<class>/<clip_id>.wav`` (what
    ``python -m diffres datasets build NAME --out DIR`` does).

    Builds into the cache first if needed, then copies the clips. ``split`` (``"train"``,
    ``"val"``, ``"test"``) keeps only that split, e.g. so ``evaluate --data DIR`` measures the
    held-out test set. A ``manifest.json`` of the exported clips is written too.
    Returns ``out_dir``.
    """
    if split is not None and split not in ("train", "val", "test"):
        raise ParameterError(f"split must be None, 'train', 'val' or 'test', got {split!r}")
    src = build_dataset(name, seed=seed, progress=progress, n_per_class=n_per_class)
    manifest = read_manifest(src)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for c in manifest["classes"]:
        (out / c).mkdir(exist_ok=True)
    clips = [c for c in manifest["clips"] if split is None or c["split"] == split]
    for k, clip in enumerate(clips):
        dst = out / clip["path"]
        if not dst.is_file() or dst.stat().st_size != (src / clip["path"]).stat().st_size:
            shutil.copyfile(src / clip["path"], dst)
        if progress is not None and k % 100 == 0:
            progress(k, len(clips), f"exporting to {out}")
    from .cache import write_json_atomic

    # a full export keeps its manifest (so loading DIR keeps the held-out splits); a one-split
    # export gets a differently named record so DIR loads as a plain class-folder dataset
    exported = dict(manifest, clips=clips, exported_split=split)
    write_json_atomic(out / (MANIFEST if split is None else "diffres-export.json"), exported)
    if progress is not None:
        progress(len(clips), len(clips), f"exported {len(clips)} clips to {out}")
    return out


def load_dataset(
    name_or_dir: str | os.PathLike,
    *,
    sample_rate: int = SAMPLE_RATE,
    seed: int = 0,
    progress: ProgressFn | None = None,
    max_files_per_class: int | None = None,
    n_per_class: int | None = None,
) -> AudioDataset:
    """Load a dataset for training: arrays per split, every clip ``clip_seconds`` long.

    Args:
        name_or_dir: a built-in name (built into the cache on first use), a built dataset
            folder (with ``manifest.json``), a folder with one sub-folder of audio per class,
            or a ``.zip`` of such a folder.
        sample_rate: Hz of the returned waveforms.
        seed: generation seed for built-ins; split seed for user folders.
        progress: ``progress(done, total, message)``.
        max_files_per_class: keep at most this many clips per class (spread over the splits).
        n_per_class: built-ins only: generate this many clips per class (tiny test builds).

    Returns:
        :class:`AudioDataset`.

    Raises:
        DatasetError: unknown name, missing system package, unusable folder or zip.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not 4000 <= sample_rate <= 96000:
        raise ParameterError(f"sample_rate must be an integer in [4000, 96000] Hz, got {sample_rate!r}")
    if max_files_per_class is not None and (
        isinstance(max_files_per_class, bool) or not isinstance(max_files_per_class, int) or max_files_per_class < 2
    ):
        raise ParameterError(f"max_files_per_class must be None or an integer >= 2, got {max_files_per_class!r}")
    if isinstance(name_or_dir, str) and name_or_dir in _GENERATORS:
        directory = build_dataset(name_or_dir, seed=seed, progress=progress, n_per_class=n_per_class)
        return load_built(
            directory, sample_rate=sample_rate, max_files_per_class=max_files_per_class, progress=progress
        )
    path = Path(name_or_dir).expanduser()
    if not path.exists():
        raise DatasetError(
            f"{str(name_or_dir)!r} is neither a built-in dataset ({', '.join(_GENERATORS)}) "
            "nor an existing folder or .zip"
        )
    if path.is_dir() and (path / MANIFEST).is_file():
        return load_built(path, sample_rate=sample_rate, max_files_per_class=max_files_per_class, progress=progress)
    return load_folder_dataset(
        path, sample_rate=sample_rate, seed=seed, progress=progress, max_files_per_class=max_files_per_class
    )
