"""``rhythms``: short percussive patterns whose *fine timing* decides the class.

The case DiffRes is for: a few tens of milliseconds of structure at an unknown place in
seconds of background.  Each clip is 3 s of background noise with one to three copies of a
pattern of short hits (clicks, taps, chirps, plucks, wood blocks, metal pings) at random
times; at most about 15 % of the clip is active.  The class is the pattern's inter-onset
structure, on two scales:

- coarse, resolved by a 10 ms hop (onsets at least two frames apart) and lost by a
  40 ms one (a fixed 4:1 pooling): ``single`` (one hit), ``double`` (two hits 20-30 ms
  apart), ``triple`` (three hits, gaps 20-30 ms), ``long_short`` (gaps 40-50 ms then
  20-26 ms), ``short_long`` (the reverse);
- fine, onsets 3-8 ms apart, finer than a 10 ms hop resolves: ``flam`` (a soft grace
  note 4-8 ms before the main hit), ``drag`` (two soft grace notes 3-6 ms apart, then the
  main hit), ``flam_double`` (a flam, then a plain hit 20-30 ms later).

Every hit's level, the pattern's level, the timbre's decay and pitch, and the background's
colour and level vary per clip, so the only stable cue is the onset pattern.

Held out: the test split uses two timbres (wood blocks, metal pings) and two backgrounds
(rain-like crackle, babble-like modulated noise) that training never hears; validation
draws from the training timbres and backgrounds.  numpy only, deterministic per seed.

Each clip's manifest entry records where every pattern copy starts and ends
(``params["events_s"]``, seconds), so benchmarks can measure where a model puts its
resolution.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from ._common import (
    SAMPLE_RATE,
    ClipSpec,
    ProgressFn,
    assign_random_splits,
    clip_rng,
    colored_noise,
    db_to_gain,
    finish,
    render_in_threads,
    rms,
)
from ._common import (
    rounded_uniform as _r,
)

NAME = "rhythms"
VERSION = 1
CLASSES = [
    "single",
    "double",
    "triple",
    "long_short",
    "short_long",
    "flam",
    "drag",
    "flam_double",
]
CLIP_SECONDS = 3.0
DEFAULT_N_PER_CLASS = 300
NEEDS: list[str] = []
TRAIN_TIMBRES = ("click", "tap", "chirp", "pluck")
TEST_TIMBRES = ("wood", "metal")
TRAIN_BACKGROUNDS = ("colored", "hum", "hiss_rumble", "crackle")
TEST_BACKGROUNDS = ("rain", "babble")
SPLIT_POLICY = (
    "test: held-out timbres (wood, metal) over held-out backgrounds (rain, babble); "
    "train and val: the other timbres and backgrounds, val a random 15 % of them"
)
DESCRIPTION = (
    "Synthetic percussive patterns (single, double, triple, long-short, short-long, flam, drag, "
    "flam-double) at random times in 3 s of background noise; the class is the fine timing "
    "between onsets (3-50 ms), generated with numpy."
)
TEST_FRACTION = 0.15
VAL_FRACTION = 0.15
#: Active share of a clip is at most about this (the patterns and their decay).
MAX_ACTIVE_FRACTION = 0.15


def check_requirements() -> None:
    """Nothing to check: numpy only."""


def source_description(n_clips: int, seed: int) -> str:
    return (
        f"Synthetic: {n_clips} three-second clips generated procedurally by diffres.datasets.rhythms "
        f"(numpy, seed {seed}); no recordings. Eight classes of percussive pattern that differ only "
        "in the timing between onsets: single, double and triple hits 20-30 ms apart, long-short and "
        "short-long triplets, and flam, drag and flam-double, whose grace notes sit 3-8 ms before "
        "the main hit (finer than a 10 ms hop). One to three copies of the pattern at random times "
        "in background noise; hit and pattern levels, decay, pitch, noise colour and SNR vary per "
        "clip. Split: the test split uses timbres (wood block, metal ping) and backgrounds (rain, "
        "babble-like noise) never heard in training; validation is a random 15 % of the rest."
    )


# ---------------------------------------------------------------------------- planning


#: Each pattern: the gaps between its onsets as (low, high) ms ranges, and each hit's kind
#: (``main``: near 0 dB; ``grace``: a quiet grace note before it).
_PATTERNS: dict[str, tuple[tuple[tuple[float, float], ...], tuple[str, ...]]] = {
    "single": ((), ("main",)),
    "double": (((20, 30),), ("main", "main")),
    "triple": (((20, 30), (20, 30)), ("main", "main", "main")),
    "long_short": (((40, 50), (20, 26)), ("main", "main", "main")),
    "short_long": (((20, 26), (40, 50)), ("main", "main", "main")),
    "flam": (((4, 8),), ("grace", "main")),
    "drag": (((3, 6), (3, 6)), ("grace", "grace", "main")),
    "flam_double": (((4, 8), (20, 30)), ("grace", "main", "main")),
}
_LEVELS_DB = {"main": (-2.5, 0.0), "grace": (-10.0, -4.0)}


def pattern_onsets(label: str, rng: np.random.Generator) -> tuple[list[float], list[float]]:
    """Onset times (ms, first at 0) and levels (dB, main hits near 0) of one pattern.

    The gaps are drawn first, in order, then the levels (the generator's draw order).
    """
    gaps, kinds = _PATTERNS[label]
    onsets = [0.0]
    for lo, hi in gaps:
        onsets.append(onsets[-1] + _r(rng, lo, hi, 2))
    return onsets, [_r(rng, *_LEVELS_DB[kind], 2) for kind in kinds]


def onset_times_s(params: dict[str, Any]) -> list[float]:
    """Every hit onset of a clip in seconds, from its manifest ``params``: each pattern copy's
    start plus the pattern's onsets, copy by copy.

    Example:
        >>> onset_times_s({"copies": [{"start_s": 1.0}, {"start_s": 2.0}], "onsets_ms": [0.0, 25.0]})
        [1.0, 1.025, 2.0, 2.025]
    """
    return [c["start_s"] + t / 1000.0 for c in params["copies"] for t in params["onsets_ms"]]


def _timbre_params(timbre: str, rng: np.random.Generator) -> dict[str, Any]:
    if timbre == "click":
        return {"freq_hz": _r(rng, 1500, 6000, 1), "decay_ms": _r(rng, 0.8, 4.0, 2)}
    if timbre == "tap":
        return {"decay_ms": _r(rng, 3.0, 14.0, 2), "tilt": _r(rng, -0.9, 0.9, 3)}
    if timbre == "chirp":
        f1 = _r(rng, 600, 5000, 1)
        return {
            "f1_hz": f1,
            "f2_hz": round(f1 * float(rng.choice([0.5, 2.0])) * _r(rng, 0.8, 1.2), 1),
            "length_ms": _r(rng, 6.0, 16.0, 2),
        }
    if timbre == "pluck":
        return {"f0_hz": _r(rng, 150, 900, 1), "decay_ms": _r(rng, 12.0, 35.0, 2), "brightness": _r(rng, 0.3, 0.9, 3)}
    if timbre == "wood":
        return {"freq_hz": _r(rng, 700, 2600, 1), "decay_ms": _r(rng, 4.0, 15.0, 2)}
    if timbre == "metal":
        return {"freq_hz": _r(rng, 1800, 4500, 1), "decay_ms": _r(rng, 8.0, 28.0, 2)}
    raise AssertionError(timbre)


def _background_params(kind: str, rng: np.random.Generator) -> dict[str, Any]:
    p: dict[str, Any] = {"kind": kind, "exponent": _r(rng, 0.0, 2.0, 2)}
    if kind == "hum":
        p["hum_hz"] = float(rng.choice([50.0, 60.0]))
        p["hum_db"] = _r(rng, -12.0, 0.0, 2)
    elif kind == "hiss_rumble":
        p["rumble_hz"] = _r(rng, 60.0, 250.0, 1)
        p["rumble_db"] = _r(rng, -6.0, 6.0, 2)
    elif kind == "crackle":  # sparse vinyl-like ticks: transients that are not the pattern
        p["ticks_per_s"] = _r(rng, 2.0, 20.0, 2)
        p["tick_db"] = _r(rng, -6.0, 6.0, 2)
    elif kind == "rain":
        p["drops_per_s"] = _r(rng, 150.0, 700.0, 1)
        p["drop_db"] = _r(rng, -6.0, 0.0, 2)
    elif kind == "babble":
        p["mod_hz"] = _r(rng, 2.5, 6.0, 2)
        p["band_hz"] = [_r(rng, 200, 500, 1), _r(rng, 2000, 4000, 1)]
    return p


def _place_patterns(rng: np.random.Generator, n_copies: int, span_s: float) -> list[float]:
    """Start times (s) of ``n_copies`` patterns of up to ``span_s`` each, at least 0.3 s apart,
    inside the clip with 0.15 s margins."""
    lo, hi = 0.15, CLIP_SECONDS - 0.15 - span_s
    for _ in range(200):
        starts = sorted(float(rng.uniform(lo, hi)) for _ in range(n_copies))
        if all(b - a >= span_s + 0.3 for a, b in pairwise(starts)):
            return [round(s, 4) for s in starts]
    return [round(lo + k * (span_s + 0.3), 4) for k in range(n_copies)]


def plan(seed: int, n_per_class: int) -> list[ClipSpec]:
    """Clip specs for every class: ids, split, timbre, background, pattern timings."""
    specs: list[ClipSpec] = []
    for ci, label in enumerate(CLASSES):
        rng = clip_rng(seed, 1, ci)
        n_test = max(1, int(round(n_per_class * TEST_FRACTION))) if n_per_class >= 3 else 0
        rest = assign_random_splits(n_per_class - n_test, rng, (1.0 - VAL_FRACTION, VAL_FRACTION, 0.0))
        splits = rest + ["test"] * n_test
        order = rng.permutation(n_per_class)
        splits = [splits[k] for k in order]
        for i in range(n_per_class):
            prng = clip_rng(seed, 2, ci, i)
            held_out = splits[i] == "test"
            timbre = str(prng.choice(TEST_TIMBRES if held_out else TRAIN_TIMBRES))
            background = str(prng.choice(TEST_BACKGROUNDS if held_out else TRAIN_BACKGROUNDS))
            onsets, levels = pattern_onsets(label, prng)
            tparams = _timbre_params(timbre, prng)
            tail_s = _tail_seconds(timbre, tparams)
            span_s = onsets[-1] / 1000.0 + tail_s
            # one to three copies, as many as keep the active share within MAX_ACTIVE_FRACTION
            most = max(1, min(3, int(MAX_ACTIVE_FRACTION * CLIP_SECONDS / span_s)))
            n_copies = int(prng.integers(1, most + 1))
            starts = _place_patterns(prng, n_copies, span_s)
            copies = []
            for s in starts:
                copies.append(
                    {
                        "start_s": s,
                        "level_db": _r(prng, -6.0, 0.0, 2),
                        "jitter_db": [_r(prng, -1.5, 1.5, 2) for _ in onsets],
                    }
                )
            params: dict[str, Any] = {
                "timbre": timbre,
                "timbre_params": tparams,
                "background": _background_params(background, prng),
                "onsets_ms": onsets,
                "levels_db": levels,
                "copies": copies,
                "snr_db": _r(prng, 12.0, 32.0, 2),
                "peak_db": _r(prng, -18.0, -1.0, 2),
                # where the patterns are (hit onsets to the end of the last hit's decay)
                "events_s": [[s, round(s + span_s, 4)] for s in starts],
                "rng_seed": int(prng.integers(0, 2**31 - 1)),
            }
            specs.append(ClipSpec(f"{label}_{i:04d}", label, splits[i], params))
    return specs


# ---------------------------------------------------------------------------- rendering


def _tail_seconds(timbre: str, p: dict[str, Any]) -> float:
    """How long one hit of this timbre lasts (to about -40 dB), in seconds."""
    if timbre == "chirp":
        return p["length_ms"] / 1000.0
    return 4.6 * p["decay_ms"] / 1000.0  # exp(-t / tau) reaches -40 dB at 4.6 tau


def _click_or_wood(timbre: str, p: dict[str, Any], t: np.ndarray, vary: float, rng: np.random.Generator) -> np.ndarray:
    tau = p["decay_ms"] / 1000.0
    x = np.sin(2 * np.pi * p["freq_hz"] * vary * t) * np.exp(-t / tau)
    if timbre == "wood":
        x += 0.5 * np.sin(2 * np.pi * p["freq_hz"] * 2.7 * vary * t) * np.exp(-t / (0.4 * tau))
    x[:8] += rng.standard_normal(8) * 0.5  # the strike
    return x


def _tap(timbre: str, p: dict[str, Any], t: np.ndarray, vary: float, rng: np.random.Generator) -> np.ndarray:
    tau = p["decay_ms"] / 1000.0
    noise = rng.standard_normal(t.size)
    if p["tilt"] > 0:  # brighter: first difference
        noise = noise + p["tilt"] * np.concatenate([[0.0], np.diff(noise)])
    else:  # darker: one-pole low-pass
        from scipy.signal import lfilter

        a = -p["tilt"]
        noise = lfilter([1.0 - a], [1.0, -a], noise)
    return noise * np.exp(-t / tau)


def _chirp(timbre: str, p: dict[str, Any], t: np.ndarray, vary: float, rng: np.random.Generator) -> np.ndarray:
    n = t.size
    f = np.linspace(p["f1_hz"], p["f2_hz"], n) * vary
    return np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE) * np.hanning(n)


def _pluck(timbre: str, p: dict[str, Any], t: np.ndarray, vary: float, rng: np.random.Generator) -> np.ndarray:
    tau = p["decay_ms"] / 1000.0
    f0 = p["f0_hz"] * vary
    x = np.zeros(t.size)
    for h in range(1, 12):
        if h * f0 > 7500:
            break
        x += (p["brightness"] ** (h - 1)) * np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 6.3)) * np.exp(-t * h / tau)
    x *= np.clip(t / 0.0008, 0, 1)
    return x


def _metal(timbre: str, p: dict[str, Any], t: np.ndarray, vary: float, rng: np.random.Generator) -> np.ndarray:
    tau = p["decay_ms"] / 1000.0
    x = np.zeros(t.size)
    for ratio, amp in ((1.0, 1.0), (1.48, 0.7), (2.03, 0.5), (2.76, 0.35)):
        if p["freq_hz"] * ratio * vary < 7500:
            x += (
                amp
                * np.sin(2 * np.pi * p["freq_hz"] * ratio * vary * t + rng.uniform(0, 6.3))
                * np.exp(-t * ratio / tau)
            )
    x *= np.clip(t / 0.0005, 0, 1)
    return x


_HITS: dict[str, Callable[[str, dict[str, Any], np.ndarray, float, np.random.Generator], np.ndarray]] = {
    "click": _click_or_wood,
    "wood": _click_or_wood,
    "tap": _tap,
    "chirp": _chirp,
    "pluck": _pluck,
    "metal": _metal,
}


def _hit(timbre: str, p: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """One hit (float64, peak about 1), slightly varied from hit to hit."""
    sr = SAMPLE_RATE
    n = max(8, int(np.ceil(_tail_seconds(timbre, p) * sr)))
    t = np.arange(n) / sr
    vary = 1.0 + 0.03 * rng.standard_normal()
    x = _HITS[timbre](timbre, p, t, vary, rng)
    peak = float(np.max(np.abs(x))) or 1.0
    return x / peak


def _background(p: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    x = colored_noise(n, rng, p["exponent"])
    kind = p["kind"]
    if kind == "hum":
        hum = sum(np.sin(2 * np.pi * p["hum_hz"] * h * t + rng.uniform(0, 6.3)) / h for h in (1, 2, 3, 4, 5))
        x = x + db_to_gain(p["hum_db"]) * hum / rms(hum)
    elif kind == "hiss_rumble":
        rumble = np.sin(2 * np.pi * p["rumble_hz"] * t + rng.uniform(0, 6.3)) * (1 + 0.3 * np.sin(2 * np.pi * 0.7 * t))
        x = colored_noise(n, rng, 0.0) + db_to_gain(p["rumble_db"]) * rumble / rms(rumble)
    elif kind == "crackle":
        n_ticks = max(1, int(p["ticks_per_s"] * CLIP_SECONDS))
        ticks = np.zeros(n)
        np.add.at(ticks, rng.integers(0, n, n_ticks), rng.standard_normal(n_ticks) * rng.uniform(0.3, 1.0, n_ticks))
        ticks = np.convolve(ticks, np.exp(-np.arange(int(0.001 * SAMPLE_RATE)) / (0.0002 * SAMPLE_RATE)))[:n]
        x = x + db_to_gain(p["tick_db"]) * ticks / rms(ticks) * 0.3
    elif kind == "rain":
        n_drops = int(p["drops_per_s"] * CLIP_SECONDS)
        drops = np.zeros(n)
        where = rng.integers(0, n, n_drops)
        np.add.at(drops, where, rng.standard_normal(n_drops) * rng.uniform(0.2, 1.0, n_drops))
        kernel = np.exp(-np.arange(int(0.002 * SAMPLE_RATE)) / (0.0004 * SAMPLE_RATE))
        drops = np.convolve(drops, kernel)[:n]
        x = x + db_to_gain(p["drop_db"]) * drops / rms(drops)
    elif kind == "babble":
        lo, hi = p["band_hz"]
        spec = np.fft.rfft(colored_noise(n, rng, 1.0))
        f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
        spec[(f < lo) | (f > hi)] *= 0.05
        band = np.fft.irfft(spec, n)
        env = 1.0 + 0.8 * np.sin(2 * np.pi * p["mod_hz"] * t + rng.uniform(0, 6.3)) * (
            0.6 + 0.4 * np.sin(2 * np.pi * 0.37 * p["mod_hz"] * t)
        )
        x = 0.3 * x + band * env / rms(band)
    return x / rms(x)


def render_clip(spec: ClipSpec) -> np.ndarray:
    """Float32 samples of one clip (``CLIP_SECONDS`` at 16 kHz)."""
    p = spec.params
    rng = np.random.default_rng(p["rng_seed"])
    n = int(round(CLIP_SECONDS * SAMPLE_RATE))
    events = np.zeros(n)
    for copy in p["copies"]:
        for onset_ms, level_db, jitter_db in zip(p["onsets_ms"], p["levels_db"], copy["jitter_db"], strict=True):
            hit = _hit(p["timbre"], p["timbre_params"], rng) * db_to_gain(level_db + jitter_db + copy["level_db"])
            start = int(round((copy["start_s"] + onset_ms / 1000.0) * SAMPLE_RATE))
            stop = min(n, start + hit.size)
            events[start:stop] += hit[: stop - start]
    background = _background(p["background"], n, rng)
    loud = np.abs(events) > 1e-3 * np.max(np.abs(events))
    level = rms(events[loud])
    x = events / level + background * db_to_gain(-p["snr_db"])
    return finish(x, p["peak_db"])


def render(specs: list[ClipSpec], out_dir: Path, progress: ProgressFn) -> None:
    """Render and write every spec (two threads); ``progress(1, 0, clip_id)`` per clip."""
    render_in_threads(specs, out_dir, progress, render_clip)
