"""Augmentations of a batch of cached log-mel spectrograms: pure functions of a generator.

Each function takes a log-mel batch ``[batch, time, freq]`` (natural-log mel power) and a
``torch.Generator`` on the batch's device, draws what it needs from the generator, and
returns a new batch; nothing reads or writes the global RNG, so a step's augmentation is a
function of ``(seed, step)`` alone (:class:`~diffres.training.Trainer` derives the
generator from them).  Every augmentation works in the domain where it is exact or a close
approximation of its waveform counterpart:

- :func:`random_gain`: ``+ gain`` in log power (exact);
- :func:`random_equaliser`: ``+ curve(mel bin)``, a smooth random curve over the mel axis
  (exact for a filter that is smooth across each mel band);
- :func:`time_shift`: circular roll of frames (a circular shift of the waveform, up to
  framing);
- :func:`late_reverb`: the mel power convolved along time with an exponential decay;
- :func:`background_noise`: ``logaddexp`` with a random-slope noise floor at a random SNR
  (adding uncorrelated noise adds power in expectation);
- :func:`mixup`: ``logaddexp(ln l + a, ln(1-l) + b)`` (waveform mixing, in expectation);
- :func:`masks`: SpecAugment time and frequency masks (:func:`diffres.features.spec_augment`)
  filled with a chosen log power, applied last.

:func:`augment` composes them in that order for a :class:`~diffres.training.TrainConfig`.
Cells at the log floor (``ln(1e-10)``: silence or earlier masks) keep their value under gain
and equaliser.  No Python loop over the batch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from ..features import LOG_FLOOR, spec_augment

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = [
    "beta_sample",
    "time_shift",
    "freq_shift",
    "random_gain",
    "random_equaliser",
    "late_reverb",
    "mixup",
    "background_noise",
    "masks",
    "augment",
]

#: Natural-log power per dB: ``ln(10) / 10``.
NEPER_PER_DB = math.log(10.0) / 10.0
#: ``ln(LOG_FLOOR)``: the log power of "no energy at all".
FLOOR = math.log(LOG_FLOOR)


def beta_sample(alpha: float, n: int, generator: torch.Generator, device: torch.device | str) -> Tensor:
    """``n`` draws from Beta(alpha, alpha), exactly: the inverse of its CDF (scipy's
    ``betaincinv``) at uniforms from ``generator``, so the draws are reproducible from the
    generator alone and need no rejection loop.

    Returns:
        ``[n]`` float32 on ``device``, in [0, 1].

    Example:
        >>> lam = beta_sample(1.0, 100_000, torch.Generator().manual_seed(0), "cpu")
        >>> round(float(lam.mean()), 2), round(float(lam.var()) * 12, 1)  # Beta(1, 1): mean 1/2, variance 1/12
        (0.5, 1.0)
    """
    from scipy.special import betaincinv

    u = torch.rand(n, generator=generator, device=device, dtype=torch.float64).cpu().numpy()
    return torch.from_numpy(betaincinv(alpha, alpha, u)).to(device=device, dtype=torch.float32)


def time_shift(x: Tensor, max_frames: int, generator: torch.Generator) -> Tensor:
    """Roll each example circularly along time by a shift uniform in ``[-max_frames, max_frames]``."""
    batch, n_frames, n_mels = x.shape
    shift = torch.randint(-max_frames, max_frames + 1, (batch, 1), generator=generator, device=x.device)
    idx = (torch.arange(n_frames, device=x.device).unsqueeze(0) - shift) % n_frames
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, n_mels))


def freq_shift(x: Tensor, max_bins: int, generator: torch.Generator) -> Tensor:
    """Shift each example along the mel axis by up to ``max_bins`` (edge bins repeated):
    roughly a pitch shift."""
    batch, n_frames, n_mels = x.shape
    shift = torch.randint(-max_bins, max_bins + 1, (batch, 1), generator=generator, device=x.device)
    idx = (torch.arange(n_mels, device=x.device).unsqueeze(0) - shift).clamp(0, n_mels - 1)
    return torch.gather(x, 2, idx.unsqueeze(1).expand(-1, n_frames, -1))


def _above_floor(x: Tensor) -> Tensor:
    return x > FLOOR + 1e-3


def random_gain(x: Tensor, gain_db: float, generator: torch.Generator) -> Tensor:
    """Add a gain uniform in ``[-gain_db, gain_db]`` dB per example (cells at the floor stay)."""
    gain = (torch.rand(x.shape[0], 1, 1, generator=generator, device=x.device) * 2 - 1) * gain_db * NEPER_PER_DB
    return torch.where(_above_floor(x), x + gain, x)


def random_equaliser(x: Tensor, eq_db: float, generator: torch.Generator) -> Tensor:
    """Add a smooth random curve over the mel axis per example: a sum of the first four
    cosines whose largest boost or cut is uniform in ``[0, eq_db]`` dB (floor cells stay)."""
    batch, _, n_mels = x.shape
    dev = x.device
    order = torch.arange(1, 5, device=dev, dtype=x.dtype).view(1, -1, 1)
    pos = torch.linspace(0, 1, n_mels, device=dev, dtype=x.dtype).view(1, 1, -1)
    coef = torch.rand(batch, 4, 1, generator=generator, device=dev) * 2 - 1
    curve = (coef * torch.cos(math.pi * order * pos)).sum(dim=1, keepdim=True)  # [B, 1, F]
    depth = torch.rand(batch, 1, 1, generator=generator, device=dev) * eq_db * NEPER_PER_DB
    curve = curve / curve.abs().amax(dim=2, keepdim=True).clamp(min=1e-6) * depth
    return torch.where(_above_floor(x), x + curve, x)


def late_reverb(
    x: Tensor,
    generator: torch.Generator,
    *,
    probability: float,
    hop_seconds: float,
    seconds: tuple[float, float],
    drr_db: tuple[float, float],
) -> Tensor:
    """A synthetic room's late reverb on a share of the batch.

    The mel power is convolved along time with an exponential decay whose reverberation time
    (60 dB) is uniform in ``seconds`` at the lowest mel band and 40 % shorter at the highest,
    at a direct-to-reverberant energy ratio uniform in ``drr_db`` dB.  Each example gets a
    room with probability ``probability``.  ``[B, T, F]`` log-mel in and out.
    """
    batch, n_frames, n_mels = x.shape
    dev, dtype = x.device, x.dtype
    rt_lo, rt_hi = seconds
    rt = rt_lo + torch.rand(batch, 1, 1, generator=generator, device=dev, dtype=dtype) * (rt_hi - rt_lo)
    rt = rt * (1.0 - 0.4 * torch.linspace(0, 1, n_mels, device=dev, dtype=dtype).view(1, 1, -1))  # [B, 1, F]
    drr_lo, drr_hi = drr_db
    drr = drr_lo + torch.rand(batch, 1, 1, generator=generator, device=dev, dtype=dtype) * (drr_hi - drr_lo)
    on = (torch.rand(batch, generator=generator, device=dev) < probability).nonzero().squeeze(1)
    if on.numel() == 0:
        return x
    rt, drr, dry = rt[on], drr[on], x[on]  # only the examples that get a room
    n_tail = min(n_frames, max(1, int(math.ceil(rt_hi / hop_seconds))))  # the tail to -60 dB at the longest
    lag = torch.arange(1, n_tail + 1, device=dev, dtype=dtype).view(1, -1, 1) * hop_seconds
    decay = torch.exp(-math.log(1e6) * lag / rt)  # power envelope, [b, L, F]
    decay = decay / decay.sum(dim=1, keepdim=True) * (10.0 ** (-drr / 10.0))
    # float64: the FFT's round-off (about 1e-7 of the loudest cell in float32) would lift
    # silent cells by 10 nats or more; in float64 it stays far below the quietest cell
    power = torch.exp(dry.double())
    n_fft = n_frames + n_tail + 1  # linear, not circular, convolution
    kernel = F.pad(decay.double(), (0, 0, 1, 0))  # lag 0 (the direct sound) is not in the tail
    tail = torch.fft.irfft(
        torch.fft.rfft(power, n=n_fft, dim=1) * torch.fft.rfft(kernel, n=n_fft, dim=1), n=n_fft, dim=1
    )[:, :n_frames]
    wet = torch.log(power + tail.clamp(min=0.0)).to(dtype)
    return x.index_copy(0, on, torch.maximum(wet, dry))


def mixup(
    x: Tensor, targets: Tensor, generator: torch.Generator, *, alpha: float, probability: float
) -> tuple[Tensor, Tensor]:
    """With probability ``probability`` mix the batch with a permutation of itself.

    Weights ``lam ~ Beta(alpha, alpha)`` per example, folded so the example's own clip
    dominates (``max(lam, 1 - lam)``); spectrograms mix in the power domain, soft targets
    ``[B, C]`` linearly.  Returns ``(log-mel, targets)``.
    """
    batch = x.shape[0]
    dev = x.device
    if float(torch.rand((), generator=generator, device=dev)) >= probability:
        return x, targets
    lam = beta_sample(alpha, batch, generator, dev)
    lam = torch.maximum(lam, 1 - lam)  # the first clip dominates
    partner = torch.randperm(batch, generator=generator, device=dev)
    lw = lam.view(batch, 1, 1)
    x = torch.logaddexp(x + torch.log(lw), x[partner] + torch.log1p(-lw + 1e-6))
    targets = lam.view(batch, 1) * targets + (1 - lam.view(batch, 1)) * targets[partner]
    return x, targets


def background_noise(
    x: Tensor, generator: torch.Generator, *, probability: float, snr_db: tuple[float, float]
) -> Tensor:
    """Noise at an SNR uniform in ``snr_db`` dB with a random spectral slope, on a share
    ``probability`` of the examples; each cell's noise power fluctuates log-normally (a mel
    band's noise power is roughly chi-square)."""
    batch, n_frames, n_mels = x.shape
    dev = x.device
    lo, hi = snr_db
    snr = lo + torch.rand(batch, 1, 1, generator=generator, device=dev) * (hi - lo)
    level = torch.logsumexp(x.reshape(batch, -1), dim=1).view(batch, 1, 1) - math.log(n_frames * n_mels)
    slope = (torch.rand(batch, 1, 1, generator=generator, device=dev) * 4 - 2) * torch.linspace(
        -1, 1, n_mels, device=dev
    ).view(1, 1, -1)
    jitter = 0.5 * torch.randn(batch, n_frames, n_mels, generator=generator, device=dev)
    noise = level - snr * NEPER_PER_DB + slope + jitter
    on = torch.rand(batch, 1, 1, generator=generator, device=dev) < probability
    return torch.where(on, torch.logaddexp(x, noise), x)


def masks(
    x: Tensor,
    generator: torch.Generator,
    *,
    max_time_mask: int,
    max_freq_mask: int,
    n_time_masks: int,
    n_freq_masks: int,
    fill: float,
) -> Tensor:
    """SpecAugment masks (:func:`diffres.features.spec_augment` draws them) filled with
    ``fill`` (natural-log power; at most ``ln(1e-6)`` so DiffRes's guide loss counts masked
    frames as empty)."""
    drawn = spec_augment(
        torch.zeros_like(x),
        max_time_mask=max_time_mask,
        max_freq_mask=max_freq_mask,
        n_time_masks=n_time_masks,
        n_freq_masks=n_freq_masks,
        generator=generator,
    )
    return x.masked_fill(drawn < 0, fill)


def augment(
    x: Tensor, targets: Tensor, config: TrainConfig, generator: torch.Generator, *, hop_seconds: float
) -> tuple[Tensor, Tensor]:
    """Every augmentation ``config`` switches on, in the module's order.

    Args:
        x: ``[B, T, F]`` log-mel.
        targets: ``[B, C]`` one-hot (or soft) targets.
        config: the :class:`~diffres.training.TrainConfig` (its augmentation fields).
        generator: on ``x``'s device; everything random is drawn from it.
        hop_seconds: the spectrogram's hop (turns the ms settings into frames).

    Returns:
        ``(log-mel [B, T, F], targets [B, C])``.
    """
    shift_frames = int(round(config.time_shift_ms / 1000.0 / hop_seconds))
    if shift_frames > 0:
        x = time_shift(x, shift_frames, generator)
    if config.freq_shift_bins > 0:
        x = freq_shift(x, config.freq_shift_bins, generator)
    if config.gain_db > 0:
        x = random_gain(x, config.gain_db, generator)
    if config.eq_db > 0:
        x = random_equaliser(x, config.eq_db, generator)
    if config.reverb_probability > 0:
        x = late_reverb(
            x,
            generator,
            probability=config.reverb_probability,
            hop_seconds=config.hop_ms / 1000.0,
            seconds=config.reverb_seconds,
            drr_db=config.reverb_drr_db,
        )
    if config.mixup_alpha > 0 and config.mixup_probability > 0:
        x, targets = mixup(x, targets, generator, alpha=config.mixup_alpha, probability=config.mixup_probability)
    if config.noise_probability > 0:
        x = background_noise(x, generator, probability=config.noise_probability, snr_db=config.noise_snr_db)
    if config.spec_augment:
        x = masks(
            x,
            generator,
            max_time_mask=int(round(config.time_mask_ms / 1000.0 / hop_seconds)),
            max_freq_mask=config.freq_mask_bins,
            n_time_masks=config.n_time_masks,
            n_freq_masks=config.n_freq_masks,
            fill=config.mask_fill,
        )
    return x, targets
