"""The linear STFT and what a spectrogram resolves (diffres.features.StftConfig,
linear_spectrogram; diffres.resolution), on signals with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import diffres
from diffres.examples import CLOSE_TONES_HZ, load_example, make_preset
from diffres.features import StftConfig, linear_spectrogram
from diffres.resolution import RESOLVED_DIP_DB, event_width_ms, loudest_frame, separated_bursts, tone_dip_db


@pytest.mark.parametrize("win_ms", [5.0, 10.0, 25.0, 64.0, 100.0])
def test_bin_width_is_one_over_the_window(win_ms):
    c = StftConfig(16000, hop_ms=2.0, win_ms=win_ms)
    assert c.bin_width_hz == pytest.approx(1000.0 / win_ms)
    assert c.window_seconds * c.bin_width_hz == pytest.approx(1.0)  # the tile's area
    assert c.n_bins == c.win_length // 2 + 1
    np.testing.assert_allclose(c.frequencies().numpy()[[0, -1]], [0.0, (c.n_bins - 1) * c.bin_width_hz])


def test_linear_spectrogram_peaks_at_the_tone_and_frames_like_the_mel_front_end():
    sr, f = 16000, 1250.0
    x = torch.sin(2 * math.pi * f * torch.arange(sr) / sr)
    c = StftConfig(sr, hop_ms=10.0, win_ms=32.0)
    lp = linear_spectrogram(x, c)
    assert lp.shape == (1, diffres.MelFrontend(sr, 64, 10.0, 32.0).n_frames(sr), c.n_bins)
    peak_bins = lp[0, 5:-5].argmax(dim=1)
    assert torch.all(peak_bins == round(f / c.bin_width_hz))


def test_linear_spectrogram_rejects_bad_settings():
    with pytest.raises(diffres.ParameterError, match="win_ms"):
        linear_spectrogram(torch.zeros(100), StftConfig(16000, hop_ms=10.0, win_ms=500.0))


def _stft(x: np.ndarray, win_ms: float, hop_ms: float = 2.0):
    c = StftConfig(16000, hop_ms=hop_ms, win_ms=win_ms)
    return linear_spectrogram(torch.from_numpy(x), c)[0].numpy(), c.frequencies().numpy(), c.hop_seconds


@pytest.fixture(scope="module")
def tones_and_clicks():
    return make_preset("tones_and_clicks")


@pytest.mark.parametrize("win_ms, resolved", [(10, False), (25, False), (40, False), (64, True), (100, True)])
def test_two_close_tones_need_a_long_window(tones_and_clicks, win_ms, resolved):
    lp, f, _ = _stft(tones_and_clicks, win_ms)
    assert (tone_dip_db(lp, f, *CLOSE_TONES_HZ) >= RESOLVED_DIP_DB) is resolved


def test_a_click_looks_about_half_a_window_long(tones_and_clicks):
    widths = []
    for win_ms in (10, 25, 64, 100):
        lp, f, hop_s = _stft(tones_and_clicks, win_ms)
        widths.append(event_width_ms(lp, f, hop_s, (0.05, 0.2), f_min_hz=3000.0))
    assert widths == sorted(widths) and widths[0] <= 10.0 < widths[1]
    assert widths[-1] == pytest.approx(50.0, abs=8.0)


@pytest.mark.parametrize("hop_ms, win_ms, beeps", [(40, 40, 1), (10, 40, 1), (25, 25, 4), (10, 25, 4), (5, 20, 4)])
def test_alarm_beeps_separate_only_with_a_fine_hop_and_a_short_window(hop_ms, win_ms, beeps):
    lm = diffres.MelFrontend(16000, 64, hop_ms, win_ms)(torch.from_numpy(load_example("alarm_clock")))[0].numpy()
    assert separated_bursts(lm, hop_ms / 1000, (0.15, 0.5)) == beeps


def test_loudest_frame_and_empty_spans():
    lp = np.log(np.array([[1.0], [5.0], [2.0]]))
    assert loudest_frame(lp) == 1
    assert separated_bursts(lp, 0.01, (5.0, 6.0)) == 0
    assert math.isnan(event_width_ms(lp, np.array([100.0]), 0.01, (5.0, 6.0)))
    with pytest.raises(diffres.ParameterError):
        tone_dip_db(lp, np.array([1.0, 2.0]), 1.0, 2.0)
