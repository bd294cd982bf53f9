"""diffres.familiarity: the out-of-distribution score, its calibration and its storage."""

from __future__ import annotations

import io

import pytest
import torch

import diffres
from diffres.errors import CheckpointError
from diffres.familiarity import QUANTILE, Familiarity, embed
from diffres.models import AudioClassifier, ModelConfig


def _clusters(n: int, seed: int, shift: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    centres = torch.tensor([[4.0, 0, 0, 0], [0, 4.0, 0, 0], [0, 0, 4.0, 0]])
    return centres[labels] + torch.randn(n, 4, generator=g) + shift, labels


def test_calibration_marks_the_quantile_of_held_out_clips():
    x, y = _clusters(3000, 0)
    held, _ = _clusters(2000, 1)
    fam = Familiarity.fit(x, y, held, n_classes=3)
    fresh, _ = _clusters(4000, 2)
    familiar = float((fam.score(fresh) <= 1.0).double().mean())
    assert familiar == pytest.approx(QUANTILE, abs=0.01)


def test_far_clips_score_above_one_and_distance_is_to_the_nearest_class():
    x, y = _clusters(3000, 0)
    fam = Familiarity.fit(x, y, _clusters(500, 1)[0], n_classes=3)
    far, _ = _clusters(200, 3, shift=10.0)
    assert float((fam.score(far) > 1.0).double().mean()) == 1.0
    at_mean = fam.class_means[1:2]
    assert float(fam.distance(at_mean)[0]) == pytest.approx(0.0, abs=1e-4)


def test_state_round_trip_and_malformed_state_is_refused():
    x, y = _clusters(300, 0)
    fam = Familiarity.fit(x, y, x[:50], n_classes=3)
    back = Familiarity.from_state(fam.to_state(), n_classes=3, dim=4)
    torch.testing.assert_close(back.score(x), fam.score(x))
    with pytest.raises(CheckpointError, match="shapes"):
        Familiarity.from_state(fam.to_state(), n_classes=4, dim=4)
    bad = dict(fam.to_state(), threshold=-1.0)
    with pytest.raises(CheckpointError, match="invalid"):
        Familiarity.from_state(bad, n_classes=3, dim=4)
    with pytest.raises(CheckpointError, match="field 'class_means' must be a floating-point tensor, got int"):
        Familiarity.from_state({"class_means": 1}, n_classes=3, dim=4)


def test_checkpoint_carries_familiarity(tmp_path):
    torch.manual_seed(0)
    config = ModelConfig.from_dict({"classes": ["a", "b"], "n_mels": 16, "clip_seconds": 0.5, "width": 4})
    model = AudioClassifier(config).eval()
    log_mel = torch.randn(40, 51, 16)
    emb = embed(model, log_mel)
    assert emb.shape == (40, model.classifier.head.in_features)
    fam = Familiarity.fit(emb[:30], torch.arange(30) % 2, emb[30:], n_classes=2)
    path = tmp_path / "m.pt"
    diffres.save_checkpoint(path, model, card={"dataset": "x"}, familiarity=fam)
    loaded = diffres.load_checkpoint(path)
    assert loaded.familiarity is not None
    torch.testing.assert_close(loaded.familiarity.score(emb), fam.score(emb))
    plain = tmp_path / "plain.pt"
    diffres.save_checkpoint(plain, model, card={"dataset": "x"})
    assert diffres.load_checkpoint(plain).familiarity is None
    buf = io.BytesIO()
    diffres.save_checkpoint(buf, model, familiarity=Familiarity(torch.zeros(3, 2), torch.eye(2), 1.0))
    with pytest.raises(CheckpointError, match="familiarity"):
        diffres.load_checkpoint(buf.getvalue())
