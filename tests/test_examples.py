"""Tests for diffres.examples: the shipped gallery is complete, licensed and loadable; the
synthetic presets are deterministic and have the properties their descriptions promise."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import soundfile as sf

from diffres.audio import load_clip
from diffres.errors import ParameterError
from diffres.examples import (
    CATEGORIES,
    CLICK_PERIOD_S,
    DEFAULT_EXAMPLE,
    DEFAULT_PRESET_SECONDS,
    EXAMPLES_DIR,
    PRESETS,
    Example,
    get_example,
    list_examples,
    load_example,
    make_preset,
    preset_event_times,
)

EXAMPLES = list_examples()
NOTICE = (EXAMPLES_DIR / "NOTICE.md").read_text(encoding="utf-8")


def frame_energy_db(x: np.ndarray, sample_rate: int, hop_ms: float) -> np.ndarray:
    hop = int(sample_rate * hop_ms / 1000)
    n = len(x) // hop
    frames = x[: n * hop].reshape(n, hop).astype(np.float64)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)


def peak_frequency(x: np.ndarray, sample_rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sample_rate)[np.argmax(spec)])


def regions(mask: np.ndarray, min_gap: int = 1) -> list[tuple[int, int]]:
    """[start, end) index pairs of the runs of True in ``mask``; runs separated by fewer
    than ``min_gap`` False samples (e.g. a tone's zero crossings) are merged."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    runs = [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2])]
    merged: list[list[int]] = []
    for run in runs:
        if merged and run[0] - merged[-1][1] < min_gap:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    return [(a, b) for a, b in merged]


# --------------------------------------------------------------------------- gallery


def test_gallery_lists_required_clips_and_categories():
    keys = [e.key for e in EXAMPLES]
    assert len(keys) == len(set(keys))
    assert keys[0] == DEFAULT_EXAMPLE == "triple_stroke"
    assert {"alarm_clock", "siren"} <= set(keys)
    assert {e.category for e in EXAMPLES} == set(CATEGORIES)
    for e in EXAMPLES:
        assert isinstance(e, Example) and e.category in CATEGORIES
        assert e.title and e.description and e.source and e.licence


def test_known_onsets_are_where_the_strokes_start():
    """The default example's onsets (the app's known answer, the shipped-model test's events)
    are real: each is followed within 5 ms by a rise of the 1 ms envelope, and the signal
    just before each figure is quiet."""
    ex = next(e for e in EXAMPLES if e.key == "triple_stroke")
    assert len(ex.event_times) == 9
    x, sr = load_example(ex.key), 16000
    env = np.sqrt(np.convolve(x.astype(np.float64) ** 2, np.ones(16) / 16, mode="same"))
    peak = env.max()
    for t in ex.event_times:
        i = int(round(t * sr))
        assert env[i : i + 80].max() > 0.3 * peak, t
    for t in ex.event_times[::3]:
        i = int(round(t * sr))
        assert env[i - 800 : i - 80].max() < 0.1 * peak, t
    assert all(len(e.event_times) == 0 for e in EXAMPLES if e.key != "triple_stroke")


def test_every_clip_file_is_listed():
    listed = {e.path.name for e in EXAMPLES}
    shipped = {p.name for p in EXAMPLES_DIR.iterdir() if p.suffix.lower() in {".wav", ".flac"}}
    assert shipped == listed


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.key)
def test_example_loads_as_16k_mono_16bit(example):
    info = sf.info(example.path)
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    clip = load_clip(example.path)
    assert 0.5 <= clip.seconds <= 10.0
    assert not clip.silent and clip.peak <= 1.0
    samples = load_example(example.key)
    np.testing.assert_array_equal(samples, clip.samples)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.key)
def test_example_licence_in_notice(example):
    rows = [line for line in NOTICE.splitlines() if f"`{example.path.name}`" in line]
    assert len(rows) == 1, f"{example.path.name} needs exactly one row in NOTICE.md"
    assert example.licence in rows[0]
    assert re.search(rf"\*\*{re.escape(example.licence)}\*\*", NOTICE), "licence text section"


def test_gallery_is_small():
    total = sum(p.stat().st_size for p in EXAMPLES_DIR.iterdir() if p.is_file())
    assert total < 5 * 1024 * 1024


def test_load_example_resamples_and_defaults():
    default = load_example()
    np.testing.assert_array_equal(default, load_example(DEFAULT_EXAMPLE))
    half = load_example("siren", sample_rate=8000)
    assert len(half) == len(load_example("siren")) // 2


def test_unknown_example():
    with pytest.raises(ParameterError, match=r"Unknown example 'nope'.*alarm_clock"):
        load_example("nope")
    assert get_example("siren").key == "siren"


def test_example_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        EXAMPLES[0].key = "x"  # type: ignore[misc]


def test_alarm_needs_fine_hop_siren_does_not():
    """The paper's opening figure: at a 10 ms hop the alarm's energy jumps as each beep
    switches on and off (8 jumps per group of 4 beeps); at 40 ms the 30 ms gaps blur and
    only the group edges remain.  The siren's envelope is smooth at either hop."""
    alarm = load_example("alarm_clock")
    siren = load_example("siren")

    def n_jumps(x, hop_ms):
        return int(np.count_nonzero(np.abs(np.diff(frame_energy_db(x, 16000, hop_ms))) > 10))

    assert n_jumps(alarm, 10) >= 40
    assert n_jumps(alarm, 10) >= 3 * n_jumps(alarm, 40)
    assert n_jumps(siren, 10) <= 2 and n_jumps(siren, 40) <= 2


def test_siren_sweeps_slowly_up_and_down():
    x = load_example("siren")
    win = 4096
    peaks = np.array([peak_frequency(x[i : i + win], 16000) for i in range(0, len(x) - win, 800)])
    assert 550 < peaks.min() < 800 and 1300 < peaks.max() < 1650
    rising = np.diff(peaks) > 0
    assert 2 <= np.count_nonzero(np.diff(rising.astype(int))) <= 8  # a few turns, not noise


# --------------------------------------------------------------------------- presets


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_is_deterministic_and_well_formed(name):
    a = make_preset(name)
    b = make_preset(name)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (int(16000 * DEFAULT_PRESET_SECONDS),)
    assert np.max(np.abs(a)) <= 1.0 and np.max(np.abs(a)) > 0.1
    assert len(make_preset(name, 8000, 2.0)) == 16000
    preset = PRESETS[name]
    assert preset.name == name and "DiffRes should" in preset.description
    assert "\n" not in preset.description


def test_preset_does_not_touch_global_rng():
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    make_preset("click_train")
    assert np.random.random() == expected


def test_chirp_instantaneous_frequency_rises_linearly():
    sr, sec = 16000, 3.0
    x = make_preset("chirp", sr, sec)
    win = 1024
    starts = np.arange(0, len(x) - win, 512)
    centres = (starts + win / 2) / sr
    peaks = np.array([peak_frequency(x[i : i + win], sr) for i in starts])
    assert np.all(np.diff(peaks) >= 0) and peaks[-1] > peaks[0] + 6000
    slope, intercept = np.polyfit(centres, peaks, 1)
    assert slope == pytest.approx((7000 - 100) / sec, rel=0.03)
    assert intercept == pytest.approx(100, abs=60)


def test_chirp_stays_below_nyquist_at_low_rates():
    x = make_preset("chirp", 8000, 2.0)
    assert peak_frequency(x[-1024:], 8000) < 4000 * 0.95


def test_click_train_period():
    sr = 16000
    x = make_preset("click_train", sr, 3.0, noise_floor_db=None)
    onsets = np.array([s for s, _ in regions(np.abs(x) > 1e-6)])
    times = preset_event_times("click_train", 3.0)
    assert len(onsets) == len(times) == 12
    np.testing.assert_array_equal(np.diff(onsets), int(CLICK_PERIOD_S * sr))
    np.testing.assert_allclose(onsets / sr, times, atol=1 / sr)
    spans = [e - s for s, e in regions(np.abs(x) > 1e-6)]
    assert max(spans) <= int(0.002 * sr)  # clicks are short, silence between


def test_tone_bursts_are_1khz_at_stated_times():
    sr = 16000
    x = make_preset("tone_bursts", sr, 3.0, noise_floor_db=None)
    runs = regions(np.abs(x) > 1e-6, min_gap=8)  # 1 kHz at 16 kHz: a zero every 8 samples
    times = preset_event_times("tone_bursts", 3.0)
    assert len(runs) == len(times) == 4
    for (start, end), t in zip(runs, times):
        assert abs(start / sr - t) <= 2 / sr
        assert (end - start) / sr == pytest.approx(0.06, abs=4 / sr)  # ramps start/end at 0
        assert peak_frequency(x[start:end], sr) == pytest.approx(1000, abs=20)


def test_two_tones_switch_halfway():
    sr = 16000
    x = make_preset("two_tones", sr, 3.0, noise_floor_db=None)
    (switch,) = preset_event_times("two_tones", 3.0)
    assert switch == pytest.approx(1.5)
    cut = int(switch * sr)
    assert peak_frequency(x[: cut - 100], sr) == pytest.approx(500, abs=2)
    assert peak_frequency(x[cut + 100 :], sr) == pytest.approx(2000, abs=2)
    assert np.max(np.abs(np.diff(x))) < 2 * np.pi * 2000 / sr * 0.5 * 1.01  # phase-continuous


def test_chirp_has_no_events():
    assert preset_event_times("chirp").size == 0


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [({"name": "noise"}, r"Unknown preset 'noise'.*chirp"),
     ({"name": "chirp", "seconds": 0.1}, r"seconds must be in"),
     ({"name": "chirp", "seconds": float("nan")}, r"seconds must be in"),
     ({"name": "chirp", "sample_rate": 100}, r"sample_rate must be"),
     ({"name": "chirp", "sample_rate": 16000.0}, r"sample_rate must be")],
)
def test_preset_bad_arguments(kwargs, pattern):
    with pytest.raises(ParameterError, match=pattern):
        make_preset(**kwargs)


def test_presets_have_a_quiet_noise_floor_by_default():
    from diffres.examples import PRESET_NOISE_FLOOR_DB

    x = make_preset("tone_bursts", 16000, 3.0)
    clean = make_preset("tone_bursts", 16000, 3.0, noise_floor_db=None)
    gap = slice(int(0.2 * 16000), int(0.3 * 16000))  # between the first two bursts
    assert np.all(clean[gap] == 0)
    rms_db = 20 * np.log10(np.sqrt(np.mean(x[gap].astype(np.float64) ** 2)))
    assert rms_db == pytest.approx(PRESET_NOISE_FLOOR_DB, abs=0.5)
    np.testing.assert_array_equal(x, make_preset("tone_bursts", 16000, 3.0))  # still deterministic


def test_frames_near_events_counts_output_frames_and_time():
    from diffres.examples import frames_near_events

    # 100 input frames at 10 ms; one event at 0.5 s; 10 output frames, four of them squeezed around it
    edges = np.array([0, 20, 40, 46, 48, 50, 52, 54, 70, 85, 100], dtype=float)
    frames, time = frames_near_events(edges, 0.01, np.array([0.5]))
    assert frames == pytest.approx(0.4)  # centres 0.47, 0.49, 0.51, 0.53 s are within 50 ms (0.43 is not)
    assert time == pytest.approx(0.10)  # frames 45..54 (centres 0.455..0.545 s) are within 50 ms
    assert frames_near_events(edges, 0.01, np.array([])) == (0.0, 0.0)
