# Shared by the numbered examples (sourced, not run): where outputs go and where the presets are.
# The examples chain: 01 trains a stamo, 02 labels video with it, 03 trains stamo_vla, 04 co-trains.
set -euo pipefail
export MUJOCO_GL=${MUJOCO_GL:-egl}            # headless MuJoCo rendering
OUT=${OUT:-outputs/examples}                 # every example writes under here
SIZE=${SIZE:-96}                             # camera height and width of the recorded datasets
DEVICE=${DEVICE:-cpu}                        # cpu, or cuda on a GPU
# The ready-made configs ship inside the package (configs/ in a clone is a link to the same folder).
CONFIGS=${CONFIGS:-$(python -c "import lerobot_stamo, pathlib; print(pathlib.Path(lerobot_stamo.__file__).parent / 'configs')")}
STAMO=${STAMO:-$OUT/stamo/checkpoints/last/pretrained_model}   # the stamo checkpoint of 01_train_stamo.sh
