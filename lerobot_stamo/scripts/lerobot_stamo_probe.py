"""`lerobot-stamo-probe`: how good are StaMo latent actions? Linear / MLP probes vs baselines (paper sec. 5-6).

    lerobot-stamo-probe --policy.path=outputs/stamo/checkpoints/last/pretrained_model \\
        --dataset.repo_id=local/so101_stamo --dataset.root=data/so101_stamo --output_dir=outputs/probe

Writes probe.json, probe.md (the table) and probe.png (MSE vs horizon). See `lerobot_stamo.transforms.probe`.
"""

from pathlib import Path

import draccus
from lerobot.utils.utils import init_logging

from lerobot_stamo.transforms.probe import ProbeConfig, run_probe


def main() -> None:
    init_logging()
    cfg = draccus.parse(ProbeConfig)
    run_probe(cfg)
    print((Path(cfg.output_dir) / "probe.md").read_text())  # the table, for the console user


if __name__ == "__main__":
    main()
