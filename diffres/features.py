"""Mel front-end and SpecAugment.  The only place where milliseconds become samples.

Shapes: waveforms ``[B, n_samples]``; spectrograms ``[B, T, F]`` (time before frequency:
torchaudio's ``(..., freq, time)`` is transposed once, here).  Values are natural-log mel
power, ``ln(P + LOG_FLOOR)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchaudio
from torch import Tensor, nn

from .audio import SAMPLE_RATE
from .errors import ParameterError

__all__ = [
    "LOG_FLOOR",
    "MelFrontend",
    "MelConfig",
    "StftConfig",
    "linear_spectrogram",
    "ms_to_samples",
    "spec_augment",
    "next_power_of_two",
]

#: Power added before the log: ln(1e-10) = -23.03 is "no energy at all".  SpecAugment masks
#: fill with exactly this value, so the guide loss sees masked frames as empty.
LOG_FLOOR = 1e-10

HOP_MS_RANGE = (0.5, 100.0)
WIN_MS_RANGE = (1.0, 200.0)


def ms_to_samples(ms: float, sample_rate: int, *, minimum: int = 1) -> int:
    """Milliseconds to whole samples (rounded, at least ``minimum``): the one conversion.

    Example:
        >>> ms_to_samples(25.0, 16000), ms_to_samples(0.01, 16000, minimum=2)
        (400, 2)
    """
    return max(int(minimum), round(float(ms) * int(sample_rate) / 1000.0))


def next_power_of_two(n: int) -> int:
    """Smallest power of two >= n."""
    return 1 << max(0, int(n) - 1).bit_length()


@dataclass(frozen=True)
class MelConfig:
    """Settings of a :class:`MelFrontend`, in the units people use (Hz, ms).

    Attributes:
        sample_rate: Hz of the waveform.
        n_mels: mel bands.  With 128 bands at 16 kHz and a 25 ms window (512-point FFT) the
            lowest band is narrower than the FFT's bin spacing and holds no bin: it always
            reads ``ln(1e-10)`` (64 or 96 bands, or a 50 ms window, do not have this).
        hop_ms, win_ms: hop and window in milliseconds.
        f_min, f_max: the mel range in Hz (``f_max`` None = Nyquist).

    Example:
        >>> c = MelConfig(hop_ms=10.0, win_ms=25.0)
        >>> c.hop_length, c.win_length, c.n_fft
        (160, 400, 512)
    """

    sample_rate: int = SAMPLE_RATE
    n_mels: int = 128
    hop_ms: float = 10.0
    win_ms: float = 25.0
    f_min: float = 0.0
    f_max: float | None = None

    @property
    def hop_length(self) -> int:
        """Hop in samples (at least 1)."""
        return ms_to_samples(self.hop_ms, self.sample_rate)

    @property
    def win_length(self) -> int:
        """Window in samples (at least 2)."""
        return ms_to_samples(self.win_ms, self.sample_rate, minimum=2)

    @property
    def n_fft(self) -> int:
        return next_power_of_two(self.win_length)

    @property
    def f_max_hz(self) -> float:
        return float(self.f_max) if self.f_max is not None else self.sample_rate / 2.0

    def validate(self) -> None:
        for name in ("hop_ms", "win_ms", "f_min", "f_max"):
            value = getattr(self, name)
            if (value is not None or name != "f_max") and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            ):
                raise ParameterError(f"{name} must be a finite number, got {value!r}.")
        rate = self.sample_rate
        if isinstance(rate, bool) or not isinstance(rate, int) or not (1000 <= rate <= 768000):
            raise ParameterError(
                f"sample_rate must be a whole number of Hz in [1000, 768000], got {self.sample_rate!r}."
            )
        if not (HOP_MS_RANGE[0] <= self.hop_ms <= HOP_MS_RANGE[1]):
            raise ParameterError(f"hop_ms must be in [{HOP_MS_RANGE[0]}, {HOP_MS_RANGE[1]}] ms, got {self.hop_ms!r}.")
        if not (WIN_MS_RANGE[0] <= self.win_ms <= WIN_MS_RANGE[1]):
            raise ParameterError(f"win_ms must be in [{WIN_MS_RANGE[0]}, {WIN_MS_RANGE[1]}] ms, got {self.win_ms!r}.")
        if isinstance(self.n_mels, bool) or not isinstance(self.n_mels, int) or not (1 <= self.n_mels <= 512):
            raise ParameterError(f"n_mels must be a whole number in [1, 512], got {self.n_mels!r}.")
        nyquist = self.sample_rate / 2.0
        if not (0.0 <= self.f_min < self.f_max_hz <= nyquist):
            raise ParameterError(
                f"need 0 <= f_min < f_max <= {nyquist:g} Hz (Nyquist), got f_min={self.f_min!r}, f_max={self.f_max!r}."
            )


class MelFrontend(nn.Module):
    """Waveform ``[B, n]`` (or ``[n]``) -> natural-log mel power ``[B, T, n_mels]``.

    Hann window of ``win_ms``, FFT size the next power of two, centred frames (frame ``t``
    is centred at ``t * hop``), HTK mel scale, power spectrum, ``ln(P + 1e-10)``.
    ``T = 1 + n // hop_length``.  Window and hop are independent (hop 0.5-100 ms, window
    1-200 ms).  Not trainable; differentiable in the waveform.

    Example:
        >>> fe = MelFrontend(16000, n_mels=64, hop_ms=10.0, win_ms=25.0)
        >>> fe(torch.zeros(16000)).shape  # one second: T = 1 + 16000 // 160
        torch.Size([1, 101, 64])
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        n_mels: int = 128,
        hop_ms: float = 10.0,
        win_ms: float = 25.0,
        f_min: float = 0.0,
        f_max: float | None = None,
    ) -> None:
        super().__init__()
        self.config = MelConfig(int(sample_rate), int(n_mels), float(hop_ms), float(win_ms), float(f_min), f_max)
        self.config.validate()
        c = self.config
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=c.sample_rate,
            n_fft=c.n_fft,
            win_length=c.win_length,
            hop_length=c.hop_length,
            f_min=c.f_min,
            f_max=c.f_max_hz,
            n_mels=c.n_mels,
            power=2.0,
            center=True,
            pad_mode="constant",
            mel_scale="htk",
            norm=None,
        )

    @classmethod
    def from_config(cls, config: MelConfig) -> MelFrontend:
        """The front-end of a :class:`MelConfig`."""
        return cls(config.sample_rate, config.n_mels, config.hop_ms, config.win_ms, config.f_min, config.f_max)

    # Convenience read-outs -------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def n_mels(self) -> int:
        return self.config.n_mels

    @property
    def hop_ms(self) -> float:
        return self.config.hop_ms

    @property
    def hop_seconds(self) -> float:
        """Actual hop in seconds (after rounding to whole samples)."""
        return self.config.hop_length / self.config.sample_rate

    def n_frames(self, n_samples: int) -> int:
        """Frames produced for ``n_samples`` samples."""
        return 1 + int(n_samples) // self.config.hop_length

    def frame_times(self, n_frames: int) -> Tensor:
        """Centre time in seconds of each frame, ``[T]``."""
        return torch.arange(n_frames, dtype=torch.float64) * self.hop_seconds

    def mel_frequencies(self) -> Tensor:
        """Centre frequency in Hz of each mel band, ``[n_mels]`` (HTK scale)."""
        c = self.config
        lo, hi = (2595.0 * math.log10(1.0 + f / 700.0) for f in (c.f_min, c.f_max_hz))
        mels = torch.linspace(lo, hi, c.n_mels + 2, dtype=torch.float64)[1:-1]
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)

    def forward(self, waveform: Tensor) -> Tensor:
        if waveform.dim() == 1:
            waveform = waveform.unsqueeze(0)
        if waveform.dim() != 2:
            raise ParameterError(f"waveform must be [batch, samples] or [samples], got shape {tuple(waveform.shape)}.")
        if waveform.shape[1] < 1:
            raise ParameterError("waveform has no samples.")
        power = self.mel(waveform.float())  # [B, F, T]
        return torch.log(power + LOG_FLOOR).transpose(1, 2).contiguous()


@dataclass(frozen=True)
class StftConfig:
    """A linear-frequency STFT without zero-padding, in the units people use.

    The FFT is as long as the window, so the **bin width** (``sample_rate / win_length``)
    is exactly one over the window's duration: the time-frequency *tile* of one analysis
    frame, ``window_seconds x bin_width_hz``, always has an area of 1 (a longer window buys
    finer frequency with coarser time, never both).

    Example:
        >>> c = StftConfig(16000, hop_ms=10.0, win_ms=25.0)
        >>> c.win_length, c.n_bins, c.bin_width_hz, c.window_seconds * c.bin_width_hz
        (400, 201, 40.0, 1.0)
    """

    sample_rate: int = SAMPLE_RATE
    hop_ms: float = 10.0
    win_ms: float = 25.0

    @property
    def hop_length(self) -> int:
        """Hop in samples (at least 1)."""
        return ms_to_samples(self.hop_ms, self.sample_rate)

    @property
    def win_length(self) -> int:
        """Window (and FFT) length in samples (at least 2)."""
        return ms_to_samples(self.win_ms, self.sample_rate, minimum=2)

    @property
    def n_bins(self) -> int:
        """Frequency bins from 0 Hz to Nyquist: ``win_length // 2 + 1``."""
        return self.win_length // 2 + 1

    @property
    def bin_width_hz(self) -> float:
        """Spacing of the FFT bins in Hz: ``sample_rate / win_length``."""
        return self.sample_rate / self.win_length

    @property
    def window_seconds(self) -> float:
        """Duration of one analysis window (after rounding to whole samples)."""
        return self.win_length / self.sample_rate

    @property
    def hop_seconds(self) -> float:
        """Actual hop in seconds (after rounding to whole samples)."""
        return self.hop_length / self.sample_rate

    def frequencies(self) -> Tensor:
        """Centre frequency of each bin in Hz, ``[n_bins]``."""
        return torch.arange(self.n_bins, dtype=torch.float64) * self.bin_width_hz

    def validate(self) -> None:
        MelConfig(self.sample_rate, 1, float(self.hop_ms), float(self.win_ms)).validate()


def linear_spectrogram(waveform: Tensor, config: StftConfig) -> Tensor:
    """Natural-log power on a linear frequency axis, ``[n] or [B, n] -> [B, T, n_bins]``.

    Hann window of ``config.win_ms``, FFT of the same length (no zero-padding, see
    :class:`StftConfig`), frames centred at ``t * hop`` with constant padding, as
    :class:`MelFrontend` frames them (same ``T = 1 + n // hop_length``), ``ln(P + 1e-10)``.

    Example:
        >>> x = torch.sin(2 * math.pi * 1000 * torch.arange(16000) / 16000)
        >>> lp = linear_spectrogram(x, StftConfig(16000, hop_ms=10.0, win_ms=25.0))
        >>> lp.shape, int(lp[0, 50].argmax()) * 40  # bin 25 of 40 Hz: 1000 Hz
        (torch.Size([1, 101, 201]), 1000)
    """
    config.validate()
    if waveform.dim() == 1:
        waveform = waveform.unsqueeze(0)
    if waveform.dim() != 2 or waveform.shape[1] < 1:
        raise ParameterError(f"waveform must be [batch, samples] or [samples], got shape {tuple(waveform.shape)}.")
    n = config.win_length
    spec = torch.stft(
        waveform.float(),
        n_fft=n,
        hop_length=config.hop_length,
        win_length=n,
        window=torch.hann_window(n, device=waveform.device),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    return torch.log(spec.abs().square() + LOG_FLOOR).transpose(1, 2).contiguous()


def spec_augment(
    log_mel: Tensor,
    *,
    max_time_mask: int,
    max_freq_mask: int,
    n_time_masks: int = 1,
    n_freq_masks: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """SpecAugment time and frequency masks that the guide loss recognises as empty.

    Masked cells are set to ``ln(LOG_FLOOR)`` (zero power), the authors' linear-domain
    masking; a log-domain fill of 0 would be loud and the guide loss would never fire.
    Mask lengths are uniform in ``[max // 8, max)`` (as in the authors' pipeline), one
    start per mask and example.  Vectorised over the batch.

    Args:
        log_mel: ``[B, T, F]``.
        max_time_mask: frames (0 disables time masks); clipped to ``T``.
        max_freq_mask: mel bins (0 disables frequency masks); clipped to ``F``.
        generator: for reproducible masks (on ``log_mel``'s device).

    Returns:
        A new ``[B, T, F]`` tensor.

    Example:
        >>> y = spec_augment(torch.zeros(2, 50, 16), max_time_mask=10, max_freq_mask=4,
        ...                  generator=torch.Generator().manual_seed(0))
        >>> y.shape, bool((y == math.log(LOG_FLOOR)).any())
        (torch.Size([2, 50, 16]), True)
    """
    if log_mel.dim() != 3:
        raise ParameterError(f"spec_augment expects [batch, time, freq], got {tuple(log_mel.shape)}.")
    batch, n_frames, n_mels = log_mel.shape
    device = log_mel.device
    mask = torch.zeros(batch, n_frames, n_mels, dtype=torch.bool, device=device)

    def spans(limit: int, size: int, count: int) -> Tensor:
        limit = min(int(limit), size)
        if limit <= 0 or count <= 0:
            return torch.zeros(batch, size, dtype=torch.bool, device=device)
        lo = max(0, limit // 8)
        u = torch.rand(batch, count, 2, generator=generator, device=device)
        length = (lo + u[..., 0] * (limit - lo)).long()
        start = (u[..., 1] * (size - length + 1).clamp(min=1)).long()
        idx = torch.arange(size, device=device).view(1, 1, size)
        hit = (idx >= start.unsqueeze(-1)) & (idx < (start + length).unsqueeze(-1))
        return hit.any(dim=1)

    mask |= spans(max_time_mask, n_frames, n_time_masks).unsqueeze(-1)
    mask |= spans(max_freq_mask, n_mels, n_freq_masks).unsqueeze(1)
    return log_mel.masked_fill(mask, math.log(LOG_FLOOR))
