// Batched tanh-RNN forward pass and BPTT: the pure C++ interface (no pybind11).
// The recurrence is h_t = (1 - leak) h_{t-1} + leak tanh(a_t), a_t = W_xh x_t +
// W_hh h_{t-1} + b_h, with leak in (0, 1]; leak == 1 (the plain tanh RNN) runs
// the leak-free kernels, operation for operation.
//
// All arrays are dense, C-contiguous and already validated by the caller:
//   W_xh (Nh, Nx), W_hh (K, Nh, Nh), W_hy (Ny, Nh), b_h (Nh), b_y (Ny),
//   x (T, B, Nx), h0 (B, Nh) or (Nh) (h0_bstride = Nh or 0), y (K, T, B, Ny),
//   hidden (K, T, B, Nh), target (T, B, Ny), mask (T, B, Ny) as 0/1 bytes.
// Optional pointers may be null (biases and h0 then count as zero).
#pragma once

#include <cstdint>

namespace rnnschur {

// True if every p[0..n) is finite: p[i] * 0 is 0 for finite values and NaN for
// inf/NaN. Sixteen independent sums, because one dependent chain runs at FP-add
// latency (0.75 ms for the K = 8 copy-shape output, serial after the parallel
// forward) while independent lanes vectorise.
template <class T>
inline bool all_finite(const T* p, std::int64_t n) {
    constexpr int kLanes = 16;
    T acc[kLanes] = {};
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int j = 0; j < kLanes; ++j) acc[j] += p[i + j] * T(0);
    T sum = 0;
    for (; i < n; ++i) sum += p[i] * T(0);
    for (int j = 0; j < kLanes; ++j) sum += acc[j];
    return sum == T(0);
}

struct RnnDims {
    std::int64_t K, T, B, Nx, Nh, Ny;
};

template <class T>
struct ForwardArgs {
    RnnDims d;
    const T* W_xh;
    const T* W_hh;
    const T* W_hy;
    const T* b_h;  // may be null
    const T* b_y;  // may be null
    const T* x;
    const T* h0;  // may be null
    std::int64_t h0_bstride;
    T* y;
    T* hidden;  // may be null
    T leak = T(1);
};

template <class T>
struct GradArgs {
    RnnDims d;  // d.K == 1
    const T* W_xh;
    const T* W_hh;
    const T* W_hy;
    const T* b_h;  // may be null
    const T* b_y;  // may be null
    const T* x;
    const T* target;
    const std::uint8_t* mask;  // may be null: every entry counts
    std::int64_t count;        // number of counted entries (> 0)
    T* g_W_xh;
    T* g_W_hh;
    T* g_W_hy;
    T* g_b_h;  // may be null: not wanted
    T* g_b_y;  // may be null: not wanted
    double loss;
    T leak = T(1);
};

// SIMD levels of the hot kernels, picked once at import (see rnn_dispatch.cpp):
// baseline x86-64 (SSE2), x86-64-v3 (AVX2 + FMA), x86-64-v4 (AVX-512 F/BW/DQ/VL).
enum class SimdLevel : int { baseline = 0, avx2 = 1, avx512 = 2 };

// n_threads <= 0 means "all hardware threads". Both return false when the
// result holds a non-finite value (overflow), true otherwise.
bool rnn_forward(const ForwardArgs<float>& a, int n_threads);
bool rnn_forward(const ForwardArgs<double>& a, int n_threads);
bool rnn_loss_and_grad(GradArgs<float>& a, int n_threads);
bool rnn_loss_and_grad(GradArgs<double>& a, int n_threads);

// Test/benchmark hook: the state layout of AVX-512 forwards (the other levels
// always use rows). automatic (the default) picks the batch-in-lanes layout
// where it is faster; returns the previous setting.
enum class ForwardLayout : int { rows = 0, automatic = 1, transposed = 2 };
ForwardLayout set_forward_layout(ForwardLayout layout);

SimdLevel simd_level();
const char* simd_level_name(SimdLevel level);
// Parses "baseline", "avx2" or "avx512"; false for any other name.
bool parse_simd_level(const char* name, SimdLevel& level);
// True if this build has kernels for `level` and the CPU (and OS) runs them.
bool simd_level_supported(SimdLevel level);
// The RNNSCHUR_SIMD environment variable names an unknown level or one this CPU
// lacks: the message to raise at import, else null (the best level is in force).
const char* simd_env_error();
// Forces a level; one that is not supported falls back to the best supported
// level below it (callers check simd_level_supported first to raise instead).
// Returns the level in force.
SimdLevel set_simd_level(SimdLevel level);
int hardware_threads();
// The kernels' vectorised tanh at the current level (exposed for testing).
void rnn_tanh(const float* x, float* y, std::int64_t n);
void rnn_tanh(const double* x, double* y, std::int64_t n);

}  // namespace rnnschur
