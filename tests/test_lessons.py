"""diffres.lessons: every lesson's check fails in the state it loads and passes once its question
is answered, measured on facts computed here with the library (the app's own facts are tested
in test_app_teaching.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import diffres
from diffres.examples import load_example, make_preset
from diffres.explain import diffres_steps
from diffres.features import StftConfig, linear_spectrogram
from diffres.lessons import LESSONS, RATE_CHOICES, Facts, lesson
from diffres.training.records import EpochRecord

ROOT = Path(__file__).resolve().parents[1]


def sound_of(item) -> np.ndarray:
    kind, key = item.sound.split(":", 1)
    return load_example(key) if kind == "example" else make_preset(key)


def lab_facts(item, settings) -> Facts:
    x = sound_of(item)
    f_lo, f_hi = settings["lab_frange"]
    fe = diffres.MelFrontend(16000, settings["lab_mels"], settings["lab_hop"], settings["lab_win"], f_lo, f_hi)
    lm = fe(torch.from_numpy(x))[0].numpy()
    return Facts(settings, item.sound, x, 16000, {"mel": (lm, fe.hop_seconds)})


def window_facts(item, settings) -> Facts:
    x = sound_of(item)
    c = StftConfig(16000, float(settings["win_hop"]), float(settings["win_ms"]))
    lp = linear_spectrogram(torch.from_numpy(x), c)[0].numpy()
    return Facts(settings, item.sound, x, 16000, {"stft": (lp, c.frequencies().numpy(), c.hop_seconds)})


@pytest.mark.parametrize("key, make", [("hop_beeps", lab_facts), ("frame_cost", lab_facts),
                                       ("long_window", window_facts), ("short_window", window_facts)])
def test_spectrogram_lessons_fail_as_loaded_and_pass_when_followed(key, make):
    item = lesson(key)
    loaded = make(item, dict(item.settings))
    assert not item.verdict(loaded).passed
    answer = {**item.settings, **item.solve(loaded)}
    assert item.verdict(make(item, answer)).passed, item.verdict(make(item, answer)).text


def test_the_beeps_lesson_needs_the_window_too():
    item = lesson("hop_beeps")
    hop_only = lab_facts(item, {**item.settings, "lab_hop": 10})  # 40 ms window left as loaded
    verdict = item.verdict(hop_only)
    assert not verdict.passed and "shorten the window" in verdict.text


def test_a_lesson_checks_its_own_sound():
    item = lesson("frame_cost")
    facts = lab_facts(item, {**item.settings, "lab_hop": 2})
    moved = Facts(facts.settings, "example:siren", facts.samples, 16000, facts.measured)
    assert item.verdict(facts).passed and not item.verdict(moved).passed


@pytest.fixture(scope="module")
def rhythm_model():
    path = next((ROOT / "checkpoints" / f"{n}.pt" for n in lesson("diffres_rhythm").models
                 if (ROOT / "checkpoints" / f"{n}.pt").is_file()), None)
    if path is None:  # the untrained fallback the page uses without checkpoints
        torch.manual_seed(0)
        return diffres.DiffRes(64, 0.5).eval(), diffres.MelFrontend(16000, 64, 10.0, 25.0)
    loaded = diffres.load_checkpoint(path)
    return loaded.model.frontend.eval(), diffres.MelFrontend.from_config(loaded.config.mel)


def test_rhythm_lesson_passes_on_the_frame_over_the_loudest_hit(rhythm_model):
    item = lesson("diffres_rhythm")
    module, fe = rhythm_model
    lm = fe(torch.from_numpy(sound_of(item)))[0].numpy()
    steps = diffres_steps(module, lm, item.settings["steps_rate"])

    def facts(frame: int) -> Facts:
        return Facts({**item.settings, "steps_frame": frame}, item.sound, sound_of(item), 16000,
                     {"steps": steps, "log_mel": lm})

    j = item.solve(facts(0))["steps_frame"]
    assert item.verdict(facts(j)).passed
    assert not item.verdict(facts((j + steps.out_len // 2) % steps.out_len)).passed


def test_rate_lesson_wants_the_peak_of_the_sweep():
    item = lesson("rate_accuracy")
    sweep = [(r, 0.5 + 0.4 * (r == 0.7) + 0.395 * (r == 0.6)) for r in RATE_CHOICES]
    facts = lambda answer, s=sweep: Facts({}, None, np.zeros(1), 16000, {"sweep": s, "answer": answer})  # noqa: E731
    assert not item.verdict(facts(None, None)).passed  # no sweep yet
    assert not item.verdict(facts(None)).passed  # no answer yet
    assert item.solve(facts(None))["answer"] == 0.7
    assert item.verdict(facts("0.7")).passed and item.verdict(facts("0.6")).passed  # within a point of the best
    assert not item.verdict(facts("0.2")).passed
    assert item.answers == tuple(f"{r:g}" for r in RATE_CHOICES)


def _record(epoch: int, importance) -> EpochRecord:
    nan = float("nan")
    return EpochRecord(epoch, epoch * 3, nan, nan, nan, nan, nan, nan, 1.0, probe_importance=np.asarray(importance))


def test_training_lesson_passes_once_the_importance_has_moved():
    item = lesson("training")
    flat = np.full(50, 0.25)
    facts = lambda h: Facts({}, None, np.zeros(1), 16000, {"history": h})  # noqa: E731
    assert not item.verdict(facts(None)).passed
    assert not item.verdict(facts([_record(1, flat)])).passed
    assert not item.verdict(facts([_record(1, flat), _record(2, flat + 0.001)])).passed
    moved = flat.copy()
    moved[:10] += 0.1
    moved[10:] -= 0.1 * 10 / 40
    assert item.verdict(facts([_record(1, flat), _record(2, moved)])).passed


@pytest.mark.parametrize("uniform", [True, False])
def test_no_help_lesson_compares_the_answer_with_the_measured_spread(uniform):
    item = lesson("no_help")
    spread = diffres.analysis.HopSpread(38.0, 42.0, True) if uniform else diffres.analysis.HopSpread(15.0, 90.0, False)
    facts = lambda a: Facts({}, item.sound, np.zeros(1), 16000, {"spread": spread, "answer": a})  # noqa: E731
    right = item.solve(facts(None))["answer"]
    wrong = next(a for a in item.answers if a != right)
    assert item.verdict(facts(right)).passed and not item.verdict(facts(wrong)).passed
    assert not item.verdict(facts(None)).passed


def test_lessons_cover_the_issue_list():
    assert len(LESSONS) >= 6 and len({x.key for x in LESSONS}) == len(LESSONS)
    topics = " ".join(x.topic for x in LESSONS)
    for needed in ("hop vs event timing", "two simultaneous close tones", "clicks", "frame cost", "keeps and merges",
                   "reduction rate vs accuracy", "while a model trains", "does not help"):
        assert needed in topics
    for item in LESSONS:
        assert item.goal and item.question and item.how and item.takeaway
