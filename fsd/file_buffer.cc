#include "fsd/file_buffer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace cairn::fsd {

FileBuffer::FileBuffer(uint32_t block_bytes, uint64_t base_size, std::string spill_dir,
                       uint64_t spill_bytes)
    : block_bytes_(block_bytes),
      spill_dir_(std::move(spill_dir)),
      spill_bytes_(spill_bytes),
      stored_base_size_(base_size),
      base_size_(base_size),
      size_(base_size) {
  if (size_ > spill_bytes_) {
    // Best effort here; Store retries the spill and reports its error.
    Spill().IgnoreError();
  } else {
    mem_.resize(size_, '\0');
  }
}

FileBuffer::~FileBuffer() {
  if (fd_ >= 0) ::close(fd_);
}

uint64_t FileBuffer::BlockLength(uint64_t k) const {
  const uint64_t start = k * block_bytes_;
  if (start >= size_) return 0;
  return std::min<uint64_t>(block_bytes_, size_ - start);
}

uint64_t FileBuffer::BaseBlockLength(uint64_t k) const {
  const uint64_t start = k * block_bytes_;
  if (start >= base_size_) return 0;
  return std::min<uint64_t>(block_bytes_, base_size_ - start);
}

uint64_t FileBuffer::FetchLength(uint64_t k) const {
  const uint64_t start = k * block_bytes_;
  if (start >= stored_base_size_) return 0;
  return std::min<uint64_t>(block_bytes_, stored_base_size_ - start);
}

bool FileBuffer::present(uint64_t k) const {
  return dirty_.count(k) != 0 || filled_.count(k) != 0 || k * block_bytes_ >= base_size_;
}

bool FileBuffer::Keepable(uint64_t k) const {
  if (dirty_.count(k) != 0) return false;
  const uint64_t len = BlockLength(k);
  return len > 0 && k * block_bytes_ + len <= base_size_ && len == BaseBlockLength(k);
}

std::vector<uint64_t> FileBuffer::MissingForWrite(uint64_t offset, uint64_t len) const {
  std::vector<uint64_t> out;
  if (len == 0) return out;
  const uint64_t first = offset / block_bytes_;
  const uint64_t last = (offset + len - 1) / block_bytes_;
  // A block wholly overwritten needs nothing; a partly written one needs
  // its old bytes.
  if (offset % block_bytes_ != 0 && !present(first)) out.push_back(first);
  const uint64_t end = offset + len;
  if (!present(last) && (last != first || offset % block_bytes_ == 0) &&
      end < std::min<uint64_t>((last + 1) * block_bytes_, base_size_)) {
    out.push_back(last);
  }
  // Growing changes the old last block's length: it is re-sent whole.
  const uint64_t tail = size_ / block_bytes_;
  if (end > size_ && size_ % block_bytes_ != 0 && !present(tail) &&
      std::find(out.begin(), out.end(), tail) == out.end()) {
    out.push_back(tail);
  }
  return out;
}

std::vector<uint64_t> FileBuffer::MissingForRead(uint64_t offset, uint64_t len) const {
  std::vector<uint64_t> out;
  if (len == 0 || offset >= size_) return out;
  const uint64_t end = std::min(size_, offset + len);
  for (uint64_t k = offset / block_bytes_; k * block_bytes_ < end; ++k) {
    if (!present(k)) out.push_back(k);
  }
  return out;
}

std::vector<uint64_t> FileBuffer::MissingForTruncate(uint64_t new_size) const {
  std::vector<uint64_t> out;
  // The block holding the new end (if it cuts a base block), and the base's
  // last block when the body grows (its length changes: it is re-sent).
  if (new_size % block_bytes_ != 0 && !present(new_size / block_bytes_)) {
    out.push_back(new_size / block_bytes_);
  }
  if (new_size > size_ && size_ % block_bytes_ != 0 && !present(size_ / block_bytes_) &&
      (out.empty() || out.back() != size_ / block_bytes_)) {
    out.push_back(size_ / block_bytes_);
  }
  return out;
}

Status FileBuffer::Fill(uint64_t k, std::string_view data) {
  if (present(k)) return Status::Ok();
  if (data.size() != FetchLength(k)) {
    return Status::Internal("block " + std::to_string(k) +
                            " of the base: " + std::to_string(data.size()) + " bytes, expected " +
                            std::to_string(FetchLength(k)));
  }
  // Only the part still inside the body (a truncate may have cut it).
  const uint64_t start = k * block_bytes_;
  const uint64_t keep = std::min<uint64_t>(data.size(), size_ > start ? size_ - start : 0);
  RETURN_IF_ERROR(Store(start, data.substr(0, keep)));
  filled_.insert(k);
  return Status::Ok();
}

Status FileBuffer::Write(uint64_t offset, std::string_view data) {
  if (data.empty()) return Status::Ok();
  if (!MissingForWrite(offset, data.size()).empty()) {
    return Status::FailedPrecondition("write needs base blocks that are not fetched");
  }
  const uint64_t end = offset + data.size();
  if (end > size_) {
    // The old last block changes length: it is re-sent. It is present:
    // MissingForWrite or the gap rule below covers it.
    if (size_ % block_bytes_ != 0) {
      const uint64_t k = size_ / block_bytes_;
      if (!present(k)) {
        return Status::FailedPrecondition("the last block must be fetched before growing");
      }
      dirty_.insert(k);
    }
    RETURN_IF_ERROR(Resize(end));
    size_changed_ = true;
  }
  RETURN_IF_ERROR(Store(offset, data));
  for (uint64_t k = offset / block_bytes_; k * block_bytes_ < end; ++k) dirty_.insert(k);
  return Status::Ok();
}

Result<std::string> FileBuffer::Read(uint64_t offset, uint64_t len) const {
  if (offset >= size_) return std::string();
  const uint64_t n = std::min(len, size_ - offset);
  if (!MissingForRead(offset, n).empty()) {
    return Status::FailedPrecondition("read needs base blocks that are not fetched");
  }
  std::string out;
  RETURN_IF_ERROR(Load(offset, n, &out));
  return out;
}

Status FileBuffer::Truncate(uint64_t new_size) {
  if (new_size == size_) return Status::Ok();
  if (!MissingForTruncate(new_size).empty()) {
    return Status::FailedPrecondition("truncate needs base blocks that are not fetched");
  }
  if (new_size > size_ && size_ % block_bytes_ != 0) dirty_.insert(size_ / block_bytes_);
  RETURN_IF_ERROR(Resize(new_size));
  if (new_size < base_size_) base_size_ = new_size;
  // Drop state past the end; the block holding the new end changes length.
  const uint64_t blocks = block_count();
  dirty_.erase(dirty_.lower_bound(blocks), dirty_.end());
  filled_.erase(filled_.lower_bound(blocks), filled_.end());
  if (new_size % block_bytes_ != 0) dirty_.insert(new_size / block_bytes_);
  size_changed_ = true;
  return Status::Ok();
}

Result<std::string> FileBuffer::Block(uint64_t k) const {
  const uint64_t len = BlockLength(k);
  if (len == 0) return std::string();
  return Read(k * block_bytes_, len);
}

void FileBuffer::MarkCommitted() {
  base_size_ = size_;
  stored_base_size_ = size_;
  // Every block is now the base; the present ones stay usable.
  for (uint64_t k = 0; k < block_count(); ++k) {
    if (dirty_.count(k) != 0) filled_.insert(k);
  }
  dirty_.clear();
  size_changed_ = false;
}

// ---- storage

Status FileBuffer::Spill() {
  std::string tmpl = (spill_dir_.empty() ? std::string("/tmp") : spill_dir_) + "/cairn-fsd-XXXXXX";
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return Status::FromErrno(errno, "spill file in " + spill_dir_);
  ::unlink(tmpl.c_str());
  size_t done = 0;
  while (done < mem_.size()) {
    const ssize_t n =
        ::pwrite(fd, mem_.data() + done, mem_.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Status::FromErrno(err, "spill file");
    }
    done += static_cast<size_t>(n);
  }
  if (::ftruncate(fd, static_cast<off_t>(size_)) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::FromErrno(err, "spill file");
  }
  fd_ = fd;
  std::string().swap(mem_);
  return Status::Ok();
}

Status FileBuffer::Resize(uint64_t size) {
  if (fd_ < 0 && size > spill_bytes_) {
    RETURN_IF_ERROR(Spill());
  }
  if (fd_ >= 0) {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return Status::FromErrno(errno, "spill file");
    }
  } else {
    mem_.resize(size, '\0');
  }
  size_ = size;
  return Status::Ok();
}

Status FileBuffer::Store(uint64_t offset, std::string_view data) {
  if (fd_ < 0) {
    std::copy(data.begin(), data.end(), mem_.begin() + static_cast<ptrdiff_t>(offset));
    return Status::Ok();
  }
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n =
        ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "spill file");
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status FileBuffer::Load(uint64_t offset, uint64_t len, std::string* out) const {
  if (fd_ < 0) {
    out->assign(mem_, offset, len);
    return Status::Ok();
  }
  out->resize(len);
  size_t done = 0;
  while (done < len) {
    const ssize_t n =
        ::pread(fd_, out->data() + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "spill file");
    }
    if (n == 0) break;  // past the file's end: zeros
    done += static_cast<size_t>(n);
  }
  std::fill(out->begin() + static_cast<ptrdiff_t>(done), out->end(), '\0');
  return Status::Ok();
}

}  // namespace cairn::fsd
