"""Widgets of the Train page: the player controls, the live view of the run, the comparison
of runs and the saved checkpoints (the settings form is :mod:`ui.train_settings`).

Training itself lives in :mod:`ui.runs` (the run lifecycle) and :mod:`diffres.training`;
this module only reads widgets and draws.  Widget keys are stable (tests find them).
"""

from __future__ import annotations

import math
import time
from functools import partial
from pathlib import Path

import streamlit as st

import diffres
from diffres import figures
from ui import cache
from ui import runs as R
from ui.frame import guard
from ui.train_data import skip_chunk
from ui.view import chart, metric_row

ss = st.session_state
#: Seconds between two redraws of the live view in a run's first :data:`LIVELY_SECONDS` after
#: Play (the first points of the curves), then :data:`STEADY_TICK_SECONDS`.  Each redraw builds
#: the curves and probe figures (about 70 ms of the server's time per training session) and the
#: browser draws the changed charts twice (about 0.3 of a core at one redraw a second), time
#: that every other session's clicks wait for on a shared machine.
TICK_SECONDS = 1.0
STEADY_TICK_SECONDS = 2.0
LIVELY_SECONDS = 10.0
#: Seconds between two redraws of the probe clip while a run trains (three heatmaps for the
#: browser to draw again; the curves above it move every tick).
PROBE_REFRESH_SECONDS = 3.0
#: Height of the training curves (pixels, legend included).
CURVES_HEIGHT = 440
#: Columns of the runs table shown (the rest of :func:`ui.runs.run_table`'s row repeats the
#: run's label, which names the data, front-end, rate and hop, or matters less).
RUN_TABLE_COLUMNS = (
    "run",
    "status",
    "epochs",
    "val acc (last)",
    "val acc (best)",
    "test acc",
    "lr",
    "seed",
    "s / epoch",
)


def _fmt_seconds(s: float) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    s = int(round(s))
    return f"{s // 60}:{s % 60:02d}" if s >= 60 else f"{s} s"


def _points_change(before: float, after: float) -> str | None:
    """The change between two accuracies in percentage points as the metric shows it
    (``"+2.5 pts"``), or None (no arrow) when it rounds to 0.0 or either is unknown."""
    change = round((after - before) * 100, 1) if math.isfinite(before) and math.isfinite(after) else 0.0
    return f"{change:+.1f} pts" if change != 0 else None


def _play() -> None:
    skip_chunk()
    r = R.active_run()
    if r is None:
        return
    if r.playing:
        R.pause(r)
    elif not r.finished:
        r.status, r.error = "playing", None  # a failed run tries again
        r.played_at = time.monotonic()


def tick_seconds(run: R.Run | None) -> float | None:
    """Seconds between two redraws of the live view (None: the run does not play)."""
    if run is None or not run.playing:
        return None
    return TICK_SECONDS if time.monotonic() - run.played_at < LIVELY_SECONDS else STEADY_TICK_SECONDS


def _step() -> None:
    skip_chunk()
    ss["_train_do_step"] = True


def _reset() -> None:
    skip_chunk()
    r = R.active_run()
    if r is not None:
        R.reset(r)


def _save() -> None:
    skip_chunk()
    r = R.active_run()
    if r is not None:
        R.pause(r)


def _open_in_inspect(run_id: str) -> None:
    ss["inspect_source"] = "run"
    ss["inspect_run"] = run_id
    ss["_train_goto_inspect"] = True


def controls(run: R.Run) -> None:
    """Prepare the data or run one step when asked, then draw Play / Step / Reset / Save."""
    box = st.container()  # drawn after the step / preparation below, so the buttons show the new state
    step = ss.pop("_train_do_step", False)
    if run.playing and R.start_worker(run):
        pass  # the run's thread prepares the data and trains; the live view polls it
    elif run.status == "ready" and not step:
        R.prepare_ahead(run)  # the data is ready by the time Play is pressed
    elif run.trainer is None and (run.playing or step or run.resume_from is not None):
        try:
            with st.spinner("Preparing the data (loading clips, computing log-mel spectrograms)...", show_time=True):
                R.prepare(run)
        except (diffres.DiffResError, MemoryError, OSError) as err:
            run.status = "failed"
            run.error = R.describe_error(err)
    if step and run.trainer is not None and not run.finished:
        R.train_chunk(run, wait=True, one_step=True)
        if run.status == "ready":
            run.status = "paused"
    ss["_train_buttons_playing"] = run.playing  # the live view reruns the page when this goes stale
    with box:
        c = st.container(horizontal=True, vertical_alignment="center")  # wraps, never truncates a label
        c.button(
            "Pause" if run.playing else ("Finished" if run.finished else "Play"),
            key="train_play",
            type="primary",
            icon=":material/pause:" if run.playing else ":material/play_arrow:",
            on_click=_play,
            disabled=run.finished,
            help="Train in short slices until the last epoch (or pause).",
        )
        c.button(
            "Step",
            key="train_step",
            icon=":material/skip_next:",
            on_click=_step,
            disabled=run.playing or run.finished,
            help="One optimiser step on one batch.",
        )
        c.button(
            "Reset",
            key="train_reset",
            icon=":material/restart_alt:",
            on_click=_reset,
            help="Start this run over from random weights (the old run stays in the table below).",
        )
        c.button(
            "Save checkpoint",
            key="train_save",
            icon=":material/save:",
            on_click=_save,
            disabled=not run.started,
            help="Pause and write the checkpoint now (it is also written after every epoch, and at least "
            f"every {R.AUTOSAVE_SECONDS:.0f} s while training).",
        )
    if run.resume_from is not None:
        st.caption(
            f"Reopened from disk: `{run.resume_from.name}` with its own settings (changing a setting above starts "
            "a new run). Play continues it to its planned epochs."
        )
    if run.error:
        st.error(f"Training stopped: {run.error}", icon=":material/error:")


def _live_view(r: R.Run) -> None:
    tr = r.trainer
    if tr is None and r.playing:
        st.info(
            "Preparing the data (loading clips, computing log-mel spectrograms)...", icon=":material/hourglass_top:"
        )
        return
    if tr is None:
        st.info(
            "Press **Play** to start (the first press prepares the data: a few seconds).", icon=":material/play_arrow:"
        )
        return
    if r.status == "ready" and tr.global_step == 0 and not tr.prior_losses:  # prepared ahead of Play
        st.info("Press **Play** to start (the data is prepared).", icon=":material/play_arrow:")
        return
    h = tr.history
    last = h[-1] if h else None
    spe = tr.steps_per_epoch
    if not tr.prior_done:
        st.caption(
            f"Fitting the score network to the energy prior before the first step: {len(tr.prior_losses)}/"
            f"{tr.score_prior_steps} steps (grey on the loss curve): it starts DiffRes with high importance on "
            "frames above each clip's noise floor."
        )
    metric = metric_row("medium")
    metric("Epoch", f"{tr.epoch}/{tr.config.epochs}", help="Finished epochs / planned epochs.")
    metric("Step", f"{tr.global_step}/{tr.total_steps}", help=f"{spe} steps (batches of {tr.batch_size}) per epoch.")
    recent = r.steps[-spe:] if r.steps else []
    metric(
        "Train loss",
        f"{sum(s[1] for s in recent) / len(recent):.3f}" if recent else "-",
        help="Mean training loss over the last epoch's worth of steps (cross-entropy + guide loss).",
    )
    metric(
        "Val accuracy",
        f"{last.val_accuracy:.1%}" if last and math.isfinite(last.val_accuracy) else "-",
        delta=_points_change(h[-2].val_accuracy, last.val_accuracy) if last and len(h) > 1 else None,
        help="Accuracy on the held-out validation split at the last epoch end.",
    )
    metric(
        "Guide loss",
        f"{recent[-1][3]:.3f}" if recent else "-",
        help="DiffRes's guide loss: pushes importance away from empty (silent or masked) frames.",
    )
    metric(
        "Activeness",
        f"{recent[-1][4]:.3f}" if recent else "-",
        help="Spread of importance over non-empty frames: 0 = uniform, higher = more selective.",
    )
    per_epoch = (
        (sum(x.seconds for x in h) / len(h))
        if h
        else (tr.elapsed_seconds / tr.global_step * spe if tr.global_step else float("nan"))
    )
    metric("Time / epoch", _fmt_seconds(per_epoch), help="Wall time per epoch, validation included.")
    metric("Time left", _fmt_seconds(tr.estimated_seconds_left), help="Estimate from the time per step so far.")

    # epoch scrubber
    options = [x.epoch for x in h] + ["now"]
    ss.setdefault("train_follow", True)
    if ss["train_follow"] or ss.get("train_scrub") not in options:
        ss["train_scrub"] = "now"
    shown = ss.get("train_scrub", "now")
    chart(  # full width: four panels and their legend need the room
        figures.training_curves_figure(
            h,
            steps=R.step_dicts(r),
            steps_per_epoch=spe,
            total_epochs=tr.config.epochs,
            prior_losses=tr.prior_losses,
            prior_steps=tr.score_prior_steps,
            selected_epoch=shown if shown != "now" else None,
            height=CURVES_HEIGHT,
        ),
        key="train_curves",
    )
    if len(options) > 1:
        s1, s2 = st.columns([4, 1.3], vertical_alignment="bottom")
        s1.select_slider(
            "Show the probe clip at epoch",
            options,
            key="train_scrub",
            on_change=_scrub,
            format_func=lambda v: "now" if v == "now" else f"{v}",
            help="Scrub through the saved epochs: the importance curve and merged spectrogram the "
            "model produced at the end of that epoch ('now' = current weights).",
        )
        s2.toggle("Follow", key="train_follow", on_change=skip_chunk, help="While training, show the latest state.")
    shown = ss.get("train_scrub", "now")
    log_mel = tr.probe_log_mel[0].cpu().numpy()
    live_probe = _held_probe(r) if shown == "now" else None
    if shown == "now" and live_probe is None and h:
        shown = h[-1].epoch  # the model is busy in another run of this page: show the last epoch
    if shown == "now" and live_probe is None:
        st.caption("The probe clip appears after the first step.")
        return
    if live_probe is not None:
        at_step, (imp, merged, edges) = live_probe
        when = f"now (step {at_step})"
    else:
        rec = next(x for x in h if x.epoch == shown)
        imp, merged, edges = rec.probe_importance, rec.probe_merged, rec.probe_bin_edges
        when = f"end of epoch {shown}"
    label = tr.model_config.classes[tr.probe_label]
    fig = cache.figure(  # the same figure object while the probe is held: the browser keeps its drawing
        "train_probe",
        (r.run_id, when),
        lambda: figures.probe_figure(
            log_mel,
            tr.hop_seconds,
            importance=imp,
            bin_edges=edges,
            merged=merged,
            mel_frequencies=tr.mel_frequencies,
            title=f"Probe clip ({label}, validation): {when}",
            height=470,
        ),
    )
    chart(fig, key="train_probe")


def _held_probe(r: R.Run):
    """The probe to show now (:func:`ui.runs.probe`): while the run plays, a new one at most
    every :data:`PROBE_REFRESH_SECONDS`."""
    live = R.probe(r)
    held = ss.get("_train_probe_held")
    if live is None or (
        r.playing and held is not None and held[0] == r.run_id and time.monotonic() - held[1] < PROBE_REFRESH_SECONDS
    ):
        return held[2] if held is not None and held[0] == r.run_id else live
    ss["_train_probe_held"] = (r.run_id, time.monotonic(), live)
    return live


def _scrub() -> None:
    skip_chunk()
    ss["train_follow"] = False


def _comparison() -> None:
    rows = R.run_table()
    if not rows:
        return
    st.subheader("Runs in this session")
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_order=RUN_TABLE_COLUMNS,  # data, front-end, rate and hop are in the run's label
        column_config={
            "run": st.column_config.TextColumn("run", width="medium"),
            "status": st.column_config.TextColumn("status", width="small"),
            "epochs": st.column_config.TextColumn("epochs", width="small"),
            "val acc (last)": st.column_config.ProgressColumn(
                "val acc (last)", format="percent", min_value=0, max_value=1, width="small"
            ),
            "val acc (best)": st.column_config.NumberColumn("val acc (best)", format="percent", width="small"),
            "test acc": st.column_config.NumberColumn("test acc", format="percent", width="small"),
            "lr": st.column_config.NumberColumn("learning rate", format="%g", width="small"),
            "seed": st.column_config.NumberColumn("seed", width="small"),
            "s / epoch": st.column_config.NumberColumn("time / epoch (s)", format="%.1f", width="small"),
        },
    )
    with_history = {r.label: r.history for r in R.runs().values() if r.history}
    if len(with_history) >= 1:
        metric = st.segmented_control(
            "Compare",
            ["val_accuracy", "val_loss", "train_loss", "activeness"],
            default="val_accuracy",
            key="train_cmp_metric",
            on_change=skip_chunk,
            format_func=lambda m: m.replace("_", " "),
        )
        chart(
            figures.runs_comparison_figure(with_history, metric=metric or "val_accuracy"),
            key="train_compare",
            width="stretch",
        )


def live(run: R.Run | None) -> None:
    """The run's live view and the runs table, redrawn every tick while playing."""

    every = ss["_train_tick"] = tick_seconds(run)

    @st.fragment(run_every=every)
    def _live() -> None:
        with guard():  # a fragment's rerun does not pass through app.py's guard
            _live_body()

    def _live_body() -> None:
        r = R.active_run()
        skip = ss.pop("_train_skip_chunk", False)
        if r is not None and r.playing and not skip and not R.start_worker(r):
            R.train_chunk(r)  # no server (AppTest): this tick trains; a failure stops the run with its message
        if r is not None and r.playing != ss.get("_train_buttons_playing", r.playing):
            st.rerun()  # finished or stopped: a full run switches the timer off, resets the buttons, shows the error
        if r is not None and r.playing and tick_seconds(r) != ss.get("_train_tick"):
            st.rerun()  # past the first seconds: a full run sets the steadier timer
        if r is not None:
            tr = r.trainer
            text = {
                "ready": "Ready.",
                "playing": "Training...",
                "paused": "Paused.",
                "finished": "Finished.",
                "failed": "Stopped by an error.",
            }[r.status]
            if tr is not None and r.checkpoint is not None:
                text += f" Checkpoint saved at step {r.saved_step} (epoch {r.saved_step // tr.steps_per_epoch})."
            st.caption(f"**{r.label}** · {text}")
            _live_view(r)
        _comparison()

    _live()


def _read_or_empty_json(path: Path) -> bytes:
    return path.read_bytes() if path.is_file() else b"{}"


def saved_checkpoints() -> None:
    """Download and "Open in Inspect" for every saved run of the session."""
    saved = R.saved_runs()
    if saved:
        st.subheader("Saved checkpoints")
        for r in saved[:8]:
            path, tr = r.checkpoint, r.trainer
            assert path is not None and tr is not None  # saved runs have both
            done = "complete" if r.finished else f"epoch {r.saved_step // tr.steps_per_epoch} of {r.config.epochs}"
            c = st.container(horizontal=True, vertical_alignment="center")  # the buttons wrap, never truncate
            c.markdown(f"**{r.label}** ({done}) · `{path.name}`", width="stretch")
            c.download_button(
                "Checkpoint",
                data=partial(path.read_bytes),
                file_name=path.name,
                mime="application/octet-stream",
                key=f"train_dl_{r.run_id}",
                on_click="ignore",
                icon=":material/download:",
                help="The .pt file (weights + model card); Inspect can open it.",
            )
            card = path.with_suffix(".json")
            c.download_button(
                "Model card",
                data=partial(_read_or_empty_json, card),
                file_name=card.name,
                mime="application/json",
                key=f"train_dlc_{r.run_id}",
                on_click="ignore",
                icon=":material/description:",
            )
            c.button(
                "Open in Inspect",
                key=f"train_insp_{r.run_id}",
                icon=":material/search_insights:",
                on_click=_open_in_inspect,
                args=(r.run_id,),
                help="Confusion matrix, mistakes, rate sweep.",
            )
