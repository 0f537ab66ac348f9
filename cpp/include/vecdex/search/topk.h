// Small heaps for the k best (smallest-distance) results.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <vector>

#include "vecdex/common.h"

namespace vecdex {

struct Neighbor {
  float distance;
  node_t id;
  bool operator<(const Neighbor& o) const { return distance < o.distance; }
  bool operator>(const Neighbor& o) const { return distance > o.distance; }
};

// Keeps the k smallest distances seen; worst() is the admission threshold once full.
class TopK {
 public:
  explicit TopK(std::size_t k) : k_(k) { heap_.reserve(k); }

  bool full() const { return heap_.size() >= k_; }
  float worst() const { return full() ? heap_.front().distance : std::numeric_limits<float>::infinity(); }
  std::size_t size() const { return heap_.size(); }

  void push(float d, node_t id) {
    if (heap_.size() < k_) {
      heap_.push_back({d, id});
      std::push_heap(heap_.begin(), heap_.end());
    } else if (d < heap_.front().distance) {
      std::pop_heap(heap_.begin(), heap_.end());
      heap_.back() = {d, id};
      std::push_heap(heap_.begin(), heap_.end());
    }
  }

  // Best first; ties broken by id so results are deterministic.
  std::vector<Neighbor> sorted() const {
    std::vector<Neighbor> out(heap_);
    std::sort(out.begin(), out.end(), [](const Neighbor& a, const Neighbor& b) {
      return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
    });
    return out;
  }

 private:
  std::size_t k_;
  std::vector<Neighbor> heap_;  // max-heap on distance
};

}  // namespace vecdex
