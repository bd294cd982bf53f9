"""``python -m diffres``: the ``--json`` failure contract and exit codes, and training runs that
a failure, a signal or ``kill -9`` never loses (per-epoch atomic checkpoints, ``--resume``)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_cli import ROOT, TINY, toy_folder  # noqa: F401 - toy_folder is a fixture

from diffres import load_checkpoint
from diffres.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")
THREE = [a if a != "1" or TINY[i - 1] != "--epochs" else "3" for i, a in enumerate(TINY)]


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def popen(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "diffres", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=env)


def wait_for_epoch(proc: subprocess.Popen, epoch: int, timeout: float = 240.0) -> str:
    """Read stderr until the run reports epoch ``epoch`` saved; returns what was read."""
    seen, t0 = [], time.monotonic()
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(f"epoch {epoch}/") and "saved" in line:
            return "".join(seen)
        assert time.monotonic() - t0 < timeout, "".join(seen)
    raise AssertionError(f"the run ended before epoch {epoch}:\n" + "".join(seen))


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model.state_dict()


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0, msg=k)


# ------------------------------------------------------------------ the JSON contract


@pytest.mark.parametrize(
    ("argv", "code", "kind", "needle"),
    [
        (["train", "--out", "x", "--json"], 2, "UsageError", "required: --dataset"),
        (["train", "--dataset", "events", "--out", "x", "--epochs", "0", "--json"], 2, "UsageError", "whole number"),
        (["frobnicate", "--json"], 2, "UsageError", "invalid choice"),
        (["train", "--resume", "x", "--dataset", "events", "--json"], 2, "UsageError", "drop --dataset"),
        (["datasets", "build", "nosuchset", "--out", "o", "--json", "--quiet"], 2, "DatasetError", "unknown built-in"),
        (["evaluate", "--checkpoint", "missing.pt", "--data", ".", "--json"], 2, "CheckpointError", "not found"),
    ],
)
def test_every_failure_ends_with_a_json_line(argv, code, kind, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if kind == "UsageError":
        with pytest.raises(SystemExit) as exc:
            main(argv)
        got = exc.value.code
    else:
        got = main(argv)
    out = capsys.readouterr()
    result = last_json(out.out)
    assert got == code and result["ok"] is False
    assert result["error"]["type"] == kind and needle in result["error"]["message"]
    assert needle in out.err and "Traceback" not in out.err


def test_a_crash_exits_1_with_json_and_a_traceback_on_stderr(monkeypatch, capsys, tmp_path):
    import diffres.training as T

    def crash(*args, **kwargs):
        raise TypeError("something unforeseen")

    monkeypatch.setattr(T, "evaluate_checkpoint", crash)
    assert main(["evaluate", "--checkpoint", "x.pt", "--data", str(tmp_path), "--json"]) == 1
    out = capsys.readouterr()
    assert last_json(out.out) == {
        "ok": False, "error": {"type": "TypeError", "message": "unexpected error: TypeError: something unforeseen"}}
    assert "Traceback" in out.err


def test_success_says_ok(capsys):
    assert main(["datasets", "list", "--json"]) == 0
    result = last_json(capsys.readouterr().out)
    assert result["ok"] is True and "events" in result["datasets"]


# ------------------------------------------------------------------ checks before training


@pytest.mark.parametrize("name", ["../../escape", "/tmp/abs", "a/b", "..", ".hidden", "x\u202ey"])
def test_a_name_stays_inside_out(name, tmp_path, capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("data loaded before --name was checked")

    monkeypatch.setattr("diffres.training.Trainer.__init__", never)
    out = tmp_path / "deep" / "out"
    assert main(["train", "--dataset", "events", "--out", str(out), "--name", name, "--json", "--quiet"]) == 2
    result = last_json(capsys.readouterr().out)
    assert "--name must be a plain file name" in result["error"]["message"]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["deep", "deep/out"]


def test_out_is_checked_before_training(tmp_path, capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("data loaded before --out was checked")

    monkeypatch.setattr("diffres.training.Trainer.__init__", never)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["train", "--dataset", "events", "--out", str(a_file), "--json", "--quiet"]) == 2
    assert "is a file" in last_json(capsys.readouterr().out)["error"]["message"]
    assert main(["train", "--dataset", "events", "--out", str(a_file / "sub"), "--json", "--quiet"]) == 2
    assert "cannot be written to (Not a directory)" in last_json(capsys.readouterr().out)["error"]["message"]


def test_an_existing_checkpoint_is_not_replaced_silently(tmp_path, capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("data loaded although the checkpoint exists")

    monkeypatch.setattr("diffres.training.Trainer.__init__", never)
    (tmp_path / "run.pt").write_bytes(b"trained work")
    assert main(["train", "--dataset", "events", "--out", str(tmp_path), "--name", "run", "--json", "--quiet"]) == 2
    message = last_json(capsys.readouterr().out)["error"]["message"]
    assert "run.pt already exists" in message and "--resume" in message and "--overwrite" in message
    assert (tmp_path / "run.pt").read_bytes() == b"trained work"


# ------------------------------------------------------------------ runs that are never lost


def test_a_full_disk_is_a_clear_error_keeping_the_last_epoch(toy_folder, tmp_path, capsys, monkeypatch):  # noqa: F811
    """The save at the end of epoch 2 hits a full disk: exit 1 with the reason, no temporary
    file, and epoch 1's checkpoint and card intact."""
    from diffres import checkpoints

    real = checkpoints.write_files_atomically
    calls = {"n": 0}

    def full_on_second(files):
        calls["n"] += 1
        if calls["n"] == 2:
            import builtins

            real_open = builtins.open

            def fail_write(file, mode="r", *a, **k):
                fh = real_open(file, mode, *a, **k)
                if "w" in mode:
                    fh.write(b"partial")
                    fh.close()
                    raise OSError(errno.ENOSPC, "No space left on device")
                return fh

            monkeypatch.setattr(builtins, "open", fail_write)
            try:
                return real(files)
            finally:
                monkeypatch.setattr(builtins, "open", real_open)
        return real(files)

    monkeypatch.setattr(checkpoints, "write_files_atomically", full_on_second)
    code = main(["train", "--dataset", str(toy_folder), "--out", str(tmp_path), "--name", "run", "--json", *THREE])
    out = capsys.readouterr()
    result = last_json(out.out)
    assert code == 1 and result["ok"] is False and result["error"]["type"] == "OSError"
    assert "No space left on device" in result["error"]["message"] and "previous checkpoint" in out.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "run.pt"]
    assert load_checkpoint(tmp_path / "run.pt").card["epochs"] == 1
    assert json.loads((tmp_path / "run.json").read_text())["epochs"] == 1


@pytest.fixture(scope="module")
def uninterrupted(toy_folder, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("whole")
    proc = popen("train", "--dataset", str(toy_folder), "--out", str(out), "--name", "run", "--json", *THREE)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert last_json(stdout)["ok"] is True
    return out / "run.pt"


@pytest.mark.slow
def test_sigterm_saves_then_exits_130_and_resume_reaches_the_same_weights(toy_folder, tmp_path, uninterrupted):  # noqa: F811
    proc = popen("train", "--dataset", str(toy_folder), "--out", str(tmp_path), "--name", "run", "--json", *THREE)
    wait_for_epoch(proc, 1)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 130, stderr
    result = last_json(stdout)
    assert result["interrupted"] is True and result["ok"] is False and result["saved_epoch"] >= 1
    assert "SIGTERM" in result["error"]["message"] and "Traceback" not in stderr
    card = load_checkpoint(tmp_path / "run.pt").card
    assert card["complete"] is False and card["global_step"] == result["saved_step"]
    assert not list(tmp_path.glob(".*tmp*"))
    resumed = popen("train", "--resume", str(tmp_path), "--json", "--quiet", "--threads", "1")
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr
    result = last_json(stdout)
    assert result["ok"] is True and result["epochs"] == 3 and result["resumed_from_epoch"] >= 1
    assert_same_weights(tmp_path / "run.pt", uninterrupted)


@pytest.mark.slow
def test_kill_9_after_an_epoch_resumes_from_it_to_the_same_weights(toy_folder, tmp_path, uninterrupted):  # noqa: F811
    proc = popen("train", "--dataset", str(toy_folder), "--out", str(tmp_path), "--name", "run", "--json", *THREE)
    wait_for_epoch(proc, 1)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    saved = load_checkpoint(tmp_path / "run.pt")
    assert saved.card["epochs"] >= 1 and saved.card["complete"] is False
    resumed = popen("train", "--resume", str(tmp_path / "run.pt"), "--json", "--quiet", "--threads", "1")
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr
    assert last_json(stdout)["resumed_from_epoch"] == saved.card["epochs"]
    assert_same_weights(tmp_path / "run.pt", uninterrupted)
