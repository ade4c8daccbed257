"""A readable console: progress bars and results, not decoder tracebacks or encoder banners.

Two things bury the output of this project's scripts (and of the LeRobot CLIs it runs) in noise:

- When torchcodec is installed but cannot load FFmpeg's shared libraries, LeRobot logs the full
  loading traceback of every FFmpeg version it tried, each time something asks for the default video
  backend (draccus asks while building every CLI parser that has a ``DatasetConfig``). ``video_backend()``
  says so once, in one line, and returns the backend to pass explicitly; the log filter that
  ``install()`` adds turns LeRobot's own message into that line (once per run: the answer is handed to
  child processes in ``LEROBOT_STAMO_VIDEO_BACKEND``).
- The AV1 encoder LeRobot records videos with (SVT-AV1) prints its banner and ``Svt[info]``/``Svt[warn]``
  lines straight to the terminal, and FFmpeg logs informational muxer lines. ``quiet_video_encoder()``
  keeps both to errors and warnings (``SVT_LOG``, FFmpeg's log level); a user's own ``SVT_LOG`` wins.
- LeRobot's ``save_episode`` embeds the images of every episode with a Hugging Face ``datasets`` ``map``,
  whose own progress bar ("Map: 100%| 36/36") would print once per episode between the lines of the
  recording bar. ``quiet_dataset_writer()`` hides those bars while a dataset is written.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

VIDEO_BACKEND_ENV = "LEROBOT_STAMO_VIDEO_BACKEND"
TORCHCODEC_HELP = (
    "torchcodec cannot load FFmpeg's shared libraries, so videos are decoded with pyav (slower). To use "
    "torchcodec, install FFmpeg 4-8 with its shared libraries (Debian/Ubuntu: `sudo apt install ffmpeg`; "
    "conda: `conda install -c conda-forge ffmpeg`)."
)
# SVT-AV1's log levels: 0 fatal, 1 error, 2 warning, 3 info (its default).
SVT_LOG_ERRORS_ONLY = "1"


def video_backend() -> str:
    """The video decoder to pass to LeRobot explicitly: "torchcodec" when it loads, else "pyav".

    The first call of a run decides (and, when torchcodec cannot load, says so in one line); the answer
    is kept in the environment, so this process and the child processes it starts reuse it silently.
    """
    backend = os.environ.get(VIDEO_BACKEND_ENV)
    if backend in ("torchcodec", "pyav"):
        return backend
    backend = "pyav"
    if importlib.util.find_spec("torchcodec") is not None:
        try:
            importlib.import_module("torchcodec")
            backend = "torchcodec"
        except (ImportError, OSError, RuntimeError):
            logger.warning(TORCHCODEC_HELP)
    os.environ[VIDEO_BACKEND_ENV] = backend
    return backend


class _TorchcodecFallbackFilter(logging.Filter):
    """Replaces LeRobot's torchcodec loading traceback with ``video_backend()``'s one line, said once."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if "torchcodec" in message and "pyav" in message:
            video_backend()
            return False
        return True


def quiet_video_encoder() -> None:
    """Keep the AV1 encoder and FFmpeg to warnings and errors while this process records videos."""
    import av

    os.environ.setdefault("SVT_LOG", SVT_LOG_ERRORS_ONLY)  # read by SVT-AV1 whenever an encoder opens
    av.logging.set_libav_level(av.logging.WARNING)


@contextmanager
def quiet_dataset_writer() -> Iterator[None]:
    """Hide ``datasets``' per-episode "Map" progress bars while a LeRobot dataset is written (restored after)."""
    from datasets.utils import logging as datasets_logging

    was_enabled = datasets_logging.is_progress_bar_enabled()
    datasets_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            datasets_logging.enable_progress_bar()


def install() -> None:
    """Adds the torchcodec log filter to LeRobot's logger (idempotent; `errors.activate` calls it)."""
    lerobot_logger = logging.getLogger("lerobot.utils.import_utils")
    if not any(isinstance(f, _TorchcodecFallbackFilter) for f in lerobot_logger.filters):
        lerobot_logger.addFilter(_TorchcodecFallbackFilter())
