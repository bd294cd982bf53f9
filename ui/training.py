"""Session-scoped training state for the Train and Inspect pages.

A :class:`Run` holds one :class:`diffres.training.Trainer` (the model, optimiser, cached
log-mel and per-epoch history) in ``st.session_state``, so training survives reruns and page
switches within the session and is never re-created by a rerun.  Every run writes its
checkpoints into a per-session folder (``~/.cache/diffres-explorer/runs/<session>/<run>/``,
or ``$DIFFRES_RUNS_DIR/<session>/<run>/``): after every finished epoch, on pause, and with a
full model card (validation and test accuracy) when training finishes.  Stopping therefore
loses at most the steps since the last epoch end or pause.

Also here: the user's own data for training, either Teachable-Machine-style class "buckets"
(uploads and microphone recordings, kept as 16 kHz clips in session state and written to a
class-folder tree when training starts) or a zip of class folders; both are read back with
:func:`diffres.datasets.load_folder_dataset` so they get the library's checks and splits.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np
import streamlit as st

import diffres
from diffres.checkpoints import save_checkpoint
from diffres.training import TrainConfig, Trainer

#: Environment variable that moves the per-session runs folder (tests).
RUNS_DIR_ENV = "DIFFRES_RUNS_DIR"
DEFAULT_RUNS_ROOT = Path.home() / ".cache" / "diffres-explorer" / "runs"
#: Fewest clips per class before training on buckets is allowed (2 train, 1 val, 1 test).
MIN_PER_CLASS = 4
#: Clips per class we suggest for a useful model.
GOOD_PER_CLASS = 10
#: Length each bucket sample is cut to (recordings longer than two pieces are split).
PIECE_SECONDS = 1.0
SAMPLE_RATE = 16000
MAX_STEP_RECORDS = 4000
#: Longest stretch of training between two checkpoint writes (a closed tab loses at most this).
AUTOSAVE_SECONDS = 30.0
#: Seconds of training per fragment tick.
CHUNK_SECONDS = 0.3

KEY_RUNS = "train_runs"
KEY_ACTIVE = "train_active"
KEY_BUCKETS = "train_buckets"
KEY_SESSION = "train_session_id"


# --------------------------------------------------------------------------- folders


def session_id() -> str:
    ss = st.session_state
    if KEY_SESSION not in ss:
        ss[KEY_SESSION] = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]
    return ss[KEY_SESSION]


def session_dir() -> Path:
    root = Path(os.environ.get(RUNS_DIR_ENV) or DEFAULT_RUNS_ROOT).expanduser()
    path = root / session_id()
    path.mkdir(parents=True, exist_ok=True)
    return path


def class_folder(name: str) -> str:
    """A safe folder name for a class that keeps what people typed where possible (spaces too)."""
    s = re.sub(r"[^\w .-]+", "_", str(name)).strip(" ._")
    return s[:60] or "class"


def slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-._")
    return s[:60] or "x"


# --------------------------------------------------------------------------- data sources


@dataclass
class DataSource:
    """Where a run's clips come from.

    Attributes:
        kind: ``"builtin"``, ``"zip"`` or ``"buckets"``.
        name: built-in name, zip file name or ``"my classes"``.
        key: cache key (name + options, or content digest).
        path: built-in name, or the zip / folder on disk that ``load_folder_dataset`` reads.
        max_files_per_class: quick-run subset (built-ins).
        description: one line for people.
    """

    kind: str
    name: str
    key: str
    path: str
    max_files_per_class: Optional[int] = None
    description: str = ""


@st.cache_resource(max_entries=6, show_spinner=False)
def builtin_dataset(name: str, max_files_per_class: Optional[int]) -> "diffres.datasets.AudioDataset":
    """A built-in dataset (read-only arrays, shared across sessions; trainers never mutate it)."""
    from diffres.datasets import load_dataset

    return load_dataset(name, max_files_per_class=max_files_per_class)


@st.cache_resource(max_entries=8, show_spinner=False, scope="session")
def folder_dataset(key: str, path: str) -> "diffres.datasets.AudioDataset":
    """A user zip or bucket folder, read once per content digest (per session)."""
    from diffres.datasets import load_folder_dataset

    return load_folder_dataset(path)


def load_source(source: DataSource):
    if source.kind == "builtin":
        return builtin_dataset(source.path, source.max_files_per_class)
    return folder_dataset(source.key, source.path)


def save_zip(data: bytes, name: str) -> tuple[str, Path]:
    """Store an uploaded zip in the session folder; returns (digest, path)."""
    digest = hashlib.sha1(data).hexdigest()[:16]
    folder = session_dir() / "uploads"
    folder.mkdir(exist_ok=True)
    path = folder / f"{digest}-{slug(Path(name).stem)}.zip"
    if not path.is_file():
        path.write_bytes(data)
    return digest, path


# --------------------------------------------------------------------------- buckets


@dataclass(eq=False)
class Sample:
    """One clip in a class bucket (16 kHz mono float32)."""

    digest: str
    name: str
    samples: np.ndarray
    origin: str  # "upload" or "microphone"


@dataclass(eq=False)
class Bucket:
    """One of the user's classes: a stable id (widget keys), a name and its clips."""

    bucket_id: str
    name: str
    samples: list = field(default_factory=list)


def buckets() -> list[Bucket]:
    """The user's classes in order (created with two empty classes, Teachable-Machine style)."""
    ss = st.session_state
    if KEY_BUCKETS not in ss:
        ss[KEY_BUCKETS] = [Bucket("b1", "background"), Bucket("b2", "my sound")]
    return ss[KEY_BUCKETS]


def add_bucket() -> Bucket:
    b = buckets()
    n = 1 + max((int(x.bucket_id[1:]) for x in b), default=0)
    names = {x.name for x in b}
    name = next(f"class {k}" for k in range(len(b) + 1, len(b) + 100) if f"class {k}" not in names)
    bucket = Bucket(f"b{n}", name)
    b.append(bucket)
    return bucket


def split_pieces(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, seconds: float = PIECE_SECONDS) -> list[np.ndarray]:
    """Cut a clip into ``seconds``-long pieces when it holds at least two; (nearly) silent
    pieces are dropped.  Shorter clips come back whole."""
    n = int(round(seconds * sample_rate))
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if x.size < 2 * n:
        return [x] if x.size else []
    pieces = [x[i : i + n] for i in range(0, x.size - n + 1, n)]
    return [p for p in pieces if float(np.max(np.abs(p))) > 1e-4]


def add_to_bucket(bucket: Bucket, data: bytes, name: str, origin: str) -> int:
    """Decode ``data`` and add it (cut into pieces) to ``bucket``; returns pieces added.

    Raises :class:`diffres.AudioError` for unreadable audio."""
    samples, _ = diffres.load_audio(data, SAMPLE_RATE, max_seconds=30.0)
    pieces = split_pieces(samples)
    if not pieces:
        raise diffres.AudioError(f"{name!r} is silent; record or upload a clip with sound in it.")
    have = {s.digest for s in bucket.samples}
    added = 0
    for k, p in enumerate(pieces):
        digest = hashlib.sha1(p.tobytes()).hexdigest()[:16]
        if digest in have:
            continue
        label = name if len(pieces) == 1 else f"{name} [{k + 1}/{len(pieces)}]"
        bucket.samples.append(Sample(digest, label, p, origin))
        have.add(digest)
        added += 1
    return added


def buckets_ready(b: list[Bucket] | None = None) -> tuple[bool, str]:
    """(ready, hint): at least two uniquely named classes with :data:`MIN_PER_CLASS` clips each."""
    b = buckets() if b is None else b
    if len(b) < 2:
        return False, "Add at least two classes."
    names = [class_folder(x.name).lower() for x in b]
    if len(set(names)) != len(names):
        return False, "Two classes have the same name; give every class its own name."
    short = [f"'{x.name}' needs {MIN_PER_CLASS - len(x.samples)} more" for x in b if len(x.samples) < MIN_PER_CLASS]
    if short:
        return False, (f"Every class needs at least {MIN_PER_CLASS} clips before training ("
                       + ", ".join(short) + f"). {GOOD_PER_CLASS}+ per class work better.")
    return True, ""


def buckets_source(b: list[Bucket] | None = None) -> DataSource:
    """Write the buckets as ``<session>/buckets/<digest>/<class>/<clip>.wav`` and describe them."""
    from diffres.audio import wav_bytes

    b = buckets() if b is None else b
    h = hashlib.sha1()
    for x in b:
        h.update(x.name.encode() + b"\0")
        for s in x.samples:
            h.update(s.digest.encode())
    digest = h.hexdigest()[:16]
    root = session_dir() / "buckets" / digest
    if not (root / ".complete").is_file():
        for x in b:
            d = root / class_folder(x.name)
            d.mkdir(parents=True, exist_ok=True)
            for s in x.samples:
                (d / f"{s.digest}.wav").write_bytes(wav_bytes(s.samples, SAMPLE_RATE))
        (root / ".complete").write_text("ok")
    counts = ", ".join(f"{x.name}: {len(x.samples)}" for x in b)
    return DataSource("buckets", "my classes", f"buckets:{digest}", str(root), None, f"Your recordings and uploads ({counts}).")


# --------------------------------------------------------------------------- runs


@dataclass(eq=False)
class Run:
    """One training run of this session (held in ``st.session_state``)."""

    run_id: str
    number: int
    config: TrainConfig
    source: DataSource
    folder: Path
    trainer: Optional[Trainer] = None
    status: str = "ready"  # ready | playing | paused | finished | failed
    steps: list = field(default_factory=list)
    checkpoint: Optional[Path] = None
    saved_step: int = -1
    final_card: Optional[dict] = None
    error: Optional[str] = None
    created: float = field(default_factory=time.time)
    #: Held while the model is trained, saved or probed.  Streamlit may start a new script run
    #: (a click) while the previous one is still inside an optimiser step; two threads must
    #: never touch the model at once (an in-place update during another thread's backward
    #: pass breaks autograd).
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    #: ``(global_step, (importance, merged, bin_edges))`` of the last live probe.
    last_probe: Optional[tuple] = field(default=None, repr=False, compare=False)
    saved_at: float = 0.0

    @property
    def label(self) -> str:
        c = self.config
        fe = c.frontend if c.frontend in ("full",) else f"{c.frontend} {c.reduction_rate:g}"
        return f"#{self.number} {self.source.name} · {fe} · {c.hop_ms:g} ms"

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

    @property
    def dataset(self):
        return self.trainer.dataset if self.trainer is not None else None


def runs() -> dict[str, Run]:
    return st.session_state.setdefault(KEY_RUNS, {})


def active_run() -> Optional[Run]:
    rid = st.session_state.get(KEY_ACTIVE)
    return runs().get(rid) if rid else None


def config_signature(config: TrainConfig, source: DataSource) -> str:
    return json.dumps([config.to_dict(), source.key], sort_keys=True)


def new_run(config: TrainConfig, source: DataSource) -> Run:
    """Register a fresh (not yet prepared) run and make it active."""
    reg = runs()
    number = 1 + max((r.number for r in reg.values()), default=0)
    rid = f"run{number:02d}-{uuid.uuid4().hex[:6]}"
    run = Run(rid, number, config, source, session_dir() / rid)
    reg[rid] = run
    st.session_state[KEY_ACTIVE] = rid
    return run


def archive(run: Run) -> None:
    """A run that is no longer active keeps its model, history and checkpoint for the table,
    the comparison chart and Inspect, but not the trainer's log-mel cache (about 60 MB for
    ``events``): archived runs are never trained again (their settings start a new run)."""
    pause(run)
    tr = run.trainer
    if tr is not None and isinstance(getattr(tr, "_features", None), dict):
        with locked(run, timeout=30.0) as got:
            if got:
                tr._features = {k: v[:0] for k, v in tr._features.items()}  # library has no public "free"
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


def prepare(run: Run) -> Trainer:
    """Build the run's trainer (loads data, computes log-mel) once."""
    if run.trainer is None:
        with locked(run, timeout=600.0):
            if run.trainer is None:  # another thread may have built it while we waited
                dataset = load_source(run.source)
                run.trainer = Trainer(run.config, dataset)
                run.folder.mkdir(parents=True, exist_ok=True)
                run.saved_at = time.time()
    return run.trainer


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
    return run.folder / f"{slug(run.source.name)}-{run.config.frontend}-{run.number:02d}.pt"


def _light_card(run: Run) -> dict:
    tr = run.trainer
    last = tr.history[-1] if tr.history else None
    val = None if last is None or not np.isfinite(last.val_accuracy) else round(float(last.val_accuracy), 4)
    return {
        "dataset": tr.dataset_name if run.source.kind == "builtin" else run.source.name,
        "metrics": {"val_accuracy": val, "test_accuracy": None},
        "train_seconds": round(tr.elapsed_seconds, 2),
        "epochs": tr.epoch,
        "global_step": tr.global_step,
        "seed": run.config.seed,
        "data_source": getattr(tr.dataset, "source_description", "") or run.source.description,
        "n_train": tr.n_train,
        "training": run.config.to_dict(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _extra(run: Run) -> dict:
    return {"run": run.label, "session_run_id": run.run_id, "data_kind": run.source.kind,
            "complete": bool(run.finished)}


def save(run: Run, *, final: bool = False) -> Optional[Path]:
    """Write the run's checkpoint (+ model card JSON) if it changed since the last save.

    ``final`` evaluates validation and test splits for the card (a few seconds); otherwise
    the card carries the last epoch's validation accuracy."""
    with locked(run) as got:
        return _save(run, final) if got else run.checkpoint


def _save(run: Run, final: bool) -> Optional[Path]:
    tr = run.trainer
    if tr is None or tr.global_step == 0:
        return run.checkpoint
    if tr.global_step == run.saved_step and not (final and run.final_card is None):
        return run.checkpoint
    path = checkpoint_path(run)
    if final:
        card = tr.save(path, card_extra=_extra(run))
        if run.source.kind != "builtin":
            card["dataset"] = run.source.name
        run.final_card = card
    else:
        save_checkpoint(path, tr.model, card={**_light_card(run), **_extra(run)}, training_state=tr.training_state())
    run.checkpoint = path
    run.saved_step = tr.global_step
    run.saved_at = time.time()
    return path


def pause(run: Run) -> None:
    """Stop playing and save, without waiting: when another script run is inside a chunk right
    now, that chunk stops after its current step and saves (it sees the status change)."""
    if run.status == "playing":
        run.status = "paused"
    if run.lock.acquire(blocking=False):
        try:
            _save(run, False)
        finally:
            run.lock.release()
    elif run.trainer is not None:
        run.trainer.request_stop()  # the chunk in flight ends after its current step


def train_chunk(run: Run, seconds: float = CHUNK_SECONDS, *, wait: bool = False) -> list:
    """Run about ``seconds`` of training (at least one step); save at epoch ends, on pause
    and every :data:`AUTOSAVE_SECONDS`; finish (and save the final card) at the last step.

    ``wait``: when another script run of this session is inside a step, wait for it (Step
    button) instead of skipping this chunk (timer ticks).  Returns the step records."""
    tr = prepare(run)
    if not run.lock.acquire(timeout=60.0) if wait else not run.lock.acquire(blocking=False):
        return []  # another script run of this session is training right now
    try:
        return _train_chunk(run, tr, seconds)
    finally:
        run.lock.release()


def _train_chunk(run: Run, tr: Trainer, seconds: float) -> list:
    if tr.finished:
        run.status = "finished"
        return []
    recs = tr.run_for(seconds)
    run.steps.extend((r.global_step, r.loss, r.accuracy, r.guide_loss, r.activeness) for r in recs)
    if len(run.steps) > MAX_STEP_RECORDS:  # keep the curve light: thin the older half
        half = len(run.steps) // 2
        run.steps[:half] = run.steps[:half:2]
    if tr.finished:
        run.status = "finished"
        _save(run, True)
    elif (any(r.epoch_end is not None for r in recs) or run.status != "playing"
          or time.time() - run.saved_at > AUTOSAVE_SECONDS):
        _save(run, False)  # an epoch ended, a pause arrived during this chunk, or it is time to autosave
    return recs


def probe(run: Run):
    """The probe clip's importance, merged log-mel and bin edges under the current weights,
    or the last ones computed while another script run is inside a step (never waits, so a
    click is answered at once)."""
    if run.lock.acquire(blocking=False):
        try:
            run.last_probe = (run.trainer.global_step, run.trainer.probe())
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
        if tr is None:
            continue
        h = tr.history
        vals = [r.val_accuracy for r in h if np.isfinite(r.val_accuracy)]
        test = ((run.final_card or {}).get("metrics") or {}).get("test_accuracy")
        per_epoch = (sum(r.seconds for r in h) / len(h)) if h else float("nan")
        rows.append({
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
            "params": tr.model.n_parameters(),
        })
    return rows


def saved_runs() -> list[Run]:
    """Runs of this session that have a checkpoint on disk (newest first)."""
    return sorted((r for r in runs().values() if r.checkpoint is not None and Path(r.checkpoint).is_file()),
                  key=lambda r: -r.number)
