"""The shipped example gallery and synthetic presets with known answers.

Gallery
-------
Short 16 kHz mono 16-bit WAV clips in the repository's ``examples/`` folder (origins and
licences in ``examples/NOTICE.md``; ``examples/make_gallery.py`` rebuilds them).  The
alarm clock (fast repeated beeps) and the siren (a slow sweep) reproduce the DiffRes
paper's opening figure: the alarm needs a 10 ms hop to resolve its beeps, the siren is
fine at 40 ms.

Presets
-------
Signals generated on the fly, deterministically, whose "interesting" moments are known in
advance, so a person (or a test) can check where DiffRes keeps its frames:
``make_preset(name)`` returns the waveform and ``preset_event_times(name)`` the times (s)
of its events.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE, load_audio
from .errors import ParameterError

__all__ = [
    "EXAMPLES_DIR",
    "DEFAULT_EXAMPLE",
    "DEFAULT_EXAMPLE_DATASET",
    "CATEGORIES",
    "Example",
    "list_examples",
    "get_example",
    "load_example",
    "Preset",
    "PRESETS",
    "DEFAULT_PRESET_SECONDS",
    "CLICK_PERIOD_S",
    "CLOSE_TONES_HZ",
    "make_preset",
    "preset_event_times",
]

#: Folder holding the shipped clips (``<repo>/examples``).
EXAMPLES_DIR: Path = Path(__file__).resolve().parent.parent / "examples"
#: Key of the clip the app shows first.
DEFAULT_EXAMPLE = "triple_stroke"
#: The built-in dataset of sounds like :data:`DEFAULT_EXAMPLE`: the app's pages open on its
#: shipped DiffRes model, so the first sound and the first model belong together.
DEFAULT_EXAMPLE_DATASET = "rhythms"
#: Allowed values of :attr:`Example.category`.
CATEGORIES = ("event", "speech", "music", "percussion")


# --------------------------------------------------------------------------- gallery


@dataclass(frozen=True)
class Example:
    """One shipped clip.

    Attributes:
        key: short identifier, e.g. ``"alarm_clock"`` (also the file's stem).
        title: human-readable name for menus.
        description: one sentence on what is heard and why it is interesting for DiffRes.
        path: absolute path of the WAV file.
        licence: SPDX-style licence of the clip (``"CC0-1.0"``, ``"BSD-2-Clause"``...).
        source: where it comes from (package and file, or "procedural render").
        category: one of ``"event"``, ``"speech"``, ``"music"``, ``"percussion"``.
        event_times: onsets (s) of the clip's events where they are known by construction
            (:data:`KNOWN_ONSETS`), else empty.
    """

    key: str
    title: str
    description: str
    path: Path
    licence: str
    source: str
    category: str
    event_times: tuple[float, ...] = ()


_SONIC = "Debian sonic-pi-samples, "

#: Onsets (s) of the gallery clips whose events are known by construction
#: (``examples/make_gallery.py``): three figures of three strokes 25 ms apart.
KNOWN_ONSETS: dict[str, tuple[float, ...]] = {
    "triple_stroke": tuple(round(start + k * 0.025, 3) for start in (0.55, 1.40, 2.25) for k in range(3)),
}

_GALLERY: tuple[tuple[str, str, str, str, str, str], ...] = (
    # key, title, description, licence, source, category
    (
        "triple_stroke",
        "Triple strokes (tabla)",
        "Three figures of three tabla strokes 25 ms apart, in soft room noise: a 10 ms hop keeps the "
        "strokes apart, a fixed 40 ms hop blurs each figure into one. The rhythms model keeps the "
        "strokes at full resolution and merges the quiet stretches between the figures.",
        "CC0-1.0",
        _SONIC + "tabla_te1.flac (freesound.org user dio_333), arranged (examples/make_gallery.py)",
        "percussion",
    ),
    (
        "alarm_clock",
        "Alarm clock",
        "Groups of four 40 ms beeps 30 ms apart: the detail sits in fast on/off changes, so "
        "it needs fine (10 ms) temporal resolution at the beeps and little between groups.",
        "CC0-1.0",
        "procedural render (numpy, examples/make_gallery.py)",
        "event",
    ),
    (
        "siren",
        "Siren",
        "A slow up-down 'wail' sweep: it changes smoothly, so a coarse (40 ms) hop loses almost nothing.",
        "CC0-1.0",
        "procedural render (numpy, examples/make_gallery.py)",
        "event",
    ),
    (
        "bell",
        "Bell",
        "Two short bell dings in silence: an event-like sound with long quiet stretches.",
        "CC-BY-3.0",
        "freedesktop.org sound theme (Debian sound-theme-freedesktop), stereo/bell.oga by Dr. Richard Boulanger et al.",
        "event",
    ),
    (
        "crow",
        "Crow",
        "Three crow caws separated by silence.",
        "CC0-1.0",
        _SONIC + "misc_crow.flac (freesound.org user davidworksonline)",
        "event",
    ),
    (
        "speech_go_forward",
        "Speech: 'go forward ten meters'",
        "A real recorded sentence: fast formant and onset changes between pauses.",
        "BSD-2-Clause",
        "Debian pocketsphinx-testdata, test/data/goforward.raw (Carnegie Mellon University)",
        "speech",
    ),
    (
        "speech_numbers",
        "Speech: numbers",
        "A real recording of spoken numbers.",
        "BSD-2-Clause",
        "Debian pocketsphinx-testdata, test/data/numbers.raw (Carnegie Mellon University)",
        "speech",
    ),
    (
        "digit_seven",
        "Spoken digit 'seven'",
        "The word 'seven' from a speech synthesiser, as in the digits dataset.",
        "CC0-1.0",
        "rendered with espeak-ng (examples/make_gallery.py)",
        "speech",
    ),
    (
        "piano",
        "Ambient piano",
        "A few sustained piano notes: onsets matter, sustains change slowly.",
        "CC0-1.0",
        _SONIC + "ambi_piano.flac (freesound.org user RutgerMuller)",
        "music",
    ),
    (
        "guitar",
        "Guitar chord (Em9)",
        "A strummed chord ringing out: one onset, then a long smooth decay.",
        "CC0-1.0",
        _SONIC + "guit_em9.flac (freesound.org user Sub-d)",
        "music",
    ),
    (
        "drum_pattern",
        "Drum pattern",
        "Two bars of kick, snare and cymbal at 120 bpm: sharp transients on a grid.",
        "CC0-1.0",
        _SONIC + "bd_808.flac (EKVelika), drum_snare_hard.flac and drum_cymbal_open.flac (menegass), arranged",
        "percussion",
    ),
    (
        "tabla",
        "Tabla",
        "Tabla 'na' strokes in an uneven rhythm.",
        "CC0-1.0",
        _SONIC + "tabla_na.flac (freesound.org user dio_333), arranged",
        "percussion",
    ),
    (
        "bell_percussion",
        "Percussion bell",
        "A struck bell ringing out for seconds.",
        "CC0-1.0",
        _SONIC + "perc_bell.flac (freesound.org user AlaskaRobotics)",
        "percussion",
    ),
)


def list_examples() -> list[Example]:
    """All shipped clips, in display order (the default example first).

    Returns:
        list of :class:`Example`; each ``path`` exists in the repository.
    """
    return [
        Example(
            key=k,
            title=t,
            description=d,
            path=EXAMPLES_DIR / f"{k}.wav",
            licence=lic,
            source=src,
            category=cat,
            event_times=KNOWN_ONSETS.get(k, ()),
        )
        for k, t, d, lic, src, cat in _GALLERY
    ]


def get_example(key: str) -> Example:
    """The :class:`Example` called ``key``; raises ParameterError naming the valid keys."""
    for example in list_examples():
        if example.key == key:
            return example
    keys = ", ".join(e.key for e in list_examples())
    raise ParameterError(f"Unknown example {key!r}. Choose one of: {keys}.")


def load_example(key: str = DEFAULT_EXAMPLE, sample_rate: int | None = SAMPLE_RATE) -> np.ndarray:
    """Load a shipped clip.

    Args:
        key: an :attr:`Example.key` (default ``DEFAULT_EXAMPLE``).
        sample_rate: output rate in Hz (the files are 16 kHz; others are resampled).

    Returns:
        ``np.ndarray [shape=(n,), dtype=float32]`` mono samples in [-1, 1].

    Raises:
        ParameterError: unknown key.  AudioError: the file is missing or damaged.
    """
    samples, _ = load_audio(get_example(key).path, sample_rate)
    return samples


# --------------------------------------------------------------------------- presets

#: Default preset length in seconds.
DEFAULT_PRESET_SECONDS = 3.0
#: Period of the ``click_train`` preset in seconds; the first click is at half a period.
CLICK_PERIOD_S = 0.25
#: The two simultaneous tones of ``tones_and_clicks`` in Hz (60 Hz apart: a 25 ms window's
#: 40 Hz bins cannot tell them apart, a 50 ms window's 20 Hz bins can).
CLOSE_TONES_HZ = (1000.0, 1060.0)
#: Length of each ``tone_bursts`` burst in seconds.
BURST_SECONDS = 0.06
#: Burst start times of ``tone_bursts`` as fractions of the clip length.
_BURST_FRACTIONS = (0.1, 0.37, 0.45, 0.8)


@dataclass(frozen=True)
class Preset:
    """A synthetic signal with a known answer.

    Attributes:
        name: key for :func:`make_preset`.
        title: human-readable name.
        description: one line saying what it is and where DiffRes should keep frames.
    """

    name: str
    title: str
    description: str


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "chirp",
            "Linear chirp 100 Hz -> 7 kHz",
            "Frequency rises steadily the whole time, so no moment matters more: DiffRes "
            "should spread its frames evenly.",
        ),
        Preset(
            "click_train",
            "Click train (every 250 ms)",
            "Short clicks every 250 ms in silence: DiffRes should keep frames at each "
            "click and drop the silence between them.",
        ),
        Preset(
            "tone_bursts",
            "1 kHz tone bursts",
            "Four short 1 kHz bursts at irregular times in silence: DiffRes should keep frames only around the bursts.",
        ),
        Preset(
            "two_tones",
            "Two tones (500 Hz then 2 kHz)",
            "A steady 500 Hz tone that switches to 2 kHz halfway: DiffRes should keep "
            "frames around the switch and merge the steady parts.",
        ),
        Preset(
            "tones_and_clicks",
            "Two close tones under clicks",
            "Two steady tones 60 Hz apart (1000 and 1060 Hz, at once) under clicks every 250 ms: a long window "
            "separates the tones, a short one pins the clicks, no window does both. DiffRes should keep frames "
            "at the clicks.",
        ),
    )
}


def _check_preset_args(name, sample_rate, seconds) -> tuple[int, float, int]:
    if name not in PRESETS:
        raise ParameterError(f"Unknown preset {name!r}. Choose one of: {', '.join(PRESETS)}.")
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, numbers.Integral)
        or not 4000 <= int(sample_rate) <= 768_000
    ):
        raise ParameterError(f"sample_rate must be a whole number of Hz in [4000, 768000], got {sample_rate!r}.")
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, numbers.Real)
        or not math.isfinite(float(seconds))
        or not 0.5 <= float(seconds) <= 600
    ):
        raise ParameterError(f"seconds must be in [0.5, 600], got {seconds!r}.")
    sr, sec = int(sample_rate), float(seconds)
    return sr, sec, int(round(sr * sec))


def preset_event_times(name: str, seconds: float = DEFAULT_PRESET_SECONDS) -> np.ndarray:
    """Times (s) of the preset's events, the known answer for where detail is.

    ``click_train`` and ``tones_and_clicks``: each click; ``tone_bursts``: each burst's start; ``two_tones``: the
    switch; ``chirp``: none (empty array; its change is uniform).

    Returns:
        ``np.ndarray [shape=(n_events,), dtype=float64]`` in seconds, ascending.
    """
    _, sec, _ = _check_preset_args(name, SAMPLE_RATE, seconds)  # times do not depend on the rate
    if name in ("click_train", "tones_and_clicks"):
        return np.arange(CLICK_PERIOD_S / 2, sec, CLICK_PERIOD_S)
    if name == "tone_bursts":
        return np.array([f * sec for f in _BURST_FRACTIONS])
    if name == "two_tones":
        return np.array([sec / 2])
    return np.zeros(0)


#: Level (dBFS RMS) of the quiet white-noise floor under every preset.  Real rooms and
#: microphones are never digitally silent, and the shipped models were trained with a
#: noise floor: on exact digital silence their importance comes out nearly flat.
PRESET_NOISE_FLOOR_DB = -50.0


def make_preset(
    name: str,
    sample_rate: int = SAMPLE_RATE,
    seconds: float = DEFAULT_PRESET_SECONDS,
    *,
    noise_floor_db: float | None = PRESET_NOISE_FLOOR_DB,
) -> np.ndarray:
    """Generate a synthetic preset; the same arguments always give the same samples.

    Args:
        name: a key of :data:`PRESETS`: ``"chirp"``, ``"click_train"``, ``"tone_bursts"``,
            ``"two_tones"`` or ``"tones_and_clicks"``.
        sample_rate: Hz, int in [4000, 768000].  Default :data:`~diffres.audio.SAMPLE_RATE`.
        seconds: length in seconds, float in [0.5, 600].  Default 3.0.

    Returns:
        ``np.ndarray [shape=(round(sample_rate * seconds),), dtype=float32]`` in [-1, 1].

    Signals (amplitude 0.5 unless said):
        chirp: linear sweep from 100 Hz to min(7000, 0.45 * sample_rate) Hz.
        click_train: 2 ms decaying clicks (peak 0.9) every ``CLICK_PERIOD_S`` = 0.25 s,
            the first at 0.125 s; silence elsewhere.
        tone_bursts: four 60 ms 1 kHz bursts (5 ms ramps) starting at 10, 37, 45 and 80 %
            of the clip; silence elsewhere.
        two_tones: 500 Hz for the first half, 2 kHz for the second (phase-continuous).
        tones_and_clicks: :data:`CLOSE_TONES_HZ` at once (amplitude 0.25 each) and the
            clicks of ``click_train``.
        A deterministic white-noise floor at ``noise_floor_db`` dBFS RMS is added
        (``None``: exact digital silence between events).

    Example:
        >>> x = make_preset("click_train", 16000, 1.0)
        >>> x.shape, x.dtype, bool(np.abs(x).max() <= 1.0)
        ((16000,), dtype('float32'), True)
    """
    sr, sec, n = _check_preset_args(name, sample_rate, seconds)
    t = np.arange(n) / sr
    if name == "chirp":
        f0, f1 = 100.0, min(7000.0, 0.45 * sr)
        # phase of a linear chirp: 2 pi (f0 t + (f1 - f0) t^2 / (2 T))
        x = 0.5 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * sec)))
    elif name == "click_train":
        x = _clicks(preset_event_times(name, sec), sr, n)
    elif name == "tones_and_clicks":
        x = sum(0.25 * np.sin(2 * np.pi * f * t) for f in CLOSE_TONES_HZ) + _clicks(
            preset_event_times(name, sec), sr, n
        )
    elif name == "tone_bursts":
        x = np.zeros(n)
        n_burst = int(round(BURST_SECONDS * sr))
        n_ramp = int(round(0.005 * sr))
        env = np.ones(n_burst)
        env[:n_ramp] = np.linspace(0, 1, n_ramp)
        env[-n_ramp:] = np.linspace(1, 0, n_ramp)
        burst = 0.5 * env * np.sin(2 * np.pi * 1000 * np.arange(n_burst) / sr)
        for start_s in preset_event_times(name, sec):
            i = int(round(start_s * sr))
            m = min(n_burst, n - i)
            x[i : i + m] += burst[:m]
    else:  # two_tones
        freq = np.where(t < sec / 2, 500.0, 2000.0)
        phase = 2 * np.pi * np.cumsum(freq) / sr
        x = 0.5 * np.sin(phase)
    if noise_floor_db is not None:
        floor = 10.0 ** (float(noise_floor_db) / 20.0)
        x = x + floor * np.random.default_rng(12345).standard_normal(n)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def _clicks(times_s: np.ndarray, sample_rate: int, n: int) -> np.ndarray:
    """2 ms decaying clicks (peak 0.9, a fixed shape) starting at ``times_s``, in ``n`` samples."""
    x = np.zeros(n)
    n_click = max(2, int(round(0.002 * sample_rate)))
    rng = np.random.default_rng(0)  # fixed seed: deterministic click shape
    click = rng.uniform(-1, 1, n_click) * np.exp(-np.arange(n_click) / (n_click / 5))
    click[0] = 1.0
    click *= 0.9 / np.max(np.abs(click))
    for start_s in times_s:
        i = int(round(start_s * sample_rate))
        m = min(n_click, n - i)
        x[i : i + m] += click[:m]
    return x


def frames_near_events(
    bin_edges: np.ndarray, hop_seconds: float, event_times: np.ndarray, *, within_seconds: float = 0.05
) -> tuple[float, float]:
    """How a time reduction treats a preset's known events.

    Args:
        bin_edges: ``[T' + 1]`` output-frame edges in input frames.
        hop_seconds: the input hop.
        event_times: event onsets in seconds (:func:`preset_event_times`).
        within_seconds: how close to an event counts as "near".

    Returns:
        ``(share of output frames whose centre is near an event, share of the clip's time
        that is near an event)``: the first above the second means the frames crowd there.
    """
    edges = np.asarray(bin_edges, dtype=np.float64)
    events = np.asarray(event_times, dtype=np.float64)
    if events.size == 0:
        return 0.0, 0.0
    centres = (edges[:-1] + edges[1:]) / 2 * hop_seconds
    near_frames = np.min(np.abs(centres[:, None] - events[None, :]), axis=1) <= within_seconds
    n_frames = int(round(edges[-1]))
    grid = (np.arange(n_frames) + 0.5) * hop_seconds
    near_time = np.min(np.abs(grid[:, None] - events[None, :]), axis=1) <= within_seconds
    return float(near_frames.mean()), float(near_time.mean())
