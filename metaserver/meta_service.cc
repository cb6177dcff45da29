#include "metaserver/meta_service.h"

#include "common/certs.h"
#include "common/partitioning.h"
#include "thrift/rpc_errors.h"
#include "thrift/rpc_server.h"

namespace cairn::metaserver {
namespace {

template <typename Id>
std::vector<int32_t> ToI32(const std::vector<Id>& ids) {
  std::vector<int32_t> out;
  out.reserve(ids.size());
  for (Id id : ids) out.push_back(static_cast<int32_t>(id.value()));
  return out;
}

rpc::NodeState::type ToThrift(NodeState s) {
  switch (s) {
    case NodeState::kUp:
      return rpc::NodeState::UP;
    case NodeState::kSuspect:
      return rpc::NodeState::SUSPECT;
    case NodeState::kDown:
      return rpc::NodeState::DOWN;
  }
  return rpc::NodeState::DOWN;
}

}  // namespace

rpc::CollectionInfo ToThrift(const CollectionEntry& c) {
  rpc::CollectionInfo out;
  out.name = c.name;
  out.created_ms = c.created_ms;
  out.indexes = c.indexes;
  return out;
}

rpc::IndexStatus ToThrift(const IndexStatus& s) {
  rpc::IndexStatus out;
  out.collection = s.collection;
  out.path = s.path;
  out.docs_indexed = s.docs_indexed;
  out.docs_total = s.docs_total;
  out.nodes_ready = s.nodes_ready;
  out.nodes_total = s.nodes_total;
  out.ready = s.ready;
  out.__set_entries(s.entries);
  if (!s.error.empty()) out.__set_error(s.error);
  return out;
}

rpc::ClusterMap ToThrift(const MapSnapshot& snapshot, uint32_t initial_nodes) {
  const ClusterMap& m = snapshot.map;
  rpc::ClusterMap out;
  out.version = static_cast<int64_t>(m.version);
  out.partition_count = static_cast<int32_t>(m.partition_count);
  out.__set_initial_nodes(static_cast<int32_t>(initial_nodes));
  for (const NodeEntry& n : m.nodes) {
    rpc::NodeInfo info;
    info.id = static_cast<int32_t>(n.id.value());
    info.name = n.name;
    info.host = n.host;
    info.port = n.port;
    auto it = snapshot.liveness.find(n.id);
    if (it != snapshot.liveness.end()) {
      const NodeLiveness& l = it->second;
      info.state = ToThrift(l.state);
      info.last_heartbeat_ms = l.last_heartbeat_ms;
      info.capacity_bytes = l.report.capacity_bytes;
      info.used_bytes = l.report.used_bytes;
      for (const DiskReport& d : l.report.disks) {
        rpc::DiskInfo disk;
        disk.index = static_cast<int32_t>(d.index);
        disk.dir = d.dir;
        disk.state = d.state;
        disk.io_errors = d.io_errors;
        disk.checksum_errors = d.checksum_errors;
        info.disks.push_back(std::move(disk));
      }
    } else {
      info.state = rpc::NodeState::UP;
    }
    out.nodes.push_back(std::move(info));
  }
  for (const PartitionEntry& p : m.partitions) {
    rpc::PartitionInfo info;
    info.id = static_cast<int32_t>(p.id.value());
    info.epoch = static_cast<int64_t>(p.epoch.value());
    info.replicas = ToI32(p.replicas);
    info.in_sync = ToI32(p.in_sync);
    out.partitions.push_back(std::move(info));
  }
  for (const auto& [name, c] : m.collections) out.collections.push_back(ToThrift(c));
  return out;
}

Result<PartitionReport> FromThrift(const rpc::ReplicaReport& r) {
  if (r.partition < 0 || r.epoch < 0 || r.last_lsn < 0 || r.commit_lsn < 0) {
    return Status::InvalidArgument("replica report of partition " + std::to_string(r.partition) +
                                   ": negative partition, epoch or LSN");
  }
  PartitionReport out;
  out.partition = PartitionId(static_cast<uint32_t>(r.partition));
  out.epoch = Epoch(static_cast<uint64_t>(r.epoch));
  out.primary = r.primary;
  out.last_lsn = Lsn(static_cast<uint64_t>(r.last_lsn));
  out.commit_lsn = Lsn(static_cast<uint64_t>(r.commit_lsn));
  out.can_lead = r.can_lead;
  return out;
}

Result<InSyncChange> FromThrift(const rpc::InSyncChange& c) {
  if (c.partition < 0 || c.epoch < 0 || c.primary <= 0 || c.node <= 0) {
    return Status::InvalidArgument(
        "ChangeInSync: partition and epoch must be >= 0, primary and node > 0");
  }
  InSyncChange out;
  out.kind = c.join ? InSyncChange::Kind::kJoin : InSyncChange::Kind::kDrop;
  out.partition = PartitionId(static_cast<uint32_t>(c.partition));
  out.epoch = Epoch(static_cast<uint64_t>(c.epoch));
  out.primary = NodeId(static_cast<uint32_t>(c.primary));
  out.node = NodeId(static_cast<uint32_t>(c.node));
  return out;
}

MetaServiceHandler::MetaServiceHandler(ClusterState* state, CollectionProbe* probe,
                                       LeaderCheck check_leader, FailoverService* failover)
    : state_(state),
      probe_(probe),
      failover_(failover),
      check_leader_(std::move(check_leader)),
      log_("metaserver", "rpc") {}

void MetaServiceHandler::RequireCaller(const char* call) {
  if (net::CurrentCaller() == nullptr) {
    LOG_WARN(log_) << call << " refused: no verified caller";
    net::ThrowIfError(Status::PermissionDenied(std::string(call) + ": no verified caller"));
  }
}

std::string MetaServiceHandler::RequireNode(const char* call) {
  RequireCaller(call);
  const Identity* caller = net::CurrentCaller();
  if (caller->role != Role::kNode) {
    LOG_WARN(log_) << call << " refused for " << caller->ToString() << ": nodes only";
    net::ThrowIfError(Status::PermissionDenied(
        std::string(call) + " is for chunk servers (node:*), not " + caller->ToString()));
  }
  return caller->name;
}

void MetaServiceHandler::RequireLeader() {
  if (check_leader_) net::ThrowIfError(check_leader_());
}

void MetaServiceHandler::GetMap(rpc::ClusterMap& out, int64_t /*known_version*/) {
  RequireCaller("GetMap");
  RequireLeader();
  Result<MapSnapshot> snap = state_->Snapshot();
  net::ThrowIfError(snap.status());
  out = ToThrift(*snap, state_->options().initial_nodes);
}

int32_t MetaServiceHandler::RegisterNode(const rpc::NodeRegistration& reg) {
  const std::string caller = RequireNode("RegisterNode");
  if (reg.name != caller) {
    LOG_WARN(log_) << "RegisterNode of '" << reg.name << "' refused for node:" << caller;
    net::ThrowIfError(Status::PermissionDenied("node:" + caller + " cannot register as node '" +
                                               reg.name + "': the name must be the certificate's"));
  }
  RequireLeader();
  const bool replicates = reg.__isset.replication && reg.replication;
  if (replicates != (failover_ != nullptr)) {
    LOG_WARN(log_) << "RegisterNode of '" << reg.name << "' refused: replication "
                   << (replicates ? "on" : "off") << " on the node, failover "
                   << (failover_ != nullptr ? "on" : "off") << " here";
    net::ThrowIfError(Status::FailedPrecondition(
        failover_ != nullptr
            ? "this cluster replicates (metaserver failover = true): start chunk server '" +
                  reg.name + "' with replication = true"
            : "this cluster does not replicate (metaserver failover = false): start chunk server "
              "'" +
                  reg.name + "' with replication = false, or turn failover on"));
  }
  Result<NodeId> id = state_->RegisterNode(reg.name, reg.host, reg.port);
  net::ThrowIfError(id.status());
  return static_cast<int32_t>(id->value());
}

void MetaServiceHandler::Heartbeat(rpc::HeartbeatReply& out, const rpc::HeartbeatRequest& req) {
  const std::string caller = RequireNode("Heartbeat");
  RequireLeader();
  if (req.node_id <= 0)
    net::ThrowIfError(Status::InvalidArgument("Heartbeat: node_id must be > 0"));
  NodeReport report;
  report.capacity_bytes = req.capacity_bytes;
  report.used_bytes = req.used_bytes;
  for (const rpc::DiskInfo& d : req.disks) {
    report.disks.push_back(DiskReport{static_cast<uint32_t>(std::max(d.index, 0)), d.dir, d.state,
                                      d.io_errors, d.checksum_errors});
  }
  if (req.__isset.indexes) {
    // Bounded like the map's own index list, so a report cannot grow without end.
    const size_t max = kMaxCollections * kMaxIndexesPerCollection;
    if (req.indexes.size() > max) {
      net::ThrowIfError(
          Status::TooLarge("Heartbeat: more than " + std::to_string(max) + " index reports"));
    }
    for (const rpc::IndexReport& r : req.indexes) {
      report.indexes.push_back(IndexReport{r.collection, r.path, r.docs_indexed, r.docs_total,
                                           r.__isset.entries ? r.entries : 0, r.ready,
                                           r.__isset.error ? r.error : std::string()});
    }
  }
  // Replica reports are checked before anything is recorded.
  std::vector<PartitionReport> replicas;
  const bool replication = failover_ != nullptr && req.__isset.replicas;
  if (replication) {
    if (req.replicas.size() > kMaxPartitionCount) {
      net::ThrowIfError(Status::TooLarge("Heartbeat: more than " +
                                         std::to_string(kMaxPartitionCount) + " replica reports"));
    }
    replicas.reserve(req.replicas.size());
    for (const rpc::ReplicaReport& r : req.replicas) {
      Result<PartitionReport> pr = FromThrift(r);
      net::ThrowIfError(pr.status().WithContext("Heartbeat"));
      replicas.push_back(*pr);
    }
  }
  const NodeId node(static_cast<uint32_t>(req.node_id));
  Result<uint64_t> version = state_->Heartbeat(node, caller, std::move(report));
  net::ThrowIfError(version.status());
  out.map_version = static_cast<int64_t>(*version);
  if (!replication) return;  // failover off, or a node that does not replicate yet
  // Not leading any more (or not yet: between the map's load and the start
  // of the failover term): the heartbeat counts, no lease is granted.
  Result<std::vector<PrimaryLease>> leases = failover_->OnHeartbeat(node, replicas);
  std::vector<PrimaryLease> granted;
  if (leases.ok()) {
    granted = std::move(leases).value();
  } else {
    LOG_DEBUG(log_) << "Heartbeat without leases: " << leases.status().ToString();
  }
  out.__isset.leases = true;
  for (const PrimaryLease& l : granted) {
    rpc::PrimaryLease pl;
    pl.partition = static_cast<int32_t>(l.partition.value());
    pl.epoch = static_cast<int64_t>(l.epoch.value());
    out.leases.push_back(pl);
  }
  // The node matches answers to its requests (and to its incarnation) by
  // these; its lease runs from its own sent_at_ns.
  if (req.__isset.sent_at_ns) out.__set_sent_at_ns(req.sent_at_ns);
  if (req.__isset.incarnation) out.__set_incarnation(req.incarnation);
}

int64_t MetaServiceHandler::ChangeInSync(const rpc::InSyncChange& change) {
  const std::string caller = RequireNode("ChangeInSync");
  RequireLeader();
  if (failover_ == nullptr) {
    net::ThrowIfError(Status::FailedPrecondition(
        "ChangeInSync: failover is off on this metaserver (failover = false): it does not manage "
        "in-sync sets"));
  }
  Result<InSyncChange> c = FromThrift(change);
  net::ThrowIfError(c.status());
  Result<uint64_t> version = failover_->ChangeInSync(caller, *c);
  if (!version.ok() && version.status().code() == StatusCode::kPermissionDenied) {
    LOG_WARN(log_) << "ChangeInSync refused: " << version.status().ToString();
  }
  net::ThrowIfError(version.status());
  return static_cast<int64_t>(*version);
}

void MetaServiceHandler::CreateCollection(rpc::CollectionInfo& out, const std::string& name) {
  RequireCaller("CreateCollection");
  RequireLeader();
  Result<CollectionEntry> c = state_->CreateCollection(name);
  net::ThrowIfError(c.status());
  LOG_INFO(log_) << net::CurrentCaller()->ToString() << " created collection '" << name << "'";
  out = ToThrift(*c);
}

void MetaServiceHandler::DropCollection(const std::string& name) {
  RequireCaller("DropCollection");
  RequireLeader();
  net::ThrowIfError(state_->DropCollection(name, probe_));
  LOG_INFO(log_) << net::CurrentCaller()->ToString() << " dropped collection '" << name << "'";
}

void MetaServiceHandler::ListCollections(std::vector<rpc::CollectionInfo>& out) {
  RequireCaller("ListCollections");
  RequireLeader();
  Result<ClusterMap> m = state_->Map();
  net::ThrowIfError(m.status());
  out.clear();
  for (const auto& [name, c] : m->collections) out.push_back(ToThrift(c));
}

void MetaServiceHandler::CreateIndex(rpc::CollectionInfo& out, const std::string& collection,
                                     const std::string& path) {
  RequireCaller("CreateIndex");
  RequireLeader();
  Result<CollectionEntry> c = state_->CreateIndex(collection, path);
  net::ThrowIfError(c.status());
  LOG_INFO(log_) << net::CurrentCaller()->ToString() << " created index " << collection << " "
                 << path;
  out = ToThrift(*c);
}

void MetaServiceHandler::DropIndex(rpc::CollectionInfo& out, const std::string& collection,
                                   const std::string& path) {
  RequireCaller("DropIndex");
  RequireLeader();
  Result<CollectionEntry> c = state_->DropIndex(collection, path);
  net::ThrowIfError(c.status());
  LOG_INFO(log_) << net::CurrentCaller()->ToString() << " dropped index " << collection << " "
                 << path;
  out = ToThrift(*c);
}

void MetaServiceHandler::ListIndexes(std::vector<rpc::IndexStatus>& out,
                                     const std::string& collection) {
  RequireCaller("ListIndexes");
  RequireLeader();
  Result<std::vector<IndexStatus>> list = state_->ListIndexes(collection);
  net::ThrowIfError(list.status());
  out.clear();
  for (const IndexStatus& s : *list) out.push_back(ToThrift(s));
}

}  // namespace cairn::metaserver
