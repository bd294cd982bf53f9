"""A :class:`~diffres.training.Trainer` in a child process: :class:`RemoteTrainer`.

A trainer in a thread shares its process's interpreter lock with everything else the process
does; in a web server that is every page's script run, so a click waits for the training
step in flight.  :class:`RemoteTrainer` keeps the trainer (its data, log-mel cache, model
and optimiser) in a process of its own, at a lower scheduling priority, and offers the
:class:`~diffres.training.Trainer` calls a caller drives a run with (:meth:`step`,
:meth:`run_for`, :meth:`probe`, :meth:`save`, :meth:`request_stop`,
:meth:`release_cache`) together with a local, read-only copy of what the trainer shows
(``history``, ``global_step``, ``epoch``, ``prior_losses``...), refreshed after every call.
Reading that copy never waits for the process.

The process is forked from a fork server that has imported :mod:`diffres.training` already
(:func:`warm_up` starts it), so a new trainer process costs tens of milliseconds, not a torch
import.  It loads its own data with ``load_dataset`` (a picklable function of no arguments,
for example ``functools.partial(diffres.datasets.load_dataset, "events")``), builds the
trainer (or resumes one from a checkpoint) and then answers one call at a time over a pipe.
It ends when :meth:`close` is called, when this object is garbage-collected, or when the
process that made it exits (its end of the pipe closes).  A process that dies (killed for
memory, say) turns every later call into a :class:`TrainerProcessError`; the checkpoints it
wrote stay on disk.

The weights are those of an in-process trainer making the same calls: the child runs the
same :class:`~diffres.training.Trainer` code, seeded the same way.

Example::

    from functools import partial
    from diffres.datasets import load_dataset
    from diffres.training import TrainConfig
    from diffres.training.remote import RemoteTrainer

    trainer = RemoteTrainer(TrainConfig(dataset="events", epochs=1), partial(load_dataset, "events"))
    while not trainer.finished:
        trainer.run_for(0.5)          # trains in the child; this process stays free
    print(trainer.history[-1].val_accuracy)
    trainer.close()
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import DiffResError, ParameterError
from .config import TrainConfig
from .records import EpochRecord, StepRecord
from .schedule import RunPosition

if TYPE_CHECKING:
    from ..datasets import AudioDataset

__all__ = ["RemoteTrainer", "TrainerProcessError", "warm_up"]

#: torch's thread count when this module was first imported (a training process's default).
_DEFAULT_THREADS = torch.get_num_threads()

#: Modules the fork server imports once, so that every trainer process starts with them (and
#: warm: :mod:`diffres.training.forkserver_warm` makes one tiny training step).
PRELOAD = ["diffres.training", "diffres.training.forkserver_warm"]
#: Seconds between two checks that the child is still alive while a call waits for it.
POLL_SECONDS = 0.5
#: The calls a child answers (the rest of the Trainer stays in the child).
CALLS = frozenset({"step", "run_for", "probe", "save", "release_cache"})


class TrainerProcessError(DiffResError):
    """The training process is gone (killed, out of memory, closed) or could not start."""


def process_context() -> multiprocessing.context.ForkServerContext:
    """The multiprocessing context trainer processes start from: a fork server (never a fork
    of a threaded server process) that has imported :data:`PRELOAD`."""
    ctx = multiprocessing.get_context("forkserver")
    assert isinstance(ctx, multiprocessing.context.ForkServerContext)
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def warm_up() -> None:
    """Start the fork server now (it imports torch and the trainer, a few seconds), so the
    first :class:`RemoteTrainer` starts at once.  Safe to call from any thread, and again."""
    from multiprocessing import forkserver

    process_context()
    with _START_LOCK, _no_main_module():
        forkserver.ensure_running()


@dataclass(frozen=True)
class _Static:
    """What does not change during a run (sent once, when the trainer is built)."""

    config: TrainConfig
    model_config: Any
    steps_per_epoch: int
    batch_size: int
    n_train: int
    score_prior_steps: int
    hop_seconds: float
    probe_log_mel: np.ndarray
    probe_label: int
    mel_frequencies: np.ndarray
    n_parameters: int
    dataset_name: str | None
    prepare_seconds: float


@dataclass(frozen=True)
class _State:
    """What a call changed: the step count and clock, and what was appended to the history
    and the prior's losses since the last state sent."""

    global_step: int
    elapsed_seconds: float
    cache_released: bool
    new_history: list[EpochRecord]
    new_prior_losses: list[float]
    probe: tuple[np.ndarray, np.ndarray, np.ndarray] | None


class RemoteTrainer(RunPosition):
    """A :class:`~diffres.training.Trainer` running in a child process (see the module).

    Args:
        config: the run's settings; None with ``resume_from`` (the checkpoint's are used).
        load_dataset: a picklable function of no arguments that returns the
            :class:`~diffres.datasets.AudioDataset` (called in the child).
        resume_from: a checkpoint saved by :meth:`Trainer.save` to continue from.
        niceness: the child's scheduling niceness (higher yields the processor) once its first
            :meth:`step` or :meth:`run_for` is answered, for all its threads.  The data
            preparation and that first call run at the caller's priority, as someone waits for them.
        threads: torch's intra-op threads in the child (None: torch's default).
        probe_after_calls: compute :meth:`probe` at the end of every :meth:`step` /
            :meth:`run_for` call (:attr:`last_probe`), so a reader never waits for it.

    Raises:
        TrainerProcessError: the process could not start or died while building the trainer.
        DiffResError: building the trainer failed in the child (its own typed error, e.g. a
            :class:`~diffres.errors.DatasetError`).
    """

    def __init__(
        self,
        config: TrainConfig | None,
        load_dataset: Callable[[], AudioDataset],
        *,
        resume_from: str | os.PathLike[str] | None = None,
        niceness: int = 10,
        threads: int | None = None,
        probe_after_calls: bool = True,
    ) -> None:
        if config is None and resume_from is None:
            raise ParameterError("a remote trainer needs a TrainConfig or a checkpoint to resume from.")
        self._lock = threading.Lock()
        self._closed = False
        self.history: list[EpochRecord] = []
        self.prior_losses: list[float] = []
        self.global_step = 0
        self._elapsed = 0.0
        self._released = False
        #: ``(global_step, (importance, merged, bin_edges))`` after the last call, or None.
        self.last_probe: tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        ctx = process_context()
        parent, child = ctx.Pipe()
        resume = None if resume_from is None else str(resume_from)
        self._process = ctx.Process(
            target=_serve,
            args=(child, config, load_dataset, resume, niceness, threads, probe_after_calls),
            name="diffres-trainer",
            daemon=True,
        )
        try:
            with _START_LOCK, _no_main_module():
                self._process.start()
        except (OSError, pickle.PicklingError, AttributeError, TypeError) as err:
            raise TrainerProcessError(f"the training process could not start ({type(err).__name__}: {err}).") from None
        finally:
            child.close()
        self._conn: Connection = parent
        self._finalizer = weakref.finalize(self, _shut, parent, self._process)
        kind, payload, state = self._receive()
        if kind == "error":
            self.close()
            raise payload
        self._static: _Static = payload
        self._apply(state)

    @classmethod
    def resume(
        cls, checkpoint_path: str | os.PathLike[str], load_dataset: Callable[[], AudioDataset], **kwargs: Any
    ) -> RemoteTrainer:
        """A remote trainer continuing from ``checkpoint_path`` (:meth:`Trainer.resume`)."""
        return cls(None, load_dataset, resume_from=checkpoint_path, **kwargs)

    # -- the read-only view (the Trainer's names) ---------------------------------------
    @property
    def config(self) -> TrainConfig:
        return self._static.config

    @property
    def model_config(self) -> Any:
        return self._static.model_config

    @property
    def steps_per_epoch(self) -> int:
        return self._static.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self._static.steps_per_epoch * self._static.config.epochs

    @property
    def batch_size(self) -> int:
        return self._static.batch_size

    @property
    def n_train(self) -> int:
        return self._static.n_train

    @property
    def score_prior_steps(self) -> int:
        return self._static.score_prior_steps

    @property
    def hop_seconds(self) -> float:
        return self._static.hop_seconds

    @property
    def probe_log_mel(self) -> torch.Tensor:
        """The probe clip's log-mel ``[1, time, n_mels]``."""
        return torch.from_numpy(self._static.probe_log_mel)

    @property
    def probe_label(self) -> int:
        return self._static.probe_label

    @property
    def mel_frequencies(self) -> np.ndarray:
        return self._static.mel_frequencies

    @property
    def n_parameters(self) -> int:
        return self._static.n_parameters

    @property
    def dataset_name(self) -> str | None:
        return self._static.dataset_name

    @property
    def prepare_seconds(self) -> float:
        return self._static.prepare_seconds

    @property
    def elapsed_seconds(self) -> float:
        return self._elapsed

    @property
    def cache_released(self) -> bool:
        return self._released

    @property
    def alive(self) -> bool:
        """Whether the child answers calls (not closed, not dead)."""
        return not self._closed and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    # -- calls --------------------------------------------------------------------------
    def step(self) -> StepRecord:
        """One optimiser step in the child (:meth:`Trainer.step`)."""
        result: StepRecord = self._call("step")
        return result

    def run_for(self, seconds: float) -> list[StepRecord]:
        """About ``seconds`` of training in the child (:meth:`Trainer.run_for`)."""
        result: list[StepRecord] = self._call("run_for", seconds)
        return result

    def probe(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The probe clip under the current weights (:meth:`Trainer.probe`); without a call
        to the child when :attr:`last_probe` is of the current step."""
        if self.last_probe is not None and self.last_probe[0] == self.global_step:
            return self.last_probe[1]
        result: tuple[np.ndarray, np.ndarray, np.ndarray] = self._call("probe")
        self.last_probe = (self.global_step, result)
        return result

    def save(self, path: str | os.PathLike[str], card_extra: dict[str, Any] | None = None, **kwargs: Any) -> dict:
        """:meth:`Trainer.save` in the child; returns the card."""
        card: dict = self._call("save", str(path), card_extra, **kwargs)
        return card

    def release_cache(self) -> None:
        """Free the child's log-mel cache (:meth:`Trainer.release_cache`); the child stays
        for :meth:`save` and :meth:`probe` until :meth:`close`."""
        if not self._released and self.alive:
            self._call("release_cache")
        self._released = True

    def request_stop(self) -> None:
        """Ask the call in flight (from another thread) to return after its current step.
        Never waits; a signal to the child, whose handler sets the trainer's stop flag."""
        if self.alive and self._process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGUSR1)

    def close(self, timeout: float = 5.0) -> None:
        """End the child (it finishes the call in flight first, up to ``timeout`` seconds)."""
        self._closed = True
        self._released = True
        self._finalizer.detach()
        _shut(self._conn, self._process, timeout)

    # -- plumbing -----------------------------------------------------------------------
    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._closed:
                raise TrainerProcessError("this run's training process was closed; resume from its checkpoint.")
            try:
                self._conn.send((name, args, kwargs))
            except (OSError, ValueError):
                raise self._dead() from None
            kind, payload, state = self._receive()
        self._apply(state)
        if kind == "error":
            raise payload
        return payload

    def _receive(self) -> tuple[str, Any, _State | None]:
        """The child's next answer; waits with the interpreter lock released, checking every
        :data:`POLL_SECONDS` that the child lives."""
        while True:
            try:
                if self._conn.poll(POLL_SECONDS):
                    answer: tuple[str, Any, _State | None] = self._conn.recv()
                    return answer
            except (EOFError, OSError):
                raise self._dead() from None
            if not self._process.is_alive():
                # its last words may still be in the pipe
                with contextlib.suppress(EOFError, OSError):
                    if self._conn.poll(0):
                        answer = self._conn.recv()
                        return answer
                raise self._dead()

    def _dead(self) -> TrainerProcessError:
        self._closed = True
        self._process.join(timeout=1.0)
        code = self._process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        if code == -signal.SIGKILL:
            how += ", often the system running out of memory"
        return TrainerProcessError(
            f"the training process stopped unexpectedly ({how}); the last saved checkpoint is kept."
        )

    def _apply(self, state: _State | None) -> None:
        if state is None:
            return
        self.global_step = state.global_step
        self._elapsed = state.elapsed_seconds
        self._released = self._released or state.cache_released
        self.history.extend(state.new_history)
        self.prior_losses.extend(state.new_prior_losses)
        if state.probe is not None:
            self.last_probe = (state.global_step, state.probe)


_START_LOCK = threading.Lock()


@contextlib.contextmanager
def _no_main_module() -> Iterator[None]:
    """Start a child without the parent's ``__main__``: multiprocessing would run the parent's
    main script again in the child (a script without a ``__main__`` guard starts over; a
    temporary script left as ``__main__`` by a test harness fails), and the child needs
    nothing from it (its target and arguments live in importable modules)."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _shut(conn: Connection, process: multiprocessing.process.BaseProcess, timeout: float = 5.0) -> None:
    """Close our end of the pipe (the child sees the end and exits), then reap the child."""
    with contextlib.suppress(OSError, ValueError):
        conn.send(("close", (), {}))
    with contextlib.suppress(OSError):
        conn.close()
    with contextlib.suppress(AssertionError, ValueError):  # a process never started
        process.join(timeout=timeout)
        if process.is_alive():
            process.terminate()
            process.join(timeout=timeout)


# ------------------------------------------------------------------- the child's side
def _portable(err: BaseException) -> BaseException:
    """``err`` when it survives pickling (the caller gets the typed error), else a
    :class:`TrainerProcessError` with its type and message."""
    try:
        pickle.loads(pickle.dumps(err))
    except Exception:
        return TrainerProcessError(f"{type(err).__name__}: {err}")
    return err


class _Sent:
    """How much of the history and the prior's losses the parent has been sent."""

    def __init__(self) -> None:
        self.history = 0
        self.prior_losses = 0


def _state(trainer: Any, sent: _Sent, probe: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> _State:
    history, prior = trainer.history, trainer.prior_losses
    state = _State(
        global_step=trainer.global_step,
        elapsed_seconds=trainer.elapsed_seconds,
        cache_released=trainer.cache_released,
        new_history=list(history[sent.history :]),
        new_prior_losses=list(prior[sent.prior_losses :]),
        probe=probe,
    )
    sent.history, sent.prior_losses = len(history), len(prior)
    return state


def _static(trainer: Any) -> _Static:
    return _Static(
        config=trainer.config,
        model_config=trainer.model_config,
        steps_per_epoch=trainer.steps_per_epoch,
        batch_size=trainer.batch_size,
        n_train=trainer.n_train,
        score_prior_steps=trainer.score_prior_steps,
        hop_seconds=float(trainer.hop_seconds),
        probe_log_mel=trainer.probe_log_mel.cpu().numpy(),
        probe_label=int(trainer.probe_label),
        mel_frequencies=trainer.mel_frequencies,
        n_parameters=trainer.n_parameters,
        dataset_name=trainer.dataset_name,
        prepare_seconds=float(trainer.prepare_seconds),
    )


def _serve(
    conn: Connection,
    config: TrainConfig | None,
    load_dataset: Callable[[], AudioDataset],
    resume_from: str | None,
    niceness: int,
    threads: int | None,
    probe_after_calls: bool,
) -> None:
    """The child: build the trainer, then answer calls until the pipe closes."""
    holder: dict[str, Any] = {}

    def stop(signum: int, frame: Any) -> None:
        trainer = holder.get("trainer")
        if trainer is not None:
            trainer.request_stop()

    signal.signal(signal.SIGUSR1, stop)  # first: its default action would end the process
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the server's terminal is the server's
    torch.set_num_threads(threads or _DEFAULT_THREADS)  # the fork server warmed up on one
    try:
        trainer = _build(config, load_dataset, resume_from)
    except Exception as err:
        with contextlib.suppress(OSError, ValueError):
            conn.send(("error", _portable(err), None))
        return
    holder["trainer"] = trainer
    sent = _Sent()
    answer: tuple[str, Any, _State] = ("ready", _static(trainer), _state(trainer, sent, None))
    while True:
        try:
            conn.send(answer)
            name, args, kwargs = conn.recv()
        except (EOFError, OSError, ValueError):
            return
        if name == "close":
            return
        answer = _answer(trainer, sent, name, args, kwargs, probe_after_calls)
        if niceness and name in ("step", "run_for"):
            # the data preparation and the first training call run at the caller's priority
            # (someone waits for them); the rest of the run yields the processor
            _yield_processor(niceness)
            niceness = 0


def _yield_processor(niceness: int) -> None:
    """Lower every thread of this process to ``niceness``.

    Per thread: on Linux a nice value belongs to a thread, and torch's worker threads were
    started before this (at niceness 0 they kept competing with the pages).  Not
    ``SCHED_IDLE``: it starves the run whenever other low-priority work (another training
    from the command line, say) keeps the processors busy.
    """
    threads = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
    for tid in threads:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), niceness))


def _build(config: TrainConfig | None, load_dataset: Callable[[], AudioDataset], resume_from: str | None) -> Any:
    from .trainer import Trainer

    dataset = load_dataset()
    if resume_from is not None:
        return Trainer.resume(Path(resume_from), dataset)
    assert config is not None  # checked by the parent
    return Trainer(config, dataset)


def _answer(
    trainer: Any, sent: _Sent, name: str, args: tuple, kwargs: dict, probe_after_calls: bool
) -> tuple[str, Any, _State]:
    """One call on the child's trainer: ``("ok", result, state)`` or ``("error", err, state)``."""
    try:
        if name not in CALLS:
            raise ParameterError(f"a trainer process answers {sorted(CALLS)}, not {name!r}.")
        result = getattr(trainer, name)(*args, **kwargs)
        probe = trainer.probe() if probe_after_calls and name in ("step", "run_for") else None
        return ("ok", result, _state(trainer, sent, probe))
    except Exception as err:
        return ("error", _portable(err), _state(trainer, sent, None))
