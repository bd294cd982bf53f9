"""Training runs of this session: lifecycle (prepare, play, pause, step, reset, archive),
checkpoints, and the table of runs.

A :class:`Run` holds one trainer (the model, optimiser, cached log-mel and per-epoch history)
in ``st.session_state``, so training survives reruns and page switches within the session
and is never re-created by a rerun.  Every run writes its checkpoints into the session
folder (:mod:`ui.session`): after every finished epoch, on pause, and with a full model card
(validation and test accuracy) when training finishes.  Stopping therefore loses at most the
steps since the last epoch end or pause.

A failure while training or saving (a full disk, no memory, a library error, a training
process that died) stops the run with the real message (:func:`describe_error`) and keeps
what it can, so Play or "Save checkpoint" can try again once the cause is gone; the last
good checkpoint on disk is never replaced by a partial one (saves are atomic), and a run
whose training process died continues from it.

Under a Streamlit server each run trains in a process of its own
(:class:`diffres.training.remote.RemoteTrainer`, at a lower scheduling priority): the
server's interpreter is never busy with a training step, so clicks in every session are
answered by a short script run.  Play starts a thread per run (:func:`start_worker`) that
only waits on that process, chunk after chunk, while the page polls the run for progress;
the thread pauses the run (and saves) when its browser session ends.  Without a server
(AppTest) the trainer is in process and each fragment tick trains one chunk, as the tests
expect.

A run saved by an earlier session (a reload starts a new one) can be reopened from disk and
resumed (:mod:`ui.disk_runs`); while its settings are untouched it stays the page's run
(:func:`current`).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

import diffres
from diffres.frontends import frontend_label
from diffres.training import TrainConfig, Trainer
from diffres.training.remote import RemoteTrainer, TrainerProcessError, warm_up
from ui.data_sources import DataSource, dataset_loader, load_source
from ui.session import runs_root, session_dir, slug

MAX_STEP_RECORDS = 4000
#: Longest stretch of training between two checkpoint writes (a closed tab loses at most this).
AUTOSAVE_SECONDS = 30.0
#: Seconds of training per chunk (a fragment tick without a server, a loop turn of the thread).
CHUNK_SECONDS = 0.3
#: Seconds the run's thread rests between chunks, so a click's script run gets the run's lock.
WORKER_REST_SECONDS = 0.05
#: Scheduling niceness of training processes once their first training call is answered: the
#: lowest, for all their threads (diffres.training.remote), so the pages come first when they
#: want the processor (at niceness 10, two runs' four threads still took about a fifth of a busy
#: 2-core machine from the pages).
WORKER_NICENESS = 19

KEY_RUNS = "train_runs"
KEY_ACTIVE = "train_active"
#: ``(run_id, signature of the settings when it was reopened)`` of a run reopened from disk.
KEY_PINNED = "train_pinned"


@dataclass(eq=False)
class Run:
    """One training run of this session (held in ``st.session_state``)."""

    run_id: str
    number: int
    config: TrainConfig
    source: DataSource
    folder: Path
    trainer: Trainer | RemoteTrainer | None = None
    status: str = "ready"  # ready | playing | paused | finished | failed
    steps: list[tuple[int, float, float, float, float]] = field(default_factory=list)
    checkpoint: Path | None = None
    saved_step: int = -1
    final_card: dict[str, Any] | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    #: Held while the model is trained, saved or probed.  Streamlit may start a new script run
    #: (a click) while the previous one is still inside an optimiser step; two threads must
    #: never touch the model at once (an in-place update during another thread's backward
    #: pass breaks autograd).
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    #: ``(global_step, (importance, merged, bin_edges))`` of the last live probe.
    last_probe: tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = field(
        default=None, repr=False, compare=False
    )
    saved_at: float = 0.0
    #: ``time.monotonic()`` of the last Play (the live view redraws faster just after it).
    played_at: float = 0.0
    #: A run reopened from disk: the checkpoint it continues (and keeps writing to).
    resume_from: Path | None = None
    #: The thread that drives the run's training process while it plays (:func:`start_worker`).
    worker: threading.Thread | None = field(default=None, repr=False, compare=False)
    #: Train in a process of its own (under a Streamlit server; :func:`serving`).
    remote: bool = False
    #: The thread preparing the run's trainer before Play (:func:`prepare_ahead`).
    preparer: threading.Thread | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        c = self.config
        return f"#{self.number} {self.source.name} · {frontend_label(c.frontend, c.reduction_rate)} · {c.hop_ms:g} ms"

    @property
    def history(self) -> list:
        return self.trainer.history if self.trainer is not None else []

    @property
    def playing(self) -> bool:
        return self.status == "playing"

    @property
    def started(self) -> bool:
        return self.trainer is not None and self.trainer.global_step > 0

    @property
    def finished(self) -> bool:
        return self.trainer is not None and self.trainer.finished


def runs() -> dict[str, Run]:
    return st.session_state.setdefault(KEY_RUNS, {})


def active_run() -> Run | None:
    rid = st.session_state.get(KEY_ACTIVE)
    return runs().get(rid) if rid else None


def config_signature(config: TrainConfig, source: DataSource) -> str:
    return json.dumps([config.to_dict(), source.key], sort_keys=True)


def new_run(config: TrainConfig, source: DataSource) -> Run:
    """Register a fresh (not yet prepared) run and make it active."""
    reg = runs()
    number = 1 + max((r.number for r in reg.values()), default=0)
    rid = f"run{number:02d}-{uuid.uuid4().hex[:6]}"
    run = Run(rid, number, config, source, session_dir() / rid, remote=serving())
    reg[rid] = run
    st.session_state[KEY_ACTIVE] = rid
    return run


def archive(run: Run) -> None:
    """A run that is no longer active keeps its model, history and checkpoint for the table,
    the comparison chart and Inspect, but not the trainer's log-mel cache (about 60 MB for
    ``events``): archived runs are never trained again (their settings start a new run).
    A training process ends here once its checkpoint holds everything it learned."""
    pause(run)
    if run.worker is not None:
        run.worker.join(timeout=30.0)  # its last chunk and save
    tr = run.trainer
    if tr is not None:
        with locked(run, timeout=30.0) as got:
            if got:
                if isinstance(tr, RemoteTrainer) and tr.global_step in (0, run.saved_step):
                    tr.close()  # its process (and the cache in it) ends
                else:
                    with contextlib.suppress(TrainerProcessError):
                        tr.release_cache()
    run.last_probe = None


def ensure_active(config: TrainConfig, source: DataSource) -> Run:
    """The active run for these settings; a change of settings starts a new run (the old one
    is kept, saved, for comparison if it trained at all, else dropped)."""
    run = active_run()
    if run is not None and config_signature(run.config, run.source) == config_signature(config, source):
        return run
    if run is not None:
        if run.started:
            archive(run)
        else:
            runs().pop(run.run_id, None)
    return new_run(config, source)


def current(config: TrainConfig | None, source: DataSource | None) -> Run | None:
    """The run the page shows: a run reopened from disk while the settings are as they were
    when it was reopened (its own settings may differ), else the run for the settings
    (:func:`ensure_active`), or None while no data is chosen."""
    pinned = st.session_state.get(KEY_PINNED)
    signature = json.dumps([None if config is None else config.to_dict(), None if source is None else source.key])
    if pinned is not None:
        rid, when = pinned
        run = runs().get(rid)
        if run is not None and when in (None, signature):
            st.session_state[KEY_PINNED] = (rid, signature)
            st.session_state[KEY_ACTIVE] = rid
            return run
        st.session_state.pop(KEY_PINNED, None)
    if config is None or source is None:
        return None
    return ensure_active(config, source)


def prepare(run: Run) -> Trainer | RemoteTrainer:
    """Build the run's trainer (loads data, computes log-mel) once: in a process of its own
    for a :attr:`Run.remote` run.  A reopened run resumes from its checkpoint, and so does a
    run whose training process died (from its last checkpoint; from scratch without one)."""
    if _needs_trainer(run):
        with locked(run, timeout=600.0):
            if _needs_trainer(run):  # another thread may have built it while we waited
                lost = run.trainer is not None  # a dead training process
                start = run.checkpoint if lost else run.resume_from
                if start is not None:
                    trainer = _resumed(run, start)
                    run.checkpoint, run.saved_step = start, trainer.global_step
                    if not lost:
                        run.status = "finished" if trainer.finished else "paused"
                elif run.remote:
                    trainer = RemoteTrainer(run.config, dataset_loader(run.source), niceness=WORKER_NICENESS)
                else:
                    trainer = Trainer(run.config, load_source(run.source))
                if lost:
                    run.steps = [s for s in run.steps if s[0] <= trainer.global_step]
                    run.last_probe = None
                run.trainer = trainer
                run.folder.mkdir(parents=True, exist_ok=True)
                run.saved_at = time.time()
    assert run.trainer is not None
    return run.trainer


def prepare_ahead(run: Run) -> None:
    """Start building a remote run's trainer in the background (its process loads the data
    and computes the log-mel at a low priority) while the page waits for Play, so Play
    trains at once.  Only for a fresh remote run; a failure shows when Play prepares again."""
    if not run.remote or run.trainer is not None or run.preparer is not None or run.status != "ready":
        return

    def build() -> None:
        with contextlib.suppress(diffres.DiffResError, MemoryError, OSError):
            prepare(run)

    run.preparer = threading.Thread(target=build, name=f"diffres-prepare-{run.run_id}", daemon=True)
    run.preparer.start()


def _needs_trainer(run: Run) -> bool:
    tr = run.trainer
    return tr is None or (isinstance(tr, RemoteTrainer) and not tr.alive and not tr.cache_released)


def _resumed(run: Run, checkpoint: Path) -> Trainer | RemoteTrainer:
    if run.remote:
        return RemoteTrainer.resume(checkpoint, dataset_loader(run.source), niceness=WORKER_NICENESS)
    return Trainer.resume(checkpoint, load_source(run.source), device="cpu")


def reset(run: Run) -> Run:
    """A fresh run with the same settings (the old one stays in the table if it trained)."""
    if run.started:
        archive(run)
    else:
        runs().pop(run.run_id, None)
    st.session_state[KEY_ACTIVE] = None
    return new_run(run.config, run.source)


@contextmanager
def locked(run: Run, timeout: float = 60.0):
    """Hold the run's lock (waiting up to ``timeout`` seconds for a step in another thread);
    yields whether it was acquired."""
    got = run.lock.acquire(timeout=timeout)
    try:
        yield got
    finally:
        if got:
            run.lock.release()


def checkpoint_path(run: Run) -> Path:
    if run.resume_from is not None:
        return run.resume_from
    return run.folder / f"{slug(run.source.name)}-{run.config.frontend}-{run.number:02d}.pt"


def describe_error(err: BaseException) -> str:
    """The real error, for people: the library's message, an OSError's reason (with the file
    name, never a server folder), memory, or the exception's type and message."""
    if isinstance(err, diffres.DiffResError):
        return str(err)
    if isinstance(err, MemoryError):
        return "the server ran out of memory (try fewer clips per class, a smaller batch or a narrower model)"
    if isinstance(err, OSError):
        name = Path(str(err.filename)).name if err.filename else ""
        return f"{err.strerror or err}" + (f" ({name})" if name else "")
    return f"{type(err).__name__}: {err}"


def _fail(run: Run, err: BaseException) -> None:
    """Stop ``run`` on ``err``, keeping the trainer; try to save what it has unless saving is
    what failed.  Called with the run's lock held."""
    run.status = "failed"
    run.error = describe_error(err)
    if isinstance(err, TrainerProcessError):  # nothing left to save: the checkpoint on disk is the run
        run.error += " Press Play to continue from it."
        return
    if isinstance(err, OSError):  # saving is what failed (training reads nothing from disk)
        run.error = (
            f"Could not save the checkpoint: {run.error}. What the run learned is kept here: free some space, then "
            "press Play or Save checkpoint."
        )
        return
    try:
        _save(run, False)
    except (OSError, diffres.DiffResError) as save_err:
        run.error += f" The checkpoint could not be saved either: {describe_error(save_err)}"


def _card_extra(run: Run) -> dict[str, Any]:
    """What the app adds to the trainer's card: the run's label and ids, and for the user's
    own data its name (the trainer only knows the folder it was read from)."""
    extra: dict[str, Any] = {
        "run": run.label,
        "session_run_id": run.run_id,
        "data_kind": run.source.kind,
        "data_key": run.source.key,
        "complete": bool(run.finished),
    }
    if run.source.kind != "builtin":
        extra["dataset"] = run.source.name
        with contextlib.suppress(ValueError):  # where the data lives (a reopened run finds it again)
            extra["data_ref"] = Path(run.source.path).resolve().relative_to(runs_root().resolve()).as_posix()
    return extra


def save(run: Run, *, final: bool = False) -> Path | None:
    """Write the run's checkpoint (+ model card JSON) if it changed since the last save.

    ``final`` evaluates validation and test splits for the card (a few seconds); otherwise
    the card carries the last epoch's validation accuracy.  A failed save (a full disk) is
    recorded in ``run.error`` (the previous checkpoint stays intact) instead of raising."""
    with locked(run) as got:
        return _save_or_note(run, final) if got else run.checkpoint


def _save_or_note(run: Run, final: bool) -> Path | None:
    try:
        path = _save(run, final)
    except (OSError, diffres.DiffResError) as err:
        run.status = "failed" if run.status == "playing" else run.status
        run.error = f"Could not save the checkpoint: {describe_error(err)}"
        return run.checkpoint
    if run.error and run.error.startswith("Could not save"):
        run.error = None
    return path


def _save(run: Run, final: bool) -> Path | None:
    tr = run.trainer
    if tr is None or tr.global_step == 0:
        return run.checkpoint
    if tr.global_step == run.saved_step and not (final and run.final_card is None):
        return run.checkpoint
    path = checkpoint_path(run)
    card = tr.save(path, card_extra=_card_extra(run), evaluate=final and not tr.cache_released)
    if final:
        run.final_card = card
    run.checkpoint = path
    run.saved_step = tr.global_step
    run.saved_at = time.time()
    return path


def pause(run: Run) -> None:
    """Stop playing and save, without waiting: when another thread is inside a chunk right
    now, that chunk stops after its current step and saves (it sees the status change); a
    run's thread (:func:`start_worker`) saves as it ends."""
    if run.status == "playing":
        run.status = "paused"
    if in_worker(run):
        if run.trainer is not None:
            run.trainer.request_stop()  # the chunk in flight ends after its current step
        return
    if run.lock.acquire(blocking=False):
        try:
            _save_or_note(run, run.finished)
        finally:
            run.lock.release()
    elif run.trainer is not None:
        run.trainer.request_stop()  # the chunk in flight ends after its current step


def train_chunk(run: Run, seconds: float = CHUNK_SECONDS, *, wait: bool = False, one_step: bool = False) -> list:
    """Run about ``seconds`` of training (at least one step); save at epoch ends, on pause
    and every :data:`AUTOSAVE_SECONDS`; finish (and save the final card) at the last step.
    A failure stops the run with its message (``run.status == "failed"``) instead of raising.

    ``wait``: when another script run of this session is inside a step, wait for it (Step
    button) instead of skipping this chunk (timer ticks).  ``one_step``: exactly one
    optimiser step (the Step button; the first one also finishes the energy-prior fit).
    Returns the step records."""
    tr = prepare(run)
    if not run.lock.acquire(timeout=60.0) if wait else not run.lock.acquire(blocking=False):
        return []  # another script run of this session is training right now
    try:
        return _train_chunk(run, tr, seconds, one_step)
    except (diffres.DiffResError, RuntimeError, MemoryError, OSError) as err:
        _fail(run, err)
        return []
    finally:
        run.lock.release()


def _train_chunk(run: Run, tr: Trainer | RemoteTrainer, seconds: float, one_step: bool = False) -> list:
    if tr.finished:
        run.status = "finished"
        return []
    recs = [tr.step()] if one_step else tr.run_for(seconds)
    run.steps.extend((r.global_step, r.loss, r.accuracy, r.guide_loss, r.activeness) for r in recs)
    if len(run.steps) > MAX_STEP_RECORDS:  # keep the curve light: thin the older half
        half = len(run.steps) // 2
        run.steps[:half] = run.steps[:half:2]
    if tr.finished:
        run.status = "finished"
        _save(run, True)
    elif (
        any(r.epoch_end is not None for r in recs)
        or run.status != "playing"
        or time.time() - run.saved_at > AUTOSAVE_SECONDS
    ):
        _save(run, False)  # an epoch ended, a pause arrived during this chunk, or it is time to autosave
    return recs


def _session_alive() -> Callable[[], bool] | None:
    """A check that this script run's browser session is still open, or None without a
    Streamlit server (AppTest), where training runs in the page's fragment instead."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    runtime = Runtime.instance() if Runtime.exists() else None
    if ctx is None or type(runtime) is not Runtime:  # AppTest's runtime is a stand-in (a mock)
        return None
    session_id = ctx.session_id
    return lambda: runtime.is_active_session(session_id)


def serving() -> bool:
    """Whether this script run is served by a Streamlit server (not AppTest): runs then train
    in processes of their own, driven by a thread per run."""
    return _session_alive() is not None


def warm_up_training() -> None:
    """Start the training processes' fork server in the background (once per server), so the
    first Play does not wait for its torch import."""
    global _warming
    if _warming is None and serving():
        _warming = threading.Thread(target=warm_up, name="diffres-warm-trainers", daemon=True)
        _warming.start()


_warming: threading.Thread | None = None


def start_worker(run: Run) -> bool:
    """Drive ``run`` (status ``playing``) from a thread of its own until it finishes, fails,
    is paused or its session ends; True when a thread drives it (started now or before).
    False without a server (AppTest), where the page's fragment trains instead."""
    if in_worker(run):
        return True
    alive = _session_alive()
    if alive is None or not run.remote:
        return False
    run.worker = threading.Thread(target=_work, args=(run, alive), name=f"diffres-train-{run.run_id}", daemon=True)
    run.worker.start()
    return True


def in_worker(run: Run) -> bool:
    """Whether a thread is driving ``run``'s training now."""
    return run.worker is not None and run.worker.is_alive()


def _work(run: Run, alive: Callable[[], bool]) -> None:
    """The run's thread: it only waits for the training process (the interpreter lock stays
    free for the pages), and saves when the run stops playing."""
    try:
        prepare(run)
    except (diffres.DiffResError, MemoryError, OSError) as err:
        run.status, run.error = "failed", describe_error(err)
        return
    while True:
        while run.playing:
            if not alive():  # the tab was closed: keep what was learned, stop using the processor
                run.status = "paused"
                break
            train_chunk(run)
            time.sleep(WORKER_REST_SECONDS)
        if run.status != "failed":  # a failure has saved what it could and says why
            save(run, final=run.finished)
        if not run.playing:  # Play pressed again during the save: carry on
            return


def probe(run: Run):
    """The probe clip's importance, merged log-mel and bin edges under the current weights,
    or the last ones computed while another thread is inside a step (never waits, so a click
    is answered at once).  A training process sends one after every chunk."""
    tr = run.trainer
    if isinstance(tr, RemoteTrainer) and tr.last_probe is not None:
        run.last_probe = tr.last_probe
        if tr.last_probe[0] == tr.global_step:
            return run.last_probe
    if tr is not None and run.lock.acquire(blocking=False):
        try:
            run.last_probe = (tr.global_step, tr.probe())
        except TrainerProcessError:
            pass  # the process is gone: the last probe stays, the run's error says why
        finally:
            run.lock.release()
    if run.last_probe is None:
        return None
    return run.last_probe


def step_dicts(run: Run) -> list[dict]:
    return [dict(global_step=s[0], loss=s[1], accuracy=s[2], guide_loss=s[3], activeness=s[4]) for s in run.steps]


def run_table(reg: dict[str, Run] | None = None) -> list[dict]:
    """One row per run that has a trainer: settings, progress and accuracy."""
    rows = []
    for run in (reg or runs()).values():
        tr = run.trainer
        if tr is None or (run.status == "ready" and tr.global_step == 0):  # not started (perhaps prepared ahead)
            continue
        h = tr.history
        vals = [r.val_accuracy for r in h if np.isfinite(r.val_accuracy)]
        test = ((run.final_card or {}).get("metrics") or {}).get("test_accuracy")
        per_epoch = (sum(r.seconds for r in h) / len(h)) if h else float("nan")
        rows.append(
            {
                "run": run.label,
                "status": run.status,
                "data": run.source.name,
                "front-end": run.config.frontend,
                "rate": run.config.reduction_rate,
                "hop (ms)": run.config.hop_ms,
                "lr": run.config.learning_rate,
                "seed": run.config.seed,
                "epochs": f"{tr.epoch}/{run.config.epochs}",
                "val acc (last)": vals[-1] if vals else float("nan"),
                "val acc (best)": max(vals) if vals else float("nan"),
                "test acc": float(test) if isinstance(test, (int, float)) else float("nan"),
                "s / epoch": round(per_epoch, 1) if np.isfinite(per_epoch) else float("nan"),
                "train s": round(tr.elapsed_seconds, 1),
                "params": tr.n_parameters,
            }
        )
    return rows


def saved_runs() -> list[Run]:
    """Runs of this session that have a checkpoint on disk (newest first)."""
    return sorted(
        (r for r in runs().values() if r.checkpoint is not None and Path(r.checkpoint).is_file()),
        key=lambda r: -r.number,
    )
