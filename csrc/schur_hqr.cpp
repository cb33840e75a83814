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

#include "schur.hpp"

namespace rnnschur::schur {
namespace {

constexpr double kUlp = std::numeric_limits<double>::epsilon();
constexpr double kSafeMin = std::numeric_limits<double>::min();

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

// Householder reflector for x (length m): H x = alpha e1 with H = I - tau u u^T,
// u(0) = 1. On return x[1..m) holds u(1..m), returns tau; x[0] = alpha.
// Euclidean norm of x[0..m): a plain sum of squares when no entry is near the
// over/underflow range of its square, else scaled (hypot is ~20x slower).
double norm2(const double* x, Index m) {
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

double make_reflector(double* x, Index m) {
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

void rotate_rows_pair(Eigen::MatrixXd& T, Index i, Index c0, Index c1, const Rotation& r) {
    for (Index k = c0; k < c1; ++k) {
        const double x = T(i, k), y = T(i + 1, k);
        T(i, k) = r.c * x + r.s * y;
        T(i + 1, k) = r.c * y - r.s * x;
    }
}

void rotate_cols_pair(Eigen::MatrixXd& M, Index i, Index rows, const Rotation& r) {
    double* x = M.col(i).data();
    double* y = M.col(i + 1).data();
    for (Index k = 0; k < rows; ++k) {
        const double xv = x[k], yv = y[k];
        x[k] = r.c * xv + r.s * yv;
        y[k] = r.c * yv - r.s * xv;
    }
}

// Hessenberg reduction H = Q^T W Q, Q accumulated explicitly.
void hessenberg(Eigen::MatrixXd& A, Eigen::MatrixXd& Q) {
    const Index n = A.rows();
    const Index ld = A.outerStride();
    Q.setIdentity(n, n);
    if (n < 3) return;
    std::vector<double> us(static_cast<std::size_t>(n) * static_cast<std::size_t>(n), 0.0);
    std::vector<double> taus(static_cast<std::size_t>(n), 0.0);
    std::vector<double> w(static_cast<std::size_t>(n));
    std::vector<double> u(static_cast<std::size_t>(n));
    for (Index k = 0; k + 2 < n; ++k) {
        const Index m = n - k - 1;
        double* x = A.col(k).data() + k + 1;
        const double tau = make_reflector(x, m);
        u[0] = 1.0;
        for (Index i = 1; i < m; ++i) u[static_cast<std::size_t>(i)] = x[i];
        double* store = us.data() + static_cast<std::size_t>(k) * static_cast<std::size_t>(n);
        for (Index i = 0; i < m; ++i) store[i] = u[static_cast<std::size_t>(i)];
        taus[static_cast<std::size_t>(k)] = tau;
        for (Index i = 1; i < m; ++i) x[i] = 0.0;
        if (tau == 0.0) continue;
        // Left: rows k+1..n-1, columns k+1..n-1.
        reflect_left(A.data() + (k + 1) * ld + (k + 1), ld, m, m, u.data(), tau);
        // Right: all rows, columns k+1..n-1.
        reflect_right(A.data() + (k + 1) * ld, ld, n, m, u.data(), tau, w.data());
    }
    // Q = H_0 H_1 ... H_{n-3}: backward accumulation touches only the trailing block.
    const Index ldq = Q.outerStride();
    for (Index k = n - 3; k >= 0; --k) {
        const double tau = taus[static_cast<std::size_t>(k)];
        if (tau == 0.0) continue;
        const Index m = n - k - 1;
        const double* store =
            us.data() + static_cast<std::size_t>(k) * static_cast<std::size_t>(n);
        reflect_left(Q.data() + (k + 1) * ldq + (k + 1), ldq, m, m, store, tau);
    }
}

// Francis double-shift QR on the Hessenberg H (full Schur form T = H, Z updated).
// Returns false if it did not converge.
bool francis(Eigen::MatrixXd& H, Eigen::MatrixXd& Z) {
    const Index n = H.rows();
    if (n == 0) return true;
    const Index ld = H.outerStride();
    const Index ldz = Z.outerStride();
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
                    if (ba * (ab / s) <= std::max(smlnum, kUlp * (bb * (aa / s)))) break;
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
                const double s = std::abs(h11) + std::abs(h12) + std::abs(h21) + std::abs(h22);
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
                const double h00 = std::abs(H(m, m - 1)) * (std::abs(v[1]) + std::abs(v[2]));
                const double h01 = std::abs(v[0]) * (std::abs(H(m - 1, m - 1)) +
                                                     std::abs(H(m, m)) +
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
                    cols3(Z.data() + kk * ldz, ldz, n, t1, v2, v3);
                } else {
                    rows2(H.data() + kk * ld + kk, ld, n - kk, t1, v2);
                    cols2(H.data() + kk * ld, ld, i + 1, t1, v2);
                    cols2(Z.data() + kk * ldz, ldz, n, t1, v2);
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
                rotate_cols_pair(Z, i - 1, n, r);
            }
        }
        kdefl = 0;
        i = l - 1;
    }
    return true;
}

}  // namespace

void real_schur_own(const ConstMatRef& W, Eigen::MatrixXd& T, Eigen::MatrixXd& Q) {
    T = W;
    hessenberg(T, Q);
    if (!francis(T, Q))
        throw std::runtime_error("the QR algorithm did not converge");  // -> RuntimeError
    const Index n = T.rows();
    for (Index j = 0; j + 2 < n; ++j) T.col(j).tail(n - j - 2).setZero();
}

}  // namespace rnnschur::schur
