// Small-bulge multishift QR with aggressive early deflation (AED) for the real
// Schur form of an upper Hessenberg matrix: the algorithm of Braman, Byers &
// Mathias (SIAM J. Matrix Anal. Appl. 23, 2002) as in LAPACK's dlaqr0/dlaqr3/dlaqr5,
// written for this project with one difference in how the work is organised:
//
// * A chain of bulges is chased along the diagonal one window at a time. Inside
//   the window the reflectors are applied as they are made; they are also recorded,
//   and the rest of H (rows above, columns right of the window) and Z get the whole
//   recorded sequence in one cache-blocked pass per window (apply_seq): a block of
//   rows (or of transposed columns) stays in L1 while every reflector of the window
//   is applied to it. LAPACK instead accumulates the window's reflectors into a
//   dense orthogonal U and multiplies by it (GEMM): 2-3x more flops, which the GEMM
//   speed recovers only for much larger windows than ours (n <= a few hundred).
// * AED computes the window's Schur form with the double-shift QR (francis) or,
//   for large windows, recursively with this routine, reorders it with the
//   project's Bai-Demmel swaps (swap_adjacent, stability tests included), and
//   applies the window's orthogonal matrix to the rest of H and Z with a small
//   GEMM kernel.
#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <vector>

#include "schur.hpp"
#include "schur_qr.hpp"

namespace rnnschur::schur::qr {

Tuning& tuning() {
    static Tuning t;
    return t;
}

#ifdef RNNSCHUR_QR_STATS
Stats& stats() {
    static Stats st;
    return st;
}
#endif

namespace {

// A reflector I - tau u u^T with u = (1, v2[, v3]) acting on indices p, p+1[, p+2].
struct Refl {
    Index p;
    int len;
    double tau, v2, v3;
};

// Apply the reflector sequence f[0..nf) to `lanes` independent vectors x_l with
// x_l(i) = base[(i - off) * stride + l]: the right application to a block of rows
// of a column-major matrix (stride = ld, lanes = rows) or the left application to
// a block of transposed columns (stride = lanes). The block stays in L1 while all
// reflectors pass over it.
RNNSCHUR_CLONES
void apply_seq(double* base, Index stride, Index lanes, const Refl* f, std::size_t nf,
               Index off) {
    for (std::size_t q = 0; q < nf; ++q) {
        const Refl& r = f[q];
        double* __restrict a = base + (r.p - off) * stride;
        double* __restrict b = a + stride;
        const double t1 = r.tau, v2 = r.v2, t2 = t1 * v2;
        if (r.len == 3) {
            double* __restrict c = b + stride;
            const double v3 = r.v3, t3 = t1 * v3;
            for (Index l = 0; l < lanes; ++l) {
                const double s = a[l] + v2 * b[l] + v3 * c[l];
                a[l] -= s * t1;
                b[l] -= s * t2;
                c[l] -= s * t3;
            }
        } else {
            for (Index l = 0; l < lanes; ++l) {
                const double s = a[l] + v2 * b[l];
                a[l] -= s * t1;
                b[l] -= s * t2;
            }
        }
    }
}

// The same on a packed block of kLanes lanes: x_l(i) = B[(i - off) * kLanes + l],
// with two spare index rows at the end so that a 2-element reflector can run as a
// 3-element one with v3 = 0 (no branch, fixed trip count, no alias checks).
constexpr Index kLanes = 16;

RNNSCHUR_CLONES
void apply_packed(double* __restrict B, const Refl* f, std::size_t nf, Index off) {
    for (std::size_t q = 0; q < nf; ++q) {
        const Refl& r = f[q];
        double* __restrict a = B + (r.p - off) * kLanes;
        const double t1 = r.tau, v2 = r.v2, v3 = r.len == 3 ? r.v3 : 0.0;
        for (Index l = 0; l < kLanes; ++l) {
            const double s = t1 * (a[l] + v2 * a[kLanes + l] + v3 * a[2 * kLanes + l]);
            a[l] -= s;
            a[kLanes + l] -= s * v2;
            a[2 * kLanes + l] -= s * v3;
        }
    }
}

// Rows [r0, r1) x columns [c0, c1] of A: A <- A * (reflectors in order), reflector
// indices being column indices in [c0, c1]. Row blocks are packed first: with a
// power-of-two leading dimension the columns of a block would all map to a few L1
// sets.
void refls_right(MapM& A, Index r0, Index r1, Index c0, Index c1,
                 const std::vector<Refl>& f, std::vector<double>& buf) {
    if (f.empty() || r0 >= r1) return;
    const Index ld = A.outerStride();
    const Index m = c1 - c0 + 1;
    buf.assign(static_cast<std::size_t>((m + 2) * kLanes), 0.0);
    for (Index r = r0; r < r1; r += kLanes) {
        const Index len = std::min(kLanes, r1 - r);
        for (Index j = 0; j < m; ++j)
            std::copy_n(A.data() + (c0 + j) * ld + r, len, buf.data() + j * kLanes);
        apply_packed(buf.data(), f.data(), f.size(), c0);
        for (Index j = 0; j < m; ++j)
            std::copy_n(buf.data() + j * kLanes, len, A.data() + (c0 + j) * ld + r);
    }
}

// Rows [w0, w1] x columns [c0, c1) of A: every reflector applied from the left, in
// order, on blocks of columns transposed into the packed layout.
void refls_left(MapM& A, Index w0, Index w1, Index c0, Index c1,
                const std::vector<Refl>& f, std::vector<double>& buf) {
    if (f.empty() || c0 >= c1) return;
    const Index ld = A.outerStride();
    const Index m = w1 - w0 + 1;
    buf.assign(static_cast<std::size_t>((m + 2) * kLanes), 0.0);
    for (Index c = c0; c < c1; c += kLanes) {
        const Index lanes = std::min(kLanes, c1 - c);
        for (Index l = 0; l < lanes; ++l) {
            const double* col = A.data() + (c + l) * ld + w0;
            for (Index i = 0; i < m; ++i)
                buf[static_cast<std::size_t>(i * kLanes + l)] = col[i];
        }
        apply_packed(buf.data(), f.data(), f.size(), w0);
        for (Index l = 0; l < lanes; ++l) {
            double* col = A.data() + (c + l) * ld + w0;
            for (Index i = 0; i < m; ++i)
                col[i] = buf[static_cast<std::size_t>(i * kLanes + l)];
        }
    }
}

// A[r0:r1, c0:c0+k] <- A[r0:r1, c0:c0+k] * V (V k x k).
void mul_right(MapM& A, Index r0, Index r1, Index c0, const Eigen::MatrixXd& V,
               std::vector<double>& tmp) {
    const Index m = r1 - r0, k = V.rows();
    if (m <= 0 || k == 0) return;
    tmp.resize(static_cast<std::size_t>(m * k));
    double* a = A.data() + c0 * A.outerStride() + r0;
    gemm(m, k, k, 1.0, a, A.outerStride(), V.data(), k, false, tmp.data(), m);
    for (Index j = 0; j < k; ++j)
        std::copy_n(tmp.data() + j * m, m, a + j * A.outerStride());
}

// A[r0:r0+k, c0:c1] <- Vt * A[r0:r0+k, c0:c1] (Vt k x k).
void mul_left(MapM& A, Index r0, Index c0, Index c1, const Eigen::MatrixXd& Vt,
              std::vector<double>& tmp) {
    const Index n = c1 - c0, k = Vt.rows();
    if (n <= 0 || k == 0) return;
    tmp.resize(static_cast<std::size_t>(n * k));
    double* a = A.data() + c0 * A.outerStride() + r0;
    gemm(k, n, k, 1.0, Vt.data(), k, a, A.outerStride(), false, tmp.data(), k);
    for (Index j = 0; j < n; ++j)
        std::copy_n(tmp.data() + j * k, k, a + j * A.outerStride());
}

// First column of the double-shift polynomial at rows t..t+len-1 (len 2 or 3).
void shift_vector(const MapM& H, Index t, int len, const ShiftPair& s, double* v) {
    bulge_start_column(H, t, len, s, v);
}

inline Index floor_div(Index a, Index b) {
    Index q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
}

struct Work {
    std::vector<Refl> refls;
    std::vector<double> buf, tmp;
};

// One small-bulge multishift QR sweep on the active block [ktop, kbot] of H with
// the given shift pairs (one bulge each), chained 3 rows apart (see the file
// comment for how the transformations reach the rest of H and Z).
void sweep(MapM& H, MapM& Z, Index ktop, Index kbot,
           const std::vector<ShiftPair>& shifts, Work& w) {
    const Index n = H.cols();
    const Index nb = static_cast<Index>(shifts.size());
    if (nb == 0 || ktop >= kbot) return;
    const double smlnum = kSafeMin * (static_cast<double>(n) / kUlp);
    if (ktop + 2 <= kbot) H(ktop + 2, ktop) = 0.0;
    RNNSCHUR_STAT(sweeps++);
    RNNSCHUR_STAT(bulges += nb);
    const Index chase = std::max<Index>(3 * nb - 2, tuning().min_chase);
    std::vector<std::array<double, 3>> v(static_cast<std::size_t>(nb));  // tau, v2, v3
    auto V = [&](Index m) -> std::array<double, 3>& {
        return v[static_cast<std::size_t>(m)];
    };

    for (Index kr0 = ktop - 1 - 3 * (nb - 1); kr0 <= kbot - 2; kr0 += chase) {
        const Index kr1 = std::min(kr0 + chase - 1, kbot - 2);
        const Index w0 = std::max(ktop, kr0 + 1);
        const Index w1 = std::min(kbot, kr1 + 3 * nb);
        w.refls.clear();
        for (Index kr = kr0; kr <= kr1; ++kr) {
            const Index mtop = std::max<Index>(0, -floor_div(kr - (ktop - 1), 3));
            const Index mbot = std::min<Index>(nb - 1, floor_div(kbot - 3 - kr, 3));
            const Index m22 = mbot + 1;
            const bool bmp22 = m22 < nb && kr + 3 * m22 == kbot - 2;

            // Reflectors moving every active bulge one column down.
            for (Index m = mtop; m <= mbot; ++m) {
                const Index k = kr + 3 * m;
                double x[3];
                if (k == ktop - 1) {
                    shift_vector(H, ktop, 3, shifts[static_cast<std::size_t>(m)], x);
                    const double tau = make_reflector(x, 3);
                    V(m) = {tau, x[1], x[2]};
                    continue;
                }
                x[0] = H(k + 1, k);
                x[1] = H(k + 2, k);
                x[2] = H(k + 3, k);
                const double tau = make_reflector(x, 3);
                if (H(k + 3, k) != 0.0 || H(k + 3, k + 1) != 0.0 ||
                    H(k + 3, k + 2) == 0.0) {
                    H(k + 1, k) = x[0];
                    H(k + 2, k) = 0.0;
                    H(k + 3, k) = 0.0;
                    V(m) = {tau, x[1], x[2]};
                    continue;
                }
                // The bulge collapsed (vigilant deflation or underflow): try a fresh
                // one from the shifts; use it if its fill is negligible.
                double y[3];
                shift_vector(H, k + 1, 3, shifts[static_cast<std::size_t>(m)], y);
                const double tt = make_reflector(y, 3);
                const double refsum = tt * (H(k + 1, k) + y[1] * H(k + 2, k));
                if (std::abs(H(k + 2, k) - refsum * y[1]) + std::abs(refsum * y[2]) >
                    kUlp * (std::abs(H(k, k)) + std::abs(H(k + 1, k + 1)) +
                            std::abs(H(k + 2, k + 2)))) {
                    H(k + 1, k) = x[0];
                    H(k + 2, k) = 0.0;
                    H(k + 3, k) = 0.0;
                    V(m) = {tau, x[1], x[2]};
                } else {
                    H(k + 1, k) -= refsum;
                    H(k + 2, k) = 0.0;
                    H(k + 3, k) = 0.0;
                    V(m) = {tt, y[1], y[2]};
                }
            }
            if (bmp22) {
                const Index k = kr + 3 * m22;
                double x[3] = {0.0, 0.0, 0.0};
                if (k == ktop - 1) {
                    shift_vector(H, k + 1, 2, shifts[static_cast<std::size_t>(m22)], x);
                    V(m22) = {make_reflector(x, 2), x[1], 0.0};
                } else {
                    x[0] = H(k + 1, k);
                    x[1] = H(k + 2, k);
                    V(m22) = {make_reflector(x, 2), x[1], 0.0};
                    H(k + 1, k) = x[0];
                    H(k + 2, k) = 0.0;
                }
            }

            // Left: rows k+1..k+3 of the window's columns right of k.
            for (Index j = std::max(ktop, kr); j <= w1; ++j) {
                double* col = H.data() + j * H.outerStride();
                const Index mend = std::min(mbot, floor_div(j - 1 - kr, 3));
                for (Index m = mtop; m <= mend; ++m) {
                    const auto& r = V(m);
                    double* h = col + kr + 3 * m + 1;
                    const double s = r[0] * (h[0] + r[1] * h[1] + r[2] * h[2]);
                    h[0] -= s;
                    h[1] -= s * r[1];
                    h[2] -= s * r[2];
                }
            }
            if (bmp22) {
                const Index k = kr + 3 * m22;
                const auto& r = V(m22);
                for (Index j = std::max(k + 1, ktop); j <= w1; ++j) {
                    double* h = H.data() + j * H.outerStride() + k + 1;
                    const double s = r[0] * (h[0] + r[1] * h[1]);
                    h[0] -= s;
                    h[1] -= s * r[1];
                }
            }

            // Right: columns k+1..k+3, window rows down to k+3 (row k+4 below).
            for (Index m = mtop; m <= mbot; ++m) {
                const auto& r = V(m);
                if (r[0] == 0.0) continue;
                const Index k = kr + 3 * m;
                const Index rows = std::min(kbot, k + 3) - w0 + 1;
                Refl f{k + 1, 3, r[0], r[1], r[2]};
                apply_seq(H.data() + (k + 1) * H.outerStride() + w0, H.outerStride(),
                          rows, &f, 1, k + 1);
                w.refls.push_back(f);
            }
            if (bmp22 && V(m22)[0] != 0.0) {
                const auto& r = V(m22);
                const Index k = kr + 3 * m22;
                const Index rows = kbot - w0 + 1;
                Refl f{k + 1, 2, r[0], r[1], 0.0};
                apply_seq(H.data() + (k + 1) * H.outerStride() + w0, H.outerStride(),
                          rows, &f, 1, k + 1);
                w.refls.push_back(f);
            }

            // Vigilant deflation check on the subdiagonal entries the bulges left.
            Index mstart = mtop;
            if (kr + 3 * mstart < ktop) ++mstart;
            Index mend = mbot;
            if (bmp22) ++mend;
            if (kr == kbot - 2) ++mend;
            for (Index m = mstart; m <= mend; ++m) {
                const Index k = std::min(kbot - 1, kr + 3 * m);
                if (H(k + 1, k) == 0.0) continue;
                double tst1 = std::abs(H(k, k)) + std::abs(H(k + 1, k + 1));
                if (tst1 == 0.0) {
                    if (k >= ktop + 1) tst1 += std::abs(H(k, k - 1));
                    if (k >= ktop + 2) tst1 += std::abs(H(k, k - 2));
                    if (k >= ktop + 3) tst1 += std::abs(H(k, k - 3));
                    if (k <= kbot - 2) tst1 += std::abs(H(k + 2, k + 1));
                    if (k <= kbot - 3) tst1 += std::abs(H(k + 3, k + 1));
                    if (k <= kbot - 4) tst1 += std::abs(H(k + 4, k + 1));
                }
                if (std::abs(H(k + 1, k)) <= std::max(smlnum, kUlp * tst1)) {
                    const double h12 =
                        std::max(std::abs(H(k + 1, k)), std::abs(H(k, k + 1)));
                    const double h21 =
                        std::min(std::abs(H(k + 1, k)), std::abs(H(k, k + 1)));
                    const double h11 = std::max(std::abs(H(k + 1, k + 1)),
                                                std::abs(H(k, k) - H(k + 1, k + 1)));
                    const double h22 = std::min(std::abs(H(k + 1, k + 1)),
                                                std::abs(H(k, k) - H(k + 1, k + 1)));
                    const double scl = h11 + h12;
                    const double tst2 = h22 * (h11 / scl);
                    if (tst2 == 0.0 ||
                        h21 * (h12 / scl) <= std::max(smlnum, kUlp * tst2))
                        H(k + 1, k) = 0.0;
                }
            }

            // Fill in row k+4 of each bulge (delayed until after the check).
            const Index mfill = std::min<Index>(nb - 1, floor_div(kbot - 4 - kr, 3));
            for (Index m = mtop; m <= mfill; ++m) {
                const auto& r = V(m);
                const Index k = kr + 3 * m;
                const double refsum = r[0] * r[2] * H(k + 4, k + 3);
                H(k + 4, k + 1) = -refsum;
                H(k + 4, k + 2) = -refsum * r[1];
                H(k + 4, k + 3) -= refsum * r[2];
            }
        }
        // The window's reflectors, in order, on the rest of H and on Z.
        RNNSCHUR_STAT(windows++);
        RNNSCHUR_STAT(refl_applied +=
                      static_cast<long>(w.refls.size()) * (w0 + n - w1 - 1 + Z.rows()));
        refls_right(H, 0, w0, w0, w1, w.refls, w.buf);
        refls_left(H, w0, w1, w1 + 1, n, w.refls, w.buf);
        refls_right(Z, 0, Z.rows(), w0, w1, w.refls, w.buf);
    }
}

// Eigenvalues of the standardised block of T at j (1 or 2 wide) -> (re, im) list.
int block_eigs(const MapM& T, Index j, Index n, double* re, double* im) {
    if (j + 1 < n && T(j + 1, j) != 0.0) {
        const double a = T(j, j);
        const double b =
            std::sqrt(std::abs(T(j, j + 1))) * std::sqrt(std::abs(T(j + 1, j)));
        re[0] = a;
        im[0] = b;
        re[1] = a;
        im[1] = -b;
        return 2;
    }
    re[0] = T(j, j);
    im[0] = 0.0;
    return 1;
}

// Unblocked Householder reduction of T[0:m, 0:m] to Hessenberg form, the left
// transformations also applied to T[0:m, m:jw] and the right ones to V[:, 0:m].
void hessenberg_leading(MapM& T, Index m, MapM& V) {
    const Index jw = T.cols();
    std::vector<double> u(static_cast<std::size_t>(m));
    for (Index k = 0; k + 2 < m; ++k) {
        const Index len = m - k - 1;
        double* x = T.data() + k * T.outerStride() + k + 1;
        const double tau = make_reflector(x, len);
        u[0] = 1.0;
        for (Index i = 1; i < len; ++i) {
            u[static_cast<std::size_t>(i)] = x[i];
            x[i] = 0.0;
        }
        if (tau == 0.0) continue;
        // Left: rows k+1..m-1, columns k+1..jw-1.
        for (Index j = k + 1; j < jw; ++j) {
            double* a = T.data() + j * T.outerStride() + k + 1;
            double s = 0.0;
            for (Index i = 0; i < len; ++i) s += u[static_cast<std::size_t>(i)] * a[i];
            s *= tau;
            for (Index i = 0; i < len; ++i) a[i] -= s * u[static_cast<std::size_t>(i)];
        }
        // Right: rows 0..m-1 of T and all rows of V, columns k+1..m-1.
        for (MapM* A : {&T, &V}) {
            const Index rows = A == &T ? m : A->rows();
            std::vector<double> acc(static_cast<std::size_t>(rows), 0.0);
            for (Index i = 0; i < len; ++i) {
                const double* a = A->data() + (k + 1 + i) * A->outerStride();
                const double ui = u[static_cast<std::size_t>(i)];
                for (Index r = 0; r < rows; ++r)
                    acc[static_cast<std::size_t>(r)] += ui * a[r];
            }
            for (Index i = 0; i < len; ++i) {
                double* a = A->data() + (k + 1 + i) * A->outerStride();
                const double ui = tau * u[static_cast<std::size_t>(i)];
                for (Index r = 0; r < rows; ++r)
                    a[r] -= ui * acc[static_cast<std::size_t>(r)];
            }
        }
    }
}

bool schur_of(MapM T, MapM V);  // window Schur form (francis or multishift)

struct AedResult {
    Index nd = 0;                // eigenvalues deflated at the bottom
    std::vector<double> sr, si;  // undeflated eigenvalues (shift candidates)
};

// Aggressive early deflation on the trailing window of [ktop, kbot] of width nw.
AedResult aed(MapM& H, MapM& Z, Index ktop, Index kbot, Index nw, Work& wk) {
    AedResult res;
    const Index n = H.cols();
    const double smlnum = kSafeMin * (static_cast<double>(n) / kUlp);
    const Index jw = std::min(nw, kbot - ktop + 1);
    const Index kwtop = kbot - jw + 1;
    double s = kwtop == ktop ? 0.0 : H(kwtop, kwtop - 1);

    if (jw == 1) {
        if (std::abs(s) <= std::max(smlnum, kUlp * std::abs(H(kwtop, kwtop)))) {
            res.nd = 1;
            if (kwtop > ktop) H(kwtop, kwtop - 1) = 0.0;
        } else {
            res.sr.push_back(H(kwtop, kwtop));
            res.si.push_back(0.0);
        }
        return res;
    }

    Eigen::MatrixXd Tw = H.block(kwtop, kwtop, jw, jw);
    for (Index j = 0; j + 2 < jw; ++j) Tw.col(j).tail(jw - j - 2).setZero();
    Eigen::MatrixXd Vw = Eigen::MatrixXd::Identity(jw, jw);
    MapM T = view(Tw.data(), jw, jw, jw);
    MapM V = view(Vw.data(), jw, jw, jw);
    RNNSCHUR_STAT(aeds++);
    RNNSCHUR_STAT(aed_width += jw);
    if (!schur_of(T, V)) return res;  // no deflation, no shifts: the caller copes

    // Deflation detection, bottom up: a deflatable block drops out of the unchecked
    // range [ilst, ns); an undeflatable one is swapped up to ilst.
    Index ns = jw, ilst = 0;
    while (ilst < ns) {
        const bool two = ns >= 2 && T(ns - 1, ns - 2) != 0.0;
        const Index j = two ? ns - 2 : ns - 1;
        double foo = std::abs(T(ns - 1, ns - 1));
        if (two)
            foo += std::sqrt(std::abs(T(ns - 1, ns - 2))) *
                   std::sqrt(std::abs(T(ns - 2, ns - 1)));
        if (foo == 0.0) foo = std::abs(s);
        double spike = std::abs(s * V(0, ns - 1));
        if (two) spike = std::max(spike, std::abs(s * V(0, ns - 2)));
        if (spike <= std::max(smlnum, kUlp * foo)) {
            ns = j;
            continue;
        }
        // Move the block at j up to ilst.
        const int size = two ? 2 : 1;
        Index p = j;
        bool moved = true;
        while (p > ilst) {
            const bool above2 = p - 2 >= ilst && T(p - 1, p - 2) != 0.0;
            const Index q = above2 ? p - 2 : p - 1;
            try {
                swap_adjacent(T, V, q, above2 ? 2 : 1, size);
                RNNSCHUR_STAT(aed_swaps++);
            } catch (const SwapRejected&) {
                moved = false;
                break;
            }
            p = q;
            if (size == 2 && T(p + 1, p) == 0.0) {  // the moving block split
                moved = false;
                break;
            }
        }
        if (!moved) {
            ilst = ns;  // give up detection: everything left counts as undeflatable
            break;
        }
        ilst += size;
    }
    if (ns == 0) s = 0.0;

    // Shifts: the undeflated eigenvalues.
    for (Index j = 0; j < ns;) {
        double re[2], im[2];
        const int k = block_eigs(T, j, ns, re, im);
        for (int i = 0; i < k; ++i) {
            res.sr.push_back(re[i]);
            res.si.push_back(im[i]);
        }
        j += k;
    }

    if (ns < jw || s == 0.0) {
        if (ns > 1 && s != 0.0) {
            // Reflect the spike back to a multiple of e1, then make T[0:ns,0:ns]
            // Hessenberg again.
            std::vector<double> x(static_cast<std::size_t>(ns));
            for (Index i = 0; i < ns; ++i) x[static_cast<std::size_t>(i)] = V(0, i);
            const double tau = make_reflector(x.data(), ns);
            x[0] = 1.0;
            if (tau != 0.0) {
                // Left on rows 0..ns-1 (all columns), right on columns 0..ns-1 of T
                // (rows 0..ns-1) and of V (all rows).
                for (Index c = 0; c < jw; ++c) {
                    double d = 0.0;
                    for (Index i = 0; i < ns; ++i)
                        d += x[static_cast<std::size_t>(i)] * T(i, c);
                    d *= tau;
                    for (Index i = 0; i < ns; ++i)
                        T(i, c) -= d * x[static_cast<std::size_t>(i)];
                }
                for (MapM* A : {&T, &V}) {
                    const Index rows = A == &T ? ns : jw;
                    for (Index r = 0; r < rows; ++r) {
                        double d = 0.0;
                        for (Index i = 0; i < ns; ++i)
                            d += (*A)(r, i) * x[static_cast<std::size_t>(i)];
                        d *= tau;
                        for (Index i = 0; i < ns; ++i)
                            (*A)(r, i) -= d * x[static_cast<std::size_t>(i)];
                    }
                }
            }
            hessenberg_leading(T, ns, V);
        }
        if (kwtop > ktop) H(kwtop, kwtop - 1) = s * V(0, 0);
        for (Index c = 0; c < jw; ++c) {
            const Index last = std::min(jw - 1, c + 1);
            for (Index r = 0; r <= last; ++r) H(kwtop + r, kwtop + c) = T(r, c);
        }
        // The window's orthogonal V on the rest of H and on Z.
        mul_right(H, 0, kwtop, kwtop, Vw, wk.tmp);
        const Eigen::MatrixXd Vt = Vw.transpose();
        mul_left(H, kwtop, kbot + 1, n, Vt, wk.tmp);
        mul_right(Z, 0, Z.rows(), kwtop, Vw, wk.tmp);
    }
    res.nd = jw - ns;
    RNNSCHUR_STAT(aed_deflated += res.nd);
    return res;
}

// Shift pairs for a sweep from candidate eigenvalues (re, im): complex conjugate
// pairs stay together, real ones are paired; at most ns shifts, taken from the end
// (nearest the bottom of the window). LAPACK's heuristics: a single pair of real
// shifts becomes a double copy of the one nearer h_kk.
std::vector<ShiftPair> pair_shifts(const std::vector<double>& sr,
                                   const std::vector<double>& si, Index ns,
                                   double hkk) {
    std::vector<ShiftPair> out;
    std::vector<double> reals;
    const Index m = static_cast<Index>(sr.size());
    Index used = 0;
    for (Index i = m - 1; i >= 0 && used < ns; --i) {
        const auto ui = static_cast<std::size_t>(i);
        if (si[ui] != 0.0) {
            if (i == 0) break;
            out.push_back({sr[ui - 1], si[ui - 1], sr[ui], si[ui]});
            --i;
            used += 2;
        } else {
            reals.push_back(sr[ui]);
            if (reals.size() == 2) {
                out.push_back({reals[0], 0.0, reals[1], 0.0});
                reals.clear();
                used += 2;
            }
        }
    }
    if (out.empty() && reals.size() == 1) out.push_back({reals[0], 0.0, reals[0], 0.0});
    if (out.size() == 1 && out[0].im1 == 0.0) {
        const double a = out[0].re1, b = out[0].re2;
        const double pick = std::abs(a - hkk) < std::abs(b - hkk) ? a : b;
        out[0] = {pick, 0.0, pick, 0.0};
    }
    // The chain is introduced from its last element: put the pairs in position
    // order (bulge 0 deepest = introduced first).
    return out;
}

bool multishift_impl(MapM H, MapM Z) {
    const Index n = H.rows();
    if (n < std::max<Index>(12, tuning().nmin)) return francis(H, Z);
    Work wk;
    // Window and shift counts (LAPACK iparmq's table, capped by the workspace
    // limits dlaqr0 uses).
    Index nsr = n < 30   ? 2
                : n < 60 ? 4
                : n < 150
                    ? 10
                    : std::max<Index>(10, n / static_cast<Index>(std::lround(
                                                  std::log2(static_cast<double>(n)))));
    if (n >= 590) nsr = 64;
    if (n >= 3000) nsr = 128;
    nsr = std::min<Index>(nsr, (n + 6) / 9);
    if (tuning().ns > 0) nsr = tuning().ns;
    nsr = std::max<Index>(2, nsr - nsr % 2);
    Index nwr0 = n <= 500 ? nsr : 3 * nsr / 2;
    if (tuning().nw > 0) nwr0 = tuning().nw;
    const Index nwmax = (n - 1) / 3;
    const Index nwr = std::min<Index>(nwr0 < 2 ? 2 : nwr0, nwmax);
    Index nsmax = std::max<Index>(nsr, (n + 6) / 9);
    nsmax -= nsmax % 2;
    const Index nmin = std::max<Index>(12, tuning().nmin);
    const int nibble = tuning().nibble;

    Index kbot = n - 1;
    Index ndfl = 1, nw = nwmax, ndec = -1;
    const Index itmax = 30 * std::max<Index>(10, n);
    for (Index it = 0; it < itmax; ++it) {
        if (kbot < 0) return true;
        Index ktop = kbot;
        while (ktop > 0 && H(ktop, ktop - 1) != 0.0) --ktop;

        const Index nh = kbot - ktop + 1;
        const Index nwupbd = std::min(nh, nwmax);
        nw = ndfl < 5 ? std::min(nwupbd, nwr) : std::min(nwupbd, 2 * nw);
        if (nw < nwmax) {
            if (nw >= nh - 1) {
                nw = nh;
            } else {
                const Index kwtop = kbot - nw + 1;
                if (std::abs(H(kwtop, kwtop - 1)) > std::abs(H(kwtop - 1, kwtop - 2)))
                    ++nw;
            }
        }
        if (ndfl < 5) {
            ndec = -1;
        } else if (ndec >= 0 || nw >= nwupbd) {
            ++ndec;
            if (nw - ndec < 2) ndec = 0;
            nw -= ndec;
        }

        AedResult a = aed(H, Z, ktop, kbot, nw, wk);
        kbot -= a.nd;

        if (a.nd == 0 ||
            (100 * a.nd <= nw * nibble && kbot - ktop + 1 > std::min(nmin, nwmax))) {
            Index ns = std::min(std::min(nsmax, nsr), std::max<Index>(2, kbot - ktop));
            ns -= ns % 2;
            std::vector<double> sr, si;
            if (ndfl % 6 == 0) {
                // Exceptional shifts.
                for (Index i = kbot; i >= std::max(kbot - ns + 2, ktop + 2); i -= 2) {
                    const double ss = std::abs(H(i, i - 1)) + std::abs(H(i - 1, i - 2));
                    const double aa = 0.75 * ss + H(i, i);
                    const double im = std::sqrt(0.4375) * ss;
                    sr.push_back(aa);
                    si.push_back(im);
                    sr.push_back(aa);
                    si.push_back(-im);
                }
                if (sr.empty()) {
                    sr = {H(kbot, kbot), H(kbot, kbot)};
                    si = {0.0, 0.0};
                }
            } else {
                sr = a.sr;
                si = a.si;
                if (static_cast<Index>(sr.size()) <= ns / 2) {
                    // Too few: eigenvalues of the trailing ns x ns submatrix.
                    const Index ks = kbot - ns + 1;
                    Eigen::MatrixXd Tt = H.block(ks, ks, ns, ns);
                    for (Index j = 0; j + 2 < ns; ++j)
                        Tt.col(j).tail(ns - j - 2).setZero();
                    Eigen::MatrixXd Vt = Eigen::MatrixXd::Identity(ns, ns);
                    sr.clear();
                    si.clear();
                    if (francis(view(Tt.data(), ns, ns, ns),
                                view(Vt.data(), ns, ns, ns))) {
                        MapM Tm = view(Tt.data(), ns, ns, ns);
                        for (Index j = 0; j < ns;) {
                            double re[2], im[2];
                            const int k = block_eigs(Tm, j, ns, re, im);
                            for (int i = 0; i < k; ++i) {
                                sr.push_back(re[i]);
                                si.push_back(im[i]);
                            }
                            j += k;
                        }
                    } else {
                        sr = {H(kbot, kbot), H(kbot, kbot)};
                        si = {0.0, 0.0};
                    }
                }
                if (static_cast<Index>(sr.size()) > ns) {
                    // Keep the ns smallest in magnitude, conjugate pairs together
                    // (stable sort of blocks by decreasing |re| + |im|).
                    struct B {
                        double key;
                        Index i;
                        int len;
                    };
                    std::vector<B> bl;
                    for (std::size_t i = 0; i < sr.size();) {
                        const int len = si[i] != 0.0 && i + 1 < sr.size() ? 2 : 1;
                        bl.push_back({std::abs(sr[i]) + std::abs(si[i]),
                                      static_cast<Index>(i), len});
                        i += static_cast<std::size_t>(len);
                    }
                    std::stable_sort(bl.begin(), bl.end(), [](const B& x, const B& y) {
                        return x.key > y.key;
                    });
                    std::vector<double> r2, i2;
                    for (const B& b : bl)
                        for (int q = 0; q < b.len; ++q) {
                            r2.push_back(sr[static_cast<std::size_t>(b.i + q)]);
                            i2.push_back(si[static_cast<std::size_t>(b.i + q)]);
                        }
                    sr.swap(r2);
                    si.swap(i2);
                }
            }
            const std::vector<ShiftPair> pairs = pair_shifts(sr, si, ns, H(kbot, kbot));
            sweep(H, Z, ktop, kbot, pairs, wk);
        }
        ndfl = a.nd > 0 ? 1 : ndfl + 1;
    }
    return false;
}

bool schur_of(MapM T, MapM V) {
    if (T.rows() >= std::max<Index>(12, tuning().nmin)) return multishift_impl(T, V);
    return francis(T, V);
}

}  // namespace

bool multishift(MapM H, MapM Z) {
    return multishift_impl(H, Z);
}

}  // namespace rnnschur::schur::qr
