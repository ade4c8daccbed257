"""`lerobot-stamo-cotrain`: one LeRobotDataset from a few robot episodes and many StaMo-labelled videos.

    lerobot-stamo-cotrain --robot_root=data/so101_pickcube_stamo --video_root=data/so101_video_stamo \\
        --real_per_task=10 --video_per_task=40 --output_dir=data/so101_cotrain

Both sources must be labelled by `lerobot-stamo-label` with the same checkpoint and horizon. Train on the
result with `lerobot-train --policy.type=stamo_vla --dataset.repo_id=local/so101_cotrain
--dataset.root=data/so101_cotrain`. See `lerobot_stamo.transforms.cotrain`.
"""

import draccus
from lerobot.utils.utils import init_logging

from lerobot_stamo.transforms.cotrain import CotrainConfig, build_cotrain_dataset


def main() -> None:
    init_logging()
    cfg = draccus.parse(CotrainConfig)
    build_cotrain_dataset(cfg)


if __name__ == "__main__":
    main()
