#!/usr/bin/env bash
# Record expert episodes on the simulated SO-101, train the tiny StaMo autoencoder on them (CPU, offline),
# decode an interpolation strip between two frames of an episode.
#   bash examples/01_train_stamo.sh          # ~50 min on a laptop CPU; EPISODES, STEPS, SIZE, OUT to change
source "$(dirname "$0")/_common.sh"

lerobot-stamo-sim-record --repo_id=local/so101_pickcube --root="$OUT/data/so101_pickcube" --task=PickCube \
  --num_episodes="${EPISODES:-50}" --observation_height="$SIZE" --observation_width="$SIZE" \
  --use_videos=false --overwrite=true

# tiny random DINOv2 + SD3 parts (the `paper`/`small` presets use the real ones from the Hub instead)
python -m lerobot_stamo.policies.stamo.tiny "$OUT/stamo_tiny_pretrained" --fit_vae_steps="${FIT_VAE_STEPS:-1500}"

STEPS=${STEPS:-2000}
rm -rf "$OUT/stamo"                           # lerobot-train refuses an existing run folder
lerobot-train --config_path="$CONFIGS/stamo_tiny.json" \
  --policy.backbone="$OUT/stamo_tiny_pretrained/dinov2" --policy.decoder_path="$OUT/stamo_tiny_pretrained/sd3" \
  --policy.device="$DEVICE" --dataset.repo_id=local/so101_pickcube --dataset.root="$OUT/data/so101_pickcube" \
  --steps="$STEPS" --save_freq="$STEPS" --output_dir="$OUT/stamo" --wandb.enable=false

lerobot-stamo-interpolate --policy.path="$STAMO" \
  --dataset.repo_id=local/so101_pickcube --dataset.root="$OUT/data/so101_pickcube" --dataset.episode=0 \
  --steps=6 --output_dir="$OUT/interpolation"
echo "stamo checkpoint: $STAMO (reconstructions.png inside); interpolation: $OUT/interpolation"
