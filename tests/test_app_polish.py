"""What a new user tripped over on the Train and Inspect pages (issue 9), without a browser
(AppTest): a run too small to learn, a "+0.0 pts" delta, the runs table, the curves' size,
defaults that were not the library's, labels of full-resolution models, the importance drawn
over the spectrogram, and the Compare tab's partner and scales.

The browser-only checks (the table fits, nothing truncates at 820 px) are in
``tests/browser/test_polish_browser.py``.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from diffres.training import TrainConfig
from test_app import chart_key, charts

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TRAIN, INSPECT = "pages/train.py", "pages/inspect.py"
#: (dataset, front-end) of the models the Inspect tests open: two data sets, a "full" model in each.
MODELS = (("events", "diffres"), ("events", "full"), ("digits", "diffres"), ("digits", "full"))


pytestmark = pytest.mark.usefixtures("runs_dir")  # tests/conftest.py: runs in a temporary folder


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory) -> Path:
    """A checkpoint folder with :data:`MODELS`: the shipped ones when present, else tiny models
    trained here."""
    folder = tmp_path_factory.mktemp("checkpoints")
    for dataset, frontend in MODELS:
        shipped = ROOT / "checkpoints" / f"{dataset}_{frontend}_r75.pt"
        if shipped.is_file() and shipped.with_suffix(".json").is_file():
            shutil.copy(shipped, folder / shipped.name)
            shutil.copy(shipped.with_suffix(".json"), folder / shipped.with_suffix(".json").name)
            continue
        from diffres.training import Trainer

        config = TrainConfig(dataset=dataset, frontend=frontend, epochs=1, max_files_per_class=6, width=8,
                             batch_size=16, device="cpu")
        tr = Trainer(config)
        tr.fit()
        tr.save(folder / f"{dataset}_{frontend}_r75.pt")
    return folder


def start(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def active(at: AppTest):
    return at.session_state["train_runs"][at.session_state["train_active"]]


def chart(at: AppTest, key: str) -> dict:
    return charts(at)[key]


def text_of(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


# ------------------------------------------------------------------ Train


def test_split_sizes_and_steps_show_before_play_and_a_too_small_run_is_warned():
    at = start(TRAIN)
    at.selectbox(key="train_quick").select(10).run()
    at.number_input(key="train_epochs").set_value(3).run()
    assert active(at).trainer is None  # nothing prepared yet
    shown = text_of(at)
    assert "56 training · 8 validation · 8 test clips (8 classes)" in shown, shown
    assert "1 per epoch (batches of 32 clips) × 3 epochs = **3**" in shown, shown
    warnings = [w.value for w in at.warning]
    assert any("Too small to learn" in w and "3 optimiser steps" in w and "fewer than 100" in w for w in warnings)

    at.button(key="train_step").click().run()  # the trainer agrees with what was announced
    tr = active(at).trainer
    assert (tr.n_train, tr.steps_per_epoch, tr.total_steps) == (56, 1, 3)
    assert "= **3**" in text_of(at)

    at.selectbox(key="train_quick").select(0).run()  # every clip: 26 steps per epoch x 3 epochs
    at.number_input(key="train_epochs").set_value(8).run()
    assert "26 per epoch (batches of 32 clips) × 8 epochs = **208**" in text_of(at)
    assert not any("Too small" in w.value for w in at.warning)


def test_val_accuracy_shows_no_delta_when_it_did_not_change():
    at = start(TRAIN)
    at.selectbox(key="train_quick").select(10).run()
    for _ in range(2):  # one step per epoch: two epoch ends
        at.button(key="train_step").click().run()
    tr = active(at).trainer
    assert len(tr.history) == 2
    tr.history[-1] = dataclasses.replace(tr.history[-1], val_accuracy=tr.history[-2].val_accuracy + 0.0004)
    at.run()
    val = next(m for m in at.metric if m.label == "Val accuracy")
    assert not val.delta  # rounds to +0.0 pts: no green arrow
    tr.history[-1] = dataclasses.replace(tr.history[-1], val_accuracy=tr.history[-2].val_accuracy + 0.125)
    at.run()
    val = next(m for m in at.metric if m.label == "Val accuracy")
    assert val.delta == "+12.5 pts"


def test_curves_are_full_width_tall_and_the_run_table_keeps_few_columns():
    at = start(TRAIN)
    at.selectbox(key="train_quick").select(10).run()
    at.button(key="train_step").click().run()
    in_columns = {chart_key(el) for col in at.columns for el in col.get("bidi_component")}
    assert "train_curves" not in in_columns  # not squeezed into half the page
    assert charts(at)["train_curves"]["layout"]["height"] >= 420
    table = at.dataframe[0].proto
    shown = list(table.column_order)
    assert shown and len(shown) <= 9, shown
    assert shown[0] == "run" and "val acc (last)" in shown
    for repeated in ("data", "front-end", "rate", "hop (ms)"):  # already in the run's label
        assert repeated not in shown


def test_setting_defaults_come_from_train_config(monkeypatch):
    monkeypatch.setattr(TrainConfig, "width", 24)
    monkeypatch.setattr(TrainConfig, "n_mels", 48)
    monkeypatch.setattr(TrainConfig, "batch_size", 16)
    at = start(TRAIN)
    assert at.select_slider(key="train_width").value == 24
    assert at.select_slider(key="train_mels").value == 48
    assert at.select_slider(key="train_batch").value == 16


# ------------------------------------------------------------------ Inspect


def test_full_models_are_labelled_without_a_rate(two_datasets, monkeypatch):
    monkeypatch.setenv("DIFFRES_CHECKPOINT_DIR", str(two_datasets))
    at = start(INSPECT)
    pick = at.selectbox(key="inspect_pick_shipped")
    labels = list(pick.options)  # as shown
    full = [x for x in labels if "full" in x]
    assert full and not any("full 0.75" in x for x in full), labels
    assert any("diffres 0.75" in x for x in labels), labels
    path = next(str(p) for p in sorted(two_datasets.glob("events_full*.pt")))
    at.selectbox(key="inspect_pick_shipped").set_value(path).run()
    assert next(m.value for m in at.metric if m.label == "Reduction rate") == "none"
    assert not any("full 0.75" in x.value for x in at.markdown)


def test_this_sound_draws_the_importance_over_the_spectrogram(two_datasets, monkeypatch):
    monkeypatch.setenv("DIFFRES_CHECKPOINT_DIR", str(two_datasets))
    at = start(INSPECT)
    fig = chart(at, "inspect_clip_probe")
    heat = next(t for t in fig["data"] if t["type"] == "heatmap" and t.get("name") == "input")
    curve = next(t for t in fig["data"] if t.get("name", "").startswith("importance") and t.get("showlegend", True))
    assert heat.get("yaxis", "y") == "y" and curve["yaxis"] == "y2"
    assert fig["layout"]["yaxis2"]["overlaying"] == "y"  # drawn over the log-mel, its own scale at the right
    assert curve.get("xaxis", "x") == heat.get("xaxis", "x")


def test_compare_resets_a_partner_of_other_classes_and_shares_the_importance_scale(two_datasets, monkeypatch):
    monkeypatch.setenv("DIFFRES_CHECKPOINT_DIR", str(two_datasets))
    at = start(INSPECT)
    at.session_state["inspect_tab"] = "Compare two models"
    at.selectbox(key="inspect_pick_shipped").set_value(next(str(p) for p in two_datasets.glob("events_diffres*.pt")))
    at.run()
    events_full = next(str(p) for p in two_datasets.glob("events_full*.pt"))
    partner = at.selectbox(key="inspect_other")
    assert events_full in partner.value  # the same classes, another front-end
    assert all("events" in o for o in partner.options)  # only models of the same classes are offered
    a, b = chart(at, "inspect_cmp_a_probe"), chart(at, "inspect_cmp_b_probe")
    assert a["layout"]["yaxis2"]["range"] == b["layout"]["yaxis2"]["range"]  # one importance scale

    digits = next(str(p) for p in two_datasets.glob("digits_diffres*.pt"))
    at.selectbox(key="inspect_pick_shipped").set_value(digits).run()
    assert not at.exception, at.exception
    partner = at.selectbox(key="inspect_other")
    assert "digits_full" in partner.value and all("digits" in o for o in partner.options)
    assert any("other classes" in i.value and "digits_full" in i.value for i in at.info), [i.value for i in at.info]
    a, b = chart(at, "inspect_cmp_a_probe"), chart(at, "inspect_cmp_b_probe")
    assert a["layout"]["yaxis2"]["range"] == b["layout"]["yaxis2"]["range"]


def test_live_view_redraws_every_second_after_play_then_every_two():
    import time
    from types import SimpleNamespace

    from ui import train_view as V

    now = time.monotonic()
    assert V.tick_seconds(None) is None
    assert V.tick_seconds(SimpleNamespace(playing=False, played_at=now)) is None
    assert V.tick_seconds(SimpleNamespace(playing=True, played_at=now)) == V.TICK_SECONDS == 1.0  # first points
    later = SimpleNamespace(playing=True, played_at=now - V.LIVELY_SECONDS - 0.1)
    assert V.tick_seconds(later) == V.STEADY_TICK_SECONDS == 2.0
