#include "vecdex/cur/least_squares.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "vecdex/common.h"

namespace vecdex {
namespace cur {
namespace {

// Orthogonally reduces the symmetric matrix t (n x n, full storage) to tridiagonal form by
// Householder reflections, accumulating them into q so that the input equals q * t * q^T.
void tridiagonalize(std::vector<double>& t, std::vector<double>& q, std::size_t n) {
  std::vector<double> v(n), w(n);
  for (std::size_t k = 0; k + 2 < n; ++k) {
    double norm2 = 0;
    for (std::size_t i = k + 1; i < n; ++i) norm2 += t[i * n + k] * t[i * n + k];
    if (norm2 == 0) continue;
    const double x0 = t[(k + 1) * n + k];
    // The sign opposite to x0 avoids cancellation in v = x - alpha * e1.
    const double alpha = x0 > 0 ? -std::sqrt(norm2) : std::sqrt(norm2);
    double vnorm2 = 0;
    for (std::size_t i = k + 1; i < n; ++i) {
      v[i] = t[i * n + k] - (i == k + 1 ? alpha : 0.0);
      vnorm2 += v[i] * v[i];
    }
    const double inv = 1.0 / std::sqrt(vnorm2);
    for (std::size_t i = k + 1; i < n; ++i) v[i] *= inv;
    // H T H with H = I - 2 v v^T is T - 2 (v w^T + w v^T), w = T v - (v^T T v) v.
    double vtv = 0;
    for (std::size_t i = k + 1; i < n; ++i) {
      double p = 0;
      for (std::size_t j = k + 1; j < n; ++j) p += t[i * n + j] * v[j];
      w[i] = p;
      vtv += v[i] * p;
    }
    for (std::size_t i = k + 1; i < n; ++i) w[i] -= vtv * v[i];
    for (std::size_t i = k + 1; i < n; ++i)
      for (std::size_t j = k + 1; j < n; ++j) t[i * n + j] -= 2 * (v[i] * w[j] + w[i] * v[j]);
    t[(k + 1) * n + k] = t[k * n + k + 1] = alpha;
    for (std::size_t i = k + 2; i < n; ++i) t[i * n + k] = t[k * n + i] = 0;
    for (std::size_t r = 0; r < n; ++r) {
      double s = 0;
      for (std::size_t j = k + 1; j < n; ++j) s += q[r * n + j] * v[j];
      for (std::size_t j = k + 1; j < n; ++j) q[r * n + j] -= 2 * s * v[j];
    }
  }
}

// t <- M t M^T and q <- q M^T for the rotation M = [[c, -s], [s, c]] in the (p, p+1) plane. t is
// tridiagonal apart from one bulge next to the plane, so only indices lo..hi within one of it
// can change.
void rotate(std::vector<double>& t, std::vector<double>& q, std::size_t n, std::size_t p, double c, double s,
            std::size_t lo, std::size_t hi) {
  const std::size_t qq = p + 1;
  const std::size_t first = p > lo ? p - 1 : lo, last = std::min(hi, qq + 1);
  for (std::size_t j = first; j <= last; ++j) {
    const double a = t[p * n + j], b = t[qq * n + j];
    t[p * n + j] = c * a - s * b;
    t[qq * n + j] = s * a + c * b;
  }
  for (std::size_t i = first; i <= last; ++i) {
    const double a = t[i * n + p], b = t[i * n + qq];
    t[i * n + p] = c * a - s * b;
    t[i * n + qq] = s * a + c * b;
  }
  for (std::size_t r = 0; r < n; ++r) {
    const double a = q[r * n + p], b = q[r * n + qq];
    q[r * n + p] = c * a - s * b;
    q[r * n + qq] = s * a + c * b;
  }
}

}  // namespace

void symmetric_eigen(std::vector<double>& a, std::size_t n, std::vector<double>& values) {
  values.assign(n, 0.0);
  if (n == 0) return;
  std::vector<double> t(n * n), q(n * n, 0.0);
  // Scaled to a largest entry of 1, so that squares neither overflow nor underflow.
  double amax = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j <= i; ++j) {
      if (!std::isfinite(a[i * n + j])) throw InvalidArgument("symmetric_eigen: the matrix holds NaN or infinity");
      amax = std::max(amax, std::fabs(a[i * n + j]));
    }
  const double unscale = amax > 0 ? amax : 1.0;
  double norm2 = 0;
  for (std::size_t i = 0; i < n; ++i) {
    q[i * n + i] = 1;
    for (std::size_t j = 0; j <= i; ++j) {
      const double x = a[i * n + j] / unscale;
      t[i * n + j] = t[j * n + i] = x;
      norm2 += (i == j ? 1 : 2) * x * x;
    }
  }
  tridiagonalize(t, q, n);

  const double eps = std::numeric_limits<double>::epsilon();
  const double floor = eps * 1e-3 * std::sqrt(norm2);
  auto at = [&](std::size_t i, std::size_t j) -> double& { return t[i * n + j]; };
  std::size_t hi = n - 1, steps = 0;
  const std::size_t max_steps = 64 * n + 64;
  while (hi > 0) {
    for (std::size_t i = 0; i < hi; ++i) {
      const double e = std::fabs(at(i + 1, i));
      if (e <= eps * (std::fabs(at(i, i)) + std::fabs(at(i + 1, i + 1))) || e <= floor) at(i + 1, i) = at(i, i + 1) = 0;
    }
    while (hi > 0 && at(hi, hi - 1) == 0) --hi;
    if (hi == 0) break;
    std::size_t lo = hi - 1;
    while (lo > 0 && at(lo, lo - 1) != 0) --lo;
    if (++steps > max_steps) throw std::runtime_error("symmetric_eigen: no convergence");
    // Wilkinson shift: the eigenvalue of the trailing 2 x 2 block nearer its last diagonal entry.
    const double b = at(hi, hi - 1), d = at(hi, hi);
    const double delta = (at(hi - 1, hi - 1) - d) / 2;
    const double mu = d - b * b / (delta + std::copysign(std::hypot(delta, b), delta));
    double x = at(lo, lo) - mu, z = at(lo + 1, lo);
    for (std::size_t k = lo; k < hi; ++k) {
      const double r = std::hypot(x, z);
      const double c = r == 0 ? 1.0 : x / r, s = r == 0 ? 0.0 : -z / r;
      rotate(t, q, n, k, c, s, lo, hi);
      if (k + 1 < hi) {
        x = at(k + 1, k);
        z = at(k + 2, k);
      }
    }
  }

  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t(0));
  std::sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return at(i, i) < at(j, j); });
  for (std::size_t j = 0; j < n; ++j) {
    values[j] = at(order[j], order[j]) * unscale;
    for (std::size_t r = 0; r < n; ++r) a[r * n + j] = q[r * n + order[j]];
  }
}

std::vector<double> solve_least_squares(const float* a, std::size_t m, std::size_t k, const float* b,
                                        const SolveOptions& options) {
  std::vector<double> w(k, 0.0);
  if (m == 0 || k == 0) return w;
  if (options.solver == Solver::PseudoInverse && !(options.rcond >= 0 && options.rcond < 1))
    throw InvalidArgument("rcond must be in [0, 1)");
  if (options.solver == Solver::Ridge && !(options.ridge > 0 && std::isfinite(options.ridge)))
    throw InvalidArgument("ridge must be a positive finite number");
  for (std::size_t i = 0; i < m * k; ++i)
    if (!std::isfinite(a[i])) throw InvalidArgument("least squares: the matrix holds NaN or infinity");
  for (std::size_t i = 0; i < m; ++i)
    if (!std::isfinite(b[i])) throw InvalidArgument("least squares: a score is NaN or infinite");

  // Factor the smaller Gram matrix: A^T A (k x k) when m >= k, else A A^T (m x m) and
  // w = A^T (A A^T)^+ b. Both give the minimum-norm solution; ridge is identical either way since
  // A^T (A A^T + l I)^-1 = (A^T A + l I)^-1 A^T.
  const bool primal = m >= k;
  const std::size_t s = primal ? k : m;
  std::vector<double> g(s * s, 0.0), rhs(s, 0.0);
  if (primal) {
    for (std::size_t r = 0; r < m; ++r) {
      const float* row = a + r * k;
      for (std::size_t i = 0; i < k; ++i) {
        const double ai = row[i];
        rhs[i] += ai * b[r];
        double* gi = g.data() + i * k;
        for (std::size_t j = 0; j <= i; ++j) gi[j] += ai * row[j];
      }
    }
  } else {
    for (std::size_t i = 0; i < m; ++i) {
      rhs[i] = b[i];
      for (std::size_t j = 0; j <= i; ++j) {
        double dot = 0;
        for (std::size_t c = 0; c < k; ++c) dot += double(a[i * k + c]) * a[j * k + c];
        g[i * m + j] = dot;
      }
    }
  }
  double trace = 0;
  for (std::size_t i = 0; i < s; ++i) trace += g[i * s + i];
  if (trace == 0) return w;

  std::vector<double> values;
  symmetric_eigen(g, s, values);
  const double largest = values.back();
  const double cutoff = options.rcond * options.rcond * largest;
  const double penalty = options.ridge * trace / double(k);
  std::vector<double> y(s, 0.0);
  for (std::size_t j = 0; j < s; ++j) {
    double weight;
    if (options.solver == Solver::PseudoInverse) {
      if (!(values[j] > cutoff) || values[j] <= 0) continue;
      weight = 1.0 / values[j];
    } else {
      weight = 1.0 / (std::max(values[j], 0.0) + penalty);
    }
    double proj = 0;
    for (std::size_t i = 0; i < s; ++i) proj += g[i * s + j] * rhs[i];
    proj *= weight;
    for (std::size_t i = 0; i < s; ++i) y[i] += proj * g[i * s + j];
  }
  if (primal) return y;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t c = 0; c < k; ++c) w[c] += y[i] * a[i * k + c];
  return w;
}

}  // namespace cur
}  // namespace vecdex
