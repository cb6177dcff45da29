// The read path: every chunk read is verified against its header checksum (the
// header read from disk, or kept from an earlier read: header_cache_); a
// unit that fails (I/O error, failed disk, bad or stale header, bad chunk) is
// reconstructed from the other members and queued for repair.
#include <algorithm>
#include <cstring>
#include <optional>

#include "raidlib/parity.h"
#include "raidlib/unit_header.h"
#include "raidlib/volume.h"

namespace cairn::raidlib {
namespace {

// Below this payload offset, the header and the wanted chunks are read in one
// request (the gap costs less than a second request).
constexpr uint64_t kMergeReadGap = 128 * 1024;

}  // namespace

Status Volume::Read(uint64_t offset, std::span<std::byte> out) {
  if (out.empty()) return Status::Ok();
  const uint64_t end = offset + out.size();
  std::vector<StripeEntry> parts;
  std::vector<SegmentId> pinned;
  {
    MutexLock lock(&mu_);
    if (end < offset || end > end_offset_) {
      return Status::InvalidArgument("read of [" + std::to_string(offset) + ", " +
                                     std::to_string(end) + ") is past the end of the log (" +
                                     std::to_string(end_offset_) + ")");
    }
    // Bytes still in memory: the buffer being written and the pending one.
    auto copy_mem = [&](const std::vector<std::byte>& buf, uint64_t start) {
      const uint64_t b = std::max(offset, start);
      const uint64_t e = std::min(end, start + buf.size());
      if (b < e) std::memcpy(out.data() + (b - offset), buf.data() + (b - start), e - b);
    };
    if (inflight_) copy_mem(*inflight_, inflight_start_);
    copy_mem(pending_, pending_start_);
    const uint64_t mem_start = inflight_ ? inflight_start_ : pending_start_;
    if (offset < mem_start) {
      auto it = std::upper_bound(
          stripes_.begin(), stripes_.end(), offset,
          [](uint64_t off, const StripeEntry& e) { return off < e.g.logical_start; });
      if (it != stripes_.begin()) --it;
      uint64_t covered = offset;
      for (; it != stripes_.end() && it->g.logical_start < std::min(end, mem_start); ++it) {
        if (it->g.logical_end() <= offset) continue;
        if (it->g.logical_start > covered) break;  // a released gap
        parts.push_back(*it);
        covered = it->g.logical_end();
      }
      if (covered < std::min(end, mem_start)) {
        return Status::NotFound("bytes at " + std::to_string(covered) +
                                " are in a released segment");
      }
    }
    // Pin the segments read from (see segment_readers_) under the same lock
    // as the lookup: pinned in a later critical section, a release could
    // erase the stripes, find no reader, and delete the files in between.
    for (const StripeEntry& e : parts) {
      if (pinned.empty() || pinned.back() != e.g.segment) pinned.push_back(e.g.segment);
    }
    for (SegmentId seg : pinned) ++segment_readers_[seg];
  }
  Status result = ReadParts(parts, offset, out);
  {
    MutexLock lock(&mu_);
    for (SegmentId seg : pinned) {
      auto it = segment_readers_.find(seg);
      if (--it->second == 0) segment_readers_.erase(it);
    }
  }
  segment_readers_cv_.NotifyAll();
  return result;
}

Status Volume::ReadParts(const std::vector<StripeEntry>& parts, uint64_t offset,
                         std::span<std::byte> out) {
  const uint64_t end = offset + out.size();
  for (const StripeEntry& e : parts) {
    const uint64_t b = std::max(offset, e.g.logical_start);
    const uint64_t e_end = std::min(end, e.g.logical_end());
    if (e.lost) {
      return Status::DataLoss("stripe " + std::to_string(e.g.seq.value()) +
                              " was found unrecoverable (two or more bad units) when the volume "
                              "was opened");
    }
    RETURN_IF_ERROR(ReadStripe(e.g, b - e.g.logical_start,
                               out.subspan(b - offset, static_cast<size_t>(e_end - b))));
  }
  return Status::Ok();
}

Status Volume::ReadStripe(const StripeGeometry& g, uint64_t offset_in_stripe,
                          std::span<std::byte> out) {
  const uint64_t end = offset_in_stripe + out.size();
  const uint64_t unit_len = g.unit_len;
  for (uint32_t j = static_cast<uint32_t>(offset_in_stripe / unit_len);
       j < g.data_units() && uint64_t{j} * unit_len < end; ++j) {
    const uint64_t ub = std::max(offset_in_stripe, uint64_t{j} * unit_len) - uint64_t{j} * unit_len;
    const uint64_t ue = std::min(end, uint64_t{j + 1} * unit_len) - uint64_t{j} * unit_len;
    const auto c0 = static_cast<uint32_t>(ub / kChunkSize);
    const auto c1 = static_cast<uint32_t>((ue + kChunkSize - 1) / kChunkSize);
    const DiskIndex d = g.DataDisk(j);
    UnitReadError why = UnitReadError::kNone;
    auto chunks = ReadUnitChunks(g, d, c0, c1, &why, /*check_rebuilding=*/false,
                                 /*cached_header=*/true);
    if (!chunks.ok()) {
      NoteUnitError(d, why,
                    "stripe " + std::to_string(g.seq.value()) + ": " + chunks.status().ToString());
      chunks = ReconstructChunks(g, d, c0, c1);
      if (!chunks.ok()) {
        counters_.unrecoverable.fetch_add(1);
        return chunks.status();
      }
      counters_.reconstructed_reads.fetch_add(1);
      if (why != UnitReadError::kDiskFailed) QueueRepair(g, d);
    }
    const uint64_t from = ub - uint64_t{c0} * kChunkSize;
    std::memcpy(out.data() + (uint64_t{j} * unit_len + ub - offset_in_stripe),
                chunks->data() + from, static_cast<size_t>(ue - ub));
  }
  return Status::Ok();
}

Result<std::vector<std::byte>> Volume::ReadUnitChunks(const StripeGeometry& g, DiskIndex d,
                                                      uint32_t c0, uint32_t c1, UnitReadError* why,
                                                      bool check_rebuilding, bool cached_header) {
  *why = UnitReadError::kNone;
  {
    MutexLock lock(&mu_);
    const Slot& slot = *slots_[d.value()];
    if (slot.state == DiskState::kFailed) {
      *why = UnitReadError::kDiskFailed;
      return Status::Unavailable("disk " + std::to_string(d.value()) + " has failed");
    }
    if (slot.state == DiskState::kRebuilding && g.seq < slot.rebuild_floor && !check_rebuilding) {
      *why = UnitReadError::kDiskFailed;
      return Status::Unavailable("disk " + std::to_string(d.value()) + " is being rebuilt");
    }
  }
  auto file = GetFile(d, g.segment, /*create=*/false);
  if (!file.ok()) {
    *why = file.status().code() == StatusCode::kNotFound ? UnitReadError::kMissing
                                                         : UnitReadError::kIO;
    return file.status();
  }
  const uint64_t payload_at = g.file_offset + g.header_len;
  const uint64_t want_begin = uint64_t{c0} * kChunkSize;
  const uint64_t want_len = uint64_t{c1 - c0} * kChunkSize;
  const UnitKey key{g.seq.value(), g.generation, g.segment.value(), g.file_offset, d.value()};
  const bool use_cache = cached_header && want_begin >= options_.header_cache_from;
  UnitHeaderCache::Ptr cached = use_cache ? header_cache_.Get(key) : nullptr;
  std::optional<UnitHeader> read_here;  // not cached: no shared copy made
  std::vector<std::byte> chunks;
  bool have_chunks = false;
  if (cached == nullptr) {
    const bool merged = want_begin <= kMergeReadGap;
    std::vector<std::byte> head(g.header_len + (merged ? want_begin + want_len : 0));
    auto n = (*file)->ReadAt(g.file_offset, head);
    if (!n.ok()) {
      *why = UnitReadError::kIO;
      return n.status();
    }
    if (*n < head.size()) {
      *why = UnitReadError::kMissing;
      return Status::Corruption("unit is truncated");
    }
    uint32_t need = 0;
    auto decoded = DecodeUnitHeader(uuid_, std::span(head.data(), g.header_len), &need);
    if (!decoded.ok()) {
      *why = UnitReadError::kCorrupt;
      return decoded.status();
    }
    if (!decoded->geometry.SameStripeAs(g) || decoded->this_disk != d) {
      *why = UnitReadError::kCorrupt;
      return Status::Corruption("stale or misplaced unit (seq " +
                                std::to_string(decoded->geometry.seq.value()) + ", generation " +
                                std::to_string(decoded->geometry.generation) + ")");
    }
    if (use_cache) {
      cached = std::make_shared<const UnitHeader>(std::move(*decoded));
      header_cache_.Put(key, cached);
    } else {
      read_here = std::move(*decoded);
    }
    if (merged) {
      chunks.assign(head.begin() + static_cast<std::ptrdiff_t>(g.header_len + want_begin),
                    head.end());
      have_chunks = true;
    }
  }
  if (!have_chunks) {
    chunks.resize(want_len);
    auto m = (*file)->ReadAt(payload_at + want_begin, chunks);
    if (!m.ok()) {
      *why = UnitReadError::kIO;
      return m.status();
    }
    if (*m < chunks.size()) {
      *why = UnitReadError::kMissing;
      return Status::Corruption("unit payload is truncated");
    }
  }
  const UnitHeader& h = cached ? *cached : *read_here;
  for (uint32_t c = c0; c < c1; ++c) {
    std::span<const std::byte> chunk(chunks.data() + size_t{c - c0} * kChunkSize, kChunkSize);
    if (ChunkChecksum(chunk, c) != h.chunk_checksums[c]) {
      *why = UnitReadError::kCorrupt;
      return Status::Corruption("chunk " + std::to_string(c) + " fails its checksum");
    }
  }
  return chunks;
}

Result<std::vector<std::byte>> Volume::ReconstructChunks(const StripeGeometry& g, DiskIndex bad,
                                                         uint32_t c0, uint32_t c1) {
  if (g.members() < 2) {
    return Status::DataLoss("stripe " + std::to_string(g.seq.value()) + " has no redundancy (one " +
                            "disk) and its only unit, on disk " + std::to_string(bad.value()) +
                            ", is unreadable");
  }
  std::vector<std::byte> acc(size_t{c1 - c0} * kChunkSize, std::byte{0});
  for (uint32_t d = 0; d < slots_.size(); ++d) {
    if (!g.IsMember(DiskIndex(d)) || d == bad.value()) continue;
    UnitReadError why = UnitReadError::kNone;
    auto chunks = ReadUnitChunks(g, DiskIndex(d), c0, c1, &why);
    if (!chunks.ok()) {
      // No repair is queued for it here: repairing it would need the unit on
      // `bad`, whose repair needs this one (they would requeue each other).
      NoteUnitError(DiskIndex(d), why,
                    "stripe " + std::to_string(g.seq.value()) + ": " + chunks.status().ToString());
      return Status::DataLoss("stripe " + std::to_string(g.seq.value()) +
                              " is unrecoverable: the units on disks " +
                              std::to_string(bad.value()) + " and " + std::to_string(d) +
                              " are both unreadable (" + chunks.status().ToString() + ")");
    }
    XorInto(acc, *chunks);
  }
  return acc;
}

void Volume::NoteUnitError(DiskIndex d, UnitReadError why, const std::string& what) {
  switch (why) {
    case UnitReadError::kNone:
    case UnitReadError::kDiskFailed:
      return;
    case UnitReadError::kIO:
      slots_[d.value()]->io_errors.fetch_add(1);
      MarkDiskFailed(d, what);
      return;
    case UnitReadError::kCorrupt:
    case UnitReadError::kMissing:
      slots_[d.value()]->checksum_errors.fetch_add(1);
      counters_.corruptions_detected.fetch_add(1);
      LOG_EVERY_N_SEC(log_, kWarn, 5) << "disk " << d << ": " << what << " (repairing)";
      return;
  }
}

Status Volume::RewriteUnit(const StripeGeometry& g, DiskIndex d,
                           const std::vector<std::byte>* payload) {
  std::vector<std::byte> rebuilt;
  if (payload == nullptr) {
    ASSIGN_OR_RETURN(rebuilt, ReconstructChunks(g, d, 0, g.chunk_count()));
    payload = &rebuilt;
  }
  UnitHeader h{g, d, std::vector<uint64_t>(g.chunk_count())};
  for (uint32_t c = 0; c < g.chunk_count(); ++c) {
    h.chunk_checksums[c] = ChunkChecksum(
        std::span<const std::byte>(payload->data() + size_t{c} * kChunkSize, kChunkSize), c);
  }
  std::vector<std::byte> unit = EncodeUnitHeader(uuid_, h);
  unit.insert(unit.end(), payload->begin(), payload->end());
  {
    MutexLock lock(&mu_);
    if (SegmentReleasedLocked(g.segment)) return Status::Ok();
    if (slots_[d.value()]->state == DiskState::kFailed) {
      return Status::Unavailable("disk " + std::to_string(d.value()) + " has failed");
    }
  }
  bool created = false;
  auto file = GetFile(d, g.segment, /*create=*/true, &created);
  Status s = file.ok() ? (*file)->WriteAt(g.file_offset, unit) : file.status();
  if (s.ok() && created) s = disk_.SyncDir(DirOf(d));
  if (!s.ok()) {
    slots_[d.value()]->io_errors.fetch_add(1);
    MarkDiskFailed(d, s.ToString());
    return s;
  }
  slots_[d.value()]->repaired_units.fetch_add(1);
  return Status::Ok();
}

void Volume::QueueRepair(const StripeGeometry& g, DiskIndex d) {
  if (options_.read_only) return;
  MutexLock lock(&repair_mu_);
  if (stopping_) return;
  if (!repair_queued_.insert({g.seq.value(), d.value()}).second) return;
  repair_queue_.push_back({g, d});
  repair_cv_.NotifyAll();
}

void Volume::RepairLoop() {
  while (true) {
    RepairItem item;
    {
      MutexLock lock(&repair_mu_);
      repair_cv_.Wait(&repair_mu_,
                      [&]() REQUIRES(repair_mu_) { return stopping_ || !repair_queue_.empty(); });
      if (stopping_) return;
      item = repair_queue_.front();
      repair_queue_.pop_front();
      repair_busy_ = true;
    }
    // Verify first: a concurrent scrub or an earlier item may have fixed it.
    UnitReadError why = UnitReadError::kNone;
    bool bad = !ReadUnitChunks(item.g, item.disk, 0, item.g.chunk_count(), &why).ok() &&
               why != UnitReadError::kDiskFailed;
    if (bad) {
      Status s = RewriteUnit(item.g, item.disk, nullptr);
      if (s.ok()) {
        auto file = GetFile(item.disk, item.g.segment, false);
        s = file.ok() ? (*file)->Sync() : file.status();
      }
      if (s.ok()) {
        counters_.repairs_done.fetch_add(1);
        LOG_INFO(log_) << "repaired stripe " << item.g.seq << " unit on disk " << item.disk;
      } else {
        LOG_WARN(log_) << "could not repair stripe " << item.g.seq << " on disk " << item.disk
                       << ": " << s.ToString();
      }
    }
    MutexLock lock(&repair_mu_);
    repair_queued_.erase({item.g.seq.value(), item.disk.value()});
    repair_busy_ = false;
    repair_cv_.NotifyAll();
  }
}

}  // namespace cairn::raidlib
