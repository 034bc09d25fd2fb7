#!/usr/bin/env bash
# Distributed evaluation with torchrun.
#   single node:  tools/dist_test.sh CONFIG CHECKPOINT NGPUS [test.py args...]
#   multi-node:   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 tools/dist_test.sh CONFIG CKPT 8 ...
# Without CUDA the processes use gloo (NGPUS = number of CPU processes). PYTHON: the interpreter (default: python).
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NGPUS=$3
shift 3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
cd "$(dirname "$0")/.."
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NGPUS" --master_port="$PORT" \
    tools/test.py "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
