#include "client/rpc_convert.h"

#include <algorithm>

namespace cairn::client {

namespace {

NodeState FromRpc(rpc::NodeState::type s) {
  switch (s) {
    case rpc::NodeState::SUSPECT:
      return NodeState::kSuspect;
    case rpc::NodeState::DOWN:
      return NodeState::kDown;
    default:
      return NodeState::kUp;
  }
}

}  // namespace

CollectionStatus FromRpc(const rpc::CollectionInfo& c) {
  return CollectionStatus{c.name, c.created_ms, c.indexes};
}

ClusterMap FromRpc(const rpc::ClusterMap& m) {
  ClusterMap out;
  out.version = m.version;
  out.partition_count = static_cast<uint32_t>(std::max(m.partition_count, 0));
  for (const rpc::NodeInfo& n : m.nodes) {
    NodeStatus s;
    s.id = NodeId(static_cast<uint32_t>(n.id));
    s.name = n.name;
    s.address = HostPort{n.host, n.port};
    s.state = FromRpc(n.state);
    s.capacity_bytes = n.capacity_bytes;
    s.used_bytes = n.used_bytes;
    s.last_heartbeat_ms = n.last_heartbeat_ms;
    for (const rpc::DiskInfo& d : n.disks) {
      s.disks.push_back(DiskStatus{static_cast<uint32_t>(std::max(d.index, 0)), d.dir, d.state,
                                   d.io_errors, d.checksum_errors});
    }
    out.nodes.push_back(std::move(s));
  }
  std::sort(out.nodes.begin(), out.nodes.end(),
            [](const NodeStatus& a, const NodeStatus& b) { return a.id < b.id; });
  for (const rpc::PartitionInfo& p : m.partitions) {
    PartitionStatus s;
    s.id = PartitionId(static_cast<uint32_t>(p.id));
    s.epoch = Epoch(static_cast<uint64_t>(p.epoch));
    for (int32_t r : p.replicas) s.replicas.push_back(NodeId(static_cast<uint32_t>(r)));
    for (int32_t r : p.in_sync) s.in_sync.push_back(NodeId(static_cast<uint32_t>(r)));
    out.partitions.push_back(std::move(s));
  }
  std::sort(out.partitions.begin(), out.partitions.end(),
            [](const PartitionStatus& a, const PartitionStatus& b) { return a.id < b.id; });
  for (const rpc::CollectionInfo& c : m.collections) out.collections.push_back(FromRpc(c));
  return out;
}

DocInfo FromRpc(const rpc::DocMeta& m) {
  DocInfo d;
  d.collection = m.collection;
  d.id = m.id;
  d.version = m.version;
  d.size = static_cast<uint64_t>(std::max<int64_t>(m.size, 0));
  d.mtime_ns = m.mtime_ns;
  d.ctime_ns = m.ctime_ns;
  d.mode = static_cast<uint32_t>(m.mode);
  d.uid = static_cast<uint32_t>(m.uid);
  d.gid = static_cast<uint32_t>(m.gid);
  for (const auto& [k, v] : m.xattrs) d.xattrs.emplace(k, v);
  d.body_hash = static_cast<uint64_t>(m.body_hash);
  d.partition = PartitionId(static_cast<uint32_t>(std::max(m.partition, 0)));
  d.block_bytes = static_cast<uint32_t>(std::max(m.block_bytes, 0));
  return d;
}

}  // namespace cairn::client
