"""The stages of one pipeline (see `pipeline`): each returns a function that runs the project's or LeRobot's
own commands for one stage and returns its result (cached by `runner.StageRunner`)."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lerobot_stamo import loop

from .config import (
    ARMS,
    CAMERA,
    EVAL_SEED,
    PaperConfig,
)
from .ledger import (
    write_json,
)
from .runner import (
    Stage,
)

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------- stages
_episodes = loop.episodes_flag


def _data(d: dict, *extra: str) -> loop.Data:
    """A dataset of a finished stage's result (`repo_id`, `root`)."""
    return loop.Data(d["repo_id"], Path(d["root"]), extra)


def record_stage(cfg: PaperConfig, run_dir: Path, task: str, seed: int) -> Callable[[Stage], dict]:
    def fn(stage: Stage) -> dict:
        from lerobot_stamo.envs.recording import SimRecordConfig, record

        out = {}
        for kind, n, offset, video in (
            ("robot", cfg.episodes, 0, False),
            ("video", cfg.video_episodes, 5000, True),
        ):
            root = run_dir / "data" / kind
            args = [f"--repo_id=local/paper_{task.lower()}_{kind}", f"--root={root}", f"--task={task}",
                    f"--num_episodes={n}", f"--seed={seed * 10000 + offset}", f"--video_only={str(video).lower()}",
                    f"--observation_height={cfg.image_size}", f"--observation_width={cfg.image_size}",
                    "--use_videos=false", "--overwrite=true"]  # fmt: skip
            stage.call("lerobot-stamo-sim-record", SimRecordConfig, record, args)
            out[kind] = {"root": str(root), "repo_id": f"local/paper_{task.lower()}_{kind}", "episodes": n}
        return out | {"episodes": cfg.episodes}

    return fn


def stamo_stage(cfg: PaperConfig, run_dir: Path, data: dict, seed: int) -> Callable[[Stage], dict]:
    def fn(stage: Stage) -> dict:
        from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained

        written = run_dir / "stamo_pretrained" / "parts.json"  # last: the parts are complete
        if written.is_file():  # an interrupted attempt of this stage made them: no second VAE fit
            parts = json.loads(written.read_text())
        else:
            parts = write_tiny_pretrained(written.parent, seed=seed, fit_vae_steps=cfg.fit_vae_steps)
            write_json(written, parts)
        stage.commands.append(
            f"python -c 'from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained; "
            f'write_tiny_pretrained("{run_dir / "stamo_pretrained"}", seed={seed}, '
            f"fit_vae_steps={cfg.fit_vae_steps})'"
        )
        robot = _data(data["robot"], f"--dataset.episodes={_episodes(cfg.train_episodes)}")
        steps = cfg.stamo_steps
        preset = cfg.configs_dir / ("stamo_cpu.json" if cfg.pretrained else "stamo_tiny.json")
        # --pretrained: the frozen backbone's tokens are cached once per frame
        cache = _feature_cache(stage, cfg, run_dir, data, parts) if cfg.pretrained else None
        extra = [f"--policy.image_size={cfg.image_size}"] if cfg.pretrained else []
        args = loop.train_stamo(
            preset, parts, robot, steps, _save_freq(steps), cache, [*extra, f"--seed={seed}"]
        )
        return _train(stage, args, run_dir / "train_stamo") | {"steps": cfg.stamo_steps}

    return fn


def _feature_cache(stage: Stage, cfg: PaperConfig, run_dir: Path, data: dict, parts: dict) -> Path:
    """Caches the frozen EfficientNet's and VAE's outputs of every robot frame once (`feature_cache.py`), so that
    the `stamo_cpu` training runs only the compressor and the DiT; returns the cache folder."""
    out = run_dir / "stamo_feature_cache"
    if not (out / "cache_info.json").is_file():  # complete caches only (it is renamed into place)
        stage.cli(
            ["lerobot-stamo-feature-cache", f"--preset={cfg.configs_dir / 'stamo_cpu.json'}", "--set", f"decoder_path={parts['decoder_path']}",
             f"image_size={cfg.image_size}", "device=cpu", f"--repo_id={data['robot']['repo_id']}",
             f"--root={data['robot']['root']}", f"--output={out}", "--num_workers=0"],
            log="stamo_feature_cache",
        )  # fmt: skip
    return out


def reconstruction_stage(cfg: PaperConfig, run_dir: Path, data: dict, ckpt: str) -> Callable[[Stage], dict]:
    def fn(stage: Stage) -> dict:
        import numpy as np
        import torch
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        from lerobot_stamo.policies.stamo import open_frozen_stamo

        torch.set_num_threads(1)
        policy = open_frozen_stamo(ckpt)
        dataset = LeRobotDataset(
            data["robot"]["repo_id"], root=data["robot"]["root"], episodes=cfg.test_episodes
        )
        index = np.linspace(0, len(dataset) - 1, 8).round().astype(int)
        images = torch.stack([dataset[int(i)][CAMERA] for i in index])  # (8, 3, H, W)
        out = run_dir / "reconstruction"
        out.mkdir(parents=True, exist_ok=True)
        metrics = policy.write_reconstructions(images, out)
        stage.commands.append(
            f"StamoPolicy.from_pretrained({ckpt!r}).write_reconstructions(<8 held-out frames>)"
        )
        return metrics | {"png": str(out / "reconstructions.png"), "test_episodes": cfg.test_episodes}

    return fn


def interpolation_stage(run_dir: Path, data: dict, ckpt: str) -> Callable[[Stage], dict]:
    def fn(stage: Stage) -> dict:
        out = run_dir / "interpolation"
        stage.cli(loop.interpolate(ckpt, _data(data["robot"]), out))
        return {"files": sorted(str(p) for p in out.iterdir() if p.suffix in (".png", ".gif"))}

    return fn


def label_stage(cfg: PaperConfig, run_dir: Path, data: dict, ckpt: str) -> Callable[[Stage], dict]:
    def fn(stage: Stage) -> dict:
        from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

        from lerobot_stamo.transforms.labelling import LabelConfig, label_dataset

        out, frames, seconds = {}, 0, 0.0
        for kind in ("robot", "video"):
            root = run_dir / "data" / f"{kind}_stamo_k{cfg.horizon}"
            repo_id = f"{data[kind]['repo_id']}_stamo"
            script, *args = loop.label(
                ckpt, _data(data[kind]), cfg.horizon, root, repo_id, ["--num_workers=0"]
            )
            start = time.perf_counter()
            stage.call(script, LabelConfig, label_dataset, args)
            seconds += time.perf_counter() - start
            frames += LeRobotDatasetMetadata(repo_id, root=root).total_frames
            out[kind] = {"root": str(root), "repo_id": repo_id}
        return out | {"frames": frames, "label_s": seconds, "frames_per_s": frames / seconds}

    return fn


def probe_stage(
    cfg: PaperConfig, run_dir: Path, labels: dict, ckpt: str, seed: int
) -> Callable[[Stage], dict]:
    def fn(stage: Stage) -> dict:
        from lerobot_stamo.transforms.probe import ProbeConfig, run_probe

        out = run_dir / "probe"
        extra = [f"--horizons={_episodes(cfg.probe_horizons)}", f"--seeds=[{seed}]",
                 f"--test_episodes={_episodes(cfg.test_episodes)}", f"--steps={cfg.probe_steps}"]  # fmt: skip
        script, *args = loop.probe(ckpt, _data(labels["robot"]), out, extra)
        report = stage.call(script, ProbeConfig, run_probe, args)
        return {"probe": str(out / "probe.json"), "report": report}

    return fn


def cotrain_data_stage(cfg: PaperConfig, run_dir: Path, labels: dict) -> Callable[[Stage], dict]:
    def fn(stage: Stage) -> dict:
        from lerobot_stamo.transforms.cotrain import CotrainConfig, build_cotrain_dataset

        out = run_dir / "data" / "cotrain"
        args = [f"--robot_root={labels['robot']['root']}", f"--video_root={labels['video']['root']}",
                f"--real_per_task={cfg.real_episodes}", f"--output_dir={out}", "--overwrite=true"]  # fmt: skip
        if cfg.real_share is not None:
            args.append(f"--real_repeat={cfg.real_repeat}")
        stage.call("lerobot-stamo-cotrain", CotrainConfig, build_cotrain_dataset, args)
        meta = json.loads((out / "meta" / "stamo_cotrain.json").read_text())
        frames = {k: meta[k]["frames"] for k in ("robot", "video")}
        result = {"root": str(out), "repo_id": f"local/{out.name}", "frames": frames}
        if cfg.real_share is not None:  # the share of frames with a real action that came out
            result |= {"real_repeat": cfg.real_repeat, "real_share": frames["robot"] / sum(frames.values())}
        return result

    return fn


def train_args(cfg: PaperConfig, arm: str, r: dict[str, Any], seed: int) -> list[str]:
    """The `lerobot-train` arguments of one arm (without `--output_dir`) from the run's finished stages `r`.

    ACT reads only `r["record"]`; the stamo_vla arms need the labelled (and co-training) data and the stamo.
    """
    steps = cfg.policy_steps
    common = [f"--batch_size={cfg.batch_size}", "--num_workers=0", f"--seed={seed}"]
    if arm == "act":
        data = r["record"]["robot"]
        return ["lerobot-train", "--policy.type=act", "--policy.pretrained_backbone_weights=null",
                "--policy.push_to_hub=false", "--policy.chunk_size=20", "--policy.n_action_steps=10",
                "--policy.optimizer_lr=1e-4", "--policy.optimizer_lr_backbone=1e-4", *_data(data).args(),
                f"--steps={steps}", f"--save_freq={_save_freq(steps)}", f"--log_freq={loop.log_freq(steps, 50)}",
                "--wandb.enable=false", "--policy.device=cpu", *common]  # fmt: skip
    if cfg.pretrained:  # a frozen ImageNet trunk for every stamo_vla arm (ACT keeps its own ResNet)
        common.append("--policy.vision=efficientnet_lite0")
    compact, cotrain = (cfg.configs_dir / f"stamo_vla_{name}_sim.json" for name in ("compact", "cotrain"))
    if arm in ("none", "state", "motion"):
        preset, data, target = compact, _data(r["label"]["robot"]), arm
    elif arm == "real10":  # the co-training preset on the first `real_episodes` robot episodes only
        few = f"--dataset.episodes={_episodes(range(cfg.real_episodes))}"
        preset, data, target = cotrain, _data(r["label"]["robot"], few), "state"
    elif arm == "cotrain":
        preset, data, target = cotrain, _data(r["cotrain_data"]), "state"
    else:
        raise ValueError(f"Unknown arm {arm!r}: choose from {list(ARMS)}.")
    stamo = r["stamo"]["checkpoint"]
    return loop.train_stamo_vla(preset, data, steps, _save_freq(steps), target, cfg.horizon, stamo, common)


def _save_freq(steps: int) -> int:
    """Checkpoints every quarter of a training: what an interruption costs at most."""
    return max(1, steps // 4)


def _train(stage: Stage, args: list[str], out: Path) -> dict:
    """`lerobot-train <args> --output_dir=<out>`, resumed from `out`'s last checkpoint when one was left.

    LeRobot resumes sample-exactly (the data order, optimizer, scheduler and RNG states are in the checkpoint).
    Once finished, only the last checkpoint is kept.
    """
    checkpoints = out / "checkpoints"
    saved_config = checkpoints / "last" / "pretrained_model" / "train_config.json"
    saved_step = checkpoints / "last" / "training_state" / "training_step.json"
    if saved_config.is_file() and saved_step.is_file():
        step = json.loads(saved_step.read_text())["step"]
        if step < json.loads(saved_config.read_text())["steps"]:
            stage.cli(["lerobot-train", f"--config_path={saved_config}", "--resume=true"])
    else:
        if out.exists():
            shutil.rmtree(out)  # interrupted before its first checkpoint (this stage created the folder)
        stage.cli([*args, f"--output_dir={out}"])
    last = (checkpoints / "last").resolve()
    for old in checkpoints.iterdir():
        if old.is_dir() and not old.is_symlink() and old.resolve() != last:
            shutil.rmtree(old)
    return {"checkpoint": str(checkpoints / "last" / "pretrained_model")}


def train_stage(args: list[str], out: Path) -> Callable[[Stage], dict]:
    return lambda stage: _train(stage, args, out)


def eval_stage(cfg: PaperConfig, task: str, ckpt: str, out: Path) -> Callable[[Stage], dict]:
    def fn(stage: Stage) -> dict:
        if out.exists():
            shutil.rmtree(out)  # lerobot-eval refuses an existing folder; this stage created it
        size = cfg.image_size
        extra = [f"--seed={EVAL_SEED}"]
        stage.cli(loop.evaluate(ckpt, task, size, size, cfg.eval_episodes, out, extra))
        overall = json.loads((out / "eval_info.json").read_text())["overall"]
        return {"success_rate": overall["pc_success"] / 100, "n_episodes": overall["n_episodes"]}

    return fn


def cost_stage(
    cfg: PaperConfig, checkpoints: dict[str, str], labels: dict, label: dict
) -> Callable[[Stage], dict]:
    """Inference rate with/without the world-model head; 2 predicted tokens vs their decoded image."""

    def fn(stage: Stage) -> dict:
        import numpy as np
        import torch
        from lerobot.datasets.lerobot_dataset import LeRobotDataset
        from lerobot.policies.factory import make_pre_post_processors
        from lerobot.utils.constants import OBS_STATE

        from lerobot_stamo.policies.stamo_vla import StamoVLAPolicy

        torch.set_num_threads(1)
        dataset = LeRobotDataset(labels["robot"]["repo_id"], root=labels["robot"]["root"], episodes=[0])
        frame = dataset[0]
        policies, batches = {}, {}
        for arm in ("none", "state"):
            policy = StamoVLAPolicy.from_pretrained(checkpoints[arm]).eval()
            pre, _ = make_pre_post_processors(policy.config, pretrained_path=checkpoints[arm])
            obs = {key: frame[key] for key in policy.config.camera_keys} | {"task": frame["task"]}
            if policy.config.state_dim:
                obs[OBS_STATE] = frame[OBS_STATE]
            policies[arm], batches[arm] = policy, pre(obs)

        def median_s(fn: Callable[[], Any], reps: int) -> float:
            fn()  # warm-up
            samples = []
            for _ in range(reps):
                start = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - start)
            return float(np.median(samples))

        chunk = {}
        with torch.no_grad():
            for _ in range(2):  # alternate the two policies so that machine noise hits both
                for arm in ("none", "state"):
                    t = median_s(lambda a=arm: policies[a].predict_action_chunk(batches[a]), cfg.cost_reps)
                    chunk.setdefault(arm, []).append(t)
            state = policies["state"]
            tokens_s = median_s(lambda: state.predict_future(batches["state"], decode=False), cfg.cost_reps)
            steps = state.stamo_policy().config.num_inference_steps
            image_s = median_s(
                lambda: state.predict_future(batches["state"], num_inference_steps=steps),
                max(2, cfg.cost_reps // 5),
            )
        n_action = policies["state"].config.n_action_steps
        chunk_s = {arm: float(np.median(v)) for arm, v in chunk.items()}
        stage.commands.append(
            "in-process timing: StamoVLAPolicy.predict_action_chunk / predict_future, 1 thread"
        )
        return {
            "chunk_ms": {arm: 1000 * t for arm, t in chunk_s.items()},
            "chunks_per_s": {arm: 1 / t for arm, t in chunk_s.items()},
            "actions_per_s": {arm: n_action / t for arm, t in chunk_s.items()},
            "world_model_over_none": chunk_s["state"] / chunk_s["none"],
            "predict_tokens_ms": 1000 * tokens_s,
            "predict_and_decode_image_ms": 1000 * image_s,
            "decode_steps": steps,
            "label_frames_per_s": label["frames_per_s"],
            "reps": cfg.cost_reps,
        }

    return fn
