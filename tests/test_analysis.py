"""diffres.analysis: measures of where a front-end puts its resolution, against hand-built
cases whose answers are known."""

from __future__ import annotations

import math

import pytest
import torch

from diffres import analysis as A
from diffres import functional as Fn


def test_event_mask_marks_frames_whose_centres_are_inside():
    mask = A.event_mask([[(0.10, 0.13)], []], n_frames=20, hop_s=0.01)
    assert mask.dtype == torch.bool and mask.shape == (2, 20)
    assert torch.nonzero(mask[0]).squeeze(1).tolist() == [10, 11, 12, 13]
    assert not mask[1].any()


def test_concentration_is_one_for_uniform_and_the_ceiling_when_events_own_whole_bins():
    n_frames, rate = 40, 0.75
    out_len = Fn.output_length(n_frames, rate)  # 10
    mask = torch.zeros(1, n_frames, dtype=torch.bool)
    mask[0, 10:14] = True
    uniform = torch.full((1, n_frames), out_len / n_frames)
    assert float(A.concentration(uniform, mask)[0]) == pytest.approx(1.0)
    raw = torch.where(mask, torch.ones(1, n_frames), torch.full((1, n_frames), 1e-3))
    sharp = Fn.normalize_importance(raw, out_len)
    assert float(A.concentration(sharp, mask)[0]) == pytest.approx(1 / (1 - rate), rel=1e-3)
    assert math.isnan(float(A.concentration(uniform, torch.zeros_like(mask))[0]))


def test_effective_hops_over_events():
    n_frames = 40
    out_len = Fn.output_length(n_frames, 0.75)
    mask = torch.zeros(1, n_frames, dtype=torch.bool)
    mask[0, 10:14] = True
    raw = torch.where(mask, torch.ones(1, n_frames), torch.full((1, n_frames), 1e-3))
    edges = Fn.bin_edges(Fn.normalize_importance(raw, out_len), out_len)
    hops = A.effective_hop_ms(edges, 10.0)
    assert hops.shape == (1, out_len) and float(hops.sum()) == pytest.approx(400.0)
    finest, median = A.event_hops_ms(edges, mask, 10.0)
    assert float(finest[0]) == pytest.approx(10.0, abs=1e-6)
    assert float(median[0]) == pytest.approx(10.0, abs=1e-6)
    uniform_edges = Fn.bin_edges(torch.full((1, n_frames), out_len / n_frames), out_len)
    finest_u, _ = A.event_hops_ms(uniform_edges, mask, 10.0)
    assert float(finest_u[0]) == pytest.approx(40.0)


def test_onsets_separated_is_what_full_resolution_keeps():
    n_frames = 60
    out_len = Fn.output_length(n_frames, 0.75)
    onsets = [[0.20, 0.22, 0.245]]  # frames 20, 22, 24 (25 ms -> 24.5 -> 24)
    # full resolution: every frame its own bin
    full = Fn.bin_edges(torch.ones(1, n_frames), n_frames)
    assert A.onsets_separated(full, onsets, 0.01) == [[True, True]]
    # uniform 4:1 pooling: frames 20 and 22 share bin 5
    uniform = Fn.bin_edges(torch.full((1, n_frames), out_len / n_frames), out_len)
    assert A.onsets_separated(uniform, onsets, 0.01) == [[False, False]]
    # importance 1 over the pattern: the gaps survive
    mask = torch.zeros(1, n_frames, dtype=torch.bool)
    mask[0, 19:26] = True
    raw = torch.where(mask, torch.ones(1, n_frames), torch.full((1, n_frames), 1e-3))
    sharp = Fn.bin_edges(Fn.normalize_importance(raw, out_len), out_len)
    assert A.onsets_separated(sharp, onsets, 0.01) == [[True, True]]
    # a gap below min_gap_s is not asked about
    assert A.onsets_separated(sharp, onsets, 0.01, min_gap_s=0.021) == [[True]]


def test_hop_spread_tells_uniform_pooling_from_adaptive_merging():
    n_frames = 40
    out_len = Fn.output_length(n_frames, 0.75)
    uniform = Fn.bin_edges(torch.full((1, n_frames), out_len / n_frames), out_len)
    spread = A.hop_spread(uniform, 10.0)
    assert spread.uniform and spread.fine_ms == pytest.approx(40.0) and spread.coarse_ms == pytest.approx(40.0)
    mask = torch.zeros(1, n_frames, dtype=torch.bool)
    mask[0, 10:14] = True
    raw = torch.where(mask, torch.ones(1, n_frames), torch.full((1, n_frames), 1e-3))
    adaptive = Fn.bin_edges(Fn.normalize_importance(raw, out_len), out_len)
    spread = A.hop_spread(adaptive, 10.0)
    assert not spread.uniform and spread.fine_ms == pytest.approx(10.0, abs=1e-6) and spread.coarse_ms > 50.0
