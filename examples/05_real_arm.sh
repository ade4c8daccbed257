#!/usr/bin/env bash
# A hobbyist's loop on a real SO-101 (for Koch: the *_koch.json files and --robot.type=stamo_koch):
# calibrate, record with the leader arm, label, train stamo_vla, drive the arm with real-time chunking.
# Needs the arms: pip install "lerobot_policy_stamo[hardware]". Find the ports with `lerobot-find-port`
# and the camera indices with `lerobot-find-cameras opencv`; cameras, task and ids are in the config files.
#   HF_USER=me FOLLOWER_PORT=/dev/ttyACM0 LEADER_PORT=/dev/ttyACM1 STAMO=<stamo checkpoint> bash examples/05_real_arm.sh
source "$(dirname "$0")/_common.sh"
: "${HF_USER:?set HF_USER}" "${FOLLOWER_PORT:?set FOLLOWER_PORT}" "${LEADER_PORT:?set LEADER_PORT}"

lerobot-calibrate --robot.type=stamo_so101 --robot.port="$FOLLOWER_PORT" --robot.id=my_follower
lerobot-calibrate --teleop.type=so101_leader --teleop.port="$LEADER_PORT" --teleop.id=my_leader

lerobot-record --config_path="$CONFIGS/record_so101.json" --robot.port="$FOLLOWER_PORT" \
  --teleop.port="$LEADER_PORT" --dataset.repo_id="$HF_USER/so101_pick_cube"

lerobot-stamo-label --policy.path="$STAMO" --dataset.repo_id="$HF_USER/so101_pick_cube" \
  --horizon=5 --output_dir="$OUT/data/so101_pick_cube_stamo"
lerobot-train --config_path="$CONFIGS/stamo_vla_compact_sim.json" --policy.resize_images=[224,224] \
  --policy.device="$DEVICE" --dataset.repo_id="$HF_USER/so101_pick_cube_stamo" \
  --dataset.root="$OUT/data/so101_pick_cube_stamo" --output_dir="$OUT/so101_vla"

lerobot-rollout --config_path="$CONFIGS/rollout_so101.json" --robot.port="$FOLLOWER_PORT" \
  --policy.path="$OUT/so101_vla/checkpoints/last/pretrained_model" --dataset.repo_id="$HF_USER/rollout_so101"
