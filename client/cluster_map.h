// The cluster map as libcairn's callers see it (plain C++ types; the Thrift
// ClusterMap is converted in client/rpc_convert.cc). A snapshot: immutable
// once built, shared between threads through shared_ptr<const ClusterMap>.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "common/strong_id.h"

namespace cairn::client {

enum class NodeState : uint8_t { kUp, kSuspect, kDown };
std::string_view NodeStateName(NodeState s);  // "up", "suspect", "down"

struct DiskStatus {
  uint32_t index = 0;
  std::string dir;
  std::string state;  // healthy | failed | rebuilding
  int64_t io_errors = 0;
  int64_t checksum_errors = 0;
};

struct NodeStatus {
  NodeId id;
  std::string name;  // the certificate's node name
  HostPort address;
  NodeState state = NodeState::kUp;
  int64_t capacity_bytes = 0;
  int64_t used_bytes = 0;
  std::vector<DiskStatus> disks;
  int64_t last_heartbeat_ms = 0;  // the metaserver's clock; 0 if never
};

struct PartitionStatus {
  PartitionId id;
  Epoch epoch;
  std::vector<NodeId> replicas;  // primary first; empty while unplaced
  std::vector<NodeId> in_sync;
};

// One replica as the chunk server holding it reports it
// (ChunkService.GetStatus): how far a replica being rebuilt has come.
struct ReplicaStatus {
  PartitionId partition;
  std::string role;  // primary | backup | learner | fenced | removed | none
  int64_t last_lsn = 0;
  int64_t documents = 0;
  // A snapshot being received: bytes so far and in all (the partition's
  // state plus its raw block bytes); 0 / 0 when none is.
  int64_t snapshot_bytes_done = 0;
  int64_t snapshot_bytes_total = 0;
};

struct CollectionStatus {
  std::string name;
  int64_t created_ms = 0;
  std::vector<std::string> indexes;
};

// One secondary index across the cluster (MetaService.ListIndexes): what the
// chunk servers last reported, summed.
struct IndexStatus {
  std::string collection;
  std::string path;
  int64_t docs_indexed = 0;
  int64_t docs_total = 0;
  int64_t entries = 0;
  int32_t nodes_ready = 0;
  int32_t nodes_total = 0;
  bool ready = false;  // every live node holding replicas has built it
  std::string error;
};

struct ClusterMap {
  int64_t version = 0;
  uint32_t partition_count = 0;
  std::vector<NodeStatus> nodes;            // sorted by id
  std::vector<PartitionStatus> partitions;  // index == partition id
  std::vector<CollectionStatus> collections;

  const NodeStatus* FindNode(NodeId id) const;
  const CollectionStatus* FindCollection(std::string_view name) const;
  // The partition's primary (replicas[0]) and its address. Unavailable when
  // the partition is unplaced or its primary is not in the node list.
  struct Route {
    PartitionId partition;
    Epoch epoch;
    NodeId node;
    HostPort address;
  };
  Result<Route> Primary(PartitionId p) const;
  // The k-th (mod their count) of the partition's in-sync replicas the map
  // does not list as down, in the map's order; the primary when there are
  // none (or no in-sync set is kept: replication off).
  Result<Route> Replica(PartitionId p, uint64_t k) const;
  // Checks the invariants the client relies on: partition_count is a valid
  // power of two and partitions[i].id == i for every i. InvalidArgument
  // otherwise (a map the client must not route with).
  Status Validate() const;
};

}  // namespace cairn::client
