"""Guided lessons: a goal, the exact state each one loads, a question, and a measured check.

A :class:`Lesson` is data plus two functions, and knows nothing of Streamlit:

- ``settings``: the values of the app's controls it loads (widget keys -> values), every
  control of its page that matters, so a learner's earlier tweaks never leak in; ``sound``
  is the example or preset it loads (``"example:<key>"`` / ``"preset:<name>"``, as
  :mod:`diffres.examples` names them; None for a lesson that does not use the current sound)
  and ``models`` the shipped checkpoints it prefers;
- ``check(facts)``: a :class:`Verdict` measured on what the learner is looking at (the
  spectrogram at their settings, the model's merge, the run's history), never assumed from
  the settings alone;
- ``solve(facts)``: settings (and, for a question answered by choosing, ``"answer"``) that
  answer the question, which the tests apply through the widgets, as a learner would.

``facts`` (:class:`Facts`) hold the current settings, the current sound and the measured
values the lesson lists in ``needs``; the app computes them (:mod:`ui.lessons`), the tests
with the same library calls.

To open the rhythm lesson on another clip, change :data:`RHYTHM_SOUND` (one line).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .audio import SAMPLE_RATE
from .examples import CLOSE_TONES_HZ, preset_event_times
from .features import MelConfig
from .resolution import RESOLVED_DIP_DB, event_width_ms, loudest_frame, separated_bursts, tone_dip_db

__all__ = [
    "Facts",
    "Verdict",
    "Lesson",
    "LESSONS",
    "RHYTHM_SOUND",
    "RHYTHM_MODELS",
    "lesson",
    "tones_and_clicks_measures",
]

#: The rhythm-style clip of the lesson on what DiffRes keeps and merges.  The one line to
#: change when a better rhythm example ships (e.g. ``"example:<new rhythm key>"``).
RHYTHM_SOUND = "example:triple_stroke"
#: Checkpoints that lesson prefers, first found first (rhythm-trained models know such sounds).
RHYTHM_MODELS = ("rhythms_diffres_r75", "drums_diffres_r75", "events_diffres_r75")
#: The first group of four beeps in the alarm-clock example (40 ms beeps 30 ms apart from 0.2 s).
ALARM_GROUP_S = (0.15, 0.5)
#: The alarm's beeps per group.
ALARM_BEEPS = 4
#: A classifier's cost relative to a 10 ms hop that the frame-cost lesson asks for.
COST_TARGET = 4.0
#: A click narrower than this (ms, at -6 dB) reads as a thin line.
THIN_CLICK_MS = 10.0
#: Clicks sit above this frequency alone in ``tones_and_clicks`` (the tones are near 1 kHz).
CLICK_BAND_HZ = 3000.0
#: Rates the learner can answer with in the rate-versus-accuracy lesson (the Inspect sweep's rates).
RATE_CHOICES = tuple(round(0.1 * k, 1) for k in range(10))
#: Accuracy within this of the best counts as "the best" (ties between neighbouring rates).
ACCURACY_TIE = 0.01
#: Mean absolute change of the probe clip's importance that counts as "it moved".
MOVED_IMPORTANCE = 0.01

_LAB = {
    "lab_hop": 10,
    "lab_win": 25,
    "lab_mels": 64,
    "lab_frange": (0, 8000),
    "lab_db": 80,
    "lab_cmap": "magma",
    "lab_compare_hops": [10, 40],
}
_WINDOW = {"win_ms": 25, "win_hop": 2, "win_fmax": 2000, "win_db": 70, "win_compare": [10, 25, 100], "win_tile_s": 0.5}
_ADAPT = {"adapt_rate": 0.75, "adapt_db": 80, "adapt_cmap": "magma", "adapt_listen": False}
_STEPS = {"steps_rate": 0.75, "steps_step": 5, "steps_frame": 0, "steps_span": 80}
_TRAIN = {  # small and quick: 10 clips per class, 32 mel bands, a 20 ms hop
    "train_source": "builtin",
    "train_dataset": "events",
    "train_quick": 10,
    "train_frontend": "diffres",
    "train_rate": 0.75,
    "train_hop": 20.0,
    "train_epochs": 3,
    "train_lr": 3e-3,
    "train_seed": 0,
    "train_width": 16,
    "train_batch": 8,
    "train_mels": 32,
    "train_specaug": True,
    "train_reverb": False,
}


@dataclass(frozen=True)
class Verdict:
    """A check's result: passed or not, and one or two sentences on what was measured."""

    passed: bool
    text: str


@dataclass(frozen=True)
class Facts:
    """What a check looks at.

    Attributes:
        settings: the app's current control values (widget key -> value).
        sound: the current example or preset (``"example:alarm_clock"``), None for an upload
            or a recording.
        samples, sample_rate: the current clip.
        measured: the values the lesson ``needs``, by name:
            ``"mel"``: ``(log_mel [T, F], hop_seconds)`` at the page's settings;
            ``"stft"``: ``(log_power [T, K], frequencies_hz [K], hop_seconds)``;
            ``"steps"``: :class:`diffres.explain.DiffResSteps` and ``"log_mel"`` its input;
            ``"spread"``: :class:`diffres.analysis.HopSpread` of the current merge;
            ``"sweep"``: ``[(rate, accuracy), ...]`` or None before the sweep ran;
            ``"history"``: the training run's epoch records (``probe_importance`` each), or None;
            ``"answer"``: the learner's choice for a question answered by choosing, or None.
    """

    settings: Mapping[str, Any]
    sound: str | None
    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE
    measured: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Lesson:
    """One guided lesson (see the module docstring)."""

    key: str
    title: str
    topic: str
    goal: str
    page: str
    sound: str | None
    settings: Mapping[str, Any]
    question: str
    how: str
    check: Callable[[Facts], Verdict]
    solve: Callable[[Facts], dict[str, Any]]
    takeaway: str
    needs: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()

    def verdict(self, facts: Facts) -> Verdict:
        """:attr:`check`, after making sure the lesson's sound (if it has one) is still the current one."""
        if self.sound is not None and facts.sound != self.sound:
            return Verdict(False, "This lesson works on its own sound; you switched to another. Start it again.")
        return self.check(facts)


def _measured(facts: Facts, name: str) -> Any:
    return facts.measured.get(name)


# --------------------------------------------------------------------------- the checks


def _check_beeps(f: Facts) -> Verdict:
    log_mel, hop_s = _measured(f, "mel")
    n = separated_bursts(log_mel, hop_s, ALARM_GROUP_S)
    win = float(f.settings.get("lab_win", 0))
    if n >= ALARM_BEEPS:
        return Verdict(True, f"All {ALARM_BEEPS} beeps of the first group stand apart (gaps at least 20 dB quieter).")
    why = (
        f" The {win:g} ms window is longer than the 30 ms gaps, so it smears them shut: shorten the window too."
        if win > 30
        else ""
    )
    return Verdict(False, f"The first group shows {n} separate blob(s), not {ALARM_BEEPS}.{why}")


def _check_cost(f: Facts) -> Verdict:
    log_mel, hop_s = _measured(f, "mel")
    n_ref = 1 + len(f.samples) // MelConfig(f.sample_rate, hop_ms=10.0).hop_length
    cost = log_mel.shape[0] / n_ref
    text = f"{log_mel.shape[0]:,} frames at {hop_s * 1000:g} ms: {cost:.2f}x the {n_ref:,} frames of a 10 ms hop."
    return Verdict(cost >= COST_TARGET, text)


def tones_and_clicks_measures(
    log_power, frequencies_hz, hop_seconds: float, clip_seconds: float
) -> tuple[float, float]:
    """What a linear spectrogram of the ``tones_and_clicks`` preset resolves.

    Returns:
        ``(dip_db, click_ms)``: how far the spectrum dips between the two tones
        (:func:`~diffres.resolution.tone_dip_db`; two lines from :data:`RESOLVED_DIP_DB`) and how
        long the first click looks above :data:`CLICK_BAND_HZ`
        (:func:`~diffres.resolution.event_width_ms`; a thin line up to :data:`THIN_CLICK_MS`).
    """
    t0 = float(preset_event_times("tones_and_clicks", clip_seconds)[0])
    dip = tone_dip_db(log_power, frequencies_hz, *CLOSE_TONES_HZ)
    width = event_width_ms(log_power, frequencies_hz, hop_seconds, (t0 - 0.075, t0 + 0.075), f_min_hz=CLICK_BAND_HZ)
    return dip, width


def _tones_and_clicks(f: Facts) -> tuple[float, float, float]:
    log_power, freqs, hop_s = _measured(f, "stft")
    dip, width = tones_and_clicks_measures(log_power, freqs, hop_s, len(f.samples) / f.sample_rate)
    return dip, width, float(freqs[1] - freqs[0]) if len(freqs) > 1 else float("nan")


def _check_tones(f: Facts) -> Verdict:
    dip, _, bin_hz = _tones_and_clicks(f)
    text = f"Bins {bin_hz:.0f} Hz wide; the spectrum dips {dip:.1f} dB between {CLOSE_TONES_HZ[0]:.0f} and " + (
        f"{CLOSE_TONES_HZ[1]:.0f} Hz (two lines need at least {RESOLVED_DIP_DB:g} dB)."
    )
    return Verdict(dip >= RESOLVED_DIP_DB, text)


def _check_clicks(f: Facts) -> Verdict:
    _, width, _ = _tones_and_clicks(f)
    return Verdict(
        width <= THIN_CLICK_MS,
        f"The first click spreads over {width:.0f} ms (within 6 dB of its peak); a thin line is "
        f"{THIN_CLICK_MS:g} ms or less.",
    )


def _loudest_frame(f: Facts) -> int:
    return loudest_frame(_measured(f, "log_mel"))


def _check_rhythm(f: Facts) -> Verdict:
    steps = _measured(f, "steps")
    j = int(f.settings.get("steps_frame", 0))
    loud = _loudest_frame(f)
    a, b = steps.bin_edges[j], steps.bin_edges[j + 1]
    text = f"Output frame {j} covers input frames {a:.1f}-{b:.1f} ({b - a:.1f} frames merged)."
    if a <= loud + 0.5 < b:
        return Verdict(True, text + f" It holds the loudest hit (input frame {loud}).")
    return Verdict(False, text + f" The loudest hit is input frame {loud}: choose the output frame that covers it.")


def _answer(f: Facts, lesson_answers: tuple[str, ...]) -> int | None:
    a = _measured(f, "answer")
    return lesson_answers.index(a) if a in lesson_answers else None


_EVEN = ("Evenly: every merged frame covers about the same time", "Unevenly: it keeps detail somewhere")


def _check_even(f: Facts) -> Verdict:
    spread = _measured(f, "spread")
    truth = 0 if spread.uniform else 1
    said = _answer(f, _EVEN)
    measured = f"Its merged frames cover {spread.fine_ms:.0f} to {spread.coarse_ms:.0f} ms (10th-90th percentile)."
    if said is None:
        return Verdict(False, "Choose an answer. " + measured)
    if said == truth:
        return Verdict(True, "Right. " + measured)
    return Verdict(False, "Look again at the effective-hop row and the activeness. " + measured)


def _sweep_accuracy(sweep, rate: float) -> float | None:
    for r, acc in sweep:
        if abs(float(r) - rate) < 1e-6:
            return float(acc)
    return None


def _check_rate(f: Facts) -> Verdict:
    sweep = _measured(f, "sweep")
    if not sweep:
        return Verdict(False, "Run the sweep first (Validation set tab, below the confusion matrix).")
    best = max(float(a) for _, a in sweep)
    said = _measured(f, "answer")
    if said is None:
        return Verdict(False, "The sweep is there: now choose the rate where the accuracy peaks.")
    acc = _sweep_accuracy(sweep, float(said))
    if acc is None:
        return Verdict(False, f"Rate {said} was not in the sweep; choose one of its rates.")
    if acc >= best - ACCURACY_TIE:
        return Verdict(True, f"Right: {acc:.1%} at rate {float(said):g}, the best of the sweep.")
    return Verdict(False, f"At rate {float(said):g} it scores {acc:.1%}; the best in the sweep is {best:.1%}.")


def _check_training(f: Facts) -> Verdict:
    history = _measured(f, "history")
    if not history:
        return Verdict(False, "No finished epoch yet: press Play (or Step until an epoch ends).")
    first, last = history[0].probe_importance, history[-1].probe_importance
    if len(history) < 2 or first is None or last is None:
        return Verdict(False, f"{len(history)} epoch(s) done: let it train at least two to compare.")
    moved = float(np.mean(np.abs(np.asarray(last) - np.asarray(first))))
    text = f"Between epoch 1 and epoch {len(history)} the probe's importance moved by {moved:.3f} per frame on average."
    return Verdict(moved >= MOVED_IMPORTANCE, text + ("" if moved >= MOVED_IMPORTANCE else " Keep training."))


# --------------------------------------------------------------------------- the lessons


def _fixed(**settings: Any) -> Callable[[Facts], dict[str, Any]]:
    return lambda facts: dict(settings)


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        key="hop_beeps",
        title="Hop and event timing",
        topic="hop vs event timing",
        goal="See why fast events need a fine hop (and a short enough window).",
        page="lab",
        sound="example:alarm_clock",
        settings={**_LAB, "lab_hop": 40, "lab_win": 40},
        question="The alarm beeps in groups of four: 40 ms on, 30 ms off. At a 40 ms hop they blur into one block. "
        "Lower the hop until the four beeps of the first group (at 0.2 s) stand apart. Is the hop enough on its own?",
        how="Move **Hop (ms)** down to 10; then the **Window (ms)** down to 25.",
        check=_check_beeps,
        solve=_fixed(lab_hop=10, lab_win=25),
        takeaway="To resolve an event you need frames closer together than the event, and windows shorter than "
        "its gaps: the hop sets how often you look, the window how long each look lasts.",
        needs=("mel",),
    ),
    Lesson(
        key="frame_cost",
        title="The frame cost of a fine hop",
        topic="the frame cost of a fine hop",
        goal="See what a fine hop costs a classifier.",
        page="lab",
        sound="example:alarm_clock",
        settings=dict(_LAB),
        question="A classifier pays for every frame. Make the hop fine enough that it pays 4 times what it pays "
        "at 10 ms. Which hop does that, and how many frames is this 6 s clip then?",
        how="Move **Hop (ms)** down to 2 and read **Total frames** and **Classifier cost**.",
        check=_check_cost,
        solve=_fixed(lab_hop=2),
        takeaway="Frames grow as 1 / hop: a 4x finer hop is a 4x bigger bill on every clip, in the quiet "
        "stretches too. DiffRes keeps the fine hop only where the sound changes.",
        needs=("mel",),
    ),
    Lesson(
        key="long_window",
        title="Long window: two close tones",
        topic="window length vs frequency resolution (two simultaneous close tones)",
        goal="See that telling close frequencies apart takes a long window.",
        page="window",
        sound="preset:tones_and_clicks",
        settings={**_WINDOW, "win_ms": 10},
        question="Two tones play at once, 60 Hz apart (1000 and 1060 Hz). Lengthen the window until they show as "
        "two lines in the linear-frequency view. What is the bin width then, and what happened to the clicks?",
        how="Move **Window (ms)** up to 100 and read **Bin width** and the tone readout.",
        check=_check_tones,
        solve=_fixed(win_ms=100),
        takeaway="Bin width = 1 / window: 10 ms gives 100 Hz bins, 100 ms gives 10 Hz. Close tones need bins "
        "much narrower than their spacing, and the long window smears every click over its own length.",
        needs=("stft",),
    ),
    Lesson(
        key="short_window",
        title="Short window: sharp clicks",
        topic="window length vs time resolution (clicks)",
        goal="See that pinning a click in time takes a short window, and costs frequency detail.",
        page="window",
        sound="preset:tones_and_clicks",
        settings={**_WINDOW, "win_ms": 100},
        question="Shorten the window until each click is a thin vertical line (10 ms or less). Can you still "
        "see two tones? Is there a window that shows both?",
        how="Move **Window (ms)** down to 10 and compare the side-by-side panels.",
        check=_check_clicks,
        solve=_fixed(win_ms=10),
        takeaway="A window sees everything inside it at once: a 100 ms window spreads a 2 ms click over about "
        "50 ms. The tile of one frame always has window x bin width = 1, so no window is sharp in both.",
        needs=("stft",),
    ),
    Lesson(
        key="diffres_rhythm",
        title="What DiffRes keeps and merges",
        topic="what DiffRes keeps and merges, on a rhythm",
        goal="See, frame by frame, how DiffRes spends its budget on a rhythm.",
        page="steps",
        sound=RHYTHM_SOUND,
        settings=dict(_STEPS),
        question="Three figures of three tabla strokes, 25 ms apart: a fixed 40 ms hop would blur each figure "
        "into one. At rate 0.75 DiffRes keeps a quarter of the frames. Select the output frame that covers the "
        "loudest stroke: how many input frames does it merge? Then select one in a quiet stretch between the "
        "figures: how many there?",
        how="Move **Output frame** until the highlighted span sits on the tallest stroke of the waveform.",
        check=_check_rhythm,
        solve=lambda f: {"steps_frame": _measured(f, "steps").output_frame_at(_loudest_frame(f) + 0.5)},
        takeaway="Where the importance is high, each input frame gets (almost) an output frame of its own; "
        "where it is low, many frames share one. The budget T' is fixed, so detail at the hits is paid for by "
        "merging the quiet.",
        needs=("steps", "log_mel"),
        models=RHYTHM_MODELS,
    ),
    Lesson(
        key="rate_accuracy",
        title="Reduction rate vs accuracy",
        topic="reduction rate vs accuracy",
        goal="See how accuracy depends on the reduction rate a model runs at.",
        page="inspect",
        sound=None,
        settings={"inspect_source": "shipped", "inspect_tab": "Validation set"},
        question="This model was trained at rate 0.75. Run it at other rates on its validation set: at which rate "
        "is it most accurate? Does removing fewer frames always help?",
        how="In the **Validation set** tab (the lesson opens it), press **Run the sweep**, read the curve, then "
        "choose the rate.",
        check=_check_rate,
        solve=lambda f: {
            "answer": max(
                (a for a in RATE_CHOICES if _sweep_accuracy(_measured(f, "sweep"), a) is not None),
                key=lambda a: _sweep_accuracy(_measured(f, "sweep"), a) or 0.0,
            )
        },
        takeaway="A model learns at one budget. Far above its rate it loses detail; below it, it sees frames "
        "merged differently from training, so more frames are not automatically better.",
        needs=("sweep", "answer"),
        models=("events_diffres_r75",),
        answers=tuple(f"{r:g}" for r in RATE_CHOICES),
    ),
    Lesson(
        key="training",
        title="Importance while a model trains",
        topic="the importance changing while a model trains",
        goal="Watch the score network learn where to put resolution.",
        page="train",
        sound=None,
        settings=dict(_TRAIN),
        question="A small DiffRes classifier is set up on 10 clips per class of the events set. Press Play and "
        "watch the probe clip's importance curve: does it move from where it started, and where does it go?",
        how="Press **Play** and wait for two epochs (or press **Step** until two epochs are done).",
        check=_check_training,
        solve=_fixed(),
        takeaway="The score network starts from random weights; the classifier's loss (and the guide loss on "
        "empty frames) pull the importance towards the frames that help tell the classes apart.",
        needs=("history",),
    ),
    Lesson(
        key="no_help",
        title="Where DiffRes does not help",
        topic="where DiffRes does not help (stationary sounds, activeness near zero)",
        goal="Recognise when DiffRes is just average pooling.",
        page="adaptive",
        sound="example:siren",
        settings=dict(_ADAPT),
        question="The siren changes slowly and evenly. Read the effective-hop row and the activeness: does DiffRes "
        "spend its frames evenly here, or keep detail somewhere?",
        how="Read **Activeness** and the **Effective hop** row, then choose the answer below.",
        check=_check_even,
        solve=lambda f: {"answer": _EVEN[0] if _measured(f, "spread").uniform else _EVEN[1]},
        takeaway="When nothing stands out (activeness near 0, even hops), DiffRes merges like average pooling: "
        "a fixed coarse hop would do as well, for less.",
        needs=("spread", "answer"),
        models=RHYTHM_MODELS,
        answers=_EVEN,
    ),
)


def lesson(key: str) -> Lesson:
    """The lesson called ``key`` (KeyError naming the keys otherwise)."""
    for item in LESSONS:
        if item.key == key:
            return item
    raise KeyError(f"no lesson {key!r}; lessons: {', '.join(x.key for x in LESSONS)}")
