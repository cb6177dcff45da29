// Streamed puts and gets, copy-on-write updates and the cross-partition copy
// behind Rename. Memory: a put holds two blocks (the one being sent and the
// look-ahead that decides inline vs upload), a get one block.
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "client/client_impl.h"
#include "client/rpc_convert.h"

namespace cairn::client {

namespace {

// Reads until `buf` is full or the reader reports the end.
Result<size_t> ReadFull(const Reader& reader, std::string* buf, size_t want) {
  buf->resize(want);
  size_t got = 0;
  while (got < want) {
    ASSIGN_OR_RETURN(size_t n, reader(buf->data() + got, want - got));
    if (n == 0) break;
    got += n;
  }
  buf->resize(got);
  return got;
}

int64_t Hash64(std::string_view data) {
  return static_cast<int64_t>(XXH3_64bits(data.data(), data.size()));
}

void SetMetadata(const WriteOptions& o, rpc::PutRequest* req) {
  if (o.mode) req->__set_mode(static_cast<int32_t>(*o.mode));
  if (o.uid) req->__set_uid(static_cast<int32_t>(*o.uid));
  if (o.gid) req->__set_gid(static_cast<int32_t>(*o.gid));
  if (o.mtime_ns) req->__set_mtime_ns(*o.mtime_ns);
  if (o.xattrs) req->__set_xattrs(*o.xattrs);
}

// An upload lost by the server (restarted, or the partition moved): the
// blocks must be sent again under a new upload.
bool UploadLost(const Status& s) {
  return s.code() == StatusCode::kNotFound || s.code() == StatusCode::kFailedPrecondition;
}

class Xxh3Stream {
 public:
  Xxh3Stream() : state_(XXH3_createState()) { XXH3_64bits_reset(state_); }
  ~Xxh3Stream() { XXH3_freeState(state_); }
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;
  void Update(std::string_view d) { XXH3_64bits_update(state_, d.data(), d.size()); }
  uint64_t Digest() const { return XXH3_64bits_digest(state_); }

 private:
  XXH3_state_t* state_;
};

}  // namespace

uint32_t Client::Impl::BlockBytes(PartitionId p, Backoff& backoff) {
  const uint32_t known = block_bytes.load(std::memory_order_relaxed);
  if (known != 0) return known;
  // Every block but the last must hold exactly the chunk servers' block
  // size: ask one node once (GetStatus); fall back to the option.
  rpc::NodeStatus status;
  Status s =
      CallChunk(p, backoff, [&](rpc::ChunkServiceClient& c, int64_t) { c.GetStatus(status); });
  uint32_t bb = options.block_bytes;
  if (s.ok() && status.block_bytes >= 4096 && status.block_bytes <= (16 << 20)) {
    bb = static_cast<uint32_t>(status.block_bytes);
  } else if (!s.ok()) {
    LOG_DEBUG(log) << "GetStatus for the block size: " << s.ToString();
    return bb;  // ask again next time
  }
  block_bytes.store(bb, std::memory_order_relaxed);
  return bb;
}

// One attempt at a whole put: inline when the body fits one block, else
// UploadBegin / UploadBlock... / Put(upload_id). `*upload_lost` is set when
// the failure is the server forgetting the upload (the caller may rewind
// the source and call again with the same request id).
Result<DocInfo> Client::Impl::PutStreamOnce(std::string_view collection, std::string_view id,
                                            const Reader& reader, const WriteOptions& write,
                                            const rpc::RequestId& request_id, bool* upload_lost,
                                            std::optional<uint64_t> expected_hash) {
  *upload_lost = false;
  Backoff b = NewBackoff();
  ASSIGN_OR_RETURN(PartitionId p, PartitionOf(collection, id, b));
  const size_t block = BlockBytes(p, b);

  rpc::PutRequest req;
  req.partition = static_cast<int32_t>(p.value());
  req.request_id = request_id;
  req.collection = collection;
  req.id = id;
  req.expected_version = write.expected_version;
  SetMetadata(write, &req);

  std::string cur, next;
  ASSIGN_OR_RETURN(size_t n0, ReadFull(reader, &cur, block));
  size_t n1 = 0;
  if (n0 == block) {
    ASSIGN_OR_RETURN(n1, ReadFull(reader, &next, block));
  }
  Xxh3Stream hash;
  if (n1 == 0) {
    hash.Update(cur);
    if (expected_hash && hash.Digest() != *expected_hash) {
      return Status::Corruption("the body read does not match its hash");
    }
    req.size = static_cast<int64_t>(cur.size());
    req.body_hash = static_cast<int64_t>(hash.Digest());
    req.__set_body(std::move(cur));
    rpc::DocMeta meta;
    Status s = CallChunk(p, b, [&](rpc::ChunkServiceClient& c, int64_t epoch) {
      req.epoch = epoch;
      c.Put(meta, req);
    });
    if (!s.ok()) return s;
    return FromRpc(meta);
  }

  int64_t upload_id = 0;
  const std::string coll(collection), doc(id);
  Status s = CallChunk(p, b, [&](rpc::ChunkServiceClient& c, int64_t epoch) {
    upload_id = c.UploadBegin(static_cast<int32_t>(p.value()), epoch, coll, doc);
  });
  if (!s.ok()) return s;
  auto abort = [&](Status why) -> Status {
    // Best effort, one attempt: the server also drops idle uploads.
    Backoff once = NewBackoff();
    Status a =
        CallChunk(p, once, [&](rpc::ChunkServiceClient& c, int64_t) { c.UploadAbort(upload_id); });
    if (!a.ok()) LOG_DEBUG(log) << "UploadAbort " << upload_id << ": " << a.ToString();
    return why;
  };

  uint64_t size = 0;
  int32_t index = 0;
  while (!cur.empty()) {
    hash.Update(cur);
    size += cur.size();
    const int64_t data_hash = Hash64(cur);
    Backoff bb = NewBackoff();  // the deadline applies per block
    s = CallChunk(p, bb, [&](rpc::ChunkServiceClient& c, int64_t) {
      c.UploadBlock(upload_id, index, cur, data_hash);
    });
    if (!s.ok()) {
      *upload_lost = UploadLost(s);
      return abort(s.WithContext("block " + std::to_string(index)));
    }
    ++index;
    cur.swap(next);
    if (cur.size() == block) {
      Result<size_t> r = ReadFull(reader, &next, block);
      if (!r.ok()) return abort(r.status().WithContext("reading the body"));
    } else {
      next.clear();
    }
  }
  if (expected_hash && hash.Digest() != *expected_hash) {
    return abort(Status::Corruption("the body read does not match its hash"));
  }
  req.size = static_cast<int64_t>(size);
  req.body_hash = static_cast<int64_t>(hash.Digest());
  req.__set_upload_id(upload_id);
  rpc::DocMeta meta;
  Backoff bp = NewBackoff();
  s = CallChunk(p, bp, [&](rpc::ChunkServiceClient& c, int64_t epoch) {
    req.epoch = epoch;
    c.Put(meta, req);
  });
  if (!s.ok()) {
    *upload_lost =
        s.code() == StatusCode::kNotFound && s.message().find("upload") != std::string::npos;
    return abort(s);
  }
  return FromRpc(meta);
}

Result<DocInfo> Client::Put(std::string_view collection, std::string_view id, std::string_view body,
                            const WriteOptions& options) {
  const std::string name = DocName(collection, id);
  RETURN_IF_ERROR(ValidateCollectionName(collection).WithContext(name));
  RETURN_IF_ERROR(ValidateDocumentId(id).WithContext(name));
  const rpc::RequestId rid = impl_->NextRequestId();
  for (int round = 0;; ++round) {
    bool lost = false;
    Result<DocInfo> r =
        impl_->PutStreamOnce(collection, id, StringReader(body), options, rid, &lost, {});
    if (r.ok() || !lost || round >= 2) return r.ok() ? r : r.status().WithContext(name);
    LOG_INFO(impl_->log) << name << ": upload lost (" << r.status().ToString() << "), again";
  }
}

Result<DocInfo> Client::PutStream(std::string_view collection, std::string_view id,
                                  const Reader& reader, const WriteOptions& options) {
  const std::string name = DocName(collection, id);
  RETURN_IF_ERROR(ValidateCollectionName(collection).WithContext(name));
  RETURN_IF_ERROR(ValidateDocumentId(id).WithContext(name));
  bool lost = false;
  Result<DocInfo> r =
      impl_->PutStreamOnce(collection, id, reader, options, impl_->NextRequestId(), &lost, {});
  if (r.ok()) return r;
  if (lost) {
    return Status::Unavailable(name + ": the server lost the upload and the source cannot be " +
                               "read again: " + r.status().message());
  }
  return r.status().WithContext(name);
}

Result<DocInfo> Client::PutFile(std::string_view collection, std::string_view id, int fd,
                                const WriteOptions& options) {
  const std::string name = DocName(collection, id);
  RETURN_IF_ERROR(ValidateCollectionName(collection).WithContext(name));
  RETURN_IF_ERROR(ValidateDocumentId(id).WithContext(name));
  struct stat st {};
  const off_t start = ::lseek(fd, 0, SEEK_CUR);
  const bool seekable = start >= 0 && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  const rpc::RequestId rid = impl_->NextRequestId();
  for (int round = 0;; ++round) {
    bool lost = false;
    Result<DocInfo> r = impl_->PutStreamOnce(collection, id, FdReader(fd), options, rid, &lost, {});
    if (r.ok()) return r;
    if (!lost || !seekable || round >= 2) return r.status().WithContext(name);
    if (::lseek(fd, start, SEEK_SET) != start) {
      return Status::FromErrno(errno, name + ": rewinding the source");
    }
    LOG_INFO(impl_->log) << name << ": upload lost (" << r.status().ToString() << "), again";
  }
}

// ---------------------------------------------------------------- reads

namespace {

// Reads one piece (at most one block) at `offset`.
Status GetPiece(Client::Impl* impl, PartitionId p, const std::string& collection,
                const std::string& id, int64_t offset, int32_t length, int64_t if_version,
                const Client::Impl::ReadRoute& read, rpc::GetResult* out) {
  rpc::GetRequest req;
  req.partition = static_cast<int32_t>(p.value());
  req.collection = collection;
  req.id = id;
  req.offset = offset;
  req.length = length;
  if (if_version > 0) req.__set_if_version(if_version);
  if (read.allow_backup()) req.__set_allow_backup(true);
  Backoff b = impl->NewBackoff();
  return impl->CallChunk(
      p, b,
      [&](rpc::ChunkServiceClient& c, int64_t epoch) {
        req.epoch = epoch;
        c.Get(*out, req);
      },
      read);
}

}  // namespace

Result<DocInfo> Client::Get(std::string_view collection, std::string_view id, const Writer& writer,
                            const ReadOptions& options) {
  const std::string name = DocName(collection, id);
  RETURN_IF_ERROR(ValidateCollectionName(collection).WithContext(name));
  RETURN_IF_ERROR(ValidateDocumentId(id).WithContext(name));
  Backoff b = impl_->NewBackoff();
  ASSIGN_OR_RETURN(PartitionId p, impl_->PartitionOf(collection, id, b));
  const std::string c(collection), i(id);
  const bool whole = options.offset == 0 && !options.length.has_value();
  uint64_t block = impl_->options.block_bytes;
  uint64_t pos = options.offset;
  uint64_t end = options.length ? options.offset + *options.length : UINT64_MAX;
  int64_t version = options.if_version;
  Xxh3Stream hash;
  std::optional<DocInfo> info;
  const Impl::ReadRoute read = impl_->NewReadRoute(options.read_from);
  for (;;) {
    const uint64_t want = std::min<uint64_t>(block, end - pos);
    rpc::GetResult r;
    Status s = GetPiece(impl_.get(), p, c, i, static_cast<int64_t>(pos), static_cast<int32_t>(want),
                        version, read, &r);
    if (!s.ok()) {
      if (s.code() == StatusCode::kVersionMismatch && info.has_value()) {
        return Status::VersionMismatch(name + ": changed during the read (was version " +
                                       std::to_string(info->version) + ")");
      }
      return s.WithContext(name);
    }
    if (!info.has_value()) {
      info = FromRpc(r.meta);
      version = info->version;  // pin every later piece to this version
      if (info->block_bytes > 0) block = info->block_bytes;
      end = std::min(end, info->size);
    }
    std::string_view data(r.data);
    if (data.size() > end - std::min(end, pos)) data = data.substr(0, end - std::min(end, pos));
    if (data.empty() && pos < end) {
      return Status::Internal(name + ": empty read at offset " + std::to_string(pos) + " of " +
                              std::to_string(info->size));
    }
    if (whole) hash.Update(data);
    RETURN_IF_ERROR(writer(data));
    pos += data.size();
    if (pos >= end) break;
  }
  if (whole && hash.Digest() != info->body_hash) {
    return Status::Corruption(name + ": body hash mismatch (read " + std::to_string(info->size) +
                              " bytes of version " + std::to_string(info->version) +
                              "; the bytes written out are not the stored body)");
  }
  return *info;
}

// ---------------------------------------------------------------- copy-on-write

Result<DocInfo> Client::WriteRange(std::string_view collection, std::string_view id,
                                   uint64_t offset, std::string_view bytes,
                                   int64_t expected_version) {
  const std::string name = DocName(collection, id);
  if (expected_version < 0) {
    return Status::InvalidArgument(name + ": WriteRange updates an existing document");
  }
  ASSIGN_OR_RETURN(DocInfo cur, Stat(collection, id));
  if (expected_version > 0 && cur.version != expected_version) {
    return Status::VersionMismatch(name + ": expected version " + std::to_string(expected_version) +
                                   ", found " + std::to_string(cur.version));
  }
  if (bytes.empty()) return cur;
  const uint64_t block = cur.block_bytes > 0 ? cur.block_bytes : impl_->options.block_bytes;
  const uint64_t old_size = cur.size;
  const uint64_t new_size = std::max(old_size, offset + bytes.size());
  const uint64_t blocks = (new_size + block - 1) / block;
  const uint64_t first_touched = offset / block;
  const uint64_t last_touched = (offset + bytes.size() - 1) / block;
  const std::string c(collection), i(id);
  Backoff b = impl_->NewBackoff();
  ASSIGN_OR_RETURN(PartitionId p, impl_->PartitionOf(collection, id, b));

  rpc::PutRequest req;
  req.partition = static_cast<int32_t>(p.value());
  req.request_id = impl_->NextRequestId();
  req.collection = c;
  req.id = i;
  req.expected_version = cur.version;
  req.__set_mode(static_cast<int32_t>(cur.mode));
  req.__set_uid(static_cast<int32_t>(cur.uid));
  req.__set_gid(static_cast<int32_t>(cur.gid));
  req.__set_mtime_ns(impl_->clock->WallNanos());
  std::map<std::string, std::string> xattrs(cur.xattrs.begin(), cur.xattrs.end());
  req.__set_xattrs(xattrs);

  // Which blocks change: those the range touches, and any whose length
  // changes because the document grows. The others are kept by reference.
  auto keep = [&](uint64_t k) {
    const uint64_t start = k * block;
    const uint64_t new_len = std::min(new_size, start + block) - start;
    const uint64_t old_len = start < old_size ? std::min(old_size, start + block) - start : 0;
    return !(k >= first_touched && k <= last_touched) && new_len == old_len;
  };
  uint64_t changed = 0;
  for (uint64_t k = 0; k < blocks; ++k) changed += keep(k) ? 0u : 1u;
  // One changed block travels inside the put itself (BlockSpec data): one
  // call instead of UploadBegin, UploadBlock and Put.
  const bool inline_block = changed == 1;

  int64_t upload_id = 0;
  Status s;
  if (!inline_block) {
    s = impl_->CallChunk(p, b, [&](rpc::ChunkServiceClient& cl, int64_t epoch) {
      upload_id = cl.UploadBegin(static_cast<int32_t>(p.value()), epoch, c, i);
    });
    if (!s.ok()) return s.WithContext(name);
  }
  auto abort = [&](Status why) -> Status {
    if (upload_id != 0) {
      Backoff once = impl_->NewBackoff();
      impl_
          ->CallChunk(p, once,
                      [&](rpc::ChunkServiceClient& cl, int64_t) { cl.UploadAbort(upload_id); })
          .IgnoreError();  // best effort: the server drops idle uploads too
    }
    return why.WithContext(name);
  };

  Xxh3Stream hash;
  std::vector<rpc::BlockSpec> specs;
  std::string data;
  for (uint64_t k = 0; k < blocks; ++k) {
    const uint64_t start = k * block;
    const uint64_t new_len = std::min(new_size, start + block) - start;
    const uint64_t old_len = start < old_size ? std::min(old_size, start + block) - start : 0;
    const bool touched = k >= first_touched && k <= last_touched;
    data.clear();
    if (old_len > 0) {
      // The old bytes: for the hash, and as the base of a touched block.
      rpc::GetResult r;
      s = GetPiece(impl_.get(), p, c, i, static_cast<int64_t>(start), static_cast<int32_t>(old_len),
                   cur.version, Impl::ReadRoute{}, &r);
      if (!s.ok()) return abort(s);
      if (r.data.size() != old_len) {
        return abort(Status::Internal("short read of block " + std::to_string(k)));
      }
      data = std::move(r.data);
    }
    data.resize(new_len, '\0');
    if (touched) {
      const uint64_t from = std::max(offset, start);
      const uint64_t to = std::min(offset + bytes.size(), start + new_len);
      std::memcpy(data.data() + (from - start), bytes.data() + (from - offset), to - from);
    }
    hash.Update(data);
    rpc::BlockSpec spec;
    spec.index = static_cast<int32_t>(k);
    if (keep(k)) {
      spec.__set_keep_from_version(cur.version);
      specs.push_back(std::move(spec));
      continue;
    }
    const int64_t data_hash = Hash64(data);
    if (inline_block) {
      spec.__set_data_hash(data_hash);
      spec.__set_data(data);
      specs.push_back(std::move(spec));
      continue;
    }
    Backoff bb = impl_->NewBackoff();
    s = impl_->CallChunk(p, bb, [&](rpc::ChunkServiceClient& cl, int64_t) {
      cl.UploadBlock(upload_id, static_cast<int32_t>(k), data, data_hash);
    });
    if (!s.ok()) return abort(s.WithContext("block " + std::to_string(k)));
  }
  req.size = static_cast<int64_t>(new_size);
  req.body_hash = static_cast<int64_t>(hash.Digest());
  if (!inline_block) req.__set_upload_id(upload_id);
  req.__set_kept_blocks(std::move(specs));
  rpc::DocMeta meta;
  Backoff bp = impl_->NewBackoff();
  s = impl_->CallChunk(p, bp, [&](rpc::ChunkServiceClient& cl, int64_t epoch) {
    req.epoch = epoch;
    cl.Put(meta, req);
  });
  if (!s.ok()) return abort(s);
  return FromRpc(meta);
}

// ---------------------------------------------------------------- copy (rename)

Result<DocInfo> Client::Impl::CopyDocument(std::string_view collection, std::string_view from,
                                           std::string_view to, bool replace, DocInfo* source) {
  const std::string c(collection), f(from);
  Backoff b = NewBackoff();
  ASSIGN_OR_RETURN(PartitionId pf, PartitionOf(collection, from, b));
  // Pull the source block by block, pinned to the version of the first one.
  bool have_meta = false;
  uint64_t pos = 0;
  std::string pending;
  size_t pending_off = 0;
  auto fetch = [&]() -> Status {
    rpc::GetResult r;
    const uint32_t len =
        have_meta && source->block_bytes > 0 ? source->block_bytes : options.block_bytes;
    Status s = GetPiece(this, pf, c, f, static_cast<int64_t>(pos), static_cast<int32_t>(len),
                        have_meta ? source->version : 0, ReadRoute{}, &r);
    if (!s.ok()) return s.WithContext("reading " + DocName(c, f));
    if (!have_meta) {
      *source = FromRpc(r.meta);
      have_meta = true;
    }
    if (r.data.empty() && pos < source->size) {
      return Status::Internal("empty read of " + DocName(c, f));
    }
    pos += r.data.size();
    pending = std::move(r.data);
    pending_off = 0;
    return Status::Ok();
  };
  // The first piece now: the target's metadata is the source's.
  RETURN_IF_ERROR(fetch());
  Reader reader = [&](char* buf, size_t n) -> Result<size_t> {
    if (pending_off == pending.size()) {
      if (pos >= source->size) return size_t{0};
      RETURN_IF_ERROR(fetch());
    }
    const size_t k = std::min(n, pending.size() - pending_off);
    std::memcpy(buf, pending.data() + pending_off, k);
    pending_off += k;
    return k;
  };
  // The copy's hash is checked against the source's before it is committed.
  WriteOptions wo;
  wo.expected_version = replace ? kAnyVersion : kMustNotExist;
  wo.mode = source->mode;
  wo.uid = source->uid;
  wo.gid = source->gid;
  wo.mtime_ns = source->mtime_ns;
  wo.xattrs = source->xattrs;
  bool lost = false;
  return PutStreamOnce(collection, to, reader, wo, NextRequestId(), &lost, source->body_hash);
}

}  // namespace cairn::client
