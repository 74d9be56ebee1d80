// Fused CPU kernels for DSSM training in TensorFlow (built by `python -m dssm.native`, loaded by
// dssm/native/__init__.py; without them dssm/tower.py falls back to TensorFlow's own ops).
//
// DssmEmbeddingBag      ids int32 [batch, length] (0 = padding), table float [rows, dim]
//                       -> float [batch, dim]: sum of the rows of a bag's non-padding ids / sqrt(their number)
//                       (docs/FORMAT.md 2.2; zero for a bag with no ids). tf.sparse.segment_sqrt_n computes
//                       the same single-threaded; here the bags are shared over the intra-op threads.
// DssmEmbeddingBagGrad  upstream float [batch, dim], ids, rows (scalar) -> (touched int32 [u] ascending,
//                       values float [u, dim]): the gradient of the bag with respect to the touched table rows,
//                       values[i] = sum over occurrences of touched[i] in bag b of upstream[b] / sqrt(n_b).
//                       The occurrences are counting-sorted by id (stably) and each thread sums whole rows,
//                       so each value is written once and the sums keep the bags' order: deterministic.
// DssmSparseAdam        var, m, v (resource variables [rows, dim]), touched int32 [n], values float [n, dim],
//                       alpha, beta_1, beta_2, epsilon (scalars): Adam's update of the touched rows only
//                       ("lazy" Adam), in place, in one pass over each row. A row may repeat: its gradient is
//                       the sum of its slices (in their order).
#include <algorithm>
#include <cmath>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_var.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

using namespace tensorflow;  // NOLINT: the kernel macros expect it

REGISTER_OP("DssmEmbeddingBag")
    .Input("table: float")
    .Input("ids: int32")
    .Output("bags: float")
    .SetShapeFn([](shape_inference::InferenceContext* c) {
      c->set_output(0, c->Matrix(c->Dim(c->input(1), 0), c->Dim(c->input(0), 1)));
      return OkStatus();
    });

REGISTER_OP("DssmEmbeddingBagGrad")
    .Input("upstream: float")
    .Input("ids: int32")
    .Input("rows: int32")
    .Output("touched: int32")
    .Output("values: float")
    .SetShapeFn([](shape_inference::InferenceContext* c) {
      c->set_output(0, c->Vector(c->UnknownDim()));
      c->set_output(1, c->Matrix(c->UnknownDim(), c->Dim(c->input(0), 1)));
      return OkStatus();
    });

REGISTER_OP("DssmSparseAdam")
    .Input("var: resource")
    .Input("m: resource")
    .Input("v: resource")
    .Input("touched: int32")
    .Input("values: float")
    .Input("alpha: float")
    .Input("beta_1: float")
    .Input("beta_2: float")
    .Input("epsilon: float")
    .SetIsStateful()
    .SetShapeFn([](shape_inference::InferenceContext* c) { return OkStatus(); });

namespace {

// The count of non-padding ids of each bag, and 1 / sqrt(max(count, 1)).
std::vector<float> BagScales(const int32* ids, int64 batch, int64 length) {
  std::vector<float> scale(batch);
  for (int64 b = 0; b < batch; ++b) {
    int64 count = 0;
    for (int64 l = 0; l < length; ++l) count += ids[b * length + l] > 0;
    scale[b] = 1.0f / std::sqrt(static_cast<float>(count > 0 ? count : 1));
  }
  return scale;
}

Status CheckIds(const Tensor& ids, int64 rows) {
  if (ids.dims() != 2) return errors::InvalidArgument("ids must be [batch, length], got ", ids.shape().DebugString());
  auto flat = ids.flat<int32>();
  for (int64 i = 0; i < flat.size(); ++i) {
    if (flat(i) < 0 || flat(i) >= rows) {
      return errors::InvalidArgument("id ", flat(i), " is outside the table's ", rows, " rows");
    }
  }
  return OkStatus();
}

class EmbeddingBagOp : public OpKernel {
 public:
  explicit EmbeddingBagOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& table = context->input(0);
    const Tensor& ids = context->input(1);
    OP_REQUIRES(context, table.dims() == 2, errors::InvalidArgument("table must be [rows, dim]"));
    OP_REQUIRES_OK(context, CheckIds(ids, table.dim_size(0)));
    const int64 batch = ids.dim_size(0), length = ids.dim_size(1), dim = table.dim_size(1);
    Tensor* out = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, TensorShape({batch, dim}), &out));
    const float* rows = table.flat<float>().data();
    const int32* id = ids.flat<int32>().data();
    float* bags = out->flat<float>().data();
    auto work = [&](int64 begin, int64 end) {
      for (int64 b = begin; b < end; ++b) {
        float* __restrict__ acc = bags + b * dim;
        for (int64 d = 0; d < dim; ++d) acc[d] = 0.0f;
        int64 count = 0;
        for (int64 l = 0; l < length; ++l) {
          const int32 i = id[b * length + l];
          if (i <= 0) continue;
          const float* __restrict__ row = rows + static_cast<int64>(i) * dim;
          for (int64 d = 0; d < dim; ++d) acc[d] += row[d];
          ++count;
        }
        if (count > 1) {
          const float scale = 1.0f / std::sqrt(static_cast<float>(count));
          for (int64 d = 0; d < dim; ++d) acc[d] *= scale;
        }
      }
    };
    auto pool = context->device()->tensorflow_cpu_worker_threads();
    Shard(pool->num_threads, pool->workers, batch, length * dim, work);
  }
};

class EmbeddingBagGradOp : public OpKernel {
 public:
  explicit EmbeddingBagGradOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& upstream = context->input(0);
    const Tensor& ids = context->input(1);
    const int64 rows = context->input(2).scalar<int32>()();
    OP_REQUIRES(context, upstream.dims() == 2 && upstream.dim_size(0) == ids.dim_size(0),
                errors::InvalidArgument("upstream must be [batch, dim] with the batch of ids"));
    OP_REQUIRES_OK(context, CheckIds(ids, rows));
    const int64 batch = ids.dim_size(0), length = ids.dim_size(1), dim = upstream.dim_size(1);
    const int32* id = ids.flat<int32>().data();
    const float* up = upstream.flat<float>().data();

    // A counting sort of the occurrences by id, stable, so each touched row's sum keeps bag order.
    std::vector<int64> start(rows + 1, 0);
    for (int64 i = 0; i < batch * length; ++i) if (id[i] > 0) ++start[id[i] + 1];
    int64 touched_count = 0;
    for (int64 r = 1; r <= rows; ++r) {
      touched_count += start[r] > 0;
      start[r] += start[r - 1];
    }
    std::vector<int32> bag_of(start[rows]);
    {
      std::vector<int64> next(start.begin(), start.end() - 1);
      for (int64 b = 0; b < batch; ++b) {
        for (int64 l = 0; l < length; ++l) {
          const int32 i = id[b * length + l];
          if (i > 0) bag_of[next[i]++] = static_cast<int32>(b);
        }
      }
    }
    Tensor* touched = nullptr;
    Tensor* values = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, TensorShape({touched_count}), &touched));
    OP_REQUIRES_OK(context, context->allocate_output(1, TensorShape({touched_count, dim}), &values));
    int32* touched_rows = touched->flat<int32>().data();
    for (int64 r = 1, k = 0; r < rows; ++r) if (start[r + 1] > start[r]) touched_rows[k++] = static_cast<int32>(r);
    float* out = values->flat<float>().data();
    const std::vector<float> scale = BagScales(id, batch, length);

    // Each touched row sums its occurrences' scaled upstream rows in one place, written once.
    auto work = [&](int64 begin, int64 end) {
      for (int64 k = begin; k < end; ++k) {
        const int32 r = touched_rows[k];
        float* __restrict__ acc = out + k * dim;
        for (int64 d = 0; d < dim; ++d) acc[d] = 0.0f;
        for (int64 o = start[r]; o < start[r + 1]; ++o) {
          const int32 b = bag_of[o];
          const float s = scale[b];
          const float* __restrict__ g = up + static_cast<int64>(b) * dim;
          for (int64 d = 0; d < dim; ++d) acc[d] += s * g[d];
        }
      }
    };
    auto pool = context->device()->tensorflow_cpu_worker_threads();
    const int64 mean = touched_count ? start[rows] / touched_count + 1 : 1;
    Shard(pool->num_threads, pool->workers, touched_count, mean * dim, work);
  }
};

// Makes var's tensor safe to write in place: copies it when another tensor shares its buffer.
Status Private(OpKernelContext* context, Var* var) {
  Tensor* tensor = var->tensor();
  if (!var->copy_on_read_mode.load() && tensor->RefCountIsOne()) return OkStatus();
  Tensor copy;
  TF_RETURN_IF_ERROR(context->allocate_temp(tensor->dtype(), tensor->shape(), &copy));
  std::copy_n(tensor->flat<float>().data(), tensor->NumElements(), copy.flat<float>().data());
  *tensor = copy;
  return OkStatus();
}

class SparseAdamOp : public OpKernel {
 public:
  explicit SparseAdamOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    core::RefCountPtr<Var> var, m, v;
    OP_REQUIRES_OK(context, LookupResource(context, HandleFromInput(context, 0), &var));
    OP_REQUIRES_OK(context, LookupResource(context, HandleFromInput(context, 1), &m));
    OP_REQUIRES_OK(context, LookupResource(context, HandleFromInput(context, 2), &v));
    const Tensor& touched = context->input(3);
    const Tensor& values = context->input(4);
    const float alpha = context->input(5).scalar<float>()();
    const float beta_1 = context->input(6).scalar<float>()();
    const float beta_2 = context->input(7).scalar<float>()();
    const float epsilon = context->input(8).scalar<float>()();
    mutex_lock lock_var(*var->mu());
    mutex_lock lock_m(*m->mu());
    mutex_lock lock_v(*v->mu());
    Tensor* table = var->tensor();
    OP_REQUIRES(context, table->dims() == 2 && m->tensor()->shape() == table->shape() &&
                             v->tensor()->shape() == table->shape(),
                errors::InvalidArgument("var, m and v must be [rows, dim] of one shape"));
    OP_REQUIRES(context, values.dims() == 2 && values.dim_size(0) == touched.dim_size(0) &&
                             values.dim_size(1) == table->dim_size(1),
                errors::InvalidArgument("values must be [touched, dim]"));
    // Updated in place unless a reader still holds the buffer (then on a private copy, as TensorFlow's
    // own training ops do).
    OP_REQUIRES_OK(context, Private(context, var.get()));
    OP_REQUIRES_OK(context, Private(context, m.get()));
    OP_REQUIRES_OK(context, Private(context, v.get()));
    const int64 rows = table->dim_size(0), dim = table->dim_size(1), count = touched.dim_size(0);
    const int32* row = touched.flat<int32>().data();
    for (int64 k = 0; k < count; ++k) {
      OP_REQUIRES(context, row[k] >= 0 && row[k] < rows,
                  errors::InvalidArgument("row ", row[k], " is outside the table's ", rows, " rows"));
    }
    // Rows may repeat (a shared tower's gradients from two calls, concatenated): each distinct row's
    // gradient is the sum of its slices, in their order.
    std::vector<int32> slot(rows, -1);
    std::vector<int32> distinct;
    std::vector<int64> first_member(count + 1, 0);
    for (int64 k = 0; k < count; ++k) {
      if (slot[row[k]] < 0) {
        slot[row[k]] = static_cast<int32>(distinct.size());
        distinct.push_back(row[k]);
      }
      ++first_member[slot[row[k]] + 1];
    }
    const int64 unique = distinct.size();
    for (int64 u = 0; u < unique; ++u) first_member[u + 1] += first_member[u];
    std::vector<int32> member(count);
    {
      std::vector<int64> next(first_member.begin(), first_member.begin() + unique);
      for (int64 k = 0; k < count; ++k) member[next[slot[row[k]]]++] = static_cast<int32>(k);
    }
    float* w = table->flat<float>().data();
    float* first = m->tensor()->flat<float>().data();
    float* second = v->tensor()->flat<float>().data();
    const float* g = values.flat<float>().data();
    auto work = [&](int64 begin, int64 end) {
      // local copies: read through the closure, the scalars might alias the rows, and nothing vectorises
      const float b1 = beta_1, b2 = beta_2, step = alpha, eps = epsilon;
      std::vector<float> sum(dim);
      for (int64 u = begin; u < end; ++u) {
        const float* __restrict__ gk = g + static_cast<int64>(member[first_member[u]]) * dim;
        if (first_member[u + 1] - first_member[u] > 1) {
          std::copy_n(gk, dim, sum.data());
          for (int64 o = first_member[u] + 1; o < first_member[u + 1]; ++o) {
            const float* __restrict__ more = g + static_cast<int64>(member[o]) * dim;
            for (int64 d = 0; d < dim; ++d) sum[d] += more[d];
          }
          gk = sum.data();
        }
        const int64 base = static_cast<int64>(distinct[u]) * dim;
        float* __restrict__ wk = w + base;
        float* __restrict__ mk = first + base;
        float* __restrict__ vk = second + base;
        for (int64 d = 0; d < dim; ++d) {
          mk[d] = b1 * mk[d] + (1.0f - b1) * gk[d];
          vk[d] = b2 * vk[d] + (1.0f - b2) * gk[d] * gk[d];
          wk[d] -= step * mk[d] / (std::sqrt(vk[d]) + eps);
        }
      }
    };
    auto pool = context->device()->tensorflow_cpu_worker_threads();
    Shard(pool->num_threads, pool->workers, unique, dim * 10, work);
  }
};

}  // namespace

REGISTER_KERNEL_BUILDER(Name("DssmEmbeddingBag").Device(DEVICE_CPU), EmbeddingBagOp);
REGISTER_KERNEL_BUILDER(Name("DssmEmbeddingBagGrad").Device(DEVICE_CPU), EmbeddingBagGradOp);
REGISTER_KERNEL_BUILDER(Name("DssmSparseAdam").Device(DEVICE_CPU), SparseAdamOp);
