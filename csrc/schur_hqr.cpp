// Unordered real Schur form for small matrices: Householder Hessenberg reduction and
// the Francis double-shift QR iteration (Golub & Van Loan, Alg. 7.4.2 / 7.5.2), with
// the deflation test of Ahues & Tisseur and exceptional shifts as in LAPACK's
// dlahqr. The hot loops are plain C++ on column-major storage, compiled twice
// (AVX2+FMA and baseline x86-64) with runtime selection, so wheels stay portable.
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

// 3-element reflector (1, v2, v3) with factor t1 on three consecutive columns
// c0, c0+ld, c0+2ld of `rows` rows (contiguous): the right application.
RNNSCHUR_CLONES
void cols3(double* c0, Index ld, Index rows, double t1, double v2, double v3) {
    double* __restrict a = c0;
    double* __restrict b = c0 + ld;
    double* __restrict c = c0 + 2 * ld;
    const double t2 = t1 * v2, t3 = t1 * v3;
    for (Index r = 0; r < rows; ++r) {
        const double s = a[r] + v2 * b[r] + v3 * c[r];
        a[r] -= s * t1;
        b[r] -= s * t2;
        c[r] -= s * t3;
    }
}

RNNSCHUR_CLONES
void cols2(double* c0, Index ld, Index rows, double t1, double v2) {
    double* __restrict a = c0;
    double* __restrict b = c0 + ld;
    const double t2 = t1 * v2;
    for (Index r = 0; r < rows; ++r) {
        const double s = a[r] + v2 * b[r];
        a[r] -= s * t1;
        b[r] -= s * t2;
    }
}

// Left application to three consecutive rows starting at p (column-major, ld),
// columns [0, ncols).
RNNSCHUR_CLONES
void rows3(double* p, Index ld, Index ncols, double t1, double v2, double v3) {
    const double t2 = t1 * v2, t3 = t1 * v3;
    for (Index j = 0; j < ncols; ++j) {
        double* q = p + j * ld;
        const double s = q[0] + v2 * q[1] + v3 * q[2];
        q[0] -= s * t1;
        q[1] -= s * t2;
        q[2] -= s * t3;
    }
}

RNNSCHUR_CLONES
void rows2(double* p, Index ld, Index ncols, double t1, double v2) {
    const double t2 = t1 * v2;
    for (Index j = 0; j < ncols; ++j) {
        double* q = p + j * ld;
        const double s = q[0] + v2 * q[1];
        q[0] -= s * t1;
        q[1] -= s * t2;
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
// at row i, zeros above), taus in tau.
void larft(Index m, Index nb, const double* V, Index ldv, const double* tau,
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

}  // namespace

// Hessenberg reduction H = Q^T W Q, Q accumulated explicitly. Blocked as LAPACK's
// dgehrd (Quintana-Orti & van de Geijn): panels of kPanel reflectors are built with
// matrix-vector products, then the rest of the matrix is updated with matrix
// products; Q is formed backwards from the compact WY form of each group.
void hessenberg(Eigen::MatrixXd& A, Eigen::MatrixXd& Q) {
    const Index n = A.rows();
    const Index ld = A.outerStride();
    Q.setIdentity(n, n);
    if (n < 3) return;
    const Index nr = n - 2;  // number of reflectors; v_k lives in rows k+1..n-1
    Eigen::MatrixXd Vall = Eigen::MatrixXd::Zero(n, nr);
    std::vector<double> taus(static_cast<std::size_t>(nr), 0.0);
    std::vector<double> w(static_cast<std::size_t>(n));
    Index k = 0;

    if (n >= kBlockedMin) {
        const Index nb = kPanel;
        Eigen::MatrixXd Y(n, nb), Tm(nb, nb), Vt, W, W2;
        std::vector<double> b(static_cast<std::size_t>(n)),
            u(static_cast<std::size_t>(nb));
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
            gemm(top, nb, m, 1.0, A.data() + (k + 1) * ld, ld, V, n, false, W.data(),
                 top);
            gemm(top, nb, nb, 1.0, W.data(), top, Tm.data(), nb, false, Y.data(), n);
            Vt = Eigen::Map<const Eigen::MatrixXd, 0, Eigen::OuterStride<>>(
                     V, m, nb, Eigen::OuterStride<>(n))
                     .transpose();  // nb x m
            gemm(top, m, nb, -1.0, Y.data(), n, Vt.data(), nb, true,
                 A.data() + (k + 1) * ld, ld);
            // Rows k+1..n-1, columns k+nb..n-1: right update, then the left one.
            const Index nc = n - k - nb;
            gemm(m, nc, nb, -1.0, Y.data() + k + 1, n, Vt.data() + (nb - 1) * nb, nb,
                 true, A.data() + (k + nb) * ld + k + 1, ld);
            W.resize(nb, nc);
            gemm(nb, nc, m, 1.0, Vt.data(), nb, A.data() + (k + nb) * ld + k + 1, ld,
                 false, W.data(), nb);
            const Eigen::MatrixXd Tt = Tm.transpose();
            W2.resize(nb, nc);
            gemm(nb, nc, nb, 1.0, Tt.data(), nb, W.data(), nb, false, W2.data(), nb);
            gemm(m, nc, nb, -1.0, V, n, W2.data(), nb, true,
                 A.data() + (k + nb) * ld + k + 1, ld);
        }
    }

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

    // Q = H_0 H_1 ... H_{n-3}, backwards by groups: Q(k+1:, k+1:) <- (I - V T V^T)
    // Q(...).
    const Index ldq = Q.outerStride();
    Eigen::MatrixXd Tg, W, W2;
    for (Index g0 = ((nr - 1) / kPanel) * kPanel; g0 >= 0; g0 -= kPanel) {
        const Index nb = std::min(kPanel, nr - g0);
        const Index m = n - g0 - 1;  // rows g0+1..n-1
        const double* V = Vall.data() + g0 * n + (g0 + 1);
        Tg.resize(nb, nb);
        larft(m, nb, V, n, taus.data() + g0, Tg.data());
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

// Francis double-shift QR on the Hessenberg H (full Schur form T = H, Z updated).
// Returns false if it did not converge.
bool francis(MapM H, MapM Z) {
    const Index n = H.rows();
    if (n == 0) return true;
    const Index ld = H.outerStride();
    const Index ldz = Z.outerStride();
    const Index nz = Z.rows();
    const double smlnum = kSafeMin * (static_cast<double>(n) / kUlp);
    const Index itmax = 30 * std::max<Index>(10, n);
    Index kdefl = 0;
    Index i = n - 1;  // bottom of the active window
    while (i >= 0) {
        Index l = 0;
        bool converged = false;
        for (Index its = 0; its <= itmax; ++its) {
            // Look for a single small subdiagonal element.
            Index k = i;
            for (; k > l; --k) {
                const double hkk1 = std::abs(H(k, k - 1));
                if (hkk1 <= smlnum) break;
                double tst = std::abs(H(k - 1, k - 1)) + std::abs(H(k, k));
                if (tst == 0.0) {
                    if (k - 2 >= l) tst += std::abs(H(k - 1, k - 2));
                    if (k + 1 <= i) tst += std::abs(H(k + 1, k));
                }
                if (hkk1 <= kUlp * tst) {
                    // Ahues & Tisseur: a more careful, still conservative test.
                    const double hk1k = std::abs(H(k - 1, k));
                    const double ab = std::max(hkk1, hk1k);
                    const double ba = std::min(hkk1, hk1k);
                    const double dd = std::abs(H(k - 1, k - 1) - H(k, k));
                    const double aa = std::max(std::abs(H(k, k)), dd);
                    const double bb = std::min(std::abs(H(k, k)), dd);
                    const double s = aa + ab;
                    if (ba * (ab / s) <= std::max(smlnum, kUlp * (bb * (aa / s))))
                        break;
                }
            }
            l = k;
            if (l > 0) H(l, l - 1) = 0.0;
            if (l >= i - 1) {
                converged = true;
                break;
            }
            ++kdefl;

            // Shifts: exceptional every 10 / 20 iterations without deflation.
            double h11, h21, h12, h22;
            if (kdefl % 20 == 0) {
                const double s = std::abs(H(i, i - 1)) + std::abs(H(i - 1, i - 2));
                h11 = 0.75 * s + H(i, i);
                h12 = -0.4375 * s;
                h21 = s;
                h22 = h11;
            } else if (kdefl % 10 == 0) {
                const double s = std::abs(H(l + 1, l)) + std::abs(H(l + 2, l + 1));
                h11 = 0.75 * s + H(l, l);
                h12 = -0.4375 * s;
                h21 = s;
                h22 = h11;
            } else {
                h11 = H(i - 1, i - 1);
                h21 = H(i, i - 1);
                h12 = H(i - 1, i);
                h22 = H(i, i);
            }
            // Eigenvalues of the trailing 2x2 as the shift pair (rt1, rt2).
            double rt1r, rt1i, rt2r, rt2i;
            {
                const double s =
                    std::abs(h11) + std::abs(h12) + std::abs(h21) + std::abs(h22);
                if (s == 0.0) {
                    rt1r = rt1i = rt2r = rt2i = 0.0;
                } else {
                    const double a = h11 / s, b = h12 / s, c = h21 / s, d = h22 / s;
                    const double tr = 0.5 * (a + d);
                    const double det = (a - tr) * (d - tr) - b * c;
                    const double rtdisc = std::sqrt(std::abs(det));
                    if (det >= 0.0) {  // complex pair
                        rt1r = tr * s;
                        rt2r = rt1r;
                        rt1i = rtdisc * s;
                        rt2i = -rt1i;
                    } else {  // real: use the one closer to h22 twice
                        rt1r = tr + rtdisc;
                        rt2r = tr - rtdisc;
                        if (std::abs(rt1r - d) <= std::abs(rt2r - d)) {
                            rt1r *= s;
                            rt2r = rt1r;
                        } else {
                            rt2r *= s;
                            rt1r = rt2r;
                        }
                        rt1i = rt2i = 0.0;
                    }
                }
            }

            // Look for two consecutive small subdiagonals to start the bulge at m.
            Index m = i - 2;
            double v[3];
            for (;; --m) {
                const double h21s = H(m + 1, m);
                double s = std::abs(H(m, m) - rt2r) + std::abs(rt2i) + std::abs(h21s);
                const double h21n = h21s / s;
                v[0] = h21n * H(m, m + 1) + (H(m, m) - rt1r) * ((H(m, m) - rt2r) / s) -
                       rt1i * (rt2i / s);
                v[1] = h21n * (H(m, m) + H(m + 1, m + 1) - rt1r - rt2r);
                v[2] = h21n * H(m + 2, m + 1);
                s = std::abs(v[0]) + std::abs(v[1]) + std::abs(v[2]);
                v[0] /= s;
                v[1] /= s;
                v[2] /= s;
                if (m == l) break;
                const double h00 =
                    std::abs(H(m, m - 1)) * (std::abs(v[1]) + std::abs(v[2]));
                const double h01 =
                    std::abs(v[0]) * (std::abs(H(m - 1, m - 1)) + std::abs(H(m, m)) +
                                      std::abs(H(m + 1, m + 1)));
                if (h00 <= kUlp * h01) break;
            }

            // Double-shift QR sweep (bulge chase) over rows m..i.
            for (Index kk = m; kk <= i - 1; ++kk) {
                const Index nr = std::min<Index>(3, i - kk + 1);
                if (kk > m) {
                    for (Index r = 0; r < nr; ++r) v[r] = H(kk + r, kk - 1);
                }
                const double t1 = make_reflector(v, nr);
                if (kk > m) {
                    H(kk, kk - 1) = v[0];
                    H(kk + 1, kk - 1) = 0.0;
                    if (kk < i - 1) H(kk + 2, kk - 1) = 0.0;
                } else if (m > l) {
                    // Keep the sweep an orthogonal similarity (LAPACK's fix).
                    H(kk, kk - 1) *= (1.0 - t1);
                }
                const double v2 = v[1];
                if (t1 == 0.0) continue;
                if (nr == 3) {
                    const double v3 = v[2];
                    rows3(H.data() + kk * ld + kk, ld, n - kk, t1, v2, v3);
                    const Index rows = std::min(kk + 3, i) + 1;
                    cols3(H.data() + kk * ld, ld, rows, t1, v2, v3);
                    cols3(Z.data() + kk * ldz, ldz, nz, t1, v2, v3);
                } else {
                    rows2(H.data() + kk * ld + kk, ld, n - kk, t1, v2);
                    cols2(H.data() + kk * ld, ld, i + 1, t1, v2);
                    cols2(Z.data() + kk * ldz, ldz, nz, t1, v2);
                }
            }
        }
        if (!converged) return false;
        if (l == i - 1) {
            // 2x2 block: standardise (may split into two 1x1 blocks).
            double a = H(i - 1, i - 1), b = H(i - 1, i), c = H(i, i - 1), d = H(i, i);
            const Rotation r = standardize_2x2(a, b, c, d);
            H(i - 1, i - 1) = a;
            H(i - 1, i) = b;
            H(i, i - 1) = c;
            H(i, i) = d;
            if (r.c != 1.0 || r.s != 0.0) {
                rotate_rows_pair(H, i - 1, i + 1, n, r);
                rotate_cols_pair(H, i - 1, i - 1, r);
                rotate_cols_pair(Z, i - 1, nz, r);
            }
        }
        kdefl = 0;
        i = l - 1;
    }
    return true;
}

}  // namespace qr

void real_schur_own(const ConstMatRef& W, Eigen::MatrixXd& T, Eigen::MatrixXd& Q) {
    T = W;
    qr::hessenberg(T, Q);
    const Index n = T.rows();
    qr::MapM Tm = qr::view(T.data(), n, n, T.outerStride());
    qr::MapM Qm = qr::view(Q.data(), n, n, Q.outerStride());
    const bool ok =
        n >= qr::tuning().nmin ? qr::multishift(Tm, Qm) : qr::francis(Tm, Qm);
    if (!ok)
        throw std::runtime_error(
            "the QR algorithm did not converge");  // -> RuntimeError
    for (Index j = 0; j + 2 < n; ++j) T.col(j).tail(n - j - 2).setZero();
}

}  // namespace rnnschur::schur
