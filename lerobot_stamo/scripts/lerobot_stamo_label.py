"""`lerobot-stamo-label`: label a LeRobotDataset with StaMo states and latent motion (pseudo-actions).

    lerobot-stamo-label --policy.path=outputs/stamo/checkpoints/last/pretrained_model \\
        --dataset.repo_id=local/so101_video --dataset.root=data/so101_video \\
        --horizon=1 --output_dir=data/so101_video_stamo

Several processes (episodes sharded across ranks, merged by the main one):

    accelerate launch --multi_gpu --num_processes 2 -m lerobot_stamo.scripts.lerobot_stamo_label ...

Killed at any point, the same command resumes where it stopped. See `lerobot_stamo.transforms.labelling`.
"""

import draccus
from lerobot.utils.utils import init_logging

from lerobot_stamo.transforms.labelling import LabelConfig, label_dataset


def main() -> None:
    init_logging()
    cfg = draccus.parse(LabelConfig)
    label_dataset(cfg)


if __name__ == "__main__":
    main()
