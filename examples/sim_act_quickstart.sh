#!/usr/bin/env bash
# Record expert demonstrations on the simulated SO-101, train LeRobot's ACT on them, evaluate it.
# CPU-friendly sizes; raise EPISODES / STEPS for a policy that actually succeeds (SIZE, EVAL_EPISODES, OUT, DEVICE too).
set -euo pipefail
export MUJOCO_GL=${MUJOCO_GL:-egl}
OUT=${OUT:-outputs/sim_act}
SIZE=${SIZE:-96}

lerobot-stamo-sim-record --repo_id=local/so101_pickcube --root="$OUT/data" --task=PickCube \
  --num_episodes=${EPISODES:-20} --observation_height=$SIZE --observation_width=$SIZE --overwrite=true

rm -rf "$OUT/train" "$OUT/eval"   # lerobot-train refuses an existing run folder
lerobot-train --policy.type=act --policy.push_to_hub=false --policy.device=${DEVICE:-cpu} \
  --dataset.repo_id=local/so101_pickcube --dataset.root="$OUT/data" \
  --steps=${STEPS:-2000} --batch_size=8 --save_freq=${STEPS:-2000} --output_dir="$OUT/train" \
  --wandb.enable=false

lerobot-eval --policy.path="$OUT/train/checkpoints/last/pretrained_model" --env.type=stamo_so101 \
  --env.task=PickCube --env.observation_height=$SIZE --env.observation_width=$SIZE \
  --eval.n_episodes=${EVAL_EPISODES:-10} --eval.batch_size=1 --eval.use_async_envs=false --policy.device=${DEVICE:-cpu} --output_dir="$OUT/eval"
