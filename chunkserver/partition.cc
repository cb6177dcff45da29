#include "chunkserver/partition.h"

#include <xxhash.h>

#include <algorithm>

#include "chunkserver/doc_names.h"
#include "common/checksum.h"
#include "common/partitioning.h"

namespace cairn::chunkserver {

namespace {

constexpr int kUploadPartitionShift = 47;
constexpr uint64_t kUploadCounterMask = (uint64_t{1} << kUploadPartitionShift) - 1;

std::string DocName(std::string_view collection, std::string_view id) {
  return std::string(collection) + "/" + std::string(id);
}

}  // namespace

Status PartitionLimits::Validate() const {
  if (block_bytes == 0 || block_bytes > kMaxBlockBytes) {
    return Status::InvalidArgument("block_bytes must be 1.." + std::to_string(kMaxBlockBytes));
  }
  if (max_document_bytes == 0) return Status::InvalidArgument("max_document_bytes must be > 0");
  if (max_uploads == 0) return Status::InvalidArgument("max_uploads must be > 0");
  if (upload_idle_timeout <= Nanos(0)) {
    return Status::InvalidArgument("upload_idle_timeout must be > 0");
  }
  return Status::Ok();
}

// One upload session. The running hash covers blocks 0..next_in_order-1 when
// they arrived in that order (`in_order` stays true).
struct PartitionLogic::Upload {
  PartitionId partition;
  Epoch epoch;
  std::string collection;
  std::string id;
  std::map<uint32_t, BlockRef> blocks;
  Nanos last_used{0};
  bool committing = false;
  bool in_order = true;
  uint32_t next_in_order = 0;
  XXH3_state_t* hash = nullptr;

  Upload() : hash(XXH3_createState()) {
    CAIRN_CHECK(hash != nullptr) << "out of memory";
    XXH3_64bits_reset(hash);
  }
  ~Upload() { XXH3_freeState(hash); }
  Upload(const Upload&) = delete;
  Upload& operator=(const Upload&) = delete;

  std::vector<BlockRef> Refs() const {
    std::vector<BlockRef> out;
    for (const auto& [i, r] : blocks) out.push_back(r);
    return out;
  }
};

PartitionLogic::PartitionLogic(PartitionLimits limits, uint64_t upload_id_seed)
    : limits_(limits), next_upload_(upload_id_seed & kUploadCounterMask) {}

PartitionLogic::~PartitionLogic() = default;

// ---------------------------------------------------------------- the map

void PartitionLogic::SetSelf(NodeId self) {
  MutexLock lock(&mu_);
  self_ = self;
}

NodeId PartitionLogic::self() const {
  MutexLock lock(&mu_);
  return self_;
}

bool PartitionLogic::UpdateMap(ClusterView view) {
  MutexLock lock(&mu_);
  if (view.version <= map_.version) return false;
  map_ = std::move(view);
  return true;
}

uint64_t PartitionLogic::map_version() const {
  MutexLock lock(&mu_);
  return map_.version;
}

ClusterView PartitionLogic::map() const {
  MutexLock lock(&mu_);
  return map_;
}

std::optional<NodeAddress> PartitionLogic::PrimaryOf(PartitionId p) const {
  MutexLock lock(&mu_);
  if (p.value() >= map_.partitions.size()) return std::nullopt;
  const PartitionPlacement& pl = map_.partitions[p.value()];
  if (pl.replicas.empty()) return std::nullopt;
  for (const NodeAddress& n : map_.nodes) {
    if (n.id == pl.replicas.front()) return n;
  }
  return std::nullopt;
}

bool PartitionLogic::IsPrimary(PartitionId p) const {
  MutexLock lock(&mu_);
  if (self_.value() == 0 || p.value() >= map_.partitions.size()) return false;
  const PartitionPlacement& pl = map_.partitions[p.value()];
  return !pl.replicas.empty() && pl.replicas.front() == self_;
}

bool PartitionLogic::HoldsReplica(PartitionId p) const {
  MutexLock lock(&mu_);
  if (self_.value() == 0 || p.value() >= map_.partitions.size()) return false;
  const std::vector<NodeId>& r = map_.partitions[p.value()].replicas;
  return std::find(r.begin(), r.end(), self_) != r.end();
}

Epoch PartitionLogic::EpochOf(PartitionId p) const {
  MutexLock lock(&mu_);
  if (p.value() >= map_.partitions.size()) return Epoch();
  return map_.partitions[p.value()].epoch;
}

// ---------------------------------------------------------------- checks

Status PartitionLogic::CheckPartitionLocked(PartitionId p, Epoch client_epoch,
                                            bool any_replica) const {
  if (map_.version == 0) {
    return Status::Unavailable("no cluster map yet (node starting or metaserver unreachable)");
  }
  const std::string where = "partition " + std::to_string(p.value());
  if (p.value() >= map_.partitions.size() || p.value() >= map_.partition_count) {
    return Status::InvalidArgument(where + " does not exist (the cluster has " +
                                   std::to_string(map_.partition_count) + ")");
  }
  const PartitionPlacement& pl = map_.partitions[p.value()];
  if (pl.replicas.empty()) return Status::Unavailable(where + " is not placed yet");
  const bool here =
      any_replica ? std::find(pl.replicas.begin(), pl.replicas.end(), self_) != pl.replicas.end()
                  : pl.replicas.front() == self_;
  if (self_.value() == 0 || !here) {
    return Status(StatusCode::kNotPrimary, where + " is served by node " +
                                               std::to_string(pl.replicas.front().value()) +
                                               ", not this node");
  }
  if (client_epoch < pl.epoch) {
    return Status(StatusCode::kStaleEpoch,
                  where + ": request epoch " + std::to_string(client_epoch.value()) +
                      " is older than " + std::to_string(pl.epoch.value()));
  }
  if (client_epoch > pl.epoch) {
    return Status::Unavailable(where + ": request epoch " + std::to_string(client_epoch.value()) +
                               " is newer than this node's map (" +
                               std::to_string(pl.epoch.value()) + "); retry");
  }
  return Status::Ok();
}

Status PartitionLogic::CheckPartition(PartitionId p, Epoch client_epoch, bool any_replica) const {
  MutexLock lock(&mu_);
  return CheckPartitionLocked(p, client_epoch, any_replica);
}

Status PartitionLogic::CheckCollectionLocked(std::string_view collection) const {
  RETURN_IF_ERROR(ValidateCollection(collection));
  if (map_.collections.count(std::string(collection)) == 0) {
    return Status::NotFound("no collection '" + std::string(collection) + "'");
  }
  return Status::Ok();
}

Status PartitionLogic::CheckCollection(std::string_view collection) const {
  MutexLock lock(&mu_);
  return CheckCollectionLocked(collection);
}

Status PartitionLogic::CheckDocument(PartitionId p, std::string_view collection,
                                     std::string_view id) const {
  RETURN_IF_ERROR(ValidateCollection(collection));
  RETURN_IF_ERROR(ValidateDocId(id));
  uint32_t count;
  {
    MutexLock lock(&mu_);
    count = map_.partition_count;
  }
  if (count == 0) return Status::Unavailable("no cluster map yet");
  const PartitionId want = PartitionOf(collection, id, count);
  if (want != p) {
    return Status::InvalidArgument(DocName(collection, id) + " is in partition " +
                                   std::to_string(want.value()) + ", not " +
                                   std::to_string(p.value()));
  }
  return Status::Ok();
}

Status PartitionLogic::CheckRequest(PartitionId p, Epoch client_epoch, std::string_view collection,
                                    std::string_view id, bool any_replica) const {
  {
    MutexLock lock(&mu_);
    RETURN_IF_ERROR(CheckPartitionLocked(p, client_epoch, any_replica));
  }
  RETURN_IF_ERROR(CheckDocument(p, collection, id));
  MutexLock lock(&mu_);
  return CheckCollectionLocked(collection);
}

uint64_t PartitionLogic::MaxBlocks() const {
  return (limits_.max_document_bytes + limits_.block_bytes - 1) / limits_.block_bytes;
}

// ---------------------------------------------------------------- put

Result<PutPrep> PartitionLogic::PreparePut(const PutInput& in, Nanos now) {
  RETURN_IF_ERROR(CheckRequest(in.partition, in.epoch, in.collection, in.id));
  const std::string name = DocName(in.collection, in.id);
  if (in.expected_version < kMustNotExist) {
    return Status::InvalidArgument("expected_version " + std::to_string(in.expected_version));
  }
  if (in.size > limits_.max_document_bytes) {
    return Status::TooLarge(name + ": " + std::to_string(in.size) +
                            " bytes is over max_document_bytes (" +
                            std::to_string(limits_.max_document_bytes) + ")");
  }
  if (in.xattrs) {
    DocMetadata m;
    m.xattrs = *in.xattrs;
    RETURN_IF_ERROR(ValidateXattrs(m));
  }
  const uint64_t bb = limits_.block_bytes;
  PutPrep prep;
  prep.block_count = static_cast<uint32_t>((in.size + bb - 1) / bb);

  uint64_t inline_bytes = 0;
  if (in.body) {
    if (in.upload_id || !in.kept_blocks.empty()) {
      return Status::InvalidArgument(name + ": body is exclusive with upload_id and kept_blocks");
    }
    if (in.body->size() != in.size) {
      return Status::InvalidArgument(name + ": body of " + std::to_string(in.body->size()) +
                                     " bytes but size " + std::to_string(in.size));
    }
    if (in.body->size() > bb) {
      return Status::TooLarge(name + ": an inline body is at most one block (" +
                              std::to_string(bb) + " bytes); use an upload");
    }
    if (!in.body->empty()) prep.inline_blocks.push_back({0, *in.body});
    inline_bytes = in.body->size();
  }
  std::set<uint32_t> seen;
  for (const BlockInput& b : in.kept_blocks) {
    const std::string at = name + ": block " + std::to_string(b.index);
    if (b.index >= prep.block_count) {
      return Status::InvalidArgument(at + " is past the body's " +
                                     std::to_string(prep.block_count) + " blocks");
    }
    if (!seen.insert(b.index).second) return Status::InvalidArgument(at + " is given twice");
    if (b.data.has_value() == b.keep_from_version.has_value()) {
      return Status::InvalidArgument(at + ": give either data or keep_from_version");
    }
    if (b.keep_from_version) {
      if (*b.keep_from_version == 0) {
        return Status::InvalidArgument(at + ": keep_from_version must be > 0");
      }
      prep.kept.emplace(b.index, *b.keep_from_version);
      continue;
    }
    if (!b.data_hash) return Status::InvalidArgument(at + ": data without data_hash");
    if (b.data->empty() || b.data->size() > bb) {
      return Status::InvalidArgument(at + ": " + std::to_string(b.data->size()) +
                                     " bytes; a block holds 1.." + std::to_string(bb));
    }
    if (Checksum64(b.data->data(), b.data->size()) != *b.data_hash) {
      return Status::InvalidArgument(at + ": data_hash does not match the bytes received");
    }
    inline_bytes += b.data->size();
    prep.inline_blocks.push_back({b.index, *b.data});
  }
  if (inline_bytes > bb && !in.body) {
    return Status::TooLarge(name + ": inline blocks of one put hold at most " + std::to_string(bb) +
                            " bytes; use an upload");
  }

  if (in.upload_id) {
    MutexLock lock(&mu_);
    auto it = uploads_.find(*in.upload_id);
    if (it == uploads_.end()) {
      return Status::NotFound("no upload " + std::to_string(*in.upload_id) +
                              " (expired, aborted or already committed)");
    }
    Upload& u = *it->second;
    if (u.partition != in.partition || u.collection != in.collection || u.id != in.id) {
      return Status::InvalidArgument("upload " + std::to_string(*in.upload_id) + " is for " +
                                     DocName(u.collection, u.id) + ", not " + name);
    }
    if (u.committing) {
      return Status::FailedPrecondition("upload " + std::to_string(*in.upload_id) +
                                        " is being committed by another put");
    }
    for (const auto& [index, ref] : u.blocks) {
      if (seen.count(index) != 0) {
        return Status::InvalidArgument(name + ": block " + std::to_string(index) +
                                       " is both uploaded and given in kept_blocks");
      }
      if (index >= prep.block_count) {
        return Status::InvalidArgument(name + ": uploaded block " + std::to_string(index) +
                                       " is past the body's " + std::to_string(prep.block_count) +
                                       " blocks");
      }
    }
    prep.uploaded = u.blocks;
    if (u.in_order && prep.kept.empty() && prep.inline_blocks.empty() &&
        u.next_in_order == prep.block_count && u.blocks.size() == prep.block_count) {
      prep.streamed_body_hash = XXH3_64bits_digest(u.hash);
    }
    u.committing = true;
    u.last_used = now;
  }
  return prep;
}

Result<Mutation> PartitionLogic::BuildPut(const PutInput& in, const PutPrep& prep,
                                          const std::map<uint32_t, BlockRef>& inline_refs,
                                          const std::optional<DocEntry>& current,
                                          const PartitionState& state, int64_t wall_ns) const {
  const std::string name = DocName(in.collection, in.id);
  Mutation m;
  m.type = MutationType::kPut;
  m.partition = in.partition;
  m.lsn = state.last_lsn.Next();
  m.epoch = EpochOf(in.partition);
  m.request_id = in.request_id;
  m.collection = in.collection;
  m.id = in.id;
  m.expected_version = in.expected_version;
  m.body_hash = in.body_hash;

  const uint64_t bb = limits_.block_bytes;
  for (uint32_t i = 0; i < prep.block_count; ++i) {
    const std::string at = name + ": block " + std::to_string(i);
    BlockRef ref;
    if (auto it = inline_refs.find(i); it != inline_refs.end()) {
      ref = it->second;
    } else if (auto u = prep.uploaded.find(i); u != prep.uploaded.end()) {
      ref = u->second;
    } else if (auto k = prep.kept.find(i); k != prep.kept.end()) {
      if (!current || current->version != k->second) {
        return Status::VersionMismatch(
            at + ": kept from version " + std::to_string(k->second) + " but the current is " +
            (current ? "version " + std::to_string(current->version) : "no document"));
      }
      if (i >= current->blocks.size()) {
        return Status::InvalidArgument(at + ": version " + std::to_string(k->second) +
                                       " has only " + std::to_string(current->blocks.size()) +
                                       " blocks");
      }
      ref = current->blocks[i];
    } else {
      return Status::InvalidArgument(at + " is missing (neither sent, uploaded nor kept)");
    }
    const bool last = i + 1 == prep.block_count;
    const uint64_t want = last ? in.size - bb * i : bb;
    if (ref.raw_len != want) {
      return Status::InvalidArgument(
          at + " holds " + std::to_string(ref.raw_len) + " bytes; expected " +
          std::to_string(want) +
          " (every block but the last holds block_bytes = " + std::to_string(bb) + ")");
    }
    m.blocks.push_back(ref);
  }

  // Metadata: what the request gives, else the current version's, else defaults.
  if (current) m.meta = current->meta;
  if (!current) m.meta.mode = 0644;
  m.meta.size = in.size;
  if (in.mode) m.meta.mode = *in.mode;
  if (in.uid) m.meta.uid = *in.uid;
  if (in.gid) m.meta.gid = *in.gid;
  if (in.xattrs) m.meta.xattrs = *in.xattrs;
  m.meta.mtime_ns = in.mtime_ns ? *in.mtime_ns : wall_ns;
  m.meta.ctime_ns = wall_ns;
  return m;
}

Result<BodyCheck> PartitionLogic::CheckBodyHash(const PutInput& in, const PutPrep& prep) const {
  std::optional<uint64_t> known;
  if (prep.block_count == 0) {
    known = Checksum64(nullptr, 0);
  } else if (in.body) {
    known = Checksum64(in.body->data(), in.body->size());
  } else if (prep.streamed_body_hash) {
    known = prep.streamed_body_hash;
  } else if (prep.block_count == 1 && prep.inline_blocks.size() == 1) {
    known = Checksum64(prep.inline_blocks[0].data.data(), prep.inline_blocks[0].data.size());
  }
  if (!known) return BodyCheck::kReadBack;
  if (*known != in.body_hash) {
    return Status::InvalidArgument(DocName(in.collection, in.id) +
                                   ": body_hash does not match the body received");
  }
  return BodyCheck::kDone;
}

void PartitionLogic::FinishPut(const PutInput& in, bool committed) {
  if (!in.upload_id) return;
  MutexLock lock(&mu_);
  auto it = uploads_.find(*in.upload_id);
  if (it == uploads_.end()) return;
  if (committed) {
    uploads_.erase(it);
  } else {
    it->second->committing = false;
  }
}

Result<Mutation> PartitionLogic::BuildDelete(const DeleteInput& in,
                                             const PartitionState& state) const {
  if (in.expected_version < kMustNotExist) {
    return Status::InvalidArgument("expected_version " + std::to_string(in.expected_version));
  }
  Mutation m;
  m.type = MutationType::kDelete;
  m.partition = in.partition;
  m.lsn = state.last_lsn.Next();
  m.epoch = EpochOf(in.partition);
  m.request_id = in.request_id;
  m.collection = in.collection;
  m.id = in.id;
  m.expected_version = in.expected_version;
  return m;
}

Result<Mutation> PartitionLogic::BuildRename(const RenameInput& in,
                                             const PartitionState& state) const {
  RETURN_IF_ERROR(CheckDocument(in.partition, in.collection, in.to_id));
  if (in.from_id == in.to_id) {
    return Status::InvalidArgument("rename onto itself: " + DocName(in.collection, in.from_id));
  }
  Mutation m;
  m.type = MutationType::kRename;
  m.partition = in.partition;
  m.lsn = state.last_lsn.Next();
  m.epoch = EpochOf(in.partition);
  m.request_id = in.request_id;
  m.collection = in.collection;
  m.id = in.from_id;
  m.to_id = in.to_id;
  m.replace = in.replace;
  return m;
}

// ---------------------------------------------------------------- uploads

PartitionId PartitionLogic::UploadPartition(uint64_t upload_id) {
  return PartitionId(static_cast<uint32_t>((upload_id >> kUploadPartitionShift) & 0xFFFF));
}

Result<uint64_t> PartitionLogic::BeginUpload(PartitionId p, Epoch client_epoch,
                                             std::string_view collection, std::string_view id,
                                             Nanos now) {
  RETURN_IF_ERROR(CheckRequest(p, client_epoch, collection, id));
  MutexLock lock(&mu_);
  if (uploads_.size() >= limits_.max_uploads) {
    return Status::Unavailable("too many uploads in progress (" +
                               std::to_string(limits_.max_uploads) + "); retry later");
  }
  uint64_t upload_id;
  do {
    next_upload_ = (next_upload_ + 1) & kUploadCounterMask;
    upload_id = (uint64_t{p.value()} << kUploadPartitionShift) | next_upload_;
  } while (upload_id == 0 || uploads_.count(upload_id) != 0);
  auto u = std::make_unique<Upload>();
  u->partition = p;
  u->epoch = client_epoch;
  u->collection = std::string(collection);
  u->id = std::string(id);
  u->last_used = now;
  uploads_.emplace(upload_id, std::move(u));
  return upload_id;
}

Status PartitionLogic::CheckUploadBlock(uint64_t upload_id, uint32_t index, size_t bytes,
                                        uint64_t data_hash, uint64_t actual_hash,
                                        Nanos /*now*/) const {
  const std::string at = "upload " + std::to_string(upload_id) + " block " + std::to_string(index);
  MutexLock lock(&mu_);
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end()) {
    return Status::NotFound("no upload " + std::to_string(upload_id) +
                            " (expired, aborted or already committed)");
  }
  const Upload& u = *it->second;
  if (u.committing) return Status::FailedPrecondition(at + ": the upload is being committed");
  RETURN_IF_ERROR(CheckPartitionLocked(u.partition, u.epoch, false));
  if (index >= MaxBlocks()) {
    return Status::TooLarge(at + " is past max_document_bytes (" +
                            std::to_string(limits_.max_document_bytes) + ")");
  }
  if (bytes == 0 || bytes > limits_.block_bytes) {
    return Status::InvalidArgument(at + ": " + std::to_string(bytes) + " bytes; a block holds 1.." +
                                   std::to_string(limits_.block_bytes));
  }
  if (data_hash != actual_hash) {
    return Status::InvalidArgument(at + ": data_hash does not match the bytes received");
  }
  return Status::Ok();
}

std::vector<BlockRef> PartitionLogic::AddUploadBlock(uint64_t upload_id, uint32_t index,
                                                     const BlockRef& ref,
                                                     std::span<const std::byte> data, Nanos now) {
  MutexLock lock(&mu_);
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end() || it->second->committing) return {ref};
  Upload& u = *it->second;
  u.last_used = now;
  std::vector<BlockRef> forget;
  auto [pos, inserted] = u.blocks.emplace(index, ref);
  if (!inserted) {
    forget.push_back(pos->second);
    pos->second = ref;
    u.in_order = false;  // a block sent again: the running hash no longer applies
  } else if (u.in_order && index == u.next_in_order) {
    XXH3_64bits_update(u.hash, data.data(), data.size());
    ++u.next_in_order;
  } else {
    u.in_order = false;
  }
  return forget;
}

Result<std::vector<BlockRef>> PartitionLogic::AbortUpload(uint64_t upload_id) {
  MutexLock lock(&mu_);
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end()) return Status::NotFound("no upload " + std::to_string(upload_id));
  std::vector<BlockRef> refs = it->second->Refs();
  uploads_.erase(it);
  return refs;
}

std::vector<BlockRef> PartitionLogic::ExpireUploads(Nanos now) {
  MutexLock lock(&mu_);
  std::vector<BlockRef> refs;
  for (auto it = uploads_.begin(); it != uploads_.end();) {
    const Upload& u = *it->second;
    if (!u.committing && now - u.last_used >= limits_.upload_idle_timeout) {
      std::vector<BlockRef> r = u.Refs();
      refs.insert(refs.end(), r.begin(), r.end());
      it = uploads_.erase(it);
    } else {
      ++it;
    }
  }
  return refs;
}

size_t PartitionLogic::open_uploads() const {
  MutexLock lock(&mu_);
  return uploads_.size();
}

bool PartitionLogic::HasUpload(uint64_t upload_id) const {
  MutexLock lock(&mu_);
  return uploads_.count(upload_id) != 0;
}

}  // namespace cairn::chunkserver
