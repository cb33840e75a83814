// Small-bulge multishift QR with aggressive early deflation (AED) for the real
// Schur form of an upper Hessenberg matrix, after Braman, Byers & Mathias (SIAM
// J. Matrix Anal. Appl. 23, 2002; Part I the sweep with chains of small bulges and
// vigilant deflation, Part II AED); deflation tests after Ahues & Tisseur (LAWN
// 122, 1997); sources in schur_qr.hpp. The code is the project's own
// implementation of those papers, organised differently from LAPACK's
// dlaqr0/dlaqr3/dlaqr5 (only the tuning table of shift and window counts is
// LAPACK's documented one, see plan_for_order):
//
// * A chain of bulges is chased along the diagonal one window at a time. Inside
//   the window the reflectors are applied as they are made; they are also recorded,
//   and the rest of H (rows above, columns right of the window) and Z get the whole
//   recorded sequence in one cache-blocked pass per window (apply_seq): a block of
//   rows (or of transposed columns) stays in L1 while every reflector of the window
//   is applied to it. Accumulating the window's reflectors into a dense orthogonal
//   U and multiplying by it (GEMM) costs 2-3x more flops, which the GEMM speed
//   recovers only for much larger windows than ours (n <= a few hundred).
// * AED computes the window's Schur form with the double-shift QR (francis) or,
//   for large windows, recursively with this routine, reorders it with the
//   project's Bai-Demmel swaps (swap_adjacent, stability tests included), and
//   applies the window's orthogonal matrix to the rest of H and Z with a small
//   GEMM kernel.
// * The parts of those updates outside the active block (rows of H above it,
//   columns right of it, all of Z) are never read by the iteration again; with a
//   second thread they run there (OuterUpdates), in order, beside the iteration.
#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "schur.hpp"
#include "schur_qr.hpp"

namespace rnnschur::schur::qr {

#ifdef RNNSCHUR_QR_STATS
Stats& stats() {
    static Stats st;
    return st;
}
#endif

namespace {

// A reflector I - tau u u^T with u = (1, v2[, v3]) acting on indices at, at+1[, at+2].
struct Refl {
    Index at;
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
        double* __restrict a = base + (r.at - off) * stride;
        double* __restrict b = a + stride;
        const double tau = r.tau, v2 = r.v2, tau_v2 = tau * v2;
        if (r.len == 3) {
            double* __restrict c = b + stride;
            const double v3 = r.v3, tau_v3 = tau * v3;
            for (Index l = 0; l < lanes; ++l) {
                const double sum = a[l] + v2 * b[l] + v3 * c[l];
                a[l] -= sum * tau;
                b[l] -= sum * tau_v2;
                c[l] -= sum * tau_v3;
            }
        } else {
            for (Index l = 0; l < lanes; ++l) {
                const double sum = a[l] + v2 * b[l];
                a[l] -= sum * tau;
                b[l] -= sum * tau_v2;
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
        double* __restrict a = B + (r.at - off) * kLanes;
        const double tau = r.tau, v2 = r.v2, v3 = r.len == 3 ? r.v3 : 0.0;
        for (Index l = 0; l < kLanes; ++l) {
            const double sum =
                tau * (a[l] + v2 * a[kLanes + l] + v3 * a[2 * kLanes + l]);
            a[l] -= sum;
            a[kLanes + l] -= sum * v2;
            a[2 * kLanes + l] -= sum * v3;
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

// The updates of a window's transformation that reach outside the active block
// [lo, hi]: rows of H above it, columns of H right of it, and Z. The iteration
// never reads those again: it reads and writes H only inside the current active
// block, and every later active block lies inside [lo, hi] or entirely above row
// lo (H(lo, lo-1) = 0 exactly, and nothing writes it again). So they can run on a
// second thread, in the order they were made, while this one goes on: the result
// is the same bit for bit. Without start() they are applied at once.
class OuterUpdates {
   public:
    OuterUpdates(MapM H, MapM Z) : H_(H), Z_(Z) {}
    OuterUpdates(const OuterUpdates&) = delete;
    OuterUpdates& operator=(const OuterUpdates&) = delete;
    ~OuterUpdates() {
        if (worker_.joinable()) close_and_join();
    }

    // From now on updates are queued for a worker thread, which runs `prepare`
    // (it must set Z) before the first of them.
    void start(const std::function<void()>& prepare) {
        worker_ = std::thread([this, prepare] { run(prepare); });
    }

    // A sweep window's reflectors f (acting on columns / rows win_lo..win_hi)
    // outside the active block lo..hi.
    void reflectors(Index lo, Index hi, Index win_lo, Index win_hi,
                    const std::vector<Refl>& f) {
        if (!worker_.joinable()) return apply_refls(lo, hi, win_lo, win_hi, f);
        push(
            Item{lo, hi, win_lo, win_hi, f, Eigen::MatrixXd()});  // a copy: f is reused
    }

    // An AED window's orthogonal V (acting on top..top+k-1) outside lo..hi.
    void matrix(Index lo, Index hi, Index top, Eigen::MatrixXd V) {
        if (!worker_.joinable()) return apply_matrix(lo, hi, top, V);
        const Index last = top + V.cols() - 1;
        push(Item{lo, hi, top, last, {}, std::move(V)});
    }

    // Waits for the queued updates; rethrows the worker's exception, if any.
    void finish() {
        if (!worker_.joinable()) return;
        close_and_join();
        if (error_) std::rethrow_exception(error_);
    }

   private:
    struct Item {
        Index lo, hi, w0, w1;
        std::vector<Refl> f;
        Eigen::MatrixXd V;  // empty: apply f
    };

    void apply_refls(Index lo, Index hi, Index w0, Index w1,
                     const std::vector<Refl>& f) {
        refls_right(H_, 0, lo, w0, w1, f, buf_);
        refls_left(H_, w0, w1, hi + 1, H_.cols(), f, buf_);
        refls_right(Z_, 0, Z_.rows(), w0, w1, f, buf_);
    }

    void apply_matrix(Index lo, Index hi, Index top, const Eigen::MatrixXd& V) {
        mul_right(H_, 0, lo, top, V, buf_);
        if (hi + 1 < H_.cols())
            mul_left(H_, top, hi + 1, H_.cols(), V.transpose(), buf_);
        mul_right(Z_, 0, Z_.rows(), top, V, buf_);
    }

    void apply(const Item& it) {
        if (it.V.size() == 0)
            apply_refls(it.lo, it.hi, it.w0, it.w1, it.f);
        else
            apply_matrix(it.lo, it.hi, it.w0, it.V);
    }

    void push(Item it) {
        {
            const std::lock_guard<std::mutex> lock(m_);
            queue_.push_back(std::move(it));
        }
        cv_.notify_one();
    }

    void run(const std::function<void()>& prepare) {
        try {
            prepare();
            for (;;) {
                std::unique_lock<std::mutex> lock(m_);
                cv_.wait(lock, [this] { return closing_ || !queue_.empty(); });
                if (queue_.empty()) return;
                Item it = std::move(queue_.front());
                queue_.pop_front();
                lock.unlock();
                apply(it);
            }
        } catch (...) {
            error_ = std::current_exception();
        }
    }

    void close_and_join() {
        {
            const std::lock_guard<std::mutex> lock(m_);
            closing_ = true;
        }
        cv_.notify_one();
        worker_.join();
    }

    MapM H_, Z_;
    std::vector<double> buf_;
    std::thread worker_;
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<Item> queue_;
    bool closing_ = false;
    std::exception_ptr error_;
};

inline Index floor_div(Index a, Index b) {
    Index q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
}

struct Work {
    std::vector<Refl> refls;  // the current window's reflectors, in order
    std::vector<Refl> step;   // this step's reflectors, one per bulge, top first
    std::vector<double> buf, tmp;
};

// The reflector that puts a new bulge into rows top..top+len-1 (len 3, or 2 for a
// bulge that enters with only two rows left): along the first column of the
// double-shift polynomial there.
Refl introduce_bulge(const MapM& H, Index top, int len, const ShiftPair& shift) {
    double x[3] = {0.0, 0.0, 0.0};
    bulge_start_column(H, top, len, shift, x);
    const double tau = make_reflector(x, len);
    return {top, len, tau, x[1], len == 3 ? x[2] : 0.0};
}

// The reflector that moves the bulge whose leftmost column is `col` one column
// down: it zeroes H(col+2:col+3, col) below the subdiagonal. A bulge that has
// collapsed (the bulge entries of its bottom row are zero, its subdiagonal entry
// is not: vigilant deflation or underflow erased it) carries no shift information
// any more; it is then replaced by a fresh one made from the same shifts,
// provided the fill that leaves in column col is negligible.
Refl advance_bulge(MapM& H, Index col, const ShiftPair& shift) {
    const Index top = col + 1;
    double x[3] = {H(top, col), H(top + 1, col), H(top + 2, col)};
    const double tau = make_reflector(x, 3);
    const bool collapsed = H(top + 2, col) == 0.0 && H(top + 2, col + 1) == 0.0 &&
                           H(top + 2, col + 2) != 0.0;
    if (collapsed) {
        double y[3];
        bulge_start_column(H, top, 3, shift, y);
        const double fresh_tau = make_reflector(y, 3);
        // The fresh reflector applied to column col: what it subtracts from the
        // subdiagonal entry, and the fill it leaves below it.
        const double reflector_sum = fresh_tau * (H(top, col) + y[1] * H(top + 1, col));
        const double fill = std::abs(H(top + 1, col) - reflector_sum * y[1]) +
                            std::abs(reflector_sum * y[2]);
        const double nearby = std::abs(H(col, col)) + std::abs(H(top, top)) +
                              std::abs(H(top + 1, top + 1));
        if (!(fill > kUlp * nearby)) {
            H(top, col) -= reflector_sum;
            H(top + 1, col) = 0.0;
            H(top + 2, col) = 0.0;
            return {top, 3, fresh_tau, y[1], y[2]};
        }
    }
    H(top, col) = x[0];
    H(top + 1, col) = 0.0;
    H(top + 2, col) = 0.0;
    return {top, 3, tau, x[1], x[2]};
}

// The reflector that moves a bulge with only two rows left (col + 2 = bottom) down.
Refl advance_partial_bulge(MapM& H, Index col) {
    double x[2] = {H(col + 1, col), H(col + 2, col)};
    const double tau = make_reflector(x, 2);
    H(col + 1, col) = x[0];
    H(col + 2, col) = 0.0;
    return {col + 1, 2, tau, x[1], 0.0};
}

// Left application of one step's reflectors (disjoint rows, sorted by row) to
// columns first..last of H; a reflector at rows at.. acts on columns from at on.
RNNSCHUR_CLONES
void step_left(MapM& H, const std::vector<Refl>& step, Index first, Index last) {
    for (Index j = first; j <= last; ++j) {
        double* col = H.data() + j * H.outerStride();
        for (const Refl& r : step) {
            if (r.at > j) break;
            double* h = col + r.at;
            if (r.len == 3) {
                const double sum = r.tau * (h[0] + r.v2 * h[1] + r.v3 * h[2]);
                h[0] -= sum;
                h[1] -= sum * r.v2;
                h[2] -= sum * r.v3;
            } else {
                const double sum = r.tau * (h[0] + r.v2 * h[1]);
                h[0] -= sum;
                h[1] -= sum * r.v2;
            }
        }
    }
}

// Vigilant deflation (Braman, Byers & Mathias): set the subdiagonal entry
// H(k+1, k) a bulge has just left behind to zero if it is negligible, so that the
// deflation is not lost to the next steps' fill. Small next to the two diagonal
// neighbours (or, if both are zero, the nearby entries of row k and column k+1
// inside the active block lo..hi) and by Ahues & Tisseur's test.
void vigilant_deflation(MapM& H, Index k, Index lo, Index hi, double tiny) {
    if (H(k + 1, k) == 0.0) return;
    double near_deflation_scale = std::abs(H(k, k)) + std::abs(H(k + 1, k + 1));
    if (near_deflation_scale == 0.0) {
        for (Index d = 1; d <= 3; ++d)
            if (k - d >= lo) near_deflation_scale += std::abs(H(k, k - d));
        for (Index d = 1; d <= 3; ++d)
            if (k + 1 + d <= hi) near_deflation_scale += std::abs(H(k + 1 + d, k + 1));
    }
    if (std::abs(H(k + 1, k)) <= std::max(tiny, kUlp * near_deflation_scale) &&
        ahues_tisseur_negligible(H(k + 1, k), H(k, k + 1), H(k, k), H(k + 1, k + 1),
                                 tiny, true))
        H(k + 1, k) = 0.0;
}

// One step of the chain: every bulge moves one column down, bulge m clearing
// column col0 + 3m (bulges sit 3 columns apart; bulge m enters when col0 + 3m =
// lo - 1 and is still waiting before). The transformations are applied inside the
// window rows / columns win_lo..win_hi only, and recorded in w.refls for the rest.
void chase_step(MapM& H, Index lo, Index hi, Index col0, Index win_lo, Index win_hi,
                const std::vector<ShiftPair>& shifts, double tiny, Work& w) {
    const Index num_bulges = static_cast<Index>(shifts.size());
    // Bulges first..last have entered and have three rows left; the next one may
    // fit with only two rows left (it is about to leave at the bottom).
    const Index first = std::max<Index>(0, -floor_div(col0 - (lo - 1), 3));
    const Index last = std::min<Index>(num_bulges - 1, floor_div(hi - 3 - col0, 3));
    const Index partial = last + 1;
    const bool has_partial_bulge = partial < num_bulges && col0 + 3 * partial == hi - 2;

    w.step.clear();
    for (Index m = first; m <= last; ++m) {
        const Index col = col0 + 3 * m;
        const ShiftPair& shift = shifts[static_cast<std::size_t>(m)];
        w.step.push_back(col == lo - 1 ? introduce_bulge(H, lo, 3, shift)
                                       : advance_bulge(H, col, shift));
    }
    if (has_partial_bulge) {
        const Index col = col0 + 3 * partial;
        w.step.push_back(
            col == lo - 1 ? introduce_bulge(H, col + 1, 2,
                                            shifts[static_cast<std::size_t>(partial)])
                          : advance_partial_bulge(H, col));
    }

    step_left(H, w.step, std::max(lo, col0), win_hi);
    // Right: columns at..at+len-1, window rows down to at+2 (row at+3 is filled
    // below, after the deflation check, so that check sees the entries the bulge
    // left).
    for (const Refl& r : w.step) {
        if (r.tau == 0.0) continue;
        const Index rows = std::min(hi, r.at + 2) - win_lo + 1;
        apply_seq(H.data() + r.at * H.outerStride() + win_lo, H.outerStride(), rows, &r,
                  1, r.at);
        w.refls.push_back(r);
    }

    // The subdiagonal entries left behind: one per moved bulge that had entered,
    // the partial one's, and the last one when the chain leaves the bottom.
    Index check_first = first;
    if (col0 + 3 * check_first < lo) ++check_first;
    Index check_last = last;
    if (has_partial_bulge) ++check_last;
    if (col0 == hi - 2) ++check_last;
    for (Index m = check_first; m <= check_last; ++m)
        vigilant_deflation(H, std::min(hi - 1, col0 + 3 * m), lo, hi, tiny);

    // The delayed right application to row at+3, where only H(at+3, at+2) is
    // nonzero.
    for (const Refl& r : w.step) {
        if (r.len != 3 || r.at + 3 > hi) continue;
        const Index row = r.at + 3;
        const double reflector_sum = r.tau * r.v3 * H(row, r.at + 2);
        H(row, r.at) = -reflector_sum;
        H(row, r.at + 1) = -reflector_sum * r.v2;
        H(row, r.at + 2) -= reflector_sum * r.v3;
    }
}

// One small-bulge multishift QR sweep on the active block [lo, hi] of H with the
// given shift pairs (one bulge each), chained 3 rows apart (see the file comment
// for how the transformations reach the rest of H and Z).
void sweep(MapM& H, OuterUpdates& out, Index lo, Index hi,
           const std::vector<ShiftPair>& shifts, Work& w) {
    const Index n = H.cols();
    const Index num_bulges = static_cast<Index>(shifts.size());
    if (num_bulges == 0 || lo >= hi) return;
    const double tiny = kSafeMin * (static_cast<double>(n) / kUlp);
    if (lo + 2 <= hi) H(lo + 2, lo) = 0.0;  // stale fill from an earlier split
    RNNSCHUR_STAT(sweeps++);
    RNNSCHUR_STAT(bulges += num_bulges);
    // Steps per window: the chain (3 num_bulges - 2 columns long) moves past its
    // own length, so a window's reflectors overlap only its neighbours'.
    const Index steps = 3 * num_bulges - 2;

    for (Index first_step = lo - 1 - 3 * (num_bulges - 1); first_step <= hi - 2;
         first_step += steps) {
        const Index last_step = std::min(first_step + steps - 1, hi - 2);
        const Index win_lo = std::max(lo, first_step + 1);
        const Index win_hi = std::min(hi, last_step + 3 * num_bulges);
        w.refls.clear();
        for (Index col0 = first_step; col0 <= last_step; ++col0)
            chase_step(H, lo, hi, col0, win_lo, win_hi, shifts, tiny, w);
        // The window's reflectors, in order, on the rest of H and on Z.
        RNNSCHUR_STAT(windows++);
        RNNSCHUR_STAT(refl_applied += static_cast<long>(w.refls.size()) *
                                      (win_lo + n - win_hi - 1 + n));
        refls_right(H, lo, win_lo, win_lo, win_hi, w.refls, w.buf);
        refls_left(H, win_lo, win_hi, win_hi + 1, hi + 1, w.refls, w.buf);
        out.reflectors(lo, hi, win_lo, win_hi, w.refls);
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
// transformations also applied to T[0:m, m:width] and the right ones to V[:, 0:m].
void hessenberg_leading(MapM& T, Index m, MapM& V) {
    const Index width = T.cols();
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
        // Left: rows k+1..m-1, columns k+1..width-1.
        for (Index j = k + 1; j < width; ++j) {
            double* a = T.data() + j * T.outerStride() + k + 1;
            double dot = 0.0;
            for (Index i = 0; i < len; ++i)
                dot += u[static_cast<std::size_t>(i)] * a[i];
            dot *= tau;
            for (Index i = 0; i < len; ++i)
                a[i] -= dot * u[static_cast<std::size_t>(i)];
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
    Index deflated = 0;  // eigenvalues deflated at the bottom
    // The undeflated eigenvalues (shift candidates), top first.
    std::vector<double> shift_re, shift_im;
};

// Append the eigenvalues of T's standardised blocks in rows 0..end-1, top first.
void append_eigenvalues(const MapM& T, Index end, std::vector<double>& re,
                        std::vector<double>& im) {
    for (Index j = 0; j < end;) {
        double block_re[2], block_im[2];
        const int size = block_eigs(T, j, end, block_re, block_im);
        for (int i = 0; i < size; ++i) {
            re.push_back(block_re[i]);
            im.push_back(block_im[i]);
        }
        j += size;
    }
}

// Move the block of `size` rows at T(from, from) up to row `to` by adjacent swaps
// (V updated). False if a swap is rejected or a moving 2x2 block splits: the
// ordering is then unreliable and the caller stops deflating.
bool move_block_up(MapM& T, MapM& V, Index from, Index to, int size) {
    Index at = from;
    while (at > to) {
        const bool pair_above = at - 2 >= to && T(at - 1, at - 2) != 0.0;
        const Index above = pair_above ? at - 2 : at - 1;
        try {
            swap_adjacent(T, V, above, pair_above ? 2 : 1, size);
            RNNSCHUR_STAT(aed_swaps++);
        } catch (const SwapRejected&) {
            return false;
        }
        at = above;
        if (size == 2 && T(at + 1, at) == 0.0) return false;
    }
    return true;
}

// The window's undeflated part, rows 0..kept-1 of its Schur form T, has a full
// spike spike * V(0, 0..kept) to its left. Reflect the spike onto its first entry
// (the reflector applied to both sides of T and to V), then make
// T(0:kept, 0:kept) Hessenberg again.
void fold_spike(MapM& T, MapM& V, Index kept) {
    const Index width = T.cols();
    std::vector<double> u(static_cast<std::size_t>(kept));
    for (Index i = 0; i < kept; ++i) u[static_cast<std::size_t>(i)] = V(0, i);
    const double tau = make_reflector(u.data(), kept);
    u[0] = 1.0;
    if (tau != 0.0) {
        // Left on rows 0..kept-1 (all columns), right on columns 0..kept-1 of T
        // (rows 0..kept-1) and of V (all rows).
        for (Index c = 0; c < width; ++c) {
            double dot = 0.0;
            for (Index i = 0; i < kept; ++i)
                dot += u[static_cast<std::size_t>(i)] * T(i, c);
            dot *= tau;
            for (Index i = 0; i < kept; ++i)
                T(i, c) -= dot * u[static_cast<std::size_t>(i)];
        }
        for (MapM* A : {&T, &V}) {
            const Index rows = A == &T ? kept : width;
            for (Index r = 0; r < rows; ++r) {
                double dot = 0.0;
                for (Index i = 0; i < kept; ++i)
                    dot += (*A)(r, i) * u[static_cast<std::size_t>(i)];
                dot *= tau;
                for (Index i = 0; i < kept; ++i)
                    (*A)(r, i) -= dot * u[static_cast<std::size_t>(i)];
            }
        }
    }
    hessenberg_leading(T, kept, V);
}

// Aggressive early deflation (Braman, Byers & Mathias, Part II) on the trailing
// window of width `window` of the active block [lo, hi]: in the window's Schur
// basis V the subdiagonal entry `spike` that couples the window to the rows above
// becomes a column spike * V(0, :) left of T = V^T H_w V; an eigenvalue whose
// entries of that column are negligible deflates. Checked bottom up; an
// undeflatable block is swapped to the top so that the next one reaches the bottom.
AedResult aed(MapM& H, OuterUpdates& out, Index lo, Index hi, Index window, Work& wk) {
    AedResult res;
    const Index n = H.cols();
    const double tiny = kSafeMin * (static_cast<double>(n) / kUlp);
    const Index width = std::min(window, hi - lo + 1);
    const Index top = hi - width + 1;
    double spike = top == lo ? 0.0 : H(top, top - 1);

    if (width == 1) {
        if (std::abs(spike) <= std::max(tiny, kUlp * std::abs(H(top, top)))) {
            res.deflated = 1;
            if (top > lo) H(top, top - 1) = 0.0;
        } else {
            res.shift_re.push_back(H(top, top));
            res.shift_im.push_back(0.0);
        }
        return res;
    }

    Eigen::MatrixXd Tw = H.block(top, top, width, width);
    for (Index j = 0; j + 2 < width; ++j) Tw.col(j).tail(width - j - 2).setZero();
    Eigen::MatrixXd Vw = Eigen::MatrixXd::Identity(width, width);
    MapM T = view(Tw.data(), width, width, width);
    MapM V = view(Vw.data(), width, width, width);
    RNNSCHUR_STAT(aeds++);
    RNNSCHUR_STAT(aed_width += width);
    if (!schur_of(T, V)) return res;  // no deflation, no shifts: the caller copes

    // Rows kept_top..unchecked-1 are still to be checked; rows above kept_top hold
    // the undeflatable blocks, rows from `unchecked` on the deflated ones.
    Index unchecked = width, kept_top = 0;
    while (kept_top < unchecked) {
        const Index last = unchecked - 1;
        const bool pair = unchecked >= 2 && T(last, last - 1) != 0.0;
        const Index block = pair ? last - 1 : last;
        // The block's eigenvalue magnitude sets what is negligible next to it.
        double eig_scale = std::abs(T(last, last));
        if (pair)
            eig_scale += std::sqrt(std::abs(T(last, last - 1))) *
                         std::sqrt(std::abs(T(last - 1, last)));
        if (eig_scale == 0.0) eig_scale = std::abs(spike);
        double spike_tip = std::abs(spike * V(0, last));
        if (pair) spike_tip = std::max(spike_tip, std::abs(spike * V(0, last - 1)));
        if (spike_tip <= std::max(tiny, kUlp * eig_scale)) {
            unchecked = block;
            continue;
        }
        const int size = pair ? 2 : 1;
        if (!move_block_up(T, V, block, kept_top, size)) {
            kept_top = unchecked;  // stop: everything left counts as undeflatable
            break;
        }
        kept_top += size;
    }
    const Index kept = unchecked;
    if (kept == 0) spike = 0.0;

    append_eigenvalues(T, kept, res.shift_re, res.shift_im);

    if (kept < width || spike == 0.0) {
        if (kept > 1 && spike != 0.0) fold_spike(T, V, kept);
        if (top > lo) H(top, top - 1) = spike * V(0, 0);
        for (Index c = 0; c < width; ++c) {
            const Index last = std::min(width - 1, c + 1);
            for (Index r = 0; r <= last; ++r) H(top + r, top + c) = T(r, c);
        }
        // The window's orthogonal V on the rest of H and on Z.
        mul_right(H, lo, top, top, Vw, wk.tmp);
        out.matrix(lo, hi, top, std::move(Vw));
    }
    res.deflated = width - kept;
    RNNSCHUR_STAT(aed_deflated += res.deflated);
    return res;
}

// Shift pairs for a sweep from candidate eigenvalues (re, im): complex conjugate
// pairs stay together, real ones are paired; at most `count` shifts, taken from
// the end (nearest the bottom of the window); the first pair goes to bulge 0,
// which is introduced first and travels furthest. A single pair of real shifts
// becomes a double copy of the one nearer `bottom_diag` (Wilkinson's choice).
std::vector<ShiftPair> pair_shifts(const std::vector<double>& re,
                                   const std::vector<double>& im, Index count,
                                   double bottom_diag) {
    std::vector<ShiftPair> out;
    std::vector<double> reals;
    Index used = 0;
    for (Index i = static_cast<Index>(re.size()) - 1; i >= 0 && used < count; --i) {
        const auto ui = static_cast<std::size_t>(i);
        if (im[ui] != 0.0) {
            if (i == 0) break;
            out.push_back({re[ui - 1], im[ui - 1], re[ui], im[ui]});
            --i;
            used += 2;
        } else {
            reals.push_back(re[ui]);
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
        const double nearer =
            std::abs(a - bottom_diag) < std::abs(b - bottom_diag) ? a : b;
        out[0] = {nearer, 0.0, nearer, 0.0};
    }
    return out;
}

// Sweeps without deflation after which the AED window starts to vary, and the
// period of exceptional shifts (the values LAPACK's dlaqr0 uses).
constexpr Index kStallVaryWindow = 5;
// No sweep after an AED that deflated more than this share of its window (dlaqr0).
constexpr int kSkipSweepPercent = 14;
constexpr Index kStallExceptionalPeriod = 6;

// Shift and AED window counts for order n: the table LAPACK's iparmq documents
// (more shifts for larger n), limited so that the chain of bulges stays short
// against the matrix.
struct Plan {
    Index shifts;      // nominal shifts per sweep (even)
    Index shifts_max;  // most shifts a sweep may use
    Index window;      // nominal AED window width
    Index window_max;  // widest AED window
};

Plan plan_for_order(Index n) {
    Plan p;
    Index shifts =
        n < 30    ? 2
        : n < 60  ? 4
        : n < 150 ? 10
                  : std::max<Index>(10, n / static_cast<Index>(std::lround(
                                                std::log2(static_cast<double>(n)))));
    if (n >= 590) shifts = 64;
    if (n >= 3000) shifts = 128;
    shifts = std::min<Index>(shifts, (n + 6) / 9);
    p.shifts = std::max<Index>(2, shifts - shifts % 2);
    Index window = n <= 500 ? p.shifts : 3 * p.shifts / 2;
    p.window_max = (n - 1) / 3;
    p.window = std::min<Index>(window < 2 ? 2 : window, p.window_max);
    p.shifts_max = std::max<Index>(p.shifts, (n + 6) / 9);
    p.shifts_max -= p.shifts_max % 2;
    return p;
}

// Width of the next AED window on the active block [lo, hi]. Normally the nominal
// width, the whole block if that is at most one row less, else one wider when
// that moves the window's top to the smaller of two subdiagonal entries. After
// kStallVaryWindow sweeps without deflation the width doubles (from `previous`) up
// to the cap, then shrinks by a decrement `shrink` that grows by one each time.
Index aed_window(const MapM& H, Index lo, Index hi, const Plan& plan, Index stalled,
                 Index previous, Index& shrink) {
    const Index active = hi - lo + 1;
    const Index cap = std::min(active, plan.window_max);
    const bool varying = stalled >= kStallVaryWindow;
    Index width = varying ? std::min(cap, 2 * previous) : std::min(cap, plan.window);
    if (width < plan.window_max) {
        if (width >= active - 1) {
            width = active;
        } else {
            const Index top = hi - width + 1;
            if (std::abs(H(top, top - 1)) > std::abs(H(top - 1, top - 2))) ++width;
        }
    }
    if (!varying) {
        shrink = -1;
    } else if (shrink >= 0 || width >= cap) {
        ++shrink;
        if (width - shrink < 2) shrink = 0;
        width -= shrink;
    }
    return width;
}

// Exceptional shifts for a stalled iteration: pairs built from the subdiagonal
// entries near the bottom of [lo, hi] (the hqr construction, see schur_hqr.cpp),
// up to `count` of them; a double copy of the bottom diagonal entry if none fit.
void exceptional_shifts(const MapM& H, Index lo, Index hi, Index count,
                        std::vector<double>& re, std::vector<double>& im) {
    for (Index i = hi; i >= std::max(hi - count + 2, lo + 2); i -= 2) {
        const double size = std::abs(H(i, i - 1)) + std::abs(H(i - 1, i - 2));
        const double centre = kExceptionalOffset * size + H(i, i);
        const double imag = std::sqrt(-kExceptionalCoupling) * size;
        re.push_back(centre);
        im.push_back(imag);
        re.push_back(centre);
        im.push_back(-imag);
    }
    if (re.empty()) {
        re = {H(hi, hi), H(hi, hi)};
        im = {0.0, 0.0};
    }
}

// The eigenvalues of the trailing count x count block of H (ending at row hi), as
// shift candidates when AED returned too few; a double copy of the bottom diagonal
// entry if that small QR fails.
void trailing_eigenvalues(const MapM& H, Index hi, Index count, std::vector<double>& re,
                          std::vector<double>& im) {
    const Index first = hi - count + 1;
    Eigen::MatrixXd Tt = H.block(first, first, count, count);
    for (Index j = 0; j + 2 < count; ++j) Tt.col(j).tail(count - j - 2).setZero();
    Eigen::MatrixXd Vt = Eigen::MatrixXd::Identity(count, count);
    re.clear();
    im.clear();
    if (francis(view(Tt.data(), count, count, count),
                view(Vt.data(), count, count, count))) {
        append_eigenvalues(view(Tt.data(), count, count, count), count, re, im);
    } else {
        re = {H(hi, hi), H(hi, hi)};
        im = {0.0, 0.0};
    }
}

// Order the candidates by decreasing |re| + |im| (stable; conjugate pairs kept
// together), so that pair_shifts, which takes from the end, uses the smallest.
void sort_shift_candidates(std::vector<double>& re, std::vector<double>& im) {
    struct Block {
        double key;
        std::size_t first;
        int size;
    };
    std::vector<Block> blocks;
    for (std::size_t i = 0; i < re.size();) {
        const int size = im[i] != 0.0 && i + 1 < re.size() ? 2 : 1;
        blocks.push_back({std::abs(re[i]) + std::abs(im[i]), i, size});
        i += static_cast<std::size_t>(size);
    }
    std::stable_sort(blocks.begin(), blocks.end(),
                     [](const Block& x, const Block& y) { return x.key > y.key; });
    std::vector<double> sorted_re, sorted_im;
    for (const Block& b : blocks)
        for (int q = 0; q < b.size; ++q) {
            sorted_re.push_back(re[b.first + static_cast<std::size_t>(q)]);
            sorted_im.push_back(im[b.first + static_cast<std::size_t>(q)]);
        }
    re.swap(sorted_re);
    im.swap(sorted_im);
}

// The multishift QR driver: repeatedly find the active block at the bottom, run
// AED on its trailing window, and sweep with the window's undeflated eigenvalues
// as shifts unless AED deflated enough that another AED is likely cheaper.
bool multishift_impl(MapM H, OuterUpdates& out) {
    const Index n = H.rows();
    const Index min_order = kMultishiftMinOrder;
    Work wk;
    const Plan plan = plan_for_order(n);
    const int skip_sweep_percent = kSkipSweepPercent;

    Index hi = n - 1;
    Index stalled = 1;  // AED rounds since the last deflation, plus one
    Index window = plan.window_max, shrink = -1;
    const Index max_rounds = 30 * std::max<Index>(10, n);
    for (Index round = 0; round < max_rounds; ++round) {
        if (hi < 0) return true;
        Index lo = hi;
        while (lo > 0 && H(lo, lo - 1) != 0.0) --lo;

        window = aed_window(H, lo, hi, plan, stalled, window, shrink);
        AedResult found = aed(H, out, lo, hi, window, wk);
        hi -= found.deflated;

        const bool sweep_worthwhile =
            found.deflated == 0 ||
            (100 * found.deflated <= window * skip_sweep_percent &&
             hi - lo + 1 > std::min(min_order, plan.window_max));
        if (sweep_worthwhile) {
            Index count = std::min(std::min(plan.shifts_max, plan.shifts),
                                   std::max<Index>(2, hi - lo));
            count -= count % 2;
            std::vector<double> re, im;
            if (stalled % kStallExceptionalPeriod == 0) {
                exceptional_shifts(H, lo, hi, count, re, im);
            } else {
                re = found.shift_re;
                im = found.shift_im;
                if (static_cast<Index>(re.size()) <= count / 2)
                    trailing_eigenvalues(H, hi, count, re, im);
                if (static_cast<Index>(re.size()) > count)
                    sort_shift_candidates(re, im);
            }
            const std::vector<ShiftPair> pairs = pair_shifts(re, im, count, H(hi, hi));
            sweep(H, out, lo, hi, pairs, wk);
        }
        stalled = found.deflated > 0 ? 1 : stalled + 1;
    }
    return false;
}

bool schur_of(MapM T, MapM V) {
    if (T.rows() < kMultishiftMinOrder) return francis(T, V);
    OuterUpdates out(T, V);
    return multishift_impl(T, out);
}

}  // namespace

bool multishift(MapM H, MapM Z) {
    return schur_of(H, Z);
}

bool multishift_overlapped(MapM H, MapM Z, const std::function<void()>& prepare_z) {
    if (H.rows() < kMultishiftMinOrder) {
        prepare_z();
        return francis(H, Z);
    }
    OuterUpdates out(H, Z);
    out.start(prepare_z);
    const bool ok = multishift_impl(H, out);
    out.finish();
    return ok;
}

}  // namespace rnnschur::schur::qr
