// Fused CPU kernels for the DiffRes merge (diffres/fused.py builds and loads this file).
//
// Shapes: log_mel [B, T, F] (natural-log mel power), code [T, F] (position code), the warp
// pieces first_bin / second_bin (int64) and first_weight / second_weight [B, T] as
// diffres.functional.warp_pieces defines them, out_len = T'.
//
// Forward, one read of the log-mel per output bin's frames:
//   features[b, 0, j] = ln(sum_i W[i, j] exp(x_i) + 1e-12)            (average merge)
//   features[b, 1, j] = ln(scale * max_{i: W[i, j] > 0} W[i, j] exp(x_i) + 1e-12)  (max merge)
//   features[b, 2, j] = sum_i W[i, j] code_i                          (resolution encoding)
//   energy[b, i]      = mean_f exp(x_i)                                (for empty frames)
//   argmax[b, j, f]   = 2 i + piece of the piece attaining the max (-1: no piece)
// Backward, one read of the log-mel per frame: gradients to both piece weights and, when
// asked, to the log-mel.  Both passes are parallel over independent rows (output bins in
// the forward, frames in the backward), so there are no write conflicts.
//
// exp and log of float run through short polynomial forms (Cephes) that the compiler
// vectorises (about 1 ulp; inputs are clamped to [-87, 88], so exp(-inf) gives 1.6e-38); double
// uses the C library (tests and gradcheck).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

namespace {

constexpr double kLogEps = 1e-12;

// exp and log must be inlined into the loops, or the loops stay scalar (gcc's inliner gives
// up on them once the kernels grow).
#define DIFFRES_ALWAYS_INLINE inline __attribute__((always_inline))

template <typename scalar_t>
struct Math;

template <>
struct Math<double> {
  static DIFFRES_ALWAYS_INLINE double exp(double x) { return std::exp(x); }
  static DIFFRES_ALWAYS_INLINE double log(double x) { return std::log(x); }
};

template <>
struct Math<float> {
  static DIFFRES_ALWAYS_INLINE float exp(float x) {
    x = x < 88.0f ? x : 88.0f;
    x = x > -87.0f ? x : -87.0f;
    const float n = std::floor(x * 1.44269504088896341f + 0.5f);
    const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * r * r + r + 1.0f;
    const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    return y * scale;
  }

  // x > 0 and finite (callers add 1e-12 to non-negative values).
  static DIFFRES_ALWAYS_INLINE float log(float x) {
    int32_t bits;
    std::memcpy(&bits, &x, sizeof(bits));
    float e = static_cast<float>((bits >> 23) - 126);
    bits = (bits & 0x007fffff) | 0x3f000000;  // mantissa in [0.5, 1)
    float m;
    std::memcpy(&m, &bits, sizeof(m));
    const bool small = m < 0.707106781186547524f;
    e = small ? e - 1.0f : e;
    m = small ? m + m - 1.0f : m - 1.0f;
    const float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    y += e * -2.12194440e-4f;
    y += -0.5f * z;
    return m + y + e * 0.693359375f;
  }
};

void check_inputs(const at::Tensor& log_mel, const at::Tensor& code, const at::Tensor& first_bin,
                  const at::Tensor& second_bin, const at::Tensor& first_weight,
                  const at::Tensor& second_weight, int64_t out_len) {
  TORCH_CHECK(log_mel.device().is_cpu(), "fused merge: CPU tensors only");
  TORCH_CHECK(log_mel.dim() == 3 && log_mel.is_contiguous(), "fused merge: log_mel must be a contiguous [B, T, F]");
  const auto B = log_mel.size(0), T = log_mel.size(1), F = log_mel.size(2);
  TORCH_CHECK(code.sizes() == at::IntArrayRef({T, F}) && code.is_contiguous(), "fused merge: code must be [T, F]");
  for (const auto* t : {&first_bin, &second_bin}) {
    TORCH_CHECK(t->sizes() == at::IntArrayRef({B, T}) && t->is_contiguous() && t->scalar_type() == at::kLong,
                "fused merge: bins must be contiguous int64 [B, T]");
  }
  for (const auto* t : {&first_weight, &second_weight, &code}) {
    TORCH_CHECK(t->scalar_type() == log_mel.scalar_type(), "fused merge: one floating dtype for all inputs");
  }
  TORCH_CHECK(first_weight.sizes() == at::IntArrayRef({B, T}) && first_weight.is_contiguous() &&
                  second_weight.sizes() == at::IntArrayRef({B, T}) && second_weight.is_contiguous(),
              "fused merge: weights must be contiguous [B, T]");
  TORCH_CHECK(out_len >= 1 && out_len <= T, "fused merge: out_len must be in [1, T]");
}

template <typename scalar_t>
struct InputPointers {
  const scalar_t* log_mel;
  const scalar_t* code;
  const int64_t* first_bin;
  const int64_t* second_bin;
  const scalar_t* first_weight;
  const scalar_t* second_weight;
};

template <typename scalar_t>
InputPointers<scalar_t> input_pointers(const at::Tensor& log_mel, const at::Tensor& code, const at::Tensor& first_bin,
                                       const at::Tensor& second_bin, const at::Tensor& first_weight,
                                       const at::Tensor& second_weight) {
  return {log_mel.data_ptr<scalar_t>(),     code.data_ptr<scalar_t>(),         first_bin.data_ptr<int64_t>(),
          second_bin.data_ptr<int64_t>(), first_weight.data_ptr<scalar_t>(), second_weight.data_ptr<scalar_t>()};
}

// start[b, j] = first frame whose first piece lies in bin >= j (bins are non-decreasing in time).
at::Tensor bin_starts(const at::Tensor& first_bin, int64_t out_len) {
  const auto B = first_bin.size(0), T = first_bin.size(1);
  auto start = at::empty({B, out_len + 1}, first_bin.options());
  const int64_t* fb = first_bin.data_ptr<int64_t>();
  int64_t* st = start.data_ptr<int64_t>();
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t* row = fb + b * T;
      int64_t* s = st + b * (out_len + 1);
      int64_t j = 0;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t k = std::min<int64_t>(std::max<int64_t>(row[t], 0), out_len - 1);
        while (j <= k) s[j++] = t;
      }
      while (j <= out_len) s[j++] = T;
    }
  });
  return start;
}

template <typename scalar_t>
void forward_impl(const at::Tensor& log_mel, const at::Tensor& code, const at::Tensor& first_bin,
                  const at::Tensor& second_bin, const at::Tensor& first_weight, const at::Tensor& second_weight,
                  int64_t out_len, double max_scale, at::Tensor& features, at::Tensor& argmax, at::Tensor& energy) {
  using M = Math<scalar_t>;
  const auto B = log_mel.size(0), T = log_mel.size(1), F = log_mel.size(2);
  const auto [x, c, fb, sb, w0, w1] =
      input_pointers<scalar_t>(log_mel, code, first_bin, second_bin, first_weight, second_weight);
  scalar_t* out = features.data_ptr<scalar_t>();
  int32_t* am_out = argmax.data_ptr<int32_t>();
  scalar_t* en = energy.data_ptr<scalar_t>();
  const auto start = bin_starts(first_bin, out_len);
  const int64_t* st = start.data_ptr<int64_t>();
  const scalar_t eps = static_cast<scalar_t>(kLogEps);
  const scalar_t scale = static_cast<scalar_t>(max_scale);
  const scalar_t inv_f = scalar_t(1) / static_cast<scalar_t>(F);

  at::parallel_for(0, B * out_len, 16, [&](int64_t r0, int64_t r1) {
    std::vector<scalar_t> buf(3 * F);
    std::vector<int32_t> am(F);
    scalar_t* sum = buf.data();
    scalar_t* enc = sum + F;
    scalar_t* mx = enc + F;
    int32_t* arg = am.data();
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t b = row / out_len, j = row % out_len;
      const int64_t* s = st + b * (out_len + 1);
      const int64_t t_lo = s[j] > 0 ? s[j] - 1 : 0;  // the frame before may cross into j
      const int64_t t_hi = s[j + 1];
      for (int64_t f = 0; f < F; ++f) {
        sum[f] = 0;
        enc[f] = 0;
        mx[f] = 0;
        arg[f] = -1;
      }
      for (int64_t t = t_lo; t < t_hi; ++t) {
        const int64_t i = b * T + t;
        const bool first = fb[i] == j;
        if (!first && !(sb[i] == j && sb[i] > fb[i])) continue;
        const scalar_t w = first ? w0[i] : w1[i];
        const int32_t tag = static_cast<int32_t>(2 * t + (first ? 0 : 1));
        const scalar_t* xr = x + i * F;
        const scalar_t* cr = c + t * F;
        scalar_t total = 0;
        if (w > 0) {
#pragma omp simd reduction(+ : total)
          for (int64_t f = 0; f < F; ++f) {
            const scalar_t p = M::exp(xr[f]);
            total += p;
            sum[f] += w * p;
            enc[f] += w * cr[f];
            const scalar_t v = w * p;
            const bool take = (v > mx[f]) | (arg[f] < 0);
            mx[f] = take ? v : mx[f];
            arg[f] = take ? tag : arg[f];
          }
        } else if (first) {  // zero weight: no contribution, but the frame's energy is needed
#pragma omp simd reduction(+ : total)
          for (int64_t f = 0; f < F; ++f) total += M::exp(xr[f]);
        }
        if (first) en[i] = total * inv_f;
      }
      scalar_t* avg_out = out + ((b * 3 + 0) * out_len + j) * F;
      scalar_t* max_out = out + ((b * 3 + 1) * out_len + j) * F;
      scalar_t* enc_out = out + ((b * 3 + 2) * out_len + j) * F;
      int32_t* arg_out = am_out + (b * out_len + j) * F;
#pragma omp simd
      for (int64_t f = 0; f < F; ++f) {
        avg_out[f] = M::log(sum[f] + eps);
        max_out[f] = M::log(mx[f] * scale + eps);
        enc_out[f] = enc[f];
        arg_out[f] = arg[f];
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> merge_forward(const at::Tensor& log_mel, const at::Tensor& code,
                                                            const at::Tensor& first_bin, const at::Tensor& second_bin,
                                                            const at::Tensor& first_weight,
                                                            const at::Tensor& second_weight, int64_t out_len,
                                                            double max_scale) {
  check_inputs(log_mel, code, first_bin, second_bin, first_weight, second_weight, out_len);
  TORCH_CHECK(2 * log_mel.size(1) < INT32_MAX, "fused merge: too many frames");
  const auto B = log_mel.size(0), T = log_mel.size(1), F = log_mel.size(2);
  auto features = at::empty({B, 3, out_len, F}, log_mel.options());
  auto argmax = at::empty({B, out_len, F}, log_mel.options().dtype(at::kInt));
  auto energy = at::empty({B, T}, log_mel.options());
  AT_DISPATCH_FLOATING_TYPES(log_mel.scalar_type(), "diffres_merge_forward", [&] {
    forward_impl<scalar_t>(log_mel, code, first_bin, second_bin, first_weight, second_weight, out_len, max_scale,
                           features, argmax, energy);
  });
  return {features, argmax, energy};
}

template <typename scalar_t>
void backward_impl(const at::Tensor& grad_features, const at::Tensor& features, const at::Tensor& log_mel,
                   const at::Tensor& code, const at::Tensor& first_bin, const at::Tensor& second_bin,
                   const at::Tensor& first_weight, const at::Tensor& second_weight, const at::Tensor& argmax,
                   double max_scale, at::Tensor& grad_log_mel, at::Tensor& grad_w0, at::Tensor& grad_w1) {
  using M = Math<scalar_t>;
  const auto B = log_mel.size(0), T = log_mel.size(1), F = log_mel.size(2);
  const int64_t out_len = features.size(2);
  // Per bin: d loss / d (merged sum), d loss / d (raw max) from the logs saved in features,
  // and d loss / d (encoding) copied: one contiguous [B, 3, T', F] table.  The incoming
  // gradient may have any strides (a sum's gradient is an expanded scalar).
  auto coef = at::empty({B, 3, out_len, F}, log_mel.options());
  const scalar_t* g = grad_features.data_ptr<scalar_t>();
  const int64_t gb = grad_features.stride(0), gc = grad_features.stride(1), gj = grad_features.stride(2),
                gf = grad_features.stride(3);
  const scalar_t* feat = features.data_ptr<scalar_t>();
  scalar_t* co = coef.data_ptr<scalar_t>();
  const scalar_t scale = static_cast<scalar_t>(max_scale);
  at::parallel_for(0, B * out_len, 64, [&](int64_t r0, int64_t r1) {
    const int64_t nf = F;  // locals, not reloaded through the closure (keeps the loops vectorised)
    const scalar_t sc = scale;
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t b = row / out_len, j = row % out_len;
      const scalar_t* ga = g + b * gb + j * gj;
      const scalar_t* gm = ga + gc;
      const scalar_t* ge = ga + 2 * gc;
      const scalar_t* fa = feat + ((b * 3 + 0) * out_len + j) * F;
      const scalar_t* fm = feat + ((b * 3 + 1) * out_len + j) * F;
      scalar_t* cs = co + ((b * 3 + 0) * out_len + j) * F;
      scalar_t* cm = co + ((b * 3 + 1) * out_len + j) * F;
      scalar_t* ce = co + ((b * 3 + 2) * out_len + j) * F;
      if (gf == 1) {
#pragma omp simd
        for (int64_t f = 0; f < nf; ++f) {
          cs[f] = ga[f] * M::exp(-fa[f]);
          cm[f] = gm[f] * sc * M::exp(-fm[f]);
        }
        std::memcpy(ce, ge, nf * sizeof(scalar_t));
      } else if (gf == 0) {  // one value along freq (e.g. the gradient of a sum)
        const scalar_t va = ga[0], vm = gm[0] * sc, ve = ge[0];
#pragma omp simd
        for (int64_t f = 0; f < nf; ++f) {
          cs[f] = va * M::exp(-fa[f]);
          cm[f] = vm * M::exp(-fm[f]);
          ce[f] = ve;
        }
      } else {
        for (int64_t f = 0; f < nf; ++f) {
          cs[f] = ga[f * gf] * M::exp(-fa[f]);
          cm[f] = gm[f * gf] * sc * M::exp(-fm[f]);
          ce[f] = ge[f * gf];
        }
      }
    }
  });

  const auto [x, c, fb, sb, w0, w1] =
      input_pointers<scalar_t>(log_mel, code, first_bin, second_bin, first_weight, second_weight);
  const int32_t* am = argmax.data_ptr<int32_t>();
  scalar_t* gw0 = grad_w0.data_ptr<scalar_t>();
  scalar_t* gw1 = grad_w1.data_ptr<scalar_t>();
  scalar_t* gx = grad_log_mel.defined() ? grad_log_mel.data_ptr<scalar_t>() : nullptr;

  at::parallel_for(0, B * T, 64, [&](int64_t i0, int64_t i1) {
    std::vector<scalar_t> scratch(gx != nullptr ? 0 : F);  // a sink when no log-mel gradient is asked
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / T, t = i % T;
      const int64_t k0 = fb[i], k1 = sb[i];
      const scalar_t* xr = x + i * F;
      const scalar_t* cr = c + t * F;
      scalar_t* gr = gx != nullptr ? gx + i * F : scratch.data();
      const scalar_t* cs0 = co + ((b * 3 + 0) * out_len + k0) * F;
      const scalar_t* cm0 = co + ((b * 3 + 1) * out_len + k0) * F;
      const scalar_t* ge0 = co + ((b * 3 + 2) * out_len + k0) * F;
      const int32_t* am0 = am + (b * out_len + k0) * F;
      const int32_t tag0 = static_cast<int32_t>(2 * t);
      const scalar_t a = w0[i];
      scalar_t d0 = 0;
      if (k1 <= k0) {  // the frame lies inside one bin
#pragma omp simd reduction(+ : d0)
        for (int64_t f = 0; f < F; ++f) {
          const scalar_t p = M::exp(xr[f]);
          const scalar_t q = cs0[f] + (am0[f] == tag0 ? cm0[f] : scalar_t(0));
          d0 += p * q + cr[f] * ge0[f];
          gr[f] = p * a * q;
        }
        gw0[i] = d0;
        gw1[i] = 0;
        continue;
      }
      const scalar_t* cs1 = co + ((b * 3 + 0) * out_len + k1) * F;
      const scalar_t* cm1 = co + ((b * 3 + 1) * out_len + k1) * F;
      const scalar_t* ge1 = co + ((b * 3 + 2) * out_len + k1) * F;
      const int32_t* am1 = am + (b * out_len + k1) * F;
      const int32_t tag1 = tag0 + 1;
      const scalar_t bw = w1[i];
      scalar_t d1 = 0;
#pragma omp simd reduction(+ : d0, d1)
      for (int64_t f = 0; f < F; ++f) {
        const scalar_t p = M::exp(xr[f]);
        const scalar_t q0 = cs0[f] + (am0[f] == tag0 ? cm0[f] : scalar_t(0));
        const scalar_t q1 = cs1[f] + (am1[f] == tag1 ? cm1[f] : scalar_t(0));
        d0 += p * q0 + cr[f] * ge0[f];
        d1 += p * q1 + cr[f] * ge1[f];
        gr[f] = p * (a * q0 + bw * q1);
      }
      gw0[i] = d0;
      gw1[i] = d1;
    }
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> merge_backward(
    const at::Tensor& grad_features, const at::Tensor& features, const at::Tensor& log_mel, const at::Tensor& code,
    const at::Tensor& first_bin, const at::Tensor& second_bin, const at::Tensor& first_weight,
    const at::Tensor& second_weight, const at::Tensor& argmax, double max_scale, bool need_log_mel) {
  const int64_t out_len = features.size(2);
  check_inputs(log_mel, code, first_bin, second_bin, first_weight, second_weight, out_len);
  TORCH_CHECK(grad_features.sizes() == features.sizes() && features.is_contiguous(),
              "fused merge: gradient must match features");
  TORCH_CHECK(argmax.scalar_type() == at::kInt && argmax.is_contiguous(), "fused merge: argmax must be int32");
  auto grad_w0 = at::empty_like(first_weight);
  auto grad_w1 = at::empty_like(second_weight);
  at::Tensor grad_log_mel;
  if (need_log_mel) grad_log_mel = at::empty_like(log_mel);
  AT_DISPATCH_FLOATING_TYPES(log_mel.scalar_type(), "diffres_merge_backward", [&] {
    backward_impl<scalar_t>(grad_features, features, log_mel, code, first_bin, second_bin, first_weight,
                            second_weight, argmax, max_scale, grad_log_mel, grad_w0, grad_w1);
  });
  if (!need_log_mel) grad_log_mel = at::empty({0}, log_mel.options());
  return {grad_log_mel, grad_w0, grad_w1};
}

}  // namespace

TORCH_LIBRARY(diffres_fused, m) {
  m.def("merge_forward(Tensor log_mel, Tensor code, Tensor first_bin, Tensor second_bin, Tensor first_weight, "
        "Tensor second_weight, int out_len, float max_scale) -> (Tensor, Tensor, Tensor)");
  m.def("merge_backward(Tensor grad_features, Tensor features, Tensor log_mel, Tensor code, Tensor first_bin, "
        "Tensor second_bin, Tensor first_weight, Tensor second_weight, Tensor argmax, float max_scale, "
        "bool need_log_mel) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(diffres_fused, CPU, m) {
  m.impl("merge_forward", &merge_forward);
  m.impl("merge_backward", &merge_backward);
}
