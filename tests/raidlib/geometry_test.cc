#include <gtest/gtest.h>

#include <bit>
#include <set>

#include "raidlib/parity.h"
#include "raidlib/stripe_geometry.h"
#include "raidlib/unit_header.h"

namespace cairn::raidlib {
namespace {

TEST(Geometry, UnitLenRoundsUpToChunks) {
  EXPECT_EQ(UnitLenFor(0, 3), kChunkSize);
  EXPECT_EQ(UnitLenFor(1, 3), kChunkSize);
  EXPECT_EQ(UnitLenFor(3 * kChunkSize, 3), kChunkSize);
  EXPECT_EQ(UnitLenFor(3 * kChunkSize + 1, 3), 2 * kChunkSize);
  EXPECT_EQ(UnitLenFor(1u << 20, 1), 1u << 20);
}

TEST(Geometry, HeaderHoldsOneChecksumPerChunk) {
  EXPECT_EQ(HeaderLenFor(kChunkSize), kChunkSize);
  // 1 MiB unit: 256 checksums + 128 fixed bytes fit in one chunk.
  EXPECT_EQ(HeaderLenFor(1u << 20), kChunkSize);
  // 16 MiB: 4096 checksums = 32 KiB + 128 bytes -> 9 chunks.
  EXPECT_EQ(HeaderLenFor(16u << 20), 9 * kChunkSize);
}

TEST(Geometry, ParityRotatesOverMembers) {
  const uint32_t mask = 0b1011;  // disks 0, 1, 3
  std::set<uint8_t> seen;
  for (uint64_t seq = 1; seq <= 6; ++seq) {
    uint8_t p = ParityDiskFor(mask, StripeSeq(seq));
    EXPECT_TRUE((mask >> p) & 1u);
    seen.insert(p);
  }
  EXPECT_EQ(seen, (std::set<uint8_t>{0, 1, 3}));
  EXPECT_EQ(ParityDiskFor(0b100, StripeSeq(5)), kNoParity);
}

TEST(Geometry, DataDisksSkipParityAndNonMembers) {
  StripeGeometry g;
  g.member_mask = 0b11101;  // disks 0, 2, 3, 4
  g.seq = StripeSeq(1);
  g.parity_disk = ParityDiskFor(g.member_mask, g.seq);
  ASSERT_EQ(g.parity_disk, 2);
  ASSERT_EQ(g.data_units(), 3u);
  EXPECT_EQ(g.DataDisk(0), DiskIndex(0));
  EXPECT_EQ(g.DataDisk(1), DiskIndex(3));
  EXPECT_EQ(g.DataDisk(2), DiskIndex(4));
  EXPECT_EQ(g.DataIndexOf(DiskIndex(4)), 2u);
  EXPECT_FALSE(g.DataIndexOf(DiskIndex(2)).has_value());
  EXPECT_FALSE(g.DataIndexOf(DiskIndex(1)).has_value());
}

TEST(Parity, XorRecoversAnyOneUnit) {
  std::vector<std::vector<std::byte>> units(4, std::vector<std::byte>(10000));
  for (size_t u = 0; u < 3; ++u) {
    for (size_t i = 0; i < units[u].size(); ++i) {
      units[u][i] = static_cast<std::byte>((i * 7 + u * 13) & 0xFF);
    }
  }
  for (size_t u = 0; u < 3; ++u) XorInto(units[3], units[u]);
  for (size_t lost = 0; lost < 4; ++lost) {
    std::vector<std::byte> rebuilt(units[0].size(), std::byte{0});
    for (size_t u = 0; u < 4; ++u) {
      if (u != lost) XorInto(rebuilt, units[u]);
    }
    EXPECT_EQ(rebuilt, units[lost]) << "unit " << lost;
  }
}

StripeGeometry SampleGeometry() {
  StripeGeometry g;
  g.seq = StripeSeq(42);
  g.generation = 7;
  g.segment = SegmentId(3);
  g.file_offset = 8192;
  g.logical_start = 123456;
  g.data_len = 10000;
  g.unit_len = 8192;
  g.header_len = HeaderLenFor(8192);
  g.member_mask = 0b0111;
  g.parity_disk = ParityDiskFor(g.member_mask, g.seq);
  g.num_disks = 4;
  g.committed_through = StripeSeq(40);
  return g;
}

TEST(UnitHeader, RoundTrips) {
  VolumeUuid id{};
  id[0] = std::byte{9};
  UnitHeader h{SampleGeometry(), DiskIndex(1), {111, 222}};
  auto bytes = EncodeUnitHeader(id, h);
  ASSERT_EQ(bytes.size(), kChunkSize);
  uint32_t need = 0;
  auto back = DecodeUnitHeader(id, bytes, &need);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->geometry.SameStripeAs(h.geometry));
  EXPECT_EQ(back->this_disk, DiskIndex(1));
  EXPECT_EQ(back->chunk_checksums, (std::vector<uint64_t>{111, 222}));
}

TEST(UnitHeader, EveryBitFlipIsDetected) {
  VolumeUuid id{};
  UnitHeader h{SampleGeometry(), DiskIndex(0), {1, 2}};
  auto bytes = EncodeUnitHeader(id, h);
  const size_t used = kUnitHeaderFixedBytes + 2 * 8;
  for (size_t bit = 0; bit < used * 8; ++bit) {
    auto copy = bytes;
    copy[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
    uint32_t need = 0;
    auto r = DecodeUnitHeader(id, copy, &need);
    EXPECT_FALSE(r.ok()) << "bit " << bit;
  }
}

TEST(UnitHeader, OtherVolumeIsRejected) {
  VolumeUuid a{}, b{};
  b[15] = std::byte{1};
  UnitHeader h{SampleGeometry(), DiskIndex(0), {1, 2}};
  uint32_t need = 0;
  auto r = DecodeUnitHeader(b, EncodeUnitHeader(a, h), &need);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("another volume"), std::string::npos);
}

TEST(UnitHeader, ChunkChecksumDependsOnPosition) {
  std::vector<std::byte> chunk(kChunkSize, std::byte{0x5A});
  EXPECT_NE(ChunkChecksum(chunk, 0), ChunkChecksum(chunk, 1));
}

}  // namespace
}  // namespace cairn::raidlib
