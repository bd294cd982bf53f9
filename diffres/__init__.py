"""DiffRes Explorer: learned spectrogram temporal resolution (DiffRes) for audio classification.

The library never imports Streamlit.  Tensors are ``[batch, time, freq]`` throughout.
Names fixed by the project's interface contract are re-exported here.
"""

from __future__ import annotations

from . import analysis, familiarity, functional
from .audio import load_audio, load_clip
from .checkpoints import load_checkpoint, save_checkpoint
from .core import DiffRes, DiffResOutput, FrontendOutput
from .errors import AudioError, CheckpointError, DatasetError, DiffResError, ParameterError
from .features import MelFrontend, spec_augment
from .frontends import FRONTENDS, make_frontend
from .functional import output_length

__version__ = "0.1.0"

__all__ = [
    "analysis",
    "familiarity",
    "functional",
    "load_audio",
    "load_clip",
    "MelFrontend",
    "spec_augment",
    "output_length",
    "DiffRes",
    "DiffResOutput",
    "FrontendOutput",
    "FRONTENDS",
    "make_frontend",
    "save_checkpoint",
    "load_checkpoint",
    "DiffResError",
    "ParameterError",
    "AudioError",
    "CheckpointError",
    "DatasetError",
]
