"""diffres.inverse: resynthesis keeps what the spectrogram says; expansion follows the bin edges."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffres import MelFrontend, ParameterError
from diffres.inverse import expand_to_input_grid, mel_to_audio


def test_resynthesised_tone_keeps_its_pitch_and_timing():
    sr = 16000
    t = np.arange(sr) / sr
    tone = (0.5 * np.sin(2 * np.pi * 1000.0 * t) * (t >= 0.5)).astype(np.float32)  # silent first half
    fe = MelFrontend(sr, 64)
    y = mel_to_audio(fe(torch.from_numpy(tone))[0].numpy(), fe.config, n_iter=16)
    assert y.dtype == np.float32 and len(y) == (fe.n_frames(sr) - 1) * fe.config.hop_length
    assert np.abs(y).max() == pytest.approx(0.9, rel=1e-5)
    spectrum = np.abs(np.fft.rfft(y[sr // 2 + 800 :]))
    peak_hz = np.argmax(spectrum) * sr / (2 * (len(spectrum) - 1))
    assert abs(peak_hz - 1000.0) < 60.0  # within a mel band of the tone
    assert np.sqrt(np.mean(y[: sr // 2 - 800] ** 2)) < 0.01 * np.sqrt(np.mean(y[sr // 2 + 800 :] ** 2))
    np.testing.assert_array_equal(y, mel_to_audio(fe(torch.from_numpy(tone))[0].numpy(), fe.config))  # seeded


def test_wrong_band_count_is_a_clear_error():
    fe = MelFrontend(n_mels=32)
    with pytest.raises(ParameterError, match=r"\[frames, 32\]"):
        mel_to_audio(np.zeros((10, 16)), fe.config)


def test_expansion_repeats_each_bin_over_the_frames_it_covers():
    merged = np.arange(6, dtype=np.float32).reshape(3, 2)
    edges = np.array([0.0, 2.5, 3.0, 7.0])  # widths 2.5, 0.5, 4 input frames
    out = expand_to_input_grid(merged, edges, 7)
    assert out.shape == (7, 2)
    assert out[:, 0].tolist() == [0, 0, 2, 4, 4, 4, 4]  # frame centres 0.5, 1.5, 2.5 (on an edge: the later bin), ...
    with pytest.raises(ParameterError, match="bin_edges"):
        expand_to_input_grid(merged, edges[:-1], 7)
