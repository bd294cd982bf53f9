"""``python -m diffres train`` on a streamed corpus, in one process or under torchrun.

:func:`add_corpus_arguments` adds the corpus options to the ``train`` parser;
:func:`wants_corpus` says whether a ``train`` call takes this path (``--stream``, a ``.csv``
manifest, or a torchrun launch); :func:`run_corpus_training` runs it with
:class:`~diffres.training.corpus.CorpusTrainer`.  Only rank 0 prints progress, the result
line and the JSON object.

The run is as safe as the in-memory one (:mod:`diffres._cli_train`, whose pieces it reuses):
``--out`` and ``--name`` are checked before any data is read, the checkpoint is written
atomically after every epoch, and SIGTERM or SIGINT stop after the current step (every rank
after the same one), save what the run has (rank 0 writes) and end with exit 130; a second
signal stops at once, keeping the last epoch's checkpoint.  ``--resume`` continues from the
saved step to the weights of an uninterrupted run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import torch

    from ._cli_train import Signals
    from .training.distributed import DistContext

__all__ = ["add_corpus_arguments", "run_corpus_training", "wants_corpus"]


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    """The corpus options of ``train`` (``--resume`` only where the parser lacks one)."""
    from .cli import _nonneg_int, _positive_float, _positive_int
    from .training.distributed import AMP_MODES

    g = parser.add_argument_group("large corpora (streamed from disk; torchrun for several processes)")
    g.add_argument(
        "--stream",
        action="store_true",
        help="stream --dataset (a folder of class folders or a path,label[,split] .csv) from disk instead of "
        "loading it into memory; implied by a .csv and under torchrun",
    )
    g.add_argument("--workers", type=_nonneg_int, default=2, help="data-loader worker processes per rank (default 2)")
    g.add_argument("--feature-cache", default=None, metavar="DIR", help="on-disk log-mel cache folder (default none)")
    g.add_argument("--no-resample", action="store_true", help="skip clips at another sample rate instead of resampling")
    g.add_argument(
        "--clip-seconds",
        type=_positive_float,
        default=None,
        help="training clip length (default: median of 64 sampled clips)",
    )
    g.add_argument(
        "--amp", choices=list(AMP_MODES), default="auto", help="mixed precision on CUDA (default auto: bf16, else fp16)"
    )
    g.add_argument(
        "--epochs-this-run",
        type=_positive_int,
        default=None,
        metavar="N",
        help="stop after N epochs in this call (e.g. a cluster's time limit); --resume continues to --epochs",
    )
    g.add_argument("--precision", choices=["float32", "float64"], default="float32", help=argparse.SUPPRESS)
    if "--resume" not in parser._option_string_actions:
        g.add_argument("--resume", default=None, metavar="DIR", help="continue the corpus run saved in DIR")


def wants_corpus(args: argparse.Namespace) -> bool:
    """True for ``--stream``, a ``.csv`` dataset, a torchrun launch, or ``--resume`` of a corpus run."""
    from .training.distributed import launched_by_torchrun

    dataset = str(getattr(args, "dataset", "") or "")
    if getattr(args, "stream", False) or dataset.lower().endswith(".csv") or launched_by_torchrun():
        return True
    return bool(getattr(args, "resume", None)) and _is_corpus_run(args.resume, getattr(args, "name", None))


def _is_corpus_run(folder: str, name: str | None) -> bool:
    """True when ``--resume`` points at a corpus run (its card has a ``corpus`` entry)."""
    import json

    from .errors import DiffResError

    try:
        card = json.loads(_resume_file(folder, name).with_suffix(".json").read_text())
    except (OSError, ValueError, DiffResError):
        return False
    return isinstance(card, dict) and "corpus" in card


def _resume_file(folder: str, name: str | None) -> Path:
    from ._cli_train import find_resumable

    return find_resumable(folder, name)


def run_corpus_training(args: argparse.Namespace, out: TextIO, *, epochs_given: bool = True) -> dict[str, Any]:
    """The corpus ``train`` command; returns the result dict (printed as JSON by rank 0).
    ``epochs_given``: ``--epochs`` was on the command line (a resumed run keeps its planned
    epochs otherwise)."""
    import torch

    from ._cli_train import Signals, checkpoint_in, prepare_out, remove_stale_temps
    from .datasets import BUILTIN_DATASETS
    from .datasets.streaming import corpus_name
    from .errors import ParameterError
    from .training.corpus import default_checkpoint_name
    from .training.distributed import setup_distributed, teardown_distributed

    resume = getattr(args, "resume", None)
    if args.dataset is None:
        raise ParameterError(
            "streamed training needs --dataset (a folder of class folders or a .csv manifest); a resumed corpus "
            "run needs the same one again, since its checkpoint stores no path of this machine."
        )
    if getattr(args, "max_files_per_class", None) is not None:
        raise ParameterError(
            "--max-files-per-class is not available for streamed training: a corpus is read as it is listed; "
            "pass a .csv manifest with the clips to use instead."
        )
    if args.dataset in BUILTIN_DATASETS:
        raise ParameterError(
            f"streamed training reads a folder or a .csv manifest; write the built-in set first with "
            f"`python -m diffres datasets build {args.dataset} --out DIR` and pass --dataset DIR."
        )
    if resume:
        path = _resume_file(resume, args.name)
    else:  # checked on every rank before any rank writes (the process group forms after this)
        if args.out is None:
            raise ParameterError("--out is required for a new run (the folder for the checkpoint and its card).")
        name = args.name or default_checkpoint_name(corpus_name(args.dataset), args.frontend, args.reduction_rate)
        path = checkpoint_in(prepare_out(args.out), name)
        if path.exists() and not getattr(args, "overwrite", False):
            raise ParameterError(
                f"{path.name} already exists in --out; continue that run with `--resume {args.out} --dataset "
                f"{args.dataset}`, choose another --name or --out, or pass --overwrite to replace it."
            )
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    with Signals() as signals:
        ctx, device = setup_distributed(args.device)
        try:
            if ctx.is_main:
                remove_stale_temps(path)
            epochs = args.epochs if epochs_given or not resume else None
            return _train(args, out, path, ctx, device, signals, started, bool(resume), epochs)
        finally:
            teardown_distributed(ctx)


def _train(
    args: argparse.Namespace,
    out: TextIO,
    path: Path,
    ctx: DistContext,
    device: torch.device,
    signals: Signals,
    started: float,
    resume: bool,
    epochs: int | None,
) -> dict[str, Any]:
    """Build or resume the trainer, fit it, and save (all ranks; rank 0 writes and answers)."""
    from ._cli_train import run_config, run_summary, stopped_and_saved, stopped_at_once
    from .cli import ProgressBar
    from .datasets.streaming import scan_corpus
    from .training.corpus import CorpusOptions, CorpusTrainer

    bar = ProgressBar(enabled=not args.quiet and ctx.is_main)
    options = CorpusOptions(
        clip_seconds=args.clip_seconds,
        num_workers=args.workers,
        cache_dir=args.feature_cache,
        resample=not args.no_resample,
        amp=args.amp,
        dtype=args.precision,
    )
    index = scan_corpus(args.dataset, seed=args.seed)
    if resume:
        trainer = CorpusTrainer.resume(
            path, index, epochs=epochs, options=options, ctx=ctx, device=device, note=bar.note
        )
        bar.note(f"resumed at step {trainer.global_step} (epoch {trainer.epoch}/{trainer.config.epochs})")
    else:
        config = run_config(args, dataset=str(args.dataset))
        trainer = CorpusTrainer(config, index, options=options, ctx=ctx, device=device, note=bar.note)
    resumed_from = trainer.epoch if resume else None
    bar.note(
        f"{trainer.n_train} training clips, {len(index.classes)} classes, {trainer.steps_per_epoch} steps per "
        f"epoch of {trainer.batch_size} clips on {ctx.world_size} x {device} (amp {trainer.amp.name})"
    )
    launcher = f"torchrun --nproc_per_node {ctx.world_size}" if ctx.world_size > 1 else "python"
    resume_hint = f"{launcher} -m diffres train --resume {path.parent} --name {path.stem} --dataset {args.dataset}"
    signals.trainer = trainer
    try:
        trainer.fit(save_each_epoch=path, max_epochs=args.epochs_this_run)
    except KeyboardInterrupt:  # a second signal: the model may be mid-step, keep the last epoch's save
        saved = trainer.last_saved_step
        saved_epoch = None if saved is None else saved // trainer.steps_per_epoch
        raise stopped_at_once(signals, path, saved_epoch, trainer, resumed_from, resume_hint) from None
    if signals.received is not None and not trainer.finished:
        trainer.save(path, evaluate=False)
        raise stopped_and_saved(signals, path, trainer, resumed_from, resume_hint)
    card = trainer.save(path)
    if not ctx.is_main or card is None:
        return {}
    result = {
        "ok": True,
        "interrupted": False,
        **run_summary(path, card, trainer.config, started),
        "world_size": ctx.world_size,
        "n_unreadable": card["corpus"]["n_unreadable"],
        "resumed_from_epoch": resumed_from,
    }
    print(
        f"saved {path} (val accuracy {result['val_accuracy']}, test accuracy {result['test_accuracy']}, "
        f"{result['train_seconds']:.1f} s training, {ctx.world_size} process(es))",
        file=out,
    )
    return result
