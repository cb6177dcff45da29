// Ranged reads of document bodies, block by block through the cache.
#include <algorithm>
#include <cstring>
#include <string>

#include "chunkserver/block_codec.h"
#include "chunkserver/doc_store.h"

namespace cairn::chunkserver {

Status DocStore::ReadBlock(const BlockRef& ref, std::span<std::byte> raw, uint64_t* read_at) {
  // One record buffer per thread: a scan reads a block per document.
  thread_local std::vector<std::byte> record;
  BlockRef at = ref;
  record.resize(at.record_len());
  Status s = volume_->Read(at.offset, record);
  if (!s.ok()) {
    // Released by compaction (NotFound), or being released while we read
    // (the volume may then report the vanishing files as DataLoss): read the
    // copy if the last compaction made one, else the caller looks again.
    MutexLock lock(&mu_);
    if (s.code() != StatusCode::kNotFound && !FrozenLocked(ref)) {
      return s.WithContext("reading block at " + std::to_string(ref.offset));
    }
    auto f = forwarding_.find(ref.offset);
    if (f == forwarding_.end() || f->second.hash != ref.hash || f->second.raw_len != ref.raw_len) {
      return Status::Unavailable("block at " + std::to_string(ref.offset) +
                                 " was released by compaction; look the document up again");
    }
    at = f->second;
  }
  if (at.offset != ref.offset) {
    record.resize(at.record_len());
    s = volume_->Read(at.offset, record);
    if (!s.ok()) {
      return Status::Unavailable("block at " + std::to_string(ref.offset) + " moved again (" +
                                 s.ToString() + "); look the document up again");
    }
  }
  RETURN_IF_ERROR(DecodeBlockRecordInto(record, at, raw));
  *read_at = at.offset;
  return Status::Ok();
}

Result<BlockCache::Ptr> DocStore::GetBlock(const BlockRef& ref, CacheUse cache) {
  BlockCache::Ptr b = cache == CacheUse::kFill ? cache_.Get(ref.offset) : cache_.Peek(ref.offset);
  if (b && b->size() == ref.raw_len) return b;
  std::vector<std::byte> raw(ref.raw_len);
  uint64_t at = ref.offset;
  RETURN_IF_ERROR(ReadBlock(ref, raw, &at));
  auto block = std::make_shared<const std::vector<std::byte>>(std::move(raw));
  if (cache == CacheUse::kFill) cache_.Put(at, block);
  return block;
}

// A small slice (at most 1/16) of a raw (stored uncompressed) block that is
// not cached is
// read on its own, not the whole block: a 4 KiB random read then costs a
// 4 KiB volume read instead of a block-sized one. The volume verifies every
// 4 KiB page it returns against its XXH3 (docs/raidlib-format.md), which is
// the "small read verifies little extra" rule of DESIGN.md; the whole-block
// hash is checked whenever the whole block is read. Anything unusual (a block
// moved or released by compaction, a read error) returns false and the
// caller takes the whole-block path, which handles and reports it.
bool DocStore::ReadSlice(const BlockRef& ref, uint64_t in_block, std::span<std::byte> dest) {
  if (ref.codec != BlockCodec::kRaw || ref.stored_len != ref.raw_len) return false;
  if (dest.size() > ref.raw_len / 16 || in_block + dest.size() > ref.raw_len) return false;
  if (cache_.Get(ref.offset)) return false;  // cached: copy from there
  const uint64_t at = ref.offset + kRecordHeaderBytes + kBlockHeaderBytes + in_block;
  return volume_->Read(at, dest).ok();
}

Status DocStore::ReadRange(const DocEntry& doc, uint64_t offset, std::span<std::byte> out,
                           CacheUse cache) {
  const uint64_t size = doc.meta.size;
  if (offset > size || out.size() > size - offset) {
    return Status::InvalidArgument("read of [" + std::to_string(offset) + ", +" +
                                   std::to_string(out.size()) + ") past the end of " +
                                   doc.collection + "/" + doc.id + " (" + std::to_string(size) +
                                   " bytes)");
  }
  const uint64_t want_end = offset + out.size();
  uint64_t block_start = 0;  // body offset of the current block
  size_t copied = 0;
  for (const BlockRef& ref : doc.blocks) {
    if (block_start >= want_end) break;
    const uint64_t block_end = block_start + ref.raw_len;
    if (block_end > offset) {
      const uint64_t from = std::max(offset, block_start);
      const uint64_t to = std::min(want_end, block_end);
      const std::span<std::byte> dest =
          out.subspan(static_cast<size_t>(from - offset), static_cast<size_t>(to - from));
      if (cache == CacheUse::kNoFill && dest.size() == ref.raw_len) {
        // The whole block, not to be cached: decode straight into `out`
        // without a look at the cache either (a lookup in a large, shared
        // table per document cost a scan about as much as the volume read).
        uint64_t at = ref.offset;
        RETURN_IF_ERROR(ReadBlock(ref, dest, &at));
      } else if (!ReadSlice(ref, from - block_start, dest)) {
        ASSIGN_OR_RETURN(BlockCache::Ptr block, GetBlock(ref, cache));
        std::memcpy(dest.data(), block->data() + (from - block_start), dest.size());
      }
      copied += dest.size();
    }
    block_start = block_end;
  }
  if (copied != out.size()) {
    return Status::Corruption(doc.collection + "/" + doc.id +
                              ": blocks do not cover the document's size");
  }
  return Status::Ok();
}

}  // namespace cairn::chunkserver
