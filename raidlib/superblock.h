// The superblock: the file VOLUME in every disk directory. It names the volume,
// the disk's slot, the geometry options fixed at creation, and the volume
// configuration (disk states, released segments) as of `epoch`. Every change
// of configuration, and every open for writing, bumps the epoch and rewrites
// the superblock of every disk that is not failed (atomic replace). On open
// the valid superblock with the highest epoch is the configuration.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/disk.h"
#include "common/status.h"
#include "common/strong_id.h"
#include "raidlib/unit_header.h"

namespace cairn::raidlib {

enum class DiskState : uint8_t {
  kHealthy = 0,
  kFailed = 1,      // not read or written; units on it are reconstructed
  kRebuilding = 2,  // written by new stripes, old units being rebuilt
};
const char* DiskStateName(DiskState s);

struct Superblock {
  VolumeUuid volume{};
  uint32_t num_disks = 0;
  DiskIndex disk_index;
  uint32_t max_unit_bytes = 0;
  uint64_t segment_bytes = 0;
  uint64_t epoch = 0;
  int64_t created_wall_ns = 0;
  std::vector<DiskState> disk_states;  // num_disks entries
  std::vector<SegmentId> released;     // sorted, segments given back by ReleaseSegment
  std::vector<std::byte> app_root;     // the application's root, <= kMaxAppRootBytes
};

std::vector<std::byte> EncodeSuperblock(const Superblock& sb);
// Corruption for damaged bytes; InvalidArgument for another format version.
Result<Superblock> DecodeSuperblock(std::span<const std::byte> bytes);

// NotFound if the directory has no superblock.
Result<Superblock> ReadSuperblock(Disk& disk, const std::string& dir);
// Durable when it returns OK (WriteFileAtomic).
Status WriteSuperblock(Disk& disk, const std::string& dir, const Superblock& sb);

std::string VolumeUuidString(const VolumeUuid& id);

}  // namespace cairn::raidlib
