"""The :class:`Trainer`: trains an :class:`~diffres.models.AudioClassifier` in whole runs or
short slices.

One trainer serves the command line (:meth:`Trainer.fit`) and the app (:meth:`Trainer.step`
/ :meth:`Trainer.run_for` in short slices).  The mel front-end is fixed, so the log-mel of
every clip is computed once and cached on the training device (:meth:`Trainer.release_cache`
frees it); every augmentation (:mod:`diffres.training.augment`) then works on the cached
log-mel.

All randomness comes from ``config.seed`` through generators derived from
``(seed, global_step)``, so a run is reproducible and a resumed run continues exactly as
the uninterrupted one would (the global RNG state of the process is left untouched).

Shapes are ``[batch, time, freq]``; there is no Python loop over the batch.  This module is
about 650 lines on purpose: the trainer's state (log-mel cache, schedule position,
optimiser, history, stop flag, persistence and resume) is one object that the command line
and the app drive step by step, and splitting its methods across modules would scatter that
state; everything that is a pure function (config checks, augmentation, schedules,
evaluation) lives in the sibling modules.
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from .. import functional as Fn
from ..audio import SAMPLE_RATE
from ..checkpoints import load_checkpoint, save_checkpoint
from ..core import FrontendOutput
from ..errors import CheckpointError, DatasetError, ParameterError
from ..familiarity import Familiarity
from ..models import AudioClassifier
from .config import TrainConfig, resolve_device
from .evaluation import ProgressFn, evaluate_model, load_dataset_for_training, log_mel_of
from .prior import prior_steps, score_prior_fit
from .records import Callback, EpochRecord, EvalResult, StepRecord, card_metrics, run_card
from .schedule import RunPosition, epoch_batches, learning_rate_at
from .steps import (
    FAMILIARITY_STREAM,
    ORDER_STREAM,
    PRIOR_STREAM,
    augment_batch,
    derived_generator,
    parameter_groups,
    training_loss,
)

if TYPE_CHECKING:
    from ..datasets import AudioDataset

__all__ = ["Trainer"]


def _rng_devices(device: torch.device) -> list:
    return [device] if device.type == "cuda" else []


class Trainer(RunPosition):
    """Trains an :class:`AudioClassifier` on a dataset, in whole runs or short slices.

    Args:
        config: the :class:`TrainConfig`.
        dataset: an :class:`~diffres.datasets.AudioDataset`; when None, ``config.dataset``
            is loaded with :func:`diffres.datasets.load_dataset`.
        progress: ``progress(done, total, message)`` while the dataset loads and the
            log-mel cache is computed.

    The app calls :meth:`run_for` repeatedly (each call returns within about the given
    seconds and never crosses an epoch end); the CLI calls :meth:`fit`.
    """

    def __init__(
        self,
        config: TrainConfig,
        dataset: AudioDataset | None = None,
        *,
        progress: ProgressFn | None = None,
        callbacks: Iterable[Callback] = (),
    ) -> None:
        if not isinstance(config, TrainConfig):
            raise ParameterError(f"config must be a TrainConfig, got {type(config).__name__}.")
        t0 = time.perf_counter()
        self.config = config
        self.device = resolve_device(config.device)
        self.callbacks: list[Callback] = list(callbacks)
        if dataset is None:
            if config.dataset is None:
                raise ParameterError(
                    "no dataset: set TrainConfig.dataset (a built-in name or a folder) or pass dataset=."
                )
            dataset = load_dataset_for_training(
                config.dataset,
                sample_rate=SAMPLE_RATE,
                seed=config.dataset_seed,
                progress=progress,
                max_files_per_class=config.max_files_per_class,
            )
        self.dataset = dataset
        self.dataset_name = config.dataset if config.dataset is not None else getattr(dataset, "name", None)
        train = dataset.splits["train"]
        if len(train) < 2:
            raise DatasetError(
                f"the training split has {len(train)} clip(s); at least 2 are needed (add more audio per class)."
            )
        present = np.unique(train.labels)
        if present.size < 2:
            raise DatasetError("the training split holds only one class; a classifier needs at least two.")
        self.model_config = config.model_config(dataset.classes, dataset.clip_seconds, int(dataset.sample_rate))
        with torch.random.fork_rng(devices=_rng_devices(self.device)):
            torch.manual_seed(config.seed)
            self.model = AudioClassifier(self.model_config).to(self.device)
        self.optimizer = torch.optim.AdamW(
            self._parameter_groups(), lr=config.learning_rate, weight_decay=config.weight_decay, foreach=True
        )
        # log-mel cache: the mel front-end is fixed, so compute every clip once
        if progress is not None:
            progress(0, 1, "computing log-mel spectrograms")
        self._features: dict[str, Tensor] = {}
        self._labels: dict[str, Tensor] = {}
        for name in ("train", "val", "test"):
            split = dataset.splits.get(name)
            if split is None:
                continue
            self._features[name] = log_mel_of(self.model, split.waveforms, device=self.device)
            self._labels[name] = torch.as_tensor(np.asarray(split.labels), dtype=torch.long, device=self.device)
        if progress is not None:
            progress(1, 1, "log-mel spectrograms ready")
        self.n_train = int(self._labels["train"].shape[0])
        self.batch_size, self._steps_per_epoch = epoch_batches(self.n_train, config.batch_size)
        self.hop_seconds = self.model.mel.hop_seconds
        # probe clip (validation split, else training split)
        probe_split = "val" if self._labels.get("val") is not None and len(self._labels["val"]) else "train"
        idx = min(config.probe_index, len(self._labels[probe_split]) - 1)
        self.probe_split, self.probe_index = probe_split, idx
        self.probe_log_mel = self._features[probe_split][idx : idx + 1].clone()  # never pins the cache
        self.probe_label = int(self._labels[probe_split][idx])
        self.probe_path = dataset.splits[probe_split].paths[idx] if dataset.splits[probe_split].paths else None
        # state
        self.global_step = 0
        self.history: list[EpochRecord] = []
        self._elapsed = 0.0
        self._epoch_acc: list[tuple[float, float, float, float]] = []
        self._epoch_seconds = 0.0
        self._stop = threading.Event()
        self._released = False
        self._perm: Tensor | None = None
        self._perm_epoch = -1
        self._prior: Iterator[float] | None = None
        #: Loss of each energy-prior step made so far (:attr:`score_prior_steps` in all).
        self.prior_losses: list[float] = []
        self.prepare_seconds = time.perf_counter() - t0

    def _parameter_groups(self) -> list[dict[str, Any]]:
        """AdamW groups; each carries ``lr_scale``, its learning rate over the schedule's."""
        return parameter_groups(self.model, self.config.score_learning_rate_scale)

    def _prior_fit(self) -> Iterator[float]:
        """The energy-prior fit of this run, one step per advance (created once): the score
        network fitted to an energy prior (frames above the clip's noise floor score high)
        before end-to-end training (:func:`~diffres.training.prior.score_prior_fit`), on
        :attr:`score_prior_steps` batches drawn with replacement from the cached training
        log-mel."""
        if self._prior is None:
            n_steps = self.score_prior_steps
            x_all = self._features["train"]
            g = derived_generator(self.config.seed, PRIOR_STREAM, 0, torch.device("cpu"))

            def batches() -> Iterator[tuple[Tensor, float]]:
                for _ in range(n_steps):
                    idx = torch.randint(0, x_all.shape[0], (self.batch_size,), generator=g).to(self.device)
                    yield x_all[idx], 1.0

            self._prior = score_prior_fit(
                self.model.frontend, batches(), config=self.config, hop_seconds=self.hop_seconds
            )
        return self._prior

    def _advance_prior(self, until: float | None = None) -> None:
        """Advance the prior fit to its end, or until ``time.perf_counter()`` passes ``until``
        (after at least one step) or a stop is requested."""
        if self.prior_done:
            return
        self.model.train()
        for loss in self._prior_fit():
            self.prior_losses.append(loss)
            if self.prior_done:
                break
            if until is not None and (time.perf_counter() >= until or self._stop.is_set()):
                return
        self._prior = None  # finished: the generator (and its optimiser) can go

    # -- read-outs --------------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        return self._steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self._steps_per_epoch * self.config.epochs

    @property
    def score_prior_steps(self) -> int:
        """Steps of the energy-prior fit this run makes before its first step
        (:func:`~diffres.training.prior.prior_steps`: ``TrainConfig.score_prior_steps``, at
        most half the run's training steps, 0 unless the model learns its importance)."""
        return prior_steps(self.config, self.total_steps)

    @property
    def elapsed_seconds(self) -> float:
        """Training wall time so far (steps and validation; data preparation excluded)."""
        return self._elapsed

    @property
    def n_parameters(self) -> int:
        """Number of the model's parameters."""
        return self.model.n_parameters()

    @property
    def mel_frequencies(self) -> np.ndarray:
        """Centre frequency in Hz of each mel band of the model's front-end, ``[n_mels]``."""
        return self.model.mel.mel_frequencies().numpy()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Ask :meth:`fit` / :meth:`run_for` to return after the current step."""
        self._stop.set()

    def learning_rate_at(self, step: int) -> float:
        """Linear warm-up then cosine decay to 2 % of the peak
        (:func:`~diffres.training.schedule.learning_rate_at` over this run's steps)."""
        return learning_rate_at(
            step, self.total_steps, peak=self.config.learning_rate, warmup_fraction=self.config.warmup_fraction
        )

    # -- one step ---------------------------------------------------------------------
    def _batch_indices(self, step: int) -> Tensor:
        epoch, pos = divmod(step, self._steps_per_epoch)
        if self._perm_epoch != epoch:
            g = derived_generator(self.config.seed, ORDER_STREAM, epoch, torch.device("cpu"))
            self._perm = torch.randperm(self.n_train, generator=g).to(self.device)
            self._perm_epoch = epoch
        assert self._perm is not None
        return self._perm[pos * self.batch_size : (pos + 1) * self.batch_size]

    def augment(self, x: Tensor, y: Tensor, step: int) -> tuple[Tensor, Tensor]:
        """Augment a batch of log-mel ``[B, T, F]`` with labels ``[B]`` as step ``step`` does
        (:func:`~diffres.training.steps.augment_batch`); returns (log-mel, soft targets
        ``[B, C]``)."""
        return augment_batch(
            x,
            y,
            config=self.config,
            n_classes=len(self.model_config.classes),
            hop_seconds=self.hop_seconds,
            step=step,
        )

    def step(self) -> StepRecord:
        """One optimiser step on the next batch; finishes the epoch when it is the last."""
        if self.finished:
            raise ParameterError(
                f"training is finished ({self.config.epochs} epochs); resume with more epochs to continue."
            )
        t0 = time.perf_counter()
        cfg = self.config
        step = self.global_step
        x_all, y_all = self.features("train")
        idx = self._batch_indices(step)
        x, targets = self.augment(x_all[idx], y_all[idx], step)
        lr = self._set_learning_rates(step)
        if step == 0:
            self._advance_prior()  # whatever run_for has not fitted yet
        rate = cfg.reduction_rate
        self.model.train()
        with torch.random.fork_rng(devices=_rng_devices(self.device)):
            torch.manual_seed((cfg.seed * 31 + step * 17 + 3) % (2**63 - 1))  # dropout
            logits, out = self.model.forward_with_frontend(x, reduction_rate=rate)
            loss, guide = self._loss(logits, targets, out, rate, x)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
            self.optimizer.step()
        with torch.no_grad():
            acc = float((logits.argmax(1) == targets.argmax(1)).float().mean())
        self.global_step += 1
        seconds = time.perf_counter() - t0
        self._elapsed += seconds
        self._epoch_seconds += seconds
        rec = StepRecord(
            self.global_step,
            step // self._steps_per_epoch,
            float(loss.detach()),
            acc,
            float(guide.detach()),
            float(out.activeness),
            lr,
            seconds,
        )
        self._epoch_acc.append((rec.loss, rec.accuracy, rec.guide_loss, rec.activeness))
        epoch_rec = None
        if self.global_step % self._steps_per_epoch == 0:
            epoch_rec = self._end_epoch()
            rec = replace(rec, epoch_end=epoch_rec)
        for cb in self.callbacks:
            if hasattr(cb, "on_step"):
                cb.on_step(self, rec)
        if epoch_rec is not None:
            for cb in self.callbacks:
                if hasattr(cb, "on_epoch"):
                    cb.on_epoch(self, epoch_rec)
        return rec

    def _set_learning_rates(self, step: int) -> float:
        """Each group's rate for ``step`` (its ``lr_scale`` times the schedule's); returns the
        schedule's rate."""
        lr = self.learning_rate_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def _loss(
        self, logits: Tensor, targets: Tensor, out: FrontendOutput, rate: float, log_mel: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(total loss, guide loss): :func:`~diffres.training.steps.training_loss`."""
        return training_loss(
            logits, targets, out, log_mel, config=self.config, frontend=self.model.config.frontend, reduction_rate=rate
        )

    def probe(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Eval-mode importance ``[T]``, merged log-mel ``[T', F]`` and bin edges ``[T'+1]``
        of the probe clip."""
        was = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.model.frontend(self.probe_log_mel)
        finally:
            self.model.train(was)
        return (
            out.importance[0].float().cpu().numpy(),
            out.avg[0].float().cpu().numpy(),
            out.bin_edges[0].float().cpu().numpy(),
        )

    def _end_epoch(self) -> EpochRecord:
        t0 = time.perf_counter()
        val = self.evaluate("val") if "val" in self._labels else None
        imp, merged, edges = self.probe()
        eval_seconds = time.perf_counter() - t0
        self._elapsed += eval_seconds
        stats = np.asarray(self._epoch_acc, dtype=np.float64).mean(axis=0) if self._epoch_acc else np.full(4, np.nan)
        rec = EpochRecord(
            epoch=self.epoch,
            global_step=self.global_step,
            train_loss=float(stats[0]),
            train_accuracy=float(stats[1]),
            guide_loss=float(stats[2]),
            activeness=float(stats[3]),
            val_loss=float(val.loss) if val is not None else float("nan"),
            val_accuracy=float(val.accuracy) if val is not None else float("nan"),
            seconds=self._epoch_seconds + eval_seconds,
            probe_importance=imp,
            probe_merged=merged,
            probe_bin_edges=edges,
        )
        self.history.append(rec)
        self._epoch_acc = []
        self._epoch_seconds = 0.0
        return rec

    # -- loops ------------------------------------------------------------------------
    def run_for(self, seconds: float) -> list[StepRecord]:
        """Run steps for about ``seconds`` (at least one step unless finished; never past an
        epoch end; a :meth:`request_stop` from another thread ends it after the current
        step).  Returns the steps' records.

        Before the first step the energy-prior fit runs in the same slices (at least one of
        its steps per call, :attr:`prior_losses` grows): a call that spends its time on it
        returns no records.  The weights are the same as with one :meth:`step` after another."""
        records: list[StepRecord] = []
        if self.finished:
            return records
        t0 = time.perf_counter()
        if not self.prior_done:  # the energy-prior fit comes first, in slices too
            self._advance_prior(until=t0 + seconds)
            if not self.prior_done or self._stop.is_set() or time.perf_counter() - t0 >= seconds:
                self._stop.clear()
                return records
        while not self.finished:
            rec = self.step()
            records.append(rec)
            if self._stop.is_set():
                self._stop.clear()  # honoured: the next call trains again
                break
            if rec.epoch_end is not None or time.perf_counter() - t0 >= seconds:
                break
        return records

    def fit(
        self, callbacks: Iterable[Callback] = (), stop: threading.Event | Callable[[], bool] | None = None
    ) -> list[EpochRecord]:
        """Train until ``config.epochs`` are done or a stop is requested (``stop`` set /
        returning True, or :meth:`request_stop`); returns :attr:`history`."""
        extra = list(callbacks)
        self.callbacks.extend(extra)
        try:
            while not self.finished:
                if self._stop.is_set():
                    break
                if stop is not None and (stop.is_set() if isinstance(stop, threading.Event) else stop()):
                    break
                self.step()
        finally:
            for cb in extra:
                self.callbacks.remove(cb)
        self._stop.clear()
        return self.history

    # -- evaluation -------------------------------------------------------------------
    def features(self, split: str) -> tuple[Tensor, Tensor]:
        """Cached log-mel ``[N, T, F]`` and labels ``[N]`` of a split."""
        self._check_cache()
        if split not in self._labels:
            raise ParameterError(f"split must be one of {', '.join(self._labels)}, got {split!r}.")
        return self._features[split], self._labels[split]

    def evaluate(self, split: str = "val", reduction_rate: float | None = None) -> EvalResult:
        """Evaluate the current model on a split (eval mode; the model returns to its mode)."""
        if split not in ("train", "val", "test"):
            raise ParameterError(f"split must be 'train', 'val' or 'test', got {split!r}.")
        if reduction_rate is not None:
            Fn.check_rate(reduction_rate)
        x, y = self.features(split)
        return evaluate_model(self.model, x, y, reduction_rate=reduction_rate)

    # -- memory -----------------------------------------------------------------------
    @property
    def cache_released(self) -> bool:
        """True after :meth:`release_cache`: the trainer keeps its model and history only."""
        return self._released

    def release_cache(self) -> None:
        """Free the cached log-mel of every split (for the built-in ``events`` set about 60 MB).

        The model, optimiser, history and probe clip stay, so the run can still be shown,
        probed and saved with ``evaluate=False``; training and evaluation raise
        :class:`~diffres.errors.ParameterError` afterwards (a new trainer, or
        :meth:`resume` from a checkpoint, trains again).
        """
        self._features = {}
        self._released = True

    def _check_cache(self) -> None:
        if self._released:
            raise ParameterError(
                "this trainer released its log-mel cache (release_cache); "
                "resume from its checkpoint to train or evaluate again."
            )

    # -- persistence ------------------------------------------------------------------
    def card(
        self, card_extra: dict[str, Any] | None = None, *, evaluate: bool = True, with_test: bool = True
    ) -> dict[str, Any]:
        """The model card fields this trainer knows (see :func:`diffres.save_checkpoint`):
        the one builder of training cards, for the command line and the app alike.

        Args:
            card_extra: fields that override or add to the card (e.g. the app's run label).
            evaluate: evaluate the validation (and test) split now; False takes the last
                finished epoch's validation accuracy and leaves the test accuracy empty (a
                quick card for a checkpoint written mid-run).
            with_test: with ``evaluate``, also evaluate the test split.
        """
        if evaluate:
            val = self.evaluate("val") if "val" in self._labels else None
            test = self.evaluate("test") if with_test and "test" in self._labels else None
            metrics = card_metrics(val, test)
        else:
            metrics = card_metrics(history=self.history)
        card = run_card(
            dataset=self.dataset_name,
            metrics=metrics,
            train_seconds=self._elapsed,
            epochs=self.epoch,
            global_step=self.global_step,
            seed=self.config.seed,
            n_train=self.n_train,
            data_source=getattr(self.dataset, "source_description", "") or "",
            training=self.config.to_dict(),
        )
        card.update(card_extra or {})
        return card

    def training_state(self, *, include_optimizer: bool = True) -> dict[str, Any]:
        """Plain containers (tensors, numbers, JSON text) that :meth:`resume` needs."""
        scalars = [{k: v for k, v in h.to_dict().items() if not k.startswith("probe_")} for h in self.history]
        probes = [
            {
                k: torch.from_numpy(np.asarray(getattr(h, k), dtype=np.float32))
                for k in ("probe_importance", "probe_merged", "probe_bin_edges")
                if getattr(h, k) is not None
            }
            for h in self.history
        ]
        state: dict[str, Any] = {
            "config": json.dumps(self.config.to_dict()),
            "history": json.dumps(scalars),
            "history_probes": probes,  # tensors: 4 bytes a value instead of ~20 as JSON text
            "global_step": int(self.global_step),
            "elapsed_seconds": float(self._elapsed),
        }
        if include_optimizer:
            state["optimizer"] = self.optimizer.state_dict()
        return state

    def save(
        self,
        path: str | os.PathLike[str],
        card_extra: dict[str, Any] | None = None,
        *,
        include_optimizer: bool = True,
        evaluate: bool = True,
        familiarity: bool = False,
    ) -> dict[str, Any]:
        """Save weights, model card and training state (for :meth:`resume`); returns the card.

        Shipped checkpoints set ``include_optimizer=False`` to stay small (resume then
        restarts the optimiser's moments) and ``familiarity=True`` to carry
        :meth:`familiarity`'s statistics; ``evaluate`` is :meth:`card`'s."""
        return save_checkpoint(
            path,
            self.model,
            card=self.card(card_extra, evaluate=evaluate),
            training_state=self.training_state(include_optimizer=include_optimizer),
            familiarity=self.familiarity() if familiarity else None,
        )

    def familiarity(self, *, max_train: int = 3000) -> Familiarity:
        """The current model's out-of-distribution statistics
        (:class:`~diffres.familiarity.Familiarity`): fitted on up to ``max_train`` training
        clips (a seeded choice), calibrated on the validation split (the training split when
        there is none)."""
        self._check_cache()
        x, y = self.features("train")
        g = derived_generator(self.config.seed, FAMILIARITY_STREAM, 0, torch.device("cpu"))
        keep = torch.randperm(x.shape[0], generator=g)[:max_train].to(x.device)
        held_out = self._features["val"] if len(self._labels.get("val", ())) else x
        return Familiarity.fit(self.model, x[keep], y[keep], held_out)

    @classmethod
    def resume(
        cls,
        checkpoint_path: str | os.PathLike[str],
        dataset: AudioDataset | None = None,
        *,
        epochs: int | None = None,
        progress: ProgressFn | None = None,
        device: str | None = None,
    ) -> Trainer:
        """Rebuild a trainer from a checkpoint saved by :meth:`save` and continue from its
        step (``epochs`` raises the target number of epochs).

        The optimiser's moments are restored when the saved optimiser has the same parameter
        groups as this trainer's (DiffRes's score network has a group of its own since the
        score learning-rate settings; older checkpoints hold one group).  Otherwise they
        restart from zero, with a ``RuntimeWarning`` saying so; weights, step count and
        history are restored either way.
        """
        loaded = load_checkpoint(checkpoint_path)
        state = loaded.training_state
        if not state or "config" not in state:
            raise CheckpointError(
                "this checkpoint holds no training state (it was saved for inference only); train a new model instead."
            )
        try:
            cfg = TrainConfig.from_dict(json.loads(state["config"]))
            records = json.loads(state.get("history", "[]"))
            probes = state.get("history_probes") or [{} for _ in records]
            if len(probes) != len(records):
                raise ValueError("history and its probe curves differ in length")
            history = [
                EpochRecord.from_dict({**h, **{k: v.numpy() for k, v in p.items()}})
                for h, p in zip(records, probes, strict=True)
            ]
        except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
            raise CheckpointError(f"the checkpoint's training state is malformed ({exc}).") from None
        changes: dict[str, Any] = {}
        if epochs is not None:
            changes["epochs"] = epochs
        if device is not None:
            changes["device"] = device
        if changes:
            cfg = replace(cfg, **changes)
        trainer = cls(cfg, dataset, progress=progress)
        if tuple(trainer.model_config.classes) != tuple(loaded.model.config.classes):
            raise CheckpointError("the dataset's classes differ from the checkpoint's; resume with the same dataset.")
        trainer.model.load_state_dict(loaded.model.state_dict())
        if "optimizer" in state:
            trainer._load_optimizer(state["optimizer"])
        trainer.global_step = int(state.get("global_step", 0))
        trainer._elapsed = float(state.get("elapsed_seconds", 0.0))
        trainer.history = history
        return trainer

    def _load_optimizer(self, saved: dict[str, Any]) -> None:
        """Load a saved optimiser state when its parameter groups match ours, else warn."""
        theirs = [len(g.get("params", ())) for g in saved.get("param_groups", ())]
        ours = [len(g["params"]) for g in self.optimizer.param_groups]
        if theirs != ours:
            warnings.warn(
                f"the checkpoint's optimiser has parameter groups of {theirs} tensors where this "
                f"trainer's has {ours}; the optimiser's moments restart from zero (weights, step "
                "count and history are restored).",
                RuntimeWarning,
                stacklevel=3,
            )
            return
        self.optimizer.load_state_dict(saved)
        for s in self.optimizer.state.values():
            for k, v in s.items():
                if isinstance(v, Tensor) and k != "step":
                    s[k] = v.to(self.device)
