#include "chunkserver/replica.h"

#include <algorithm>

#include "common/assert.h"

namespace cairn::chunkserver {

const char* ReplicaRoleName(ReplicaRole r) {
  switch (r) {
    case ReplicaRole::kNone:
      return "none";
    case ReplicaRole::kPrimary:
      return "primary";
    case ReplicaRole::kBackup:
      return "backup";
    case ReplicaRole::kLearner:
      return "learner";
    case ReplicaRole::kFenced:
      return "fenced";
    case ReplicaRole::kRemoved:
      return "removed";
  }
  return "?";
}

PartitionId PartitionOfMessage(const PeerMessage& m) {
  return std::visit([](const auto& x) { return x.partition; }, m);
}

Replica::Replica(NodeId self, PartitionId partition, ReplicaOptions options, RecoveredLog log)
    : self_(self),
      partition_(partition),
      options_(options),
      base_lsn_(log.base_lsn),
      base_epoch_(log.base_epoch),
      entries_(log.entries.begin(), log.entries.end()) {
  for (size_t i = 0; i < entries_.size(); ++i) {
    CAIRN_CHECK(entries_[i].lsn.value() == base_lsn_.value() + i + 1) << "recovered log has a gap";
  }
  // Everything recovered is durable; the base is committed and applied.
  durable_ = last_lsn();
  commit_ = base_lsn_;
  applied_ = base_lsn_;
  epoch_ = entries_.empty() ? base_epoch_ : entries_.back().epoch;
  awaiting_first_config_ = !log.fresh;
}

Epoch Replica::EpochAt(Lsn lsn) const {
  if (lsn.value() == 0) return Epoch(0);
  if (lsn == base_lsn_) return base_epoch_;
  const LogEntry* e = EntryAt(lsn);
  return e == nullptr ? Epoch(0) : e->epoch;
}

const LogEntry* Replica::EntryAt(Lsn lsn) const {
  if (lsn <= base_lsn_ || lsn > last_lsn()) return nullptr;
  return &entries_[lsn.value() - base_lsn_.value() - 1];
}

Effects Replica::Take() {
  Effects out;
  out.swap(out_);
  return out;
}

// ---------------------------------------------------------------- log writes

void Replica::Append(std::vector<LogEntry> entries) {
  if (entries.empty()) return;
  for (const LogEntry& e : entries) {
    CAIRN_CHECK(e.lsn == last_lsn().Next()) << "append out of order";
    entries_.push_back(e);
  }
  const uint64_t seq = NextSeq();
  unsynced_.emplace_back(seq, last_lsn());
  out_.push_back(AppendEffect{seq, std::move(entries)});
}

void Replica::TruncateAfter(Lsn after) {
  // Always-on: a committed entry is never cut (the promise depends on it).
  CAIRN_CHECK(after >= commit_) << "partition " << partition_ << ": truncating committed entry "
                                << after.value() + 1 << " (commit " << commit_.value() << ")";
  CAIRN_CHECK(after >= base_lsn_);
  while (last_lsn() > after) entries_.pop_back();
  durable_ = std::min(durable_, after);
  for (auto& [seq, lsn] : unsynced_) lsn = std::min(lsn, after);
  out_.push_back(TruncateEffect{NextSeq(), after});
}

void Replica::ApplyThrough(Lsn lsn) {
  lsn = std::min(lsn, last_lsn());
  while (applied_ < lsn) {
    applied_ = applied_.Next();
    const LogEntry* e = EntryAt(applied_);
    CAIRN_CHECK(e != nullptr);
    out_.push_back(ApplyEffect{*e});
    if (!e->request_id.empty()) pending_requests_.erase(e->request_id);
    auto w = waiters_.find(applied_);
    if (w != waiters_.end()) {
      for (uint64_t token : w->second) out_.push_back(ReplyEffect{token, Status::Ok(), applied_});
      waiters_.erase(w);
    }
  }
  MaybeCompact();
}

void Replica::MaybeCompact() {
  const uint64_t kept = applied_.value() - base_lsn_.value();
  if (kept <= 2ull * options_.log_retention) return;
  const Lsn through(applied_.value() - options_.log_retention);
  const Epoch through_epoch = EpochAt(through);
  while (!entries_.empty() && entries_.front().lsn <= through) entries_.pop_front();
  base_lsn_ = through;
  base_epoch_ = through_epoch;
  out_.push_back(CompactEffect{NextSeq(), through, through_epoch});
}

Effects Replica::OnDurable(uint64_t seq, Nanos now) {
  Lsn before = durable_;
  while (!unsynced_.empty() && unsynced_.front().first <= seq) {
    durable_ = std::max(durable_, unsynced_.front().second);
    unsynced_.pop_front();
  }
  if (durable_ != before) {
    if (role_ == ReplicaRole::kPrimary) {
      AdvanceCommit(now);
    } else if (role_ == ReplicaRole::kBackup || role_ == ReplicaRole::kLearner) {
      AckPrimary(primary_);
    }
  }
  return Take();
}

// ---------------------------------------------------------------- roles

bool Replica::InSync(NodeId n) const {
  if (!config_) return false;
  return std::find(config_->in_sync.begin(), config_->in_sync.end(), n) != config_->in_sync.end();
}

bool Replica::InCommitSet(NodeId n) const { return InSync(n) || pending_joins_.contains(n); }

void Replica::StepDown(const Status& why) {
  for (auto& [lsn, tokens] : waiters_) {
    for (uint64_t token : tokens) out_.push_back(ReplyEffect{token, why, Lsn()});
  }
  waiters_.clear();
  pending_requests_.clear();
  peers_.clear();
  pending_joins_.clear();
  active_ = false;
  lease_expiry_ = Nanos(INT64_MIN / 2);
  if (role_ == ReplicaRole::kPrimary) role_ = ReplicaRole::kBackup;
}

void Replica::AdoptEpoch(Epoch epoch, NodeId primary) {
  if (role_ == ReplicaRole::kPrimary) {
    StepDown(Status(StatusCode::kNotPrimary,
                    "partition " + std::to_string(partition_.value()) + ": a newer epoch exists"));
  }
  epoch_ = epoch;
  primary_ = primary;
  matched_ = Lsn();
  primary_contact_ = Nanos{INT64_MIN / 2};
  config_.reset();
  role_ = ReplicaRole::kBackup;
}

void Replica::BecomePrimary(Epoch epoch, Nanos now) {
  role_ = ReplicaRole::kPrimary;
  epoch_ = epoch;
  primary_ = self_;
  active_ = false;
  lease_expiry_ = Nanos(INT64_MIN / 2);
  peers_.clear();
  pending_joins_.clear();
  // Entries of older epochs in this log become committed only with this
  // epoch's no-op (a primary never counts acknowledgements of another
  // epoch's entries).
  epoch_start_ = last_lsn().Next();
  Append({LogEntry{epoch_start_, epoch_, RequestId{}, std::string(), true}});
  for (NodeId n : config_->replicas) {
    if (n == self_) continue;
    Peer p;
    p.next = epoch_start_;
    p.last_progress = now;
    peers_.emplace(n, p);
  }
  SyncPeers(now);
}

Effects Replica::OnConfig(const ReplicaConfig& config, Nanos now) {
  if (config.partition != partition_ || config.epoch < epoch_) return Take();
  if (config.epoch == epoch_ && config_.has_value()) return Take();  // known
  if (awaiting_first_config_) {
    // The first configuration after a (re)start: this node may have led
    // config.epoch (or an older one) before a crash and lost unsynced entries
    // it had sent, so it never leads an epoch it has seen from before.
    lead_floor_ = config.epoch.Next();
    awaiting_first_config_ = false;
  }
  const bool member =
      std::find(config.replicas.begin(), config.replicas.end(), self_) != config.replicas.end();
  const bool continuing = role_ == ReplicaRole::kPrimary && active_ &&
                          config.epoch == epoch_.Next() && member && config.replicas[0] == self_;
  if (!continuing && role_ == ReplicaRole::kPrimary) {
    StepDown(Status(StatusCode::kNotPrimary, "partition " + std::to_string(partition_.value()) +
                                                 ": this node is no longer its primary"));
  }
  if (config.epoch != epoch_) {
    matched_ = Lsn();
    primary_contact_ = Nanos{INT64_MIN / 2};
  }
  epoch_ = config.epoch;
  config_ = config;
  if (!member) {
    role_ = ReplicaRole::kRemoved;
    primary_ = config.replicas.empty() ? NodeId() : config.replicas[0];
    return Take();
  }
  primary_ = config.replicas[0];
  if (primary_ != self_) {
    role_ = InSync(self_) ? ReplicaRole::kBackup : ReplicaRole::kLearner;
    return Take();
  }
  if (config.epoch < lead_floor_) {
    role_ = ReplicaRole::kFenced;
    return Take();
  }
  if (continuing) {
    // The same primary one epoch later (a backup dropped or joined): nobody
    // else wrote to the peers' logs in between, so their state stands.
    pending_joins_.clear();
    for (auto it = peers_.begin(); it != peers_.end();) {
      if (std::find(config.replicas.begin(), config.replicas.end(), it->first) ==
          config.replicas.end()) {
        it = peers_.erase(it);
      } else {
        ++it;
      }
    }
    for (NodeId n : config.replicas) {
      if (n == self_ || peers_.contains(n)) continue;
      Peer p;
      p.next = last_lsn().Next();
      p.last_progress = now;
      peers_.emplace(n, p);
    }
    for (auto& [n, p] : peers_) p.last_request = Nanos(INT64_MIN / 2);
    AdvanceCommit(now);
    SyncPeers(now);
    return Take();
  }
  BecomePrimary(config.epoch, now);
  return Take();
}

Effects Replica::OnLease(Epoch epoch, Nanos sent_at, Nanos now) {
  if (role_ == ReplicaRole::kPrimary && epoch == epoch_) {
    const auto usable = Nanos(static_cast<int64_t>(static_cast<double>(options_.lease.count()) *
                                                   (1.0 - options_.lease_margin)));
    lease_expiry_ = std::max(lease_expiry_, sent_at + usable);
    AdvanceCommit(now);
  }
  return Take();
}

// ---------------------------------------------------------------- primary

Effects Replica::OnClientMutation(uint64_t token, const RequestId& request_id, std::string payload,
                                  Nanos now) {
  const std::string where = "partition " + std::to_string(partition_.value());
  if (role_ != ReplicaRole::kPrimary) {
    out_.push_back(
        ReplyEffect{token, Status(StatusCode::kNotPrimary, where + ": not the primary"), Lsn()});
    return Take();
  }
  if (!active_) {
    out_.push_back(
        ReplyEffect{token, Status::Unavailable(where + ": new primary still reconciling"), Lsn()});
    return Take();
  }
  if (now >= lease_expiry_) {
    out_.push_back(ReplyEffect{token, Status::Unavailable(where + ": no valid lease"), Lsn()});
    return Take();
  }
  if (!request_id.empty()) {
    auto it = pending_requests_.find(request_id);
    if (it != pending_requests_.end()) {
      waiters_[it->second].push_back(token);
      return Take();
    }
  }
  const Lsn lsn = last_lsn().Next();
  for (auto& [n, p] : peers_) {
    if (p.match == last_lsn()) p.last_progress = now;  // it owes nothing until now
  }
  Append({LogEntry{lsn, epoch_, request_id, std::move(payload), false}});
  if (!request_id.empty()) pending_requests_[request_id] = lsn;
  waiters_[lsn].push_back(token);
  SyncPeers(now);
  return Take();
}

void Replica::SendTo(NodeId to, Peer* peer, Nanos now, bool force) {
  if (peer->next <= base_lsn_) {
    // Too far behind the kept log: a snapshot of the applied state.
    if (now - peer->last_snapshot < options_.retransmit * 5 && !force) return;
    peer->last_snapshot = now;
    peer->last_send = now;
    out_.push_back(SendSnapshotEffect{to, epoch_, applied_, EpochAt(applied_)});
    return;
  }
  const Lsn last = last_lsn();
  bool sent = false;
  while (peer->next <= last && peer->next.value() - peer->match.value() <= options_.max_inflight) {
    ReplicateMsg m;
    m.partition = partition_;
    m.epoch = epoch_;
    m.from = self_;
    m.prev_lsn = Lsn(peer->next.value() - 1);
    m.prev_epoch = EpochAt(m.prev_lsn);
    m.commit_lsn = commit_;
    const uint64_t end = std::min(last.value(), peer->next.value() + options_.max_batch - 1);
    for (uint64_t l = peer->next.value(); l <= end; ++l) m.entries.push_back(*EntryAt(Lsn(l)));
    peer->next = Lsn(end + 1);
    out_.push_back(SendEffect{to, std::move(m)});
    sent = true;
  }
  if (!sent && force) {
    ReplicateMsg m;  // carries the commit point; the answer shows the peer's state
    m.partition = partition_;
    m.epoch = epoch_;
    m.from = self_;
    m.prev_lsn = Lsn(peer->next.value() - 1);
    m.prev_epoch = EpochAt(m.prev_lsn);
    m.commit_lsn = commit_;
    out_.push_back(SendEffect{to, std::move(m)});
    sent = true;
  }
  if (sent) peer->last_send = now;
}

void Replica::SyncPeers(Nanos now) {
  for (auto& [n, p] : peers_) SendTo(n, &p, now, false);
}

void Replica::AdvanceCommit(Nanos now) {
  if (role_ != ReplicaRole::kPrimary || now >= lease_expiry_) return;
  Lsn c = durable_;
  for (const auto& [n, p] : peers_) {
    if (InCommitSet(n)) c = std::min(c, p.match);
  }
  if (c < epoch_start_ || c <= commit_) return;
  commit_ = c;
  active_ = true;
  ApplyThrough(commit_);
}

void Replica::MaybeRequest(Nanos now) {
  if (role_ != ReplicaRole::kPrimary) return;
  const Lsn last = last_lsn();
  for (auto& [n, p] : peers_) {
    if (now - p.last_request < options_.replication_timeout) continue;
    if (InCommitSet(n)) {
      if (p.match == last) p.last_progress = now;
      if (p.match < last && now - p.last_progress >= options_.replication_timeout) {
        p.last_request = now;
        out_.push_back(MetaRequestEffect{
            InSyncRequest{InSyncRequest::Kind::kDrop, partition_, epoch_, self_, n}});
      }
      // Asked (again: the answer may have been lost) only once it holds
      // every committed entry; commits wait for it meanwhile.
      if (pending_joins_.contains(n) && !InSync(n) && p.match >= commit_) {
        p.last_request = now;
        out_.push_back(MetaRequestEffect{
            InSyncRequest{InSyncRequest::Kind::kJoin, partition_, epoch_, self_, n}});
      }
    } else if (active_ && now - p.last_ack < options_.replication_timeout &&
               p.match.value() + options_.max_batch >= commit_.value()) {
      // (Only a learner that answers: one that went silent since its last
      // acknowledgement, e.g. just dropped for a crash, would stall commits.)
      // A learner within one batch of the commit point: from now on commits
      // wait for it (a pending join), so it cannot fall behind again while
      // writes go on (waiting for it to reach a moving commit point on its
      // own could take as long as the writes lasted). The metaserver is asked
      // once it holds every committed entry (above), so it holds every
      // committed entry when it is admitted.
      pending_joins_.insert(n);
      p.last_progress = now;
      if (p.match >= commit_) {
        p.last_request = now;
        out_.push_back(MetaRequestEffect{
            InSyncRequest{InSyncRequest::Kind::kJoin, partition_, epoch_, self_, n}});
      }
    }
  }
}

void Replica::OnAck(const ReplicateAck& m, Nanos now) {
  if (m.epoch > epoch_) {
    AdoptEpoch(m.epoch, NodeId());
    return;
  }
  if (role_ != ReplicaRole::kPrimary || m.epoch != epoch_) return;
  auto it = peers_.find(m.from);
  if (it == peers_.end()) return;
  Peer& p = it->second;
  p.last_ack = now;
  if (m.ok) {
    if (m.last_lsn > p.match && m.last_lsn <= last_lsn()) {
      p.match = m.last_lsn;
      p.last_progress = now;
    }
    if (p.next <= p.match) p.next = p.match.Next();
    AdvanceCommit(now);
    MaybeRequest(now);
  } else {
    if (InSync(m.from) && m.last_lsn < commit_ &&
        now - p.last_request >= options_.replication_timeout) {
      // An in-sync replica holds every committed entry, durably: one that
      // answers it lacks one lost its log (its volume was wiped or
      // replaced). It must not count as in sync (a promotion could pick it,
      // a backup read could read it): dropped at once, it catches up as a
      // learner.
      p.last_request = now;
      out_.push_back(MetaRequestEffect{
          InSyncRequest{InSyncRequest::Kind::kDrop, partition_, epoch_, self_, m.from}});
    }
    p.delivered = std::min(p.delivered, m.last_lsn);  // it holds no more than that
    const Lsn restart = std::max(p.match.Next(), std::min(p.next, m.last_lsn.Next()));
    if (restart < p.next) {
      p.next = restart;
      SendTo(m.from, &p, now, true);
      return;
    }
  }
  SendTo(m.from, &p, now, false);
}

// ---------------------------------------------------------------- backup

void Replica::AckPrimary(NodeId to) {
  if (!to.value()) return;
  ReplicateAck a;
  a.partition = partition_;
  a.epoch = epoch_;
  a.from = self_;
  a.ok = true;
  a.last_lsn = std::min(durable_, matched_);
  out_.push_back(SendEffect{to, a});
}

void Replica::OnReplicate(const ReplicateMsg& m, Nanos now) {
  auto nack = [&](Lsn hint) {
    ReplicateAck a;
    a.partition = partition_;
    a.epoch = epoch_;
    a.from = self_;
    a.ok = false;
    a.last_lsn = hint;
    out_.push_back(SendEffect{m.from, a});
  };
  if (m.epoch < epoch_) {
    nack(last_lsn());  // tells an old primary that a newer epoch exists
    return;
  }
  if (m.epoch > epoch_) AdoptEpoch(m.epoch, m.from);
  // Always-on: one primary per epoch, so a primary never hears its own epoch.
  CAIRN_CHECK(role_ != ReplicaRole::kPrimary)
      << "partition " << partition_ << ": two primaries in epoch " << epoch_;
  if (role_ == ReplicaRole::kRemoved) return;
  if (role_ == ReplicaRole::kFenced || role_ == ReplicaRole::kNone) role_ = ReplicaRole::kBackup;
  primary_ = m.from;
  if (m.prev_lsn > last_lsn()) {
    nack(last_lsn());
    return;
  }
  if (m.prev_lsn > base_lsn_ && EpochAt(m.prev_lsn) != m.prev_epoch) {
    nack(Lsn(m.prev_lsn.value() - 1));
    return;
  }
  // In touch with the primary's log (a backup read's bound): only a message
  // that follows what this replica holds. One that lost its log (a wiped
  // volume) hears from the primary too but serves nothing until it has
  // caught up.
  primary_contact_ = now;
  std::vector<LogEntry> add;
  for (const LogEntry& e : m.entries) {
    if (e.lsn <= base_lsn_) continue;  // committed, folded: equal by the log matching rule
    if (!add.empty() || e.lsn > last_lsn()) {
      add.push_back(e);
      continue;
    }
    if (EpochAt(e.lsn) == e.epoch) continue;  // already have it
    TruncateAfter(Lsn(e.lsn.value() - 1));
    add.push_back(e);
  }
  Append(std::move(add));
  const Lsn through(m.prev_lsn.value() + m.entries.size());
  matched_ = std::max(matched_, through);
  const Lsn c = std::min(m.commit_lsn, matched_);
  if (c > commit_) {
    commit_ = c;
    ApplyThrough(commit_);
  }
  AckPrimary(m.from);
}

void Replica::OnSnapshot(const SnapshotMsg& m, Nanos now) {
  (void)now;
  if (m.epoch < epoch_) return;
  if (m.epoch > epoch_) AdoptEpoch(m.epoch, m.from);
  CAIRN_CHECK(role_ != ReplicaRole::kPrimary)
      << "partition " << partition_ << ": two primaries in epoch " << epoch_;
  if (role_ == ReplicaRole::kRemoved) return;
  if (role_ != ReplicaRole::kLearner) role_ = ReplicaRole::kBackup;
  primary_ = m.from;
  if (m.lsn <= last_lsn() && m.lsn >= base_lsn_ && EpochAt(m.lsn) == m.lsn_epoch) {
    // Already have that point (a duplicate, or a slow snapshot): never go back.
    matched_ = std::max(matched_, m.lsn);
  } else if (m.lsn >= commit_) {
    base_lsn_ = m.lsn;
    base_epoch_ = m.lsn_epoch;
    entries_.clear();
    commit_ = applied_ = matched_ = m.lsn;
    durable_ = Lsn();
    for (auto& [seq, lsn] : unsynced_) lsn = Lsn();
    const uint64_t seq = NextSeq();
    unsynced_.emplace_back(seq, m.lsn);
    out_.push_back(InstallSnapshotEffect{seq, m});
  } else {
    return;  // older than what this replica has committed: stale
  }
  const Lsn c = std::min(m.lsn, matched_);
  if (c > commit_) {
    commit_ = c;
    ApplyThrough(commit_);
  }
  AckPrimary(m.from);
}

Effects Replica::OnMessage(const PeerMessage& msg, Nanos now) {
  if (PartitionOfMessage(msg) != partition_) return Take();
  if (const auto* r = std::get_if<ReplicateMsg>(&msg)) {
    OnReplicate(*r, now);
  } else if (const auto* a = std::get_if<ReplicateAck>(&msg)) {
    OnAck(*a, now);
  } else if (const auto* s = std::get_if<SnapshotMsg>(&msg)) {
    OnSnapshot(*s, now);
  }
  return Take();
}

Effects Replica::OnTick(Nanos now) {
  if (role_ == ReplicaRole::kPrimary) {
    for (auto& [n, p] : peers_) {
      if (now - p.last_send < options_.retransmit) continue;
      const Lsn from = std::max(p.match, p.delivered);
      if (from < last_lsn() && p.next > base_lsn_) p.next = from.Next();  // go-back-N
      SendTo(n, &p, now, true);
    }
    AdvanceCommit(now);
    MaybeRequest(now);
  }
  return Take();
}

std::vector<NodeId> Replica::StreamPeers() const {
  std::vector<NodeId> out;
  if (role_ != ReplicaRole::kPrimary || !active_) return out;
  for (const auto& [n, p] : peers_) {
    if (p.next > base_lsn_ && last_lsn().value() < p.next.value() + options_.max_inflight) {
      out.push_back(n);
    }
  }
  return out;
}

Effects Replica::OnPeerProgress(NodeId peer, Nanos now) {
  if (role_ == ReplicaRole::kPrimary) {
    auto it = peers_.find(peer);
    if (it != peers_.end()) it->second.last_progress = now;
  }
  return Take();
}

Effects Replica::OnSnapshotDelivered(NodeId peer, Lsn lsn, Nanos now) {
  if (role_ != ReplicaRole::kPrimary) return Take();
  auto it = peers_.find(peer);
  if (it == peers_.end()) return Take();
  Peer& p = it->second;
  p.last_snapshot = now;
  p.last_progress = now;
  // A hint, as `next` always is: a peer without that point answers with
  // where it is. Below the kept log still (compacted meanwhile), the next
  // snapshot waits the usual interval.
  p.delivered = std::max(p.delivered, lsn);
  if (p.next <= lsn) p.next = lsn.Next();
  SendTo(peer, &p, now, false);
  return Take();
}

Status Replica::CheckRead(Nanos now) const {
  const std::string where = "partition " + std::to_string(partition_.value());
  if (role_ != ReplicaRole::kPrimary)
    return Status(StatusCode::kNotPrimary, where + ": not the primary");
  if (!active_) return Status::Unavailable(where + ": new primary still reconciling");
  if (now >= lease_expiry_) return Status::Unavailable(where + ": no valid lease");
  return Status::Ok();
}

Status Replica::CheckBackupRead(Nanos now, Nanos max_lag) const {
  if (role_ == ReplicaRole::kPrimary) return CheckRead(now);
  const std::string where = "partition " + std::to_string(partition_.value());
  if (role_ != ReplicaRole::kBackup || !config_.has_value() || config_->epoch != epoch_ ||
      !InSync(self_)) {
    return Status(StatusCode::kNotPrimary,
                  where + ": not an in-sync backup here (" + ReplicaRoleName(role_) + ")");
  }
  if (now - primary_contact_ >= max_lag) {
    return Status::Unavailable(where + ": this backup has not heard from its primary recently");
  }
  return Status::Ok();
}

ReplicaReport Replica::Report() const {
  ReplicaReport r;
  r.partition = partition_;
  r.epoch = epoch_;
  r.role = role_;
  r.last_lsn = last_lsn();
  r.last_epoch = EpochAt(last_lsn());
  r.commit_lsn = commit_;
  r.active = active_;
  r.can_lead = !awaiting_first_config_ && role_ != ReplicaRole::kFenced;
  return r;
}

}  // namespace cairn::chunkserver
