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
    # white noise everywhere: the only empty frames of the paper's guide loss are
    # SpecAugment's time masks (the noise-floor frames are off here: test_recipe.py)
    ds = toy_dataset(noise=0.01)
    on = Trainer(tiny(time_mask_ms=150.0, freq_mask_bins=0, guide_floor_db=0.0), ds)
    guides = [on.step().guide_loss for _ in range(3)]
    assert max(guides) > 0.0
    off = Trainer(tiny(spec_augment=False, guide_floor_db=0.0), ds)
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


def test_resume_restarts_moments_when_the_optimizer_groups_differ(toy, tmp_path):
    """A checkpoint whose optimiser has one parameter group (as DiffRes runs saved before
    the score network got its own group) resumes with fresh moments and says so."""
    from diffres import save_checkpoint

    a = Trainer(tiny(epochs=2), toy)
    assert [len(g["params"]) for g in a.optimizer.param_groups][1:]  # DiffRes: two groups
    a.step()
    single = torch.optim.AdamW(a.model.parameters(), lr=1e-3)  # the old layout: one group
    a.model(a.features("train")[0][:4]).sum().backward()
    single.step()
    state = a.training_state()
    state["optimizer"] = single.state_dict()
    path = tmp_path / "old.pt"
    save_checkpoint(path, a.model, card=a.card(evaluate=False), training_state=state)
    with pytest.warns(RuntimeWarning, match=r"moments restart from zero"):
        b = Trainer.resume(path, toy)
    assert b.global_step == 1 and not b.optimizer.state  # weights and step kept, moments fresh
    for va, vb in zip(a.model.state_dict().values(), b.model.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=0, atol=0)
    b.step()  # and it trains on
    assert b.global_step == 2
    # the same layout loads without a word
    a.save(tmp_path / "same.pt", evaluate=False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        c = Trainer.resume(tmp_path / "same.pt", toy)
    assert len(c.optimizer.state) == len(a.optimizer.state)


def test_release_cache_frees_the_log_mel_and_keeps_the_run_showable(toy, tmp_path):
    import gc
    import weakref

    tr = Trainer(tiny(epochs=2), toy)
    tr.step()
    refs = [weakref.ref(tr.features(split)[0]) for split in ("train", "val", "test")]
    tr.release_cache()
    gc.collect()
    assert all(r() is None for r in refs), "a split's log-mel is still referenced"
    assert tr.cache_released
    with pytest.raises(ParameterError, match="released its log-mel cache"):
        tr.step()
    with pytest.raises(ParameterError, match="released its log-mel cache"):
        tr.evaluate("val")
    imp, merged, edges = tr.probe()  # the probe clip and the model stay
    assert imp.shape[0] == tr.probe_log_mel.shape[1] and edges[-1] == imp.shape[0]
    card = tr.save(tmp_path / "after.pt", evaluate=False)
    assert card["metrics"]["test_accuracy"] is None and card["global_step"] == 1


def test_quick_and_full_cards_come_from_one_builder(toy):
    tr = Trainer(tiny(epochs=1), toy)
    tr.fit()
    full, quick = tr.card({"run": "x"}), tr.card({"run": "x"}, evaluate=False)
    assert set(full) == set(quick) and full["run"] == quick["run"] == "x"
    assert quick["metrics"]["val_accuracy"] == round(tr.history[-1].val_accuracy, 4)
    assert full["metrics"]["val_accuracy"] == quick["metrics"]["val_accuracy"]  # no training since the epoch end
    assert full["metrics"]["n_test"] == 12 and quick["metrics"]["test_accuracy"] is None


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


def test_augmentation_keeps_shapes_and_repeats_for_the_same_seed_and_step(toy):
    tr = Trainer(tiny(mixup_alpha=0.4, mixup_probability=1.0, noise_probability=1.0, freq_shift_bins=2), toy)
    x, y = tr.features("train")
    xa, targets = tr.augment(x[:8], y[:8], step=0)
    assert xa.shape == x[:8].shape and targets.shape == (8, 2)
    torch.testing.assert_close(targets.sum(1), torch.ones(8))
    assert torch.isfinite(xa).all()
    xb, _ = tr.augment(x[:8], y[:8], step=0)
    torch.testing.assert_close(xa, xb, rtol=0, atol=0)  # derived from (seed, step)


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


def test_evaluate_model_takes_label_tensors_as_they_are_without_numpy():
    # The trainer keeps its labels on the training device; a CUDA tensor cannot pass through
    # NumPy (the first validation of every CUDA run failed so). A tensor whose __array__
    # raises stands in for one here.
    from diffres.models import AudioClassifier, ModelConfig
    from diffres.training.evaluation import evaluate_model

    class NoNumpy(torch.Tensor):
        def __array__(self, *args, **kwargs):
            raise TypeError("can't convert this tensor to numpy")

    torch.manual_seed(0)
    model = AudioClassifier(ModelConfig(classes=("a", "b"), clip_seconds=0.5, width=4)).eval()
    x = torch.randn(6, 51, 64)
    labels = torch.tensor([0, 1, 0, 1, 1, 0])
    expected = evaluate_model(model, x, labels.numpy())
    got = evaluate_model(model, x, labels.as_subclass(NoNumpy))
    assert got.n == 6 and got.accuracy == expected.accuracy
    np.testing.assert_allclose(got.probabilities, expected.probabilities)
