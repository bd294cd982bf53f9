"""Shared Streamlit helpers for the app's pages (Streamlit is imported here, never in ``diffres``).

- :mod:`ui.sound`: the sound picker (examples, presets, upload, microphone) and the current clip.
- :mod:`ui.cache`: cached wrappers of library calls (features, models, DiffRes, resynthesis).
- :mod:`ui.view`: the "time range shown" control (zoom at full resolution).
- :mod:`ui.frame`: the page list and ``ensure_entrypoint()``, called first by every page so it
  always runs inside ``app.py`` (Streamlit's legacy ``pages/`` mode would otherwise run a page
  on its own).
- :mod:`ui.session`, :mod:`ui.data_sources`, :mod:`ui.buckets`, :mod:`ui.runs`: the session's
  folder, training data, the user's class buckets and the training runs' lifecycle.
- :mod:`ui.lab`, :mod:`ui.adaptive`, :mod:`ui.train_data`, :mod:`ui.train_view`,
  :mod:`ui.inspect`, :mod:`ui.inspect_view`: the widgets (and cached evaluations) of the pages.

Only Streamlit glue lives here: whatever can be computed without Streamlit is in ``diffres``.
"""

# pandas first, while the import lock of this package is held: Streamlit imports it lazily
# inside each session's script thread, and four sessions doing that at once on a cold start
# could meet a partially initialised pandas ("partially initialized module 'pandas'").
import importlib

importlib.import_module("pandas")

from .sound import CurrentClip, clip_notices, current_clip, sound_picker  # noqa: E402 - after pandas

__all__ = ["CurrentClip", "clip_notices", "current_clip", "sound_picker"]
