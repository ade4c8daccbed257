"""Headless MuJoCo rendering: pick EGL (or OSMesa) when there is no display, even if mujoco is imported.

MuJoCo reads ``MUJOCO_GL`` once, when ``mujoco`` is first imported; without it, it picks GLFW, which
needs a display. LeRobot may import another plug-in that imports ``mujoco`` before this package, so
besides setting the variable this module re-points MuJoCo's renderer at the chosen context class.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import sys

logger = logging.getLogger(__name__)

HEADLESS_HELP = (
    "On a machine without a display, install EGL (Debian/Ubuntu: libegl1) or OSMesa (libosmesa6) and set "
    "MUJOCO_GL=egl (or osmesa) before starting Python; with a display, MUJOCO_GL=glfw."
)


def configure_headless_rendering() -> str | None:
    """Choose an off-screen OpenGL backend when the user did not and there is no display.

    Returns:
        The backend chosen here ("egl" or "osmesa"), or None when the user's ``MUJOCO_GL``, a display or
        the absence of both libraries leaves MuJoCo's own choice in place.
    """
    if os.environ.get("MUJOCO_GL") or not sys.platform.startswith("linux") or os.environ.get("DISPLAY"):
        return None
    backend = (
        "egl" if ctypes.util.find_library("EGL") else "osmesa" if ctypes.util.find_library("OSMesa") else None
    )
    if backend is None:
        return None
    os.environ["MUJOCO_GL"] = backend
    if "mujoco" in sys.modules:  # imported before us with the GLFW default: switch its context class
        from mujoco.rendering.classic import gl_context, renderer

        if backend == "egl":
            from mujoco.egl import GLContext
        else:
            from mujoco.osmesa import GLContext
        gl_context.GLContext = GLContext
        renderer.GLContext = GLContext
        logger.debug("mujoco was imported before MUJOCO_GL was set; switched its renderer to %s", backend)
    return backend
