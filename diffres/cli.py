"""Command line: ``python -m diffres train / evaluate / datasets build``.

Each subcommand calls one library function.  Progress goes to stderr; results to stdout.
With ``--json`` the last stdout line is always one JSON object: the result with
``"ok": true``, or ``{"ok": false, "error": {"type", "message"}}`` on any failure, bad
arguments included.  Exit codes: 0 success; 2 bad input (arguments, and every
:class:`DiffResError`: a missing dataset, a bad checkpoint, unreadable audio...); 1 a
runtime failure (a full disk, no memory, an unexpected error: its traceback goes to stderr);
130 interrupted (``train`` saves what it had first and its JSON says ``"interrupted": true``).
A clean error prints one ``error: ...`` line to stderr, no traceback.
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

from ._cli_train import RESUME_IGNORES, Interrupted, train_command
from .errors import DiffResError

__all__ = ["main", "build_parser", "ProgressBar", "EXIT_OK", "EXIT_FAILURE", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad arguments (argparse's complaint), turned into exit 2 and, with ``--json``, a JSON line."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


#: The sub-command parsers, for usage errors found after parsing.
_SUBPARSERS: dict[str, argparse.ArgumentParser] = {}


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` can print the JSON failure line."""

    def error(self, message: str):
        raise UsageError(self, message)


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
    parser = _Parser(
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
        "--dataset", default=None, help=f"built-in name ({builtins}), a folder of class sub-folders, or a .zip"
    )
    t.add_argument(
        "--out",
        default=None,
        help="output folder for <name>.pt and <name>.json (created and checked before training; the "
        "checkpoint is rewritten at the end of every epoch)",
    )
    t.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="continue the run saved in DIR (or a .pt) from its last completed epoch to its planned epochs "
        "(--epochs raises them); its saved settings are used",
    )
    t.add_argument("--overwrite", action="store_true", help="replace an existing <name>.pt in --out")
    _SUBPARSERS["train"] = t
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
        "--no-augment",
        action="store_true",
        help="switch every augmentation off (gain, time shift, noise, SpecAugment, mixup, reverb), e.g. to "
        "check that N data-parallel processes train the weights of one (each rank augments its own share)",
    )
    t.add_argument(
        "--max-files-per-class", type=_positive_int, default=None, help="use at most this many clips per class"
    )
    t.add_argument("--device", default=d.device, help="auto (CUDA when present), cpu, cuda or cuda:N (default auto)")
    t.add_argument(
        "--threads", type=_positive_int, default=None, help="CPU threads for torch (default: torch's choice)"
    )
    t.add_argument(
        "--name",
        default=None,
        help="checkpoint file name without .pt, no folders (default <dataset>_<frontend>_r<rate>)",
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
    dl = dsub.add_parser("list", help="list the built-in datasets and their classes")
    dl.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")

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


def _cmd_train(args, out, argv: Sequence[str]) -> dict:
    import torch

    from ._cli_corpus import run_corpus_training, wants_corpus

    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    if wants_corpus(args):  # a streamed corpus (--stream, a .csv, torchrun, or --resume of one)
        return run_corpus_training(args, out, epochs_given="--epochs" in given)
    if args.resume is None and (args.dataset is None or args.out is None):
        missing = ", ".join(n for n, v in (("--dataset", args.dataset), ("--out", args.out)) if v is None)
        raise UsageError(_SUBPARSERS["train"], f"the following arguments are required: {missing}")
    if args.resume is not None and given & set(RESUME_IGNORES):
        clash = ", ".join(sorted(given & set(RESUME_IGNORES)))
        raise UsageError(_SUBPARSERS["train"], f"--resume continues a saved run with its own settings; drop {clash}")
    if args.threads:
        torch.set_num_threads(args.threads)
    bar = ProgressBar(enabled=not args.quiet)
    default = None if args.dataset is None else _default_name(args.dataset, args.frontend, args.reduction_rate)
    return train_command(args, out, bar, default or "model", "--epochs" in given)


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
    summary["ok"] = True
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
        return {"ok": True, "datasets": BUILTIN_DATASETS}
    bar = ProgressBar(enabled=not args.quiet)
    target = export_dataset(args.name, args.out, split=args.split, seed=args.seed, progress=bar)
    n = sum(1 for p in Path(target).rglob("*.wav"))
    print(f"wrote {n} clips to {target}", file=out)
    return {"ok": True, "out": str(target), "n": n, "split": args.split, "dataset": args.name}


def _cmd_build_ext(args, out) -> dict:
    from . import fused

    started = time.perf_counter()
    path = fused.build(verbose=args.verbose)
    seconds = time.perf_counter() - started
    print(f"fused merge kernel ready: {path} ({seconds:.1f} s)", file=out)
    return {"ok": True, "library": str(path), "seconds": round(seconds, 2)}


def _failure(exc: BaseException, message: str) -> dict:
    return {"ok": False, "error": {"type": type(exc).__name__, "message": message}}


def _run(args, out, argv: Sequence[str]) -> dict:
    if args.command == "train":
        return _cmd_train(args, out, argv)
    if args.command == "evaluate":
        return _cmd_evaluate(args, out)
    if args.command == "build-ext":
        return _cmd_build_ext(args, out)
    return _cmd_datasets(args, out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0, 1, 2 or 130; see the module docstring).

    Bad arguments raise ``SystemExit(2)`` as argparse always has, after the JSON failure line
    when ``--json`` was given."""
    argv = list(sys.argv[1:] if argv is None else argv)
    want_json = "--json" in argv and os.environ.get("RANK", "0") == "0"  # torchrun: rank 0 answers alone
    out = sys.stdout
    parser = build_parser()

    def finish(code: int, result: dict) -> int:
        if want_json:
            out.write(json.dumps(result, default=str) + "\n")
        out.flush()
        return code

    try:
        args = parser.parse_args(argv)
        result = _run(args, out, argv)
    except UsageError as exc:
        exc.parser.print_usage(sys.stderr)
        print(f"{exc.parser.prog}: error: {exc}", file=sys.stderr)
        finish(EXIT_BAD_INPUT, _failure(exc, str(exc)))
        raise SystemExit(EXIT_BAD_INPUT) from None
    except Interrupted as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        return finish(EXIT_INTERRUPTED, {**_failure(exc, str(exc)), **exc.result})
    except KeyboardInterrupt as exc:
        print("interrupted", file=sys.stderr)
        return finish(EXIT_INTERRUPTED, {**_failure(exc, "interrupted before anything was saved"), "interrupted": True})
    except DiffResError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return finish(EXIT_BAD_INPUT, _failure(exc, str(exc)))
    except OSError as exc:  # a full disk, a permission...
        message = f"{exc.strerror or exc}" + (f" ({Path(exc.filename).name})" if exc.filename else "")
        print(f"error: {message}", file=sys.stderr)
        return finish(EXIT_FAILURE, _failure(exc, message))
    except MemoryError as exc:
        message = "out of memory; use a smaller dataset, batch size or model"
        print(f"error: {message}", file=sys.stderr)
        return finish(EXIT_FAILURE, _failure(exc, message))
    except Exception as exc:  # a crash: say so, keep the traceback for a bug report
        import traceback

        traceback.print_exc(file=sys.stderr)
        message = f"unexpected error: {type(exc).__name__}: {exc}"
        print(f"error: {message}", file=sys.stderr)
        return finish(EXIT_FAILURE, _failure(exc, message))
    return finish(EXIT_OK, result)
