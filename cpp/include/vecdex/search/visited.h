// Visited marks for graph walks: an epoch per row, so clearing between queries is one increment,
// and a pool so concurrent searches never share or reallocate one.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "vecdex/common.h"

namespace vecdex {

class VisitedSet {
 public:
  void prepare(std::size_t rows) {
    if (marks_.size() < rows) marks_.resize(rows, 0);
    if (++epoch_ == 0) {  // wrapped: old marks could alias the new epoch
      std::fill(marks_.begin(), marks_.end(), 0);
      epoch_ = 1;
    }
  }
  bool visited(node_t i) const { return marks_[i] == epoch_; }
  void mark(node_t i) { marks_[i] = epoch_; }
  // True when `i` was not yet visited; marks it.
  bool first_visit(node_t i) {
    if (marks_[i] == epoch_) return false;
    marks_[i] = epoch_;
    return true;
  }
  const void* address_of(node_t i) const { return marks_.data() + i; }

 private:
  std::vector<std::uint16_t> marks_;
  std::uint16_t epoch_ = 0;
};

class VisitedPool {
 public:
  class Lease {
   public:
    Lease(VisitedPool& pool, std::unique_ptr<VisitedSet> set) : pool_(pool), set_(std::move(set)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { pool_.give_back(std::move(set_)); }
    VisitedSet& operator*() { return *set_; }
    VisitedSet* operator->() { return set_.get(); }

   private:
    VisitedPool& pool_;
    std::unique_ptr<VisitedSet> set_;
  };

  Lease acquire(std::size_t rows) {
    std::unique_ptr<VisitedSet> set;
    {
      std::lock_guard<std::mutex> g(mu_);
      if (!free_.empty()) {
        set = std::move(free_.back());
        free_.pop_back();
      }
    }
    if (!set) set = std::make_unique<VisitedSet>();
    set->prepare(rows);
    return Lease(*this, std::move(set));
  }

  std::size_t memory_bytes() const {
    std::lock_guard<std::mutex> g(mu_);
    return free_.size() * sizeof(VisitedSet);
  }

 private:
  void give_back(std::unique_ptr<VisitedSet> set) {
    std::lock_guard<std::mutex> g(mu_);
    free_.push_back(std::move(set));
  }
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<VisitedSet>> free_;
};

}  // namespace vecdex
