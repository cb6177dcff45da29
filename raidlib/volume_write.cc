// The write path: Append buffers, WriteOut cuts the buffer into stripes and
// writes each unit once at a fresh offset, Sync group-commits.
//
// Why this order is safe: a stripe is written whole to fresh space, never
// over live data, so a crash mid-write can only leave a torn stripe beyond the
// last sync, which recovery cuts off (volume_recovery.cc). A stripe is
// reported durable only after every disk holding a unit of it has fsynced its
// segment file (and its directory, for a new file).
#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <map>

#include "common/checksum.h"
#include "raidlib/parity.h"
#include "raidlib/unit_header.h"
#include "raidlib/volume.h"

namespace cairn::raidlib {
namespace {

// Units a stripe over `members` disks needs to be readable.
uint32_t NeededUnits(uint32_t members) { return members >= 2 ? members - 1 : 1; }

}  // namespace

Result<uint64_t> Volume::Append(std::span<const std::byte> data) {
  if (options_.read_only) return Status::FailedPrecondition("volume is open read-only");
  uint64_t offset;
  bool flush;
  {
    MutexLock lock(&mu_);
    if (!sticky_error_.ok()) return sticky_error_;
    offset = end_offset_;
    pending_.insert(pending_.end(), data.begin(), data.end());
    end_offset_ += data.size();
    flush = pending_.size() >= options_.max_pending_bytes;
  }
  counters_.bytes_appended.fetch_add(data.size());
  if (flush) {
    // Back-pressure: the appender that fills the buffer writes it out. Its
    // bytes are in the log either way, so a failure here is not this
    // append's: it is sticky and the next Sync reports it.
    MutexLock w(&write_mu_);
    {
      MutexLock lock(&mu_);
      flush = pending_.size() >= options_.max_pending_bytes;
    }
    if (flush) WriteOut(/*sync=*/false).IgnoreError();
  }
  return offset;
}

Status Volume::Sync() {
  if (options_.read_only) return Status::FailedPrecondition("volume is open read-only");
  uint64_t target;
  {
    MutexLock lock(&mu_);
    if (!sticky_error_.ok()) return sticky_error_;
    target = end_offset_;
    if (durable_offset_ >= target) return Status::Ok();
  }
  // Group commit: while one caller writes and fsyncs, the others queue here;
  // the next one takes everything appended meanwhile in one write-out.
  MutexLock w(&write_mu_);
  {
    MutexLock lock(&mu_);
    if (!sticky_error_.ok()) return sticky_error_;
    if (durable_offset_ >= target) return Status::Ok();
  }
  return WriteOut(/*sync=*/true);
}

Status Volume::WriteOut(bool sync) {
  std::shared_ptr<const std::vector<std::byte>> batch;
  uint64_t batch_start;
  uint64_t batch_end;
  StripeSeq committed;
  {
    MutexLock lock(&mu_);
    auto moved = std::make_shared<std::vector<std::byte>>(std::move(pending_));
    pending_ = std::vector<std::byte>();
    // Regrowing from empty for every batch costs a copy per doubling: expect
    // a batch like the last one.
    pending_.reserve(moved->size());
    batch = moved;
    batch_start = pending_start_;
    batch_end = end_offset_;
    pending_start_ = end_offset_;
    inflight_ = batch;
    inflight_start_ = batch_start;
    committed = durable_seq_;
  }
  std::vector<StripeEntry> written;
  std::set<std::pair<uint32_t, uint32_t>> touched;  // (disk, segment) written
  std::set<uint32_t> new_dirs;                      // disks with a new segment file
  Status status;
  uint64_t pos = 0;
  while (pos < batch->size()) {
    StripeGeometry g;
    {
      MutexLock lock(&mu_);
      auto planned = PlanStripeLocked(batch_start + pos, batch->size() - pos, committed);
      if (!planned.ok()) {
        status = planned.status();
        break;
      }
      g = *planned;
    }
    status = WriteStripe(g, std::span(batch->data() + pos, g.data_len), &touched, &new_dirs);
    if (!status.ok()) break;
    written.push_back({g, false});
    pos += g.data_len;
  }

  if (status.ok() && sync) {
    {
      MutexLock lock(&mu_);
      touched.insert(unsynced_files_.begin(), unsynced_files_.end());
      new_dirs.insert(unsynced_dirs_.begin(), unsynced_dirs_.end());
    }
    // One fsync per file touched since the last sync, the disks in parallel
    // (commit latency is the slowest disk's, not the sum), then the
    // directories that gained a segment file. An error fails that disk, not
    // the batch: the check below decides whether the batch is still whole.
    std::map<uint32_t, std::vector<uint32_t>> by_disk;
    for (const auto& [d, seg] : touched) by_disk[d].push_back(seg);
    auto sync_disk = [this](uint32_t d, const std::vector<uint32_t>& segs) {
      for (uint32_t seg : segs) {
        auto file = GetFile(DiskIndex(d), SegmentId(seg), /*create=*/false);
        Status s = file.ok() ? (*file)->Sync() : file.status();
        if (!s.ok()) {
          slots_[d]->io_errors.fetch_add(1);
          MarkDiskFailed(DiskIndex(d), s.ToString());
          return;
        }
      }
    };
    // On kept threads (this one included): a thread made per sync cost
    // about 65 us on the dev VM, on every commit.
    std::vector<std::pair<uint32_t, const std::vector<uint32_t>*>> disks;
    for (const auto& [d, segs] : by_disk) disks.emplace_back(d, &segs);
    if (!disks.empty()) {
      std::atomic<size_t> next{0};
      sync_pool_.RunOnThreads(disks.size(), [&] {
        for (size_t i = next.fetch_add(1); i < disks.size(); i = next.fetch_add(1)) {
          sync_disk(disks[i].first, *disks[i].second);
        }
      });
    }
    // A disk directory deleted under us goes unnoticed by writes to files
    // already open: check that every disk written to still has its directory.
    std::set<uint32_t> disks_touched;
    for (const auto& [d, seg] : touched) disks_touched.insert(d);
    for (uint32_t d : disks_touched) {
      auto info = disk_.Stat(JoinPath(DirOf(DiskIndex(d)), kSuperblockName));
      if (!info.ok()) {
        slots_[d]->io_errors.fetch_add(1);
        MarkDiskFailed(DiskIndex(d), "its superblock is gone: " + info.status().ToString());
      }
    }
    for (uint32_t d : new_dirs) {
      Status s = disk_.SyncDir(DirOf(DiskIndex(d)));
      if (!s.ok()) {
        slots_[d]->io_errors.fetch_add(1);
        MarkDiskFailed(DiskIndex(d), s.ToString());
      }
    }
  }

  MutexLock lock(&mu_);
  if (status.ok()) {
    // Every unit on a disk that has not failed was written (a write error
    // fails its disk), so a stripe is whole while enough members are alive.
    const uint32_t alive = WritableMaskLocked();
    auto check = [&](const StripeGeometry& g) {
      if (static_cast<uint32_t>(std::popcount(g.member_mask & alive)) < NeededUnits(g.members())) {
        status = Status::DataLoss("stripe " + std::to_string(g.seq.value()) +
                                  " lost units on two disks before it was synced");
      }
    };
    for (const StripeEntry& e : written) check(e.g);
    for (auto it = stripes_.rbegin(); it != stripes_.rend() && it->g.seq > durable_seq_; ++it) {
      check(it->g);
    }
  }
  for (StripeEntry& e : written) stripes_.push_back(e);
  counters_.stripes_written.fetch_add(written.size());
  inflight_.reset();
  if (!status.ok()) {
    LOG_ERROR(log_) << "write-out failed, the volume refuses further writes: " << status.ToString();
    sticky_error_ = status;
    return status;
  }
  if (sync) {
    durable_offset_ = batch_end;
    if (!stripes_.empty()) durable_seq_ = stripes_.back().g.seq;
    unsynced_files_.clear();
    unsynced_dirs_.clear();
    counters_.syncs.fetch_add(1);
  } else {
    unsynced_files_.insert(touched.begin(), touched.end());
    unsynced_dirs_.insert(new_dirs.begin(), new_dirs.end());
  }
  return Status::Ok();
}

Result<StripeGeometry> Volume::PlanStripeLocked(uint64_t logical_start, uint64_t remaining,
                                                StripeSeq committed) {
  const uint32_t writable = WritableMaskLocked();
  std::vector<uint32_t> disks;
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    if ((writable >> i) & 1u) disks.push_back(i);
  }
  if (disks.empty()) return Status::IOError("no disk left to write to");
  StripeGeometry g;
  const auto w = static_cast<uint32_t>(disks.size());
  const uint32_t max_data_units = w >= 2 ? w - 1 : 1;
  const uint64_t len64 = std::min<uint64_t>(remaining, uint64_t{max_data_units} * max_unit_bytes_);
  const auto len = static_cast<uint32_t>(len64);
  // RAID-Z style width: a small batch uses only as many data units as it
  // fills, so a tiny append writes two units (data + parity), not N.
  const uint32_t data_units = std::clamp<uint32_t>(
      static_cast<uint32_t>((len64 + kChunkSize - 1) / kChunkSize), 1, max_data_units);
  const uint32_t members = w >= 2 ? data_units + 1 : 1;
  g.seq = next_seq_;
  next_seq_ = next_seq_.Next();
  const auto start = static_cast<uint32_t>(g.seq.value() % w);
  for (uint32_t k = 0; k < members; ++k) g.member_mask |= 1u << disks[(start + k) % w];
  if (w == 1 && slots_.size() >= 2) {
    // One disk left of several: write a mirror whose other half is a failed
    // disk, as classic RAID does, so that rebuilding that disk restores the
    // second copy. (A one-member stripe would stay single.)
    for (uint32_t d = 0; d < slots_.size(); ++d) {
      if (((writable >> d) & 1u) == 0) {
        g.member_mask |= 1u << d;
        break;
      }
    }
  }
  g.parity_disk = ParityDiskFor(g.member_mask, g.seq);
  g.num_disks = static_cast<uint8_t>(slots_.size());
  g.generation = generation_;
  g.committed_through = committed;
  g.logical_start = logical_start;
  g.data_len = len;
  g.unit_len = UnitLenFor(len, data_units);
  g.header_len = HeaderLenFor(g.unit_len);
  if (cur_offset_ > 0 && cur_offset_ + g.stride() > segment_bytes_) {
    cur_segment_ = cur_segment_.Next();
    cur_offset_ = 0;
  }
  g.segment = cur_segment_;
  g.file_offset = cur_offset_;
  cur_offset_ += g.stride();
  return g;
}

Status Volume::Seal() {
  MutexLock w(&write_mu_);
  StripeGeometry g;
  {
    MutexLock lock(&mu_);
    if (!sticky_error_.ok() || stripes_.empty()) return Status::Ok();
    if (durable_offset_ != end_offset_ || durable_seq_ != stripes_.back().g.seq) {
      return Status::Ok();  // unsynced data: there is nothing true to vouch for
    }
    if (stripes_.back().g.data_len == 0) return Status::Ok();  // already sealed
    // An empty stripe: one (zero) data unit and its mirror.
    auto planned = PlanStripeLocked(end_offset_, 0, durable_seq_);
    if (!planned.ok()) return Status::Ok();  // no disk left: nothing to seal with
    g = *planned;
  }
  std::set<std::pair<uint32_t, uint32_t>> touched;
  std::set<uint32_t> new_dirs;
  RETURN_IF_ERROR(WriteStripe(g, {}, &touched, &new_dirs));
  for (const auto& [d, seg] : touched) {
    auto file = GetFile(DiskIndex(d), SegmentId(seg), /*create=*/false);
    RETURN_IF_ERROR(file.ok() ? (*file)->Sync() : file.status());
  }
  for (uint32_t d : new_dirs) RETURN_IF_ERROR(disk_.SyncDir(DirOf(DiskIndex(d))));
  MutexLock lock(&mu_);
  stripes_.push_back({g, false});
  durable_seq_ = g.seq;
  return Status::Ok();
}

Status Volume::WriteStripe(const StripeGeometry& g, std::span<const std::byte> data,
                           std::set<std::pair<uint32_t, uint32_t>>* touched,
                           std::set<uint32_t>* new_dirs) {
  const uint32_t data_units = g.data_units();
  const uint32_t unit_len = g.unit_len;
  const bool has_parity = g.parity_disk != kNoParity;
  std::vector<std::byte> parity;  // filled by the first data unit, no zeroing
  std::vector<std::byte> padded;  // only for a partial last unit
  uint32_t writable;
  {
    MutexLock lock(&mu_);
    writable = WritableMaskLocked();
  }
  // Writes the header and then the payload (two requests: a full unit is
  // written straight from the caller's batch, never copied).
  auto write_unit = [&](DiskIndex d, std::span<const std::byte> payload) {
    if (((writable >> d.value()) & 1u) == 0) return;  // a failed member (degraded stripe)
    UnitHeader h{g, d, std::vector<uint64_t>(g.chunk_count())};
    for (uint32_t c = 0; c < g.chunk_count(); ++c) {
      h.chunk_checksums[c] = ChunkChecksum(payload.subspan(size_t{c} * kChunkSize, kChunkSize), c);
    }
    std::vector<std::byte> header = EncodeUnitHeader(uuid_, h);
    bool created = false;
    auto file = GetFile(d, g.segment, /*create=*/true, &created);
    if (created) new_dirs->insert(d.value());
    Status s = file.ok() ? (*file)->WriteAt(g.file_offset, header) : file.status();
    if (s.ok()) s = (*file)->WriteAt(g.file_offset + g.header_len, payload);
    if (!s.ok()) {
      slots_[d.value()]->io_errors.fetch_add(1);
      MarkDiskFailed(d, s.ToString());
      return;
    }
    touched->insert({d.value(), g.segment.value()});
  };

  for (uint32_t j = 0; j < data_units; ++j) {
    const uint64_t begin = uint64_t{j} * unit_len;
    const uint64_t end = std::min<uint64_t>(begin + unit_len, data.size());
    const size_t n = end > begin ? static_cast<size_t>(end - begin) : 0;
    std::span<const std::byte> payload;
    if (n == unit_len) {
      payload = data.subspan(static_cast<size_t>(begin), unit_len);
    } else {
      padded.assign(unit_len, std::byte{0});
      if (n > 0) std::memcpy(padded.data(), data.data() + begin, n);
      payload = padded;
    }
    if (has_parity) {
      if (j == 0) {
        parity.assign(payload.begin(), payload.end());
      } else {
        XorInto(parity, payload);
      }
    }
    write_unit(g.DataDisk(j), payload);
  }
  if (has_parity) write_unit(DiskIndex(g.parity_disk), parity);
  return Status::Ok();
}

}  // namespace cairn::raidlib
