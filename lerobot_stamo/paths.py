"""Where commands write, and how: an output never overlaps an input (checked before touching the disk), and
a file or folder appears whole or not at all (written under a temporary name beside it, then renamed)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

# The ready-made config files (presets), shipped inside the package: console scripts read their defaults from
# here, so they run from any folder of a pip-installed plug-in (`configs/` in a clone links to this folder).
PRESETS_DIR = Path(__file__).resolve().parent / "configs"


def preset(name: str) -> Path:
    """The path of the plug-in's preset `name` (e.g. "stamo_tiny.json"), wherever the package is installed."""
    return PRESETS_DIR / name


def resolved(path: str | Path) -> Path:
    """`path` with `~` expanded, made absolute and with symlinks resolved (it need not exist)."""
    return Path(path).expanduser().resolve()


def check_output_path(
    output: str | Path, inputs: dict[str, str | Path | None], flag: str = "--output_dir"
) -> Path:
    """Refuses an output folder that is, lies inside, or contains one of the inputs.

    Writing (or `--overwrite`-replacing) such a folder would modify or delete an input.

    Args:
        output: The folder the command will write.
        inputs: Flag name -> input path (entries that are None, or not local paths, are skipped).
        flag: The output's flag name, for the message.

    Returns:
        The resolved output path.

    Raises:
        ValueError: Naming both flags, both paths and the fix.
    """
    out = resolved(output)
    for name, value in inputs.items():
        if value is None or str(value) == "":
            continue
        src = resolved(value)
        if not src.exists():
            continue  # a Hub id or a folder that does not exist yet: nothing on disk to protect
        if out == src:
            relation = "is"
        elif out.is_relative_to(src):
            relation = "lies inside"
        elif src.is_relative_to(out):
            relation = "contains"
        else:
            continue
        raise ValueError(
            f"{flag}={out} {relation} the input {name}={src}: writing there would modify or delete the input. "
            f"Choose an {flag} outside {src} that does not contain it."
        )
    return out


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Calls `write(tmp)` for a temporary file beside `path`, then renames it to `path`.

    A reader (or a run that is killed meanwhile) sees the whole new file, or the old one, never a part. The
    temporary name keeps `path`'s suffix (matplotlib and safetensors choose the format by it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomically(path: str | Path, text: str) -> Path:
    """`write_atomically` of a text file."""
    return write_atomically(path, lambda tmp: tmp.write_text(text))


def replace_folder(finished: str | Path, target: str | Path) -> Path:
    """Moves the complete folder `finished` to `target`, which appears whole or not at all.

    An existing `target` (the caller has checked that it is its own to replace) is renamed aside first and
    removed only once the new folder is in place.
    """
    finished, target = Path(finished), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.replace(finished, target)
        return target
    old = target.with_name(f".{target.name}.replaced{os.getpid()}")
    if old.exists():
        shutil.rmtree(old)  # left by this function in an interrupted run of this process id
    os.replace(target, old)
    os.replace(finished, target)
    shutil.rmtree(old)
    return target
