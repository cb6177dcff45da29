#include "client/cluster_map.h"

#include <algorithm>

#include "common/partitioning.h"

namespace cairn::client {

std::string_view NodeStateName(NodeState s) {
  switch (s) {
    case NodeState::kUp:
      return "up";
    case NodeState::kSuspect:
      return "suspect";
    case NodeState::kDown:
      return "down";
  }
  return "unknown";
}

const NodeStatus* ClusterMap::FindNode(NodeId id) const {
  for (const NodeStatus& n : nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

const CollectionStatus* ClusterMap::FindCollection(std::string_view name) const {
  for (const CollectionStatus& c : collections) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

Result<ClusterMap::Route> ClusterMap::Primary(PartitionId p) const {
  if (p.value() >= partitions.size()) {
    return Status::Internal("partition " + std::to_string(p.value()) + " is not in map version " +
                            std::to_string(version));
  }
  const PartitionStatus& part = partitions[p.value()];
  if (part.replicas.empty()) {
    return Status::Unavailable("partition " + std::to_string(p.value()) +
                               " is not placed yet (map version " + std::to_string(version) + ")");
  }
  const NodeStatus* node = FindNode(part.replicas[0]);
  if (node == nullptr) {
    return Status::Unavailable("partition " + std::to_string(p.value()) + ": primary node " +
                               std::to_string(part.replicas[0].value()) + " is not in the map");
  }
  return Route{p, part.epoch, node->id, node->address};
}

Result<ClusterMap::Route> ClusterMap::Replica(PartitionId p, uint64_t k) const {
  if (p.value() >= partitions.size()) return Primary(p);
  const PartitionStatus& part = partitions[p.value()];
  std::vector<const NodeStatus*> candidates;
  for (NodeId n : part.replicas) {
    if (std::find(part.in_sync.begin(), part.in_sync.end(), n) == part.in_sync.end()) continue;
    const NodeStatus* node = FindNode(n);
    if (node != nullptr && node->state != NodeState::kDown) candidates.push_back(node);
  }
  if (candidates.empty()) return Primary(p);
  const NodeStatus* node = candidates[k % candidates.size()];
  return Route{p, part.epoch, node->id, node->address};
}

Status ClusterMap::Validate() const {
  if (!ValidPartitionCount(partition_count)) {
    return Status::InvalidArgument("cluster map version " + std::to_string(version) +
                                   ": bad partition count " + std::to_string(partition_count));
  }
  if (partitions.size() != partition_count) {
    return Status::InvalidArgument("cluster map version " + std::to_string(version) + " has " +
                                   std::to_string(partitions.size()) + " partitions, expected " +
                                   std::to_string(partition_count));
  }
  for (size_t i = 0; i < partitions.size(); ++i) {
    if (partitions[i].id.value() != i) {
      return Status::InvalidArgument("cluster map version " + std::to_string(version) +
                                     ": partition at index " + std::to_string(i) + " has id " +
                                     std::to_string(partitions[i].id.value()));
    }
  }
  return Status::Ok();
}

}  // namespace cairn::client
