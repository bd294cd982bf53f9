"""Command line: ``python -m diffres train / evaluate / datasets build``.

Each subcommand calls one library function.  Progress goes to stderr; results to stdout;
with ``--json`` the last stdout line is one JSON object.  A :class:`DiffResError` prints
its message to stderr and exits 1 (no traceback); bad arguments exit 2 (argparse).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import DiffResError

__all__ = ["main", "build_parser", "ProgressBar"]


class ProgressBar:
    """A small progress bar on stderr (redrawn in place on a terminal, sparse lines otherwise)."""

    def __init__(self, stream=None, width: int = 30, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_line = ""
        self._last_time = 0.0
        self._last_message: str | None = None

    def __call__(self, done: int, total: int, message: str = "") -> None:
        if not self.enabled:
            return
        total = max(1, int(total))
        frac = min(1.0, max(0.0, done / total))
        filled = int(round(frac * self.width))
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} {message}"
        now = time.monotonic()
        if self.tty:
            pad = " " * max(0, len(self._last_line) - len(line))
            self.stream.write("\r" + line + pad)
            if done >= total:
                self.stream.write("\n")
            self.stream.flush()
        elif done >= total or done == 0 or now - self._last_time > 5.0:  # sparse lines in logs
            self.stream.write(line + "\n")
            self.stream.flush()
            self._last_time = now
        self._last_line = line
        self._last_message = message

    def note(self, text: str) -> None:
        if self.enabled:
            if self.tty and self._last_line:
                self.stream.write("\n")
                self._last_line = ""
            self.stream.write(text + "\n")
            self.stream.flush()


def _rate(value: str) -> float:
    from .functional import check_rate

    try:
        return check_rate(float(value), "reduction rate")
    except ValueError as exc:  # not a number, or (DiffResError is a ValueError) outside [0, 1)
        message = str(exc) if isinstance(exc, DiffResError) else f"reduction rate must be a number, got {value!r}"
        raise argparse.ArgumentTypeError(message.rstrip(".")) from None


def _checked(value: str, cast, ok, expected: str):
    """Parse ``value`` with ``cast`` and check it with ``ok``; argparse shows ``expected``."""
    try:
        x = cast(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}") from None
    if not ok(x):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}")
    return x


def _positive_int(value: str) -> int:
    return _checked(value, int, lambda n: n >= 1, "a whole number >= 1")


def _nonneg_int(value: str) -> int:
    return _checked(value, int, lambda n: n >= 0, "a whole number >= 0")


def _positive_float(value: str) -> float:
    return _checked(value, float, lambda x: x > 0 and not math.isinf(x), "a positive number")


def build_parser() -> argparse.ArgumentParser:
    from .datasets import BUILTIN_DATASETS
    from .frontends import FRONTENDS
    from .training import TrainConfig

    d = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m diffres",
        description="DiffRes Explorer: train and evaluate audio classifiers with learned temporal resolution.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    t = sub.add_parser(
        "train",
        help="train a classifier; writes a checkpoint and its model card into --out",
        description="Train a classifier on a built-in dataset or a folder with one sub-folder per class.",
    )
    builtins = ", ".join(BUILTIN_DATASETS)
    t.add_argument(
        "--dataset", required=True, help=f"built-in name ({builtins}), a folder of class sub-folders, or a .zip"
    )
    t.add_argument("--out", required=True, help="output folder for <name>.pt and <name>.json")
    t.add_argument(
        "--frontend",
        default=d.frontend,
        choices=list(FRONTENDS),
        metavar="NAME",
        help="time-reduction front-end (default %(default)s): "
        + "; ".join(f"{k}: {v.rstrip('.')}" for k, v in FRONTENDS.items()).replace("%", "%%"),
    )
    t.add_argument(
        "--reduction-rate",
        type=_rate,
        default=d.reduction_rate,
        help=f"fraction of frames removed, in [0, 1) (default {d.reduction_rate})",
    )
    t.add_argument("--hop-ms", type=_positive_float, default=d.hop_ms, help=f"mel hop in ms (default {d.hop_ms:g})")
    t.add_argument("--win-ms", type=_positive_float, default=d.win_ms, help=f"mel window in ms (default {d.win_ms:g})")
    t.add_argument("--n-mels", type=_positive_int, default=d.n_mels, help=f"mel bins (default {d.n_mels})")
    t.add_argument(
        "--epochs", type=_positive_int, default=d.epochs, help=f"passes over the training split (default {d.epochs})"
    )
    t.add_argument(
        "--batch-size", type=_positive_int, default=d.batch_size, help=f"clips per step (default {d.batch_size})"
    )
    t.add_argument(
        "--lr", type=_positive_float, default=d.learning_rate, help=f"peak learning rate (default {d.learning_rate:g})"
    )
    t.add_argument(
        "--width", type=_positive_int, default=d.width, help=f"channels of the CNN's first block (default {d.width})"
    )
    t.add_argument("--seed", type=_nonneg_int, default=d.seed, help=f"training seed (default {d.seed})")
    t.add_argument(
        "--mixup",
        type=float,
        default=d.mixup_alpha,
        metavar="ALPHA",
        help="mixup Beta(alpha, alpha); 0 = off (default)",
    )
    t.add_argument(
        "--reverb",
        type=float,
        default=d.reverb_probability,
        metavar="SHARE",
        help="share of training clips given a synthetic room's reverb, in [0, 1]; 0 = off (default)",
    )
    t.add_argument("--no-spec-augment", action="store_true", help="switch SpecAugment off")
    t.add_argument(
        "--max-files-per-class", type=_positive_int, default=None, help="use at most this many clips per class"
    )
    t.add_argument("--device", default=d.device, help="auto (CUDA when present), cpu, cuda or cuda:N (default auto)")
    t.add_argument(
        "--threads", type=_positive_int, default=None, help="CPU threads for torch (default: torch's choice)"
    )
    t.add_argument(
        "--name", default=None, help="checkpoint file name without .pt (default <dataset>_<frontend>_r<rate>)"
    )
    t.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    t.add_argument("--quiet", action="store_true", help="no progress on stderr")
    from ._cli_corpus import add_corpus_arguments

    add_corpus_arguments(t)

    e = sub.add_parser("evaluate", help="evaluate a checkpoint on a folder with one sub-folder per class")
    e.add_argument("--checkpoint", required=True, help="a .pt file from `train` or checkpoints/")
    e.add_argument(
        "--data",
        required=True,
        help="a folder (or .zip) with one sub-folder of audio per class, or a built-in name (its test split)",
    )
    e.add_argument(
        "--reduction-rate",
        type=_rate,
        default=None,
        help="run the front-end at another rate (default: the trained one)",
    )
    e.add_argument("--threads", type=_positive_int, default=None, help="CPU threads for torch")
    e.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    e.add_argument("--quiet", action="store_true", help="no progress on stderr")

    ds = sub.add_parser("datasets", help="built-in datasets")
    dsub = ds.add_subparsers(dest="datasets_command", metavar="ACTION")
    dsub.required = True
    b = dsub.add_parser("build", help="write a built-in dataset as DIR/<class>/<clip>.wav")
    b.add_argument("name", help=builtins)
    b.add_argument("--out", required=True, help="target folder")
    b.add_argument("--split", choices=["train", "val", "test"], default=None, help="write only this split")
    b.add_argument("--seed", type=_nonneg_int, default=0, help="generation seed (default 0: the shipped splits)")
    b.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    b.add_argument("--quiet", action="store_true", help="no progress on stderr")
    dsub.add_parser("list", help="list the built-in datasets and their classes")

    k = sub.add_parser(
        "build-ext",
        help="compile the fused CPU merge kernel for this machine (optional; about 20 s)",
        description="Compile diffres/csrc/fused_merge.cpp into ~/.cache/diffres-explorer/ext/. "
        "Without it DiffRes runs its PyTorch merge path (same results, slower on CPU).",
    )
    k.add_argument("--verbose", action="store_true", help="show the compiler's output")
    k.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    return parser


def _default_name(dataset: str, frontend: str, rate: float) -> str:
    base = Path(dataset).stem if (os.sep in dataset or Path(dataset).exists()) else dataset
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in base) or "model"
    return f"{safe}_{frontend}_r{int(round(rate * 100))}"


def _cmd_train(args, out) -> dict:
    import torch

    from ._cli_corpus import run_corpus_training, wants_corpus

    if wants_corpus(args):  # a streamed corpus, one process or torchrun
        return run_corpus_training(args, out)

    from .training import Callback, TrainConfig, Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    bar = ProgressBar(enabled=not args.quiet)
    config = TrainConfig(
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
        mixup_alpha=args.mixup,
        reverb_probability=args.reverb,
        spec_augment=not args.no_spec_augment,
        max_files_per_class=args.max_files_per_class,
        device=args.device,
    )
    started = time.time()
    trainer = Trainer(config, progress=bar)
    bar.note(
        f"{trainer.n_train} training clips, {len(trainer.model_config.classes)} classes, "
        f"{trainer.steps_per_epoch} steps per epoch on {trainer.device}"
    )

    class Report(Callback):
        def on_step(self, tr, rec):
            pos = (rec.global_step - 1) % tr.steps_per_epoch + 1
            bar(pos, tr.steps_per_epoch, f"epoch {rec.epoch + 1}/{tr.config.epochs} loss {rec.loss:.3f}")

        def on_epoch(self, tr, rec):
            bar.note(
                f"epoch {rec.epoch}/{tr.config.epochs}: train loss {rec.train_loss:.3f} acc {rec.train_accuracy:.3f} | "
                f"val loss {rec.val_loss:.3f} acc {rec.val_accuracy:.3f} | {rec.seconds:.1f} s"
            )

    try:
        trainer.fit(callbacks=[Report()])
    except KeyboardInterrupt:
        bar.note("interrupted: saving the model trained so far")
    name = args.name or _default_name(args.dataset, args.frontend, args.reduction_rate)
    path = Path(args.out) / f"{name}.pt"
    card = trainer.save(path)
    result = {
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
    print(
        f"saved {path} (val accuracy {result['val_accuracy']}, test accuracy {result['test_accuracy']}, "
        f"{result['train_seconds']:.1f} s training)",
        file=out,
    )
    return result


def _cmd_evaluate(args, out) -> dict:
    import torch

    from .training import evaluate_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    bar = ProgressBar(enabled=not args.quiet)
    res = evaluate_checkpoint(args.checkpoint, args.data, reduction_rate=args.reduction_rate, progress=bar)
    summary = res.summary()
    summary["checkpoint"] = str(args.checkpoint)
    summary["confusion"] = res.confusion.tolist()
    summary["classes"] = list(res.classes)
    print(f"accuracy {res.accuracy:.4f} on {res.n} clips", file=out)
    for c, a in res.per_class.items():
        if not math.isnan(a):
            print(f"  {c:>16s}: {a:.3f}", file=out)
    return summary


def _cmd_datasets(args, out) -> dict:
    from .datasets import BUILTIN_DATASETS, export_dataset

    if args.datasets_command == "list":
        for name, classes in BUILTIN_DATASETS.items():
            print(f"{name}: {', '.join(classes)}", file=out)
        return {"datasets": BUILTIN_DATASETS}
    bar = ProgressBar(enabled=not args.quiet)
    target = export_dataset(args.name, args.out, split=args.split, seed=args.seed, progress=bar)
    n = sum(1 for p in Path(target).rglob("*.wav"))
    print(f"wrote {n} clips to {target}", file=out)
    return {"out": str(target), "n": n, "split": args.split, "dataset": args.name}


def _cmd_build_ext(args, out) -> dict:
    from . import fused

    started = time.perf_counter()
    path = fused.build(verbose=args.verbose)
    seconds = time.perf_counter() - started
    print(f"fused merge kernel ready: {path} ({seconds:.1f} s)", file=out)
    return {"library": str(path), "seconds": round(seconds, 2)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = sys.stdout
    try:
        if args.command == "train":
            result = _cmd_train(args, out)
        elif args.command == "evaluate":
            result = _cmd_evaluate(args, out)
        elif args.command == "build-ext":
            result = _cmd_build_ext(args, out)
        else:
            result = _cmd_datasets(args, out)
    except DiffResError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # unwritable --out, full disk...
        print(f"error: {exc.strerror or exc} ({exc.filename or ''})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if getattr(args, "json", False):
        out.write(json.dumps(result, default=str) + "\n")
    out.flush()
    return 0
