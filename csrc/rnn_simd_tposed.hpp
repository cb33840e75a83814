// Forward pass with the batch in the vector lanes (AVX-512 only). Included by
// rnn_simd_impl.hpp inside its ISA namespace, after the tanh and the helpers.
//
// The state of one work item is kept transposed, S^T (Nh rows x bsp batch
// columns, bsp = the shard's rows rounded up to the vector length; padding
// lanes run a trajectory of their own, on the next shard's inputs or zeros, that
// is never written back). A step is
//   [A^T ; Y_{t-1}^T] = [W_hh W_xh ; W_hy 0] [S_{t-1}^T ; X_t^T] + [b_h ; b_y],
// one GEMM of R = Nh + Ny rows over Kin = Nh + Nx inner terms (X^T transposed
// once per call, shared by all items), then S_t^T = tanh(A^T) (leaked) and
// Y_{t-1}^T transposed into y. Columns are the batch, so a register tile of 6
// rows x 4 vectors (24 accumulators of the 32 zmm registers) takes 4 loads and
// 6 broadcasts per 24 FMAs (the row layout's 6 x 2 tile: 8 per 12), and the
// hidden width needs no vector padding. Used where the shards fill their
// vectors (rnn_dispatch.cpp, tposed_pays); small or ragged batches waste lanes.
#if RNNSCHUR_VBYTES == 64

// Tiles: the R rows split into tiles of nearly equal height <= L.mr (the row
// layout of the packed weights), times column blocks of up to 24 / L.mr
// vectors: 24 accumulators, 8 registers left for the B vectors and the
// broadcast.
constexpr int kTposedAcc = 24;

// Where a tile's rows go: hidden rows (r < Nh), plus bias, to cur if
// `hidden`; readout rows to ybuf (row r - Nh, stride ldS) if `readout`. The
// tanh runs afterwards as a pass over the whole state block (tposed_tanh).
template <class T>
struct TposedEpi {
    const T* bias;  // R values: b_h then b_y
    T* cur;         // S_t^T, pre-activations until the tanh pass
    T* ybuf;        // Ny x ldS
    i64 Nh, ldS;
    bool hidden, readout;
};

// acc(i, v) += sum_kk a[kk*M + i] * b[kk*ldb + v*L ..] for kk < K.
template <class T, int M, int NVV>
inline void tposed_fma(i64 K, const T* __restrict a, const T* __restrict b, i64 ldb,
                       vec_t<T> (&acc)[M * NVV]) {
    constexpr int Lv = V<T>::L;
    for (i64 kk = 0; kk < K; ++kk) {
        vec_t<T> bv[NVV];
#pragma GCC unroll 4
        for (int v = 0; v < NVV; ++v) bv[v] = vload<T>(b + kk * ldb + v * Lv);
#pragma GCC unroll 16
        for (int i = 0; i < M; ++i) {
            const vec_t<T> ai = vbcast<T>(a[kk * M + i]);
#pragma GCC unroll 4
            for (int v = 0; v < NVV; ++v) acc[i * NVV + v] += ai * bv[v];
        }
    }
}

// acc(i, v) = sum_kk A(r0 + i, kk) [S ; X](kk, c0 + v*L ..) over the Nh state
// rows (stride ldS) and the nx input rows (stride ldX) of the inner dimension,
// then the epilogue on rows r0 + i, columns c0 + v*L. `a` is the tile's panel
// (element (i, kk) at kk*M + i). Not inlined: the 24 accumulators must own
// their registers (inside a larger caller the allocator spills them).
template <class T, int M, int NVV>
__attribute__((noinline)) void tposed_tile(i64 Nh, i64 nx, const T* a, const T* S,
                                           const T* X, i64 ldX, i64 r0, i64 c0,
                                           const TposedEpi<T>& e) {
    constexpr int Lv = V<T>::L;
    vec_t<T> acc[M * NVV];
#pragma GCC unroll 32
    for (int i = 0; i < M * NVV; ++i) acc[i] = vec_t<T>{};
    tposed_fma<T, M, NVV>(Nh, a, S + c0, e.ldS, acc);
    tposed_fma<T, M, NVV>(nx, a + Nh * M, X + c0, ldX, acc);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
        const i64 r = r0 + i;
        T* dst;
        if (r < e.Nh) {
            if (!e.hidden) continue;
            dst = e.cur + r * e.ldS + c0;
        } else {
            if (!e.readout) continue;
            dst = e.ybuf + (r - e.Nh) * e.ldS + c0;
        }
        const vec_t<T> bias = vbcast<T>(e.bias[r]);
#pragma GCC unroll 4
        for (int v = 0; v < NVV; ++v) vstore<T>(dst + v * Lv, acc[i * NVV + v] + bias);
    }
}

// h = tanh(h) (leak = 1) or (1 - leak) prev + leak tanh(h) on n values (a
// multiple of the vector length). A separate pass rather than the tile's
// epilogue: there the tanh's constants and temporaries compete with the
// accumulators for registers and spill (measured: the K = 8 copy-shape forward
// 7% slower); here they stay in registers and the out-of-order core overlaps
// independent vectors.
template <class T>
void tposed_tanh(T* h, const T* prev, i64 n, T leak) {
    constexpr int Lv = V<T>::L;
    if (leak == T(1)) {
        for (i64 j = 0; j < n; j += Lv) vstore<T>(h + j, vtanh<T>(vload<T>(h + j)));
        return;
    }
    const vec_t<T> a = vbcast<T>(leak), c = vbcast<T>(T(1) - leak);
    for (i64 j = 0; j < n; j += Lv)
        vstore<T>(h + j, c * vload<T>(prev + j) + a * vtanh<T>(vload<T>(h + j)));
}

// Runs the row tiles [tile_lo, ntiles) of the step GEMM over all column blocks
// of an item with nvec vectors of batch columns: inner terms from the state S
// (Nh rows) and nx rows of the inputs X (stride L.ldX).
template <class T, int MR>
void tposed_gemm_mr(const TposedLayout& L, const T* A, const T* S, const T* X, i64 nx,
                    i64 nvec, i64 tile_lo, const TposedEpi<T>& e) {
    constexpr int Lv = V<T>::L, NVMAX = kTposedAcc / MR;
    for (i64 tile = tile_lo; tile < L.ntiles; ++tile) {
        const i64 r0 = L.R * tile / L.ntiles, r1 = L.R * (tile + 1) / L.ntiles;
        const T* a = A + r0 * L.Kin;
        for (i64 v0 = 0; v0 < nvec; v0 += NVMAX) {
            const int nvv = static_cast<int>(imin(NVMAX, nvec - v0));
            with_rows<MR>(static_cast<int>(r1 - r0), [&](auto m) {
                constexpr int M = decltype(m)::value;
                with_rows<NVMAX>(nvv, [&](auto n) {
                    tposed_tile<T, M, decltype(n)::value>(e.Nh, nx, a, S, X, L.ldX, r0,
                                                          v0 * Lv, e);
                });
            });
        }
    }
}

template <class T>
void tposed_gemm(const TposedLayout& L, const T* A, const T* S, const T* X, i64 nx,
                 i64 nvec, i64 tile_lo, const TposedEpi<T>& e) {
    if (L.mr == kTposedRowsNarrow)
        tposed_gemm_mr<T, kTposedRowsNarrow>(L, A, S, X, nx, nvec, tile_lo, e);
    else
        tposed_gemm_mr<T, kTposedRows>(L, A, S, X, nx, nvec, tile_lo, e);
}

// X^T of steps [t0, t1), shared by every item: XT[(t*Nx + m)*ldX + b] =
// x[t, b, m], zero beyond B (an item's padding lanes read into the next
// shard's columns or these zeros, never past the end).
template <class T>
void pack_inputs_t(const ForwardArgs<T>& a, const TposedLayout& L, i64 t0, i64 t1,
                   T* XT) {
    const RnnDims& d = a.d;
    for (i64 t = t0; t < t1; ++t)
        for (i64 m = 0; m < d.Nx; ++m) {
            T* row = XT + (t * d.Nx + m) * L.ldX;
            const T* src = a.x + t * d.B * d.Nx + m;
            for (i64 b = 0; b < d.B; ++b) row[b] = src[b * d.Nx];
            for (i64 b = d.B; b < L.ldX; ++b) row[b] = T(0);
        }
}

// Packs variant k's row tiles of [W_hh W_xh ; W_hy 0] (R x Kin) k-major: tile
// rows [r0, r1) at r0*Kin, element (r, kk) at r0*Kin + kk*(r1 - r0) + r - r0.
template <class T>
void pack_variant_t(const ForwardArgs<T>& a, const TposedLayout& L, i64 k, T* Ak) {
    const RnnDims& d = a.d;
    const T* W = a.W_hh + k * d.Nh * d.Nh;
    for (i64 tile = 0; tile < L.ntiles; ++tile) {
        const i64 r0 = L.R * tile / L.ntiles, r1 = L.R * (tile + 1) / L.ntiles;
        const i64 h = r1 - r0;
        for (i64 r = r0; r < r1; ++r) {
            T* dst = Ak + r0 * L.Kin + (r - r0);
            for (i64 kk = 0; kk < L.Kin; ++kk) {
                T w;
                if (r < d.Nh)
                    w = kk < d.Nh ? W[r * d.Nh + kk] : a.W_xh[r * d.Nx + kk - d.Nh];
                else
                    w = kk < d.Nh ? a.W_hy[(r - d.Nh) * d.Nh + kk] : T(0);
                dst[kk * h] = w;
            }
        }
    }
}

// Part `part` of L.pack_parts of packing a call, independent parts run in
// parallel (serially they took ~1.5% of a two-thread K = 8 call): variant
// `part` (part 0 also the bias column [b_h ; b_y]), or a range of steps of X^T.
template <class T>
void pack_forward_t(const ForwardArgs<T>& a, const TposedLayout& L, T* P, i64 part) {
    const RnnDims& d = a.d;
    if (part >= d.K) {
        const i64 t0 = (part - d.K) * L.pack_steps;
        pack_inputs_t<T>(a, L, t0, imin(d.T, t0 + L.pack_steps), P + L.off_X);
        return;
    }
    pack_variant_t<T>(a, L, part, P + L.off_A + part * L.R * L.Kin);
    if (part != 0) return;
    T* bias = P + L.off_bias;
    for (i64 r = 0; r < L.R; ++r) {
        const T* b = r < d.Nh ? a.b_h : a.b_y;
        bias[r] = b ? b[r < d.Nh ? r : r - d.Nh] : T(0);
    }
}

// out[b*ostride + r] = src[r*ldS + b] for r < nrows, b < bs: a step's readout
// (or hidden) block back to the row layout, by 16-lane scatters on full
// vectors (about twice as fast as the scalar loop, which serialises on its
// strided stores).
template <class T>
void tposed_unpack(const T* src, i64 ldS, i64 nrows, i64 bs, T* out, i64 ostride) {
    constexpr int Lv = V<T>::L;
    i64 b0 = 0;
#if defined(__AVX512F__)
    if (ostride * Lv < (i64(1) << 31)) {
        const __m512i idx32 = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(static_cast<int>(ostride)));
        // The 8 double lanes' indices built at 256 bits: GCC 12's 512 -> 256 cast
        // goes through an extract with an "undefined" source that
        // -Wmaybe-uninitialized flags.
        const __m256i idx8 =
            _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                               _mm256_set1_epi32(static_cast<int>(ostride)));
        for (; b0 + Lv <= bs; b0 += Lv)
            for (i64 r = 0; r < nrows; ++r) {
                T* dst = out + b0 * ostride + r;
                if constexpr (sizeof(T) == 4)
                    _mm512_i32scatter_ps(dst, idx32, vload<T>(src + r * ldS + b0), 4);
                else
                    _mm512_i32scatter_pd(dst, idx8, vload<T>(src + r * ldS + b0), 8);
            }
    }
#endif
    for (i64 b = b0; b < bs; ++b)
        for (i64 r = 0; r < nrows; ++r) out[b * ostride + r] = src[r * ldS + b];
}

// Forward pass of variant k for batch rows [b0, b1) in the transposed layout.
template <class T>
void forward_item_t(const ForwardArgs<T>& a, const TposedLayout& L, const T* P, i64 k,
                    i64 b0, i64 b1, T* ws) {
    constexpr int Lv = V<T>::L;
    const RnnDims& d = a.d;
    const i64 bs = b1 - b0, ldS = L.ldS, nvec = round_up(bs, Lv) / Lv;
    const i64 blk = d.Nh * ldS;
    T* S = ws + L.off_S;  // two state blocks (ping-pong)
    for (i64 j = 0; j < 2 * blk; ++j) S[j] = T(0);
    if (a.h0)
        for (i64 j = 0; j < d.Nh; ++j)
            for (i64 b = 0; b < bs; ++b)
                S[j * ldS + b] = a.h0[(b0 + b) * a.h0_bstride + j];
    const T* A = P + L.off_A + k * L.R * L.Kin;
    const T* XT = P + L.off_X + b0;
    T* yk = a.y + k * d.T * d.B * d.Ny;
    T* hk = a.hidden ? a.hidden + k * d.T * d.B * d.Nh : nullptr;
    TposedEpi<T> e{P + L.off_bias, nullptr, ws + L.off_Y, d.Nh, ldS, true, false};
    for (i64 t = 0; t < d.T; ++t) {
        const T* prev = S + (t & 1) * blk;
        T* cur = S + ((t + 1) & 1) * blk;
        e.cur = cur;
        e.readout = t > 0;
        tposed_gemm<T>(L, A, prev, XT + t * d.Nx * L.ldX, d.Nx, nvec, 0, e);
        tposed_tanh<T>(cur, prev, blk, a.leak);
        if (t > 0)
            tposed_unpack<T>(e.ybuf, ldS, d.Ny, bs, yk + ((t - 1) * d.B + b0) * d.Ny,
                             d.Ny);
        if (hk) tposed_unpack<T>(cur, ldS, d.Nh, bs, hk + (t * d.B + b0) * d.Nh, d.Nh);
    }
    // Readout of the last step: only the tiles holding readout rows, and no
    // input terms (their weights are zero).
    e.hidden = false;
    e.readout = true;
    i64 lo = 0;
    while (lo + 1 < L.ntiles && L.R * (lo + 1) / L.ntiles <= d.Nh) ++lo;
    tposed_gemm<T>(L, A, S + (d.T & 1) * blk, XT, 0, nvec, lo, e);
    tposed_unpack<T>(e.ybuf, ldS, d.Ny, bs, yk + ((d.T - 1) * d.B + b0) * d.Ny, d.Ny);
}

#endif  // RNNSCHUR_VBYTES == 64
