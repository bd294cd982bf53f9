"""``python -m diffres``: train / evaluate / datasets build, JSON last line, clean errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

from diffres.cli import main
from test_training import toy_dataset

ROOT = Path(__file__).resolve().parents[1]


#: Tiny models run fastest on one thread (conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def run_cli(*args: str, timeout: float = 180.0) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "diffres", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout)


@pytest.fixture(scope="module")
def toy_folder(tmp_path_factory) -> Path:
    """A folder with one sub-folder of WAV files per class."""
    root = tmp_path_factory.mktemp("toydata")
    ds = toy_dataset(n_train=16, n_eval=6)
    k = 0
    for split in ds.splits.values():
        for w, y in zip(split.waveforms, split.labels):
            d = root / ds.classes[y]
            d.mkdir(exist_ok=True)
            sf.write(d / f"clip{k:03d}.wav", w, 16000, subtype="PCM_16")
            k += 1
    return root


TINY = ["--n-mels", "16", "--width", "8", "--batch-size", "8", "--epochs", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def trained(toy_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    proc = run_cli("train", "--dataset", str(toy_folder), "--out", str(out), "--frontend", "diffres",
                   "--reduction-rate", "0.5", "--hop-ms", "10", "--seed", "1", "--reverb", "0.5", "--json", *TINY)
    return proc, out


def test_train_json_last_line(trained):
    proc, out = trained
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"val_accuracy", "train_seconds", "checkpoint"} <= set(result)
    ckpt = Path(result["checkpoint"])
    assert ckpt.is_file() and ckpt.parent == out and ckpt.with_suffix(".json").is_file()
    assert ckpt.name.endswith("_diffres_r50.pt")
    card = json.loads(ckpt.with_suffix(".json").read_text())
    assert card["reduction_rate"] == 0.5 and card["frontend"] == "diffres" and card["seed"] == 1
    assert card["training"]["reverb_probability"] == 0.5
    assert "epoch 1/1" in proc.stderr  # progress goes to stderr


def test_evaluate_json(trained, toy_folder):
    proc, _ = trained
    ckpt = json.loads(proc.stdout.strip().splitlines()[-1])["checkpoint"]
    ev = run_cli("evaluate", "--checkpoint", ckpt, "--data", str(toy_folder), "--json")
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout.strip().splitlines()[-1])
    assert result["n"] == 28 and 0.0 <= result["accuracy"] <= 1.0
    assert set(result["per_class"]) == {"low", "high"}


def test_evaluate_in_process_and_rate_override(trained, toy_folder, capsys):
    proc, _ = trained
    ckpt = json.loads(proc.stdout.strip().splitlines()[-1])["checkpoint"]
    assert main(["evaluate", "--checkpoint", ckpt, "--data", str(toy_folder), "--reduction-rate", "0.25", "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["reduction_rate"] == 0.25 and result["n"] == 28


def test_bad_arguments_exit_2_with_message(capsys):
    for argv, needle in (
        (["train", "--dataset", "events", "--out", "x", "--reduction-rate", "1.5"], "reduction rate must be in [0, 1)"),
        (["train", "--out", "x"], "--dataset"),
        (["train", "--dataset", "events", "--out", "x", "--frontend", "wavelet"], "invalid choice"),
        (["train", "--dataset", "events", "--out", "x", "--epochs", "0"], "whole number >= 1"),
        (["evaluate", "--checkpoint", "m.pt"], "--data"),
        (["frobnicate"], "invalid choice"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert needle in capsys.readouterr().err


def test_errors_exit_cleanly_as_a_process(tmp_path):
    proc = run_cli("train", "--dataset", "events", "--out", "x", "--hop-ms", "abc")
    assert proc.returncode == 2 and "expected a positive number" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("train", "--dataset", str(tmp_path / "nowhere"), "--out", str(tmp_path), "--quiet")
    assert proc.returncode == 2  # bad input (README, Command line: exit codes), not a runtime failure
    assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr and "nowhere" in proc.stderr


def test_library_errors_are_bad_input_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    assert main(["evaluate", "--checkpoint", str(bad), "--data", str(tmp_path)]) == 2
    assert "not a DiffRes Explorer checkpoint" in capsys.readouterr().err
    assert main(["datasets", "build", "nosuchset", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "unknown built-in dataset" in capsys.readouterr().err
    assert main(["train", "--dataset", str(tmp_path), "--out", str(tmp_path / "o"), "--quiet", "--n-mels", "600"]) == 2
    assert "n_mels" in capsys.readouterr().err
    assert main(["train", "--dataset", str(tmp_path), "--out", str(tmp_path / "o"), "--quiet", "--reverb", "2"]) == 2
    assert "reverb_probability must be in [0, 1]" in capsys.readouterr().err


def test_wrong_classes_are_reported(trained, tmp_path, capsys):
    proc, _ = trained
    ckpt = json.loads(proc.stdout.strip().splitlines()[-1])["checkpoint"]
    other = tmp_path / "other"
    for c in ("low", "squeak"):
        (other / c).mkdir(parents=True)
        for i in range(2):
            sf.write(other / c / f"{i}.wav", toy_dataset(4, 2).splits["train"].waveforms[i], 16000)
    assert main(["evaluate", "--checkpoint", ckpt, "--data", str(other)]) == 2
    assert "squeak" in capsys.readouterr().err


def test_datasets_build_writes_class_folders(tmp_path, capsys, monkeypatch):
    import diffres.datasets as dsets

    calls = {}

    def fake_export(name, out_dir, *, split=None, seed=0, progress=None, n_per_class=None):
        calls.update(name=name, split=split)
        for c in ("a", "b"):
            (Path(out_dir) / c).mkdir(parents=True, exist_ok=True)
            (Path(out_dir) / c / "x.wav").write_bytes(b"")
        return Path(out_dir)

    monkeypatch.setattr(dsets, "export_dataset", fake_export)
    assert main(["datasets", "build", "events", "--out", str(tmp_path / "d"), "--split", "test", "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert calls == {"name": "events", "split": "test"} and result["n"] == 2
    assert main(["datasets", "list"]) == 0
    assert "alarm_clock" in capsys.readouterr().out


def test_help_reads_the_frontend_table_and_the_dataset_registry(capsys):
    """The command line describes front-ends and names built-ins from the library's own tables."""
    from diffres.cli import main
    from diffres.datasets import BUILTIN_DATASETS
    from diffres.frontends import FRONTENDS

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for name, description in FRONTENDS.items():
        assert f"{name}: {' '.join(description.rstrip('.').split())}" in text
    assert all(name in text for name in BUILTIN_DATASETS)
