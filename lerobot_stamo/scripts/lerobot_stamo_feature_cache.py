"""`lerobot-stamo-feature-cache`: the frozen parts' outputs for a dataset, computed once (see
`lerobot_stamo.policies.stamo.feature_cache`)."""

import argparse
import json
import logging
from pathlib import Path

from lerobot_stamo.policies.stamo import StamoConfig, StamoPolicy, feature_cache


def main() -> None:
    """`lerobot-stamo-feature-cache`: builds the frozen-feature cache of a dataset for a preset."""
    parser = argparse.ArgumentParser(
        description=feature_cache.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", required=True, help="configs/stamo_*.json (its `policy` section is used)")
    parser.add_argument("--set", nargs="*", default=[], help="policy field overrides, key=json_value")
    parser.add_argument("--repo_id", required=True)
    parser.add_argument("--root", default=None)
    parser.add_argument("--output", required=True)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--num_workers", type=int, default=2, help="DataLoader workers decoding frames")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing cache at --output")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.utils.feature_utils import dataset_to_policy_features

    fields = json.loads(Path(args.preset).read_text())["policy"]
    fields.pop("type", None)
    for item in args.set:
        key, value = item.split("=", 1)
        try:
            fields[key] = json.loads(value)
        except json.JSONDecodeError:
            fields[key] = value
    dataset = LeRobotDataset(args.repo_id, root=args.root)
    features = dataset_to_policy_features(dataset.meta.features)
    config = StamoConfig(**fields, input_features=features)
    policy = StamoPolicy(config).eval()
    feature_cache.build_feature_cache(
        policy, dataset, args.output, args.batch_size, args.num_workers, args.overwrite
    )


if __name__ == "__main__":
    main()
