// Helpers over the Disk seam shared by every component.
#include "common/disk.h"

namespace cairn {

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

std::string ParentPath(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status WriteFileAtomic(Disk& disk, const std::string& path, std::span<const std::byte> data) {
  const std::string tmp = path + ".tmp";
  {
    ASSIGN_OR_RETURN(std::unique_ptr<File> file, disk.Open(tmp, OpenMode::kCreate));
    RETURN_IF_ERROR(file->Truncate(0));
    RETURN_IF_ERROR(file->WriteAt(0, data));
    RETURN_IF_ERROR(file->Sync());
  }
  RETURN_IF_ERROR(disk.Rename(tmp, path));
  return disk.SyncDir(ParentPath(path));
}

Result<std::vector<std::byte>> ReadWholeFile(Disk& disk, const std::string& path,
                                             uint64_t max_size) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> file, disk.Open(path, OpenMode::kRead));
  ASSIGN_OR_RETURN(uint64_t size, file->Size());
  if (size > max_size) {
    return Status::InvalidArgument(path + ": " + std::to_string(size) + " bytes, more than the " +
                                   std::to_string(max_size) + " expected");
  }
  std::vector<std::byte> buf(size);
  ASSIGN_OR_RETURN(size_t n, file->ReadAt(0, buf));
  buf.resize(n);
  return buf;
}

}  // namespace cairn
