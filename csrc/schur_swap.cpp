// Standardisation, adjacent block swaps and reordering by modulus. See schur.hpp.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <numeric>
#include <sstream>
#include <utility>

#include "errors.hpp"
#include "schur.hpp"

namespace rnnschur::schur {
namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();  // LAPACK dlamch('P')
// LAPACK's SMLNUM: safe minimum / eps, the smallest magnitude we divide by safely.
constexpr double kSmall = std::numeric_limits<double>::min() / kEps;

template <typename S>
using SmallT = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, 0, 4, 4>;
using Small = SmallT<double>;
using SmallX = SmallT<long double>;  // extended precision for the retries

inline double sgn(double x) {
    return std::copysign(1.0, x);
}

// Rotation R = [c s; -s c] applied to rows (i, i+1) of T for columns [c0, c1).
void rotate_rows(MatRef T, Index i, Index c0, Index c1, const Rotation& r) {
    for (Index k = c0; k < c1; ++k) {
        const double x = T(i, k);
        const double y = T(i + 1, k);
        T(i, k) = r.c * x + r.s * y;
        T(i + 1, k) = r.c * y - r.s * x;
    }
}

// Columns (i, i+1) of M, rows [0, rows), times R^T = [c -s; s c].
void rotate_cols(MatRef M, Index i, Index rows, const Rotation& r) {
    double* __restrict x = M.col(i).data();
    double* __restrict y = M.col(i + 1).data();
    for (Index k = 0; k < rows; ++k) {
        const double xv = x[k];
        const double yv = y[k];
        x[k] = r.c * xv + r.s * yv;
        y[k] = r.c * yv - r.s * xv;
    }
}

// Standardise the 2x2 block at (i, i) of T in place and apply the rotation to the
// rest of T and to Q. Returns true if the block split into two 1x1 blocks.
bool standardize_block(MatRef T, MatRef Q, Index i) {
    const Index n = T.rows();
    double a = T(i, i), b = T(i, i + 1), c = T(i + 1, i), d = T(i + 1, i + 1);
    const Rotation r = standardize_2x2(a, b, c, d);
    T(i, i) = a;
    T(i, i + 1) = b;
    T(i + 1, i) = c;
    T(i + 1, i + 1) = d;
    if (r.c != 1.0 || r.s != 0.0) {
        rotate_rows(T, i, i + 2, n, r);
        rotate_cols(T, i, i, r);
        rotate_cols(Q, i, Q.rows(), r);
    }
    return c == 0.0;
}

// Rows [j, j+M) of T, columns [c0, c1): rows <- V^T rows.
template <int M>
inline void left_vt(MatRef T, Index j, Index c0, Index c1, const Small& V) {
    double v[M][M];
    for (int p = 0; p < M; ++p)
        for (int q = 0; q < M; ++q) v[p][q] = V(p, q);
    for (Index k = c0; k < c1; ++k) {
        double* col = T.col(k).data() + j;
        double x[M];
        for (int p = 0; p < M; ++p) x[p] = col[p];
        for (int q = 0; q < M; ++q) {
            double s = 0.0;
            for (int p = 0; p < M; ++p) s += v[p][q] * x[p];
            col[q] = s;
        }
    }
}

// Columns [j, j+M) of M, rows [0, rows): columns <- columns V. Processed in short
// chunks so that the inner loops vectorise over rows.
template <int M>
inline void right_v(MatRef A, Index j, Index rows, const Small& V) {
    double v[M][M];
    for (int p = 0; p < M; ++p)
        for (int q = 0; q < M; ++q) v[p][q] = V(p, q);
    double* cols[M];
    for (int p = 0; p < M; ++p) cols[p] = A.col(j + p).data();
    constexpr Index kChunk = 64;
    double buf[M][kChunk];
    for (Index r0 = 0; r0 < rows; r0 += kChunk) {
        const Index len = std::min(kChunk, rows - r0);
        for (int p = 0; p < M; ++p)
            for (Index k = 0; k < len; ++k) buf[p][k] = cols[p][r0 + k];
        for (int q = 0; q < M; ++q) {
            double* __restrict out = cols[q] + r0;
            for (Index k = 0; k < len; ++k) {
                double s = 0.0;
                for (int p = 0; p < M; ++p) s += v[p][q] * buf[p][k];
                out[k] = s;
            }
        }
    }
}

template <int M>
inline void apply_similarity_m(MatRef T, MatRef Q, Index j, const Small& V) {
    const Index n = T.rows();
    left_vt<M>(T, j, j + M, n, V);
    right_v<M>(T, j, j, V);
    right_v<M>(Q, j, Q.rows(), V);
}

// The O(n) part of a swap, compiled for AVX2+FMA and for baseline x86-64.
RNNSCHUR_CLONES
void apply_similarity(MatRef T, MatRef Q, Index j, int m, const Small& V) {
    switch (m) {
        case 2:
            apply_similarity_m<2>(T, Q, j, V);
            break;
        case 3:
            apply_similarity_m<3>(T, Q, j, V);
            break;
        default:
            apply_similarity_m<4>(T, Q, j, V);
            break;
    }
}

// ---------------------------------------------------------------------------
// Small Sylvester equation A X - X B = scale * C, A n1 x n1, B n2 x n2 (n1, n2 <= 2),
// as the Kronecker system (I kron A - B^T kron I) vec(X) = scale vec(C), solved by
// Gaussian elimination with complete pivoting. Pivots below smin = max(eps * max
// |K|, kSmall) are replaced by smin (a tiny perturbation of the equation), and the
// right-hand side is scaled down when the solution would otherwise overflow.
template <typename S>
struct SmallLU {
    int p = 0;
    S K[4][4] = {};  // L (unit, below) and U (on/above) after factorisation
    int row_perm[4] = {0, 1, 2, 3};
    int col_perm[4] = {0, 1, 2, 3};
    bool perturbed = false;
};

template <typename S>
SmallLU<S> factor_kron(const SmallT<S>& A, const SmallT<S>& B) {
    using std::abs;
    const int n1 = static_cast<int>(A.rows());
    const int n2 = static_cast<int>(B.rows());
    SmallLU<S> lu;
    lu.p = n1 * n2;
    for (int q = 0; q < n2; ++q)
        for (int i = 0; i < n1; ++i)
            for (int l = 0; l < n2; ++l)
                for (int k = 0; k < n1; ++k)
                    lu.K[q * n1 + i][l * n1 + k] =
                        (q == l ? A(i, k) : S(0)) - (i == k ? B(l, q) : S(0));
    S amax = 0;
    for (int i = 0; i < n1; ++i)
        for (int k = 0; k < n1; ++k) amax = std::max(amax, S(abs(A(i, k))));
    for (int i = 0; i < n2; ++i)
        for (int k = 0; k < n2; ++k) amax = std::max(amax, S(abs(B(i, k))));
    const S smin = std::max(S(std::numeric_limits<S>::epsilon()) * amax, S(kSmall));
    const int p = lu.p;
    for (int s = 0; s < p; ++s) {
        int ip = s, jp = s;
        S best = -1;
        for (int i = s; i < p; ++i)
            for (int l = s; l < p; ++l)
                if (abs(lu.K[i][l]) > best) {
                    best = abs(lu.K[i][l]);
                    ip = i;
                    jp = l;
                }
        if (ip != s) {
            for (int l = 0; l < p; ++l) std::swap(lu.K[ip][l], lu.K[s][l]);
            std::swap(lu.row_perm[ip], lu.row_perm[s]);
        }
        if (jp != s) {
            for (int i = 0; i < p; ++i) std::swap(lu.K[i][jp], lu.K[i][s]);
            std::swap(lu.col_perm[jp], lu.col_perm[s]);
        }
        if (abs(lu.K[s][s]) < smin) {
            lu.K[s][s] = lu.K[s][s] < 0 ? -smin : smin;
            lu.perturbed = true;
        }
        for (int i = s + 1; i < p; ++i) {
            lu.K[i][s] /= lu.K[s][s];
            for (int l = s + 1; l < p; ++l) lu.K[i][l] -= lu.K[i][s] * lu.K[s][l];
        }
    }
    return lu;
}

// Solve K x = scale * rhs (rhs in natural vec order); returns scale in (0, 1].
template <typename S>
S solve_kron(const SmallLU<S>& lu, const S* rhs, S* x) {
    using std::abs;
    const int p = lu.p;
    S b[4];
    for (int i = 0; i < p; ++i) b[i] = rhs[lu.row_perm[i]];
    for (int i = 0; i < p; ++i)
        for (int l = 0; l < i; ++l) b[i] -= lu.K[i][l] * b[l];
    S scale = 1;
    S bmax = 0;
    bool need = false;
    for (int i = 0; i < p; ++i) {
        bmax = std::max(bmax, S(abs(b[i])));
        if (S(8 * kSmall) * abs(b[i]) > abs(lu.K[i][i])) need = true;
    }
    if (need && bmax > 0) {
        scale = S(0.125) / bmax;
        for (int i = 0; i < p; ++i) b[i] *= scale;
    }
    S y[4];
    for (int i = p - 1; i >= 0; --i) {
        S v = b[i];
        for (int l = i + 1; l < p; ++l) v -= lu.K[i][l] * y[l];
        y[i] = v / lu.K[i][i];
    }
    for (int i = 0; i < p; ++i) x[lu.col_perm[i]] = y[i];
    return scale;
}

// Orthogonal V (m x m) whose first n2 columns span range([-X; scale I]).
template <typename S>
SmallT<S> basis_from_x(const SmallT<S>& X, S scale, int n1, int n2) {
    // Householder QR of M = [-X; scale I] (m x n2, m <= 4), V = H1 H2 explicitly.
    using std::abs;
    using std::sqrt;
    const int m = n1 + n2;
    S M[4][2] = {};
    for (int q = 0; q < n2; ++q) {
        for (int i = 0; i < n1; ++i) M[i][q] = -X(i, q);
        M[n1 + q][q] = scale;
    }
    S v[2][4] = {};
    S beta[2] = {0, 0};  // H = I - beta v v^T
    for (int q = 0; q < n2; ++q) {
        S norm2 = 0;
        for (int i = q; i < m; ++i) norm2 += M[i][q] * M[i][q];
        const S norm = sqrt(norm2);
        if (norm == S(0)) continue;
        const S alpha = M[q][q] >= 0 ? -norm : norm;
        for (int i = q; i < m; ++i) v[q][i] = M[i][q];
        v[q][q] -= alpha;
        S vv = 0;
        for (int i = q; i < m; ++i) vv += v[q][i] * v[q][i];
        beta[q] = vv > 0 ? S(2) / vv : S(0);
        for (int c = q; c < n2; ++c) {  // apply H_q to the remaining columns of M
            S d = 0;
            for (int i = q; i < m; ++i) d += v[q][i] * M[i][c];
            d *= beta[q];
            for (int i = q; i < m; ++i) M[i][c] -= d * v[q][i];
        }
    }
    SmallT<S> V = SmallT<S>::Identity(m, m);
    for (int q = n2 - 1; q >= 0; --q) {  // V = H_0 (H_1 I)
        if (beta[q] == S(0)) continue;
        for (int c = 0; c < m; ++c) {
            S d = 0;
            for (int i = q; i < m; ++i) d += v[q][i] * V(i, c);
            d *= beta[q];
            for (int i = q; i < m; ++i) V(i, c) -= d * v[q][i];
        }
    }
    return V;
}

// Orthogonal V whose first n2 columns span the (numerical) null space of p(D), p the
// characteristic polynomial of the trailing n2 x n2 block of D: the invariant
// subspace of D belonging to that block's eigenvalues, from a full SVD.
template <typename S>
SmallT<S> basis_from_svd(const SmallT<S>& D, int n1, int n2) {
    using Sm = SmallT<S>;
    const int m = n1 + n2;
    const S scl = D.cwiseAbs().maxCoeff();
    const Sm Ds = D / scl;
    const Sm B = Ds.bottomRightCorner(n2, n2);
    Sm P;
    if (n2 == 1) {
        P = Ds - B(0, 0) * Sm::Identity(m, m);
    } else {
        const S tr = B(0, 0) + B(1, 1);
        const S det = B(0, 0) * B(1, 1) - B(0, 1) * B(1, 0);
        P = Ds * Ds - tr * Ds + det * Sm::Identity(m, m);
    }
    Eigen::JacobiSVD<Sm> svd(P, Eigen::ComputeFullV);
    const Sm Vs = svd.matrixV();  // singular values in decreasing order
    Sm V(m, m);
    V.leftCols(n2) = Vs.rightCols(n2);
    V.rightCols(n1) = Vs.leftCols(n1);
    return V;
}

// Sylvester-based candidate in precision S with up to `refine` refinement steps;
// calls `try_v(V)` (V rounded to double) after each and stops when it accepts.
template <typename S, typename TryV>
bool sylvester_candidates(const Small& D, int n1, int n2, int refine, TryV&& try_v) {
    using Sm = SmallT<S>;
    const Sm Dx = D.template cast<S>();
    const Sm A = Dx.topLeftCorner(n1, n1);
    const Sm B = Dx.bottomRightCorner(n2, n2);
    const Sm C = Dx.topRightCorner(n1, n2);
    const SmallLU<S> lu = factor_kron<S>(A, B);
    S rhs[4], x[4];
    for (int q = 0; q < n2; ++q)
        for (int i = 0; i < n1; ++i) rhs[q * n1 + i] = C(i, q);
    const S scale = solve_kron<S>(lu, rhs, x);
    Sm X(n1, n2);
    for (int q = 0; q < n2; ++q)
        for (int i = 0; i < n1; ++i) X(i, q) = x[q * n1 + i];
    for (int it = 0;; ++it) {
        if (!X.allFinite()) return false;
        if (try_v(basis_from_x<S>(X, scale, n1, n2).template cast<double>(), it > 0))
            return true;
        if (it == refine) return false;
        // Iterative refinement of X with the same factorisation.
        const Sm R = scale * C - (A * X - X * B);
        for (int q = 0; q < n2; ++q)
            for (int i = 0; i < n1; ++i) rhs[q * n1 + i] = R(i, q);
        if (solve_kron<S>(lu, rhs, x) != S(1)) return false;
        for (int q = 0; q < n2; ++q)
            for (int i = 0; i < n1; ++i) X(i, q) += x[q * n1 + i];
    }
}

struct Candidate {
    Small Dt;  // V^T D V with the subdiagonal block zeroed
    double weak = 0.0;
    double strong = 0.0;
};

// Evaluate a candidate swap V on the diagonal block D: the weak test (subdiagonal
// block, and unchanged 1x1 eigenvalues) and the strong test (||D - V Dz V^T||_F).
// The tests of a candidate swap, with the products formed in precision S: double
// first (as LAPACK); extended precision when the double evaluation fails, so that a
// swap is not rejected for the rounding of its own test.
template <typename S>
Candidate evaluate(const Small& D, const Small& V, int n1, int n2) {
    using std::abs;
    const int m = n1 + n2;
    const SmallT<S> Dx = D.template cast<S>();
    const SmallT<S> Vx = V.template cast<S>();
    SmallT<S> Dt = Vx.transpose() * Dx * Vx;
    S weak = Dt.bottomLeftCorner(n1, n2).cwiseAbs().maxCoeff();
    // A moved 1x1 block keeps its eigenvalue exactly: measure, then impose.
    if (n2 == 1) {
        weak = std::max(weak, S(abs(Dt(0, 0) - Dx(m - 1, m - 1))));
        Dt(0, 0) = Dx(m - 1, m - 1);
    }
    if (n1 == 1) {
        weak = std::max(weak, S(abs(Dt(m - 1, m - 1) - Dx(0, 0))));
        Dt(m - 1, m - 1) = Dx(0, 0);
    }
    Dt.bottomLeftCorner(n1, n2).setZero();
    Candidate c;
    c.Dt = Dt.template cast<double>();  // what T receives
    c.weak = static_cast<double>(weak);
    c.strong = static_cast<double>(
        (Dx - Vx * c.Dt.template cast<S>() * Vx.transpose()).norm());
    return c;
}

std::string describe_block(const ConstMatRef& T, Index start, int size) {
    std::complex<double> ev[2];
    block_eigenvalues(T, start, size, ev);
    std::ostringstream os;
    os << std::setprecision(17);
    os << "rows " << start << ".." << start + size - 1 << " (eigenvalue";
    if (size == 2) {
        os << "s " << ev[0].real() << " +/- " << ev[0].imag() << "i";
    } else {
        os << " " << ev[0].real();
    }
    os << ", modulus " << block_modulus(T, start, size) << ")";
    return os.str();
}

}  // namespace

// ---------------------------------------------------------------------------
Rotation standardize_2x2(double& a, double& b, double& c, double& d) {
    Rotation r;
    if (c == 0.0) return r;
    if (b == 0.0) {  // swap rows and columns
        r.c = 0.0;
        r.s = 1.0;
        std::swap(a, d);
        b = -c;
        c = 0.0;
        return r;
    }
    if (a - d == 0.0 && std::signbit(b) != std::signbit(c)) return r;  // standard
    const double diff = a - d;
    double p = 0.5 * diff;
    const double bcmax = std::max(std::abs(b), std::abs(c));
    const double bcmis = std::min(std::abs(b), std::abs(c)) * sgn(b) * sgn(c);
    const double scale = std::max(std::abs(p), bcmax);
    double z = (p / scale) * p + (bcmax / scale) * bcmis;  // discriminant / scale
    if (z >= 4.0 * kEps) {
        // Clearly real eigenvalues: triangularise directly, larger one first.
        z = p + std::copysign(std::sqrt(scale) * std::sqrt(z), p);
        a = d + z;
        d = d - (bcmax / z) * bcmis;
        const double tau = std::hypot(c, z);
        r.c = z / tau;
        r.s = c / tau;
        b = b - c;
        c = 0.0;
        return r;
    }
    // Complex or (nearly) equal real eigenvalues: rotate to equal diagonal entries.
    const double sigma = b + c;
    const double tau = std::hypot(sigma, diff);
    double cs = std::sqrt(0.5 * (1.0 + std::abs(sigma) / tau));
    double sn = -(p / (tau * cs)) * sgn(sigma);
    const double aa = a * cs + b * sn;
    const double bb = -a * sn + b * cs;
    const double cc = c * cs + d * sn;
    const double dd = -c * sn + d * cs;
    a = aa * cs + cc * sn;
    b = bb * cs + dd * sn;
    c = -aa * sn + cc * cs;
    d = -bb * sn + dd * cs;
    const double mid = 0.5 * (a + d);
    a = mid;
    d = mid;
    if (c != 0.0) {
        if (b != 0.0) {
            if (std::signbit(b) == std::signbit(c)) {
                // Real eigenvalues after all: one more rotation triangularises.
                const double sab = std::sqrt(std::abs(b));
                const double sac = std::sqrt(std::abs(c));
                p = std::copysign(sab * sac, c);
                const double t = 1.0 / std::sqrt(std::abs(b + c));
                a = mid + p;
                d = mid - p;
                b = b - c;
                c = 0.0;
                const double cs1 = sab * t;
                const double sn1 = sac * t;
                const double tmp = cs * cs1 - sn * sn1;
                sn = cs * sn1 + sn * cs1;
                cs = tmp;
            }
        } else {
            b = -c;
            c = 0.0;
            const double tmp = cs;
            cs = -sn;
            sn = tmp;
        }
    }
    r.c = cs;
    r.s = sn;
    return r;
}

void standardize(MatRef T, MatRef Q) {
    const Index n = T.rows();
    for (Index j = 0; j + 2 < n; ++j) T.col(j).tail(n - j - 2).setZero();
    Index i = 0;
    while (i < n) {
        if (i + 1 < n && T(i + 1, i) != 0.0) {
            if (i + 2 < n && T(i + 2, i + 1) != 0.0) {
                std::ostringstream os;
                os << "T is not quasi-upper-triangular: consecutive nonzero "
                      "subdiagonal "
                      "entries at rows "
                   << i + 1 << " and " << i + 2;
                throw std::invalid_argument(os.str());
            }
            i += standardize_block(T, Q, i) ? 1 : 2;
        } else {
            ++i;
        }
    }
}

Blocks read_blocks(const ConstMatRef& T) {
    Blocks b;
    const Index n = T.rows();
    Index i = 0;
    while (i < n) {
        const int s = (i + 1 < n && T(i + 1, i) != 0.0) ? 2 : 1;
        b.starts.push_back(i);
        b.sizes.push_back(s);
        i += s;
    }
    return b;
}

void block_eigenvalues(const ConstMatRef& T, Index start, int size,
                       std::complex<double>* out) {
    if (size == 1) {
        out[0] = {T(start, start), 0.0};
        return;
    }
    const double a = T(start, start);
    const double im = std::sqrt(std::abs(T(start, start + 1))) *
                      std::sqrt(std::abs(T(start + 1, start)));
    out[0] = {a, im};
    out[1] = {a, -im};
}

double block_modulus(const ConstMatRef& T, Index start, int size) {
    if (size == 1) return std::abs(T(start, start));
    const double im = std::sqrt(std::abs(T(start, start + 1))) *
                      std::sqrt(std::abs(T(start + 1, start)));
    return std::hypot(T(start, start), im);
}

namespace {

// 1x1 / 1x1 swap at row j: the rotation taking e1 to the eigenvector of t22; never
// rejected (backward stable), and T(j, j+1) is unchanged in exact arithmetic.
void swap_1x1(MatRef T, MatRef Q, Index j) {
    const Index n = T.rows();
    const double t11 = T(j, j), t22 = T(j + 1, j + 1), t12 = T(j, j + 1);
    const double f = t12, g = t22 - t11;
    Rotation r;
    if (g != 0.0 || f != 0.0) {
        const double h = std::hypot(f, g);
        r.c = f / h;
        r.s = g / h;
    }
    rotate_rows(T, j, j + 2, n, r);
    rotate_cols(T, j, j, r);
    rotate_cols(Q, j, Q.rows(), r);
    T(j, j) = t22;
    T(j + 1, j + 1) = t11;
}

// Standardises the 2x2 blocks of the swapped diagonal block Dt (sizes n2 then n1)
// and folds each rotation into V, so that V^T D V = Dt still holds.
void restandardize_moved(Small& Dt, Small& V, int n1, int n2) {
    const int m = n1 + n2;
    for (const auto& [off, size] : {std::pair<int, int>{0, n2}, {n2, n1}}) {
        if (size != 2) continue;
        double a = Dt(off, off), b = Dt(off, off + 1), c = Dt(off + 1, off),
               d = Dt(off + 1, off + 1);
        const Rotation r = standardize_2x2(a, b, c, d);
        if (r.c == 1.0 && r.s == 0.0) continue;
        for (int k = off + 2; k < m; ++k) {  // rows off, off+1 to the right
            const double x = Dt(off, k), y = Dt(off + 1, k);
            Dt(off, k) = r.c * x + r.s * y;
            Dt(off + 1, k) = r.c * y - r.s * x;
        }
        for (int k = 0; k < off; ++k) {  // columns off, off+1 above
            const double x = Dt(k, off), y = Dt(k, off + 1);
            Dt(k, off) = r.c * x + r.s * y;
            Dt(k, off + 1) = r.c * y - r.s * x;
        }
        for (int k = 0; k < m; ++k) {  // V <- V R^T
            const double x = V(k, off), y = V(k, off + 1);
            V(k, off) = r.c * x + r.s * y;
            V(k, off + 1) = r.c * y - r.s * x;
        }
        Dt(off, off) = a;
        Dt(off, off + 1) = b;
        Dt(off + 1, off) = c;
        Dt(off + 1, off + 1) = d;
    }
}

// SwapRejected naming both blocks and the last candidate's residuals.
[[noreturn]] void reject_swap(const ConstMatRef& T, Index j, int n1, int n2,
                              const SwapReport& rep, double last_weak,
                              double last_strong) {
    std::ostringstream os;
    os << std::setprecision(3);
    os << "cannot swap the adjacent Schur blocks at " << describe_block(T, j, n1)
       << " and " << describe_block(T, j + n1, n2)
       << ": no method (Bai-Demmel swap, iterative refinement, extended precision, "
          "SVD basis) passes the stability test (weak residual "
       << last_weak << " vs threshold " << rep.weak_threshold << ", strong residual "
       << last_strong << " vs threshold " << rep.strong_threshold
       << "); the eigenvalues are too close to be reordered reliably";
    throw SwapRejected(os.str());
}

}  // namespace

SwapReport swap_adjacent(MatRef T, MatRef Q, Index j, int n1, int n2,
                         SwapStrategy strategy) {
    SwapReport rep;
    const Index n = T.rows();
    const int m = n1 + n2;
    if (n1 < 1 || n1 > 2 || n2 < 1 || n2 > 2 || j < 0 || j + m > n)
        throw std::invalid_argument("swap_adjacent: bad block position or sizes");

    if (m == 2) {
        swap_1x1(T, Q, j);
        rep.method = SwapMethod::givens;
        return rep;
    }

    const Small D = T.block(j, j, m, m);
    const double dmax = D.cwiseAbs().maxCoeff();
    rep.weak_threshold = std::max(10.0 * kEps * dmax, kSmall);
    rep.strong_threshold = std::max(20.0 * kEps * D.norm(), kSmall);
    Small V;
    Candidate best;
    bool ok = false;
    double last_weak = 0.0, last_strong = 0.0;
    // Evaluates a candidate; keeps it if it passes both tests.
    auto passes = [&](const Candidate& c) {
        return std::isfinite(c.strong) && c.weak <= rep.weak_threshold &&
               c.strong <= rep.strong_threshold;
    };
    auto try_v = [&](const Small& Vc, SwapMethod method) {
        if (!Vc.allFinite()) return false;
        Candidate c = evaluate<double>(D, Vc, n1, n2);
        if (!passes(c)) c = evaluate<long double>(D, Vc, n1, n2);
        last_weak = c.weak;
        last_strong = c.strong;
        if (!passes(c)) return false;
        V = Vc;
        best = c;
        rep.method = method;
        return true;
    };
    if (strategy != SwapStrategy::svd_only) {
        // Bai-Demmel: solve A X - X B = s C, reflectors from [-X; s I]; then up to
        // three steps of iterative refinement; then the same in extended precision.
        ok = sylvester_candidates<double>(
            D, n1, n2, 3, [&](const Small& Vc, bool refined) {
                return try_v(Vc, refined ? SwapMethod::refined : SwapMethod::sylvester);
            });
        if (!ok)
            ok = sylvester_candidates<long double>(
                D, n1, n2, 2,
                [&](const Small& Vc, bool) { return try_v(Vc, SwapMethod::extended); });
    }
    if (!ok && strategy != SwapStrategy::sylvester_only) {
        // Orthonormal basis of the invariant subspace from an SVD (double, then
        // extended precision).
        ok = try_v(basis_from_svd<double>(D, n1, n2), SwapMethod::svd) ||
             try_v(basis_from_svd<long double>(D.cast<long double>(), n1, n2)
                       .cast<double>(),
                   SwapMethod::svd);
    }
    if (!ok) reject_swap(T, j, n1, n2, rep, last_weak, last_strong);
    rep.weak_residual = best.weak;
    rep.strong_residual = best.strong;

    // Re-standardise the moved 2x2 blocks on the small matrix (they may split into
    // 1x1 blocks) and fold the rotations into V, so that T and Q get one O(n) pass.
    Small Dt = best.Dt;
    restandardize_moved(Dt, V, n1, n2);
    apply_similarity(T, Q, j, m, V);
    T.block(j, j, m, m) = Dt;
    return rep;
}

ReorderStats reorder_by_modulus(MatRef T, MatRef Q, double rtol, double atol,
                                SwapStrategy strategy) {
    ReorderStats st;
    if (!T.allFinite() || !Q.allFinite())
        throw NonFiniteError("T and Q must be finite");
    if (atol < 0.0) atol = static_cast<double>(T.rows()) * kEps * T.norm();
    st.atol = atol;
    standardize(T, Q);
    const Blocks b = read_blocks(T);
    const std::size_t nb = b.starts.size();
    if (nb == 0) return st;

    // Cluster the moduli: sort decreasingly (ties by position, for determinism)
    // and start a new cluster at every gap larger than rtol * previous + atol.
    std::vector<double> mod(nb);
    for (std::size_t k = 0; k < nb; ++k)
        mod[k] = block_modulus(T, b.starts[k], b.sizes[k]);
    std::vector<std::size_t> order(nb);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t x, std::size_t y) { return mod[x] > mod[y]; });
    std::vector<int> key(nb);
    int cluster = 0;
    for (std::size_t r = 0; r < nb; ++r) {
        if (r > 0) {
            const double prev = mod[order[r - 1]];
            if (prev - mod[order[r]] > rtol * prev + atol) ++cluster;
        }
        key[order[r]] = cluster;
    }
    st.clusters = cluster + 1;

    struct Blk {
        Index start;
        int size;
        int key;
    };
    std::vector<Blk> L(nb);
    for (std::size_t k = 0; k < nb; ++k) L[k] = {b.starts[k], b.sizes[k], key[k]};

    // Gnome sort by cluster key on the live block list: every swap removes exactly
    // one inversion, so the number of swaps is minimal for adjacent transpositions.
    std::size_t k = 1;
    while (k < L.size()) {
        if (L[k - 1].key <= L[k].key) {
            ++k;
            continue;
        }
        const Blk up = L[k - 1];
        const Blk lo = L[k];
        const SwapReport rep =
            swap_adjacent(T, Q, up.start, up.size, lo.size, strategy);
        ++st.swaps;
        if (rep.method == SwapMethod::refined) ++st.refined;
        if (rep.method == SwapMethod::extended) ++st.extended;
        if (rep.method == SwapMethod::svd) ++st.svd;
        if (rep.weak_threshold > 0) {
            st.max_weak = std::max(st.max_weak, rep.weak_residual / rep.weak_threshold);
            st.max_strong =
                std::max(st.max_strong, rep.strong_residual / rep.strong_threshold);
        }
        // Re-read the sizes of the two moved blocks: a 2x2 block may have split.
        const bool lo_split = lo.size == 2 && T(up.start + 1, up.start) == 0.0;
        const Index up_new = up.start + lo.size;
        const bool up_split = up.size == 2 && T(up_new + 1, up_new) == 0.0;
        if (!lo_split && !up_split) {
            L[k - 1] = {up.start, lo.size, lo.key};
            L[k] = {up_new, up.size, up.key};
        } else {
            Blk repl[4];
            int nr = 0;
            if (lo_split) {
                repl[nr++] = {up.start, 1, lo.key};
                repl[nr++] = {up.start + 1, 1, lo.key};
            } else {
                repl[nr++] = {up.start, lo.size, lo.key};
            }
            if (up_split) {
                repl[nr++] = {up_new, 1, up.key};
                repl[nr++] = {up_new + 1, 1, up.key};
            } else {
                repl[nr++] = {up_new, up.size, up.key};
            }
            L.erase(L.begin() + static_cast<std::ptrdiff_t>(k - 1),
                    L.begin() + static_cast<std::ptrdiff_t>(k + 1));
            L.insert(L.begin() + static_cast<std::ptrdiff_t>(k - 1), repl, repl + nr);
        }
        if (k > 1) --k;
    }
    st.clusters_of_blocks.reserve(L.size());
    for (const Blk& blk : L) st.clusters_of_blocks.push_back(blk.key);
    return st;
}

}  // namespace rnnschur::schur
