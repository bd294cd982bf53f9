"""Training on a user's corpus: streamed from disk, on CPU or CUDA, one process or many.

:class:`CorpusTrainer` is the large-corpus sibling of :class:`~diffres.training.Trainer`
(which caches every clip's log-mel in memory).  It reads a
:class:`~diffres.datasets.streaming.CorpusIndex` through ``DataLoader`` workers
(:class:`~diffres.datasets.streaming.StreamingAudioDataset`), trains the same
:class:`~diffres.models.AudioClassifier` with the same optimiser, schedule and loss
(:mod:`~diffres.training.steps`), and under ``torchrun`` runs data-parallel
(:mod:`~diffres.training.distributed`): a ``DistributedSampler`` reseeded every epoch
(``set_epoch``), ``DistributedDataParallel``, global-batch BatchNorm, metrics summed over
ranks, and only rank 0 writing.

The recipe is the in-memory trainer's: before the first step DiffRes's score network is
fitted to the energy prior (:func:`~diffres.training.prior.fit_score_prior`, on streamed
batches, its gradients averaged over ranks), and every step's batch is augmented as
``config`` says (:func:`~diffres.training.steps.augment_batch`).

N processes with a global batch ``B`` train the same weights as one process with ``B`` (up
to float rounding) when augmentation is off (:meth:`TrainConfig.without_augmentation`):
every step's global batch is the same set of clips, BatchNorm sees the whole of it, the
prior's fit sees the same global batches, and the classifier's dropout mask is a hash of
``(seed, epoch, clip)``, not of the rank.  With augmentation on, each rank augments its own
share of the batch from its own seeded stream (mixup pairs clips within the share), as
data-parallel training does: the same recipe and distributions, other random draws.  One
process draws what the in-memory trainer draws at the same step.

A stop request (:meth:`CorpusTrainer.request_stop`, e.g. from a SIGTERM handler) ends
training after the current step, at the same step on every rank; :meth:`CorpusTrainer.save`
then writes a checkpoint that :meth:`CorpusTrainer.resume` continues mid-epoch to the
weights of an uninterrupted run.

The module is about 760 lines on purpose, for the reason :mod:`~diffres.training.trainer` gives:
the corpus trainer's state (loaders and samplers, the distributed context, AMP, optimiser,
schedule position, history, skipped files, persistence and resume) is one object driven step
by step, and what is not that state already lives elsewhere: the loss and parameter groups in
:mod:`~diffres.training.steps`, the process group and BatchNorm in
:mod:`~diffres.training.distributed`, decoding and the feature cache in
:mod:`~diffres.datasets.streaming`, the card's layout in :mod:`~diffres.training.records`.

Example::

    index = scan_corpus("my_corpus/")
    trainer = CorpusTrainer(TrainConfig(dataset="my_corpus", epochs=3), index)
    trainer.fit()
    trainer.save("out/my_corpus_diffres_r75.pt")     # every rank calls it; rank 0 writes
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from ..audio import SAMPLE_RATE
from ..checkpoints import load_checkpoint, save_checkpoint
from ..core import FrontendOutput
from ..datasets.streaming import (
    CorpusIndex,
    StreamBatch,
    StreamingAudioDataset,
    collate_stream,
    estimate_clip_seconds,
)
from ..errors import CheckpointError, DatasetError, ParameterError
from ..features import LOG_FLOOR
from ..models import AudioClassifier
from .config import TrainConfig
from .distributed import AMP_MODES, DistContext, amp_settings, sync_batchnorm
from .prior import fit_score_prior, prior_steps
from .records import EpochRecord, card_metrics, run_card
from .schedule import RunPosition, learning_rate_at
from .steps import PRIOR_STREAM, augment_batch, derived_generator, parameter_groups, training_loss

__all__ = ["CorpusEval", "CorpusOptions", "CorpusTrainer", "default_checkpoint_name", "dropout_keep_mask"]

Note = Callable[[str], None]
_MAX_LISTED_FAILURES = 1000  # unreadable files listed in memory (all are counted)
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class CorpusOptions:
    """How a corpus is read and computed (the model's settings are the :class:`TrainConfig`'s).

    Attributes:
        clip_seconds: clip length the model trains on; None = the median of 64 sampled
            training clips (:func:`~diffres.datasets.streaming.estimate_clip_seconds`).
        num_workers: ``DataLoader`` worker processes per rank (0 = decode in the training
            process).
        cache_dir: folder of the on-disk log-mel cache, or None for none.
        resample: resample clips at another rate (True) or skip them as failures (False).
        amp: one of :data:`~diffres.training.distributed.AMP_MODES` (CUDA only).
        dtype: ``"float32"``, or ``"float64"`` for exact comparisons (tests).
    """

    clip_seconds: float | None = None
    num_workers: int = 2
    cache_dir: str | None = None
    resample: bool = True
    amp: str = "auto"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.amp not in AMP_MODES:
            raise ParameterError(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}.")
        if self.dtype not in _DTYPES:
            raise ParameterError(f"dtype must be one of {', '.join(_DTYPES)}, got {self.dtype!r}.")
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ParameterError(f"num_workers must be a whole number >= 0, got {self.num_workers!r}.")


@dataclass(frozen=True)
class CorpusEval:
    """Metrics of one split, summed over every rank's shard (the whole split).

    Attributes:
        accuracy: share of correct top-1 predictions (NaN when ``n == 0``).
        loss: mean cross-entropy (NaN when ``n == 0``).
        n: clips evaluated (unreadable ones excluded).
        per_class: class -> accuracy (NaN for a class without clips).
        confusion: ``[C, C]`` counts, rows true class, columns predicted.
    """

    accuracy: float
    loss: float
    n: int
    per_class: dict[str, float]
    confusion: np.ndarray


def dropout_keep_mask(keys: Tensor, n_units: int, p: float) -> Tensor:
    """Inverted-dropout multipliers ``[B, n_units]`` from per-clip integer ``keys`` ``[B]``.

    Each value is a counter-based hash of ``(key, unit)``, so a clip gets the same mask in
    whichever process and batch position it lands: 0 with probability ``p``, else
    ``1 / (1 - p)``.

    Example:
        >>> m = dropout_keep_mask(torch.arange(4), 1000, 0.25)
        >>> m.shape, sorted(set(m.flatten().tolist())), abs(float((m == 0).float().mean()) - 0.25) < 0.03
        (torch.Size([4, 1000]), [0.0, 1.3333333333333333], True)
    """
    x = keys.to(torch.int64)[:, None] * 0x9E3779B1 + torch.arange(n_units, device=keys.device, dtype=torch.int64)
    for shift, mult in ((31, 0x7FB5D329728EA185), (27, 0x81DADEF4BC2DD44D), (33, 0)):  # splitmix-style rounds
        x = x ^ ((x >> shift) & ((1 << (64 - shift)) - 1))
        if mult:
            x = x * (mult - (1 << 64) if mult >= 1 << 63 else mult)
    u = ((x >> 11) & ((1 << 24) - 1)).to(torch.float64) / float(1 << 24)
    return (u >= p).to(torch.float64) / (1.0 - p)


class _TrainForward(nn.Module):
    """The classifier's training forward with per-clip dropout masks (what DDP wraps)."""

    def __init__(self, model: AudioClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, log_mel: Tensor, keys: Tensor, reduction_rate: float) -> tuple[Tensor, FrontendOutput]:
        out = self.model.frontend(log_mel, reduction_rate=reduction_rate)
        emb = self.model.classifier.embed(out.features)  # [B, D]
        p = float(self.model.classifier.dropout.p)
        if p > 0:
            emb = emb * dropout_keep_mask(keys, emb.shape[1], p).to(emb.dtype)
        return self.model.classifier.head(emb), out


_HELD = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM in this thread while ``DataLoader`` workers start.

    Ctrl-C reaches the whole process group, and a scheduler's SIGTERM often does too: the
    training process decides what happens (it stops after its step and saves) and ends its
    workers itself, so a worker ignores both (:func:`_worker_init`).  A worker inherits this
    mask, so a signal that arrives before it has switched them off waits, and is then
    dropped, instead of killing it (PyTorch's worker handler would); this process gets its
    own signal when the block ends.  A no-op where the platform has no signal masks."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # a worker decodes one clip at a time; threads would fight
    for sig in _HELD:  # the training process handles these (_signals_held)
        signal.signal(sig, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)


class _Passes(Sampler[int]):
    """``total`` indices from successive epochs of a ``DistributedSampler`` (reseeded with
    ``set_epoch``), each pass cut to its first ``per_pass``: whole batches, so that the k-th
    global batch of a pass is the same set of clips for any number of processes."""

    def __init__(self, sampler: DistributedSampler, per_pass: int, total: int) -> None:
        self.sampler, self.per_pass, self.total = sampler, per_pass, total

    def __iter__(self) -> Iterator[int]:
        left = self.total
        for epoch in itertools.count():
            if left <= 0:
                return
            self.sampler.set_epoch(epoch)
            take = min(self.per_pass, left)
            yield from itertools.islice(iter(self.sampler), take)
            left -= take

    def __len__(self) -> int:
        return self.total


class _From(Sampler[int]):
    """A sampler's order from position ``start`` on: a run resumed mid-epoch skips the clips
    that epoch already trained on (without reading them)."""

    def __init__(self, sampler: Sampler[int], start: int) -> None:
        self.sampler, self.start = sampler, start

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.sampler), self.start, None)

    def __len__(self) -> int:
        assert isinstance(self.sampler, Sized)
        return max(0, len(self.sampler) - self.start)


class CorpusTrainer(RunPosition):
    """Trains an :class:`AudioClassifier` on a streamed corpus, in one process or under torchrun.

    Args:
        config: the :class:`TrainConfig` (front-end, rate, mel, epochs, global batch size,
            learning rate, seed...).  ``batch_size`` is the global batch: each of the
            ``world_size`` ranks takes ``batch_size / world_size`` clips a step.
        index: the corpus listing (:func:`~diffres.datasets.streaming.scan_corpus`).
        options: keyword-only; :class:`CorpusOptions`.
        ctx: keyword-only; :class:`DistContext` (default: one process).
        device: keyword-only; the training device (default from ``config.device``).
        note: keyword-only; prints a line (rank 0 only; default silent).

    Raises:
        DatasetError: fewer than 2 training clips or classes.
        ParameterError: a global batch not divisible by the number of processes.
    """

    def __init__(
        self,
        config: TrainConfig,
        index: CorpusIndex,
        *,
        options: CorpusOptions | None = None,
        ctx: DistContext | None = None,
        device: torch.device | None = None,
        note: Note | None = None,
    ) -> None:
        from .config import resolve_device

        self.config = config
        self.index = index
        self.options = options or CorpusOptions()
        self.ctx = ctx or DistContext()
        self.device = device or resolve_device(config.device)
        self.dtype = _DTYPES[self.options.dtype]
        self.amp = amp_settings(self.device, self.options.amp)
        self._note = note if (note is not None and self.ctx.is_main) else (lambda _text: None)
        train_pos = index.split_indices("train")
        if train_pos.size < 2 or np.unique(index.labels[train_pos]).size < 2:
            raise DatasetError(
                f"the training split of {index.name!r} has {train_pos.size} clip(s) in "
                f"{np.unique(index.labels[train_pos]).size} class(es); at least 2 clips of 2 classes are needed."
            )
        world = self.ctx.world_size
        batch = min(config.batch_size, int(train_pos.size) // world * world)
        if batch < world or config.batch_size % world:
            raise ParameterError(
                f"the global batch size ({config.batch_size}) must be a multiple of the number of processes "
                f"({world}) and the training split ({train_pos.size} clips) must fill one batch."
            )
        self.batch_size = batch
        self.local_batch = batch // world
        self.n_train = int(train_pos.size)
        self.steps_per_epoch = max(1, self.n_train // batch)
        clip_seconds = self.options.clip_seconds or estimate_clip_seconds(index, seed=config.seed)
        self.model_config = config.model_config(index.classes, clip_seconds)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = AudioClassifier(self.model_config)
        self.model: AudioClassifier = model.to(device=self.device, dtype=self.dtype)
        sync_batchnorm(self.model, self.ctx, self.device)  # in place: children swapped
        forward = _TrainForward(self.model)
        if self.ctx.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward: nn.Module = nn.parallel.DistributedDataParallel(forward, device_ids=ids)
        else:
            self.forward = forward
        self.optimizer = torch.optim.AdamW(
            parameter_groups(self.model, config.score_learning_rate_scale),
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
            foreach=True,
        )
        self.scaler = self.amp.grad_scaler()

        def dataset(split: str | np.ndarray) -> StreamingAudioDataset:
            return StreamingAudioDataset(
                index,
                split,
                mel=self.model_config.mel,
                clip_seconds=float(clip_seconds),
                resample=self.options.resample,
                cache_dir=self.options.cache_dir,
            )

        self._dataset = dataset
        self.train_set = dataset("train")
        self.sampler: DistributedSampler = DistributedSampler(
            self.train_set, num_replicas=world, rank=self.ctx.rank, shuffle=True, seed=config.seed, drop_last=True
        )
        self.global_step = 0
        self.history: list[EpochRecord] = []
        self.elapsed_seconds = 0.0
        self.failures: dict[str, None] = {}  # ordered set of "<relpath>: <reason>" (first ones listed)
        self.n_failed = 0
        #: 64-bit digests of the unreadable clips' relative paths (the same on every rank), so a
        #: file met by two ranks or in two epochs counts once.
        self._failed_files: set[int] = set()
        #: ``global_step`` of the last checkpoint :meth:`save` wrote (or :meth:`resume` read).
        self.last_saved_step: int | None = None
        self._stop = threading.Event()

    # -- data -------------------------------------------------------------------------
    def _loader(self, dataset: StreamingAudioDataset, batch: int, sampler: Any = None) -> Iterator[StreamBatch]:
        """The batches of ``dataset`` (drop-last with a sampler), decoded by the workers, which
        are started here with SIGINT and SIGTERM held (:func:`_signals_held`)."""
        workers = self.options.num_workers
        loader = DataLoader(
            dataset,
            batch_size=batch,
            sampler=sampler,
            shuffle=False,
            num_workers=workers,
            collate_fn=collate_stream,
            drop_last=sampler is not None,
            pin_memory=self.device.type == "cuda",
            worker_init_fn=_worker_init if workers else None,
            prefetch_factor=2 if workers else None,
        )
        with _signals_held():
            return iter(loader)

    def _record_failures(self, batch: StreamBatch) -> None:
        for f in batch.failures:
            digest = int.from_bytes(hashlib.blake2b(f.split(": ", 1)[0].encode(), digest_size=8).digest(), "big")
            if digest not in self._failed_files:
                self._failed_files.add(digest)
                self.n_failed += 1
                if len(self.failures) < _MAX_LISTED_FAILURES:
                    self.failures[f] = None

    def _local_batch(self, batch: StreamBatch) -> tuple[Tensor, Tensor, Tensor, float]:
        """(log-mel, labels, clip indices, loss scale) of this rank's share of a global batch,
        on the device.  The scale is the share's part of the global batch: DDP averages the
        ranks' gradients, so each rank's mean loss is scaled to its share and clips that failed
        to decode (unequal shares) weigh as in one process.  A share whose every clip failed
        becomes a zero-scale stand-in, which keeps the ranks' collectives in step."""
        x, y, idx = batch.log_mel, batch.labels, batch.indices
        scale = float(batch.labels.shape[0]) * self.ctx.world_size / self.batch_size
        if x.shape[0] == 0:
            t, f = self.train_set.n_frames, self.model_config.n_mels
            x = torch.full((2, t, f), math.log(LOG_FLOOR))
            y, idx, scale = torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long), 0.0
        x = x.to(self.device, self.dtype, non_blocking=True)
        return x, y.to(self.device, non_blocking=True), idx, scale

    # -- training ---------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.config.epochs

    @property
    def score_prior_steps(self) -> int:
        """Steps of the energy-prior fit before the first step
        (:func:`~diffres.training.prior.prior_steps`, as the in-memory trainer)."""
        return prior_steps(self.config, self.total_steps)

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Ask :meth:`fit` / :meth:`train_epoch` to return after the current step (safe from a
        signal handler; under DDP every rank stops after the same step)."""
        self._stop.set()

    def _stop_agreed(self) -> bool:
        """True when any rank was asked to stop (one tiny all-reduce per step under DDP, so
        every rank stops after the same step and their collectives stay in step)."""
        flag = torch.tensor([1.0 if self._stop.is_set() else 0.0], dtype=torch.float32, device=self.device)
        return bool(self.ctx.all_reduce_sum(flag).item() > 0)

    def _prior_batches(self, n_steps: int) -> Iterator[tuple[Tensor, float]]:
        """This rank's share of ``n_steps`` global batches for the energy prior's fit: passes
        over the training split in an order of their own (seeded from the run's seed)."""
        seed = int(
            torch.randint(0, 2**31 - 1, (1,), generator=derived_generator(self.config.seed, PRIOR_STREAM, 0, "cpu"))
        )
        sampler: DistributedSampler = DistributedSampler(
            self.train_set,
            num_replicas=self.ctx.world_size,
            rank=self.ctx.rank,
            shuffle=True,
            seed=seed,
            drop_last=True,
        )
        passes = _Passes(sampler, self.steps_per_epoch * self.local_batch, n_steps * self.local_batch)
        for batch in self._loader(self.train_set, self.local_batch, passes):
            self._record_failures(batch)
            x, _, _, scale = self._local_batch(batch)
            yield x, scale

    def _average_gradients(self, grads: list[Tensor]) -> None:
        """Average gradients over ranks in place (what DDP does for the model's)."""
        if not self.ctx.distributed or not grads:
            return
        flat = self.ctx.all_reduce_sum(torch.cat([g.reshape(-1) for g in grads])) / self.ctx.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def _fit_score_prior(self) -> None:
        """Fit DiffRes's score network to the energy prior before the first step, as the
        in-memory trainer does (every rank; the ranks' gradients are averaged, so N processes
        fit what one process fits on the same global batches)."""
        n = self.score_prior_steps
        self._note(f"fitting the score network to the energy prior ({n} steps of {self.batch_size} clips)")
        self.model.train()
        fit_score_prior(
            self.model.frontend,
            self._prior_batches(n),
            config=self.config,
            hop_seconds=self.model.mel.hop_seconds,
            average_gradients=self._average_gradients,
        )

    def _step(self, batch: StreamBatch, epoch: int) -> tuple[float, float, float]:
        """One optimiser step; returns (loss sum, correct, clips) of this rank's batch."""
        cfg = self.config
        x, y, idx, scale = self._local_batch(batch)
        keys = (idx + ((cfg.seed * 1_000_003 + epoch) % (1 << 30)) * (1 << 32)).to(self.device)  # per clip and epoch
        lr = learning_rate_at(
            self.global_step, self.total_steps, peak=cfg.learning_rate, warmup_fraction=cfg.warmup_fraction
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        self.model.train()
        x, targets = augment_batch(
            x,
            y,
            config=cfg,
            n_classes=len(self.model_config.classes),
            hop_seconds=self.model.mel.hop_seconds,
            step=self.global_step,
            rank=self.ctx.rank,
        )
        with self.amp.autocast():
            logits, out = self.forward(x, keys, cfg.reduction_rate)
            loss, _ = training_loss(
                logits.float() if self.dtype == torch.float32 else logits,
                targets.float() if self.dtype == torch.float32 else targets,
                out,
                x,
                config=cfg,
                frontend=cfg.frontend,
                reduction_rate=cfg.reduction_rate,
            )
        scaled = loss * scale  # this rank's share of the global batch (_local_batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(scaled).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.global_step += 1
        n = float(batch.labels.shape[0])
        correct = float((logits.detach().argmax(1) == y).float().sum()) if scale else 0.0
        return float(loss.detach()) * n, correct, n

    def train_epoch(self) -> EpochRecord | None:
        """Run the rest of the current epoch (all ranks), evaluate on the validation split,
        save nothing.

        The energy prior is fitted before the run's first step.  A run resumed mid-epoch
        starts where its checkpoint stood (the epoch's record then covers the steps trained
        since).  Returns None, without validating, when a stop was requested
        (:meth:`request_stop`): every rank stops after the same step."""
        if self.finished:
            raise ParameterError(f"training is finished ({self.config.epochs} epochs); resume with more epochs.")
        t0 = time.perf_counter()
        epoch = self.epoch
        start = self.global_step - epoch * self.steps_per_epoch  # steps of this epoch already trained
        sums = torch.zeros(3, dtype=torch.float64)
        # the run's first step follows the prior's fit without a stop between them (as in the
        # in-memory trainer), so a checkpoint never holds a fitted prior at step 0
        check = True
        if self.global_step == 0:
            if self._stop_agreed():
                self._stopped(t0)
                return None
            if self.score_prior_steps > 0:
                self._fit_score_prior()
            check = False
        self.sampler.set_epoch(epoch)
        sampler = _From(self.sampler, start * self.local_batch) if start else self.sampler
        loader = self._loader(self.train_set, self.local_batch, sampler)
        for i, batch in enumerate(itertools.islice(loader, self.steps_per_epoch - start), start=start):
            if check and self._stop_agreed():
                self._stopped(t0)
                return None
            check = True
            self._record_failures(batch)
            sums += torch.tensor(self._step(batch, epoch), dtype=torch.float64)
            if self.ctx.is_main and ((i + 1) % 50 == 0 or i + 1 == self.steps_per_epoch):
                self._note(f"epoch {epoch + 1}/{self.config.epochs} step {i + 1}/{self.steps_per_epoch}")
        totals = self.ctx.all_reduce_sum(sums.to(self.device)).cpu()
        val = self.evaluate("val")
        seconds = time.perf_counter() - t0
        self.elapsed_seconds += seconds
        n = max(float(totals[2]), 1.0)
        rec = EpochRecord(
            epoch=self.epoch,
            global_step=self.global_step,
            train_loss=float(totals[0]) / n,
            train_accuracy=float(totals[1]) / n,
            guide_loss=float("nan"),
            activeness=float("nan"),
            val_loss=val.loss,
            val_accuracy=val.accuracy,
            seconds=seconds,
        )
        self.history.append(rec)
        self._note(
            f"epoch {rec.epoch}/{self.config.epochs}: train loss {rec.train_loss:.3f} acc {rec.train_accuracy:.3f} | "
            f"val acc {rec.val_accuracy:.3f} on {val.n} clips | {seconds:.1f} s"
        )
        return rec

    def _stopped(self, t0: float) -> None:
        self.elapsed_seconds += time.perf_counter() - t0
        self._note(f"stopped at step {self.global_step} (epoch {self.epoch} of {self.config.epochs} finished)")

    def fit(
        self, *, save_each_epoch: str | os.PathLike[str] | None = None, max_epochs: int | None = None
    ) -> list[EpochRecord]:
        """Train to ``config.epochs`` (or for at most ``max_epochs`` more, for a job's time
        limit: :meth:`resume` continues), or until a stop is requested (:meth:`request_stop`:
        after the current step; the request is then cleared).  With ``save_each_epoch`` a
        path, rank 0 saves the weights, a quick card (last validation accuracy, no test) and
        the training state there after every epoch; :meth:`save` at the end writes the full
        card."""
        stop_at = (
            self.total_steps
            if max_epochs is None
            else min(self.total_steps, (self.epoch + max_epochs) * self.steps_per_epoch)
        )
        while self.global_step < stop_at:
            if self.train_epoch() is None:
                break
            if save_each_epoch is not None and not self.finished:
                self.save(save_each_epoch, evaluate=False)
        self._stop.clear()
        return self.history

    # -- evaluation -------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, split: str = "val") -> CorpusEval:
        """Evaluate on ``split``: each rank takes every ``world_size``-th clip, and the sums
        (confusion, loss) are all-reduced, so the result covers the whole split on every rank."""
        positions = self.index.split_indices(split)[self.ctx.rank :: self.ctx.world_size]
        n_cls = len(self.model_config.classes)
        confusion = torch.zeros(n_cls * n_cls + 1, dtype=torch.float64)
        self.model.eval()
        try:
            for batch in self._loader(self._dataset(positions), 64):
                self._record_failures(batch)
                if batch.labels.numel() == 0:
                    continue
                with self.amp.autocast():
                    logits = self.model(batch.log_mel.to(self.device, self.dtype)).float().cpu()
                confusion[-1] += float(F.cross_entropy(logits.double(), batch.labels, reduction="sum"))
                cell = batch.labels * n_cls + logits.argmax(1)
                confusion[:-1] += torch.bincount(cell, minlength=n_cls * n_cls).double()
        finally:
            self.model.train()
        total = self.ctx.all_reduce_sum(confusion.to(self.device)).cpu()
        matrix = total[:-1].round().long().numpy().reshape(n_cls, n_cls)
        n = int(matrix.sum())
        rows = matrix.sum(axis=1)
        per_class = {
            c: (float(matrix[i, i] / rows[i]) if rows[i] else float("nan"))
            for i, c in enumerate(self.model_config.classes)
        }
        acc = float(np.trace(matrix) / n) if n else float("nan")
        return CorpusEval(acc, float(total[-1]) / n if n else float("nan"), n, per_class, matrix)

    # -- persistence ------------------------------------------------------------------
    def _all_failures(self) -> tuple[int, list[str]]:
        gathered = self.ctx.gather_objects((self._failed_files, list(self.failures)[:100]))
        listed = list(dict.fromkeys(f for _, fs in gathered for f in fs))
        return len(set().union(*(files for files, _ in gathered))), listed[:100]

    def card(self, *, evaluate: bool = True) -> dict[str, Any]:
        """The model card (every rank must call it: evaluation and failure counts are
        collective).  It names the corpus by its folder or manifest name and lists its size,
        classes and fingerprint, never a path of this machine."""
        if evaluate:
            metrics = card_metrics(self.evaluate("val"), self.evaluate("test"))
        else:
            metrics = card_metrics(history=self.history)
        n_failed, failed = self._all_failures()
        corpus = {**self.index.summary(), "n_unreadable": n_failed, "unreadable": failed[:20]}
        counts = corpus["n_per_class"]
        return run_card(
            dataset=self.index.name,
            metrics=metrics,
            train_seconds=self.elapsed_seconds,
            epochs=self.epoch,
            global_step=self.global_step,
            seed=self.config.seed,
            n_train=self.n_train,
            complete=self.finished,
            data_source=(
                f"User corpus '{self.index.name}' ({self.index.kind}): {len(self.index)} clips in "
                f"{len(self.index.classes)} classes ({', '.join(f'{c}: {n}' for c, n in counts.items())}); "
                f"streamed from disk, resampled to {SAMPLE_RATE} Hz mono and centre-padded/cropped to "
                f"{self.model_config.clip_seconds:g} s. Its origin and licence are whatever the user's files carry."
                + (f" {n_failed} unreadable files were skipped." if n_failed else "")
            ),
            training={**self.config.to_dict(), "dataset": self.index.name},
            corpus=corpus,
            distributed={
                "world_size": self.ctx.world_size,
                "backend": self.ctx.backend,
                "device": self.device.type,
                "amp": self.amp.name,
            },
        )

    def training_state(self) -> dict[str, Any]:
        scalars = [{k: v for k, v in h.to_dict().items() if not k.startswith("probe_")} for h in self.history]
        return {
            "config": json.dumps({**self.config.to_dict(), "dataset": self.index.name}),
            "corpus_fingerprint": self.index.fingerprint(),
            "clip_seconds": float(self.model_config.clip_seconds),
            "history": json.dumps(scalars),
            "global_step": int(self.global_step),
            "elapsed_seconds": float(self.elapsed_seconds),
            "optimizer": self.optimizer.state_dict(),
        }

    def save(
        self, path: str | os.PathLike[str], *, evaluate: bool = True, write_card: bool = True
    ) -> dict[str, Any] | None:
        """Save weights, card and training state; every rank calls it, rank 0 writes.

        Returns the card on rank 0, None on the others (which write nothing)."""
        card = self.card(evaluate=evaluate)
        written = None
        if self.ctx.is_main:
            written = save_checkpoint(
                path, self.model, card=card, write_card=write_card, training_state=self.training_state()
            )
        self.ctx.barrier()  # no rank goes on (or reads the file) before it exists
        self.last_saved_step = self.global_step
        return written

    @classmethod
    def resume(
        cls,
        checkpoint_path: str | os.PathLike[str],
        index: CorpusIndex,
        *,
        epochs: int | None = None,
        options: CorpusOptions | None = None,
        ctx: DistContext | None = None,
        device: torch.device | None = None,
        note: Note | None = None,
    ) -> CorpusTrainer:
        """Continue a run saved by :meth:`save` (every rank reads the checkpoint) from the step
        it was saved at (mid-epoch after a stop), on the same corpus listing (checked by
        fingerprint)."""
        loaded = load_checkpoint(checkpoint_path)
        state = loaded.training_state or {}
        if "corpus_fingerprint" not in state:
            raise CheckpointError(
                "this checkpoint holds no corpus training state; it cannot be resumed as a corpus run."
            )
        if state["corpus_fingerprint"] != index.fingerprint():
            raise CheckpointError(
                f"the corpus {index.name!r} differs from the one this run trained on (files, labels or splits "
                "changed); resume with the same corpus or start a new run."
            )
        try:
            cfg = TrainConfig.from_dict(json.loads(state["config"]))
            history = [EpochRecord.from_dict(h) for h in json.loads(state.get("history", "[]"))]
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"the checkpoint's training state is malformed ({exc}).") from None
        if epochs is not None:
            cfg = replace(cfg, epochs=epochs)
        opts = replace(options or CorpusOptions(), clip_seconds=float(state["clip_seconds"]))
        trainer = cls(cfg, index, options=opts, ctx=ctx, device=device, note=note)
        # the saved tensors as stored (load_checkpoint validated them; its model is float32)
        raw = torch.load(checkpoint_path, map_location="cpu", weights_only=True)["state_dict"]
        trainer.model.load_state_dict(raw)
        trainer.model.to(device=trainer.device, dtype=trainer.dtype)
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.global_step = int(state["global_step"])
        trainer.last_saved_step = trainer.global_step
        trainer.elapsed_seconds = float(state.get("elapsed_seconds", 0.0))
        trainer.history = history
        return trainer


def default_checkpoint_name(corpus_name: str, frontend: str, reduction_rate: float) -> str:
    """``<corpus name>_<frontend>_r<100 x rate>`` with unsafe characters replaced.

    Example:
        >>> default_checkpoint_name("my corpus", "diffres", 0.75)
        'my_corpus_diffres_r75'
    """
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in corpus_name) or "corpus"
    return f"{safe}_{frontend}_r{int(round(reduction_rate * 100))}"
