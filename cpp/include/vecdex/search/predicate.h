// Which rows a search may return. Filters (attributes, ranges, deletions) compile to one of
// these; the search loops ask it natively per candidate, never calling back into Python.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "vecdex/common.h"

namespace vecdex {

class RowPredicate {
 public:
  virtual ~RowPredicate() = default;
  virtual bool accepts(node_t row) const = 0;
};

// The simplest predicate: a bitset over rows.
class BitsetPredicate final : public RowPredicate {
 public:
  explicit BitsetPredicate(std::size_t rows) : words_((rows + 63) / 64, 0) {}
  void set(node_t row) { words_[row >> 6] |= std::uint64_t(1) << (row & 63); }
  bool accepts(node_t row) const override {
    const std::size_t w = row >> 6;
    return w < words_.size() && ((words_[w] >> (row & 63)) & 1);
  }

 private:
  std::vector<std::uint64_t> words_;
};

}  // namespace vecdex
