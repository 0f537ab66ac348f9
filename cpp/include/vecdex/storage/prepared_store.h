// The shape shared by quantised stores that measure from a prepared query: a query is turned
// into a per-search form once (Derived::prepare), each row is scored against it
// (Derived::score), and a pair distance decodes the first row and measures it as a query.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "vecdex/storage/code_store.h"

namespace vecdex {

// Whether Store can bound its estimates from a prepared query (Store::estimate_prepared).
template <class Store, class = void>
struct HasEstimatePrepared : std::false_type {};
template <class Store>
struct HasEstimatePrepared<Store, std::void_t<decltype(std::declval<const Store&>().estimate_prepared(
                                      std::declval<const typename Store::Prepared&>(), nullptr, std::size_t(0),
                                      nullptr, nullptr, 0.0))>> : std::true_type {};

// Distances from a prepared query to stored rows. Prefetches a whole neighbour list first
// (Store::prefetch), as the float kernels do, since graph walks are bound by memory latency.
template <class Store>
class CodeQueryDistance final : public QueryDistance {
 public:
  using Prepared = typename Store::Prepared;
  CodeQueryDistance(const Store& store, Prepared prepared) : store_(store), p_(std::move(prepared)) {}
  float distance(node_t id) override { return store_.score(p_, id); }
  void distances(const node_t* ids, std::size_t n, float* out) override {
    for (std::size_t i = 0; i < n; ++i) store_.prefetch(ids[i]);
    for (std::size_t i = 0; i < n; ++i) out[i] = store_.score(p_, ids[i]);
  }
  void distances_range(node_t first, std::size_t n, float* out) override {
    for (std::size_t i = 0; i < n; ++i) out[i] = store_.score(p_, first + static_cast<node_t>(i));
  }
  bool estimate_with_bounds(const node_t* ids, std::size_t n, double eps0, float* dist, float* bound) override {
    if constexpr (HasEstimatePrepared<Store>::value) {
      store_.estimate_prepared(p_, ids, n, dist, bound, eps0);
      return true;
    } else {
      (void)ids, (void)n, (void)eps0, (void)dist, (void)bound;
      return false;
    }
  }

 private:
  const Store& store_;
  Prepared p_;
};

// Base of such a store; `Base` is CodeStore or an interface derived from it.
template <class Derived, class Base = CodeStore>
class PreparedQueryStore : public Base {
 public:
  std::unique_ptr<QueryDistance> query_distance(const float* query) const override {
    return std::make_unique<CodeQueryDistance<Derived>>(self(), self().prepare(query));
  }
  float pair_distance(node_t a, node_t b) const override {
    float d;
    pair_distances(a, &b, 1, &d);
    return d;
  }
  void pair_distances(node_t a, const node_t* b, std::size_t n, float* out) const override {
    thread_local std::vector<float> row;
    row.resize(self().dim());
    self().decode(a, row.data());
    const typename Derived::Prepared p = self().prepare(row.data());
    for (std::size_t i = 0; i < n; ++i) out[i] = self().score(p, b[i]);
  }

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }
};

}  // namespace vecdex
