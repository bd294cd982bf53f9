"""The Train page's settings: the settings row, "More settings", and the run's size before
Play (split sizes, optimiser steps, a warning when it is too small to learn).

Widget keys are stable (tests and the page's query state find them); defaults are
:class:`~diffres.training.TrainConfig`'s.  Callbacks call :func:`ui.train_data.skip_chunk` so a
click is answered before the next training chunk.
"""

from __future__ import annotations

import streamlit as st

import diffres
from diffres.frontends import FRONTENDS
from diffres.planning import plan_run
from diffres.training import TrainConfig
from ui import data_sources as D
from ui import runs as R
from ui.train_data import PERSIST, skip_chunk

HOP_OPTIONS = [2.5, 5.0, 10.0, 20.0]
LR_OPTIONS = [3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2]
WIDTH_OPTIONS = [8, 16, 24, 32]
BATCH_OPTIONS = [8, 16, 32, 64]
MEL_OPTIONS = [32, 48, 64, 96]
# The widgets' defaults are TrainConfig's (the library's one home for them), each among its options.


def settings(source: D.DataSource | None) -> TrainConfig | None:
    """The settings row and "More settings"; None (with the reason shown) when invalid."""
    # a row that wraps on narrow windows (columns would squeeze the labels into "Learnin g rate")
    row = st.container(horizontal=True, gap="medium")
    frontend = row.selectbox(
        "Front-end",
        FRONTENDS,
        index=0,
        key="train_frontend",
        on_change=skip_chunk,
        help="How the spectrogram's frames are reduced before the classifier.\n\n"
        + "\n".join(f"- **{k}**: {v}" for k, v in FRONTENDS.items()),
        width=160,
        persist_state=PERSIST,
    )
    rate = row.slider(
        "Reduction rate",
        0.0,
        0.95,
        TrainConfig.reduction_rate,
        0.05,
        key="train_rate",
        on_change=skip_chunk,
        disabled=frontend == "full",
        help="Fraction of frames removed (0.75 keeps a quarter). Ignored by the 'full' front-end.",
        width=190,
        persist_state=PERSIST,
    )
    hop = row.select_slider(
        "Hop (ms)",
        HOP_OPTIONS,
        value=TrainConfig.hop_ms,
        key="train_hop",
        on_change=skip_chunk,
        help="Hop of the input spectrogram. Smaller hops give DiffRes finer detail to choose "
        "from but cost more per step.",
        width=160,
        persist_state=PERSIST,
    )
    epochs = row.number_input(
        "Epochs",
        1,
        100,
        8,
        key="train_epochs",
        on_change=skip_chunk,
        help="Passes over the training split.",
        width=110,
        persist_state=PERSIST,
    )
    lr = row.select_slider(
        "Learning rate",
        LR_OPTIONS,
        value=TrainConfig.learning_rate,
        key="train_lr",
        on_change=skip_chunk,
        format_func=lambda v: f"{v:g}",
        help="Peak AdamW learning rate (warm-up, cosine decay).",
        width=190,
        persist_state=PERSIST,
    )
    seed = row.number_input(
        "Seed",
        0,
        9999,
        0,
        key="train_seed",
        on_change=skip_chunk,
        help="Same seed and settings give the same run.",
        width=100,
        persist_state=PERSIST,
    )
    with st.expander("More settings"):
        more = st.container(horizontal=True, gap="medium")
        width = more.select_slider(
            "Model width",
            WIDTH_OPTIONS,
            value=TrainConfig.width,
            key="train_width",
            on_change=skip_chunk,
            help="Channels of the classifier's first block: smaller trains faster.",
            width=170,
            persist_state=PERSIST,
        )
        batch = more.select_slider(
            "Batch size",
            BATCH_OPTIONS,
            value=TrainConfig.batch_size,
            key="train_batch",
            on_change=skip_chunk,
            help="Clips per step. Smaller batches make each step (and each click) quicker.",
            width=170,
            persist_state=PERSIST,
        )
        n_mels = more.select_slider(
            "Mel bins",
            MEL_OPTIONS,
            value=TrainConfig.n_mels,
            key="train_mels",
            on_change=skip_chunk,
            help="Frequency bands of the input spectrogram.",
            width=170,
            persist_state=PERSIST,
        )
        flags = more.container(width=170)
        augment = flags.toggle(
            "SpecAugment",
            True,
            key="train_specaug",
            on_change=skip_chunk,
            help="Random time and frequency masks (helps generalisation).",
            persist_state=PERSIST,
        )
        reverb = flags.toggle(
            "Room reverb",
            False,
            key="train_reverb",
            on_change=skip_chunk,
            help="Give half the training clips a random room's reverb ({:g}-{:g} s): the built-in "
            "sets are rendered dry, recordings are not.".format(*TrainConfig.reverb_seconds),
            persist_state=PERSIST,
        )
    try:
        return TrainConfig(
            dataset=source.path if source and source.kind == "builtin" else None,
            frontend=frontend,
            reduction_rate=0.0 if frontend == "full" else float(rate),
            hop_ms=float(hop),
            epochs=int(epochs),
            learning_rate=float(lr),
            seed=int(seed),
            width=int(width),
            batch_size=int(batch),
            n_mels=int(n_mels),
            spec_augment=bool(augment),
            device="cpu",
            reverb_probability=0.5 if reverb else 0.0,
            max_files_per_class=source.max_files_per_class if source else None,
        )
    except diffres.DiffResError as err:
        st.error(f"These settings cannot be used: {err}", icon=":material/error:")
        return None


def run_size(run: R.Run) -> None:
    """The run's split sizes and optimiser steps (before Play), and a warning when the run is
    too small to learn (:func:`diffres.planning.plan_run`)."""
    counts = D.class_counts(run.source)
    if counts is None:
        st.caption("The split sizes and the number of optimiser steps appear once the data is prepared (Play).")
        return
    p = plan_run(run.config, counts)
    st.caption(
        f"**Split:** {p.train_clips} training · {p.val_clips} validation · {p.test_clips} test clips "
        f"({p.n_classes} classes). **Optimiser steps:** {p.steps_per_epoch} per epoch (batches of {p.batch_size} "
        f"clips) × {p.epochs} epochs = **{p.total_steps}**."
    )
    for text in p.warnings():
        st.warning(f"Too small to learn: {text}", icon=":material/warning:")
