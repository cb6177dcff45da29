#include <gtest/gtest.h>

#include "common/mem_disk.h"
#include "raidlib/superblock.h"

namespace cairn::raidlib {
namespace {

Superblock Sample() {
  Superblock sb;
  sb.volume[3] = std::byte{0xAB};
  sb.num_disks = 4;
  sb.disk_index = DiskIndex(2);
  sb.max_unit_bytes = 1u << 20;
  sb.segment_bytes = 256ull << 20;
  sb.epoch = 17;
  sb.created_wall_ns = 1234567890;
  sb.disk_states = {DiskState::kHealthy, DiskState::kFailed, DiskState::kRebuilding,
                    DiskState::kHealthy};
  sb.released = {SegmentId(2), SegmentId(5)};
  return sb;
}

TEST(Superblock, RoundTripsThroughDisk) {
  MemDisk disk;
  ASSERT_TRUE(disk.CreateDir("/d").ok());
  ASSERT_TRUE(WriteSuperblock(disk, "/d", Sample()).ok());
  auto back = ReadSuperblock(disk, "/d");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->volume, Sample().volume);
  EXPECT_EQ(back->num_disks, 4u);
  EXPECT_EQ(back->disk_index, DiskIndex(2));
  EXPECT_EQ(back->epoch, 17u);
  EXPECT_EQ(back->disk_states, Sample().disk_states);
  EXPECT_EQ(back->released, Sample().released);
}

TEST(Superblock, SurvivesCrashAfterWrite) {
  MemDisk disk;
  Random rng(1);
  ASSERT_TRUE(disk.CreateDir("/d").ok());
  ASSERT_TRUE(WriteSuperblock(disk, "/d", Sample()).ok());
  disk.Crash(MemDisk::CrashMode::kDropUnsynced, &rng);
  EXPECT_TRUE(ReadSuperblock(disk, "/d").ok());
}

TEST(Superblock, CorruptionIsDetected) {
  auto bytes = EncodeSuperblock(Sample());
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto copy = bytes;
    copy[i] ^= std::byte{0x10};
    EXPECT_FALSE(DecodeSuperblock(copy).ok()) << "byte " << i;
  }
  bytes.pop_back();
  EXPECT_FALSE(DecodeSuperblock(bytes).ok());
}

TEST(Superblock, MissingIsNotFound) {
  MemDisk disk;
  ASSERT_TRUE(disk.CreateDir("/d").ok());
  EXPECT_EQ(ReadSuperblock(disk, "/d").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace cairn::raidlib
