// Single-call document operations (Stat, Delete, same-partition Rename) and
// the Reader/Writer helpers.
#include <errno.h>
#include <unistd.h>

#include <cstring>

#include "client/client_impl.h"
#include "client/rpc_convert.h"

namespace cairn::client {

Reader StringReader(std::string_view data) {
  auto pos = std::make_shared<size_t>(0);
  return [data, pos](char* buf, size_t n) -> Result<size_t> {
    const size_t k = std::min(n, data.size() - *pos);
    std::memcpy(buf, data.data() + *pos, k);
    *pos += k;
    return k;
  };
}

Reader FdReader(int fd) {
  return [fd](char* buf, size_t n) -> Result<size_t> {
    for (;;) {
      const ssize_t r = ::read(fd, buf, n);
      if (r >= 0) return static_cast<size_t>(r);
      if (errno != EINTR) return Status::FromErrno(errno, "read");
    }
  };
}

Writer StringWriter(std::string* out) {
  return [out](std::string_view data) {
    out->append(data);
    return Status::Ok();
  };
}

Writer FdWriter(int fd) {
  return [fd](std::string_view data) -> Status {
    while (!data.empty()) {
      const ssize_t w = ::write(fd, data.data(), data.size());
      if (w < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "write");
      }
      data.remove_prefix(static_cast<size_t>(w));
    }
    return Status::Ok();
  };
}

Result<DocInfo> Client::Stat(std::string_view collection, std::string_view id) {
  const std::string name = DocName(collection, id);
  RETURN_IF_ERROR(ValidateCollectionName(collection).WithContext(name));
  RETURN_IF_ERROR(ValidateDocumentId(id).WithContext(name));
  Backoff b = impl_->NewBackoff();
  ASSIGN_OR_RETURN(PartitionId p, impl_->PartitionOf(collection, id, b));
  rpc::DocMeta meta;
  const std::string c(collection), i(id);
  const Impl::ReadRoute read = impl_->NewReadRoute(std::nullopt);
  Status s = impl_->CallChunk(
      p, b,
      [&](rpc::ChunkServiceClient& cl, int64_t epoch) {
        cl.Stat(meta, static_cast<int32_t>(p.value()), epoch, c, i, read.allow_backup());
      },
      read);
  if (!s.ok()) return s.WithContext(name);
  return FromRpc(meta);
}

Status Client::Delete(std::string_view collection, std::string_view id, int64_t expected_version) {
  const std::string name = DocName(collection, id);
  RETURN_IF_ERROR(ValidateCollectionName(collection).WithContext(name));
  RETURN_IF_ERROR(ValidateDocumentId(id).WithContext(name));
  Backoff b = impl_->NewBackoff();
  ASSIGN_OR_RETURN(PartitionId p, impl_->PartitionOf(collection, id, b));
  rpc::DeleteRequest req;
  req.partition = static_cast<int32_t>(p.value());
  req.request_id = impl_->NextRequestId();  // the same for every retry
  req.collection = collection;
  req.id = id;
  req.expected_version = expected_version;
  Status s = impl_->CallChunk(p, b, [&](rpc::ChunkServiceClient& cl, int64_t epoch) {
    req.epoch = epoch;
    cl.Delete(req);
  });
  return s.WithContext(name);
}

Result<DocInfo> Client::Rename(std::string_view collection, std::string_view from,
                               std::string_view to, const RenameOptions& options) {
  const std::string name = DocName(collection, from) + " -> " + std::string(to);
  RETURN_IF_ERROR(ValidateCollectionName(collection).WithContext(name));
  RETURN_IF_ERROR(ValidateDocumentId(from).WithContext(name));
  RETURN_IF_ERROR(ValidateDocumentId(to).WithContext(name));
  if (from == to) return Status::InvalidArgument(name + ": same name");
  Backoff b = impl_->NewBackoff();
  ASSIGN_OR_RETURN(PartitionId pf, impl_->PartitionOf(collection, from, b));
  ASSIGN_OR_RETURN(PartitionId pt, impl_->PartitionOf(collection, to, b));
  if (pf != pt) {
    DocInfo source;
    Result<DocInfo> r = impl_->CopyDocument(collection, from, to, options.replace, &source);
    if (!r.ok()) return r.status().WithContext(name);
    // Delete the source only if it is still the version copied.
    Status d = Delete(collection, from, source.version);
    if (d.code() == StatusCode::kVersionMismatch) {
      return Status::VersionMismatch(
          name + ": the source changed during the copy; both names now exist (" + d.message() +
          ")");
    }
    if (!d.ok()) {
      return Status(
          d.code(),
          name + ": copied, but deleting the source failed (both names exist): " + d.message());
    }
    return r;
  }
  rpc::RenameRequest req;
  req.partition = static_cast<int32_t>(pf.value());
  req.request_id = impl_->NextRequestId();
  req.collection = collection;
  req.from_id = from;
  req.to_id = to;
  req.replace = options.replace;
  rpc::DocMeta meta;
  Status s = impl_->CallChunk(pf, b, [&](rpc::ChunkServiceClient& cl, int64_t epoch) {
    req.epoch = epoch;
    cl.Rename(meta, req);
  });
  if (!s.ok()) return s.WithContext(name);
  return FromRpc(meta);
}

}  // namespace cairn::client
