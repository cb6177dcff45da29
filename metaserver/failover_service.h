// FailoverService: the metaserver leader's replication decisions
// (FailoverLogic, failover.h) put to work on the real cluster map
// (ClusterState). Still no sockets and no threads: the MetaService adapter
// calls OnHeartbeat and ChangeInSync, the daemon's failover timer calls Plan
// every heartbeat_interval / 2, and the election calls BecameLeader /
// LostLeadership (docs/design-replication.md "Phase 2").
//
// Soft state: one FailoverLogic per leadership term, created by BecameLeader
// with start = now (it names no primary before start + lease: an earlier
// leader may have granted leases it does not know about) and dropped by
// LostLeadership. Every map change goes through ClusterState::ChangeMap (a
// compare-and-swap fenced by the leadership key, retried on a fresh map).
//
// Why one mutex across the map write: a lease must never be granted on a map
// older than a promotion being stored. mu_ is held from the decision through
// the compare-and-swap, and OnHeartbeat reads the map under mu_, so a
// heartbeat that arrives during a promotion sees the new epoch and gets no
// lease for the old one. The cost is that heartbeats wait for a failover
// write (rare: a store round trip). When a map write fails without a known
// outcome (the store did not answer, and the cache may be older than what it
// holds), no lease is granted until a later planning round has read or
// written the map again.
//
// Thread-safety: every method is thread-safe. Lock order: mu_ before
// ClusterState's locks (write_mu_, mu_).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/logging.h"
#include "common/mutex.h"
#include "common/status.h"
#include "metaserver/cluster_state.h"
#include "metaserver/failover.h"

namespace cairn::metaserver {

class FailoverService {
 public:
  // `state` and `clock` are borrowed and must outlive this object. `options`
  // must be valid (FailoverOptions::Validate).
  FailoverService(ClusterState* state, Clock* clock, FailoverOptions options);
  FailoverService(const FailoverService&) = delete;
  FailoverService& operator=(const FailoverService&) = delete;

  // This process now leads and has loaded the map: a fresh FailoverLogic
  // with start = now.
  void BecameLeader() EXCLUDES(mu_);
  // Leadership ended: forget the soft state; every call but BecameLeader
  // answers Unavailable until the next term.
  void LostLeadership() EXCLUDES(mu_);

  // Records a heartbeat of `node` (already authenticated and recorded by
  // ClusterState::Heartbeat) with its replicas' reports; returns the leases
  // granted. Unavailable when not leading.
  Result<std::vector<PrimaryLease>> OnHeartbeat(NodeId node,
                                                const std::vector<PartitionReport>& reports)
      EXCLUDES(mu_);

  // A primary's in-sync request from the node whose certificate names
  // `caller_name`; returns the new map version. PermissionDenied when
  // change.primary is not the caller's node; StaleEpoch / NotPrimary /
  // FailedPrecondition / InvalidArgument when the request does not fit the
  // map (FailoverLogic::ApplyInSyncChange); Unavailable when not leading or
  // the store refuses.
  Result<uint64_t> ChangeInSync(std::string_view caller_name, const InSyncChange& change)
      EXCLUDES(mu_);

  // One planning round at the clock's now: promotions, drops of failed
  // in-sync backups, replacements. Returns whether the map changed.
  // Unavailable when not leading; the store's errors.
  Result<bool> Plan() EXCLUDES(mu_);

  const FailoverOptions& options() const { return options_; }

 private:
  ClusterState* const state_;
  Clock* const clock_;
  const FailoverOptions options_;
  const Logger log_;

  Mutex mu_;  // before ClusterState's locks; held across failover map writes
  std::unique_ptr<FailoverLogic> logic_ GUARDED_BY(mu_);  // null: not leading
  // A map write ended without a known outcome: the cached map may be older
  // than the store's, so no lease is granted until Plan has re-read it.
  bool map_uncertain_ GUARDED_BY(mu_) = false;

  // Records an error of ClusterState::ChangeMap: anything but the logic's own
  // refusals may have left the cache behind the store.
  void NoteWriteError(const Status& s) REQUIRES(mu_);
};

}  // namespace cairn::metaserver
