"""Train: watch a small DiffRes classifier learn, TensorFlow-Playground style.

Pick data (a built-in set, your own recorded / uploaded classes, or a zip of class folders) and
settings, then Play / Pause / Step / Reset.  Training runs in short chunks inside an
``st.fragment(run_every=...)``, so the page stays responsive; the trainer lives in the session
(``ui.training``), so it survives reruns and page switches, and checkpoints are written to a
per-session folder after every epoch, on pause and at the end.
"""

from __future__ import annotations

import hashlib
import math

import streamlit as st

import diffres
from diffres import figures
from diffres.datasets import BUILTIN_DATASETS, DATASET_INFO
from diffres.frontends import FRONTENDS
from diffres.training import TrainConfig
from ui import training as T
from ui.frame import ensure_entrypoint

ensure_entrypoint()  # run inside app.py (sidebar, navigation), never alone

ss = st.session_state
TICK_SECONDS = 0.5
HOP_OPTIONS = [2.5, 5.0, 10.0, 20.0]
LR_OPTIONS = [3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2]
QUICK_OPTIONS = [0, 40, 20, 10]  # clips per class; 0 = all
SOURCES = {"builtin": "Built-in dataset", "buckets": "My classes (record or upload)", "zip": "Zip of class folders"}
FRONTEND_HELP = {
    "diffres": "DiffRes: learns which frames matter and merges the rest (the method this app is about).",
    "avgpool": "Average pooling over time: a fixed, uniform reduction at the same frame budget.",
    "maxpool": "Max pooling over time at the same budget.",
    "avgmaxpool": "Average and max pooling stacked.",
    "convavgpool": "A learned convolution, then average pooling.",
    "changehop": "A larger hop: fewer frames from the start (the usual way to save compute).",
    "full": "No reduction: every frame goes to the classifier (the accuracy ceiling, most compute).",
}
PERSIST = dict(persist_state="session")


def _skip_chunk() -> None:
    """Widget callback: answer this click without training a chunk first."""
    ss["_train_skip_chunk"] = True


def _fmt_seconds(s: float) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    s = int(round(s))
    return f"{s // 60}:{s % 60:02d}" if s >= 60 else f"{s} s"


# ------------------------------------------------------------------ header
st.title("Train")
st.markdown("Train a small sound classifier with a DiffRes front-end and **watch what it learns to keep**: the "
            "importance curve and the merged spectrogram of one validation clip are redrawn as training proceeds. "
            "**Play** trains in short slices (the page stays usable), **Step** does one batch, **Reset** starts over. "
            "Changing a setting starts a new run; earlier runs stay below for comparison. Your runs live for this "
            "session: on another page training waits, and carries on when you come back.")


# ------------------------------------------------------------------ data
@st.cache_data(max_entries=256, show_spinner=False)
def _thumb(digest: str, _samples) -> "object":
    import numpy as np
    import torch

    fe = _thumb_frontend()
    with torch.no_grad():
        lm = fe(torch.from_numpy(np.asarray(_samples, dtype=np.float32)))[0].numpy()
    return figures.thumbnail_rgb(lm, width=96, height=40)


@st.cache_resource(show_spinner=False)
def _thumb_frontend():
    return diffres.MelFrontend(16000, 32, 10.0, 25.0)


def _bucket_inputs(bucket: T.Bucket) -> None:
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
                T.add_to_bucket(bucket, data, name or "clip", origin)
            except diffres.DiffResError as err:
                bad[key] = f"Could not add {name!r} to '{bucket.name}': {err}"
        if key in bad:
            errors.append(bad[key])
    ss[f"_train_berr_{bucket.bucket_id}"] = errors


def _rename(bucket: T.Bucket) -> None:
    _skip_chunk()
    name = str(ss.get(f"train_bname_{bucket.bucket_id}", "")).strip()
    if name:
        bucket.name = name


def _bucket_action(bucket: T.Bucket | None, action: str) -> None:
    """Button callbacks (callbacks, not return values: they survive the entrypoint's rerun)."""
    _skip_chunk()
    b = T.buckets()
    if action == "add":
        T.add_bucket()
    elif action == "delete" and bucket in b and len(b) > 2:
        b.remove(bucket)
    elif action == "pop" and bucket.samples:
        bucket.samples.pop()
    elif action == "clear":
        bucket.samples.clear()


def _bucket_editor() -> None:
    b = T.buckets()
    st.caption(f"Teachable-Machine style: make a class per kind of sound, then upload clips or record. Recordings and "
               f"uploads longer than {2 * T.PIECE_SECONDS:g} s are cut into {T.PIECE_SECONDS:g}-s pieces (silent pieces "
               f"dropped). A 'background' class (room noise, silence) helps the model say 'none of these'.")
    cols = st.columns(min(3, len(b)) or 1)
    for i, bucket in enumerate(list(b)):
        _bucket_inputs(bucket)
        with cols[i % len(cols)].container(border=True):
            c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
            c1.text_input("Class name", bucket.name, key=f"train_bname_{bucket.bucket_id}", on_change=_rename,
                          args=(bucket,), help="Folder name of this class in the saved dataset and the model's label.")
            c2.button("Delete", key=f"train_bdel_{bucket.bucket_id}", icon=":material/delete:",
                      help="Remove this class and its clips.", on_click=_bucket_action, args=(bucket, "delete"),
                      disabled=len(b) <= 2)
            n = len(bucket.samples)
            hint = "" if n >= T.GOOD_PER_CLASS else (f" (at least {T.MIN_PER_CLASS} needed)" if n < T.MIN_PER_CLASS
                                                      else f" ({T.GOOD_PER_CLASS}+ work better)")
            st.markdown(f"**{n} clip{'s' if n != 1 else ''}**{hint}")
            st.file_uploader("Upload clips", type=["wav", "flac", "ogg", "mp3"], accept_multiple_files=True,
                             key=f"train_bup_{bucket.bucket_id}", on_change=_skip_chunk, max_upload_size=20,
                             help="One or more audio files of this class (any rate; mixed to 16 kHz mono). Removing a file from this "
                                  "list keeps its clip: use 'Remove last' or 'Clear' below.")
            st.audio_input("Record", sample_rate=16000, key=f"train_brec_{bucket.bucket_id}", on_change=_skip_chunk,
                           help="Record a few seconds; it is cut into 1-s samples of this class.")
            for err in ss.get(f"_train_berr_{bucket.bucket_id}", []):
                st.error(err, icon=":material/error:")
            if bucket.samples:
                shown = bucket.samples[-12:]
                st.image([_thumb(s.digest, s.samples) for s in shown], width=72,
                         caption=[s.name[:14] for s in shown])
                d1, d2 = st.columns(2)
                d1.button("Remove last", key=f"train_bpop_{bucket.bucket_id}", on_click=_bucket_action,
                          args=(bucket, "pop"), help="Remove the most recent clip of this class.")
                d2.button("Clear", key=f"train_bclr_{bucket.bucket_id}", on_click=_bucket_action,
                          args=(bucket, "clear"), help="Remove every clip of this class.")
    st.button("Add a class", key="train_badd", icon=":material/add:", on_click=_bucket_action, args=(None, "add"),
              help="A new, empty class.")


def _data_source() -> T.DataSource | None:
    kind = st.segmented_control("Data", list(SOURCES), default="builtin", format_func=SOURCES.get, key="train_source",
                                on_change=_skip_chunk, help="What the model learns to tell apart.", **PERSIST)
    kind = kind or "builtin"
    if kind == "builtin":
        c1, c2 = st.columns([2, 1])
        name = c1.selectbox("Dataset", list(BUILTIN_DATASETS), index=0, key="train_dataset", on_change=_skip_chunk,
                            help="Generated locally, with fixed train / validation / test splits.", **PERSIST)
        quick = c2.selectbox("Clips per class", QUICK_OPTIONS, index=0, key="train_quick", on_change=_skip_chunk,
                             format_func=lambda n: "all" if n == 0 else f"{n} (quick run)",
                             help="Use fewer clips for a faster, rougher run.", **PERSIST)
        info = DATASET_INFO[name]
        st.caption(f"{info['description']} Classes: {', '.join(BUILTIN_DATASETS[name])}.")
        return T.DataSource("builtin", name, f"builtin:{name}:{quick}", name, quick or None, info["description"])
    if kind == "buckets":
        _bucket_editor()
        ready, hint = T.buckets_ready()
        if not ready:
            st.info(hint, icon=":material/info:")
            return None
        return T.buckets_source()
    up = st.file_uploader("Zip with one folder of audio files per class", type=["zip"], key="train_zip",
                          on_change=_skip_chunk, max_upload_size=200,
                          help="For example my_sounds.zip -> dog/*.wav, cat/*.wav. Each class needs 2+ clips (4+ for a "
                               "validation and test clip).")
    if up is None:
        st.info("Upload a zip to train on your own folders.", icon=":material/upload_file:")
        return None
    digest, path = T.save_zip(up.getvalue(), up.name)
    source = T.DataSource("zip", up.name, f"zip:{digest}", str(path), None, f"Your zip {up.name}.")
    try:
        ds = T.load_source(source)
    except diffres.DiffResError as err:
        st.error(f"Could not use {up.name!r}: {err}", icon=":material/error:")
        return None
    counts = ds.class_counts()
    st.caption(f"{len(ds)} clips in {ds.n_classes} classes, {ds.clip_seconds:g} s each: "
               + ", ".join(f"{c} {sum(counts[s][c] for s in counts)}" for c in ds.classes))
    if ds.skipped:
        st.warning(f"{len(ds.skipped)} files were skipped (first: {ds.skipped[0][0]}: {ds.skipped[0][1]}).",
                   icon=":material/warning:")
    return source


with st.container(border=True):
    source = _data_source()


# ------------------------------------------------------------------ settings
def _settings() -> TrainConfig | None:
    c = st.columns([1.3, 1.3, 1, 1, 1, 0.8])
    frontend = c[0].selectbox("Front-end", FRONTENDS, index=0, key="train_frontend", on_change=_skip_chunk,
                              help="How the spectrogram's frames are reduced before the classifier. "
                                   + " ".join(f"{k}: {v}" for k, v in FRONTEND_HELP.items() if k in FRONTENDS)[:600],
                              **PERSIST)
    rate = c[1].slider("Reduction rate", 0.0, 0.95, 0.75, 0.05, key="train_rate", on_change=_skip_chunk,
                       disabled=frontend == "full",
                       help="Fraction of frames removed (0.75 keeps a quarter). Ignored by the 'full' front-end.",
                       **PERSIST)
    hop = c[2].select_slider("Hop (ms)", HOP_OPTIONS, value=10.0, key="train_hop", on_change=_skip_chunk,
                             help="Hop of the input spectrogram. Smaller hops give DiffRes finer detail to choose "
                                  "from but cost more per step.", **PERSIST)
    epochs = c[3].number_input("Epochs", 1, 100, 8, key="train_epochs", on_change=_skip_chunk,
                               help="Passes over the training split.", **PERSIST)
    lr = c[4].select_slider("Learning rate", LR_OPTIONS, value=3e-3, key="train_lr", on_change=_skip_chunk,
                            format_func=lambda v: f"{v:g}", help="Peak AdamW learning rate (warm-up, cosine decay).",
                            **PERSIST)
    seed = c[5].number_input("Seed", 0, 9999, 0, key="train_seed", on_change=_skip_chunk,
                             help="Same seed and settings give the same run.", **PERSIST)
    with st.expander("More settings"):
        a = st.columns(4)
        width = a[0].select_slider("Model width", [8, 16, 24, 32], value=16, key="train_width", on_change=_skip_chunk,
                                   help="Channels of the classifier's first block: smaller trains faster.", **PERSIST)
        batch = a[1].select_slider("Batch size", [8, 16, 32, 64], value=32, key="train_batch", on_change=_skip_chunk,
                                   help="Clips per step. Smaller batches make each step (and each click) quicker.",
                                   **PERSIST)
        n_mels = a[2].select_slider("Mel bins", [32, 48, 64, 96], value=64, key="train_mels", on_change=_skip_chunk,
                                    help="Frequency bands of the input spectrogram.", **PERSIST)
        augment = a[3].toggle("SpecAugment", True, key="train_specaug", on_change=_skip_chunk,
                              help="Random time and frequency masks (helps generalisation).", **PERSIST)
        reverb = a[3].toggle("Room reverb", False, key="train_reverb", on_change=_skip_chunk,
                             help="Give half the training clips a random room's reverb ({:g}-{:g} s): the built-in "
                                  "sets are rendered dry, recordings are not.".format(*TrainConfig.reverb_seconds),
                             **PERSIST)
    try:
        return TrainConfig(dataset=source.path if source and source.kind == "builtin" else None, frontend=frontend,
                           reduction_rate=0.0 if frontend == "full" else float(rate), hop_ms=float(hop),
                           epochs=int(epochs), learning_rate=float(lr), seed=int(seed), width=int(width),
                           batch_size=int(batch), n_mels=int(n_mels), spec_augment=bool(augment), device="cpu",
                           reverb_probability=0.5 if reverb else 0.0,
                           max_files_per_class=source.max_files_per_class if source else None)
    except diffres.DiffResError as err:
        st.error(f"These settings cannot be used: {err}", icon=":material/error:")
        return None


config = _settings()
run = T.ensure_active(config, source) if (config is not None and source is not None) else None


# ------------------------------------------------------------------ controls
def _play() -> None:
    _skip_chunk()
    r = T.active_run()
    if r is None:
        return
    if r.playing:
        T.pause(r)
    elif not r.finished:
        r.status = "playing"


def _step() -> None:
    _skip_chunk()
    ss["_train_do_step"] = True


def _reset() -> None:
    _skip_chunk()
    r = T.active_run()
    if r is not None:
        T.reset(r)


def _save() -> None:
    _skip_chunk()
    r = T.active_run()
    if r is not None:
        T.pause(r)


def _open_in_inspect(run_id: str) -> None:
    ss["inspect_source"] = "run"
    ss["inspect_run"] = run_id
    ss["_train_goto_inspect"] = True


if run is not None:
    controls = st.container()  # drawn after the step / preparation below, so the buttons show the new state
    step = ss.pop("_train_do_step", False)
    if run.trainer is None and (run.playing or step):
        try:
            with st.spinner("Preparing the data (loading clips, computing log-mel spectrograms)...", show_time=True):
                T.prepare(run)
        except (diffres.DiffResError, MemoryError) as err:
            run.status = "failed"
            run.error = str(err)
    if step and run.trainer is not None and not run.finished:
        T.train_chunk(run, seconds=0.0, wait=True)  # exactly one step
        if run.status == "ready":
            run.status = "paused"
    with controls:
        c = st.columns([1, 1, 1, 1.3, 3], vertical_alignment="center")
        c[0].button("Pause" if run.playing else ("Finished" if run.finished else "Play"), key="train_play",
                    type="primary", icon=":material/pause:" if run.playing else ":material/play_arrow:", on_click=_play,
                    disabled=run.finished, help="Train in short slices until the last epoch (or pause).")
        c[1].button("Step", key="train_step", icon=":material/skip_next:", on_click=_step,
                    disabled=run.playing or run.finished, help="One optimiser step on one batch.")
        c[2].button("Reset", key="train_reset", icon=":material/restart_alt:", on_click=_reset,
                    help="Start this run over from random weights (the old run stays in the table below).")
        c[3].button("Save checkpoint", key="train_save", icon=":material/save:", on_click=_save,
                    disabled=not run.started,
                    help="Pause and write the checkpoint now (it is also written after every epoch, and at least "
                         f"every {T.AUTOSAVE_SECONDS:.0f} s while training).")
    if run.error:
        st.error(f"Training stopped: {run.error}", icon=":material/error:")
elif source is None:
    st.caption("Choose data above to start.")


# ------------------------------------------------------------------ live view
def _live_view(r: T.Run) -> None:
    tr = r.trainer
    if tr is None:
        st.info("Press **Play** to start (the first press prepares the data: a few seconds).", icon=":material/play_arrow:")
        return
    h = tr.history
    last = h[-1] if h else None
    spe = tr.steps_per_epoch
    m = st.columns(8)
    m[0].metric("Epoch", f"{tr.epoch}/{tr.config.epochs}", help="Finished epochs / planned epochs.")
    m[1].metric("Step", f"{tr.global_step}/{tr.total_steps}", help=f"{spe} steps (batches of {tr.batch_size}) per epoch.")
    recent = r.steps[-spe:] if r.steps else []
    m[2].metric("Train loss", f"{sum(s[1] for s in recent) / len(recent):.3f}" if recent else "-",
                help="Mean training loss over the last epoch's worth of steps (cross-entropy + guide loss).")
    m[3].metric("Val accuracy", f"{last.val_accuracy:.1%}" if last and math.isfinite(last.val_accuracy) else "-",
                delta=(f"{(last.val_accuracy - h[-2].val_accuracy) * 100:+.1f} pts" if len(h) > 1 else None),
                help="Accuracy on the held-out validation split at the last epoch end.")
    m[4].metric("Guide loss", f"{recent[-1][3]:.3f}" if recent else "-",
                help="DiffRes's guide loss: pushes importance away from empty (silent or masked) frames.")
    m[5].metric("Activeness", f"{recent[-1][4]:.3f}" if recent else "-",
                help="Spread of importance over non-empty frames: 0 = uniform, higher = more selective.")
    per_epoch = (sum(x.seconds for x in h) / len(h)) if h else (tr.elapsed_seconds / tr.global_step * spe
                                                                 if tr.global_step else float("nan"))
    m[6].metric("Time / epoch", _fmt_seconds(per_epoch), help="Wall time per epoch, validation included.")
    m[7].metric("Time left", _fmt_seconds(tr.estimated_seconds_left), help="Estimate from the time per step so far.")

    # epoch scrubber
    options = [x.epoch for x in h] + ["now"]
    ss.setdefault("train_follow", True)
    if ss["train_follow"] or ss.get("train_scrub") not in options:
        ss["train_scrub"] = "now"
    left, right = st.columns([1, 1.25])
    with left:
        shown = ss.get("train_scrub", "now")
        st.plotly_chart(figures.training_curves_figure(h, steps=T.step_dicts(r), steps_per_epoch=spe,
                                                       total_epochs=tr.config.epochs,
                                                       selected_epoch=shown if shown != "now" else None),
                        key="train_curves", width="stretch")
    with right:
        if len(options) > 1:
            s1, s2 = st.columns([4, 1.3], vertical_alignment="bottom")
            s1.select_slider("Show the probe clip at epoch", options, key="train_scrub", on_change=_scrub,
                             format_func=lambda v: "now" if v == "now" else f"{v}",
                             help="Scrub through the saved epochs: the importance curve and merged spectrogram the "
                                  "model produced at the end of that epoch ('now' = current weights).")
            s2.toggle("Follow", key="train_follow", on_change=_skip_chunk,
                      help="While training, show the latest state.")
        shown = ss.get("train_scrub", "now")
        log_mel = tr.probe_log_mel[0].cpu().numpy()
        live_probe = T.probe(r) if shown == "now" else None
        if shown == "now" and live_probe is None and h:
            shown = h[-1].epoch  # the model is busy in another run of this page: show the last epoch
        if shown == "now" and live_probe is None:
            st.caption("The probe clip appears after the first step.")
            return
        if shown == "now":
            at_step, (imp, merged, edges) = live_probe
            when = f"now (step {at_step})"
        else:
            rec = next(x for x in h if x.epoch == shown)
            imp, merged, edges = rec.probe_importance, rec.probe_merged, rec.probe_bin_edges
            when = f"end of epoch {shown}"
        label = tr.model_config.classes[tr.probe_label]
        fig = figures.probe_figure(log_mel, tr.hop_seconds, importance=imp, bin_edges=edges, merged=merged,
                                   mel_frequencies=tr.model.mel.mel_frequencies().numpy(),
                                   title=f"Probe clip ({label}, validation): {when}", height=470)
        st.plotly_chart(fig, key="train_probe", width="stretch")


def _scrub() -> None:
    _skip_chunk()
    ss["train_follow"] = False


def _comparison() -> None:
    rows = T.run_table()
    if not rows:
        return
    st.subheader("Runs in this session")
    st.dataframe(rows, hide_index=True, width="stretch",
                 column_config={"val acc (last)": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1),
                                "val acc (best)": st.column_config.NumberColumn(format="percent"),
                                "test acc": st.column_config.NumberColumn(format="percent")})
    with_history = {r.label: r.history for r in T.runs().values() if r.history}
    if len(with_history) >= 1:
        metric = st.segmented_control("Compare", ["val_accuracy", "val_loss", "train_loss", "activeness"],
                                      default="val_accuracy", key="train_cmp_metric", on_change=_skip_chunk,
                                      format_func=lambda m: m.replace("_", " "))
        st.plotly_chart(figures.runs_comparison_figure(with_history, metric=metric or "val_accuracy"),
                        key="train_compare", width="stretch")


@st.fragment(run_every=TICK_SECONDS if (run is not None and run.playing) else None)
def live() -> None:
    r = T.active_run()
    skip = ss.pop("_train_skip_chunk", False)
    if r is not None and r.playing and not skip:
        try:
            T.train_chunk(r)
        except (diffres.DiffResError, RuntimeError, MemoryError) as err:
            r.status, r.error = "failed", str(err)
            T.save(r)
        if not r.playing:
            st.rerun()  # a full run switches the timer off and updates the buttons
    if r is not None:
        tr = r.trainer
        text = {"ready": "Ready.", "playing": "Training...", "paused": "Paused.", "finished": "Finished.",
                "failed": "Stopped by an error."}[r.status]
        if tr is not None and r.checkpoint is not None:
            text += f" Checkpoint saved at step {r.saved_step} (epoch {r.saved_step // tr.steps_per_epoch})."
        st.caption(f"**{r.label}** · {text}")
        _live_view(r)
    _comparison()


live()


# ------------------------------------------------------------------ finished runs: download, inspect
saved = T.saved_runs()
if saved:
    st.subheader("Saved checkpoints")
    for r in saved[:8]:
        c = st.columns([3, 1.2, 1.2, 1.4], vertical_alignment="center")
        done = "complete" if r.finished else f"epoch {r.saved_step // r.trainer.steps_per_epoch} of {r.config.epochs}"
        c[0].markdown(f"**{r.label}** ({done}) · `{r.checkpoint.name}`")
        c[1].download_button("Checkpoint", data=lambda p=r.checkpoint: p.read_bytes(), file_name=r.checkpoint.name,
                             mime="application/octet-stream", key=f"train_dl_{r.run_id}", on_click="ignore",
                             icon=":material/download:", help="The .pt file (weights + model card); Inspect can open it.")
        card = r.checkpoint.with_suffix(".json")
        c[2].download_button("Model card", data=lambda p=card: p.read_bytes() if p.is_file() else b"{}", file_name=card.name,
                             mime="application/json", key=f"train_dlc_{r.run_id}", on_click="ignore",
                             icon=":material/description:")
        c[3].button("Open in Inspect", key=f"train_insp_{r.run_id}", icon=":material/search_insights:",
                    on_click=_open_in_inspect, args=(r.run_id,), help="Confusion matrix, mistakes, rate sweep.")
if ss.pop("_train_goto_inspect", False):
    st.switch_page("pages/inspect.py")
