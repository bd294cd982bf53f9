"""diffres.familiarity: the out-of-distribution score, its calibration and its storage."""

from __future__ import annotations

import io

import pytest
import torch

import diffres
from diffres.errors import CheckpointError
from diffres.familiarity import QUANTILE, Familiarity, Gaussian, clip_summary, embed, score_clip
from diffres.models import AudioClassifier, ModelConfig


def _clusters(n: int, seed: int, shift: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    centres = torch.tensor([[4.0, 0, 0, 0], [0, 4.0, 0, 0], [0, 0, 4.0, 0]])
    return centres[labels] + torch.randn(n, 4, generator=g) + shift, labels


def test_calibration_marks_the_quantile_of_held_out_clips():
    x, y = _clusters(3000, 0)
    held, _ = _clusters(2000, 1)
    gauss = Gaussian.fit(x, y, held, n_classes=3)
    fresh, _ = _clusters(4000, 2)
    familiar = float((gauss.score(fresh) <= 1.0).double().mean())
    assert familiar == pytest.approx(QUANTILE, abs=0.01)


def test_far_clips_score_above_one_and_distance_is_to_the_nearest_class():
    x, y = _clusters(3000, 0)
    gauss = Gaussian.fit(x, y, _clusters(500, 1)[0], n_classes=3)
    far, _ = _clusters(200, 3, shift=10.0)
    assert float((gauss.score(far) > 1.0).double().mean()) == 1.0
    assert float(gauss.distance(gauss.means[1:2])[0]) == pytest.approx(0.0, abs=1e-4)


def test_clip_summary_is_level_invariant_and_tells_a_tone_from_clicks():
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 100, 16, generator=g) * 0.3 - 10.0
    clicks = noise.clone()
    clicks[0, ::20] += 8.0
    tone = noise.clone()
    tone[0, :, 5] += 8.0
    s = clip_summary(torch.cat([noise, clicks, tone]))
    assert s.shape == (3, 2 * 16 + 6)
    torch.testing.assert_close(clip_summary(clicks + 5.0), s[1:2])  # a louder copy: same summary
    assert float((s[1] - s[2]).abs().max()) > 1.0


def _tiny_model():
    torch.manual_seed(0)
    config = ModelConfig.from_dict({"classes": ["a", "b"], "n_mels": 16, "clip_seconds": 0.5, "width": 4})
    return AudioClassifier(config).eval()


def test_checkpoint_carries_familiarity_and_malformed_statistics_are_refused(tmp_path):
    model = _tiny_model()
    g = torch.Generator().manual_seed(1)
    log_mel = torch.randn(60, 51, 16, generator=g) - 8.0
    fam = Familiarity.fit(model, log_mel[:40], torch.arange(40) % 2, log_mel[40:])
    assert embed(model, log_mel).shape == (60, model.classifier.head.in_features)
    path = tmp_path / "m.pt"
    diffres.save_checkpoint(path, model, card={"dataset": "x"}, familiarity=fam)
    loaded = diffres.load_checkpoint(path)
    assert loaded.familiarity is not None
    torch.testing.assert_close(loaded.familiarity.score(model, log_mel), fam.score(model, log_mel))
    plain = tmp_path / "plain.pt"
    diffres.save_checkpoint(plain, model, card={"dataset": "x"})
    assert diffres.load_checkpoint(plain).familiarity is None
    bad = Familiarity(Gaussian(torch.zeros(3, 2), torch.eye(2), 1.0), fam.summary)
    buf = io.BytesIO()
    diffres.save_checkpoint(buf, model, familiarity=bad)
    with pytest.raises(CheckpointError, match="familiarity statistics \\(embedding\\) have shapes"):
        diffres.load_checkpoint(buf.getvalue())
    payload = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    for state in (
        [1, 2],
        {"embedding": {"means": 1}},
        {**fam.to_state(), "summary": {**fam.summary.to_state(), "threshold": -1}},
    ):
        out = io.BytesIO()
        torch.save({**payload, "familiarity": state}, out)
        with pytest.raises(CheckpointError, match="familiarity"):
            diffres.load_checkpoint(out.getvalue())


def test_score_clip_takes_the_most_familiar_window():
    model = _tiny_model()
    g = torch.Generator().manual_seed(2)
    waves = torch.randn(50, model.clip_samples, generator=g) * 0.01
    log_mel = model.mel(waves)
    fam = Familiarity.fit(model, log_mel[:35], torch.arange(35) % 2, log_mel[35:])
    familiar = waves[40]
    odd = torch.sin(torch.arange(model.clip_samples) * 0.3) * 0.5  # a loud pure tone
    assert score_clip(model, fam, odd) > 1.0
    long = torch.cat([odd, familiar, odd])
    assert score_clip(model, fam, long) == pytest.approx(
        float(fam.score(model, model.mel(familiar[None]))[0]), rel=1e-5
    )
