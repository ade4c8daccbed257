#!/usr/bin/env bash
# Label action-free video with StaMo latent motion: the pseudo-action columns
# observation.stamo_state.<cam>, observation.stamo_motion.<cam> and observation.stamo_motion_valid.
#   bash examples/02_label_video.sh          # after 01_train_stamo.sh (or STAMO=<any stamo checkpoint>)
source "$(dirname "$0")/_common.sh"

# unlabelled video: frames and task only, no actions (other seeds than the robot episodes)
lerobot-stamo-sim-record --repo_id=local/so101_video --root="$OUT/data/so101_video" --task=PickCube \
  --num_episodes="${VIDEO_EPISODES:-40}" --seed=5000 --video_only=true \
  --observation_height="$SIZE" --observation_width="$SIZE" --use_videos=false --overwrite=true

lerobot-stamo-label --policy.path="$STAMO" --dataset.repo_id=local/so101_video \
  --dataset.root="$OUT/data/so101_video" --horizon="${HORIZON:-5}" \
  --repo_id=local/so101_video_stamo --output_dir="$OUT/data/so101_video_stamo" --overwrite=true
echo "labelled video: $OUT/data/so101_video_stamo (meta/stamo_labels.json names the checkpoint)"
