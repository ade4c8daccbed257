"""`lerobot-stamo-paper` (what `make paper` runs): the paper's experiments on the simulated SO-101.

    lerobot-stamo-paper [--quick] [--work_dir outputs/paper] [--seeds 0,1,2] [--tasks PickCube,PickPlace]

Runs record -> train stamo -> reconstruct -> interpolate -> label -> probe -> train/evaluate policies -> cost
as cached stages in `--work_dir` (an interrupted run continues where it stopped) and writes
`docs/results/`: report.md (our tables beside the paper's numbers), PNG plots and results.json (every figure,
the exact commands, seeds, package versions and machine). `--quick`: tiny settings, a smoke check; the full
run takes many hours on a CPU. See `lerobot_stamo.paper`.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from lerobot_stamo.paper import PaperConfig, run_paper, write_report
from lerobot_stamo.paper.config import FULL_SEEDS, FULL_TASKS, Scale
from lerobot_stamo.paths import PRESETS_DIR


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 0,1,2, got {text!r}"
        ) from None


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def parse_args(argv: list[str] | None = None) -> PaperConfig:
    parser = argparse.ArgumentParser(
        prog="lerobot-stamo-paper", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny settings (a smoke check, not a measurement)"
    )
    parser.add_argument(
        "--work_dir",
        type=Path,
        default=None,
        help="cached stages (outputs/paper; --quick: outputs/paper_quick)",
    )
    parser.add_argument(
        "--results_dir",
        type=Path,
        default=None,
        help="where the report goes (docs/results; --quick: <work_dir>/results, never over the full report)",
    )
    parser.add_argument(
        "--configs_dir", type=Path, default=PRESETS_DIR, help="the presets (default: the plug-in's own)"
    )
    parser.add_argument(
        "--report_only",
        action="store_true",
        help="write the report from finished stages only (safe beside a run in progress)",
    )
    parser.add_argument("--seeds", type=_ints, default=None, help="default 0,1,2 (--quick: 0)")
    parser.add_argument("--tasks", type=_names, default=list(FULL_TASKS))
    parser.add_argument("--jobs", type=int, default=2, help="parallel trainings/evaluations")
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--probe_horizons", type=_ints, default=[1, 2, 4, 8])
    parser.add_argument(
        "--pretrained",
        action="store_true",
        help="stamo from configs/stamo_cpu.json (frozen ImageNet EfficientNet-Lite0), stamo_vla arms with "
        "--policy.vision=efficientnet_lite0",
    )
    parser.add_argument(
        "--real_share",
        type=float,
        default=None,
        help="share of the co-training frames with a real action (e.g. 0.5: robot episodes repeated to half)",
    )
    parser.add_argument(
        "--compare_with",
        type=Path,
        default=None,
        help="results.json of another report (e.g. docs/results/results.json): its headline figures as rows",
    )
    parser.add_argument(
        "--compare_label", default="random encoder", help="what --compare_with's rows are called"
    )
    for f in fields(Scale):
        parser.add_argument(f"--{f.name}", type=int, default=None, help="override the preset")
    args = vars(parser.parse_args(argv))
    if args["seeds"] is None:
        args["seeds"] = [0] if args["quick"] else list(FULL_SEEDS)
    if args["work_dir"] is None:
        args["work_dir"] = Path("outputs/paper_quick" if args["quick"] else "outputs/paper")
    if args["results_dir"] is None:
        args["results_dir"] = args["work_dir"] / "results" if args["quick"] else Path("docs/results")
    return PaperConfig(**args)


def reproduce_command(argv: list[str], runs: dict[str, dict[str, Any]]) -> str:
    """The command that computes the reported pipelines: `argv` without `--report_only`, its `--tasks` and
    `--seeds` replaced by those of the report (which also holds the pipelines published by earlier runs)."""
    kept, skip = [], False
    for arg in argv:
        if skip or arg == "--report_only" or arg.startswith(("--tasks=", "--seeds=")):
            skip = False
            continue
        if arg in ("--tasks", "--seeds"):
            skip = True
            continue
        kept.append(arg)
    by_seeds: dict[str, list[str]] = {}  # tasks that ran the same seeds share one command
    for task, seeds in runs.items():
        by_seeds.setdefault(",".join(sorted(seeds, key=int)), []).append(task)
    return " && ".join(
        shlex.join(["lerobot-stamo-paper", "--tasks", ",".join(tasks), "--seeds", seeds, *kept])
        for seeds, tasks in by_seeds.items()
    )


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
    argv = sys.argv[1:] if argv is None else argv
    cfg = parse_args(argv)
    result = run_paper(cfg)
    if not result["runs"]:  # --report_only published pipelines in part, none has finished
        print(
            f"No report written: no pipeline has finished all its stages yet ({', '.join(result['in_part'])} "
            f"published in part in {Path(cfg.results_dir) / 'runs'}). Run without --report_only to finish them."
        )
        return
    written = write_report(result, cfg.results_dir, reproduce_command(argv, result["runs"]), cfg.compared())
    for name, path in written.items():
        print(f"  {name:16s} {path}")
    print(f"Report: {written['report']}")


if __name__ == "__main__":
    main()
