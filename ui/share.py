"""Shareable state: every page's settings and the chosen sound live in the URL's query parameters.

The query parameter of a setting is its widget key (``?lab_hop=5&sound_example=example:siren``),
and only values that differ from the default are written, TensorFlow-Playground style, so a
copied link reopens the same view in a fresh browser.

- :func:`restore_from_url` (first run of a session, before any widget): valid parameters
  become the widgets' values; unknown, malformed or out-of-range ones are ignored and listed
  in a short notice (:func:`url_notices`), never an error.
- :func:`write_url` (end of every run): the URL follows the settings of every page (widgets
  keep their values across pages, ``persist_state="session"``).
- :func:`copy_link`: the sidebar's "Copy link" control, which says when the sound is an
  upload or a recording (those cannot travel in a link).

:data:`PARAMS` is the one table of what travels; the tests check each entry against its
widget (same default, same options) and that every lesson's state is expressible in it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from diffres.audio import SAMPLE_RATE
from diffres.datasets import BUILTIN_DATASETS
from diffres.examples import DEFAULT_EXAMPLE, DEFAULT_PRESET_SECONDS, PRESETS, list_examples
from diffres.figures import COLORMAPS
from diffres.frontends import FRONTENDS
from diffres.training import TrainConfig

from . import cache
from .inspect import TAB_KEY as INSPECT_TAB_KEY
from .inspect import TABS as INSPECT_TABS

#: Parameters Streamlit itself reads (never ours, never reported as unknown).
RESERVED = frozenset({"embed", "embed_options"})
#: Session keys of the restore bookkeeping.
KEY_RESTORED = "_url_restored"
KEY_NOTICES = "_url_notices"


@dataclass(frozen=True)
class Param:
    """One setting that travels in the URL.

    Attributes:
        key: the widget's key, also the query parameter's name.
        default: the widget's default (left out of the URL); None = written whenever set; a
            callable of the session state gives a default that depends on it (the whole clip
            for a time range).
        parse: URL text -> widget value; raises ``ValueError`` with a short reason.
        show: widget value -> URL text.
        options: the widget's options, for a choice among them (None for numbers and flags).
    """

    key: str
    default: Any
    parse: Callable[[str], Any]
    show: Callable[[Any], str]
    options: tuple | None = None


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _match(text: str, options: Sequence[Any]) -> Any:
    """The option whose text (or numeric value) is ``text``."""
    for o in options:
        if str(o) == text or _num(o) == text:
            return o
        if isinstance(o, (int, float)) and not isinstance(o, bool):
            try:
                if math.isclose(float(text), float(o), rel_tol=0, abs_tol=1e-9):
                    return o
            except ValueError:
                pass
    shown = ", ".join(_num(o) for o in options[:12]) + (", ..." if len(options) > 12 else "")
    raise ValueError(f"not one of {shown}")


def choice(key: str, options: Sequence[Any], default: Any) -> Param:
    """A select box, select slider or segmented control over ``options``."""
    opts = list(options)
    return Param(key, default, lambda s: _match(s, opts), _num, tuple(opts))


def number(key: str, lo: float, hi: float, *, step: float, default: Any, kind: type = int) -> Param:
    """A slider or number input: ``kind`` in ``[lo, hi]`` on the grid ``lo + k * step``."""

    def parse(s: str) -> Any:
        try:
            v = float(s)
        except ValueError:
            raise ValueError("not a number") from None
        if not (math.isfinite(v) and lo - 1e-9 <= v <= hi + 1e-9):
            raise ValueError(f"outside {_num(kind(lo))}-{_num(kind(hi))}")
        k = round((v - lo) / step)
        if abs(lo + k * step - v) > 1e-6 * max(1.0, abs(step)):
            raise ValueError(f"not a multiple of {_num(kind(step))}")
        return kind(round(lo + k * step, 10))

    return Param(key, default, parse, _num)


def span(key: str, lo: float, hi: float, *, step: float, default: Any, kind: type = int) -> Param:
    """A range slider: ``"start,end"`` with ``start < end``, both on the grid."""
    one = number(key, lo, hi, step=step, default=None, kind=kind)

    def parse(s: str) -> tuple:
        parts = s.split(",")
        if len(parts) != 2:
            raise ValueError("needs two numbers, start,end")
        a, b = one.parse(parts[0]), one.parse(parts[1])
        if not a < b:
            raise ValueError("start must be below end")
        return (a, b)

    return Param(key, default, parse, lambda v: f"{_num(v[0])},{_num(v[1])}")


def pair(key: str, options: Sequence[Any], default: tuple) -> Param:
    """A range select slider: two options, the first not after the second."""
    opts = list(options)

    def parse(s: str) -> tuple:
        parts = s.split(",")
        if len(parts) != 2:
            raise ValueError("needs two values, low,high")
        a, b = _match(parts[0], opts), _match(parts[1], opts)
        if opts.index(a) > opts.index(b):
            raise ValueError("low must not be above high")
        return (a, b)

    return Param(key, default, parse, lambda v: f"{_num(v[0])},{_num(v[1])}", tuple(opts))


def many(key: str, options: Sequence[Any], default: list, max_n: int) -> Param:
    """A multiselect: a comma-separated subset of ``options``, at most ``max_n``."""
    opts = list(options)

    def parse(s: str) -> list:
        vals = [_match(p, opts) for p in s.split(",") if p != ""]
        if len(vals) > max_n or len(set(map(str, vals))) != len(vals):
            raise ValueError(f"at most {max_n} different values")
        return vals

    return Param(key, default, parse, lambda v: ",".join(_num(x) for x in v), tuple(opts))


def flag(key: str, default: bool) -> Param:
    """A toggle or checkbox: ``1``/``0`` (also ``true``/``false``)."""

    def parse(s: str) -> bool:
        if s.lower() in ("1", "true", "on", "yes"):
            return True
        if s.lower() in ("0", "false", "off", "no"):
            return False
        raise ValueError("not 1 or 0")

    return Param(key, default, parse, lambda v: "1" if v else "0")


def _checkpoints(frontend: str | None = "diffres") -> dict[str, dict]:
    """Shipped checkpoints by name (file stem)."""
    return {e["name"]: e for e in cache.checkpoint_index() if frontend is None or e["card"].get("frontend") == frontend}


def model(key: str) -> Param:
    """A DiffRes model choice: the session holds the checkpoint's id, the URL its name."""

    def parse(s: str) -> str:
        if s == cache.UNTRAINED_ID:
            return s
        found = _checkpoints()
        if s not in found:
            raise ValueError("no shipped DiffRes checkpoint of that name")
        return found[s]["id"]

    def show(v: str) -> str:
        return v if v == cache.UNTRAINED_ID else next((n for n, e in _checkpoints().items() if e["id"] == v), v)

    return Param(key, None, parse, show)


def checkpoint_path(key: str) -> Param:
    """A shipped checkpoint picked by path (the Inspect page): the URL holds its name."""

    def parse(s: str) -> str:
        found = _checkpoints(None)
        if s not in found:
            raise ValueError("no shipped checkpoint of that name")
        return found[s]["path"]

    def show(v: str) -> str:
        return next((n for n, e in _checkpoints(None).items() if e["path"] == v), v)

    return Param(key, None, parse, show)


def whole_clip(key: str) -> Callable[[Any], Any]:
    """The default of a time-range control: the whole clip (:func:`ui.view.time_window` keeps it)."""
    return lambda ss: ss.get(f"_{key}_whole")


def sound_options() -> list[str]:
    """The sound picker's options: ``example:<key>`` then ``preset:<name>``."""
    return [f"example:{e.key}" for e in list_examples()] + [f"preset:{name}" for name in PRESETS]


HOPS = [1, 2, 5, 10, 20, 40, 80]

#: Everything that travels in the URL, by key.  Pages' option lists are imported where they
#: are constants; defaults are the widgets' (tests compare the two).
PARAMS: dict[str, Param] = {
    p.key: p
    for p in (
        # sound (sidebar)
        choice("sound_example", sound_options(), f"example:{DEFAULT_EXAMPLE}"),
        number("sound_preset_seconds", 1.0, 10.0, step=0.5, default=float(DEFAULT_PRESET_SECONDS), kind=float),
        # Home
        pair("home_hops", HOPS, (10, 40)),
        # Spectrogram lab
        number("lab_hop", 1, 50, step=1, default=10),
        number("lab_win", 5, 100, step=1, default=25),
        choice("lab_mels", [16, 32, 40, 64, 80, 128, 256], 64),
        span("lab_frange", 0, SAMPLE_RATE // 2, step=50, default=(0, SAMPLE_RATE // 2)),
        number("lab_db", 20, 120, step=5, default=80),
        choice("lab_cmap", COLORMAPS, "magma"),
        many("lab_compare_hops", HOPS, [10, 40], 4),
        span("lab_view", 0.0, 30.0, step=0.01, default=whole_clip("lab_view"), kind=float),
        # Window trade-off
        choice("win_ms", (5, 10, 16, 25, 32, 40, 64, 100, 128, 200), 25),
        choice("win_hop", (1, 2, 5, 10), 2),
        number("win_fmax", 500, SAMPLE_RATE // 2, step=250, default=4000),
        number("win_db", 20, 120, step=5, default=70),
        many("win_compare", (5, 10, 16, 25, 32, 40, 64, 100, 128, 200), [10, 25, 100], 4),
        number("win_tile_s", 0.0, 30.0, step=0.01, default=0.5, kind=float),
        # Adaptive resolution
        model("adapt_model"),
        number("adapt_rate", 0.0, 0.95, step=0.05, default=None, kind=float),
        choice("adapt_hop", [1.0, 2.0, 5.0, 10.0, 20.0, 40.0], None),
        number("adapt_db", 20, 120, step=5, default=80),
        choice("adapt_cmap", COLORMAPS, "magma"),
        flag("adapt_listen", False),
        flag("adapt_compare_open", True),
        span("adapt_view", 0.0, 30.0, step=0.01, default=whole_clip("adapt_view"), kind=float),
        # How DiffRes computes
        model("steps_model"),
        number("steps_rate", 0.0, 0.95, step=0.05, default=None, kind=float),
        number("steps_step", 1, 7, step=1, default=1),
        number("steps_frame", 0, 100000, step=1, default=None),
        choice("steps_span", (40, 80, 160), 80),
        # Train
        choice("train_source", ("builtin", "buckets", "zip"), "builtin"),
        choice("train_dataset", list(BUILTIN_DATASETS), next(iter(BUILTIN_DATASETS))),
        choice("train_quick", (0, 40, 20, 10), 0),
        choice("train_frontend", list(FRONTENDS), next(iter(FRONTENDS))),
        number("train_rate", 0.0, 0.95, step=0.05, default=TrainConfig.reduction_rate, kind=float),
        choice("train_hop", (2.5, 5.0, 10.0, 20.0), TrainConfig.hop_ms),
        number("train_epochs", 1, 100, step=1, default=8),
        choice("train_lr", (3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2), TrainConfig.learning_rate),
        number("train_seed", 0, 9999, step=1, default=0),
        choice("train_width", (8, 16, 24, 32), TrainConfig.width),
        choice("train_batch", (8, 16, 32, 64), TrainConfig.batch_size),
        choice("train_mels", (32, 48, 64, 96), TrainConfig.n_mels),
        flag("train_specaug", True),
        flag("train_reverb", False),
        # Inspect
        choice("inspect_source", ("shipped", "run", "upload"), None),
        checkpoint_path("inspect_pick_shipped"),
        choice(INSPECT_TAB_KEY, INSPECT_TABS, INSPECT_TABS[0]),
    )
}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)
    return a == b


def restore_from_url() -> None:
    """On a session's first run, turn valid query parameters into widget values (before any
    widget exists) and remember the ignored ones for :func:`url_notices`."""
    ss = st.session_state
    if ss.get(KEY_RESTORED):
        return
    ss[KEY_RESTORED] = True
    ignored = []
    for name, text in st.query_params.to_dict().items():
        if name in RESERVED:
            continue
        spec = PARAMS.get(name)
        if spec is None:
            ignored.append(f"`{name}` (not a setting of this app)")
            continue
        try:
            ss[name] = spec.parse(text)
        except ValueError as err:
            ignored.append(f"`{name}={text}` ({err})")
    ss[KEY_NOTICES] = ignored


def url_notices() -> None:
    """A short notice of the link's ignored parameters, until dismissed."""
    ignored = st.session_state.get(KEY_NOTICES)
    if not ignored:
        return
    c1, c2 = st.columns([12, 1], vertical_alignment="center")
    c1.warning(
        "The link held settings this app cannot use; they were ignored: " + "; ".join(ignored) + ".",
        icon=":material/link_off:",
    )
    c2.button("Dismiss", key="url_notice_ok", help="Hide this notice.", on_click=_dismiss)


def _dismiss() -> None:
    st.session_state[KEY_NOTICES] = []


def current_params() -> dict[str, str]:
    """The URL's query parameters for the current settings (non-default values only)."""
    ss = st.session_state
    out = {}
    for key, spec in PARAMS.items():
        if key not in ss or ss[key] is None:
            continue
        value = ss[key]
        default = spec.default(ss) if callable(spec.default) else spec.default
        if default is not None and _same(value, default):
            continue
        try:
            out[key] = spec.show(value)
        except (TypeError, ValueError, IndexError):
            continue
    return out


def write_url() -> None:
    """Make the URL's query parameters follow the settings (call at the end of every run)."""
    params = current_params()
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)


def link_for(page: StreamlitPage) -> str:
    """The full link to ``page`` with the current settings."""
    here = urlsplit(st.context.url or "http://localhost:8501")
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    path = "/".join(p for p in (base, page.url_path) if p)
    query = urlencode(current_params(), safe=":,")
    return f"{here.scheme}://{here.netloc}/{path}" + (f"?{query}" if query else "")


def copy_link(page: StreamlitPage, sound_kind: str, sound_title: str) -> None:
    """The "Copy link" control: the link to this view, and what it cannot carry."""
    with st.popover("Copy link", icon=":material/link:", key="share_popover", width="stretch"):
        st.caption("This link reopens this page with its settings and sound, in any browser:")
        st.code(link_for(page), language=None, wrap_lines=True)
        st.caption("Copy it with the icon at the top right of the box.")
        if sound_kind in ("upload", "microphone"):
            what = "an uploaded file" if sound_kind == "upload" else "a microphone recording"
            fallback = PARAMS["sound_example"].show(
                st.session_state.get("sound_example", PARAMS["sound_example"].default)
            )
            st.warning(
                f"Your sound, {sound_title!r}, is {what}: sounds cannot travel in a link. The link opens with "
                f"the example `{fallback}` instead; send the file along with it.",
                icon=":material/warning:",
            )
