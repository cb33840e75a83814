// Hot kernels of the RNN: packed register-blocked GEMMs with fused epilogues and
// a vectorised tanh, written once with GCC/Clang vector extensions and compiled
// once per ISA level. Include only from rnn_simd_<isa>.cpp, after defining
//   RNNSCHUR_ISA_NS  (namespace of this level, e.g. isa_avx2)
//   RNNSCHUR_VBYTES  (SIMD register width in bytes: 16 for SSE2, 32 for AVX2).
// See rnn_simd.hpp for the ODR rules this file follows (no std:: templates).
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "rnn_simd.hpp"

#if !defined(RNNSCHUR_ISA_NS) || !defined(RNNSCHUR_VBYTES)
#error "define RNNSCHUR_ISA_NS and RNNSCHUR_VBYTES before including rnn_simd_impl.hpp"
#endif

namespace rnnschur {
namespace RNNSCHUR_ISA_NS {
namespace {

constexpr int VB = RNNSCHUR_VBYTES;

template <class T>
struct V;
template <>
struct V<float> {
    typedef float vec __attribute__((vector_size(VB)));
    typedef float vecu __attribute__((vector_size(VB), aligned(4), may_alias));
    typedef std::int32_t ivec __attribute__((vector_size(VB)));
    typedef std::int32_t uint_t;
    static constexpr int L = VB / 4;
    static constexpr int mant_bits = 23;
    static constexpr std::int32_t exp_bias = 127;
};
template <>
struct V<double> {
    typedef double vec __attribute__((vector_size(VB)));
    typedef double vecu __attribute__((vector_size(VB), aligned(8), may_alias));
    typedef std::int64_t ivec __attribute__((vector_size(VB)));
    static constexpr int L = VB / 8;
    static constexpr int mant_bits = 52;
    static constexpr std::int64_t exp_bias = 1023;
};

template <class T>
using vec_t = typename V<T>::vec;
template <class T>
using ivec_t = typename V<T>::ivec;

// Register tile: NACC accumulators, as MR rows x NV vectors (6 x 2: 12
// accumulators + 2 B vectors + 1 broadcast in the 16 ymm/xmm registers) or,
// for a panel that computes one vector (a half-used last panel, e.g. Nh = 72
// or 56, or a readout of <= L outputs), 2*MR rows x 1 vector: 12 independent
// FMA chains instead of 6 (the FMA latency x 2 pipes needs >= 8).
// Accumulator of row i, vector v: acc[i*nvv + v].
#ifndef RNNSCHUR_TILE_ROWS
#define RNNSCHUR_TILE_ROWS 6
#endif
constexpr int MR = RNNSCHUR_TILE_ROWS;
static_assert(MR <= kMaxTileRows, "raise kMaxTileRows (workspace layout)");
constexpr int NV = 2;
constexpr int NACC = MR * NV;
template <class T>
constexpr i64 NR = NV * V<T>::L;
template <int NVV>
constexpr int tile_rows = NACC / NVV;

// Calls f(Int<M>{}) for the runtime m in [1, MMAX] (instantiates each M).
template <int M>
struct Int {
    static constexpr int value = M;
};
template <int MMAX, int M = 1, class F>
inline void with_rows(int m, F&& f) {
    if constexpr (M < MMAX) {
        if (m != M) return with_rows<MMAX, M + 1>(m, f);
    }
    f(Int<M>{});
}

inline i64 imin(i64 a, i64 b) {
    return a < b ? a : b;
}

template <class T>
inline vec_t<T> vload(const T* p) {
    return *reinterpret_cast<const typename V<T>::vecu*>(p);
}
template <class T>
inline void vstore(T* p, vec_t<T> v) {
    *reinterpret_cast<typename V<T>::vecu*>(p) = v;
}
template <class T>
inline vec_t<T> vbcast(T s) {
    return s - vec_t<T>{};  // exact for every s (0 + s would turn -0.0 into +0.0)
}

// ---------------------------------------------------------------------------
// tanh
//
// tanh|x| = -u / (2 + u) with u = expm1(-2|x|) in (-1, 0]; no cancellation for
// small |x| because expm1 keeps full relative accuracy there. expm1(z) =
// 2^n (1 + p(r)) - 1 with z = n ln2 + r, |r| <= ln2/2 (Cody-Waite split of ln2),
// p(r) = expm1(r) by its Taylor series, truncated where the next term is below
// 2^-61 (f64) / 2^-26 (f32) of |r| on that interval. |x| is clamped where tanh
// rounds to 1, which also maps inf to 1; the sign is copied back at the end so
// that tanh(-0) = -0.
template <class T>
struct TanhConst;
template <>
struct TanhConst<float> {
    static constexpr float clamp = 9.5f;  // tanh(9.5) = 1 - 1.1e-8 -> 1.0f
    static constexpr float inv_ln2 = 1.44269504088896341f;
    static constexpr float ln2_hi = 0.693359375f;  // 10 significant bits: n*hi exact
    static constexpr float ln2_lo = -2.12194440e-4f;
    static constexpr float shifter = 12582912.0f;  // 1.5 * 2^23: rounds to integer
    static constexpr int n_coef = 6;               // 1/2! .. 1/7!
};
template <>
struct TanhConst<double> {
    static constexpr double clamp = 19.5;  // tanh(19.5) = 1 - 2.3e-17 -> 1.0
    static constexpr double inv_ln2 = 1.44269504088896338700e+00;
    static constexpr double ln2_hi = 6.93147180369123816490e-01;  // 32 bits
    static constexpr double ln2_lo = 1.90821492927058770002e-10;
    static constexpr double shifter = 6755399441055744.0;  // 1.5 * 2^52
    static constexpr int n_coef = 13;                      // 1/2! .. 1/14!
};

// c[i] = 1/(i+2)! as the nearest representable T (compile-time products of
// exactly representable factors, rounded once at the end).
template <class T>
struct InvFact {
    T c[TanhConst<T>::n_coef];
    constexpr InvFact() : c() {
        long double f = 1;
        for (int i = 0; i < TanhConst<T>::n_coef; ++i) {
            f *= static_cast<long double>(i + 2);
            c[i] = static_cast<T>(1.0L / f);
        }
    }
};

// n / d for d in [1, 2]: a division, except in float on AVX-512, where the
// divider limits the tanh epilogue (16-lane divides at a fraction of the FMA
// rate): the 14-bit reciprocal refined by one Newton step on the quotient
// (q0 = n r, q = q0 + r (n - q0 d), the residual exact by FMA) is within about
// 1 ulp of n / d. (AVX2's 12-bit reciprocal needs a second step, which costs
// more than its divide.)
template <class T>
inline vec_t<T> vdiv(vec_t<T> n, vec_t<T> d) {
#if RNNSCHUR_VBYTES == 64 && defined(__AVX512F__)
    if constexpr (sizeof(T) == 4) {
        // The zero-masked form is the same instruction with all lanes set; GCC 12's
        // unmasked intrinsic passes an "undefined" source that -Wmaybe-uninitialized
        // flags inside its own header.
        const vec_t<T> r = _mm512_maskz_rcp14_ps(static_cast<__mmask16>(0xFFFF), d);
        const vec_t<T> q0 = n * r;
        return q0 + r * (n - q0 * d);
    }
#endif
    return n / d;
}

// min(a, c) for c not NaN, NaN a staying NaN (vminps returns its second
// operand when either is NaN: one instruction where the compare-and-blend
// needs two).
template <class T>
inline vec_t<T> vmin_clamp(vec_t<T> a, vec_t<T> c) {
#if RNNSCHUR_VBYTES == 64 && defined(__AVX512F__)
    // Zero-masked forms with every lane set: the unmasked intrinsics pass GCC 12 an
    // "undefined" source that -Wmaybe-uninitialized flags (see vdiv).
    if constexpr (sizeof(T) == 4) return _mm512_maskz_min_ps(__mmask16(0xFFFF), c, a);
    if constexpr (sizeof(T) == 8) return _mm512_maskz_min_pd(__mmask8(0xFF), c, a);
#endif
    return c < a ? c : a;
}

// 2^n for the integral n in [-29, 0] (f32) / [-57, 0] (f64), given s, the
// shifter sum holding n in its low mantissa bits: the exponent field n + bias
// built from the bits of s, or one vscalef of 1 by n on AVX-512 (one
// instruction instead of two integer ones; the same exact power of two).
template <class T>
inline vec_t<T> vexp2i(vec_t<T> s, [[maybe_unused]] vec_t<T> n) {
#if RNNSCHUR_VBYTES == 64 && defined(__AVX512F__)
    if constexpr (sizeof(T) == 4)
        return _mm512_maskz_scalef_ps(__mmask16(0xFFFF), vbcast<T>(T(1)), n);
    if constexpr (sizeof(T) == 8)
        return _mm512_maskz_scalef_pd(__mmask8(0xFF), vbcast<T>(T(1)), n);
#endif
    using iv = ivec_t<T>;
    const iv shift = (iv)vbcast<T>(TanhConst<T>::shifter);
    return (vec_t<T>)(((iv)s - shift + V<T>::exp_bias) << V<T>::mant_bits);
}

template <class T>
inline vec_t<T> vtanh(vec_t<T> x) {
    using C = TanhConst<T>;
    using iv = ivec_t<T>;
    constexpr InvFact<T> F;
    const iv sign_mask = (iv)vbcast<T>(T(-0.0));
    const iv xb = (iv)x;
    vec_t<T> a = (vec_t<T>)(xb & ~sign_mask);
    a = vmin_clamp<T>(a, vbcast<T>(C::clamp));
    const vec_t<T> z = a * T(-2);
    // n = round(z / ln2) by the shifter trick: s holds n in its low mantissa
    // bits, so bits(s) - bits(shifter) = n as an integer (no float->int64
    // conversion, which AVX2 lacks).
    const vec_t<T> shift = vbcast<T>(C::shifter);
    const vec_t<T> s = z * C::inv_ln2 + shift;
    const vec_t<T> n = s - shift;
    const vec_t<T> r = (z - n * C::ln2_hi) - n * C::ln2_lo;
    vec_t<T> q = vbcast<T>(F.c[C::n_coef - 1]);
#pragma GCC unroll 16
    for (int i = C::n_coef - 2; i >= 0; --i) q = q * r + F.c[i];
    const vec_t<T> p = r + (r * r) * q;  // expm1(r)
    const vec_t<T> two_n = vexp2i<T>(s, n);
    // w = -expm1(z) in [0, 1); 1 - 2^n is exact. tanh|x| = w / (2 - w) >= +0,
    // so the sign of x can be or-ed in without clearing the sign bit first.
    const vec_t<T> w = (T(1) - two_n) - two_n * p;
    const vec_t<T> t = vdiv<T>(w, T(2) - w);
    return (vec_t<T>)((iv)t | (xb & sign_mask));
}

template <class T>
void tanh_array(const T* x, T* y, i64 n) {
    constexpr int L = V<T>::L;
    i64 i = 0;
    for (; i + L <= n; i += L) vstore<T>(y + i, vtanh<T>(vload<T>(x + i)));
    if (i < n) {
        T buf[L] = {};
        std::memcpy(buf, x + i, sizeof(T) * static_cast<std::size_t>(n - i));
        vstore<T>(buf, vtanh<T>(vload<T>(buf)));
        std::memcpy(y + i, buf, sizeof(T) * static_cast<std::size_t>(n - i));
    }
}

// ---------------------------------------------------------------------------
// Micro-kernels. acc[i*NVV + v] (+)= sum_k A(i, k) * Bp[k][v*L .. v*L+L), where
// Bp is one packed panel (K rows of NR contiguous values; NVV = 1 reads only
// its first vector) and A is row-major: A(i, k) = a[i*lda + k].
template <class T, int M, int NVV, bool ZERO>
inline void micro(i64 K, const T* __restrict a, i64 lda, const T* __restrict b,
                  vec_t<T> (&acc)[NACC]) {
    static_assert(M * NVV <= NACC, "tile exceeds the accumulators");
    constexpr int L = V<T>::L;
    if (ZERO) {
#pragma GCC unroll 32
        for (int i = 0; i < M * NVV; ++i) acc[i] = vec_t<T>{};
    }
    for (i64 k = 0; k < K; ++k) {
        const vec_t<T> b0 = vload<T>(b + k * NR<T>);
        if (NVV == 2) {
            const vec_t<T> b1 = vload<T>(b + k * NR<T> + L);
#pragma GCC unroll 16
            for (int i = 0; i < M; ++i) {
                const vec_t<T> ai = vbcast<T>(a[i * lda + k]);
                acc[2 * i] += ai * b0;
                acc[2 * i + 1] += ai * b1;
            }
        } else {
#pragma GCC unroll 32
            for (int i = 0; i < M; ++i) acc[i] += vbcast<T>(a[i * lda + k]) * b0;
        }
    }
}

// Not inlined: inside a large caller the register allocator may spill an
// accumulator of the tile (15 of 16 registers busy), which serialises the
// loop on a store-forwarding chain (measured: 2x slower backward steps).
template <class T, int M, int NVV>
__attribute__((noinline)) void micro2(i64 K, const T* a, i64 lda, const T* bp, i64 K2,
                                      const T* a2, i64 lda2, const T* bp2,
                                      vec_t<T> (&acc)[NACC]) {
    micro<T, M, NVV, true>(K, a, lda, bp, acc);
    if (K2 > 0) micro<T, M, NVV, false>(K2, a2, lda2, bp2, acc);
}

// C[rows x ncols_pad] = A[rows x K] * Bp (+ A2[rows x K2] * Bp2) (+ epilogue):
// A row-major with stride lda, Bp packed panels (panel j at Bp + j*K*NR). The
// optional second product concatenates the inner dimension (the input term of
// a step). The epilogue gets (row, column of the panel, the row's nv
// accumulators, nv); it must store zeros in vectors v >= nv (padding) — a
// last panel with at most L valid columns (ncols) computes only one vector,
// in tiles of twice the height. Rows are split into tiles of nearly equal
// height so that no tiny remainder tile runs at low ILP.
template <class T, class Epi>
inline void rows_gemm(i64 rows, i64 K, const T* A, i64 lda, const T* Bp, i64 ncols_pad,
                      i64 ncols, Epi&& epi, i64 K2 = 0, const T* A2 = nullptr,
                      i64 lda2 = 0, const T* Bp2 = nullptr) {
    if (rows <= 0) return;
    for (i64 j0 = 0; j0 < ncols_pad; j0 += NR<T>) {
        const T* bp = Bp + (j0 / NR<T>)*K * NR<T>;
        const T* bp2 = Bp2 ? Bp2 + (j0 / NR<T>)*K2 * NR<T> : nullptr;
        auto panel = [&](auto nvv) {
            constexpr int NVV = decltype(nvv)::value, MT = tile_rows<NVV>;
            const i64 ntiles = (rows + MT - 1) / MT;
            i64 i0 = 0;
            for (i64 tile = 0; tile < ntiles; ++tile) {
                const i64 i1 = rows * (tile + 1) / ntiles;
                vec_t<T> acc[NACC];
                const T* a = A + i0 * lda;
                const T* a2 = A2 ? A2 + i0 * lda2 : nullptr;
                with_rows<MT>(static_cast<int>(i1 - i0), [&](auto m) {
                    micro2<T, decltype(m)::value, NVV>(K, a, lda, bp, K2, a2, lda2, bp2,
                                                       acc);
                });
                for (i64 i = i0; i < i1; ++i) epi(i, j0, acc + (i - i0) * NVV, NVV);
                i0 = i1;
            }
        };
        if (ncols - j0 <= V<T>::L)
            panel(Int<1>{});
        else
            panel(Int<2>{});
    }
}

template <class T>
inline T hsum(vec_t<T> v) {
    T s = v[0];
    for (int i = 1; i < V<T>::L; ++i) s += v[i];
    return s;
}

// Readout of one step: out(i, o) = H[i] . W_hy[o] + b_y[o] for rows i < rows
// and o < Ny, stored at out + i*ostride + o. Runs right after the step while H
// is still in L1 (a separate pass over all steps streams H back from L3).
// Narrow outputs (Ny <= L/2) use dot products along Nh, enumerating the
// (row, output) pairs four at a time so that no lane of work is wasted on
// absent outputs; wider ones a GEMM tile.
template <class T>
void readout_step(const RnnDims& d, const RnnLayout& L, const T* P, i64 rows,
                  const T* H, T* out, i64 ostride) {
    constexpr int Lv = V<T>::L;
    const T* by = P + L.off_by;
    const i64 ldh = L.ldh, Ny = d.Ny;
    if (2 * Ny <= Lv) {
        const T* Wr = P + L.off_whyr;
        const i64 npairs = rows * Ny;
        for (i64 p0 = 0; p0 < npairs; p0 += 4) {
            const i64 np = imin(4, npairs - p0);
            const T* h[4];
            const T* w[4];
            for (int q = 0; q < 4; ++q) {
                const i64 pq = p0 + (q < np ? q : 0);
                h[q] = H + (pq / Ny) * ldh;
                w[q] = Wr + (pq % Ny) * ldh;
            }
            vec_t<T> acc[4] = {};
            for (i64 c = 0; c < ldh; c += Lv) {
#pragma GCC unroll 4
                for (int q = 0; q < 4; ++q)
                    acc[q] += vload<T>(h[q] + c) * vload<T>(w[q] + c);
            }
            for (int q = 0; q < np; ++q) {
                const i64 pq = p0 + q, i = pq / Ny, o = pq % Ny;
                out[i * ostride + o] = hsum<T>(acc[q]) + by[o];
            }
        }
        return;
    }
    rows_gemm<T>(rows, d.Nh, H, ldh, P + L.off_whyT, L.ldy, Ny,
                 [&](i64 i, i64 j0, const vec_t<T>* acc, int nv) {
                     T* o = out + i * ostride + j0;
                     for (int v = 0; v < nv; ++v) {
                         const vec_t<T> r = acc[v] + vload<T>(by + j0 + v * Lv);
                         const i64 w = Ny - j0 - v * Lv;
                         if (w >= Lv) {
                             vstore<T>(o + v * Lv, r);
                         } else {
                             for (i64 j = 0; j < w; ++j) o[v * Lv + j] = r[j];
                         }
                     }
                 });
}

// Packs B(k, j) = src[k*rs + j*cs] for k < K, j < N into panels of NR columns,
// zero-padded to ncols_pad columns: dst[(j/NR)*K*NR + k*NR + j%NR].
template <class T>
void pack_b(i64 K, i64 N, const T* src, i64 rs, i64 cs, i64 ncols_pad, T* dst) {
    for (i64 j0 = 0; j0 < ncols_pad; j0 += NR<T>) {
        T* p = dst + (j0 / NR<T>)*K * NR<T>;
        const i64 w = imin(NR<T>, N - j0);
        for (i64 k = 0; k < K; ++k) {
            T* row = p + k * NR<T>;
            i64 j = 0;
            for (; j < w; ++j) row[j] = src[k * rs + (j0 + j) * cs];
            for (; j < NR<T>; ++j) row[j] = T(0);
        }
    }
}

// acc[i*NVV + v] = sum_k A(i, k) B(k, v*L ..) with A(i, k) = a[k*acs + i]
// (k-major, e.g. a transposed row-major matrix) and B rows b + k*ldb (NVV*L
// readable values each).
template <class T, int M, int NVV>
__attribute__((noinline)) void micro_kmajor(i64 K, const T* __restrict a, i64 acs,
                                            const T* __restrict b, i64 ldb,
                                            vec_t<T> (&acc)[NACC]) {
    static_assert(M * NVV <= NACC, "tile exceeds the accumulators");
    constexpr int L = V<T>::L;
#pragma GCC unroll 32
    for (int i = 0; i < M * NVV; ++i) acc[i] = vec_t<T>{};
    for (i64 k = 0; k < K; ++k) {
        const vec_t<T> b0 = vload<T>(b + k * ldb);
        if (NVV == 2) {
            const vec_t<T> b1 = vload<T>(b + k * ldb + L);
#pragma GCC unroll 16
            for (int i = 0; i < M; ++i) {
                const vec_t<T> ai = vbcast<T>(a[k * acs + i]);
                acc[2 * i] += ai * b0;
                acc[2 * i + 1] += ai * b1;
            }
        } else {
#pragma GCC unroll 32
            for (int i = 0; i < M; ++i) acc[i] += vbcast<T>(a[k * acs + i]) * b0;
        }
    }
}

// C[M x N] += sum_k A(i, k) B(k, j) for a short k (the rows of a few time
// steps, still in L1/L2): A(i, k) = a[k*acs + i], B(k, j) = b[k*ldb + j] with
// rows of b readable up to N rounded to L (zero padding). C row-major, stride ldc.
template <class T>
void gemm_kmajor_acc(i64 M, i64 N, i64 K, const T* a, i64 acs, const T* b, i64 ldb,
                     T* C, i64 ldc) {
    constexpr int L = V<T>::L;
    if (M <= 0 || K <= 0) return;
    for (i64 j0 = 0; j0 < N; j0 += NR<T>) {
        const i64 w = imin(NR<T>, N - j0);
        auto panel = [&](auto nvv) {
            constexpr int NVV = decltype(nvv)::value, MT = tile_rows<NVV>;
            const i64 ntiles = (M + MT - 1) / MT;
            i64 i0 = 0;
            for (i64 tile = 0; tile < ntiles; ++tile) {
                const i64 i1 = M * (tile + 1) / ntiles;
                vec_t<T> acc[NACC];
                with_rows<MT>(static_cast<int>(i1 - i0), [&](auto m) {
                    micro_kmajor<T, decltype(m)::value, NVV>(K, a + i0, acs, b + j0,
                                                             ldb, acc);
                });
                for (i64 i = i0; i < i1; ++i) {
                    const vec_t<T>* ar = acc + (i - i0) * NVV;
                    T* c = C + i * ldc + j0;
                    if (w == NVV * L) {
                        for (int v = 0; v < NVV; ++v)
                            vstore<T>(c + v * L, vload<T>(c + v * L) + ar[v]);
                    } else {
                        T buf[NR<T>];
                        for (int v = 0; v < NVV; ++v) vstore<T>(buf + v * L, ar[v]);
                        for (i64 j = 0; j < w; ++j) c[j] += buf[j];
                    }
                }
                i0 = i1;
            }
        };
        if (w <= L)
            panel(Int<1>{});
        else
            panel(Int<2>{});
    }
}

// C[M x N] = sum_k A(i, k) B(k, j), a reduction over a long k (all time steps
// and batch rows) of two k-major operands: A(i, k) = a[k*acs + i], B(k, j) =
// b[k*ldb + j], where every row of b holds a multiple of NR readable values
// (zero padding). Neither operand is packed: both are already contiguous along
// the register tile; k (and, for wide C, j) is blocked so that the B block stays
// in L2 while every row tile sweeps it. C is row-major with stride ldc.
template <class T>
void gemm_kmajor(i64 M, i64 N, i64 K, const T* a, i64 acs, const T* b, i64 ldb, T* C,
                 i64 ldc, T* pack) {
    constexpr int L = V<T>::L;
    for (i64 i = 0; i < M; ++i)
        for (i64 j = 0; j < N; ++j) C[i * ldc + j] = T(0);
    // Wide reductions (dW_hh at Nh >= 128) pack their blocks into contiguous
    // tile slivers and panels: with a row stride of 0.5-4 KB the unpacked rows
    // fall into few L1/L2 sets and thrash (measured: packing is 8% faster at
    // Nh = 256, 16% at 1024, but 7-10% slower at Nh = 64-72, and narrow ones
    // with an Nx- or Ny-row side would spend as long packing as computing).
    const bool packed = pack != nullptr && M >= 128 && N >= 128;
    const i64 Mp = round_up(M, MR);
    T* apack = pack;
    T* bpack = pack ? pack + kGemmKC * Mp : nullptr;
    for (i64 pc = 0; pc < K; pc += kGemmKC) {
        const i64 kc = imin(kGemmKC, K - pc);
        if (packed) {  // A block: apack[(i0/MR)*kc*MR + k*MR + i], rows zero-padded
            for (i64 i0 = 0; i0 < M; i0 += MR) {
                T* dst = apack + (i0 / MR) * kc * MR;
                const i64 h = imin(MR, M - i0);
                for (i64 k = 0; k < kc; ++k) {
                    const T* src = a + (pc + k) * acs + i0;
                    for (i64 i = 0; i < MR; ++i)
                        dst[k * MR + i] = i < h ? src[i] : T(0);
                }
            }
        }
        for (i64 jc = 0; jc < N; jc += kGemmNC) {
            const i64 jend = imin(N, jc + kGemmNC);
            if (packed) {  // B block: bpack[((j0-jc)/NR)*kc*NR + k*NR + j]
                for (i64 j0 = jc; j0 < jend; j0 += NR<T>) {
                    T* dst = bpack + ((j0 - jc) / NR<T>)*kc * NR<T>;
                    for (i64 k = 0; k < kc; ++k)
                        for (int v = 0; v < NV; ++v)
                            vstore<T>(dst + k * NR<T> + v * L,
                                      vload<T>(b + (pc + k) * ldb + j0 + v * L));
                }
            }
            for (i64 i0 = 0; i0 < M; i0 += MR) {
                const i64 h = imin(MR, M - i0);
                const T* ap = packed ? apack + (i0 / MR) * kc * MR : a + pc * acs + i0;
                const i64 as = packed ? MR : acs;
                for (i64 j0 = jc; j0 < jend; j0 += NR<T>) {
                    const T* bp = packed ? bpack + ((j0 - jc) / NR<T>)*kc * NR<T>
                                         : b + pc * ldb + j0;
                    const i64 bs = packed ? NR<T> : ldb;
                    vec_t<T> acc[NACC];
                    with_rows<MR>(static_cast<int>(packed ? MR : h), [&](auto m) {
                        micro_kmajor<T, decltype(m)::value, 2>(kc, ap, as, bp, bs, acc);
                    });
                    const i64 w = imin(NR<T>, N - j0);
                    for (i64 i = 0; i < h; ++i) {
                        T* c = C + (i0 + i) * ldc + j0;
                        if (w == NR<T>) {
                            for (int v = 0; v < NV; ++v)
                                vstore<T>(c + v * L,
                                          vload<T>(c + v * L) + acc[i * NV + v]);
                        } else {
                            T buf[NR<T>];
                            for (int v = 0; v < NV; ++v)
                                vstore<T>(buf + v * L, acc[i * NV + v]);
                            for (i64 j = 0; j < w; ++j) c[j] += buf[j];
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// RNN passes on one work item (batch rows [b0, b1) of variant k).

template <class T>
void pack_common(const RnnDims& d, const RnnLayout& L, const T* W_xh, const T* W_hy,
                 const T* b_h, const T* b_y, T* P) {
    pack_b<T>(d.Nx, d.Nh, W_xh, 1, d.Nx, L.ldh,
              P + L.off_wxhT);  // B(m, j) = W_xh[j, m]
    pack_b<T>(d.Nh, d.Ny, W_hy, 1, d.Nh, L.ldy,
              P + L.off_whyT);  // B(j, o) = W_hy[o, j]
    T* wr = P + L.off_whyr;
    for (i64 o = 0; o < L.ny4; ++o)
        for (i64 j = 0; j < L.ldh; ++j)
            wr[o * L.ldh + j] = (o < d.Ny && j < d.Nh) ? W_hy[o * d.Nh + j] : T(0);
    T* bh = P + L.off_bh;
    T* by = P + L.off_by;
    for (i64 j = 0; j < L.ldh; ++j) bh[j] = (b_h && j < d.Nh) ? b_h[j] : T(0);
    for (i64 j = 0; j < L.ldy; ++j) by[j] = (b_y && j < d.Ny) ? b_y[j] : T(0);
}

template <class T>
void pack_forward(const ForwardArgs<T>& a, const RnnLayout& L, T* P) {
    const RnnDims& d = a.d;
    pack_common<T>(d, L, a.W_xh, a.W_hy, a.b_h, a.b_y, P);
    for (i64 k = 0; k < d.K; ++k) {
        T* dst = P + L.off_whhT + k * d.Nh * L.ldh;
        const T* W = a.W_hh + k * d.Nh * d.Nh;
        if (!L.fused) {  // B(m, j) = W_hh[j, m]
            pack_b<T>(d.Nh, d.Nh, W, 1, d.Nh, L.ldh, dst);
            continue;
        }
        // B(m, j) = W_hh[j, m] for j < Nh, W_hy[j - Nh, m] for j < Nh + Ny
        // Column by column, so the source rows are read contiguously (this
        // pass runs serially before the variants are split between threads).
        for (i64 c = 0; c < L.ldh; ++c) {
            T* p = dst + (c / NR<T>)*d.Nh * NR<T> + c % NR<T>;
            const T* src = c < d.Nh          ? W + c * d.Nh
                           : c < d.Nh + d.Ny ? a.W_hy + (c - d.Nh) * d.Nh
                                             : nullptr;
            for (i64 m = 0; m < d.Nh; ++m) p[m * NR<T>] = src ? src[m] : T(0);
        }
    }
    if (L.fused) {  // the readout columns' bias
        T* bh = P + L.off_bh;
        for (i64 o = 0; o < d.Ny; ++o) bh[d.Nh + o] = a.b_y ? a.b_y[o] : T(0);
    }
}

template <class T>
void pack_grad(const GradArgs<T>& a, const RnnLayout& L, T* P) {
    const RnnDims& d = a.d;
    pack_b<T>(d.Nh, d.Nh, a.W_hh, 1, d.Nh, L.ldh, P + L.off_whhT);
    pack_b<T>(d.Nh, d.Nh, a.W_hh, d.Nh, 1, L.ldh,
              P + L.off_whh);  // B(m, j) = W_hh[m, j]
    pack_b<T>(d.Ny, d.Nh, a.W_hy, d.Nh, 1, L.ldh,
              P + L.off_why);  // B(o, j) = W_hy[o, j]
    pack_common<T>(d, L, a.W_xh, a.W_hy, a.b_h, a.b_y, P);
}

// y = tanh(y) in place on the first ncols (rounded up to the vector length)
// columns of `rows` rows of stride ld, still in L1; the columns beyond stay as
// they are (zero padding). The step's tanh runs as this separate pass rather
// than in the GEMM epilogue: one vtanh is a chain of ~25 dependent operations,
// and the epilogue's one or two per row left the out-of-order window too short
// to overlap them (measured: the epilogue tanh took ~2.5x the time per value).
// AVX-512 runs the step's tanh as that separate pass; on narrower vectors the
// epilogue's tanh measured as fast or faster (flip-flop forward: 3% on AVX2).
constexpr bool kTanhPass = VB >= 64;

template <class T>
inline void tanh_rows(T* y, i64 rows, i64 ld, i64 ncols) {
    constexpr int Lv = V<T>::L;
    const i64 nc = round_up(ncols, Lv);
    for (i64 r = 0; r < rows; ++r) {
        T* row = y + r * ld;
        for (i64 j = 0; j < nc; j += Lv)
            vstore<T>(row + j, vtanh<T>(vload<T>(row + j)));
    }
}

// The leak of one step on `rows` contiguous rows of stride ldh (padding
// included: zeros stay zero): h = (1 - leak) prev + leak u, with u = tanh(a)
// already in h. With du, BPTT's factor dh/da = leak (1 - u^2) goes there too:
// recovering u from h and prev later would cancel for a small leak.
template <class T>
inline void leak_rows(T* h, const T* prev, T* du, i64 rows, i64 ldh, T leak) {
    constexpr int Lv = V<T>::L;
    const vec_t<T> a = vbcast<T>(leak), c = vbcast<T>(T(1) - leak);
    const i64 n = rows * ldh;
    if (du == nullptr) {
        for (i64 j = 0; j < n; j += Lv)
            vstore<T>(h + j, c * vload<T>(prev + j) + a * vload<T>(h + j));
        return;
    }
    for (i64 j = 0; j < n; j += Lv) {
        const vec_t<T> u = vload<T>(h + j);
        vstore<T>(h + j, c * vload<T>(prev + j) + a * u);
        vstore<T>(du + j, a * (T(1) - u * u));
    }
}

// One recurrence step for `rows` rows: cur = tanh(prev W_hh^T + x_t W_xh^T + b_h).
// The input projection is fused into the step's GEMM as extra inner-dimension
// terms (no pass over memory for it), bias and (below AVX-512) tanh into its
// epilogue.
template <class T>
inline void step_forward(const RnnDims& d, const RnnLayout& L, const T* P,
                         const T* whhT, i64 rows, const T* prev, const T* xt, i64 ldx,
                         T* cur) {
    constexpr int Lv = V<T>::L;
    const i64 ldh = L.ldh;
    const T* bh = P + L.off_bh;
    if constexpr (kTanhPass) {
        rows_gemm<T>(
            rows, d.Nh, prev, ldh, whhT, ldh, d.Nh,
            [&](i64 r, i64 j0, const vec_t<T>* acc, int nv) {
                T* c = cur + r * ldh + j0;
                vstore<T>(c, acc[0] + vload<T>(bh + j0));
                vstore<T>(c + Lv,
                          nv == 2 ? acc[1] + vload<T>(bh + j0 + Lv) : vec_t<T>{});
            },
            d.Nx, xt, ldx, P + L.off_wxhT);
        tanh_rows<T>(cur, rows, ldh, d.Nh);
    } else {
        rows_gemm<T>(
            rows, d.Nh, prev, ldh, whhT, ldh, d.Nh,
            [&](i64 r, i64 j0, const vec_t<T>* acc, int nv) {
                T* c = cur + r * ldh + j0;
                vstore<T>(c, vtanh<T>(acc[0] + vload<T>(bh + j0)));
                vstore<T>(c + Lv, nv == 2 ? vtanh<T>(acc[1] + vload<T>(bh + j0 + Lv))
                                          : vec_t<T>{});
            },
            d.Nx, xt, ldx, P + L.off_wxhT);
    }
}

// Forward step with the readout of the previous step fused (L.fused): the GEMM
// yields [a_t | y_{t-1}] per row; hidden columns get tanh, readout columns
// (plus b_y) go to yprev row i (yprev + i*Ny, null at t = 0), and the padding
// of cur stays zero.
template <class T>
inline void step_forward_fused(const RnnDims& d, const RnnLayout& L, const T* P,
                               const T* whhT, i64 rows, const T* prev, const T* xt,
                               i64 ldx, T* cur, T* yprev) {
    constexpr int Lv = V<T>::L;
    const i64 ldh = L.ldh, Nh = d.Nh, Ny = d.Ny;
    const T* bh = P + L.off_bh;
    vec_t<T> iota;
    for (int j = 0; j < Lv; ++j) iota[j] = static_cast<T>(j);
    rows_gemm<T>(
        rows, Nh, prev, ldh, whhT, ldh, Nh + Ny,
        [&](i64 r, i64 j0, const vec_t<T>* acc, int nv) {
            T* c = cur + r * ldh + j0;
            if (nv == 2 && j0 + 2 * Lv <= Nh) {  // hidden columns only (most panels)
                vstore<T>(c, acc[0] + vload<T>(bh + j0));
                vstore<T>(c + Lv, acc[1] + vload<T>(bh + j0 + Lv));
                return;
            }
            for (int v = 0; v < NV; ++v) {
                const i64 c0 = j0 + v * Lv;
                if (v >= nv) {
                    vstore<T>(c + v * Lv, vec_t<T>{});
                    continue;
                }
                const vec_t<T> pre = acc[v] + vload<T>(bh + c0);
                if (c0 + Lv <= Nh) {
                    vstore<T>(c + v * Lv, pre);
                    continue;
                }
                const auto hid = iota < static_cast<T>(Nh - c0);
                vstore<T>(c + v * Lv, hid ? pre : vec_t<T>{});
                if (yprev == nullptr) continue;
                T buf[Lv];
                vstore<T>(buf, pre);
                const i64 lo = c0 < Nh ? Nh : c0, hi = imin(c0 + Lv, Nh + Ny);
                for (i64 q = lo; q < hi; ++q) yprev[r * Ny + q - Nh] = buf[q - c0];
            }
        },
        d.Nx, xt, ldx, P + L.off_wxhT);
    tanh_rows<T>(cur, rows, ldh, Nh);  // tanh(0) = 0 keeps the padding zero
}

// Forward pass of variant k for rows [b0, b1): only two hidden blocks are kept
// (ping-pong; the whole history would stream through L3), x is read in place
// and each step's readout runs while its hidden states are in L1.
template <class T>
void forward_item(const ForwardArgs<T>& a, const RnnLayout& L, const T* P, i64 k,
                  i64 b0, i64 b1, T* ws) {
    const RnnDims& d = a.d;
    const i64 bs = b1 - b0, ldh = L.ldh, blk = bs * ldh;
    T* H = ws + L.off_H;
    for (i64 i = 0; i < bs; ++i) {
        T* row = H + i * ldh;
        for (i64 j = 0; j < ldh; ++j)
            row[j] = (a.h0 && j < d.Nh) ? a.h0[(b0 + i) * a.h0_bstride + j] : T(0);
    }
    const T* whhT = P + L.off_whhT + k * d.Nh * ldh;
    T* yk = a.y + k * d.T * d.B * d.Ny;
    T* hk = a.hidden ? a.hidden + k * d.T * d.B * d.Nh : nullptr;
    const bool leaky = a.leak != T(1);
    for (i64 t = 0; t < d.T; ++t) {
        const T* prev = H + (t & 1) * blk;
        T* cur = H + ((t + 1) & 1) * blk;
        const T* xt = a.x + (t * d.B + b0) * d.Nx;
        if (L.fused) {
            // the fused readout of step t - 1 is computed from prev, already leaked
            step_forward_fused<T>(d, L, P, whhT, bs, prev, xt, d.Nx, cur,
                                  t > 0 ? yk + ((t - 1) * d.B + b0) * d.Ny : nullptr);
            if (leaky) leak_rows<T>(cur, prev, nullptr, bs, ldh, a.leak);
            if (t == d.T - 1)
                readout_step<T>(d, L, P, bs, cur, yk + (t * d.B + b0) * d.Ny, d.Ny);
        } else {
            step_forward<T>(d, L, P, whhT, bs, prev, xt, d.Nx, cur);
            if (leaky) leak_rows<T>(cur, prev, nullptr, bs, ldh, a.leak);
            readout_step<T>(d, L, P, bs, cur, yk + (t * d.B + b0) * d.Ny, d.Ny);
        }
        if (hk)
            for (i64 i = 0; i < bs; ++i)
                std::memcpy(hk + (t * d.B + b0 + i) * d.Nh, cur + i * ldh,
                            sizeof(T) * static_cast<std::size_t>(d.Nh));
    }
}

// BPTT step t on bs rows: dA_t = dL/da_t into cur, from dY_t W_hy + dA_{t+1} W_hh
// (one GEMM, the readout term as extra inner-dimension terms; dA_next is unread
// at the last step). Without a leak that sum is dL/dh_t and dA_t = dL/dh_t (1 -
// h_t^2) (fac = h). With one, dL/dh_t also gets (1 - leak) dL/dh_{t+1} through
// the state's direct path (kept in gnext/gcur) and dA_t = dL/dh_t du_t (fac =
// du, leak (1 - u_t^2) from the forward pass).
template <class T, bool LEAKY>
inline void bptt_step(const RnnDims& d, const RnnLayout& L, const T* P, i64 bs,
                      bool last, const T* dA_next, const T* Yt, const T* fac, T* cur,
                      const T* gnext, T* gcur, T c1) {
    constexpr int Lv = V<T>::L;
    const i64 ldh = L.ldh;
    rows_gemm<T>(
        bs, last ? 0 : d.Nh, last ? cur : dA_next, ldh, P + L.off_whh, ldh, d.Nh,
        [&](i64 r, i64 j0, const vec_t<T>* acc, int nv) {
            T* c = cur + r * ldh + j0;
            const T* fr = fac + r * ldh + j0;
            if constexpr (!LEAKY) {
                for (int v = 0; v < NV; ++v) {
                    const vec_t<T> hv = vload<T>(fr + v * Lv);
                    vstore<T>(c + v * Lv,
                              v < nv ? acc[v] * (T(1) - hv * hv) : vec_t<T>{});
                }
            } else {
                T* gc = gcur + r * ldh + j0;
                const T* gn = gnext + r * ldh + j0;
                for (int v = 0; v < NV; ++v) {
                    vec_t<T> gv = vec_t<T>{};
                    if (v < nv)
                        gv = last ? acc[v] : acc[v] + c1 * vload<T>(gn + v * Lv);
                    vstore<T>(gc + v * Lv, gv);
                    vstore<T>(c + v * Lv, gv * vload<T>(fr + v * Lv));
                }
            }
        },
        d.Ny, Yt, L.ldy, P + L.off_why);
}

// Loss and gradients of one batch shard: forward with the history kept, then
// BPTT. Over 100 lines because the weight-gradient reductions are interleaved
// with the backward steps (chunked while the rows are in L1/L2, see below) and
// share its workspace bookkeeping; split apart, the chunk/ring indexing would
// have to be passed around.
template <class T>
double grad_item(const GradArgs<T>& a, const RnnLayout& L, const T* P, i64 b0, i64 b1,
                 T* ws, T* g) {
    constexpr int Lv = V<T>::L;
    const RnnDims& d = a.d;
    const i64 bs = b1 - b0, ldh = L.ldh, ldy = L.ldy, blk = bs * ldh, R = d.T * bs;
    T* H = ws + L.off_H;
    const T* H1 = H + blk;
    T* dA = ws + L.off_dA;
    T* Y = ws + L.off_Y;
    T* X = ws + L.off_X;
    for (i64 t = 0; t < d.T; ++t)
        std::memcpy(X + t * bs * d.Nx, a.x + (t * d.B + b0) * d.Nx,
                    sizeof(T) * static_cast<std::size_t>(bs * d.Nx));
    for (i64 j = 0; j < blk; ++j) H[j] = T(0);
    // Forward with the whole history kept; readout, loss and dL/dy per step,
    // while the step's rows are in L1.
    const T scale = T(2) / static_cast<T>(a.count);
    const bool leaky = a.leak != T(1);
    T* du = ws + L.off_D;
    double sse = 0;
    for (i64 t = 0; t < d.T; ++t) {
        T* cur = H + (t + 1) * blk;
        step_forward<T>(d, L, P, P + L.off_whhT, bs, H + t * blk, X + t * bs * d.Nx,
                        d.Nx, cur);
        if (leaky) leak_rows<T>(cur, H + t * blk, du + t * blk, bs, ldh, a.leak);
        T* Yt = Y + t * bs * ldy;
        readout_step<T>(d, L, P, bs, cur, Yt, ldy);
        for (i64 i = 0; i < bs; ++i) {
            const i64 off = (t * d.B + b0 + i) * d.Ny;
            T* yr = Yt + i * ldy;
            // squared residuals into two register accumulators per row (an
            // accumulator indexed at run time lives in memory: a slow chain)
            double s2[2] = {0, 0};
            for (i64 o = 0; o < d.Ny; o += 2) {
#pragma GCC unroll 2
                for (int q = 0; q < 2; ++q) {
                    if (o + q >= d.Ny) break;
                    const T res = yr[o + q] - a.target[off + o + q];
                    const bool on = a.mask == nullptr || a.mask[off + o + q] != 0;
                    const double r = static_cast<double>(res);
                    s2[q] += on ? r * r : 0.0;
                    yr[o + q] = on ? scale * res : T(0);
                }
            }
            sse += s2[0] + s2[1];
            for (i64 o = d.Ny; o < ldy; ++o) yr[o] = T(0);
        }
    }
    // Parameter gradients accumulate in g (and the transposed dW_xh in tmp).
    const i64 ngx = d.Nx * d.Nh;
    T* gxT = ws + L.off_tmp;
    T* colh = gxT + ngx;
    T* coly = colh + ldh;
    T* gWhh = g + L.off_gWhh;
    T* gWhy = g + L.off_gWhy;
    for (i64 j = 0; j < d.Nh * d.Nh; ++j) gWhh[j] = T(0);
    for (i64 j = 0; j < d.Ny * d.Nh; ++j) gWhy[j] = T(0);
    for (i64 j = 0; j < ngx + ldh + ldy; ++j) gxT[j] = T(0);
    auto colsums = [&](const T* dAc, const T* Yc, i64 rows) {  // bias gradients
        for (i64 r = 0; r < rows; ++r) {
            const T* dr = dAc + r * ldh;
            for (i64 j = 0; j < ldh; j += Lv)
                vstore<T>(colh + j, vload<T>(colh + j) + vload<T>(dr + j));
            const T* yr = Yc + r * ldy;
            for (i64 j = 0; j < ldy; j += Lv)
                vstore<T>(coly + j, vload<T>(coly + j) + vload<T>(yr + j));
        }
    };
    // BPTT: dA_t = (dY_t W_hy + dA_{t+1} W_hh) * (1 - h_t^2), the readout term
    // fused into the step's GEMM as extra inner-dimension terms. For small Nh,
    // every few steps (chunk rows, still in L1/L2) the weight gradients take
    // their share: dW_hh += dA^T H_prev, dW_xh^T += X^T dA, dW_hy += dY^T H (one
    // pass over all T*bs rows afterwards streams them from L3: 1.15x slower at
    // Nh = 72). Wide ones keep that pass, whose packed, k-blocked kernel beats
    // per-chunk updates of an L2-sized dW_hh (1.05-1.1x at Nh = 256). Chunked,
    // dA keeps a ring of L.ring_dA blocks, step t in slot t % ring; a chunk
    // starts at a multiple of chunk, which divides the ring (or is 1), so its
    // blocks are contiguous rows. Chunk and ring are sized for L.bs rows,
    // which bounds bs.
    const i64 chunk = L.chunk, ring = L.ring_dA;
    const bool chunked = chunk > 0;
    auto dA_at = [&](i64 t) { return dA + (t % ring) * blk; };
    T* G = ws + L.off_G;
    for (i64 t = d.T - 1; t >= 0; --t) {
        T* cur = dA_at(t);
        const bool last = t == d.T - 1;
        const T* dA_next = last ? nullptr : dA_at(t + 1);
        if (leaky)
            bptt_step<T, true>(d, L, P, bs, last, dA_next, Y + t * bs * ldy,
                               du + t * blk, cur, G + ((t + 1) & 1) * blk,
                               G + (t & 1) * blk, T(1) - a.leak);
        else
            bptt_step<T, false>(d, L, P, bs, last, dA_next, Y + t * bs * ldy,
                                H1 + t * blk, cur, nullptr, nullptr, T(1));
        if (!chunked || t % chunk != 0) continue;
        const i64 rows = (imin(d.T, t + chunk) - t) * bs;
        const T* dAc = cur;  // slot 0: the chunk's first step
        const T* Yc = Y + t * bs * ldy;
        gemm_kmajor_acc<T>(d.Nh, d.Nh, rows, dAc, ldh, H + t * blk, ldh, gWhh, d.Nh);
        gemm_kmajor_acc<T>(d.Nx, d.Nh, rows, X + t * bs * d.Nx, d.Nx, dAc, ldh, gxT,
                           d.Nh);
        gemm_kmajor_acc<T>(d.Ny, d.Nh, rows, Yc, ldy, H1 + t * blk, ldh, gWhy, d.Nh);
        colsums(dAc, Yc, rows);
    }
    if (!chunked) {
        gemm_kmajor<T>(d.Nh, d.Nh, R, dA, ldh, H, ldh, gWhh, d.Nh, ws + L.off_pack);
        gemm_kmajor<T>(d.Nx, d.Nh, R, X, d.Nx, dA, ldh, gxT, d.Nh, nullptr);
        gemm_kmajor<T>(d.Ny, d.Nh, R, Y, ldy, H1, ldh, gWhy, d.Nh, nullptr);
        colsums(dA, Y, R);
    }
    T* gxh = g + L.off_gWxh;
    for (i64 j = 0; j < d.Nh; ++j)
        for (i64 m = 0; m < d.Nx; ++m) gxh[j * d.Nx + m] = gxT[m * d.Nh + j];
    T* gbh = g + L.off_gbh;
    T* gby = g + L.off_gby;
    for (i64 j = 0; j < d.Nh; ++j) gbh[j] = colh[j];
    for (i64 o = 0; o < d.Ny; ++o) gby[o] = coly[o];
    return sse;
}

#include "rnn_simd_tposed.hpp"

}  // namespace

#if RNNSCHUR_VBYTES == 64
#define RNNSCHUR_TPOSED(T) &pack_forward_t<T>, &forward_item_t<T>
#else
#define RNNSCHUR_TPOSED(T) nullptr, nullptr
#endif
const KernelSet<float> kernels_f32 = {
    NR<float>,         &pack_forward<float>, &pack_grad<float>, &forward_item<float>,
    &grad_item<float>, &tanh_array<float>,   V<float>::L,       RNNSCHUR_TPOSED(float)};
const KernelSet<double> kernels_f64 = {NR<double>,         &pack_forward<double>,
                                       &pack_grad<double>, &forward_item<double>,
                                       &grad_item<double>, &tanh_array<double>,
                                       V<double>::L,       RNNSCHUR_TPOSED(double)};
#undef RNNSCHUR_TPOSED

}  // namespace RNNSCHUR_ISA_NS
}  // namespace rnnschur
