#include "chunkserver/replica_host.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>
#include <variant>

#include "chunkserver/doc_record.h"
#include "common/assert.h"

namespace cairn::chunkserver {
namespace {

std::string ToString(const std::vector<std::byte>& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::span<const std::byte> Bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// The mutation a logged record stands for (checks already passed on the
// primary: a replica copies it as it is).
Mutation MutationOf(const MutationRecord& rec) {
  Mutation m;
  m.type = rec.type == RecordType::kDelete   ? MutationType::kDelete
           : rec.type == RecordType::kRename ? MutationType::kRename
                                             : MutationType::kPut;
  m.partition = rec.partition;
  m.lsn = rec.lsn;
  m.epoch = rec.epoch;
  m.request_id = rec.request_id;
  m.collection = rec.collection;
  m.id = rec.id;
  m.to_id = rec.to_id;
  m.replace = true;
  m.meta = rec.meta;
  m.body_hash = rec.body_hash;
  m.blocks = rec.blocks;
  return m;
}

// A log entry's payload here: the record type byte, then the encoded record.
std::string EncodePayload(const MutationRecord& rec) {
  std::string out(1, static_cast<char>(rec.type));
  out += ToString(EncodeMutation(rec));
  return out;
}

LogEntry EntryOf(const MutationRecord& rec) {
  LogEntry e;
  e.lsn = rec.lsn;
  e.epoch = rec.epoch;
  e.request_id = rec.request_id;
  e.noop = rec.type == RecordType::kNoop;
  if (!e.noop) e.payload = EncodePayload(rec);
  return e;
}

Result<MutationRecord> DecodePayload(std::string_view payload) {
  if (payload.empty()) return Status::InvalidArgument("empty log entry payload");
  const auto type = static_cast<RecordType>(payload[0]);
  if (!IsMutation(type)) return Status::InvalidArgument("log entry payload of unknown type");
  return DecodeMutation(type, Bytes(payload.substr(1)), 0);
}

void PutU32(std::string* out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);  // little-endian hosts only (x86-64, aarch64)
  out->append(b, 4);
}

bool GetU32(std::string_view* in, uint32_t* v) {
  if (in->size() < 4) return false;
  std::memcpy(v, in->data(), 4);
  in->remove_prefix(4);
  return true;
}

}  // namespace

std::string EncodeWirePayload(std::string_view record, const std::vector<std::string>& blocks) {
  std::string out;
  PutU32(&out, static_cast<uint32_t>(record.size()));
  out.append(record);
  PutU32(&out, static_cast<uint32_t>(blocks.size()));
  for (const std::string& b : blocks) {
    PutU32(&out, static_cast<uint32_t>(b.size()));
    out.append(b);
  }
  return out;
}

namespace {
constexpr uint32_t kStagedMarker = 0xFFFFFFFFu;  // block count of the staged form
}  // namespace

std::string EncodeStagedWirePayload(std::string_view record) {
  std::string out;
  PutU32(&out, static_cast<uint32_t>(record.size()));
  out.append(record);
  PutU32(&out, kStagedMarker);
  return out;
}

Status DecodeWirePayload(std::string_view wire, std::string* record,
                         std::vector<std::string>* blocks, bool* staged) {
  uint32_t n = 0;
  if (!GetU32(&wire, &n) || wire.size() < n) return Status::InvalidArgument("short wire payload");
  record->assign(wire.substr(0, n));
  wire.remove_prefix(n);
  uint32_t count = 0;
  if (!GetU32(&wire, &count)) return Status::InvalidArgument("short wire payload");
  blocks->clear();
  if (staged != nullptr) *staged = count == kStagedMarker;
  if (count == kStagedMarker) {
    if (staged == nullptr) return Status::InvalidArgument("a staged wire payload was not expected");
    if (!wire.empty()) return Status::InvalidArgument("trailing bytes in a wire payload");
    return Status::Ok();
  }
  for (uint32_t i = 0; i < count; ++i) {
    if (!GetU32(&wire, &n) || wire.size() < n) {
      return Status::InvalidArgument("short wire payload block");
    }
    blocks->emplace_back(wire.substr(0, n));
    wire.remove_prefix(n);
  }
  if (!wire.empty()) return Status::InvalidArgument("trailing bytes in a wire payload");
  return Status::Ok();
}

Status StageBlocksOf(const PeerMessage& msg,
                     const std::function<Result<std::string>(PartitionId, const BlockRef&)>& read,
                     const std::function<Status(const StagedBlock&)>& stage,
                     const std::function<bool(const StagedBlock&)>& held) {
  const auto* rm = std::get_if<ReplicateMsg>(&msg);
  if (rm == nullptr) return Status::Ok();
  for (const LogEntry& e : rm->entries) {
    if (e.noop) continue;
    std::string record;
    std::vector<std::string> blocks;
    bool staged = false;
    RETURN_IF_ERROR(DecodeWirePayload(e.payload, &record, &blocks, &staged));
    if (!staged) continue;
    ASSIGN_OR_RETURN(MutationRecord rec, DecodePayload(record));
    for (size_t i = 0; i < rec.blocks.size(); ++i) {
      StagedBlock b;
      b.partition = rm->partition;
      b.epoch = e.epoch;
      b.lsn = e.lsn;
      b.index = static_cast<uint32_t>(i);
      b.hash = rec.blocks[i].hash;
      b.source_offset = rec.blocks[i].offset;
      if (held && held(b)) continue;
      ASSIGN_OR_RETURN(b.data, read(rm->partition, rec.blocks[i]));
      RETURN_IF_ERROR(stage(b));
    }
  }
  return Status::Ok();
}

ReplicaHost::ReplicaHost(NodeId self, DocStore* store, ReplicaHostOptions options,
                         ReplicaTransport* transport, ReplicaMetaLink* meta, Clock* clock)
    : self_(self),
      store_(store),
      options_(options),
      transport_(transport),
      meta_(meta),
      clock_(clock),
      log_("replica", "node=" + std::to_string(self.value())),
      snapshot_limiter_(options.snapshot_rate_bytes_per_s, clock),
      snapshot_id_base_(static_cast<uint64_t>(clock->WallNanos())) {}

ReplicaHost::~ReplicaHost() { Stop(); }

Status ReplicaHost::Start() {
  if (!store_->options().replicated) {
    return Status::FailedPrecondition("replication needs the doc store opened with replicated");
  }
  for (PartitionId p : store_->partitions()) {
    const PartitionState st = store_->partition_state(p);
    RecoveredLog log;
    log.base_lsn = st.last_lsn;
    log.base_epoch = st.last_epoch;
    for (const MutationRecord& rec : store_->LoggedEntries(p)) log.entries.push_back(EntryOf(rec));
    auto slot = std::make_unique<Slot>();
    {
      MutexLock l(&slot->mu);
      slot->replica = std::make_unique<Replica>(self_, p, options_.replica, std::move(log));
    }
    MutexLock l(&slots_mu_);
    slots_[p] = std::move(slot);
  }
  sync_thread_ = std::thread([this] { SyncLoop(); });
  tick_thread_ = std::thread([this] { TickLoop(); });
  return Status::Ok();
}

void ReplicaHost::Stop() {
  {
    MutexLock l(&run_mu_);
    if (stopping_ && !sync_thread_.joinable()) return;
    stopping_ = true;
    run_cv_.NotifyAll();
  }
  if (sync_thread_.joinable()) sync_thread_.join();
  if (tick_thread_.joinable()) tick_thread_.join();
  StopStreams();
  MutexLock w(&waiters_mu_);
  for (auto& [token, waiter] : waiters_) {
    if (!waiter.done) {
      waiter.done = true;
      waiter.status = Status::Unavailable("chunk server stopping");
    }
  }
  waiters_cv_.NotifyAll();
}

ReplicaHost::Slot* ReplicaHost::Find(PartitionId p) {
  MutexLock l(&slots_mu_);
  auto it = slots_.find(p);
  return it == slots_.end() ? nullptr : it->second.get();
}

ReplicaHost::Slot* ReplicaHost::FindOrCreate(PartitionId p) {
  MutexLock l(&slots_mu_);
  auto& slot = slots_[p];
  if (!slot) {
    slot = std::make_unique<Slot>();
    RecoveredLog log;
    const auto [last, epoch] = store_->last_logged(p);
    log.base_lsn = last;
    log.base_epoch = epoch;
    log.fresh = last.value() == 0;  // never held here: it cannot have led anything
    MutexLock s(&slot->mu);
    slot->replica = std::make_unique<Replica>(self_, p, options_.replica, std::move(log));
  }
  return slot.get();
}

void ReplicaHost::Fail(const Status& s) {
  if (!failed_.exchange(true)) {
    LOG_ERROR(log_) << "replication stops on this node: " << s.ToString()
                    << "; restart the chunk server";
  }
}

// ---------------------------------------------------------------- inputs

void ReplicaHost::OnConfig(const ReplicaConfig& config) {
  if (failed_) return;
  Slot* slot = FindOrCreate(config.partition);
  MutexLock l(&slot->mu);
  Run(slot, slot->replica->OnConfig(config, clock_->Now()));
  if (!failed_ && slot->replica->role() == ReplicaRole::kRemoved &&
      slot->replica->epoch() == config.epoch) {
    DropRemoved(slot, config);
  }
}

void ReplicaHost::DropRemoved(Slot* slot, const ReplicaConfig& config) {
  const PartitionId p = config.partition;
  const PartitionState st = store_->partition_state(p);
  if (store_->last_logged(p).first.value() == 0 && st.documents == 0) return;  // nothing here
  // The map (the metaserver's, authoritative) gives this partition to other
  // nodes: everything acknowledged is on its in-sync replicas there, and
  // what only this node holds (a tail it logged but never saw committed)
  // was never acknowledged. Kept, the documents would hold space forever
  // and the uncommitted tail would hold back every checkpoint and
  // compaction of the volume.
  LOG_INFO(log_) << "partition " << p.value() << ": no longer a replica here (epoch "
                 << config.epoch.value() << "): dropping its " << st.documents
                 << " documents and log";
  Result<uint64_t> end = store_->DropPartitionData(p);
  if (!end.ok())
    return Fail(
        end.status().WithContext("dropping removed partition " + std::to_string(p.value())));
  // A replica that starts over from nothing: given the partition again, it
  // is a learner that catches up from scratch.
  slot->unsynced.clear();
  RecoveredLog log;
  log.fresh = true;
  slot->replica = std::make_unique<Replica>(self_, p, options_.replica, std::move(log));
  Run(slot, slot->replica->OnConfig(config, clock_->Now()));
  {
    MutexLock r(&run_mu_);
    sync_wanted_ = true;
    run_cv_.NotifyAll();
  }
}

void ReplicaHost::OnLease(PartitionId p, Epoch epoch, Nanos sent_at) {
  if (failed_) return;
  Slot* slot = Find(p);
  if (slot == nullptr) return;
  MutexLock l(&slot->mu);
  Run(slot, slot->replica->OnLease(epoch, sent_at, clock_->Now()));
}

Status ReplicaHost::OnMessage(const PeerMessage& msg) {
  if (failed_) return Status::Ok();
  Slot* slot = Find(PartitionOfMessage(msg));
  if (slot == nullptr) return Status::Ok();  // not configured here (yet): the sender retries
  if (std::holds_alternative<SnapshotMsg>(msg)) {
    LOG_WARN(log_) << "dropping a whole snapshot message: snapshots come as chunks";
    return Status::Ok();
  }
  MutexLock l(&slot->mu);
  std::map<Lsn, std::vector<BlockRef>> written;
  Result<PeerMessage> local = Localize(slot, msg, &written);
  if (!local.ok()) {
    for (const auto& [lsn, refs] : written) store_->ForgetBlocks(refs);
    if (local.status().code() == StatusCode::kNotFound) return local.status();
    LOG_WARN(log_) << "dropping a replication message: " << local.status().ToString();
    return Status::Ok();
  }
  Effects fx = slot->replica->OnMessage(*local, clock_->Now());
  // Blocks of entries the replica did not append are nobody's.
  for (const ReplicaEffect& e : fx) {
    if (const auto* a = std::get_if<AppendEffect>(&e)) {
      for (const LogEntry& le : a->entries) written.erase(le.lsn);
    } else if (const auto* is = std::get_if<InstallSnapshotEffect>(&e)) {
      written.erase(is->snapshot.lsn);
    }
  }
  for (const auto& [lsn, refs] : written) store_->ForgetBlocks(refs);
  Run(slot, std::move(fx));
  return Status::Ok();
}

Result<ApplyResult> ReplicaHost::Mutate(Mutation m) {
  if (failed_) return Status::Unavailable("replication stopped on this node after a disk error");
  Slot* slot = Find(m.partition);
  if (slot == nullptr) {
    return Status(StatusCode::kNotPrimary,
                  "partition " + std::to_string(m.partition.value()) + " is not held here");
  }
  if (std::optional<ApplyResult> first = store_->FindRequest(m.partition, m.request_id)) {
    first->deduplicated = true;
    return *first;
  }
  const uint64_t token = ++next_token_;
  {
    MutexLock w(&waiters_mu_);
    waiters_[token] = Waiter{};
  }
  {
    MutexLock l(&slot->mu);
    const Nanos now = clock_->Now();
    Status ready = slot->replica->CheckRead(now);
    if (ready.ok()) {
      m.lsn = slot->replica->last_lsn().Next();
      m.epoch = slot->replica->epoch();
      ready = store_->CheckLog(m);
    }
    if (!ready.ok()) {
      MutexLock w(&waiters_mu_);
      waiters_.erase(token);
      return ready;
    }
    Run(slot, slot->replica->OnClientMutation(token, m.request_id,
                                              EncodePayload(RecordOf(m, m.blocks)), now));
  }
  MutexLock w(&waiters_mu_);
  const bool done =
      waiters_cv_.WaitFor(&waiters_mu_, options_.mutation_timeout,
                          [&]() REQUIRES(waiters_mu_) { return waiters_[token].done; });
  Waiter waiter = waiters_[token];
  waiters_.erase(token);
  if (!done) {
    return Status::Unavailable("partition " + std::to_string(m.partition.value()) +
                               ": not committed within the time limit; retry with the same "
                               "request id");
  }
  if (!waiter.status.ok()) return waiter.status;
  return ApplyResult{waiter.lsn, waiter.lsn.value(), false};
}

Status ReplicaHost::CheckRead(PartitionId p, bool allow_backup) {
  Slot* slot = Find(p);
  if (slot == nullptr) {
    return Status(StatusCode::kNotPrimary,
                  "partition " + std::to_string(p.value()) + " is not held here");
  }
  const Nanos now = clock_->Now();
  MutexLock l(&slot->mu);
  if (!allow_backup || slot->replica->role() == ReplicaRole::kPrimary) {
    return slot->replica->CheckRead(now);
  }
  // A backup cut from the metaserver may have been dropped from the in-sync
  // set (and a new epoch begun) without knowing it.
  if (now - Nanos{meta_contact_.load()} >= options_.backup_read_max_lag) {
    return Status::Unavailable("partition " + std::to_string(p.value()) +
                               ": this backup has not heard from the metaserver recently");
  }
  Status s = slot->replica->CheckBackupRead(now, options_.backup_read_max_lag);
  if (s.ok()) backup_reads_.fetch_add(1);
  return s;
}

void ReplicaHost::OnMetaContact(Nanos sent_at) {
  int64_t seen = meta_contact_.load();
  while (sent_at.count() > seen && !meta_contact_.compare_exchange_weak(seen, sent_at.count())) {
  }
}

std::vector<ReplicaReport> ReplicaHost::Reports() {
  std::vector<Slot*> all;
  {
    MutexLock l(&slots_mu_);
    for (auto& [p, s] : slots_) all.push_back(s.get());
  }
  std::vector<ReplicaReport> out;
  for (Slot* s : all) {
    MutexLock l(&s->mu);
    out.push_back(s->replica->Report());
  }
  return out;
}

std::optional<ReplicaReport> ReplicaHost::Report(PartitionId p) {
  Slot* s = Find(p);
  if (s == nullptr) return std::nullopt;
  MutexLock l(&s->mu);
  return s->replica->Report();
}

// ---------------------------------------------------------------- effects

Status ReplicaHost::DoAppend(Slot* slot, const AppendEffect& a) {
  uint64_t end = 0;
  for (const LogEntry& e : a.entries) {
    if (e.noop) {
      ASSIGN_OR_RETURN(end, store_->LogNoop(slot->replica->partition(), e.lsn, e.epoch));
      continue;
    }
    ASSIGN_OR_RETURN(MutationRecord rec, DecodePayload(e.payload));
    if (rec.lsn != e.lsn || rec.epoch != e.epoch || rec.partition != slot->replica->partition()) {
      return Status::Internal("log entry " + std::to_string(e.lsn.value()) +
                              " does not match its record");
    }
    ASSIGN_OR_RETURN(end, store_->Log(MutationOf(rec), /*check_state=*/false));
  }
  slot->unsynced.emplace_back(a.seq, end);
  return Status::Ok();
}

void ReplicaHost::Run(Slot* slot, Effects fx) {
  bool want_sync = false;
  const PartitionId p = slot->replica->partition();
  for (ReplicaEffect& effect : fx) {
    if (failed_) return;
    if (auto* a = std::get_if<AppendEffect>(&effect)) {
      Status s = DoAppend(slot, *a);
      if (!s.ok()) return Fail(s.WithContext("partition " + std::to_string(p.value())));
      want_sync = true;
    } else if (auto* t = std::get_if<TruncateEffect>(&effect)) {
      Result<uint64_t> end = store_->Truncate(p, t->after, slot->replica->epoch());
      if (!end.ok()) return Fail(end.status());
      slot->unsynced.emplace_back(t->seq, *end);
      want_sync = true;
    } else if (auto* c = std::get_if<CompactEffect>(&effect)) {
      // The doc store folds by its own checkpoints; nothing to write.
      slot->unsynced.emplace_back(c->seq, 0);
      want_sync = true;
    } else if (auto* is = std::get_if<InstallSnapshotEffect>(&effect)) {
      const std::string& state = is->snapshot.state;
      Result<uint64_t> end =
          store_->InstallSnapshot(p, is->snapshot.lsn, is->snapshot.lsn_epoch,
                                  std::as_bytes(std::span(state.data(), state.size())));
      if (!end.ok()) return Fail(end.status());
      slot->unsynced.emplace_back(is->seq, *end);
      want_sync = true;
    } else if (auto* send = std::get_if<SendEffect>(&effect)) {
      Result<PeerMessage> wire = Hydrate(send->msg);
      if (!wire.ok()) {
        LOG_WARN(log_) << "partition " << p.value() << ": cannot send to node " << send->to.value()
                       << ": " << wire.status().ToString();
        continue;
      }
      transport_->Send(send->to, std::move(*wire));
    } else if (auto* ss = std::get_if<SendSnapshotEffect>(&effect)) {
      StartSnapshotStream(slot, *ss);
    } else if (auto* ap = std::get_if<ApplyEffect>(&effect)) {
      Status committed = store_->Commit(p, ap->entry.lsn);
      if (!committed.ok()) return Fail(committed);
    } else if (auto* r = std::get_if<ReplyEffect>(&effect)) {
      MutexLock w(&waiters_mu_);
      auto it = waiters_.find(r->token);
      if (it != waiters_.end()) {
        it->second.done = true;
        it->second.status = r->status;
        it->second.lsn = r->lsn;
        waiters_cv_.NotifyAll();
      }
    } else if (auto* mr = std::get_if<MetaRequestEffect>(&effect)) {
      meta_->RequestInSync(mr->request);
    }
  }
  if (want_sync) {
    MutexLock l(&run_mu_);
    sync_wanted_ = true;
    run_cv_.NotifyAll();
  }
}

Result<PeerMessage> ReplicaHost::Hydrate(const PeerMessage& msg) {
  const auto* rm = std::get_if<ReplicateMsg>(&msg);
  if (rm == nullptr || rm->entries.empty()) return msg;
  ReplicateMsg out = *rm;
  // Block bytes carried inline by this message: at most stage_bytes (or one
  // entry's); the entries past that have their blocks staged ahead, so a
  // batch of 64 one-MiB puts (catch-up) is not a 64 MiB message.
  uint64_t inline_bytes = 0;
  for (LogEntry& e : out.entries) {
    if (e.noop) continue;
    ASSIGN_OR_RETURN(MutationRecord rec, DecodePayload(e.payload));
    std::vector<std::string> blocks;
    uint64_t raw_total = 0;
    for (const BlockRef& b : rec.blocks) raw_total += b.raw_len;
    bool streamed = false;  // some of its blocks went ahead: the peers hold them
    if (rec.type == RecordType::kPut && !rec.blocks.empty()) {
      MutexLock l(&stage_mu_);
      for (const BlockRef& b : rec.blocks) {
        streamed = streamed || streamed_.count({rec.partition.value(), b.offset}) != 0;
      }
    }
    if (rec.type == RecordType::kPut &&
        (streamed || raw_total > options_.stage_bytes ||
         (inline_bytes > 0 && inline_bytes + raw_total > options_.stage_bytes))) {
      e.payload = EncodeStagedWirePayload(e.payload);  // blocks go ahead, one per call
      continue;
    }
    inline_bytes += raw_total;
    if (rec.type == RecordType::kPut) {
      for (const BlockRef& b : rec.blocks) {
        ASSIGN_OR_RETURN(std::string raw, ReadBlock(rec.partition, b));
        blocks.push_back(std::move(raw));
      }
    }
    e.payload = EncodeWirePayload(e.payload, blocks);
  }
  return PeerMessage(std::move(out));
}

Result<PeerMessage> ReplicaHost::Localize(Slot* slot, const PeerMessage& msg,
                                          std::map<Lsn, std::vector<BlockRef>>* written) {
  const auto* rm = std::get_if<ReplicateMsg>(&msg);
  if (rm == nullptr || rm->entries.empty()) return msg;
  // Entries the replica will refuse (an old epoch, or a log that does not
  // hold the previous entry) are not worth writing blocks for: the primary
  // steps back and sends them again. An empty message asks only for an ack.
  const Replica& r = *slot->replica;
  const bool refused = rm->epoch < r.epoch() || rm->prev_lsn > r.last_lsn() ||
                       (rm->prev_lsn > r.base_lsn() && r.EpochAt(rm->prev_lsn) != rm->prev_epoch);
  if (refused) {
    ReplicateMsg probe = *rm;
    probe.entries.clear();
    return PeerMessage(std::move(probe));
  }
  ReplicateMsg out = *rm;
  for (LogEntry& e : out.entries) {
    if (e.noop) continue;
    if (e.lsn <= r.base_lsn()) continue;  // folded into its base: skipped by the replica
    // An entry the replica already holds is skipped by it: no blocks needed.
    if (const LogEntry* have = slot->replica->EntryAt(e.lsn);
        have != nullptr && have->epoch == e.epoch) {
      e.payload = have->payload;
      continue;
    }
    std::string record;
    std::vector<std::string> blocks;
    bool staged = false;
    RETURN_IF_ERROR(DecodeWirePayload(e.payload, &record, &blocks, &staged));
    ASSIGN_OR_RETURN(MutationRecord rec, DecodePayload(record));
    if (staged) {
      if (rec.type != RecordType::kPut) {
        return Status::InvalidArgument("entry " + std::to_string(e.lsn.value()) +
                                       ": only a put has staged blocks");
      }
      ASSIGN_OR_RETURN(std::vector<BlockRef> refs,
                       TakeStaged(rm->partition, rm->from, e.epoch, e.lsn, rec.blocks));
      (*written)[e.lsn] = refs;
      rec.blocks = std::move(refs);
      e.payload = EncodePayload(rec);
      continue;
    }
    if (rec.type == RecordType::kPut) {
      if (blocks.size() != rec.blocks.size()) {
        return Status::InvalidArgument("entry " + std::to_string(e.lsn.value()) + " carries " +
                                       std::to_string(blocks.size()) + " blocks for " +
                                       std::to_string(rec.blocks.size()));
      }
      std::vector<BlockRef>& refs = (*written)[e.lsn];
      for (size_t i = 0; i < blocks.size(); ++i) {
        Result<BlockRef> ref = store_->WriteBlock(Bytes(blocks[i]));
        if (!ref.ok()) {
          store_->ForgetBlocks(refs);
          return ref.status();
        }
        if (ref->hash != rec.blocks[i].hash || ref->raw_len != rec.blocks[i].raw_len) {
          refs.push_back(*ref);
          return Status::DataLoss("entry " + std::to_string(e.lsn.value()) + ": block " +
                                  std::to_string(i) + " does not match its hash");
        }
        refs.push_back(*ref);
      }
      rec.blocks = refs;
    }
    e.payload = EncodePayload(rec);
  }
  return PeerMessage(std::move(out));
}

// ---------------------------------------------------------------- threads

void ReplicaHost::SyncLoop() {
  for (;;) {
    {
      MutexLock l(&run_mu_);
      run_cv_.Wait(&run_mu_, [&]() REQUIRES(run_mu_) { return stopping_ || sync_wanted_; });
      if (stopping_) return;
      sync_wanted_ = false;
    }
    Result<uint64_t> durable = store_->SyncLog();
    if (!durable.ok()) {
      Fail(durable.status());
      return;
    }
    std::vector<Slot*> all;
    {
      MutexLock l(&slots_mu_);
      for (auto& [p, s] : slots_) all.push_back(s.get());
    }
    for (Slot* s : all) {
      MutexLock l(&s->mu);
      // In seq order, which is log order: the durable writes are a prefix.
      uint64_t seq = 0;
      size_t n = 0;
      while (n < s->unsynced.size() && s->unsynced[n].second <= *durable) {
        seq = s->unsynced[n].first;
        ++n;
      }
      s->unsynced.erase(s->unsynced.begin(), s->unsynced.begin() + static_cast<long>(n));
      if (seq != 0 && !failed_) Run(s, s->replica->OnDurable(seq, clock_->Now()));
    }
  }
}

void ReplicaHost::TickLoop() {
  Nanos last_expiry = clock_->Now();
  for (;;) {
    {
      MutexLock l(&run_mu_);
      if (run_cv_.WaitFor(&run_mu_, options_.tick, [&]() REQUIRES(run_mu_) { return stopping_; }))
        return;
    }
    if (failed_) continue;
    std::vector<Slot*> all;
    {
      MutexLock l(&slots_mu_);
      for (auto& [p, s] : slots_) all.push_back(s.get());
    }
    // Staged snapshots are looked at once a second: a stage lock may be held
    // across a chunk's writes, which a tick should not wait for often.
    const bool expire = clock_->Now() - last_expiry >= std::chrono::seconds(1);
    if (expire) last_expiry = clock_->Now();
    for (Slot* s : all) {
      if (expire) ExpireStage(s);
      MutexLock l(&s->mu);
      Run(s, s->replica->OnTick(clock_->Now()));
    }
    ExpireStaged();
  }
}

// ---------------------------------------------------------------- staging

Status ReplicaHost::StageBlock(const StagedBlock& b) {
  if (failed_) return Status::Unavailable("this replica host stopped after a write failure");
  if (b.ahead) return KeepStreamed(b);
  if (Slot* slot = Find(b.partition); slot != nullptr) {
    // A retransmission of an entry this replica holds: its blocks are here.
    MutexLock l(&slot->mu);
    const Replica& r = *slot->replica;
    const LogEntry* have = r.EntryAt(b.lsn);
    if (b.lsn <= r.base_lsn() || (have != nullptr && have->epoch == b.epoch)) {
      return Status::AlreadyExists("partition " + std::to_string(b.partition.value()) + " LSN " +
                                   std::to_string(b.lsn.value()) + " is held here already");
    }
  }
  ASSIGN_OR_RETURN(BlockRef ref, store_->WriteBlock(Bytes(b.data)));
  if (ref.hash != b.hash) {
    store_->ForgetBlocks(std::vector<BlockRef>{ref});
    return Status::DataLoss("staged block " + std::to_string(b.index) + " of partition " +
                            std::to_string(b.partition.value()) + " LSN " +
                            std::to_string(b.lsn.value()) + " does not match its hash");
  }
  std::optional<BlockRef> replaced;
  {
    MutexLock l(&stage_mu_);
    auto [it, inserted] = staged_.try_emplace(
        StageKey{b.partition, b.epoch.value(), b.lsn.value(), b.index}, Staged{ref, clock_->Now()});
    if (!inserted) {
      replaced = it->second.ref;
      it->second = Staged{ref, clock_->Now()};
    }
  }
  if (replaced) store_->ForgetBlocks(std::vector<BlockRef>{*replaced});  // sent twice
  return Status::Ok();
}

Status ReplicaHost::KeepStreamed(const StagedBlock& b) {
  {
    MutexLock l(&stage_mu_);
    if (ahead_bytes_ + b.data.size() > options_.max_ahead_bytes) {
      return Status::LimitExceeded(
          std::to_string(ahead_bytes_ >> 20) +
          " MiB of blocks streamed ahead wait here for their puts; this one goes with its put");
    }
  }
  if (Slot* slot = Find(b.partition); slot != nullptr) {
    MutexLock l(&slot->mu);
    if (b.epoch < slot->replica->epoch()) {
      return Status(StatusCode::kStaleEpoch, "partition " + std::to_string(b.partition.value()) +
                                                 ": a block streamed in epoch " +
                                                 std::to_string(b.epoch.value()) +
                                                 ", this replica is at epoch " +
                                                 std::to_string(slot->replica->epoch().value()));
    }
  }
  ASSIGN_OR_RETURN(BlockRef ref, store_->WriteBlock(Bytes(b.data)));
  if (ref.hash != b.hash) {
    store_->ForgetBlocks(std::vector<BlockRef>{ref});
    return Status::DataLoss("a block of partition " + std::to_string(b.partition.value()) +
                            " streamed ahead does not match its hash");
  }
  std::optional<BlockRef> replaced;
  {
    MutexLock l(&stage_mu_);
    auto [it, inserted] =
        ahead_.try_emplace(AheadKey{b.partition.value(), b.source.value(), b.source_offset},
                           Staged{ref, clock_->Now()});
    if (!inserted) {
      replaced = it->second.ref;
      ahead_bytes_ -= replaced->raw_len;
      it->second = Staged{ref, clock_->Now()};
    }
    ahead_bytes_ += ref.raw_len;
  }
  if (replaced) store_->ForgetBlocks(std::vector<BlockRef>{*replaced});  // sent twice
  ++ahead_received_;
  return Status::Ok();
}

Result<std::vector<BlockRef>> ReplicaHost::TakeStaged(PartitionId p, NodeId from, Epoch epoch,
                                                      Lsn lsn, const std::vector<BlockRef>& want) {
  MutexLock l(&stage_mu_);
  std::vector<BlockRef> out;
  // Where each block was found: staged for this entry, or streamed ahead.
  std::vector<std::variant<StageKey, AheadKey>> keys;
  auto matches = [&](const Staged& s, const BlockRef& w) {
    return s.ref.hash == w.hash && s.ref.raw_len == w.raw_len;
  };
  for (uint32_t i = 0; i < want.size(); ++i) {
    const StageKey k{p, epoch.value(), lsn.value(), i};
    if (auto it = staged_.find(k); it != staged_.end() && matches(it->second, want[i])) {
      out.push_back(it->second.ref);
      keys.emplace_back(k);
      continue;
    }
    const AheadKey a{p.value(), from.value(), want[i].offset};
    if (auto it = ahead_.find(a); it != ahead_.end() && matches(it->second, want[i])) {
      out.push_back(it->second.ref);
      keys.emplace_back(a);
      continue;
    }
    return Status::NotFound("partition " + std::to_string(p.value()) + " LSN " +
                            std::to_string(lsn.value()) + ": block " + std::to_string(i) + " of " +
                            std::to_string(want.size()) + " was not staged");
  }
  for (const auto& k : keys) {
    if (const auto* a = std::get_if<AheadKey>(&k)) {
      auto it = ahead_.find(*a);
      ahead_bytes_ -= it->second.ref.raw_len;
      ahead_.erase(it);
      ++ahead_claimed_;
    } else {
      staged_.erase(std::get<StageKey>(k));
    }
  }
  return out;
}

void ReplicaHost::ExpireStaged() {
  std::vector<BlockRef> old;
  const Nanos now = clock_->Now();
  // Returns the raw bytes of what it dropped from `table`.
  auto expire = [&](auto& table) {
    uint64_t dropped = 0;
    for (auto it = table.begin(); it != table.end();) {
      if (now - it->second.at >= options_.stage_expiry) {
        old.push_back(it->second.ref);
        dropped += it->second.ref.raw_len;
        it = table.erase(it);
      } else {
        ++it;
      }
    }
    return dropped;
  };
  {
    MutexLock l(&stage_mu_);
    expire(staged_);
    ahead_bytes_ -= expire(ahead_);
    std::erase_if(streamed_,
                  [&](const auto& s) { return now - s.second >= options_.stage_expiry; });
  }
  if (!old.empty()) store_->ForgetBlocks(old);
}

size_t ReplicaHost::staged_blocks() {
  MutexLock l(&stage_mu_);
  return staged_.size() + ahead_.size();
}

void ReplicaHost::StreamAhead(PartitionId p, const BlockRef& ref, std::string_view data) {
  if (failed_) return;
  Slot* slot = Find(p);
  if (slot == nullptr) return;
  std::vector<NodeId> peers;
  Epoch epoch;
  {
    MutexLock l(&slot->mu);
    peers = slot->replica->StreamPeers();
    epoch = slot->replica->epoch();
  }
  if (peers.empty()) return;
  {
    MutexLock l(&stage_mu_);
    streamed_[{p.value(), ref.offset}] = clock_->Now();
  }
  for (NodeId to : peers) {
    StagedBlock b;
    b.partition = p;
    b.epoch = epoch;
    b.hash = ref.hash;
    b.data = std::string(data);
    b.ahead = true;
    b.source = self_;
    b.source_offset = ref.offset;
    transport_->SendAhead(to, std::move(b));
    ++ahead_sent_;
  }
}

Result<std::string> ReplicaHost::ReadBlock(PartitionId p, const BlockRef& ref) {
  DocEntry one;
  one.partition = p;
  one.blocks = {ref};
  one.meta.size = ref.raw_len;
  std::string raw(ref.raw_len, '\0');
  RETURN_IF_ERROR(store_->ReadRange(one, 0, std::as_writable_bytes(std::span(raw))));
  return raw;
}

void ReplicaHost::NotePeerProgress(PartitionId p, NodeId peer) {
  if (failed_) return;
  Slot* slot = Find(p);
  if (slot == nullptr) return;
  MutexLock l(&slot->mu);
  Run(slot, slot->replica->OnPeerProgress(peer, clock_->Now()));
}

}  // namespace cairn::chunkserver
