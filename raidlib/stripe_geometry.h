// Where a stripe's bytes live: which disks hold its units, which one holds
// parity, how long the units are. Pure data and arithmetic, no I/O.
//
// Data layout: the stripe's data_len user bytes are split into D data units of
// unit_len bytes (the last zero-padded), D = members - 1 (members >= 2) or 1.
// Data unit j lives on the j-th member disk in ascending order, skipping the
// parity disk. The parity unit is the XOR of the data units. Parity rotates
// across the members with the stripe sequence number.
#pragma once

#include <bit>
#include <cstdint>
#include <optional>

#include "common/strong_id.h"
#include "raidlib/volume_format.h"

namespace cairn::raidlib {

struct StripeGeometry {
  StripeSeq seq;
  uint64_t generation = 0;
  SegmentId segment;
  uint64_t file_offset = 0;
  uint64_t logical_start = 0;
  uint32_t data_len = 0;
  uint32_t unit_len = 0;
  uint32_t header_len = 0;
  uint32_t member_mask = 0;
  uint8_t parity_disk = kNoParity;
  uint8_t num_disks = 0;
  StripeSeq committed_through;

  uint32_t members() const { return static_cast<uint32_t>(std::popcount(member_mask)); }
  uint32_t data_units() const { return members() >= 2 ? members() - 1 : 1; }
  uint64_t stride() const { return uint64_t{header_len} + unit_len; }
  uint64_t logical_end() const { return logical_start + data_len; }
  uint32_t chunk_count() const { return unit_len / kChunkSize; }
  bool IsMember(DiskIndex d) const {
    return d.value() < 32 && ((member_mask >> d.value()) & 1u) != 0;
  }
  // The disk holding data unit j (j < data_units()).
  DiskIndex DataDisk(uint32_t j) const;
  // The data unit index held by disk d; nullopt for the parity disk and
  // non-members.
  std::optional<uint32_t> DataIndexOf(DiskIndex d) const;
  // Same stripe-wide fields (everything but per-disk header fields).
  bool SameStripeAs(const StripeGeometry& o) const;
};

// Payload bytes per unit for data_len bytes over data_units units: rounded up
// to kChunkSize, at least one chunk.
uint32_t UnitLenFor(uint32_t data_len, uint32_t data_units);
// Header bytes for a unit of unit_len payload bytes.
uint32_t HeaderLenFor(uint32_t unit_len);
// The parity disk of stripe `seq` over `member_mask` (kNoParity for one member).
uint8_t ParityDiskFor(uint32_t member_mask, StripeSeq seq);

}  // namespace cairn::raidlib
