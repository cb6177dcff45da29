// Recovery at open: rebuild the stripe table from the unit headers and cut
// off a torn tail.
//
// Crash cases (see docs/raidlib-format.md):
//  - A stripe whose write was interrupted has some units missing or torn. If
//    enough units are intact to read it, it is kept (and repaired); if not, it
//    was never synced (a completed sync covered every unit of it), so it and
//    everything after it is cut off.
//  - Damage found in a stripe that a later stripe records as synced
//    (committed_through) is not a torn write but lost data: the stripe is kept
//    and marked lost, so reads of it fail with DataLoss instead of being cut.
//  - Units of an older run left at the same place carry an older generation
//    and lose to the newer ones.
#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "raidlib/unit_header.h"
#include "raidlib/volume.h"

namespace cairn::raidlib {
namespace {

uint32_t NeededUnits(uint32_t members) { return members >= 2 ? members - 1 : 1; }

bool ParseSegmentName(const std::string& name, uint32_t* id) {
  const std::string prefix = kSegmentPrefix;
  if (name.size() != prefix.size() + 8 || name.compare(0, prefix.size(), prefix) != 0) {
    return false;
  }
  uint32_t v = 0;
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    v = v * 10 + static_cast<uint32_t>(name[i] - '0');
  }
  *id = v;
  return true;
}

}  // namespace

Status Volume::RecoverLog() {
  const uint32_t n = num_disks();
  std::set<SegmentId> released;
  {
    MutexLock lock(&mu_);
    released = released_;
  }
  std::vector<bool> usable(n);
  std::set<uint32_t> segs;
  std::map<uint32_t, std::set<uint32_t>> files_on;  // disk -> segments present
  for (uint32_t d = 0; d < n; ++d) {
    usable[d] = slots_[d]->state != DiskState::kFailed;
    if (!usable[d]) continue;
    auto names = disk_.ListDir(DirOf(DiskIndex(d)));
    if (!names.ok()) {
      slots_[d]->io_errors.fetch_add(1);
      MarkDiskFailed(DiskIndex(d), names.status().ToString());
      usable[d] = false;
      continue;
    }
    for (const auto& name : *names) {
      uint32_t id = 0;
      if (!ParseSegmentName(name, &id)) continue;
      if (released.count(SegmentId(id))) {
        // Left over from a ReleaseSegment interrupted by a crash.
        if (!options_.read_only) disk_.Remove(JoinPath(DirOf(DiskIndex(d)), name)).IgnoreError();
        continue;
      }
      segs.insert(id);
      files_on[d].insert(id);
    }
  }

  struct Found {
    StripeGeometry g;
    uint32_t valid_mask = 0;
  };
  std::vector<Found> found;
  uint64_t max_committed = 0;
  std::vector<std::byte> buf;

  // Pass 1: walk the headers of every segment in order.
  for (uint32_t seg : segs) {
    uint64_t seg_size = 0;
    for (uint32_t d = 0; d < n; ++d) {
      if (!usable[d] || !files_on[d].count(seg)) continue;
      auto f = GetFile(DiskIndex(d), SegmentId(seg), false);
      if (!f.ok()) continue;
      auto size = (*f)->Size();
      if (size.ok()) seg_size = std::max(seg_size, *size);
    }
    uint64_t at = 0;
    while (at + kChunkSize <= seg_size) {
      std::vector<std::optional<UnitHeader>> hdr(n);
      for (uint32_t d = 0; d < n; ++d) {
        if (!usable[d] || !files_on[d].count(seg)) continue;
        auto f = GetFile(DiskIndex(d), SegmentId(seg), false);
        if (!f.ok()) continue;
        buf.assign(kChunkSize, std::byte{0});
        auto got = (*f)->ReadAt(at, buf);
        if (!got.ok() || *got < kUnitHeaderFixedBytes) continue;
        buf.resize(*got);
        uint32_t need = 0;
        auto h = DecodeUnitHeader(uuid_, buf, &need);
        if (!h.ok() && need > 0) {
          buf.assign(need, std::byte{0});
          got = (*f)->ReadAt(at, buf);
          if (!got.ok() || *got < need) continue;
          h = DecodeUnitHeader(uuid_, buf, &need);
        }
        if (!h.ok()) continue;
        if (h->geometry.segment.value() != seg || h->geometry.file_offset != at ||
            h->this_disk.value() != d || h->geometry.num_disks != n) {
          continue;
        }
        hdr[d] = std::move(h).value();
      }
      // The newest generation at this place wins; the rest are stale.
      const UnitHeader* pick = nullptr;
      for (uint32_t d = 0; d < n; ++d) {
        if (hdr[d] && (!pick || hdr[d]->geometry.generation > pick->geometry.generation)) {
          pick = &*hdr[d];
        }
      }
      if (pick == nullptr) {
        // No readable header here: the end of the log, a torn write, or a
        // stripe damaged on too many disks. Look for the next stripe at every
        // chunk boundary, so that one unreadable stripe loses only itself;
        // pass 3 decides what the gap means.
        at += kChunkSize;
        continue;
      }
      const StripeGeometry g = pick->geometry;
      if (!found.empty()) {
        const StripeGeometry& prev = found.back().g;
        // Older data beyond the end, or nonsense: not part of the log.
        if (g.seq <= prev.seq || g.logical_start < prev.logical_end()) break;
      }
      Found f{g, 0};
      for (uint32_t d = 0; d < n; ++d) {
        if (hdr[d] && hdr[d]->geometry.SameStripeAs(g)) f.valid_mask |= 1u << d;
      }
      max_committed = std::max(max_committed, g.committed_through.value());
      found.push_back(f);
      at += g.stride();
    }
  }

  // Pass 2: stripes no later stripe vouches for may be torn inside their
  // payload: verify them whole.
  for (Found& f : found) {
    if (f.g.seq.value() <= max_committed) continue;
    for (uint32_t d = 0; d < n; ++d) {
      if (!((f.valid_mask >> d) & 1u)) continue;
      UnitReadError why = UnitReadError::kNone;
      if (!ReadUnitChunks(f.g, DiskIndex(d), 0, f.g.chunk_count(), &why).ok()) {
        f.valid_mask &= ~(1u << d);
      }
    }
  }

  // Pass 3: decide what is kept, what is lost, where the tail is cut.
  std::vector<StripeEntry> kept;
  size_t cut = found.size();
  // The stripe before the next one; a virtual stripe 0 before the first, so
  // that an unreadable first stripe is a gap too.
  StripeGeometry prev;
  prev.seq = StripeSeq(0);
  prev.segment = SegmentId(0);
  for (size_t i = 0; i < found.size(); ++i) {
    const StripeGeometry& g = found[i].g;
    if (g.seq != prev.seq.Next() || g.logical_start != prev.logical_end()) {
      bool released_between = false;
      for (SegmentId r : released) {
        if (r >= prev.segment && r < g.segment) released_between = true;
      }
      const bool plausible = g.seq > prev.seq && g.logical_start >= prev.logical_end();
      if (!(released_between && plausible)) {
        if (plausible && g.seq.value() - 1 <= max_committed) {
          LOG_ERROR(log_) << "stripes " << prev.seq.Next() << ".." << g.seq.value() - 1
                          << " are unreadable on every disk although they were synced: bytes ["
                          << prev.logical_end() << ", " << g.logical_start << ") are LOST";
          StripeEntry gap{prev, true};
          gap.g.seq = prev.seq.Next();
          gap.g.logical_start = prev.logical_end();
          gap.g.data_len = static_cast<uint32_t>(
              std::min<uint64_t>(g.logical_start - prev.logical_end(), UINT32_MAX));
          kept.push_back(gap);
          counters_.unrecoverable.fetch_add(1);
        } else {
          cut = i;
          break;
        }
      }
    }
    prev = g;
    const uint32_t members = g.members();
    const auto valid = static_cast<uint32_t>(std::popcount(found[i].valid_mask));
    if (valid < NeededUnits(members)) {
      if (g.seq.value() <= max_committed) {
        LOG_ERROR(log_) << "stripe " << g.seq << " (bytes [" << g.logical_start << ", "
                        << g.logical_end() << ")) has only " << valid << " of " << members
                        << " units intact although it was synced: its data is LOST";
        counters_.unrecoverable.fetch_add(1);
        kept.push_back({g, true});
        continue;
      }
      cut = i;
      break;
    }
    kept.push_back({g, false});
  }

  if (cut < found.size()) {
    LOG_WARN(log_) << "cutting off " << found.size() - cut << " stripe(s) from seq "
                   << found[cut].g.seq
                   << " on: written but not confirmed synced before the last stop (torn tail)";
  }
  // (A bool and a value rather than std::optional: GCC 12 warns falsely.)
  const bool has_last = !kept.empty();
  const StripeGeometry last = has_last ? kept.back().g : StripeGeometry{};
  if (!options_.read_only) {
    // Make the files end where the log ends, durably, before anything new is
    // written: no torn or stale unit may be found after the end next time.
    for (uint32_t d = 0; d < n; ++d) {
      if (!usable[d]) continue;
      bool removed = false;
      for (uint32_t seg : files_on[d]) {
        const SegmentId id(seg);
        if (!has_last || id > last.segment) {
          DropFiles(DiskIndex(d));
          Status s = disk_.Remove(SegmentPath(DiskIndex(d), id));
          if (!s.ok() && s.code() != StatusCode::kNotFound) {
            slots_[d]->io_errors.fetch_add(1);
            MarkDiskFailed(DiskIndex(d), s.ToString());
            break;
          }
          removed = true;
        } else if (id == last.segment) {
          const uint64_t end = last.file_offset + last.stride();
          auto f = GetFile(DiskIndex(d), id, false);
          if (!f.ok()) continue;
          auto size = (*f)->Size();
          if (size.ok() && *size > end) {
            Status s = (*f)->Truncate(end);
            if (s.ok()) s = (*f)->Sync();
            if (!s.ok()) {
              slots_[d]->io_errors.fetch_add(1);
              MarkDiskFailed(DiskIndex(d), s.ToString());
            }
          }
        }
      }
      if (removed) {
        Status s = disk_.SyncDir(DirOf(DiskIndex(d)));
        if (!s.ok()) MarkDiskFailed(DiskIndex(d), s.ToString());
      }
    }
  }

  // Damaged units of kept stripes are repaired once the repair thread runs.
  std::unordered_map<uint64_t, uint32_t> valid_by_seq;
  for (const Found& f : found) valid_by_seq[f.g.seq.value()] = f.valid_mask;
  std::vector<std::pair<StripeGeometry, uint32_t>> repairs;
  std::vector<bool> rebuilding(n);
  {
    MutexLock lock(&mu_);
    for (uint32_t d = 0; d < n; ++d) {
      rebuilding[d] = slots_[d]->state == DiskState::kRebuilding;
      // Everything found now is older than the rebuild's work list.
      if (rebuilding[d]) slots_[d]->rebuild_floor = has_last ? last.seq.Next() : StripeSeq(1);
    }
  }
  for (const StripeEntry& e : kept) {
    if (e.lost) continue;
    const uint32_t valid = valid_by_seq[e.g.seq.value()];
    for (uint32_t d = 0; d < n; ++d) {
      if (e.g.IsMember(DiskIndex(d)) && usable[d] && !rebuilding[d] && !((valid >> d) & 1u)) {
        repairs.push_back({e.g, d});
        slots_[d]->checksum_errors.fetch_add(1);
        counters_.corruptions_detected.fetch_add(1);
      }
    }
  }
  uint32_t max_seg = 0;
  if (!segs.empty()) max_seg = *segs.rbegin();
  if (!released.empty()) max_seg = std::max(max_seg, released.rbegin()->value());
  {
    MutexLock lock(&mu_);
    stripes_ = std::move(kept);
    next_seq_ = has_last ? last.seq.Next() : StripeSeq(1);
    end_offset_ = has_last ? last.logical_end() : 0;
    durable_offset_ = end_offset_;
    pending_start_ = end_offset_;
    durable_seq_ = has_last ? last.seq : StripeSeq(0);
    // A new run starts a new segment: nothing is ever appended after a place
    // where an earlier run may have left a torn write.
    cur_segment_ = SegmentId(max_seg + 1);
    cur_offset_ = 0;
    if (!stripes_.empty()) {
      LOG_INFO(log_) << "opened: " << stripes_.size() << " stripes, " << end_offset_
                     << " bytes, next segment " << cur_segment_ << ", " << repairs.size()
                     << " unit(s) queued for repair";
    }
  }
  for (const auto& [g, d] : repairs) QueueRepair(g, DiskIndex(d));
  return Status::Ok();
}

}  // namespace cairn::raidlib
