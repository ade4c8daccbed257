"""The stages of `lerobot-stamo-paper`: each runs the project's or LeRobot's own command and caches its result.

Per task and seed (the whole pipeline is repeated per seed, as the paper's std over seeds asks):

1. `record`: scripted-expert robot episodes (with actions) and action-free video episodes of the task
   (`lerobot-stamo-sim-record`'s `record`, PNG frames).
2. `stamo`: the tiny preset's pretrained parts, then `lerobot-train --config_path=configs/stamo_tiny.json` on
   the training episodes (the last `test_fraction` of the episodes are held out). With `--pretrained`:
   `configs/stamo_cpu.json` (frozen ImageNet EfficientNet-Lite0, its features cached once per frame) with the
   tiny decoder, and the `stamo_vla` arms read the frames through a frozen ImageNet EfficientNet-Lite0.
3. `reconstruction`: PSNR / SSIM of that `stamo` on frames of the held-out episodes, and their PNG.
4. `interpolation`: `lerobot-stamo-interpolate` (episode 0's start -> goal, transferred onto episode 1).
5. `label`: `lerobot-stamo-label --horizon=<k>` on the robot and the video datasets (labelling throughput).
6. `probe`: `lerobot-stamo-probe` (StaMo vs Delta backbone features vs Pooled Delta Image, goal-conditioned).
7. `cotrain_data`: `lerobot-stamo-cotrain --real_per_task=<real_episodes>` (robot + labelled video).
8. `train_<arm>` / `eval_<arm>`: `lerobot-train` then `lerobot-eval --env.type=stamo_so101` for every arm of
   `ARMS` (world model none / state / motion, ACT, co-training arms).
9. `cost` (once): inference rate with and without the world-model head, 2 predicted tokens vs the decoded
   image, labelling throughput.

A stage is skipped when `<work_dir>/stages/<stage>.json` exists; that file is written last, atomically, so an
interrupted run continues with the stage it was in, and an interrupted training resumes from its last checkpoint
(`lerobot-train --resume=true`; a quarter of its steps at most are lost). `<work_dir>/settings.json` holds the
sizes the cache was made with: another preset or override is refused rather than mixed with it. A pipeline whose
stages have all finished is published to `<results_dir>/runs/` (see `ledger`) and read back from there by later
runs, on this machine or another. `--report_only` publishes an unfinished pipeline in part; a later run, on any
machine, makes its stages before the policy arms again (checked to be the same bytes) and runs only the arms
still missing.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from tqdm import tqdm

from lerobot_stamo.errors import StamoInputError

from .config import ARMS, FULL_TASKS, PaperConfig, Scale
from .ledger import (
    adoptable_arms,
    check_inputs,
    input_digests,
    ledger_dir,
    publish,
    publish_cost,
    read_cost,
    read_partial,
    read_published,
    relative_to_cwd,
    settings_differences,
    write_json,
)
from .runner import (
    StageRunner,
)
from .stages import (
    cost_stage,
    cotrain_data_stage,
    eval_stage,
    interpolation_stage,
    label_stage,
    probe_stage,
    reconstruction_stage,
    record_stage,
    stamo_stage,
    train_args,
    train_stage,
)

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------- runner
# The stages of one task and seed, in the order they finish on one job: those that make what the arms train on,
# then each arm's training and evaluation.
PREFIX_STAGES = ("record", "stamo", "reconstruction", "interpolation", "label", "probe", "cotrain_data")
PIPELINE_STAGES = (*PREFIX_STAGES, *(f"{kind}_{arm}" for arm in ARMS for kind in ("train", "eval")))


def stage_count(cfg: PaperConfig) -> int:
    return len(cfg.tasks) * len(cfg.seeds) * len(PIPELINE_STAGES) + 1  # + cost


def finished(work_dir: Path, task: str, seed: int) -> bool:
    """Whether every stage of `task` and `seed` has finished in `work_dir`."""
    return all((work_dir / "stages" / f"{task}_s{seed}_{name}.json").is_file() for name in PIPELINE_STAGES)


def run_task_seed(
    cfg: PaperConfig,
    runner: StageRunner,
    task: str,
    seed: int,
    part: tuple[Path, dict[str, str]] | None = None,
    progress: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Every stage of one task and seed; returns `{stage: result}`. `part`: where the pipeline was published in
    part and its inputs' digests, checked against those made here (its arms are in `runner.adopted`).
    `progress` is called once the stages before the arms have finished and after each arm's evaluation."""
    tag, run_dir = f"{task}_s{seed}", runner.work_dir / f"{task}_s{seed}"
    r: dict[str, Any] = {}

    def check() -> None:
        if part is not None:
            check_inputs(part[0], part[1], input_digests(r))

    def arm_stages(arm: str) -> None:
        trained = runner.run(
            f"{tag}_train_{arm}", train_stage(train_args(cfg, arm, r, seed), run_dir / f"train_{arm}")
        )
        r[f"train_{arm}"] = trained
        eval_dir = run_dir / f"eval_{arm}"
        r[f"eval_{arm}"] = runner.run(
            f"{tag}_eval_{arm}", eval_stage(cfg, task, trained["checkpoint"], eval_dir)
        )
        progress()

    with ThreadPoolExecutor(max_workers=cfg.jobs) as pool:
        try:
            r["record"] = runner.run(f"{tag}_record", record_stage(cfg, run_dir, task, seed))
            check()
            # ACT needs only the recorded episodes: with a second job it trains beside the stamo stages.
            early = ["act"] if cfg.jobs > 1 else []
            futures = [pool.submit(arm_stages, arm) for arm in early]
            r["stamo"] = runner.run(f"{tag}_stamo", stamo_stage(cfg, run_dir, r["record"], seed))
            ckpt = r["stamo"]["checkpoint"]
            r["reconstruction"] = runner.run(
                f"{tag}_reconstruction", reconstruction_stage(cfg, run_dir, r["record"], ckpt)
            )
            r["interpolation"] = runner.run(
                f"{tag}_interpolation", interpolation_stage(run_dir, r["record"], ckpt)
            )
            r["label"] = runner.run(f"{tag}_label", label_stage(cfg, run_dir, r["record"], ckpt))
            r["probe"] = runner.run(f"{tag}_probe", probe_stage(cfg, run_dir, r["label"], ckpt, seed))
            r["cotrain_data"] = runner.run(
                f"{tag}_cotrain_data", cotrain_data_stage(cfg, run_dir, r["label"])
            )
            check()
            progress()
            futures += [pool.submit(arm_stages, arm) for arm in ARMS if arm not in early]
            for future in futures:
                future.result()
        except BaseException:  # a stage failed: stop the running commands rather than wait for them
            runner.stop()
            raise
    return r


def settings_of(cfg: PaperConfig) -> dict[str, Any]:
    """The sizes that make two pipelines comparable (tasks and seeds aside)."""
    keys = [f.name for f in fields(Scale)] + ["horizon", "probe_horizons", "test_fraction"]
    settings = {key: getattr(cfg, key) for key in keys}
    # Recorded only when set: the pipelines published before these options existed keep their settings.
    if cfg.pretrained:
        settings["pretrained"] = True
    if cfg.real_share is not None:
        settings |= {"real_share": cfg.real_share, "real_repeat": cfg.real_repeat}
    return settings


def check_settings(cfg: PaperConfig, work_dir: Path) -> None:
    """Records the sizes the cache in `work_dir` is made with; refuses other ones (cached stages would mix them)."""
    settings = settings_of(cfg)
    path = work_dir / "settings.json"
    if path.is_file():
        changed = settings_differences(settings, json.loads(path.read_text()))
        if changed:
            raise StamoInputError(
                f"{work_dir} caches a run made with other settings: {', '.join(changed)}. Pass the same settings "
                "to continue it, or another --work_dir for a new run."
            )
    else:
        write_json(path, settings)


def lock_work_dir(work_dir: Path) -> Any:
    """Holds `<work_dir>/.lock` while stages run: a second run would train the same stages into the same folders."""
    import fcntl

    work_dir.mkdir(parents=True, exist_ok=True)
    lock = open(work_dir / ".lock", "a+")  # noqa: SIM115 - held until this process exits
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        raise StamoInputError(
            f"Another lerobot-stamo-paper (pid {lock.read().strip() or '?'}) is running stages in {work_dir}: wait "
            "for it, or pass --report_only to write a report from the stages it has finished."
        ) from None
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def publish_part(
    ledger: Path,
    work_dir: Path,
    settings: dict[str, Any],
    task: str,
    seed: int,
    part: tuple[dict, dict] | None,
    known: Sequence[str] = (),
) -> list[str]:
    """Publishes what has finished of an unfinished pipeline in `work_dir`, with the stages published in part
    before (`part`), once its stages before the arms have all finished and what they made is still there;
    returns the stage names published (none: nothing yet). Nothing is written when they are the `known` ones."""
    tag = f"{task}_s{seed}"
    stages = {
        name: json.loads(path.read_text())
        for name in PIPELINE_STAGES
        if (path := work_dir / "stages" / f"{tag}_{name}.json").is_file()
    }
    before = part[1] if part is not None else {}
    if not set(PREFIX_STAGES) <= set(stages):
        return list(before)
    try:
        inputs = input_digests(stages)
    except FileNotFoundError:  # the stage files outlived the data: the part published before stands
        return list(before)
    if part is not None:
        check_inputs(ledger / tag, part[0]["inputs"], inputs)
    merged = {**before, **stages}
    arms = [arm for arm in ARMS if {f"train_{arm}", f"eval_{arm}"} <= set(merged)]
    keep = [*PREFIX_STAGES, *(f"{kind}_{arm}" for arm in arms for kind in ("train", "eval"))]
    names = [name for name in PIPELINE_STAGES if name in keep]
    if names == list(known):
        return names
    complete = len(names) == len(PIPELINE_STAGES)  # the rest was published before: complete from now on
    publish(ledger, task, seed, settings, {name: merged[name] for name in names}, inputs, complete=complete)
    return names


def partial_publisher(
    ledger: Path,
    work_dir: Path,
    settings: dict[str, Any],
    task: str,
    seed: int,
    part: tuple[dict, dict] | None,
) -> Callable[[], None]:
    """What `run_task_seed` calls as its stages finish: publishes the pipeline in part (as `--report_only` would),
    so that a machine taken away mid-run (a session's end) loses at most the trainings in flight, once the
    `runs/` folder is committed. One call at a time: arms finish in parallel threads."""
    lock, known = threading.Lock(), [name for name in PIPELINE_STAGES if part is not None and name in part[1]]

    def progress() -> None:
        with lock:
            names = publish_part(ledger, work_dir, settings, task, seed, part, known)
            if names == known:
                return
            known[:] = names
        if names and len(names) < len(PIPELINE_STAGES):
            tqdm.write(
                f"{task}_s{seed}: {len(names)} of its {len(PIPELINE_STAGES)} stages published in part "
                f"({ledger / f'{task}_s{seed}'})"
            )

    return progress


def run_paper(cfg: PaperConfig) -> dict[str, Any]:
    """Runs (or reads back) every stage of `--tasks` x `--seeds` and reads back every pipeline published in
    `<results_dir>/runs/`; returns `{"runs": {task: {seed: {stage: result}}}, "cost": ..., "missing": [...]}`.

    A pipeline is published there as soon as its last stage finishes (also by `--report_only`, which runs no
    stage: pipelines it finds unfinished in `--work_dir` are left out of the report, listed in `missing`, and
    published in part; `in_part` counts the stages published of each). A pipeline published in part runs only its
    missing arms, after the stages before them are made again and checked to be the same.
    """
    work_dir = Path(cfg.work_dir).resolve()
    check_settings(cfg, work_dir)
    ledger, settings = ledger_dir(cfg.results_dir), settings_of(cfg)
    published, partial = read_published(ledger, settings), read_partial(ledger, settings)
    todo = [(task, seed) for task in cfg.tasks for seed in cfg.seeds if (task, seed) not in published]
    missing = [] if not cfg.report_only else [p for p in todo if not finished(work_dir, *p)]
    todo = [p for p in todo if p not in missing]
    in_part = {}
    for task, seed in missing:
        names = publish_part(ledger, work_dir, settings, task, seed, partial.get((task, seed)))
        if names:
            in_part[f"{task}_s{seed}"] = len(names)
    if not published and not todo and not in_part:
        raise StamoInputError(
            f"No pipeline of --tasks={','.join(cfg.tasks)} --seeds={','.join(map(str, cfg.seeds))} has finished in "
            f"{cfg.work_dir}, and none is published in {ledger}: --report_only writes a report from finished "
            "pipelines only. Run without --report_only first."
        )
    for task, seed in published:
        tqdm.write(f"{task}_s{seed}: published ({ledger / f'{task}_s{seed}'})")
    for task, seed in missing:
        tag = f"{task}_s{seed}"
        done = (
            f", {in_part[tag]} of its {len(PIPELINE_STAGES)} stages published in part"
            if tag in in_part
            else ""
        )
        tqdm.write(f"{tag}: not finished in {cfg.work_dir}, left out of the report{done}")
    cost = read_cost(ledger)
    lock = None if cfg.report_only else lock_work_dir(work_dir)
    total = len(todo) * len(PIPELINE_STAGES) + int(cost is None and bool(todo))
    runner = StageRunner(work_dir, total, report_only=cfg.report_only)
    runs = dict(published)
    try:
        for task, seed in todo:
            tag = f"{task}_s{seed}"
            part = None if cfg.report_only else partial.get((task, seed))  # --report_only: work folder only
            if part is not None:
                arms = adoptable_arms(part[1], cost is not None)
                runner.adopted |= {f"{tag}_{kind}_{arm}": part[1][f"{kind}_{arm}"] for arm in arms
                                   for kind in ("train", "eval")}  # fmt: skip
                tqdm.write(
                    f"{tag}: {len(arms)} of its {len(ARMS)} arms published in part ({ledger / tag}); the stages "
                    "before the arms run again, checked against those published"
                )
            inputs = None if part is None else (ledger / tag, part[0]["inputs"])
            r = runs[(task, seed)] = run_task_seed(
                cfg,
                runner,
                task,
                seed,
                inputs,
                progress=partial_publisher(ledger, work_dir, settings, task, seed, part),
            )
            publish(ledger, task, seed, settings, {name: r[name] for name in PIPELINE_STAGES})
            if cost is None and (not cfg.report_only or (runner.stages / "cost.json").is_file()):
                checkpoints = {arm: r[f"train_{arm}"]["checkpoint"] for arm in ("none", "state")}
                cost = runner.run("cost", cost_stage(cfg, checkpoints, r["label"], r["label"]))
                publish_cost(ledger, cost)
    finally:
        runner.close()
        if lock is not None:
            lock.close()
    nested: dict[str, dict[str, dict[str, Any]]] = {}
    tasks = list(dict.fromkeys([*FULL_TASKS, *cfg.tasks]))
    for task, seed in sorted(runs, key=lambda p: (tasks.index(p[0]) if p[0] in tasks else len(tasks), p)):
        nested.setdefault(task, {})[str(seed)] = runs[(task, seed)]
    return {
        "runs": nested,
        "cost": cost,
        "missing": [f"{task}_s{seed}" for task, seed in missing],
        "in_part": in_part,
        # Paths as given, or relative to this folder: not this machine's absolute ones.
        "config": {k: relative_to_cwd(str(v)) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
    }
