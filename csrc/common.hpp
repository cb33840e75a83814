// Included first by every binding translation unit, so that all of them see the
// same pybind11 configuration (type casters must agree across TUs).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;
using namespace pybind11::literals;

namespace rnnschur {
void register_rnn(py::module_& m);
void register_schur(py::module_& m);
void register_dynamics(py::module_& m);
}  // namespace rnnschur
