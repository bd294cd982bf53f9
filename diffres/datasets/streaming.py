"""Streaming corpora: class folders or a CSV manifest, decoded clip by clip in ``DataLoader``
workers, never held in memory as a whole.

The in-memory datasets (:mod:`diffres.datasets.folders`) decode every clip up front; that
suits a few thousand clips.  A user's own corpus (Speech Commands' 105,000 clips, a folder of
several hundred thousand) is read here instead:

- :func:`scan_corpus` lists the corpus once: one sub-folder per class, or a CSV manifest
  with the columns ``path,label[,split]`` (paths relative to the manifest's folder).  The
  index keeps relative paths as one fixed-width byte array, labels and splits as small
  integer arrays: about 60 bytes a clip, with no Python object per clip (forked workers then
  share it without copy-on-write growth).
- :class:`StreamingAudioDataset` decodes one clip per ``__getitem__`` with
  :func:`diffres.audio.load_clip` (soundfile, ffmpeg for the rest; resampled to the mel's
  rate unless ``resample=False``), fits it with :func:`diffres.audio.fit_length` and computes
  the log-mel ``[T, F]`` with :class:`diffres.features.MelFrontend` of the model's
  :class:`~diffres.features.MelConfig` (the one home of the mel settings).
- :class:`FeatureCache` optionally keeps each clip's log-mel on disk, keyed by a hash of the
  file's bytes and of the settings (never in RAM).
- A file that cannot be read does not stop a run: the item carries its reason,
  :func:`collate_stream` drops it from the batch and lists it in
  :attr:`StreamBatch.failures`, and the trainer counts them.

Example::

    index = scan_corpus("my_corpus/")                  # my_corpus/<class>/<clip>.wav
    ds = StreamingAudioDataset(index, "train", mel=MelConfig(n_mels=64), clip_seconds=1.0)
    loader = DataLoader(ds, batch_size=32, num_workers=2, collate_fn=collate_stream)
    batch = next(iter(loader))                         # batch.log_mel: [32, 101, 64]
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..audio import fit_length, load_clip
from ..errors import AudioError, DatasetError, ParameterError
from ..features import MelConfig, MelFrontend
from ._common import SPLITS

__all__ = [
    "AUDIO_SUFFIXES",
    "CorpusIndex",
    "FeatureCache",
    "StreamBatch",
    "StreamItem",
    "StreamingAudioDataset",
    "collate_stream",
    "corpus_name",
    "estimate_clip_seconds",
    "scan_corpus",
    "split_of",
]

#: File name endings read as audio when a class folder is scanned (others are ignored).
AUDIO_SUFFIXES = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".m4a", ".webm"}
)

_SPLIT_NAMES = {"train": 0, "val": 1, "valid": 1, "validation": 1, "dev": 1, "test": 2}
_MAX_FILE_SECONDS = 60.0  # a longer file is trimmed to its first minute before fitting


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in {"__MACOSX", "Thumbs.db", "desktop.ini"}


def split_of(relpath: str, seed: int, fractions: tuple[float, float, float]) -> int:
    """The split (0 train, 1 val, 2 test) of a clip without a split in its manifest.

    A hash of ``seed`` and the clip's relative path, so the choice is stable as the corpus
    grows (adding clips never moves another clip between splits) and costs no memory.

    Example:
        >>> split_of("dog/001.wav", 0, (1.0, 0.0, 0.0))
        0
    """
    digest = hashlib.blake2b(f"{seed}:{relpath}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "little") / 2.0**64
    total = sum(fractions)
    if u < fractions[0] / total:
        return 0
    return 1 if u < (fractions[0] + fractions[1]) / total else 2


@dataclass(frozen=True)
class CorpusIndex:
    """The listing of a corpus: relative paths, labels and splits, in compact arrays.

    Attributes:
        name: display name (the folder's or the manifest's name, never a full path).
        kind: ``"folder"`` (one sub-folder per class) or ``"manifest"`` (a CSV file).
        root: folder the relative paths start from (kept out of model cards).
        classes: class names; label ``i`` is ``classes[i]``.
        paths: ``[N]`` UTF-8 relative paths (POSIX separators), fixed-width bytes.
        labels: ``[N]`` int64 class indices.
        splits: ``[N]`` int8: 0 train, 1 val, 2 test.
        skipped: ``(relative path, reason)`` of manifest rows refused while scanning.
    """

    name: str
    kind: str
    root: Path
    classes: tuple[str, ...]
    paths: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    skipped: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def relpath(self, i: int) -> str:
        """Clip ``i``'s path relative to :attr:`root` (what messages and cards show)."""
        return bytes(self.paths[i]).decode("utf-8")

    def path(self, i: int) -> Path:
        return self.root / self.relpath(i)

    def split_indices(self, split: str) -> np.ndarray:
        """``[n]`` int64 indices of the clips in ``split`` (``train``, ``val`` or ``test``)."""
        if split not in SPLITS:
            raise ParameterError(f"split must be one of {', '.join(SPLITS)}, got {split!r}.")
        return np.flatnonzero(self.splits == SPLITS.index(split)).astype(np.int64)

    def counts(self) -> dict[str, dict[str, int]]:
        """Clips per split and class: ``{split: {class: n}}``."""
        out: dict[str, dict[str, int]] = {}
        for si, s in enumerate(SPLITS):
            per = np.bincount(self.labels[self.splits == si], minlength=len(self.classes))
            out[s] = {c: int(per[i]) for i, c in enumerate(self.classes)}
        return out

    def fingerprint(self) -> str:
        """SHA-256 of the listing (paths, labels, splits): a resumed run checks it."""
        h = hashlib.sha256()
        h.update(json.dumps(list(self.classes)).encode())
        for a in (self.paths, self.labels.astype("<i8"), self.splits.astype("i1")):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        """Card-safe description: name, kind, sizes, classes; no path of this machine."""
        counts = self.counts()
        return {
            "name": self.name,
            "kind": self.kind,
            "n_clips": len(self),
            "n_per_split": {s: sum(v.values()) for s, v in counts.items()},
            "n_per_class": {c: sum(counts[s][c] for s in SPLITS) for c in self.classes},
            "classes": list(self.classes),
            "fingerprint": self.fingerprint(),
            "n_skipped_rows": len(self.skipped),
        }


def _build_index(
    name: str,
    kind: str,
    root: Path,
    rows: list[tuple[str, str, int]],
    classes: Sequence[str] | None,
    skipped: list[tuple[str, str]],
) -> CorpusIndex:
    if not rows:
        raise DatasetError(f"the corpus {name!r} holds no audio files.")
    names = list(classes) if classes is not None else sorted({r[1] for r in rows})
    if len(names) < 2:
        raise DatasetError(f"a corpus needs at least 2 classes; {name!r} has {', '.join(names) or 'none'}.")
    lookup = {c: i for i, c in enumerate(names)}
    paths = np.array([r[0].encode("utf-8") for r in rows], dtype=np.bytes_)
    labels = np.fromiter((lookup[r[1]] for r in rows), dtype=np.int64, count=len(rows))
    splits = np.fromiter((r[2] for r in rows), dtype=np.int8, count=len(rows))
    return CorpusIndex(name, kind, root, tuple(names), paths, labels, splits, tuple(skipped))


def corpus_name(source: str | os.PathLike[str]) -> str:
    """The name a corpus goes by in cards and file names: its folder's name or its
    manifest's stem (never a full path).

    Example:
        >>> corpus_name("/data/speech_commands/"), corpus_name("lists/train.csv")
        ('speech_commands', 'train')
    """
    src = Path(source).expanduser()
    if src.suffix.lower() == ".csv":
        return src.stem
    return src.resolve().name or "corpus"


def _scan_folder(root: Path, seed: int, fractions: tuple[float, float, float]) -> CorpusIndex:
    class_dirs = sorted((p for p in root.iterdir() if p.is_dir() and not _hidden(p.name)), key=lambda p: p.name)
    rows: list[tuple[str, str, int]] = []
    for d in class_dirs:
        for dirpath, dirnames, filenames in os.walk(d):
            dirnames[:] = sorted(n for n in dirnames if not _hidden(n))
            for f in sorted(filenames):
                if _hidden(f) or Path(f).suffix.lower() not in AUDIO_SUFFIXES:
                    continue
                rel = (Path(dirpath) / f).relative_to(root).as_posix()
                rows.append((rel, d.name, split_of(rel, seed, fractions)))
    present = sorted({r[1] for r in rows})
    return _build_index(corpus_name(root), "folder", root, rows, present, [])


def _scan_manifest(csv_path: Path, seed: int, fractions: tuple[float, float, float]) -> CorpusIndex:
    root = csv_path.parent
    rows: list[tuple[str, str, int]] = []
    skipped: list[tuple[str, str]] = []
    with csv_path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        if "path" not in header or "label" not in header:
            raise DatasetError(
                f"{csv_path.name} needs a header row with the columns path,label[,split]; found {header or 'none'}."
            )
        reader.fieldnames = header
        for line, row in enumerate(reader, start=2):
            rel = (row.get("path") or "").strip()
            label = (row.get("label") or "").strip()
            split_text = (row.get("split") or "").strip().lower()
            if not rel or not label:
                skipped.append((f"{csv_path.name}:{line}", "empty path or label"))
                continue
            if split_text and split_text not in _SPLIT_NAMES:
                raise DatasetError(
                    f"{csv_path.name} line {line}: split must be train, val or test (or empty), got {split_text!r}."
                )
            rel = Path(rel).as_posix()
            split = _SPLIT_NAMES[split_text] if split_text else split_of(rel, seed, fractions)
            rows.append((rel, label, split))
    return _build_index(csv_path.stem, "manifest", root, rows, None, skipped)


def scan_corpus(
    source: str | os.PathLike[str],
    *,
    seed: int = 0,
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> CorpusIndex:
    """List a corpus: a folder with one sub-folder per class, or a CSV manifest.

    Args:
        source: a folder (``<class>/<...>/<clip>.<ext>``, any depth below the class folder;
            files whose ending is not in :data:`AUDIO_SUFFIXES` are ignored), or a ``.csv``
            with a header ``path,label[,split]`` (paths relative to the CSV's folder; an
            empty or missing split is assigned by :func:`split_of`).
        seed: keyword-only; seeds the hashed split of clips without one.
        split_fractions: train/val/test proportions of the hashed split, each >= 0, train > 0.

    Returns:
        :class:`CorpusIndex`.  Nothing is decoded here.

    Raises:
        DatasetError: missing source, no audio, fewer than 2 classes, a malformed manifest.

    Example:
        >>> import tempfile, pathlib
        >>> from diffres.audio import save_wav
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> for c in ("a", "b"):
        ...     (d / c).mkdir(); save_wav(d / c / "x.wav", np.zeros(800, np.float32), 16000)
        >>> idx = scan_corpus(d)
        >>> len(idx), idx.classes, idx.relpath(1)
        (2, ('a', 'b'), 'b/x.wav')
    """
    if len(split_fractions) != 3 or min(split_fractions) < 0 or split_fractions[0] <= 0:
        raise ParameterError(f"split_fractions must be 3 numbers >= 0 with train > 0, got {split_fractions!r}.")
    fractions = (float(split_fractions[0]), float(split_fractions[1]), float(split_fractions[2]))
    src = Path(source).expanduser()
    if src.is_dir():
        return _scan_folder(src, seed, fractions)
    if src.is_file() and src.suffix.lower() == ".csv":
        return _scan_manifest(src, seed, fractions)
    if src.is_file():
        raise DatasetError(f"{src.name} is neither a folder of class folders nor a .csv manifest.")
    raise DatasetError(f"the corpus {src.name!r} does not exist; give a folder of class folders or a .csv manifest.")


# ----------------------------------------------------------------------------- cache


class FeatureCache:
    """Log-mel features on disk, keyed by the file's content hash and the settings.

    Layout: ``<root>/<settings key>/<2 hex>/<content hash>.npy``; each file is written to a
    temporary name and renamed, so concurrent workers and ranks never read half a file.
    Nothing is kept in memory.

    Args:
        root: the cache folder (created when needed).
        settings: everything that changes the features (mel settings, clip length,
            resampling); their JSON hash names the sub-folder.

    Example:
        >>> import tempfile
        >>> cache = FeatureCache(tempfile.mkdtemp(), {"n_mels": 4})
        >>> cache.put("ab12", np.ones((3, 4), np.float32)); cache.get("ab12").shape
        (3, 4)
    """

    def __init__(self, root: str | os.PathLike[str], settings: dict[str, Any]) -> None:
        text = json.dumps(settings, sort_keys=True, default=str)
        self.settings_key = hashlib.sha256(text.encode()).hexdigest()[:16]
        self.folder = Path(root).expanduser() / self.settings_key

    def _file(self, content_hash: str) -> Path:
        return self.folder / content_hash[:2] / f"{content_hash}.npy"

    def get(self, content_hash: str) -> np.ndarray | None:
        """The cached array, or None (missing or unreadable: it is then recomputed)."""
        f = self._file(content_hash)
        try:
            return np.load(f, allow_pickle=False)
        except (OSError, ValueError):
            return None

    def put(self, content_hash: str, features: np.ndarray) -> None:
        f = self._file(content_hash)
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_name(f"{f.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            np.save(fh, np.ascontiguousarray(features), allow_pickle=False)
        os.replace(tmp, f)


# --------------------------------------------------------------------------- dataset


@dataclass(frozen=True)
class StreamItem:
    """One decoded clip (or the reason it could not be read).

    Attributes:
        log_mel: ``[T, F]`` float32 natural-log mel power, or None on failure.
        label: class index.
        index: position of the clip in the :class:`CorpusIndex`.
        failure: ``"<relative path>: <reason>"`` when the clip could not be read, else ``""``.
    """

    log_mel: Tensor | None
    label: int
    index: int
    failure: str = ""


@dataclass(frozen=True)
class StreamBatch:
    """A batch of readable clips.

    Attributes:
        log_mel: ``[B, T, F]`` float32 log-mel of the readable clips.
        labels: ``[B]`` int64 class indices.
        indices: ``[B]`` int64 corpus positions (seed per-sample randomness).
        failures: one ``"<relative path>: <reason>"`` per clip dropped from the batch.
    """

    log_mel: Tensor
    labels: Tensor
    indices: Tensor
    failures: tuple[str, ...] = field(default=())

    def pin_memory(self) -> StreamBatch:
        return StreamBatch(
            self.log_mel.pin_memory(), self.labels.pin_memory(), self.indices.pin_memory(), self.failures
        )


def collate_stream(items: Sequence[StreamItem]) -> StreamBatch:
    """Stack the readable items of a batch; unreadable ones go to :attr:`StreamBatch.failures`.

    A batch whose every clip failed has ``B = 0`` (``log_mel`` ``[0, 0, 0]``).
    """
    good = [it for it in items if it.log_mel is not None]
    failures = tuple(it.failure for it in items if it.log_mel is None)
    if not good:
        empty = torch.zeros(0, dtype=torch.long)
        return StreamBatch(torch.zeros(0, 0, 0), empty, empty, failures)
    x = torch.stack([it.log_mel for it in good if it.log_mel is not None])
    y = torch.tensor([it.label for it in good], dtype=torch.long)
    idx = torch.tensor([it.index for it in good], dtype=torch.long)
    return StreamBatch(x, y, idx, failures)


class StreamingAudioDataset(torch.utils.data.Dataset):
    """One split of a :class:`CorpusIndex`, decoded and turned into log-mel per item.

    Args:
        index: the corpus listing.
        split: ``train``, ``val`` or ``test``; or an explicit ``[n]`` array of corpus
            positions.
        mel: the model's :class:`MelConfig` (its ``sample_rate`` is the rate clips are
            decoded at).
        clip_seconds: every clip is centre-cropped / zero-padded to this length
            (:func:`diffres.audio.fit_length`).
        resample: keyword-only; True (default) resamples other rates to ``mel.sample_rate``;
            False refuses them (the item fails, naming both rates).
        cache_dir: keyword-only; a folder for :class:`FeatureCache`, or None for no cache.

    ``ds[i]`` is a :class:`StreamItem` whose ``log_mel`` is ``[T, F]`` with
    ``T = 1 + clip_samples // hop_length`` and ``F = mel.n_mels``.  Decoding runs in the
    calling process: a ``DataLoader`` with workers spreads it over them.
    """

    def __init__(
        self,
        index: CorpusIndex,
        split: str | np.ndarray,
        *,
        mel: MelConfig,
        clip_seconds: float,
        resample: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        mel.validate()
        if not (0.05 <= float(clip_seconds) <= 60.0):
            raise ParameterError(f"clip_seconds must be in [0.05, 60] s, got {clip_seconds!r}.")
        self.index = index
        self.positions = index.split_indices(split) if isinstance(split, str) else np.asarray(split, dtype=np.int64)
        self.mel_config = mel
        self.clip_samples = int(round(float(clip_seconds) * mel.sample_rate))
        self.resample = bool(resample)
        self.n_frames = 1 + self.clip_samples // mel.hop_length
        settings = {"mel": asdict(mel), "clip_samples": self.clip_samples, "resample": self.resample, "v": 1}
        self.cache = FeatureCache(cache_dir, settings) if cache_dir is not None else None
        self._frontend: MelFrontend | None = None  # built lazily, once per worker

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    def _mel(self) -> MelFrontend:
        if self._frontend is None:
            self._frontend = MelFrontend.from_config(self.mel_config)
        return self._frontend

    def _features(self, data: bytes) -> np.ndarray:
        clip = load_clip(data, None if not self.resample else self.mel_config.sample_rate, _MAX_FILE_SECONDS, trim=True)
        if clip.sample_rate != self.mel_config.sample_rate:
            raise AudioError(
                f"its sample rate is {clip.sample_rate} Hz and the model's is {self.mel_config.sample_rate} Hz; "
                "leave resampling on or convert the file"
            )
        wave = torch.from_numpy(fit_length(clip.samples, self.clip_samples).copy())
        with torch.no_grad():
            return self._mel()(wave)[0].numpy()  # [T, F]

    def __getitem__(self, i: int) -> StreamItem:
        pos = int(self.positions[i])
        label = int(self.index.labels[pos])
        try:
            data = self.index.path(pos).read_bytes()
            key = hashlib.blake2b(data, digest_size=16).hexdigest() if self.cache is not None else ""
            feats = self.cache.get(key) if self.cache is not None else None
            if feats is None or feats.shape != (self.n_frames, self.mel_config.n_mels):
                feats = self._features(data)
                if self.cache is not None:
                    self.cache.put(key, feats)
            return StreamItem(torch.from_numpy(np.asarray(feats, dtype=np.float32)), label, pos)
        except (ValueError, OSError, RuntimeError, EOFError) as exc:  # AudioError is a ValueError
            reason = str(exc).strip() or type(exc).__name__
            reason = reason.replace(str(self.index.root), "<corpus>")  # no path of this machine
            return StreamItem(None, label, pos, f"{self.index.relpath(pos)}: {reason}")


def estimate_clip_seconds(index: CorpusIndex, *, n_files: int = 64, seed: int = 0) -> float:
    """Median length in seconds of a seeded sample of ``n_files`` training clips, clamped
    to [0.5, 10] s and rounded to ms (the rule of :func:`diffres.datasets.load_folder_dataset`).

    Raises:
        DatasetError: none of the sampled clips could be read.
    """
    from .folders import MAX_CLIP_SECONDS, MIN_CLIP_SECONDS

    train = index.split_indices("train")
    pool = train if train.size else np.arange(len(index))
    rng = np.random.default_rng(seed)
    pick = rng.choice(pool, size=min(n_files, pool.size), replace=False)
    lengths = []
    for pos in pick:
        try:
            clip = load_clip(index.path(int(pos)), None, _MAX_FILE_SECONDS, trim=True)
            lengths.append(clip.samples.shape[0] / clip.sample_rate)
        except (ValueError, OSError, RuntimeError, EOFError):
            continue
    if not lengths:
        raise DatasetError(f"none of {pick.size} sampled clips of {index.name!r} could be read.")
    return round(float(np.clip(np.median(lengths), MIN_CLIP_SECONDS, MAX_CLIP_SECONDS)), 3)
