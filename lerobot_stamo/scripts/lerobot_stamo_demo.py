"""`lerobot-stamo-demo` (what `make demo` runs): the project's main job on the simulated SO-101, offline.

1. Record scripted-expert PickCube episodes (a robot dataset with actions) and PickPlace episodes as
   unlabelled video (frames and task only) with `lerobot-stamo-sim-record`'s code.
2. Write a contact sheet of each dataset (read back through LeRobotDataset).
3. Write the tiny preset's pretrained parts (random DINOv2, SD3 DiT and a briefly fitted VAE, saved in
   the Hub folder layout), train the tiny `stamo` autoencoder on the robot dataset with LeRobot's own
   `lerobot-train --config_path=configs/stamo_tiny.json` (reconstructions and PSNR/SSIM are written
   next to each checkpoint), and decode an interpolation strip and a motion transfer with
   `lerobot-stamo-interpolate`.
4. Label the unlabelled video with StaMo states and latent motion (`lerobot-stamo-label`) and print
   the linear-probe table of the robot dataset (`lerobot-stamo-probe`: StaMo state difference vs
   backbone-feature and pixel differences as predictors of the actions).

Everything lands in ``--output_dir`` (default ``outputs/demo``); re-running replaces the demo's own
outputs. Run it from the repository root (it reads ``configs/stamo_tiny.json``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import draccus

from lerobot_stamo.scripts.lerobot_stamo_sim_record import SimRecordConfig, record
from lerobot_stamo.visualization import contact_sheet

logger = logging.getLogger(__name__)

ROBOT_REPO_ID = "local/stamo_so101_pickcube"
VIDEO_REPO_ID = "local/stamo_so101_pickplace_video"


@dataclass
class DemoConfig:
    output_dir: Path = Path("outputs/demo")
    # Robot episodes (with actions) and unlabelled-video episodes to record.
    num_episodes: int = 6
    num_video_episodes: int = 4
    observation_height: int = 224
    observation_width: int = 224
    seed: int = 0
    # The tiny stamo: VAE fitting steps for its pretrained parts, then lerobot-train steps (0 skips both).
    fit_vae_steps: int = 1500
    train_steps: int = 2000
    tiny_config: Path = Path("configs/stamo_tiny.json")


def _run(cmd: list[str]) -> None:
    """Run a console script of this environment, with the demo's output streaming to the terminal."""
    exe = Path(sys.executable).parent / cmd[0]
    logger.info("$ %s", " ".join(cmd))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    subprocess.run([str(exe), *cmd[1:]], check=True, env=env)


def label_and_probe(cfg: DemoConfig, checkpoint: Path, robot: tuple[str, Path], video: tuple[str, Path]):
    """Pseudo-action labels for the video dataset, then the linear probe on the robot dataset."""
    out = Path(cfg.output_dir)
    labelled = out / "data" / "so101_pickplace_video_stamo"
    _run(
        [
            "lerobot-stamo-label",
            f"--policy.path={checkpoint}",
            f"--dataset.repo_id={video[0]}",
            f"--dataset.root={video[1]}",
            "--horizon=1",
            f"--output_dir={labelled}",
            "--overwrite=true",
        ]
    )
    _run(
        [
            "lerobot-stamo-probe",
            f"--policy.path={checkpoint}",
            f"--dataset.repo_id={robot[0]}",
            f"--dataset.root={robot[1]}",
            f"--output_dir={out / 'probe'}",
            "--action_mode=relative",  # the simulated arm's actions are absolute joint targets
        ]
    )
    return {"labelled_video_dataset": labelled, "probe": out / "probe" / "probe.md"}


def train_tiny_stamo(cfg: DemoConfig, repo_id: str, root: Path) -> dict[str, Path]:
    """Tiny pretrained parts -> `lerobot-train --policy.type=stamo` -> `lerobot-stamo-interpolate`."""
    import torch

    from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained

    torch.set_num_threads(1)  # tiny convolutions: as fast on one thread, and immune to a busy second core

    if not cfg.tiny_config.exists():
        raise FileNotFoundError(
            f"{cfg.tiny_config} not found: run the demo from the repository root or pass --tiny_config."
        )
    out = Path(cfg.output_dir)
    parts = write_tiny_pretrained(
        out / "stamo_tiny_pretrained", seed=cfg.seed, fit_vae_steps=cfg.fit_vae_steps
    )
    train_dir = out / "train_stamo_tiny"
    if train_dir.exists():
        shutil.rmtree(train_dir)
    save_freq = max(1, cfg.train_steps // 2)
    _run(
        [
            "lerobot-train",
            f"--config_path={cfg.tiny_config}",
            f"--policy.backbone={parts['backbone']}",
            f"--policy.decoder_path={parts['decoder_path']}",
            "--policy.device=cpu",
            f"--dataset.repo_id={repo_id}",
            f"--dataset.root={root}",
            f"--steps={cfg.train_steps}",
            f"--save_freq={save_freq}",
            f"--log_freq={max(1, min(100, cfg.train_steps // 10))}",
            "--wandb.enable=false",
            f"--output_dir={train_dir}",
        ]
    )
    checkpoint = train_dir / "checkpoints" / "last" / "pretrained_model"
    interp_dir = out / "interpolation"
    _run(
        [
            "lerobot-stamo-interpolate",
            f"--policy.path={checkpoint}",
            f"--dataset.repo_id={repo_id}",
            f"--dataset.root={root}",
            "--dataset.episode=0",
            "--dataset.transfer_episode=1",
            "--steps=6",
            f"--output_dir={interp_dir}",
        ]
    )
    return {
        "stamo_checkpoint": checkpoint,
        "reconstructions": checkpoint / "reconstructions.png",
        "interpolation": interp_dir,
    }


def run_demo(cfg: DemoConfig) -> dict[str, Path]:
    """Run the demo; return the paths it wrote."""
    out = Path(cfg.output_dir)
    size = {"observation_height": cfg.observation_height, "observation_width": cfg.observation_width}
    robot = record(
        SimRecordConfig(
            repo_id=ROBOT_REPO_ID,
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
            repo_id=VIDEO_REPO_ID,
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
        "robot_contact_sheet": contact_sheet(ROBOT_REPO_ID, robot, out / "pickcube_frames.png"),
        "video_contact_sheet": contact_sheet(VIDEO_REPO_ID, video, out / "pickplace_video_frames.png"),
    }
    if cfg.train_steps > 0:
        written |= train_tiny_stamo(cfg, ROBOT_REPO_ID, robot)
        written |= label_and_probe(
            cfg, written["stamo_checkpoint"], (ROBOT_REPO_ID, robot), (VIDEO_REPO_ID, video)
        )
    print("Demo outputs:")
    for name, path in written.items():
        print(f"  {name:22s} {path}")
    return written


def main(args: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_demo(draccus.parse(DemoConfig, args=args))


if __name__ == "__main__":
    main()
