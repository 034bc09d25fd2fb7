#!/usr/bin/env bash
# The GPU checks in one run (docs/benchmarks.md, "GPU"): the attention-layer benchmark in bfloat16 against
# dense SDPA, the CUDA correctness tests of the sparse operators, then the video-encoder benchmarks.
#   bash tools/benchmark_gpu.sh [OUT_DIR]      (PYTHON=python3 to choose the interpreter)
# Each step has its own time limit, so that one slow compilation cannot take the others' time.
set -u
out=${1:-work_dirs/bench_gpu}
python=${PYTHON:-python}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1

step() {  # step SECONDS NAME COMMAND...
    local limit=$1 name=$2 start=$SECONDS
    shift 2
    echo "=== $name (limit ${limit}s)"
    timeout "$limit" "$@"
    echo "=== $name: exit $? after $((SECONDS - start))s"
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
"$python" -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__)'
step 150 'attention layer, bf16, batch 8' "$python" tools/benchmark.py --op --device cuda --dtype bfloat16 \
    --frames 4 8 16 --backward --batch-size 8 --warmup 3 --repeats 20 \
    --ops BlockSparseAttention FlexBlockSparseAttention TritonBlockSparseAttention --out "$out/op_bf16.json" \
    --plot "$out/op_bf16.png"
step 150 'CUDA tests' "$python" -m pytest -q -p no:cacheprovider -rs tests/models/attention \
    tests/models/backbones/test_video_beit_flex.py tests/models/backbones/test_video_beit_kernels.py \
    tests/models/text/test_bert_layers.py \
    tests/models/test_data_preprocessor.py
step 270 'block patterns x backends: conformance in fp32/bf16, a plugin pattern through Triton timed' \
    "$python" tools/gpu_checks/attention_backends_cuda.py --out "$out/attention_backends_cuda.json"
step 90 'encoders, bf16, batch 4' "$python" tools/benchmark.py configs/dense_16f.py configs/svitt_16f.py \
    configs/svitt_16f_triton.py \
    --device cuda --dtype bfloat16 --frames 8 16 --backward --batch-size 4 --warmup 2 --repeats 10 \
    --out "$out/encoder_bf16.json" --plot "$out/encoder_bf16.png"
# 785 tokens per clip: at batch 4 both encoders are bound by kernel launches; batch 32 fills the GPU.
step 60 'encoders, bf16, batch 32, 4 frames' "$python" tools/benchmark.py configs/dense_4f.py configs/svitt_4f.py \
    --device cuda --dtype bfloat16 --frames 4 --backward --batch-size 32 --warmup 2 --repeats 10 \
    --out "$out/encoder_4f_b32_bf16.json"
step 80 'encoders with flex, bf16, batch 4, 16 frames, forward' "$python" tools/benchmark.py \
    configs/dense_16f.py configs/svitt_16f.py configs/svitt_16f_flex.py --device cuda --dtype bfloat16 \
    --frames 16 --batch-size 4 --warmup 2 --repeats 10 --out "$out/encoder_flex_bf16.json"
# Issue 21: the GPU targets against the strong dense baseline (FusedBiasDenseAttention in configs/dense_*f.py).
step 120 'issue 21: attention layer, 16 frames, batch 8, bf16, Triton vs flash' "$python" tools/benchmark.py \
    --op --device cuda --dtype bfloat16 --frames 16 --backward --batch-size 8 --warmup 3 --repeats 20 \
    --ops TritonBlockSparseAttention --out "$out/issue21_op_16f_b8_bf16.json"
step 120 'issue 21: layer with relative position bias: strong dense (flex) vs old dense vs Triton' \
    "$python" tools/benchmark.py --op --bias --device cuda --dtype bfloat16 --frames 16 --backward \
    --batch-size 8 --warmup 3 --repeats 10 --dense FusedBiasDenseAttention DenseAttention \
    --ops TritonBlockSparseAttention --out "$out/issue21_op_bias_16f_b8_bf16.json"
step 240 'issue 21: training step, 16 frames, batch 8, bf16, SViTT (Triton) vs strong dense' \
    "$python" tools/benchmark.py --train-step configs/dense_16f.py configs/svitt_16f_triton.py --device cuda \
    --amp --frames 16 --batch-size 8 --warmup 2 --repeats 5 --peak-tflops 989 --out "$out/issue21_step_16f_b8.json"
step 90 'issue 21: SViTT encoders eager, bf16, batch 4, 16 frames' "$python" tools/benchmark.py \
    configs/svitt_16f.py configs/svitt_16f_triton.py --device cuda --dtype bfloat16 --frames 16 --batch-size 4 \
    --warmup 2 --repeats 10 --out "$out/issue21_encoder_eager.json"
step 240 'issue 21: SViTT encoders torch.compile, bf16, batch 4, 16 frames' "$python" tools/benchmark.py \
    configs/svitt_16f.py configs/svitt_16f_triton.py --device cuda --dtype bfloat16 --frames 16 --batch-size 4 \
    --warmup 2 --repeats 10 --compile --out "$out/issue21_encoder_compiled.json"
"$python" tools/gpu_checks/issue21_targets.py --op "$out/issue21_op_16f_b8_bf16.json" \
    --step "$out/issue21_step_16f_b8.json" --compiled "$out/issue21_encoder_compiled.json" \
    --eager "$out/issue21_encoder_eager.json" --out "$out/issue21_targets.json"
