// User ids of the rows: row -> id in an array (saved, memory-mappable) and id -> row in a hash
// map rebuilt on load.
#pragma once

#include <unordered_map>

#include "vecdex/common.h"
#include "vecdex/storage/aligned_array.h"

namespace vecdex {

class LabelMap {
 public:
  LabelMap() = default;
  explicit LabelMap(AlignedArray<label_t> labels);  // throws FormatError on duplicates

  std::size_t size() const { return labels_.size(); }
  label_t label(node_t row) const { return labels_[row]; }
  const AlignedArray<label_t>& labels() const { return labels_; }
  bool contains(label_t id) const { return rows_.count(id) != 0; }
  // Row of an id, or false when absent.
  bool find(label_t id, node_t* row) const;
  // The id `add` assigns when none are given: one past the largest so far.
  label_t next_default() const { return next_default_; }

  // Throws InvalidArgument naming the first id that is out of range, repeated, or present.
  void check_new(const label_t* ids, std::size_t n) const;
  void append(const label_t* ids, std::size_t n);
  std::size_t memory_bytes() const;

 private:
  AlignedArray<label_t> labels_;
  std::unordered_map<label_t, node_t> rows_;
  label_t next_default_ = 0;
};

}  // namespace vecdex
