"""`lerobot-stamo-interpolate`: decode the StaMo interpolation between two frames (and a motion transfer).

Examples:

    lerobot-stamo-interpolate --policy.path=outputs/train/stamo/checkpoints/last/pretrained_model \\
        --dataset.repo_id=me/so101_pick --dataset.episode=0 --dataset.frames='[0,-1]' --steps=6 \\
        --output_dir=outputs/interp

    lerobot-stamo-interpolate --policy.path=... --images a.png b.png --transfer c.png --output_dir=out

Writes `interpolation.png` (a | decoded path | b, then c | transferred path) and `interpolation.gif`.
"""

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from lerobot.configs import parser
from lerobot.configs.policies import PreTrainedConfig

from lerobot_stamo.console import video_backend
from lerobot_stamo.errors import StamoInputError, check_checkpoint, check_dataset

logger = logging.getLogger(__name__)


@dataclass
class InterpolateDatasetConfig:
    """Where to take the frames from when no `--images` are given."""

    repo_id: str | None = None
    root: str | None = None
    # Episode of the start/goal frames and their indices within it (negative: from the episode's end).
    episode: int = 0
    frames: list[int] = field(default_factory=lambda: [0, -1])
    # Camera to read (default: the policy's first camera).
    camera: str | None = None
    # Optional frame to transfer the motion to: (episode, frame index).
    transfer_episode: int | None = None
    transfer_frame: int = 0
    # Video decoder ("torchcodec" or "pyav"); default: torchcodec when it loads, else pyav.
    video_backend: str | None = None


@dataclass
class InterpolateConfig:
    policy: PreTrainedConfig | None = None
    dataset: InterpolateDatasetConfig = field(default_factory=InterpolateDatasetConfig)
    # Two image files (start, goal); replaces the dataset frames.
    images: list[str] | None = None
    # Image file whose state receives the motion start -> goal.
    transfer: str | None = None
    steps: int = 6
    num_inference_steps: int | None = None
    seed: int = 0
    fps: int = 4
    output_dir: Path = Path("outputs/stamo_interpolate")

    def __post_init__(self) -> None:
        if self.fps < 1:
            raise ValueError(f"`--fps` (frames per second of the GIF) must be >= 1, got {self.fps}.")
        # Image files first: cheap to check, and no checkpoint is loaded for a run that would fail anyway.
        if self.images is not None and len(self.images) != 2:
            raise ValueError(f"`--images` takes exactly two files (start, goal), got {self.images}.")
        for i, path in enumerate(self.images or []):
            check_image_file(path, f"--images ({'start' if i == 0 else 'goal'})")
        if self.transfer:
            check_image_file(self.transfer, "--transfer")
        policy_path = parser.get_path_arg("policy")
        if policy_path:
            check_checkpoint(policy_path, "--policy.path")
            cli_overrides = parser.get_cli_overrides("policy") or []
            self.policy = PreTrainedConfig.from_pretrained(policy_path, cli_overrides=cli_overrides)
            self.policy.pretrained_path = Path(policy_path)
            if self.policy.type != "stamo":
                raise ValueError(
                    f"--policy.path={policy_path} is a {self.policy.type!r} checkpoint, not a 'stamo' one: "
                    "interpolation encodes and decodes StaMo states. Pass a stamo checkpoint (for a stamo_vla "
                    "policy, the one its `stamo_path` names)."
                )
        if self.policy is None or self.policy.pretrained_path is None:
            raise ValueError("Pass a trained stamo checkpoint with `--policy.path=<dir or Hub id>`.")
        if self.images is None and self.dataset.repo_id is None:
            raise ValueError(
                "Give either `--images a.png b.png` or `--dataset.repo_id` (and `--dataset.root`)."
            )
        if self.steps < 2:
            raise ValueError(f"`--steps` must be >= 2, got {self.steps}.")

    @classmethod
    def __get_path_fields__(cls) -> list[str]:
        return ["policy"]


def check_image_file(path: str | Path, flag: str) -> None:
    """Raise a `StamoInputError` naming `path` and `flag` unless it is an image file that can be read."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise StamoInputError(f"{flag}: {path} is not a file. Pass the path of a PNG or JPEG image.")
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise StamoInputError(
            f"{flag}: {path} is not an image file that can be read ({type(err).__name__}: {err}). "
            "Pass a PNG or JPEG image."
        ) from err


def dataset_frames(
    cfg: InterpolateDatasetConfig, camera: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Reads the start, goal (and transfer) frames (3, H, W) of a LeRobotDataset."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    check_dataset(cfg.repo_id, cfg.root)
    ds = LeRobotDataset(cfg.repo_id, root=cfg.root, video_backend=cfg.video_backend or video_backend())
    camera = cfg.camera or camera
    if camera not in ds.meta.camera_keys:
        raise ValueError(
            f"Camera {camera!r} is not in {cfg.repo_id} (cameras: {ds.meta.camera_keys}): set --dataset.camera."
        )

    def frame(episode: int, index: int) -> torch.Tensor:
        if not 0 <= episode < ds.meta.total_episodes:
            raise ValueError(
                f"Episode {episode} out of range: {cfg.repo_id} has {ds.meta.total_episodes} episodes."
            )
        ep = ds.meta.episodes[episode]
        start, end = int(ep["dataset_from_index"]), int(ep["dataset_to_index"])
        absolute = (start if index >= 0 else end) + index
        if not start <= absolute < end:
            raise ValueError(f"Frame {index} out of range for episode {episode} ({end - start} frames).")
        return ds[absolute][camera]

    if len(cfg.frames) != 2:
        raise ValueError(f"`--dataset.frames` takes two indices (start, goal), got {cfg.frames}.")
    a, b = frame(cfg.episode, cfg.frames[0]), frame(cfg.episode, cfg.frames[1])
    c = frame(cfg.transfer_episode, cfg.transfer_frame) if cfg.transfer_episode is not None else None
    return a, b, c


def interpolate(cfg: InterpolateConfig) -> dict[str, Path]:
    """Runs the interpolation described by `cfg` and returns the written files."""
    from lerobot_stamo.policies.stamo import open_frozen_stamo
    from lerobot_stamo.policies.stamo.visualize import interpolation_frames, load_png, write_strip_and_gif

    policy = open_frozen_stamo(cfg.policy.pretrained_path, config=cfg.policy)
    if cfg.images is not None:
        a, b = (load_png(p) for p in cfg.images)
        c = load_png(cfg.transfer) if cfg.transfer else None
    else:
        a, b, c = dataset_frames(cfg.dataset, policy.config.camera_keys[0])
        if cfg.transfer:
            c = load_png(cfg.transfer)
    frames = interpolation_frames(policy, a, b, cfg.steps, c, cfg.num_inference_steps, cfg.seed)
    paths = write_strip_and_gif(frames, cfg.output_dir, fps=cfg.fps)
    logger.info(f"Wrote {paths['strip']} and {paths['gif']}")
    return paths


def _space_separated_images(argv: list[str]) -> list[str]:
    """Accepts `--images a.png b.png` (argparse style) besides draccus' `--images='[a.png,b.png]'`."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == "--images":
            values = []
            i += 1
            while i < len(argv) and not argv[i].startswith("--"):
                values.append(argv[i])
                i += 1
            out.append(f"--images=[{','.join(values)}]")
        else:
            out.append(argv[i])
            i += 1
    return out


@parser.wrap()
def _main(cfg: InterpolateConfig) -> None:
    interpolate(cfg)


def main() -> None:
    from lerobot.utils.utils import init_logging

    import lerobot_stamo  # noqa: F401  (registers the stamo policy)

    init_logging()
    sys.argv = [sys.argv[0], *_space_separated_images(sys.argv[1:])]
    _main()


if __name__ == "__main__":
    main()
