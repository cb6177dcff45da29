#include "common/fault_disk.h"

namespace cairn {

class FaultDisk::FaultFile : public File {
 public:
  FaultFile(FaultDisk* disk, std::unique_ptr<File> base, std::string path)
      : disk_(disk), base_(std::move(base)), path_(std::move(path)) {}

  Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> out) override {
    if (disk_->Fires(path_, FaultKind::kReadError)) {
      return Status::IOError("read " + path_ + ": injected I/O error");
    }
    ASSIGN_OR_RETURN(size_t n, base_->ReadAt(offset, out));
    if (n > 0 && disk_->Fires(path_, FaultKind::kReadBitFlip)) {
      uint64_t bit = disk_->RandomBelow(n * 8);
      out[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
    }
    return n;
  }

  Status WriteAt(uint64_t offset, std::span<const std::byte> data) override {
    if (disk_->Fires(path_, FaultKind::kWriteError)) {
      return Status::IOError("write " + path_ + ": injected I/O error");
    }
    if (disk_->Fires(path_, FaultKind::kLostWrite)) return Status::Ok();
    return base_->WriteAt(offset, data);
  }

  Status Sync() override {
    if (disk_->Fires(path_, FaultKind::kSyncError)) {
      return Status::IOError("sync " + path_ + ": injected I/O error");
    }
    return base_->Sync();
  }

  Status Truncate(uint64_t size) override {
    if (disk_->Fires(path_, FaultKind::kWriteError)) {
      return Status::IOError("truncate " + path_ + ": injected I/O error");
    }
    return base_->Truncate(size);
  }

  Result<uint64_t> Size() override {
    if (disk_->Fires(path_, FaultKind::kDead)) return Status::IOError("stat " + path_ + ": dead");
    return base_->Size();
  }

 private:
  FaultDisk* const disk_;  // outlives its files
  const std::unique_ptr<File> base_;
  const std::string path_;
};

FaultDisk::FaultDisk(Disk* base, uint64_t seed) : base_(base), rng_(seed) {}
FaultDisk::~FaultDisk() = default;

void FaultDisk::Inject(const std::string& prefix, FaultKind kind, uint64_t one_in) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.push_back({prefix, kind, one_in == 0 ? 1 : one_in});
}

void FaultDisk::ClearFaults() {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.clear();
}

void FaultDisk::ClearFaults(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(rules_, [&](const Rule& r) { return r.prefix == prefix; });
}

bool FaultDisk::Fires(const std::string& path, FaultKind kind) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Rule& r : rules_) {
    if (path.rfind(r.prefix, 0) != 0) continue;
    if (r.kind == FaultKind::kDead || r.kind == kind) {
      if (rng_.Uniform(r.one_in) == 0) {
        injected_.fetch_add(1);
        return true;
      }
    }
  }
  return false;
}

uint64_t FaultDisk::RandomBelow(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  return rng_.Uniform(n);
}

Result<std::unique_ptr<File>> FaultDisk::Open(const std::string& path, OpenMode mode) {
  if (Fires(path, FaultKind::kDead)) return Status::IOError("open " + path + ": dead disk");
  if (mode != OpenMode::kRead && Fires(path, FaultKind::kWriteError)) {
    return Status::IOError("open " + path + ": injected I/O error");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<File> f, base_->Open(path, mode));
  return std::unique_ptr<File>(new FaultFile(this, std::move(f), path));
}

Status FaultDisk::Remove(const std::string& path) {
  if (Fires(path, FaultKind::kDead)) return Status::IOError("remove " + path + ": dead disk");
  return base_->Remove(path);
}

Status FaultDisk::Rename(const std::string& from, const std::string& to) {
  if (Fires(from, FaultKind::kDead) || Fires(to, FaultKind::kWriteError)) {
    return Status::IOError("rename " + from + ": injected I/O error");
  }
  return base_->Rename(from, to);
}

Status FaultDisk::SyncDir(const std::string& dir) {
  if (Fires(dir + "/", FaultKind::kSyncError)) {
    return Status::IOError("sync directory " + dir + ": injected I/O error");
  }
  return base_->SyncDir(dir);
}

Status FaultDisk::CreateDir(const std::string& dir) {
  if (Fires(dir + "/", FaultKind::kWriteError)) {
    return Status::IOError("mkdir " + dir + ": injected I/O error");
  }
  return base_->CreateDir(dir);
}

Result<std::vector<std::string>> FaultDisk::ListDir(const std::string& dir) {
  if (Fires(dir + "/", FaultKind::kReadError)) {
    return Status::IOError("list " + dir + ": injected I/O error");
  }
  return base_->ListDir(dir);
}

Result<FileInfo> FaultDisk::Stat(const std::string& path) {
  if (Fires(path + "/", FaultKind::kReadError)) {
    return Status::IOError("stat " + path + ": injected I/O error");
  }
  return base_->Stat(path);
}

}  // namespace cairn
