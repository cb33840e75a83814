#include <Eigen/Core>

#include "common.hpp"
#include "errors.hpp"

PYBIND11_MODULE(_core, m, py::mod_gil_not_used()) {
    m.doc() =
        "rnnschur compiled core: batched tanh-RNN rollout, BPTT, ordered Schur, fixed "
        "points.";
    m.attr("eigen_version") = std::to_string(EIGEN_WORLD_VERSION) + "." +
                              std::to_string(EIGEN_MAJOR_VERSION) + "." +
                              std::to_string(EIGEN_MINOR_VERSION);
    // One exception type for NaN/inf inputs and overflowed results of every kernel.
    py::register_exception<rnnschur::NonFiniteError>(m, "NonFiniteError",
                                                     PyExc_ValueError);
    rnnschur::register_rnn(m);
    rnnschur::register_schur(m);
    rnnschur::register_dynamics(m);
}
