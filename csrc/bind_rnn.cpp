// Bindings of the RNN kernels. The Python wrappers (rnnschur/rnn.py) coerce
// dtypes and layouts; this layer re-checks everything that memory safety
// depends on (dtype, contiguity, shapes), so that misuse of the private entry
// points raises instead of crashing.
#include <cmath>
#include <string>
#include <vector>

#include "common.hpp"
#include "errors.hpp"
#include "rnn_kernels.hpp"

namespace rnnschur {
namespace {

[[noreturn]] void value_error(const std::string& msg) {
    throw py::value_error(msg);
}
[[noreturn]] void type_error(const std::string& msg) {
    throw py::type_error(msg);
}

std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) {
        if (i) s += ", ";
        s += std::to_string(a.shape(i));
    }
    if (a.ndim() == 1) s += ",";
    return s + ")";
}

// Checks dtype and layout of a float array argument; returns its data pointer.
template <class T>
const T* float_arg(const py::array& a, const char* name, py::ssize_t ndim) {
    if (!py::isinstance<py::array_t<T>>(a) || !a.dtype().is(py::dtype::of<T>()))
        type_error(std::string(name) + " must be a " +
                   (sizeof(T) == 4 ? "float32" : "float64") +
                   " array like the other arguments, got dtype " +
                   py::str(a.dtype()).cast<std::string>());
    if (a.ndim() != ndim)
        value_error(std::string(name) + " must be " + std::to_string(ndim) +
                    "-D, got shape " + shape_str(a));
    if (!(a.flags() & py::array::c_style) ||
        reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) != 0)
        value_error(std::string(name) + " must be C-contiguous and aligned");
    return static_cast<const T*>(a.data());
}

void expect_dim(const py::array& a, const char* name, py::ssize_t axis, std::int64_t n,
                const char* what) {
    if (a.shape(axis) != n)
        value_error(std::string(name) + " has shape " + shape_str(a) + ", expected " +
                    what + " = " + std::to_string(n) + " along axis " +
                    std::to_string(axis));
}

struct FiniteCheck {
    const void* p;
    std::int64_t n;
    const char* name;
};

template <class T>
const char* first_nonfinite(const FiniteCheck* c, int n) {
    for (int i = 0; i < n; ++i)
        if (c[i].p && !all_finite(static_cast<const T*>(c[i].p), c[i].n))
            return c[i].name;
    return nullptr;
}

// leak in (0, 1] as the working dtype (a float32 leak below ~1e-45 is 0).
template <class T>
T leak_arg(double leak) {
    auto got = [leak] { return py::repr(py::float_(leak)).cast<std::string>(); };
    if (!(leak > 0.0 && leak <= 1.0))
        value_error("leak must be in (0, 1], got " + got());
    const T a = static_cast<T>(leak);
    if (!(a > T(0)))
        value_error("leak = " + got() + " rounds to 0 in float32; pass float64 arrays");
    return a;
}

template <class T>
py::object rollout_t(const py::array& W_xh, const py::array& W_hh,
                     const py::array& W_hy, const py::array& x, const py::object& b_h,
                     const py::object& b_y, const py::object& h0, bool return_hidden,
                     int n_threads, double leak) {
    ForwardArgs<T> a{};
    a.leak = leak_arg<T>(leak);
    a.W_xh = float_arg<T>(W_xh, "W_xh", 2);
    const bool stacked = W_hh.ndim() == 3;
    a.W_hh = float_arg<T>(W_hh, "W_hh", stacked ? 3 : 2);
    a.W_hy = float_arg<T>(W_hy, "W_hy", 2);
    a.x = float_arg<T>(x, "x", 3);
    RnnDims& d = a.d;
    d.Nh = W_xh.shape(0);
    d.Nx = W_xh.shape(1);
    d.Ny = W_hy.shape(0);
    d.K = stacked ? W_hh.shape(0) : 1;
    d.T = x.shape(0);
    d.B = x.shape(1);
    expect_dim(W_hh, "W_hh", stacked ? 1 : 0, d.Nh, "Nh (rows of W_xh)");
    expect_dim(W_hh, "W_hh", stacked ? 2 : 1, d.Nh, "Nh (rows of W_xh)");
    expect_dim(W_hy, "W_hy", 1, d.Nh, "Nh (rows of W_xh)");
    expect_dim(x, "x", 2, d.Nx, "Nx (columns of W_xh)");
    py::array ab_h, ab_y, ah0;
    if (!b_h.is_none()) {
        ab_h = b_h.cast<py::array>();
        a.b_h = float_arg<T>(ab_h, "b_h", 1);
        expect_dim(ab_h, "b_h", 0, d.Nh, "Nh");
    }
    if (!b_y.is_none()) {
        ab_y = b_y.cast<py::array>();
        a.b_y = float_arg<T>(ab_y, "b_y", 1);
        expect_dim(ab_y, "b_y", 0, d.Ny, "Ny");
    }
    std::int64_t h0_n = 0;
    if (!h0.is_none()) {
        ah0 = h0.cast<py::array>();
        const bool per_row = ah0.ndim() == 2;
        a.h0 = float_arg<T>(ah0, "h0", per_row ? 2 : 1);
        if (per_row) expect_dim(ah0, "h0", 0, d.B, "B (batch size of x)");
        expect_dim(ah0, "h0", per_row ? 1 : 0, d.Nh, "Nh");
        a.h0_bstride = per_row ? d.Nh : 0;
        h0_n = per_row ? d.B * d.Nh : d.Nh;
    }
    std::vector<py::ssize_t> yshape, hshape;
    if (stacked) yshape.push_back(d.K), hshape.push_back(d.K);
    yshape.insert(yshape.end(), {d.T, d.B, d.Ny});
    hshape.insert(hshape.end(), {d.T, d.B, d.Nh});
    py::array_t<T> y(yshape);
    a.y = y.mutable_data();
    py::array_t<T> hid;
    if (return_hidden) {
        hid = py::array_t<T>(hshape);
        a.hidden = hid.mutable_data();
    }
    const FiniteCheck checks[] = {{a.W_xh, d.Nh * d.Nx, "W_xh"},
                                  {a.W_hh, d.K * d.Nh * d.Nh, "W_hh"},
                                  {a.W_hy, d.Ny * d.Nh, "W_hy"},
                                  {a.b_h, d.Nh, "b_h"},
                                  {a.b_y, d.Ny, "b_y"},
                                  {a.x, d.T * d.B * d.Nx, "x"},
                                  {a.h0, h0_n, "h0"}};
    const char* bad = nullptr;
    bool ok = true;
    {
        py::gil_scoped_release release;
        bad = first_nonfinite<T>(checks, 7);
        if (!bad) ok = rnn_forward(a, n_threads);
    }
    if (bad)
        throw NonFiniteError(std::string(bad) +
                             " must contain only finite values (found NaN or inf)");
    if (!ok)
        throw NonFiniteError(
            "rollout overflowed: the outputs contain non-finite values (weights or "
            "inputs too large)");
    if (return_hidden) return py::make_tuple(y, hid);
    return std::move(y);
}

template <class T>
py::tuple loss_and_grad_t(const py::array& W_xh, const py::array& W_hh,
                          const py::array& W_hy, const py::array& x, const py::array& y,
                          const py::object& mask, const py::object& b_h,
                          const py::object& b_y, int n_threads, double leak) {
    GradArgs<T> a{};
    a.leak = leak_arg<T>(leak);
    a.W_xh = float_arg<T>(W_xh, "W_xh", 2);
    a.W_hh = float_arg<T>(W_hh, "W_hh", 2);
    a.W_hy = float_arg<T>(W_hy, "W_hy", 2);
    a.x = float_arg<T>(x, "x", 3);
    a.target = float_arg<T>(y, "y", 3);
    RnnDims& d = a.d;
    d.K = 1;
    d.Nh = W_xh.shape(0);
    d.Nx = W_xh.shape(1);
    d.Ny = W_hy.shape(0);
    d.T = x.shape(0);
    d.B = x.shape(1);
    expect_dim(W_hh, "W_hh", 0, d.Nh, "Nh (rows of W_xh)");
    expect_dim(W_hh, "W_hh", 1, d.Nh, "Nh (rows of W_xh)");
    expect_dim(W_hy, "W_hy", 1, d.Nh, "Nh (rows of W_xh)");
    expect_dim(x, "x", 2, d.Nx, "Nx (columns of W_xh)");
    expect_dim(y, "y", 0, d.T, "T (time steps of x)");
    expect_dim(y, "y", 1, d.B, "B (batch size of x)");
    expect_dim(y, "y", 2, d.Ny, "Ny (rows of W_hy)");
    py::array ab_h, ab_y, amask;
    if (!b_h.is_none()) {
        ab_h = b_h.cast<py::array>();
        a.b_h = float_arg<T>(ab_h, "b_h", 1);
        expect_dim(ab_h, "b_h", 0, d.Nh, "Nh");
    }
    if (!b_y.is_none()) {
        ab_y = b_y.cast<py::array>();
        a.b_y = float_arg<T>(ab_y, "b_y", 1);
        expect_dim(ab_y, "b_y", 0, d.Ny, "Ny");
    }
    const std::int64_t n_out = d.T * d.B * d.Ny;
    if (!mask.is_none()) {
        amask = mask.cast<py::array>();
        if (!amask.dtype().is(py::dtype::of<bool>()) &&
            !amask.dtype().is(py::dtype::of<std::uint8_t>()))
            type_error("mask must be a bool array, got dtype " +
                       py::str(amask.dtype()).cast<std::string>());
        if (amask.ndim() != 3 || !(amask.flags() & py::array::c_style))
            value_error("mask must be a C-contiguous 3-D array here");
        expect_dim(amask, "mask", 0, d.T, "T");
        expect_dim(amask, "mask", 1, d.B, "B");
        expect_dim(amask, "mask", 2, d.Ny, "Ny");
        a.mask = static_cast<const std::uint8_t*>(amask.data());
    }
    py::array_t<T> gxh({d.Nh, d.Nx}), ghh({d.Nh, d.Nh}), ghy({d.Ny, d.Nh});
    a.g_W_xh = gxh.mutable_data();
    a.g_W_hh = ghh.mutable_data();
    a.g_W_hy = ghy.mutable_data();
    py::array_t<T> gbh, gby;
    if (a.b_h) {
        gbh = py::array_t<T>(d.Nh);
        a.g_b_h = gbh.mutable_data();
    }
    if (a.b_y) {
        gby = py::array_t<T>(d.Ny);
        a.g_b_y = gby.mutable_data();
    }
    const FiniteCheck checks[] = {
        {a.W_xh, d.Nh * d.Nx, "W_xh"}, {a.W_hh, d.Nh * d.Nh, "W_hh"},
        {a.W_hy, d.Ny * d.Nh, "W_hy"}, {a.b_h, d.Nh, "b_h"},
        {a.b_y, d.Ny, "b_y"},          {a.x, d.T * d.B * d.Nx, "x"},
        {a.target, n_out, "y"}};
    const char* bad = nullptr;
    bool ok = true;
    {
        py::gil_scoped_release release;
        bad = first_nonfinite<T>(checks, 7);
        if (!bad) {
            std::int64_t count = n_out;
            if (a.mask) {
                count = 0;
                for (std::int64_t i = 0; i < n_out; ++i) count += a.mask[i] != 0;
            }
            a.count = count;
            if (count > 0) ok = rnn_loss_and_grad(a, n_threads);
        }
    }
    if (bad)
        throw NonFiniteError(std::string(bad) +
                             " must contain only finite values (found NaN or inf)");
    if (a.count == 0)
        value_error(
            "the loss averages over no entries: mask selects nothing, or T, B or Ny is "
            "0");
    if (!ok)
        throw NonFiniteError(
            "loss_and_grad overflowed: the loss or a gradient is not finite (weights "
            "or "
            "inputs too large)");
    py::dict grads;
    grads["W_xh"] = gxh;
    grads["W_hh"] = ghh;
    grads["W_hy"] = ghy;
    if (a.b_h) grads["b_h"] = gbh;
    if (a.b_y) grads["b_y"] = gby;
    return py::make_tuple(a.loss, grads);
}

bool is_f64(const py::array& a) {
    return a.dtype().is(py::dtype::of<double>());
}

}  // namespace

void register_rnn(py::module_& m) {
    m.def(
        "rollout",
        [](const py::array& W_xh, const py::array& W_hh, const py::array& W_hy,
           const py::array& x, const py::object& b_h, const py::object& b_y,
           const py::object& h0, bool return_hidden, int n_threads, double leak) {
            if (is_f64(W_xh))
                return rollout_t<double>(W_xh, W_hh, W_hy, x, b_h, b_y, h0,
                                         return_hidden, n_threads, leak);
            return rollout_t<float>(W_xh, W_hh, W_hy, x, b_h, b_y, h0, return_hidden,
                                    n_threads, leak);
        },
        "W_xh"_a, "W_hh"_a, "W_hy"_a, "x"_a, "b_h"_a, "b_y"_a, "h0"_a,
        "return_hidden"_a, "n_threads"_a, py::kw_only(), "leak"_a = 1.0,
        "Forward pass; arrays must share one float dtype and be C-contiguous. "
        "See rnnschur.rollout.");
    m.def(
        "loss_and_grad",
        [](const py::array& W_xh, const py::array& W_hh, const py::array& W_hy,
           const py::array& x, const py::array& y, const py::object& mask,
           const py::object& b_h, const py::object& b_y, int n_threads, double leak) {
            if (is_f64(W_xh))
                return loss_and_grad_t<double>(W_xh, W_hh, W_hy, x, y, mask, b_h, b_y,
                                               n_threads, leak);
            return loss_and_grad_t<float>(W_xh, W_hh, W_hy, x, y, mask, b_h, b_y,
                                          n_threads, leak);
        },
        "W_xh"_a, "W_hh"_a, "W_hy"_a, "x"_a, "y"_a, "mask"_a, "b_h"_a, "b_y"_a,
        "n_threads"_a, py::kw_only(), "leak"_a = 1.0,
        "Masked MSE and its BPTT gradient; mask is a (T, B, Ny) bool array or None. "
        "See rnnschur.loss_and_grad.");
    if (const char* err = simd_env_error()) value_error(err);
    m.def(
        "simd_level", [] { return std::string(simd_level_name(simd_level())); },
        "SIMD level used by the RNN kernels ('baseline', 'avx2' or 'avx512').");
    m.def(
        "simd_levels",
        [] {
            std::vector<std::string> out;
            for (auto l : {SimdLevel::baseline, SimdLevel::avx2, SimdLevel::avx512})
                if (simd_level_supported(l)) out.emplace_back(simd_level_name(l));
            return out;
        },
        "SIMD levels this build and CPU support, lowest first.");
    m.def(
        "set_simd_level",
        [](const std::string& level) {
            SimdLevel want;
            if (!parse_simd_level(level.c_str(), want))
                value_error("level must be 'baseline', 'avx2' or 'avx512', got '" +
                            level + "'");
            if (!simd_level_supported(want))
                value_error("level '" + level +
                            "' is not supported by this CPU (or this build); "
                            "see simd_levels()");
            return std::string(simd_level_name(set_simd_level(want)));
        },
        "level"_a,
        "Force the SIMD level of the RNN kernels (any of simd_levels(); ValueError "
        "for a level the CPU lacks); returns the level in force. For tests and "
        "diagnostics.");
    m.def(
        "_tanh",
        [](const py::array& x) -> py::array {
            if (is_f64(x)) {
                auto in = py::array_t<double, py::array::c_style>::ensure(x);
                py::array_t<double> out(in.size());
                rnn_tanh(in.data(), out.mutable_data(), in.size());
                return out;
            }
            auto in =
                py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(
                    x);
            py::array_t<float> out(in.size());
            rnn_tanh(in.data(), out.mutable_data(), in.size());
            return out;
        },
        "x"_a, "Test hook: the kernels' vector tanh of a flat float32/float64 array.");
    m.def(
        "_set_forward_layout",
        [](const std::string& layout) {
            static const char* names[] = {"rows", "auto", "transposed"};
            int want = -1;
            for (int i = 0; i < 3; ++i)
                if (layout == names[i]) want = i;
            if (want < 0)
                value_error("layout must be 'rows', 'auto' or 'transposed', got '" +
                            layout + "'");
            const auto prev = set_forward_layout(static_cast<ForwardLayout>(want));
            return std::string(names[static_cast<int>(prev)]);
        },
        "layout"_a,
        "Test/benchmark hook: the state layout of the AVX-512 forward ('auto', the "
        "default: batch in the vector lanes where that is faster; 'transposed': "
        "always; 'rows': the layout of the other levels). Returns the previous one.");
    m.def("hardware_threads", &hardware_threads,
          "Threads used when n_threads is None.");
}

}  // namespace rnnschur
