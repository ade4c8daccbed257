"""Checks every command that writes runs before touching the disk: an output never overlaps an input."""

from __future__ import annotations

from pathlib import Path


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
