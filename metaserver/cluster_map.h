// The cluster map (docs/design-store.md "Cluster bootstrap and placement"):
// nodes, partitions with epoch and replicas, collections, and a version that
// grows with every change. Plain C++ types, no Thrift; the whole map is one
// JSON value under one key of the MetaStore.
//
// Durable vs soft: this struct is what is stored. Node liveness (state, last
// heartbeat) and the figures a heartbeat reports (capacity, disks) are soft
// state held by the leader only (cluster_state.h) and are not stored here, so
// a heartbeat never writes to the store.
//
// JSON layout (format 1):
//   {"format":1, "version":7, "partition_count":64, "next_node_id":4,
//    "nodes":[{"id":1,"name":"n1","host":"127.0.0.1","port":7100,
//              "registered_ms":...}],
//    "partitions":[{"id":0,"epoch":1,"replicas":[1],"in_sync":[1]}, ...],
//    "collections":[{"name":"c","created_ms":...,"indexes":[]}]}
// Unknown fields are ignored (a newer writer may add some); missing required
// fields, a wrong format number or broken invariants are Corruption.
//
// Thread-compatible value type.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/strong_id.h"

namespace cairn::metaserver {

inline constexpr int kClusterMapFormat = 1;
// Collection names: docs/design-store.md "Names and limits".
inline constexpr size_t kMaxCollectionNameBytes = 128;
// Keeps the stored map well under the store's value limit (kMaxValueBytes).
inline constexpr size_t kMaxCollections = 4096;
inline constexpr size_t kMaxNodes = 1024;
inline constexpr size_t kMaxHostBytes = 253;

struct NodeEntry {
  NodeId id;
  std::string name;  // the certificate's node name ("n1" for "node:n1")
  std::string host;
  int port = 0;
  int64_t registered_ms = 0;  // wall clock of the first registration

  bool operator==(const NodeEntry&) const = default;
};

struct PartitionEntry {
  PartitionId id;
  Epoch epoch;                   // 0 while unplaced; 1 at first placement
  std::vector<NodeId> replicas;  // primary first; empty while unplaced
  std::vector<NodeId> in_sync;

  bool operator==(const PartitionEntry&) const = default;
};

struct CollectionEntry {
  std::string name;
  int64_t created_ms = 0;  // wall clock
  std::vector<std::string> indexes;

  bool operator==(const CollectionEntry&) const = default;
};

struct ClusterMap {
  uint64_t version = 0;  // 1 for a new map; +1 with every stored change
  uint32_t partition_count = 0;
  NodeId next_node_id{1};                  // ids are never reused
  std::vector<NodeEntry> nodes;            // sorted by id
  std::vector<PartitionEntry> partitions;  // partitions[i].id == i
  std::map<std::string, CollectionEntry> collections;

  bool operator==(const ClusterMap&) const = default;

  // A new map with `partition_count` unplaced partitions, at version 1.
  static ClusterMap New(uint32_t partition_count);

  const NodeEntry* FindNode(NodeId id) const;
  const NodeEntry* FindNodeByName(std::string_view name) const;
  // True when every partition has at least one replica.
  bool Placed() const;

  // Invariants: valid partition count, partitions numbered 0..P-1, replicas
  // known nodes without duplicates, in_sync a subset of replicas, node ids
  // unique, below next_node_id and sorted, names unique, collections valid.
  // Corruption with the first broken rule otherwise.
  Status Validate() const;
};

std::string EncodeClusterMap(const ClusterMap& map);
// Parses and validates (Corruption when either fails).
Result<ClusterMap> DecodeClusterMap(std::string_view json);

// InvalidArgument unless `name` follows the collection name rule.
Status ValidateCollectionName(std::string_view name);

}  // namespace cairn::metaserver
