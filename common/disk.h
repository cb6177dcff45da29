// The disk seam (STYLE.md rule 3): all file-system access of the storage
// layers goes through a Disk, so tests can swap in an in-memory disk that
// loses unsynced writes on a simulated crash (mem_disk.h) or a disk that
// injects errors, bit flips and lost writes (fault_disk.h).
//
// Concurrency: a Disk is thread-safe. A File may be used from several threads
// for ReadAt/WriteAt at disjoint ranges; Truncate must not race with I/O.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace cairn {

enum class OpenMode {
  kRead,        // must exist
  kReadWrite,   // must exist
  kCreate,      // read-write, created if missing
  kCreateNew,   // read-write, AlreadyExists if present
};

class File {
 public:
  virtual ~File() = default;
  // Reads up to out.size() bytes at `offset`; returns how many were read, which
  // is less than requested only at end of file.
  virtual Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> out) = 0;
  // Writes all of `data` at `offset`, extending the file if needed. Not durable
  // until Sync() returns OK.
  virtual Status WriteAt(uint64_t offset, std::span<const std::byte> data) = 0;
  // Makes every completed write and the file size durable (fdatasync).
  virtual Status Sync() = 0;
  virtual Status Truncate(uint64_t size) = 0;
  virtual Result<uint64_t> Size() = 0;
};

struct FileInfo {
  bool is_dir = false;
  uint64_t size = 0;
};

class Disk {
 public:
  virtual ~Disk() = default;
  virtual Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) = 0;
  // Removing or renaming a name is durable only after SyncDir() of its parent.
  virtual Status Remove(const std::string& path) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status SyncDir(const std::string& dir) = 0;
  // Creates one directory level; OK if it already exists as a directory.
  virtual Status CreateDir(const std::string& dir) = 0;
  // Names in `dir` (no "." or ".."), unsorted.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // NotFound if missing.
  virtual Result<FileInfo> Stat(const std::string& path) = 0;
};

// The process's real disk (POSIX calls). Thread-safe.
Disk& PosixDiskInstance();

// Atomic file replacement, the only way Cairn replaces a file: writes
// `<path>.tmp`, fsyncs it, renames it over `path`, fsyncs the directory.
// After OK the new contents are durable; after a crash at any point the file
// holds either the old or the new contents, whole.
Status WriteFileAtomic(Disk& disk, const std::string& path, std::span<const std::byte> data);

// Reads a whole file of at most `max_size` bytes (InvalidArgument if larger).
Result<std::vector<std::byte>> ReadWholeFile(Disk& disk, const std::string& path,
                                             uint64_t max_size);

// "a/b" from ("a", "b"); the parent of "a/b" is "a".
std::string JoinPath(const std::string& dir, const std::string& name);
std::string ParentPath(const std::string& path);

}  // namespace cairn
