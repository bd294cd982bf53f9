"""A trainer in a child process (:mod:`diffres.training.remote`): the same weights as in
process, typed errors from the child, a stop that reaches a call in flight, a dead or closed
process reported as such."""

from __future__ import annotations

import os
import signal
import threading
import time
from functools import partial
from pathlib import Path

import pytest
import torch
from test_training import tiny, toy_dataset

from diffres import load_checkpoint
from diffres.errors import DatasetError, ParameterError
from diffres.training import Trainer
from diffres.training.remote import RemoteTrainer, TrainerProcessError

pytestmark = pytest.mark.usefixtures("one_thread")


def _broken_dataset():
    raise DatasetError("the folder holds no class folders (tests)")


def _gone(pid: int, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not Path(f"/proc/{pid}").exists():
            return True
        try:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_remote_training_gives_the_in_process_weights_history_and_prior(tmp_path):
    config = tiny(epochs=2, frontend="diffres", reduction_rate=0.5)
    local = Trainer(config, toy_dataset())
    local.fit()
    remote = RemoteTrainer(config, partial(toy_dataset), threads=1)
    try:
        assert remote.steps_per_epoch == local.steps_per_epoch and remote.total_steps == local.total_steps
        assert remote.n_parameters == local.n_parameters and remote.batch_size == local.batch_size
        assert torch.equal(remote.probe_log_mel, local.probe_log_mel)
        records = [remote.step()]  # one step, then slices of various lengths
        while not remote.finished:
            records += remote.run_for(0.02)
        assert [r.global_step for r in records] == list(range(1, local.total_steps + 1))
        assert remote.global_step == local.global_step and remote.epoch == 2 and remote.estimated_seconds_left == 0.0
        assert [h.val_accuracy for h in remote.history] == [h.val_accuracy for h in local.history]
        assert remote.prior_losses == local.prior_losses and len(remote.prior_losses) == local.score_prior_steps > 0
        card = remote.save(tmp_path / "remote.pt", {"run": "remote"}, evaluate=False)
        assert card["run"] == "remote"
        saved = load_checkpoint(tmp_path / "remote.pt").model.state_dict()
        for name, value in local.model.state_dict().items():
            assert torch.equal(saved[name], value), name  # bitwise: the same code, seeds and threads
        imp, merged, edges = remote.probe()
        ref = local.probe()
        assert all((a == b).all() for a, b in zip((imp, merged, edges), ref, strict=True))
        assert remote.last_probe is not None and remote.last_probe[0] == remote.global_step
    finally:
        remote.close()
    assert not remote.alive


def test_resume_in_a_child_continues_from_the_checkpoint(tmp_path):
    config = tiny(epochs=2)
    first = Trainer(config, toy_dataset())
    for _ in range(first.steps_per_epoch):
        first.step()
    first.save(tmp_path / "half.pt", evaluate=False)
    first.fit()
    remote = RemoteTrainer.resume(tmp_path / "half.pt", partial(toy_dataset), threads=1)
    try:
        assert remote.global_step == first.steps_per_epoch and len(remote.history) == 1
        while not remote.finished:
            remote.run_for(0.05)
        remote.save(tmp_path / "end.pt", evaluate=False)
    finally:
        remote.close()
    saved = load_checkpoint(tmp_path / "end.pt").model.state_dict()
    assert all(torch.equal(saved[k], v) for k, v in first.model.state_dict().items())


def test_errors_in_the_child_arrive_typed_with_their_message():
    with pytest.raises(DatasetError, match="no class folders"):
        RemoteTrainer(tiny(), _broken_dataset)
    remote = RemoteTrainer(tiny(epochs=1), partial(toy_dataset), threads=1)
    try:
        while not remote.finished:
            remote.run_for(0.5)
        with pytest.raises(ParameterError, match="training is finished"):
            remote.step()
        assert remote.alive  # an error in a call leaves the process serving
        assert remote.run_for(0.1) == []
    finally:
        remote.close()
    with pytest.raises(ParameterError, match="TrainConfig or a checkpoint"):
        RemoteTrainer(None, partial(toy_dataset))


def test_request_stop_ends_the_call_in_flight_after_its_current_step():
    remote = RemoteTrainer(tiny(epochs=1, batch_size=4), partial(toy_dataset, n_train=2400), threads=1)
    try:
        remote.step()
        got: list = []
        worker = threading.Thread(target=lambda: got.append(remote.run_for(60.0)))
        worker.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        remote.request_stop()
        worker.join(timeout=30)
        assert not worker.is_alive()
        assert time.monotonic() - t0 < 5.0
        assert 1 <= len(got[0]) < remote.steps_per_epoch - 1  # stopped, not at the epoch's end
        assert remote.global_step == 1 + len(got[0])
        assert len(remote.run_for(0.05)) >= 1  # the stop was honoured once: training goes on
    finally:
        remote.close()


def test_a_killed_process_becomes_a_trainer_process_error_and_closing_ends_it():
    remote = RemoteTrainer(tiny(epochs=1), partial(toy_dataset), threads=1)
    pid = remote.pid
    assert pid is not None and remote.alive
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(TrainerProcessError, match=r"killed by signal 9.*last saved checkpoint is kept"):
        remote.run_for(0.1)
    assert not remote.alive
    with pytest.raises(TrainerProcessError, match="closed"):
        remote.step()

    other = RemoteTrainer(tiny(epochs=1), partial(toy_dataset), threads=1)
    pid = other.pid
    other.close()
    assert pid is not None and _gone(pid)
    with pytest.raises(TrainerProcessError, match="closed"):
        other.run_for(0.1)


def test_a_dropped_remote_trainer_ends_its_process():
    remote = RemoteTrainer(tiny(epochs=1), partial(toy_dataset), threads=1)
    pid = remote.pid
    assert pid is not None
    del remote
    import gc

    gc.collect()
    assert _gone(pid)


def _niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _threads(pid: int) -> dict[int, tuple[int, int]]:
    """``{thread id: (niceness, scheduling policy)}`` of every thread of ``pid``."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        out[int(task.name)] = (int(fields[16]), int(fields[38]))
    return out


def test_the_child_yields_the_processor_after_its_first_training_call():
    own = os.getpriority(os.PRIO_PROCESS, 0)
    remote = RemoteTrainer(tiny(epochs=1), partial(toy_dataset), niceness=7, threads=1)
    try:
        assert remote.pid is not None
        assert _niceness(remote.pid) == own  # preparing: someone waits for it
        remote.run_for(0.05)
        assert _niceness(remote.pid) == max(own, 7)  # training: lower priority from now on
    finally:
        remote.close()


def test_every_thread_of_the_child_yields_the_processor():
    """Niceness is per thread on Linux: torch's worker threads, started before the first call
    was answered, must be lowered too (and stay under the normal policy, not SCHED_IDLE, which
    other low-priority work would starve)."""
    remote = RemoteTrainer(tiny(epochs=1), partial(toy_dataset), niceness=19, threads=2)
    try:
        remote.run_for(0.05)
        threads = _threads(remote.pid)
        assert len(threads) >= 2  # the main thread and torch's worker (and the pipe's helpers)
        assert all(nice == 19 for nice, _ in threads.values()), threads
        assert all(policy == os.SCHED_OTHER for _, policy in threads.values()), threads
    finally:
        remote.close()


def test_the_child_never_runs_the_parents_main_script(tmp_path, monkeypatch):
    import types

    script = tmp_path / "unguarded.py"
    script.write_text("raise SystemExit('the main script ran again in the child')\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(__import__("sys").modules, "__main__", main)
    remote = RemoteTrainer(tiny(epochs=1), partial(toy_dataset), threads=1)
    try:
        remote.run_for(0.05)
        assert remote.alive
    finally:
        remote.close()
