"""``events``: procedural everyday sounds whose *temporal* structure differs.

The motivating case of DiffRes (Liu et al., "Learning the Spectrogram Temporal Resolution
for Audio Classification", AAAI 2024): an alarm clock changes every few tens of ms, a siren
barely changes within 100 ms. Every class here is a parametric signal plus background noise;
pitch, rate, duty cycle, onset, duration, loudness, noise colour and SNR vary per clip, and
events may start before or run past the clip edges (partially cut). numpy only.
"""

from __future__ import annotations

from collections.abc import Callable
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

NAME = "events"
VERSION = 2
CLASSES = [
    "alarm_clock",
    "background",
    "car_horn",
    "doorbell",
    "knock",
    "phone_ring",
    "siren",
    "smoke_alarm",
]
CLIP_SECONDS = 2.0
DEFAULT_N_PER_CLASS = 150
NEEDS: list[str] = []
SPLIT_POLICY = "random per clip: 70% train, 15% val, 15% test (stratified by class)"
DESCRIPTION = (
    "Synthetic everyday alarms and signals (alarm clock, siren, smoke alarm, car horn, "
    "doorbell, phone ring, knock, background), 2 s clips generated procedurally with numpy."
)


def check_requirements() -> None:
    """Nothing to check: numpy only."""


def source_description(n_clips: int, seed: int) -> str:
    return (
        f"Synthetic: {n_clips} two-second clips generated procedurally by diffres.datasets.events "
        f"(numpy, seed {seed}); no recordings. Eight classes whose temporal structure differs "
        "(fast beeping alarm clock, slowly sweeping siren, on/off smoke alarm, steady car-horn "
        "chord, decaying two-tone doorbell, trilling phone ring, broadband knocks, and noise/hum "
        "background). Pitch, repetition rate, duty cycle, onset, duration, loudness, background "
        "noise colour and SNR vary per clip; some events are cut by the clip edges. Real sounds "
        "differ; accuracy here does not transfer to recordings without further training. "
        "Split: random per clip (70/15/15)."
    )


# ---------------------------------------------------------------------------- planning


def plan(seed: int, n_per_class: int) -> list[ClipSpec]:
    """Clip specs for every class: ids, random per-clip split, per-clip parameters."""
    specs: list[ClipSpec] = []
    for ci, label in enumerate(CLASSES):
        rng = clip_rng(seed, 1, ci)
        splits = assign_random_splits(n_per_class, rng)
        for i in range(n_per_class):
            prng = clip_rng(seed, 2, ci, i)
            params = _sample_params(label, prng)
            params["rng_seed"] = int(prng.integers(0, 2**31 - 1))
            specs.append(ClipSpec(f"{label}_{i:04d}", label, splits[i], params))
    return specs


def _sample_params(label: str, rng: np.random.Generator) -> dict[str, Any]:
    p: dict[str, Any] = {
        "snr_db": _r(rng, -3.0, 30.0, 2),
        "noise_exponent": _r(rng, 0.0, 2.0, 2),
        "hum_hz": float(rng.choice([0.0, 50.0, 60.0])),
        "peak_db": _r(rng, -20.0, -1.0, 2),
        # onset may be before the clip start (cut) or late (event runs past the end)
        "onset_s": _r(rng, -0.4, 1.2, 3),
    }
    if label == "alarm_clock":
        p.update(
            f0_hz=_r(rng, 800, 4000, 1),
            beep_s=_r(rng, 0.03, 0.14),
            gap_s=_r(rng, 0.03, 0.09),
            beeps_per_group=int(rng.integers(2, 6)),
            group_pause_s=_r(rng, 0.1, 0.45),
            square=bool(rng.random() < 0.5),
            duration_s=_r(rng, 0.8, 2.4, 3),
        )
    elif label == "smoke_alarm":
        p.update(
            f0_hz=_r(rng, 2000, 4000, 1),
            on_s=_r(rng, 0.15, 0.6),
            off_s=_r(rng, 0.12, 0.5),
            n_on=int(rng.integers(2, 5)),
            cycle_pause_s=_r(rng, 0.3, 1.5),
            duration_s=_r(rng, 1.0, 2.4, 3),
        )
    elif label == "siren":
        p.update(
            f_lo_hz=_r(rng, 350, 1000, 1),
            f_hi_ratio=_r(rng, 1.4, 2.4),
            period_s=_r(rng, 0.9, 4.0),
            shape=str(rng.choice(["sine", "triangle"])),
            phase=_r(rng, 0.0, 1.0),
            n_harmonics=int(rng.integers(1, 5)),
            duration_s=_r(rng, 1.2, 2.6, 3),
        )
    elif label == "car_horn":
        p.update(
            f0_hz=_r(rng, 250, 650, 1),
            interval=_r(rng, 1.18, 1.34),
            n_honks=int(rng.integers(1, 3)),
            honk_s=_r(rng, 0.25, 1.4),
            honk_gap_s=_r(rng, 0.1, 0.35),
            attack_s=_r(rng, 0.005, 0.04),
            duration_s=2.0,
        )
    elif label == "doorbell":
        f1 = _r(rng, 400, 1400, 1)
        p.update(
            f1_hz=f1,
            f2_ratio=float(rng.choice([0.8, 0.75, 0.667, 0.84])),
            gap_s=_r(rng, 0.25, 0.7),
            tau_s=_r(rng, 0.2, 0.8),
            inharmonic=_r(rng, 2.5, 3.1),
            n_rings=int(rng.integers(1, 3)),
            duration_s=2.0,
        )
    elif label == "phone_ring":
        p.update(
            f0_hz=_r(rng, 600, 2800, 1),
            trill_hz=_r(rng, 12.0, 28.0, 2),
            trill_depth=_r(rng, 0.04, 0.25),
            burst_s=_r(rng, 0.3, 1.0),
            burst_gap_s=_r(rng, 0.15, 0.5),
            fm=bool(rng.random() < 0.5),
            duration_s=_r(rng, 0.8, 2.4, 3),
        )
    elif label == "knock":
        p.update(
            n_knocks=int(rng.integers(2, 7)),
            interval_s=_r(rng, 0.09, 0.35),
            jitter=_r(rng, 0.0, 0.25),
            decay_ms=_r(rng, 4.0, 30.0, 2),
            body_hz=_r(rng, 90, 400, 1),
            duration_s=2.0,
        )
    elif label == "background":
        p.update(
            n_layers=int(rng.integers(1, 4)),
            mod_hz=_r(rng, 0.1, 3.0),
            mod_depth=_r(rng, 0.0, 0.6),
            # a steady appliance whine or hum in 40% of clips: tonal, but no temporal pattern
            whine_hz=_r(rng, 100, 3000, 1) if rng.random() < 0.4 else 0.0,
            whine_db=_r(rng, -25, -8, 2),
        )
        p["snr_db"] = 0.0
    if label in ("car_horn", "doorbell", "knock"):
        # discrete events: keep the first one (at least its start) inside the clip
        p["onset_s"] = _r(rng, -0.05, 1.3, 3)
    return p


# ---------------------------------------------------------------------------- rendering


def _envelope_gate(t: np.ndarray, on: np.ndarray, ramp_s: float = 0.004) -> np.ndarray:
    """Smooth a 0/1 gate with a short raised-cosine ramp to avoid clicks."""
    n = max(1, int(ramp_s * SAMPLE_RATE))
    k = np.hanning(2 * n + 1)
    k /= k.sum()
    return np.convolve(on.astype(np.float64), k, mode="same")


_NYQUIST_GUARD_HZ = 7500.0


def _tone(phase: np.ndarray, f0, square: bool, n_harm: int = 1) -> np.ndarray:
    """Band-limited tone: ``n_harm`` harmonics (1/h amplitudes), or a square-ish wave (odd
    harmonics) when ``square``; harmonics above 7.5 kHz are left out so nothing aliases.
    ``f0`` may be a scalar or an instantaneous-frequency array like ``phase``."""
    out = np.zeros_like(phase)
    harmonics = range(1, 16, 2) if square else range(1, n_harm + 1)
    for h in harmonics:
        keep = np.asarray(h * np.asarray(f0) < _NYQUIST_GUARD_HZ, dtype=np.float64)
        if not np.any(keep):
            break
        out += keep * np.sin(h * phase) / h
    return out


def _alarm_clock(p: dict[str, Any], t: np.ndarray, active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    group = p["beeps_per_group"] * (p["beep_s"] + p["gap_s"]) + p["group_pause_s"]
    tg = np.mod(t, group)
    in_beeps = tg < p["beeps_per_group"] * (p["beep_s"] + p["gap_s"])
    on = in_beeps & (np.mod(tg, p["beep_s"] + p["gap_s"]) < p["beep_s"]) & active
    x = _tone(2 * np.pi * p["f0_hz"] * t, p["f0_hz"], p["square"]) * _envelope_gate(t, on, 0.002)
    return x


def _smoke_alarm(p: dict[str, Any], t: np.ndarray, active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cycle = p["n_on"] * (p["on_s"] + p["off_s"]) + p["cycle_pause_s"]
    tc = np.mod(t, cycle)
    on = (tc < p["n_on"] * (p["on_s"] + p["off_s"])) & (np.mod(tc, p["on_s"] + p["off_s"]) < p["on_s"]) & active
    x = _tone(2 * np.pi * p["f0_hz"] * t, p["f0_hz"], False, 3) * _envelope_gate(t, on)
    return x


def _siren(p: dict[str, Any], t: np.ndarray, active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sr = SAMPLE_RATE
    f_lo, f_hi = p["f_lo_hz"], p["f_lo_hz"] * p["f_hi_ratio"]
    u = np.mod(t / p["period_s"] + p["phase"], 1.0)
    if p["shape"] == "sine":
        lfo = 0.5 - 0.5 * np.cos(2 * np.pi * u)
    else:
        lfo = 1.0 - np.abs(2.0 * u - 1.0)
    f = f_lo + (f_hi - f_lo) * lfo
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = _tone(phase, f, False, p["n_harmonics"]) * _envelope_gate(t, active, 0.05)
    return x


def _car_horn(p: dict[str, Any], t: np.ndarray, active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    on = np.zeros_like(t, dtype=bool)
    start = 0.0
    for _ in range(p["n_honks"]):
        on |= (t >= start) & (t < start + p["honk_s"])
        start += p["honk_s"] + p["honk_gap_s"]
    env = _envelope_gate(t, on, p["attack_s"])
    x = np.zeros_like(t)
    for f in (p["f0_hz"], p["f0_hz"] * p["interval"]):
        ph = 2 * np.pi * f * t
        x += _tone(ph, f, False, 8)  # sawtooth-ish, brassy
    x = x * env
    return x


def _doorbell(p: dict[str, Any], t: np.ndarray, active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = np.zeros_like(t)
    ring = 2 * p["gap_s"] + 0.6
    for r in range(p["n_rings"]):
        for k, f in enumerate((p["f1_hz"], p["f1_hz"] * p["f2_ratio"])):
            tt = t - r * ring - k * p["gap_s"]
            on = tt >= 0
            env = np.where(on, np.exp(-np.maximum(tt, 0) / p["tau_s"]), 0.0)
            env *= np.clip(tt / 0.003, 0, 1)
            x += env * (
                np.sin(2 * np.pi * f * tt)
                + 0.4 * np.sin(2 * np.pi * f * p["inharmonic"] * tt) * np.exp(-np.maximum(tt, 0) / 0.08)
            )
    return x


def _phone_ring(p: dict[str, Any], t: np.ndarray, active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sr = SAMPLE_RATE
    period = p["burst_s"] + p["burst_gap_s"]
    on = (np.mod(t, period) < p["burst_s"]) & active
    trill = np.sin(2 * np.pi * p["trill_hz"] * t)
    if p["fm"]:
        f = p["f0_hz"] * (1.0 + p["trill_depth"] * np.sign(trill))
        x = np.sin(2 * np.pi * np.cumsum(f) / sr)
    else:
        x = np.sin(2 * np.pi * p["f0_hz"] * t) * (0.5 + 0.5 * np.sign(trill))
    x = x * _envelope_gate(t, on, 0.003)
    return x


def _knock(p: dict[str, Any], t: np.ndarray, active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = np.zeros_like(t)
    start = 0.0
    for _ in range(p["n_knocks"]):
        tt = t - start
        on = tt >= 0
        dec = np.where(on, np.exp(-np.maximum(tt, 0) * 1000.0 / p["decay_ms"]), 0.0)
        burst = rng.standard_normal(t.size) * dec
        body = np.sin(2 * np.pi * p["body_hz"] * tt) * np.where(
            on, np.exp(-np.maximum(tt, 0) * 1000.0 / (3 * p["decay_ms"])), 0.0
        )
        x += (0.6 + 0.4 * rng.random()) * (burst + 1.5 * body)
        start += p["interval_s"] * (1.0 + p["jitter"] * rng.uniform(-1, 1))
    return x


_EVENTS: dict[str, Callable[[dict[str, Any], np.ndarray, np.ndarray, np.random.Generator], np.ndarray]] = {
    "alarm_clock": _alarm_clock,
    "smoke_alarm": _smoke_alarm,
    "siren": _siren,
    "car_horn": _car_horn,
    "doorbell": _doorbell,
    "phone_ring": _phone_ring,
    "knock": _knock,
}


def _event(label: str, p: dict[str, Any], t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The event signal on the local time axis ``t`` (seconds since the event onset)."""
    active = (t >= 0) & (t < p.get("duration_s", 2.0))
    return _EVENTS[label](p, t, active, rng)


def _background(p: dict[str, Any], n: int, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = colored_noise(n, rng, p["noise_exponent"])
    if p["hum_hz"] > 0:
        hum = sum(np.sin(2 * np.pi * p["hum_hz"] * h * t + rng.uniform(0, 6.3)) / h for h in (1, 2, 3, 5))
        x = x + db_to_gain(rng.uniform(-20, 0)) * hum / (rms(hum) + 1e-12)
    return x


def render_clip(spec: ClipSpec) -> np.ndarray:
    """Float32 samples of one clip (``CLIP_SECONDS`` at 16 kHz)."""
    p = spec.params
    rng = np.random.default_rng(p["rng_seed"])
    n = int(round(CLIP_SECONDS * SAMPLE_RATE))
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
    bg = _background(p, n, t, rng)
    if spec.label == "background":
        x = bg
        for _ in range(p["n_layers"] - 1):  # extra slowly modulated noise layers (wind, traffic)
            layer = colored_noise(n, rng, float(rng.uniform(0.5, 2.0)))
            mod = 1.0 + p["mod_depth"] * np.sin(2 * np.pi * p["mod_hz"] * t + rng.uniform(0, 6.3))
            x = x + db_to_gain(rng.uniform(-12, 0)) * layer * mod
        if p["whine_hz"] > 0:
            whine = _tone(2 * np.pi * p["whine_hz"] * t, p["whine_hz"], False, 3)
            x = x + db_to_gain(p["whine_db"]) * rms(x) * whine / rms(whine)
    else:
        ev = _event(spec.label, p, t - p["onset_s"], rng)
        level = rms(ev[np.abs(ev) > 1e-4]) if np.any(np.abs(ev) > 1e-4) else rms(ev)
        x = ev / level + bg * db_to_gain(-p["snr_db"])
    return finish(x, p["peak_db"])


def render(specs: list[ClipSpec], out_dir: Path, progress: ProgressFn) -> None:
    """Render and write every spec (two threads); ``progress(1, 0, clip_id)`` per clip."""
    render_in_threads(specs, out_dir, progress, render_clip)
