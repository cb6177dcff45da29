// Query files of the mount (fsd/README.md "Query files"):
// /<collection>/.query/<name>, where <name> is the query text with '/'
// written as %2F and '%' as %25. Looking such a name up runs the query; the
// file's content is the result as JSON Lines and its size is the result's
// size. A result is immutable once computed and is shared by the inode (for
// stat) and the handle that opens it (for reads), so a reader sees one
// consistent result whatever happens meanwhile.
//
// Thread-safety: QueryFile is immutable after Make (reads use pread on the
// spill file or the string): any thread may read concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/cairn.h"
#include "common/status.h"

namespace cairn::fsd {

// File name -> query text: "%2F" (or "%2f") is '/', "%25" is '%'; any other
// '%' stands for itself.
std::string DecodeQueryName(std::string_view name);
// Query text -> file name (the inverse of DecodeQueryName).
std::string EncodeQueryName(std::string_view text);

// Results up to this size stay in memory; larger ones go to an unlinked
// temporary file in FsOptions::spill_dir.
inline constexpr uint64_t kQuerySpillBytes = 1u << 20;

class QueryFile {
 public:
  // A result (rows as JSON Lines) or, when `error` is not OK, the reason it
  // has none (a malformed query, a limit, the cluster unreachable).
  static std::shared_ptr<const QueryFile> Failed(Status error);
  static Result<std::shared_ptr<const QueryFile>> Make(const std::vector<client::QueryRow>& rows,
                                                       const std::string& spill_dir,
                                                       uint64_t spill_over = kQuerySpillBytes);
  ~QueryFile();
  QueryFile(const QueryFile&) = delete;
  QueryFile& operator=(const QueryFile&) = delete;

  const Status& error() const { return error_; }
  uint64_t size() const { return size_; }
  bool spilled() const { return fd_ >= 0; }
  // Bytes [offset, offset + n) clipped to the size.
  Status Read(uint64_t offset, uint64_t n, std::string* out) const;

 private:
  QueryFile() = default;
  Status error_;
  uint64_t size_ = 0;
  std::string content_;  // when not spilled
  int fd_ = -1;          // the spill file, unlinked
};

}  // namespace cairn::fsd
