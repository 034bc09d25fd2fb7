#!/usr/bin/env bash
# One GPU: train the SViTT demo model for ITERS steps plainly (fp32 and bf16 autocast), with --strategy fsdp
# (fp32 and bf16 autocast; torchrun, one process) and with --strategy deepspeed (ZeRO-2, bf16), all from the
# same initial weights and seed, then compare their loss curves with the plain runs (docs/scaling.md):
#   bash tools/gpu_checks/strategies.sh [OUT_DIR]       (ITERS=300, PYTHON=python by default)
# Writes OUT_DIR/strategies.json (tools/gpu_checks/compare_losses.py) and one work dir per run.
# DeepSpeed is not installed by `make setup`: the script installs requirements/deepspeed.txt first, from
# DEEPSPEED_WHEELS (a folder of downloaded wheels/sdists) when set, since a GPU machine may have no network.
set -u
out=${1:-work_dirs/gpu_strategies}
python=${PYTHON:-python}
iters=${ITERS:-300}
config=configs/demo/svitt_demo.py
data=data/demo/temporal_shapes
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
cd "$(dirname "$0")/../.."

nvidia-smi --query-gpu=name,memory.total --format=csv
[ -f "$data/train.json" ] || "$python" -m svitt_mm.datasets.demo "$data"
if ! "$python" -c 'import deepspeed' 2>/dev/null; then
    if [ -n "${DEEPSPEED_WHEELS:-}" ]; then
        "$python" -m pip install --quiet --no-index --find-links "$DEEPSPEED_WHEELS" -r requirements/deepspeed.txt
    else
        "$python" -m pip install --quiet -r requirements/deepspeed.txt
    fi || echo "deepspeed could not be installed: the deepspeed run will fail and say so in the JSON"
fi

# The same start for every run: the runners build the model at different points of the seeded random
# stream, so each run loads these weights (init_weights included: the MiniLM text encoder).
init="$out/init.pth"
"$python" - "$config" "$init" <<'PY'
import sys
import torch
from svitt_mm.apis import load_config, register_all_modules
from svitt_mm.registry import MODELS
register_all_modules()
model = MODELS.build(load_config(sys.argv[1]).model)
model.init_weights()
torch.save(dict(state_dict=model.state_dict(), meta=dict()), sys.argv[2])
PY
# The demo recipe by iterations: ITERS steps, a tenth of them warm-up, cosine to the end, every loss logged.
warmup=$(( (iters + 9) / 10 ))
cat > "$out/svitt_demo_iters.py" <<PY
_base_ = ['$(pwd)/$config']
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=$iters, val_interval=$iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=$warmup),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=False, begin=$warmup, end=$iters)]
log_processor = dict(by_epoch=False)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval=$iters))
load_from = '$init'
PY
config="$out/svitt_demo_iters.py"
options=(train_dataloader.dataset.ann_file=$data/train.json train_dataloader.dataset.media_root=$data/videos
         val_dataloader.dataset.ann_file=$data/test.json val_dataloader.dataset.media_root=$data/videos
         test_dataloader.dataset.ann_file=$data/test.json test_dataloader.dataset.media_root=$data/videos)
run() {  # run NAME LIMIT COMMAND...
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    echo "=== $name"
    timeout "$limit" "$@" --work-dir "$out/$name" --cfg-options "${options[@]}" > "$out/$name.log" 2>&1
    echo "=== $name: exit $? after $((SECONDS - start))s"; tail -n 3 "$out/$name.log"
}
torchrun=("$python" -m torch.distributed.run --nproc_per_node=1 --master_port=29561 tools/train.py "$config"
          --launcher pytorch)
run plain 240 "$python" tools/train.py "$config"
run plain_bf16 240 "$python" tools/train.py "$config" --amp
run fsdp 240 "${torchrun[@]}" --strategy fsdp
run fsdp_bf16 240 "${torchrun[@]}" --strategy fsdp --amp
run deepspeed 300 "${torchrun[@]}" --strategy deepspeed
"$python" tools/gpu_checks/compare_losses.py "$out" --reference plain --runs plain_bf16 fsdp fsdp_bf16 deepspeed \
    --bf16-reference plain_bf16 --out "$out/strategies.json"
