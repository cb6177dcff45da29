// FailoverLogic: the metaserver leader's replication decisions
// (docs/design-replication.md "Metaserver"). I/O-free: it keeps the soft
// state a leader learns from heartbeats (each node's last heartbeat and its
// replicas' reports, the leases it granted) and decides changes to the
// cluster map; the caller stores every change with a compare-and-swap
// (ClusterState::ChangeMap), so a decision taken on a stale map is retried on
// the fresh one or refused.
//
// Rules (each one is argued in the design page):
//  - A lease is granted, with a heartbeat answer, only to the map's primary
//    of a partition that reports itself primary of the map's epoch. The
//    leader remembers when it granted it (its own clock, at receipt).
//  - A node is failed when no heartbeat came for failure_timeout.
//  - Promotion: when a partition's primary is failed or reports it cannot
//    lead, and the last lease granted for the partition (and this leader's
//    start) is older than the lease length, the live in-sync replica that can
//    lead with the highest reported last LSN becomes primary in epoch + 1;
//    in-sync replicas that are failed leave the in-sync set in that change.
//  - A failed in-sync backup leaves the in-sync set (new epoch).
//  - A primary's InSync request (drop or join) is applied only if the map is
//    still at its epoch with it as primary; each applied request is a new
//    epoch. A join of a failed node is refused: the leader would drop it again
//    at once, and the primary, which may still reach that node, would ask
//    again: a new epoch every few hundred ms, each one costing the clients a
//    retry and the primary its activity (writes were unavailable for tens of
//    seconds while a node was cut from the metaserver only).
//  - Replacement: a replica failed for replacement_timeout gets a new replica
//    (a learner, on the live node with the fewest replicas, new epoch); once
//    the partition has `replication` in-sync replicas, failed replicas
//    outside the in-sync set are removed.
//
// Thread-compatible: the metaserver calls it under its own lock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/strong_id.h"
#include "metaserver/cluster_map.h"

namespace cairn::metaserver {

struct FailoverOptions {
  Nanos heartbeat_interval = std::chrono::milliseconds(500);  // chunk servers send this often
  Nanos failure_timeout = std::chrono::milliseconds(2000);
  Nanos lease = std::chrono::milliseconds(2000);  // as granted; >= what a primary uses
  Nanos replacement_timeout = std::chrono::seconds(30);
  uint32_t replication = 3;
  // InvalidArgument unless 0 < heartbeat < failure timeout, lease <=
  // failure timeout, failure timeout <= replacement timeout, 1 <= R <= 5.
  Status Validate() const;
};

// One replica's state as a heartbeat reports it.
struct PartitionReport {
  PartitionId partition;
  Epoch epoch;
  bool primary = false;  // acting primary of `epoch`
  Lsn last_lsn;
  Lsn commit_lsn;
  bool can_lead = true;  // false: restarted, will not lead epochs it saw before
};

// A primary's request to change the in-sync set.
struct InSyncChange {
  enum class Kind : uint8_t { kDrop, kJoin };
  Kind kind = Kind::kDrop;
  PartitionId partition;
  Epoch epoch;
  NodeId primary;
  NodeId node;
};

struct PrimaryLease {
  PartitionId partition;
  Epoch epoch;
};

class FailoverLogic {
 public:
  // `start` is when this leader began (its clock): it grants no promotion
  // before start + lease (an earlier leader may have granted leases), and
  // counts every node as heard at `start`.
  FailoverLogic(FailoverOptions options, Nanos start);

  // Records a heartbeat of `node` at `now`; returns the leases granted.
  std::vector<PrimaryLease> OnHeartbeat(const ClusterMap& map, NodeId node,
                                        const std::vector<PartitionReport>& reports, Nanos now);

  // Applies a primary's request, received at `now`, to `map` (a copy the
  // caller will CAS). Sets *changed when it did; StaleEpoch / NotPrimary /
  // FailedPrecondition when the request no longer fits the map;
  // FailedPrecondition for a join of a node that is failed at `now` (the
  // primary asks again later, and it goes through once the node is heard).
  Status ApplyInSyncChange(ClusterMap* map, const InSyncChange& change, Nanos now,
                           bool* changed) const;

  // Promotions, drops of failed in-sync backups and replacements due at
  // `now`, applied to `map`; returns whether it changed anything.
  bool Plan(ClusterMap* map, Nanos now) const;

  bool Alive(NodeId node, Nanos now) const;
  const FailoverOptions& options() const { return options_; }

 private:
  struct NodeSoft {
    Nanos last_heartbeat{0};
    std::map<PartitionId, PartitionReport> reports;
  };
  struct LeaseRecord {
    NodeId node;
    Nanos granted{0};
  };
  Nanos LastHeard(NodeId node) const;
  const PartitionReport* ReportOf(NodeId node, PartitionId p) const;
  bool PlanPartition(ClusterMap* map, PartitionEntry* p, Nanos now) const;

  const FailoverOptions options_;
  const Nanos start_;
  std::map<NodeId, NodeSoft> nodes_;
  std::map<PartitionId, LeaseRecord> leases_;
};

}  // namespace cairn::metaserver
