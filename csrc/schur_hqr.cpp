// Unordered real Schur form for small matrices: Householder Hessenberg reduction
// (blocked as in Quintana-Orti & van de Geijn, 2006) and the Francis double-shift
// QR iteration (Golub & Van Loan, Alg. 7.4.2 / 7.5.2) with the Ahues & Tisseur
// deflation test and Wilkinson's exceptional shifts; sources in schur_qr.hpp. The
// project's own implementation. The hot loops are plain C++ on column-major
// storage, compiled twice (AVX2+FMA and baseline x86-64) with runtime selection,
// so wheels stay portable.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "schur_qr.hpp"

namespace rnnschur::schur {
namespace qr {
namespace {

// a[0..len) -= beta * v * (v . a)  for every column a = A + j*ld, j in [0, ncols):
// the left application of I - beta v v^T to a block of rows.
// Dot product with four independent partial sums, so that it vectorises without
// -ffast-math (the rounding differs from a sequential sum, not its accuracy).
inline double dot4(const double* __restrict x, const double* __restrict y, Index len) {
    double d[4] = {0.0, 0.0, 0.0, 0.0};
    Index i = 0;
    for (; i + 4 <= len; i += 4)
        for (int u = 0; u < 4; ++u) d[u] += x[i + u] * y[i + u];
    for (; i < len; ++i) d[0] += x[i] * y[i];
    return (d[0] + d[1]) + (d[2] + d[3]);
}

RNNSCHUR_CLONES
void reflect_left(double* A, Index ld, Index len, Index ncols, const double* v,
                  double beta) {
    for (Index j = 0; j < ncols; ++j) {
        double* __restrict a = A + j * ld;
        double d = dot4(v, a, len);
        d *= beta;
        for (Index i = 0; i < len; ++i) a[i] -= d * v[i];
    }
}

// Right application of I - beta v v^T to columns [0, len) of a block with `rows`
// rows: A <- A - beta (A v) v^T. w is scratch of length rows.
RNNSCHUR_CLONES
void reflect_right(double* A, Index ld, Index rows, Index len, const double* v,
                   double beta, double* __restrict w) {
    for (Index r = 0; r < rows; ++r) w[r] = 0.0;
    for (Index j = 0; j < len; ++j) {
        const double* __restrict a = A + j * ld;
        const double vj = v[j];
        for (Index r = 0; r < rows; ++r) w[r] += vj * a[r];
    }
    for (Index j = 0; j < len; ++j) {
        double* __restrict a = A + j * ld;
        const double s = beta * v[j];
        for (Index r = 0; r < rows; ++r) a[r] -= s * w[r];
    }
}

// Applications of a reflector I - tau u u^T, u = (1, v2[, v3]), in the double-shift
// sweep: from the right to three (two) consecutive columns c0, c0+ld[, c0+2ld] of
// `rows` rows, and from the left to three (two) consecutive rows starting at `top`
// (column-major, ld), columns [0, ncols). tau_v2 = tau v2 and tau_v3 = tau v3 are
// formed once per reflector.
RNNSCHUR_CLONES
void cols3(double* c0, Index ld, Index rows, double tau, double v2, double v3) {
    double* __restrict a = c0;
    double* __restrict b = c0 + ld;
    double* __restrict c = c0 + 2 * ld;
    const double tau_v2 = tau * v2, tau_v3 = tau * v3;
    for (Index r = 0; r < rows; ++r) {
        const double sum = a[r] + v2 * b[r] + v3 * c[r];
        a[r] -= sum * tau;
        b[r] -= sum * tau_v2;
        c[r] -= sum * tau_v3;
    }
}

RNNSCHUR_CLONES
void cols2(double* c0, Index ld, Index rows, double tau, double v2) {
    double* __restrict a = c0;
    double* __restrict b = c0 + ld;
    const double tau_v2 = tau * v2;
    for (Index r = 0; r < rows; ++r) {
        const double sum = a[r] + v2 * b[r];
        a[r] -= sum * tau;
        b[r] -= sum * tau_v2;
    }
}

RNNSCHUR_CLONES
void rows3(double* top, Index ld, Index ncols, double tau, double v2, double v3) {
    const double tau_v2 = tau * v2, tau_v3 = tau * v3;
    for (Index j = 0; j < ncols; ++j) {
        double* col = top + j * ld;
        const double sum = col[0] + v2 * col[1] + v3 * col[2];
        col[0] -= sum * tau;
        col[1] -= sum * tau_v2;
        col[2] -= sum * tau_v3;
    }
}

RNNSCHUR_CLONES
void rows2(double* top, Index ld, Index ncols, double tau, double v2) {
    const double tau_v2 = tau * v2;
    for (Index j = 0; j < ncols; ++j) {
        double* col = top + j * ld;
        const double sum = col[0] + v2 * col[1];
        col[0] -= sum * tau;
        col[1] -= sum * tau_v2;
    }
}

void rotate_rows_pair(MapM& T, Index i, Index c0, Index c1, const Rotation& r) {
    for (Index k = c0; k < c1; ++k) {
        const double x = T(i, k), y = T(i + 1, k);
        T(i, k) = r.c * x + r.s * y;
        T(i + 1, k) = r.c * y - r.s * x;
    }
}

void rotate_cols_pair(MapM& M, Index i, Index rows, const Rotation& r) {
    double* x = M.col(i).data();
    double* y = M.col(i + 1).data();
    for (Index k = 0; k < rows; ++k) {
        const double xv = x[k], yv = y[k];
        x[k] = r.c * xv + r.s * yv;
        y[k] = r.c * yv - r.s * xv;
    }
}

}  // namespace

namespace {

// Panel width and the order below which the reduction stays unblocked.
constexpr Index kPanel = 32;
constexpr Index kBlockedMin = 64;

// T (nb x nb, upper triangular, ld nb) of the compact WY form H_0 ... H_{nb-1} =
// I - V T V^T of the reflectors in V (m x nb, ld ldv, unit first entry of column i
// at row i, zeros above), taus in tau (Schreiber & Van Loan, SIAM J. Sci. Stat.
// Comput. 10, 1989).
void compact_wy_factor(Index m, Index nb, const double* V, Index ldv, const double* tau,
                       double* T) {
    std::vector<double> u(static_cast<std::size_t>(nb));
    for (Index i = 0; i < nb; ++i) {
        for (Index r = 0; r < nb; ++r) T[i * nb + r] = 0.0;
        T[i * nb + i] = tau[i];
        if (tau[i] == 0.0 || i == 0) continue;
        // u = V(:, 0:i)^T v_i (v_i is zero above row i).
        const double* vi = V + i * ldv;
        for (Index j = 0; j < i; ++j) {
            const double* vj = V + j * ldv;
            double d = 0.0;
            for (Index r = i; r < m; ++r) d += vj[r] * vi[r];
            u[static_cast<std::size_t>(j)] = d;
        }
        // T(0:i, i) = -tau_i T(0:i, 0:i) u.
        for (Index r = 0; r < i; ++r) {
            double d = 0.0;
            for (Index j = r; j < i; ++j)
                d += T[j * nb + r] * u[static_cast<std::size_t>(j)];
            T[i * nb + r] = -tau[i] * d;
        }
    }
}

// The panels of hessenberg_reduce() for columns 0..k-1 (k returned, a multiple of
// kPanel): reflectors go to A (below the subdiagonal zeroed), Vall and taus.
Index hessenberg_panels(Eigen::MatrixXd& A, Eigen::MatrixXd& Vall,
                        std::vector<double>& taus) {
    const Index n = A.rows();
    const Index ld = A.outerStride();
    const Index nr = n - 2;
    Index k = 0;
    const Index nb = kPanel;
    Eigen::MatrixXd Y(n, nb), Tm(nb, nb), Vt, W, W2;
    std::vector<double> u(static_cast<std::size_t>(nb));
    for (; k + nb <= nr && n - k > kBlockedMin; k += nb) {
        const Index m = n - k - 1;  // rows k+1..n-1
        Tm.setZero();
        for (Index i = 0; i < nb; ++i) {
            const Index c = k + i;
            double* col = A.data() + c * ld;
            if (i > 0) {
                // Right: b -= Y(k+1:n, 0:i) V(c, 0:i)^T.
                for (Index j = 0; j < i; ++j)
                    u[static_cast<std::size_t>(j)] = Vall(c, k + j);
                gemv(m, i, -1.0, Y.data() + k + 1, n, u.data(), true, col + k + 1);
                // Left: b(k+1:n) <- (I - V T^T V^T) b(k+1:n) (V zero above its 1s).
                const double* Vp = Vall.data() + k * n + k + 1;
                gemv_t(m, i, Vp, n, col + k + 1, u.data());
                for (Index j = i - 1; j >= 0; --j) {  // u <- T^T u
                    double d = 0.0;
                    for (Index q = 0; q <= j; ++q)
                        d += Tm(q, j) * u[static_cast<std::size_t>(q)];
                    u[static_cast<std::size_t>(j)] = d;
                }
                gemv(m, i, -1.0, Vp, n, u.data(), true, col + k + 1);
            }
            // Reflector from col(c+1:n).
            const Index len = n - c - 1;
            double* x = col + c + 1;
            const double tau = make_reflector(x, len);
            taus[static_cast<std::size_t>(c)] = tau;
            double* v = Vall.data() + c * n;
            v[c + 1] = 1.0;
            for (Index r = 1; r < len; ++r) {
                v[c + 1 + r] = x[r];
                x[r] = 0.0;
            }
            // u = V(:, 0:i)^T v_i; Y(k+1:n, i) = tau (A(k+1:n, c+1:n) v_i - Y u).
            gemv_t(len, i, Vall.data() + k * n + c + 1, n, v + c + 1, u.data());
            double* y = Y.data() + i * n;
            gemv(m, len, tau, A.data() + (c + 1) * ld + k + 1, ld, v + c + 1, false,
                 y + k + 1);
            gemv(m, i, -tau, Y.data() + k + 1, n, u.data(), true, y + k + 1);
            // T(0:i, i) = -tau T(0:i, 0:i) u; T(i, i) = tau.
            for (Index r = 0; r < i; ++r) {
                double d = 0.0;
                for (Index j = r; j < i; ++j)
                    d += Tm(r, j) * u[static_cast<std::size_t>(j)];
                Tm(r, i) = -tau * d;
            }
            Tm(i, i) = tau;
        }
        const double* V = Vall.data() + k * n + (k + 1);  // V(k+1:n, 0:nb), ld n
        // Rows 0..k: Y(0:k+1, :) = A(0:k+1, k+1:n) V T, then A(0:k+1, k+1:n) -= Y
        // V^T.
        const Index top = k + 1;
        W.resize(top, nb);
        gemm(top, nb, m, 1.0, A.data() + (k + 1) * ld, ld, V, n, false, W.data(), top);
        gemm(top, nb, nb, 1.0, W.data(), top, Tm.data(), nb, false, Y.data(), n);
        Vt = Eigen::Map<const Eigen::MatrixXd, 0, Eigen::OuterStride<>>(
                 V, m, nb, Eigen::OuterStride<>(n))
                 .transpose();  // nb x m
        gemm(top, m, nb, -1.0, Y.data(), n, Vt.data(), nb, true,
             A.data() + (k + 1) * ld, ld);
        // Rows k+1..n-1, columns k+nb..n-1: right update, then the left one.
        const Index nc = n - k - nb;
        gemm(m, nc, nb, -1.0, Y.data() + k + 1, n, Vt.data() + (nb - 1) * nb, nb, true,
             A.data() + (k + nb) * ld + k + 1, ld);
        W.resize(nb, nc);
        gemm(nb, nc, m, 1.0, Vt.data(), nb, A.data() + (k + nb) * ld + k + 1, ld, false,
             W.data(), nb);
        const Eigen::MatrixXd Tt = Tm.transpose();
        W2.resize(nb, nc);
        gemm(nb, nc, nb, 1.0, Tt.data(), nb, W.data(), nb, false, W2.data(), nb);
        gemm(m, nc, nb, -1.0, V, n, W2.data(), nb, true,
             A.data() + (k + nb) * ld + k + 1, ld);
    }
    return k;
}

// Q = H_0 H_1 ... H_{n-3} from the reflectors (Vall, taus); Q = I on entry.
void form_q(const Eigen::MatrixXd& Vall, const std::vector<double>& taus,
            Eigen::MatrixXd& Q) {
    const Index n = Q.rows();
    const Index nr = n - 2;
    // Backwards by groups: Q(g0+1:, g0+1:) <- (I - V T V^T) Q(g0+1:, g0+1:).
    const Index ldq = Q.outerStride();
    Eigen::MatrixXd Tg, W, W2;
    for (Index g0 = ((nr - 1) / kPanel) * kPanel; g0 >= 0; g0 -= kPanel) {
        const Index nb = std::min(kPanel, nr - g0);
        const Index m = n - g0 - 1;  // rows g0+1..n-1
        const double* V = Vall.data() + g0 * n + (g0 + 1);
        Tg.resize(nb, nb);
        compact_wy_factor(m, nb, V, n, taus.data() + g0, Tg.data());
        // Only columns g0+1..n-1 of Q are touched, rows g0+1..n-1.
        const Eigen::MatrixXd Vt =
            Eigen::Map<const Eigen::MatrixXd, 0, Eigen::OuterStride<>>(
                V, m, nb, Eigen::OuterStride<>(n))
                .transpose();
        W.resize(nb, m);
        double* q = Q.data() + (g0 + 1) * ldq + (g0 + 1);
        gemm(nb, m, m, 1.0, Vt.data(), nb, q, ldq, false, W.data(), nb);
        W2.resize(nb, m);
        gemm(nb, m, nb, 1.0, Tg.data(), nb, W.data(), nb, false, W2.data(), nb);
        gemm(m, m, nb, -1.0, V, n, W2.data(), nb, true, q, ldq);
    }
}

}  // namespace

// Hessenberg reduction H = Q^T W Q, Q accumulated explicitly. Blocked after
// Quintana-Orti & van de Geijn (ACM TOMS 32, 2006): panels of kPanel reflectors are
// built with matrix-vector products, then the rest of the matrix is updated with matrix
// products; Q is formed backwards from the compact WY form of each group.
HessenbergReflectors hessenberg_reduce(Eigen::MatrixXd& A) {
    const Index n = A.rows();
    const Index ld = A.outerStride();
    HessenbergReflectors r;
    if (n < 3) return r;
    const Index nr = n - 2;  // number of reflectors; v_k lives in rows k+1..n-1
    r.V = Eigen::MatrixXd::Zero(n, nr);
    r.taus.assign(static_cast<std::size_t>(nr), 0.0);
    Eigen::MatrixXd& Vall = r.V;
    std::vector<double>& taus = r.taus;
    std::vector<double> w(static_cast<std::size_t>(n));
    Index k = 0;

    if (n >= kBlockedMin) k = hessenberg_panels(A, Vall, taus);

    // Unblocked for the remaining columns.
    for (; k < nr; ++k) {
        const Index m = n - k - 1;
        double* x = A.col(k).data() + k + 1;
        const double tau = make_reflector(x, m);
        double* v = Vall.data() + k * n;
        v[k + 1] = 1.0;
        for (Index i = 1; i < m; ++i) {
            v[k + 1 + i] = x[i];
            x[i] = 0.0;
        }
        taus[static_cast<std::size_t>(k)] = tau;
        if (tau == 0.0) continue;
        reflect_left(A.data() + (k + 1) * ld + (k + 1), ld, m, m, v + k + 1, tau);
        reflect_right(A.data() + (k + 1) * ld, ld, n, m, v + k + 1, tau, w.data());
    }
    return r;
}

void hessenberg_q(const HessenbergReflectors& r, Index n, Eigen::MatrixXd& Q) {
    Q.setIdentity(n, n);
    if (n >= 3) form_q(r.V, r.taus, Q);
}

namespace {

// Upper end k in (lo, hi] of the lowest-placed negligible subdiagonal entry
// H(k, k-1), searching up from hi; lo if there is none. Negligible: below `tiny`,
// or small next to the neighbouring diagonal entries (the neighbouring subdiagonal
// entries if those are zero) and then also by Ahues & Tisseur's test.
Index lowest_split(const MapM& H, Index lo, Index hi, double tiny) {
    Index k = hi;
    for (; k > lo; --k) {
        const double sub = std::abs(H(k, k - 1));
        if (sub <= tiny) break;
        double near_deflation_scale = std::abs(H(k - 1, k - 1)) + std::abs(H(k, k));
        if (near_deflation_scale == 0.0) {
            if (k - 2 >= lo) near_deflation_scale += std::abs(H(k - 1, k - 2));
            if (k + 1 <= hi) near_deflation_scale += std::abs(H(k + 1, k));
        }
        if (sub <= kUlp * near_deflation_scale &&
            ahues_tisseur_negligible(H(k, k - 1), H(k - 1, k), H(k - 1, k - 1), H(k, k),
                                     tiny, false))
            break;
    }
    return k;
}

// The eigenvalues of [upper, super; sub, lower] as a shift pair, computed on the
// block divided by the sum of its magnitudes (no overflow). Real eigenvalues are
// replaced by two copies of the one nearer `lower` (the choice of Wilkinson's
// shift: the bottom eigenvalue estimate is the one converging).
ShiftPair eigenvalues_as_shifts(double upper, double super, double sub, double lower) {
    const double scale =
        std::abs(upper) + std::abs(super) + std::abs(sub) + std::abs(lower);
    if (scale == 0.0) return {0.0, 0.0, 0.0, 0.0};
    const double a = upper / scale, b = super / scale, c = sub / scale,
                 d = lower / scale;
    const double mean = 0.5 * (a + d);
    const double centred_det = (a - mean) * (d - mean) - b * c;
    const double root = std::sqrt(std::abs(centred_det));
    if (centred_det >= 0.0) {  // complex conjugate pair mean +- i root
        const double re = mean * scale, im = root * scale;
        return {re, im, re, -im};
    }
    const double plus = mean + root, minus = mean - root;
    const double nearer =
        std::abs(plus - d) <= std::abs(minus - d) ? plus * scale : minus * scale;
    return {nearer, 0.0, nearer, 0.0};
}

// Shifts for the next sweep on rows lo..hi: Francis's double shift (the trailing
// 2x2 block's eigenvalues), replaced by exceptional ones built from the bottom
// (every 20th) or top (every 10th) subdiagonal entries while no deflation comes.
ShiftPair francis_shifts(const MapM& H, Index lo, Index hi, Index sweeps_since_split) {
    if (sweeps_since_split % 20 == 0 || sweeps_since_split % 10 == 0) {
        const bool bottom = sweeps_since_split % 20 == 0;
        const Index at = bottom ? hi : lo;
        const double size = bottom
                                ? std::abs(H(hi, hi - 1)) + std::abs(H(hi - 1, hi - 2))
                                : std::abs(H(lo + 1, lo)) + std::abs(H(lo + 2, lo + 1));
        const double centre = kExceptionalOffset * size + H(at, at);
        return eigenvalues_as_shifts(centre, kExceptionalCoupling * size, size, centre);
    }
    return eigenvalues_as_shifts(H(hi - 1, hi - 1), H(hi - 1, hi), H(hi, hi - 1),
                                 H(hi, hi));
}

// Row where the bulge starts, in [lo, hi-2], with the first reflector's direction
// in x (normalised to unit 1-norm): the bottom-most row whose subdiagonal entry, times
// the fill the reflector would create left of the bulge, is negligible, so that
// the sweep can start there as if the matrix had split (Francis).
Index bulge_start(const MapM& H, Index lo, Index hi, const ShiftPair& shifts,
                  double* x) {
    Index start = hi - 2;
    for (;; --start) {
        bulge_start_column(H, start, 3, shifts, x);
        const double norm1 = std::abs(x[0]) + std::abs(x[1]) + std::abs(x[2]);
        x[0] /= norm1;
        x[1] /= norm1;
        x[2] /= norm1;
        if (start == lo) break;
        const double fill =
            std::abs(H(start, start - 1)) * (std::abs(x[1]) + std::abs(x[2]));
        const double nearby = std::abs(x[0]) * (std::abs(H(start - 1, start - 1)) +
                                                std::abs(H(start, start)) +
                                                std::abs(H(start + 1, start + 1)));
        if (fill <= kUlp * nearby) break;
    }
    return start;
}

// One double-shift sweep: the bulge made by the reflector along x at row `start`
// is chased down to row hi (each reflector restores column col-1 below the
// subdiagonal), on all of H's columns right of it, rows 0..hi, and on Z.
void chase_double_bulge(MapM& H, MapM& Z, Index lo, Index start, Index hi, double* x) {
    const Index n = H.rows(), ld = H.outerStride(), ldz = Z.outerStride();
    for (Index col = start; col <= hi - 1; ++col) {
        const Index len = std::min<Index>(3, hi - col + 1);
        if (col > start)
            for (Index r = 0; r < len; ++r) x[r] = H(col + r, col - 1);
        const double tau = make_reflector(x, len);
        if (col > start) {
            H(col, col - 1) = x[0];
            H(col + 1, col - 1) = 0.0;
            if (col < hi - 1) H(col + 2, col - 1) = 0.0;
        } else if (start > lo) {
            // The reflector's exact effect on the (negligible, kept) entry left of the
            // bulge; not a sign flip, which is wrong when x(1:2) underflowed (tau = 0).
            H(col, col - 1) *= (1.0 - tau);
        }
        const double v2 = x[1];
        if (tau == 0.0) continue;
        if (len == 3) {
            const double v3 = x[2];
            rows3(H.data() + col * ld + col, ld, n - col, tau, v2, v3);
            const Index rows = std::min(col + 3, hi) + 1;
            cols3(H.data() + col * ld, ld, rows, tau, v2, v3);
            cols3(Z.data() + col * ldz, ldz, Z.rows(), tau, v2, v3);
        } else {
            rows2(H.data() + col * ld + col, ld, n - col, tau, v2);
            cols2(H.data() + col * ld, ld, hi + 1, tau, v2);
            cols2(Z.data() + col * ldz, ldz, Z.rows(), tau, v2);
        }
    }
}

// Standardise the converged 2x2 block at rows top..top+1 (it may split into two
// real eigenvalues) and apply its rotation to the rest of H and to Z.
void standardise_block(MapM& H, MapM& Z, Index top) {
    const Index n = H.rows(), bot = top + 1;
    double a = H(top, top), b = H(top, bot), c = H(bot, top), d = H(bot, bot);
    const Rotation r = standardize_2x2(a, b, c, d);
    H(top, top) = a;
    H(top, bot) = b;
    H(bot, top) = c;
    H(bot, bot) = d;
    if (r.c != 1.0 || r.s != 0.0) {
        rotate_rows_pair(H, top, bot + 1, n, r);
        rotate_cols_pair(H, top, top, r);
        rotate_cols_pair(Z, top, Z.rows(), r);
    }
}

}  // namespace

// Francis double-shift QR on the Hessenberg H (full Schur form T = H, Z updated):
// eigenvalues converge at the bottom of the active block rows top..bottom, one or
// two at a time; blocks that split off higher up are left for later.
// Returns false if it did not converge.
bool francis(MapM H, MapM Z) {
    const Index n = H.rows();
    if (n == 0) return true;
    const double tiny = kSafeMin * (static_cast<double>(n) / kUlp);
    const Index max_sweeps = 30 * std::max<Index>(10, n);
    Index sweeps_since_split = 0;
    Index bottom = n - 1;
    while (bottom >= 0) {
        Index top = 0;
        bool converged = false;
        for (Index sweep = 0; sweep <= max_sweeps; ++sweep) {
            top = lowest_split(H, top, bottom, tiny);
            if (top > 0) H(top, top - 1) = 0.0;
            if (top >= bottom - 1) {  // a 1x1 or 2x2 block split off at the bottom
                converged = true;
                break;
            }
            ++sweeps_since_split;
            const ShiftPair shifts = francis_shifts(H, top, bottom, sweeps_since_split);
            double x[3];
            const Index start = bulge_start(H, top, bottom, shifts, x);
            chase_double_bulge(H, Z, top, start, bottom, x);
        }
        if (!converged) return false;
        if (top == bottom - 1) standardise_block(H, Z, top);
        sweeps_since_split = 0;
        bottom = top - 1;
    }
    return true;
}

}  // namespace qr

void real_schur_own(const ConstMatRef& W, Eigen::MatrixXd& T, Eigen::MatrixXd& Q,
                    int threads) {
    T = W;
    const Index n = T.rows();
    const qr::HessenbergReflectors refl = qr::hessenberg_reduce(T);
    // Q gets its final size before the view Qm is taken: hessenberg_q's
    // setIdentity(n, n) then keeps the storage the view (and the second thread)
    // points to.
    Q.resize(n, n);
    qr::MapM Tm = qr::view(T.data(), n, n, T.outerStride());
    qr::MapM Qm = qr::view(Q.data(), n, n, Q.outerStride());
    bool ok = false;
    if (threads >= 2 && n >= qr::kOverlapMinOrder) {
        ok = qr::multishift_overlapped(Tm, Qm, [&] { qr::hessenberg_q(refl, n, Q); });
    } else {
        qr::hessenberg_q(refl, n, Q);
        ok =
            n >= qr::kMultishiftMinOrder ? qr::multishift(Tm, Qm) : qr::francis(Tm, Qm);
    }
    if (!ok)
        throw std::runtime_error(
            "the QR algorithm did not converge");  // -> RuntimeError
    for (Index j = 0; j + 2 < n; ++j) T.col(j).tail(n - j - 2).setZero();
}

}  // namespace rnnschur::schur
