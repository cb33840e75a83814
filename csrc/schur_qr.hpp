// Internal interface between the pieces of the own unordered real Schur solver:
// the double-shift QR (schur_hqr.cpp) and the small-bulge multishift QR with
// aggressive early deflation (schur_mqr.cpp). Not part of the public C++ API.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>

#include "schur.hpp"

namespace rnnschur::schur::qr {

// A column-major view with arbitrary leading dimension: windows of larger matrices.
using MapM = Eigen::Map<Eigen::MatrixXd, 0, Eigen::OuterStride<>>;

inline MapM view(double* p, Index rows, Index cols, Index ld) {
    return MapM(p, rows, cols, Eigen::OuterStride<>(ld));
}

constexpr double kUlp = std::numeric_limits<double>::epsilon();
constexpr double kSafeMin = std::numeric_limits<double>::min();

// Euclidean norm of x[0..m): a plain sum of squares when no entry is near the
// over/underflow range of its square, else scaled (hypot is ~20x slower).
inline double norm2(const double* x, Index m) {
    constexpr double kLo = 1e-150, kHi = 1e150;
    double amax = 0.0;
    for (Index i = 0; i < m; ++i) amax = std::max(amax, std::abs(x[i]));
    if (amax == 0.0) return 0.0;
    double s = 0.0;
    if (amax > kLo && amax < kHi) {
        for (Index i = 0; i < m; ++i) s += x[i] * x[i];
        return std::sqrt(s);
    }
    for (Index i = 0; i < m; ++i) {
        const double y = x[i] / amax;
        s += y * y;
    }
    return amax * std::sqrt(s);
}

// Householder reflector for x (length m): H x = beta e1 with H = I - tau u u^T,
// u(0) = 1. On return x[0] = beta, x[1..m) holds u(1..m); returns tau (0: H = I).
inline double make_reflector(double* x, Index m) {
    if (m <= 1) return 0.0;
    if (m <= 3) {
        // The bulge-chase case: no loops, scaled only near over/underflow.
        const double a1 = std::abs(x[1]);
        const double a2 = m == 3 ? std::abs(x[2]) : 0.0;
        const double a0 = std::abs(x[0]);
        const double amax = std::max(a0, std::max(a1, a2));
        if (a1 == 0.0 && a2 == 0.0) return 0.0;
        if (amax > 1e-150 && amax < 1e150) {
            const double alpha = x[0];
            const double beta =
                -std::copysign(std::sqrt(alpha * alpha + a1 * a1 + a2 * a2), alpha);
            const double tau = (beta - alpha) / beta;
            const double scal = 1.0 / (alpha - beta);
            x[1] *= scal;
            if (m == 3) x[2] *= scal;
            x[0] = beta;
            return tau;
        }
    }
    const double xnorm = norm2(x + 1, m - 1);
    if (xnorm == 0.0) return 0.0;
    const double alpha = x[0];
    const double pair[2] = {alpha, xnorm};
    const double beta = -std::copysign(norm2(pair, 2), alpha);
    const double tau = (beta - alpha) / beta;
    const double scal = 1.0 / (alpha - beta);
    for (Index i = 1; i < m; ++i) x[i] *= scal;
    x[0] = beta;
    return tau;
}

// Householder Hessenberg reduction A <- Q^T A Q (entries below the subdiagonal
// zeroed), Q formed explicitly.
void hessenberg(Eigen::MatrixXd& A, Eigen::MatrixXd& Q);

// C (m x n) = alpha A B  (accumulate: C += alpha A B); A m x k, B k x n, all
// column-major with leading dimensions; C must not overlap A or B.
void gemm(Index m, Index n, Index k, double alpha, const double* A, Index lda,
          const double* B, Index ldb, bool accumulate, double* C, Index ldc);

// y (m) (+)= alpha A (m x k) x and y (k) = A^T x, A column-major; y must not
// overlap A or x.
void gemv(Index m, Index k, double alpha, const double* A, Index lda, const double* x,
          bool accumulate, double* y);
void gemv_t(Index m, Index k, const double* A, Index lda, const double* x, double* y);

// Double-shift (Francis) QR on the whole upper Hessenberg H (n x n, entries below
// the subdiagonal zero): H <- Schur form with standardised 2x2 blocks (real pairs
// split), Z <- Z * (the orthogonal similarity), Z with any number of rows.
// Returns false if the iteration did not converge (H, Z then hold a valid but
// incomplete reduction).
bool francis(MapM H, MapM Z);

// Small-bulge multishift QR with aggressive early deflation (schur_mqr.cpp); the
// same contract as francis. Falls back to francis for small n.
bool multishift(MapM H, MapM Z);

// Tuning of the multishift QR (exposed for the benchmarks and tests).
struct Tuning {
    Index nmin = 75;      // below this order, francis
    int nibble = 14;      // skip the sweep if AED deflated > nibble % of the window
    Index min_chase = 0;  // minimum steps a bulge chain moves per window
    Index nw = 0;         // AED window (0: LAPACK's table)
    Index ns = 0;         // shifts per sweep (0: LAPACK's table)
};
Tuning& tuning();

// Work counters for development builds (-DRNNSCHUR_QR_STATS); no-ops otherwise.
struct Stats {
    long sweeps = 0, bulges = 0, windows = 0, refl_applied = 0, aeds = 0, aed_width = 0,
         aed_deflated = 0, aed_swaps = 0, window_qr = 0;
};
#ifdef RNNSCHUR_QR_STATS
Stats& stats();
#define RNNSCHUR_STAT(expr) (::rnnschur::schur::qr::stats().expr)
#else
#define RNNSCHUR_STAT(expr) ((void)0)
#endif

}  // namespace rnnschur::schur::qr
