// Globalised Newton search for fixed points of h = act(W h + c).
//
// Per start: Newton on F(h) = act(W h + c) - h with the analytic Jacobian
// J = diag(act'(W h + c)) W - I, a backtracking (Armijo) line search on
// q = ½‖F‖², and a damped step on q when Newton fails. The Newton direction is
// a descent direction for q wherever J is regular (∇q·δ = -2q), but at a local
// minimum of q with q > 0 J is singular and Newton stalls. There the search
// switches to Newton on q itself, (H + μI) δ = -∇q with the exact Hessian
// H = JᵀJ + Wᵀ diag(F ⊙ act''(W h + c)) W and Levenberg damping μ, which
// converges quadratically to such minima so that they are classified, as slow
// points, instead of wandering until max_iter.
//
// Starts are independent: whole shards of them are claimed by std::threads
// through an atomic counter (iteration counts differ a lot between starts).
#include "fixed_points.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <complex>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "rnn_kernels.hpp"  // hardware_threads()

namespace rnnschur {
namespace {

using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;
using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMap = Eigen::Map<const RowMat>;
using ConstVecMap = Eigen::Map<const Vec>;

constexpr double kArmijo = 1e-4;  // sufficient decrease of q per unit step
constexpr double kMinFraction =
    1e-3;                             // shortest Newton line-search step before damping
constexpr double kMaxStepTanh = 4.0;  // ∞-norm cap: tanh fixed points lie in (-1, 1)^n
constexpr double kMinPivot = 1e-13;   // smallest/largest pivot below this: singular
constexpr int kDampTries = 16;        // damping increases per iteration before stalling
constexpr double kStallRatio = 1e-6;  // gradient ratio separating slow from stuck
constexpr double kStagnation = 0.5;   // q_new > kStagnation * q_old: no real progress

// act'(z) and act''(z) from t = act(z).
void derivatives(FpActivation act, const Vec& t, Vec& d, Vec& s) {
    if (act == FpActivation::identity) {
        d.setOnes(t.size());
        s.setZero(t.size());
        return;
    }
    d = 1.0 - t.array().square();
    s = -2.0 * t.array() * d.array();
}

struct Outcome {
    FpStatus status;
    int iters;
    double q;
    bool damped;
};

class NewtonSearch {
   public:
    NewtonSearch(const FpProblem& p, const FpOptions& o)
        : p_(p), o_(o), W_(p.W, p.n, p.n), c_(p.c, p.n), n_(p.n) {
        for (Vec* v :
             {&h_, &z_, &t_, &d_, &s_, &r_, &g_, &delta_, &h_try_, &t_try_, &r_try_})
            v->resize(n_);
        J_.resize(n_, n_);
        H_.resize(n_, n_);
        // Bounds ‖J‖_F for every h: the gradient ratio ‖Jᵀ F‖ / (jscale ‖F‖)
        // then tends to 0 at a slow point even where J itself vanishes (n = 1).
        jscale_ = W_.norm() + std::sqrt(static_cast<double>(n_));
    }

    Outcome run(double* h_io, double* hist);

   private:
    // q at h, with t = act(W h + c) and r = t - h.
    double residual(const Vec& h, Vec& t, Vec& r) {
        z_.noalias() = W_ * h;
        z_ += c_;
        if (p_.act == FpActivation::identity)
            t = z_;
        else
            t = z_.array().tanh();
        r = t - h;
        return 0.5 * r.squaredNorm();
    }
    // J, the gradient g = Jᵀ r of q and act', act'' at the iterate.
    void linearise() {
        derivatives(p_.act, t_, d_, s_);
        J_.noalias() = d_.asDiagonal() * W_;
        J_.diagonal().array() -= 1.0;
        g_.noalias() = J_.transpose() * r_;
    }
    void cap(Vec& step) const {
        if (p_.act != FpActivation::tanh) return;
        const double m = step.lpNorm<Eigen::Infinity>();
        if (m > kMaxStepTanh) step *= kMaxStepTanh / m;
    }
    bool try_point(const Vec& step, double frac, double& q_new) {
        h_try_ = h_ + frac * step;
        q_new = residual(h_try_, t_try_, r_try_);
        return std::isfinite(q_new);
    }
    void accept(double q_new) {
        h_.swap(h_try_);
        t_.swap(t_try_);
        r_.swap(r_try_);
        q_ = q_new;
    }
    bool newton_step(bool line_search, bool reuse_lu);
    bool damped_step();

    const FpProblem& p_;
    const FpOptions& o_;
    ConstRowMap W_;
    ConstVecMap c_;
    Eigen::Index n_;
    Vec h_, z_, t_, d_, s_, r_, g_, delta_, h_try_, t_try_, r_try_;
    Mat J_, H_;
    Eigen::PartialPivLU<Mat> lu_;
    Eigen::LLT<Mat> llt_;
    double q_ = 0.0;
    double jscale_ = 1.0;
    double mu_ = 0.0;        // damping carried between iterations of one start
    bool lu_fresh_ = false;  // lu_ holds a regular J of the previous iterate
};

// Full or backtracking Newton step on F; true if accepted. With reuse_lu the
// factorisation of the previous iterate's J is used (a chord step: O(n²)).
bool NewtonSearch::newton_step(bool line_search, bool reuse_lu) {
    if (!(reuse_lu && lu_fresh_)) {
        lu_.compute(J_);
        // Pivot ratio instead of lu_.rcond(): the estimator's extra solves cost
        // a third of the factorisation at n = 64, and a singular J shows up
        // as a tiny pivot under partial pivoting.
        const auto piv = lu_.matrixLU().diagonal().cwiseAbs();
        lu_fresh_ = piv.minCoeff() >= kMinPivot * piv.maxCoeff();
        if (!lu_fresh_) return false;
    }
    delta_ = lu_.solve(-r_);
    if (!delta_.allFinite()) return false;
    const double full = delta_.lpNorm<Eigen::Infinity>();
    cap(delta_);
    // Slope of q along the (possibly capped) direction: -2q times the cap factor.
    const double slope =
        2.0 * q_ * (full > 0 ? delta_.lpNorm<Eigen::Infinity>() / full : 0);
    double frac = 1.0, q_new = 0.0;
    while (frac >= kMinFraction) {
        if (try_point(delta_, frac, q_new) &&
            (line_search ? q_new <= q_ - kArmijo * frac * slope : q_new < q_)) {
            accept(q_new);
            return true;
        }
        if (!line_search) return false;
        frac *= 0.5;
    }
    return false;
}

// Levenberg-damped Newton step on q with the exact Hessian; true if q decreased.
bool NewtonSearch::damped_step() {
    H_.noalias() = J_.transpose() * J_;
    // Second-order part Wᵀ diag(r ⊙ act'') W (zero for the identity).
    if (p_.act == FpActivation::tanh) {
        const Vec w = r_.cwiseProduct(s_);
        H_.noalias() += W_.transpose() * (w.asDiagonal() * W_);
    }
    const double scale = std::max(H_.diagonal().cwiseAbs().maxCoeff(), 1e-300);
    for (int k = 0; k < kDampTries; ++k) {
        Mat A = H_;
        A.diagonal().array() += mu_;
        llt_.compute(A);
        if (llt_.info() == Eigen::Success) {
            delta_ = llt_.solve(-g_);
            cap(delta_);
            double q_new = 0.0;
            if (delta_.allFinite() && try_point(delta_, 1.0, q_new) && q_new < q_) {
                accept(q_new);
                mu_ *= 0.1;
                return true;
            }
        }
        mu_ = std::max(mu_ * 10.0, 1e-10 * scale);
    }
    return false;
}

Outcome NewtonSearch::run(double* h_io, double* hist) {
    h_ = Eigen::Map<const Vec>(h_io, n_);
    mu_ = 0.0;
    lu_fresh_ = false;
    q_ = residual(h_, t_, r_);
    Outcome out{FpStatus::not_converged, 0, q_, false};
    double q_prev = std::numeric_limits<double>::infinity();
    int k = 0;
    for (;; ++k) {
        if (hist) hist[k] = q_;
        if (!std::isfinite(q_) || !h_.allFinite()) {
            out.status = FpStatus::nonfinite;
            break;
        }
        linearise();
        if (q_ < o_.tol) {
            // One chord step more (the previous iterate's J, which differs
            // from this one by O(‖step‖)), kept only if it lowers q: it takes q
            // from just below tol to rounding level at O(n²) cost.
            if (newton_step(false, true) && hist) hist[++k] = q_;
            out.status = FpStatus::fixed;
            break;
        }
        const double ratio = g_.norm() / (jscale_ * std::sqrt(2.0 * q_));
        if (ratio <= o_.grad_tol && q_ > kStagnation * q_prev) {
            out.status = FpStatus::slow;
            break;
        }
        if (k >= o_.max_iter) break;
        q_prev = q_;
        if (newton_step(true, false)) continue;
        lu_fresh_ = false;
        out.damped = true;
        if (damped_step()) continue;
        // No step lowers q: a minimum of q to working precision, or stuck.
        out.status = ratio <= kStallRatio ? FpStatus::slow : FpStatus::not_converged;
        break;
    }
    Eigen::Map<Vec>(h_io, n_) = h_;
    out.iters = k;
    out.q = q_;
    return out;
}

// Runs fn(worker_index, item) over items [0, count) on up to n_threads threads
// (the caller included), claiming chunks through an atomic counter.
template <class Fn>
void parallel_items(std::int64_t count, int n_threads, std::int64_t chunk, Fn&& fn) {
    int nt = n_threads <= 0 ? hardware_threads() : n_threads;
    nt = static_cast<int>(std::max<std::int64_t>(
        1, std::min<std::int64_t>(nt, (count + chunk - 1) / chunk)));
    std::atomic<std::int64_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto work = [&](int w) {
        try {
            for (;;) {
                const std::int64_t begin = next.fetch_add(chunk);
                if (begin >= count) break;
                const std::int64_t end = std::min(count, begin + chunk);
                for (std::int64_t i = begin; i < end; ++i) fn(w, i);
            }
        } catch (...) {
            const std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
            next.store(count);
        }
    };
    std::vector<std::thread> threads;
    threads.reserve(static_cast<std::size_t>(nt - 1));
    for (int w = 1; w < nt; ++w) threads.emplace_back(work, w);
    work(0);
    for (auto& th : threads) th.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace

void find_fixed_points(const FpProblem& p, const FpOptions& o, FpBatch& b,
                       int n_threads) {
    const std::int64_t hist_stride = static_cast<std::int64_t>(o.max_iter) + 2;
    if (b.history)
        std::fill(b.history, b.history + b.S * hist_stride,
                  std::numeric_limits<double>::quiet_NaN());
    const int nt = n_threads <= 0 ? hardware_threads() : n_threads;
    std::vector<std::unique_ptr<NewtonSearch>> solvers(static_cast<std::size_t>(nt));
    parallel_items(b.S, nt, 4, [&](int w, std::int64_t i) {
        auto& solver = solvers[static_cast<std::size_t>(w)];
        if (!solver) solver = std::make_unique<NewtonSearch>(p, o);
        const Outcome out = solver->run(
            b.h + i * p.n, b.history ? b.history + i * hist_stride : nullptr);
        b.q[i] = out.q;
        b.status[i] = static_cast<std::int8_t>(out.status);
        b.iters[i] = out.iters;
        b.damped[i] = out.damped ? 1 : 0;
    });
}

void fixed_point_eigenvalues(const FpProblem& p, double leak, const double* h,
                             std::int64_t P, double* re, double* im, int n_threads) {
    const ConstRowMap W(p.W, p.n, p.n);
    const ConstVecMap c(p.c, p.n);
    parallel_items(P, n_threads, 1, [&](int, std::int64_t i) {
        const Vec z = W * ConstVecMap(h + i * p.n, p.n) + c;
        const Vec t = p.act == FpActivation::identity ? z : Vec(z.array().tanh());
        Vec d, s;
        derivatives(p.act, t, d, s);
        Mat A = leak * (d.asDiagonal() * W);
        A.diagonal().array() += 1.0 - leak;
        const Eigen::EigenSolver<Mat> es(A, false);
        if (es.info() != Eigen::Success) {
            std::fill(re + i * p.n, re + (i + 1) * p.n,
                      std::numeric_limits<double>::quiet_NaN());
            std::fill(im + i * p.n, im + (i + 1) * p.n,
                      std::numeric_limits<double>::quiet_NaN());
            return;
        }
        std::vector<std::complex<double>> ev(es.eigenvalues().data(),
                                             es.eigenvalues().data() + p.n);
        // Largest modulus first (the stability-deciding modes lead).
        std::stable_sort(ev.begin(), ev.end(), [](auto a, auto b) {
            const double ma = std::abs(a), mb = std::abs(b);
            if (ma != mb) return ma > mb;
            if (a.real() != b.real()) return a.real() > b.real();
            return a.imag() > b.imag();
        });
        for (std::int64_t j = 0; j < p.n; ++j) {
            re[i * p.n + j] = ev[static_cast<std::size_t>(j)].real();
            im[i * p.n + j] = ev[static_cast<std::size_t>(j)].imag();
        }
    });
}

}  // namespace rnnschur
