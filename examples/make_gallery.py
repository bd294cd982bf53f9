"""Rebuild the example gallery in this folder (16 kHz mono 16-bit WAV clips).

The clips are committed, so nobody needs to run this; it documents how each was made.
Sources (Debian packages, install once with
``apt-get install -y --no-install-recommends pocketsphinx-testdata sonic-pi-samples
sound-theme-freedesktop espeak-ng``):

- procedural renders (alarm clock, siren): numpy, below;
- ``pocketsphinx-testdata`` (BSD-2): headerless 16 kHz 16-bit little-endian speech;
- ``sonic-pi-samples`` (CC0 files only, see its copyright file);
- ``sound-theme-freedesktop`` ``bell.oga`` (CC-BY-3.0);
- ``espeak-ng`` (our own rendering of the word "seven").

Run from the repository root: ``python examples/make_gallery.py``.  See NOTICE.md.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffres.audio import load_audio, save_wav  # noqa: E402

OUT = ROOT / "examples"
SR = 16000
SONIC = Path("/usr/share/sonic-pi/samples")
SPHINX = Path("/usr/share/pocketsphinx/test/data")
FREEDESKTOP = Path("/usr/share/sounds/freedesktop/stereo")


def _normalise(x: np.ndarray, peak: float = 0.89) -> np.ndarray:
    m = float(np.max(np.abs(x)))
    return x if m == 0 else x * (peak / m)


def _fade(x: np.ndarray, ms: float = 5.0) -> np.ndarray:
    n = min(len(x) // 2, int(SR * ms / 1000))
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n)
        x = x.copy()
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


def alarm_clock(seconds: float = 6.0) -> np.ndarray:
    """Digital alarm: groups of four 40 ms beeps at 2.8 kHz, 30 ms apart, every 0.8 s.

    The 30 ms gaps are resolved by a 10 ms hop and blurred by a 40 ms hop (the paper's
    opening figure)."""
    rng = np.random.default_rng(20240501)
    t = np.arange(int(SR * seconds)) / SR
    x = np.zeros_like(t)
    beep = int(0.04 * SR)
    tb = np.arange(beep) / SR
    tone = np.sin(2 * np.pi * 2800 * tb) + 0.3 * np.sin(2 * np.pi * 5600 * tb)
    env = np.ones(beep)
    ramp = int(0.002 * SR)
    env[:ramp] = np.linspace(0, 1, ramp)
    env[-ramp:] = np.linspace(1, 0, ramp)
    for group_start in np.arange(0.2, seconds - 0.4, 0.8):
        for k in range(4):
            start = int(round((group_start + k * 0.07) * SR))
            x[start : start + beep] += tone * env
    x += 0.003 * rng.standard_normal(len(x))  # faint room noise
    return _normalise(x, 0.7)


def siren(seconds: float = 6.0) -> np.ndarray:
    """'Wail' siren: a slow up-down sweep 650 Hz <-> 1500 Hz, 3 s per cycle, with harmonics."""
    rng = np.random.default_rng(20240502)
    t = np.arange(int(SR * seconds)) / SR
    period = 3.0
    phase_in_cycle = (t % period) / period
    tri = 1 - np.abs(2 * phase_in_cycle - 1)  # 0 -> 1 -> 0 per cycle
    freq = 650 + (1500 - 650) * (0.5 - 0.5 * np.cos(np.pi * tri))
    phase = 2 * np.pi * np.cumsum(freq) / SR
    x = np.sin(phase) + 0.35 * np.sin(2 * phase) + 0.15 * np.sin(3 * phase)
    x += 0.003 * rng.standard_normal(len(x))
    return _normalise(_fade(x, 20), 0.7)


def from_file(path: Path, max_seconds: float = 10.0) -> np.ndarray:
    x, _ = load_audio(path, SR, max_seconds, trim=True)
    return x


def from_raw_pcm16(path: Path) -> np.ndarray:
    pcm = np.fromfile(path, dtype="<i2").astype(np.float32) / 32768.0
    return pcm


def place(hits: list[tuple[np.ndarray, float, float]], seconds: float) -> np.ndarray:
    """Mix (clip, start_s, gain) triples into a silent track of ``seconds``."""
    out = np.zeros(int(SR * seconds))
    for clip, start, gain in hits:
        i = int(start * SR)
        n = min(len(clip), len(out) - i)
        out[i : i + n] += gain * clip[:n]
    return out


def drum_pattern() -> np.ndarray:
    kick = from_file(SONIC / "bd_808.flac")
    snare = from_file(SONIC / "drum_snare_hard.flac")
    cymbal = from_file(SONIC / "drum_cymbal_open.flac")
    beat = 0.5  # 120 bpm
    hits = [(cymbal, 0.1, 0.5)]
    for bar in range(2):
        base = 0.1 + bar * 4 * beat
        hits += [(kick, base, 1.0), (snare, base + beat, 0.8), (kick, base + 2 * beat, 1.0),
                 (kick, base + 2.5 * beat, 0.8), (snare, base + 3 * beat, 0.8)]
    hits.append((cymbal, 0.1 + 8 * beat, 0.5))
    return _normalise(place(hits, 6.0))


#: The default example: three copies of a triple stroke (onsets 25 ms apart) on a real hit.
TRIPLE_STARTS_S = (0.55, 1.40, 2.25)
TRIPLE_GAP_S = 0.025


def triple_stroke(sample: str = "tabla_te1", seconds: float = 3.0) -> np.ndarray:
    """Three-stroke figures (the ``triple`` class of the ``rhythms`` set: onsets 25 ms apart)
    played with a real recorded hit, three times in 3 s of quiet room-like noise.

    A 10 ms hop resolves the three onsets, a fixed 40 ms hop merges them into one blur:
    DiffRes should keep the strokes apart and merge the stretches between the figures.
    Onsets: :data:`TRIPLE_STARTS_S` plus 0, 25 and 50 ms."""
    hit = from_file(SONIC / f"{sample}.flac")
    hits = [(hit, start + k * TRIPLE_GAP_S, 1.0 - 0.1 * k) for start in TRIPLE_STARTS_S for k in range(3)]
    x = place(hits, seconds)
    rng = np.random.default_rng(20261127)
    noise = np.cumsum(rng.standard_normal(len(x)))  # brown noise, high-passed: a soft room rumble
    noise = np.diff(noise, prepend=0.0) * 0.3 + (noise - np.convolve(noise, np.ones(400) / 400, mode="same")) * 0.02
    x = x / np.max(np.abs(x)) + noise / np.sqrt(np.mean(noise**2)) * 10 ** (-30 / 20)
    return _normalise(x)


def tabla() -> np.ndarray:
    na = from_file(SONIC / "tabla_na.flac")
    starts = [0.1, 0.5, 0.75, 1.0, 1.5, 1.625, 1.75, 2.0, 2.5]
    return _normalise(place([(na, s, 1.0 if k % 4 == 0 else 0.7) for k, s in enumerate(starts)], 3.4))


def crow() -> np.ndarray:
    caw = from_file(SONIC / "misc_crow.flac")
    return _normalise(place([(caw, 0.2, 1.0), (caw, 0.9, 0.8), (caw, 1.9, 1.0)], 2.8))


def bell() -> np.ndarray:
    ding = from_file(FREEDESKTOP / "bell.oga")
    return _normalise(place([(ding, 0.3, 1.0), (ding, 1.3, 1.0)], 2.0))


def tts(word: str) -> np.ndarray:
    wav = subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "--stdout", word],
                         check=True, capture_output=True).stdout
    x, _ = load_audio(io.BytesIO(wav), SR)
    pad = np.zeros(int(0.15 * SR))
    return _normalise(np.concatenate([pad, x, pad]))


CLIPS = {
    "alarm_clock": alarm_clock,
    "siren": siren,
    "speech_go_forward": lambda: _normalise(from_raw_pcm16(SPHINX / "goforward.raw")),
    "speech_numbers": lambda: _normalise(from_raw_pcm16(SPHINX / "numbers.raw")),
    "digit_seven": lambda: tts("seven"),
    "piano": lambda: _normalise(from_file(SONIC / "ambi_piano.flac")),
    "guitar": lambda: _normalise(_fade(from_file(SONIC / "guit_em9.flac", 8.0), 200)),
    "bell_percussion": lambda: _normalise(_fade(from_file(SONIC / "perc_bell.flac", 6.0), 200)),
    "triple_stroke": triple_stroke,
    "drum_pattern": drum_pattern,
    "tabla": tabla,
    "crow": crow,
    "bell": bell,
}


def main() -> None:
    for key, make in CLIPS.items():
        x = np.asarray(make(), dtype=np.float64)
        path = OUT / f"{key}.wav"
        save_wav(path, x, SR)
        print(f"{path.relative_to(ROOT)}: {len(x) / SR:.2f} s")


if __name__ == "__main__":
    main()
