#include "vecdex/label_map.h"

#include <algorithm>
#include <unordered_set>

#include "vecdex/io/file_format.h"

namespace vecdex {

LabelMap::LabelMap(AlignedArray<label_t> labels, const Bitset* deleted) : labels_(std::move(labels)) {
  rows_.reserve(labels_.size());
  for (std::size_t i = 0; i < labels_.size(); ++i) {
    const label_t id = labels_[i];
    if (id > kMaxLabel) throw FormatError("corrupt index file: invalid or repeated id " + std::to_string(id));
    // Default ids continue after every id ever stored, deleted ones included, as they did
    // before the index was saved.
    if (id + 1 > next_default_) next_default_ = id + 1;
    if (deleted && deleted->test(i)) continue;
    if (!rows_.emplace(id, static_cast<node_t>(i)).second)
      throw FormatError("corrupt index file: invalid or repeated id " + std::to_string(id));
  }
}

std::vector<node_t> LabelMap::rows_of(const label_t* ids, std::size_t n) const {
  std::vector<node_t> rows(n);
  for (std::size_t i = 0; i < n; ++i)
    if (!find(ids[i], &rows[i])) throw InvalidArgument("id " + std::to_string(ids[i]) + " is not in the index");
  return rows;
}

std::vector<node_t> LabelMap::distinct_rows_of(const label_t* ids, std::size_t n) const {
  std::vector<node_t> rows = rows_of(ids, n);
  Bitset seen(labels_.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (seen.test(rows[i])) throw InvalidArgument("id " + std::to_string(ids[i]) + " is given twice");
    seen.set(rows[i]);
  }
  return rows;
}

Bitset read_deleted_rows(const IndexFileReader& r, std::size_t rows) {
  if (!r.has(section::kDeleted)) return Bitset();
  // Copied (it is small and changes with the next delete): one bit per row, none past the last.
  const std::size_t words = (rows + 63) / 64;
  const AlignedArray<std::uint64_t> a = r.array<std::uint64_t>(section::kDeleted, words, false);
  if (rows % 64 && (a[words - 1] >> (rows % 64)) != 0)
    throw FormatError("corrupt index file: section DELR marks rows past the last row");
  Bitset deleted(rows);
  std::copy(a.data(), a.data() + words, deleted.mutable_words());
  return deleted;
}

bool LabelMap::find(label_t id, node_t* row) const {
  auto it = rows_.find(id);
  if (it == rows_.end()) return false;
  *row = it->second;
  return true;
}

void LabelMap::check_new(const label_t* ids, std::size_t n) const {
  std::unordered_set<label_t> seen;
  seen.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (ids[i] > kMaxLabel)
      throw InvalidArgument("id " + std::to_string(ids[i]) + " is out of range: ids must be in [0, 2**63 - 1]");
    if (!seen.insert(ids[i]).second)
      throw InvalidArgument("duplicate id " + std::to_string(ids[i]) + " within one add() call");
    if (rows_.count(ids[i])) throw InvalidArgument("id " + std::to_string(ids[i]) + " is already in the index");
  }
}

void LabelMap::append(const label_t* ids, std::size_t n) {
  const std::size_t first = labels_.size();
  labels_.append(ids, n);
  rows_.reserve(first + n);
  for (std::size_t i = 0; i < n; ++i) {
    rows_.emplace(ids[i], static_cast<node_t>(first + i));
    if (ids[i] + 1 > next_default_) next_default_ = ids[i] + 1;
  }
}

std::size_t LabelMap::memory_bytes() const {
  // Buckets plus one heap node (key, value, next pointer, cached hash) per id.
  return labels_.bytes() + rows_.bucket_count() * sizeof(void*) + rows_.size() * 32;
}

}  // namespace vecdex
