"""`lerobot-stamo-demo` (what `make demo` runs): the project's main job on the simulated SO-101, offline.

1. Record scripted-expert PickCube episodes (a robot dataset with actions) and PickPlace episodes as
   unlabelled video (frames and task only) with `lerobot-stamo-sim-record`'s code.
2. Write a contact sheet of each dataset (read back through LeRobotDataset).

Everything lands in ``--output_dir`` (default ``outputs/demo``); re-running replaces the demo's own
datasets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import draccus

from lerobot_stamo.scripts.lerobot_stamo_sim_record import SimRecordConfig, record
from lerobot_stamo.visualization import contact_sheet

logger = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    output_dir: Path = Path("outputs/demo")
    # Robot episodes (with actions) and unlabelled-video episodes to record.
    num_episodes: int = 6
    num_video_episodes: int = 4
    observation_height: int = 224
    observation_width: int = 224
    seed: int = 0


def run_demo(cfg: DemoConfig) -> dict[str, Path]:
    """Run the demo; return the paths it wrote."""
    out = Path(cfg.output_dir)
    size = {"observation_height": cfg.observation_height, "observation_width": cfg.observation_width}
    robot = record(
        SimRecordConfig(
            repo_id="local/stamo_so101_pickcube",
            root=out / "data" / "so101_pickcube",
            task="PickCube",
            num_episodes=cfg.num_episodes,
            seed=cfg.seed,
            overwrite=True,
            **size,
        )
    )
    video = record(
        SimRecordConfig(
            repo_id="local/stamo_so101_pickplace_video",
            root=out / "data" / "so101_pickplace_video",
            task="PickPlace",
            num_episodes=cfg.num_video_episodes,
            seed=cfg.seed + 1000,
            video_only=True,
            overwrite=True,
            **size,
        )
    )
    written = {
        "robot_dataset": robot,
        "video_dataset": video,
        "robot_contact_sheet": contact_sheet(
            "local/stamo_so101_pickcube", robot, out / "pickcube_frames.png"
        ),
        "video_contact_sheet": contact_sheet(
            "local/stamo_so101_pickplace_video", video, out / "pickplace_video_frames.png"
        ),
    }
    print("Demo outputs:")
    for name, path in written.items():
        print(f"  {name:22s} {path}")
    return written


def main(args: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_demo(draccus.parse(DemoConfig, args=args))


if __name__ == "__main__":
    main()
