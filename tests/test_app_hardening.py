"""The app under hostile or unlucky input (AppTest): one upload limit everywhere, crafted
checkpoints and zips give clear messages, a full disk stops training with the real error
and resets the controls, runs saved before a reload are listed and resumed, temporary data
goes when a session ends, and the last line of defence shows a sentence, not a traceback."""

from __future__ import annotations

import errno
import gc
import io
import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from streamlit.testing.v1 import AppTest
from test_app_train_inspect import INSPECT, TRAIN, active, start, tiny_checkpoints, wav  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
CONFIG_LIMIT_MB = 50


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    monkeypatch.setenv("DIFFRES_RUNS_DIR", str(folder))
    monkeypatch.setenv("DIFFRES_CACHE", str(tmp_path / "cache"))
    return folder


def no_unexpected(at: AppTest) -> None:
    from ui.frame import UNEXPECTED

    assert not at.exception, at.exception
    assert not [e.value for e in at.error if UNEXPECTED in e.value]


def zip_of(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


# ------------------------------------------------------------------ one upload limit


def test_the_config_sets_the_one_upload_limit():
    text = (ROOT / ".streamlit" / "config.toml").read_text()
    assert f"maxUploadSize = {CONFIG_LIMIT_MB}" in text


def test_every_uploader_reads_the_limit_from_config(tiny_checkpoints, monkeypatch):
    monkeypatch.setenv("DIFFRES_CHECKPOINT_DIR", str(tiny_checkpoints))
    at = start(TRAIN)
    seen = {u.proto.label: u.proto.max_upload_size_mb for u in at.get("file_uploader")}
    at.segmented_control(key="train_source").set_value("buckets").run()
    seen.update({u.proto.label: u.proto.max_upload_size_mb for u in at.get("file_uploader")})
    at.segmented_control(key="train_source").set_value("zip").run()
    seen.update({u.proto.label: u.proto.max_upload_size_mb for u in at.get("file_uploader")})
    at.switch_page(INSPECT).run()
    at.segmented_control(key="inspect_source").set_value("upload").run()
    seen.update({u.proto.label: u.proto.max_upload_size_mb for u in at.get("file_uploader")})
    no_unexpected(at)
    assert len(seen) >= 4  # the sound picker, bucket clips, the training zip, a checkpoint
    assert set(seen.values()) == {CONFIG_LIMIT_MB}, seen
    assert f"up to {CONFIG_LIMIT_MB} MB" in next(label for label in seen if label.startswith("Upload a sound"))


# ------------------------------------------------------------------ crafted files


def _payload() -> dict:
    from diffres import save_checkpoint
    from diffres.models import AudioClassifier, ModelConfig

    torch.manual_seed(0)
    buf = io.BytesIO()
    save_checkpoint(buf, AudioClassifier(ModelConfig.from_dict({"classes": ["a", "b"], "n_mels": 16, "width": 4})))
    return torch.load(io.BytesIO(buf.getvalue()), weights_only=True)


def _with_card(payload: dict, text: str) -> bytes:
    buf = io.BytesIO()
    torch.save({**payload, "card": text}, buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("card", "needle"),
    [
        ("null", "must be a JSON object, got NoneType"),
        ("[1]", "must be a JSON object, got list"),
        ("[" * 200_000 + "]" * 200_000, "longer than 256 kB"),
        ('{"classes": ["a", "b"], "hop_ms": "ten", "n_mels": 16, "width": 4}', "field 'hop_ms' must be a number"),
        (json.dumps({"classes": [f"c{i}" for i in range(30_000)]}), "longer than 256 kB"),
        (json.dumps({"classes": ["a", "b\u202e"], "n_mels": 16, "width": 4}), "RIGHT-TO-LEFT OVERRIDE"),
    ],
)
def test_crafted_checkpoint_cards_give_a_message_on_inspect(tiny_checkpoints, monkeypatch, card, needle):
    monkeypatch.setenv("DIFFRES_CHECKPOINT_DIR", str(tiny_checkpoints))
    at = start(INSPECT)
    at.segmented_control(key="inspect_source").set_value("upload").run()
    at.file_uploader(key="inspect_upload").set_value(("evil.pt", _with_card(_payload(), card), "application/x")).run()
    no_unexpected(at)
    assert any("Could not open 'evil.pt'" in e.value and needle in e.value for e in at.error), [e.value for e in at.error]


def test_a_zip_bomb_and_an_empty_test_split_on_the_train_page():
    at = start(TRAIN)
    at.segmented_control(key="train_source").set_value("zip").run()
    bomb = zip_of({f"c{k % 2}/x{k}.wav": bytes(1_048_576) for k in range(40)})
    at.file_uploader(key="train_zip").set_value(("bomb.zip", bomb, "application/zip")).run()
    no_unexpected(at)
    assert any("possible zip bomb" in e.value for e in at.error)
    assert not any("/tmp" in e.value or "user-zips" in e.value for e in at.error)  # no server paths
    two = zip_of({f"{c}/{i}.wav": wav(300 + 500 * k + 20 * i, 0.5, seed=i) for k, c in enumerate("ab") for i in range(2)})
    at.file_uploader(key="train_zip").set_value(("two.zip", two, "application/zip")).run()
    no_unexpected(at)
    assert any("The test split is empty" in w.value for w in at.warning)


def test_corrupt_and_long_audio_uploads_say_what_happened():
    at = start(TRAIN)
    flac = io.BytesIO()
    t = np.arange(16000) / 16000
    sf.write(flac, (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, format="FLAC")
    cut = flac.getvalue()[: len(flac.getvalue()) // 3]
    at.sidebar.file_uploader(key="sound_upload").set_value(("cut.flac", cut, "audio/flac")).run()
    no_unexpected(at)
    errors = [e.value for e in at.sidebar.error] + [e.value for e in at.error]
    assert any("damaged or truncated: only" in e for e in errors), errors
    assert not any("0 Hz" in e for e in errors)
    at.segmented_control(key="train_source").set_value("buckets").run()
    bid = at.session_state["train_buckets"][0].bucket_id
    at.file_uploader(key=f"train_bup_{bid}").set_value([("long.wav", wav(440, 40.0), "audio/wav")]).run()
    no_unexpected(at)
    infos = [i.value for i in at.info]
    assert any("'long.wav' is 40 s long: its first 30 s were cut into clips" in i for i in infos), infos
    assert not any("trim=True" in m for m in infos + [e.value for e in at.error])
    assert len(at.session_state["train_buckets"][0].samples) == 30


# ------------------------------------------------------------------ training that loses nothing


def test_a_full_disk_stops_training_with_the_real_error_and_resets_the_controls(monkeypatch):
    from diffres import checkpoints

    at = start(TRAIN)
    at.selectbox(key="train_quick").select(10).run()
    at.button(key="train_play").click().run()
    run = active(at)
    for _ in range(200):  # ticks: the energy-prior fit first, then training steps
        at.run()
        if run.trainer.global_step > 0:
            break
    at.button(key="train_play").click().run()  # pause: a good checkpoint
    good = run.checkpoint.read_bytes()
    good_step = run.saved_step

    def full(files):
        raise OSError(errno.ENOSPC, f"could not write {files[0][0].name}: No space left on device; the previous "
                                    "checkpoint (if any) is intact")

    monkeypatch.setattr(checkpoints, "write_files_atomically", full)
    at.button(key="train_play").click().run()
    for _ in range(40):  # until an autosave (epoch end) hits the full disk
        at.run()
        if run.status != "playing":
            break
    no_unexpected(at)
    assert run.status == "failed"
    assert any("Training stopped: Could not save the checkpoint: could not write" in e.value
               and "No space left on device" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="train_play").label == "Play"  # the controls are reset
    assert run.checkpoint.read_bytes() == good and run.saved_step == good_step  # the last good one stands
    assert run.trainer.global_step > good_step  # and the trained steps are kept in memory
    monkeypatch.undo()
    at.button(key="train_save").click().run()  # room again: saving works and the error goes
    no_unexpected(at)
    assert run.saved_step == run.trainer.global_step and not run.error


def test_a_run_saved_before_a_reload_is_listed_reopened_and_resumed(runs_dir):
    first = start(TRAIN)
    first.selectbox(key="train_quick").select(10).run()
    first.button(key="train_step").click().run()
    first.button(key="train_step").click().run()
    old = active(first)
    first.button(key="train_save").click().run()
    path, step = old.checkpoint, old.trainer.global_step
    assert path.is_file() and step == 2

    at = start(TRAIN)  # a reload: a new session, nothing in memory
    no_unexpected(at)
    assert at.session_state["train_session_id"] != first.session_state["train_session_id"]
    assert any("Runs on disk" in h.value for h in at.subheader)
    assert any(old.label in m.value for m in at.markdown)
    at.button(key="disk_reopen_0").click().run()
    no_unexpected(at)
    run = active(at)
    assert run.resume_from == path and run.trainer is not None and run.trainer.global_step == step
    assert run.config.to_dict() == old.config.to_dict()
    assert any("Reopened from disk" in c.value for c in at.caption)
    at.button(key="train_step").click().run()  # continue training it
    at.button(key="train_save").click().run()
    no_unexpected(at)
    assert run.trainer.global_step == step + 1
    assert json.loads(path.with_suffix(".json").read_text())["global_step"] == step + 1  # the same file
    # the reopened run stays while the settings are untouched; a changed setting starts a new run
    at.run()
    assert active(at) is run
    at.slider(key="train_rate").set_value(0.5).run()
    assert active(at) is not run


def test_a_saved_run_is_deleted_only_on_request(runs_dir):
    first = start(TRAIN)
    first.selectbox(key="train_quick").select(10).run()
    first.button(key="train_step").click().run()
    first.button(key="train_save").click().run()
    path = active(first).checkpoint
    at = start(TRAIN)
    at.button(key="disk_del_0").click().run()
    no_unexpected(at)
    assert not path.exists() and not path.with_suffix(".json").exists()
    assert any("Deleted" in s.value for s in at.success)


# ------------------------------------------------------------------ housekeeping


def test_temporary_data_goes_when_the_session_ends_but_a_saved_run_keeps_its_data(runs_dir):
    from ui import housekeeping

    def zip_upload(at, name, seed):
        entries = {f"{c}/{i}.wav": wav(300 + 700 * k + 20 * i, 0.5, seed=seed + i) for k, c in enumerate("ab")
                   for i in range(3)}
        at.segmented_control(key="train_source").set_value("zip").run()
        at.file_uploader(key="train_zip").set_value((name, zip_of(entries), "application/zip")).run()

    at = start(TRAIN)
    zip_upload(at, "kept.zip", 0)
    at.button(key="train_step").click().run()
    at.button(key="train_save").click().run()
    zip_upload(at, "dropped.zip", 10)
    no_unexpected(at)
    uploads = runs_dir / at.session_state["train_session_id"] / "uploads"
    assert sorted(p.name.split("-", 1)[1] for p in uploads.iterdir()) == ["dropped.zip", "kept.zip"]
    del at
    gc.collect()  # Streamlit drops a closed session's state; its finaliser cleans up
    assert sorted(p.name.split("-", 1)[1] for p in uploads.iterdir()) == ["kept.zip"]
    # by age, temporary data goes whatever refers to it; a saved run never does
    removed = housekeeping.prune(runs_dir, now=time.time() + 2 * housekeeping.MAX_AGE_SECONDS)
    assert not uploads.exists() and removed
    assert len(list(runs_dir.glob("*/*/*.pt"))) == 1


def test_prune_removes_stale_leftovers_only(runs_dir):
    from ui import housekeeping

    session = runs_dir / "s1"
    (session / "run01-x").mkdir(parents=True)
    (session / "run01-x" / "m.pt").write_bytes(b"weights")
    (session / "run01-x" / ".m.pt.tmp-123").write_bytes(b"half")
    (session / "run02-y").mkdir()  # never saved
    (session / "buckets" / "abc").mkdir(parents=True)
    now = time.time()
    for p in session.rglob("*"):
        os.utime(p, (now - 8 * 86400, now - 8 * 86400))
    housekeeping.prune(runs_dir, now=now)
    left = sorted(p.relative_to(runs_dir).as_posix() for p in runs_dir.rglob("*"))
    assert left == ["s1", "s1/run01-x", "s1/run01-x/m.pt"]


# ------------------------------------------------------------------ the last line of defence


def test_an_unexpected_error_is_a_sentence_not_a_traceback(monkeypatch):
    def page():
        from ui.frame import guard

        with guard():
            raise TypeError("a bug nobody foresaw")

    monkeypatch.setenv("DIFFRES_APP_RAISE", "0")
    at = AppTest.from_function(page)
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "This page stopped on an unexpected error (TypeError: a bug nobody foresaw). The details are in the "
        "server's log; reloading the page starts it afresh."
    ]
    monkeypatch.setenv("DIFFRES_APP_RAISE", "1")  # the test suite's setting: bugs fail tests
    at = AppTest.from_function(page)
    at.run()
    assert at.exception


def test_pandas_is_imported_before_any_page_runs():
    import subprocess
    import sys

    code = "import sys; import ui; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "True"
