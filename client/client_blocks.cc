// Block-level writes for cairn-fsd: an upload fed block by block while a file
// is still being written (BlockUpload), and metadata-only updates (every
// block kept from the current version). See cairn.h for the contracts.
#include <xxhash.h>

#include <algorithm>
#include <set>

#include "client/client_impl.h"
#include "client/rpc_convert.h"

namespace cairn::client {

namespace {

void SetMeta(const WriteOptions& o, rpc::PutRequest* req) {
  if (o.mode) req->__set_mode(static_cast<int32_t>(*o.mode));
  if (o.uid) req->__set_uid(static_cast<int32_t>(*o.uid));
  if (o.gid) req->__set_gid(static_cast<int32_t>(*o.gid));
  if (o.mtime_ns) req->__set_mtime_ns(*o.mtime_ns);
  if (o.xattrs) req->__set_xattrs(*o.xattrs);
}

}  // namespace

Result<uint32_t> Client::BlockBytesFor(std::string_view collection, std::string_view id) {
  RETURN_IF_ERROR(ValidateCollectionName(collection));
  RETURN_IF_ERROR(ValidateDocumentId(id));
  Backoff b = impl_->NewBackoff();
  ASSIGN_OR_RETURN(PartitionId p, impl_->PartitionOf(collection, id, b));
  return impl_->BlockBytes(p, b);
}

Result<std::unique_ptr<BlockUpload>> Client::BeginBlockUpload(std::string_view collection,
                                                              std::string_view id) {
  const std::string name = DocName(collection, id);
  RETURN_IF_ERROR(ValidateCollectionName(collection).WithContext(name));
  RETURN_IF_ERROR(ValidateDocumentId(id).WithContext(name));
  Backoff b = impl_->NewBackoff();
  ASSIGN_OR_RETURN(PartitionId p, impl_->PartitionOf(collection, id, b));
  const uint32_t bb = impl_->BlockBytes(p, b);
  return std::unique_ptr<BlockUpload>(
      new BlockUpload(impl_.get(), std::string(collection), std::string(id), p, bb));
}

Result<DocInfo> Client::UpdateMetadata(std::string_view collection, std::string_view id,
                                       const WriteOptions& options) {
  const std::string name = DocName(collection, id);
  if (options.expected_version < 0) {
    return Status::InvalidArgument(name + ": UpdateMetadata updates an existing document");
  }
  const std::string c(collection), i(id);
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(DocInfo cur, Stat(collection, id));
    if (options.expected_version > 0 && cur.version != options.expected_version) {
      return Status::VersionMismatch(name + ": expected version " +
                                     std::to_string(options.expected_version) + ", found " +
                                     std::to_string(cur.version));
    }
    const uint64_t block = cur.block_bytes > 0 ? cur.block_bytes : impl_->options.block_bytes;
    Backoff b = impl_->NewBackoff();
    ASSIGN_OR_RETURN(PartitionId p, impl_->PartitionOf(collection, id, b));
    rpc::PutRequest req;
    req.partition = static_cast<int32_t>(p.value());
    req.request_id = impl_->NextRequestId();
    req.collection = c;
    req.id = i;
    req.expected_version = cur.version;
    req.size = static_cast<int64_t>(cur.size);
    req.body_hash = static_cast<int64_t>(cur.body_hash);
    // Unset fields keep the current value (the server would otherwise apply
    // its defaults, and a put's mtime is "now").
    req.__set_mode(static_cast<int32_t>(options.mode.value_or(cur.mode)));
    req.__set_uid(static_cast<int32_t>(options.uid.value_or(cur.uid)));
    req.__set_gid(static_cast<int32_t>(options.gid.value_or(cur.gid)));
    req.__set_mtime_ns(options.mtime_ns.value_or(cur.mtime_ns));
    req.__set_xattrs(options.xattrs.value_or(cur.xattrs));
    if (cur.size == 0) {
      req.__set_body(std::string());
    } else {
      std::vector<rpc::BlockSpec> specs;
      const uint64_t blocks = (cur.size + block - 1) / block;
      for (uint64_t k = 0; k < blocks; ++k) {
        rpc::BlockSpec spec;
        spec.index = static_cast<int32_t>(k);
        spec.__set_keep_from_version(cur.version);
        specs.push_back(std::move(spec));
      }
      req.__set_kept_blocks(std::move(specs));
    }
    rpc::DocMeta meta;
    Status s = impl_->CallChunk(p, b, [&](rpc::ChunkServiceClient& cl, int64_t epoch) {
      req.epoch = epoch;
      cl.Put(meta, req);
    });
    if (s.ok()) return FromRpc(meta);
    if (s.code() == StatusCode::kVersionMismatch && options.expected_version == kAnyVersion &&
        attempt < 4) {
      continue;  // changed between our Stat and Put: apply to the new version
    }
    return s.WithContext(name);
  }
}

// ---------------------------------------------------------------- BlockUpload

BlockUpload::BlockUpload(Client::Impl* impl, std::string collection, std::string id,
                         PartitionId partition, uint32_t block_bytes)
    : impl_(impl),
      collection_(std::move(collection)),
      id_(std::move(id)),
      partition_(partition),
      block_bytes_(block_bytes) {}

BlockUpload::~BlockUpload() {
  if (!committed_) Abort();
}

void BlockUpload::Abort() {
  if (upload_id_ == 0) return;
  Backoff once = impl_->NewBackoff();
  const int64_t id = upload_id_;
  upload_id_ = 0;
  impl_
      ->CallChunk(partition_, once,
                  [&](rpc::ChunkServiceClient& cl, int64_t) { cl.UploadAbort(id); })
      .IgnoreError();  // best effort: the server drops idle uploads too
}

Status BlockUpload::SendBlock(uint64_t index, std::string_view data) {
  const std::string name = DocName(collection_, id_);
  if (data.empty() || data.size() > block_bytes_) {
    return Status::InvalidArgument(name + ": a block holds 1.." + std::to_string(block_bytes_) +
                                   " bytes, not " + std::to_string(data.size()));
  }
  if (committed_) return Status::FailedPrecondition(name + ": upload already committed");
  if (upload_id_ == 0) {
    Backoff b = impl_->NewBackoff();
    int64_t uid = 0;
    Status s = impl_->CallChunk(partition_, b, [&](rpc::ChunkServiceClient& cl, int64_t epoch) {
      uid = cl.UploadBegin(static_cast<int32_t>(partition_.value()), epoch, collection_, id_);
    });
    if (!s.ok()) return s.WithContext(name);
    upload_id_ = uid;
  }
  const int64_t hash = static_cast<int64_t>(XXH3_64bits(data.data(), data.size()));
  const std::string bytes(data);
  Backoff b = impl_->NewBackoff();
  Status s = impl_->CallChunk(partition_, b, [&](rpc::ChunkServiceClient& cl, int64_t) {
    cl.UploadBlock(upload_id_, static_cast<int32_t>(index), bytes, hash);
  });
  if (!s.ok()) return s.WithContext(name + " block " + std::to_string(index));
  sent_.push_back(index);
  return Status::Ok();
}

Result<DocInfo> BlockUpload::Commit(uint64_t size, uint64_t body_hash, int64_t keep_version,
                                    const WriteOptions& options) {
  const std::string name = DocName(collection_, id_);
  if (committed_) return Status::FailedPrecondition(name + ": upload already committed");
  const uint64_t blocks = (size + block_bytes_ - 1) / block_bytes_;
  const std::set<uint64_t> sent(sent_.begin(), sent_.end());
  for (uint64_t k : sent) {
    if (k >= blocks) {
      return Status::InvalidArgument(name + ": block " + std::to_string(k) +
                                     " was sent but the body has " + std::to_string(blocks));
    }
  }
  rpc::PutRequest req;
  req.partition = static_cast<int32_t>(partition_.value());
  req.request_id = impl_->NextRequestId();
  req.collection = collection_;
  req.id = id_;
  req.expected_version = options.expected_version;
  req.size = static_cast<int64_t>(size);
  req.body_hash = static_cast<int64_t>(body_hash);
  SetMeta(options, &req);
  if (size == 0) {
    req.__set_body(std::string());
    Abort();  // nothing of it is used
  } else {
    std::vector<rpc::BlockSpec> specs;
    for (uint64_t k = 0; k < blocks; ++k) {
      if (sent.count(k) != 0) continue;
      if (keep_version <= 0) {
        return Status::InvalidArgument(name + ": block " + std::to_string(k) +
                                       " was neither sent nor kept");
      }
      rpc::BlockSpec spec;
      spec.index = static_cast<int32_t>(k);
      spec.__set_keep_from_version(keep_version);
      specs.push_back(std::move(spec));
    }
    if (!specs.empty()) req.__set_kept_blocks(std::move(specs));
    if (upload_id_ != 0) req.__set_upload_id(upload_id_);
  }
  rpc::DocMeta meta;
  Backoff b = impl_->NewBackoff();
  Status s = impl_->CallChunk(partition_, b, [&](rpc::ChunkServiceClient& cl, int64_t epoch) {
    req.epoch = epoch;
    cl.Put(meta, req);
  });
  if (!s.ok()) return s.WithContext(name);
  committed_ = true;
  upload_id_ = 0;
  return FromRpc(meta);
}

}  // namespace cairn::client
