"""The simulated SO-101: API, units, seeding, success signal, expert, bad input."""

import gymnasium as gym
import numpy as np
import pytest

import lerobot_stamo  # noqa: F401  (registers the gym ids)
from lerobot_stamo.envs import MOTOR_FEATURE_NAMES, TASKS, SO101SimEnv
from lerobot_stamo.envs.expert import ScriptedExpert

HW = 64


@pytest.fixture(scope="module", params=list(TASKS))
def env(request):
    env = SO101SimEnv(task=request.param, observation_height=HW, observation_width=HW)
    yield env
    env.close()


def rollout(env, policy, seed, max_steps=None):
    obs, info = env.reset(seed=seed)
    infos = [info]
    for _ in range(max_steps or TASKS[env.task].max_episode_steps):
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        infos.append(info)
        if terminated:
            break
    return obs, infos


def test_reset_step_shapes_and_dtypes(env):
    obs, info = env.reset(seed=0)
    assert set(obs) == {"pixels", "agent_pos"}
    assert set(obs["pixels"]) == {"front", "wrist"}
    for img in obs["pixels"].values():
        assert img.shape == (HW, HW, 3) and img.dtype == np.uint8
    assert obs["agent_pos"].shape == (6,) and obs["agent_pos"].dtype == np.float32
    assert info["is_success"] is False
    assert env.observation_space.contains(obs)
    obs, reward, terminated, truncated, info = env.step(obs["agent_pos"])
    assert isinstance(reward, float) and isinstance(terminated, bool) and truncated is False
    assert info["is_success"] is False
    assert env.task in TASKS and env.task_description == TASKS[env.task].description
    frame = env.render()
    assert frame.shape == (HW, HW, 3) and frame.dtype == np.uint8


def test_units_match_the_so101_follower(env):
    obs, _ = env.reset(seed=0)
    low, high = env.joint_limits_user_units()
    # Degrees for the arm joints (the model's limits are about +-100..160 degrees), 0..100 for the gripper.
    assert np.all(np.abs(low[:5]) > 90) and np.all(np.abs(high[:5]) > 90)
    assert low[5] == pytest.approx(0.0, abs=1e-4) and high[5] == pytest.approx(100.0, abs=1e-4)
    assert MOTOR_FEATURE_NAMES == [
        "shoulder_pan.pos",
        "shoulder_lift.pos",
        "elbow_flex.pos",
        "wrist_flex.pos",
        "wrist_roll.pos",
        "gripper.pos",
    ]
    # Holding a joint target in degrees moves the joint there.
    target = obs["agent_pos"].copy()
    target[0] = 20.0
    for _ in range(10):
        obs, *_ = env.step(target)
    assert obs["agent_pos"][0] == pytest.approx(20.0, abs=1.0)


def test_seeding_is_deterministic(env):
    a, _ = env.reset(seed=123)
    cube_a = env.cube_pos
    env.reset(seed=7)
    b, _ = env.reset(seed=123)
    np.testing.assert_array_equal(cube_a, env.cube_pos)
    np.testing.assert_array_equal(a["pixels"]["front"], b["pixels"]["front"])
    env.reset(seed=124)
    assert not np.allclose(cube_a, env.cube_pos)


def test_two_cameras_render_distinct_images(env):
    obs, _ = env.reset(seed=0)
    diff = np.abs(obs["pixels"]["front"].astype(int) - obs["pixels"]["wrist"].astype(int)).mean()
    assert diff > 10


def test_expert_succeeds_and_random_policy_does_not(env):
    expert = ScriptedExpert(env)

    def expert_policy(obs):
        return expert.act()

    successes = 0
    for seed in range(5):
        expert.reset()
        env.reset(seed=seed)
        _, infos = rollout(env, expert_policy, seed)
        assert all("is_success" in info for info in infos)
        successes += infos[-1]["is_success"]
    assert successes >= 4, f"expert succeeded in {successes}/5 episodes of {env.task}"

    rng = np.random.default_rng(0)
    low, high = env.joint_limits_user_units()
    _, infos = rollout(env, lambda obs: rng.uniform(low, high), seed=0, max_steps=30)
    assert not any(info["is_success"] for info in infos)


def test_bad_actions_raise_clear_errors(env):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        env.step(np.zeros(4))
    with pytest.raises(ValueError, match="non-finite"):
        env.step(np.array([0, 0, np.nan, 0, 0, 50.0]))


def test_out_of_range_targets_are_clipped(env):
    env.reset(seed=0)
    obs, *_ = env.step(np.array([1e4, 0, 0, 0, 0, 500.0]))
    low, high = env.joint_limits_user_units()
    assert np.all(obs["agent_pos"] <= high + 1.0)
    assert env.data.ctrl[env.actuator_ids[0]] == pytest.approx(
        env.model.actuator_ctrlrange[env.actuator_ids[0], 1]
    )


def test_unknown_task_and_camera_list_the_valid_ones():
    with pytest.raises(ValueError, match="PickCube, PickPlace"):
        SO101SimEnv(task="Stack")
    with pytest.raises(ValueError, match="front"):
        SO101SimEnv(cameras=("top",))


def test_image_sizes_are_checked_before_opengl():
    """Issue 12: `--observation_height=0` was blamed on OpenGL; the message names the flag and the fix."""
    from lerobot.envs.configs import EnvConfig

    with pytest.raises(ValueError, match="observation_height=0 is too small.*>=1"):
        SO101SimEnv(observation_height=0)
    with pytest.raises(
        ValueError, match=r"--env.observation_width=-4 is too small.*--env.observation_width>=1"
    ):
        EnvConfig.get_choice_class("stamo_so101")(observation_width=-4)


def test_domain_randomisation_is_off_by_default_and_seeded():
    plain = SO101SimEnv(observation_height=HW, observation_width=HW)
    rand = SO101SimEnv(
        observation_height=HW,
        observation_width=HW,
        randomize_lighting=True,
        randomize_cube_color=True,
        camera_jitter=0.01,
    )

    def look(env):
        m = env.model
        return np.concatenate([m.light_diffuse.ravel(), m.cam_pos.ravel(), m.geom_rgba[m.geom("block").id]])

    plain.reset(seed=0)
    look0 = look(plain)
    plain.reset(seed=1)
    np.testing.assert_array_equal(look0, look(plain))  # only the cube and pad moved
    rand.reset(seed=0)
    assert not np.array_equal(look0, look(rand))
    r0, _ = rand.reset(seed=0)
    r1, _ = rand.reset(seed=1)
    assert not np.array_equal(r0["pixels"]["front"], r1["pixels"]["front"])
    r0_again, _ = rand.reset(seed=0)
    np.testing.assert_array_equal(r0["pixels"]["front"], r0_again["pixels"]["front"])


def test_gym_make_registered_ids_with_max_episode_steps():
    for task, spec in TASKS.items():
        env = gym.make(f"lerobot_stamo/{task}", observation_height=HW, observation_width=HW)
        assert env.spec.max_episode_steps == spec.max_episode_steps
        obs, info = env.reset(seed=0)
        assert "is_success" in info
        env.close()


def test_env_config_for_lerobot_eval():
    from lerobot.envs.configs import EnvConfig
    from lerobot.envs.factory import make_env

    cfg = EnvConfig.get_choice_class("stamo_so101")(
        observation_height=HW, observation_width=HW, episode_length=7
    )
    assert cfg.features_map["pixels/wrist"] == "observation.images.wrist"
    assert cfg.features["pixels/front"].shape == (HW, HW, 3)
    envs = make_env(cfg, n_envs=1)
    vec = envs["stamo_so101"][0]
    assert vec.call("_max_episode_steps")[0] == 7
    obs, info = vec.reset(seed=[0])
    assert obs["pixels"]["front"].shape == (1, HW, HW, 3)
    vec.close()
    with pytest.raises(ValueError, match="PickCube"):
        EnvConfig.get_choice_class("stamo_so101")(task="pickcube")


def test_headless_rendering_even_when_mujoco_was_imported_first():
    """LeRobot may import another MuJoCo plug-in first: rendering must still pick EGL/OSMesa, not GLFW."""
    import os
    import subprocess
    import sys

    code = (
        "import mujoco, os\n"
        "from lerobot_stamo.envs import SO101SimEnv\n"
        "env = SO101SimEnv(observation_height=16, observation_width=16)\n"
        "obs, _ = env.reset(seed=0)\n"
        "print(os.environ['MUJOCO_GL'], obs['pixels']['front'].std() > 0)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    backend, rendered = proc.stdout.split()
    assert backend in ("egl", "osmesa") and rendered == "True"
