"""The plug-in's console behaviour, only in the runs that use the plug-in.

LeRobot imports every installed plug-in at the start of each of its commands (`lerobot-train`, `-eval`,
`-record`, `-rollout`, `-calibrate`, ...). Importing this one registers its policies, robots and env, and
changes nothing else. Two process-wide things are switched on by `activate()` (`lerobot_stamo.errors`) instead:

- the excepthook of `lerobot_stamo.errors` (the last line of an uncaught user error names the problem and
  the fix), and
- the log filter of `lerobot_stamo.console` (LeRobot's torchcodec-fallback traceback said once, in one line).

They are switched on by this project's console scripts (`lerobot_stamo.scripts`), when the plug-in is
imported by a command whose command line uses it (`uses_stamo`: a `stamo*` policy, robot, teleoperator or
env type, or a checkpoint / `--config_path` file of one), and whenever one of the plug-in's configs is
built (`errors.explain_config_errors`), which covers the configs LeRobot reads from files later (a resumed
run, a Hub checkpoint). A user training ACT with the plug-in installed sees LeRobot's own output.
"""

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lerobot_stamo.errors import _flags, activate, config_file_values

OWN_SCRIPT_PREFIXES = ("lerobot-stamo", "lerobot_stamo")
# --<key>=<path> flags whose file (or folder's config.json / train_config.json) may hold a StaMo type
PATH_FLAGS = ("policy.path", "config_path")
PATH_FLAG_SUFFIXES = ("pretrained_path", "stamo_path")


def _types(data: Any) -> Iterator[str]:
    """Every `"type"` string of a parsed JSON config (policy, robot, teleop, env, nested)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "type" and isinstance(value, str):
                yield value
            else:
                yield from _types(value)
    elif isinstance(data, list):
        for value in data:
            yield from _types(value)


def _config_files(value: str) -> Iterator[Path]:
    """The JSON files a path flag may point at: the file, a folder's configs, or a Hub id's cached config."""
    path = Path(value).expanduser()
    if path.is_file():
        yield path
    elif path.is_dir():
        yield from (path / name for name in ("config.json", "train_config.json") if (path / name).is_file())
    elif value.count("/") == 1:  # a Hub repo id: only what is already in the local cache
        from huggingface_hub import try_to_load_from_cache
        from huggingface_hub.errors import HFValidationError

        try:
            cached = try_to_load_from_cache(value, "config.json")
        except HFValidationError:
            return
        if isinstance(cached, str):
            yield Path(cached)


def _names_stamo(value: str) -> bool:
    for file in _config_files(value):
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        if any(t.startswith("stamo") for t in _types(data)):
            return True
    return False


def uses_stamo(argv: list[str]) -> bool:
    """True when the command line `argv` (`sys.argv`) runs this project's script or uses the plug-in."""
    if argv and Path(argv[0]).name.startswith(OWN_SCRIPT_PREFIXES):
        return True
    for key, value in _flags(argv[1:]).items():
        if key.endswith("type") and value.startswith("stamo"):
            return True
        if (key in PATH_FLAGS or key.endswith(PATH_FLAG_SUFFIXES)) and _names_stamo(value):
            return True
    return False


def env_evaluated_by_train(argv: list[str]) -> str | None:
    """The env type a `lerobot-train` command line `argv` evaluates its policy in every `--env_eval_freq` steps
    (`--env.type`, or the `env` of its `--config_path` file), or None (another command, no env, or 0)."""
    if not argv or "lerobot_train" not in Path(argv[0]).name.replace("-", "_"):
        return None
    flags = _flags(argv[1:])
    saved = config_file_values(flags)
    env = flags.get("env.type") or (saved.get("env") or {}).get("type")
    freq = flags.get("env_eval_freq", saved.get("env_eval_freq", 1))
    return env if env and str(freq) != "0" else None


def activate_if_used(argv: list[str] | None = None) -> None:
    """`activate()` when `argv` (default `sys.argv`) uses the plug-in (called when the plug-in is imported)."""
    if uses_stamo(sys.argv if argv is None else argv):
        activate()
