// Bindings of the fixed-point search (fixed_points.cpp). The Python wrapper
// (rnnschur/dynamics.py) coerces and documents the arguments; this layer
// re-checks what memory safety and the numerics depend on (dtype, layout,
// shapes, finiteness, option ranges) and releases the GIL for the work.
#include <cmath>
#include <complex>
#include <string>

#include "common.hpp"
#include "fixed_points.hpp"
#include "rnn_kernels.hpp"  // all_finite

namespace rnnschur {
namespace {

using F64 = py::array_t<double, py::array::c_style>;

[[noreturn]] void value_error(const std::string& msg) {
    throw py::value_error(msg);
}

std::string shape_of(const F64& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i)
        s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

// Checks W (n, n), c (n) and points (S, n); returns the problem.
FpProblem problem(const F64& W, const F64& c, const F64& pts, const char* pts_name,
                  int activation) {
    if (W.ndim() != 2 || W.shape(0) != W.shape(1))
        value_error("W_hh must be square 2-D, got shape " + shape_of(W));
    const std::int64_t n = W.shape(0);
    if (c.ndim() != 1 || c.shape(0) != n)
        value_error("c must have shape (" + std::to_string(n) + ",), got " +
                    shape_of(c));
    if (pts.ndim() != 2 || pts.shape(1) != n)
        value_error(std::string(pts_name) + " must have shape (S, " +
                    std::to_string(n) + "), got " + shape_of(pts));
    if (activation != 0 && activation != 1)
        value_error("activation must be 0 (tanh) or 1 (identity), got " +
                    std::to_string(activation));
    if (!all_finite(W.data(), n * n)) value_error("W_hh contains NaN or inf");
    if (!all_finite(c.data(), n)) value_error("c contains NaN or inf");
    if (!all_finite(pts.data(), pts.shape(0) * n))
        value_error(std::string(pts_name) + " contains NaN or inf");
    return FpProblem{n, W.data(), c.data(), static_cast<FpActivation>(activation)};
}

py::tuple search(const F64& W, const F64& c, const F64& starts, double tol,
                 double grad_tol, int max_iter, int activation, bool history,
                 int n_threads) {
    const FpProblem p = problem(W, c, starts, "starts", activation);
    if (!(tol > 0.0 && std::isfinite(tol)))
        value_error("tol must be positive and finite");
    if (!(grad_tol >= 0.0 && std::isfinite(grad_tol)))
        value_error("grad_tol must be non-negative and finite");
    if (max_iter < 0 || max_iter > 1000000) value_error("max_iter must be in [0, 1e6]");
    const py::ssize_t S = starts.shape(0), n = static_cast<py::ssize_t>(p.n);
    F64 h({S, n});
    std::copy(starts.data(), starts.data() + S * n, h.mutable_data());
    F64 q(S);
    py::array_t<std::int8_t> status(S), damped(S);
    py::array_t<std::int32_t> iters(S);
    F64 hist;
    if (history) hist = F64({S, static_cast<py::ssize_t>(max_iter) + 2});
    FpBatch b{S,
              h.mutable_data(),
              q.mutable_data(),
              status.mutable_data(),
              iters.mutable_data(),
              history ? hist.mutable_data() : nullptr,
              damped.mutable_data()};
    const FpOptions o{tol, grad_tol, max_iter};
    {
        const py::gil_scoped_release release;
        find_fixed_points(p, o, b, n_threads);
    }
    return py::make_tuple(h, q, status, iters, damped,
                          history ? py::object(hist) : py::object(py::none()));
}

py::array_t<std::complex<double>> eigenvalues(const F64& W, const F64& c, const F64& h,
                                              double leak, int activation,
                                              int n_threads) {
    const FpProblem p = problem(W, c, h, "h", activation);
    if (!(leak > 0.0 && leak <= 1.0)) value_error("leak must be in (0, 1]");
    const py::ssize_t P = h.shape(0), n = static_cast<py::ssize_t>(p.n);
    F64 re({P, n}), im({P, n});
    {
        const py::gil_scoped_release release;
        fixed_point_eigenvalues(p, leak, h.data(), P, re.mutable_data(),
                                im.mutable_data(), n_threads);
    }
    py::array_t<std::complex<double>> ev({P, n});
    auto* e = ev.mutable_data();
    for (py::ssize_t i = 0; i < P * n; ++i) e[i] = {re.data()[i], im.data()[i]};
    return ev;
}

}  // namespace

void register_dynamics(py::module_& m) {
    m.def("fixed_points_newton", &search, "W"_a.noconvert(), "c"_a.noconvert(),
          "starts"_a.noconvert(), "tol"_a, "grad_tol"_a, "max_iter"_a, "activation"_a,
          "history"_a, "n_threads"_a,
          "Globalised Newton for fixed points of h = act(W h + c) from each start. "
          "Returns (h, q, status, iters, damped, history or None); status 0 fixed, "
          "1 slow, 2 not converged, 3 non-finite.");
    m.def("fixed_point_eigenvalues", &eigenvalues, "W"_a.noconvert(), "c"_a.noconvert(),
          "h"_a.noconvert(), "leak"_a, "activation"_a, "n_threads"_a,
          "Eigenvalues (P, n) of (1 - leak) I + leak diag(act'(W h + c)) W at each "
          "point, largest modulus first.");
}

}  // namespace rnnschur
