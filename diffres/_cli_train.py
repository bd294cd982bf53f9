"""``python -m diffres train``: a run that a failure or a kill never loses.

Private to :mod:`diffres.cli`.  Before any data is read, ``--out`` is created and proved
writable and ``--name`` is checked to be a plain file name (so the checkpoint stays inside
``--out``); an existing checkpoint is never replaced unless ``--overwrite`` says so.
During training the checkpoint and its card are written atomically at the end of every
epoch (:func:`diffres.checkpoints.write_files_atomically`), so ``kill -9`` at any moment
leaves the last completed epoch, which ``train --resume DIR`` continues to exactly the
weights an uninterrupted run reaches.  SIGTERM and SIGINT stop after the current step, save
what the run has, and end with :class:`Interrupted` (exit 130); a second signal stops at
once, keeping the last epoch's checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from .errors import ParameterError
from .names import shown, unsafe_character

__all__ = ["Interrupted", "RESUME_IGNORES", "Signals", "stopped_and_saved", "stopped_at_once", "train_command"]

#: Options that describe a new run; ``--resume`` takes them from the saved run instead.
RESUME_IGNORES = (
    "--dataset",
    "--out",
    "--frontend",
    "--reduction-rate",
    "--hop-ms",
    "--win-ms",
    "--n-mels",
    "--batch-size",
    "--lr",
    "--width",
    "--seed",
    "--mixup",
    "--reverb",
    "--no-spec-augment",
    "--no-augment",
    "--max-files-per-class",
    "--overwrite",
)


class Interrupted(Exception):
    """A run stopped by SIGTERM or SIGINT after saving what it had; ``result`` is the JSON."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


def check_name(name: str) -> str:
    """``--name`` must be a plain file name: no folders, not hidden, nothing invisible."""
    bad = (
        not name
        or name in (".", "..")
        or name.startswith(".")
        or any(sep in name for sep in ("/", "\\", os.sep, "\x00"))
        or os.path.isabs(name)
        or len(name) > 120
        or unsafe_character(name) is not None
    )
    if bad:
        raise ParameterError(
            f"--name must be a plain file name without folders (letters, digits, '-', '_'; at most 120 "
            f"characters), got {shown(name)}; the checkpoint is always written inside --out."
        )
    return name


def prepare_out(out: str) -> Path:
    """Create ``--out`` and prove it writable (a file written and removed), before any data is
    read; a problem is a :class:`ParameterError` (bad input, exit 2)."""
    folder = Path(out).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ParameterError(f"--out {shown(str(out))} is a file; give a folder for the checkpoint and its card.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ParameterError(
            f"--out {shown(str(out))} cannot be written to ({exc.strerror or exc}); choose another folder."
        ) from None
    return folder


def checkpoint_in(folder: Path, name: str) -> Path:
    """``folder/name.pt``, checked to lie inside ``folder``."""
    path = folder / f"{check_name(name)}.pt"
    if path.resolve().parent != folder.resolve():
        raise ParameterError(f"--name {shown(name)} would write outside --out; give a plain file name.")
    return path


def run_summary(path: Path, card: dict[str, Any], config: Any, started: float) -> dict[str, Any]:
    """The JSON summary of a finished run that both trainers print (checkpoint, card,
    accuracies, times, settings); ``started`` is the ``time.time()`` the command began."""
    return {
        "checkpoint": str(path),
        "card": str(path.with_suffix(".json")),
        "val_accuracy": card["metrics"].get("val_accuracy"),
        "test_accuracy": card["metrics"].get("test_accuracy"),
        "train_seconds": card["train_seconds"],
        "total_seconds": round(time.time() - started, 2),
        "epochs": card["epochs"],
        "frontend": config.frontend,
        "reduction_rate": config.reduction_rate,
        "dataset": card["dataset"],
        "params": card["params"],
    }


def remove_stale_temps(path: Path) -> None:
    """Temporary files of a killed save of ``path`` (and its card)."""
    for stem in (path.name, path.with_suffix(".json").name):
        for tmp in path.parent.glob(f".{stem}.tmp-*"):
            with contextlib.suppress(OSError):
                tmp.unlink()


def find_resumable(target: str, name: str | None) -> Path:
    """The checkpoint ``--resume`` continues: a ``.pt`` given directly, ``DIR/<name>.pt``, or
    the only ``.pt`` in ``DIR``."""
    p = Path(target).expanduser()
    if p.is_file():
        return p
    if not p.is_dir():
        raise ParameterError(f"--resume {shown(target)} is neither a run folder nor a checkpoint file.")
    if name is not None:
        path = checkpoint_in(p, name)
        if not path.is_file():
            raise ParameterError(f"--resume: {shown(target)} holds no {path.name}.")
        return path
    found = sorted(p.glob("*.pt"))
    if len(found) != 1:
        what = "no checkpoint (.pt)" if not found else f"{len(found)} checkpoints ({', '.join(q.name for q in found)})"
        raise ParameterError(f"--resume: {shown(target)} holds {what}; say which with --name.")
    return found[0]


class Signals:
    """SIGTERM / SIGINT while training: ask the trainer to stop after its step (the first
    signal), stop at once (a second one, or before the trainer exists)."""

    def __init__(self) -> None:
        self.trainer: Any = None
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread (tests): no handlers
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is not None or self.trainer is None:
            self.received = signum
            raise KeyboardInterrupt
        self.received = signum
        self.trainer.request_stop()

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received else "an interrupt"


def run_config(args: Any, **overrides: Any) -> Any:
    """The :class:`~diffres.training.TrainConfig` of a new run from the ``train`` options that
    both trainers read (data, front-end, mel, optimiser, seed, device, augmentation), with
    ``overrides``; ``--no-augment`` then switches every augmentation off."""
    from .training import TrainConfig

    fields: dict[str, Any] = dict(
        dataset=args.dataset,
        frontend=args.frontend,
        reduction_rate=args.reduction_rate,
        hop_ms=args.hop_ms,
        win_ms=args.win_ms,
        n_mels=args.n_mels,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        width=args.width,
        seed=args.seed,
        device=args.device,
        mixup_alpha=args.mixup,
        reverb_probability=args.reverb,
        spec_augment=not args.no_spec_augment,
    )
    config = TrainConfig(**{**fields, **overrides})
    return config.without_augmentation() if args.no_augment else config


def _config_from(args: Any) -> Any:
    """The in-memory trainer's config: :func:`run_config` plus ``--max-files-per-class``."""
    return run_config(args, max_files_per_class=args.max_files_per_class)


def _plan(args: Any, default_name: str) -> tuple[Path, Any]:
    """(checkpoint path, TrainConfig or None for a resume), all checked before data is read."""
    if args.resume is not None:
        path = find_resumable(args.resume, args.name)
        return path, None
    config = _config_from(args)
    path = checkpoint_in(prepare_out(args.out), args.name or default_name)
    if path.exists() and not args.overwrite:
        raise ParameterError(
            f"{path.name} already exists in --out; continue that run with `--resume {args.out}`, choose another "
            "--name or --out, or pass --overwrite to replace it."
        )
    return path, config


def train_command(args: Any, out: Any, bar: Any, default_name: str, epochs_given: bool) -> dict[str, Any]:
    """Run (or resume) a training run; returns the JSON result.  Raises :class:`Interrupted`
    after saving when a signal stopped it."""
    from .training import Callback, Trainer

    path, config = _plan(args, default_name)
    remove_stale_temps(path)
    started = time.time()
    with Signals() as signals:
        if config is None:
            bar.note(f"resuming {path}")
            trainer = Trainer.resume(
                path, epochs=args.epochs if epochs_given else None, progress=bar, device=args.device
            )
            bar.note(f"resumed at epoch {trainer.epoch}/{trainer.config.epochs} (step {trainer.global_step})")
        else:
            trainer = Trainer(config, progress=bar)
        resumed_from = trainer.epoch if config is None else None
        for warning in getattr(trainer.dataset, "warnings", []):
            bar.note(f"note: {warning}")
        bar.note(
            f"{trainer.n_train} training clips, {len(trainer.model_config.classes)} classes, "
            f"{trainer.steps_per_epoch} steps per epoch on {trainer.device}"
        )
        signals.trainer = trainer
        saved: dict[str, Any] = {"epoch": trainer.epoch if config is None else None}

        class Report(Callback):
            def on_step(self, tr, rec):
                pos = (rec.global_step - 1) % tr.steps_per_epoch + 1
                bar(pos, tr.steps_per_epoch, f"epoch {rec.epoch + 1}/{tr.config.epochs} loss {rec.loss:.3f}")

            def on_epoch(self, tr, rec):
                if not tr.finished:  # the last epoch is saved below, with the full card
                    tr.save(path, card_extra={"complete": False}, evaluate=False)
                    saved["epoch"] = tr.epoch
                bar.note(
                    f"epoch {rec.epoch}/{tr.config.epochs}: train loss {rec.train_loss:.3f} "
                    f"acc {rec.train_accuracy:.3f} | val loss {rec.val_loss:.3f} acc {rec.val_accuracy:.3f} | "
                    f"{rec.seconds:.1f} s | saved"
                )

        resume = f"python -m diffres train --resume {path.parent} --name {path.stem}"
        try:
            trainer.fit(callbacks=[Report()])
        except KeyboardInterrupt:  # a second signal: the model may be mid-step, keep the last epoch's save
            raise stopped_at_once(signals, path, saved["epoch"], trainer, resumed_from, resume) from None
        if signals.received is not None and not trainer.finished:
            trainer.save(path, card_extra={"complete": False}, evaluate=False)
            raise stopped_and_saved(signals, path, trainer, resumed_from, resume)
        card = trainer.save(path, card_extra={"complete": True})
    result = {
        "ok": True,
        "interrupted": False,
        **run_summary(path, card, trainer.config, started),
        "resumed_from_epoch": resumed_from,
        "warnings": list(getattr(trainer.dataset, "warnings", [])),
    }
    print(
        f"saved {path} (val accuracy {result['val_accuracy']}, test accuracy {result['test_accuracy']}, "
        f"{result['train_seconds']:.1f} s training)",
        file=out,
    )
    return result


def stopped_at_once(
    signals: Signals, path: Path, saved_epoch: int | None, trainer: Any, resumed_from: int | None, resume: str
) -> Interrupted:
    """The :class:`Interrupted` of a run stopped at once (a second signal, maybe mid-step):
    the checkpoint of the last completed epoch (``saved_epoch``, None for none) is kept.
    Both trainers' commands raise it; ``resume`` is the command that continues the run."""
    return Interrupted(
        f"stopped at once by {signals.name}; the checkpoint of the last completed epoch is kept",
        _interrupted(path, saved_epoch, trainer, resumed_from, False, resume),
    )


def stopped_and_saved(signals: Signals, path: Path, trainer: Any, resumed_from: int | None, resume: str) -> Interrupted:
    """The :class:`Interrupted` of a run that a signal stopped after its current step and that
    has just saved what it had to ``path`` (both trainers' commands)."""
    return Interrupted(
        f"stopped by {signals.name} at step {trainer.global_step} (epoch {trainer.epoch} of "
        f"{trainer.config.epochs}); the model trained so far is saved: continue with --resume",
        _interrupted(path, trainer.epoch, trainer, resumed_from, True, resume),
    )


def _interrupted(
    path: Path, epoch: int | None, trainer: Any, resumed_from: int | None, saved_now: bool, resume: str
) -> dict:
    return {
        "interrupted": True,
        "checkpoint": str(path) if path.is_file() else None,
        "saved_epoch": epoch,
        "saved_step": trainer.global_step if saved_now else None,
        "epochs": trainer.config.epochs,
        "resumed_from_epoch": resumed_from,
        "resume": resume,
    }
