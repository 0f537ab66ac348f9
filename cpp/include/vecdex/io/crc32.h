// CRC-32 (IEEE 802.3, as zlib computes it) for section checksums.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vecdex {

// Continue a CRC over more bytes: crc32(crc32(0, a), b) == crc32 of a followed by b.
std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t bytes);
inline std::uint32_t crc32(const void* data, std::size_t bytes) { return crc32_update(0, data, bytes); }

}  // namespace vecdex
