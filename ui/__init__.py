"""Shared Streamlit helpers for the app's pages (Streamlit is imported here, never in ``diffres``).

- :mod:`ui.sound`: the sound picker (examples, presets, upload, microphone) and the current clip.
- :mod:`ui.cache`: cached wrappers of library calls (features, models, DiffRes, resynthesis).
- :mod:`ui.view`: the "time range shown" control (zoom at full resolution).
- :mod:`ui.frame`: ``ensure_entrypoint()``, called first by every page so it always runs inside
  ``app.py`` (Streamlit's legacy ``pages/`` mode would otherwise run a page on its own).
"""

from .sound import CurrentClip, clip_notices, current_clip, sound_picker

__all__ = ["CurrentClip", "clip_notices", "current_clip", "sound_picker"]
