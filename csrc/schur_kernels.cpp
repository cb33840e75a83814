// Dense kernels shared by the own Schur solver (see schur_qr.hpp): a register-
// blocked matrix product. Written with GCC/Clang vector extensions so that the
// x86-64-v3 clone uses 256-bit FMA and the baseline clone pairs of SSE2 ops.
#include <cstring>

#include "schur_qr.hpp"

namespace rnnschur::schur::qr {

#if defined(__GNUC__) || defined(__clang__)
#define RNNSCHUR_VEC_EXT 1
#endif

RNNSCHUR_CLONES
void gemm(Index m, Index n, Index k, double alpha, const double* A, Index lda,
          const double* B, Index ldb, bool accumulate, double* C, Index ldc) {
#ifdef RNNSCHUR_VEC_EXT
    typedef double v4 __attribute__((vector_size(32)));
    constexpr Index MR = 8, NR = 4;
    Index j = 0;
    for (; j + NR <= n; j += NR) {
        const double* b0 = B + (j + 0) * ldb;
        const double* b1 = B + (j + 1) * ldb;
        const double* b2 = B + (j + 2) * ldb;
        const double* b3 = B + (j + 3) * ldb;
        double* c0 = C + (j + 0) * ldc;
        double* c1 = C + (j + 1) * ldc;
        double* c2 = C + (j + 2) * ldc;
        double* c3 = C + (j + 3) * ldc;
        Index i = 0;
        for (; i + MR <= m; i += MR) {
            v4 x00 = {0, 0, 0, 0}, x01 = x00, x10 = x00, x11 = x00, x20 = x00,
               x21 = x00, x30 = x00, x31 = x00;
            const double* a = A + i;
            for (Index p = 0; p < k; ++p) {
                v4 a0, a1;
                std::memcpy(&a0, a + p * lda, sizeof(v4));
                std::memcpy(&a1, a + p * lda + 4, sizeof(v4));
                const double s0 = b0[p], s1 = b1[p], s2 = b2[p], s3 = b3[p];
                const v4 y0 = {s0, s0, s0, s0}, y1 = {s1, s1, s1, s1};
                const v4 y2 = {s2, s2, s2, s2}, y3 = {s3, s3, s3, s3};
                x00 += a0 * y0;
                x01 += a1 * y0;
                x10 += a0 * y1;
                x11 += a1 * y1;
                x20 += a0 * y2;
                x21 += a1 * y2;
                x30 += a0 * y3;
                x31 += a1 * y3;
            }
            const v4 al = {alpha, alpha, alpha, alpha};
            double* cs[4] = {c0 + i, c1 + i, c2 + i, c3 + i};
            const v4 lo[4] = {x00, x10, x20, x30};
            const v4 hi[4] = {x01, x11, x21, x31};
            for (int q = 0; q < 4; ++q) {
                v4 r0 = al * lo[q], r1 = al * hi[q];
                if (accumulate) {
                    v4 o0, o1;
                    std::memcpy(&o0, cs[q], sizeof(v4));
                    std::memcpy(&o1, cs[q] + 4, sizeof(v4));
                    r0 += o0;
                    r1 += o1;
                }
                std::memcpy(cs[q], &r0, sizeof(v4));
                std::memcpy(cs[q] + 4, &r1, sizeof(v4));
            }
        }
        for (; i < m; ++i) {
            double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
            for (Index p = 0; p < k; ++p) {
                const double ap = A[p * lda + i];
                s0 += ap * b0[p];
                s1 += ap * b1[p];
                s2 += ap * b2[p];
                s3 += ap * b3[p];
            }
            if (accumulate) {
                c0[i] += alpha * s0;
                c1[i] += alpha * s1;
                c2[i] += alpha * s2;
                c3[i] += alpha * s3;
            } else {
                c0[i] = alpha * s0;
                c1[i] = alpha * s1;
                c2[i] = alpha * s2;
                c3[i] = alpha * s3;
            }
        }
    }
    for (; j < n; ++j) {
        double* c = C + j * ldc;
        const double* b = B + j * ldb;
        if (!accumulate)
            for (Index i = 0; i < m; ++i) c[i] = 0.0;
        for (Index p = 0; p < k; ++p) {
            const double s = alpha * b[p];
            const double* a = A + p * lda;
            for (Index i = 0; i < m; ++i) c[i] += a[i] * s;
        }
    }
#else
    for (Index j = 0; j < n; ++j) {
        double* c = C + j * ldc;
        if (!accumulate)
            for (Index i = 0; i < m; ++i) c[i] = 0.0;
        for (Index p = 0; p < k; ++p) {
            const double s = alpha * B[j * ldb + p];
            for (Index i = 0; i < m; ++i) c[i] += A[p * lda + i] * s;
        }
    }
#endif
}

// y (m) (+)= alpha A (m x k) x, column-major: four columns per pass over y.
RNNSCHUR_CLONES
void gemv(Index m, Index k, double alpha, const double* A, Index lda, const double* x,
          bool accumulate, double* y) {
    if (!accumulate)
        for (Index i = 0; i < m; ++i) y[i] = 0.0;
    Index p = 0;
    for (; p + 4 <= k; p += 4) {
        const double* __restrict a0 = A + p * lda;
        const double* __restrict a1 = a0 + lda;
        const double* __restrict a2 = a1 + lda;
        const double* __restrict a3 = a2 + lda;
        const double x0 = alpha * x[p], x1 = alpha * x[p + 1], x2 = alpha * x[p + 2],
                     x3 = alpha * x[p + 3];
        double* __restrict yy = y;
        for (Index i = 0; i < m; ++i)
            yy[i] += (a0[i] * x0 + a1[i] * x1) + (a2[i] * x2 + a3[i] * x3);
    }
    for (; p < k; ++p) {
        const double* __restrict a0 = A + p * lda;
        const double x0 = alpha * x[p];
        double* __restrict yy = y;
        for (Index i = 0; i < m; ++i) yy[i] += a0[i] * x0;
    }
}

// y (k) = A (m x k)^T x: dot products with four partial sums each (vectorised
// without reassociation flags; the rounding differs from a sequential sum, not its
// accuracy), two columns at a time.
RNNSCHUR_CLONES
void gemv_t(Index m, Index k, const double* A, Index lda, const double* x, double* y) {
    Index p = 0;
    for (; p + 2 <= k; p += 2) {
        const double* __restrict a0 = A + p * lda;
        const double* __restrict a1 = a0 + lda;
        double s0[4] = {0.0, 0.0, 0.0, 0.0}, s1[4] = {0.0, 0.0, 0.0, 0.0};
        Index i = 0;
        for (; i + 4 <= m; i += 4)
            for (int u = 0; u < 4; ++u) {
                s0[u] += a0[i + u] * x[i + u];
                s1[u] += a1[i + u] * x[i + u];
            }
        for (; i < m; ++i) {
            s0[0] += a0[i] * x[i];
            s1[0] += a1[i] * x[i];
        }
        y[p] = (s0[0] + s0[1]) + (s0[2] + s0[3]);
        y[p + 1] = (s1[0] + s1[1]) + (s1[2] + s1[3]);
    }
    for (; p < k; ++p) {
        const double* __restrict a0 = A + p * lda;
        double s0[4] = {0.0, 0.0, 0.0, 0.0};
        Index i = 0;
        for (; i + 4 <= m; i += 4)
            for (int u = 0; u < 4; ++u) s0[u] += a0[i + u] * x[i + u];
        for (; i < m; ++i) s0[0] += a0[i] * x[i];
        y[p] = (s0[0] + s0[1]) + (s0[2] + s0[3]);
    }
}

}  // namespace rnnschur::schur::qr
