#include "chunkserver/snapshot_stream.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace cairn::chunkserver {
namespace {

// Little-endian hosts only (x86-64, aarch64), as the other wire forms.
template <typename T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}

template <typename T>
bool Get(std::string_view* in, T* v) {
  if (in->size() < sizeof(T)) return false;
  std::memcpy(v, in->data(), sizeof(T));
  in->remove_prefix(sizeof(T));
  return true;
}

std::span<const std::byte> Bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

}  // namespace

// ---------------------------------------------------------------- source

SnapshotSource::SnapshotSource(std::vector<std::byte> state, std::vector<BlockRef> blocks,
                               size_t chunk_bytes)
    : state_(std::move(state)), blocks_(std::move(blocks)) {
  chunk_bytes = std::max(chunk_bytes, kSnapshotHeaderBytes + 1);
  for (const BlockRef& b : blocks_) block_bytes_ += b.raw_len;
  // The state: chunk 0 (after the header) and as many more as it needs.
  size_t at = 0;
  size_t room = chunk_bytes - kSnapshotHeaderBytes;
  do {
    const size_t n = std::min(room, state_.size() - at);
    plan_.push_back(Span{true, at, at + n});
    at += n;
    room = chunk_bytes;
  } while (at < state_.size());
  // The blocks, whole, as many per chunk as fit.
  size_t i = 0;
  while (i < blocks_.size()) {
    size_t bytes = 0;
    size_t j = i;
    while (j < blocks_.size()) {
      const size_t add = kSnapshotBlockHeaderBytes + blocks_[j].raw_len;
      if (j > i && bytes + add > chunk_bytes) break;
      bytes += add;
      ++j;
    }
    plan_.push_back(Span{false, i, j});
    i = j;
  }
}

Result<std::string> SnapshotSource::Chunk(uint32_t index, const ReadBlock& read) const {
  if (index >= plan_.size()) return Status::InvalidArgument("no such snapshot chunk");
  const Span& s = plan_[index];
  std::string out;
  if (index == 0) {
    Put<uint32_t>(&out, kSnapshotStreamVersion);
    Put<uint64_t>(&out, state_.size());
    Put<uint32_t>(&out, static_cast<uint32_t>(blocks_.size()));
    Put<uint64_t>(&out, block_bytes_);
    Put<uint32_t>(&out, chunk_count());
  }
  if (s.state) {
    out.append(reinterpret_cast<const char*>(state_.data()) + s.begin, s.end - s.begin);
    return out;
  }
  for (size_t i = s.begin; i < s.end; ++i) {
    const BlockRef& b = blocks_[i];
    Put<uint64_t>(&out, b.offset);
    Put<uint32_t>(&out, b.raw_len);
    const size_t at = out.size();
    out.resize(at + b.raw_len);
    RETURN_IF_ERROR(read(b, std::as_writable_bytes(std::span(out.data() + at, b.raw_len))));
  }
  return out;
}

// ---------------------------------------------------------------- stage

SnapshotStage::SnapshotStage(uint64_t snapshot_id, NodeId from, Epoch epoch, Lsn lsn,
                             Epoch lsn_epoch, uint32_t dedup_entries)
    : id_(snapshot_id),
      from_(from),
      epoch_(epoch),
      lsn_(lsn),
      lsn_epoch_(lsn_epoch),
      dedup_entries_(dedup_entries) {}

Status SnapshotStage::Add(const SnapshotChunkMsg& c, const WriteBlock& write) {
  if (complete_ || c.chunk_index != next_) {
    return Status::InvalidArgument("snapshot chunk " + std::to_string(c.chunk_index) +
                                   " out of order (want " + std::to_string(next_) + ")");
  }
  std::string_view in = c.data;
  if (c.chunk_index == 0) {
    uint32_t version = 0;
    if (!Get(&in, &version) || !Get(&in, &state_len_) || !Get(&in, &block_count_) ||
        !Get(&in, &block_bytes_) || !Get(&in, &chunk_count_)) {
      return Status::InvalidArgument("short snapshot header");
    }
    if (version != kSnapshotStreamVersion) {
      return Status::InvalidArgument("snapshot stream version " + std::to_string(version));
    }
    if (chunk_count_ == 0) return Status::InvalidArgument("snapshot of no chunks");
  }
  if (c.last != (c.chunk_index + 1 == chunk_count_)) {
    return Status::InvalidArgument("snapshot chunk " + std::to_string(c.chunk_index) + " of " +
                                   std::to_string(chunk_count_) + " has the wrong last flag");
  }
  if (state_.size() < state_len_ || c.chunk_index == 0) {
    if (in.size() > state_len_ - state_.size()) {
      return Status::InvalidArgument("snapshot state longer than announced");
    }
    state_.append(in);
    done_bytes_ += in.size();
  } else {
    RETURN_IF_ERROR(AddBlocks(in, write));
  }
  ++next_;
  if (c.last) {
    if (state_.size() != state_len_ || blocks_seen_ != block_count_) {
      return Status::InvalidArgument("snapshot ended with " + std::to_string(blocks_seen_) +
                                     " of " + std::to_string(block_count_) + " blocks");
    }
    if (index_ == nullptr) {  // no blocks: the state was never loaded
      index_ = std::make_unique<DocIndex>(dedup_entries_);
      RETURN_IF_ERROR(index_->LoadPartition(Bytes(state_)).WithContext("snapshot state"));
    }
    complete_ = true;
  }
  return Status::Ok();
}

Status SnapshotStage::AddBlocks(std::string_view in, const WriteBlock& write) {
  if (index_ == nullptr) {
    index_ = std::make_unique<DocIndex>(dedup_entries_);
    RETURN_IF_ERROR(index_->LoadPartition(Bytes(state_)).WithContext("snapshot state"));
  }
  while (!in.empty()) {
    uint64_t offset = 0;
    uint32_t len = 0;
    if (!Get(&in, &offset) || !Get(&in, &len) || in.size() < len) {
      return Status::InvalidArgument("short snapshot block");
    }
    if (++blocks_seen_ > block_count_) return Status::InvalidArgument("too many snapshot blocks");
    const DocIndex::LiveBlock* want = index_->FindLive(offset);
    if (want == nullptr) return Status::InvalidArgument("snapshot block not named by its state");
    ASSIGN_OR_RETURN(BlockRef ref, write(Bytes(in.substr(0, len))));
    written_.push_back(ref);
    in.remove_prefix(len);
    if (ref.hash != want->ref.hash || ref.raw_len != want->ref.raw_len) {
      return Status::DataLoss("snapshot block at " + std::to_string(offset) +
                              " does not match its hash");
    }
    moved_.emplace(offset, ref);
    done_bytes_ += len;
  }
  return Status::Ok();
}

Result<std::string> SnapshotStage::LocalState(PartitionId p) {
  if (!complete_) return Status::FailedPrecondition("snapshot not complete");
  for (const BlockRef& b : index_->BlocksOf(p)) {
    if (moved_.count(b.offset) == 0) {
      return Status::InvalidArgument("snapshot lacks block at " + std::to_string(b.offset));
    }
  }
  index_->Relocate(moved_);
  const std::vector<std::byte> local = index_->SerializePartition(p);
  return std::string(reinterpret_cast<const char*>(local.data()), local.size());
}

}  // namespace cairn::chunkserver
