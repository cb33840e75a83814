// Fixed points of h = act(W h + c): the pure C++ interface (no pybind11).
//
// The residual is F(h) = act(W h + c) - h and the objective q = ½‖F(h)‖². A
// leaky network h ← (1 - a) h + a act(W h + c) has the same fixed points (its
// residual is a F(h)), so the search ignores the leak; only the eigenvalues of
// the map's Jacobian depend on it (fixed_point_eigenvalues).
//
// All arrays are dense, C-contiguous, float64 and already validated by the
// caller: W (n, n) row-major, c (n), h (S, n).
#pragma once

#include <cstdint>

namespace rnnschur {

// identity exists for tests: a linear network's fixed point and Jacobian are
// known in closed form.
enum class FpActivation : int { tanh = 0, identity = 1 };

// Outcome per starting state.
enum class FpStatus : std::int8_t {
    fixed = 0,          // q < tol
    slow = 1,           // q >= tol at a stationary point of q (a local minimum)
    not_converged = 2,  // max_iter reached, or stalled with a non-small gradient
    nonfinite = 3,      // the iterate or q became NaN/inf
};

struct FpProblem {
    std::int64_t n;
    const double* W;  // (n, n), row-major
    const double* c;  // (n)
    FpActivation act;
};

struct FpOptions {
    double tol;  // q below this counts as a fixed point
    double
        grad_tol;  // ‖Jᵀ F‖ / ((‖W‖_F + √n) ‖F‖) below this, q stagnating: slow point
    int max_iter;  // Newton iterations per start
};

struct FpBatch {
    std::int64_t S;
    double* h;            // (S, n): starts on entry, final iterates on exit
    double* q;            // (S)
    std::int8_t* status;  // (S), FpStatus values
    std::int32_t* iters;  // (S), iterations taken
    double* history;      // (S, max_iter + 2) q per iterate, NaN-padded; may be null
    std::int8_t* damped;  // (S), 1 if any damped (Hessian) step was taken
};

// Globalised Newton from each start, threads over starts (n_threads <= 0: all
// hardware threads). Never throws for a non-converging start: its status says so.
void find_fixed_points(const FpProblem& p, const FpOptions& o, FpBatch& b,
                       int n_threads);

// Eigenvalues (re, im: (P, n)) of the Jacobian of the map actually run,
// (1 - leak) I + leak diag(act'(W h + c)) W, at each of the P points h (P, n).
void fixed_point_eigenvalues(const FpProblem& p, double leak, const double* h,
                             std::int64_t P, double* re, double* im, int n_threads);

}  // namespace rnnschur
