"""`lerobot-stamo-sim-record`: record scripted-expert episodes of the simulated SO-101 as a LeRobotDataset
(see `lerobot_stamo.envs.recording`)."""

import logging

import draccus

from lerobot_stamo.envs.recording import SimRecordConfig, record


def main(args: list[str] | None = None) -> None:
    # force: an import may already have configured the root logger (at WARNING), hiding these lines
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", force=True)
    record(draccus.parse(SimRecordConfig, args=args))


if __name__ == "__main__":
    main()
