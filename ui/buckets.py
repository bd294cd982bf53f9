"""The user's own classes for training, Teachable-Machine style: class "buckets" of uploads
and microphone recordings, kept as 16 kHz clips in session state and written to a
class-folder tree when training starts; :func:`diffres.datasets.load_folder_dataset` reads
that tree back, so the clips get the library's checks and splits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import streamlit as st

import diffres
from diffres.audio import SAMPLE_RATE, split_clip, wav_bytes
from diffres.names import shown
from ui.data_sources import DataSource
from ui.session import class_folder, session_dir

#: Fewest clips per class before training on buckets is allowed (2 train, 1 val, 1 test).
MIN_PER_CLASS = 4
#: Clips per class we suggest for a useful model.
GOOD_PER_CLASS = 10
#: Length each bucket sample is cut to (recordings longer than two pieces are split).
PIECE_SECONDS = 1.0
#: Longest stretch of one upload or recording used (the rest of a longer file is left out).
MAX_SECONDS = 30.0
KEY_BUCKETS = "train_buckets"


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
    samples: list[Sample] = field(default_factory=list)
    #: Notices about what was added (a long file of which only the start was used).
    notes: list[str] = field(default_factory=list)


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


def add_to_bucket(bucket: Bucket, data: bytes, name: str, origin: str) -> int:
    """Decode ``data`` and add it (cut into pieces) to ``bucket``; returns pieces added.  Only
    the first :data:`MAX_SECONDS` of a longer file are used (:func:`trimmed_note` says so).

    Raises :class:`diffres.AudioError` for unreadable audio."""
    clip = diffres.load_clip(data, SAMPLE_RATE, max_seconds=MAX_SECONDS, trim=True)
    if clip.trimmed:
        bucket.notes.append(
            f"{shown(name)} is {clip.original_seconds:.0f} s long: its first {MAX_SECONDS:.0f} s were cut into clips."
        )
    pieces = split_clip(clip.samples, int(round(PIECE_SECONDS * SAMPLE_RATE)))
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
        return False, (
            f"Every class needs at least {MIN_PER_CLASS} clips before training ("
            + ", ".join(short)
            + f"). {GOOD_PER_CLASS}+ per class work better."
        )
    return True, ""


def buckets_source(b: list[Bucket] | None = None) -> DataSource:
    """Write the buckets as ``<session>/buckets/<digest>/<class>/<clip>.wav`` and describe them."""
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
    return DataSource(
        "buckets", "my classes", f"buckets:{digest}", str(root), None, f"Your recordings and uploads ({counts})."
    )
