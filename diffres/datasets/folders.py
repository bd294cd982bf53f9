"""User datasets: a folder with one sub-folder of audio per class, or a ``.zip`` of one.

Zips are checked and extracted by :mod:`diffres.datasets.zips` into a temporary folder that
is removed once the clips are read.  Reading is budgeted before and during the work
(:class:`DatasetBudget`): the file count, each file's length from its header before it is
decoded, the total length from the headers before anything is decoded, the total actually
decoded while decoding, and the size of the fitted clip arrays; so memory and time stay
bounded whatever a zip holds.  Clips are kept at the dataset's rate as they decode (one file
in flight).  Unreadable, too short and too long files are skipped and listed in
:attr:`AudioDataset.skipped` with the reason, never dropped silently; a ``MemoryError`` is
never taken for an unreadable file.  :attr:`AudioDataset.warnings` says when a split came
out empty (2 clips a class leave no test clip).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..audio import fit_length
from ..errors import DatasetError, ParameterError
from ..names import check_name, shown
from ._common import SAMPLE_RATE, SPLITS, ProgressFn, assign_random_splits, clip_rng, noop_progress, stable_int
from .base import AudioDataset, Split, empty_split
from .zips import (
    DEFAULT_MAX_ARCHIVE_BYTES,
    DEFAULT_MAX_ENTRIES,
    DEFAULT_MAX_ENTRY_BYTES,
    DEFAULT_MAX_RATIO,
    extracted,
)

MIN_CLIP_SECONDS, MAX_CLIP_SECONDS = 0.5, 10.0
#: Shortest file used as a clip: a 1-sample "clip" is a broken file, not a sound.
MIN_FILE_SECONDS = 0.05
#: Longest class folder name (it becomes a class name).
MAX_CLASS_NAME = 100

_IGNORED_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class DatasetBudget:
    """What one user dataset may cost, checked before and during the work (None = no limit).

    Attributes:
        max_entries: entries (files and folders) of a zip.
        max_archive_bytes: total uncompressed bytes of a zip (also what extraction may write).
        max_entry_bytes: uncompressed bytes of one zip entry.
        max_ratio: compression ratio of a zip entry of 64 KiB or more.
        max_files: audio files read (after ``max_files_per_class``).
        max_file_seconds: longest file used, in seconds (longer ones are skipped, by their
            header when it has one, else while decoding).
        max_file_frames: most frames decoded from one file at its native rate (bounds the
            memory of one decode; 4 M frames is 83 s at 48 kHz).
        max_total_seconds: total length of the files, from their headers before decoding and
            again while decoding.
        max_total_samples: samples of the fitted clip arrays (clips x clip length, at the
            dataset's rate; 28.8 M float32 samples are 115 MB).
    """

    max_entries: int = DEFAULT_MAX_ENTRIES
    max_archive_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES
    max_ratio: float = DEFAULT_MAX_RATIO
    max_files: int | None = 5000
    max_file_seconds: float | None = 60.0
    max_file_frames: int | None = 4_000_000
    max_total_seconds: float | None = 1800.0
    max_total_samples: int | None = 1800 * SAMPLE_RATE


#: The budget of a zip (untrusted: uploaded to the app or handed to the CLI).
ZIP_BUDGET = DatasetBudget()
#: The budget of a folder on disk (the user's own files, as the command line reads them):
#: only the per-file decode bound.
FOLDER_BUDGET = DatasetBudget(
    max_files=None, max_file_seconds=None, max_file_frames=None, max_total_seconds=None, max_total_samples=None
)


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_NAMES


# ---------------------------------------------------------------------------- folders


def _class_root(root: Path) -> Path:
    """Descend through single wrapper folders (``data.zip`` -> ``data/`` -> class folders)."""
    for _ in range(3):
        entries = [p for p in root.iterdir() if not _hidden(p.name)]
        dirs = [p for p in entries if p.is_dir()]
        files = [p for p in entries if p.is_file()]
        if len(dirs) == 1 and not files and any(q.is_dir() and not _hidden(q.name) for q in dirs[0].iterdir()):
            root = dirs[0]
        else:
            break
    return root


def _files_under(folder: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
        for f in sorted(filenames):
            if not _hidden(f):
                out.append(Path(dirpath) / f)
    return out


def _class_dirs(root: Path, skipped: list[tuple[str, str]], show: Callable[[Path], str]) -> list[Path]:
    """The class folders under ``root`` (at least two, with names fit to show); stray files
    are noted in ``skipped``."""
    class_dirs = []
    for p in sorted(root.iterdir(), key=lambda q: q.name):
        if _hidden(p.name):
            continue
        if p.is_dir():
            why = check_name(p.name, "class folder", max_length=MAX_CLASS_NAME)
            if why:
                raise DatasetError(f"{why}.")
            class_dirs.append(p)
        elif p.is_file() and p.name != "diffres-export.json" and p.name != "manifest.json":
            skipped.append((show(p), "not inside a class folder"))
    if len(class_dirs) < 2:
        found = ", ".join(shown(p.name) for p in class_dirs) or "none"
        raise DatasetError(
            f"a dataset needs at least 2 classes (one sub-folder of audio files per class); "
            f"found {len(class_dirs)} ({found}) in {shown(root.name + '/')}"
        )
    return class_dirs


def _pick_files(files: list[Path], max_files: int | None, seed: int, class_name: str) -> list[Path]:
    """All ``files``, or a seeded random subset of ``max_files`` in their order."""
    if max_files is None or len(files) <= max_files:
        return files
    rng = clip_rng(seed, 7, stable_int(class_name))
    pick = sorted(rng.choice(len(files), size=max_files, replace=False).tolist())
    return [files[i] for i in pick]


def _header(path: Path) -> tuple[float, int] | None:
    """(seconds, native rate) from the file's header without decoding it, or None when
    libsndfile cannot read the header (the decoder then decides)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except MemoryError:
        raise
    except Exception:
        return None
    if info.samplerate <= 0 or info.frames <= 0:
        return None
    return info.frames / info.samplerate, int(info.samplerate)


def _fmt_minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


@dataclass
class _Planned:
    """A file to decode: its class, and the most seconds of it to decode."""

    class_name: str
    path: Path
    max_seconds: float | None


def _plan(
    files: dict[str, list[Path]], budget: DatasetBudget, skipped: list[tuple[str, str]], show: Callable[[Path], str]
) -> list[_Planned]:
    """Budget the files from their headers before decoding any: the file count, each file's
    length, the total length."""
    n_files = sum(len(v) for v in files.values())
    if budget.max_files is not None and n_files > budget.max_files:
        raise DatasetError(
            f"the dataset has {n_files} files; at most {budget.max_files} are read "
            "(use fewer clips per class, or the command line with a folder)"
        )
    planned, total = [], 0.0
    for c, paths in files.items():
        for f in paths:
            header = _header(f)
            cap = budget.max_file_seconds
            if header is not None:
                seconds, rate = header
                if budget.max_file_frames is not None:
                    cap = min(cap if cap is not None else np.inf, budget.max_file_frames / rate)
                if cap is not None and seconds > cap:
                    skipped.append((show(f), _too_long_reason(seconds, rate, budget)))
                    continue
                total += seconds
            planned.append(_Planned(c, f, None if cap is None or not np.isfinite(cap) else float(cap)))
    if budget.max_total_seconds is not None and total > budget.max_total_seconds:
        raise DatasetError(
            f"the dataset holds {_fmt_minutes(total)} of audio; at most {_fmt_minutes(budget.max_total_seconds)} "
            "are read (use fewer or shorter clips)"
        )
    return planned


def _too_long_reason(seconds: float, rate: int, budget: DatasetBudget) -> str:
    if budget.max_file_seconds is not None and seconds > budget.max_file_seconds:
        return f"{seconds:.0f} s long; files longer than {budget.max_file_seconds:g} s are not used (cut it into clips)"
    return (
        f"{seconds:.0f} s at {rate} Hz is more than the {budget.max_file_frames or 0:,} samples read from one file "
        "(cut it into clips or lower its sample rate)"
    )


def _read_one(item: _Planned, sample_rate: int, budget: DatasetBudget) -> tuple[np.ndarray | None, str]:
    """(samples at ``sample_rate``, "") or (None, why the file is left out).  MemoryError
    propagates: it is not a property of the file."""
    from ..audio import load_clip

    try:
        clip = load_clip(item.path, sample_rate, max_seconds=item.max_seconds, trim=True)
    except (ValueError, OSError, RuntimeError, EOFError) as exc:  # AudioError is a ValueError
        return None, str(exc).strip() or type(exc).__name__
    if clip.trimmed:
        return None, _too_long_reason(clip.original_seconds, clip.original_sample_rate, budget)
    if clip.seconds < MIN_FILE_SECONDS:
        n = len(clip.samples)
        return None, (
            f"only {n} sample{'s' if n != 1 else ''} long ({clip.seconds * 1000:.2g} ms); a clip needs at least "
            f"{MIN_FILE_SECONDS * 1000:.0f} ms of audio"
        )
    return clip.samples, ""


def _read_all(
    classes: list[str],
    planned: list[_Planned],
    sample_rate: int,
    budget: DatasetBudget,
    skipped: list[tuple[str, str]],
    show: Callable[[Path], str],
    progress: ProgressFn,
    name: str,
) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Every readable clip per class as ``(shown path, samples at sample_rate)``; unreadable,
    too short and too long files go to ``skipped`` with the reason.  The total decoded is
    counted as it grows."""
    audio: dict[str, list[tuple[str, np.ndarray]]] = {c: [] for c in classes}
    total = 0.0
    for done, item in enumerate(planned, start=1):
        samples, reason = _read_one(item, sample_rate, budget)
        if samples is None:  # the decoder's message names the file: by its shown name, never a server path
            skipped.append((show(item.path), reason.replace(str(item.path), show(item.path))))
        else:
            total += len(samples) / sample_rate
            if budget.max_total_seconds is not None and total > budget.max_total_seconds:
                raise DatasetError(
                    f"the dataset holds more than {_fmt_minutes(budget.max_total_seconds)} of audio, the most that is "
                    "read (use fewer or shorter clips)"
                )
            audio[item.class_name].append((show(item.path), samples))
        if done % 20 == 0 or done == len(planned):
            progress(done, len(planned), f"reading {name}")
    return audio


def _check_counts(
    audio: dict[str, list[tuple[str, np.ndarray]]], min_clips: int, skipped: list[tuple[str, str]]
) -> None:
    too_few = [(c, len(clips)) for c, clips in audio.items() if len(clips) < min_clips]
    if not too_few:
        return
    detail = ", ".join(f"{shown(c)} has {n}" for c, n in too_few)
    extra = f" ({len(skipped)} unreadable files skipped, first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
    raise DatasetError(
        f"every class needs at least {min_clips} readable audio clip{'s' if min_clips != 1 else ''}: {detail}{extra}"
    )


def _stratified_splits(
    audio: dict[str, list[tuple[str, np.ndarray]]],
    n_samples: int,
    seed: int,
    fractions: tuple[float, float, float],
) -> dict[str, Split]:
    """Each class's clips split train/val/test (seeded per class name), fitted to ``n_samples``;
    each class's decoded clips are released as soon as they are fitted."""
    buckets: dict[str, tuple[list[np.ndarray], list[int], list[str]]] = {s: ([], [], []) for s in SPLITS}
    for ci, c in enumerate(list(audio)):
        clips = audio[c]
        labels = assign_random_splits(len(clips), clip_rng(seed, 11, stable_int(c)), fractions)
        for (f, x), s in zip(clips, labels, strict=True):
            w, lab, paths = buckets[s]
            w.append(np.array(fit_length(x, n_samples), dtype=np.float32))
            lab.append(ci)
            paths.append(f)
        audio[c] = []
    splits: dict[str, Split] = {}
    for s in SPLITS:
        w, lab, paths = buckets[s]
        splits[s] = Split(np.stack(w), np.asarray(lab, np.int64), paths) if w else empty_split(n_samples)
        w.clear()
    return splits


def split_warnings(splits: dict[str, Split], classes: list[str]) -> list[str]:
    """Sentences for people about held-out splits that came out empty, for the whole dataset
    or for some classes (a class needs 2 clips for a validation clip and 3 for a test clip)."""
    notes = []
    for name, need in (("validation", 2), ("test", 3)):
        split = splits["val" if name == "validation" else "test"]
        missing = [c for i, c in enumerate(classes) if not np.any(split.labels == i)]
        if len(split) == 0:
            notes.append(
                f"The {name} split is empty: every class has fewer than {need} readable clips, so no {name} accuracy "
                f"can be measured. Give each class at least {need} clips."
            )
        elif missing:
            listed = ", ".join(shown(c) for c in missing[:5]) + (" ..." if len(missing) > 5 else "")
            notes.append(f"{len(missing)} classes have no {name} clip ({listed}): they have fewer than {need} clips.")
    return notes


def _budget_for(src: Path, budget: DatasetBudget | None, **limits) -> DatasetBudget:
    base = budget if budget is not None else (ZIP_BUDGET if src.is_file() else FOLDER_BUDGET)
    return replace(base, **{k: v for k, v in limits.items() if v is not None})


def load_folder_dataset(
    path_or_zip: str | os.PathLike,
    *,
    sample_rate: int = SAMPLE_RATE,
    seed: int = 0,
    progress: ProgressFn | None = None,
    max_files_per_class: int | None = None,
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    max_archive_bytes: int | None = None,
    max_entries: int | None = None,
    max_ratio: float | None = None,
    min_clips_per_class: int = 2,
    budget: DatasetBudget | None = None,
) -> AudioDataset:
    """Load a user dataset: a folder with one sub-folder per class, or a ``.zip`` of one.

    Args:
        path_or_zip: folder or ``.zip`` (a single top-level folder wrapping the class
            folders is fine). Hidden files and ``__MACOSX`` are ignored.
        sample_rate: Hz of the returned waveforms (files are resampled).
        seed: seed of the stratified split (and of the ``max_files_per_class`` subset).
        progress: ``progress(done, total, message)`` while decoding.
        max_files_per_class: read at most this many files per class (random subset).
        split_fractions: train/val/test proportions; at least one val clip per class with 2+
            clips and one test clip per class with 3+ clips.
        max_archive_bytes, max_entries, max_ratio: zip safety limits (see
            :func:`~diffres.datasets.zips.check_zip`); override ``budget``'s.
        min_clips_per_class: fewest readable clips a class may have (2 for training; an
            evaluation set may pass 1).
        budget: the :class:`DatasetBudget`; default :data:`ZIP_BUDGET` for a zip (30 min of
            audio, 5000 files, 60 s a file...) and :data:`FOLDER_BUDGET` for a folder.

    Returns:
        :class:`AudioDataset` with ``clip_seconds`` = median clip length clamped to
        [0.5, 10] s; longer clips centre-cropped, shorter ones zero-padded on both sides
        (:func:`diffres.audio.fit_length`, the rule the model applies at inference);
        ``skipped`` lists ``(path, reason)`` for files left out (unreadable, shorter than
        50 ms, over the per-file budget); ``warnings`` says when a held-out split is empty.
        Paths inside a zip read ``archive.zip:inner/path`` (the extraction is temporary).

    Raises:
        DatasetError: unsafe or unreadable zip, over its budget, fewer than 2 classes, a
            class name with invisible characters, a class with fewer than
            ``min_clips_per_class`` readable clips.
        MemoryError: never taken for an unreadable file.
    """
    progress = progress or noop_progress
    if isinstance(min_clips_per_class, bool) or not isinstance(min_clips_per_class, int) or min_clips_per_class < 1:
        raise ParameterError(f"min_clips_per_class must be an integer >= 1, got {min_clips_per_class!r}")
    if len(split_fractions) != 3 or min(split_fractions) < 0 or split_fractions[0] <= 0:
        raise ParameterError(f"split_fractions must be 3 non-negative numbers with train > 0, got {split_fractions!r}")
    src = Path(path_or_zip).expanduser()
    budget = _budget_for(src, budget, max_archive_bytes=max_archive_bytes, max_entries=max_entries, max_ratio=max_ratio)
    read = dict(
        sample_rate=int(sample_rate),
        seed=int(seed),
        progress=progress,
        max_files_per_class=max_files_per_class,
        split_fractions=split_fractions,
        min_clips_per_class=min_clips_per_class,
        budget=budget,
    )
    if src.is_file():
        if src.suffix.lower() != ".zip" and not zipfile.is_zipfile(src):
            raise DatasetError(
                f"{src.name} is a file but not a .zip; give a folder with one sub-folder per class or a .zip of one"
            )
        progress(0, 1, f"checking and extracting {src.name}")
        limits = dict(
            max_entries=budget.max_entries,
            max_total_bytes=budget.max_archive_bytes,
            max_ratio=budget.max_ratio,
            max_entry_bytes=budget.max_entry_bytes,
        )
        with extracted(src, **limits) as root:
            return _load_tree(root, src.stem, f"zip archive {src.name}", src.name + ":", **read)  # type: ignore[arg-type]
    if src.is_dir():
        return _load_tree(src, src.name, f"folder {src}", "", **read)  # type: ignore[arg-type]
    raise DatasetError(f"{str(src)!r} does not exist")


def _load_tree(
    extracted_root: Path,
    name: str,
    kind: str,
    display_prefix: str,
    *,
    sample_rate: int,
    seed: int,
    progress: ProgressFn,
    max_files_per_class: int | None,
    split_fractions: tuple[float, float, float],
    min_clips_per_class: int,
    budget: DatasetBudget,
) -> AudioDataset:
    """Read a class-folder tree (a folder, or a zip's extraction shown as ``display_prefix``)."""
    root = _class_root(extracted_root)

    def show(p: Path) -> str:
        return display_prefix + p.relative_to(extracted_root).as_posix() if display_prefix else str(p)

    skipped: list[tuple[str, str]] = []
    class_dirs = _class_dirs(root, skipped, show)
    classes = [p.name for p in class_dirs]
    files = {d.name: _pick_files(_files_under(d), max_files_per_class, seed, d.name) for d in class_dirs}
    planned = _plan(files, budget, skipped, show)
    audio = _read_all(classes, planned, sample_rate, budget, skipped, show, progress, name)
    _check_counts(audio, min_clips_per_class, skipped)
    counts = {c: len(audio[c]) for c in classes}
    lengths = [len(x) for c in classes for _, x in audio[c]]
    clip_seconds = round(float(np.clip(np.median(lengths) / sample_rate, MIN_CLIP_SECONDS, MAX_CLIP_SECONDS)), 3)
    n_samples = int(round(clip_seconds * sample_rate))
    n = sum(counts.values())
    if budget.max_total_samples is not None and n * n_samples > budget.max_total_samples:
        raise DatasetError(
            f"{n} clips of {clip_seconds:g} s would hold {_fmt_minutes(n * clip_seconds)} of audio, more than "
            f"{_fmt_minutes(budget.max_total_samples / sample_rate)} (use fewer clips)"
        )
    fractions = (float(split_fractions[0]), float(split_fractions[1]), float(split_fractions[2]))
    splits = _stratified_splits(audio, n_samples, seed, fractions)
    description = (
        f"User-supplied audio from the {kind}: {n} clips in {len(classes)} classes "
        f"({', '.join(f'{c}: {counts[c]}' for c in classes)}). Its origin and licence are "
        "whatever the user's files carry; DiffRes Explorer did not generate it. "
        f"Clips resampled to {sample_rate} Hz mono and centre-padded/cropped to {clip_seconds:g} s "
        f"(median length). Split: stratified random {'/'.join(f'{v:g}' for v in split_fractions)} "
        f"(train/val/test) with seed {seed}." + (f" {len(skipped)} unreadable files were skipped." if skipped else "")
    )
    return AudioDataset(
        name=name,
        classes=classes,
        clip_seconds=clip_seconds,
        sample_rate=int(sample_rate),
        splits=splits,
        source_description=description,
        skipped=skipped,
        root=str(root) if not display_prefix else None,
        builtin=False,
        seed=int(seed),
        warnings=split_warnings(splits, classes),
    )
