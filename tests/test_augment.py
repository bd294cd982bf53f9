"""diffres.training.augment: each augmentation against what it models, from its generator alone."""

from __future__ import annotations

import math

import pytest
import torch

from diffres.training import augment as A

FLOOR = math.log(1e-10)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("alpha", [0.4, 1.0, 3.0])
def test_mixup_weights_follow_beta_alpha_alpha(alpha):
    """Moments and the whole distribution of the mixup draws against Beta(alpha, alpha)."""
    from scipy import stats

    lam = A.beta_sample(alpha, 200_000, gen(), "cpu").double().numpy()
    assert lam.min() >= 0.0 and lam.max() <= 1.0
    variance = 1.0 / (4.0 * (2.0 * alpha + 1.0))  # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1))
    se_var = variance * math.sqrt(2.0 / lam.size) * 3  # generous: the 4th moment is below 3 sigma^4 here
    assert abs(lam.mean() - 0.5) < 4 * math.sqrt(variance / lam.size)
    assert abs(lam.var() - variance) < se_var + 1e-4
    assert stats.kstest(lam, stats.beta(alpha, alpha).cdf).statistic < 0.005


def test_mixup_targets_carry_the_dominant_beta_weight_and_mix_power():
    """Each soft target's larger weight is max(lam, 1 - lam) for lam ~ Beta(1, 1), i.e.
    uniform on [0.5, 1] (mean 3/4, variance 1/48); the spectrograms mix in the power domain
    with the same weights."""
    n = 4096
    x = torch.randn(n, 6, 4, generator=gen(1)) - 4.0
    y = torch.arange(n) % 2
    targets = torch.nn.functional.one_hot(y, 2).float()
    out, mixed = A.mixup(x, targets, gen(5), alpha=1.0, probability=1.0)
    top = mixed.max(dim=1).values.double()
    differs = top < 1.0 - 1e-6  # a clip mixed with one of its own class keeps a one-hot target
    assert differs.float().mean() > 0.3
    lam = top[differs]
    assert abs(lam.mean() - 0.75) < 0.01 and abs(lam.var() - 1 / 48) < 0.003
    # power domain: exp(out) = lam exp(x) + (1 - lam) exp(partner) >= lam exp(x)
    own = (lam.view(-1, 1, 1) * torch.exp(x[differs]).double()).float()
    assert (torch.exp(out[differs]) >= own * (1 - 1e-5)).all()
    skipped, same = A.mixup(x, targets, gen(5), alpha=1.0, probability=0.0)
    assert skipped is x and same is targets


def test_time_and_frequency_shifts_move_whole_rows():
    x = torch.randn(8, 20, 6, generator=gen(2))
    rolled = A.time_shift(x, 5, gen(3))
    for b in range(8):  # each example is a circular roll of itself by |shift| <= 5
        assert any(torch.equal(rolled[b], torch.roll(x[b], k, dims=0)) for k in range(-5, 6))
    shifted = A.freq_shift(x, 2, gen(3))
    assert shifted.shape == x.shape
    for b in range(8):  # a shift along the mel axis with the edge bins repeated
        ok = []
        for k in range(-2, 3):
            idx = (torch.arange(6) - k).clamp(0, 5)
            ok.append(torch.equal(shifted[b], x[b][:, idx]))
        assert any(ok)


def test_gain_is_one_offset_per_example_and_spares_silence():
    x = torch.randn(16, 10, 5, generator=gen(4)) - 3.0
    x[:, :2] = FLOOR
    out = A.random_gain(x, 6.0, gen(4))
    delta = out - x
    assert (delta[:, :2] == 0).all()
    per_example = delta[:, 2:].reshape(16, -1)
    torch.testing.assert_close(per_example, per_example[:, :1].expand_as(per_example))
    assert per_example.abs().max() <= 6.0 * A.NEPER_PER_DB + 1e-6 and per_example.std() > 0


def test_random_equaliser_is_a_smooth_bounded_curve_that_spares_masks():
    eq_db = 10.0
    x = torch.randn(8, 40, 16, generator=gen(0)) - 3.0  # no silent cell
    x[:, :5] = FLOOR  # a masked stretch (ln 1e-10) must stay masked
    delta = A.random_equaliser(x, eq_db, gen(3)) - x  # [B, T, F]: one curve over mel bins per example
    curve = delta[:, 10]
    torch.testing.assert_close(delta[:, 10:], curve.unsqueeze(1).expand_as(delta[:, 10:]), rtol=0, atol=1e-5)
    assert (delta[:, :5] == 0).all()
    bound = eq_db * math.log(10.0) / 10.0  # dB in natural-log power
    assert curve.abs().max() <= bound + 1e-5 and curve.abs().amax(dim=1).min() > 0
    # smooth: each curve lies in the span of the first four cosines over the mel axis
    pos = torch.linspace(0, 1, curve.shape[1], dtype=torch.float64)
    basis = torch.stack([torch.cos(math.pi * k * pos) for k in range(1, 5)], dim=1)  # [F, 4]
    fit = basis @ torch.linalg.lstsq(basis, curve.double().T).solution
    torch.testing.assert_close(fit.T, curve.double(), rtol=0, atol=1e-5)


def reverb(x, seed, *, probability=1.0, seconds=(0.3, 0.6), drr_db=(0.0, 6.0), hop=0.01):
    return A.late_reverb(x, gen(seed), probability=probability, hop_seconds=hop, seconds=seconds, drr_db=drr_db)


def test_reverb_tail_decays_at_its_reverberation_time_with_its_energy_ratio():
    """An impulse in every mel band: the tail after it falls 60 dB per reverberation time
    (drawn in ``seconds`` at the lowest band, 40 % shorter at the highest) and holds
    ``10^(-DRR/10)`` of the impulse's energy, DRR in ``drr_db``; nothing before it changes."""
    rt_lo, rt_hi, drr_lo, drr_hi = 0.3, 0.6, 0.0, 6.0
    hop = 0.01
    background = torch.full((6, 200, 16), -30.0)  # (its own reverb lifts it a little too)
    x = background.clone()
    x[:, 20] = 0.0  # unit power at frame 20
    out = reverb(x, 1)
    out_background = reverb(background, 1)  # the same room
    torch.testing.assert_close(out[:, :20], out_background[:, :20], rtol=0, atol=1e-3)  # causal (30 nats down)
    assert (out_background >= background).all() and (out_background - background).max() < math.log(2.0)
    torch.testing.assert_close(out[:, 20], x[:, 20], rtol=0, atol=1e-6)  # the direct sound
    tail = (torch.exp(out[:, 21:].double()) - torch.exp(out_background[:, 21:].double())).float()  # [B, T, F]
    ratio_db = -10 * torch.log10(tail.sum(dim=1))  # direct-to-reverberant, per example and band
    assert ratio_db.min() > drr_lo - 0.05 and ratio_db.max() < drr_hi + 0.05
    slope = (torch.log(tail[:, 10]) - torch.log(tail[:, 0])) / (10 * hop)  # natural-log power per second
    rt = -math.log(1e6) / slope  # [B, F]
    assert rt[:, 0].min() > rt_lo - 1e-3 and rt[:, 0].max() < rt_hi + 1e-3
    torch.testing.assert_close(rt[:, -1] / rt[:, 0], torch.full((6,), 0.6), rtol=1e-3, atol=0)
    # the tail's length follows the reverberation time whatever the energy ratio
    out = reverb(x, 3, seconds=(0.5, 0.5), drr_db=(0.0, 0.0))
    out_background = reverb(background, 3, seconds=(0.5, 0.5), drr_db=(0.0, 0.0))
    tail = torch.exp(out[:, 21:, 0].double()) - torch.exp(out_background[:, 21:, 0].double())
    assert tail[:, 48].min() > 0  # still sounding just before 0.5 s
    slope = (torch.log(tail[:, 40]) - torch.log(tail[:, 0])) / (40 * hop)
    torch.testing.assert_close(-math.log(1e6) / slope, torch.full((6,), 0.5, dtype=torch.float64), rtol=1e-3, atol=0)
    # the share of examples that get it
    got = reverb(x[:1].expand(64, -1, -1).clone(), 2, probability=0.5, seconds=(0.2, 1.5), drr_db=(-3.0, 9.0))
    changed = (got - x[:1]).abs().amax(dim=(1, 2)) > 1e-3
    assert 16 < int(changed.sum()) < 48


def test_background_noise_only_adds_power_at_its_snr():
    x = torch.randn(256, 30, 8, generator=gen(6)) - 2.0
    out = A.background_noise(x, gen(6), probability=0.5, snr_db=(20.0, 20.0))
    added = (out - x).abs().amax(dim=(1, 2)) > 0
    assert (out >= x).all() and 0.35 < added.float().mean() < 0.65
    noise_power = (torch.exp(out) - torch.exp(x))[added].sum(dim=(1, 2))
    signal_power = torch.exp(x)[added].sum(dim=(1, 2))
    snr = 10 * torch.log10(signal_power / noise_power)  # the slope and jitter spread it around 20 dB
    assert 14.0 < float(snr.median()) < 22.0


def test_masks_fill_whole_time_and_frequency_stripes():
    x = torch.randn(4, 50, 12, generator=gen(7))
    out = A.masks(x, gen(7), max_time_mask=10, max_freq_mask=3, n_time_masks=1, n_freq_masks=1, fill=-14.5)
    hit = out == -14.5
    kept = ~hit
    torch.testing.assert_close(out[kept], x[kept], rtol=0, atol=0)
    for b in range(4):
        rows, cols = hit[b].all(dim=1), hit[b].all(dim=0)
        assert torch.equal(hit[b], rows.unsqueeze(1) | cols.unsqueeze(0))  # stripes, nothing else
        assert 1 <= int(rows.sum()) <= 10 and int(cols.sum()) <= 3


def test_without_augmentation_switches_every_augmentation_off():
    from diffres.training import TrainConfig

    every = TrainConfig(gain_db=6.0, eq_db=6.0, reverb_probability=1.0, time_shift_ms=200.0, freq_shift_bins=2,
                        noise_probability=1.0, mixup_alpha=0.4, mixup_probability=1.0, spec_augment=True)
    x = torch.randn(6, 40, 16, generator=gen(8)) - 3.0
    targets = torch.nn.functional.one_hot(torch.arange(6) % 3, 3).float()
    changed, _ = A.augment(x, targets, every, gen(8), hop_seconds=0.01)
    assert not torch.equal(changed, x)
    g = gen(8)
    state = g.get_state()
    out, soft = A.augment(x, targets, every.without_augmentation(), g, hop_seconds=0.01)
    assert torch.equal(out, x) and torch.equal(soft, targets)
    assert torch.equal(g.get_state(), state)  # nothing drawn: no augmentation left on
