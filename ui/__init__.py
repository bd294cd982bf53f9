"""Shared Streamlit helpers for the app's pages (Streamlit is imported here, never in ``diffres``).

- :mod:`ui.sound`: the sound picker (examples, presets, upload, microphone) and the current clip.
- :mod:`ui.cache`: cached wrappers of library calls (features, models, DiffRes, resynthesis).
"""

from .sound import CurrentClip, clip_notices, current_clip, sound_picker

__all__ = ["CurrentClip", "clip_notices", "current_clip", "sound_picker"]
