"""The training recipe's pieces: the energy prior the score network starts from, the noise
floor the guide loss may treat as empty, the score network's own learning rate, and the
DiffRes ablations (fewer channels, uniform importance)."""

from __future__ import annotations

import pytest
import torch

from diffres import DiffRes, ParameterError, analysis
from diffres.training import TrainConfig, Trainer
from diffres.training.prior import energy_prior, floor_frames, frame_level, noise_floor
from test_training import tiny, toy_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def noisy():
    """Tone bursts (a quarter of each clip) in white noise: no frame is digitally empty."""
    return toy_dataset(n_train=48, noise=0.01)


def _burst_mask(trainer: Trainer, split: str = "train") -> torch.Tensor:
    x, _ = trainer.features(split)
    level = frame_level(x)
    return level > noise_floor(level) + 3.0


def test_energy_prior_is_high_on_loud_frames_and_reach_lends_it_to_neighbours():
    x = torch.full((2, 20, 4), -12.0)
    x[0, 8:10] = -2.0
    target = energy_prior(x, threshold=3.0, gain=1.0)
    assert target.shape == (2, 20)
    assert (target[0, 8:10] == 4.0).all() and (target[0, :8] < 0).all() and (target[1] < 0).all()
    wide = energy_prior(x, threshold=3.0, gain=1.0, reach_frames=2)
    assert (wide[0, 6:12] == 4.0).all() and (wide[0, :6] < 0).all()


def test_floor_frames_are_the_quiet_ones_within_the_given_db():
    x = torch.full((1, 10, 4), -12.0)
    x[0, 3] = -12.0 + 0.5  # 2.2 dB above the floor
    x[0, 6] = -5.0
    assert floor_frames(x, 3.0)[0].tolist() == [True] * 6 + [False] + [True] * 3
    assert floor_frames(x, 1.0)[0, 3].item() is False


def test_the_prior_makes_importance_concentrate_on_the_bursts_from_the_first_step(noisy):
    plain = Trainer(tiny(epochs=1, score_prior_steps=0), noisy)
    primed = Trainer(tiny(epochs=200, score_prior_steps=60), noisy)  # long enough that 60 is not capped
    primed._advance_prior()
    assert len(primed.prior_losses) == 60 and primed.prior_done
    mask = _burst_mask(plain)
    x, _ = plain.features("train")
    with torch.no_grad():
        primed.model.eval()
        plain.model.eval()
        c_primed = analysis.concentration(primed.model.frontend(x).importance, mask).nanmean()
        c_plain = analysis.concentration(plain.model.frontend(x).importance, mask).nanmean()
    assert c_primed > 2.0 and c_primed > c_plain + 0.5


def test_a_short_run_fits_the_prior_for_at_most_half_its_steps(noisy):
    short = Trainer(tiny(epochs=1, score_prior_steps=300), noisy)
    assert short.score_prior_steps == short.total_steps // 2 < 300
    short.step()
    short.step()
    assert len(short.prior_losses) == short.total_steps // 2  # once, before the first step
    long = Trainer(tiny(epochs=400, score_prior_steps=300), noisy)
    assert long.total_steps >= 600 and long.score_prior_steps == 300
    assert Trainer(tiny(epochs=400, frontend="avgpool"), noisy).score_prior_steps == 0
    assert Trainer(tiny(epochs=400, importance="uniform"), noisy).score_prior_steps == 0


def test_the_prior_fitted_in_slices_gives_the_weights_of_one_fit(noisy):
    whole = Trainer(tiny(epochs=4, score_prior_steps=12), noisy)
    sliced = Trainer(tiny(epochs=4, score_prior_steps=12), noisy)
    assert whole.score_prior_steps == 12
    whole.step()  # the whole prior fit, then step 1
    calls = 0
    while sliced.global_step == 0:
        recs = sliced.run_for(0.0)  # at least one prior step per call, no training step until it is done
        calls += 1
        assert recs == [] or sliced.prior_done
    assert calls >= 12 and len(sliced.prior_losses) == 12 and sliced.prior_losses == whole.prior_losses
    for (name, a), b in zip(whole.model.state_dict().items(), sliced.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_floor_guide_loss_fires_on_noisy_clips_without_masks(noisy):
    off = Trainer(tiny(spec_augment=False, guide_floor_db=0.0), noisy)
    assert all(off.step().guide_loss == 0.0 for _ in range(2))
    on = Trainer(tiny(spec_augment=False, guide_floor_db=3.0), noisy)
    assert max(on.step().guide_loss for _ in range(2)) > 0.0


def test_score_network_has_its_own_learning_rate(noisy):
    tr = Trainer(tiny(score_learning_rate_scale=0.25, learning_rate=4e-3, warmup_fraction=0.0), noisy)
    rec = tr.step()
    groups = {bool(g.get("scores")): g["lr"] for g in tr.optimizer.param_groups}
    assert groups[True] == pytest.approx(0.25 * groups[False]) and groups[False] == pytest.approx(rec.learning_rate)


def test_recipe_settings_are_checked():
    with pytest.raises(ParameterError, match="score_prior_gain must be in"):
        TrainConfig(score_prior_gain=0.0)
    with pytest.raises(ParameterError, match="guide_floor_db must be in"):
        TrainConfig(guide_floor_db=-1.0)
    with pytest.raises(ParameterError, match="importance must be one of"):
        TrainConfig(importance="random")
    with pytest.raises(ParameterError, match="diffres_channels"):
        TrainConfig(diffres_channels=("avg", "loudness"))
    cfg = TrainConfig(diffres_channels=["avg"], importance="uniform")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_channel_subset_and_uniform_importance_ablations(noisy):
    x = torch.randn(2, 40, 16) - 5.0
    avg_only = DiffRes(16, 0.75, channels=("avg",)).eval()
    full = DiffRes(16, 0.75).eval()
    full.load_state_dict(avg_only.state_dict())
    a, b = avg_only(x), full(x)
    assert a.features.shape == (2, 1, 10, 16) and avg_only.n_channels == 1
    torch.testing.assert_close(a.features[:, 0], b.features[:, 0])
    with pytest.raises(ParameterError, match="subset"):
        DiffRes(16, 0.75, channels=("max", "avg"))
    uniform = DiffRes(16, 0.75, importance="uniform").eval()
    torch.testing.assert_close(uniform(x).importance, torch.full((2, 40), 0.25))
    tr = Trainer(tiny(importance="uniform", diffres_channels=("avg", "max")), noisy)
    tr.step()
    assert tr.model.classifier.input_norm.num_features == 2
    assert all(p.grad is None or not p.grad.any() for p in tr.model.frontend.score_network.parameters())


def test_a_card_with_malformed_ablation_fields_is_refused_by_name(tmp_path):
    import io
    import json

    from diffres import CheckpointError, load_checkpoint, save_checkpoint
    from diffres.models import AudioClassifier, ModelConfig

    model = AudioClassifier(ModelConfig.from_dict({"classes": ["a", "b"], "n_mels": 8, "width": 4}))
    buf = io.BytesIO()
    save_checkpoint(buf, model)
    payload = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    for field, value in (("diffres_channels", "avg,max"), ("diffres_channels", ["loudness"]), ("importance", "oracle")):
        card = json.loads(payload["card"])
        card[field] = value
        out = io.BytesIO()
        torch.save({**payload, "card": json.dumps(card)}, out)
        with pytest.raises(CheckpointError, match=field):
            load_checkpoint(out.getvalue())
