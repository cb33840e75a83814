// Ordered real Schur form: standardisation of 2x2 blocks, adjacent block swaps
// (Bai & Demmel direct swapping with stability tests and fallbacks), reordering by
// non-increasing eigenvalue modulus, and a sep(T11, T22) estimate.
//
// Pure C++/Eigen (no pybind11). All matrices are column-major Eigen::MatrixXd and are
// modified in place through Eigen::Ref, so that LAPACK-produced (Fortran-ordered) T and
// Q arrays can be reordered without a copy.
#pragma once

#include <Eigen/Core>
#include <complex>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

// Hot loops are compiled twice, for x86-64-v3 (AVX2, FMA, ...) and for baseline
// x86-64, and the variant is chosen at load time (function multiversioning), so
// that wheels stay portable. The clone is named by feature level ("arch=x86-64-v3",
// GCC >= 12), not by CPU model: GCC dispatches an "arch=<model>" clone only on that
// exact model. Older compilers get an "avx2" clone (no FMA). Define
// RNNSCHUR_NO_CLONES to disable.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    __GNUC__ >= 12 && !defined(RNNSCHUR_NO_CLONES)
#define RNNSCHUR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#elif defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(RNNSCHUR_NO_CLONES)
#define RNNSCHUR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define RNNSCHUR_CLONES
#endif

namespace rnnschur::schur {

using Index = Eigen::Index;
using MatRef = Eigen::Ref<Eigen::MatrixXd>;
using ConstMatRef = Eigen::Ref<const Eigen::MatrixXd>;

// Raised when two adjacent blocks cannot be swapped stably by any of the methods
// tried. T and Q are left as they were before the failed swap (still a valid, if
// partially ordered, Schur factorisation), but callers treat it as an error.
class SwapRejected : public std::runtime_error {
   public:
    using std::runtime_error::runtime_error;
};

// Plane rotation [c s; -s c] acting on a pair of rows (from the left) or, as
// [c -s; s c], on a pair of columns (from the right).
struct Rotation {
    double c = 1.0;
    double s = 0.0;
};

// Standardise the 2x2 matrix [a b; c d] in place by an orthogonal similarity
// [a b; c d] <- R [a b; c d] R^T with R = [cs sn; -sn cs]:
//   * complex eigenvalues: a == d and b*c < 0 on return;
//   * real eigenvalues: c == 0 on return (upper triangular), i.e. the block splits.
// Returns the rotation (c = cs, s = sn).
Rotation standardize_2x2(double& a, double& b, double& c, double& d);

// Make T quasi-upper-triangular in the strict sense (entries below the first
// subdiagonal set to zero; they must already be negligible) and standardise every
// 2x2 diagonal block, splitting those with real eigenvalues. Q is updated so that
// Q T Q^T is unchanged. Throws std::invalid_argument if T has two consecutive
// nonzero subdiagonal entries (not a real Schur form).
void standardize(MatRef T, MatRef Q);

// Diagonal block structure of a standardised quasi-triangular T.
struct Blocks {
    std::vector<Index> starts;
    std::vector<int> sizes;
};
Blocks read_blocks(const ConstMatRef& T);

// Eigenvalues of the standardised block at `start` (size 1 or 2); for a 2x2 block
// the pair (re + i|im|, re - i|im|).
void block_eigenvalues(const ConstMatRef& T, Index start, int size,
                       std::complex<double>* out);
double block_modulus(const ConstMatRef& T, Index start, int size);

// How an accepted swap was computed.
enum class SwapMethod : int {
    givens = 0,
    sylvester = 1,
    refined = 2,
    extended = 3,
    svd = 4
};

struct SwapReport {
    SwapMethod method = SwapMethod::givens;
    double weak_residual = 0.0;    // max |subdiagonal block| after the swap
    double strong_residual = 0.0;  // ||D - V Dz V^T||_F of the swapped diagonal block
    double weak_threshold = 0.0;
    double strong_threshold = 0.0;
};

// Which methods swap_adjacent may use (tests force the fallbacks with these):
// automatic tries Sylvester (double, refined, extended) then the SVD bases.
enum class SwapStrategy : int { automatic = 0, sylvester_only = 1, svd_only = 2 };

// Swap the adjacent diagonal blocks T[j:j+n1, j:j+n1] and T[j+n1:j+n1+n2, ...]
// (n1, n2 in {1, 2}) by an orthogonal similarity, accumulating it into Q, and
// re-standardise the moved 2x2 blocks (which may split into 1x1 blocks; callers
// must re-read block sizes). Throws SwapRejected if no method passes both the weak
// and the strong stability test; T and Q are then unchanged.
SwapReport swap_adjacent(MatRef T, MatRef Q, Index j, int n1, int n2,
                         SwapStrategy strategy = SwapStrategy::automatic);

struct ReorderStats {
    std::int64_t swaps = 0;     // adjacent swaps performed
    std::int64_t refined = 0;   // ...of which needed iterative refinement
    std::int64_t extended = 0;  // ...of which needed the extended-precision solve
    std::int64_t svd = 0;       // ...of which needed the SVD-based fallback
    std::int64_t clusters = 0;  // number of modulus clusters
    double max_weak = 0.0;      // largest weak residual / threshold over all swaps
    double max_strong = 0.0;    // largest strong residual / threshold over all swaps
    double atol = 0.0;          // absolute tie tolerance used
    std::vector<int>
        clusters_of_blocks;  // cluster (0 = largest moduli) of each final block
};

// Standardise T (see standardize) and reorder its diagonal blocks by non-increasing
// modulus. Moduli are grouped into clusters: sorted decreasingly, a new cluster
// starts where the gap to the previous modulus exceeds rtol * previous + atol.
// Blocks are then stably sorted by cluster (largest moduli first); blocks of one
// cluster keep their relative order, so no pointless swaps are made. A 2x2 block
// that splits during the sort gives both halves its cluster. atol < 0 means the
// default n * eps * ||T||_F (the value used is returned in ReorderStats::atol).
// Throws SwapRejected.
ReorderStats reorder_by_modulus(MatRef T, MatRef Q, double rtol, double atol,
                                SwapStrategy strategy = SwapStrategy::automatic);

// Unordered real Schur factorisation W = Q T Q^T by Eigen's RealSchur (T not yet
// standardised). W is n x n.
void real_schur_eigen(const ConstMatRef& W, Eigen::MatrixXd& T, Eigen::MatrixXd& Q);

// Unordered real Schur factorisation by the project's own Householder Hessenberg
// reduction and QR iteration (Francis double-shift below order 75, small-bulge
// multishift with aggressive early deflation from there); 2x2 blocks
// standardised. With threads >= 2 (from order 128 on) a second thread forms Q and
// takes the iteration's updates of Q and of T outside its active block while
// this one iterates on the block; the result is the same bit for bit. Throws
// std::runtime_error if the iteration does not converge.
void real_schur_own(const ConstMatRef& W, Eigen::MatrixXd& T, Eigen::MatrixXd& Q,
                    int threads = 1);

// Estimate of sep_F(T11, T22) = sigma_min(I kron T11 - T22^T kron I), where
// T11 = T[:r, :r] and T22 = T[r:, r:] of a standardised quasi-triangular T and r is a
// block boundary. Power iteration on the inverse Sylvester operator (solved by
// Bartels-Stewart on the quasi-triangular blocks) with `iters` at most. The result
// is an upper bound on sep_F that converges to it. Returns +inf if r == 0 or r == n.
double sep_estimate(const ConstMatRef& T, Index r, int iters = 30, double tol = 1e-3);

}  // namespace rnnschur::schur
