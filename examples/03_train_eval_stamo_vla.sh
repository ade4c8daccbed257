#!/usr/bin/env bash
# Train stamo_vla (the `compact` trunk, CPU) with its StaMo world-model head on the labelled robot episodes,
# then evaluate it on the simulated arm with lerobot-eval.
#   bash examples/03_train_eval_stamo_vla.sh  # after 01_train_stamo.sh; STEPS, EVAL_EPISODES to change
source "$(dirname "$0")/_common.sh"

# the world-model targets: the robot episodes labelled once by the stamo
lerobot-stamo-label --policy.path="$STAMO" --dataset.repo_id=local/so101_pickcube \
  --dataset.root="$OUT/data/so101_pickcube" --horizon="${HORIZON:-5}" \
  --repo_id=local/so101_pickcube_stamo --output_dir="$OUT/data/so101_pickcube_stamo" --overwrite=true

STEPS=${STEPS:-3000}
rm -rf "$OUT/vla" "$OUT/eval_vla"
lerobot-train --config_path="$CONFIGS/stamo_vla_compact_sim.json" --policy.device="$DEVICE" \
  --dataset.repo_id=local/so101_pickcube_stamo --dataset.root="$OUT/data/so101_pickcube_stamo" \
  --steps="$STEPS" --save_freq="$STEPS" --output_dir="$OUT/vla" --wandb.enable=false

lerobot-eval --policy.path="$OUT/vla/checkpoints/last/pretrained_model" --policy.device="$DEVICE" \
  --env.type=stamo_so101 --env.task=PickCube --env.observation_height="$SIZE" --env.observation_width="$SIZE" \
  --eval.n_episodes="${EVAL_EPISODES:-50}" --eval.batch_size=1 --eval.use_async_envs=false --output_dir="$OUT/eval_vla"
