"""The DiffRes module and the fixed-budget baselines."""

from __future__ import annotations

import math

import pytest
import torch

import diffres
from diffres import functional as Fn
from diffres.core import ScoreNetwork, score_channel_plan
from diffres.features import LOG_FLOOR, MelFrontend, spec_augment
from diffres.frontends import FRONTENDS, ChangeHop, Frontend, make_frontend
from oracle import dense_diffres

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=["fused", "torch"])
def merge_path(request, monkeypatch):
    """Run a test with the fused CPU kernel and with the PyTorch merge path."""
    if request.param == "fused":
        request.getfixturevalue("fused_kernel")
    else:
        monkeypatch.setenv("DIFFRES_FUSED", "0")
    return request.param


def log_mel_batch(generator, batch=3, n_frames=80, n_mels=16):
    return torch.randn(batch, n_frames, n_mels, generator=generator) * 2 - 3


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n_frames, n_mels, rate", [(80, 16, 0.75), (57, 7, 0.5), (1, 4, 0.5), (30, 3, 0.95), (40, 5, 0.01)])
def test_module_matches_dense_formulas(rng, merge_path, device, n_frames, n_mels, rate):
    torch.manual_seed(0)
    module = diffres.DiffRes(n_mels, rate).to(device).eval()
    x = log_mel_batch(rng, 3, n_frames, n_mels).to(device)
    out = module(x)
    out_len = diffres.output_length(n_frames, rate)
    assert isinstance(out, diffres.DiffResOutput)
    assert out.features.shape == (3, 3, out_len, n_mels)
    assert out.avg.shape == out.max.shape == out.resolution_encoding.shape == (3, out_len, n_mels)
    assert out.importance.shape == (3, n_frames) and out.bin_edges.shape == (3, out_len + 1)
    assert out.guide_loss.dim() == 0 and out.activeness.dim() == 0
    avg, mx, enc = dense_diffres(x.cpu(), out.importance.detach().cpu().double(), out_len)
    torch.testing.assert_close(out.avg.cpu().double(), avg, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.max.cpu().double(), mx, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.resolution_encoding.cpu().double(), enc, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.features[:, 0], out.avg)
    assert out.importance.min() >= 0 and out.importance.max() <= 1
    torch.testing.assert_close(out.importance.sum(1).cpu(), torch.full((3,), float(out_len)), rtol=1e-5, atol=1e-3)


def test_rate_zero_is_identity_on_the_average(rng, merge_path):
    torch.manual_seed(3)  # any weights: at rate 0 every importance is exactly 1
    module = diffres.DiffRes(8, 0.0).eval()
    x = log_mel_batch(rng, 2, 30, 8)
    out = module(x)
    torch.testing.assert_close(out.avg, torch.log(torch.exp(x) + 1e-12), rtol=1e-5, atol=1e-5)


def test_any_length_and_rate_override(rng):
    module = diffres.DiffRes(16, 0.75).eval()
    for n_frames in (10, 99, 401):
        out = module(log_mel_batch(rng, 2, n_frames, 16))
        assert out.out_len == diffres.output_length(n_frames, 0.75)
    assert module(log_mel_batch(rng, 2, 100, 16), reduction_rate=0.5).out_len == 50


@pytest.mark.parametrize("rate", [0.0, 0.5, 0.9])
def test_merge_scores_of_the_module_own_scores_is_its_forward(rng, rate):
    """Scoring once and merging per rate (the app's slider) gives what forward gives, and
    the gradient reaches given scores."""
    module = diffres.DiffRes(16, 0.75).eval()
    x = log_mel_batch(rng, 2, 99, 16)
    with torch.no_grad():
        raw = module.scores(x)
        direct = module(x, reduction_rate=rate)
        merged = module.merge_scores(x, raw, reduction_rate=rate)
    for field in ("features", "importance", "bin_edges", "guide_loss", "activeness", "empty"):
        torch.testing.assert_close(getattr(merged, field), getattr(direct, field), rtol=0, atol=0, msg=field)
    given = raw.clone().requires_grad_(True)
    module.merge_scores(x, given, reduction_rate=0.5).avg.sum().backward()
    assert given.grad is not None and given.grad.abs().sum() > 0
    with pytest.raises(diffres.ParameterError, match="raw_scores"):
        module.merge_scores(x, raw[:, :-1])
    with pytest.raises(diffres.ParameterError, match="reduction_rate"):
        module.merge_scores(x, raw, reduction_rate=1.0)


def test_eval_mode_deterministic_and_batch_independent(rng, merge_path):
    torch.manual_seed(1)
    module = diffres.DiffRes(16, 0.75)
    module.train()
    for _ in range(3):  # give BatchNorm non-trivial running statistics
        module(log_mel_batch(rng, 4, 64, 16))
    module.eval()
    x = log_mel_batch(rng, 4, 64, 16)
    a, b = module(x), module(x)
    torch.testing.assert_close(a.features, b.features, rtol=0, atol=0)
    single = module(x[2:3])
    torch.testing.assert_close(single.features, a.features[2:3], rtol=1e-5, atol=1e-5)


def test_gradients_reach_the_score_network(rng, merge_path):
    module = diffres.DiffRes(16, 0.75).train()
    out = module(log_mel_batch(rng, 4, 64, 16))
    (out.features[:, :2].sum() + out.guide_loss).backward()
    grads = [p.grad for p in module.score_network.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_module_gradcheck_float64(rng, merge_path):
    torch.manual_seed(3)
    module = diffres.DiffRes(3, 0.5).double().eval()
    x = (torch.randn(2, 9, 3, generator=rng, dtype=torch.float64) - 2).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: module(t).features, (x,), eps=1e-6, atol=1e-4, fast_mode=True)


def test_guide_loss_fires_on_masked_frames_not_on_full_clips(rng, merge_path):
    torch.manual_seed(0)
    module = diffres.DiffRes(16, 0.5).eval()
    loud = log_mel_batch(rng, 4, 100, 16)  # no silence anywhere
    out = module(loud)
    assert out.guide_loss.item() == 0.0
    masked = spec_augment(loud, max_time_mask=40, max_freq_mask=0, generator=torch.Generator().manual_seed(0))
    assert torch.isclose(masked.min(), torch.tensor(math.log(LOG_FLOOR)))
    empty = Fn.empty_frames(Fn.frame_energy(masked))
    assert empty.any(dim=1).all()  # each example has a masked stretch recognised as empty
    uniform = torch.full((4, 100), 0.5)  # an untrained module spreads importance evenly
    assert Fn.guide_loss(uniform, empty, 0.5).item() == pytest.approx(0.5)
    assert module(masked).guide_loss.item() >= 0.0


def test_score_network_channel_plans():
    assert score_channel_plan(128) == [64, 32, 16, 8, 1]
    assert score_channel_plan(64) == [64, 32, 16, 16, 1]
    assert score_channel_plan(40) == [40, 20, 10, 10, 1]
    assert score_channel_plan(1) == [1, 1, 1, 1, 1]
    params128 = sum(p.numel() for p in ScoreNetwork(128).parameters())
    assert params128 == 82371  # the reference package's network at 128 mels
    assert sum(p.numel() for p in ScoreNetwork(40).parameters()) == 25041


def test_wrong_mel_count_is_a_clear_error(rng):
    with pytest.raises(diffres.ParameterError, match="built for 16 mel bins, got 8"):
        diffres.DiffRes(16, 0.5)(log_mel_batch(rng, 2, 20, 8))
    with pytest.raises(diffres.ParameterError, match="\\[batch, time, freq\\]"):
        diffres.DiffRes(16, 0.5)(torch.zeros(20, 16))


# --- baselines --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(FRONTENDS))
@pytest.mark.parametrize("n_frames", [1, 37, 100])
def test_every_frontend_has_the_common_interface(rng, name, n_frames):
    frontend = make_frontend(name, 12, 0.75).eval()
    assert isinstance(frontend, Frontend) and frontend.name == name and FRONTENDS[name]  # the Protocol, described
    x = log_mel_batch(rng, 2, n_frames, 12)
    out = frontend(x)
    out_len = n_frames if name == "full" else diffres.output_length(n_frames, 0.75)
    assert out.features.shape == (2, frontend.n_channels, out_len, 12)
    assert out.importance.shape == (2, n_frames)
    torch.testing.assert_close(out.importance.sum(1), torch.full((2,), float(out_len)), rtol=1e-5, atol=1e-4)
    assert out.bin_edges.shape == (2, out_len + 1)
    assert out.bin_edges[0, 0] == 0 and out.bin_edges[0, -1] == n_frames
    assert out.guide_loss.dim() == 0


def test_pooling_baselines_against_explicit_means(rng):
    x = log_mel_batch(rng, 1, 8, 3)
    avg = make_frontend("avgpool", 3, 0.5)(x).avg
    torch.testing.assert_close(avg[0, 1], x[0, 2:4].mean(0))
    mx = make_frontend("maxpool", 3, 0.5)(x).avg
    torch.testing.assert_close(mx[0, 3], x[0, 6:8].amax(0))
    both = make_frontend("avgmaxpool", 3, 0.5)(x).avg
    torch.testing.assert_close(both, 0.5 * (avg + mx))


def test_changehop_keeps_evenly_spaced_frames(rng):
    x = log_mel_batch(rng, 2, 10, 4)
    out = make_frontend("changehop", 4, 0.5)(x)
    kept = ChangeHop.kept_frames(10, 5)
    assert kept.tolist() == [0, 2, 4, 6, 9]
    torch.testing.assert_close(out.avg, x[:, kept])
    assert out.importance[0].tolist() == [1, 0, 1, 0, 1, 0, 1, 0, 0, 1]


def test_full_ignores_rate_and_unknown_name_errors(rng):
    x = log_mel_batch(rng, 2, 10, 4)
    torch.testing.assert_close(make_frontend("full", 4, 0.75)(x).avg, x)
    with pytest.raises(diffres.ParameterError, match="unknown front-end 'bogus'"):
        make_frontend("bogus", 4, 0.5)


def test_convavgpool_is_learnable(rng):
    frontend = make_frontend("convavgpool", 6, 0.5)
    out = frontend(log_mel_batch(rng, 2, 20, 6))
    out.features.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in frontend.parameters())


# --- mel front-end ------------------------------------------------------------------------------

def test_mel_frontend_shapes_units_and_tone_peak():
    sr = 16000
    t = torch.arange(sr) / sr
    tone = 0.5 * torch.sin(2 * math.pi * 1000 * t)
    for hop_ms, win_ms in [(10, 25), (1, 25), (0.5, 5), (40, 100), (100, 20)]:
        mel = MelFrontend(sr, n_mels=64, hop_ms=hop_ms, win_ms=win_ms)
        out = mel(tone)
        hop = round(hop_ms * sr / 1000)
        assert out.shape == (1, 1 + sr // hop, 64)
        assert mel.n_frames(sr) == out.shape[1]
        freqs = mel.mel_frequencies()
        peak_band = int(out[0, out.shape[1] // 2].argmax())
        assert abs(float(freqs[peak_band]) - 1000) < 150
    times = MelFrontend(sr, hop_ms=10).frame_times(5)
    torch.testing.assert_close(times, torch.tensor([0.0, 0.01, 0.02, 0.03, 0.04], dtype=torch.float64))


def test_mel_frontend_matches_librosa():
    import librosa
    import numpy as np

    rng = np.random.default_rng(0)
    y = rng.standard_normal(8000).astype(np.float32) * 0.1
    mel = MelFrontend(16000, n_mels=40, hop_ms=10, win_ms=25)
    ours = mel(torch.from_numpy(y))[0].numpy()
    ref = librosa.feature.melspectrogram(
        y=y, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=40, htk=True, norm=None,
        center=True, pad_mode="constant", power=2.0,
    )
    np.testing.assert_allclose(ours, np.log(ref.T + LOG_FLOOR), rtol=1e-3, atol=2e-3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(hop_ms=0.1), "hop_ms must be in"),
    (dict(win_ms=500), "win_ms must be in"),
    (dict(f_min=9000), "f_min < f_max"),
    (dict(n_mels=0), "n_mels"),
])
def test_mel_frontend_validates(kwargs, match):
    with pytest.raises(diffres.ParameterError, match=match):
        MelFrontend(16000, **kwargs)


def test_spec_augment_reproducible_and_bounded(rng):
    x = log_mel_batch(rng, 3, 50, 10)
    a = spec_augment(x, max_time_mask=10, max_freq_mask=3, generator=torch.Generator().manual_seed(5))
    b = spec_augment(x, max_time_mask=10, max_freq_mask=3, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)
    masked_frames = (a == math.log(LOG_FLOOR)).all(dim=2).sum(dim=1)
    assert (masked_frames >= 1).all() and (masked_frames < 10).all()
    assert torch.equal(spec_augment(x, max_time_mask=0, max_freq_mask=0), x)


def test_aligned_merge_keeps_whole_frames_and_the_rest_of_the_output():
    from diffres.core import merge

    g = torch.Generator().manual_seed(3)
    log_mel = torch.randn(2, 40, 8, generator=g, dtype=torch.float64)
    importance = Fn.normalize_importance(torch.rand(2, 40, generator=g, dtype=torch.float64), 10)
    paper, aligned = merge(log_mel, importance, 0.75), merge(log_mel, importance, 0.75, aligned=True)
    bins = Fn.aligned_bins(importance, 10)
    power = torch.exp(log_mel)
    torch.testing.assert_close(aligned.avg, torch.log(Fn.warp_aligned(power, importance, 10) + 1e-12))
    torch.testing.assert_close(aligned.max, torch.log(Fn.warp_aligned_max(power, importance, 10) + 1e-12))
    # edges at frame boundaries: bin j starts at its first frame
    for b in range(2):
        starts = [int((bins[b] == j).nonzero()[0]) for j in range(10)]
        assert aligned.bin_edges[b].tolist() == [*starts, 40]
    torch.testing.assert_close(aligned.guide_loss, paper.guide_loss)
    torch.testing.assert_close(aligned.activeness, paper.activeness)
    module = diffres.DiffRes(n_mels=8, reduction_rate=0.75).eval()
    module.aligned_merge = True
    raw = module.scores(log_mel.float())
    expected = merge(log_mel.float(), Fn.normalize_importance(raw, 10), 0.75, aligned=True).features
    torch.testing.assert_close(module.merge_scores(log_mel.float(), raw).features, expected)
