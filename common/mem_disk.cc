#include "common/mem_disk.h"

#include <algorithm>
#include <cstring>

namespace cairn {

struct MemDisk::Node {
  std::vector<std::byte> data;     // current contents
  std::vector<std::byte> durable;  // contents as of the last Sync
  struct Write {
    uint64_t offset;
    std::vector<std::byte> bytes;  // empty with is_truncate: a truncation
    bool is_truncate = false;
    uint64_t truncate_size = 0;
  };
  std::vector<Write> unsynced;  // in issue order since the last Sync
};

class MemDisk::MemFile : public File {
 public:
  MemFile(MemDisk* disk, std::shared_ptr<Node> node, bool writable, uint64_t generation,
          std::string path)
      : disk_(disk),
        node_(std::move(node)),
        writable_(writable),
        generation_(generation),
        path_(std::move(path)) {}

  Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> out) override {
    std::lock_guard<std::mutex> lock(disk_->mu_);
    RETURN_IF_ERROR(CheckLive());
    const auto& d = node_->data;
    if (offset >= d.size()) return size_t{0};
    size_t n = std::min<size_t>(out.size(), d.size() - offset);
    if (n > 0) std::memcpy(out.data(), d.data() + offset, n);
    return n;
  }

  Status WriteAt(uint64_t offset, std::span<const std::byte> data) override {
    std::lock_guard<std::mutex> lock(disk_->mu_);
    RETURN_IF_ERROR(CheckLive());
    if (!writable_) return Status::PermissionDenied("write " + path_ + ": opened read-only");
    auto& d = node_->data;
    if (d.size() < offset + data.size()) d.resize(offset + data.size());
    if (!data.empty()) std::memcpy(d.data() + offset, data.data(), data.size());
    node_->unsynced.push_back({offset, {data.begin(), data.end()}});
    return Status::Ok();
  }

  Status Sync() override {
    std::lock_guard<std::mutex> lock(disk_->mu_);
    RETURN_IF_ERROR(CheckLive());
    node_->durable = node_->data;
    node_->unsynced.clear();
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    std::lock_guard<std::mutex> lock(disk_->mu_);
    RETURN_IF_ERROR(CheckLive());
    if (!writable_) return Status::PermissionDenied("truncate " + path_ + ": opened read-only");
    node_->data.resize(size);
    Node::Write w{0, {}, true, size};
    node_->unsynced.push_back(std::move(w));
    return Status::Ok();
  }

  Result<uint64_t> Size() override {
    std::lock_guard<std::mutex> lock(disk_->mu_);
    RETURN_IF_ERROR(CheckLive());
    return static_cast<uint64_t>(node_->data.size());
  }

 private:
  Status CheckLive() const {  // requires disk_->mu_
    if (generation_ != disk_->crash_generation_) {
      return Status::IOError(path_ + ": handle from before a simulated crash");
    }
    return Status::Ok();
  }

  MemDisk* const disk_;  // outlives every file it opened
  const std::shared_ptr<Node> node_;
  const bool writable_;
  const uint64_t generation_;
  const std::string path_;
};

MemDisk::MemDisk() { dirs_.insert("/"); }
MemDisk::~MemDisk() = default;

std::shared_ptr<MemDisk::Node> MemDisk::FindLocked(const std::string& path) {
  auto it = names_.find(path);
  return it == names_.end() ? nullptr : it->second;
}

Result<std::unique_ptr<File>> MemDisk::Open(const std::string& path, OpenMode mode) {
  std::lock_guard<std::mutex> lock(mu_);
  if (dirs_.count(path)) return Status::InvalidArgument("open " + path + ": is a directory");
  std::shared_ptr<Node> node = FindLocked(path);
  if (node != nullptr && mode == OpenMode::kCreateNew) {
    return Status::AlreadyExists("open " + path + ": exists");
  }
  if (node == nullptr) {
    if (mode == OpenMode::kRead || mode == OpenMode::kReadWrite) {
      return Status::NotFound("open " + path + ": no such file");
    }
    if (!dirs_.count(ParentPath(path))) {
      return Status::NotFound("open " + path + ": no such directory");
    }
    node = std::make_shared<Node>();
    names_[path] = node;
  }
  return std::unique_ptr<File>(
      new MemFile(this, node, mode != OpenMode::kRead, crash_generation_, path));
}

Status MemDisk::Remove(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (names_.erase(path) == 0) return Status::NotFound("remove " + path + ": no such file");
  return Status::Ok();
}

Status MemDisk::Rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  auto node = FindLocked(from);
  if (node == nullptr) return Status::NotFound("rename " + from + ": no such file");
  if (!dirs_.count(ParentPath(to))) return Status::NotFound("rename to " + to + ": no directory");
  names_.erase(from);
  names_[to] = node;
  return Status::Ok();
}

Status MemDisk::SyncDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!dirs_.count(dir)) return Status::NotFound("sync directory " + dir);
  for (auto it = durable_names_.begin(); it != durable_names_.end();) {
    if (ParentPath(it->first) == dir)
      it = durable_names_.erase(it);
    else
      ++it;
  }
  for (const auto& [name, node] : names_) {
    if (ParentPath(name) == dir) durable_names_[name] = node;
  }
  return Status::Ok();
}

Status MemDisk::CreateDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (names_.count(dir)) return Status::AlreadyExists("mkdir " + dir + ": a file");
  if (!dirs_.count(ParentPath(dir))) return Status::NotFound("mkdir " + dir + ": no parent");
  dirs_.insert(dir);
  return Status::Ok();
}

Result<std::vector<std::string>> MemDisk::ListDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!dirs_.count(dir)) return Status::NotFound("list " + dir + ": no such directory");
  std::vector<std::string> out;
  for (const auto& [name, node] : names_) {
    if (ParentPath(name) == dir) out.push_back(name.substr(name.find_last_of('/') + 1));
  }
  for (const auto& d : dirs_) {
    if (d != dir && ParentPath(d) == dir) out.push_back(d.substr(d.find_last_of('/') + 1));
  }
  return out;
}

Result<FileInfo> MemDisk::Stat(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (dirs_.count(path)) return FileInfo{true, 0};
  auto node = FindLocked(path);
  if (node == nullptr) return Status::NotFound("stat " + path + ": no such file");
  return FileInfo{false, node->data.size()};
}

void MemDisk::Crash(CrashMode mode, Random* rng) {
  std::lock_guard<std::mutex> lock(mu_);
  ++crash_generation_;
  std::set<Node*> seen;
  std::vector<std::shared_ptr<Node>> all;
  for (auto& [n, node] : names_) all.push_back(node);
  for (auto& [n, node] : durable_names_) all.push_back(node);
  for (auto& node : all) {
    if (!seen.insert(node.get()).second) continue;
    std::vector<std::byte> d = node->durable;
    if (mode == CrashMode::kRandomPartial) {
      for (const auto& w : node->unsynced) {
        uint64_t pick = rng->Uniform(3);  // 0: lost, 1: whole, 2: torn
        if (w.is_truncate) {
          if (pick != 0) d.resize(w.truncate_size);
          continue;
        }
        if (pick == 0) continue;
        size_t len = w.bytes.size();
        if (pick == 2 && len > 0) len = static_cast<size_t>(rng->Uniform(len));
        if (d.size() < w.offset + len) d.resize(w.offset + len);
        if (len > 0) std::memcpy(d.data() + w.offset, w.bytes.data(), len);
      }
    }
    node->data = d;
    node->durable = std::move(d);
    node->unsynced.clear();
  }
  names_ = durable_names_;
}

Status MemDisk::Corrupt(const std::string& path, uint64_t offset,
                        std::span<const std::byte> bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto node = FindLocked(path);
  if (node == nullptr) return Status::NotFound(path);
  if (offset + bytes.size() > node->data.size()) return Status::InvalidArgument("past end");
  if (bytes.empty()) return Status::Ok();
  std::memcpy(node->data.data() + offset, bytes.data(), bytes.size());
  if (offset + bytes.size() <= node->durable.size()) {
    std::memcpy(node->durable.data() + offset, bytes.data(), bytes.size());
  }
  return Status::Ok();
}

Status MemDisk::FlipBit(const std::string& path, uint64_t bit_offset) {
  std::lock_guard<std::mutex> lock(mu_);
  auto node = FindLocked(path);
  if (node == nullptr) return Status::NotFound(path);
  uint64_t byte = bit_offset / 8;
  if (byte >= node->data.size()) return Status::InvalidArgument("past end");
  auto mask = static_cast<std::byte>(1u << (bit_offset % 8));
  node->data[byte] ^= mask;
  if (byte < node->durable.size()) node->durable[byte] ^= mask;
  return Status::Ok();
}

Status MemDisk::TruncateFile(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  auto node = FindLocked(path);
  if (node == nullptr) return Status::NotFound(path);
  node->data.resize(std::min<uint64_t>(size, node->data.size()));
  node->durable.resize(std::min<uint64_t>(size, node->durable.size()));
  return Status::Ok();
}

Status MemDisk::RemoveDirRecursive(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string prefix = dir + "/";
  auto under = [&](const std::string& p) { return p == dir || p.rfind(prefix, 0) == 0; };
  std::erase_if(names_, [&](const auto& kv) { return under(kv.first); });
  std::erase_if(durable_names_, [&](const auto& kv) { return under(kv.first); });
  std::erase_if(dirs_, [&](const std::string& d) { return under(d); });
  return Status::Ok();
}

}  // namespace cairn
