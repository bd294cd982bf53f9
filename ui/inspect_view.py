"""Widgets of the Inspect page: choosing a checkpoint, its card, one clip through the model,
the validation split (confusion, per class, mistakes, rate sweep) and two models side by side.

Streamlit glue only: evaluations and predictions are the cached library calls of
:mod:`ui.inspect`; figures come from :mod:`diffres.figures`.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import streamlit as st

import diffres
import ui
from diffres import figures
from diffres.checkpoints import LoadedCheckpoint
from diffres.figures.evaluation import thumbnail_rgb
from diffres.frontends import NO_REDUCTION
from diffres.names import shown
from ui import cache
from ui import inspect as I
from ui import runs as R
from ui.sound import CurrentClip
from ui.uploads import limit_text, max_upload_mb
from ui.view import chart, metric_row

ss = st.session_state
SOURCES = {"shipped": "Shipped checkpoint", "run": "A run from this session", "upload": "Upload a checkpoint"}
MISTAKES_PER_PAGE = 6


def _on_upload() -> None:
    up = ss.get("inspect_upload")
    ss.pop("_inspect_upload_error", None)
    if up is None:
        return
    try:
        entry = I.add_upload(up.getvalue(), up.name)
        ss["_inspect_new_upload"] = entry.path
    except (diffres.DiffResError, MemoryError, OSError) as err:
        ss["_inspect_upload_error"] = f"Could not open {shown(up.name)}: {R.describe_error(err)}"


def choose() -> I.Entry | None:
    """The model picker; returns the chosen checkpoint entry, or None (with a hint shown)."""
    shipped, runs_, uploads = I.shipped_entries(), I.run_entries(), I.uploaded_entries()
    if "inspect_source" not in ss:
        ss["inspect_source"] = "shipped" if shipped else ("run" if runs_ else "upload")
    kind = (
        st.segmented_control(
            "Model",
            list(SOURCES),
            format_func=lambda k: SOURCES[k],
            key="inspect_source",
            help="Shipped checkpoints live in checkpoints/; runs are the ones you trained on the "
            "Train page in this session; an uploaded .pt is loaded as weights only (nothing "
            "in it is run).",
        )
        or "shipped"
    )
    entries = {"shipped": shipped, "run": runs_, "upload": uploads}[kind]
    if kind == "upload":
        st.file_uploader(
            "Checkpoint (.pt)",
            type=["pt"],
            key="inspect_upload",
            on_change=_on_upload,
            max_upload_size=max_upload_mb(),
            help=f"A checkpoint saved by this app's Train page or `python -m diffres train` ({limit_text()}).",
        )
        if ss.get("_inspect_upload_error"):
            st.error(ss["_inspect_upload_error"], icon=":material/error:")
    if not entries:
        st.info(
            {
                "shipped": "No shipped checkpoints were found in checkpoints/ yet. Train one on the Train page, or "
                "upload a .pt.",
                "run": "No saved runs in this session yet: train on the Train page (a checkpoint is written after "
                "every epoch and on pause).",
                "upload": "Upload a checkpoint to inspect it.",
            }[kind],
            icon=":material/info:",
        )
        return None
    # choose by path (stable while a run keeps re-saving); the cache key adds the file's mtime
    paths = [e.path for e in entries]
    by_path = {e.path: e for e in entries}
    pick_key = f"inspect_pick_{kind}"
    if kind == "run" and ss.get("inspect_run"):  # "Open in Inspect" from the Train page
        wanted = next((e.path for e in entries if e.run_id == ss["inspect_run"]), None)
        if wanted:
            ss[pick_key] = wanted
        ss.pop("inspect_run", None)
    if kind == "upload" and ss.get("_inspect_new_upload") in paths:
        ss[pick_key] = ss.pop("_inspect_new_upload")
    if ss.get(pick_key) not in paths:  # default: the model the other pages open on too
        ss[pick_key] = min(entries, key=lambda e: cache.opening_rank(e.card)).path if kind == "shipped" else paths[0]
    path = st.selectbox(
        "Checkpoint", paths, key=pick_key, format_func=lambda p: by_path[p].label, help="Which model to inspect."
    )
    return by_path[path]


def model_card(loaded: LoadedCheckpoint, entry: I.Entry) -> None:
    """The card's key figures, the full card and the training curves saved with it."""
    card, model, cfg = loaded.card, loaded.model, loaded.model.config

    def _pct(v: Any) -> str:
        return f"{v:.1%}" if isinstance(v, (int, float)) and math.isfinite(v) else "-"

    metrics = card.get("metrics") or {}
    st.subheader("Model card")
    metric = metric_row("medium")
    metric("Dataset", str(card.get("dataset", "?")), help="What it was trained on.")
    metric("Front-end", cfg.frontend, help="How frames are reduced before the classifier.")
    metric(
        "Reduction rate",
        "none" if cfg.frontend in NO_REDUCTION else f"{cfg.reduction_rate:g}",
        help="Fraction of frames removed during training ('none': this front-end keeps every frame).",
    )
    metric("Hop", f"{cfg.hop_ms:g} ms", help="Hop of the input spectrogram.")
    metric("Val accuracy", _pct(metrics.get("val_accuracy")), help="On the held-out validation split (from the card).")
    metric("Test accuracy", _pct(metrics.get("test_accuracy")), help="On the held-out test split (from the card).")
    metric("Parameters", f"{model.n_parameters():,}")
    st.caption(
        f"Classes ({len(cfg.classes)}): {', '.join(cfg.classes)} · {cfg.n_mels} mel bins · "
        f"{cfg.clip_seconds:g} s clips · "
        f"trained {card.get('epochs', '?')} epochs in {card.get('train_seconds', '?')} s"
        + (f" · {card['data_source']}" if card.get("data_source") else "")
    )
    with st.expander("Full model card and training curves"):
        hist = I.history_of(entry.model_id)
        if hist:
            chart(
                figures.training_curves_figure(hist, total_epochs=max(h["epoch"] for h in hist)),
                key="inspect_history",
                width="stretch",
            )
        st.json(card, expanded=False)


def clip_view(
    entry: I.Entry,
    cfg: Any,
    model_id: str,
    clip: CurrentClip,
    key: str,
    *,
    height: int = 480,
    title: str | None = None,
    importance_top: float | None = None,
) -> None:
    """Top classes of ``clip`` and the frames the model ``model_id`` kept for it (importance
    axis up to ``importance_top``, default the curve's own)."""
    if clip.sample_rate != cfg.sample_rate and model_id == entry.model_id:
        st.error(f"The sound is at {clip.sample_rate} Hz but the model expects {cfg.sample_rate} Hz.")
        return
    p = I.predict_clip(model_id, clip.digest, clip.samples)
    chart(figures.topk_figure(p["top"], title=title or "Top classes"), key=f"{key}_top")
    chart(
        _kept_frames(p, height=height, title="Which frames the model kept for this decision", top=importance_top),
        key=f"{key}_probe",
        width="stretch",
    )


def _kept_frames(p: dict[str, Any], *, height: int, title: str | None = None, top: float | None = None) -> Any:
    """The importance over the spectrogram, and the merged spectrogram, of a
    :func:`ui.inspect.predict_clip` result."""
    return figures.kept_frames_figure(
        p["log_mel"],
        p["hop_seconds"],
        importance=p["importance"],
        bin_edges=p["bin_edges"],
        merged=p["merged"],
        mel_frequencies=p["mel_frequencies"],
        importance_top=top,
        height=height,
        title=title,
    )


def this_sound(entry: I.Entry, cfg: Any) -> None:
    """The "This sound" tab: the current clip through the chosen model."""
    clip = ui.current_clip()
    ui.clip_notices(clip)
    st.caption(
        f"**{clip.title}** ({clip.seconds:.2f} s). The whole clip is classified at the model's {cfg.hop_ms:g} ms hop "
        f"(it was trained on {cfg.clip_seconds:g} s clips; the classifier pools over time, so any length works). "
        "Change the sound in the sidebar."
    )
    if cfg.frontend != "diffres":
        st.info(
            f"This model uses the fixed '{cfg.frontend}' front-end: its 'importance' is the same for every frame "
            "(it cannot choose).",
            icon=":material/info:",
        )
    try:
        clip_view(entry, cfg, entry.model_id, clip, "inspect_clip")
    except (diffres.DiffResError, RuntimeError) as err:
        st.error(f"Could not classify {clip.title!r}: {err}", icon=":material/error:")


def _mistakes(entry: I.Entry, data: I.EvalData, res: dict[str, Any]) -> None:
    wrong = np.flatnonzero(res["predictions"] != res["labels"])
    st.markdown(f"#### Mistakes ({len(wrong)} of {res['n']})")
    if not len(wrong):
        st.success("No mistakes on this split.", icon=":material/check_circle:")
        return
    classes = res["classes"]
    conf = res["probabilities"][wrong, res["predictions"][wrong]]
    order = wrong[np.argsort(-conf)]  # most confident mistakes first
    pages = max(1, math.ceil(len(order) / MISTAKES_PER_PAGE))
    page = 1
    if pages > 1:
        page = st.columns([1, 4])[0].number_input(
            "Page",
            1,
            pages,
            1,
            key="inspect_mistake_page",
            help=f"{MISTAKES_PER_PAGE} mistakes per page (of {pages}), most confident first.",
        )
    shown = order[(page - 1) * MISTAKES_PER_PAGE : page * MISTAKES_PER_PAGE]
    cols = st.columns(3)
    for k, i in enumerate(shown):
        with cols[k % 3].container(border=True):
            t, p = classes[res["labels"][i]], classes[res["predictions"][i]]
            st.markdown(f"**{t}** heard as **{p}** ({res['probabilities'][i, res['predictions'][i]]:.0%})")
            st.image(
                thumbnail_rgb(I.log_mel_np(entry.model_id, data.waveforms[i]), width=240, height=64), width="stretch"
            )
            st.audio(I.wav(data.waveforms[i], data.sample_rate), format="audio/wav")
    detail = st.selectbox(
        "Look closer at",
        list(shown),
        key="inspect_mistake_pick",
        format_func=lambda i: f"clip {i}: {classes[res['labels'][i]]} -> {classes[res['predictions'][i]]}",
        help="Its top classes and the frames the model kept.",
    )
    if detail is not None:
        w = data.waveforms[int(detail)]
        digest = hashlib.sha1(np.ascontiguousarray(w).tobytes()).hexdigest()[:16]
        p = I.predict_clip(entry.model_id, digest, w)
        c1, c2 = st.columns([1, 2])
        top = figures.topk_figure(p["top"], title="Top classes", highlight=classes[res["labels"][int(detail)]])
        chart(top, key="inspect_mistake_top", where=c1)
        chart(_kept_frames(p, height=420), key="inspect_mistake_probe", where=c2)


def _sweep(entry: I.Entry, card: dict[str, Any], cfg: Any, data: I.EvalData) -> None:
    st.markdown("#### Accuracy against the reduction rate at inference")
    st.caption(
        "One trained model run at other reduction rates (0 keeps every frame, 0.9 keeps a tenth); the star marks "
        "the rate it was trained at. Markers are shipped fixed front-ends trained on the same data (evaluated "
        "on the same split)."
    )
    swept = ss.setdefault("_inspect_swept", set())
    if entry.model_id not in swept:
        st.button(
            "Run the sweep",
            key="inspect_sweep",
            icon=":material/query_stats:",
            on_click=lambda: swept.add(entry.model_id),
            help=f"{len(I.SWEEP_RATES)} evaluations of the validation split (a few seconds each on a CPU).",
        )
        return
    rates = tuple(sorted(set(I.SWEEP_RATES) | {round(float(cfg.reduction_rate), 4)}))  # the trained rate too
    curve = I.rate_sweep(entry.model_id, data.key, data, rates)
    base = {}
    for b in I.baselines_for(card, exclude=entry.model_id):
        try:
            res_b = I.evaluation(b.model_id, data.key, data)
        except diffres.DiffResError:
            continue
        name = (
            f"{b.card.get('frontend')} (every frame)"
            if b.card.get("frontend") == "full"
            else f"{b.card.get('frontend')} (trained at {float(b.card.get('reduction_rate', 0)):g})"
        )
        base[name] = (
            float(b.card.get("reduction_rate", 0.0)) if b.card.get("frontend") != "full" else 0.0,
            float(res_b["accuracy"]),
        )
    chart(
        figures.accuracy_vs_rate_figure(
            curve, trained_rate=cfg.reduction_rate, baselines=base, label=f"{cfg.frontend} (this model)"
        ),
        key="inspect_rate",
        width="stretch",
    )
    if not base:
        st.caption("No shipped avgpool / changehop / full checkpoints for this dataset were found to compare with.")


def validation(entry: I.Entry, loaded: LoadedCheckpoint) -> None:
    """The "Validation set" tab: confusion, per-class accuracy and importance, mistakes, sweep."""
    card, model, cfg = loaded.card, loaded.model, loaded.model.config
    data, why = I.eval_data_for(entry, card)
    if data is None:
        st.info(why, icon=":material/info:")
        up = st.file_uploader(
            "Evaluate on a zip of class folders instead",
            type=["zip"],
            key="inspect_eval_zip",
            max_upload_size=max_upload_mb(),
            help="One sub-folder per class, named like the model's classes "
            f"({', '.join(cfg.classes)}); every clip is used ({limit_text()}).",
        )
        if up is not None:
            try:
                data = I.eval_data_from_zip(up.getvalue(), up.name, card)
            except (diffres.DiffResError, MemoryError, OSError) as err:
                st.error(f"Could not evaluate on {shown(up.name)}: {R.describe_error(err)}", icon=":material/error:")
    if data is not None:
        try:
            res = I.evaluation(entry.model_id, data.key, data)
        except (diffres.DiffResError, RuntimeError) as err:
            st.error(f"Evaluation failed: {err}", icon=":material/error:")
            res = None
        if res is not None:
            st.caption(f"Evaluated on {data.description}: {res['n']} clips, accuracy **{res['accuracy']:.1%}**.")
            # side by side where there is room, one under the other in a narrow window
            row = st.container(horizontal=True, gap="medium")
            c1, c2 = row.container(width=500), row.container(width=440)
            with c1:
                st.markdown("#### Confusion matrix")
                chart(
                    figures.confusion_figure(res["confusion"], res["classes"]), key="inspect_confusion", width="stretch"
                )
            with c2:
                st.markdown("#### Accuracy per class")
                counts = {c: int(n) for c, n in zip(res["classes"], res["confusion"].sum(axis=1), strict=True)}
                chart(
                    figures.per_class_figure(res["per_class"], counts=counts), key="inspect_per_class", width="stretch"
                )
            if res["mean_importance"]:
                st.markdown("#### Where each class looks: mean importance over time")
                st.caption(
                    "Average importance curve of each class's clips: peaks are the moments DiffRes keeps at fine "
                    "resolution for that kind of sound."
                )
                n_frames = len(next(iter(res["mean_importance"].values())))
                share = diffres.output_length(n_frames, cfg.reduction_rate) / max(1, n_frames)
                chart(
                    figures.mean_importance_figure(res["mean_importance"], model.mel.hop_seconds, out_share=share),
                    key="inspect_mean_importance",
                    width="stretch",
                )
            _mistakes(entry, data, res)
            _sweep(entry, card, cfg, data)


def _partner(entry: I.Entry, card: dict[str, Any], frontend: str, others: dict[str, I.Entry]) -> list[str]:
    """The models that can be compared with ``entry`` (same classes), and the partner in
    ``inspect_other``: kept while it fits, else (a new main model) one of the same classes with
    another front-end where there is one, with a note saying so; none when no model fits."""
    ids = [m for m in others if m != entry.model_id and I.same_classes(others[m].card, card)]
    before = ss.get("inspect_other")
    if before in ids:
        return ids
    same = [m for m in ids if others[m].card.get("frontend") != frontend]
    if ids:
        ss["inspect_other"] = (same or ids)[0]
    else:
        ss.pop("inspect_other", None)
    if before in others:  # the main model changed under a partner of other classes
        old = others[before]
        now = f"compared with {others[ss['inspect_other']].label} instead" if ids else "no model left to compare"
        st.info(
            f"{old.label} was trained on other classes ({old.card.get('dataset', '?')}) than this model "
            f"({card.get('dataset', '?')}), so their answers cannot be compared: {now}.",
            icon=":material/swap_horiz:",
        )
    return ids


def compare(entry: I.Entry, loaded: LoadedCheckpoint) -> None:
    """The "Compare two models" tab: the current clip through this model and another of the
    same classes, their importance on one scale."""
    card, cfg = loaded.card, loaded.model.config
    others = {e.model_id: e for e in I.shipped_entries() + I.run_entries() + I.uploaded_entries()}
    ids = _partner(entry, card, cfg.frontend, others)
    if not ids:
        st.info(
            "Comparing needs a second checkpoint of the same classes (shipped, trained in this session, or "
            f"uploaded): none classifies {', '.join(cfg.classes)}.",
            icon=":material/info:",
        )
        return
    other_id = st.selectbox(
        "Compare with",
        ids,
        key="inspect_other",
        format_func=lambda m: others[m].label,
        help="Another checkpoint of the same classes, shown next to the one above on the same sound.",
    )
    clip = ui.current_clip()
    pair = ((entry.model_id, entry.label), (other_id, others[other_id].label))
    curves = []
    for mid, _ in pair:  # cached: the views below reuse these predictions
        try:
            p = I.predict_clip(mid, clip.digest, clip.samples)
            curves.append((p["importance"], p["bin_edges"]))
        except (diffres.DiffResError, RuntimeError):
            pass  # the view below shows the error
    top = figures.importance_axis_top(*curves) if curves else None  # one importance scale for both
    c1, c2 = st.columns(2)
    for col, (mid, label) in zip((c1, c2), pair, strict=True):
        with col:
            st.markdown(f"**{label}**")
            try:
                clip_view(
                    entry,
                    cfg,
                    mid,
                    clip,
                    f"inspect_cmp_{'a' if mid == entry.model_id else 'b'}",
                    height=420,
                    importance_top=top,
                )
            except (diffres.DiffResError, RuntimeError) as err:
                st.error(f"Could not run {label}: {err}", icon=":material/error:")
