"""On-disk cache of generated datasets: directory layout, restartable builds, manifests,
and fast loading through a single ``.npz`` of the arrays.

Layout of one built dataset::

    <root>/<name>-v<version>-seed<seed>[-n<n_per_class>]/
        <class>/<clip_id>.wav      16 kHz mono 16-bit PCM
        manifest.json              written atomically when every clip exists
        arrays-sr<rate>.npz        written on first load; read in well under a second

``<root>`` is ``$DIFFRES_CACHE`` when set, else ``~/.cache/diffres-explorer/datasets``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..audio import fit_length, load_audio
from ..errors import DatasetError, ParameterError
from ._common import SAMPLE_RATE, SPLITS, ClipSpec, ProgressFn, noop_progress, write_atomic
from .base import AudioDataset, Split, empty_split

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


def cache_root() -> Path:
    """Root folder of the dataset cache: ``$DIFFRES_CACHE`` or
    ``~/.cache/diffres-explorer/datasets``."""
    env = os.environ.get("DIFFRES_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "diffres-explorer" / "datasets"


def dataset_dir(gen: ModuleType, seed: int, n_per_class: int | None = None) -> Path:
    """Cache directory of one built dataset."""
    suffix = "" if n_per_class in (None, gen.DEFAULT_N_PER_CLASS) else f"-n{int(n_per_class)}"
    return cache_root() / f"{gen.NAME}-v{gen.VERSION}-seed{int(seed)}{suffix}"


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically (see :func:`write_atomic`)."""
    text = json.dumps(obj, indent=1) + "\n"

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    write_atomic(Path(path), write)


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    try:
        with open(path, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except FileNotFoundError as exc:
        raise DatasetError(f"{path} does not exist: the dataset was not built completely") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot read the dataset manifest {path}: {exc}; delete the folder and rebuild") from exc
    if not isinstance(manifest, dict) or "clips" not in manifest or "classes" not in manifest:
        raise DatasetError(f"{path} is not a DiffRes Explorer dataset manifest")
    return manifest


def split_params(dataset: Any, split: str) -> list[dict[str, Any]]:
    """The manifest ``params`` of every clip of one split of a built dataset, in split order.

    A generator records each clip's parameters (for ``rhythms``: where each pattern copy
    sits, its timbre, background and SNR); this maps a loaded split back to them.

    Args:
        dataset: an :class:`~diffres.datasets.base.AudioDataset` loaded from a built folder.
        split: ``"train"``, ``"val"`` or ``"test"``.

    Returns:
        One ``params`` dict per clip, aligned with ``dataset.splits[split]``.

    Raises:
        DatasetError: no manifest in ``dataset.root``, or a clip the manifest does not list.
    """
    root = Path(dataset.root)
    by_path = {str(root / c["path"]): c.get("params", {}) for c in read_manifest(root)["clips"]}
    try:
        return [by_path[str(p)] for p in dataset.splits[split].paths]
    except KeyError as exc:
        raise DatasetError(f"{exc.args[0]} is not listed in the manifest of {root}; rebuild the dataset") from None


def _check_n_per_class(n_per_class: int | None, default: int) -> int:
    if n_per_class is None:
        return default
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise ParameterError(f"n_per_class must be an integer >= 1, got {n_per_class!r}")
    return int(n_per_class)


def _remove_stale_temporaries(out: Path, max_age_s: float = 600.0) -> None:
    """Delete ``.tmp-*`` files a killed build left behind (old ones only: a build running in
    another process may be writing fresh ones)."""
    now = time.time()
    for p in out.glob("*/.tmp-*"):
        try:
            if now - p.stat().st_mtime > max_age_s:
                p.unlink()
        except OSError:
            pass


def prune_older_versions(gen: ModuleType) -> list[Path]:
    """Delete cached builds of ``gen`` made by older versions of its generator (any seed or
    size): a version bump would otherwise leave gigabytes behind.  Only folders named
    ``<name>-v<k>-seed<s>[-n<n>]`` with ``k`` below the current version whose manifest (when
    present) names this dataset are removed.  Returns the removed folders."""
    pattern = re.compile(rf"{re.escape(gen.NAME)}-v(\d+)-seed\d+(-n\d+)?")
    removed: list[Path] = []
    root = cache_root()
    if not root.is_dir():
        return removed
    for folder in sorted(root.iterdir()):
        m = pattern.fullmatch(folder.name)
        if not m or int(m.group(1)) >= gen.VERSION or folder.is_symlink() or not folder.is_dir():
            continue
        manifest = folder / MANIFEST
        if manifest.is_file():
            try:
                if json.loads(manifest.read_text(encoding="utf-8")).get("name") != gen.NAME:
                    continue
            except (OSError, ValueError):
                continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _prune(gen: ModuleType, progress: ProgressFn, total: int) -> None:
    for old_build in prune_older_versions(gen):
        progress(total, total, f"{gen.NAME}: removed {old_build.name} (an older version of the generator)")


def build(
    gen: ModuleType,
    out_dir: Path | None = None,
    *,
    seed: int = 0,
    n_per_class: int | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """Generate a built-in dataset (restartable) and return its directory.

    Clips already on disk are kept, so an interrupted build resumes where it stopped; the
    manifest is written (atomically) only once every clip exists.  A build into the cache
    (``out_dir=None``), or finding one there, removes the cache's builds by older generator
    versions.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ParameterError(f"seed must be an integer, got {seed!r}")
    n = _check_n_per_class(n_per_class, gen.DEFAULT_N_PER_CLASS)
    out = Path(out_dir) if out_dir is not None else dataset_dir(gen, seed, n)
    progress = progress or noop_progress
    specs: list[ClipSpec] = gen.plan(int(seed), n)
    total = len(specs)
    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        try:
            old = read_manifest(out)
        except DatasetError:
            old = None
        if (
            old is not None
            and old.get("name") == gen.NAME
            and old.get("version") == gen.VERSION
            and old.get("seed") == int(seed)
            and [c["id"] for c in old["clips"]] == [s.clip_id for s in specs]
            and all((out / s.relpath).is_file() for s in specs)
        ):
            if out_dir is None:
                _prune(gen, progress, total)
            progress(total, total, f"{gen.NAME}: cached in {out}")
            return out
    gen.check_requirements()
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out)
    missing = [s for s in specs if not (out / s.relpath).is_file()]
    done = total - len(missing)
    progress(
        done,
        total,
        f"{gen.NAME}: {done} of {total} clips already on disk" if done else f"{gen.NAME}: generating {total} clips",
    )
    state = {"done": done}

    def step(k: int, _total: int, message: str) -> None:
        state["done"] += k
        progress(min(state["done"], total), total, f"{gen.NAME}: {message}")

    t0 = time.perf_counter()
    if missing:
        gen.render(missing, out, step)
    still = [s.relpath for s in specs if not (out / s.relpath).is_file()]
    if still:
        raise DatasetError(f"{gen.NAME}: {len(still)} clips were not generated (first: {still[0]})")
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": gen.NAME,
        "version": gen.VERSION,
        "seed": int(seed),
        "n_per_class": n,
        "sample_rate": SAMPLE_RATE,
        "clip_seconds": gen.CLIP_SECONDS,
        "classes": list(gen.CLASSES),
        "source_description": gen.source_description(total, int(seed)),
        "build_seconds": round(time.perf_counter() - t0, 2),
        "clips": [s.to_json() for s in specs],
    }
    write_json_atomic(manifest_path, manifest)
    if out_dir is None:
        _prune(gen, progress, total)
    progress(total, total, f"{gen.NAME}: done ({out})")
    return out


# ---------------------------------------------------------------------------- loading


def _manifest_digest(manifest: dict[str, Any]) -> str:
    ids = "\n".join(f"{c['path']}|{c['class']}|{c['split']}" for c in manifest["clips"])
    return hashlib.sha256(ids.encode("utf-8")).hexdigest()[:16]


def _select(clips: list[dict[str, Any]], classes: list[str], max_per_class: int | None) -> list[int]:
    """Indices of the clips kept under ``max_per_class``, proportionally across splits
    (at least one per non-empty split while the budget allows)."""
    if max_per_class is None:
        return list(range(len(clips)))
    keep: list[int] = []
    for c in classes:
        by_split = {s: [i for i, clip in enumerate(clips) if clip["class"] == c and clip["split"] == s] for s in SPLITS}
        n_total = sum(len(v) for v in by_split.values())
        if n_total <= max_per_class:
            for s in SPLITS:
                keep += by_split[s]
            continue
        quota = {
            s: (min(len(v), max(1, int(round(max_per_class * len(v) / n_total)))) if v else 0)
            for s, v in by_split.items()
        }
        while sum(quota.values()) > max_per_class:  # trim from the largest split first
            s = max(quota, key=lambda k: quota[k])
            quota[s] -= 1
        for s in SPLITS:
            keep += by_split[s][: quota[s]]
    return sorted(keep)


def _read_npz(npz_path: Path, digest: str, n_clips: int, n_samples: int):
    """``(waveforms float32 [N, n], row -> manifest index)`` from the array cache, or None."""
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            if str(z["digest"]) != digest or z["waveforms"].shape != (n_clips, n_samples):
                return None
            stored = z["waveforms"]
            index = z["index"].astype(np.int64)
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if stored.dtype == np.int16:
        wav = np.empty(stored.shape, np.float32)
        np.multiply(stored, np.float32(1.0 / 32768.0), out=wav, casting="unsafe")
    else:
        wav = stored.astype(np.float32, copy=False)
    return wav, index


def _write_npz(npz_path: Path, wav: np.ndarray, index: np.ndarray, digest: str) -> None:
    """Rows ordered by split (so each split loads as one slice); int16 when that is exact
    (16-bit clips at their own rate), float32 otherwise."""
    scaled = wav * np.float32(32768.0)  # exact in float32 (power of two)
    exact = bool(np.all(np.abs(scaled) <= 32767.0) and np.array_equal(np.rint(scaled), scaled))
    stored = scaled.astype(np.int16) if exact else wav
    with contextlib.suppress(OSError):  # the array cache only speeds up the next load: a failed write is no error
        write_atomic(npz_path, lambda tmp: np.savez(tmp, waveforms=stored, index=index, digest=np.array(digest)))


def _read_clips(
    directory: Path, relpaths: list[str], sample_rate: int, n_samples: int, progress: ProgressFn
) -> np.ndarray:
    """``[len(relpaths), n_samples]`` float32: each clip read, resampled and fitted."""
    wav = np.zeros((len(relpaths), n_samples), np.float32)
    for k, rel in enumerate(relpaths):
        path = directory / rel
        try:
            x, _ = load_audio(path, sample_rate)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cached clip {path} is unreadable ({exc}); delete {directory} and rebuild") from exc
        wav[k] = fit_length(x, n_samples)
        if k % 50 == 0:
            progress(k, len(relpaths), f"reading {directory.name}")
    progress(len(relpaths), len(relpaths), f"read {directory.name}")
    return wav


def _split_rows(
    directory: Path,
    clips: list[dict[str, Any]],
    wav: np.ndarray,
    order: np.ndarray,
    row_codes: np.ndarray,
    labels: np.ndarray,
    n_samples: int,
) -> dict[str, Split]:
    """The splits of ``wav``, whose rows hold the manifest clips ``order`` grouped by split
    (``row_codes``, indices into ``SPLITS``); each split's arrays are views of ``wav``."""
    splits: dict[str, Split] = {}
    for code, s in enumerate(SPLITS):
        rows = np.flatnonzero(row_codes == code)
        if rows.size == 0:
            splits[s] = empty_split(n_samples)
            continue
        sl = slice(int(rows[0]), int(rows[-1]) + 1)
        assert rows.size == sl.stop - sl.start  # rows are grouped by split
        idx = order[sl]
        splits[s] = Split(wav[sl], labels[idx].copy(), [str(directory / clips[i]["path"]) for i in idx])
    return splits


def built_class_counts(directory: Path, *, max_files_per_class: int | None = None) -> dict[str, dict[str, int]]:
    """``{split: {class: count}}`` of a built dataset folder, as :func:`load_built` with the
    same ``max_files_per_class`` would split it, read from the manifest alone (no audio), so
    a run's size can be shown before its data is loaded."""
    manifest = read_manifest(Path(directory))
    classes: list[str] = list(manifest["classes"])
    clips = manifest["clips"]
    counts = {s: dict.fromkeys(classes, 0) for s in SPLITS}
    for i in _select(clips, classes, max_files_per_class):
        clip = clips[i]
        if clip.get("split") in counts and clip.get("class") in counts[clip["split"]]:
            counts[clip["split"]][clip["class"]] += 1
    return counts


def load_built(
    directory: Path,
    *,
    sample_rate: int = SAMPLE_RATE,
    max_files_per_class: int | None = None,
    progress: ProgressFn | None = None,
) -> AudioDataset:
    """Load a built dataset directory (with ``manifest.json``) into arrays.

    The first full load at a given ``sample_rate`` writes ``arrays-sr<rate>.npz`` next to the
    manifest; later loads read only that file.
    """
    directory = Path(directory)
    progress = progress or noop_progress
    manifest = read_manifest(directory)
    classes: list[str] = list(manifest["classes"])
    clip_seconds = float(manifest["clip_seconds"])
    n_samples = int(round(clip_seconds * sample_rate))
    clips = manifest["clips"]
    class_index = {c: i for i, c in enumerate(classes)}
    for clip in clips:
        if clip.get("class") not in class_index or clip.get("split") not in SPLITS:
            raise DatasetError(
                f"{directory / MANIFEST} lists a clip with an unknown class or split: {clip.get('id')!r}"
            )
    labels = np.array([class_index[c["class"]] for c in clips], np.int64)
    codes = np.array([SPLITS.index(c["split"]) for c in clips], np.int8)
    # row order of the arrays: by split, then manifest order
    order = np.argsort(codes, kind="stable")
    digest = _manifest_digest(manifest)
    npz_path = directory / f"arrays-sr{int(sample_rate)}.npz"
    keep = _select(clips, classes, max_files_per_class)
    full = len(keep) == len(clips)
    cached = _read_npz(npz_path, digest, len(clips), n_samples) if npz_path.is_file() else None
    if cached is not None and np.array_equal(cached[1], order):
        wav, order = cached
    else:
        if full:
            todo = order
        else:
            sub = np.asarray(keep, np.int64)
            todo = sub[np.argsort(codes[sub], kind="stable")]
        wav = _read_clips(directory, [clips[i]["path"] for i in todo], sample_rate, n_samples, progress)
        order = todo
        if full:
            _write_npz(npz_path, wav, order, digest)
    # rows of `wav` hold manifest clips `order`; keep the selected ones, split by split
    if not full:
        keep_set = np.zeros(len(clips), bool)
        keep_set[keep] = True
        rows = np.flatnonzero(keep_set[order])
        wav, order = wav[rows], order[rows]
    splits = _split_rows(directory, clips, wav, order, codes[order], labels, n_samples)
    return AudioDataset(
        name=str(manifest.get("name", directory.name)),
        classes=classes,
        clip_seconds=clip_seconds,
        sample_rate=int(sample_rate),
        splits=splits,
        source_description=str(manifest.get("source_description", "")),
        skipped=[],
        root=str(directory),
        builtin=True,
        seed=int(manifest.get("seed", 0)),
    )
