"""The ``rhythms`` built-in set: its design promises, checked on the rendered audio.

The class must be decided by fine timing: patterns are where the manifest says, onsets sit
at the gaps each class promises, a 10 ms hop separates the coarse classes' onsets while a
40 ms pooling does not, and the held-out timbres and backgrounds appear only in the test
split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffres import MelFrontend
from diffres.datasets import rhythms

SEED = 0
N_PER_CLASS = 12


@pytest.fixture(scope="module")
def specs():
    return rhythms.plan(SEED, N_PER_CLASS)


def onsets_s(spec) -> list[list[float]]:
    """Onset times of every hit of every copy, in seconds."""
    p = spec.params
    return [[c["start_s"] + t / 1000.0 for t in p["onsets_ms"]] for c in p["copies"]]


def test_plan_is_deterministic_and_seed_dependent(specs):
    again = rhythms.plan(SEED, N_PER_CLASS)
    assert [s.to_json() for s in specs] == [s.to_json() for s in again]
    other = rhythms.plan(SEED + 1, N_PER_CLASS)
    assert [s.params for s in specs] != [s.params for s in other]


def test_render_is_byte_identical(specs):
    for spec in specs[:: len(specs) // 4]:
        a, b = rhythms.render_clip(spec), rhythms.render_clip(spec)
        assert a.dtype == np.float32 and a.shape == (int(rhythms.CLIP_SECONDS * 16000),)
        assert np.array_equal(a, b)
        assert np.abs(a).max() <= 1.0


def test_every_class_has_every_split_and_held_out_sources_only_in_test(specs):
    for label in rhythms.CLASSES:
        splits = {s.split for s in specs if s.label == label}
        assert splits == {"train", "val", "test"}, label
    for s in specs:
        held_out = s.params["timbre"] in rhythms.TEST_TIMBRES
        assert held_out == (s.split == "test"), s.clip_id
        assert (s.params["background"]["kind"] in rhythms.TEST_BACKGROUNDS) == (s.split == "test")


@pytest.mark.parametrize("label,low_ms,high_ms", [
    ("double", 20, 30), ("triple", 20, 30), ("long_short", 20, 50), ("short_long", 20, 50),
    ("flam", 4, 8), ("drag", 3, 6), ("flam_double", 4, 30),
])
def test_inter_onset_gaps_are_what_the_class_promises(specs, label, low_ms, high_ms):
    for s in (s for s in specs if s.label == label):
        gaps = np.diff(s.params["onsets_ms"])
        assert np.all(gaps >= low_ms - 1e-6) and np.all(gaps <= high_ms + 1e-6), (label, gaps)


def test_fine_classes_lead_with_soft_grace_notes(specs):
    for s in specs:
        levels = s.params["levels_db"]
        if s.label in ("flam", "drag", "flam_double"):
            assert levels[0] <= -4.0 and max(levels) >= -2.5
        else:
            assert min(levels) >= -2.5


def test_active_share_is_small_and_copies_do_not_overlap(specs):
    for s in specs:
        spans = s.params["events_s"]
        active = sum(b - a for a, b in spans)
        assert active <= rhythms.MAX_ACTIVE_FRACTION * rhythms.CLIP_SECONDS + 0.26, s.clip_id  # one long copy allowed
        for (a0, b0), (a1, _) in zip(spans, spans[1:]):
            assert a1 - b0 >= 0.3 - 1e-6
        assert spans[0][0] >= 0.15 - 1e-6 and spans[-1][1] <= rhythms.CLIP_SECONDS - 0.15 + 1e-6


def test_energy_sits_inside_the_recorded_event_spans(specs):
    """Frames well outside every span are at the background level; each span holds a hit
    clearly above it (so the spans are a valid oracle for where the events are)."""
    mel = MelFrontend(16000, 64, hop_ms=10.0, win_ms=25.0)
    for spec in specs[::7]:
        x = torch.from_numpy(rhythms.render_clip(spec))
        energy = torch.logsumexp(mel(x)[0], dim=1).numpy()  # ln of summed power per frame
        t = np.arange(energy.size) * 0.01
        inside = np.zeros(energy.size, bool)
        for a, b in spec.params["events_s"]:
            inside |= (t >= a - 0.03) & (t <= b + 0.03)
        floor = np.median(energy[~inside])
        assert np.percentile(energy[~inside], 99) - floor < 3.0, spec.clip_id  # about 13 dB
        for a, b in spec.params["events_s"]:
            span = (t >= a) & (t <= b)
            assert energy[span].max() - floor > 2.0, spec.clip_id


def test_a_10ms_hop_separates_coarse_onsets_and_a_40ms_pool_does_not(specs):
    """Onsets of the coarse classes are at least 20 ms apart: two 10 ms frames; under a
    4:1 pooling (40 ms frames) most consecutive pairs share a frame or neighbouring ones."""
    frames_10, frames_40 = [], []
    for s in specs:
        if s.label not in ("double", "triple", "long_short", "short_long"):
            continue
        for copy in onsets_s(s):
            on = np.asarray(copy)
            frames_10 += list(np.diff(np.rint(on / 0.01)))
            frames_40 += list(np.diff(np.floor(on / 0.04)))
    assert min(frames_10) >= 2
    assert np.mean(np.asarray(frames_40) <= 1) > 0.9


def test_source_description_and_registry():
    import diffres.datasets as D

    assert D.BUILTIN_DATASETS["rhythms"] == rhythms.CLASSES
    info = D.DATASET_INFO["rhythms"]
    assert info["clip_seconds"] == 3.0 and info["needs_system_packages"] == []
    text = rhythms.source_description(10, 0)
    assert "never heard in training" in text and "Synthetic" in text
