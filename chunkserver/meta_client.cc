#include "chunkserver/meta_client.h"

#include "MetaService.h"
#include "chunkserver/replica_wire.h"
#include "thrift/rpc_client.h"

namespace cairn::chunkserver {

namespace {

// "... leader is 127.0.0.1:7001" -> that address.
std::optional<HostPort> LeaderNamedIn(const std::string& message) {
  const std::string key = "leader is ";
  const size_t at = message.find(key);
  if (at == std::string::npos) return std::nullopt;
  std::string rest = message.substr(at + key.size());
  const size_t end = rest.find_first_of(" ;,)\n");
  if (end != std::string::npos) rest.resize(end);
  Result<HostPort> hp = ParseHostPort(rest);
  if (!hp.ok()) return std::nullopt;
  return *hp;
}

ClusterView FromThrift(const rpc::ClusterMap& m) {
  ClusterView v;
  v.version = static_cast<uint64_t>(m.version);
  v.partition_count = static_cast<uint32_t>(std::max(0, m.partition_count));
  for (const rpc::NodeInfo& n : m.nodes) {
    v.nodes.push_back({NodeId(static_cast<uint32_t>(n.id)), n.name, n.host, n.port});
  }
  v.partitions.resize(v.partition_count);
  for (const rpc::PartitionInfo& p : m.partitions) {
    if (p.id < 0 || static_cast<uint32_t>(p.id) >= v.partition_count) continue;
    PartitionPlacement& pl = v.partitions[static_cast<uint32_t>(p.id)];
    pl.epoch = Epoch(static_cast<uint64_t>(std::max<int64_t>(0, p.epoch)));
    for (int32_t r : p.replicas) pl.replicas.push_back(NodeId(static_cast<uint32_t>(r)));
    for (int32_t r : p.in_sync) pl.in_sync.push_back(NodeId(static_cast<uint32_t>(r)));
  }
  for (const rpc::CollectionInfo& c : m.collections) {
    v.collections.insert(c.name);
    if (!c.indexes.empty()) v.indexes[c.name] = c.indexes;
  }
  return v;
}

}  // namespace

ThriftMetaClient::ThriftMetaClient(std::vector<HostPort> metaservers, net::ConnectionPool* pool)
    : metaservers_(std::move(metaservers)), pool_(pool) {}

template <class Fn>
Status ThriftMetaClient::CallAny(Fn&& fn) {
  std::vector<HostPort> order;
  {
    MutexLock lock(&mu_);
    if (preferred_) order.push_back(*preferred_);
  }
  for (const HostPort& m : metaservers_) {
    if (order.empty() || !(m == order.front())) order.push_back(m);
  }
  Status last = Status::Unavailable("no metaserver configured");
  std::optional<HostPort> leader;
  for (size_t i = 0; i < order.size(); ++i) {
    const HostPort& to = order[i];
    last = pool_->Call<rpc::MetaServiceClient>(to, fn);
    if (last.ok()) {
      MutexLock lock(&mu_);
      preferred_ = to;
      return last;
    }
    if (last.code() != StatusCode::kUnavailable && last.code() != StatusCode::kTimeout) {
      return last;  // an answer, not a routing problem
    }
    if (!leader) {
      leader = LeaderNamedIn(last.message());
      if (leader) {
        // Ask the named leader next.
        order.insert(order.begin() + static_cast<std::ptrdiff_t>(i) + 1, *leader);
      }
    }
  }
  return last;
}

Result<NodeId> ThriftMetaClient::Register(const std::string& name, const HostPort& advertise,
                                          bool replication) {
  rpc::NodeRegistration reg;
  reg.name = name;
  reg.host = advertise.host;
  reg.port = advertise.port;
  reg.__set_replication(replication);
  int32_t id = 0;
  RETURN_IF_ERROR(CallAny([&](rpc::MetaServiceClient& c) { id = c.RegisterNode(reg); }));
  if (id <= 0) return Status::Internal("metaserver gave node id " + std::to_string(id));
  return NodeId(static_cast<uint32_t>(id));
}

Result<HeartbeatAnswer> ThriftMetaClient::Heartbeat(const HeartbeatInfo& info) {
  rpc::HeartbeatRequest req;
  req.node_id = static_cast<int32_t>(info.node.value());
  req.map_version = static_cast<int64_t>(info.map_version);
  for (const DiskReport& d : info.disks) {
    rpc::DiskInfo di;
    di.index = static_cast<int32_t>(d.index);
    di.dir = d.dir;
    di.state = d.state;
    di.io_errors = static_cast<int64_t>(d.io_errors);
    di.checksum_errors = static_cast<int64_t>(d.checksum_errors);
    req.disks.push_back(std::move(di));
  }
  req.capacity_bytes = static_cast<int64_t>(info.capacity_bytes);
  req.used_bytes = static_cast<int64_t>(info.used_bytes);
  std::vector<rpc::IndexReport> indexes;
  for (const IndexReportInfo& i : info.indexes) {
    rpc::IndexReport r;
    r.collection = i.collection;
    r.path = i.path;
    r.docs_indexed = static_cast<int64_t>(i.docs_indexed);
    r.docs_total = static_cast<int64_t>(i.docs_total);
    r.ready = i.ready;
    r.__set_entries(static_cast<int64_t>(i.entries));
    if (!i.error.empty()) r.__set_error(i.error);
    indexes.push_back(std::move(r));
  }
  req.__set_indexes(std::move(indexes));
  if (info.replicas) {
    std::vector<rpc::ReplicaReport> reps;
    for (const ReplicaReport& r : *info.replicas) reps.push_back(ToWire(r));
    req.__set_replicas(std::move(reps));
    req.__set_sent_at_ns(info.sent_at.count());
    req.__set_incarnation(static_cast<int64_t>(info.incarnation));
  }
  rpc::HeartbeatReply reply;
  RETURN_IF_ERROR(CallAny([&](rpc::MetaServiceClient& c) { c.Heartbeat(reply, req); }));
  HeartbeatAnswer out;
  out.map_version = static_cast<uint64_t>(std::max<int64_t>(0, reply.map_version));
  for (const rpc::PrimaryLease& l : reply.leases) {
    if (l.partition < 0 || l.epoch <= 0) continue;
    out.leases.emplace_back(PartitionId(static_cast<uint32_t>(l.partition)),
                            Epoch(static_cast<uint64_t>(l.epoch)));
  }
  return out;
}

Result<ClusterView> ThriftMetaClient::GetMap(uint64_t known_version) {
  rpc::ClusterMap map;
  RETURN_IF_ERROR(CallAny(
      [&](rpc::MetaServiceClient& c) { c.GetMap(map, static_cast<int64_t>(known_version)); }));
  return FromThrift(map);
}

Result<uint64_t> ThriftMetaClient::ChangeInSync(const InSyncRequest& request) {
  const rpc::InSyncChange change = ToWire(request);
  int64_t version = 0;
  RETURN_IF_ERROR(CallAny([&](rpc::MetaServiceClient& c) { version = c.ChangeInSync(change); }));
  return static_cast<uint64_t>(std::max<int64_t>(0, version));
}

}  // namespace cairn::chunkserver
