#include "raidlib/superblock.h"

#include <cstdio>

#include "common/checksum.h"
#include "raidlib/endian.h"
#include "raidlib/volume_format.h"

namespace cairn::raidlib {

const char* DiskStateName(DiskState s) {
  switch (s) {
    case DiskState::kHealthy:
      return "healthy";
    case DiskState::kFailed:
      return "failed";
    case DiskState::kRebuilding:
      return "rebuilding";
  }
  return "unknown";
}

// Layout: magic u64 | version u32 | total_len u32 | volume 16 | num_disks u32 |
// disk_index u32 | max_unit_bytes u32 | reserved u32 | segment_bytes u64 |
// epoch u64 | created_wall_ns i64 | states u8[num_disks] | released_count u32 |
// released u32[] | app_root_len u32 | app_root bytes | checksum u64 (XXH3 of
// everything before it).
std::vector<std::byte> EncodeSuperblock(const Superblock& sb) {
  CAIRN_CHECK(sb.disk_states.size() == sb.num_disks);
  size_t len = 8 + 4 + 4 + 16 + 4 + 4 + 4 + 4 + 8 + 8 + 8 + sb.num_disks + 4 +
               sb.released.size() * 4 + 4 + sb.app_root.size() + 8;
  std::vector<std::byte> out(len);
  std::byte* p = out.data();
  size_t o = 0;
  auto put32 = [&](uint32_t v) {
    PutLE<uint32_t>(p + o, v);
    o += 4;
  };
  auto put64 = [&](uint64_t v) {
    PutLE<uint64_t>(p + o, v);
    o += 8;
  };
  put64(kSuperblockMagic);
  put32(kFormatVersion);
  put32(static_cast<uint32_t>(len));
  std::memcpy(p + o, sb.volume.data(), 16);
  o += 16;
  put32(sb.num_disks);
  put32(sb.disk_index.value());
  put32(sb.max_unit_bytes);
  put32(0);
  put64(sb.segment_bytes);
  put64(sb.epoch);
  put64(static_cast<uint64_t>(sb.created_wall_ns));
  for (DiskState s : sb.disk_states) p[o++] = static_cast<std::byte>(s);
  put32(static_cast<uint32_t>(sb.released.size()));
  for (SegmentId s : sb.released) put32(s.value());
  put32(static_cast<uint32_t>(sb.app_root.size()));
  if (!sb.app_root.empty()) std::memcpy(p + o, sb.app_root.data(), sb.app_root.size());
  o += sb.app_root.size();
  put64(Checksum64(p, o));
  CAIRN_CHECK(o == len);
  return out;
}

Result<Superblock> DecodeSuperblock(std::span<const std::byte> bytes) {
  const std::byte* p = bytes.data();
  if (bytes.size() < 16 + 8) return Status::Corruption("superblock truncated");
  if (GetLE<uint64_t>(p) != kSuperblockMagic) {
    return Status::Corruption("not a Cairn volume superblock (bad magic)");
  }
  uint32_t version = GetLE<uint32_t>(p + 8);
  uint32_t len = GetLE<uint32_t>(p + 12);
  if (len != bytes.size() || len < 8) return Status::Corruption("superblock length mismatch");
  if (GetLE<uint64_t>(p + len - 8) != Checksum64(p, len - 8)) {
    return Status::Corruption("superblock checksum mismatch");
  }
  if (version != kFormatVersion) {
    return Status::InvalidArgument("volume format version " + std::to_string(version) +
                                   " is not supported (this build reads version " +
                                   std::to_string(kFormatVersion) + ")");
  }
  Superblock sb;
  size_t o = 16;
  auto need = [&](size_t n) { return o + n <= len - 8; };
  auto get32 = [&]() {
    uint32_t v = GetLE<uint32_t>(p + o);
    o += 4;
    return v;
  };
  auto get64 = [&]() {
    uint64_t v = GetLE<uint64_t>(p + o);
    o += 8;
    return v;
  };
  if (!need(16 + 4 * 4 + 3 * 8)) return Status::Corruption("superblock truncated");
  std::memcpy(sb.volume.data(), p + o, 16);
  o += 16;
  sb.num_disks = get32();
  sb.disk_index = DiskIndex(get32());
  sb.max_unit_bytes = get32();
  get32();
  sb.segment_bytes = get64();
  sb.epoch = get64();
  sb.created_wall_ns = static_cast<int64_t>(get64());
  if (sb.num_disks == 0 || sb.num_disks > kMaxDisks || sb.disk_index.value() >= sb.num_disks ||
      !need(sb.num_disks + 4)) {
    return Status::Corruption("superblock has an impossible disk count or index");
  }
  for (uint32_t i = 0; i < sb.num_disks; ++i) {
    auto s = static_cast<uint8_t>(p[o++]);
    if (s > 2) return Status::Corruption("superblock has an unknown disk state");
    sb.disk_states.push_back(static_cast<DiskState>(s));
  }
  uint32_t released = get32();
  if (!need(size_t{released} * 4)) return Status::Corruption("superblock truncated");
  for (uint32_t i = 0; i < released; ++i) sb.released.push_back(SegmentId(get32()));
  if (!need(4)) return Status::Corruption("superblock truncated");
  uint32_t root_len = get32();
  if (root_len > kMaxAppRootBytes || !need(root_len)) {
    return Status::Corruption("superblock has an impossible application root length");
  }
  sb.app_root.assign(p + o, p + o + root_len);
  o += root_len;
  if (o != len - 8) return Status::Corruption("superblock has trailing bytes");
  return sb;
}

Result<Superblock> ReadSuperblock(Disk& disk, const std::string& dir) {
  const std::string path = JoinPath(dir, kSuperblockName);
  auto bytes = ReadWholeFile(disk, path, kSuperblockMaxBytes);
  if (!bytes.ok()) return bytes.status();
  auto sb = DecodeSuperblock(*bytes);
  if (!sb.ok()) return sb.status().WithContext(path);
  return sb;
}

Status WriteSuperblock(Disk& disk, const std::string& dir, const Superblock& sb) {
  return WriteFileAtomic(disk, JoinPath(dir, kSuperblockName), EncodeSuperblock(sb));
}

std::string VolumeUuidString(const VolumeUuid& id) {
  std::string s;
  char buf[3];
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    std::snprintf(buf, sizeof(buf), "%02x", static_cast<unsigned>(id[i]));
    s += buf;
  }
  return s;
}

}  // namespace cairn::raidlib
