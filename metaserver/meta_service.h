// The MetaService Thrift adapter (thrift/meta.thrift): authorizes the caller
// (docs/design-store.md "Who may call what"), checks leadership, converts
// between Thrift and plain types and calls ClusterState. No logic of its own.
//
// Thread-safety: called concurrently from every connection thread; every
// object it borrows is thread-safe.
#pragma once

#include <functional>

#include "MetaService.h"
#include "common/logging.h"
#include "metaserver/cluster_state.h"
#include "metaserver/failover_service.h"

namespace cairn::metaserver {

class MetaServiceHandler final : public rpc::MetaServiceIf {
 public:
  // OK when this process leads; Unavailable naming the leader otherwise
  // (LeaderElection::CheckLeader). Empty: always leading.
  using LeaderCheck = std::function<Status()>;

  // `state`, `probe` and `failover` are borrowed and must outlive the
  // handler. A null `failover` (the `failover` option off) keeps the
  // replication fields of heartbeats unread and refuses ChangeInSync.
  MetaServiceHandler(ClusterState* state, CollectionProbe* probe, LeaderCheck check_leader,
                     FailoverService* failover = nullptr);

  void GetMap(rpc::ClusterMap& out, int64_t known_version) override;
  int32_t RegisterNode(const rpc::NodeRegistration& reg) override;
  void Heartbeat(rpc::HeartbeatReply& out, const rpc::HeartbeatRequest& req) override;
  void CreateCollection(rpc::CollectionInfo& out, const std::string& name) override;
  void DropCollection(const std::string& name) override;
  void ListCollections(std::vector<rpc::CollectionInfo>& out) override;
  void CreateIndex(rpc::CollectionInfo& out, const std::string& collection,
                   const std::string& path) override;
  void DropIndex(rpc::CollectionInfo& out, const std::string& collection,
                 const std::string& path) override;
  void ListIndexes(std::vector<rpc::IndexStatus>& out, const std::string& collection) override;
  int64_t ChangeInSync(const rpc::InSyncChange& change) override;

 private:
  // Throws PERMISSION_DENIED unless the caller is a node; returns its name.
  std::string RequireNode(const char* call);
  // Throws PERMISSION_DENIED when there is no verified caller; logs it.
  void RequireCaller(const char* call);
  // Throws UNAVAILABLE unless this process leads.
  void RequireLeader();

  ClusterState* const state_;
  CollectionProbe* const probe_;
  FailoverService* const failover_;  // null: failover off
  const LeaderCheck check_leader_;
  const Logger log_;
};

// Plain <-> Thrift conversions (also for tests).
rpc::ClusterMap ToThrift(const MapSnapshot& snapshot, uint32_t initial_nodes);
rpc::CollectionInfo ToThrift(const CollectionEntry& c);
rpc::IndexStatus ToThrift(const IndexStatus& s);
// InvalidArgument for negative or out-of-range numbers.
Result<PartitionReport> FromThrift(const rpc::ReplicaReport& r);
Result<InSyncChange> FromThrift(const rpc::InSyncChange& c);

}  // namespace cairn::metaserver
