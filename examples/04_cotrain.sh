#!/usr/bin/env bash
# Co-train stamo_vla on a few robot episodes plus many StaMo-labelled videos, evaluate it.
#   bash examples/04_cotrain.sh               # after 02_label_video.sh and 03_train_eval_stamo_vla.sh
source "$(dirname "$0")/_common.sh"

# REAL robot episodes (with actions) + every labelled video episode, in one LeRobotDataset. --real_repeat
# writes each robot episode N times: lerobot-train samples frames uniformly, and at 10 : 40 only one frame
# in 5 would carry a real action (with 4: one in 2).
lerobot-stamo-cotrain --robot_root="$OUT/data/so101_pickcube_stamo" --video_root="$OUT/data/so101_video_stamo" \
  --real_per_task="${REAL:-10}" --real_repeat="${REAL_REPEAT:-4}" \
  --repo_id=local/so101_cotrain --output_dir="$OUT/data/so101_cotrain" --overwrite=true

STEPS=${STEPS:-3000}
rm -rf "$OUT/vla_cotrain" "$OUT/eval_vla_cotrain"
lerobot-train --config_path="$CONFIGS/stamo_vla_cotrain_sim.json" --policy.device="$DEVICE" \
  --dataset.repo_id=local/so101_cotrain --dataset.root="$OUT/data/so101_cotrain" \
  --steps="$STEPS" --save_freq="$STEPS" --output_dir="$OUT/vla_cotrain" --wandb.enable=false

lerobot-eval --policy.path="$OUT/vla_cotrain/checkpoints/last/pretrained_model" --policy.device="$DEVICE" \
  --env.type=stamo_so101 --env.task=PickCube --env.observation_height="$SIZE" --env.observation_width="$SIZE" \
  --eval.n_episodes="${EVAL_EPISODES:-50}" --eval.batch_size=1 --eval.use_async_envs=false --output_dir="$OUT/eval_vla_cotrain"
