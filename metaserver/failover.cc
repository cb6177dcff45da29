#include "metaserver/failover.h"

#include <algorithm>
#include <string>

namespace cairn::metaserver {
namespace {

bool Contains(const std::vector<NodeId>& v, NodeId n) {
  return std::find(v.begin(), v.end(), n) != v.end();
}

void Erase(std::vector<NodeId>* v, NodeId n) {
  v->erase(std::remove(v->begin(), v->end(), n), v->end());
}

}  // namespace

Status FailoverOptions::Validate() const {
  if (heartbeat_interval <= Nanos(0) || heartbeat_interval >= failure_timeout) {
    return Status::InvalidArgument("need 0 < heartbeat interval < failure timeout");
  }
  if (lease <= Nanos(0) || lease > failure_timeout) {
    return Status::InvalidArgument("need 0 < lease <= failure timeout");
  }
  if (replacement_timeout < failure_timeout) {
    return Status::InvalidArgument("need failure timeout <= replacement timeout");
  }
  if (replication < 1 || replication > 5) {
    return Status::InvalidArgument("replication must be 1..5, got " + std::to_string(replication));
  }
  return Status::Ok();
}

FailoverLogic::FailoverLogic(FailoverOptions options, Nanos start)
    : options_(options), start_(start) {}

Nanos FailoverLogic::LastHeard(NodeId node) const {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return start_;
  return std::max(start_, it->second.last_heartbeat);
}

bool FailoverLogic::Alive(NodeId node, Nanos now) const {
  return now - LastHeard(node) < options_.failure_timeout;
}

const PartitionReport* FailoverLogic::ReportOf(NodeId node, PartitionId p) const {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return nullptr;
  auto r = it->second.reports.find(p);
  return r == it->second.reports.end() ? nullptr : &r->second;
}

std::vector<PrimaryLease> FailoverLogic::OnHeartbeat(const ClusterMap& map, NodeId node,
                                                     const std::vector<PartitionReport>& reports,
                                                     Nanos now) {
  NodeSoft& soft = nodes_[node];
  soft.last_heartbeat = std::max(soft.last_heartbeat, now);
  std::vector<PrimaryLease> grants;
  for (const PartitionReport& r : reports) {
    soft.reports[r.partition] = r;
    if (r.partition.value() >= map.partitions.size()) continue;
    const PartitionEntry& p = map.partitions[r.partition.value()];
    if (r.primary && r.epoch == p.epoch && !p.replicas.empty() && p.replicas[0] == node) {
      // Recorded at receipt: later than the primary's own start of the lease.
      leases_[r.partition] = LeaseRecord{node, now};
      grants.push_back(PrimaryLease{r.partition, r.epoch});
    }
  }
  return grants;
}

Status FailoverLogic::ApplyInSyncChange(ClusterMap* map, const InSyncChange& c, Nanos now,
                                        bool* changed) const {
  *changed = false;
  if (c.partition.value() >= map->partitions.size()) {
    return Status::InvalidArgument("no partition " + std::to_string(c.partition.value()));
  }
  PartitionEntry& p = map->partitions[c.partition.value()];
  const std::string where = "partition " + std::to_string(c.partition.value());
  if (p.epoch != c.epoch) {
    return Status(StatusCode::kStaleEpoch, where + ": request for epoch " +
                                               std::to_string(c.epoch.value()) + ", map at " +
                                               std::to_string(p.epoch.value()));
  }
  if (p.replicas.empty() || p.replicas[0] != c.primary) {
    return Status(StatusCode::kNotPrimary, where + ": the requester is not the primary");
  }
  if (c.node == c.primary || !Contains(p.replicas, c.node)) {
    return Status::FailedPrecondition(where + ": node " + std::to_string(c.node.value()) +
                                      " is not a backup of the partition");
  }
  if (c.kind == InSyncChange::Kind::kJoin && !Contains(p.in_sync, c.node) && !Alive(c.node, now)) {
    // PlanPartition would drop it again in the next round (see the header).
    return Status::FailedPrecondition(where + ": node " + std::to_string(c.node.value()) +
                                      " is failed (no heartbeat); it joins once it is heard");
  }
  if (c.kind == InSyncChange::Kind::kDrop) {
    Erase(&p.in_sync, c.node);
  } else if (!Contains(p.in_sync, c.node)) {
    p.in_sync.push_back(c.node);
  }
  // Always a new epoch, even when the set is unchanged: the primary learns the
  // outcome of its request from the epoch, and a duplicate of the request
  // (same epoch) is refused.
  p.epoch = p.epoch.Next();
  *changed = true;
  return Status::Ok();
}

bool FailoverLogic::PlanPartition(ClusterMap* map, PartitionEntry* p, Nanos now) const {
  if (p->replicas.empty()) return false;
  const NodeId primary = p->replicas[0];
  const PartitionReport* pr = ReportOf(primary, p->id);
  const bool cannot_lead = pr != nullptr && pr->epoch == p->epoch && !pr->can_lead;
  if (!Alive(primary, now) || cannot_lead) {
    // Promotion, once no lease this leader (or an earlier one) granted can
    // still be held.
    Nanos lease_end = start_ + options_.lease;
    auto l = leases_.find(p->id);
    if (l != leases_.end()) lease_end = std::max(lease_end, l->second.granted + options_.lease);
    if (now < lease_end) return false;
    NodeId best;
    Lsn best_lsn;
    bool found = false;
    for (NodeId n : p->in_sync) {
      if (!Alive(n, now)) continue;
      const PartitionReport* r = ReportOf(n, p->id);
      if (r == nullptr) continue;
      if (!r->can_lead && n != primary) continue;  // not yet configured since a restart
      if (n == primary && !Alive(primary, now)) continue;
      if (!found || r->last_lsn > best_lsn) {
        best = n;
        best_lsn = r->last_lsn;
        found = true;
      }
    }
    if (!found) return false;  // unavailable until an in-sync replica is back
    std::vector<NodeId> replicas{best};
    for (NodeId n : p->replicas) {
      if (n != best) replicas.push_back(n);
    }
    std::vector<NodeId> in_sync{best};
    for (NodeId n : p->in_sync) {
      if (n != best && Alive(n, now)) in_sync.push_back(n);
    }
    p->replicas = std::move(replicas);
    p->in_sync = std::move(in_sync);
    p->epoch = p->epoch.Next();
    return true;
  }
  // Failed in-sync backups leave the set (the primary would ask anyway).
  bool changed = false;
  std::vector<NodeId> in_sync;
  for (NodeId n : p->in_sync) {
    if (n == primary || Alive(n, now)) {
      in_sync.push_back(n);
    } else {
      changed = true;
    }
  }
  if (changed) {
    p->in_sync = std::move(in_sync);
    p->epoch = p->epoch.Next();
    return true;
  }
  // Replacement.
  auto long_gone = [&](NodeId n) { return now - LastHeard(n) >= options_.replacement_timeout; };
  if (p->replicas.size() <= options_.replication) {
    // Fewer replicas than R (placed while fewer nodes had registered), or one
    // away past the replacement timeout: a learner on another live node.
    bool need = p->replicas.size() < options_.replication;
    for (NodeId n : p->replicas) {
      if (n != primary && long_gone(n) && !Contains(p->in_sync, n)) need = true;
    }
    if (!need) return false;
    std::map<NodeId, size_t> load;
    for (const PartitionEntry& q : map->partitions) {
      for (NodeId n : q.replicas) load[n]++;
    }
    NodeId pick;
    size_t pick_load = 0;
    for (const NodeEntry& n : map->nodes) {
      if (Contains(p->replicas, n.id) || !Alive(n.id, now)) continue;
      if (!pick.value() || load[n.id] < pick_load) {
        pick = n.id;
        pick_load = load[n.id];
      }
    }
    if (!pick.value()) return false;
    p->replicas.push_back(pick);  // a learner: joins through its primary
    p->epoch = p->epoch.Next();
    return true;
  }
  if (p->in_sync.size() >= options_.replication) {
    std::vector<NodeId> replicas;
    for (NodeId n : p->replicas) {
      if (Contains(p->in_sync, n) || !long_gone(n)) replicas.push_back(n);
    }
    if (replicas.size() != p->replicas.size()) {
      p->replicas = std::move(replicas);
      p->epoch = p->epoch.Next();
      return true;
    }
  }
  return false;
}

bool FailoverLogic::Plan(ClusterMap* map, Nanos now) const {
  bool changed = false;
  for (PartitionEntry& p : map->partitions) changed |= PlanPartition(map, &p, now);
  return changed;
}

}  // namespace cairn::metaserver
