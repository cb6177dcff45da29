#include "fsd/query_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace cairn::fsd {

std::string DecodeQueryName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '%' && i + 2 < name.size()) {
      const std::string_view code = name.substr(i + 1, 2);
      if (code == "2F" || code == "2f") {
        out += '/';
        i += 2;
        continue;
      }
      if (code == "25") {
        out += '%';
        i += 2;
        continue;
      }
    }
    out += name[i];
  }
  return out;
}

std::string EncodeQueryName(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '/') {
      out += "%2F";
    } else if (c == '%') {
      out += "%25";
    } else {
      out += c;
    }
  }
  return out;
}

std::shared_ptr<const QueryFile> QueryFile::Failed(Status error) {
  std::shared_ptr<QueryFile> f(new QueryFile());
  f->error_ = std::move(error);
  return f;
}

Result<std::shared_ptr<const QueryFile>> QueryFile::Make(const std::vector<client::QueryRow>& rows,
                                                         const std::string& spill_dir,
                                                         uint64_t spill_over) {
  std::shared_ptr<QueryFile> f(new QueryFile());
  uint64_t total = 0;
  for (const client::QueryRow& r : rows) total += r.json.size() + 1;
  f->size_ = total;
  if (total <= spill_over) {
    f->content_.reserve(static_cast<size_t>(total));
    for (const client::QueryRow& r : rows) {
      f->content_ += r.json;
      f->content_ += '\n';
    }
    return std::shared_ptr<const QueryFile>(std::move(f));
  }
  // An unlinked temporary file: gone with the last handle, or with fsd.
  const int fd = ::open(spill_dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "query result spill file in " + spill_dir);
  f->fd_ = fd;
  std::string buf;
  uint64_t off = 0;
  auto flush = [&]() -> Status {
    size_t done = 0;
    while (done < buf.size()) {
      const ssize_t n =
          ::pwrite(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(off + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "writing the query result spill file");
      }
      done += static_cast<size_t>(n);
    }
    off += buf.size();
    buf.clear();
    return Status::Ok();
  };
  for (const client::QueryRow& r : rows) {
    buf += r.json;
    buf += '\n';
    if (buf.size() >= (1u << 20)) RETURN_IF_ERROR(flush());
  }
  RETURN_IF_ERROR(flush());
  return std::shared_ptr<const QueryFile>(std::move(f));
}

QueryFile::~QueryFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status QueryFile::Read(uint64_t offset, uint64_t n, std::string* out) const {
  out->clear();
  if (offset >= size_) return Status::Ok();
  n = std::min(n, size_ - offset);
  if (fd_ < 0) {
    out->assign(content_, static_cast<size_t>(offset), static_cast<size_t>(n));
    return Status::Ok();
  }
  out->resize(static_cast<size_t>(n));
  size_t done = 0;
  while (done < n) {
    const ssize_t r =
        ::pread(fd_, out->data() + done, out->size() - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "reading the query result spill file");
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  out->resize(done);
  return Status::Ok();
}

}  // namespace cairn::fsd
