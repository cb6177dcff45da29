#include "chunkserver/doc_service.h"

#include <xxhash.h>

#include <algorithm>
#include <set>

#include "chunkserver/doc_names.h"
#include "common/checksum.h"

namespace cairn::chunkserver {

namespace {

// The store reports an expected-version mismatch as FailedPrecondition; the
// API calls it VersionMismatch, or AlreadyExists when the document was to be
// created (expected_version -1, as O_EXCL).
Status MapApplyError(const Status& s, const Mutation& m) {
  if (s.code() != StatusCode::kFailedPrecondition) return s;
  if (m.expected_version == kMustNotExist) return Status::AlreadyExists(s.message());
  return Status::VersionMismatch(s.message());
}

std::span<const std::byte> Bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

}  // namespace

DocService::DocService(DocStore* store, PartitionLogic* logic, Clock* clock)
    : store_(store), logic_(logic), clock_(clock), log_("chunkserver") {}

void DocService::SetMapRefresher(std::function<void()> refresh) { refresh_ = std::move(refresh); }

Status DocService::CheckRequest(PartitionId p, Epoch epoch, std::string_view collection,
                                std::string_view id, bool allow_backup) {
  Status s = logic_->CheckRequest(p, epoch, collection, id, allow_backup);
  if (s.code() == StatusCode::kNotFound && refresh_) {
    // An unknown collection: it may have been created since our last map.
    refresh_();
    s = logic_->CheckRequest(p, epoch, collection, id, allow_backup);
  }
  if (s.ok()) s = CheckReplica(p, allow_backup);
  return s;
}

Status DocService::CheckReplica(PartitionId p, bool allow_backup) {
  if (!replicated_) return Status::Ok();
  ReplicaHost* host = replication_.load();
  if (host == nullptr) {
    return Status::Unavailable("this chunk server is starting (not registered yet); retry");
  }
  // Served by the partition's active primary under its lease (or, when the
  // caller allows it, an in-sync backup in touch with it).
  return host->CheckRead(p, allow_backup);
}

Result<ApplyResult> DocService::Commit(const Mutation& m) {
  if (!replicated_) return store_->Apply(m);
  ReplicaHost* host = replication_.load();
  if (host == nullptr) return Status::Unavailable("this chunk server is starting; retry");
  return host->Mutate(m);
}

Result<DocEntry> DocService::AnswerFor(const Mutation& m, const ApplyResult& r) {
  const std::string& id = m.type == MutationType::kRename ? m.to_id : m.id;
  ASSIGN_OR_RETURN(std::optional<DocEntry> cur, store_->Lookup(m.partition, m.collection, id));
  if (cur && cur->version == r.version) return *cur;
  // A retry answered after the document changed again: the version it made.
  DocEntry e;
  e.partition = m.partition;
  e.collection = m.collection;
  e.id = id;
  e.version = r.version;
  e.lsn = r.lsn;
  e.meta = m.meta;
  e.body_hash = m.body_hash;
  return e;
}

Status DocService::VerifyBodyByReading(const Mutation& m) {
  DocEntry body;
  body.partition = m.partition;
  body.collection = m.collection;
  body.id = m.id;
  body.meta.size = m.meta.size;
  body.blocks = m.blocks;
  XXH3_state_t* st = XXH3_createState();
  CAIRN_CHECK(st != nullptr) << "out of memory";
  XXH3_64bits_reset(st);
  std::vector<std::byte> buf(logic_->limits().block_bytes);
  Status s;
  for (uint64_t off = 0; off < body.meta.size && s.ok();) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), body.meta.size - off));
    s = store_->ReadRange(body, off, std::span(buf).first(n));
    if (s.ok()) XXH3_64bits_update(st, buf.data(), n);
    off += n;
  }
  const uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  RETURN_IF_ERROR(s.WithContext("reading back the body of " + m.collection + "/" + m.id));
  if (h != m.body_hash) {
    return Status::InvalidArgument(m.collection + "/" + m.id +
                                   ": body_hash does not match the body received");
  }
  return Status::Ok();
}

Result<DocEntry> DocService::Put(const PutInput& in) {
  RETURN_IF_ERROR(CheckRequest(in.partition, in.epoch, in.collection, in.id));
  Mutation key;  // what AnswerFor needs of a put
  key.partition = in.partition;
  key.collection = in.collection;
  key.id = in.id;
  key.body_hash = in.body_hash;
  // A retry of a put that was applied gets the first answer, before checks
  // that the first attempt's own effect would fail (its upload is gone, its
  // kept blocks' version replaced).
  if (std::optional<ApplyResult> first = store_->FindRequest(in.partition, in.request_id)) {
    return AnswerFor(key, *first);
  }
  ASSIGN_OR_RETURN(PutPrep prep, logic_->PreparePut(in, clock_->Now()));
  // From here the upload session (if any) is marked committing: release it
  // on every path.
  std::map<uint32_t, BlockRef> inline_refs;
  std::vector<BlockRef> written;
  bool committed = false;
  auto finish = [&](Status s) -> Status {
    logic_->FinishPut(in, committed);
    if (!committed && !written.empty()) store_->ForgetBlocks(written);
    return s;
  };
  Result<BodyCheck> check = logic_->CheckBodyHash(in, prep);
  if (!check.ok()) return finish(check.status());
  for (const InlineBlock& b : prep.inline_blocks) {
    Result<BlockRef> ref = store_->WriteBlock(Bytes(b.data));
    if (!ref.ok()) return finish(ref.status());
    inline_refs.emplace(b.index, *ref);
    written.push_back(*ref);
  }

  MutexLock lock(&PartitionMutex(in.partition));
  // A retry that raced its first attempt: answered now that it is durable.
  if (std::optional<ApplyResult> first = store_->FindRequest(in.partition, in.request_id)) {
    finish(Status::Ok()).IgnoreError();  // releases the session and our blocks
    return AnswerFor(key, *first);
  }
  Result<std::optional<DocEntry>> cur = store_->Lookup(in.partition, in.collection, in.id);
  if (!cur.ok()) return finish(cur.status());
  Result<Mutation> m = logic_->BuildPut(in, prep, inline_refs, *cur,
                                        store_->partition_state(in.partition), clock_->WallNanos());
  if (!m.ok()) return finish(m.status());
  if (*check == BodyCheck::kReadBack) {
    Status s = VerifyBodyByReading(*m);
    if (!s.ok()) return finish(s);
  }
  Result<ApplyResult> r = Commit(*m);
  if (!r.ok()) return finish(MapApplyError(r.status(), *m));
  committed = true;
  finish(Status::Ok()).IgnoreError();  // OK by construction
  return AnswerFor(*m, *r);
}

Result<uint64_t> DocService::UploadBegin(PartitionId p, Epoch epoch, std::string_view collection,
                                         std::string_view id) {
  RETURN_IF_ERROR(CheckRequest(p, epoch, collection, id));
  ExpireUploads();
  return logic_->BeginUpload(p, epoch, collection, id, clock_->Now());
}

Status DocService::UploadBlock(uint64_t upload_id, uint32_t index, std::string_view data,
                               uint64_t data_hash) {
  const uint64_t actual = Checksum64(data.data(), data.size());
  RETURN_IF_ERROR(
      logic_->CheckUploadBlock(upload_id, index, data.size(), data_hash, actual, clock_->Now()));
  ASSIGN_OR_RETURN(BlockRef ref, store_->WriteBlock(Bytes(data)));
  std::vector<BlockRef> forget =
      logic_->AddUploadBlock(upload_id, index, ref, Bytes(data), clock_->Now());
  if (!forget.empty()) store_->ForgetBlocks(forget);
  for (const BlockRef& f : forget) {
    if (f == ref) {
      return Status::NotFound("upload " + std::to_string(upload_id) +
                              " ended while its block was written");
    }
  }
  // Replicated: the block goes on to the backups now, not after the put.
  if (ReplicaHost* host = replication_.load(); host != nullptr) {
    host->StreamAhead(PartitionLogic::UploadPartition(upload_id), ref, data);
  }
  return Status::Ok();
}

Status DocService::UploadAbort(uint64_t upload_id) {
  ASSIGN_OR_RETURN(std::vector<BlockRef> refs, logic_->AbortUpload(upload_id));
  store_->ForgetBlocks(refs);
  return Status::Ok();
}

size_t DocService::ExpireUploads() {
  std::vector<BlockRef> refs = logic_->ExpireUploads(clock_->Now());
  if (!refs.empty()) store_->ForgetBlocks(refs);
  return refs.size();
}

Result<GetOutput> DocService::Get(PartitionId p, Epoch epoch, std::string_view collection,
                                  std::string_view id, uint64_t offset, uint64_t length,
                                  std::optional<uint64_t> if_version, bool allow_backup) {
  ASSIGN_OR_RETURN(DocEntry doc, Stat(p, epoch, collection, id, allow_backup));
  if (if_version && *if_version != doc.version) {
    return Status::VersionMismatch(doc.collection + "/" + doc.id + " is at version " +
                                   std::to_string(doc.version) + ", not " +
                                   std::to_string(*if_version));
  }
  GetOutput out;
  const uint64_t size = doc.meta.size;
  const uint64_t from = std::min(offset, size);
  const uint64_t n = std::min({length, uint64_t{logic_->limits().block_bytes}, size - from});
  out.data.resize(static_cast<size_t>(n));
  if (n > 0) {
    RETURN_IF_ERROR(store_->ReadRange(
        doc, from, std::span(reinterpret_cast<std::byte*>(out.data.data()), out.data.size())));
  }
  out.doc = std::move(doc);
  return out;
}

Result<DocEntry> DocService::Stat(PartitionId p, Epoch epoch, std::string_view collection,
                                  std::string_view id, bool allow_backup) {
  RETURN_IF_ERROR(CheckRequest(p, epoch, collection, id, allow_backup));
  ASSIGN_OR_RETURN(std::optional<DocEntry> doc, store_->Lookup(p, collection, id));
  if (!doc) {
    return Status::NotFound("no document " + std::string(collection) + "/" + std::string(id));
  }
  return *doc;
}

Status DocService::Delete(const DeleteInput& in) {
  RETURN_IF_ERROR(CheckRequest(in.partition, in.epoch, in.collection, in.id));
  MutexLock lock(&PartitionMutex(in.partition));
  if (store_->FindRequest(in.partition, in.request_id)) return Status::Ok();
  ASSIGN_OR_RETURN(Mutation m, logic_->BuildDelete(in, store_->partition_state(in.partition)));
  Result<ApplyResult> r = Commit(m);
  if (!r.ok()) return MapApplyError(r.status(), m);
  return Status::Ok();
}

Result<DocEntry> DocService::Rename(const RenameInput& in) {
  RETURN_IF_ERROR(CheckRequest(in.partition, in.epoch, in.collection, in.from_id));
  MutexLock lock(&PartitionMutex(in.partition));
  ASSIGN_OR_RETURN(Mutation m, logic_->BuildRename(in, store_->partition_state(in.partition)));
  if (std::optional<ApplyResult> first = store_->FindRequest(in.partition, in.request_id)) {
    return AnswerFor(m, *first);
  }
  Result<ApplyResult> r = Commit(m);
  if (!r.ok()) return MapApplyError(r.status(), m);
  return AnswerFor(m, *r);
}

Status DocService::CheckCollectionRequest(PartitionId p, Epoch epoch, std::string_view collection,
                                          bool allow_backup) {
  Status s = logic_->CheckPartition(p, epoch, allow_backup);
  if (s.ok()) s = logic_->CheckCollection(collection);
  if (s.code() == StatusCode::kNotFound && refresh_) {
    refresh_();
    s = logic_->CheckCollection(collection);
  }
  if (s.ok()) s = CheckReplica(p, allow_backup);
  return s;
}

Result<ListPage> DocService::List(PartitionId p, Epoch epoch, std::string_view collection,
                                  std::string_view after_id, uint32_t limit, bool allow_backup) {
  RETURN_IF_ERROR(CheckCollectionRequest(p, epoch, collection, allow_backup));
  if (limit == 0) limit = kDefaultListLimit;
  limit = std::min(limit, kMaxListLimit);
  return store_->List(p, collection, after_id, limit);
}

Result<uint64_t> DocService::CountDocuments(std::string_view collection) {
  RETURN_IF_ERROR(ValidateCollection(collection));
  uint64_t count = 0;
  for (PartitionId p : store_->partitions()) {
    // A replica the map no longer gives this node (replaced while it was
    // away) is left-over data, not the collection's.
    if (replicated_ && !logic_->HoldsReplica(p)) continue;
    std::string after;
    for (;;) {
      ASSIGN_OR_RETURN(ListPage page, store_->List(p, collection, after, kMaxListLimit));
      count += page.items.size();
      if (!page.more || page.items.empty()) break;
      after = page.items.back().id;
    }
  }
  return count;
}

std::vector<PartitionSummary> DocService::Partitions() const {
  std::set<PartitionId> ids;
  for (PartitionId p : store_->partitions()) ids.insert(p);
  const ClusterView map = logic_->map();
  for (uint32_t i = 0; i < map.partitions.size(); ++i) {
    if (logic_->IsPrimary(PartitionId(i))) ids.insert(PartitionId(i));
  }
  std::vector<PartitionSummary> out;
  for (PartitionId p : ids) {
    const PartitionState st = store_->partition_state(p);
    PartitionSummary s;
    s.partition = p;
    s.primary = logic_->IsPrimary(p);
    s.epoch = s.primary ? logic_->EpochOf(p) : Epoch();
    s.last_lsn = st.last_lsn;
    s.documents = st.documents;
    out.push_back(s);
  }
  return out;
}

}  // namespace cairn::chunkserver
