"""Training: steps learn, the guide loss fires, stop / resume / seeds behave, evaluation."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch

from diffres import ParameterError, load_checkpoint
from diffres.datasets.base import AudioDataset, Split
from diffres.errors import CheckpointError
from diffres.training import (
    Callback,
    EpochRecord,
    EvalResult,
    TrainConfig,
    Trainer,
    accuracy_vs_rate,
    evaluate_checkpoint,
)

SR = 16000


#: Tiny models run fastest on one thread (conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def toy_dataset(n_train: int = 32, n_eval: int = 12, *, seconds: float = 0.5, noise: float = 0.0, seed: int = 0,
                classes=("low", "high")) -> AudioDataset:
    """Separable toy set: a short tone burst (500 Hz or 3 kHz) at a random place.

    ``noise > 0`` adds white noise everywhere, so no frame is empty unless masked.
    """
    rng = np.random.default_rng(seed)
    n = int(SR * seconds)
    t = np.arange(n) / SR
    freqs = [500.0, 3000.0, 1400.0, 6000.0][: len(classes)]
    splits = {}
    for name, m in (("train", n_train), ("val", n_eval), ("test", n_eval)):
        y = np.arange(m) % len(classes)
        w = noise * rng.standard_normal((m, n)).astype(np.float32)
        length = n // 4
        starts = rng.integers(0, n - length, m)
        idx = starts[:, None] + np.arange(length)[None, :]
        tone = 0.5 * np.sin(2 * np.pi * np.asarray(freqs)[y][:, None] * t[None, :length])
        np.put_along_axis(w, idx, np.take_along_axis(w, idx, 1) + tone.astype(np.float32), 1)
        splits[name] = Split(w.astype(np.float32), y.astype(np.int64), [f"{name}/{i}.wav" for i in range(m)])
    return AudioDataset("toy", list(classes), seconds, SR, splits, source_description="synthetic tone bursts (tests)")


def tiny(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=8, n_mels=16, width=8, noise_probability=0.0, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def toy():
    return toy_dataset()


def test_config_validation_messages():
    with pytest.raises(ParameterError, match="reduction_rate must be in"):
        TrainConfig(reduction_rate=1.0)
    with pytest.raises(ParameterError, match="frontend must be one of"):
        TrainConfig(frontend="wavelet")
    with pytest.raises(ParameterError, match="epochs must be a whole number"):
        TrainConfig(epochs=2.5)
    with pytest.raises(ParameterError, match="learning_rate must be in"):
        TrainConfig(learning_rate=0)
    with pytest.raises(ParameterError, match="device must be"):
        TrainConfig(device="tpu")
    with pytest.raises(ParameterError, match="noise_snr_db"):
        TrainConfig(noise_snr_db=(30, 10))
    with pytest.raises(ParameterError, match="mask_fill must be in"):
        TrainConfig(mask_fill=-10.0)  # would not count as empty for the guide loss
    with pytest.raises(ParameterError, match="no dataset"):
        Trainer(TrainConfig())
    assert TrainConfig.from_dict(TrainConfig(seed=3).to_dict()) == TrainConfig(seed=3)


def test_steps_reduce_loss_on_separable_set(toy):
    tr = Trainer(tiny(epochs=4, spec_augment=False, gain_db=0.0, time_shift_ms=0.0, learning_rate=5e-3), toy)
    before = tr.evaluate("train").loss
    while not tr.finished:
        tr.step()
    after = tr.evaluate("train")
    assert after.loss < before * 0.8
    assert after.accuracy >= 0.8
    assert len(tr.history) == 4 and tr.epoch == 4


def test_guide_loss_fires_with_spec_augment():
    # white noise everywhere: the only empty frames are SpecAugment's time masks
    ds = toy_dataset(noise=0.01)
    on = Trainer(tiny(time_mask_ms=150.0, freq_mask_bins=0), ds)
    guides = [on.step().guide_loss for _ in range(3)]
    assert max(guides) > 0.0
    off = Trainer(tiny(spec_augment=False), ds)
    assert all(off.step().guide_loss == 0.0 for _ in range(3))


def test_spec_augment_masks_are_empty_frames_for_the_guide_loss():
    from diffres import functional as Fn

    ds = toy_dataset(noise=0.01)
    tr = Trainer(tiny(time_mask_ms=150.0, freq_mask_bins=0, gain_db=0.0, time_shift_ms=0.0), ds)
    x, y = tr.features("train")
    xa, _ = tr.augment(x[:8], y[:8], step=0)
    masked = (xa == tr.config.mask_fill).all(dim=-1)  # whole frames written by time masks
    assert masked.any(dim=1).all()
    empty = Fn.empty_frames(Fn.frame_energy(xa))
    assert torch.equal(empty, masked)


def test_step_record_and_epoch_bookkeeping(toy):
    tr = Trainer(tiny(epochs=2), toy)
    assert tr.steps_per_epoch == 4 and tr.epoch == 0 and math.isnan(tr.estimated_seconds_left)
    recs = tr.run_for(60.0)  # never crosses an epoch end
    assert len(recs) == tr.steps_per_epoch
    assert recs[-1].epoch_end is not None and all(r.epoch_end is None for r in recs[:-1])
    ep = recs[-1].epoch_end
    assert isinstance(ep, EpochRecord) and ep.epoch == 1 and 0.0 <= ep.val_accuracy <= 1.0
    n_frames = tr.probe_log_mel.shape[1]
    assert ep.probe_importance.shape == (n_frames,)
    assert ep.probe_importance.sum() == pytest.approx(ep.probe_merged.shape[0], rel=1e-4)
    assert ep.probe_bin_edges.shape == (ep.probe_merged.shape[0] + 1,)
    assert tr.estimated_seconds_left > 0
    one = tr.run_for(0.0)  # at least one step
    assert len(one) == 1 and tr.global_step == 5
    tr.run_for(60.0)
    assert tr.finished and tr.run_for(1.0) == [] and tr.estimated_seconds_left == 0.0
    with pytest.raises(ParameterError, match="finished"):
        tr.step()


def test_stop_event_and_request_stop_end_cleanly(toy):
    tr = Trainer(tiny(epochs=3), toy)
    stop = threading.Event()

    class StopAfterTwo(Callback):
        def on_step(self, trainer, record):
            if record.global_step == 2:
                stop.set()

    tr.fit(callbacks=[StopAfterTwo()], stop=stop)
    assert tr.global_step == 2 and not tr.finished and tr.callbacks == []

    class RequestStop(Callback):
        def on_step(self, trainer, record):
            trainer.request_stop()

    tr.fit(callbacks=[RequestStop()])
    assert tr.global_step == 3
    tr.fit(stop=lambda: tr.global_step >= 5)
    assert tr.global_step == 5
    # the model is usable after a stop
    assert tr.evaluate("val").n == 12


def _adam_moments(opt):
    return [(s["exp_avg"].clone(), s["exp_avg_sq"].clone(), float(s["step"])) for s in opt.state.values()]


def test_resume_continues_identically(toy, tmp_path):
    cfg = tiny(epochs=3)
    a = Trainer(cfg, toy)
    for _ in range(a.steps_per_epoch):
        a.step()
    path = tmp_path / "run.pt"
    a.save(path)
    b = Trainer.resume(path, toy)
    assert (b.epoch, b.global_step, len(b.history)) == (a.epoch, a.global_step, 1)
    assert b.history[0].val_accuracy == a.history[0].val_accuracy
    np.testing.assert_array_equal(b.history[0].probe_importance, a.history[0].probe_importance)
    for (m1, v1, s1), (m2, v2, s2) in zip(_adam_moments(a.optimizer), _adam_moments(b.optimizer)):
        assert s1 == s2
        torch.testing.assert_close(m1, m2, rtol=0, atol=0)
        torch.testing.assert_close(v1, v2, rtol=0, atol=0)
    # continuing gives exactly what the uninterrupted run gives
    for _ in range(3):
        ra, rb = a.step(), b.step()
        assert ra.loss == rb.loss
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=k)
    # an inference-only checkpoint cannot be resumed
    c = tmp_path / "plain.pt"
    from diffres import save_checkpoint

    save_checkpoint(c, a.model)
    with pytest.raises(CheckpointError, match="no training state"):
        Trainer.resume(c, toy)


def test_resume_with_more_epochs_and_without_optimizer(toy, tmp_path):
    a = Trainer(tiny(epochs=1), toy)
    a.fit()
    path = tmp_path / "small.pt"
    a.save(path, include_optimizer=False)
    b = Trainer.resume(path, toy, epochs=2)
    assert b.epoch == 1 and not b.finished
    b.fit()
    assert b.epoch == 2 and [h.epoch for h in b.history] == [1, 2]


def test_seed_reproduces_weights_and_leaves_global_rng_alone(toy):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    runs = []
    for seed in (5, 5, 6):
        tr = Trainer(tiny(seed=seed), toy)
        for _ in range(3):
            tr.step()
        runs.append(tr.model.state_dict())
    assert torch.equal(torch.get_rng_state(), before)
    for k in runs[0]:
        torch.testing.assert_close(runs[0][k], runs[1][k], rtol=0, atol=0, msg=k)
    assert any(not torch.equal(runs[0][k], runs[2][k]) for k in runs[0] if runs[0][k].is_floating_point())


def test_save_load_round_trip_predictions(toy, tmp_path):
    tr = Trainer(tiny(epochs=1), toy)
    tr.fit()
    card = tr.save(tmp_path / "m.pt", card_extra={"note": "test"})
    assert card["dataset"] == "toy" and card["note"] == "test" and card["data_source"].startswith("synthetic")
    assert set(card["metrics"]) >= {"val_accuracy", "test_accuracy"}
    loaded = load_checkpoint(tmp_path / "m.pt")
    x, y = tr.features("test")
    tr.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), tr.model(x), rtol=0, atol=0)
    w = toy.splits["test"].waveforms[3]
    np.testing.assert_array_equal(loaded.model.predict(w).probabilities, tr.model.predict(w).probabilities)
    res = evaluate_checkpoint(tmp_path / "m.pt", toy)
    assert res.accuracy == pytest.approx(card["metrics"]["test_accuracy"], abs=1e-4)


def test_evaluate_result_fields(toy):
    tr = Trainer(tiny(epochs=1), toy)
    tr.fit()
    res = tr.evaluate("test")
    assert isinstance(res, EvalResult) and res.n == 12
    assert res.confusion.shape == (2, 2) and res.confusion.sum() == 12
    assert res.probabilities.shape == (12, 2)
    np.testing.assert_allclose(res.probabilities.sum(1), 1.0, atol=1e-5)
    assert set(res.per_class) == {"low", "high"}
    assert res.accuracy == pytest.approx(np.mean(res.predictions == res.labels))
    assert set(res.mean_importance) == {"low", "high"}
    assert res.mean_importance["low"].shape == (tr.probe_log_mel.shape[1],)
    low = tr.evaluate("test", reduction_rate=0.5)
    assert low.reduction_rate == 0.5
    with pytest.raises(ParameterError, match="split must be"):
        tr.evaluate("dev")
    sweep = accuracy_vs_rate(tr.model, toy.splits["test"], [0.0, 0.5, 0.75])
    assert [r for r, _ in sweep] == [0.0, 0.5, 0.75] and all(0.0 <= a <= 1.0 for _, a in sweep)
    assert sweep[2][1] == pytest.approx(res.accuracy)


def test_baseline_frontends_train(toy):
    for name in ("avgpool", "changehop", "full"):
        tr = Trainer(tiny(frontend=name, epochs=1), toy)
        rec = tr.step()
        assert rec.guide_loss == 0.0 and math.isfinite(rec.loss)
        assert tr.evaluate("val").mean_importance is None


@pytest.mark.parametrize("alpha", [0.4, 1.0, 3.0])
def test_mixup_weights_follow_beta_alpha_alpha(alpha):
    """Moments and the whole distribution of the mixup draws against Beta(alpha, alpha)."""
    from scipy import stats

    from diffres.training import _beta_sample

    lam = _beta_sample(alpha, 200_000, torch.Generator().manual_seed(0), "cpu").double().numpy()
    assert lam.min() >= 0.0 and lam.max() <= 1.0
    variance = 1.0 / (4.0 * (2.0 * alpha + 1.0))  # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1))
    se_var = variance * math.sqrt(2.0 / lam.size) * 3  # generous: the 4th moment is below 3 sigma^4 here
    assert abs(lam.mean() - 0.5) < 4 * math.sqrt(variance / lam.size)
    assert abs(lam.var() - variance) < se_var + 1e-4
    assert stats.kstest(lam, stats.beta(alpha, alpha).cdf).statistic < 0.005


def test_mixup_targets_carry_the_dominant_beta_weight(toy):
    """With mixup on every batch, each soft target's larger weight is max(lam, 1 - lam) for
    lam ~ Beta(1, 1), i.e. uniform on [0.5, 1] (mean 3/4, variance 1/48)."""
    tr = Trainer(tiny(mixup_alpha=1.0, mixup_probability=1.0, spec_augment=False, gain_db=0.0, time_shift_ms=0.0), toy)
    x, y = tr.features("train")
    reps = 4096 // x.shape[0]
    _, targets = tr.augment(x.repeat(reps, 1, 1), y.repeat(reps), step=5)
    top = targets.max(dim=1).values.double()
    mixed = top < 1.0 - 1e-6  # a clip mixed with one of its own class keeps a one-hot target
    assert mixed.float().mean() > 0.3
    top = top[mixed].numpy()
    assert abs(top.mean() - 0.75) < 0.01 and abs(top.var() - 1 / 48) < 0.003


def test_augmentation_keeps_shapes_and_repeats_for_the_same_seed_and_step(toy):
    tr = Trainer(tiny(mixup_alpha=0.4, mixup_probability=1.0, noise_probability=1.0, freq_shift_bins=2), toy)
    x, y = tr.features("train")
    xa, targets = tr.augment(x[:8], y[:8], step=0)
    assert xa.shape == x[:8].shape and targets.shape == (8, 2)
    torch.testing.assert_close(targets.sum(1), torch.ones(8))
    assert torch.isfinite(xa).all()
    xb, _ = tr.augment(x[:8], y[:8], step=0)
    torch.testing.assert_close(xa, xb, rtol=0, atol=0)  # derived from (seed, step)


def test_random_equaliser_is_a_smooth_bounded_curve_that_spares_masks(toy):
    eq_db = 10.0
    plain = Trainer(tiny(eq_db=0.0, gain_db=0.0, time_shift_ms=0.0, spec_augment=False), toy)
    tr = Trainer(tiny(eq_db=eq_db, gain_db=0.0, time_shift_ms=0.0, spec_augment=False), toy)
    x, y = tr.features("train")
    x = torch.randn(x[:8].shape, generator=torch.Generator().manual_seed(0)) - 3.0  # no silent cell
    x[:, :5] = -23.02585  # a masked stretch (ln 1e-10) must stay masked
    base, _ = plain.augment(x, y[:8], step=3)
    out, _ = tr.augment(x, y[:8], step=3)
    delta = out - base  # [B, T, F]: one curve over mel bins per example, the same in every frame
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


def test_reverb_tail_decays_at_its_reverberation_time_with_its_energy_ratio(toy):
    """An impulse in every mel band: the tail after it falls 60 dB per reverberation time
    (drawn in ``reverb_seconds`` at the lowest band, 40 % shorter at the highest) and holds
    ``10^(-DRR/10)`` of the impulse's energy, DRR in ``reverb_drr_db``; nothing before it changes."""
    rt_lo, rt_hi, drr_lo, drr_hi = 0.3, 0.6, 0.0, 6.0
    tr = Trainer(tiny(reverb_probability=1.0, reverb_seconds=(rt_lo, rt_hi), reverb_drr_db=(drr_lo, drr_hi)), toy)
    hop = tr.config.hop_ms / 1000.0
    background = torch.full((6, 200, 16), -30.0)  # (its own reverb lifts it a little too)
    x = background.clone()
    x[:, 20] = 0.0  # unit power at frame 20
    out = tr._reverb(x, torch.Generator().manual_seed(1))
    out_background = tr._reverb(background, torch.Generator().manual_seed(1))  # the same room
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
    flat = Trainer(tiny(reverb_probability=1.0, reverb_seconds=(0.5, 0.5), reverb_drr_db=(0.0, 0.0)), toy)
    out = flat._reverb(x, torch.Generator().manual_seed(3))
    out_background = flat._reverb(background, torch.Generator().manual_seed(3))
    tail = torch.exp(out[:, 21:, 0].double()) - torch.exp(out_background[:, 21:, 0].double())
    assert tail[:, 48].min() > 0  # still sounding just before 0.5 s
    slope = (torch.log(tail[:, 40]) - torch.log(tail[:, 0])) / (40 * hop)
    torch.testing.assert_close(-math.log(1e6) / slope, torch.full((6,), 0.5, dtype=torch.float64), rtol=1e-3, atol=0)
    # the share of examples that get it
    half = Trainer(tiny(reverb_probability=0.5), toy)
    got = half._reverb(x[:1].expand(64, -1, -1).clone(), torch.Generator().manual_seed(2))
    changed = (got - x[:1]).abs().amax(dim=(1, 2)) > 1e-3
    assert 16 < int(changed.sum()) < 48


def test_reverb_settings_are_checked():
    with pytest.raises(ParameterError, match="reverb_probability must be in"):
        TrainConfig(reverb_probability=1.5)
    with pytest.raises(ParameterError, match="reverb_seconds must satisfy"):
        TrainConfig(reverb_seconds=(1.0, 0.5))
    with pytest.raises(ParameterError, match="reverb_drr_db must be a"):
        TrainConfig(reverb_drr_db=3.0)
    assert TrainConfig.from_dict(TrainConfig(reverb_probability=0.5).to_dict()).reverb_seconds == (0.2, 1.5)


def test_empty_or_single_class_training_split_is_refused():
    ds = toy_dataset(n_train=4)
    ds.splits["train"] = Split(ds.splits["train"].waveforms[:1], ds.splits["train"].labels[:1], ["a"])
    from diffres.errors import DatasetError

    with pytest.raises(DatasetError, match="at least 2"):
        Trainer(tiny(), ds)
