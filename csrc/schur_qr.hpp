// Internal interface between the pieces of the own unordered real Schur solver:
// the double-shift QR (schur_hqr.cpp) and the small-bulge multishift QR with
// aggressive early deflation (schur_mqr.cpp). Not part of the public C++ API.
//
// The algorithms are published ones; the code is the project's own
// implementation of them (read the references, not other libraries' source):
// * Francis double-shift QR: J. G. F. Francis, The QR transformation I/II, Comput.
//   J. 4 (1961/62); shifts, exceptional shifts and the two-small-subdiagonals
//   start: Martin, Peters & Wilkinson, procedure hqr, Handbook for Automatic
//   Computation II (1971); Golub & Van Loan, Matrix Computations, Alg. 7.5.2.
// * Conservative deflation criterion: M. Ahues & F. Tisseur, A new deflation
//   criterion for the QR algorithm, LAPACK Working Note 122 (1997).
// * Small-bulge multishift QR sweep and aggressive early deflation: K. Braman,
//   R. Byers & R. Mathias, The multishift QR algorithm, Parts I and II, SIAM J.
//   Matrix Anal. Appl. 23(4) (2002), 929-947 and 948-973.
// The tuning defaults (shift and window counts by order, the 14 % skip threshold,
// when windows vary and exceptional shifts come) are LAPACK's published defaults
// (iparmq, dlaqr0): constants, not code.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

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

// Exceptional shifts (Martin, Peters & Wilkinson's hqr): the eigenvalues of the
// made-up block [c, kExceptionalCoupling s; s, c], c = kExceptionalOffset s + h,
// with s the size of two neighbouring subdiagonal entries: a complex pair on the
// matrix's scale that breaks the rare cycles of the standard shifts.
constexpr double kExceptionalOffset = 0.75;
constexpr double kExceptionalCoupling = -0.4375;

// The shifts of one double-shift bulge: re1 + i im1 and re2 + i im2, either a
// complex conjugate pair or two real numbers.
struct ShiftPair {
    double re1, im1, re2, im2;
};

// Direction of the first column of (H - s1 I)(H - s2 I) at rows top..top+len-1
// (len 2 or 3) of the Hessenberg H, written to x: it starts a bulge. Divided by
// |h_tt - re2| + |im2| + |h_t+1,t| to keep the product clear of overflow (only the
// direction matters); all zeros if that scale is zero.
template <class Matrix>
inline void bulge_start_column(const Matrix& H, Index top, int len, const ShiftPair& s,
                               double* x) {
    const double diag = H(top, top), below = H(top + 1, top), right = H(top, top + 1),
                 next_diag = H(top + 1, top + 1);
    const double scale = std::abs(diag - s.re2) + std::abs(s.im2) + std::abs(below);
    if (scale == 0.0) {
        for (int r = 0; r < len; ++r) x[r] = 0.0;
        return;
    }
    const double below_scaled = below / scale;
    x[0] = below_scaled * right + (diag - s.re1) * ((diag - s.re2) / scale) -
           s.im1 * (s.im2 / scale);
    x[1] = below_scaled * (diag + next_diag - s.re1 - s.re2);
    if (len == 3) x[2] = below_scaled * H(top + 2, top + 1);
}

// Ahues & Tisseur's test that the subdiagonal entry `sub` of the 2x2 diagonal
// block [upper, super; sub, lower] may be set to zero: it perturbs the block's
// eigenvalues by no more than rounding does, judged from the product of the
// off-diagonal entries against the product of (diagonal gap, |lower|), both
// divided by the same scale to keep them clear of overflow. With
// `zero_gap_deflates`, a zero diagonal product counts as negligible too.
inline bool ahues_tisseur_negligible(double sub, double super, double upper,
                                     double lower, double tiny,
                                     bool zero_gap_deflates) {
    const double off_large = std::max(std::abs(sub), std::abs(super));
    const double off_small = std::min(std::abs(sub), std::abs(super));
    const double gap = std::abs(upper - lower);
    const double diag_large = std::max(std::abs(lower), gap);
    const double diag_small = std::min(std::abs(lower), gap);
    const double scale = diag_large + off_large;
    const double diag_product = diag_small * (diag_large / scale);
    if (zero_gap_deflates && diag_product == 0.0) return true;
    return off_small * (off_large / scale) <= std::max(tiny, kUlp * diag_product);
}

// The Householder reflectors of a Hessenberg reduction: v_k in column k of V (rows
// k+1..n-1, v_k(k+1) = 1), tau_k in taus.
struct HessenbergReflectors {
    Eigen::MatrixXd V;
    std::vector<double> taus;
};

// Householder Hessenberg reduction A <- Q^T A Q (entries below the subdiagonal
// zeroed); Q = H_0 H_1 ... H_{n-3} is left as reflectors for hessenberg_q.
HessenbergReflectors hessenberg_reduce(Eigen::MatrixXd& A);

// Q (resized to n x n) formed from the reflectors of hessenberg_reduce.
void hessenberg_q(const HessenbergReflectors& r, Index n, Eigen::MatrixXd& Q);

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

// The same with a second thread: `prepare_z` (which must set Z) and then every
// update outside the active block (of Z, and of H above or right of the block:
// nothing in the iteration reads them again) run there, in order, while this
// thread iterates on the block. Same result, bit for bit, as prepare_z()
// followed by multishift(H, Z); returns when both are done and rethrows an
// exception of either.
bool multishift_overlapped(MapM H, MapM Z, const std::function<void()>& prepare_z);

// From this order on, real_schur_own with two threads overlaps the updates of Q
// (forming it, then the QR iteration's) with the iteration on H: below, a thread's
// start and hand-overs cost more than the share of work it takes.
constexpr Index kOverlapMinOrder = 128;

// Below this order the driver runs francis instead of the multishift QR (LAPACK's
// iparmq crossover, nmin = 75).
constexpr Index kMultishiftMinOrder = 75;

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
