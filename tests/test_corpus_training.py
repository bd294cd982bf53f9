"""Corpus training (diffres.training.corpus / distributed): torchrun DDP on 2 gloo processes
equals 1 process, rank 0 writes once, resume under DDP, the corpus card, devices and AMP; the
in-memory trainer's recipe (energy prior, augmentation) on streamed runs; a stop or SIGTERM
saves a checkpoint that resumes to the uninterrupted weights."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import diffres
from diffres.audio import save_wav
from diffres import analysis
from diffres.datasets.streaming import collate_stream, scan_corpus
from diffres.errors import ParameterError
from diffres.training import TrainConfig
from diffres.training.corpus import CorpusOptions, CorpusTrainer, dropout_keep_mask
from diffres.training.prior import frame_level, noise_floor
from diffres.training.steps import augment_batch
from diffres.training.distributed import (
    DistContext,
    amp_settings,
    backend_for,
    launched_by_torchrun,
    setup_distributed,
)

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["--batch-size", "8", "--width", "4", "--n-mels", "16", "--clip-seconds", "0.25", "--workers", "0"]
COMMON += ["--precision", "float64", "--device", "cpu", "--quiet", "--json"]
# N processes equal one only without augmentation: each rank augments its own share of a batch
# from its own stream (diffres.training.steps.augment_batch); the energy prior stays on
DDP = [*COMMON, "--no-augment"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp") / "tones"
    rng = np.random.default_rng(0)
    for c, f in (("low", 300.0), ("mid", 900.0), ("high", 2000.0)):
        (root / c).mkdir(parents=True)
        for i in range(12):
            t = np.arange(4000) / 16000
            x = 0.3 * np.sin(2 * np.pi * f * (1 + 0.05 * rng.standard_normal()) * t) + 0.01 * rng.standard_normal(4000)
            save_wav(root / c / f"{i:02d}.wav", x.astype(np.float32), 16000)
    (root / "low" / "broken.wav").write_bytes(b"not audio")
    return root


def _one_process(corpus, epochs=2, augment=False, **kw):
    cfg = TrainConfig(dataset=str(corpus), epochs=epochs, batch_size=8, width=4, n_mels=16, device="cpu", **kw)
    opts = CorpusOptions(clip_seconds=0.25, num_workers=0, dtype="float64")
    return CorpusTrainer(cfg if augment else cfg.without_augmentation(), scan_corpus(corpus), options=opts)


def _torchrun(args, tmp_env=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run([*cmd, "-m", "diffres", "train", *args], capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _max_diff(state, path):
    saved = torch.load(path, weights_only=True)["state_dict"]
    assert set(saved) == set(state)
    return max(
        float((state[k].double() - saved[k].double()).abs().max()) for k in state if state[k].is_floating_point()
    )


def test_two_gloo_processes_train_the_weights_of_one_and_rank0_writes_once(corpus, tmp_path):
    out = tmp_path / "out"
    proc = _torchrun(["--dataset", str(corpus), "--out", str(out), "--epochs", "2", "--epochs-this-run", "1", *DDP])
    json_lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(json_lines) == 1 and proc.stdout.count("saved ") == 1  # rank 1 printed nothing
    result = json.loads(json_lines[0])
    assert result["world_size"] == 2 and result["epochs"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["tones_diffres_r75.json", "tones_diffres_r75.pt"]
    one = _one_process(corpus)
    one.train_epoch()
    ckpt = out / "tones_diffres_r75.pt"
    assert _max_diff(one.model.state_dict(), ckpt) <= 1e-5  # float64: same global batch, same weights
    card = json.loads((out / "tones_diffres_r75.json").read_text())
    assert card["distributed"] == {"world_size": 2, "backend": "gloo", "device": "cpu", "amp": "off"}
    index = scan_corpus(corpus)
    val_paths = [index.relpath(int(i)) for i in index.split_indices("val")]
    val = one.evaluate("val")
    # the metrics cover the whole split (summed over ranks), not rank 0's half
    assert card["metrics"]["n_val"] == val.n == len(val_paths) - ("low/broken.wav" in val_paths) >= 2
    assert card["metrics"]["val_accuracy"] == round(val.accuracy, 4)
    # the unreadable file is counted once although both ranks and every split pass saw it
    assert card["corpus"]["n_unreadable"] == 1 and card["corpus"]["unreadable"][0].startswith("low/broken.wav: ")


@pytest.mark.slow
def test_resume_under_ddp_reaches_the_uninterrupted_weights(corpus, tmp_path):
    out = tmp_path / "out"
    args = ["--dataset", str(corpus), "--out", str(out), "--epochs", "2", *DDP]
    _torchrun([*args, "--epochs-this-run", "1"])
    proc = _torchrun([*args, "--resume", str(out)])
    assert json.loads(proc.stdout.splitlines()[-1])["epochs"] == 2
    one = _one_process(corpus)
    one.fit()
    assert _max_diff(one.model.state_dict(), out / "tones_diffres_r75.pt") <= 1e-5


def test_corpus_card_names_no_path_and_opens_like_a_shipped_checkpoint(corpus, tmp_path):
    trainer = _one_process(corpus)
    trainer.fit()
    path = tmp_path / "model" / "tones_diffres_r75.pt"
    card = trainer.save(path)
    text = (tmp_path / "model" / "tones_diffres_r75.json").read_text()
    assert str(corpus) not in text and str(tmp_path) not in text and str(Path.home()) not in text
    assert not re.search(r'"(/|[A-Za-z]:\\)', text)  # no absolute path anywhere in the card
    assert card is not None and card["dataset"] == "tones" and card["training"]["dataset"] == "tones"
    assert card["corpus"]["n_clips"] == 37 and card["corpus"]["classes"] == ["high", "low", "mid"]
    assert card["corpus"]["n_per_class"] == {"high": 12, "low": 13, "mid": 12}
    assert "User corpus 'tones' (folder): 37 clips in 3 classes" in card["data_source"]
    loaded = diffres.load_checkpoint(path)
    assert loaded.model.classes == ("high", "low", "mid") and loaded.card["metrics"]["val_accuracy"] is not None
    t = np.arange(4000) / 16000
    pred = loaded.model.predict((0.3 * np.sin(2 * np.pi * 2000.0 * t)).astype(np.float32))
    assert pred.probabilities.shape == (3,) and abs(float(pred.probabilities.sum()) - 1) < 1e-5
    # a non-main rank writes nothing and returns None
    other = tmp_path / "rank1.pt"
    trainer.ctx = DistContext(rank=1, world_size=1)
    assert trainer.save(other) is None and not other.exists()


def test_resume_refuses_a_changed_corpus(corpus, tmp_path):
    trainer = _one_process(corpus)
    trainer.train_epoch()
    trainer.save(tmp_path / "m.pt", evaluate=False)
    changed = tmp_path / "changed"
    for c in ("low", "mid"):
        (changed / c).mkdir(parents=True)
        for f in sorted((corpus / c).glob("0*.wav")):
            (changed / c / f.name).write_bytes(f.read_bytes())
    with pytest.raises(diffres.CheckpointError, match="differs from the one this run trained on"):
        CorpusTrainer.resume(tmp_path / "m.pt", scan_corpus(changed))
    resumed = CorpusTrainer.resume(
        tmp_path / "m.pt", scan_corpus(corpus), options=CorpusOptions(num_workers=0, dtype="float64")
    )
    assert resumed.global_step == trainer.global_step and resumed.epoch == 1
    assert _max_diff(resumed.model.state_dict(), tmp_path / "m.pt") == 0.0


def test_dropout_mask_depends_on_the_clip_not_the_batch():
    keys = torch.tensor([5, 9, 12, 40])
    whole = dropout_keep_mask(keys, 64, 0.2)
    halves = torch.cat([dropout_keep_mask(keys[2:], 64, 0.2), dropout_keep_mask(keys[:2], 64, 0.2)])
    torch.testing.assert_close(whole, halves[[2, 3, 0, 1]], rtol=0, atol=0)
    big = dropout_keep_mask(torch.arange(200), 500, 0.2)
    assert abs(float((big == 0).double().mean()) - 0.2) < 0.01 and abs(float(big.mean()) - 1.0) < 0.02
    assert not torch.equal(big[0], big[1])


def test_device_backend_and_precision_choices():
    assert backend_for(torch.device("cpu")) == "gloo" and backend_for(torch.device("cuda", 0)) == "nccl"
    assert not launched_by_torchrun({"RANK": "0"})
    assert launched_by_torchrun({"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "localhost"})
    ctx, device = setup_distributed("cpu", env={})
    assert ctx == DistContext() and device == torch.device("cpu") and not ctx.distributed
    cpu = amp_settings(torch.device("cpu"), "auto")
    assert not cpu.enabled and cpu.name == "off" and not cpu.use_scaler and not cpu.grad_scaler().is_enabled()
    with cpu.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32  # autocast is off on CPU
    with pytest.raises(ParameterError, match="amp 'bf16' needs a CUDA device"):
        amp_settings(torch.device("cpu"), "bf16")
    with pytest.raises(ParameterError, match="amp must be one of"):
        amp_settings(torch.device("cpu"), "half")
    gpu = torch.device("cuda", 0)
    assert amp_settings(gpu, "auto", bf16_supported=True).dtype == torch.bfloat16
    fp16 = amp_settings(gpu, "auto", bf16_supported=False)
    assert fp16.dtype == torch.float16 and fp16.use_scaler and fp16.name == "fp16"
    assert not amp_settings(gpu, "off").enabled and not amp_settings(gpu, "bf16").use_scaler
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="no CUDA GPU is available"):
            setup_distributed("cuda", env={})


def test_global_batch_must_split_evenly_over_processes(corpus):
    cfg = TrainConfig(dataset=str(corpus), epochs=1, batch_size=9, width=4, n_mels=16, device="cpu")
    with pytest.raises(
        ParameterError, match=r"global batch size \(9\) must be a multiple of the number of processes \(2\)"
    ):
        CorpusTrainer(cfg, scan_corpus(corpus), options=CorpusOptions(clip_seconds=0.25), ctx=DistContext(0, 2))


def test_cli_trains_a_csv_manifest_in_one_process(corpus, tmp_path, capsys):
    from diffres.cli import main

    rows = ["path,label,split"] + [
        f"{c}/{i:02d}.wav,{c},{'val' if i < 2 else 'train'}" for c in ("low", "high") for i in range(8)
    ]
    manifest = corpus / "pairs.csv"
    manifest.write_text("\n".join(rows) + "\n")
    try:
        code = main(["train", "--dataset", str(manifest), "--out", str(tmp_path), "--epochs", "1", *COMMON])
    finally:
        manifest.unlink()
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and result["world_size"] == 1 and result["dataset"] == "pairs"
    card = json.loads((tmp_path / "pairs_diffres_r75.json").read_text())
    assert card["corpus"]["kind"] == "manifest" and card["corpus"]["n_per_split"] == {"train": 12, "val": 4, "test": 0}
    assert card["metrics"]["n_val"] == 4 and card["classes"] == ["high", "low"]


def test_cli_streaming_refuses_a_builtin_name(tmp_path, capsys):
    from diffres.cli import main

    assert main(["train", "--dataset", "events", "--stream", "--out", str(tmp_path)]) == 2  # bad input
    assert "datasets build events --out DIR" in capsys.readouterr().err


def test_cli_streaming_refuses_max_files_per_class_instead_of_ignoring_it(corpus, tmp_path, capsys):
    from diffres.cli import main

    args = ["train", "--dataset", str(corpus), "--stream", "--out", str(tmp_path), "--max-files-per-class", "3"]
    assert main(args) == 2
    assert "--max-files-per-class is not available for streamed training" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing trained or written


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the CPU path is tested above)")
def test_cuda_forward_matches_cpu_and_mixed_precision_trains(corpus, monkeypatch):
    from dataclasses import replace

    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    cfg = TrainConfig(dataset=str(corpus), epochs=1, batch_size=8, width=4, n_mels=16, device="cuda")
    index = scan_corpus(corpus)
    off = CorpusOptions(clip_seconds=0.25, num_workers=0, amp="off")
    gpu = CorpusTrainer(cfg, index, options=off)
    cpu = CorpusTrainer(replace(cfg, device="cpu"), index, options=off)
    batch = next(iter(cpu._loader(cpu.train_set, cpu.local_batch, cpu.sampler)))
    keys = batch.indices + 12345
    with torch.no_grad():
        lg_cpu, out_cpu = cpu.forward(batch.log_mel, keys, 0.75)
        lg_gpu, out_gpu = gpu.forward(batch.log_mel.cuda(), keys.cuda(), 0.75)
    # same weights, same batch, same dropout masks: CUDA's float32 forward equals the CPU's
    torch.testing.assert_close(lg_gpu.cpu(), lg_cpu, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out_gpu.importance.cpu(), out_cpu.importance, rtol=1e-4, atol=1e-5)
    amp = CorpusTrainer(cfg, index, options=CorpusOptions(clip_seconds=0.25, num_workers=0))
    assert amp.amp.enabled and amp.amp.dtype in (torch.bfloat16, torch.float16)
    rec = amp.train_epoch()
    assert np.isfinite(rec.train_loss) and next(amp.model.parameters()).dtype == torch.float32


# ------------------------------------------------------------ the in-memory trainer's recipe


@pytest.fixture(scope="module")
def bursts(tmp_path_factory):
    """Tone bursts (a quarter of each 0.5 s clip) in white noise, as class folders."""
    from test_training import toy_dataset

    ds = toy_dataset(n_train=32, noise=0.01)
    root = tmp_path_factory.mktemp("bursts") / "bursts"
    for name in ("train", "val"):
        split = ds.splits[name]
        for i, (w, y) in enumerate(zip(split.waveforms, split.labels, strict=True)):
            folder = root / ds.classes[int(y)]
            folder.mkdir(parents=True, exist_ok=True)
            save_wav(folder / f"{name}{i:02d}.wav", w, ds.sample_rate)
    return root


def _state(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def _diff(a, b):
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


def test_streamed_runs_fit_the_energy_prior_before_their_first_step(bursts):
    def first_epoch(prior_steps):
        cfg = TrainConfig(dataset=str(bursts), epochs=100, batch_size=8, width=8, n_mels=16, device="cpu",
                          score_prior_steps=prior_steps).without_augmentation()
        trainer = CorpusTrainer(cfg, scan_corpus(bursts), options=CorpusOptions(clip_seconds=0.5, num_workers=0))
        assert trainer.score_prior_steps == prior_steps  # at most half of 100 epochs' steps
        trainer.train_epoch()
        return trainer

    plain, primed = first_epoch(0), first_epoch(60)
    x = collate_stream([plain.train_set[i] for i in range(len(plain.train_set))]).log_mel
    level = frame_level(x)
    bursts_mask = level > noise_floor(level) + 3.0
    with torch.no_grad():
        c_primed, c_plain = (
            analysis.concentration(t.model.eval().frontend(x).importance, bursts_mask).nanmean()
            for t in (primed, plain)
        )
    # as test_recipe's in-memory check: the prior puts the importance on the bursts from the start
    assert c_primed > 2.0 and c_primed > c_plain + 0.5


def test_streamed_steps_are_augmented_as_the_in_memory_trainers_are(corpus):
    recipe = dict(epochs=4, augment=True, mixup_alpha=0.4, mixup_probability=1.0, score_prior_steps=0)
    trainer = _one_process(corpus, **recipe)
    seen = []
    trainer.forward.register_forward_pre_hook(lambda _m, args: seen.append((args[0].clone(), args[1].clone())))
    trainer.train_epoch()
    x_in, keys = seen[0]
    where = {int(p): i for i, p in enumerate(trainer.train_set.positions)}
    raw = collate_stream([trainer.train_set[where[int(k)]] for k in keys % (1 << 32)])
    # step 0's input is its clips through augment_batch of (seed, step 0, rank 0): the in-memory
    # trainer's function and random stream
    expected, targets = augment_batch(raw.log_mel.double(), raw.labels, config=trainer.config, n_classes=3,
                                      hop_seconds=trainer.model.mel.hop_seconds, step=0)
    torch.testing.assert_close(x_in, expected, rtol=0, atol=0)
    assert float((x_in - raw.log_mel.double()).abs().max()) > 0.1
    assert bool((targets.max(1).values < 0.99).any())  # mixup: soft targets
    again = _one_process(corpus, **recipe)
    again.train_epoch()
    assert _diff(_state(trainer), _state(again)) == 0.0  # the same seed trains the same weights
    plain = _one_process(corpus, epochs=4, score_prior_steps=0)  # augmentation off
    plain.train_epoch()
    assert _diff(_state(trainer), _state(plain)) > 1e-4


def test_a_stop_mid_epoch_saves_a_checkpoint_that_resumes_to_the_uninterrupted_weights(corpus, tmp_path):
    whole = _one_process(corpus, epochs=3, augment=True)  # the whole recipe: prior and augmentation
    whole.fit()
    trainer = _one_process(corpus, epochs=3, augment=True)
    stop_at = trainer.steps_per_epoch + 1  # one step into the second epoch
    trainer.forward.register_forward_hook(
        lambda *_: trainer.request_stop() if trainer.global_step == stop_at - 1 else None
    )
    trainer.fit(save_each_epoch=tmp_path / "m.pt")
    assert trainer.global_step == stop_at and trainer.epoch == 1 and not trainer.stop_requested
    trainer.save(tmp_path / "m.pt", evaluate=False)
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["global_step"] == stop_at and card["complete"] is False
    resumed = CorpusTrainer.resume(
        tmp_path / "m.pt", scan_corpus(corpus), options=CorpusOptions(num_workers=0, dtype="float64")
    )
    assert resumed.global_step == stop_at and resumed.last_saved_step == stop_at
    resumed.fit()
    assert resumed.finished and len(resumed.history) == 3
    assert _diff(_state(whole), _state(resumed)) <= 1e-9


@pytest.mark.slow
def test_sigterm_saves_exits_130_and_resume_continues_from_the_checkpoint(corpus, tmp_path):
    out = tmp_path / "out"
    ckpt = out / "tones_diffres_r75.pt"
    opts = ["--clip-seconds", "0.25", "--workers", "1", "--precision", "float64", "--device", "cpu"]
    opts += ["--quiet", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    args = ["--dataset", str(corpus), "--stream", "--out", str(out), "--epochs", "40", "--batch-size", "8",
            "--width", "4", "--n-mels", "16", *opts]
    # its own process group: the signal reaches the data-loader worker too, as a scheduler's does
    proc = subprocess.Popen([sys.executable, "-m", "diffres", "train", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    t0 = time.monotonic()
    while not ckpt.exists():  # written after the first epoch: training has started
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() - t0 < 240
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 130, stderr[-3000:]
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["ok"] is False and result["interrupted"] is True and "SIGTERM" in result["error"]["message"]
    assert "Traceback" not in stderr and not list(out.glob(".*tmp*"))
    card = diffres.load_checkpoint(ckpt).card
    assert card["complete"] is False and card["global_step"] == result["saved_step"] >= 3
    assert f"--resume {out} --name tones_diffres_r75 --dataset {corpus}" in result["resume"]
    resumed = subprocess.run([sys.executable, "-m", "diffres", "train", "--resume", str(out), "--dataset", str(corpus),
                              "--epochs-this-run", "1", *opts], capture_output=True, text=True, env=env, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = json.loads(resumed.stdout.strip().splitlines()[-1])
    steps_per_epoch = 3  # 27 training clips, batches of 8
    assert again["ok"] is True and again["resumed_from_epoch"] == result["saved_step"] // steps_per_epoch
    assert again["epochs"] == again["resumed_from_epoch"] + 1
    reference = _one_process(corpus, epochs=40, augment=True)
    assert reference.steps_per_epoch == steps_per_epoch
    reference.fit(max_epochs=again["epochs"])
    assert _max_diff(reference.model.state_dict(), ckpt) <= 1e-9  # as if never interrupted


def test_an_unreadable_file_met_again_counts_once(corpus):
    from diffres.datasets.streaming import StreamBatch

    tr = _one_process(corpus)
    empty = torch.zeros(0, dtype=torch.long)
    for reason in ("not audio", "not audio", "truncated"):  # another epoch, another pass, another message
        tr._record_failures(StreamBatch(torch.zeros(0, 0, 0), empty, empty, (f"low/gone.wav: {reason}",)))
    tr._record_failures(StreamBatch(torch.zeros(0, 0, 0), empty, empty, ("high/other.wav: not audio",)))
    n, listed = tr._all_failures()
    assert n == 2 and listed[0] == "low/gone.wav: not audio"
