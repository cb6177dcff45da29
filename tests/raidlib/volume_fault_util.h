// Helpers shared by the crash and corruption tests of raidlib::Volume: seeds,
// deterministic data, a reference model of the log, checked reads, and a map
// of where every unit of every stripe sits in the segment files (read straight
// from the MemDisk, so tests can damage chosen units).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/disk.h"
#include "common/logging.h"
#include "common/mem_disk.h"
#include "common/random.h"
#include "raidlib/stripe_geometry.h"
#include "raidlib/superblock.h"
#include "raidlib/unit_header.h"
#include "raidlib/volume.h"
#include "raidlib/volume_format.h"
#include "tests/common/test_seeds.h"

namespace cairn::raidlib::vtest {

using cairn::test::LongRun;

using cairn::test::QuietLogs;
using cairn::test::Seeds;
using cairn::test::SeedTrace;

// Deterministic bytes: a function of (seed, position) only.
inline void FillData(uint64_t seed, uint64_t pos, std::span<std::byte> out) {
  for (size_t i = 0; i < out.size();) {
    uint64_t block = (pos + i) / 8;
    Random r(seed * 0x9E3779B97F4A7C15ull + block);
    uint64_t v = r.Next();
    for (size_t b = (pos + i) % 8; b < 8 && i < out.size(); ++b, ++i) {
      out[i] = static_cast<std::byte>((v >> (8 * b)) & 0xFF);
    }
  }
}

// A size for the next append: mostly small, sometimes huge (up to ~3 MiB), so
// that stripes of every width and segment roll-over all happen.
inline uint64_t RandomAppendSize(Random* rng) {
  uint64_t r = rng->Uniform(100);
  if (r < 40) return 1 + rng->Uniform(64);
  if (r < 65) return 64 + rng->Uniform(8 << 10);
  if (r < 90) return (8 << 10) + rng->Uniform(256 << 10);
  return (256 << 10) + rng->Uniform((3 << 20) - (256 << 10));
}

inline std::vector<std::string> DiskDirs(uint32_t n) {
  std::vector<std::string> dirs;
  for (uint32_t i = 0; i < n; ++i) dirs.push_back("/d" + std::to_string(i));
  return dirs;
}

inline std::string StatusText(const Status& s) { return s.ToString(); }

// Reads [offset, offset + len) and compares with `model`. Returns the read's
// status; adds a failure if it succeeded with wrong bytes.
inline Status ReadAndCompare(Volume& vol, const std::vector<std::byte>& model, uint64_t offset,
                             uint64_t len) {
  std::vector<std::byte> buf(len, std::byte{0xCD});
  Status s = vol.Read(offset, buf);
  if (s.ok()) {
    if (offset + len > model.size()) {
      ADD_FAILURE() << "read of [" << offset << ", " << offset + len
                    << ") succeeded past the model end " << model.size();
      return s;
    }
    if (std::memcmp(buf.data(), model.data() + offset, len) != 0) {
      uint64_t first = 0;
      while (buf[first] == model[offset + first]) ++first;
      ADD_FAILURE() << "WRONG DATA: read of [" << offset << ", " << offset + len
                    << ") differs from what was appended, first at logical offset "
                    << offset + first;
    }
  }
  return s;
}

// Reads all of [from, to) in random pieces (and once whole if small enough);
// every read must succeed with the right bytes.
inline void ExpectRangeReadsBack(Volume& vol, const std::vector<std::byte>& model, uint64_t from,
                                 uint64_t to, Random* rng, const char* what) {
  uint64_t pos = from;
  while (pos < to) {
    uint64_t len = std::min<uint64_t>(to - pos, 1 + rng->Uniform(rng->OneIn(4) ? 600 << 10 : 9000));
    Status s = ReadAndCompare(vol, model, pos, len);
    if (!s.ok()) {
      ADD_FAILURE() << what << ": read of [" << pos << ", " << pos + len
                    << ") failed: " << s.ToString();
      return;
    }
    pos += len;
  }
  if (to > from && to - from <= (8u << 20)) {
    Status s = ReadAndCompare(vol, model, from, to - from);
    EXPECT_TRUE(s.ok()) << what << ": whole read of [" << from << ", " << to
                        << ") failed: " << s.ToString();
  }
}

// ---- where units live ----

struct UnitLoc {
  DiskIndex disk;
  std::string path;  // segment file on the MemDisk
  uint64_t file_offset = 0;
  // Header bytes covered by the header checksum (the rest is padding).
  uint64_t header_meaningful() const {
    return kUnitHeaderFixedBytes + uint64_t{g.chunk_count()} * 8;
  }
  uint64_t payload_offset() const { return file_offset + g.header_len; }
  StripeGeometry g;
};

struct StripeLoc {
  StripeGeometry g;
  std::map<uint32_t, UnitLoc> units;  // by disk index: every member found
  // Logical bytes [begin, end) held by data unit on `d` (empty for parity).
  std::pair<uint64_t, uint64_t> DataRange(DiskIndex d) const {
    auto j = g.DataIndexOf(d);
    if (!j) return {0, 0};
    uint64_t b = g.logical_start + uint64_t{*j} * g.unit_len;
    uint64_t e = std::min<uint64_t>(b + g.unit_len, g.logical_end());
    if (b >= e) return {0, 0};
    return {b, e};
  }
  bool IsParity(DiskIndex d) const { return g.parity_disk == d.value(); }
};

inline Result<VolumeUuid> UuidOf(MemDisk& mem, const std::vector<std::string>& dirs) {
  Status last = Status::NotFound("no superblock in any disk");
  for (const auto& dir : dirs) {
    auto sb = ReadSuperblock(mem, dir);
    if (sb.ok()) return sb->volume;
    last = sb.status();
  }
  return last;
}

// Scans every segment file of every disk for unit headers (at kChunkSize
// steps, skipping whole units once found). Stripes are keyed by (segment,
// file offset), which is the same on every member.
inline Result<std::vector<StripeLoc>> MapStripes(MemDisk& mem,
                                                 const std::vector<std::string>& dirs) {
  ASSIGN_OR_RETURN(VolumeUuid uuid, UuidOf(mem, dirs));
  std::map<std::pair<uint32_t, uint64_t>, StripeLoc> by_place;
  for (uint32_t d = 0; d < dirs.size(); ++d) {
    auto names = mem.ListDir(dirs[d]);
    if (!names.ok()) continue;
    for (const auto& name : *names) {
      if (name.rfind(kSegmentPrefix, 0) != 0) continue;
      const std::string path = JoinPath(dirs[d], name);
      ASSIGN_OR_RETURN(std::vector<std::byte> bytes, ReadWholeFile(mem, path, 1ull << 34));
      uint64_t pos = 0;
      while (pos + kUnitHeaderFixedBytes <= bytes.size()) {
        uint32_t need = 0;
        auto h = DecodeUnitHeader(uuid, std::span<const std::byte>(bytes).subspan(pos), &need);
        if (h.ok() && h->geometry.file_offset == pos && h->this_disk == DiskIndex(d)) {
          UnitLoc u;
          u.disk = DiskIndex(d);
          u.path = path;
          u.file_offset = pos;
          u.g = h->geometry;
          auto key = std::make_pair(u.g.segment.value(), pos);
          StripeLoc& s = by_place[key];
          if (s.units.empty()) s.g = u.g;
          if (!s.g.SameStripeAs(u.g)) {
            return Status::Corruption("units at " + path + "@" + std::to_string(pos) +
                                      " disagree on their stripe");
          }
          s.units[d] = u;
          pos += u.g.stride();
        } else {
          pos += kChunkSize;
        }
      }
    }
  }
  std::vector<StripeLoc> out;
  for (auto& [key, s] : by_place) out.push_back(std::move(s));
  std::sort(out.begin(), out.end(), [](const StripeLoc& a, const StripeLoc& b) {
    return a.g.logical_start < b.g.logical_start;
  });
  return out;
}

// Every segment file's current bytes, by path.
inline std::map<std::string, std::vector<std::byte>> SnapshotSegments(
    MemDisk& mem, const std::vector<std::string>& dirs) {
  std::map<std::string, std::vector<std::byte>> out;
  for (const auto& dir : dirs) {
    auto names = mem.ListDir(dir);
    if (!names.ok()) continue;
    for (const auto& name : *names) {
      if (name.rfind(kSegmentPrefix, 0) != 0) continue;
      auto bytes = ReadWholeFile(mem, JoinPath(dir, name), 1ull << 34);
      if (bytes.ok()) out[JoinPath(dir, name)] = std::move(*bytes);
    }
  }
  return out;
}

// Bytes [offset, offset + len) of `path` on the MemDisk, zero-filled past its end.
inline std::vector<std::byte> FileRange(MemDisk& mem, const std::string& path, uint64_t offset,
                                        uint64_t len) {
  std::vector<std::byte> out(len, std::byte{0});
  auto f = mem.Open(path, OpenMode::kRead);
  if (!f.ok()) return out;
  auto n = (*f)->ReadAt(offset, out);
  (void)n;
  return out;
}

// Checks that every unit of `stripes` holds (in its checksummed header part
// and its payload) the same bytes as in `snapshot`: repairs restore units
// exactly.
inline void ExpectUnitsMatchSnapshot(MemDisk& mem, const std::vector<StripeLoc>& stripes,
                                     const std::map<std::string, std::vector<std::byte>>& snap,
                                     const char* what) {
  int reported = 0;
  for (const StripeLoc& s : stripes) {
    for (const auto& unit : s.units) {
      // Named copies, not structured bindings: Clang 14 cannot capture those.
      const auto d = unit.first;
      const auto& u = unit.second;
      auto it = snap.find(u.path);
      if (it == snap.end()) {
        ADD_FAILURE() << what << ": no snapshot of " << u.path;
        continue;
      }
      auto check = [&](uint64_t off, uint64_t len, const char* part) {
        std::vector<std::byte> now = FileRange(mem, u.path, off, len);
        std::vector<std::byte> then(len, std::byte{0});
        if (off < it->second.size()) {
          uint64_t n = std::min<uint64_t>(len, it->second.size() - off);
          std::memcpy(then.data(), it->second.data() + off, n);
        }
        if (now != then && reported++ < 10) {
          ADD_FAILURE() << what << ": " << part << " of the unit of stripe seq " << s.g.seq.value()
                        << " on disk " << d << " (" << u.path << "@" << u.file_offset
                        << ") is not as originally written";
        }
      };
      check(u.file_offset, u.header_meaningful(), "header");
      check(u.payload_offset(), u.g.unit_len, "payload");
    }
  }
}

}  // namespace cairn::raidlib::vtest
