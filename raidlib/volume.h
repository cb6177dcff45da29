// A raidlib volume: an append-only, checksummed, erasure-coded byte log over N
// disk directories (DESIGN.md "Storage on a chunk server"). It knows nothing
// of documents: callers append bytes, get back their logical offset, make them
// durable with Sync() and read any range back.
//
// Guarantees
//  - After Sync() returns OK, every byte appended before the call survives a
//    crash at any later point and the loss or silent corruption of any one
//    disk's copy of any stripe.
//  - Reads return the bytes appended, verified by checksum, or an error:
//    never wrong data. A unit that fails verification or sits on a failed or
//    missing disk is reconstructed from the other units and parity, and the
//    bad copy is repaired in the background. Two bad units in one stripe are
//    reported as DataLoss.
//  - A disk that returns an I/O error is marked failed (persisted in the
//    superblocks of the others); the volume goes on degraded and new stripes
//    are written across the remaining disks. ReplaceDisk() rebuilds it.
//  - Stripes are written whole at fresh offsets, never modified in place
//    (repair rewrites a unit with the same bytes it should have had).
//
// Concurrency: all public methods are thread-safe. Appends are ordered by the
// time they take the internal lock. Sync() is group-committed: concurrent
// callers share one write-out and one fsync per disk.
//
// Lock order: write_mu_ -> config_mu_ -> mu_ -> files_mu_ -> repair_mu_.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/disk.h"
#include "common/logging.h"
#include "common/lru_cache.h"
#include "common/mutex.h"
#include "common/status.h"
#include "common/worker_pool.h"
#include "raidlib/stripe_geometry.h"
#include "raidlib/superblock.h"
#include "raidlib/unit_header.h"

namespace cairn::raidlib {

struct VolumeOptions {
  // One directory per disk, in slot order. The order is part of the volume:
  // open with the same order it was created with (a mismatch is an error).
  std::vector<std::string> disk_dirs;
  // Fixed at Create(): the largest unit (a stripe holds up to (members-1) of
  // them) and the size at which a segment file is closed and a new one begun.
  uint32_t max_unit_bytes = 1u << 20;
  uint64_t segment_bytes = 256ull << 20;
  // Append() writes stripes out (without fsync) once this much is buffered.
  uint64_t max_pending_bytes = 16ull << 20;
  // Unit headers (their chunk checksums: 8 bytes per 4 KiB chunk) kept in
  // memory for the read path, so that a small read costs only the chunks it
  // needs; 0 disables. Scrub, repair, rebuild and recovery always read the
  // headers on disk.
  uint64_t header_cache_bytes = 64ull << 20;
  // Reads of chunks that start below this payload offset read the header
  // with them in one request and leave the cache alone: that costs about
  // what a lookup in a large table does (a scan of small documents, one
  // 4 KiB unit each, spent 17% of its time in cache lookups at 0).
  uint64_t header_cache_from = 16 << 10;
  // Throttle for rebuild and scrub, bytes per second; 0 means unthrottled.
  uint64_t rebuild_bytes_per_sec = 0;
  // Open without writing anything: no epoch bump, no tail truncation, no
  // repairs. Append, Sync, ReplaceDisk and ReleaseSegment fail.
  bool read_only = false;
  // Seams; nullptr means the real disk and clock. Borrowed: must outlive the
  // volume.
  Disk* disk = nullptr;
  Clock* clock = nullptr;
};

struct DiskStatus {
  DiskIndex index;
  std::string dir;
  DiskState state = DiskState::kHealthy;
  uint64_t io_errors = 0;
  uint64_t checksum_errors = 0;  // units or chunks found bad
  uint64_t repaired_units = 0;   // units rewritten by repair, scrub or rebuild
};

struct VolumeStats {
  uint64_t bytes_appended = 0;
  uint64_t stripes_written = 0;
  uint64_t syncs = 0;                // group commits that reached the disks
  uint64_t reconstructed_reads = 0;  // reads served by reconstruction
  uint64_t corruptions_detected = 0;
  uint64_t repairs_done = 0;
  uint64_t unrecoverable = 0;  // stripes found with two or more bad units
  // The read path's unit-header cache (VolumeOptions::header_cache_bytes).
  uint64_t header_cache_hits = 0;
  uint64_t header_cache_misses = 0;
  uint64_t header_cache_bytes = 0;
};

struct RebuildProgress {
  bool active = false;
  DiskIndex disk;
  uint64_t stripes_total = 0;
  uint64_t stripes_done = 0;
  uint64_t units_rewritten = 0;
  uint64_t bytes_written = 0;
  uint64_t unrecoverable = 0;
  std::string error;  // why the last rebuild stopped early, if it did
};

struct ScrubReport {
  uint64_t stripes_checked = 0;
  uint64_t bytes_read = 0;
  uint64_t bad_units = 0;  // failed verification (missing, corrupt, stale)
  uint64_t repaired_units = 0;
  uint64_t degraded_stripes = 0;  // a unit on a failed disk
  uint64_t unrecoverable_stripes = 0;
  std::vector<std::string> problems;  // one line per bad unit or stripe
  bool clean() const { return bad_units == 0 && unrecoverable_stripes == 0; }
};

struct SegmentInfo {
  SegmentId id;
  uint64_t logical_start = 0;
  uint64_t logical_end = 0;
  uint64_t stripes = 0;
  uint64_t bytes_on_disk = 0;  // per member disk, headers and padding included
  bool sealed = false;         // no more appends go to it; may be released
  // Over all member disks: the bytes its stripes take (headers and the
  // zero padding of their units included), and what the same stripes' data
  // and parity would take without them. Their ratio is how densely the
  // segment is written: near 1 for full stripes, low for many small ones
  // (a 100-byte stripe takes two 4 KiB units behind 4 KiB headers).
  uint64_t allocated_bytes = 0;
  uint64_t dense_bytes = 0;
};

// Called with (done, total) now and then by long operations.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

class Volume {
 public:
  // Formats a new volume. Each directory must be missing (it is created; its
  // parent must exist) or empty. N = 1 is allowed with a loud warning: it has
  // no redundancy.
  static Status Create(const VolumeOptions& options);

  // Opens an existing volume and recovers it after a crash: a torn tail (an
  // unsynced stripe that cannot be completed) is cut off, damaged units of
  // complete stripes are queued for repair, missing disks are marked failed.
  static Result<std::unique_ptr<Volume>> Open(const VolumeOptions& options);

  // Stops background work. Appends not yet synced are lost, as in a crash.
  // If everything appended is synced, writes a small seal stripe first so that
  // the next open knows the last batch was complete (see Seal()).
  ~Volume();
  Volume(const Volume&) = delete;
  Volume& operator=(const Volume&) = delete;

  // Buffers `data` at the end of the log and returns its logical offset. Not
  // durable until Sync(). Fails once a write-out has failed (sticky error).
  Result<uint64_t> Append(std::span<const std::byte> data);
  // Returns after everything appended before the call is on disk (each disk
  // fsynced once per group commit).
  Status Sync();
  // Reads [offset, offset + out.size()) of the log, appended before the call
  // (synced or not). InvalidArgument past the end; NotFound inside a released
  // segment; DataLoss where redundancy could not restore the bytes.
  Status Read(uint64_t offset, std::span<std::byte> out);

  uint64_t end_offset() const;      // where the next Append goes
  uint64_t durable_offset() const;  // everything below is synced

  // A small root (at most kMaxAppRootBytes) the application keeps with the
  // volume, e.g. where its newest checkpoint starts. SetAppRoot returns after
  // the new root is durable on every disk that is not failed; after a crash
  // the root is the old one or the new one, whole.
  Status SetAppRoot(std::span<const std::byte> root);
  std::vector<std::byte> app_root() const;

  std::vector<SegmentInfo> Segments() const;
  // Gives a sealed segment's space back; its range can no longer be read.
  Status ReleaseSegment(SegmentId id);

  // Reads every unit of every stripe, verifies checksums and parity, and
  // repairs what one unit's damage explains. Throttled by
  // rebuild_bytes_per_sec. In read-only mode it reports without repairing.
  Result<ScrubReport> Scrub(const ProgressFn& progress = nullptr);

  // Accepts a new (empty) directory, or the same one back, in the slot of a
  // failed disk and starts rebuilding it in the background. New stripes use it
  // at once. FailedPrecondition if the disk is not failed.
  Status ReplaceDisk(DiskIndex disk, const std::string& new_dir = "");
  RebuildProgress rebuild_progress() const;
  // Waits until queued repairs and any rebuild have finished (tests, tools).
  void WaitForBackgroundWork();

  std::vector<DiskStatus> disks() const;
  VolumeStats stats() const;
  std::string uuid() const;
  uint32_t num_disks() const { return static_cast<uint32_t>(slots_.size()); }
  uint64_t epoch() const;

 private:
  struct Slot {
    std::string dir;  // guarded by files_mu_ (changes in ReplaceDisk); read with DirOf()
    DiskState state = DiskState::kHealthy;  // guarded by mu_ (written under config_mu_ too)
    // While rebuilding: stripes below this sequence number may lack a good
    // unit here; reads reconstruct them without counting an error.
    StripeSeq rebuild_floor;  // guarded by mu_
    std::atomic<uint64_t> io_errors{0};
    std::atomic<uint64_t> checksum_errors{0};
    std::atomic<uint64_t> repaired_units{0};
  };
  struct StripeEntry {
    StripeGeometry g;
    bool lost = false;  // found unrecoverable at open: reads fail with DataLoss
  };
  struct RepairItem {
    StripeGeometry g;
    DiskIndex disk;
  };
  // One unit: a stripe (its sequence number and generation, placed at
  // file_offset of its segment) on one disk. A header cached under it was
  // read there and matched the stripe's geometry; units are written once
  // (a repair or rebuild writes the same checksums again), so it never goes
  // stale.
  struct UnitKey {
    uint64_t seq = 0;
    uint64_t generation = 0;
    uint64_t segment = 0;
    uint64_t file_offset = 0;
    uint32_t disk = 0;
    bool operator==(const UnitKey&) const = default;
  };
  struct UnitKeyHash {
    size_t operator()(const UnitKey& k) const {
      size_t h = std::hash<uint64_t>()(k.seq);
      for (uint64_t v : {k.generation, k.segment, k.file_offset, uint64_t{k.disk}}) {
        h = HashCombine(h, std::hash<uint64_t>()(v));
      }
      return h;
    }
  };
  struct UnitHeaderCharge {
    uint64_t operator()(const UnitHeader& h) const {
      return sizeof(UnitHeader) + h.chunk_checksums.size() * sizeof(uint64_t) + 64;
    }
  };
  using UnitHeaderCache = LruCache<UnitKey, UnitHeader, UnitKeyHash, UnitHeaderCharge>;
  // The outcome of reading one unit (or part of it).
  enum class UnitReadError { kNone, kDiskFailed, kIO, kCorrupt, kMissing };

  Volume(VolumeOptions options, Disk& disk, Clock& clock);

  // volume.cc: configuration and files.
  Status LoadConfig();
  Status PersistConfigLocked() REQUIRES(config_mu_);
  void MarkDiskFailed(DiskIndex d, const std::string& why);
  // With `create`, makes the segment file if missing and sets *created; the
  // caller must then fsync the disk directory before relying on the file.
  Result<std::shared_ptr<File>> GetFile(DiskIndex d, SegmentId seg, bool create,
                                        bool* created = nullptr);
  void DropFiles(DiskIndex d);
  std::string SegmentPath(DiskIndex d, SegmentId seg) const;
  std::string SegmentPathLocked(DiskIndex d, SegmentId seg) const REQUIRES(files_mu_);
  std::string DirOf(DiskIndex d) const;
  uint32_t WritableMaskLocked() const REQUIRES(mu_);
  bool SegmentReleasedLocked(SegmentId seg) const REQUIRES(mu_);

  // volume_recovery.cc: the open-time scan.
  Status RecoverLog();

  // volume_write.cc
  Status WriteOut(bool sync) REQUIRES(write_mu_);
  // Chooses the next stripe's members, width and place for up to `remaining`
  // bytes starting at `logical_start`; takes its sequence number and space.
  Result<StripeGeometry> PlanStripeLocked(uint64_t logical_start, uint64_t remaining,
                                          StripeSeq committed) REQUIRES(mu_);
  // Writes and fsyncs an empty, mirrored stripe whose committed_through
  // vouches for every synced stripe. Without it, damage found in the last
  // synced batch at the next open cannot be told from a torn write.
  Status Seal();
  // Writes every unit of `g` to its disk (not synced); records the files
  // written in *touched and the disks that gained a new file in *new_dirs.
  Status WriteStripe(const StripeGeometry& g, std::span<const std::byte> data,
                     std::set<std::pair<uint32_t, uint32_t>>* touched,
                     std::set<uint32_t>* new_dirs);

  // volume_read.cc
  Status ReadStripe(const StripeGeometry& g, uint64_t offset_in_stripe, std::span<std::byte> out);
  // Reads [offset, offset + out.size()) from `parts` (pinned by the caller).
  Status ReadParts(const std::vector<StripeEntry>& parts, uint64_t offset,
                   std::span<std::byte> out);
  // Reads payload chunks [c0, c1) of the unit on `d`, verified.
  // A unit on a rebuilding disk that the rebuild has not reached yet reads as
  // kDiskFailed unless `check_rebuilding` (the rebuild's own check).
  // `cached_header`: the unit's header may come from (and goes to)
  // header_cache_ (the read path); else it is read and checked on disk.
  Result<std::vector<std::byte>> ReadUnitChunks(const StripeGeometry& g, DiskIndex d, uint32_t c0,
                                                uint32_t c1, UnitReadError* why,
                                                bool check_rebuilding = false,
                                                bool cached_header = false);
  // Rebuilds chunks [c0, c1) of the unit on `bad` from the other members.
  Result<std::vector<std::byte>> ReconstructChunks(const StripeGeometry& g, DiskIndex bad,
                                                   uint32_t c0, uint32_t c1);
  // Rewrites the whole unit of `g` on `d` from the other members (or from
  // `payload` when given). Not synced, except the directory when the segment
  // file had to be created; the caller syncs the file.
  Status RewriteUnit(const StripeGeometry& g, DiskIndex d, const std::vector<std::byte>* payload);
  void NoteUnitError(DiskIndex d, UnitReadError why, const std::string& what);
  void QueueRepair(const StripeGeometry& g, DiskIndex d);
  void RepairLoop();

  // volume_maintenance.cc
  void RebuildLoop(DiskIndex d);
  void Throttle(uint64_t bytes, Nanos start, uint64_t* bytes_so_far);

  const VolumeOptions options_;
  Disk& disk_;    // borrowed
  Clock& clock_;  // borrowed
  Logger log_;
  std::vector<std::unique_ptr<Slot>> slots_;

  Mutex write_mu_ ACQUIRED_BEFORE(config_mu_);  // one write-out at a time; held across fsync

  mutable Mutex config_mu_ ACQUIRED_BEFORE(mu_);  // serializes configuration changes
  Superblock config_ GUARDED_BY(config_mu_);      // states mirrored in slots_

  mutable Mutex mu_ ACQUIRED_BEFORE(files_mu_, repair_mu_);
  VolumeUuid uuid_{};                                 // set at open, then constant
  uint64_t generation_ = 0;                           // set at open, then constant
  uint32_t max_unit_bytes_ = 0;                       // set at open, then constant
  uint64_t segment_bytes_ = 0;                        // set at open, then constant
  std::vector<StripeEntry> stripes_ GUARDED_BY(mu_);  // sorted by logical_start
  std::set<SegmentId> released_ GUARDED_BY(mu_);
  // Reads in progress per segment: ReleaseSegment waits for them before it
  // deletes the files, so a read that found its stripes finishes on them
  // (and never mistakes vanished files for a failed disk).
  std::map<SegmentId, uint32_t> segment_readers_ GUARDED_BY(mu_);
  CondVar segment_readers_cv_;
  uint64_t end_offset_ GUARDED_BY(mu_) = 0;
  uint64_t durable_offset_ GUARDED_BY(mu_) = 0;
  StripeSeq next_seq_ GUARDED_BY(mu_){1};
  StripeSeq durable_seq_ GUARDED_BY(mu_){0};
  SegmentId cur_segment_ GUARDED_BY(mu_){0};
  uint64_t cur_offset_ GUARDED_BY(mu_) = 0;         // next free offset in cur_segment_
  std::vector<std::byte> pending_ GUARDED_BY(mu_);  // bytes not yet written out
  uint64_t pending_start_ GUARDED_BY(mu_) = 0;      // logical offset of pending_[0]
  std::shared_ptr<const std::vector<std::byte>> inflight_ GUARDED_BY(mu_);
  uint64_t inflight_start_ GUARDED_BY(mu_) = 0;
  Status sticky_error_ GUARDED_BY(mu_);
  std::set<std::pair<uint32_t, uint32_t>> unsynced_files_ GUARDED_BY(mu_);  // (disk, segment)
  std::set<uint32_t> unsynced_dirs_ GUARDED_BY(mu_);

  mutable Mutex files_mu_;
  std::map<std::pair<uint32_t, uint32_t>, std::shared_ptr<File>> files_ GUARDED_BY(files_mu_);

  struct Counters {
    std::atomic<uint64_t> bytes_appended{0};
    std::atomic<uint64_t> stripes_written{0};
    std::atomic<uint64_t> syncs{0};
    std::atomic<uint64_t> reconstructed_reads{0};
    std::atomic<uint64_t> corruptions_detected{0};
    std::atomic<uint64_t> repairs_done{0};
    std::atomic<uint64_t> unrecoverable{0};
  } counters_;
  UnitHeaderCache header_cache_;

  Mutex repair_mu_;
  CondVar repair_cv_;
  std::deque<RepairItem> repair_queue_ GUARDED_BY(repair_mu_);
  std::set<std::pair<uint64_t, uint32_t>> repair_queued_ GUARDED_BY(repair_mu_);
  bool repair_busy_ GUARDED_BY(repair_mu_) = false;
  bool stopping_ GUARDED_BY(repair_mu_) = false;
  std::thread repair_thread_;

  mutable Mutex rebuild_mu_;
  CondVar rebuild_cv_;
  RebuildProgress rebuild_ GUARDED_BY(rebuild_mu_);
  std::thread rebuild_thread_;
  std::atomic<bool> stop_rebuild_{false};

  // Threads that fsync the disks of a write-out in parallel.
  WorkerPool sync_pool_;
};

}  // namespace cairn::raidlib
