// Block-sparse attention of the local queries on CPU (float32), registered as torch.ops.svitt_mm.*.
//
// Local query block m attends to the C keys key_index[m, :] (global keys first, then its key blocks;
// -1 where nothing is read). Each (batch, head, block) task copies its keys and values into a small
// buffer that stays in cache, runs two BLAS products on it and a softmax in between, and writes its
// outputs in place: nothing of size [M, C, D] is ever materialised, unlike a gathered-tensor path.
//
// Layouts: q, k, v [B, H, N, D] with unit stride in D (any other strides); key_index int32 [M, C];
// mask (optional) float32 [B, H, M, bs, C] with unit stride in C (broadcast dimensions have stride 0);
// out and grad_out token-major [B, L, H, D] (L = N - G local queries), lse [B, H, L].
#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <tuple>
#include <vector>

// BLAS single-precision GEMM (Fortran interface; torch's CPU library exports it).
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                       const float* beta, float* c, const int* ldc);

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Row-major C[m, n] = alpha * op(A) op(B) + beta * C, where op(A) is [m, k] (A stored [k, m] when
// trans_a) and op(B) is [k, n] (B stored [n, k] when trans_b). Column-major BLAS computes C^T.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const char ta = trans_b ? 'T' : 'N', tb = trans_a ? 'T' : 'N';
  const int mi = n, ni = m, ki = k, la = ldb, lb = lda, lc = ldc;
  sgemm_(&ta, &tb, &mi, &ni, &ki, &alpha, b, &la, a, &lb, &beta, c, &lc);
}

// exp(x) for x <= 0 (-inf included), in a form compilers vectorise: 2^n * p(r) with |r| <= ln(2) / 2
// and a degree-6 polynomial (relative error about 2e-7); inputs below -87 give about 1.6e-38.
inline float exp_nonpositive(float x) {
  x = x < -87.0f ? -87.0f : x;
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  union {
    int32_t bits;
    float value;
  } power;
  power.bits = (static_cast<int32_t>(n) + 127) << 23;
  return (p * r * r + r + 1.0f) * power.value;
}

struct Problem {
  int64_t batch, heads, dim, blocks, columns, block_size, num_global, num_local;
  float scale;
  const float *q, *k, *v, *mask;
  const int32_t* key_index;
  int64_t q_stride[3], k_stride[3], v_stride[3], mask_stride[4];

  Problem(const at::Tensor& q_, const at::Tensor& k_, const at::Tensor& v_, const at::Tensor& key_index_,
          const c10::optional<at::Tensor>& mask_, int64_t num_global_, int64_t block_size_) {
    TORCH_CHECK(q_.dim() == 4 && q_.sizes() == k_.sizes() && q_.sizes() == v_.sizes(),
                "block_sparse_cpu: q, k, v must share one shape [B, H, N, D]");
    for (const at::Tensor* t : {&q_, &k_, &v_}) {
      TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == at::kFloat && t->stride(3) == 1,
                  "block_sparse_cpu: q, k, v must be float32 CPU tensors with unit stride in D");
    }
    TORCH_CHECK(key_index_.scalar_type() == at::kInt && key_index_.dim() == 2 && key_index_.is_contiguous(),
                "block_sparse_cpu: key_index must be a contiguous int32 [M, C] table");
    batch = q_.size(0), heads = q_.size(1), dim = q_.size(3);
    blocks = key_index_.size(0), columns = key_index_.size(1);
    block_size = block_size_, num_global = num_global_, num_local = q_.size(2) - num_global_;
    TORCH_CHECK(blocks * block_size >= num_local && (blocks - 1) * block_size < num_local,
                "block_sparse_cpu: ", blocks, " blocks of ", block_size, " do not cover ", num_local,
                " local queries");
    scale = 1.0f / std::sqrt(static_cast<float>(dim));
    q = q_.data_ptr<float>(), k = k_.data_ptr<float>(), v = v_.data_ptr<float>();
    key_index = key_index_.data_ptr<int32_t>();
    for (int d = 0; d < 3; ++d) {
      q_stride[d] = q_.stride(d), k_stride[d] = k_.stride(d), v_stride[d] = v_.stride(d);
    }
    mask = nullptr;
    if (mask_.has_value()) {
      const at::Tensor& m = *mask_;
      TORCH_CHECK(m.scalar_type() == at::kFloat && m.dim() == 5 && m.size(0) == batch && m.size(1) == heads &&
                      m.size(2) == blocks && m.size(3) == block_size && m.size(4) == columns && m.stride(4) == 1,
                  "block_sparse_cpu: mask must be float32 [B, H, M, bs, C] with unit stride in C");
      mask = m.data_ptr<float>();
      for (int d = 0; d < 4; ++d) mask_stride[d] = m.stride(d);
    }
  }

  int64_t rows(int64_t block) const { return std::min(block_size, num_local - block * block_size); }
  const float* query(int64_t b, int64_t h, int64_t block) const {
    return q + b * q_stride[0] + h * q_stride[1] + (num_global + block * block_size) * q_stride[2];
  }
  const float* mask_row(int64_t b, int64_t h, int64_t block, int64_t row) const {
    return mask + b * mask_stride[0] + h * mask_stride[1] + block * mask_stride[2] + row * mask_stride[3];
  }
};

// Per-thread scratch of one query block: its keys and values [C, D], a column mask [C] (0 or -inf),
// the [bs, C] logits / probabilities (plus their gradient in the backward pass), and one value per row
// (the inverse softmax sum in the forward pass, dO_i . O_i in the backward pass).
struct Scratch {
  std::vector<float> keys, values, column_mask, pairs, pair_grads, row_values;
  bool complete = true;  // the block reads every column (no -1 in its key_index row)
  Scratch(const Problem& p, bool backward)
      : keys(p.columns * p.dim), values(p.columns * p.dim), column_mask(p.columns),
        pairs(p.block_size * p.columns), pair_grads(backward ? p.block_size * p.columns : 0),
        row_values(p.block_size) {}

  // Copy block `block`'s keys and values of (b, h); unread columns become zero rows masked with -inf.
  void gather(const Problem& p, int64_t b, int64_t h, int64_t block) {
    const int32_t* index = p.key_index + block * p.columns;
    const float* k = p.k + b * p.k_stride[0] + h * p.k_stride[1];
    const float* v = p.v + b * p.v_stride[0] + h * p.v_stride[1];
    complete = true;
    for (int64_t c = 0; c < p.columns; ++c) {
      const int32_t token = index[c];
      column_mask[c] = token < 0 ? kNegInf : 0.0f;
      complete = complete && token >= 0;
      if (token < 0) {
        std::fill_n(&keys[c * p.dim], p.dim, 0.0f);
        std::fill_n(&values[c * p.dim], p.dim, 0.0f);
      } else {
        std::memcpy(&keys[c * p.dim], k + token * p.k_stride[2], p.dim * sizeof(float));
        std::memcpy(&values[c * p.dim], v + token * p.v_stride[2], p.dim * sizeof(float));
      }
    }
  }

  // pairs[i, :] = scale * q_i . keys + column mask + mask row i, for the block's rows (the additions that
  // change nothing are skipped).
  void logits(const Problem& p, int64_t b, int64_t h, int64_t block, int64_t rows) {
    gemm(false, true, rows, p.columns, p.dim, p.scale, p.query(b, h, block), p.q_stride[2], keys.data(), p.dim,
         0.0f, pairs.data(), p.columns);
    if (!p.mask && complete) return;
    const float* columns = column_mask.data();
    for (int64_t i = 0; i < rows; ++i) {
      float* row = &pairs[i * p.columns];
      const float* extra = p.mask ? p.mask_row(b, h, block, i) : columns;
      if (p.mask && !complete) {
#pragma omp simd
        for (int64_t c = 0; c < p.columns; ++c) row[c] += columns[c] + extra[c];
      } else {
#pragma omp simd
        for (int64_t c = 0; c < p.columns; ++c) row[c] += extra[c];
      }
    }
  }
};

void local_forward(const Problem& p, float* out, float* lse) {
  at::parallel_for(0, p.batch * p.heads * p.blocks, 1, [&](int64_t begin, int64_t end) {
    Scratch scratch(p, false);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t block = task % p.blocks, h = task / p.blocks % p.heads, b = task / (p.blocks * p.heads);
      const int64_t rows = p.rows(block), first = block * p.block_size;
      scratch.gather(p, b, h, block);
      scratch.logits(p, b, h, block, rows);
      float* inverse_sum = scratch.row_values.data();
      for (int64_t i = 0; i < rows; ++i) {
        float* row = &scratch.pairs[i * p.columns];
        float top = kNegInf;
#pragma omp simd reduction(max : top)
        for (int64_t c = 0; c < p.columns; ++c) top = row[c] > top ? row[c] : top;
        const bool empty = top == kNegInf;  // every key masked: output 0, lse -inf
        const float shift = empty ? 0.0f : top;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t c = 0; c < p.columns; ++c) {
          row[c] = exp_nonpositive(row[c] - shift);
          sum += row[c];
        }
        inverse_sum[i] = empty ? 0.0f : 1.0f / sum;
        lse[(b * p.heads + h) * p.num_local + first + i] = empty ? kNegInf : shift + std::log(sum);
      }
      float* block_out = out + ((b * p.num_local + first) * p.heads + h) * p.dim;
      const int64_t out_stride = p.heads * p.dim;
      gemm(false, false, rows, p.dim, p.columns, 1.0f, scratch.pairs.data(), p.columns, scratch.values.data(),
           p.dim, 0.0f, block_out, out_stride);
      for (int64_t i = 0; i < rows; ++i) {
        float* row = block_out + i * out_stride;
        const float factor = inverse_sum[i];
#pragma omp simd
        for (int64_t d = 0; d < p.dim; ++d) row[d] *= factor;
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> block_sparse_forward(const at::Tensor& q, const at::Tensor& k,
                                                         const at::Tensor& v, const at::Tensor& key_index,
                                                         const c10::optional<at::Tensor>& mask,
                                                         int64_t num_global, int64_t block_size) {
  const Problem p(q, k, v, key_index, mask, num_global, block_size);
  at::Tensor out = at::empty({p.batch, p.num_local, p.heads, p.dim}, q.options());
  at::Tensor lse = at::empty({p.batch, p.heads, p.num_local}, q.options());
  local_forward(p, out.data_ptr<float>(), lse.data_ptr<float>());
  return {out, lse};
}

// Gradients of the local-query outputs. One task per (batch, head) walks its blocks in order, so that the
// key and value gradients it scatters never race with another task's.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> block_sparse_backward(
    const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& out, const at::Tensor& lse, const at::Tensor& key_index,
    const c10::optional<at::Tensor>& mask, int64_t num_global, int64_t block_size, bool mask_grad) {
  const Problem p(q, k, v, key_index, mask, num_global, block_size);
  TORCH_CHECK(grad_out.is_contiguous() && out.is_contiguous() && lse.is_contiguous() &&
                  grad_out.sizes() == out.sizes(),
              "block_sparse_cpu: grad_out, out and lse must be contiguous, grad_out shaped like out");
  at::Tensor grad_q = at::empty(q.sizes(), q.options());  // every local row is written below
  grad_q.narrow(2, 0, p.num_global).zero_();
  at::Tensor grad_k = at::zeros(k.sizes(), k.options());
  at::Tensor grad_v = at::zeros(v.sizes(), v.options());
  at::Tensor grad_pairs = mask_grad ? at::zeros({p.batch, p.heads, p.blocks, p.block_size, p.columns}, q.options())
                                    : at::Tensor();
  const float *dout = grad_out.data_ptr<float>(), *o = out.data_ptr<float>(), *l = lse.data_ptr<float>();
  float *dq = grad_q.data_ptr<float>(), *dk = grad_k.data_ptr<float>(), *dv = grad_v.data_ptr<float>();
  float* dpairs = mask_grad ? grad_pairs.data_ptr<float>() : nullptr;
  const int64_t n = q.size(2), token_stride = p.heads * p.dim;

  at::parallel_for(0, p.batch * p.heads, 1, [&](int64_t begin, int64_t end) {
    Scratch scratch(p, true);
    std::vector<float> key_grads(p.columns * p.dim), value_grads(p.columns * p.dim);
    float* delta = scratch.row_values.data();
    for (int64_t task = begin; task < end; ++task) {
      const int64_t h = task % p.heads, b = task / p.heads;
      const int64_t head_offset = (b * p.heads + h) * n * p.dim;
      for (int64_t block = 0; block < p.blocks; ++block) {
        const int64_t rows = p.rows(block), first = block * p.block_size;
        const float* block_dout = dout + ((b * p.num_local + first) * p.heads + h) * p.dim;
        const float* block_out = o + ((b * p.num_local + first) * p.heads + h) * p.dim;
        const float* block_lse = l + (b * p.heads + h) * p.num_local + first;
        scratch.gather(p, b, h, block);
        scratch.logits(p, b, h, block, rows);
        // probabilities from the saved log-sum-exp; delta_i = dO_i . O_i
        for (int64_t i = 0; i < rows; ++i) {
          float* row = &scratch.pairs[i * p.columns];
          const float shift = block_lse[i];
          if (shift == kNegInf) {
            std::fill_n(row, p.columns, 0.0f);
          } else {
#pragma omp simd
            for (int64_t c = 0; c < p.columns; ++c) row[c] = exp_nonpositive(row[c] - shift);
          }
          float dot = 0.0f;
          const float *go = block_dout + i * token_stride, *oo = block_out + i * token_stride;
#pragma omp simd reduction(+ : dot)
          for (int64_t d = 0; d < p.dim; ++d) dot += go[d] * oo[d];
          delta[i] = dot;
        }
        // dP = dO V^T, then dS = P * (dP - delta)
        gemm(false, true, rows, p.columns, p.dim, 1.0f, block_dout, token_stride, scratch.values.data(), p.dim,
             0.0f, scratch.pair_grads.data(), p.columns);
        for (int64_t i = 0; i < rows; ++i) {
          const float* prob = &scratch.pairs[i * p.columns];
          float* grad = &scratch.pair_grads[i * p.columns];
          const float d_i = delta[i];
#pragma omp simd
          for (int64_t c = 0; c < p.columns; ++c) grad[c] = prob[c] * (grad[c] - d_i);
          if (dpairs) {
            std::memcpy(dpairs + (((b * p.heads + h) * p.blocks + block) * p.block_size + i) * p.columns, grad,
                        p.columns * sizeof(float));
          }
        }
        // dQ = scale dS K, dK = scale dS^T Q, dV = P^T dO
        const float* query = p.query(b, h, block);
        float* block_dq = dq + head_offset + (p.num_global + first) * p.dim;
        gemm(false, false, rows, p.dim, p.columns, p.scale, scratch.pair_grads.data(), p.columns,
             scratch.keys.data(), p.dim, 0.0f, block_dq, p.dim);
        gemm(true, false, p.columns, p.dim, rows, p.scale, scratch.pair_grads.data(), p.columns, query,
             p.q_stride[2], 0.0f, key_grads.data(), p.dim);
        gemm(true, false, p.columns, p.dim, rows, 1.0f, scratch.pairs.data(), p.columns, block_dout, token_stride,
             0.0f, value_grads.data(), p.dim);
        const int32_t* index = p.key_index + block * p.columns;
        for (int64_t c = 0; c < p.columns; ++c) {
          if (index[c] < 0) continue;
          float* key_row = dk + head_offset + index[c] * p.dim;
          float* value_row = dv + head_offset + index[c] * p.dim;
          const float *kg = &key_grads[c * p.dim], *vg = &value_grads[c * p.dim];
#pragma omp simd
          for (int64_t d = 0; d < p.dim; ++d) {
            key_row[d] += kg[d];
            value_row[d] += vg[d];
          }
        }
      }
    }
  });
  return {grad_q, grad_k, grad_v, grad_pairs};
}

}  // namespace

TORCH_LIBRARY(svitt_mm, m) {
  m.def("block_sparse_forward(Tensor q, Tensor k, Tensor v, Tensor key_index, Tensor? mask, int num_global, "
        "int block_size) -> (Tensor, Tensor)");
  m.def("block_sparse_backward(Tensor grad_out, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, "
        "Tensor key_index, Tensor? mask, int num_global, int block_size, bool mask_grad) "
        "-> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(svitt_mm, CPU, m) {
  m.impl("block_sparse_forward", &block_sparse_forward);
  m.impl("block_sparse_backward", &block_sparse_backward);
}
