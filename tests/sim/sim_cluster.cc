#include "tests/sim/sim_cluster.h"

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <sstream>
#include <tuple>
#include <variant>
#include <vector>

#include "chunkserver/replica.h"
#include "common/random.h"
#include "metaserver/cluster_state.h"
#include "metaserver/failover.h"
#include "metaserver/mem_meta_store.h"

namespace cairn::sim {
namespace {

using chunkserver::Effects;
using chunkserver::LogEntry;
using chunkserver::PeerMessage;
using chunkserver::Replica;
using chunkserver::ReplicaConfig;
using chunkserver::ReplicaRole;
using chunkserver::RequestId;
using namespace std::chrono_literals;

const NodeId kMeta(0);  // the metaserver's network address

// ---------------------------------------------------------------- documents

struct Doc {
  std::string value;
  Lsn lsn;
  RequestId rid;
};

// A partition's applied state: what the doc store would hold. The request-id
// table is part of it (replicated, in snapshots and the durable base).
struct KvState {
  Lsn lsn;
  std::map<std::string, Doc> docs;
  std::map<RequestId, Lsn> dedup;

  void Apply(const LogEntry& e) {
    CAIRN_CHECK(e.lsn == lsn.Next()) << "apply out of order: " << e.lsn << " after " << lsn;
    lsn = e.lsn;
    if (e.noop) return;
    const size_t cut = e.payload.find('\n');
    docs[e.payload.substr(0, cut)] = Doc{e.payload.substr(cut + 1), e.lsn, e.request_id};
    if (!e.request_id.empty()) dedup[e.request_id] = e.lsn;
  }
};

// ---------------------------------------------------------------- the disk

struct DurableLog {
  Lsn base_lsn;
  Epoch base_epoch;
  KvState base;
  std::vector<LogEntry> entries;

  Lsn last() const { return Lsn(base_lsn.value() + entries.size()); }
};

struct WriteOp {
  uint64_t seq = 0;
  chunkserver::ReplicaEffect effect;  // Append, Truncate, InstallSnapshot or Compact
};

// ---------------------------------------------------------------- messages

struct WriteReq {
  uint32_t client = 0;
  uint64_t attempt = 0;
  PartitionId partition;
  RequestId rid;
  std::string payload;
};
struct WriteResp {
  uint32_t client = 0;
  uint64_t attempt = 0;
  Status status;
  Lsn lsn;
};
struct ReadReq {
  PartitionId partition;
  std::string key;
};
struct HeartbeatReq {
  NodeId node;
  uint64_t incarnation = 0;
  Nanos sent_at{0};  // the node's clock
  std::vector<chunkserver::ReplicaReport> reports;
};
struct HeartbeatResp {
  uint64_t incarnation = 0;
  Nanos sent_at{0};
  std::vector<ReplicaConfig> configs;
  std::vector<metaserver::PrimaryLease> grants;
};
struct MetaReq {
  chunkserver::InSyncRequest request;
};
// The receiver's "done" at the end of a snapshot stream (ReplicaHost's
// SnapshotChunkAnswer), which the sender hands to Replica::OnSnapshotDelivered.
struct SnapshotDone {
  PartitionId partition;
  NodeId peer;  // the receiver
  Lsn lsn;
};
using Message = std::variant<PeerMessage, WriteReq, WriteResp, ReadReq, HeartbeatReq, HeartbeatResp,
                             MetaReq, SnapshotDone>;

// ---------------------------------------------------------------- nodes

struct PartHost {
  std::unique_ptr<Replica> replica;
  KvState applied;
  DurableLog durable;
  std::vector<WriteOp> unsynced;
};

struct Node {
  NodeId id;
  bool up = true;
  uint64_t incarnation = 1;
  double rate = 1.0;  // local clock speed relative to the simulation's
  Nanos origin{0};    // simulation time of the local clock's zero
  Nanos local_base{0};
  bool sync_scheduled = false;
  std::map<PartitionId, PartHost> parts;
};

struct PendingWrite {
  bool active = false;
  uint64_t attempt = 0;
  uint32_t attempts = 0;
  PartitionId partition;
  RequestId rid;
  std::string key;
  std::string value;
  NodeId sent_to;
};

struct Client {
  uint32_t id = 0;
  uint64_t seq = 0;
  PendingWrite write;
  // The client's cached map: refreshed after an error or a timeout, and now
  // and then; stale in between, so requests reach old primaries.
  std::vector<NodeId> primary_of;
  std::vector<NodeId> read_view;
};

struct Event {
  Nanos at;
  uint64_t seq;
  std::function<void()> fn;
};
struct EventLater {
  bool operator()(const Event& a, const Event& b) const {
    return a.at != b.at ? a.at > b.at : a.seq > b.seq;
  }
};

struct CommittedEntry {
  Epoch epoch;
  RequestId rid;
  std::string payload;
};

class Sim {
 public:
  Sim(const SimOptions& o, SimStats* stats)
      : o_(o), stats_(stats), rng_(o.seed), clock_(Nanos(1'000'000'000)), store_(&clock_) {}

  Status Run();

 private:
  Nanos Now() { return clock_.Now(); }
  Nanos Local(const Node& n) {
    return n.local_base +
           Nanos(static_cast<int64_t>(static_cast<double>((Now() - n.origin).count()) * n.rate));
  }
  void At(Nanos when, std::function<void()> fn) {
    queue_.push(Event{when, next_seq_++, std::move(fn)});
  }
  void After(Nanos d, std::function<void()> fn) { At(Now() + d, std::move(fn)); }
  Nanos Jitter(int64_t lo_us, int64_t hi_us) {
    return std::chrono::microseconds(
        lo_us + static_cast<int64_t>(rng_.Uniform(static_cast<uint64_t>(hi_us - lo_us + 1))));
  }
  void Fail(const std::string& what) {
    if (!failure_.empty()) return;
    std::ostringstream s;
    s << "seed " << o_.seed << " at t=" << (Now() - Nanos(1'000'000'000)).count() / 1000000
      << "ms: " << what << " (replay with CAIRN_SIM_SEED=" << o_.seed << ")";
    failure_ = s.str();
  }
  void Trace(const std::string& s) {
    if (o_.verbose) {
      std::cerr << (Now() - Nanos(1'000'000'000)).count() / 1000000 << "ms " << s << "\n";
    }
  }

  // Setup.
  void StartMeta();
  void BootNode(Node& n);
  // Network.
  bool Reachable(NodeId a, NodeId b) const;
  void Send(NodeId from, NodeId to, Message m);
  void Deliver(NodeId to, const Message& m, NodeId from);
  // Nodes.
  PartHost* Part(Node& n, PartitionId p, bool create);
  void Handle(Node& n, PartitionId p, Effects fx);
  void ScheduleSync(Node& n);
  void Sync(Node& n, uint64_t incarnation);
  void ApplyOp(DurableLog* d, const WriteOp& op, bool* dirty);
  void Crash(Node& n);
  void Restart(Node& n);
  void HeartbeatLoop(NodeId id, uint64_t incarnation);
  void TickLoop(NodeId id, uint64_t incarnation);
  void OnNodeMessage(Node& n, const Message& m, NodeId from);
  // Metaserver.
  void MetaTick();
  void OnMetaMessage(const Message& m, NodeId from);
  void NoteMap();
  // Clients.
  void RefreshView(Client& c);
  void ClientStep(Client& c);
  void ReadLoop(Client& c);
  void ClientSend(Client& c);
  void OnClientReply(Client& c, const WriteResp& r);
  // Faults.
  void FaultStep();
  uint32_t DownCount() const;
  // Invariants.
  void OnApplied(Node& n, PartitionId p, const LogEntry& e, bool primary_commit, Epoch epoch);
  void OnAcked(PartitionId p, Lsn lsn, const RequestId& rid);
  bool DurableHas(NodeId node, PartitionId p, Lsn lsn, const RequestId& rid);
  void CheckAllAcked();
  void CheckRead(Node& n, PartitionId p, const std::string& key);
  void FinalChecks();

  const SimOptions o_;
  SimStats* const stats_;
  Random rng_;
  ManualClock clock_;
  metaserver::MemMetaStore store_;
  std::unique_ptr<metaserver::ClusterState> cs_;
  std::unique_ptr<metaserver::FailoverLogic> fo_;
  bool meta_up_ = true;
  metaserver::ClusterMap map_;  // the newest stored map seen
  std::vector<Node> nodes_;     // index = id - 1
  std::vector<Client> clients_;
  std::priority_queue<Event, std::vector<Event>, EventLater> queue_;
  uint64_t next_seq_ = 0;
  Nanos end_faults_{0};
  Nanos end_load_{0};
  bool load_on_ = true;
  std::set<std::pair<uint32_t, uint32_t>> cut_;  // unordered pairs of node ids (0 = meta)
  std::set<uint32_t> isolated_;                  // nodes cut from everyone
  std::set<uint32_t> cluster_cut_;  // nodes cut from the metaserver and peers, not clients

  // The model.
  std::map<PartitionId, std::map<Lsn, CommittedEntry>> history_;
  std::map<std::pair<PartitionId, Epoch>, NodeId> committer_;
  std::map<PartitionId, std::map<Lsn, RequestId>> acked_;
  std::map<std::pair<PartitionId, std::string>, Lsn> latest_ack_;
  std::map<RequestId, std::pair<std::string, std::string>> issued_;  // rid -> key, value
  bool dirty_ = false;
  std::string failure_;
  std::vector<KvState> snapshots_;  // SnapshotMsg::state is an index here
  std::map<uint64_t, std::tuple<uint32_t, uint64_t, RequestId>> tokens_;  // client, attempt, rid
  uint64_t next_token_ = 1;
  chunkserver::ReplicaOptions ropts_;
  metaserver::FailoverOptions fopts_;
};

// ---------------------------------------------------------------- setup

void Sim::StartMeta() {
  metaserver::ClusterOptions co;
  co.partition_count = o_.partitions;
  co.initial_nodes = o_.nodes;
  co.replication = o_.replication;
  cs_ = std::make_unique<metaserver::ClusterState>(&store_, &clock_, co);
  Status s = cs_->Load();
  CAIRN_CHECK(s.ok()) << s.ToString();
  fo_ = std::make_unique<metaserver::FailoverLogic>(fopts_, Now());
  NoteMap();
}

void Sim::NoteMap() {
  Result<metaserver::ClusterMap> m = cs_->Map();
  if (!m.ok() || m->version <= map_.version) return;
  if (map_.version != 0) {
    stats_->map_changes++;
    for (size_t i = 0; i < m->partitions.size(); ++i) {
      const auto& a = map_.partitions[i];
      const auto& b = m->partitions[i];
      if (!a.replicas.empty() && !b.replicas.empty() && a.replicas[0] != b.replicas[0]) {
        stats_->promotions++;
      }
      if (b.replicas.size() > a.replicas.size()) stats_->replacements++;
      if (!a.replicas.empty() && b.in_sync.size() > a.in_sync.size() &&
          a.replicas[0] == b.replicas[0]) {
        stats_->joins++;
      }
      if (a.epoch != b.epoch) {
        std::ostringstream s;
        s << "map p" << i << " e" << b.epoch << " replicas";
        for (NodeId r : b.replicas) s << " " << r;
        s << " in_sync";
        for (NodeId r : b.in_sync) s << " " << r;
        Trace(s.str());
      }
    }
  }
  map_ = *m;
  dirty_ = true;
}

void Sim::BootNode(Node& n) {
  n.up = true;
  n.origin = Now();
  n.local_base = Nanos(static_cast<int64_t>(rng_.Uniform(1'000'000'000'000ull)));
  // Clock rate within +-1%: the lease margin (10%) covers it.
  n.rate = 1.0 + (static_cast<double>(rng_.Uniform(2001)) - 1000.0) / 100000.0;
  n.sync_scheduled = false;
  for (auto& [p, h] : n.parts) {
    h.unsynced.clear();
    h.applied = h.durable.base;
    chunkserver::RecoveredLog log{h.durable.base_lsn, h.durable.base_epoch, h.durable.entries};
    h.replica = std::make_unique<Replica>(n.id, p, ropts_, std::move(log));
  }
  const uint64_t inc = n.incarnation;
  After(Jitter(0, 50000), [this, id = n.id, inc] { HeartbeatLoop(id, inc); });
  After(Jitter(0, 50000), [this, id = n.id, inc] { TickLoop(id, inc); });
}

// ---------------------------------------------------------------- network

bool Sim::Reachable(NodeId a, NodeId b) const {
  if (isolated_.contains(a.value()) || isolated_.contains(b.value())) return false;
  // A node on the clients' side of a partition: cut from the cluster only.
  if (a.value() <= 1000 && b.value() <= 1000 &&
      (cluster_cut_.contains(a.value()) || cluster_cut_.contains(b.value()))) {
    return false;
  }
  const std::pair<uint32_t, uint32_t> key{std::min(a.value(), b.value()),
                                          std::max(a.value(), b.value())};
  return !cut_.contains(key);
}

void Sim::Send(NodeId from, NodeId to, Message m) {
  stats_->messages++;
  if (!Reachable(from, to)) return;
  const bool lossy = Now() < end_faults_ && o_.faults;
  if (lossy && rng_.OneIn(o_.drop_one_in)) return;  // dropped
  int copies = (lossy && rng_.OneIn(o_.duplicate_one_in)) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    // Mostly fast; sometimes slow, which reorders.
    Nanos d = Jitter(100, 2000);
    if (lossy && rng_.OneIn(o_.slow_one_in)) {
      d = Jitter(2000, std::chrono::duration_cast<std::chrono::microseconds>(o_.slow_max).count());
    }
    After(d, [this, from, to, m] {
      if (!Reachable(from, to)) return;
      Deliver(to, m, from);
    });
  }
}

void Sim::Deliver(NodeId to, const Message& m, NodeId from) {
  if (to == kMeta) {
    if (meta_up_) OnMetaMessage(m, from);
    return;
  }
  if (to.value() > 1000) {  // a client
    Client& c = clients_[to.value() - 1001];
    if (const auto* r = std::get_if<WriteResp>(&m)) OnClientReply(c, *r);
    return;
  }
  Node& n = nodes_[to.value() - 1];
  if (n.up) OnNodeMessage(n, m, from);
}

// ---------------------------------------------------------------- nodes

PartHost* Sim::Part(Node& n, PartitionId p, bool create) {
  auto it = n.parts.find(p);
  if (it != n.parts.end()) return &it->second;
  if (!create) return nullptr;
  PartHost& h = n.parts[p];
  h.replica =
      std::make_unique<Replica>(n.id, p, ropts_, chunkserver::RecoveredLog{{}, {}, {}, true});
  return &h;
}

void Sim::Handle(Node& n, PartitionId p, Effects fx) {
  PartHost& h = n.parts.at(p);
  for (auto& e : fx) {
    if (auto* a = std::get_if<chunkserver::AppendEffect>(&e)) {
      h.unsynced.push_back(WriteOp{a->seq, e});
      ScheduleSync(n);
    } else if (auto* t = std::get_if<chunkserver::TruncateEffect>(&e)) {
      h.unsynced.push_back(WriteOp{t->seq, e});
      ScheduleSync(n);
    } else if (auto* c = std::get_if<chunkserver::CompactEffect>(&e)) {
      h.unsynced.push_back(WriteOp{c->seq, e});
      ScheduleSync(n);
    } else if (auto* is = std::get_if<chunkserver::InstallSnapshotEffect>(&e)) {
      stats_->snapshots++;
      h.applied = snapshots_.at(std::stoull(is->snapshot.state));
      CAIRN_CHECK(h.applied.lsn == is->snapshot.lsn);
      h.unsynced.push_back(WriteOp{is->seq, e});
      ScheduleSync(n);
    } else if (auto* s = std::get_if<chunkserver::SendEffect>(&e)) {
      if (o_.bug == InjectedBug::kAckBeforeDurable) {
        // The bug: the receiver acknowledges on receipt.
        if (const auto* r = std::get_if<chunkserver::ReplicateMsg>(&s->msg)) {
          if (!r->entries.empty() && Reachable(n.id, s->to) && nodes_[s->to.value() - 1].up) {
            chunkserver::ReplicateAck ack{p, r->epoch, s->to, true, r->entries.back().lsn};
            Send(s->to, n.id, PeerMessage(ack));
          }
        }
      }
      Send(n.id, s->to, Message(s->msg));
    } else if (auto* ss = std::get_if<chunkserver::SendSnapshotEffect>(&e)) {
      CAIRN_CHECK(h.applied.lsn == ss->lsn)
          << "snapshot of state at " << h.applied.lsn << " asked at " << ss->lsn;
      const uint64_t id = snapshots_.size();
      snapshots_.push_back(h.applied);
      chunkserver::SnapshotMsg m{p, ss->epoch, n.id, ss->lsn, ss->lsn_epoch, std::to_string(id)};
      Send(n.id, ss->to, Message(PeerMessage(m)));
    } else if (auto* ap = std::get_if<chunkserver::ApplyEffect>(&e)) {
      const bool primary = h.replica->role() == ReplicaRole::kPrimary;
      h.applied.Apply(ap->entry);
      OnApplied(n, p, ap->entry, primary, h.replica->epoch());
    } else if (auto* r = std::get_if<chunkserver::ReplyEffect>(&e)) {
      auto it = tokens_.find(r->token);
      CAIRN_CHECK(it != tokens_.end());
      auto [client, attempt, rid] = it->second;
      tokens_.erase(it);
      if (r->status.ok()) OnAcked(p, r->lsn, rid);
      Send(n.id, NodeId(1001 + client), Message(WriteResp{client, attempt, r->status, r->lsn}));
    } else if (auto* mr = std::get_if<chunkserver::MetaRequestEffect>(&e)) {
      Send(n.id, kMeta, Message(MetaReq{mr->request}));
    }
  }
}

void Sim::ScheduleSync(Node& n) {
  if (n.sync_scheduled) return;
  n.sync_scheduled = true;
  const uint64_t inc = n.incarnation;
  After(Jitter(500, 4000), [this, id = n.id, inc] { Sync(nodes_[id.value() - 1], inc); });
}

void Sim::ApplyOp(DurableLog* d, const WriteOp& op, bool* dirty) {
  if (const auto* a = std::get_if<chunkserver::AppendEffect>(&op.effect)) {
    for (const LogEntry& e : a->entries) {
      CAIRN_CHECK(e.lsn == d->last().Next()) << "durable append gap";
      d->entries.push_back(e);
    }
  } else if (const auto* t = std::get_if<chunkserver::TruncateEffect>(&op.effect)) {
    CAIRN_CHECK(t->after >= d->base_lsn);
    while (d->last() > t->after) d->entries.pop_back();
    *dirty = true;
  } else if (const auto* c = std::get_if<chunkserver::CompactEffect>(&op.effect)) {
    while (d->base_lsn < c->through) {
      CAIRN_CHECK(!d->entries.empty()) << "compacting past the durable log";
      d->base.Apply(d->entries.front());
      d->entries.erase(d->entries.begin());
      d->base_lsn = d->base_lsn.Next();
    }
    d->base_epoch = c->through_epoch;
  } else if (const auto* is = std::get_if<chunkserver::InstallSnapshotEffect>(&op.effect)) {
    d->base = snapshots_.at(std::stoull(is->snapshot.state));
    d->base_lsn = is->snapshot.lsn;
    d->base_epoch = is->snapshot.lsn_epoch;
    d->entries.clear();
    *dirty = true;
  }
}

void Sim::Sync(Node& n, uint64_t incarnation) {
  if (!n.up || n.incarnation != incarnation) return;
  n.sync_scheduled = false;
  if (o_.faults && Now() < end_faults_ && rng_.OneIn(400) && DownCount() < o_.replication - 1) {
    // fsync failed: the error is sticky, the chunk server stops.
    Trace("node " + std::to_string(n.id.value()) + " fsync failed");
    Crash(n);
    return;
  }
  for (auto& [p, h] : n.parts) {
    if (h.unsynced.empty()) continue;
    bool dirty = false;
    for (const WriteOp& op : h.unsynced) ApplyOp(&h.durable, op, &dirty);
    const uint64_t seq = h.unsynced.back().seq;
    h.unsynced.clear();
    if (dirty) dirty_ = true;
    Handle(n, p, h.replica->OnDurable(seq, Local(n)));
  }
}

void Sim::Crash(Node& n) {
  stats_->crashes++;
  Trace("crash node " + std::to_string(n.id.value()));
  n.up = false;
  n.incarnation++;
  for (auto& [p, h] : n.parts) {
    // A random prefix of the unsynced writes reached the disk.
    const size_t keep = h.unsynced.empty() ? 0 : rng_.Uniform(h.unsynced.size() + 1);
    bool dirty = false;
    for (size_t i = 0; i < keep; ++i) ApplyOp(&h.durable, h.unsynced[i], &dirty);
    h.unsynced.clear();
    h.replica.reset();
  }
  dirty_ = true;
}

void Sim::Restart(Node& n) {
  if (n.up) return;
  Trace("restart node " + std::to_string(n.id.value()));
  BootNode(n);
}

void Sim::HeartbeatLoop(NodeId id, uint64_t incarnation) {
  Node& n = nodes_[id.value() - 1];
  if (!n.up || n.incarnation != incarnation) return;
  HeartbeatReq hb{id, incarnation, Local(n), {}};
  for (auto& [p, h] : n.parts) hb.reports.push_back(h.replica->Report());
  Send(id, kMeta, Message(hb));
  After(Jitter(450000, 550000), [this, id, incarnation] { HeartbeatLoop(id, incarnation); });
}

void Sim::TickLoop(NodeId id, uint64_t incarnation) {
  Node& n = nodes_[id.value() - 1];
  if (!n.up || n.incarnation != incarnation) return;
  for (auto& [p, h] : n.parts) Handle(n, p, h.replica->OnTick(Local(n)));
  After(Jitter(40000, 60000), [this, id, incarnation] { TickLoop(id, incarnation); });
}

void Sim::OnNodeMessage(Node& n, const Message& m, NodeId from) {
  if (const auto* pm = std::get_if<PeerMessage>(&m)) {
    const PartitionId p = chunkserver::PartitionOfMessage(*pm);
    PartHost* h = Part(n, p, false);
    if (h == nullptr) return;
    Handle(n, p, h->replica->OnMessage(*pm, Local(n)));
    if (const auto* sm = std::get_if<chunkserver::SnapshotMsg>(pm)) {
      // The host answers "done" to a snapshot's last chunk whatever the
      // replica made of it.
      Send(n.id, from, Message(SnapshotDone{p, n.id, sm->lsn}));
    }
  } else if (const auto* sd = std::get_if<SnapshotDone>(&m)) {
    PartHost* h = Part(n, sd->partition, false);
    if (h != nullptr) {
      Handle(n, sd->partition, h->replica->OnSnapshotDelivered(sd->peer, sd->lsn, Local(n)));
    }
  } else if (const auto* w = std::get_if<WriteReq>(&m)) {
    PartHost* h = Part(n, w->partition, false);
    const uint64_t token = next_token_++;
    tokens_[token] = {w->client, w->attempt, w->rid};
    if (h == nullptr) {
      tokens_.erase(token);
      Send(n.id, from,
           Message(WriteResp{w->client, w->attempt, Status(StatusCode::kNotPrimary, "no replica"),
                             Lsn()}));
      return;
    }
    // The host answers a retry of an applied request from the applied state
    // (the doc store's FindRequest), but only as the serving primary.
    auto d = h->applied.dedup.find(w->rid);
    if (d != h->applied.dedup.end() && h->replica->CheckRead(Local(n)).ok()) {
      Effects fx;
      fx.push_back(chunkserver::ReplyEffect{token, Status::Ok(), d->second});
      Handle(n, w->partition, std::move(fx));
      return;
    }
    Handle(n, w->partition, h->replica->OnClientMutation(token, w->rid, w->payload, Local(n)));
  } else if (const auto* r = std::get_if<ReadReq>(&m)) {
    CheckRead(n, r->partition, r->key);
  } else if (const auto* hr = std::get_if<HeartbeatResp>(&m)) {
    if (hr->incarnation != n.incarnation) return;  // answer to a previous life
    for (const ReplicaConfig& c : hr->configs) {
      const bool member = std::find(c.replicas.begin(), c.replicas.end(), n.id) != c.replicas.end();
      PartHost* h = Part(n, c.partition, member);
      if (h == nullptr) continue;
      Handle(n, c.partition, h->replica->OnConfig(c, Local(n)));
    }
    for (const auto& g : hr->grants) {
      PartHost* h = Part(n, g.partition, false);
      if (h != nullptr) Handle(n, g.partition, h->replica->OnLease(g.epoch, hr->sent_at, Local(n)));
    }
  }
}

// ---------------------------------------------------------------- metaserver

void Sim::MetaTick() {
  if (meta_up_) {
    const Nanos now = Now();
    Result<metaserver::ClusterMap> r =
        cs_->ChangeMap("failover plan", [&](metaserver::ClusterMap& m, bool* changed) {
          *changed = fo_->Plan(&m, now);
          return Status::Ok();
        });
    if (!r.ok()) Fail("metaserver plan failed: " + r.status().ToString());
    NoteMap();
  }
  After(100ms, [this] { MetaTick(); });
}

void Sim::OnMetaMessage(const Message& m, NodeId from) {
  if (const auto* hb = std::get_if<HeartbeatReq>(&m)) {
    std::vector<metaserver::PartitionReport> reports;
    for (const auto& r : hb->reports) {
      reports.push_back(metaserver::PartitionReport{r.partition, r.epoch,
                                                    r.role == ReplicaRole::kPrimary, r.last_lsn,
                                                    r.commit_lsn, r.can_lead});
    }
    HeartbeatResp resp{hb->incarnation, hb->sent_at, {}, {}};
    resp.grants = fo_->OnHeartbeat(map_, hb->node, reports, Now());
    for (const auto& p : map_.partitions) {
      resp.configs.push_back(ReplicaConfig{p.id, p.epoch, p.replicas, p.in_sync});
    }
    Send(kMeta, from, Message(resp));
  } else if (const auto* mr = std::get_if<MetaReq>(&m)) {
    const auto& q = mr->request;
    metaserver::InSyncChange c{q.kind == chunkserver::InSyncRequest::Kind::kDrop
                                   ? metaserver::InSyncChange::Kind::kDrop
                                   : metaserver::InSyncChange::Kind::kJoin,
                               q.partition, q.epoch, q.primary, q.node};
    Result<metaserver::ClusterMap> r =
        cs_->ChangeMap("in-sync change", [&](metaserver::ClusterMap& map, bool* changed) {
          return fo_->ApplyInSyncChange(&map, c, Now(), changed);
        });
    (void)r;  // a refusal is normal: the primary learns the map at its next heartbeat
    NoteMap();
  }
}

// ---------------------------------------------------------------- clients

void Sim::RefreshView(Client& c) {
  c.primary_of.clear();
  for (const auto& p : map_.partitions) {
    c.primary_of.push_back(p.replicas.empty() ? NodeId() : p.replicas[0]);
  }
}

void Sim::ReadLoop(Client& c) {
  if (!load_on_ || Now() >= end_load_) return;
  // Reads go, independently of the writes, to whoever the client's cached
  // map names: after a failover, often a deposed primary.
  if (c.read_view.empty() || rng_.OneIn(100)) {
    c.read_view.clear();
    for (const auto& p : map_.partitions) {
      c.read_view.push_back(p.replicas.empty() ? NodeId() : p.replicas[0]);
    }
  }
  const uint64_t k = rng_.Uniform(o_.partitions * 4);
  const PartitionId p(static_cast<uint32_t>(k % o_.partitions));
  if (c.read_view[p.value()].value() != 0) {
    Send(NodeId(1001 + c.id), c.read_view[p.value()], Message(ReadReq{p, "k" + std::to_string(k)}));
  }
  After(Jitter(2000, 20000), [this, &c] { ReadLoop(c); });
}

void Sim::ClientStep(Client& c) {
  if (!load_on_ || Now() >= end_load_) return;
  if (c.primary_of.empty() || rng_.OneIn(30)) RefreshView(c);
  const uint64_t k = rng_.Uniform(o_.partitions * 4);
  const PartitionId p(static_cast<uint32_t>(k % o_.partitions));
  const std::string key = "k" + std::to_string(k);
  PendingWrite& w = c.write;
  w.active = true;
  w.attempts = 0;
  w.partition = p;
  w.key = key;
  w.value = "v" + std::to_string(c.id) + "." + std::to_string(++c.seq);
  w.rid = RequestId{0xC1, c.id, c.seq};
  issued_[w.rid] = {w.key, w.value};
  ClientSend(c);
}

void Sim::ClientSend(Client& c) {
  PendingWrite& w = c.write;
  if (!w.active) return;
  if (++w.attempts > 60) {  // give up: the outcome stays unknown
    w.active = false;
    After(Jitter(5000, 30000), [this, &c] { ClientStep(c); });
    return;
  }
  w.attempt++;
  if (w.attempts > 1) RefreshView(c);
  w.sent_to = c.primary_of[w.partition.value()];
  if (w.sent_to.value() == 0) return;
  Send(NodeId(1001 + c.id), w.sent_to,
       Message(WriteReq{c.id, w.attempt, w.partition, w.rid, w.key + "\n" + w.value}));
  const uint64_t attempt = w.attempt;
  After(500ms, [this, &c, attempt] {
    if (c.write.active && c.write.attempt == attempt) ClientSend(c);  // timed out: retry
  });
}

void Sim::OnClientReply(Client& c, const WriteResp& r) {
  PendingWrite& w = c.write;
  if (!w.active || r.attempt != w.attempt) return;
  if (r.status.ok()) {
    auto h = history_[w.partition].find(r.lsn);
    if (h == history_[w.partition].end() || h->second.rid != w.rid) {
      Fail("client got OK with lsn " + std::to_string(r.lsn.value()) +
           " that does not hold its request");
    }
    w.active = false;
    After(Jitter(1000, 20000), [this, &c] { ClientStep(c); });
    return;
  }
  const uint64_t attempt = w.attempt;
  After(Jitter(20000, 80000), [this, &c, attempt] {
    if (c.write.active && c.write.attempt == attempt) ClientSend(c);
  });
}

// ---------------------------------------------------------------- faults

uint32_t Sim::DownCount() const {
  uint32_t down = 0;
  for (const Node& n : nodes_) {
    if (!n.up || isolated_.contains(n.id.value()) || cluster_cut_.contains(n.id.value())) down++;
  }
  // A node cut from some peers or the metaserver counts as down too.
  std::set<uint32_t> cut_nodes;
  for (auto [a, b] : cut_) {
    if (a != 0) cut_nodes.insert(a);
    if (b != 0) cut_nodes.insert(b);
  }
  for (uint32_t id : cut_nodes) {
    if (nodes_[id - 1].up && !isolated_.contains(id) && !cluster_cut_.contains(id)) down++;
  }
  return down;
}

void Sim::FaultStep() {
  if (Now() >= end_faults_) return;
  After(Jitter(100000, 600000), [this] { FaultStep(); });
  const uint64_t kind = rng_.Uniform(100);
  const uint32_t budget = o_.replication - 1;
  Node& n = nodes_[rng_.Uniform(nodes_.size())];
  const uint32_t id = n.id.value();
  if (kind < 30) {  // crash, restart later
    if (!n.up || DownCount() >= budget) return;
    Crash(n);
    Nanos down = rng_.OneIn(5) ? Jitter(3000000, 12000000) : Jitter(50000, 3000000);
    After(down, [this, &n] { Restart(n); });
  } else if (kind < 45) {  // isolate a node from everyone
    if (!n.up || isolated_.contains(id) || DownCount() >= budget) return;
    isolated_.insert(id);
    Trace("isolate node " + std::to_string(id));
    After(Jitter(200000, 5000000), [this, id] {
      isolated_.erase(id);
      Trace("heal node " + std::to_string(id));
    });
  } else if (kind < 60) {  // cut a node from the metaserver, or from one peer
    const uint32_t other =
        rng_.OneIn(2) ? 0 : static_cast<uint32_t>(1 + rng_.Uniform(nodes_.size()));
    if (other == id || DownCount() >= budget) return;
    const std::pair<uint32_t, uint32_t> key{std::min(id, other), std::max(id, other)};
    cut_.insert(key);
    Trace("cut " + std::to_string(id) + "-" + std::to_string(other));
    After(Jitter(200000, 4000000), [this, key] { cut_.erase(key); });
  } else if (kind < 72) {  // a node stays with the clients, cut from the cluster
    if (!n.up || cluster_cut_.contains(id) || DownCount() >= budget) return;
    cluster_cut_.insert(id);
    Trace("cluster-cut node " + std::to_string(id));
    After(Jitter(500000, 6000000), [this, id] { cluster_cut_.erase(id); });
  } else if (kind < 76) {  // the metaserver leader changes: soft state lost
    if (!meta_up_) return;
    meta_up_ = false;
    Trace("metaserver down");
    After(Jitter(100000, 2000000), [this] {
      meta_up_ = true;
      StartMeta();
      Trace("metaserver up (new leader)");
    });
  }
}

// ---------------------------------------------------------------- invariants

void Sim::OnApplied(Node& n, PartitionId p, const LogEntry& e, bool primary_commit, Epoch epoch) {
  auto& hist = history_[p];
  auto it = hist.find(e.lsn);
  if (it == hist.end()) {
    hist.emplace(e.lsn, CommittedEntry{e.epoch, e.request_id, e.payload});
  } else if (it->second.epoch != e.epoch || it->second.rid != e.request_id ||
             it->second.payload != e.payload) {
    Fail("partition " + std::to_string(p.value()) + ": node " + std::to_string(n.id.value()) +
         " committed a different entry at lsn " + std::to_string(e.lsn.value()));
  }
  if (primary_commit) {
    auto [c, inserted] = committer_.emplace(std::make_pair(p, epoch), n.id);
    if (!inserted && c->second != n.id) {
      Fail("partition " + std::to_string(p.value()) + ": nodes " +
           std::to_string(c->second.value()) + " and " + std::to_string(n.id.value()) +
           " both committed in epoch " + std::to_string(epoch.value()));
    }
  }
}

bool Sim::DurableHas(NodeId node, PartitionId p, Lsn lsn, const RequestId& rid) {
  Node& n = nodes_[node.value() - 1];
  auto it = n.parts.find(p);
  if (it == n.parts.end()) return false;
  const DurableLog& d = it->second.durable;
  if (lsn <= d.base_lsn) {
    auto r = d.base.dedup.find(rid);
    return r != d.base.dedup.end() && r->second == lsn;
  }
  if (lsn > d.last()) return false;
  return d.entries[lsn.value() - d.base_lsn.value() - 1].request_id == rid;
}

void Sim::OnAcked(PartitionId p, Lsn lsn, const RequestId& rid) {
  stats_->writes_acked++;
  auto [it, inserted] = acked_[p].emplace(lsn, rid);
  if (!inserted && it->second != rid) Fail("two requests acknowledged at one lsn");
  const auto& kv = issued_.at(rid);
  Lsn& latest = latest_ack_[{p, kv.first}];
  latest = std::max(latest, lsn);
  NoteMap();
  for (NodeId n : map_.partitions[p.value()].in_sync) {
    if (!DurableHas(n, p, lsn, rid)) {
      Fail("partition " + std::to_string(p.value()) + ": acknowledged lsn " +
           std::to_string(lsn.value()) + " is not on the disk of in-sync replica " +
           std::to_string(n.value()));
    }
  }
}

void Sim::CheckAllAcked() {
  dirty_ = false;
  for (const auto& [p, acks] : acked_) {
    for (NodeId n : map_.partitions[p.value()].in_sync) {
      for (const auto& [lsn, rid] : acks) {
        if (!DurableHas(n, p, lsn, rid)) {
          Fail("partition " + std::to_string(p.value()) + ": acknowledged lsn " +
               std::to_string(lsn.value()) + " missing from the disk of in-sync replica " +
               std::to_string(n.value()));
          return;
        }
      }
    }
  }
}

void Sim::CheckRead(Node& n, PartitionId p, const std::string& key) {
  PartHost* h = Part(n, p, false);
  if (h == nullptr || !h->replica->CheckRead(Local(n)).ok()) return;
  stats_->reads_checked++;
  auto it = h->applied.docs.find(key);
  const Lsn got = it == h->applied.docs.end() ? Lsn() : it->second.lsn;
  auto la = latest_ack_.find({p, key});
  if (la != latest_ack_.end() && got < la->second) {
    Fail("partition " + std::to_string(p.value()) + ": primary " + std::to_string(n.id.value()) +
         " read " + key + " at lsn " + std::to_string(got.value()) +
         " older than the acknowledged lsn " + std::to_string(la->second.value()));
  }
}

void Sim::FinalChecks() {
  NoteMap();
  for (const auto& pe : map_.partitions) {
    const PartitionId p = pe.id;
    const std::string where = "partition " + std::to_string(p.value());
    Node& pn = nodes_[pe.replicas[0].value() - 1];
    PartHost* ph = Part(pn, p, false);
    if (!pn.up || ph == nullptr || ph->replica->role() != ReplicaRole::kPrimary ||
        !ph->replica->active()) {
      Fail(where + ": no active primary after the quiet phase");
      return;
    }
    if (pe.in_sync.size() < o_.replication) {
      Fail(where + ": only " + std::to_string(pe.in_sync.size()) +
           " in-sync replicas after the quiet phase");
      return;
    }
    const Replica& pr = *ph->replica;
    if (pr.commit_lsn() != pr.last_lsn()) {
      Fail(where + ": primary has uncommitted entries after the quiet phase");
    }
    // Converged: every in-sync replica has applied the same state.
    for (NodeId r : pe.in_sync) {
      PartHost* h = Part(nodes_[r.value() - 1], p, false);
      if (h == nullptr || h->replica->last_lsn() != pr.last_lsn() ||
          h->applied.lsn != ph->applied.lsn) {
        Fail(where + ": replica " + std::to_string(r.value()) + " did not converge (applied " +
             std::to_string(h == nullptr ? 0 : h->applied.lsn.value()) + ", primary " +
             std::to_string(ph->applied.lsn.value()) + ")");
        return;
      }
      for (const auto& [k, d] : ph->applied.docs) {
        auto it = h->applied.docs.find(k);
        if (it == h->applied.docs.end() || it->second.lsn != d.lsn || it->second.value != d.value) {
          Fail(where + ": replica " + std::to_string(r.value()) + " differs on " + k);
          return;
        }
      }
      if (h->applied.docs.size() != ph->applied.docs.size() ||
          h->applied.dedup != ph->applied.dedup) {
        Fail(where + ": replica " + std::to_string(r.value()) + " state differs");
        return;
      }
    }
    // Every acknowledged write is in the final history, and the final value
    // of each key is its last committed write.
    for (const auto& [lsn, rid] : acked_[p]) {
      auto d = ph->applied.dedup.find(rid);
      if (d == ph->applied.dedup.end() || d->second != lsn) {
        Fail(where + ": acknowledged lsn " + std::to_string(lsn.value()) + " lost");
        return;
      }
    }
    for (const auto& [key, lsn] : latest_ack_) {
      if (key.first != p) continue;
      auto it = ph->applied.docs.find(key.second);
      if (it == ph->applied.docs.end() || it->second.lsn < lsn) {
        Fail(where + ": " + key.second + " lost its acknowledged value");
        return;
      }
    }
  }
}

Status Sim::Run() {
  ropts_.log_retention = 32;  // small: catch-up by snapshot happens
  fopts_.replication = o_.replication;
  fopts_.replacement_timeout = 8s;  // short, so replacement happens within a run
  CAIRN_CHECK(fopts_.Validate().ok());
  // Register the nodes, which places the partitions (R replicas each).
  StartMeta();
  for (uint32_t i = 0; i < o_.nodes; ++i) {
    Result<NodeId> id =
        cs_->RegisterNode("n" + std::to_string(i + 1), "127.0.0." + std::to_string(i + 1), 7100);
    CAIRN_CHECK(id.ok() && id->value() == i + 1) << id.status().ToString();
    nodes_.emplace_back();
    nodes_.back().id = *id;
  }
  StartMeta();  // reload the placed map; a fresh leader
  for (Node& n : nodes_) BootNode(n);
  for (uint32_t i = 0; i < o_.clients; ++i) {
    clients_.emplace_back();
    clients_.back().id = i;
  }
  const Nanos start = Now();
  end_faults_ = start + o_.fault_phase;
  end_load_ = start + o_.fault_phase + o_.quiet_phase / 2;
  const Nanos end = start + o_.fault_phase + o_.quiet_phase;
  for (Client& c : clients_) {
    After(Jitter(100000, 3000000), [this, &c] { ClientStep(c); });
    After(Jitter(100000, 3000000), [this, &c] { ReadLoop(c); });
  }
  After(100ms, [this] { MetaTick(); });
  if (o_.faults) After(2s, [this] { FaultStep(); });
  // Heal everything at the end of the fault phase.
  At(end_faults_, [this] {
    cut_.clear();
    isolated_.clear();
    cluster_cut_.clear();
    if (!meta_up_) {
      meta_up_ = true;
      StartMeta();
    }
    for (Node& n : nodes_) Restart(n);
  });
  while (!queue_.empty() && failure_.empty()) {
    Event e = queue_.top();
    if (e.at > end) break;
    queue_.pop();
    if (e.at > Now()) clock_.Advance(e.at - Now());
    e.fn();
    stats_->events++;
    if (dirty_ && failure_.empty()) CheckAllAcked();
  }
  if (failure_.empty()) FinalChecks();
  if (!failure_.empty()) return Status::Internal(failure_);
  return Status::Ok();
}

}  // namespace

Status RunSimulation(const SimOptions& options, SimStats* stats) {
  SimStats ignored;
  Sim sim(options, stats != nullptr ? stats : &ignored);
  return sim.Run();
}

}  // namespace cairn::sim
