"""Widgets of the Train page's data panel: a built-in set, the user's class buckets
(uploads and recordings, Teachable-Machine style) or a zip of class folders.

Every widget keeps its key (tests and the page's query state find them by it); callbacks
call :func:`skip_chunk` so a click is answered before the next training chunk.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
import streamlit as st
import torch

import diffres
from diffres import figures
from diffres.audio import SAMPLE_RATE
from diffres.datasets import BUILTIN_DATASETS, DATASET_INFO
from diffres.names import shown
from ui import buckets as B
from ui import data_sources as D
from ui import runs as R
from ui.uploads import limit_text, max_upload_mb

ss = st.session_state
QUICK_OPTIONS = [0, 40, 20, 10]  # clips per class; 0 = all
SOURCES = {"builtin": "Built-in dataset", "buckets": "My classes (record or upload)", "zip": "Zip of class folders"}
#: Widgets keep their value across pages for the session.
PERSIST: Literal["session"] = "session"


def skip_chunk() -> None:
    """Widget callback: answer this click without training a chunk first."""
    ss["_train_skip_chunk"] = True


@st.cache_data(max_entries=256, show_spinner=False)
def _thumb(digest: str, _samples: np.ndarray) -> np.ndarray:
    fe = _thumb_frontend()
    with torch.no_grad():
        lm = fe(torch.from_numpy(np.asarray(_samples, dtype=np.float32)))[0].numpy()
    return figures.thumbnail_rgb(lm, width=96, height=40)


@st.cache_resource(show_spinner=False)
def _thumb_frontend() -> diffres.MelFrontend:
    return diffres.MelFrontend(SAMPLE_RATE, 32, 10.0, 25.0)


def _bucket_inputs(bucket: B.Bucket) -> None:
    """Add new uploads / recordings of this bucket's widgets (each file once); errors stay
    shown while the bad file is still in the widget."""
    seen = ss.setdefault("_train_bucket_seen", set())
    bad = ss.setdefault("_train_bucket_bad", {})
    errors = []
    files = ss.get(f"train_bup_{bucket.bucket_id}") or []
    rec = ss.get(f"train_brec_{bucket.bucket_id}")
    for f, origin in [(f, "upload") for f in files] + ([(rec, "microphone")] if rec is not None else []):
        data = f.getvalue()
        key = (bucket.bucket_id, hashlib.sha1(data).hexdigest())
        name = getattr(f, "name", "") if origin == "upload" else "recording"
        if key not in seen:
            seen.add(key)
            try:
                B.add_to_bucket(bucket, data, name or "clip", origin)
            except (diffres.DiffResError, MemoryError) as err:
                bad[key] = f"Could not add {shown(name)} to {shown(bucket.name)}: {R.describe_error(err)}"
        if key in bad:
            errors.append(bad[key])
    ss[f"_train_berr_{bucket.bucket_id}"] = errors


def _rename(bucket: B.Bucket) -> None:
    skip_chunk()
    name = str(ss.get(f"train_bname_{bucket.bucket_id}", "")).strip()
    if name:
        bucket.name = name


def _bucket_action(bucket: B.Bucket | None, action: str) -> None:
    """Button callbacks (callbacks, not return values: they survive the entrypoint's rerun)."""
    skip_chunk()
    b = B.buckets()
    if action == "add":
        B.add_bucket()
    elif action == "delete" and bucket in b and len(b) > 2:
        b.remove(bucket)
    elif action == "pop" and bucket is not None and bucket.samples:
        bucket.samples.pop()
    elif action == "clear" and bucket is not None:
        bucket.samples.clear()


def _bucket_editor() -> None:
    b = B.buckets()
    st.caption(
        f"Teachable-Machine style: make a class per kind of sound, then upload clips or record. Recordings and "
        f"uploads longer than {2 * B.PIECE_SECONDS:g} s are cut into {B.PIECE_SECONDS:g}-s pieces (silent pieces "
        f"dropped). A 'background' class (room noise, silence) helps the model say 'none of these'."
    )
    cols = st.columns(min(3, len(b)) or 1)
    for i, bucket in enumerate(list(b)):
        _bucket_inputs(bucket)
        with cols[i % len(cols)].container(border=True):
            c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
            c1.text_input(
                "Class name",
                bucket.name,
                key=f"train_bname_{bucket.bucket_id}",
                on_change=_rename,
                args=(bucket,),
                help="Folder name of this class in the saved dataset and the model's label.",
            )
            c2.button(
                "Delete",
                key=f"train_bdel_{bucket.bucket_id}",
                icon=":material/delete:",
                help="Remove this class and its clips.",
                on_click=_bucket_action,
                args=(bucket, "delete"),
                disabled=len(b) <= 2,
            )
            n = len(bucket.samples)
            hint = (
                ""
                if n >= B.GOOD_PER_CLASS
                else (
                    f" (at least {B.MIN_PER_CLASS} needed)"
                    if n < B.MIN_PER_CLASS
                    else f" ({B.GOOD_PER_CLASS}+ work better)"
                )
            )
            st.markdown(f"**{n} clip{'s' if n != 1 else ''}**{hint}")
            st.file_uploader(
                "Upload clips",
                type=["wav", "flac", "ogg", "mp3"],
                accept_multiple_files=True,
                key=f"train_bup_{bucket.bucket_id}",
                on_change=skip_chunk,
                max_upload_size=max_upload_mb(),
                help=f"One or more audio files of this class (any rate; mixed to 16 kHz mono; {limit_text()} each). "
                "Removing a file "
                "from this list keeps its clip: use 'Remove last' or 'Clear' below.",
            )
            st.audio_input(
                "Record",
                sample_rate=SAMPLE_RATE,
                key=f"train_brec_{bucket.bucket_id}",
                on_change=skip_chunk,
                help="Record a few seconds; it is cut into 1-s samples of this class.",
            )
            for err in ss.get(f"_train_berr_{bucket.bucket_id}", []):
                st.error(err, icon=":material/error:")
            for note in bucket.notes[-3:]:
                st.info(note, icon=":material/content_cut:")
            if bucket.samples:
                shown = bucket.samples[-12:]
                st.image([_thumb(s.digest, s.samples) for s in shown], width=72, caption=[s.name[:14] for s in shown])
                d1, d2 = st.columns(2)
                d1.button(
                    "Remove last",
                    key=f"train_bpop_{bucket.bucket_id}",
                    on_click=_bucket_action,
                    args=(bucket, "pop"),
                    help="Remove the most recent clip of this class.",
                )
                d2.button(
                    "Clear",
                    key=f"train_bclr_{bucket.bucket_id}",
                    on_click=_bucket_action,
                    args=(bucket, "clear"),
                    help="Remove every clip of this class.",
                )
    st.button(
        "Add a class",
        key="train_badd",
        icon=":material/add:",
        on_click=_bucket_action,
        args=(None, "add"),
        help="A new, empty class.",
    )


def data_source() -> D.DataSource | None:
    """The data panel; returns the chosen source, or None until one is usable."""
    kind = st.segmented_control(
        "Data",
        list(SOURCES),
        default="builtin",
        format_func=lambda k: SOURCES[k],
        key="train_source",
        on_change=skip_chunk,
        help="What the model learns to tell apart.",
        persist_state=PERSIST,
    )
    kind = kind or "builtin"
    if kind == "builtin":
        c1, c2 = st.columns([2, 1])
        name = c1.selectbox(
            "Dataset",
            list(BUILTIN_DATASETS),
            index=0,
            key="train_dataset",
            on_change=skip_chunk,
            help="Generated locally, with fixed train / validation / test splits.",
            persist_state=PERSIST,
        )
        quick = c2.selectbox(
            "Clips per class",
            QUICK_OPTIONS,
            index=0,
            key="train_quick",
            on_change=skip_chunk,
            format_func=lambda n: "all" if n == 0 else f"{n} (quick run)",
            help="Use fewer clips for a faster, rougher run.",
            persist_state=PERSIST,
        )
        info = DATASET_INFO[name]
        st.caption(f"{info['description']} Classes: {', '.join(BUILTIN_DATASETS[name])}.")
        return D.DataSource("builtin", name, f"builtin:{name}:{quick}", name, quick or None, info["description"])
    if kind == "buckets":
        _bucket_editor()
        ready, hint = B.buckets_ready()
        if not ready:
            st.info(hint, icon=":material/info:")
            return None
        return B.buckets_source()
    up = st.file_uploader(
        "Zip with one folder of audio files per class",
        type=["zip"],
        key="train_zip",
        on_change=skip_chunk,
        max_upload_size=max_upload_mb(),
        help=f"For example my_sounds.zip -> dog/*.wav, cat/*.wav ({limit_text()}; at most 30 minutes of audio). "
        "Each class needs 2+ clips (3+ for a validation and a test clip).",
    )
    if up is None:
        st.info("Upload a zip to train on your own folders.", icon=":material/upload_file:")
        return None
    failed = ss.setdefault("_train_zip_errors", {})  # digest -> message: a refused zip is not read again
    data = up.getvalue()
    key = hashlib.sha1(data).hexdigest()[:16]
    if key not in failed:
        try:
            digest, path = D.save_zip(data, up.name)
            source = D.DataSource("zip", up.name, f"zip:{digest}", str(path), None, f"Your zip {up.name}.")
            with st.spinner(f"Checking and reading {up.name}...", show_time=True):
                ds = D.load_source(source)
        except (diffres.DiffResError, MemoryError, OSError) as err:
            failed[key] = f"Could not use {shown(up.name)}: {R.describe_error(err)}"
    if key in failed:
        st.error(failed[key], icon=":material/error:")
        return None
    counts = ds.class_counts()
    st.caption(
        f"{len(ds)} clips in {ds.n_classes} classes, {ds.clip_seconds:g} s each: "
        + ", ".join(f"{c} {sum(counts[s][c] for s in counts)}" for c in ds.classes)
    )
    if ds.skipped:
        st.warning(
            f"{len(ds.skipped)} files were skipped (first: {ds.skipped[0][0]}: {ds.skipped[0][1]}).",
            icon=":material/warning:",
        )
    for note in ds.warnings:
        st.warning(note, icon=":material/warning:")
    return source
