// An in-memory Disk that models what survives a power loss, for crash tests
// and the simulation (the idea of LevelDB's fault_injection_test.cc).
//
// Each file keeps its durable contents (as of its last Sync) and the writes
// made since. Names (create, rename, remove) are durable only after SyncDir of
// their directory. Crash() throws away what was not made durable, optionally
// keeping a random part of it (some unsynced writes survive, some are torn),
// which is what real disks do. Directories exist once created (CreateDir is
// treated as durable).
//
// Thread-safe: one mutex guards all state.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/disk.h"
#include "common/random.h"

namespace cairn {

class MemDisk : public Disk {
 public:
  MemDisk();
  ~MemDisk() override;

  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override;
  Status Remove(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;
  Status CreateDir(const std::string& dir) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Result<FileInfo> Stat(const std::string& path) override;

  enum class CrashMode {
    kDropUnsynced,   // exactly the durable state survives
    kRandomPartial,  // each unsynced write survives, is lost or is torn at random
  };
  // Simulates a power loss. Open File handles become stale (their I/O fails).
  void Crash(CrashMode mode, Random* rng);

  // Test helpers that act on the current contents directly, bypassing faults.
  Status Corrupt(const std::string& path, uint64_t offset, std::span<const std::byte> bytes);
  Status FlipBit(const std::string& path, uint64_t bit_offset);
  Status TruncateFile(const std::string& path, uint64_t size);
  Status RemoveDirRecursive(const std::string& dir);

 private:
  struct Node;
  class MemFile;
  std::shared_ptr<Node> FindLocked(const std::string& path);  // requires mu_

  std::mutex mu_;
  uint64_t crash_generation_ = 0;                            // guarded by mu_
  std::set<std::string> dirs_;                               // guarded by mu_
  std::map<std::string, std::shared_ptr<Node>> names_;       // guarded by mu_
  std::map<std::string, std::shared_ptr<Node>> durable_names_;  // guarded by mu_
};

}  // namespace cairn
