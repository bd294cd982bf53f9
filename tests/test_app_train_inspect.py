"""The Train and Inspect pages without a browser (AppTest).

AppTest has no timers: a ``run_every`` fragment runs once per ``at.run()``, so each plain
``run()`` while playing is exactly one training chunk.  Runs write into a temporary runs
folder; Inspect reads checkpoints from a temporary folder holding a tiny model trained here
(``DIFFRES_CHECKPOINT_DIR``), or the shipped ones when they exist.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamlit.testing.v1 import AppTest
from test_app import charts

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TRAIN, INSPECT = "pages/train.py", "pages/inspect.py"


pytestmark = pytest.mark.usefixtures("runs_dir")  # tests/conftest.py: runs in a temporary folder


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory) -> Path:
    """A shipped-style folder: the real checkpoints when present, else two tiny models trained
    here on a small subset of ``events`` (a DiffRes one and an avgpool baseline)."""
    folder = tmp_path_factory.mktemp("checkpoints")
    shipped = sorted((ROOT / "checkpoints").glob("*.pt"))
    events = [p for p in shipped if _card(p).get("dataset") == "events"]
    if events:
        for p in events[:3]:
            shutil.copy(p, folder / p.name)
            if p.with_suffix(".json").is_file():
                shutil.copy(p.with_suffix(".json"), folder / p.with_suffix(".json").name)
        return folder
    from diffres.training import TrainConfig, Trainer

    for fe in ("avgpool", "diffres"):
        tr = Trainer(TrainConfig(dataset="events", frontend=fe, epochs=1, max_files_per_class=6, width=8, batch_size=16,
                                 device="cpu"))
        tr.fit()
        tr.save(folder / f"tiny-events-{fe}.pt")
    return folder


def _card(path: Path) -> dict:
    try:
        return json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return {}


def start(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def chart_keys(at: AppTest) -> list[str]:
    return list(charts(at))


def open_tab(at: AppTest, label: str) -> None:
    """Select one of Inspect's tabs, as a click on it does (only the open tab runs)."""
    from ui.inspect import TAB_KEY

    at.session_state[TAB_KEY] = label
    at.switch_page(INSPECT).run()
    assert not at.exception, at.exception


def active(at: AppTest):
    return at.session_state["train_runs"][at.session_state["train_active"]]


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def wav(freq: float, seconds: float = 1.0, sample_rate: int = 16000, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


# ------------------------------------------------------------------ Train


def test_train_play_chunk_pause_step_reset(runs_dir):
    at = start(TRAIN)
    assert not at.error
    at.selectbox(key="train_quick").select(10).run()
    assert at.button(key="train_play").label == "Play"
    at.button(key="train_play").click().run()  # prepares the data, starts playing
    assert not at.exception, at.exception
    run = active(at)
    assert run.status == "playing" and run.trainer is not None
    assert at.button(key="train_play").label == "Pause"
    progress = []
    for _ in range(40):  # one fragment tick = one chunk: the energy-prior fit's steps, then training steps
        at.run()
        assert not at.exception, at.exception
        progress.append((len(run.trainer.prior_losses), run.trainer.global_step))
        if run.trainer.global_step >= 1:
            break
    assert all(b > a for a, b in zip([(0, 0), *progress], progress, strict=False)), progress  # every tick moved on
    after_chunk = run.trainer.global_step
    assert after_chunk >= 1 and run.trainer.prior_done
    assert "train_curves" in chart_keys(at) and "train_probe" in chart_keys(at)

    at.button(key="train_play").click().run()  # pause: saves a checkpoint
    assert run.status == "paused"
    assert run.checkpoint is not None and run.checkpoint.is_file()
    assert run.checkpoint.with_suffix(".json").is_file()
    assert str(run.checkpoint).startswith(str(runs_dir))
    paused_at = run.trainer.global_step
    at.run()
    assert run.trainer.global_step == paused_at  # paused means paused

    at.button(key="train_step").click().run()  # exactly one optimiser step
    assert run.trainer.global_step == paused_at + 1
    assert metric(at, "Step").startswith(f"{paused_at + 1}/")

    at.button(key="train_reset").click().run()
    new = active(at)
    assert new is not run and new.trainer is None and new.status == "ready"
    assert run.run_id in at.session_state["train_runs"]  # the trained run stays for comparison
    assert not at.exception


def test_training_survives_page_switch_and_setting_change_starts_new_run():
    at = start(TRAIN)
    at.selectbox(key="train_quick").select(10).run()
    at.button(key="train_step").click().run()
    run = active(at)
    assert run.trainer.global_step == 1
    at.switch_page("pages/home.py").run()
    at.switch_page(TRAIN).run()
    assert not at.exception
    assert active(at) is run and run.trainer.global_step == 1  # same trainer, same settings
    assert at.selectbox(key="train_quick").value == 10
    at.slider(key="train_rate").set_value(0.5).run()  # a changed setting = a new run (Playground reset)
    assert active(at) is not run and active(at).config.reduction_rate == 0.5
    assert run.run_id in at.session_state["train_runs"]
    assert run.checkpoint is not None and run.checkpoint.is_file()  # nothing lost


def test_training_to_the_end_saves_a_full_card_and_offers_downloads():
    at = start(TRAIN)
    at.selectbox(key="train_quick").select(10).run()
    at.number_input(key="train_epochs").set_value(1).run()
    at.button(key="train_play").click().run()
    run = active(at)
    for _ in range(20):
        at.run()
        if run.finished:
            break
    at.run()
    assert not at.exception, at.exception
    assert run.status == "finished" and len(run.history) == 1
    card = json.loads(run.checkpoint.with_suffix(".json").read_text())
    assert card["dataset"] == "events" and card["complete"] is True
    assert card["metrics"]["val_accuracy"] is not None and card["metrics"]["test_accuracy"] is not None
    assert at.button(key="train_play").label == "Finished" and at.button(key="train_play").disabled
    at.download_button(key=f"train_dl_{run.run_id}").click().run()  # built on click from the file
    assert not at.exception, at.exception
    assert "train_compare" in chart_keys(at)
    # scrub back to the saved epoch: the probe shows that epoch's record, and following stops
    at.select_slider(key="train_scrub").set_value(1).run()
    assert not at.exception, at.exception
    probe = charts(at)["train_probe"]
    assert "end of epoch 1" in probe["layout"]["title"]["text"]
    assert at.toggle(key="train_follow").value is False
    # open it in Inspect
    at.button(key=f"train_insp_{run.run_id}").click().run()
    assert not at.exception, at.exception
    assert at.session_state["inspect_source"] == "run"
    assert any(m.label == "Dataset" and m.value == "events" for m in at.metric)
    open_tab(at, "Validation set")
    assert "inspect_confusion" in chart_keys(at)


def test_buckets_need_enough_clips_then_train(runs_dir):
    at = start(TRAIN)
    at.segmented_control(key="train_source").set_value("buckets").run()
    assert not at.exception, at.exception
    assert any("at least" in i.value for i in at.info)  # the minimum-samples hint, no Play yet
    assert not [b for b in at.button if b.key == "train_play"]
    buckets = at.session_state["train_buckets"]
    # one 4-s recording is cut into four 1-s samples; uploads add one each
    at.audio_input(key=f"train_brec_{buckets[0].bucket_id}").set_value(("r.wav", wav(300, 4.0), "audio/wav")).run()
    assert len(at.session_state["train_buckets"][0].samples) == 4
    at.file_uploader(key=f"train_bup_{buckets[1].bucket_id}").set_value(
        [(f"s{i}.wav", wav(1500 + 100 * i, 1.0, seed=i), "audio/wav") for i in range(4)]).run()
    assert not at.exception, at.exception
    assert len(at.session_state["train_buckets"][1].samples) == 4
    assert [b for b in at.button if b.key == "train_play"]  # enough now
    at.button(key="train_step").click().run()
    assert not at.exception, at.exception
    run = active(at)
    assert run.source.kind == "buckets" and run.trainer.global_step == 1
    assert tuple(run.trainer.model_config.classes) == ("background", "my sound")
    at.button(key="train_save").click().run()
    assert run.checkpoint is not None and run.checkpoint.is_file()
    at.button(key=f"train_insp_{run.run_id}").click().run()  # evaluated on the buckets' own validation clips
    assert not at.exception, at.exception
    assert any(m.label == "Dataset" and m.value == "my classes" for m in at.metric)
    open_tab(at, "Validation set")
    assert "inspect_confusion" in chart_keys(at)
    assert any("validation split of my classes" in c.value for c in at.caption)


def test_bad_bucket_upload_and_bad_zip_show_errors():
    at = start(TRAIN)
    at.segmented_control(key="train_source").set_value("buckets").run()
    bid = at.session_state["train_buckets"][0].bucket_id
    at.file_uploader(key=f"train_bup_{bid}").set_value([("junk.wav", b"not audio at all", "audio/wav")]).run()
    assert not at.exception, at.exception
    assert any("junk.wav" in e.value for e in at.error)
    at.run()
    assert any("junk.wav" in e.value for e in at.error)  # stays while the file is in the uploader
    assert len(at.session_state["train_buckets"][0].samples) == 0
    # add a third class, then delete it (two is the minimum and cannot be deleted)
    at.button(key="train_badd").click().run()
    third = at.session_state["train_buckets"][2]
    assert at.button(key=f"train_bdel_{third.bucket_id}").disabled is False
    at.button(key=f"train_bdel_{third.bucket_id}").click().run()
    assert len(at.session_state["train_buckets"]) == 2
    assert at.button(key=f"train_bdel_{bid}").disabled
    at.segmented_control(key="train_source").set_value("zip").run()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("only_one_class/a.wav", wav(440))
    at.file_uploader(key="train_zip").set_value(("data.zip", buf.getvalue(), "application/zip")).run()
    assert not at.exception, at.exception
    assert any("data.zip" in e.value and "2 classes" in e.value for e in at.error)


# ------------------------------------------------------------------ Inspect


def test_inspect_opens_on_the_model_of_the_default_sound():
    """The first sound is a rhythms figure, so Inspect opens on the shipped rhythms DiffRes
    model at 10 ms (not the fine-hop one, not another dataset's)."""
    from diffres.examples import DEFAULT_EXAMPLE_DATASET

    at = start(INSPECT)
    assert not at.exception, at.exception
    assert Path(at.selectbox(key="inspect_pick_shipped").value).name == f"{DEFAULT_EXAMPLE_DATASET}_diffres_r75.pt"
    assert any(m.label == "Dataset" and m.value == DEFAULT_EXAMPLE_DATASET for m in at.metric)


def test_inspect_shipped_checkpoint(tiny_checkpoints, monkeypatch):
    monkeypatch.setenv("DIFFRES_CHECKPOINT_DIR", str(tiny_checkpoints))
    at = start(INSPECT)
    assert not at.error, [e.value for e in at.error]
    assert any(m.label == "Dataset" and m.value == "events" for m in at.metric)
    keys = chart_keys(at)
    for key in ("inspect_clip_top", "inspect_clip_probe"):  # "This sound" is open first
        assert key in keys, key
    assert "inspect_confusion" not in keys and "inspect_cmp_a_probe" not in keys  # hidden tabs do no work
    open_tab(at, "Validation set")
    keys = chart_keys(at)
    for key in ("inspect_confusion", "inspect_per_class"):
        assert key in keys, key
    assert "inspect_clip_top" not in keys
    assert at.get("audio")  # the mistakes gallery (and the sidebar clip) play
    diffres_pt = next((p for p in sorted(tiny_checkpoints.glob("*.pt")) if "diffres" in p.name), None)
    assert diffres_pt is not None
    assert at.selectbox(key="inspect_pick_shipped").value == str(diffres_pt)  # DiffRes is the default
    assert "inspect_mean_importance" in chart_keys(at)
    at.button(key="inspect_sweep").click().run()
    assert not at.exception, at.exception
    fig = charts(at)["inspect_rate"]
    assert len(fig["data"][0]["x"]) >= 10  # rates 0, 0.1, ..., 0.9 and the trained one
    names = [t.get("name", "") for t in fig["data"]]
    assert any(n.startswith("trained rate") for n in names)
    assert any(n.startswith("avgpool") for n in names)  # the shipped fixed baseline beside it


@pytest.mark.parametrize("data", [b"garbage" * 20, b"", b"PK\x03\x04 truncated zip"])
def test_corrupt_checkpoint_upload_shows_error(tiny_checkpoints, monkeypatch, data):
    monkeypatch.setenv("DIFFRES_CHECKPOINT_DIR", str(tiny_checkpoints))
    at = start(INSPECT)
    at.segmented_control(key="inspect_source").set_value("upload").run()
    at.file_uploader(key="inspect_upload").set_value(("model.pt", data, "application/octet-stream")).run()
    assert not at.exception, at.exception
    assert any("model.pt" in e.value for e in at.error)


def test_upload_a_real_checkpoint(tiny_checkpoints, monkeypatch):
    monkeypatch.setenv("DIFFRES_CHECKPOINT_DIR", str(tiny_checkpoints))
    pt = sorted(tiny_checkpoints.glob("*.pt"))[0]
    at = start(INSPECT)
    at.segmented_control(key="inspect_source").set_value("upload").run()
    at.file_uploader(key="inspect_upload").set_value(("mine.pt", pt.read_bytes(), "application/octet-stream")).run()
    assert not at.exception, at.exception
    assert not at.error
    assert "inspect_clip_probe" in chart_keys(at)


def test_corrupt_shipped_checkpoint_shows_error(tmp_path, monkeypatch):
    folder = tmp_path / "ck"
    folder.mkdir()
    (folder / "broken.pt").write_bytes(b"\x00" * 64)
    monkeypatch.setenv("DIFFRES_CHECKPOINT_DIR", str(folder))
    at = start(INSPECT)
    assert not at.exception, at.exception
    assert any("broken.pt" in e.value and "checkpoint" in e.value for e in at.error)


def test_zip_of_class_folders_trains():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(4):
            z.writestr(f"sounds/low/l{i}.wav", wav(200 + 10 * i, 1.0, seed=i))
            z.writestr(f"sounds/high/h{i}.wav", wav(3000 + 50 * i, 1.0, seed=10 + i))
    at = start(TRAIN)
    at.segmented_control(key="train_source").set_value("zip").run()
    at.file_uploader(key="train_zip").set_value(("sounds.zip", buf.getvalue(), "application/zip")).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("8 clips in 2 classes" in c.value for c in at.caption)
    at.button(key="train_step").click().run()
    assert not at.exception, at.exception
    run = active(at)
    assert run.source.kind == "zip" and run.trainer.global_step == 1
    assert sorted(run.trainer.model_config.classes) == ["high", "low"]
    # its checkpoint, uploaded to Inspect, names no built-in set: evaluate it on the zip instead
    at.button(key="train_save").click().run()
    at.switch_page(INSPECT).run()
    at.segmented_control(key="inspect_source").set_value("upload").run()
    at.file_uploader(key="inspect_upload").set_value(("mine.pt", run.checkpoint.read_bytes(), "application/octet-stream")).run()
    assert not at.exception, at.exception
    open_tab(at, "Validation set")
    assert any("not a built-in set" in i.value for i in at.info)
    at.file_uploader(key="inspect_eval_zip").set_value(("sounds.zip", buf.getvalue(), "application/zip")).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert "inspect_confusion" in chart_keys(at)
    assert any("every clip of your sounds.zip" in c.value and "8 clips" in c.value for c in at.caption)
    other = io.BytesIO()
    with zipfile.ZipFile(other, "w") as z:
        for i in range(2):
            z.writestr(f"dogs/d{i}.wav", wav(500, 1.0, seed=i))
            z.writestr(f"cats/c{i}.wav", wav(900, 1.0, seed=i))
    at.file_uploader(key="inspect_eval_zip").set_value(("pets.zip", other.getvalue(), "application/zip")).run()
    assert not at.exception, at.exception
    assert any("pets.zip" in e.value and "does not know" in e.value for e in at.error)


def test_pause_stops_a_chunk_in_flight_after_its_current_step(runs_dir):
    """A Pause click arrives in a new script run while a timer tick is inside a long chunk:
    the chunk ends after its current step (not at the end of its time slice) and saves."""
    import threading
    import time

    from ui import runs as T

    at = start(TRAIN)
    at.selectbox(key="train_quick").select(40).run()
    at.select_slider(key="train_batch").set_value(8).run()  # many steps per epoch: a chunk ends at an epoch end
    at.button(key="train_play").click().run()
    run = active(at)
    assert run.playing and run.trainer is not None and run.trainer.steps_per_epoch >= 10
    chunk = threading.Thread(target=T.train_chunk, args=(run, 120.0))  # a slice far longer than the test
    chunk.start()
    t0 = time.monotonic()
    while run.trainer.global_step == 0 and time.monotonic() - t0 < 60:
        time.sleep(0.01)
    T.pause(run)
    at_pause = run.trainer.global_step
    chunk.join(timeout=30)
    assert not chunk.is_alive(), "the chunk in flight did not stop on pause"
    assert run.status == "paused"
    assert run.trainer.global_step <= at_pause + 1 < run.trainer.steps_per_epoch  # only the step that was running
    assert run.checkpoint is not None and run.saved_step == run.trainer.global_step  # saved when it stopped
    steps = run.trainer.global_step
    assert T.train_chunk(run, seconds=0.0) and run.trainer.global_step == steps + 1  # the stop was consumed once


def test_room_reverb_setting_reaches_the_training_config(runs_dir):
    at = start(TRAIN)
    at.selectbox(key="train_quick").select(10).run()
    assert active(at).config.reverb_probability == 0.0  # off by default
    at.toggle(key="train_reverb").set_value(True).run()
    assert not at.exception, at.exception
    run = active(at)
    assert run.config.reverb_probability == 0.5
    at.button(key="train_step").click().run()  # one step trains with it
    assert not at.exception, at.exception
    assert run.trainer is not None and run.trainer.global_step == 1


# ------------------------------------------------------------------ a corpus checkpoint


def test_a_corpus_trained_checkpoint_opens_in_inspect_and_adaptive_like_a_shipped_one(tmp_path, monkeypatch,
                                                                                        capsys):
    """`train --stream` on a folder, its .pt and .json copied into the app's checkpoint folder
    (README: "Train on your corpus"), then chosen on both pages."""
    from diffres.audio import save_wav
    from diffres.cli import main

    corpus = tmp_path / "birdsong"
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    for c, f in (("finch", 2500.0), ("owl", 400.0), ("wren", 5000.0)):
        (corpus / c).mkdir(parents=True)
        for i in range(8):
            x = 0.3 * np.sin(2 * np.pi * f * t) * (t < 0.2 + 0.02 * i) + 0.01 * rng.standard_normal(t.size)
            save_wav(corpus / c / f"{i}.wav", x.astype(np.float32), 16000)
    out = tmp_path / "run"
    code = main(["train", "--dataset", str(corpus), "--stream", "--out", str(out), "--epochs", "1", "--batch-size",
                 "8", "--width", "4", "--n-mels", "16", "--workers", "0", "--device", "cpu", "--quiet"])
    assert code == 0, capsys.readouterr().err
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for f in out.iterdir():
        shutil.copy(f, folder / f.name)
    pt = folder / "birdsong_diffres_r75.pt"
    assert sorted(p.name for p in folder.iterdir()) == [pt.with_suffix(".json").name, pt.name]
    monkeypatch.setenv("DIFFRES_CHECKPOINT_DIR", str(folder))

    at = start(INSPECT)
    at.selectbox(key="inspect_pick_shipped").select(str(pt)).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert metric(at, "Dataset") == "birdsong" and metric(at, "Front-end") == "diffres"
    caption = " ".join(c.value for c in at.caption)
    assert "Classes (3): finch, owl, wren" in caption
    assert "User corpus 'birdsong' (folder): 24 clips in 3 classes (finch: 8, owl: 8, wren: 8)" in caption
    for key in ("inspect_clip_top", "inspect_clip_probe", "inspect_history"):  # history: the card's training curves
        assert key in chart_keys(at), key
    open_tab(at, "Validation set")
    assert any("not a built-in set" in i.value for i in at.info)  # no validation data here: said, not raised

    at.switch_page("pages/adaptive_resolution.py").run()
    model = at.selectbox(key="adapt_model")
    chosen = next(o for o in model.options if "birdsong_diffres_r75" in o)
    model.select(chosen).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert not any("untrained" in w.value.lower() for w in at.warning)
    assert at.select_slider(key="adapt_hop").value == 10.0 and at.slider(key="adapt_rate").value == 0.75
    text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "trained on `birdsong`" in text and "24 clips in 3 classes" in text
    assert {p.proto.text.split(":")[0] for p in at.get("progress")} == {"finch", "owl", "wren"}
