// Encoding and verification of unit headers (volume_format.h, unit_field).
// Pure functions, thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "raidlib/stripe_geometry.h"

namespace cairn::raidlib {

using VolumeUuid = std::array<std::byte, 16>;

struct UnitHeader {
  StripeGeometry geometry;
  DiskIndex this_disk;
  std::vector<uint64_t> chunk_checksums;  // one per kChunkSize payload chunk
};

// Checksum of payload chunk `index` of a unit; the seed binds it to its place
// so that a chunk copied from elsewhere does not verify.
uint64_t ChunkChecksum(std::span<const std::byte> chunk, uint32_t index);

// Builds the header bytes (geometry.header_len of them) for a unit.
std::vector<std::byte> EncodeUnitHeader(const VolumeUuid& volume, const UnitHeader& header);

// Checks magic, version, checksum and volume id; Corruption otherwise. Does not
// check placement (caller compares with what it expected at that place).
// `bytes` must hold at least the whole header (header_len); if it holds less,
// returns the needed length in *need_len and Corruption.
Result<UnitHeader> DecodeUnitHeader(const VolumeUuid& volume, std::span<const std::byte> bytes,
                                    uint32_t* need_len);

}  // namespace cairn::raidlib
