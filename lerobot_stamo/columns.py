"""The StaMo columns of a LeRobot dataset: their names, and the record of a labelling.

`lerobot-stamo-label` adds, for every labelled camera ``observation.images.<cam>``:

- ``observation.stamo_state.<cam>``: the state s_t, float32 (num_tokens, token_dim);
- ``observation.stamo_motion.<cam>``: the latent motion m_t = s_{t+k} - s_t (zeros where undefined);
- ``observation.stamo_motion_valid``: bool, false for the last k frames of each episode;

and `lerobot-stamo-cotrain` adds ``observation.action_valid`` (false on frames with no real action). Names
start with ``observation.`` because LeRobot's batch-to-transition conversion drops other columns. ``<cam>``
is ``column_suffix(camera)``; every reader and writer names the columns with ``state_key`` /
``motion_key``, and ``meta/stamo_labels.json`` (``load_labels``) records the camera -> column mapping.

This module imports neither torch nor LeRobot: anything may import it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

OBS_STR = "observation"  # = lerobot.utils.constants.OBS_STR / OBS_IMAGES (not imported: that imports torch)
OBS_IMAGES = f"{OBS_STR}.images"

STATE_PREFIX = f"{OBS_STR}.stamo_state"
MOTION_PREFIX = f"{OBS_STR}.stamo_motion"
VALID_KEY = f"{OBS_STR}.stamo_motion_valid"
LABELS_FILE = "meta/stamo_labels.json"
LABELS_FORMAT = 1
ACTION_VALID_KEY = f"{OBS_STR}.action_valid"


def camera_name(key: str) -> str:
    """`observation.images.front` -> `front` (the short name users pass to `--cameras`)."""
    prefix = f"{OBS_IMAGES}."
    return key[len(prefix) :] if key.startswith(prefix) else key


# Substrings that LeRobot 0.6.1 tests feature keys for: a key *containing* "image" is validated as an image
# by `compute_stats` and converted as one by `hil_processor`/`policies.utils`; "visual"/"pixels" select
# image normalisation in `migrate_policy_normalization`; "_is_pad" marks padding flags in the batch
# converter; ".images." marks images in `pipeline_features`. A StaMo column must contain none of them.
RESERVED_SUBSTRINGS = {"image": "img", "visual": "vis", "pixels": "pix", "_is_pad": "_ispad"}
# Marks a rewritten camera name; never part of a name used as is, so rewritten and kept names cannot collide.
REWRITE_MARK = "--"


def column_suffix(camera_key: str) -> str:
    """The camera part of a StaMo column name: the one mapping from camera keys to StaMo columns.

    `observation.images.<cam>` -> `<cam>` when `<cam>` holds no substring LeRobot treats specially (see
    `RESERVED_SUBSTRINGS`) and no `--` (a short name `<cam>` stands for `observation.images.<cam>`);
    otherwise (and for cameras outside `observation.images.`) a readable
    rewrite plus `--` and 8 hex digits of the key's sha256, e.g. `observation.image` -> `img--<hash>`,
    `observation.images.wrist_image` -> `wrist_img--<hash>`. Kept names never contain `--`, rewritten ones
    always do, and the hash tells rewritten ones apart, so two cameras never share a column.
    """
    if not camera_key.startswith(f"{OBS_STR}."):  # a short name, as given to --cameras: `front`
        camera_key = f"{OBS_IMAGES}.{camera_key}"
    short = camera_name(camera_key)
    if short == camera_key:  # not under observation.images.: drop `observation.` and always rewrite
        short = short.removeprefix(f"{OBS_STR}.")
    readable = short.replace(REWRITE_MARK, "-")
    while any(token in readable for token in RESERVED_SUBSTRINGS):
        for token, replacement in RESERVED_SUBSTRINGS.items():
            readable = readable.replace(token, replacement)
    if readable == camera_name(camera_key) and camera_key.startswith(f"{OBS_IMAGES}."):
        return readable
    digest = hashlib.sha256(camera_key.encode()).hexdigest()[:8]
    return f"{readable}{REWRITE_MARK}{digest}"


def state_key(camera_key: str) -> str:
    """Column name of the StaMo state of a camera: `observation.stamo_state.<column_suffix(cam)>`."""
    return f"{STATE_PREFIX}.{column_suffix(camera_key)}"


def motion_key(camera_key: str) -> str:
    """Column name of the latent motion of a camera: `observation.stamo_motion.<column_suffix(cam)>`."""
    return f"{MOTION_PREFIX}.{column_suffix(camera_key)}"


def stamo_columns(cameras: list[str]) -> dict[str, dict[str, str]]:
    """Camera key -> StaMo column of each kind (recorded in `meta/stamo_labels.json`).

    Raises:
        ValueError: If two cameras would share a column (a sha256 prefix collision; never seen in practice).
    """
    columns = {"state": {k: state_key(k) for k in cameras}, "motion": {k: motion_key(k) for k in cameras}}
    if len(set(columns["state"].values())) != len(cameras):
        raise ValueError(
            f"Cameras {cameras} map to the same StaMo columns {columns['state']}: rename one of them "
            "(LeRobot's --rename_map) before labelling."
        )
    return columns


def read_json(path: Path) -> dict | None:
    """The JSON object in a file, or None if there is none (or an unreadable one)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def read_labels(folder: Path) -> dict | None:
    """`meta/stamo_labels.json` of a folder, or None if it has none (or an unreadable one)."""
    return read_json(folder / LABELS_FILE)


def load_labels(root: str | Path) -> dict[str, Any]:
    """Reads `meta/stamo_labels.json` of a labelled dataset (which checkpoint, horizon, cameras, columns).

    Raises:
        FileNotFoundError: If the folder is not a dataset written by `lerobot-stamo-label`.
    """
    info = read_labels(Path(root))
    if info is None:
        raise FileNotFoundError(
            f"{root} has no {LABELS_FILE}: it is not a dataset labelled by `lerobot-stamo-label`."
        )
    return info
