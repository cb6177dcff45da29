#include "raidlib/stripe_geometry.h"

#include "common/assert.h"

namespace cairn::raidlib {

DiskIndex StripeGeometry::DataDisk(uint32_t j) const {
  CAIRN_CHECK(j < data_units()) << "data unit " << j << " of " << data_units();
  uint32_t seen = 0;
  for (uint32_t d = 0; d < kMaxDisks; ++d) {
    if (((member_mask >> d) & 1u) == 0 || d == parity_disk) continue;
    if (seen == j) return DiskIndex(d);
    ++seen;
  }
  CAIRN_CHECK(false) << "member mask " << member_mask << " has no data unit " << j;
  return DiskIndex(0);
}

std::optional<uint32_t> StripeGeometry::DataIndexOf(DiskIndex d) const {
  if (!IsMember(d) || d.value() == parity_disk) return std::nullopt;
  uint32_t j = 0;
  for (uint32_t e = 0; e < d.value(); ++e) {
    if (((member_mask >> e) & 1u) != 0 && e != parity_disk) ++j;
  }
  return j;
}

bool StripeGeometry::SameStripeAs(const StripeGeometry& o) const {
  return seq == o.seq && generation == o.generation && segment == o.segment &&
         file_offset == o.file_offset && logical_start == o.logical_start &&
         data_len == o.data_len && unit_len == o.unit_len && header_len == o.header_len &&
         member_mask == o.member_mask && parity_disk == o.parity_disk &&
         num_disks == o.num_disks && committed_through == o.committed_through;
}

uint32_t UnitLenFor(uint32_t data_len, uint32_t data_units) {
  CAIRN_CHECK(data_units > 0);
  uint64_t per_unit = (uint64_t{data_len} + data_units - 1) / data_units;
  uint64_t rounded = (per_unit + kChunkSize - 1) / kChunkSize * kChunkSize;
  if (rounded == 0) rounded = kChunkSize;
  return static_cast<uint32_t>(rounded);
}

uint32_t HeaderLenFor(uint32_t unit_len) {
  uint64_t bytes = kUnitHeaderFixedBytes + uint64_t{unit_len} / kChunkSize * 8;
  return static_cast<uint32_t>((bytes + kChunkSize - 1) / kChunkSize * kChunkSize);
}

uint8_t ParityDiskFor(uint32_t member_mask, StripeSeq seq) {
  uint32_t members = static_cast<uint32_t>(std::popcount(member_mask));
  if (members < 2) return kNoParity;
  uint32_t pick = static_cast<uint32_t>(seq.value() % members);
  for (uint32_t d = 0; d < kMaxDisks; ++d) {
    if (((member_mask >> d) & 1u) == 0) continue;
    if (pick == 0) return static_cast<uint8_t>(d);
    --pick;
  }
  CAIRN_CHECK(false) << "unreachable";
  return kNoParity;
}

}  // namespace cairn::raidlib
