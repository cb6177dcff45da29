// A test Disk over a MemDisk that simulates a power cut at a chosen moment:
// either when told (CutPower) or at the n-th mutating call (ArmCrash), before
// or right after that call reaches the MemDisk. From the cut on, every call
// through this object fails with IOError, as if the process had died with the
// machine, so nothing the code under test does afterwards (destructors,
// background threads) can reach the "disk" that a reopen will see. Reopen
// through a fresh CrashPointDisk (or the MemDisk itself).
//
// Mutating calls: Open for create, WriteAt, Sync, Truncate, Remove, Rename,
// SyncDir, CreateDir. Thread-safe: a call in flight finishes before the cut.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/disk.h"
#include "common/mem_disk.h"
#include "common/random.h"

namespace cairn::testutil {

class CrashPointDisk : public Disk {
 public:
  // `base` must outlive this object and every File it opened.
  explicit CrashPointDisk(MemDisk* base) : base_(base) {}

  // Cuts power when the mutating call numbered `op` (counted from 0 over the
  // life of this object) is made: before it reaches the disk, or just after
  // it did (its result is then returned). The crash keeps unsynced writes as
  // `mode` says, choosing at random from `seed`.
  void ArmCrash(uint64_t op, bool after_op, MemDisk::CrashMode mode, uint64_t seed) {
    std::unique_lock lock(mu_);
    armed_ = true;
    crash_op_ = op;
    after_op_ = after_op;
    mode_ = mode;
    crash_seed_ = seed;
  }
  void Disarm() {
    std::unique_lock lock(mu_);
    armed_ = false;
  }
  // Cuts power now. Idempotent.
  void CutPower(MemDisk::CrashMode mode, uint64_t seed) {
    std::unique_lock lock(mu_);
    CutLocked(mode, seed);
  }
  bool crashed() const {
    std::shared_lock lock(mu_);
    return crashed_;
  }
  // Mutating calls made so far (including one that triggered the cut).
  uint64_t mutating_ops() const { return ops_.load(); }

  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override {
    bool mutating = mode == OpenMode::kCreate || mode == OpenMode::kCreateNew;
    return Do<Result<std::unique_ptr<File>>>(mutating, [&]() -> Result<std::unique_ptr<File>> {
      ASSIGN_OR_RETURN(std::unique_ptr<File> f, base_->Open(path, mode));
      return std::unique_ptr<File>(new CrashFile(this, std::move(f)));
    });
  }
  Status Remove(const std::string& path) override {
    return Do<Status>(true, [&] { return base_->Remove(path); });
  }
  Status Rename(const std::string& from, const std::string& to) override {
    return Do<Status>(true, [&] { return base_->Rename(from, to); });
  }
  Status SyncDir(const std::string& dir) override {
    return Do<Status>(true, [&] { return base_->SyncDir(dir); });
  }
  Status CreateDir(const std::string& dir) override {
    return Do<Status>(true, [&] { return base_->CreateDir(dir); });
  }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    return Do<Result<std::vector<std::string>>>(false, [&] { return base_->ListDir(dir); });
  }
  Result<FileInfo> Stat(const std::string& path) override {
    return Do<Result<FileInfo>>(false, [&] { return base_->Stat(path); });
  }

 private:
  class CrashFile : public File {
   public:
    CrashFile(CrashPointDisk* disk, std::unique_ptr<File> base)
        : disk_(disk), base_(std::move(base)) {}
    Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> out) override {
      return disk_->Do<Result<size_t>>(false, [&] { return base_->ReadAt(offset, out); });
    }
    Status WriteAt(uint64_t offset, std::span<const std::byte> data) override {
      return disk_->Do<Status>(true, [&] { return base_->WriteAt(offset, data); });
    }
    Status Sync() override {
      return disk_->Do<Status>(true, [&] { return base_->Sync(); });
    }
    Status Truncate(uint64_t size) override {
      return disk_->Do<Status>(true, [&] { return base_->Truncate(size); });
    }
    Result<uint64_t> Size() override {
      return disk_->Do<Result<uint64_t>>(false, [&] { return base_->Size(); });
    }

   private:
    CrashPointDisk* const disk_;  // outlives its files
    const std::unique_ptr<File> base_;
  };

  static Status PowerCutError() { return Status::IOError("simulated power cut"); }

  void CutLocked(MemDisk::CrashMode mode, uint64_t seed) {  // requires mu_ exclusively
    if (crashed_) return;
    crashed_ = true;
    Random rng(seed);
    base_->Crash(mode, &rng);
  }

  template <typename R, typename F>
  R Do(bool mutating, F&& fn) {
    bool cut_before = false;
    bool cut_after = false;
    {
      std::shared_lock lock(mu_);
      if (crashed_) return R(PowerCutError());
      if (mutating) {
        uint64_t n = ops_.fetch_add(1);
        if (armed_ && n == crash_op_) (after_op_ ? cut_after : cut_before) = true;
      }
      if (!cut_before) {
        R result = fn();
        if (!cut_after) return result;
        lock.unlock();
        std::unique_lock ulock(mu_);
        CutLocked(mode_, crash_seed_);
        return result;
      }
    }
    std::unique_lock ulock(mu_);
    CutLocked(mode_, crash_seed_);
    return R(PowerCutError());
  }

  MemDisk* const base_;
  mutable std::shared_mutex mu_;  // shared by calls in flight, exclusive to cut
  std::atomic<uint64_t> ops_{0};
  bool crashed_ = false;  // guarded by mu_
  bool armed_ = false;    // guarded by mu_
  uint64_t crash_op_ = 0;
  bool after_op_ = false;
  MemDisk::CrashMode mode_ = MemDisk::CrashMode::kDropUnsynced;
  uint64_t crash_seed_ = 0;
};

}  // namespace cairn::testutil
