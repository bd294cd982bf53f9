"""Models: configuration checks, shapes for every front-end, any clip length and rate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffres import FRONTENDS, ParameterError
from diffres.models import DEFAULT_MEL, AudioClassifier, ModelConfig, Prediction, SmallCNN, top_classes
from diffres.training import TrainConfig


#: Tiny models run fastest on one thread (conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def model(frontend="diffres", **kw) -> AudioClassifier:
    torch.manual_seed(0)
    cfg = dict(classes=("a", "b", "c"), frontend=frontend, n_mels=16, width=8, clip_seconds=0.5)
    cfg.update(kw)
    return AudioClassifier(ModelConfig.from_dict(cfg)).eval()


def test_config_validation_and_round_trip():
    with pytest.raises(ParameterError, match="at least 2 classes"):
        ModelConfig(classes=("only",))
    with pytest.raises(ParameterError, match="at most 1000, got 1001"):
        ModelConfig(classes=tuple(f"c{i}" for i in range(1001)))
    with pytest.raises(ParameterError, match="classes must be a list of names, got 'ab'"):
        ModelConfig(classes="ab")
    with pytest.raises(ParameterError, match="importance must be one of"):
        ModelConfig(classes=("a", "b"), importance=3)
    with pytest.raises(ParameterError, match="unique"):
        ModelConfig(classes=("a", "a"))
    with pytest.raises(ParameterError, match="unknown front-end"):
        ModelConfig(classes=("a", "b"), frontend="nope")
    with pytest.raises(ParameterError, match="reduction_rate"):
        ModelConfig(classes=("a", "b"), reduction_rate=1.0)
    with pytest.raises(ParameterError, match="width"):
        ModelConfig(classes=("a", "b"), width=2)
    with pytest.raises(ParameterError, match="hop_ms"):
        ModelConfig.from_dict({"classes": ("a", "b"), "hop_ms": 0.1})
    cfg = ModelConfig.from_dict({"classes": ["x", "y"], "hop_ms": 3.0})
    assert cfg.classes == ("x", "y") and cfg.hop_ms == 3.0 and cfg.mel.hop_ms == 3.0
    assert cfg.n_mels == DEFAULT_MEL.n_mels == TrainConfig().n_mels  # one home for the defaults
    assert cfg.width == TrainConfig().width and cfg.mel.win_ms == TrainConfig().win_ms
    flat = cfg.to_dict()  # the card's flat layout
    assert {"sample_rate", "n_mels", "hop_ms", "win_ms", "f_min", "f_max"} <= set(flat) and "mel" not in flat
    assert ModelConfig.from_dict({**flat, "unrelated": 1}) == cfg


@pytest.mark.parametrize("frontend", list(FRONTENDS))
def test_every_frontend_gives_logits_and_budget(frontend):
    m = model(frontend, reduction_rate=0.75)
    x = torch.randn(4, 51, 16) - 5
    logits, out = m.forward_with_frontend(x)
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()
    expected = 51 if frontend == "full" else 12  # floor(51 * 0.25)
    assert out.out_len == expected
    assert out.features.shape[:2] == (4, m.frontend.n_channels)


def test_one_model_runs_at_any_rate_and_length():
    m = model()
    for n_frames in (1, 7, 51, 300):
        for rate in (0.0, 0.5, 0.9):
            logits = m(torch.randn(2, n_frames, 16) - 5, reduction_rate=rate)
            assert logits.shape == (2, 3)


def test_predict_crops_pads_and_keeps_mode():
    m = model()
    m.train()
    short = np.zeros(1000, np.float32)
    long = np.random.default_rng(0).standard_normal(40000).astype(np.float32) * 0.1
    p = m.predict(short)
    assert isinstance(p, Prediction) and m.training  # mode restored
    assert p.probabilities.shape == (3,) and abs(p.probabilities.sum() - 1) < 1e-5
    assert p.log_mel.shape[1] == m.mel.n_frames(m.clip_samples)
    assert m.fit_length(long).shape == (1, m.clip_samples)
    whole = m.predict(long, fit=False)
    assert whole.log_mel.shape[1] == m.mel.n_frames(40000)
    assert [c for c, _ in p.top(2)] == [m.classes[i] for i in np.argsort(-p.probabilities)[:2]]


def test_classify_features_equals_the_whole_model():
    """Probabilities of a front-end's features are what the whole forward pass gives, in
    eval mode, with the mode restored; wrong shapes say what is expected."""
    m = model()
    m.train()
    x = torch.randn(3, 51, 16) - 5
    with torch.no_grad():
        m.eval()
        logits, out = m.forward_with_frontend(x, reduction_rate=0.5)
        m.train()
    probs = m.classify(out.features)
    assert m.training
    torch.testing.assert_close(probs, torch.softmax(logits, dim=1), rtol=1e-6, atol=1e-7)
    with pytest.raises(ParameterError, match=r"features must be \[batch, 3, frames, mels\]"):
        m.classify(out.avg)
    top = top_classes(probs[0].numpy(), m.classes, 2)
    assert [c for c, _ in top] == [m.classes[i] for i in np.argsort(-probs[0].numpy())[:2]]
    assert top[0][1] >= top[1][1]


def test_batch_consistency_in_eval_mode():
    m = model()
    x = torch.randn(5, 51, 16) - 5
    with torch.no_grad():
        full = m(x)
        parts = torch.cat([m(x[:2]), m(x[2:])])
    torch.testing.assert_close(full, parts, rtol=1e-4, atol=1e-5)


def test_small_cnn_handles_one_frame_and_gradients_flow():
    net = SmallCNN(3, 4, width=8)
    y = net(torch.randn(2, 3, 1, 16))
    assert y.shape == (2, 4)
    m = model()
    m.train()
    x = torch.randn(4, 51, 16) - 5
    logits, out = m.forward_with_frontend(x)
    (logits.sum() + out.guide_loss).backward()
    score_grads = [p.grad for p in m.frontend.parameters()]
    assert all(g is not None for g in score_grads) and any(g.abs().sum() > 0 for g in score_grads)


def test_frontend_label_leaves_out_the_rate_of_full_resolution():
    from diffres.frontends import frontend_label

    assert frontend_label("diffres", 0.75) == "diffres 0.75"
    assert frontend_label("full", 0.75) == "full"  # its card stores a rate it never used
    assert frontend_label("avgpool", 0.748959) == "avgpool 0.749"
    assert frontend_label("changehop", None) == "changehop"
