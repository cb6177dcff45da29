// Turning a block of document body into a block record and back: zstd
// compression (stored raw when it does not help), the XXH3-64 of the raw
// bytes, and full verification on the way back. Pure: no I/O, no locking;
// thread-safe (zstd contexts are per thread).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "chunkserver/doc_types.h"
#include "common/status.h"

namespace cairn::chunkserver {

// Builds the framed (not yet sealed, see SealRecord) block record for `raw`
// and fills every field of `*ref` except `offset`. `raw` is 1..kMaxBlockBytes
// bytes; `zstd_level` is 1..19.
std::vector<std::byte> EncodeBlockRecord(std::span<const std::byte> raw, int zstd_level,
                                         BlockRef* ref);

// Verifies, without decompressing, that `record` (the whole record as read at
// ref.offset) is the block `ref` describes: compaction copies such records
// with their payload unchanged. Corruption on any mismatch.
Status VerifyBlockRecord(std::span<const std::byte> record, const BlockRef& ref);

// Verifies a whole block record read at ref.offset (header, payload checksum,
// that it is the block `ref` describes), decompresses it and checks the raw
// hash. Corruption on any mismatch.
Result<std::vector<std::byte>> DecodeBlockRecord(std::span<const std::byte> record,
                                                 const BlockRef& ref);
// The same into `raw`, which must be ref.raw_len bytes.
Status DecodeBlockRecordInto(std::span<const std::byte> record, const BlockRef& ref,
                             std::span<std::byte> raw);

}  // namespace cairn::chunkserver
