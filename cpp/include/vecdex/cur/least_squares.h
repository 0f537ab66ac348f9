// Small dense least-squares solves for CUR-based search: a query's coefficients over the anchor
// queries, fitted to the cross-encoder scores of the items scored so far. The systems are tiny
// (at most a few hundred rows and columns), so they are solved exactly, in double precision,
// through a symmetric eigendecomposition of the smaller Gram matrix, which gives both the
// truncated pseudo-inverse (minimum-norm solution) and ridge regression from one factorisation.
#pragma once

#include <cstddef>
#include <vector>

namespace vecdex {
namespace cur {

enum class Solver { PseudoInverse, Ridge };

struct SolveOptions {
  Solver solver = Solver::PseudoInverse;
  // PseudoInverse: singular values at most rcond * the largest are treated as zero (as
  // numpy.linalg.pinv's rcond).
  double rcond = 1e-6;
  // Ridge: the penalty is ridge * trace(A^T A) / k, so it does not depend on the scale of A.
  double ridge = 1e-3;
};

// Eigendecomposition of a symmetric n x n matrix (row-major; only its lower triangle is read):
// Householder reduction to tridiagonal form, then implicit QR steps with Wilkinson shifts.
// On return `values` holds the eigenvalues in ascending order and `a` the matching unit
// eigenvectors as its columns. Throws std::runtime_error if the iteration does not converge
// (which needs non-finite input).
void symmetric_eigen(std::vector<double>& a, std::size_t n, std::vector<double>& values);

// w (k values) minimising |A w - b|^2 (PseudoInverse: the minimum-norm minimiser; Ridge: plus the
// penalty). A is m x k row-major float, b has m values. m == 0 gives w = 0.
std::vector<double> solve_least_squares(const float* a, std::size_t m, std::size_t k, const float* b,
                                        const SolveOptions& options);

}  // namespace cur
}  // namespace vecdex
