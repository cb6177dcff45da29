#include "raidlib/unit_header.h"

#include <string>

#include "common/checksum.h"
#include "raidlib/endian.h"

namespace cairn::raidlib {
namespace f = unit_field;

uint64_t ChunkChecksum(std::span<const std::byte> chunk, uint32_t index) {
  return Checksum64(chunk, 0x636B'0000'0000'0000ull + index);
}

namespace {

uint64_t HeaderChecksum(const std::byte* p, uint32_t chunk_count) {
  uint64_t h = Checksum64(p, f::kHeaderChecksum);
  return Checksum64(p + kUnitHeaderFixedBytes, size_t{chunk_count} * 8, h);
}

}  // namespace

std::vector<std::byte> EncodeUnitHeader(const VolumeUuid& volume, const UnitHeader& header) {
  const StripeGeometry& g = header.geometry;
  CAIRN_CHECK(header.chunk_checksums.size() == g.chunk_count());
  CAIRN_CHECK(g.header_len == HeaderLenFor(g.unit_len));
  std::vector<std::byte> out(g.header_len);
  std::byte* p = out.data();
  PutLE<uint64_t>(p + f::kMagic, kUnitMagic);
  PutLE<uint32_t>(p + f::kVersion, kFormatVersion);
  PutLE<uint32_t>(p + f::kHeaderLen, g.header_len);
  std::memcpy(p + f::kVolumeId, volume.data(), volume.size());
  PutLE<uint64_t>(p + f::kSeq, g.seq.value());
  PutLE<uint64_t>(p + f::kGeneration, g.generation);
  PutLE<uint64_t>(p + f::kLogicalStart, g.logical_start);
  PutLE<uint32_t>(p + f::kDataLen, g.data_len);
  PutLE<uint32_t>(p + f::kUnitLen, g.unit_len);
  PutLE<uint32_t>(p + f::kSegment, g.segment.value());
  PutLE<uint32_t>(p + f::kMemberMask, g.member_mask);
  PutLE<uint8_t>(p + f::kParityDisk, g.parity_disk);
  PutLE<uint8_t>(p + f::kThisDisk, static_cast<uint8_t>(header.this_disk.value()));
  PutLE<uint8_t>(p + f::kNumDisks, g.num_disks);
  PutLE<uint8_t>(p + f::kFlags, 0);
  PutLE<uint32_t>(p + f::kChunkCount, g.chunk_count());
  PutLE<uint64_t>(p + f::kCommittedThrough, g.committed_through.value());
  PutLE<uint64_t>(p + f::kFileOffset, g.file_offset);
  for (uint32_t i = 0; i < g.chunk_count(); ++i) {
    PutLE<uint64_t>(p + kUnitHeaderFixedBytes + size_t{i} * 8, header.chunk_checksums[i]);
  }
  PutLE<uint64_t>(p + f::kHeaderChecksum, HeaderChecksum(p, g.chunk_count()));
  return out;
}

Result<UnitHeader> DecodeUnitHeader(const VolumeUuid& volume, std::span<const std::byte> bytes,
                                    uint32_t* need_len) {
  *need_len = 0;
  if (bytes.size() < kUnitHeaderFixedBytes) return Status::Corruption("unit header truncated");
  const std::byte* p = bytes.data();
  if (GetLE<uint64_t>(p + f::kMagic) != kUnitMagic) {
    return Status::Corruption("no unit header (bad magic)");
  }
  uint32_t version = GetLE<uint32_t>(p + f::kVersion);
  if (version != kFormatVersion) {
    return Status::Corruption("unit header format version " + std::to_string(version) +
                              ", expected " + std::to_string(kFormatVersion));
  }
  uint32_t header_len = GetLE<uint32_t>(p + f::kHeaderLen);
  uint32_t unit_len = GetLE<uint32_t>(p + f::kUnitLen);
  uint32_t chunk_count = GetLE<uint32_t>(p + f::kChunkCount);
  if (unit_len == 0 || unit_len % kChunkSize != 0 || unit_len > kMaxUnitBytes ||
      chunk_count != unit_len / kChunkSize || header_len != HeaderLenFor(unit_len)) {
    return Status::Corruption("unit header has inconsistent lengths");
  }
  if (bytes.size() < header_len) {
    *need_len = header_len;
    return Status::Corruption("unit header longer than the bytes read");
  }
  if (GetLE<uint64_t>(p + f::kHeaderChecksum) != HeaderChecksum(p, chunk_count)) {
    return Status::Corruption("unit header checksum mismatch");
  }
  if (std::memcmp(p + f::kVolumeId, volume.data(), volume.size()) != 0) {
    return Status::Corruption("unit belongs to another volume");
  }
  UnitHeader h;
  StripeGeometry& g = h.geometry;
  g.seq = StripeSeq(GetLE<uint64_t>(p + f::kSeq));
  g.generation = GetLE<uint64_t>(p + f::kGeneration);
  g.logical_start = GetLE<uint64_t>(p + f::kLogicalStart);
  g.data_len = GetLE<uint32_t>(p + f::kDataLen);
  g.unit_len = unit_len;
  g.header_len = header_len;
  g.segment = SegmentId(GetLE<uint32_t>(p + f::kSegment));
  g.member_mask = GetLE<uint32_t>(p + f::kMemberMask);
  g.parity_disk = GetLE<uint8_t>(p + f::kParityDisk);
  g.num_disks = GetLE<uint8_t>(p + f::kNumDisks);
  g.committed_through = StripeSeq(GetLE<uint64_t>(p + f::kCommittedThrough));
  g.file_offset = GetLE<uint64_t>(p + f::kFileOffset);
  h.this_disk = DiskIndex(GetLE<uint8_t>(p + f::kThisDisk));
  if (g.num_disks == 0 || g.num_disks > kMaxDisks || g.member_mask == 0 ||
      (g.member_mask >> g.num_disks) != 0 || !g.IsMember(h.this_disk) ||
      g.parity_disk != ParityDiskFor(g.member_mask, g.seq) ||
      uint64_t{g.data_len} > uint64_t{g.data_units()} * g.unit_len) {
    return Status::Corruption("unit header has an impossible stripe geometry");
  }
  h.chunk_checksums.resize(chunk_count);
  for (uint32_t i = 0; i < chunk_count; ++i) {
    h.chunk_checksums[i] = GetLE<uint64_t>(p + kUnitHeaderFixedBytes + size_t{i} * 8);
  }
  return h;
}

}  // namespace cairn::raidlib
