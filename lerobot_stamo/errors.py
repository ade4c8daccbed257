"""Errors that explain themselves: the last line a user sees names the problem and the fix.

Two things hide a config's own message from the user:

- draccus turns a `ValueError`/`TypeError` raised in a config's `__post_init__` into
  `ParsingError: Couldn't instantiate class X` (the real message survives only as the exception's cause, in the
  middle of a chained traceback), and
- LeRobot's `parser.wrap` (`lerobot-train`, `lerobot-eval`, `lerobot-record`, `lerobot-stamo-interpolate`)
  catches draccus' `DecodingError`, prints `error: <it>` and exits, so for `--policy.type=stamo` the message
  is not printed at all.

Two pieces fix both: `explain_config_errors` (a decorator on a policy config's `__post_init__`) re-raises
the config's `ValueError` as a `ConfigArgumentError` while draccus decodes it, so the message passes through
draccus into the `error: ...` line LeRobot prints; and `install()` (called by `lerobot_stamo.activation` in
the runs that use the plug-in) sets a `sys.excepthook` that, for an uncaught exception whose cause/context chain holds a `StamoError` (or a
config's `ValueError` wrapped by draccus), prints the usual traceback and then that message as the final
line. Genuine bugs keep their plain traceback.

`check_checkpoint` and `check_dataset` turn the generic failures of a missing or damaged input (an offline
Hub lookup, a repo-id validation error, a JSON or safetensors parse error without a file name) into one
message that names the file and what to do. This plug-in calls them before it loads anything; for LeRobot's
own loading (`lerobot-train --policy.path=...`, `--dataset.root=...`) the excepthook runs them on the command
line once such a generic error ends the program (`diagnose_inputs`).
"""

import dataclasses
import functools
import json
import math
import os
import re
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from huggingface_hub import try_to_load_from_cache
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id


class StamoError(Exception):
    """A user error: the input is wrong and the message says what to do (not a bug of this plug-in)."""


class ConfigArgumentError(StamoError):
    """A config refused the arguments draccus decoded (deliberately not a `ValueError`, see
    `explain_config_errors`)."""


class StamoInputError(StamoError, OSError):
    """An input file or folder is missing, is not what it should be, or is damaged."""


class ArmPortError(StamoError, ConnectionError):
    """A robot's or teleoperator's serial port that does not exist or does not answer."""


class MissingInputError(StamoError, KeyError):
    """A batch or observation lacks a key the policy reads (a `KeyError` whose message prints as written)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """The exception, then its causes/contexts (each once)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _input_error_types() -> tuple[type[BaseException], ...]:
    """Generic failures of a missing or damaged input, raised by LeRobot / huggingface_hub without the fix."""
    from huggingface_hub.errors import EntryNotFoundError, OfflineModeIsEnabled, RepositoryNotFoundError
    from safetensors import SafetensorError

    return (
        HFValidationError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        EntryNotFoundError,
        json.JSONDecodeError,
        SafetensorError,
        FileNotFoundError,
        NotADirectoryError,
    )


def _flags(argv: list[str]) -> dict[str, str]:
    """`--key=value` and `--key value` pairs of a command line (without the dashes)."""
    flags: dict[str, str] = {}
    for i, token in enumerate(argv):
        if not token.startswith("--"):
            continue
        if "=" in token:
            key, value = token[2:].split("=", 1)
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            key, value = token[2:], argv[i + 1]
        else:
            continue
        flags[key] = value
    return flags


def diagnose_inputs(argv: list[str]) -> StamoInputError | None:
    """The first problem with the checkpoint (`--*.path`) and dataset (`--dataset.*`) flags of a command line.

    Used when LeRobot's own loading (e.g. `lerobot-train --policy.path=...`) fails with a generic error.
    """
    flags = _flags(argv)
    try:
        if "config_path" in flags:
            check_config_file(flags["config_path"])
        for key, value in flags.items():
            if key == "policy.path" or key.endswith(("pretrained_path", "stamo_path")):
                check_checkpoint(value, f"--{key}")
        if "dataset.repo_id" in flags or "dataset.root" in flags:
            check_dataset(flags.get("dataset.repo_id"), flags.get("dataset.root"), "--dataset")
    except StamoInputError as err:
        return err
    return None


def _missing_processors(exc: BaseException) -> StamoInputError | None:
    """LeRobot's `ProcessorMigrationError` for a checkpoint of this plug-in without its processor files.

    LeRobot suggests a migration script (meant for checkpoints older than its processors); a stamo or stamo_vla
    checkpoint without `policy_preprocessor.json` was saved by `policy.save_pretrained` alone.
    """
    path = Path(str(getattr(exc, "model_path", "")))
    try:
        policy_type = json.loads((path / "config.json").read_text()).get("type")
    except (OSError, ValueError, AttributeError):
        return None
    if policy_type not in ("stamo", "stamo_vla"):
        return None
    return StamoInputError(
        f"{path} has no policy_preprocessor.json: the {policy_type} checkpoint was saved by "
        "`policy.save_pretrained` alone (LeRobot's migration script does not apply). Save its processors too: "
        "`pre, post = make_pre_post_processors(policy.config, dataset_stats=...)`, then "
        f"`pre.save_pretrained('{path}')` and `post.save_pretrained('{path}')`, or use a checkpoint that "
        "`lerobot-train` wrote (checkpoints/<step>/pretrained_model)."
    )


ARM_ROLES = {"robot": "follower arm", "teleop": "leader arm"}


def check_port(port: str, part: str) -> None:
    """Refuses a device path (`/dev/...`) that does not exist, naming the arm (`part`: robot or teleop) and
    its flag: an arm built before another one connects would otherwise fail only on the other one's port."""
    if str(port).startswith("/dev/") and not Path(port).exists():
        raise ArmPortError(
            f"The {ARM_ROLES[part]}'s port --{part}.port={port} does not exist: plug the arm in and power it, "
            f"then find its port with `lerobot-find-port` and pass it as --{part}.port=<port>."
        )


def config_file_values(flags: dict[str, str]) -> dict[str, Any]:
    """The JSON of the command line's `--config_path` file (what its flags override), or {} (none, unreadable)."""
    try:
        saved = json.loads(Path(flags["config_path"]).read_text()) if "config_path" in flags else {}
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def _unreachable_port(exc: BaseException, argv: list[str]) -> ArmPortError | None:
    """LeRobot's "Could not connect on port 'X'" with the arm whose port X is (from the command line, or its
    --config_path file) named, so that a user who changed the follower's port sees that the leader's failed."""
    match = re.search(r"Could not connect on port '([^']*)'", str(exc))
    if match is None:
        return None
    flags = _flags(argv)
    saved = config_file_values(flags)
    for part, role in ARM_ROLES.items():
        base = saved.get(part) if isinstance(saved.get(part), dict) else {}
        port, kind = flags.get(f"{part}.port", base.get("port")), flags.get(f"{part}.type", base.get("type"))
        if port == match.group(1):
            return ArmPortError(
                f"Could not connect to the {role}{f' ({kind})' if kind else ''} on --{part}.port={port}: check "
                "that it is plugged in and powered, and that this is its port (`lerobot-find-port` lists them)."
            )
    return None


def explain(exc: BaseException, argv: list[str] | None = None) -> BaseException | None:
    """The user error to show as the last line for an uncaught `exc`, or None for a genuine bug.

    In order: the first `StamoError` in the cause/context chain; when the chain holds a generic failure to
    open an input, the problem `diagnose_inputs` finds on the command line `argv` (default: `sys.argv[1:]`);
    the `ValueError` a config's `__post_init__` raised and draccus wrapped as "Couldn't instantiate class ..."
    (LeRobot's convention for validation errors).
    """
    from draccus.utils import ParsingError

    chain = list(_chain(exc))
    for err in chain:
        if isinstance(err, StamoError):
            return err
    for err in chain:
        found = (
            _unreachable_port(err, sys.argv[1:] if argv is None else argv)
            if isinstance(err, ConnectionError)
            else None
        )
        if found is not None:
            return found
    for err in chain:
        if type(err).__name__ == "ProcessorMigrationError":
            found = _missing_processors(err)
            if found is not None:
                return found
    if any(isinstance(err, _input_error_types()) for err in chain):
        found = diagnose_inputs(sys.argv[1:] if argv is None else argv)
        if found is not None:
            return found
    for err in chain:
        cause = err.__cause__
        if (
            isinstance(err, ParsingError)
            and str(err).startswith("Couldn't instantiate class")
            and isinstance(cause, ValueError)
            and not isinstance(cause, ParsingError)
        ):
            return cause
    return None


def _close_progress_bars() -> None:
    """Closes the tqdm bars still open (e.g. `lerobot-eval`'s episode bar when a policy raises).

    Otherwise each one erases its line when the interpreter shuts down, after the traceback: the user's last
    line is then a cursor-movement code, not the error.
    """
    tqdm_module = sys.modules.get("tqdm")
    if tqdm_module is None:
        return
    for bar in list(getattr(tqdm_module.tqdm, "_instances", ())):
        try:
            bar.close()
        except Exception:  # noqa: BLE001 - a bar that cannot close must not hide the error
            pass


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None, previous=sys.__excepthook__
) -> None:
    _close_progress_bars()
    previous(exc_type, exc, tb)
    err = explain(exc)
    if err is not None and err is not exc:
        print(f"\nerror: {err}", file=sys.stderr)


def _decoding_by_draccus() -> bool:
    """True while draccus decodes a config (a `ValueError` raised now becomes a message-less ParsingError)."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "decode_dataclass" and code.co_filename.endswith(
            os.path.join("draccus", "parsers", "decoding.py")
        ):
            return True
        frame = frame.f_back
    return False


def explain_config_errors(post_init: Callable[[Any], None]) -> Callable[[Any], None]:
    """Decorates a config's `__post_init__` so that its `ValueError` messages reach the user's last line.

    Called from Python, the `ValueError` propagates unchanged. While draccus decodes the config (a console
    script, `lerobot-train --policy.type=...`, `PreTrainedConfig.from_pretrained`), the same message is raised
    as a `ConfigArgumentError`, which draccus does not replace by "Couldn't instantiate class ...": LeRobot's
    `parser.wrap` then prints it as the last line, and elsewhere it ends the traceback.
    """

    @functools.wraps(post_init)
    def wrapper(self) -> None:
        activate()  # a StaMo config is in use: its errors end in their message (see `lerobot_stamo.activation`)
        try:
            post_init(self)
        except ValueError as err:
            if not _decoding_by_draccus():
                raise
            raise ConfigArgumentError(str(err)) from err

    return wrapper


def _is_float_type(tp: Any) -> bool:
    """Whether a field type is float or holds floats (`float | None`, `tuple[float, float]`, `list[float]`)."""
    if tp is float:
        return True
    return any(_is_float_type(arg) for arg in typing.get_args(tp) if arg is not Ellipsis)


@functools.cache
def float_fields(config_class: type) -> tuple[str, ...]:
    """The fields of a config dataclass that hold floats (for `check_finite_fields`)."""
    hints = typing.get_type_hints(config_class)
    return tuple(f.name for f in dataclasses.fields(config_class) if _is_float_type(hints.get(f.name)))


def check_finite_fields(config: Any) -> None:
    """Refuses NaN and inf in every float field of a config dataclass (a NaN passes every `>=` check).

    Raises:
        ValueError: Naming the field, its value and the fix.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    for name in float_fields(type(config)):
        value = getattr(config, name)
        values = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            default = defaults.get(name, dataclasses.MISSING)
            hint = "" if default in (dataclasses.MISSING, None) else f" (default: {default})"
            raise ValueError(
                f"`{name}` must be finite, got {value}: NaN or inf passes every range check and ruins training "
                f"or acting. Pass a finite --policy.{name}{hint}."
            )


class NonFiniteLossError(StamoError, FloatingPointError):
    """Training diverged: the loss is NaN or inf (raised before the optimizer step, so nothing bad is saved)."""


def frame_range_hint(lo: float, hi: float) -> str:
    """What float frames out of [0, 1] (their range `lo`..`hi`) most likely are, and the fix; "" if unclear."""
    if lo >= -1e-3 and 1.5 < hi <= 255 + 1e-3:
        return " They look like 0-255 values: divide by 255."
    if lo < -0.1:
        return " They look normalised (negative values): give the frames in [0, 1], before any mean/std normalisation."
    return ""


def check_finite_loss(policy: str, step: int, info: dict[str, float], fix: str) -> None:
    """Stops training the first time the loss is NaN or inf, naming the step and every loss term.

    Raises:
        NonFiniteLossError: With the terms and the fix (the batch's own values were checked already).
    """
    if math.isfinite(info["loss"]):
        return
    terms = ", ".join(f"{k}={v:.4g}" for k, v in info.items() if k != "real_frames")
    raise NonFiniteLossError(
        f"{policy}: the training loss is not finite at training step {step} of this run ({terms}), so training "
        "stopped before this step's update and before saving a checkpoint from it. The batch's inputs are "
        f"finite, so training diverged: {fix}, or resume from the last good checkpoint."
    )


def install() -> None:
    """Installs the excepthook (idempotent; `activate` calls it)."""
    if getattr(sys.excepthook, "__name__", "") == "_stamo_excepthook":
        return
    previous = sys.excepthook

    def _stamo_excepthook(exc_type, exc, tb):
        _excepthook(exc_type, exc, tb, previous)

    sys.excepthook = _stamo_excepthook


def activate() -> None:
    """Switches on the plug-in's console behaviour: this excepthook and `console`'s log filter (idempotent;
    `lerobot_stamo.activation` says when)."""
    from lerobot_stamo import console

    install()
    console.install()


def _offline() -> bool:
    """HF_HUB_OFFLINE as set now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in (
        "1",
        "ON",
        "YES",
        "TRUE",
    )


def _is_local(path: str) -> bool:
    """Whether `path` must be a local folder (it exists, or cannot be a Hub repo id)."""
    if Path(path).expanduser().exists() or path.startswith((".", "/", "~")) or path.count("/") > 1:
        return True
    try:
        validate_repo_id(path)
    except HFValidationError:
        return True
    return False


def check_json_file(path: Path, flag: str) -> dict:
    """Reads a JSON object from `path`, naming the file and `flag` when it is missing or damaged."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise StamoInputError(f"{flag}: {path} is missing. Point {flag} at a complete folder.") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StamoInputError(
            f"{flag}: {path} is not valid JSON ({err}). The file is damaged: restore or re-create it."
        ) from err
    if not isinstance(data, dict):
        raise StamoInputError(
            f"{flag}: {path} holds a {type(data).__name__}, not a JSON object. Restore or re-create it."
        )
    return data


def check_safetensors_file(path: Path, flag: str) -> None:
    """Opens the header of a safetensors file, naming the file when it is truncated or not safetensors."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except (SafetensorError, OSError) as err:
        raise StamoInputError(
            f"{flag}: {path} cannot be read as safetensors ({err}). The file is truncated or damaged: "
            "copy or download it again, or re-train."
        ) from err


def check_config_file(path: str | Path, flag: str = "--config_path") -> None:
    """Checks a draccus config file; a missing preset name points at the copy shipped with the plug-in.

    Raises:
        StamoInputError: For a missing file (naming the plug-in's preset of that name, if there is one).
    """
    file = Path(path).expanduser()
    if file.is_file() or file.is_dir():
        return
    from lerobot_stamo.paths import PRESETS_DIR

    shipped = PRESETS_DIR / file.name
    hint = (
        f" The plug-in ships this preset: pass {flag}={shipped}."
        if shipped.is_file()
        else f" The plug-in's presets are in {PRESETS_DIR}."
    )
    raise StamoInputError(f"{flag}={path}: no such file (looked in {Path.cwd()}).{hint}")


def check_checkpoint(path: str | Path | None, flag: str = "--policy.path") -> None:
    """Checks a checkpoint folder (config.json + *.safetensors) before LeRobot or transformers load it.

    A Hub repo id passes through (the Hub's own errors name it); a local folder that is missing, is not a
    checkpoint, or holds a damaged `config.json` or safetensors file raises a `StamoInputError` naming the
    file and the fix.

    Raises:
        StamoInputError: For a missing or damaged local checkpoint, or a Hub id while HF_HUB_OFFLINE=1 that is
            not in the local cache.
    """
    if path is None or str(path) == "":
        raise StamoInputError(f"{flag} is required: a checkpoint folder (with config.json) or a Hub repo id.")
    path = str(path)
    folder = Path(path).expanduser()
    if not _is_local(path):
        if _offline() and try_to_load_from_cache(path, "config.json") is None:
            raise StamoInputError(
                f"{flag}={path}: no such folder, and HF_HUB_OFFLINE=1 forbids downloading it as a Hub repo id. "
                "Pass an existing checkpoint folder, or unset HF_HUB_OFFLINE to download it."
            )
        return
    if not folder.exists():
        raise StamoInputError(
            f"{flag}={path}: no such folder. Pass a checkpoint folder (e.g. "
            "outputs/train/<run>/checkpoints/last/pretrained_model) or a Hub repo id (user/name)."
        )
    if not folder.is_dir():
        raise StamoInputError(f"{flag}={path} is a file: pass the checkpoint folder that holds config.json.")
    if not (folder / "config.json").is_file():
        # A training run's output folder, or its checkpoints folder (no recursive search: it may be huge).
        layouts = ("pretrained_model", "last/pretrained_model", "checkpoints/last/pretrained_model")
        nested = [folder / layout for layout in layouts if (folder / layout / "config.json").is_file()]
        hint = f" Did you mean {nested[0]}?" if nested else ""
        raise StamoInputError(
            f"{flag}={path} has no config.json, so it is not a checkpoint folder.{hint} Pass the "
            "`pretrained_model` folder of a training run."
        )
    check_json_file(folder / "config.json", flag)
    for weights in sorted(folder.glob("*.safetensors")):
        check_safetensors_file(weights, flag)


def check_resume(path: str | Path, argv: list[str] | None = None) -> None:
    """Names the fix when `lerobot-train --resume=true --config_path=<file>` points outside any checkpoint.

    LeRobot resumes from the folder of `--config_path` and loads the policy from there; with a preset (e.g.
    configs/stamo_vla_compact_sim.json) that folder is the presets' folder, which only fails later as "not a
    checkpoint folder". Does nothing unless the command line (`argv`, default `sys.argv[1:]`) resumes and
    `path` (the checkpoint LeRobot is about to load) is the folder of `--config_path` and lacks config.json.

    Raises:
        StamoInputError: Naming --config_path, what --output_dir holds and the fix.
    """
    flags = _flags(sys.argv[1:] if argv is None else argv)
    config_path = flags.get("config_path")
    if flags.get("resume", "").lower() not in ("true", "1", "yes") or not config_path:
        return
    folder, config = Path(path).expanduser(), Path(config_path).expanduser()
    if (folder / "config.json").is_file() or folder.resolve() != (
        config.parent if config.is_file() else config
    ).resolve():
        return
    output = flags.get("output_dir")
    if (
        output
        and (
            found := Path(output) / "checkpoints" / "last" / "pretrained_model" / "train_config.json"
        ).is_file()
    ):
        where = f" --output_dir={output} holds a run: did you mean --config_path={found}?"
    elif output:
        where = f" --output_dir={output} holds no checkpoint (no checkpoints/last/pretrained_model), so there is no run to resume there."
    else:
        where = ""
    raise StamoInputError(
        f"--resume=true continues a training run from one of its checkpoints, but --config_path={config_path} is "
        f"not inside a checkpoint (no config.json beside it: a preset or a copied train config).{where} Pass "
        "--config_path=<run>/checkpoints/last/pretrained_model/train_config.json, or drop --resume=true to "
        "start a new run."
    )


def check_dataset(repo_id: str | None, root: str | Path | None, flag: str = "--dataset") -> Path | None:
    """Checks that a LeRobot dataset can be opened before `LeRobotDatasetMetadata` tries the Hub.

    Online, a missing folder or `meta/info.json` is left to LeRobot (it downloads `repo_id` there).

    Returns:
        The local dataset folder, or None when LeRobot will download it.

    Raises:
        StamoInputError: For a damaged `meta/info.json`, an invalid repo id, or (HF_HUB_OFFLINE=1) a missing
            folder or one without `meta/info.json`.
    """
    from lerobot.utils.constants import HF_LEROBOT_HOME

    if not repo_id and root is None:
        raise StamoInputError(
            f"{flag}.repo_id is required: a Hub dataset id (user/name), or pass {flag}.root=<dataset folder>."
        )
    offline = _offline()
    if root is not None:
        folder = Path(root).expanduser()
        if not folder.is_dir():
            if not offline:
                return None  # LeRobot downloads `repo_id` into it
            raise StamoInputError(
                f"{flag}.root={root}: no such folder, and HF_HUB_OFFLINE=1 forbids downloading {repo_id!r} into "
                "it. Pass the folder of a LeRobot dataset (with meta/info.json), e.g. one written by "
                "lerobot-stamo-sim-record, or unset HF_HUB_OFFLINE."
            )
    else:
        try:
            validate_repo_id(repo_id)
        except HFValidationError as err:
            raise StamoInputError(
                f"{flag}.repo_id={repo_id!r} is not a Hub repo id ({err}). Use user/name, or pass "
                f"{flag}.root=<folder> for a local dataset."
            ) from err
        folder = HF_LEROBOT_HOME / repo_id
        if not folder.is_dir():
            if not offline:
                return None
            raise StamoInputError(
                f"Dataset {repo_id!r} is not in {folder} and HF_HUB_OFFLINE=1 forbids downloading it. "
                f"Pass {flag}.root=<dataset folder>, or unset HF_HUB_OFFLINE to download it."
            )
    info = folder / "meta" / "info.json"
    if not info.is_file():
        if not offline:
            return None  # LeRobot completes the folder from the Hub
        raise StamoInputError(
            f"{folder} is not a LeRobot dataset (no meta/info.json), and HF_HUB_OFFLINE=1 forbids downloading "
            f"{repo_id!r} into it. Pass {flag}.root=<the dataset folder>."
        )
    check_json_file(info, f"{flag}.root")
    return folder
