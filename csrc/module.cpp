#include <Eigen/Core>

#include "common.hpp"

PYBIND11_MODULE(_core, m, py::mod_gil_not_used()) {
    m.doc() =
        "rnnschur compiled core: batched tanh-RNN rollout, BPTT, ordered Schur, fixed "
        "points.";
    m.attr("eigen_version") = std::to_string(EIGEN_WORLD_VERSION) + "." +
                              std::to_string(EIGEN_MAJOR_VERSION) + "." +
                              std::to_string(EIGEN_MINOR_VERSION);
    rnnschur::register_rnn(m);
    rnnschur::register_schur(m);
    rnnschur::register_dynamics(m);
}
