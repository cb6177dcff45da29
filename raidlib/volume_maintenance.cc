// Scrub, disk replacement and rebuild, segment release.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "raidlib/parity.h"
#include "raidlib/volume.h"

namespace cairn::raidlib {
namespace {

uint32_t NeededUnits(uint32_t members) { return members >= 2 ? members - 1 : 1; }

}  // namespace

void Volume::Throttle(uint64_t bytes, Nanos start, uint64_t* bytes_so_far) {
  *bytes_so_far += bytes;
  const uint64_t rate = options_.rebuild_bytes_per_sec;
  if (rate == 0) return;
  const auto due = Nanos(
      static_cast<int64_t>(static_cast<double>(*bytes_so_far) * 1e9 / static_cast<double>(rate)));
  const Nanos elapsed = clock_.Now() - start;
  if (due > elapsed) clock_.SleepFor(due - elapsed);
}

Result<ScrubReport> Volume::Scrub(const ProgressFn& progress) {
  std::vector<StripeEntry> snapshot;
  {
    MutexLock lock(&mu_);
    snapshot = stripes_;
  }
  ScrubReport r;
  const Nanos start = clock_.Now();
  uint64_t throttled = 0;
  std::set<std::pair<uint32_t, uint32_t>> touched;
  const uint64_t total = snapshot.size();
  for (uint64_t i = 0; i < total; ++i) {
    const StripeEntry& e = snapshot[i];
    if (progress && (i % 64 == 0)) progress(i, total);
    const StripeGeometry& g = e.g;
    const std::string where = "stripe " + std::to_string(g.seq.value()) + " (segment " +
                              std::to_string(g.segment.value()) + ", offset " +
                              std::to_string(g.file_offset) + ")";
    if (e.lost) {
      r.unrecoverable_stripes++;
      r.problems.push_back(where + ": lost, found unrecoverable at open");
      continue;
    }
    {
      MutexLock lock(&mu_);
      if (SegmentReleasedLocked(g.segment)) continue;
    }
    r.stripes_checked++;
    std::vector<std::optional<std::vector<std::byte>>> units(slots_.size());
    std::vector<DiskIndex> bad;
    uint32_t on_failed = 0;
    for (uint32_t d = 0; d < slots_.size(); ++d) {
      if (!g.IsMember(DiskIndex(d))) continue;
      UnitReadError why = UnitReadError::kNone;
      auto u = ReadUnitChunks(g, DiskIndex(d), 0, g.chunk_count(), &why);
      if (u.ok()) {
        units[d] = std::move(u).value();
        r.bytes_read += g.stride();
      } else if (why == UnitReadError::kDiskFailed) {
        ++on_failed;
      } else {
        NoteUnitError(DiskIndex(d), why, where + ": " + u.status().ToString());
        bad.push_back(DiskIndex(d));
        r.problems.push_back(where + " disk " + std::to_string(d) + ": " + u.status().ToString());
      }
    }
    r.bad_units += bad.size();
    if (on_failed > 0) r.degraded_stripes++;
    const uint32_t intact = g.members() - on_failed - static_cast<uint32_t>(bad.size());
    if (intact < NeededUnits(g.members())) {
      r.unrecoverable_stripes++;
      counters_.unrecoverable.fetch_add(1);
      r.problems.push_back(where + ": UNRECOVERABLE, " + std::to_string(intact) + " of " +
                           std::to_string(g.members()) + " units intact");
    } else if (bad.empty() && on_failed == 0 && g.members() >= 2) {
      // Every unit verified: the parity must then agree with the data.
      std::vector<std::byte> x(g.unit_len, std::byte{0});
      for (auto& u : units) {
        if (u) XorInto(x, *u);
      }
      if (std::any_of(x.begin(), x.end(), [](std::byte b) { return b != std::byte{0}; })) {
        r.bad_units++;
        r.problems.push_back(where + ": parity does not match the data although every unit " +
                             "verifies (cannot tell which is wrong)");
      }
    } else if (!bad.empty() && !options_.read_only) {
      const DiskIndex d = bad.front();  // recoverable means exactly one is missing
      std::vector<std::byte> payload(g.unit_len, std::byte{0});
      for (auto& u : units) {
        if (u) XorInto(payload, *u);
      }
      Status s = RewriteUnit(g, d, &payload);
      if (s.ok()) {
        r.repaired_units++;
        counters_.repairs_done.fetch_add(1);
        touched.insert({d.value(), g.segment.value()});
      } else {
        r.problems.push_back(where + " disk " + std::to_string(d.value()) +
                             ": repair failed: " + s.ToString());
      }
    }
    Throttle(g.stride() * g.members(), start, &throttled);
  }
  for (const auto& [d, seg] : touched) {
    auto f = GetFile(DiskIndex(d), SegmentId(seg), false);
    Status s = f.ok() ? (*f)->Sync() : f.status();
    if (!s.ok()) MarkDiskFailed(DiskIndex(d), s.ToString());
  }
  if (progress) progress(total, total);
  LOG_INFO(log_) << "scrub: " << r.stripes_checked << " stripes, " << r.bad_units << " bad units, "
                 << r.repaired_units << " repaired, " << r.unrecoverable_stripes
                 << " unrecoverable";
  return r;
}

Status Volume::ReplaceDisk(DiskIndex d, const std::string& new_dir) {
  if (options_.read_only) return Status::FailedPrecondition("volume is open read-only");
  if (d.value() >= num_disks()) {
    return Status::InvalidArgument("no disk " + std::to_string(d.value()) + " in a volume of " +
                                   std::to_string(num_disks()));
  }
  // No write-out runs while the slot changes: new stripes see either the old
  // state (not a member) or the new one (a member), never a half-made disk.
  MutexLock w(&write_mu_);
  MutexLock config_lock(&config_mu_);
  if (config_.disk_states[d.value()] != DiskState::kFailed) {
    return Status::FailedPrecondition("disk " + std::to_string(d.value()) + " is " +
                                      DiskStateName(config_.disk_states[d.value()]) +
                                      "; only a failed disk can be replaced");
  }
  {
    MutexLock lock(&rebuild_mu_);
    if (rebuild_.active) return Status::FailedPrecondition("a rebuild is already running");
  }
  const std::string dir = new_dir.empty() ? DirOf(d) : new_dir;
  auto info = disk_.Stat(dir);
  if (info.ok()) {
    if (!info->is_dir) return Status::InvalidArgument(dir + " is not a directory");
    ASSIGN_OR_RETURN(auto names, disk_.ListDir(dir));
    bool has_sb = std::find(names.begin(), names.end(), kSuperblockName) != names.end();
    if (has_sb) {
      auto sb = ReadSuperblock(disk_, dir);
      if (sb.ok() && (sb->volume != uuid_ || sb->disk_index != d)) {
        return Status::InvalidArgument(dir + " holds disk " +
                                       std::to_string(sb->disk_index.value()) + " of volume " +
                                       VolumeUuidString(sb->volume) + ", not disk " +
                                       std::to_string(d.value()) + " of this one");
      }
    } else if (!names.empty()) {
      return Status::AlreadyExists(dir + " is not empty and holds no disk of this volume");
    }
    // The same disk back: drop segment files the log does not use and cut the
    // others at the log's end, so no stale unit can be mistaken for data.
    std::map<uint32_t, uint64_t> seg_end;
    {
      MutexLock lock(&mu_);
      for (const StripeEntry& e : stripes_) {
        seg_end[e.g.segment.value()] = e.g.file_offset + e.g.stride();
      }
    }
    DropFiles(d);
    for (const auto& name : names) {
      if (name.rfind(kSegmentPrefix, 0) != 0) continue;
      const std::string path = JoinPath(dir, name);
      uint32_t id = static_cast<uint32_t>(std::strtoul(name.c_str() + 4, nullptr, 10));
      auto it = seg_end.find(id);
      if (it == seg_end.end()) {
        RETURN_IF_ERROR(disk_.Remove(path));
      } else {
        ASSIGN_OR_RETURN(auto f, disk_.Open(path, OpenMode::kReadWrite));
        ASSIGN_OR_RETURN(uint64_t size, f->Size());
        if (size > it->second) {
          RETURN_IF_ERROR(f->Truncate(it->second));
          RETURN_IF_ERROR(f->Sync());
        }
      }
    }
  } else if (info.status().code() == StatusCode::kNotFound) {
    RETURN_IF_ERROR(disk_.CreateDir(dir));
    RETURN_IF_ERROR(disk_.SyncDir(ParentPath(dir)));
  } else {
    return info.status();
  }
  {
    MutexLock lock(&files_mu_);
    slots_[d.value()]->dir = dir;
  }
  config_.disk_states[d.value()] = DiskState::kRebuilding;
  config_.epoch += 1;
  {
    MutexLock lock(&mu_);
    slots_[d.value()]->state = DiskState::kRebuilding;
    slots_[d.value()]->rebuild_floor = next_seq_;
  }
  RETURN_IF_ERROR(PersistConfigLocked());
  RETURN_IF_ERROR(disk_.SyncDir(dir));
  LOG_INFO(log_) << "disk " << d << " replaced by " << dir << "; rebuilding in the background";
  {
    MutexLock lock(&rebuild_mu_);
    rebuild_ = RebuildProgress{};
    rebuild_.active = true;
    rebuild_.disk = d;
  }
  if (rebuild_thread_.joinable()) rebuild_thread_.join();
  rebuild_thread_ = std::thread([this, d] { RebuildLoop(d); });
  return Status::Ok();
}

void Volume::RebuildLoop(DiskIndex d) {
  std::vector<StripeEntry> snapshot;
  {
    MutexLock lock(&mu_);
    for (const StripeEntry& e : stripes_) {
      if (!e.lost && e.g.IsMember(d)) snapshot.push_back(e);
    }
  }
  {
    MutexLock lock(&rebuild_mu_);
    rebuild_.stripes_total = snapshot.size();
  }
  const Nanos start = clock_.Now();
  uint64_t throttled = 0;
  std::set<uint32_t> touched;
  std::string error;
  for (const StripeEntry& e : snapshot) {
    if (stop_rebuild_.load()) {
      error = "stopped; it resumes when the volume is opened again";
      break;
    }
    {
      MutexLock lock(&mu_);
      if (slots_[d.value()]->state == DiskState::kFailed) {
        error = "the new disk failed during the rebuild";
        break;
      }
      if (SegmentReleasedLocked(e.g.segment)) {
        MutexLock rl(&rebuild_mu_);
        rebuild_.stripes_done++;
        continue;
      }
    }
    UnitReadError why = UnitReadError::kNone;
    bool intact =
        ReadUnitChunks(e.g, d, 0, e.g.chunk_count(), &why, /*check_rebuilding=*/true).ok();
    uint64_t written = 0;
    bool lost = false;
    if (!intact) {
      Status s = RewriteUnit(e.g, d, nullptr);
      if (s.code() == StatusCode::kDataLoss) {
        lost = true;
        LOG_ERROR(log_) << "rebuild of disk " << d << ": " << s.ToString();
      } else if (!s.ok()) {
        error = s.ToString();
        break;
      } else {
        written = e.g.stride();
        touched.insert(e.g.segment.value());
      }
    }
    {
      MutexLock lock(&rebuild_mu_);
      rebuild_.stripes_done++;
      if (written > 0) rebuild_.units_rewritten++;
      rebuild_.bytes_written += written;
      if (lost) rebuild_.unrecoverable++;
    }
    if (written > 0) Throttle(written, start, &throttled);
  }
  if (error.empty()) {
    for (uint32_t seg : touched) {
      auto f = GetFile(d, SegmentId(seg), false);
      Status s = f.ok() ? (*f)->Sync() : f.status();
      if (!s.ok()) {
        error = s.ToString();
        MarkDiskFailed(d, error);
        break;
      }
    }
  }
  if (error.empty()) {
    Status s = disk_.SyncDir(DirOf(d));
    if (!s.ok()) error = s.ToString();
  }
  if (error.empty()) {
    MutexLock config_lock(&config_mu_);
    if (config_.disk_states[d.value()] == DiskState::kRebuilding) {
      config_.disk_states[d.value()] = DiskState::kHealthy;
      config_.epoch += 1;
      {
        MutexLock lock(&mu_);
        slots_[d.value()]->state = DiskState::kHealthy;
      }
      Status s = PersistConfigLocked();
      if (!s.ok()) error = s.ToString();
    }
  }
  std::optional<DiskIndex> next;
  {
    MutexLock lock(&rebuild_mu_);
    rebuild_.active = false;
    rebuild_.error = error;
    if (error.empty()) {
      LOG_INFO(log_) << "disk " << d << " rebuilt: " << rebuild_.units_rewritten << " units, "
                     << rebuild_.bytes_written << " bytes written, " << rebuild_.unrecoverable
                     << " unrecoverable";
    } else {
      LOG_ERROR(log_) << "rebuild of disk " << d << " stopped: " << error;
    }
  }
  if (error.empty() && !stop_rebuild_.load()) {
    MutexLock config_lock(&config_mu_);
    for (uint32_t i = 0; i < num_disks(); ++i) {
      if (config_.disk_states[i] == DiskState::kRebuilding) next = DiskIndex(i);
    }
  }
  if (next) {
    {
      MutexLock lock(&rebuild_mu_);
      rebuild_ = RebuildProgress{};
      rebuild_.active = true;
      rebuild_.disk = *next;
    }
    RebuildLoop(*next);
    return;
  }
  rebuild_cv_.NotifyAll();
}

RebuildProgress Volume::rebuild_progress() const {
  MutexLock lock(&rebuild_mu_);
  return rebuild_;
}

void Volume::WaitForBackgroundWork() {
  for (int round = 0; round < 2; ++round) {
    {
      MutexLock lock(&rebuild_mu_);
      rebuild_cv_.Wait(&rebuild_mu_, [&]() REQUIRES(rebuild_mu_) { return !rebuild_.active; });
    }
    MutexLock lock(&repair_mu_);
    repair_cv_.Wait(&repair_mu_, [&]() REQUIRES(repair_mu_) {
      return stopping_ || (repair_queue_.empty() && !repair_busy_);
    });
  }
}

Status Volume::ReleaseSegment(SegmentId id) {
  if (options_.read_only) return Status::FailedPrecondition("volume is open read-only");
  MutexLock w(&write_mu_);
  MutexLock config_lock(&config_mu_);
  {
    MutexLock lock(&mu_);
    if (SegmentReleasedLocked(id)) return Status::Ok();
    if (id >= cur_segment_) {
      return Status::FailedPrecondition("segment " + std::to_string(id.value()) +
                                        " is not sealed (appends still go to it)");
    }
    bool any = std::any_of(stripes_.begin(), stripes_.end(),
                           [&](const StripeEntry& e) { return e.g.segment == id; });
    if (!any) return Status::NotFound("no segment " + std::to_string(id.value()));
  }
  // Record the release first: a crash before the files are gone leaves
  // leftovers that the next open deletes, never a segment that comes back.
  config_.released.push_back(id);
  std::sort(config_.released.begin(), config_.released.end());
  config_.epoch += 1;
  RETURN_IF_ERROR(PersistConfigLocked());
  {
    MutexLock lock(&mu_);
    released_.insert(id);
    std::erase_if(stripes_, [&](const StripeEntry& e) { return e.g.segment == id; });
    // No new read can find the segment now; let those in flight finish.
    segment_readers_cv_.Wait(&mu_, [&]() REQUIRES(mu_) { return segment_readers_.count(id) == 0; });
  }
  {
    MutexLock lock(&files_mu_);
    std::erase_if(files_, [&](const auto& kv) { return kv.first.second == id.value(); });
  }
  for (uint32_t d = 0; d < num_disks(); ++d) {
    if (config_.disk_states[d] == DiskState::kFailed) continue;
    Status s = disk_.Remove(SegmentPath(DiskIndex(d), id));
    if (!s.ok() && s.code() != StatusCode::kNotFound) {
      LOG_WARN(log_) << "disk " << d << ": " << s.ToString() << " (deleted at next open)";
      continue;
    }
    disk_.SyncDir(DirOf(DiskIndex(d))).IgnoreError();  // a leftover is deleted at next open
  }
  return Status::Ok();
}

}  // namespace cairn::raidlib
