// Shared vocabulary of the core: id types, metrics, and the errors the bindings translate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace vecdex {

// A user-visible id. Kept below 2^63 so it round-trips through int64 results, where -1 means "no result".
using label_t = std::uint64_t;
// A dense internal row number; 32 bits halve the size of the graph's links.
using node_t = std::uint32_t;

constexpr label_t kMaxLabel = (label_t(1) << 63) - 1;
constexpr node_t kMaxNodes = 0xFFFFFFF0u;

enum class Metric : std::uint32_t { L2 = 0, InnerProduct = 1, Cosine = 2 };

const char* metric_name(Metric m);
Metric metric_from_name(const std::string& name);  // throws InvalidArgument

// Bad arguments from the caller: mapped to Python's ValueError.
struct InvalidArgument : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
// A file that is not a vecdex index, truncated, or failing a checksum: mapped to ValueError.
struct FormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The operating system refused a file operation: mapped to OSError.
struct IoError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace vecdex
