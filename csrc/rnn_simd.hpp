// Interface between the dispatcher (rnn_dispatch.cpp) and the per-ISA kernel
// translation units (rnn_simd_<isa>.cpp, each including rnn_simd_impl.hpp).
//
// ODR safety: the ISA units are compiled with different -m flags. Everything
// they define lives in an anonymous namespace (internal linkage) except the
// entry points of the KernelSet below, whose names carry the ISA; they use no
// std:: templates and no Eigen, so no inline/template function with external
// linkage can be emitted by an AVX2 unit and picked by the linker for baseline
// code. The helpers in this header are `static` for the same reason.
#pragma once

#include <cstddef>
#include <cstdint>

#include "rnn_kernels.hpp"

namespace rnnschur {

using i64 = std::int64_t;

// Panel widths of the packed right-hand operands (two SIMD vectors).
static inline i64 round_up(i64 n, i64 m) {
    return (n + m - 1) / m * m;
}
static inline i64 align_elems(i64 n) {
    return round_up(n, 16);
}  // 64 bytes for f32

// Layout of the per-call packed weights and of one work item's workspace, in
// elements of T. nr is the kernel's panel width.
struct RnnLayout {
    i64 nr, ldh, ldy;
    // Forward: the readout of step t - 1 rides in step t's GEMM as Ny extra
    // columns (W_hy^T beside W_hh^T) when they fit in the vector lanes that the
    // last hidden vector leaves free (e.g. Nh = 72, Ny = 8 with 16 lanes), where
    // it costs no extra FMA; then ldh covers Nh + Ny columns.
    bool fused;
    // packed weights (shared by all threads of one call)
    i64 off_whhT, off_whh, off_wxhT, off_whyT, off_why, off_whyr, off_bh, off_by,
        packed_size;
    i64 ny4;  // Ny rounded up to 4 (rows of the padded W_hy copy)
    // workspace of one work item with bs batch rows
    i64 bs, off_H, off_dA, off_X, off_Y, off_tmp, off_pack, ws_size;
    // BPTT with a leak: leak (1 - u_t^2) of all T steps (off_D) and dL/dh of
    // two steps (off_G, ping-pong); empty without a leak
    i64 off_D, off_G;
    // BPTT: weight-gradient chunk in steps (0: one pass at the end, dA holds
    // all T blocks) and the number of dA blocks kept, both for bs rows
    i64 chunk, ring_dA;
    // one work item's gradient partial sums (a separate buffer)
    i64 off_gWhh, off_gWxh, off_gWhy, off_gbh, off_gby, g_size;
};

// k- and j-blocks of the gradient reductions (B block of 256 x 256 in L2).
static constexpr i64 kGemmKC = 256, kGemmNC = 256;
// Largest register-tile height of any ISA level (rnn_simd_impl.hpp, MR).
static constexpr i64 kMaxTileRows = 12;

// Below kChunkMaxNh, BPTT reduces the weight gradients every `chunk` steps
// (about kChunkRows rows) and keeps only those steps' dL/da blocks.
#ifndef RNNSCHUR_CHUNK_ROWS
#define RNNSCHUR_CHUNK_ROWS 64
#endif
static constexpr i64 kChunkRows = RNNSCHUR_CHUNK_ROWS, kChunkMaxNh = 128;
static inline i64 grad_chunk(i64 Nh, i64 bs) {
    if (Nh >= kChunkMaxNh) return 0;  // one reduction over all rows afterwards
    return bs >= kChunkRows ? 1 : kChunkRows / bs;
}

static inline RnnLayout make_layout(const RnnDims& d, i64 nr, i64 bs, bool grad,
                                    bool leaky) {
    RnnLayout L{};
    L.nr = nr;
    const i64 lanes = nr / 2, nh1 = d.Nh < 1 ? 1 : d.Nh;
    L.fused = !grad && d.Ny > 0 && round_up(nh1 + d.Ny, lanes) == round_up(nh1, lanes);
    L.ldh = round_up(nh1 + (L.fused ? d.Ny : 0), nr);
    L.ldy = round_up(d.Ny < 1 ? 1 : d.Ny, nr);
    i64 o = 0;
    auto take = [&o](i64 n) {
        const i64 at = o;
        o += align_elems(n);
        return at;
    };
    L.off_whhT = take(d.K * d.Nh * L.ldh);  // fused: [W_hh^T | W_hy^T] per variant
    L.off_whh = take(grad ? d.Nh * L.ldh : 0);
    L.off_wxhT = take(d.Nx * L.ldh);
    L.off_whyT = take(d.Nh * L.ldy);
    L.off_why = take(grad ? d.Ny * L.ldh : 0);
    L.ny4 = round_up(d.Ny < 1 ? 1 : d.Ny, 4);
    L.off_whyr = take(L.ny4 * L.ldh);
    L.off_bh = take(L.ldh);
    L.off_by = take(L.ldy);
    L.packed_size = o;
    o = 0;
    L.bs = bs;
    // The forward pass keeps two hidden blocks (ping-pong), BPTT all T + 1.
    L.off_H = take((grad ? d.T + 1 : 2) * bs * L.ldh);
    // dA: a ring of ring_dA blocks (>= 2: step t reads t + 1's slot), else all T.
    L.chunk = grad_chunk(d.Nh, bs);
    L.ring_dA = L.chunk == 0 ? d.T : (L.chunk < 2 ? 2 : L.chunk);
    L.off_dA = take(grad ? L.ring_dA * bs * L.ldh : 0);
    L.off_D = take(grad && leaky ? d.T * bs * L.ldh : 0);
    L.off_G = take(grad && leaky ? 2 * bs * L.ldh : 0);
    L.off_X = take(grad ? d.T * bs * d.Nx : 0);
    L.off_Y = take(grad ? d.T * bs * L.ldy : 0);
    L.off_tmp = take(grad ? d.Nx * d.Nh + L.ldh + L.ldy : 0);
    // packed blocks of the large gradient reduction: A (KC x Nh rounded to the
    // row tile of any level) and B (KC x NC)
    L.off_pack = take(grad ? kGemmKC * (round_up(d.Nh, kMaxTileRows) + kGemmNC) : 0);
    L.ws_size = o;
    o = 0;
    L.off_gWhh = take(grad ? d.Nh * d.Nh : 0);
    L.off_gWxh = take(grad ? d.Nh * d.Nx : 0);
    L.off_gWhy = take(grad ? d.Ny * d.Nh : 0);
    L.off_gbh = take(grad ? d.Nh : 0);
    L.off_gby = take(grad ? d.Ny : 0);
    L.g_size = o;
    return L;
}

// Forward pass with the batch in the vector lanes (rnn_simd_tposed.hpp): the
// packed weights of all variants and one work item's workspace, in elements.
// R = Nh + Ny rows (hidden units, then the fused readout of the previous step)
// over Kin = Nh + Nx inner terms, split into ntiles row tiles of at most mr
// rows; ldS = the largest shard's rows rounded up to the lanes. A register
// tile holds 24 accumulators: 6 rows x 4 vectors of batch columns, or, for
// shards of at most 2 vectors, 12 rows x 2 (6 x 2 would load a vector per 3
// FMAs instead of per 6).
static constexpr i64 kTposedRows = 6, kTposedRowsNarrow = 12;
struct TposedLayout {
    i64 R, Kin, mr, ntiles, ldS, ldX;
    i64 off_A, off_bias, off_X, packed_size;
    i64 pack_steps, pack_parts;  // packing: one part per variant + X^T chunks
    i64 off_S, off_Y, ws_size;
};

static inline TposedLayout make_tposed_layout(const RnnDims& d, i64 lanes, i64 bs) {
    TposedLayout L{};
    L.R = d.Nh + d.Ny;
    L.Kin = d.Nh + d.Nx;
    L.ldS = round_up(bs, lanes);
    L.mr = L.ldS <= 2 * lanes ? kTposedRowsNarrow : kTposedRows;
    L.ntiles = (L.R + L.mr - 1) / L.mr;
    L.ldX = round_up(d.B, lanes) + L.ldS;  // an item reads ldS columns from b0
    i64 o = 0;
    auto take = [&o](i64 n) {
        const i64 at = o;
        o += align_elems(n);
        return at;
    };
    L.off_A = take(d.K * L.R * L.Kin);
    L.off_bias = take(L.R);
    L.off_X = take(d.T * d.Nx * L.ldX);  // x^T of all steps
    L.packed_size = o;
    L.pack_steps = 32;
    L.pack_parts = d.K + (d.T + L.pack_steps - 1) / L.pack_steps;
    o = 0;
    L.off_S = take(2 * d.Nh * L.ldS);  // ping-pong S^T blocks
    L.off_Y = take((d.Ny < 1 ? 1 : d.Ny) * L.ldS);
    L.ws_size = o;
    return L;
}

// Entry points of one ISA level for one scalar type.
template <class T>
struct KernelSet {
    i64 nr;
    // Packs the weights of a call into `packed` (layout L, zero padding included).
    void (*pack_forward)(const ForwardArgs<T>& a, const RnnLayout& L, T* packed);
    void (*pack_grad)(const GradArgs<T>& a, const RnnLayout& L, T* packed);
    // Forward pass of variant k for batch rows [b0, b1) (b1 - b0 <= L.bs).
    void (*forward_item)(const ForwardArgs<T>& a, const RnnLayout& L, const T* packed,
                         i64 k, i64 b0, i64 b1, T* ws);
    // Loss and gradient partial sums for batch rows [b0, b1) into g (offsets
    // L.off_g*); returns the unnormalised masked sum of squared errors.
    double (*grad_item)(const GradArgs<T>& a, const RnnLayout& L, const T* packed,
                        i64 b0, i64 b1, T* ws, T* g);
    // Test hook: y = tanh(x) elementwise with the kernels' vector tanh.
    void (*tanh_array)(const T* x, T* y, i64 n);
    // The transposed forward (batch in the lanes): null below AVX-512. lanes is
    // its vector length; the item's rows must fit in L.ldS.
    i64 lanes;
    void (*pack_forward_t)(const ForwardArgs<T>& a, const TposedLayout& L, T* packed,
                           i64 part);
    void (*forward_item_t)(const ForwardArgs<T>& a, const TposedLayout& L,
                           const T* packed, i64 k, i64 b0, i64 b1, T* ws);
};

namespace isa_baseline {
extern const KernelSet<float> kernels_f32;
extern const KernelSet<double> kernels_f64;
}  // namespace isa_baseline
#if defined(RNNSCHUR_HAVE_AVX2)
namespace isa_avx2 {
extern const KernelSet<float> kernels_f32;
extern const KernelSet<double> kernels_f64;
}  // namespace isa_avx2
#endif
#if defined(RNNSCHUR_HAVE_AVX512)
namespace isa_avx512 {
extern const KernelSet<float> kernels_f32;
extern const KernelSet<double> kernels_f64;
}  // namespace isa_avx512
#endif

}  // namespace rnnschur
