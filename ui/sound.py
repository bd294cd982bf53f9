"""The shared sound picker: example gallery, synthetic presets, upload, microphone.

The chosen clip lives in ``st.session_state["clip"]`` (a :class:`CurrentClip`) so it
persists across pages; whichever input changed last wins.  Bad audio becomes an
``st.error`` with the library's message (what is wrong, what to do), never a traceback.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import streamlit as st

import diffres
from diffres.audio import SAMPLE_RATE
from diffres.examples import DEFAULT_EXAMPLE, DEFAULT_PRESET_SECONDS, PRESETS, list_examples, preset_event_times

from . import cache
from .uploads import limit_text, max_upload_mb

MAX_SECONDS = 30.0
#: Extensions the uploader takes: what :func:`diffres.load_clip` decodes (its messages name the same formats).
UPLOAD_TYPES = ["wav", "flac", "ogg", "mp3", "aif", "aiff"]

#: Widget keys (tests and other pages may read them).
KEY_EXAMPLE = "sound_example"
KEY_UPLOAD = "sound_upload"
KEY_MIC = "sound_mic"
KEY_PRESET_SECONDS = "sound_preset_seconds"


@dataclass
class CurrentClip:
    """The clip every page works on.

    Attributes:
        digest: cache key of the samples (content hash or example/preset name).
        title: what the person sees.
        kind: ``"example"``, ``"preset"``, ``"upload"`` or ``"microphone"``.
        samples: ``[n]`` float32 mono at ``sample_rate``.
        sample_rate: Hz (16000).
        description: one line about the clip.
        trimmed: the source was longer than 30 s and only its start is used.
        original_seconds: length of the source before trimming.
        event_times: seconds of known events (presets, and examples built with known
            onsets), else empty.
        silent: the clip is (nearly) silent.
    """

    digest: str
    title: str
    kind: str
    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE
    description: str = ""
    trimmed: bool = False
    original_seconds: float = 0.0
    event_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    silent: bool = False

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


def _options() -> list[str]:
    return [f"example:{e.key}" for e in list_examples()] + [f"preset:{name}" for name in PRESETS]


def _label(option: str) -> str:
    kind, key = option.split(":", 1)
    if kind == "example":
        return next(e.title for e in list_examples() if e.key == key)
    return f"Synthetic: {PRESETS[key].title}"


def _from_option(option: str, preset_seconds: float) -> CurrentClip:
    kind, key = option.split(":", 1)
    if kind == "example":
        ex = next(e for e in list_examples() if e.key == key)
        clip = cache.example_clip(key)
        return CurrentClip(
            f"example:{key}",
            ex.title,
            "example",
            clip.samples,
            clip.sample_rate,
            ex.description,
            clip.trimmed,
            clip.original_seconds,
            np.asarray(ex.event_times, dtype=np.float64),
            silent=clip.silent,
        )
    preset = PRESETS[key]
    samples = cache.preset_samples(key, float(preset_seconds))
    return CurrentClip(
        f"preset:{key}:{preset_seconds:g}",
        preset.title,
        "preset",
        samples,
        SAMPLE_RATE,
        preset.description,
        False,
        float(preset_seconds),
        np.asarray(preset_event_times(key, float(preset_seconds))),
    )


def _from_bytes(data: bytes, name: str, kind: str) -> CurrentClip:
    digest = hashlib.sha1(data).hexdigest()[:16]
    clip = cache.decode_upload(digest, data, MAX_SECONDS)
    what = "Uploaded file" if kind == "upload" else "Microphone recording"
    return CurrentClip(
        f"{kind}:{digest}",
        name,
        kind,
        clip.samples,
        clip.sample_rate,
        f"{what}, {clip.original_seconds:.1f} s at {clip.original_sample_rate} Hz, "
        f"{clip.n_channels} channel(s), resampled to {SAMPLE_RATE} Hz mono.",
        clip.trimmed,
        clip.original_seconds,
        silent=clip.silent,
    )


def _set_clip(clip: CurrentClip) -> None:
    st.session_state["clip"] = clip
    st.session_state.pop("clip_error", None)


def _handle_bytes(widget_value, kind: str) -> None:
    """Make a new upload/recording current, or record its error (once per distinct file)."""
    ss = st.session_state
    seen = ss.setdefault("_sound_seen", {})
    if widget_value is None:
        seen[kind] = None
        return
    data = widget_value.getvalue()
    digest = hashlib.sha1(data).hexdigest()[:16]
    if seen.get(kind) == digest:
        return
    seen[kind] = digest
    name = getattr(widget_value, "name", None) or ("recording.wav" if kind == "microphone" else "upload")
    if kind == "microphone":
        name = "Microphone recording"
    try:
        _set_clip(_from_bytes(data, name, kind))
    except diffres.DiffResError as err:
        ss["clip_error"] = f"Could not use {name!r}: {err}"


def current_clip() -> CurrentClip:
    """The chosen clip (the default example when nothing was chosen yet)."""
    ss = st.session_state
    clip = ss.get("clip")
    if clip is None:
        clip = _from_option(f"example:{DEFAULT_EXAMPLE}", DEFAULT_PRESET_SECONDS)
        ss["clip"] = clip
    return clip


def sound_picker() -> CurrentClip:
    """Render the three ways to bring sound in (call inside ``with st.sidebar``); return the clip."""
    ss = st.session_state
    seen = ss.setdefault("_sound_seen", {})
    st.subheader("Sound")
    options = _options()
    option = st.selectbox(
        "Example or synthetic preset",
        options,
        index=0,
        format_func=_label,
        key=KEY_EXAMPLE,
        help="Shipped clips (16 kHz, licences in examples/NOTICE.md) and synthetic signals whose interesting "
        "moments are known in advance. Choosing one makes it the current sound on every page.",
    )
    if option.startswith("preset:"):
        st.slider(
            "Preset length (s)",
            1.0,
            10.0,
            float(DEFAULT_PRESET_SECONDS),
            0.5,
            key=KEY_PRESET_SECONDS,
            help="Length of the generated signal in seconds (events are placed relative to it).",
        )
    preset_seconds = float(ss.get(KEY_PRESET_SECONDS, DEFAULT_PRESET_SECONDS))
    choice = (option, preset_seconds if option.startswith("preset:") else None)
    current = ss.get("clip")
    back = False
    if current is not None and current.kind in ("upload", "microphone") and seen.get("example") == choice:
        back = st.button(
            f"Use {_label(option)!r} again",
            key="sound_use_example",
            help="Switch back from your upload or recording to the example chosen above.",
        )
    if seen.get("example") != choice or back:
        seen["example"] = choice
        try:
            _set_clip(_from_option(option, preset_seconds))
        except diffres.DiffResError as err:
            ss["clip_error"] = f"Could not load {_label(option)!r}: {err}"

    uploaded = st.file_uploader(
        f"Upload a sound (WAV, FLAC, OGG, MP3, AIFF; {limit_text()})",
        type=UPLOAD_TYPES,
        key=KEY_UPLOAD,
        max_upload_size=max_upload_mb(),
        help=f"Any sample rate and channel count: it is mixed to mono and resampled to {SAMPLE_RATE} Hz. "
        f"Only the first {MAX_SECONDS:.0f} s of longer files are used.",
    )
    _handle_bytes(uploaded, "upload")
    recorded = st.audio_input(
        "Or record with the microphone",
        sample_rate=SAMPLE_RATE,
        key=KEY_MIC,
        help=f"Records {SAMPLE_RATE} Hz mono in the browser (it asks for microphone permission). "
        f"Up to {MAX_SECONDS:.0f} s are used.",
    )
    _handle_bytes(recorded, "microphone")

    clip = current_clip()
    if ss.get("clip_error"):  # said once, next to the control that caused it (the pages do not repeat it)
        st.error(f"{ss['clip_error']} Still using {clip.title!r}.", icon=":material/error:")
    st.caption(f"**Now using:** {clip.title} ({clip.seconds:.2f} s)")
    st.audio(cache.wav_for(clip.digest, clip.samples, clip.sample_rate), format="audio/wav")
    return clip


def clip_notices(clip: CurrentClip | None = None) -> None:
    """Main-area notices about the current clip: trimming, silence (a load error is shown once,
    in the sidebar by the uploader)."""
    clip = clip or current_clip()
    if clip.trimmed:
        st.info(
            f"{clip.title!r} is {clip.original_seconds:.1f} s long; only its first {MAX_SECONDS:.0f} s are used.",
            icon=":material/content_cut:",
        )
    if clip.silent:
        st.warning(
            f"{clip.title!r} is silent (peak below -90 dBFS): the spectrogram will be empty.",
            icon=":material/volume_off:",
        )
