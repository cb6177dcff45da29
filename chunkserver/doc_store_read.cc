// Ranged reads of document bodies, block by block through the cache.
#include <algorithm>
#include <cstring>
#include <string>

#include "chunkserver/block_codec.h"
#include "chunkserver/doc_store.h"

namespace cairn::chunkserver {

Result<BlockCache::Block> DocStore::GetBlock(const BlockRef& ref) {
  if (BlockCache::Block b = cache_.Get(ref.offset)) {
    if (b->size() == ref.raw_len) return b;
  }
  BlockRef at = ref;
  std::vector<std::byte> record(at.record_len());
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
  ASSIGN_OR_RETURN(std::vector<std::byte> raw, DecodeBlockRecord(record, at));
  auto block = std::make_shared<const std::vector<std::byte>>(std::move(raw));
  cache_.Put(at.offset, block);
  return block;
}

Status DocStore::ReadRange(const DocEntry& doc, uint64_t offset, std::span<std::byte> out) {
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
      ASSIGN_OR_RETURN(BlockCache::Block block, GetBlock(ref));
      const uint64_t from = std::max(offset, block_start);
      const uint64_t to = std::min(want_end, block_end);
      std::memcpy(out.data() + (from - offset), block->data() + (from - block_start),
                  static_cast<size_t>(to - from));
      copied += static_cast<size_t>(to - from);
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
