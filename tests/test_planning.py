"""A run's size before it starts (:mod:`diffres.planning`): the same split sizes and steps as
the Trainer, the too-small warnings at their documented thresholds, and class counts of a
built-in set read from its manifest alone."""

from __future__ import annotations

import pytest

from diffres import datasets as D
from diffres.datasets.cache import built_class_counts
from diffres.errors import ParameterError
from diffres.planning import MIN_STEPS, MIN_TRAIN_CLIPS_PER_CLASS, plan_run
from diffres.training import Trainer
from test_training import tiny, toy_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(("n_train", "batch", "epochs"), [(32, 8, 2), (20, 8, 3), (6, 32, 4), (33, 16, 1)])
def test_plan_agrees_with_the_trainer(n_train, batch, epochs):
    ds = toy_dataset(n_train, 4, seconds=0.25)
    config = tiny(batch_size=batch, epochs=epochs, score_prior_steps=0)
    plan = plan_run(config, ds.class_counts())
    tr = Trainer(config, ds)
    assert (plan.train_clips, plan.batch_size, plan.steps_per_epoch, plan.total_steps) == (
        tr.n_train, tr.batch_size, tr.steps_per_epoch, tr.total_steps)
    assert (plan.val_clips, plan.test_clips, plan.n_classes) == (4, 4, 2)


def test_too_small_runs_say_why():
    counts = {"train": {"a": 7, "b": 7}, "val": {"a": 1, "b": 1}, "test": {"a": 1, "b": 1}}
    from diffres.training import TrainConfig

    small = plan_run(TrainConfig(epochs=3, batch_size=32), counts)
    assert small.too_few_steps and not small.too_few_clips and small.total_steps == 3
    (text,) = small.warnings()
    assert "3 optimiser steps" in text and f"fewer than {MIN_STEPS}" in text and "(50%)" in text  # chance, 2 classes

    big = {"train": {"a": 400, "b": 400}, "val": {}, "test": {}}
    assert not plan_run(TrainConfig(epochs=4, batch_size=32), big).too_small  # 25 x 4 = 100 steps
    assert plan_run(TrainConfig(epochs=3, batch_size=32), big).too_few_steps  # 75

    few = {"train": {"a": 400, "b": MIN_TRAIN_CLIPS_PER_CLASS - 1}}
    plan = plan_run(TrainConfig(epochs=20, batch_size=8), few)
    assert plan.too_few_clips and plan.fewest_class == "b" and plan.val_clips == 0
    assert any("'b' has 4 training clips" in w for w in plan.warnings())
    assert not plan_run(TrainConfig(epochs=20, batch_size=8), {"train": {"a": 400, "b": 5}}).too_few_clips

    with pytest.raises(ParameterError, match="TrainConfig"):
        plan_run({"epochs": 3}, counts)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="negative"):
        plan_run(TrainConfig(), {"train": {"a": -1}})


def test_builtin_class_counts_come_from_the_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFRES_CACHE", str(tmp_path / "cache"))
    assert D.builtin_class_counts("events") is None  # not built: nothing is generated to answer
    assert not D.is_built("events")
    folder = D.build_dataset("events", n_per_class=8)
    for quick in (None, 4):
        assert built_class_counts(folder, max_files_per_class=quick) == D.load_dataset(
            str(folder), max_files_per_class=quick).class_counts()

