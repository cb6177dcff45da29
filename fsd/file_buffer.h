// The content of a file open for writing (fsd "Writes"): the bytes written
// and the blocks fetched from the version the file was opened at (the base),
// with which blocks are dirty. Held in memory, moved to an unlinked
// temporary file in `spill_dir` once it grows past `spill_bytes`. No network:
// the caller fetches base blocks (MissingFor*) and hands them in (Fill).
//
// Block k covers [k*B, (k+1)*B) for the document's block size B.
// - present(k): its bytes are here (written, filled, or past the base: zeros).
// - dirty(k): must be sent with the next version (written, or its length
//   changed by a truncate); the others can be kept from the base by
//   reference while they are within the base and unchanged in length.
// - A truncate needs the block holding the new end present (zeros are
//   written past it); blocks past the new end are dropped.
//
// Thread-safety: none; the owning handle serializes calls.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cairn::fsd {

class FileBuffer {
 public:
  // A buffer over a base of `base_size` bytes (0 = a new or truncated body).
  FileBuffer(uint32_t block_bytes, uint64_t base_size, std::string spill_dir, uint64_t spill_bytes);
  ~FileBuffer();
  FileBuffer(const FileBuffer&) = delete;
  FileBuffer& operator=(const FileBuffer&) = delete;

  uint32_t block_bytes() const { return block_bytes_; }
  uint64_t size() const { return size_; }
  uint64_t block_count() const { return (size_ + block_bytes_ - 1) / block_bytes_; }
  // Bytes of the base still in use (shrinks with truncates).
  uint64_t base_size() const { return base_size_; }
  bool spilled() const { return fd_ >= 0; }
  // Whether anything changed since the buffer was made or last marked clean.
  bool dirty() const { return !dirty_.empty() || size_changed_; }

  bool present(uint64_t k) const;
  bool is_dirty(uint64_t k) const { return dirty_.count(k) != 0; }
  const std::set<uint64_t>& dirty_blocks() const { return dirty_; }
  // Length of block k in the current body (0 past the end).
  uint64_t BlockLength(uint64_t k) const;
  // Length of block k in the base still in use (0 past it).
  uint64_t BaseBlockLength(uint64_t k) const;
  // Length of block k in the stored base version: what Fill expects.
  uint64_t FetchLength(uint64_t k) const;
  // Whether block k of the next version can be kept from the base by
  // reference: not dirty, wholly within the base, same length.
  bool Keepable(uint64_t k) const;

  // Base blocks to Fill before Write(offset, len): the partly covered ones
  // at either end that are not present.
  std::vector<uint64_t> MissingForWrite(uint64_t offset, uint64_t len) const;
  // Base blocks to Fill before Read(offset, len).
  std::vector<uint64_t> MissingForRead(uint64_t offset, uint64_t len) const;
  // Base blocks to Fill before Truncate(new_size).
  std::vector<uint64_t> MissingForTruncate(uint64_t new_size) const;

  // Block k of the base (FetchLength(k) bytes); ignored if present.
  Status Fill(uint64_t k, std::string_view data);
  // Writes at `offset`; the document grows as needed (a gap reads as
  // zeros). FailedPrecondition if a MissingForWrite block is not present.
  Status Write(uint64_t offset, std::string_view data);
  // Up to `len` bytes at `offset` (cut at the end). FailedPrecondition if a
  // block is not present.
  Result<std::string> Read(uint64_t offset, uint64_t len) const;
  Status Truncate(uint64_t new_size);
  // The bytes of block k (BlockLength(k)); FailedPrecondition if absent.
  Result<std::string> Block(uint64_t k) const;

  // After a committed upload: the current body is the new base; nothing is
  // dirty.
  void MarkCommitted();

 private:
  Status Store(uint64_t offset, std::string_view data);
  Status Load(uint64_t offset, uint64_t len, std::string* out) const;
  Status Resize(uint64_t size);
  Status Spill();

  const uint32_t block_bytes_;
  const std::string spill_dir_;
  const uint64_t spill_bytes_;
  uint64_t stored_base_size_;  // the base version's size
  uint64_t base_size_;         // the prefix of it still in use
  uint64_t size_;
  bool size_changed_ = false;
  std::set<uint64_t> filled_;  // base blocks fetched
  std::set<uint64_t> dirty_;
  std::string mem_;  // the body while not spilled (size_ bytes)
  int fd_ = -1;      // the spill file (unlinked), size_ bytes
};

}  // namespace cairn::fsd
