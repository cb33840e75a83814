// sep(T11, T22) estimate and the unordered Eigen factorisation. See schur.hpp.
#include <Eigen/Dense>
#include <Eigen/Eigenvalues>
#include <cmath>
#include <limits>
#include <vector>

#include "schur.hpp"

namespace rnnschur::schur {
namespace {

using Mat = Eigen::MatrixXd;

// Solve a <= 2 x 2 Sylvester equation a x - x b = c (a: p x p, b: q x q) by the
// Kronecker system with partial pivoting; tiny pivots are replaced by `smin`.
void small_solve(const double* a, int p, const double* b, int q, double* c,
                 double smin) {
    const int s = p * q;
    double K[4][4] = {};
    double r[4];
    // Column-major a (p x p), b (q x q), c (p x q): vec index = col * p + row.
    for (int jq = 0; jq < q; ++jq)
        for (int i = 0; i < p; ++i) {
            r[jq * p + i] = c[jq * p + i];
            for (int l = 0; l < q; ++l)
                for (int k = 0; k < p; ++k)
                    K[jq * p + i][l * p + k] =
                        (jq == l ? a[k * p + i] : 0.0) - (i == k ? b[jq * q + l] : 0.0);
        }
    for (int col = 0; col < s; ++col) {
        int piv = col;
        for (int i = col + 1; i < s; ++i)
            if (std::abs(K[i][col]) > std::abs(K[piv][col])) piv = i;
        if (piv != col) {
            for (int l = 0; l < s; ++l) std::swap(K[piv][l], K[col][l]);
            std::swap(r[piv], r[col]);
        }
        if (std::abs(K[col][col]) < smin) K[col][col] = smin;
        for (int i = col + 1; i < s; ++i) {
            const double f = K[i][col] / K[col][col];
            for (int l = col; l < s; ++l) K[i][l] -= f * K[col][l];
            r[i] -= f * r[col];
        }
    }
    for (int i = s - 1; i >= 0; --i) {
        double v = r[i];
        for (int l = i + 1; l < s; ++l) v -= K[i][l] * r[l];
        r[i] = v / K[i][i];
    }
    for (int i = 0; i < s; ++i) c[i] = r[i];
}

// Bartels-Stewart for quasi-upper-triangular A (r x r) and B (c x c):
//   transpose == false: A X - X B = C
//   transpose == true:  A^T X - X B^T = C  (the adjoint operator)
// C is overwritten by X.
void sylvester_tri(const Mat& A, const Blocks& ba, const Mat& B, const Blocks& bb,
                   Mat& C, bool transpose, double smin) {
    const auto na = static_cast<Index>(ba.starts.size());
    const auto nbb = static_cast<Index>(bb.starts.size());
    double a[4], b[4], c[4];
    for (Index jj = 0; jj < nbb; ++jj) {
        const Index J = transpose ? nbb - 1 - jj : jj;
        const Index j0 = bb.starts[J];
        const int q = bb.sizes[J];
        for (Index ii = 0; ii < na; ++ii) {
            const Index I = transpose ? ii : na - 1 - ii;
            const Index i0 = ba.starts[I];
            const int p = ba.sizes[I];
            Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, 2, 2> rhs =
                C.block(i0, j0, p, q);
            if (!transpose) {
                // - sum_{K > I} A_IK X_KJ + sum_{L < J} X_IL B_LJ
                const Index k0 = i0 + p;
                if (k0 < A.rows())
                    rhs.noalias() -= A.block(i0, k0, p, A.rows() - k0) *
                                     C.block(k0, j0, A.rows() - k0, q);
                if (j0 > 0)
                    rhs.noalias() += C.block(i0, 0, p, j0) * B.block(0, j0, j0, q);
            } else {
                // - sum_{K < I} (A_KI)^T X_KJ + sum_{L > J} X_IL (B_JL)^T
                if (i0 > 0)
                    rhs.noalias() -=
                        A.block(0, i0, i0, p).transpose() * C.block(0, j0, i0, q);
                const Index l0 = j0 + q;
                if (l0 < B.rows())
                    rhs.noalias() += C.block(i0, l0, p, B.rows() - l0) *
                                     B.block(j0, l0, q, B.rows() - l0).transpose();
            }
            for (int x = 0; x < p; ++x)
                for (int y = 0; y < p; ++y)
                    a[y * p + x] = transpose ? A(i0 + y, i0 + x) : A(i0 + x, i0 + y);
            for (int x = 0; x < q; ++x)
                for (int y = 0; y < q; ++y)
                    b[y * q + x] = transpose ? B(j0 + y, j0 + x) : B(j0 + x, j0 + y);
            for (int y = 0; y < q; ++y)
                for (int x = 0; x < p; ++x) c[y * p + x] = rhs(x, y);
            small_solve(a, p, b, q, c, smin);
            for (int y = 0; y < q; ++y)
                for (int x = 0; x < p; ++x) C(i0 + x, j0 + y) = c[y * p + x];
        }
    }
}

}  // namespace

double sep_estimate(const ConstMatRef& T, Index r, int iters, double tol) {
    const Index n = T.rows();
    if (r <= 0 || r >= n) return std::numeric_limits<double>::infinity();
    const double tnorm = T.norm();
    if (tnorm == 0.0) return 0.0;
    // Work on T / ||T||_F so that neither tiny nor huge scales over/underflow.
    const Mat A = T.topLeftCorner(r, r) / tnorm;
    const Mat B = T.bottomRightCorner(n - r, n - r) / tnorm;
    const Blocks ba = read_blocks(A);
    const Blocks bb = read_blocks(B);
    const double smin = std::numeric_limits<double>::epsilon() *
                        std::max(A.cwiseAbs().maxCoeff(), B.cwiseAbs().maxCoeff());
    // Power iteration on (S^-* S^-1): sigma_max(S^-1) = 1 / sep_F.
    Mat X = Mat::Ones(r, n - r);
    // A deterministic non-constant start avoids accidental orthogonality.
    for (Index j = 0; j < X.cols(); ++j)
        for (Index i = 0; i < X.rows(); ++i)
            X(i, j) = 1.0 + 0.5 * std::sin(1.0 + static_cast<double>(i + 3 * j));
    X /= X.norm();
    double est = 0.0;
    for (int it = 0; it < iters; ++it) {
        Mat Y = X;
        sylvester_tri(A, ba, B, bb, Y, false, smin);  // Y = S^-1 X
        const double ny = Y.norm();
        if (!std::isfinite(ny)) return 0.0;
        const double prev = est;
        est = ny;
        if (ny == 0.0) break;
        Y /= ny;
        sylvester_tri(A, ba, B, bb, Y, true, smin);  // S^-* Y
        const double nz = Y.norm();
        if (!std::isfinite(nz) || nz == 0.0) break;
        X = Y / nz;
        if (it > 0 && std::abs(est - prev) <= tol * est) break;
    }
    if (!(est > 0.0)) return 0.0;
    return tnorm / est;
}

void real_schur_eigen(const ConstMatRef& W, Eigen::MatrixXd& T, Eigen::MatrixXd& Q) {
    Eigen::RealSchur<Eigen::MatrixXd> rs(W.rows());
    rs.compute(W, true);
    if (rs.info() != Eigen::Success)
        throw std::runtime_error("Eigen RealSchur did not converge");
    T = rs.matrixT();
    Q = rs.matrixU();
}

}  // namespace rnnschur::schur
