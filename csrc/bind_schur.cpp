// Bindings for the ordered real Schur form (csrc/schur.hpp). Argument checks here,
// full documentation on the Python wrappers in python/rnnschur/schur.py.
#include <pybind11/complex.h>
#include <pybind11/eigen.h>

#include <cmath>
#include <string>

#include "common.hpp"
#include "errors.hpp"
#include "schur.hpp"

namespace rnnschur {
namespace {

namespace sc = rnnschur::schur;
using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ColRef = Eigen::Ref<Eigen::MatrixXd>;  // writeable, Fortran-ordered float64

void check_square(Eigen::Index rows, Eigen::Index cols, const char* name) {
    if (rows != cols)
        throw std::invalid_argument(std::string(name) + " must be square, got shape (" +
                                    std::to_string(rows) + ", " + std::to_string(cols) +
                                    ")");
}

void check_pair(const ColRef& T, const ColRef& Q) {
    check_square(T.rows(), T.cols(), "T");
    check_square(Q.rows(), Q.cols(), "Q");
    if (Q.rows() != T.rows())
        throw std::invalid_argument("T and Q must have the same shape");
}

void check_strategy(int strategy) {
    if (strategy < 0 || strategy > 2)
        throw std::invalid_argument("strategy must be 0, 1 or 2");
}

// atol < 0 selects the default n * eps * ||T||_F.
void check_finite_rtol(double rtol, double atol) {
    if (!(rtol >= 0.0) || !std::isfinite(rtol) || !std::isfinite(atol))
        throw std::invalid_argument("rtol must be finite and >= 0, atol finite");
}

py::dict stats_dict(const sc::ReorderStats& st) {
    py::dict d;
    d["swaps"] = st.swaps;
    d["refined"] = st.refined;
    d["extended"] = st.extended;
    d["svd"] = st.svd;
    d["clusters"] = st.clusters;
    d["max_weak"] = st.max_weak;
    d["max_strong"] = st.max_strong;
    d["atol"] = st.atol;
    py::array_t<std::int64_t> keys(
        static_cast<py::ssize_t>(st.clusters_of_blocks.size()));
    auto k = keys.mutable_unchecked<1>();
    for (py::ssize_t i = 0; i < keys.shape(0); ++i)
        k(i) = st.clusters_of_blocks[static_cast<std::size_t>(i)];
    d["block_clusters"] = keys;
    return d;
}

// Unordered factorisation by `factor`, then standardise and reorder by modulus,
// without the GIL: (T, Q, stats).
template <class Factor>
py::tuple ordered_schur_with(const Eigen::Ref<const RowMat>& W, double rtol,
                             double atol, Factor factor) {
    check_square(W.rows(), W.cols(), "W");
    check_finite_rtol(rtol, atol);
    if (!W.allFinite()) throw NonFiniteError("W must be finite");
    Eigen::MatrixXd T, Q;
    sc::ReorderStats st;
    {
        const py::gil_scoped_release release;
        const Eigen::MatrixXd Wc = W;
        factor(Wc, T, Q);
        st = sc::reorder_by_modulus(T, Q, rtol, atol);
    }
    return py::make_tuple(T, Q, stats_dict(st));
}

// The factorisations: unordered (Eigen, own QR) and ordered by modulus.
void register_factorisations(py::module_& m) {
    m.def(
        "schur_real_eigen",
        [](const Eigen::Ref<const RowMat>& W) {
            check_square(W.rows(), W.cols(), "W");
            if (!W.allFinite()) throw NonFiniteError("W must be finite");
            Eigen::MatrixXd T, Q;
            {
                const py::gil_scoped_release release;
                const Eigen::MatrixXd Wc = W;
                sc::real_schur_eigen(Wc, T, Q);
            }
            return py::make_tuple(T, Q);
        },
        "W"_a, "Unordered real Schur form by Eigen's RealSchur: returns (T, Q).");

    m.def(
        "schur_ordered_eigen",
        [](const Eigen::Ref<const RowMat>& W, double rtol, double atol) {
            return ordered_schur_with(W, rtol, atol, sc::real_schur_eigen);
        },
        "W"_a, "rtol"_a, "atol"_a,
        "Eigen RealSchur, then standardise and reorder by modulus: (T, Q, stats).");

    m.def(
        "schur_ordered_own",
        [](const Eigen::Ref<const RowMat>& W, double rtol, double atol, int threads) {
            if (threads < 1) throw py::value_error("threads must be >= 1");
            return ordered_schur_with(
                W, rtol, atol,
                [threads](const sc::ConstMatRef& Wc, Eigen::MatrixXd& T,
                          Eigen::MatrixXd& Q) {
                    sc::real_schur_own(Wc, T, Q, threads);
                });
        },
        "W"_a, "rtol"_a, "atol"_a, "threads"_a = 1,
        "Own Hessenberg + QR iteration, then standardise and reorder: (T, Q, stats).\n"
        "threads >= 2 lets a second thread form Q and apply its updates (n >= 128).");

    m.def(
        "schur_real_own",
        [](const Eigen::Ref<const RowMat>& W, int threads) {
            check_square(W.rows(), W.cols(), "W");
            if (!W.allFinite()) throw NonFiniteError("W must be finite");
            if (threads < 1) throw py::value_error("threads must be >= 1");
            Eigen::MatrixXd T, Q;
            {
                const py::gil_scoped_release release;
                const Eigen::MatrixXd Wc = W;
                sc::real_schur_own(Wc, T, Q, threads);
            }
            return py::make_tuple(T, Q);
        },
        "W"_a, "threads"_a = 1,
        "Unordered real Schur form by the own QR iteration: returns (T, Q).");
}

// Standardisation, single swaps and the full reordering of a Schur pair in place.
void register_reordering(py::module_& m) {
    m.def(
        "schur_reorder",
        [](ColRef T, ColRef Q, double rtol, double atol, int strategy) {
            check_pair(T, Q);
            check_strategy(strategy);
            check_finite_rtol(rtol, atol);
            sc::ReorderStats st;
            {
                const py::gil_scoped_release release;
                st = sc::reorder_by_modulus(T, Q, rtol, atol,
                                            static_cast<sc::SwapStrategy>(strategy));
            }
            return stats_dict(st);
        },
        "T"_a.noconvert(), "Q"_a.noconvert(), "rtol"_a, "atol"_a, "strategy"_a = 0,
        "Standardise and reorder a real Schur pair (T, Q) in place (Fortran-ordered "
        "float64); returns swap statistics. strategy (tests only): 0 automatic, 1 "
        "Sylvester-based methods only, 2 SVD bases only.");

    m.def(
        "schur_standardize",
        [](ColRef T, ColRef Q) {
            check_pair(T, Q);
            const py::gil_scoped_release release;
            sc::standardize(T, Q);
        },
        "T"_a.noconvert(), "Q"_a.noconvert(),
        "Standardise every 2x2 block of (T, Q) in place (splitting real ones).");

    m.def(
        "schur_standardize_2x2",
        [](double a, double b, double c, double d) {
            const sc::Rotation r = sc::standardize_2x2(a, b, c, d);
            return py::make_tuple(a, b, c, d, r.c, r.s);
        },
        "a"_a, "b"_a, "c"_a, "d"_a,
        "Standardise [a b; c d]: returns (a, b, c, d, cs, sn) with the new block "
        "[cs sn; -sn cs] [a b; c d] [cs -sn; sn cs].");

    m.def(
        "schur_swap",
        [](ColRef T, ColRef Q, Eigen::Index j, int n1, int n2, int strategy) {
            check_pair(T, Q);
            check_strategy(strategy);
            sc::SwapReport rep;
            {
                const py::gil_scoped_release release;
                rep = sc::swap_adjacent(T, Q, j, n1, n2,
                                        static_cast<sc::SwapStrategy>(strategy));
            }
            py::dict d;
            d["method"] = static_cast<int>(rep.method);
            d["weak"] = rep.weak_residual;
            d["strong"] = rep.strong_residual;
            d["weak_threshold"] = rep.weak_threshold;
            d["strong_threshold"] = rep.strong_threshold;
            return d;
        },
        "T"_a.noconvert(), "Q"_a.noconvert(), "j"_a, "n1"_a, "n2"_a, "strategy"_a = 0,
        "Swap the adjacent blocks at row j (sizes n1, n2) in place. strategy: 0 "
        "automatic, 1 Sylvester (+ refinement) only, 2 SVD basis only. Raises "
        "SwapRejected (a ValueError) if the swap fails the stability tests.");
}

// Read-only queries on a standardised T: block structure and sep.
void register_queries(py::module_& m) {
    m.def(
        "schur_blocks",
        [](const Eigen::Ref<const Eigen::MatrixXd>& T) {
            check_square(T.rows(), T.cols(), "T");
            const sc::Blocks b = sc::read_blocks(T);
            const auto nb = static_cast<py::ssize_t>(b.starts.size());
            py::array_t<std::int64_t> starts(nb), sizes(nb);
            py::array_t<std::complex<double>> ev(T.rows());
            auto s = starts.mutable_unchecked<1>();
            auto z = sizes.mutable_unchecked<1>();
            auto e = ev.mutable_unchecked<1>();
            for (py::ssize_t k = 0; k < nb; ++k) {
                s(k) = b.starts[static_cast<std::size_t>(k)];
                z(k) = b.sizes[static_cast<std::size_t>(k)];
                std::complex<double> pair[2];
                sc::block_eigenvalues(T, b.starts[static_cast<std::size_t>(k)],
                                      b.sizes[static_cast<std::size_t>(k)], pair);
                for (int i = 0; i < b.sizes[static_cast<std::size_t>(k)]; ++i)
                    e(s(k) + i) = pair[i];
            }
            return py::make_tuple(starts, sizes, ev);
        },
        "T"_a,
        "Block structure of a standardised quasi-triangular T: (starts, sizes, "
        "eigvals).");

    m.def(
        "schur_sep",
        [](const Eigen::Ref<const Eigen::MatrixXd>& T, Eigen::Index r, int iters,
           double tol) {
            check_square(T.rows(), T.cols(), "T");
            if (r < 0 || r > T.rows()) throw std::invalid_argument("r out of range");
            const py::gil_scoped_release release;
            return sc::sep_estimate(T, r, iters, tol);
        },
        "T"_a, "r"_a, "iters"_a = 30, "tol"_a = 1e-3,
        "Power-iteration estimate of sep_F(T[:r,:r], T[r:,r:]) (an upper bound that "
        "converges to it).");
}

}  // namespace

void register_schur(py::module_& m) {
    py::register_exception<sc::SwapRejected>(m, "SwapRejected", PyExc_ValueError);
    register_factorisations(m);
    register_reordering(m);
    register_queries(m);
}

}  // namespace rnnschur
