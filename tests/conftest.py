"""Shared fixtures: everything offline, tiny, and made by the tests themselves."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest  # noqa: E402
from cli_helpers import SIM_IMAGE_HW  # noqa: E402

from lerobot_stamo.envs.recording import SimRecordConfig, record  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked `longest(minutes=...)` run first, the longest of them first: the parallel workers
    (`make test`: pytest-xdist with `--dist worksteal`) then share the rest and finish together, instead of one
    worker running the paper pipeline alone at the end while the other idles."""

    def minutes(item: pytest.Item) -> float:
        marker = item.get_closest_marker("longest")
        return marker.kwargs["minutes"] if marker is not None else 0.0

    items.sort(key=minutes, reverse=True)  # stable: the other tests keep their order


@pytest.fixture(scope="session")
def sim_dataset(tmp_path_factory) -> tuple[str, Path]:
    """(repo_id, root) of 3 recorded PickCube expert episodes, cameras front + wrist at 64x64."""
    root = tmp_path_factory.mktemp("sim") / "so101_pickcube"
    repo_id = "local/so101_pickcube"
    record(
        SimRecordConfig(
            repo_id=repo_id,
            root=root,
            task="PickCube",
            num_episodes=3,
            observation_height=SIM_IMAGE_HW,
            observation_width=SIM_IMAGE_HW,
        )
    )
    return repo_id, root
