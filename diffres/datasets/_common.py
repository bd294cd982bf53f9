"""Helpers shared by the dataset generators: clip specs, seeded RNGs, signal utilities, I/O.

Everything here is private to :mod:`diffres.datasets`; the public surface is re-exported by
the package ``__init__``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import SAMPLE_RATE, save_wav
from ..errors import DatasetError

ProgressFn = Callable[[int, int, str], None]


SPLITS = ("train", "val", "test")


# ---------------------------------------------------------------------------- helpers


@dataclass
class ClipSpec:
    """One clip to generate: everything needed to render it deterministically.

    Attributes:
        clip_id: file stem, unique inside the dataset (``<class>_<index>`` style).
        label: class folder name.
        split: ``"train"``, ``"val"`` or ``"test"``.
        params: JSON-serialisable generator parameters (voice, soundfont, program, SNR...),
            including ``rng_seed``, the seed of the clip's own random generator.
    """

    clip_id: str
    label: str
    split: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def relpath(self) -> str:
        return f"{self.label}/{self.clip_id}.wav"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.clip_id,
            "class": self.label,
            "split": self.split,
            "path": self.relpath,
            "params": self.params,
        }


def rounded_uniform(rng: np.random.Generator, lo: float, hi: float, nd: int = 4) -> float:
    """A uniform draw in ``[lo, hi)`` rounded to ``nd`` decimals (clip parameters are stored as
    JSON in the manifest; rounded values read back exactly)."""
    return round(float(rng.uniform(lo, hi)), nd)


def render_in_threads(
    specs: list[ClipSpec], out_dir: Path, progress: ProgressFn, render_clip: Callable[[ClipSpec], np.ndarray]
) -> None:
    """Render every spec with ``render_clip`` and write it under ``out_dir``; calls
    ``progress(1, 0, clip_id)`` per clip (a step).

    Two threads: the work is whole-array numpy, which releases the GIL.  Each clip depends
    only on its own spec, so the order of completion does not change any byte."""
    from concurrent.futures import ThreadPoolExecutor

    def one(spec: ClipSpec) -> str:
        write_wav(out_dir / spec.relpath, render_clip(spec))
        return spec.clip_id

    with ThreadPoolExecutor(max_workers=2) as pool:
        for clip_id in pool.map(one, specs):
            progress(1, 0, clip_id)


def noop_progress(done: int, total: int, message: str) -> None:
    """Progress callback that does nothing."""


def clip_rng(seed: int, *keys: int) -> np.random.Generator:
    """A generator seeded from ``seed`` and integer keys; never touches the global RNG."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *[int(k) & 0xFFFFFFFF for k in keys]])


def stable_int(text: str) -> int:
    """A stable 32-bit integer from a string (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "little")


def assign_random_splits(
    n: int, rng: np.random.Generator, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
) -> list[str]:
    """Random split labels for ``n`` items in the given train/val/test proportions.

    With ``n >= 3`` at least one item goes to val and one to test; with ``n == 2`` one goes
    to train and one to val.
    """
    if n <= 0:
        return []
    f_train, f_val, f_test = fractions
    total = f_train + f_val + f_test
    n_val = int(round(n * f_val / total))
    n_test = int(round(n * f_test / total))
    if n >= 3:
        n_val = max(1, n_val) if f_val > 0 else 0
        n_test = max(1, n_test) if f_test > 0 else 0
    elif n == 2:
        n_val, n_test = (1 if f_val > 0 else 0), 0
    else:
        n_val, n_test = 0, 0
    while n_val + n_test > n - 1 and n_val + n_test > 0:  # keep one training item
        if n_test >= n_val and n_test > 0:
            n_test -= 1
        else:
            n_val -= 1
    labels = ["train"] * (n - n_val - n_test) + ["val"] * n_val + ["test"] * n_test
    order = rng.permutation(n)
    out = [""] * n
    for pos, idx in enumerate(order):
        out[idx] = labels[pos]
    return out


# ---------------------------------------------------------------------------- signals


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def speed_perturb(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``x`` ``factor`` times faster (pitch and tempo both scale), by resampling."""
    if abs(factor - 1.0) < 1e-4:
        return x.astype(np.float32, copy=False)
    # resample by a rational approximation of 1/factor, denominators up to 200
    from fractions import Fraction

    from scipy.signal import resample_poly

    frac = Fraction(1.0 / factor).limit_denominator(200)
    return resample_poly(x.astype(np.float64), frac.numerator, frac.denominator).astype(np.float32)


def trim_silence(
    x: np.ndarray, sample_rate: int, *, threshold_db: float = -50.0, margin_ms: float = 50.0
) -> np.ndarray:
    """Cut leading and trailing 10 ms frames quieter than ``threshold_db`` dBFS (RMS),
    keeping ``margin_ms`` on each side. Returns ``x`` unchanged if nothing is louder."""
    hop = max(1, int(sample_rate * 0.01))
    n_frames = len(x) // hop
    if n_frames == 0:
        return x
    frames = x[: n_frames * hop].reshape(n_frames, hop).astype(np.float64)
    level = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-20)
    loud = np.flatnonzero(level > threshold_db)
    if loud.size == 0:
        return x
    margin = int(sample_rate * margin_ms / 1000.0)
    start = max(0, loud[0] * hop - margin)
    end = min(len(x), (loud[-1] + 1) * hop + margin)
    return x[start:end]


def colored_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    white = rng.standard_normal(n)
    if exponent == 0:
        out = white
    else:
        spec = np.fft.rfft(white)
        f = np.arange(spec.size, dtype=np.float64)
        f[0] = 1.0
        spec = spec / f ** (exponent / 2.0)
        spec[0] = 0.0
        out = np.fft.irfft(spec, n)
    return (out / (rms(out) + 1e-12)).astype(np.float64)


def place(word: np.ndarray, n_samples: int, offset: int) -> np.ndarray:
    """Put ``word`` into a zero clip of ``n_samples`` at ``offset`` (may be negative / run
    past the end: the overhang is cut)."""
    out = np.zeros(n_samples, dtype=np.float64)
    src0 = max(0, -offset)
    dst0 = max(0, offset)
    n = min(len(word) - src0, n_samples - dst0)
    if n > 0:
        out[dst0 : dst0 + n] = word[src0 : src0 + n]
    return out


def finish(x: np.ndarray, peak_db: float) -> np.ndarray:
    """Scale to a peak of ``peak_db`` dBFS and return float32 within [-1, 1]."""
    x = np.asarray(x, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0:
        x = x * (db_to_gain(peak_db) / peak)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------- I/O


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``, so
    an interrupted build never leaves a truncated file that a resumed build takes as done."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write a 16-bit PCM WAV atomically (see :func:`write_atomic`)."""
    write_atomic(path, lambda tmp: save_wav(tmp, np.asarray(samples, dtype=np.float32), sample_rate))


def require_tool(executable: str, apt_package: str) -> str:
    """Path of ``executable`` or a DatasetError naming the apt package to install."""
    found = shutil.which(executable)
    if not found:
        raise DatasetError(f"{executable} not found: apt-get install {apt_package} (or run scripts/setup.sh as root)")
    return found


def require_file(path: str, apt_package: str, what: str) -> None:
    if not Path(path).is_file():
        raise DatasetError(f"{what} not found at {path}: apt-get install {apt_package}")
