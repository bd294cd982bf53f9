"""From spectrograms back to sound: mel-to-audio inversion (Griffin-Lim) and the merged
spectrogram spread back over the input frames, so people can *listen* to what a merged
representation keeps.

Shapes: ``[time, freq]`` for one clip (the library's time-first layout); audio ``[n]``.
differentiable: no (NumPy and librosa, CPU).
"""

from __future__ import annotations

import numpy as np

from .errors import ParameterError
from .features import MelConfig

__all__ = ["expand_to_input_grid", "mel_to_audio"]


def expand_to_input_grid(merged: np.ndarray, bin_edges: np.ndarray, n_frames: int) -> np.ndarray:
    """Spread a merged spectrogram ``[T', F]`` back over ``n_frames`` input frames ``[T, F]``.

    Input frame ``i`` (centre ``i + 0.5`` on the input-frame axis) takes the value of the
    output bin whose edges enclose its centre, so a bin that merged eight frames repeats
    eight times: played back, merged stretches sound frozen.

    Args:
        merged: ``[T', F]`` (e.g. ``FrontendOutput.avg[0]``).
        bin_edges: ``[T' + 1]`` input-frame positions of the bins' edges (from 0 to ``T``).
        n_frames: ``T``.

    Example:
        >>> merged = np.array([[1.0], [2.0]])
        >>> expand_to_input_grid(merged, np.array([0.0, 3.0, 4.0]), 4)[:, 0].tolist()
        [1.0, 1.0, 1.0, 2.0]
    """
    merged = np.asarray(merged)
    edges = np.asarray(bin_edges, dtype=np.float64)
    if merged.ndim != 2 or edges.shape != (merged.shape[0] + 1,):
        raise ParameterError(f"need merged [T', F] and bin_edges [T' + 1], got {merged.shape} and {edges.shape}.")
    centres = np.arange(n_frames) + 0.5
    j = np.clip(np.searchsorted(edges, centres, side="right") - 1, 0, merged.shape[0] - 1)
    return merged[j]


def mel_to_audio(
    log_mel: np.ndarray, mel: MelConfig, *, n_iter: int = 16, peak: float = 0.9, seed: int = 0
) -> np.ndarray:
    """Approximate audio from a natural-log mel power spectrogram ``[T, F]``.

    The mel filterbank (HTK, unnormalised: :class:`~diffres.MelFrontend`'s) is inverted with
    its pseudo-inverse, clipped at 0 (librosa's NNLS inversion is far slower), then the phase
    is estimated with ``n_iter`` Griffin-Lim iterations (Hann window, centred frames, as the
    front-end frames them).  The result is scaled to ``peak``.

    Args:
        log_mel: ``[T, F]`` with ``F == mel.n_mels``.
        mel: the settings the spectrogram was computed with.
        n_iter: Griffin-Lim iterations (more is slower and a little cleaner).
        peak: absolute peak of the returned audio (silence stays silent).
        seed: of Griffin-Lim's initial random phase (the same input gives the same audio).

    Returns:
        ``[n]`` float32 at ``mel.sample_rate``, ``n = (T - 1) * hop_length``.

    Example:
        >>> import torch
        >>> from diffres import MelFrontend
        >>> fe = MelFrontend(n_mels=32)
        >>> tone = np.sin(2 * np.pi * 440 * np.arange(8000) / 16000).astype(np.float32)
        >>> log_mel = fe(torch.from_numpy(tone))[0].numpy()
        >>> y = mel_to_audio(log_mel, fe.config)
        >>> y.shape, round(float(np.abs(y).max()), 2)
        ((8000,), 0.9)
    """
    import librosa

    log_mel = np.asarray(log_mel, dtype=np.float64)
    if log_mel.ndim != 2 or log_mel.shape[1] != mel.n_mels:
        raise ParameterError(f"log_mel must be [frames, {mel.n_mels}], got shape {log_mel.shape}.")
    power = np.exp(log_mel).T  # [F, T]
    fb = librosa.filters.mel(
        sr=mel.sample_rate, n_fft=mel.n_fft, n_mels=mel.n_mels, fmin=mel.f_min, fmax=mel.f_max_hz, htk=True, norm=None
    )
    stft_power = np.maximum(np.linalg.pinv(fb) @ power, 0.0)
    magnitude = np.sqrt(stft_power).astype(np.float32)
    y = librosa.griffinlim(
        magnitude,
        n_iter=n_iter,
        hop_length=mel.hop_length,
        win_length=mel.win_length,
        n_fft=mel.n_fft,
        window="hann",
        center=True,
        pad_mode="constant",
        random_state=seed,
    )
    top = float(np.max(np.abs(y))) if y.size else 0.0
    if top > 0:
        y = y / top * peak
    return y.astype(np.float32)
