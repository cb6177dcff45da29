// A Disk that injects faults into another Disk, per path prefix (normally one
// disk directory of a volume): a dead disk (every call fails), I/O errors on
// reads, writes or syncs, lost writes (reported done, never stored) and bit
// flips in what reads return. Faults fire with probability 1/one_in from a
// seeded Random, so a failing run replays exactly.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/disk.h"
#include "common/random.h"

namespace cairn {

enum class FaultKind {
  kDead,          // every operation under the prefix fails with IOError
  kReadError,     // ReadAt fails with IOError
  kWriteError,    // WriteAt and Truncate fail with IOError
  kSyncError,     // Sync and SyncDir fail with IOError
  kLostWrite,     // WriteAt returns OK and stores nothing
  kReadBitFlip,   // ReadAt returns the data with one bit flipped
};

class FaultDisk : public Disk {
 public:
  // `base` must outlive this object.
  FaultDisk(Disk* base, uint64_t seed);
  ~FaultDisk() override;

  // Adds a fault for paths starting with `prefix`, firing 1 time in `one_in`.
  void Inject(const std::string& prefix, FaultKind kind, uint64_t one_in = 1);
  void ClearFaults();
  void ClearFaults(const std::string& prefix);
  // How many faults fired so far.
  uint64_t injected() const { return injected_.load(); }

  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override;
  Status Remove(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;
  Status CreateDir(const std::string& dir) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Result<FileInfo> Stat(const std::string& path) override;

 private:
  class FaultFile;
  // True when a fault of `kind` (or kDead) fires for `path`.
  bool Fires(const std::string& path, FaultKind kind);
  uint64_t RandomBelow(uint64_t n);

  struct Rule {
    std::string prefix;
    FaultKind kind;
    uint64_t one_in;
  };
  Disk* const base_;
  std::mutex mu_;
  std::vector<Rule> rules_;  // guarded by mu_
  Random rng_;               // guarded by mu_
  std::atomic<uint64_t> injected_{0};
};

}  // namespace cairn
