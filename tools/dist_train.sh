#!/usr/bin/env bash
# Distributed training with torchrun (one process per GPU; without CUDA, CPU processes over gloo).
#   one node:    tools/dist_train.sh CONFIG NGPUS [train.py args...]
#   many nodes:  run on every node, with NODE_RANK = 0 .. NNODES-1 and node 0's address:
#                NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 tools/dist_train.sh CONFIG 8 [args...]
#                NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 PORT=29500 tools/dist_train.sh CONFIG 8 [args...]
#   PYTHON: the interpreter (default: python). The work dir must be one shared directory for all nodes:
#   rank 0 writes the checkpoints, and on --resume every rank reads one. docs/scaling.md has the details.
set -euo pipefail
CONFIG=$1
NGPUS=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
cd "$(dirname "$0")/.."
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NGPUS" --master_port="$PORT" \
    tools/train.py "$CONFIG" --launcher pytorch "$@"
