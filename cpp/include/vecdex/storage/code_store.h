// A VectorStore the indexes own and persist: full-precision rows or one of the quantised codes.
// Traversal and exact scans only ever see the VectorStore interface; this adds what the owning
// index needs around it: training, appending, decoding, and reading/writing file sections.
#pragma once

#include <memory>
#include <string>

#include "vecdex/io/file_format.h"
#include "vecdex/storage/aligned_array.h"
#include "vecdex/storage/vector_store.h"

namespace vecdex {

enum class Quantization : std::uint32_t {
  None = 0,   // float32 rows
  FP16 = 1,   // IEEE half precision
  BF16 = 2,   // bfloat16
  SQ8 = 3,    // 8 bits per dimension, per-dimension trained range
  SQ8U = 4,   // 8 bits per dimension, one trained range; integer dot products
  SQ4 = 5,    // 4 bits per dimension, per-dimension trained range
  PQ = 6,     // product quantisation (storage/pq_store.h)
  // RaBitQ (1 bit per rotated dimension) and extended RaBitQ (2..8 bits): value = 6 + bits
  // (storage/rabitq_store.h).
  RaBitQ1 = 7,
  RaBitQ2 = 8,
  RaBitQ3 = 9,
  RaBitQ4 = 10,
  RaBitQ5 = 11,
  RaBitQ6 = 12,
  RaBitQ7 = 13,
  RaBitQ8 = 14,
};

const char* quantization_name(Quantization q);
Quantization quantization_from_name(const std::string& name);  // throws InvalidArgument

class CodeStore : public VectorStore {
 public:
  virtual Quantization quantization() const = 0;
  // Codes with a trained range need a sample first; the others are always ready.
  virtual bool trained() const = 0;
  virtual void train(const float* rows, std::size_t n) = 0;
  virtual void reserve(std::size_t n) = 0;
  // Encodes and appends rows already in the stored space (normalised, for cosine).
  virtual void append(const float* rows, std::size_t n) = 0;
  // The row as float32: the stored values themselves, or their decoding.
  virtual void decode(node_t i, float* out) const = 0;
  // Row i as float32 for use as a query: a pointer into the store when rows are float32,
  // otherwise decoded into `scratch` (dim floats).
  virtual const float* row_as_float(node_t i, float* scratch) const {
    decode(i, scratch);
    return scratch;
  }
  virtual bool is_view() const = 0;
  virtual void write(IndexFileWriter& w) const = 0;
  // Replaces the contents by `count` rows read from the file.
  virtual void read(const IndexFileReader& r, std::size_t count, bool view) = 0;
  // Distances from row a to rows b[0..n): what graph construction prunes with. Stores that must
  // decode and prepare row a first override this to do so once for the whole batch.
  virtual void pair_distances(node_t a, const node_t* b, std::size_t n, float* out) const {
    for (std::size_t i = 0; i < n; ++i) out[i] = pair_distance(a, b[i]);
  }
  // Bytes one row occupies in this store.
  virtual std::size_t bytes_per_row() const = 0;
};

// Settings of the quantisers that take any; a loaded index reads its own from the file.
struct QuantizerParams {
  std::size_t pq_subquantizers = 0;  // 0: the default for the dimension and bits
  int pq_bits = 4;                   // 4 (fast-scan) or 8
  std::size_t rabitq_centroids = 0;  // 0: the store's choice (see rabitq_store.h)
};

std::unique_ptr<CodeStore> make_code_store(Quantization q, std::size_t dim, Metric metric,
                                           const QuantizerParams& params = QuantizerParams());

}  // namespace vecdex
