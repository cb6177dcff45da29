// The write path: WriteBlock and Apply (check, append, group-committed sync,
// then the index).
#include <algorithm>
#include <array>
#include <set>
#include <string>
#include <utility>

#include "chunkserver/block_codec.h"
#include "chunkserver/doc_names.h"
#include "chunkserver/doc_store.h"
#include "chunkserver/wire.h"

namespace cairn::chunkserver {
namespace {

std::string DocName(const std::string& collection, const std::string& id) {
  return collection + "/" + id;
}

}  // namespace

Result<uint64_t> DocStore::AppendRecord(std::span<std::byte> record, const BlockRef* upload) {
  Status failed;
  uint64_t at = 0;
  {
    MutexLock lock(&append_mu_);
    RETURN_IF_ERROR(sticky());
    at = volume_->end_offset();
    SealRecord(record, at);
    Result<uint64_t> r = volume_->Append(record);
    if (r.ok()) {
      // The store is the volume's only writer: anything else would have put
      // this record at an offset its header does not name.
      CAIRN_CHECK(*r == at) << "volume append landed at " << *r << ", expected " << at;
      if (upload != nullptr && options_.max_unclaimed_blocks > 0) {
        MutexLock u(&unclaimed_mu_);
        BlockRef ref = *upload;
        ref.offset = at;
        unclaimed_.emplace(at, ref);
        unclaimed_order_.push_back(at);
        while (unclaimed_order_.size() > options_.max_unclaimed_blocks) {
          unclaimed_.erase(unclaimed_order_.front());
          unclaimed_order_.pop_front();
        }
      }
    } else {
      failed = r.status();
    }
  }
  if (!failed.ok()) {
    SetSticky(failed);
    return failed;
  }
  return at;
}

Result<BlockRef> DocStore::WriteBlock(std::span<const std::byte> raw) {
  if (raw.empty() || raw.size() > options_.block_bytes) {
    return Status::InvalidArgument("WriteBlock: a block holds 1.." +
                                   std::to_string(options_.block_bytes) + " bytes, got " +
                                   std::to_string(raw.size()));
  }
  RETURN_IF_ERROR(sticky());
  BlockRef ref;
  std::vector<std::byte> rec = EncodeBlockRecord(raw, options_.zstd_level, &ref);
  ASSIGN_OR_RETURN(ref.offset, AppendRecord(rec, &ref));
  counters_.blocks_written.fetch_add(1);
  return ref;
}

void DocStore::ForgetBlocks(std::span<const BlockRef> refs) {
  MutexLock lock(&unclaimed_mu_);
  for (const BlockRef& r : refs) unclaimed_.erase(r.offset);
}

namespace {

// Where a block named by `r` is now, if `moves` (original offset -> current
// place) knows it as the same block.
bool FollowMove(const std::map<uint64_t, BlockRef>& moves, BlockRef* r) {
  auto it = moves.find(r->offset);
  if (it == moves.end() || it->second.hash != r->hash || it->second.raw_len != r->raw_len ||
      it->second.stored_len != r->stored_len || it->second.codec != r->codec) {
    return false;
  }
  *r = it->second;
  return true;
}

}  // namespace

Status DocStore::CheckArgs(const Mutation& m) const {
  RETURN_IF_ERROR(ValidateCollection(m.collection));
  RETURN_IF_ERROR(ValidateDocId(m.id));
  if (m.lsn.value() == 0) return Status::InvalidArgument("LSN 0 is not a valid LSN");
  if (m.expected_version < kMustNotExist) {
    return Status::InvalidArgument("expected_version " + std::to_string(m.expected_version));
  }
  if (m.type == MutationType::kRename) {
    RETURN_IF_ERROR(ValidateDocId(m.to_id));
    if (m.to_id == m.id) return Status::InvalidArgument("rename onto itself: " + m.id);
  }
  if (m.type != MutationType::kPut) return Status::Ok();
  RETURN_IF_ERROR(ValidateXattrs(m.meta));
  if (m.meta.size > options_.max_document_bytes) {
    return Status::InvalidArgument("document of " + std::to_string(m.meta.size) +
                                   " bytes; at most " +
                                   std::to_string(options_.max_document_bytes));
  }
  uint64_t sum = 0;
  for (const BlockRef& r : m.blocks) {
    if (r.raw_len == 0 || r.raw_len > kMaxBlockBytes ||
        r.stored_len > kMaxPayloadBytes - kBlockHeaderBytes ||
        (r.codec != BlockCodec::kRaw && r.codec != BlockCodec::kZstd)) {
      return Status::InvalidArgument("malformed block reference at offset " +
                                     std::to_string(r.offset));
    }
    sum += r.raw_len;
  }
  if (sum != m.meta.size) {
    return Status::InvalidArgument("blocks hold " + std::to_string(sum) +
                                   " bytes but the size is " + std::to_string(m.meta.size));
  }
  // The record must fit one log record.
  if (uint64_t{m.blocks.size()} * kBlockRefBytes > kMaxPayloadBytes / 2) {
    return Status::InvalidArgument("too many blocks (" + std::to_string(m.blocks.size()) + ")");
  }
  return Status::Ok();
}

Status DocStore::CheckBlockRefs(std::vector<BlockRef>* refs) {
  // Which references are not live blocks of the index (after forwarding)?
  std::vector<size_t> unknown;
  {
    MutexLock lock(&mu_);
    MutexLock u(&unclaimed_mu_);
    for (size_t i = 0; i < refs->size(); ++i) {
      BlockRef& r = (*refs)[i];
      if (!FollowMove(unclaimed_, &r)) FollowMove(forwarding_, &r);
      const DocIndex::LiveBlock* live = index_.FindLive(r.offset);
      if (live == nullptr || !(live->ref == r)) unknown.push_back(i);
    }
  }
  // New blocks (from WriteBlock): check each against the log once.
  std::set<uint64_t> checked;
  const uint64_t end = volume_->end_offset();
  for (size_t i : unknown) {
    const BlockRef& r = (*refs)[i];
    if (!checked.insert(r.offset).second) continue;
    if (r.offset > end || r.record_len() > end - r.offset) {
      return Status::InvalidArgument("block reference at " + std::to_string(r.offset) +
                                     " lies past the end of the log");
    }
    std::array<std::byte, kRecordHeaderBytes + kBlockHeaderBytes> buf;
    Status s = volume_->Read(r.offset, buf);
    if (!s.ok()) {
      // Released (NotFound), or being released as we read it.
      MutexLock lock(&mu_);
      if (s.code() == StatusCode::kNotFound || FrozenLocked(r)) {
        return Status::Unavailable("block at " + std::to_string(r.offset) +
                                   " was released by compaction; look the document up again");
      }
      return s.WithContext("checking block reference at " + std::to_string(r.offset));
    }
    Result<RecordHeader> h = DecodeRecordHeader(std::span(buf).first(kRecordHeaderBytes), r.offset);
    Result<BlockHeader> b =
        h.ok() ? DecodeBlockHeader(std::span(buf).subspan(kRecordHeaderBytes), r.offset)
               : Result<BlockHeader>(h.status());
    if (!b.ok() || !CheckBlockMatchesRef(*h, *b, r).ok()) {
      return Status::InvalidArgument("block reference at " + std::to_string(r.offset) +
                                     " does not name a block record of the log");
    }
  }
  return Status::Ok();
}

Status DocStore::CheckOrderLocked(const Mutation& m) const {
  Lsn last;
  Epoch epoch;
  auto it = latest_lsn_.find(m.partition);
  if (it != latest_lsn_.end()) {
    last = it->second.first;
    epoch = it->second.second;
  } else {
    PartitionState s = index_.State(m.partition);
    last = s.last_lsn;
    epoch = s.last_epoch;
  }
  if (m.lsn <= last) {
    return Status::InvalidArgument("partition " + std::to_string(m.partition.value()) + ": LSN " +
                                   std::to_string(m.lsn.value()) + " is not above the last, " +
                                   std::to_string(last.value()));
  }
  if (m.epoch < epoch) {
    return {StatusCode::kStaleEpoch, "partition " + std::to_string(m.partition.value()) +
                                         ": epoch " + std::to_string(m.epoch.value()) +
                                         " is older than " + std::to_string(epoch.value())};
  }
  return Status::Ok();
}

DocStore::Latest DocStore::LatestLocked(PartitionId p, const std::string& collection,
                                        const std::string& id) const {
  auto o = overlay_.find(DocKey(p, collection, id));
  if (o != overlay_.end()) return {o->second.exists, o->second.version};
  const DocEntry* e = index_.Find(p, collection, id);
  if (e == nullptr) return {};
  return {true, e->version};
}

Status DocStore::CheckStateLocked(const Mutation& m) const {
  const Latest cur = LatestLocked(m.partition, m.collection, m.id);
  const std::string name = DocName(m.collection, m.id);
  if (m.type != MutationType::kPut && !cur.exists) {
    return Status::NotFound("no document " + name + " in partition " +
                            std::to_string(m.partition.value()));
  }
  if (m.expected_version == kMustNotExist && cur.exists) {
    return Status::FailedPrecondition("version mismatch: " + name + " exists (version " +
                                      std::to_string(cur.version) + "), expected none");
  }
  if (m.expected_version > 0) {
    if (!cur.exists) {
      return Status::FailedPrecondition("version mismatch: " + name +
                                        " does not exist, expected version " +
                                        std::to_string(m.expected_version));
    }
    if (cur.version != static_cast<uint64_t>(m.expected_version)) {
      return Status::FailedPrecondition("version mismatch: " + name + " is at version " +
                                        std::to_string(cur.version) + ", expected " +
                                        std::to_string(m.expected_version));
    }
  }
  if (m.type == MutationType::kRename && !m.replace &&
      LatestLocked(m.partition, m.collection, m.to_id).exists) {
    return Status::AlreadyExists("rename target " + DocName(m.collection, m.to_id) + " exists");
  }
  return Status::Ok();
}

std::optional<ApplyResult> DocStore::FindRequest(PartitionId p, const RequestId& id) const {
  if (id.empty()) return std::nullopt;
  MutexLock lock(&mu_);
  return index_.FindRequest(p, id);
}

std::optional<ApplyResult> DocStore::FindRequestLocked(PartitionId p, const RequestId& id) const {
  if (id.empty()) return std::nullopt;
  auto it = pending_requests_.find({p, id});
  if (it != pending_requests_.end()) return it->second;
  return index_.FindRequest(p, id);
}

bool DocStore::FrozenLocked(const BlockRef& ref) const {
  const uint64_t a = ref.offset;
  const uint64_t b = ref.offset + ref.record_len();
  return std::any_of(frozen_.begin(), frozen_.end(),
                     [&](const auto& f) { return a < f.second && f.first < b; });
}

Status DocStore::TranslateRefsLocked(std::vector<BlockRef>* refs) const {
  MutexLock u(&unclaimed_mu_);
  for (BlockRef& r : *refs) {
    if (!FollowMove(unclaimed_, &r)) FollowMove(forwarding_, &r);
    if (FrozenLocked(r)) {
      return Status::Unavailable("block at " + std::to_string(r.offset) +
                                 " is in a segment being compacted; look the document up again");
    }
  }
  return Status::Ok();
}

void DocStore::TouchOverlayLocked(const DocKey& key, bool exists, uint64_t version) {
  Overlay& o = overlay_[key];
  o.exists = exists;
  o.version = version;
  ++o.pending;
}

void DocStore::ReleaseOverlayLocked(const DocKey& key) {
  auto it = overlay_.find(key);
  CAIRN_CHECK(it != overlay_.end() && it->second.pending > 0) << "overlay underflow";
  if (--it->second.pending == 0) overlay_.erase(it);
}

void DocStore::AddPendingLocked(Pending p) {
  const MutationRecord& r = p.rec;
  switch (r.type) {
    case RecordType::kPut:
      TouchOverlayLocked(DocKey(r.partition, r.collection, r.id), true, r.version);
      break;
    case RecordType::kDelete:
      TouchOverlayLocked(DocKey(r.partition, r.collection, r.id), false, 0);
      break;
    case RecordType::kRename:
      TouchOverlayLocked(DocKey(r.partition, r.collection, r.id), false, 0);
      TouchOverlayLocked(DocKey(r.partition, r.collection, r.to_id), true, r.version);
      break;
    default:
      break;
  }
  if (!r.request_id.empty()) {
    pending_requests_[{r.partition, r.request_id}] = ApplyResult{r.lsn, r.version, false};
  }
  latest_lsn_[r.partition] = {r.lsn, r.epoch};
  pending_[r.partition].push_back(std::move(p));
}

uint64_t DocStore::OldestPendingOffsetLocked() const {
  uint64_t oldest = UINT64_MAX;
  for (const auto& [p, queue] : pending_) {
    if (!queue.empty()) oldest = std::min(oldest, queue.front().offset);
  }
  return oldest;
}

Lsn DocStore::CommittedLocked(PartitionId p) const {
  auto it = commit_through_.find(p);
  return it == commit_through_.end() ? Lsn(0) : it->second;
}

void DocStore::ApplyDurableLocked() {
  const uint64_t durable = volume_->durable_offset();
  // Each partition in log order, which is LSN order: a logged entry waits
  // for its Commit() and the partition's later entries wait behind it,
  // while other partitions' entries go ahead.
  for (auto& [p, queue] : pending_) {
    const Lsn committed = CommittedLocked(p);
    while (!queue.empty() && queue.front().end <= durable &&
           (!queue.front().logged || queue.front().rec.lsn <= committed)) {
      ApplyPendingLocked(&queue.front());
      queue.pop_front();
    }
  }
}

void DocStore::ApplyPendingLocked(Pending* p) {
  MutationRecord& r = p->rec;
  // Compaction may have moved blocks since the record was logged; the
  // checkpoint it writes before releasing anything holds the new places.
  for (BlockRef& b : r.blocks) {
    auto f = forwarding_.find(b.offset);
    if (f != forwarding_.end()) b = f->second;
  }
  Status s = index_.Apply(r);
  if (!s.ok()) {
    LOG_ERROR(log_) << "applying LSN " << r.lsn.value() << ": " << s.ToString();
  } else if (IsMutation(r.type) && observer_ != nullptr &&
             observer_->Wants(r.partition, r.collection)) {
    QueueChangeLocked(r.partition, r.collection, r.type == RecordType::kRename ? r.to_id : r.id,
                      r.lsn);
    if (r.type == RecordType::kRename) QueueChangeLocked(r.partition, r.collection, r.id, r.lsn);
  }
  if (IsMutation(r.type)) ReleaseOverlayLocked(DocKey(r.partition, r.collection, r.id));
  if (r.type == RecordType::kRename) {
    ReleaseOverlayLocked(DocKey(r.partition, r.collection, r.to_id));
  }
  if (!r.request_id.empty()) {
    auto req = pending_requests_.find({r.partition, r.request_id});
    if (req != pending_requests_.end() && req->second.lsn == r.lsn) pending_requests_.erase(req);
  }
}

void DocStore::CutLoggedLocked(PartitionId p, Lsn after) {
  std::deque<Pending>& queue = pending_[p];
  // LSN order: the entries past `after` are the newest ones.
  while (!queue.empty() && queue.back().rec.lsn > after) {
    const MutationRecord& r = queue.back().rec;
    CAIRN_CHECK(queue.back().logged) << "partition " << p.value() << ": cutting LSN "
                                     << r.lsn.value() << ", which was not logged for replication";
    if (IsMutation(r.type)) ReleaseOverlayLocked(DocKey(r.partition, r.collection, r.id));
    if (r.type == RecordType::kRename) {
      ReleaseOverlayLocked(DocKey(r.partition, r.collection, r.to_id));
    }
    if (!r.request_id.empty()) {
      auto req = pending_requests_.find({r.partition, r.request_id});
      if (req != pending_requests_.end() && req->second.lsn == r.lsn) {
        pending_requests_.erase(req);
      }
    }
    queue.pop_back();
  }
  // The last entry now: the newest kept pending one, else the applied state.
  if (!queue.empty()) {
    latest_lsn_[p] = {queue.back().rec.lsn, queue.back().rec.epoch};
  } else {
    const PartitionState st = index_.State(p);
    latest_lsn_[p] = {st.last_lsn, st.last_epoch};
  }
}

void DocStore::QueueChangeLocked(PartitionId p, const std::string& collection,
                                 const std::string& id, Lsn lsn) {
  QueuedChange c;
  if (const DocEntry* e = index_.Find(p, collection, id)) {
    c.exists = true;
    c.entry = *e;
  } else {
    c.entry.partition = p;
    c.entry.collection = collection;
    c.entry.id = id;
    c.entry.version = lsn.value();
    c.entry.lsn = lsn;
  }
  changes_.push_back(std::move(c));
}

void DocStore::DeliverChanges() {
  MutexLock n(&notify_mu_);
  std::deque<QueuedChange> queued;
  ApplyObserver* observer = nullptr;
  {
    MutexLock lock(&mu_);
    queued.swap(changes_);
    observer = observer_;
  }
  if (observer == nullptr) return;
  for (QueuedChange& q : queued) {
    AppliedChange c;
    c.partition = q.entry.partition;
    c.collection = std::move(q.entry.collection);
    c.id = std::move(q.entry.id);
    c.version = q.entry.version;
    c.exists = q.exists;
    if (q.exists) {
      c.size = q.entry.meta.size;
      if (c.size <= options_.index_max_document_bytes) {
        std::string body(static_cast<size_t>(c.size), '\0');
        q.entry.collection = c.collection;
        q.entry.id = c.id;
        Status s = ReadRange(q.entry, 0, std::as_writable_bytes(std::span(body)));
        if (s.ok()) {
          c.body = std::move(body);
        } else {
          c.read_error = s;
        }
      }
    }
    observer->OnApplied(c);
  }
}

void DocStore::SetApplyObserver(ApplyObserver* observer) {
  MutexLock n(&notify_mu_);
  MutexLock lock(&mu_);
  observer_ = observer;
  changes_.clear();  // meant for the previous observer
}

Status DocStore::SyncAndApply() {
  Status s = volume_->Sync();
  if (!s.ok()) {
    SetSticky(s);
    return sticky();
  }
  {
    MutexLock lock(&mu_);
    ApplyDurableLocked();
  }
  DeliverChanges();
  return Status::Ok();
}

Result<ApplyResult> DocStore::Apply(const Mutation& m) {
  RETURN_IF_ERROR(CheckArgs(m));
  RETURN_IF_ERROR(sticky());
  std::optional<ApplyResult> first;  // a remembered answer to this request id
  {
    // A retry gets its first answer even if its blocks have moved since; if
    // that answer is already durable and applied, there is nothing to wait for.
    MutexLock lock(&mu_);
    if (!m.request_id.empty()) first = index_.FindRequest(m.partition, m.request_id);
  }
  if (first) {
    counters_.mutations_deduplicated.fetch_add(1);
    first->deduplicated = true;
    return *first;
  }
  std::vector<BlockRef> refs;
  if (m.type == MutationType::kPut) {
    refs = m.blocks;
    RETURN_IF_ERROR(CheckBlockRefs(&refs));
  }

  MutationRecord rec;
  {
    MutexLock write_lock(&write_mu_);
    {
      MutexLock lock(&mu_);
      first = FindRequestLocked(m.partition, m.request_id);  // a retry racing its original
      if (!first) {
        RETURN_IF_ERROR(CheckOrderLocked(m));
        RETURN_IF_ERROR(CheckStateLocked(m));
        RETURN_IF_ERROR(TranslateRefsLocked(&refs));
      }
    }
    if (!first) {
      rec = RecordOf(m, std::move(refs));
      uint64_t end = 0;
      ASSIGN_OR_RETURN(const uint64_t offset, AppendMutationRecord(rec, &end));
      MutexLock lock(&mu_);
      AddPendingLocked(Pending{offset, end, rec});
      // The put claims its new blocks: from now on they are live (pending).
      MutexLock u(&unclaimed_mu_);
      for (const BlockRef& b : m.blocks) unclaimed_.erase(b.offset);
    }
  }
  // Group commit: concurrent callers share the volume's write-out and fsync.
  // A remembered answer may still be pending: wait for it the same way.
  RETURN_IF_ERROR(SyncAndApply());
  if (first) {
    counters_.mutations_deduplicated.fetch_add(1);
    first->deduplicated = true;
    return *first;
  }
  counters_.mutations_applied.fetch_add(1);
  return ApplyResult{rec.lsn, rec.version, false};
}

// ---------------------------------------------------------------- the replicated log

Result<uint64_t> DocStore::AppendMutationRecord(const MutationRecord& rec, uint64_t* end) {
  std::vector<std::byte> payload = EncodeMutation(rec);
  if (payload.size() > kMaxPayloadBytes) {
    return Status::InvalidArgument("mutation record of " + std::to_string(payload.size()) +
                                   " bytes is too large");
  }
  std::vector<std::byte> framed = FrameRecord(rec.type, payload);
  ASSIGN_OR_RETURN(const uint64_t offset, AppendRecord(framed));
  *end = offset + framed.size();
  return offset;
}

Status DocStore::CheckLogLocked(const Mutation& m, bool check_state) const {
  const auto [last, last_epoch] = last_logged_locked(m.partition);
  if (m.lsn.value() != last.value() + 1) {
    return Status::InvalidArgument("partition " + std::to_string(m.partition.value()) + ": LSN " +
                                   std::to_string(m.lsn.value()) +
                                   " does not follow the last logged one, " +
                                   std::to_string(last.value()));
  }
  if (m.epoch < last_epoch) {
    return Status(StatusCode::kStaleEpoch, "partition " + std::to_string(m.partition.value()) +
                                               ": epoch " + std::to_string(m.epoch.value()) +
                                               " is older than " +
                                               std::to_string(last_epoch.value()));
  }
  if (check_state) RETURN_IF_ERROR(CheckStateLocked(m));
  return Status::Ok();
}

Status DocStore::CheckLog(const Mutation& m) const {
  RETURN_IF_ERROR(CheckArgs(m));
  RETURN_IF_ERROR(sticky());
  MutexLock lock(&mu_);
  return CheckLogLocked(m, /*check_state=*/true);
}

Result<uint64_t> DocStore::Log(const Mutation& m, bool check_state) {
  RETURN_IF_ERROR(CheckArgs(m));
  RETURN_IF_ERROR(sticky());
  std::vector<BlockRef> refs;
  if (m.type == MutationType::kPut) {
    refs = m.blocks;
    RETURN_IF_ERROR(CheckBlockRefs(&refs));
  }
  MutexLock write_lock(&write_mu_);
  {
    MutexLock lock(&mu_);
    RETURN_IF_ERROR(CheckLogLocked(m, check_state));
    RETURN_IF_ERROR(TranslateRefsLocked(&refs));
  }
  MutationRecord rec = RecordOf(m, std::move(refs));
  uint64_t end = 0;
  ASSIGN_OR_RETURN(const uint64_t offset, AppendMutationRecord(rec, &end));
  MutexLock lock(&mu_);
  AddPendingLocked(Pending{offset, end, std::move(rec), /*logged=*/true});
  MutexLock u(&unclaimed_mu_);
  for (const BlockRef& b : m.blocks) unclaimed_.erase(b.offset);
  return end;
}

Result<uint64_t> DocStore::LogNoop(PartitionId p, Lsn lsn, Epoch epoch) {
  RETURN_IF_ERROR(sticky());
  MutexLock write_lock(&write_mu_);
  {
    MutexLock lock(&mu_);
    const auto [last, last_epoch] = last_logged_locked(p);
    if (lsn.value() != last.value() + 1 || epoch < last_epoch) {
      return Status::InvalidArgument("partition " + std::to_string(p.value()) + ": no-op at LSN " +
                                     std::to_string(lsn.value()) + " epoch " +
                                     std::to_string(epoch.value()) + " does not follow LSN " +
                                     std::to_string(last.value()) + " epoch " +
                                     std::to_string(last_epoch.value()));
    }
  }
  MutationRecord rec;
  rec.type = RecordType::kNoop;
  rec.partition = p;
  rec.lsn = lsn;
  rec.epoch = epoch;
  rec.version = lsn.value();
  uint64_t end = 0;
  ASSIGN_OR_RETURN(const uint64_t offset, AppendMutationRecord(rec, &end));
  MutexLock lock(&mu_);
  AddPendingLocked(Pending{offset, end, std::move(rec), /*logged=*/true});
  return end;
}

Result<uint64_t> DocStore::Truncate(PartitionId p, Lsn after, Epoch epoch) {
  RETURN_IF_ERROR(sticky());
  MutexLock write_lock(&write_mu_);
  {
    MutexLock lock(&mu_);
    const Lsn committed = std::max(CommittedLocked(p), index_.State(p).last_lsn);
    if (after < committed) {
      return Status::FailedPrecondition("partition " + std::to_string(p.value()) +
                                        ": cannot cut the log after LSN " +
                                        std::to_string(after.value()) + ", LSN " +
                                        std::to_string(committed.value()) + " is committed");
    }
  }
  MutationRecord rec;
  rec.type = RecordType::kTruncate;
  rec.partition = p;
  rec.lsn = after;
  rec.epoch = epoch;
  rec.version = after.value();
  uint64_t end = 0;
  RETURN_IF_ERROR(AppendMutationRecord(rec, &end).status());
  MutexLock lock(&mu_);
  CutLoggedLocked(p, after);
  return end;
}

Result<uint64_t> DocStore::SyncLog() {
  RETURN_IF_ERROR(SyncAndApply());
  return volume_->durable_offset();
}

Status DocStore::Commit(PartitionId p, Lsn through) {
  {
    MutexLock lock(&mu_);
    Lsn& c = commit_through_[p];
    if (through > c) c = through;
    ApplyDurableLocked();
  }
  DeliverChanges();
  return sticky();
}

std::vector<MutationRecord> DocStore::LoggedEntries(PartitionId p) const {
  MutexLock lock(&mu_);
  std::vector<MutationRecord> out;
  auto it = pending_.find(p);
  if (it == pending_.end()) return out;
  for (const Pending& q : it->second) {
    if (q.logged) out.push_back(q.rec);
  }
  return out;
}

std::pair<Lsn, Epoch> DocStore::last_logged(PartitionId p) const {
  MutexLock lock(&mu_);
  return last_logged_locked(p);
}

std::pair<Lsn, Epoch> DocStore::last_logged_locked(PartitionId p) const {
  auto it = latest_lsn_.find(p);
  if (it != latest_lsn_.end()) return it->second;
  const PartitionState s = index_.State(p);
  return {s.last_lsn, s.last_epoch};
}

// ---------------------------------------------------------------- snapshots

DocStore::PartitionSnapshot DocStore::SnapshotPartition(PartitionId p) const {
  MutexLock lock(&mu_);
  PartitionSnapshot snap;
  const PartitionState st = index_.State(p);
  snap.lsn = st.last_lsn;
  snap.epoch = st.last_epoch;
  snap.state = index_.SerializePartition(p);
  snap.blocks = index_.BlocksOf(p);
  return snap;
}

Status DocStore::LoadSnapshotLocked(PartitionId p, Lsn lsn, std::span<const std::byte> state,
                                    bool notify) {
  if (state.size() < 4 || LoadLE<uint32_t>(state.data()) != p.value()) {
    return Status::Corruption("a snapshot for partition " + std::to_string(p.value()) +
                              " holds another partition");
  }
  CutLoggedLocked(p, Lsn(0));
  std::vector<std::pair<std::string, std::string>> before = index_.DocumentsOf(p);
  index_.DropPartition(p);
  RETURN_IF_ERROR(index_.LoadPartition(state));
  const PartitionState st = index_.State(p);
  if (st.partition != p || st.last_lsn != lsn) {
    return Status::Corruption("snapshot of partition " + std::to_string(p.value()) +
                              " does not hold that partition at LSN " +
                              std::to_string(lsn.value()));
  }
  latest_lsn_[p] = {st.last_lsn, st.last_epoch};
  Lsn& c = commit_through_[p];
  c = std::max(c, lsn);
  if (notify && observer_ != nullptr) {
    std::vector<std::pair<std::string, std::string>> after = index_.DocumentsOf(p);
    before.insert(before.end(), after.begin(), after.end());
    std::sort(before.begin(), before.end());
    before.erase(std::unique(before.begin(), before.end()), before.end());
    for (const auto& [collection, id] : before) {
      if (observer_->Wants(p, collection)) QueueChangeLocked(p, collection, id, lsn);
    }
  }
  return Status::Ok();
}

Result<uint64_t> DocStore::DropPartitionData(PartitionId p) {
  const std::vector<std::byte> empty = DocIndex::EmptyPartition(p);
  return InstallSnapshot(p, Lsn(0), Epoch(0), empty);
}

Result<uint64_t> DocStore::InstallSnapshot(PartitionId p, Lsn lsn, Epoch epoch,
                                           std::span<const std::byte> state) {
  RETURN_IF_ERROR(sticky());
  // write_mu_ keeps compaction's switch out from here to the append: the
  // references translated below stay where they point.
  MutexLock write_lock(&write_mu_);
  std::vector<std::byte> payload(20);
  StoreLE<uint32_t>(payload.data(), p.value());
  StoreLE<uint64_t>(payload.data() + 4, lsn.value());
  StoreLE<uint64_t>(payload.data() + 12, epoch.value());
  {
    // The state's blocks were written (WriteBlock) some time ago, a streamed
    // snapshot's over minutes: a compaction since may have moved them.
    // Name where they are now, as a put's references are translated.
    DocIndex staged(options_.dedup_entries_per_partition);
    RETURN_IF_ERROR(staged.LoadPartition(state).WithContext("snapshot state"));
    const std::vector<BlockRef> refs = staged.BlocksOf(p);
    std::vector<BlockRef> now = refs;
    {
      MutexLock lock(&mu_);
      RETURN_IF_ERROR(TranslateRefsLocked(&now));
    }
    std::map<uint64_t, BlockRef> moved;
    for (size_t i = 0; i < refs.size(); ++i) {
      if (now[i].offset != refs[i].offset) moved.emplace(refs[i].offset, now[i]);
    }
    if (moved.empty()) {
      payload.insert(payload.end(), state.begin(), state.end());
    } else {
      staged.Relocate(moved);
      const std::vector<std::byte> local = staged.SerializePartition(p);
      payload.insert(payload.end(), local.begin(), local.end());
    }
  }
  if (payload.size() > kMaxPayloadBytes) {
    return Status::TooLarge("snapshot of partition " + std::to_string(p.value()) + " (" +
                            std::to_string(payload.size()) + " bytes) does not fit one record");
  }
  std::vector<std::byte> framed = FrameRecord(RecordType::kSnapshot, payload);
  ASSIGN_OR_RETURN(const uint64_t offset, AppendRecord(framed));
  {
    MutexLock lock(&mu_);
    RETURN_IF_ERROR(LoadSnapshotLocked(p, lsn, std::span(payload).subspan(20), /*notify=*/true));
    // Its blocks are live now.
    std::vector<BlockRef> blocks = index_.BlocksOf(p);
    MutexLock u(&unclaimed_mu_);
    for (const BlockRef& b : blocks) unclaimed_.erase(b.offset);
  }
  DeliverChanges();
  return offset + framed.size();
}

}  // namespace cairn::chunkserver
