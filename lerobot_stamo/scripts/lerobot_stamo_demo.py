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
5. `stamo_vla`: label the robot dataset too (`lerobot-stamo-label --horizon=<vla_horizon>`), train the
   compact `stamo_vla` with its world-model head on the StaMo state s(t+k) (LeRobot's `lerobot-train
   --config_path=configs/stamo_vla_compact_sim.json`, targets from the labels, frames resized to
   `vla_image_size`), evaluate it on the simulated arm with `lerobot-eval --env.type=stamo_so101` and
   print its success rate (a smoke run: the 50-episode measurement is docs/results/report.md),
   write a GIF of the first evaluated episode and a PNG of the policy's predicted futures (decoded by the
   tiny stamo) next to the frames that actually followed.

Everything lands in ``--output_dir`` (default ``outputs/demo``); re-running replaces the demo's own
outputs, and only those: a folder holding anything else is refused before anything is written. Every
argument is checked before the disk is touched. Run it from the repository root (it reads
``configs/stamo_tiny.json`` and ``configs/stamo_vla_compact_sim.json``).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import draccus

from lerobot_stamo import loop
from lerobot_stamo.console import quiet_video_encoder, video_backend
from lerobot_stamo.envs.recording import SimRecordConfig, check_root, record
from lerobot_stamo.envs.so101_sim import check_image_size
from lerobot_stamo.errors import StamoInputError
from lerobot_stamo.paths import PRESETS_DIR, preset
from lerobot_stamo.visualization import contact_sheet, video_to_gif

logger = logging.getLogger(__name__)

ROBOT_REPO_ID = "local/stamo_so101_pickcube"
VIDEO_REPO_ID = "local/stamo_so101_pickplace_video"
# Marks an --output_dir the demo wrote; the names below are everything the demo writes there.
MARKER = "lerobot_stamo_demo.json"
DEMO_OUTPUTS = frozenset(
    {
        MARKER,
        "data",
        "pickcube_frames.png",
        "pickplace_video_frames.png",
        "stamo_tiny_pretrained",
        "train_stamo_tiny",
        "interpolation",
        "probe",
        "train_stamo_vla",
        "eval_stamo_vla",
    }
)


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
    tiny_config: Path = preset("stamo_tiny.json")  # the plug-in's own copy: runs from any folder
    # stamo_vla on the labelled robot dataset (0 training steps skips labelling, training and evaluation).
    vla_config: Path = preset("stamo_vla_compact_sim.json")
    vla_horizon: int = 5  # k: the world-model head predicts the StaMo state s(t+k)
    vla_train_steps: int = 300
    vla_image_size: int = 96  # frames are resized to this (cheap on a CPU)
    vla_eval_episodes: int = 3

    def __post_init__(self) -> None:
        counts = {
            "--num_episodes": (self.num_episodes, 2 if self.train_steps > 0 else 1),
            "--num_video_episodes": (self.num_video_episodes, 1),
            "--fit_vae_steps": (self.fit_vae_steps, 0),
            "--train_steps": (self.train_steps, 0),
            "--vla_train_steps": (self.vla_train_steps, 0),
            "--vla_horizon": (self.vla_horizon, 1),
            "--vla_image_size": (self.vla_image_size, 1),
            "--vla_eval_episodes": (self.vla_eval_episodes, 1),
        }
        for flag, (value, minimum) in counts.items():
            if value < minimum:
                why = (
                    " (the interpolation transfers episode 0's motion to episode 1)"
                    if flag == "--num_episodes" and minimum == 2
                    else ""
                )
                raise ValueError(f"{flag} must be >= {minimum}{why}, got {value}. Pass {flag}>={minimum}.")
        check_image_size(self.observation_height, self.observation_width, video=True)
        for flag, path, needed in (
            ("--tiny_config", self.tiny_config, self.train_steps > 0),
            ("--vla_config", self.vla_config, self.train_steps > 0 and self.vla_train_steps > 0),
        ):
            if needed and not Path(path).is_file():
                raise StamoInputError(
                    f"{flag}={path} not found. Pass an existing config file, or leave {flag} out to use the "
                    f"plug-in's preset in {PRESETS_DIR}."
                )

    def record_configs(self) -> tuple[SimRecordConfig, SimRecordConfig]:
        """The robot (PickCube, with actions) and unlabelled-video (PickPlace) recordings."""
        out = Path(self.output_dir)
        size = {"observation_height": self.observation_height, "observation_width": self.observation_width}
        robot = SimRecordConfig(
            repo_id=ROBOT_REPO_ID,
            root=out / "data" / "so101_pickcube",
            task="PickCube",
            num_episodes=self.num_episodes,
            seed=self.seed,
            overwrite=True,
            **size,
        )
        video = SimRecordConfig(
            repo_id=VIDEO_REPO_ID,
            root=out / "data" / "so101_pickplace_video",
            task="PickPlace",
            num_episodes=self.num_video_episodes,
            seed=self.seed + 1000,
            video_only=True,
            overwrite=True,
            **size,
        )
        return robot, video


def _data(repo_id: str, root: Path) -> loop.Data:
    """A recorded dataset, read with the video backend chosen once for the whole demo."""
    return loop.Data(repo_id, root, (f"--dataset.video_backend={video_backend()}",))


def check_output_dir(cfg: DemoConfig) -> Path:
    """Refuse an ``--output_dir`` that holds anything the demo did not write (re-runs replace its outputs).

    Also checks that the recorded datasets in it may be replaced, so that nothing is written before every
    problem is known.
    """
    out = Path(cfg.output_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--output_dir={out} is a file: choose a new or empty folder.")
    if out.is_dir() and not (out / MARKER).is_file():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in DEMO_OUTPUTS)
        if foreign:
            listed = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise FileExistsError(
                f"--output_dir={out} holds files the demo did not write ({listed}), and a re-run replaces "
                "the demo's outputs there. Choose a new or empty --output_dir."
            )
    for rec in cfg.record_configs():
        check_root(rec, flag="--output_dir")
    return out


def label_and_probe(cfg: DemoConfig, checkpoint: Path, robot: tuple[str, Path], video: tuple[str, Path]):
    """Pseudo-action labels for the video dataset, then the linear probe on the robot dataset."""
    out = Path(cfg.output_dir)
    labelled = out / "data" / "so101_pickplace_video_stamo"
    # The horizon of the robot labels (step 5): the two labelled datasets co-train (`lerobot-stamo-cotrain`).
    loop.run(loop.label(checkpoint, _data(*video), horizon=cfg.vla_horizon, output_dir=labelled))
    loop.run(loop.probe(checkpoint, _data(*robot), out / "probe"))
    return {"labelled_video_dataset": labelled, "probe": out / "probe" / "probe.md"}


def train_tiny_stamo(cfg: DemoConfig, repo_id: str, root: Path) -> dict[str, Path]:
    """Tiny pretrained parts -> `lerobot-train --policy.type=stamo` -> `lerobot-stamo-interpolate`."""
    import torch

    from lerobot_stamo.policies.stamo.modeling_stamo import warn_train_backbone
    from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained

    if json.loads(Path(cfg.tiny_config).read_text())["policy"].get("train_backbone"):
        warn_train_backbone()  # here, once: the commands below inherit that it was said
    torch.set_num_threads(1)  # tiny convolutions: as fast on one thread, and immune to a busy second core

    out = Path(cfg.output_dir)
    parts = write_tiny_pretrained(
        out / "stamo_tiny_pretrained", seed=cfg.seed, fit_vae_steps=cfg.fit_vae_steps
    )
    train_dir = out / "train_stamo_tiny"
    if train_dir.exists():
        shutil.rmtree(train_dir)
    steps = cfg.train_steps
    data = _data(repo_id, root)
    save_freq = max(1, steps // 2)
    loop.run(
        loop.train_stamo(cfg.tiny_config, parts, data, steps, save_freq, extra=[f"--output_dir={train_dir}"])
    )
    checkpoint = train_dir / "checkpoints" / "last" / "pretrained_model"
    interp_dir = out / "interpolation"
    loop.run(loop.interpolate(checkpoint, data, interp_dir))
    return {
        "stamo_checkpoint": checkpoint,
        "reconstructions": checkpoint / "reconstructions.png",
        "interpolation": interp_dir,
    }


def train_and_eval_stamo_vla(
    cfg: DemoConfig, checkpoint: Path, repo_id: str, root: Path
) -> tuple[dict[str, Path], str]:
    """Label the robot dataset -> `lerobot-train` stamo_vla -> `lerobot-eval` -> GIF and predicted futures.

    Returns:
        The written paths, and the success line to print.
    """
    out = Path(cfg.output_dir)
    labelled = out / "data" / "so101_pickcube_stamo"
    labelled_repo_id = f"{repo_id}_stamo"
    loop.run(
        loop.label(checkpoint, _data(repo_id, root), cfg.vla_horizon, labelled, repo_id=labelled_repo_id)
    )

    train_dir = out / "train_stamo_vla"
    if train_dir.exists():
        shutil.rmtree(train_dir)
    steps = cfg.vla_train_steps
    size = cfg.vla_image_size
    loop.run(
        loop.train_stamo_vla(
            cfg.vla_config, _data(labelled_repo_id, labelled), steps, steps, "state", cfg.vla_horizon,
            stamo_path=checkpoint,  # only decodes predicted futures (the targets are the labelled columns)
            extra=[f"--policy.resize_images=[{size},{size}]", f"--seed={cfg.seed}", f"--output_dir={train_dir}"],
        )
    )  # fmt: skip
    vla_checkpoint = train_dir / "checkpoints" / "last" / "pretrained_model"

    eval_dir = out / "eval_stamo_vla"
    if eval_dir.exists():
        shutil.rmtree(eval_dir)
    height, width = cfg.observation_height, cfg.observation_width
    loop.run(loop.evaluate(vla_checkpoint, "PickCube", height, width, cfg.vla_eval_episodes, eval_dir))
    info = json.loads((eval_dir / "eval_info.json").read_text())
    successes = loop.eval_successes(eval_dir)
    n, n_success = len(successes), sum(successes)
    episodes = f"{n} episode" + ("s" if n != 1 else "")
    success = (
        f"stamo_vla success on PickCube: {n_success}/{n} ({100 * n_success / max(n, 1):.0f}%) over {episodes}. "
        f"A smoke run ({steps} CPU training steps), not a measurement: the 50-episode measurement is in "
        "docs/results/report.md."
    )
    videos = [p for task in info["per_task"] for p in task["metrics"].get("video_paths", [])]
    if not videos:
        raise RuntimeError(
            f"lerobot-eval rendered no episode video: no `video_paths` in {eval_dir / 'eval_info.json'}."
        )
    gif = video_to_gif(videos[0], eval_dir / "episode_0.gif")
    future = write_predicted_future(
        vla_checkpoint, labelled_repo_id, labelled, eval_dir / "predicted_future.png"
    )
    written = {
        "labelled_robot_dataset": labelled,
        "stamo_vla_checkpoint": vla_checkpoint,
        "stamo_vla_eval": eval_dir / "eval_info.json",
        "stamo_vla_episode_gif": gif,
        "stamo_vla_predicted_future": future,
    }
    return written, success


def write_predicted_future(checkpoint: Path, repo_id: str, root: Path, out_png: Path) -> Path:
    """Decodes the trained stamo_vla's predicted futures on the first episode of its training dataset."""
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.policies.factory import make_pre_post_processors

    import lerobot_stamo  # noqa: F401  (registers stamo_vla and its processor steps)
    from lerobot_stamo.policies.stamo_vla import StamoVLAPolicy
    from lerobot_stamo.policies.stamo_vla.visualize import write_future_strip

    torch.set_num_threads(1)
    policy = StamoVLAPolicy.from_pretrained(checkpoint)
    preprocessor, _ = make_pre_post_processors(policy.config, pretrained_path=str(checkpoint))
    dataset = LeRobotDataset(repo_id, root=root, video_backend=video_backend())
    return write_future_strip(policy, preprocessor, dataset, episode=0, out_png=out_png)


def run_demo(cfg: DemoConfig) -> dict[str, Path]:
    """Run the demo; return the paths it wrote."""
    out = check_output_dir(cfg)
    robot_cfg, video_cfg = cfg.record_configs()
    quiet_video_encoder()  # for the recordings here and every command the demo runs
    video_backend()  # decided (and, without torchcodec, said) once for the whole run
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps({"written_by": "lerobot-stamo-demo"}, indent=2) + "\n")
    robot = record(robot_cfg)
    video = record(video_cfg)
    written = {
        "robot_dataset": robot,
        "video_dataset": video,
        "robot_contact_sheet": contact_sheet(ROBOT_REPO_ID, robot, out / "pickcube_frames.png"),
        "video_contact_sheet": contact_sheet(VIDEO_REPO_ID, video, out / "pickplace_video_frames.png"),
    }
    summary = []
    if cfg.train_steps > 0:
        written |= train_tiny_stamo(cfg, ROBOT_REPO_ID, robot)
        written |= label_and_probe(
            cfg, written["stamo_checkpoint"], (ROBOT_REPO_ID, robot), (VIDEO_REPO_ID, video)
        )
        if cfg.vla_train_steps > 0:
            vla_written, success = train_and_eval_stamo_vla(
                cfg, written["stamo_checkpoint"], ROBOT_REPO_ID, robot
            )
            written |= vla_written
            summary.append(success)
    print("Demo outputs:")
    for name, path in written.items():
        print(f"  {name:26s} {path}")
    for line in summary:
        print(line)
    return written


def main(args: list[str] | None = None) -> None:
    # force: an import may already have configured the root logger (at WARNING), hiding these lines
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", force=True)
    run_demo(draccus.parse(DemoConfig, args=args))


if __name__ == "__main__":
    main()
