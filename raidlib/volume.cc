// Volume: creation, opening, configuration (superblocks) and file handles.
// The write path is in volume_write.cc, reads and repair in volume_read.cc,
// crash recovery in volume_recovery.cc, scrub and rebuild in
// volume_maintenance.cc.
#include "raidlib/volume.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

namespace cairn::raidlib {
namespace {

Status ValidateOptions(const VolumeOptions& o) {
  if (o.disk_dirs.empty()) return Status::InvalidArgument("a volume needs at least one disk");
  if (o.disk_dirs.size() > kMaxDisks) {
    return Status::InvalidArgument("a volume has at most " + std::to_string(kMaxDisks) +
                                   " disks, " + std::to_string(o.disk_dirs.size()) + " given");
  }
  std::set<std::string> seen;
  for (const auto& d : o.disk_dirs) {
    if (d.empty()) return Status::InvalidArgument("empty disk directory name");
    std::string norm = d;
    while (norm.size() > 1 && norm.back() == '/') norm.pop_back();
    if (!seen.insert(norm).second) {
      return Status::InvalidArgument("disk directory " + d + " is given twice");
    }
  }
  if (o.max_unit_bytes == 0 || o.max_unit_bytes % kChunkSize != 0 ||
      o.max_unit_bytes > kMaxUnitBytes) {
    return Status::InvalidArgument(
        "max_unit_bytes must be a multiple of " + std::to_string(kChunkSize) + " between " +
        std::to_string(kChunkSize) + " and " + std::to_string(kMaxUnitBytes) + ", not " +
        std::to_string(o.max_unit_bytes));
  }
  return Status::Ok();
}

VolumeUuid NewUuid() {
  VolumeUuid id{};
  std::random_device rd;  // only for identity, never for test-visible behaviour
  for (size_t i = 0; i < id.size(); i += 4) {
    uint32_t v = rd();
    std::memcpy(id.data() + i, &v, 4);
  }
  id[6] = (id[6] & std::byte{0x0F}) | std::byte{0x40};  // version 4
  id[8] = (id[8] & std::byte{0x3F}) | std::byte{0x80};
  return id;
}

}  // namespace

Volume::Volume(VolumeOptions options, Disk& disk, Clock& clock)
    : options_(std::move(options)),
      disk_(disk),
      clock_(clock),
      log_("raidlib"),
      header_cache_(options_.header_cache_bytes) {
  for (const auto& d : options_.disk_dirs) {
    auto slot = std::make_unique<Slot>();
    slot->dir = d;
    slots_.push_back(std::move(slot));
  }
}

Status Volume::Create(const VolumeOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  if (options.segment_bytes <
      2ull * (options.max_unit_bytes + HeaderLenFor(options.max_unit_bytes))) {
    return Status::InvalidArgument("segment_bytes must hold at least two of the largest units");
  }
  Disk& disk = options.disk ? *options.disk : PosixDiskInstance();
  Clock& clock = options.clock ? *options.clock : RealClock();
  Logger log("raidlib");
  // Check every directory before writing anything.
  for (const auto& dir : options.disk_dirs) {
    auto info = disk.Stat(dir);
    if (info.ok()) {
      if (!info->is_dir) return Status::InvalidArgument(dir + " exists and is not a directory");
      ASSIGN_OR_RETURN(auto names, disk.ListDir(dir));
      if (!names.empty()) {
        return Status::AlreadyExists("disk directory " + dir + " is not empty (" +
                                     std::to_string(names.size()) +
                                     " entries); a new volume needs empty directories");
      }
    } else if (info.status().code() != StatusCode::kNotFound) {
      return info.status();
    }
  }
  Superblock sb;
  sb.volume = NewUuid();
  sb.num_disks = static_cast<uint32_t>(options.disk_dirs.size());
  sb.max_unit_bytes = options.max_unit_bytes;
  sb.segment_bytes = options.segment_bytes;
  sb.epoch = 1;
  sb.created_wall_ns = clock.WallNanos();
  sb.disk_states.assign(sb.num_disks, DiskState::kHealthy);
  for (uint32_t i = 0; i < sb.num_disks; ++i) {
    const std::string& dir = options.disk_dirs[i];
    RETURN_IF_ERROR(disk.CreateDir(dir));
    sb.disk_index = DiskIndex(i);
    RETURN_IF_ERROR(WriteSuperblock(disk, dir, sb));
    RETURN_IF_ERROR(disk.SyncDir(ParentPath(dir)));
  }
  if (sb.num_disks == 1) {
    LOG_WARN(log) << "volume " << VolumeUuidString(sb.volume)
                  << " has ONE disk: no redundancy, a bad block or a dead disk loses data";
  }
  LOG_INFO(log) << "created volume " << VolumeUuidString(sb.volume) << " over " << sb.num_disks
                << " disks";
  return Status::Ok();
}

Result<std::unique_ptr<Volume>> Volume::Open(const VolumeOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  Disk& disk = options.disk ? *options.disk : PosixDiskInstance();
  Clock& clock = options.clock ? *options.clock : RealClock();
  std::unique_ptr<Volume> v(new Volume(options, disk, clock));
  RETURN_IF_ERROR(v->LoadConfig());
  RETURN_IF_ERROR(v->RecoverLog());
  if (!options.read_only) {
    v->repair_thread_ = std::thread([p = v.get()] { p->RepairLoop(); });
    std::optional<uint32_t> rebuilding;
    {
      MutexLock lock(&v->config_mu_);
      for (uint32_t i = 0; i < v->num_disks() && !rebuilding; ++i) {
        if (v->config_.disk_states[i] == DiskState::kRebuilding) rebuilding = i;
      }
    }
    if (rebuilding) {  // one rebuild at a time; the next starts when this one ends
      const DiskIndex d(*rebuilding);
      {
        MutexLock lock(&v->rebuild_mu_);
        v->rebuild_ = RebuildProgress{};
        v->rebuild_.active = true;
        v->rebuild_.disk = d;
      }
      v->rebuild_thread_ = std::thread([p = v.get(), d] { p->RebuildLoop(d); });
    }
  }
  return v;
}

Volume::~Volume() {
  if (!options_.read_only) {
    Status s = Seal();
    if (!s.ok()) LOG_WARN(log_) << "closing without a seal: " << s.ToString();
  }
  stop_rebuild_.store(true);
  {
    MutexLock lock(&repair_mu_);
    stopping_ = true;
  }
  repair_cv_.NotifyAll();
  if (repair_thread_.joinable()) repair_thread_.join();
  if (rebuild_thread_.joinable()) rebuild_thread_.join();
}

Status Volume::LoadConfig() {
  const uint32_t n = num_disks();
  std::vector<std::optional<Superblock>> found(n);
  uint32_t damaged = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const std::string& dir = slots_[i]->dir;
    auto sb = ReadSuperblock(disk_, dir);
    if (!sb.ok()) {
      if (sb.status().code() == StatusCode::kInvalidArgument) return sb.status();
      if (sb.status().code() != StatusCode::kNotFound) {
        ++damaged;
        LOG_ERROR(log_) << "disk " << i << " (" << dir << "): " << sb.status().ToString();
      }
      continue;
    }
    found[i] = *sb;
  }
  // Identity checks: every superblock found must agree on the volume, the
  // slot and the width; a mistake here must not be "repaired" by a rebuild.
  // The volume is the one most directories belong to, so the message names
  // the odd directory out.
  std::map<VolumeUuid, uint32_t> votes;
  for (const auto& sb : found) {
    if (sb) votes[sb->volume]++;
  }
  VolumeUuid majority{};
  uint32_t most = 0;
  for (const auto& [id, count] : votes) {
    if (count > most) {
      majority = id;
      most = count;
    }
  }
  std::optional<Superblock> best;
  for (uint32_t i = 0; i < n; ++i) {
    if (!found[i]) continue;
    const Superblock& sb = *found[i];
    if (sb.volume != majority) {
      return Status::InvalidArgument("disk directory " + slots_[i]->dir + " belongs to volume " +
                                     VolumeUuidString(sb.volume) + ", the others to " +
                                     VolumeUuidString(majority));
    }
    if (sb.num_disks != n) {
      return Status::InvalidArgument("disk directory " + slots_[i]->dir +
                                     " belongs to a volume of " + std::to_string(sb.num_disks) +
                                     " disks, but " + std::to_string(n) +
                                     " directories were given");
    }
    if (sb.disk_index.value() != i) {
      return Status::InvalidArgument("disk directory " + slots_[i]->dir + " is disk " +
                                     std::to_string(sb.disk_index.value()) +
                                     " of its volume but was given as disk " + std::to_string(i) +
                                     "; give the directories in their original order");
    }
    if (!best || sb.epoch > best->epoch) best = sb;
  }
  if (!best && damaged > 0) {
    return Status::Corruption("the superblock of every disk that has one is damaged (" +
                              std::to_string(damaged) + " of " + std::to_string(n) +
                              "); the volume cannot be opened");
  }
  if (!best) {
    return Status::NotFound("no volume in " + slots_[0]->dir +
                            (n > 1 ? " and the other given directories" : std::string()) +
                            " (create one with `cairn-volume create`)");
  }
  MutexLock config_lock(&config_mu_);
  config_ = *best;
  uuid_ = config_.volume;
  max_unit_bytes_ = config_.max_unit_bytes;
  segment_bytes_ = config_.segment_bytes;
  log_ = Logger("raidlib", "vol=" + VolumeUuidString(uuid_).substr(0, 8));
  uint32_t usable = 0;
  {
    MutexLock lock(&mu_);
    for (SegmentId s : config_.released) released_.insert(s);
    for (uint32_t i = 0; i < n; ++i) {
      slots_[i]->state = config_.disk_states[i];
      if (!found[i] && config_.disk_states[i] != DiskState::kFailed) {
        LOG_ERROR(log_) << "disk " << i << " (" << slots_[i]->dir
                        << ") has no valid superblock: marking it failed; replace it with "
                           "`cairn-volume replace --disk "
                        << i << "`";
        config_.disk_states[i] = DiskState::kFailed;
        slots_[i]->state = DiskState::kFailed;
      }
      usable += slots_[i]->state != DiskState::kFailed ? 1u : 0u;
    }
  }
  if (usable == 0) return Status::DataLoss("every disk of the volume has failed");
  if (options_.read_only) {
    generation_ = config_.epoch;
    return Status::Ok();
  }
  // Every open for writing takes a new epoch: units written from now on carry
  // it as their generation, which tells them apart from any stale unit left at
  // the same place by an earlier run.
  config_.epoch += 1;
  generation_ = config_.epoch;
  return PersistConfigLocked();
}

Status Volume::PersistConfigLocked() {
  uint32_t written = 0;
  Status last_error;
  for (uint32_t i = 0; i < num_disks(); ++i) {
    if (config_.disk_states[i] == DiskState::kFailed) continue;
    Superblock sb = config_;
    sb.disk_index = DiskIndex(i);
    Status s = WriteSuperblock(disk_, DirOf(DiskIndex(i)), sb);
    if (!s.ok()) {
      // Not recursive: mark it here, the loop goes on and the later disks
      // record the new state; disks before it are rewritten below.
      LOG_ERROR(log_) << "disk " << i << ": cannot write superblock: " << s.ToString();
      slots_[i]->io_errors.fetch_add(1);
      config_.disk_states[i] = DiskState::kFailed;
      {
        MutexLock lock(&mu_);
        slots_[i]->state = DiskState::kFailed;
      }
      last_error = s;
      return PersistConfigLocked();
    }
    ++written;
  }
  if (written == 0) {
    return Status::IOError("no disk accepted the volume configuration: " + last_error.ToString());
  }
  return Status::Ok();
}

void Volume::MarkDiskFailed(DiskIndex d, const std::string& why) {
  MutexLock config_lock(&config_mu_);
  if (config_.disk_states[d.value()] == DiskState::kFailed) return;
  LOG_ERROR(log_) << "disk " << d << " (" << DirOf(d) << ") FAILED: " << why
                  << "; the volume goes on degraded. Replace it with `cairn-volume replace --disk "
                  << d << "`";
  config_.disk_states[d.value()] = DiskState::kFailed;
  {
    MutexLock lock(&mu_);
    slots_[d.value()]->state = DiskState::kFailed;
  }
  DropFiles(d);
  if (options_.read_only) return;
  config_.epoch += 1;
  Status s = PersistConfigLocked();
  if (!s.ok()) {
    MutexLock lock(&mu_);
    if (sticky_error_.ok()) sticky_error_ = s;
  }
  uint32_t left = 0;
  {
    MutexLock lock(&mu_);
    left = static_cast<uint32_t>(std::popcount(WritableMaskLocked()));
  }
  if (left == 1) {
    LOG_ERROR(log_) << "only one disk is left: new data has NO redundancy";
  }
}

uint32_t Volume::WritableMaskLocked() const {
  uint32_t mask = 0;
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i]->state != DiskState::kFailed) mask |= 1u << i;
  }
  return mask;
}

bool Volume::SegmentReleasedLocked(SegmentId seg) const { return released_.count(seg) != 0; }

std::string Volume::DirOf(DiskIndex d) const {
  MutexLock lock(&files_mu_);
  return slots_[d.value()]->dir;
}

std::string Volume::SegmentPath(DiskIndex d, SegmentId seg) const {
  MutexLock lock(&files_mu_);
  return SegmentPathLocked(d, seg);
}

std::string Volume::SegmentPathLocked(DiskIndex d, SegmentId seg) const {
  char name[32];
  std::snprintf(name, sizeof(name), "%s%08u", kSegmentPrefix, seg.value());
  return JoinPath(slots_[d.value()]->dir, name);
}

Result<std::shared_ptr<File>> Volume::GetFile(DiskIndex d, SegmentId seg, bool create,
                                              bool* created) {
  if (created != nullptr) *created = false;
  MutexLock lock(&files_mu_);
  auto key = std::make_pair(d.value(), seg.value());
  auto it = files_.find(key);
  if (it != files_.end()) return it->second;
  const std::string path = SegmentPathLocked(d, seg);
  Result<std::unique_ptr<File>> f = Status::NotFound(path);
  if (create) {
    // Try to create it first, so that we know whether the directory entry is
    // new and must be fsynced.
    f = disk_.Open(path, OpenMode::kCreateNew);
    if (f.ok()) {
      if (created != nullptr) *created = true;
    } else if (f.status().code() == StatusCode::kAlreadyExists) {
      f = disk_.Open(path, OpenMode::kReadWrite);
    }
  } else {
    f = disk_.Open(path, options_.read_only ? OpenMode::kRead : OpenMode::kReadWrite);
  }
  if (!f.ok()) return f.status();
  std::shared_ptr<File> file(std::move(f).value());
  files_[key] = file;
  return file;
}

void Volume::DropFiles(DiskIndex d) {
  MutexLock lock(&files_mu_);
  std::erase_if(files_, [&](const auto& kv) { return kv.first.first == d.value(); });
}

uint64_t Volume::end_offset() const {
  MutexLock lock(&mu_);
  return end_offset_;
}

uint64_t Volume::durable_offset() const {
  MutexLock lock(&mu_);
  return durable_offset_;
}

Status Volume::SetAppRoot(std::span<const std::byte> root) {
  if (options_.read_only) return Status::FailedPrecondition("volume is open read-only");
  if (root.size() > kMaxAppRootBytes) {
    return Status::InvalidArgument("application root of " + std::to_string(root.size()) +
                                   " bytes; at most " + std::to_string(kMaxAppRootBytes));
  }
  MutexLock config_lock(&config_mu_);
  Superblock next = config_;
  next.app_root.assign(root.begin(), root.end());
  next.epoch += 1;
  std::swap(config_, next);
  Status s = PersistConfigLocked();
  if (!s.ok()) {
    // Not durable anywhere: keep answering with the old root.
    config_.app_root = next.app_root;
  }
  return s;
}

std::vector<std::byte> Volume::app_root() const {
  MutexLock config_lock(&config_mu_);
  return config_.app_root;
}

uint64_t Volume::epoch() const {
  MutexLock lock(&config_mu_);
  return config_.epoch;
}

std::string Volume::uuid() const { return VolumeUuidString(uuid_); }

std::vector<DiskStatus> Volume::disks() const {
  MutexLock lock(&mu_);
  std::vector<DiskStatus> out;
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = *slots_[i];
    out.push_back({DiskIndex(i), DirOf(DiskIndex(i)), s.state, s.io_errors.load(),
                   s.checksum_errors.load(), s.repaired_units.load()});
  }
  return out;
}

VolumeStats Volume::stats() const {
  VolumeStats s;
  s.bytes_appended = counters_.bytes_appended.load();
  s.stripes_written = counters_.stripes_written.load();
  s.syncs = counters_.syncs.load();
  s.reconstructed_reads = counters_.reconstructed_reads.load();
  s.corruptions_detected = counters_.corruptions_detected.load();
  s.repairs_done = counters_.repairs_done.load();
  s.unrecoverable = counters_.unrecoverable.load();
  s.header_cache_hits = header_cache_.hits();
  s.header_cache_misses = header_cache_.misses();
  s.header_cache_bytes = header_cache_.bytes();
  return s;
}

std::vector<SegmentInfo> Volume::Segments() const {
  MutexLock lock(&mu_);
  std::vector<SegmentInfo> out;
  // A segment is sealed once a stripe of a later one is published. Not
  // cur_segment_: planning moves it to the next segment while stripes of the
  // previous one are still being written (and not yet in stripes_).
  const SegmentId newest = stripes_.empty() ? SegmentId(0) : stripes_.back().g.segment;
  for (const StripeEntry& e : stripes_) {
    if (out.empty() || out.back().id != e.g.segment) {
      SegmentInfo info;
      info.id = e.g.segment;
      info.logical_start = e.g.logical_start;
      info.sealed = e.g.segment < newest;
      out.push_back(info);
    }
    SegmentInfo& info = out.back();
    info.logical_end = e.g.logical_end();
    info.stripes += 1;
    info.bytes_on_disk = e.g.file_offset + e.g.stride();
    info.allocated_bytes += e.g.stride() * e.g.members();
    info.dense_bytes += uint64_t{e.g.data_len} * e.g.members() / e.g.data_units();
  }
  return out;
}

}  // namespace cairn::raidlib
