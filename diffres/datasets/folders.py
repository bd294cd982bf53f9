"""User datasets: a folder with one sub-folder of audio per class, or a ``.zip`` of one.

Zips are checked before anything is extracted (path traversal, absolute paths, symlinks,
entry count, total size, compression ratio) and extracted into the cache with the byte count
enforced while writing, so a lying header cannot fill the disk. Unreadable audio files are
skipped and listed in :attr:`AudioDataset.skipped`, never dropped silently.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path, PurePosixPath

import numpy as np

from ..audio import fit_length, load_audio
from ..errors import DatasetError, ParameterError
from ._common import SAMPLE_RATE, SPLITS, ProgressFn, assign_random_splits, clip_rng, noop_progress, stable_int
from .base import AudioDataset, Split, empty_split

DEFAULT_MAX_ENTRIES = 20_000
"""Most entries (files and folders) a user zip may hold."""
DEFAULT_MAX_ARCHIVE_BYTES = 500 * 1024 * 1024
"""Largest total uncompressed size of a user zip (500 MB)."""
DEFAULT_MAX_RATIO = 200.0
"""Largest uncompressed/compressed ratio of any entry bigger than 1 MiB (zip-bomb guard)."""
MIN_CLIP_SECONDS, MAX_CLIP_SECONDS = 0.5, 10.0

_IGNORED_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini"}
_CHUNK = 1 << 20


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_NAMES


# ---------------------------------------------------------------------------- zips


def _check_entry_name(name: str) -> None:
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise DatasetError(
            f"unsafe zip: entry {name!r} has an absolute path; zip the class folders with relative paths"
        )
    if any(part == ".." for part in norm.split("/")):
        raise DatasetError(f"unsafe zip: entry {name!r} contains '..' (path traversal); such archives are refused")
    if "\x00" in norm:
        raise DatasetError(f"unsafe zip: entry {name!r} contains a NUL character")


def check_zip(
    zip_path: str | os.PathLike,
    *,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_total_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> list[zipfile.ZipInfo]:
    """Validate a zip without extracting it; return its file entries.

    Raises:
        DatasetError: not a zip, too many entries, an absolute or ``..`` path, a symlink
            entry, an encrypted entry, total uncompressed size above ``max_total_bytes``, or an
            entry over 1 MiB compressed more than ``max_ratio`` times.
    """
    zip_path = Path(zip_path)
    if not zipfile.is_zipfile(zip_path):
        raise DatasetError(f"{zip_path.name} is not a readable .zip archive")
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{zip_path.name} is not a readable .zip archive: {exc}") from exc
    if len(infos) > max_entries:
        raise DatasetError(
            f"zip has too many entries: {len(infos)} (the limit is {max_entries}); use fewer files or a folder"
        )
    total = 0
    files = []
    for info in infos:
        _check_entry_name(info.filename)
        mode = (info.external_attr >> 16) & 0xFFFF
        if stat.S_ISLNK(mode):
            raise DatasetError(f"unsafe zip: entry {info.filename!r} is a symbolic link; links are refused")
        if info.flag_bits & 0x1:
            raise DatasetError(f"zip entry {info.filename!r} is encrypted; give an unencrypted zip")
        if info.is_dir():
            continue
        total += info.file_size
        if total > max_total_bytes:
            raise DatasetError(
                f"zip too large: its uncompressed size exceeds the limit of {max_total_bytes / 1e6:.0f} MB "
                f"(at least {total / 1e6:.1f} MB); use a smaller archive or a folder"
            )
        if info.file_size > (1 << 20) and info.file_size > max_ratio * max(1, info.compress_size):
            raise DatasetError(
                f"suspicious zip (possible zip bomb): entry {info.filename!r} expands "
                f"{info.file_size / max(1, info.compress_size):.0f}x (the limit is {max_ratio:.0f}x)"
            )
        files.append(info)
    return files


def _default_extraction_folder(zip_path: Path) -> Path:
    """``cache_root()/user-zips/<sha256 prefix of the archive>``."""
    from .cache import cache_root

    h = hashlib.sha256()
    with open(zip_path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return cache_root() / "user-zips" / h.hexdigest()[:16]


def _extract_entries(zip_path: Path, infos: list[zipfile.ZipInfo], folder: Path, max_total_bytes: int) -> None:
    """Write the checked entries under ``folder``, counting bytes as they inflate."""
    written = 0
    with zipfile.ZipFile(zip_path) as zf:
        for info in infos:
            rel = PurePosixPath(info.filename.replace("\\", "/"))
            target = folder.joinpath(*rel.parts)
            if not str(target.resolve()).startswith(str(folder.resolve()) + os.sep):
                raise DatasetError(f"unsafe zip: entry {info.filename!r} would be written outside the folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            n_entry = 0
            with zf.open(info) as src, open(target, "wb") as dst:
                for block in iter(partial(src.read, _CHUNK), b""):
                    n_entry += len(block)
                    written += len(block)
                    if n_entry > info.file_size or written > max_total_bytes:
                        raise DatasetError(
                            f"zip too large: entry {info.filename!r} inflates beyond its declared size "
                            f"or the {max_total_bytes / 1e6:.0f} MB limit"
                        )
                    dst.write(block)


def extract_zip_safely(
    zip_path: str | os.PathLike,
    dest: str | os.PathLike | None = None,
    *,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_total_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> Path:
    """Check (see :func:`check_zip`) and extract a zip; return the extraction folder.

    ``dest`` defaults to ``cache_root()/user-zips/<sha256 prefix>``, reused when the same
    archive was extracted before. Writes are counted: an entry that inflates beyond its
    declared size, or a total beyond ``max_total_bytes``, aborts with DatasetError.
    """
    zip_path = Path(zip_path)
    infos = check_zip(zip_path, max_entries=max_entries, max_total_bytes=max_total_bytes, max_ratio=max_ratio)
    dest = Path(dest) if dest is not None else _default_extraction_folder(zip_path)
    if (dest / ".complete").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-extract-", dir=dest.parent))
    try:
        _extract_entries(zip_path, infos, tmp, max_total_bytes)
        (tmp / ".complete").write_text("ok\n")
        if dest.exists():
            shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DatasetError(f"cannot extract {zip_path.name}: {exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


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


def _open_folder_or_zip(
    src: Path, progress: ProgressFn, *, max_entries: int, max_total_bytes: int, max_ratio: float
) -> tuple[Path, str, str]:
    """(folder holding the data, dataset name, display prefix: ``"<zip name>:"`` or "")."""
    if src.is_file():
        if src.suffix.lower() != ".zip" and not zipfile.is_zipfile(src):
            raise DatasetError(
                f"{src.name} is a file but not a .zip; give a folder with one sub-folder per class or a .zip of one"
            )
        progress(0, 1, f"checking and extracting {src.name}")
        root = extract_zip_safely(src, max_entries=max_entries, max_total_bytes=max_total_bytes, max_ratio=max_ratio)
        return root, src.stem, src.name + ":"
    if src.is_dir():
        return src, src.name, ""
    raise DatasetError(f"{str(src)!r} does not exist")


def _class_dirs(
    root: Path, skipped: list[tuple[str, str]], show: Callable[[Path], str], display_prefix: str
) -> list[Path]:
    """The class folders under ``root`` (at least two); stray files are noted in ``skipped``."""
    class_dirs = []
    for p in sorted(root.iterdir(), key=lambda q: q.name):
        if _hidden(p.name):
            continue
        if p.is_dir():
            class_dirs.append(p)
        elif p.is_file() and p.name != "diffres-export.json" and p.name != "manifest.json":
            skipped.append((show(p), "not inside a class folder"))
    if len(class_dirs) < 2:
        found = ", ".join(p.name for p in class_dirs) or "none"
        raise DatasetError(
            f"a dataset needs at least 2 classes (one sub-folder of audio files per class); "
            f"found {len(class_dirs)} ({found}) in {show(root) if display_prefix else root}"
        )
    return class_dirs


def _pick_files(files: list[Path], max_files: int | None, seed: int, class_name: str) -> list[Path]:
    """All ``files``, or a seeded random subset of ``max_files`` in their order."""
    if max_files is None or len(files) <= max_files:
        return files
    rng = clip_rng(seed, 7, stable_int(class_name))
    pick = sorted(rng.choice(len(files), size=max_files, replace=False).tolist())
    return [files[i] for i in pick]


def _read_all(
    classes: list[str],
    files: dict[str, list[Path]],
    sample_rate: int,
    skipped: list[tuple[str, str]],
    show: Callable[[Path], str],
    progress: ProgressFn,
    name: str,
) -> dict[str, list[tuple[Path, np.ndarray]]]:
    """Every readable clip per class; unreadable ones go to ``skipped`` with the reason."""
    total = sum(len(v) for v in files.values())
    audio: dict[str, list[tuple[Path, np.ndarray]]] = {c: [] for c in classes}
    done = 0
    for c in classes:
        for f in files[c]:
            try:
                x, _ = load_audio(f, sample_rate)  # AudioError (a ValueError): empty, NaN, truncated...
                audio[c].append((f, x))
            except (ValueError, OSError, RuntimeError, EOFError, MemoryError) as exc:
                reason = str(exc).strip() or type(exc).__name__
                skipped.append((show(f), reason))
            done += 1
            if done % 20 == 0 or done == total:
                progress(done, total, f"reading {name}")
    return audio


def _check_counts(
    audio: dict[str, list[tuple[Path, np.ndarray]]], min_clips: int, skipped: list[tuple[str, str]]
) -> None:
    too_few = [(c, len(clips)) for c, clips in audio.items() if len(clips) < min_clips]
    if not too_few:
        return
    detail = ", ".join(f"'{c}' has {n}" for c, n in too_few)
    extra = f" ({len(skipped)} unreadable files skipped, first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
    raise DatasetError(
        f"every class needs at least {min_clips} readable audio clip{'s' if min_clips != 1 else ''}: {detail}{extra}"
    )


def _stratified_splits(
    audio: dict[str, list[tuple[Path, np.ndarray]]],
    n_samples: int,
    seed: int,
    fractions: tuple[float, float, float],
) -> dict[str, Split]:
    """Each class's clips split train/val/test (seeded per class name), fitted to ``n_samples``."""
    buckets: dict[str, tuple[list[np.ndarray], list[int], list[str]]] = {s: ([], [], []) for s in SPLITS}
    for ci, (c, clips) in enumerate(audio.items()):
        labels = assign_random_splits(len(clips), clip_rng(seed, 11, stable_int(c)), fractions)
        for (f, x), s in zip(clips, labels, strict=True):
            w, lab, paths = buckets[s]
            w.append(fit_length(x, n_samples))
            lab.append(ci)
            paths.append(str(f))
    splits: dict[str, Split] = {}
    for s in SPLITS:
        w, lab, paths = buckets[s]
        splits[s] = (
            Split(np.stack(w).astype(np.float32), np.asarray(lab, np.int64), paths) if w else empty_split(n_samples)
        )
    return splits


def load_folder_dataset(
    path_or_zip: str | os.PathLike,
    *,
    sample_rate: int = SAMPLE_RATE,
    seed: int = 0,
    progress: ProgressFn | None = None,
    max_files_per_class: int | None = None,
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    max_archive_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_ratio: float = DEFAULT_MAX_RATIO,
    min_clips_per_class: int = 2,
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
        max_archive_bytes, max_entries, max_ratio: zip safety limits (see :func:`check_zip`).
        min_clips_per_class: fewest readable clips a class may have (2 for training; an
            evaluation set may pass 1).

    Returns:
        :class:`AudioDataset` with ``clip_seconds`` = median clip length clamped to
        [0.5, 10] s; longer clips centre-cropped, shorter ones zero-padded on both sides
        (:func:`diffres.audio.fit_length`, the rule the model applies at inference);
        ``skipped`` lists ``(path, reason)`` for unreadable files.

    Raises:
        DatasetError: unsafe or unreadable zip, fewer than 2 classes, a class with fewer
            than 2 readable clips.
    """
    progress = progress or noop_progress
    if isinstance(min_clips_per_class, bool) or not isinstance(min_clips_per_class, int) or min_clips_per_class < 1:
        raise ParameterError(f"min_clips_per_class must be an integer >= 1, got {min_clips_per_class!r}")
    if len(split_fractions) != 3 or min(split_fractions) < 0 or split_fractions[0] <= 0:
        raise ParameterError(f"split_fractions must be 3 non-negative numbers with train > 0, got {split_fractions!r}")
    src = Path(path_or_zip).expanduser()
    extracted_root, name, display_prefix = _open_folder_or_zip(
        src, progress, max_entries=max_entries, max_total_bytes=max_archive_bytes, max_ratio=max_ratio
    )
    root = _class_root(extracted_root)

    def show(p: Path) -> str:
        return display_prefix + p.relative_to(extracted_root).as_posix() if display_prefix else str(p)

    skipped: list[tuple[str, str]] = []
    class_dirs = _class_dirs(root, skipped, show, display_prefix)
    classes = [p.name for p in class_dirs]
    files = {d.name: _pick_files(_files_under(d), max_files_per_class, seed, d.name) for d in class_dirs}
    audio = _read_all(classes, files, sample_rate, skipped, show, progress, name)
    _check_counts(audio, min_clips_per_class, skipped)
    lengths = [len(x) for c in classes for _, x in audio[c]]
    clip_seconds = float(np.clip(np.median(lengths) / sample_rate, MIN_CLIP_SECONDS, MAX_CLIP_SECONDS))
    clip_seconds = round(clip_seconds, 3)
    fractions = (float(split_fractions[0]), float(split_fractions[1]), float(split_fractions[2]))
    splits = _stratified_splits(audio, int(round(clip_seconds * sample_rate)), seed, fractions)
    n = sum(len(v) for v in audio.values())
    kind = f"zip archive {src.name}" if display_prefix else f"folder {src}"
    description = (
        f"User-supplied audio from the {kind}: {n} clips in {len(classes)} classes "
        f"({', '.join(f'{c}: {len(audio[c])}' for c in classes)}). Its origin and licence are "
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
        root=str(root),
        builtin=False,
        seed=int(seed),
    )
