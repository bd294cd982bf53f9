"""diffres.explain: the step-by-step view's numbers are the library's own, to float precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import diffres
from diffres import functional as Fn
from diffres.explain import STEPS, diffres_steps, frame_numbers, frame_weights, merged_by_hand
from diffres.examples import make_preset
from oracle import dense_weights


@pytest.fixture(scope="module")
def clip():
    """The click-train preset's log-mel at 10 ms (64 bands) and a seeded untrained DiffRes."""
    x = make_preset("click_train", 16000, 2.0)
    lm = diffres.MelFrontend(16000, 64, 10.0, 25.0)(torch.from_numpy(x))[0]
    torch.manual_seed(3)
    return lm, diffres.DiffRes(64, 0.75).eval()


@pytest.mark.parametrize("rate", [0.0, 0.5, 0.75, 0.95])
def test_steps_equal_the_module_forward(clip, rate):
    lm, module = clip
    steps = diffres_steps(module, lm, rate)
    with torch.no_grad():
        out = module(lm.unsqueeze(0), reduction_rate=rate)
        raw = module.scores(lm.unsqueeze(0))
    np.testing.assert_array_equal(steps.scores, raw[0].numpy().astype(np.float64))
    np.testing.assert_array_equal(steps.importance, out.importance[0].numpy().astype(np.float64))
    np.testing.assert_array_equal(steps.bin_edges, out.bin_edges[0].numpy().astype(np.float64))
    for mine, theirs in ((steps.avg, out.avg), (steps.max, out.max), (steps.encoding, out.resolution_encoding)):
        np.testing.assert_array_equal(mine, theirs[0].numpy())
    assert steps.out_len == diffres.output_length(lm.shape[0], rate) and steps.n_frames == lm.shape[0]


def test_raw_scores_are_the_logits_of_the_sigmoid(clip):
    lm, module = clip
    steps = diffres_steps(module, lm, 0.75)
    np.testing.assert_allclose(steps.scores, 1 / (1 + np.exp(-steps.logits)), rtol=1e-6)
    assert steps.logits.min() < 0 < steps.logits.max() or np.ptp(steps.logits) > 0  # real scores, any sign


def test_normalisation_stages(clip):
    lm, module = clip
    steps = diffres_steps(module, lm, 0.75)
    tp = steps.out_len
    assert steps.scaled.sum() == pytest.approx(tp, rel=1e-5)
    assert steps.peak == pytest.approx(steps.scaled.max(), rel=1e-6)
    if steps.peak >= 1:
        np.testing.assert_allclose(steps.capped, steps.scaled / steps.peak, rtol=1e-6)
    assert steps.capped.max() <= 1 + 1e-6
    assert steps.deficit == pytest.approx(tp - steps.capped.sum(), abs=1e-3)
    assert steps.importance.max() <= 1 and steps.importance.sum() == pytest.approx(tp, rel=1e-5)
    np.testing.assert_array_equal(
        steps.importance,
        Fn.normalize_importance(torch.from_numpy(steps.scores.astype(np.float32)).unsqueeze(0), tp)[0].numpy(),
    )


def test_normalization_stages_match_the_published_steps():
    raw = torch.tensor([[0.9, 0.1, 0.1, 0.1, 0.5, 0.2]], dtype=torch.float64)
    st = Fn.normalization_stages(raw, 3)
    s = raw * 3 / raw.sum()
    torch.testing.assert_close(st.scaled, s)
    torch.testing.assert_close(st.capped, s / s.max())
    torch.testing.assert_close(st.deficit, 3 - (s / s.max()).sum(1, keepdim=True))
    torch.testing.assert_close(st.importance, Fn.normalize_importance(raw, 3))


def test_cumulative_sum_crosses_the_integers_at_the_bin_edges(clip):
    lm, module = clip
    steps = diffres_steps(module, lm, 0.75)
    c = steps.cumulative
    assert c[0] == 0 and c[-1] == pytest.approx(steps.out_len) and np.all(np.diff(c) >= 0)
    np.testing.assert_allclose(np.diff(c), steps.importance, atol=1e-6)
    # where c (linear inside each frame) reaches j is the bin edge j
    crossings = np.interp(np.arange(steps.out_len + 1), c, np.arange(steps.n_frames + 1))
    np.testing.assert_allclose(crossings, steps.bin_edges, atol=1e-4)


def test_frame_weights_are_the_dense_matrix_columns(clip):
    lm, module = clip
    steps = diffres_steps(module, lm, 0.75)
    dense = dense_weights(torch.from_numpy(steps.importance).unsqueeze(0), steps.out_len)[0].numpy()  # [T, T']
    for j in range(steps.out_len):
        frames, weights = frame_weights(steps, j)
        expected = np.flatnonzero(dense[:, j] > 1e-12)
        np.testing.assert_array_equal(frames, expected)
        np.testing.assert_allclose(weights, dense[expected, j], atol=1e-9)
        assert weights.sum() == pytest.approx(1.0, abs=1e-6)  # every output bin is full


def test_frame_numbers_and_the_merge_by_hand(clip):
    lm, module = clip
    steps = diffres_steps(module, lm, 0.75)
    for j in (0, steps.out_len // 2, steps.out_len - 1):
        n = frame_numbers(steps, lm.numpy(), j)
        assert (n.start, n.end) == (steps.bin_edges[j], steps.bin_edges[j + 1])
        np.testing.assert_array_equal(n.importance, steps.importance[n.frames])
        np.testing.assert_array_equal(n.c_end - n.c_start, np.diff(steps.cumulative)[n.frames])
        avg, mx = merged_by_hand(n, steps.n_frames, steps.out_len)
        assert avg == pytest.approx(n.avg, abs=1e-4) and mx == pytest.approx(n.max, abs=1e-4)
        assert n.band == int(np.argmax(steps.avg[j]))
        np.testing.assert_array_equal(n.encoding, steps.encoding[j, :2])


def test_output_frame_at_inverts_the_bin_edges(clip):
    lm, module = clip
    steps = diffres_steps(module, lm, 0.75)
    for j in range(steps.out_len):
        assert steps.output_frame_at(0.5 * (steps.bin_edges[j] + steps.bin_edges[j + 1])) == j
    assert steps.output_frame_at(-5) == 0 and steps.output_frame_at(1e9) == steps.out_len - 1


def test_uniform_importance_and_a_single_output_frame():
    module = diffres.DiffRes(8, 0.5, importance="uniform").eval()
    steps = diffres_steps(module, torch.randn(7, 8), 0.9)
    assert steps.out_len == 1
    np.testing.assert_array_equal(steps.logits, np.zeros(7))
    frames, weights = frame_weights(steps, 0)
    np.testing.assert_array_equal(frames, np.arange(7))
    assert weights.sum() == pytest.approx(1.0)


def test_bad_arguments():
    module = diffres.DiffRes(8, 0.5).eval()
    with pytest.raises(diffres.ParameterError, match="one clip"):
        diffres_steps(module, torch.zeros(1, 5, 8), 0.5)
    steps = diffres_steps(module, torch.zeros(6, 8), 0.5)
    with pytest.raises(diffres.ParameterError, match="output frame"):
        frame_weights(steps, steps.out_len)
    assert len(STEPS) == 7 and [k for k, _, _ in STEPS][:3] == ["scores", "sigmoid", "normalise"]
