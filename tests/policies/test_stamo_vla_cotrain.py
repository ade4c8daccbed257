"""Co-training: `lerobot-stamo-cotrain` builds one dataset from robot episodes and StaMo-labelled video, and
`stamo_vla` learns actions from the real frames only and latent motion from every frame."""

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from cli_helpers import SIM_IMAGE_HW
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.utils.constants import ACTION, OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS, OBS_STATE
from test_stamo_vla_cli import run_cli, train_args
from test_stamo_vla_model import raw_batch, tiny_config

from lerobot_stamo.cards import dataset_card_kwargs
from lerobot_stamo.columns import ACTION_VALID_KEY
from lerobot_stamo.envs.recording import SimRecordConfig, record
from lerobot_stamo.policies.stamo_vla import StamoVLAPolicy
from lerobot_stamo.transforms.cotrain import COTRAIN_FILE, CotrainConfig, build_cotrain_dataset
from lerobot_stamo.transforms.labelling import LabelConfig, LabelDatasetArgs, LabelPolicyArgs, label_dataset

BIN = Path(sys.executable).parent


def tree_digest(root: Path) -> str:
    """A digest of every file's path and bytes under `root` (sources must stay untouched)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def labelled_video(tmp_path_factory, stamo_ckpt) -> Path:
    """2 action-free PickCube episodes (new seeds), labelled at horizon 2 by the same stamo checkpoint."""
    base = tmp_path_factory.mktemp("video")
    raw = base / "so101_video"
    record(
        SimRecordConfig(
            repo_id="local/so101_video",
            root=raw,
            task="PickCube",
            num_episodes=2,
            seed=100,
            video_only=True,
            observation_height=SIM_IMAGE_HW,
            observation_width=SIM_IMAGE_HW,
        )
    )
    out = base / "so101_video_stamo"
    label_dataset(
        LabelConfig(
            policy=LabelPolicyArgs(path=str(stamo_ckpt)),
            dataset=LabelDatasetArgs(repo_id="local/so101_video", root=str(raw)),
            output_dir=str(out),
            horizon=2,
            num_workers=0,
        )
    )
    return out


@pytest.fixture(scope="module")
def cotrain(tmp_path_factory, labelled_sim, labelled_video) -> tuple[Path, dict]:
    """The co-training dataset of robot episodes [0, 2] and every video episode, with source digests."""
    _, robot = labelled_sim
    digests = {"robot": tree_digest(robot), "video": tree_digest(labelled_video)}
    out = tmp_path_factory.mktemp("cotrain") / "so101_cotrain"
    build_cotrain_dataset(
        CotrainConfig(
            robot_root=str(robot), video_root=str(labelled_video), output_dir=str(out), real_episodes=[0, 2]
        )
    )
    return out, digests


def test_build_frames_mask_stats_and_metadata(cotrain, labelled_sim, labelled_video):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    out, digests = cotrain
    _, robot_root = labelled_sim
    robot = LeRobotDataset("local/r", root=robot_root, video_backend="pyav")
    video = LeRobotDataset("local/v", root=labelled_video, video_backend="pyav")
    ds = LeRobotDataset("local/so101_cotrain", root=out, video_backend="pyav")
    lengths = robot.meta.episodes["length"]
    n_real = lengths[0] + lengths[2]
    assert ds.meta.total_episodes == 2 + video.meta.total_episodes
    assert ds.meta.total_frames == n_real + video.meta.total_frames

    table = ds.hf_dataset.with_format("numpy")
    mask = np.asarray(table[ACTION_VALID_KEY]).reshape(-1)
    assert mask[:n_real].tolist() == [1.0] * n_real and not mask[n_real:].any()
    assert np.all(np.stack(table[ACTION])[n_real:] == 0)  # placeholders on video frames

    # action / state stats are those of the kept robot frames only, not pooled with the placeholders
    src = robot.hf_dataset.with_format("numpy")
    kept = np.isin(np.asarray(src["episode_index"]), [0, 2])
    for key in (ACTION, OBS_STATE):
        real = np.stack(src[key])[kept].astype(np.float64)
        np.testing.assert_allclose(ds.meta.stats[key]["mean"], real.mean(0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(ds.meta.stats[key]["std"], real.std(0), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ds.meta.stats[key]["min"], real.min(0), rtol=1e-6)
    # the StaMo columns keep the labeller's per-dimension stats (tokens * dim) over every frame
    states = np.stack(table["observation.stamo_state.front"]).astype(np.float64)
    stats = ds.meta.stats["observation.stamo_state.front"]["mean"]
    np.testing.assert_allclose(stats, states.reshape(len(states), -1).mean(0), atol=1e-5)

    # a video frame reads back with its cameras, latent motion and the mask off
    item = ds[n_real + 1]
    assert item["observation.images.front"].shape == (3, SIM_IMAGE_HW, SIM_IMAGE_HW)
    assert float(item[ACTION_VALID_KEY]) == 0.0 and item["observation.stamo_motion.front"].shape == (2, 32)

    meta = json.loads((out / COTRAIN_FILE).read_text())
    assert meta["robot"]["episodes"] == [0, 2] and meta["video"]["episodes"] == [0, 1]
    assert meta["ratio_real_to_video_episodes"] == "2:2"
    labels = json.loads((robot_root / "meta" / "stamo_labels.json").read_text())
    assert meta["stamo_checkpoint"]["weights_sha256"] == labels["weights_sha256"]
    assert (out / "meta" / "stamo_labels.json").is_file()
    assert not list(out.parent.glob(".*cotrain-tmp"))
    # the sources are only read
    assert tree_digest(robot_root) == digests["robot"] and tree_digest(labelled_video) == digests["video"]


def test_per_task_choice_and_push_to_hub(labelled_sim, labelled_video, tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    _, robot = labelled_sim
    out = tmp_path / "c"
    with mock.patch.object(LeRobotDataset, "push_to_hub") as push:
        build_cotrain_dataset(
            CotrainConfig(
                robot_root=str(robot),
                video_root=str(labelled_video),
                output_dir=str(out),
                real_per_task=1,
                video_per_task=1,
                repo_id="user/so101_cotrain",
                push_to_hub=True,
                private=True,
            )  # fmt: skip
        )
    push.assert_called_once_with(private=True, **dataset_card_kwargs("cotrain"))  # the card links the docs
    meta = json.loads((out / COTRAIN_FILE).read_text())
    assert meta["robot"]["episodes"] == [0] and meta["video"]["episodes"] == [0]
    assert json.loads((out / "meta" / "info.json").read_text())["total_episodes"] == 2
    with pytest.raises(ValueError, match="--repo_id"):
        CotrainConfig(push_to_hub=True)


def _tampered(src: Path, dst: Path, labels: dict | None = None, info=None) -> Path:
    shutil.copytree(src, dst)
    if labels is not None:
        path = dst / "meta" / "stamo_labels.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **labels}))
    if info is not None:
        path = dst / "meta" / "info.json"
        data = json.loads(path.read_text())
        info(data)
        path.write_text(json.dumps(data))
    return dst


def _resize_front(info: dict) -> None:
    info["features"]["observation.images.front"]["shape"] = [32, 32, 3]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unlabelled", "has no StaMo labels"),
        ("checkpoint", "different stamo checkpoints"),
        ("horizon", "same `lerobot-stamo-label --horizon`"),
        ("image_size", "same resolution"),
        ("cameras", "labelled cameras differ"),
        ("inside_source", "overlaps the source dataset"),
        ("missing", "is not a LeRobotDataset"),
    ],
)
def test_refusals(case, message, labelled_sim, labelled_video, sim_dataset, tmp_path):
    _, robot = labelled_sim
    video, out = labelled_video, tmp_path / "out"
    if case == "unlabelled":
        video = sim_dataset[1]
    elif case == "checkpoint":
        video = _tampered(labelled_video, tmp_path / "v", labels={"weights_sha256": "0" * 64})
    elif case == "horizon":
        video = _tampered(labelled_video, tmp_path / "v", labels={"horizon": 3})
    elif case == "cameras":
        video = _tampered(labelled_video, tmp_path / "v", labels={"cameras": ["observation.images.front"]})
    elif case == "image_size":
        video = _tampered(labelled_video, tmp_path / "v", info=_resize_front)
    elif case == "inside_source":
        out = robot / "cotrain"
    elif case == "missing":
        video = tmp_path / "nowhere"
    digest = tree_digest(robot)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        build_cotrain_dataset(
            CotrainConfig(robot_root=str(robot), video_root=str(video), output_dir=str(out))
        )
    assert not out.exists() and tree_digest(robot) == digest


def test_real_repeat_writes_each_robot_episode_again(labelled_sim, labelled_video, tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    _, robot = labelled_sim
    out = tmp_path / "repeated"
    proc = run_cli(["lerobot-stamo-cotrain", f"--robot_root={robot}", f"--video_root={labelled_video}",
                    f"--output_dir={out}", "--real_per_task=1", "--video_per_task=1", "--real_repeat=3"])  # fmt: skip
    ds = LeRobotDataset("local/repeated", root=out, video_backend="pyav")
    n_robot = LeRobotDataset("local/r", root=robot, video_backend="pyav").meta.episodes["length"][0]
    n_video = LeRobotDataset("local/v", root=labelled_video, video_backend="pyav").meta.episodes["length"][0]
    assert ds.meta.total_episodes == 4 and ds.meta.total_frames == 3 * n_robot + n_video
    table = ds.hf_dataset.with_format("numpy")
    mask = np.asarray(table[ACTION_VALID_KEY]).reshape(-1)
    assert mask.tolist() == [1.0] * (3 * n_robot) + [0.0] * n_video
    actions = np.stack(table[ACTION])[: 3 * n_robot].reshape(3, n_robot, -1)
    assert np.array_equal(actions[0], actions[1]) and np.array_equal(actions[0], actions[2])
    meta = json.loads((out / COTRAIN_FILE).read_text())
    share = 3 * n_robot / (3 * n_robot + n_video)
    assert meta["robot"]["repeat"] == 3 and meta["robot"]["frames"] == 3 * n_robot
    assert meta["real_frame_share"] == pytest.approx(share)
    assert f"1 robot episodes written 3 times ({3 * n_robot} frames with actions, {share:.0%}" in proc.stderr
    with pytest.raises(ValueError, match="--real_repeat must be >= 1"):
        CotrainConfig(real_repeat=0)


def test_real_repeat_decodes_each_source_frame_once(labelled_sim, labelled_video, tmp_path):
    """Repeated robot episodes are written from memory: the videos are decoded once whatever --real_repeat."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    _, robot = labelled_sim
    read = LeRobotDataset.__getitem__
    with mock.patch.object(LeRobotDataset, "__getitem__", autospec=True, side_effect=read) as getitem:
        out = build_cotrain_dataset(
            CotrainConfig(
                robot_root=str(robot),
                video_root=str(labelled_video),
                output_dir=str(tmp_path / "o"),
                real_per_task=1,
                video_per_task=1,
                real_repeat=4,
            )
        )
    ds = LeRobotDataset("local/o", root=out, video_backend="pyav")
    meta = json.loads((out / COTRAIN_FILE).read_text())
    n_robot, n_video = meta["robot"]["frames"] // 4, meta["video"]["frames"]
    assert getitem.call_count == n_robot + n_video
    assert ds.meta.total_frames == 4 * n_robot + n_video and ds.meta.total_episodes == 5


def test_argument_errors_and_overwrite(labelled_sim, labelled_video, cotrain, tmp_path):
    _, robot = labelled_sim
    with pytest.raises(ValueError, match="give only one"):
        CotrainConfig(real_per_task=1, real_episodes=[0])
    with pytest.raises(ValueError, match="must be >= 1"):
        CotrainConfig(video_per_task=0)
    with pytest.raises(ValueError, match="do not exist"):
        build_cotrain_dataset(
            CotrainConfig(
                robot_root=str(robot),
                video_root=str(labelled_video),
                output_dir=str(tmp_path / "o"),
                real_episodes=[7],
            )  # fmt: skip
        )
    # an existing folder that is not ours is never replaced, even with --overwrite
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError):
            build_cotrain_dataset(
                CotrainConfig(
                    robot_root=str(robot),
                    video_root=str(labelled_video),
                    output_dir=str(theirs),
                    overwrite=overwrite,
                )  # fmt: skip
            )
    assert (theirs / "notes.txt").read_text() == "keep me"
    # our own output is replaced with --overwrite=true
    out = tmp_path / "ours"
    shutil.copytree(cotrain[0], out)
    build_cotrain_dataset(
        CotrainConfig(
            robot_root=str(robot),
            video_root=str(labelled_video),
            output_dir=str(out),
            overwrite=True,
            real_episodes=[1],
        )  # fmt: skip
    )
    assert json.loads((out / COTRAIN_FILE).read_text())["robot"]["episodes"] == [1]


@pytest.mark.slow
def test_killed_midway_leaves_nothing_and_reruns(labelled_sim, labelled_video, tmp_path):
    _, robot = labelled_sim
    out = tmp_path / "killed"
    args = [str(BIN / "lerobot-stamo-cotrain"), f"--robot_root={robot}", f"--video_root={labelled_video}",
            f"--output_dir={out}"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = tmp_path / ".killed.cotrain-tmp"
    deadline = time.time() + 120
    while not (work / "dataset" / "meta").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the build finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    proc = run_cli(["lerobot-stamo-cotrain", *args[1:]])
    assert (out / COTRAIN_FILE).is_file() and not work.exists()
    assert "Map:" not in proc.stdout + proc.stderr  # datasets' per-episode progress bar


# ------------------------------------------------------------------------------------------ the policy
def cotrain_config(**overrides):
    config = tiny_config(**overrides)
    config.input_features[ACTION_VALID_KEY] = PolicyFeature(FeatureType.STATE, (1,))
    return config


def test_action_loss_only_from_real_frames_latent_from_all():
    torch.manual_seed(0)
    policy = StamoVLAPolicy(cotrain_config())
    assert policy.model.latent_head is not None and ACTION_VALID_KEY not in policy.config.input_features
    policy.train()

    video = raw_batch(4) | {ACTION_VALID_KEY: torch.zeros(4)}
    loss, info = policy.forward(video)
    loss.backward()
    assert torch.isfinite(loss) and info["action_loss"] == 0.0 and info["real_frames"] == 0.0
    assert all(p.grad is None or not p.grad.any() for p in policy.model.action_head.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.model.latent_head.parameters())
    assert info["latent_loss"] > 0

    # real frames: the action loss is the mean over the real frames only (eval: no dropout between calls)
    policy.zero_grad()
    policy.eval()
    mixed = raw_batch(4) | {ACTION_VALID_KEY: torch.tensor([1.0, 0.0, 0.0, 1.0])}
    _, info = policy.forward(mixed)
    only_real = {k: v[[0, 3]] if isinstance(v, torch.Tensor) else v for k, v in mixed.items()}
    _, info_real = policy.forward(only_real)
    assert info["action_loss"] == pytest.approx(info_real["action_loss"], rel=1e-5)
    per_sample, _ = policy.forward(mixed, reduction="none")
    loss, _ = policy.forward(mixed)
    assert per_sample.mean().item() == pytest.approx(loss.item(), rel=1e-5)


def test_video_frames_see_the_mean_state_and_inference_skips_the_latent_head():
    torch.manual_seed(0)
    policy = StamoVLAPolicy(cotrain_config()).eval()
    batch = raw_batch(2) | {ACTION_VALID_KEY: torch.zeros(2)}
    a = policy.model.query_states(batch)
    b = policy.model.query_states(batch | {OBS_STATE: torch.randn(2, 6)})
    assert torch.equal(a, b)  # the placeholder state is ignored on video frames
    keys = (*policy.config.camera_keys, OBS_STATE, OBS_LANGUAGE_TOKENS, OBS_LANGUAGE_ATTENTION_MASK)
    obs = {k: raw_batch(2)[k] for k in keys}
    calls = []
    policy.model.latent_head.register_forward_hook(lambda *_: calls.append(1))
    assert policy.select_action(obs).shape == (2, 6) and not calls
    with pytest.raises(ValueError, match="lambda_latent"):
        cotrain_config(lambda_latent=-1)
    assert StamoVLAPolicy(cotrain_config(lambda_latent=0.0)).model.latent_head is None


@pytest.mark.slow
def test_lerobot_train_and_eval_on_the_cotrain_dataset(cotrain, tmp_path):
    out_dir, _ = cotrain
    out = tmp_path / "train"
    args = train_args("local/so101_cotrain", out_dir, out, 3, "--policy.lambda_latent=0.5")
    args[1] = "--config_path=configs/stamo_vla_cotrain_sim.json"
    proc = run_cli(args)
    assert "latent_loss:" in proc.stdout + proc.stderr and "real_frames:" in proc.stdout + proc.stderr
    pretrained = out / "checkpoints" / "last" / "pretrained_model"
    config = json.loads((pretrained / "config.json").read_text())
    assert config["lambda_latent"] == 0.5 and ACTION_VALID_KEY not in config["input_features"]
    run_cli(["lerobot-eval", f"--policy.path={pretrained}", "--env.type=stamo_so101", "--env.task=PickCube",
             f"--env.observation_height={SIM_IMAGE_HW}", f"--env.observation_width={SIM_IMAGE_HW}",
             "--eval.n_episodes=1", "--eval.batch_size=1", "--eval.use_async_envs=false", "--policy.device=cpu",
             f"--output_dir={tmp_path / 'eval'}"])  # fmt: skip
    assert (tmp_path / "eval" / "eval_info.json").is_file()
