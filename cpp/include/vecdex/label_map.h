// User ids of the rows: row -> id in an array (saved, memory-mappable) and id -> row in a hash
// map rebuilt on load. Deleted rows keep their id in the array (an id may then appear there more
// than once: deleted, then added again) but are absent from the map.
#pragma once

#include <unordered_map>
#include <vector>

#include "vecdex/attributes/bitset.h"
#include "vecdex/common.h"
#include "vecdex/storage/aligned_array.h"

namespace vecdex {

class LabelMap {
 public:
  LabelMap() = default;
  // `deleted` (optional, one bit per row): rows left out of the id -> row map. Throws
  // FormatError when two live rows share an id.
  explicit LabelMap(AlignedArray<label_t> labels, const Bitset* deleted = nullptr);

  std::size_t size() const { return labels_.size(); }  // rows, deleted ones included
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
  // Rows of ids; InvalidArgument naming the first id that is absent (or, for distinct_rows_of,
  // given twice).
  std::vector<node_t> rows_of(const label_t* ids, std::size_t n) const;
  std::vector<node_t> distinct_rows_of(const label_t* ids, std::size_t n) const;
  // Drops a (present) id from the id -> row map; its row keeps the id in labels().
  void remove(label_t id) { rows_.erase(id); }
  std::size_t memory_bytes() const;

 private:
  AlignedArray<label_t> labels_;
  std::unordered_map<label_t, node_t> rows_;
  label_t next_default_ = 0;
};

class IndexFileReader;

// The DELR section of a file of `rows` rows (one bit per deleted row), checked; an empty set when
// the file has none.
Bitset read_deleted_rows(const IndexFileReader& r, std::size_t rows);

}  // namespace vecdex
