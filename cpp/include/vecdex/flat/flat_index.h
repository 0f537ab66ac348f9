// Exact search: every row scored, blocked so a tile of rows stays in cache while a group of
// queries is scored against it. The ground truth for tests and the exact-scan path of filtered
// search.
#pragma once

#include <memory>

#include "vecdex/index_base.h"

namespace vecdex {

class FlatIndex final : public IndexBase {
 public:
  FlatIndex(std::size_t dim, Metric metric, Quantization quantization = Quantization::None,
            bool keep_full_vectors = true, const QuantizerParams& quantizer = QuantizerParams())
      : IndexBase(dim, metric, quantization, keep_full_vectors, quantizer) {}
  IndexKind kind() const override { return IndexKind::Flat; }
  static std::unique_ptr<FlatIndex> load(const IndexFileReader& r, bool view);


 protected:
  void index_new_rows(node_t, std::size_t, const float*, int) override {}
  void search_filtered(const float* queries, std::size_t nq, std::size_t k, const SearchParams& params,
                       std::int64_t* ids, float* distances) const;
  void search_prepared(const float* queries, std::size_t nq, std::size_t k, const SearchParams& params,
                       std::int64_t* ids, float* distances) const override;
  void write_params(Params&) const override {}
  void write_sections(IndexFileWriter&) const override {}  // ids and rows are all it has
};

}  // namespace vecdex
