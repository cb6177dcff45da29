// ClusterState: the metaserver leader's logic over the cluster map
// (docs/design-store.md "Cluster bootstrap and placement"). No sockets, no
// threads, no real time: the store is the MetaStore interface (MemMetaStore in
// tests and the simulation), time is the injected Clock, and chunk servers are
// asked through the CollectionProbe interface. The Thrift adapter
// (meta_service.h) and the election (leader_election.h) drive it.
//
// Durable state is the ClusterMap, one JSON key in the store. Every change is
// a Txn that compares the key's mod_revision with the one this leader last
// read (plus the leadership fence, SetFence), so two leaders can never both
// win a change; on a conflict the map is read again and the change retried on
// the fresh map (a bounded number of times).
//
// Soft state, held only here and reset by Load(): each node's last heartbeat
// (on the injected clock) and what it reported (capacity, disks). A node is UP
// while its last heartbeat (or registration, or this leader's Load, whichever
// is latest) is younger than heartbeat_timeout, SUSPECT until node_down, DOWN
// after. Heartbeats never write to the store and never change the version.
//
// Thread-safety: every method is thread-safe. Changes are serialized by
// write_mu_ (held across the store call); readers and heartbeats only take
// mu_. Lock order: write_mu_ before mu_.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/logging.h"
#include "common/mutex.h"
#include "common/status.h"
#include "metaserver/cluster_map.h"
#include "metaserver/meta_store.h"

namespace cairn::metaserver {

enum class NodeState : uint8_t { kUp, kSuspect, kDown };
std::string_view NodeStateName(NodeState s);

struct ClusterOptions {
  // The store key of the map ("<etcd_prefix>map").
  std::string map_key = "/cairn/map";
  uint32_t partition_count = 64;                              // a power of two
  uint32_t initial_nodes = 1;                                 // placement waits for this many nodes
  uint32_t replication = 1;                                   // replicas per partition, 1..5
  Nanos heartbeat_timeout = std::chrono::milliseconds(2000);  // UP -> SUSPECT
  Nanos node_down = std::chrono::milliseconds(30000);         // SUSPECT -> DOWN
  // CAS attempts of one change before it gives up with Unavailable.
  int max_cas_attempts = 16;

  // InvalidArgument for a partition count that is not a power of two, zero
  // initial nodes or replication, or node_down < heartbeat_timeout.
  Status Validate() const;
  // Replicas per partition at placement on `nodes` nodes: replication, or
  // every node when there are fewer (the failover planner adds the missing
  // replicas as nodes join, FailoverLogic).
  uint32_t PlacedReplication(size_t nodes) const {
    return nodes < replication ? static_cast<uint32_t>(nodes) : replication;
  }
};

struct DiskReport {
  uint32_t index = 0;
  std::string dir;
  std::string state;  // healthy | failed | rebuilding
  int64_t io_errors = 0;
  int64_t checksum_errors = 0;
  bool operator==(const DiskReport&) const = default;
};

// One secondary index's build state on one chunk server.
struct IndexReport {
  std::string collection;
  std::string path;
  int64_t docs_indexed = 0;
  int64_t docs_total = 0;
  int64_t entries = 0;
  bool ready = false;
  std::string error;
  bool operator==(const IndexReport&) const = default;
};

// What a chunk server reports with each heartbeat.
struct NodeReport {
  int64_t capacity_bytes = 0;
  int64_t used_bytes = 0;
  std::vector<DiskReport> disks;
  std::vector<IndexReport> indexes;
  bool operator==(const NodeReport&) const = default;
};

// One index across the cluster: the live replica-holding nodes' reports.
struct IndexStatus {
  std::string collection;
  std::string path;
  int64_t docs_indexed = 0;  // summed over nodes
  int64_t docs_total = 0;
  int64_t entries = 0;
  int32_t nodes_ready = 0;
  int32_t nodes_total = 0;  // nodes not DOWN that hold partition replicas
  bool ready = false;       // nodes_ready == nodes_total > 0
  std::string error;        // one node's build error, prefixed with its name
};

// Indexes per collection (keeps the stored map small).
inline constexpr size_t kMaxIndexesPerCollection = 32;

struct NodeLiveness {
  NodeState state = NodeState::kUp;
  // On the injected clock, in ms; 0 when no heartbeat reached this leader.
  int64_t last_heartbeat_ms = 0;
  NodeReport report;
};

// The map with the leader's soft state, for GetMap.
struct MapSnapshot {
  ClusterMap map;
  std::map<NodeId, NodeLiveness> liveness;  // one per node of the map
};

// A node state change seen by Tick (for logs; issue 6 acts on them).
struct NodeTransition {
  NodeId node;
  std::string name;
  NodeState from = NodeState::kUp;
  NodeState to = NodeState::kUp;
};

// Asks chunk servers about their documents (DropCollection). Implemented over
// ChunkService by the daemon and by fakes in tests and the simulation.
class CollectionProbe {
 public:
  virtual ~CollectionProbe() = default;
  // 0 when `node` holds no document of `collection` in any of its
  // partitions; more than 0 otherwise (it may be a lower bound). Unavailable
  // (or another error) when the node cannot be asked. Called without locks,
  // possibly from several threads.
  virtual Result<int64_t> CountDocuments(const NodeEntry& node, std::string_view collection) = 0;
};

class ClusterState {
 public:
  // `store` and `clock` are borrowed and must outlive this object.
  ClusterState(MetaStore* store, Clock* clock, ClusterOptions options);
  ClusterState(const ClusterState&) = delete;
  ClusterState& operator=(const ClusterState&) = delete;

  // Reads the map from the store, creating it (version 1, unplaced) when the
  // key is absent, and places the partitions if enough nodes are already
  // registered. Resets the soft state: every node starts UP with a full
  // heartbeat timeout of grace. Call it when this process becomes leader,
  // after SetFence. FailedPrecondition when the stored map has another
  // partition count than configured; Corruption for an unreadable map; the
  // store's errors.
  Status Load();
  // Forgets the map (after losing leadership): every call but Load answers
  // Unavailable until the next Load.
  void Unload();
  bool loaded() const;

  // Every write also compares this (the leader's campaign key and value), so
  // a deposed leader's write fails. nullopt: no fence (single process tests).
  void SetFence(std::optional<Compare> fence);

  // Registers a chunk server (`name` is its certificate's node name): a new
  // name gets the next id; a known name keeps its id and may change address.
  // When the map is not yet placed and initial_nodes nodes are registered, the
  // same map change places every partition. Counts as a heartbeat.
  // InvalidArgument for a bad name, host or port.
  Result<NodeId> RegisterNode(std::string_view name, std::string_view host, int port);

  // Records a heartbeat of node `id` from the caller whose certificate names
  // `caller_name`. Returns the current map version. NotFound for an unknown
  // id, PermissionDenied when the id is another node's.
  Result<uint64_t> Heartbeat(NodeId id, std::string_view caller_name, NodeReport report);

  // ALREADY_EXISTS when present; InvalidArgument for a bad name; TooLarge
  // when the map holds kMaxCollections already.
  Result<CollectionEntry> CreateCollection(std::string_view name);

  // NotFound when absent. Reads the map from the store, then asks every node
  // that holds a partition through `probe`: NotEmpty if any has documents,
  // Unavailable if one cannot be asked (nothing is changed then).
  // Not atomic with puts: a document written between the question and the
  // removal is orphaned (chunk servers refuse puts once they see the map
  // without the collection).
  Status DropCollection(std::string_view name, CollectionProbe* probe);

  // Adds a secondary index on `path` (a query field path, stored in its
  // canonical spelling) to `collection`. InvalidArgument for a bad path,
  // NotFound for an unknown collection, AlreadyExists for a duplicate,
  // TooLarge past kMaxIndexesPerCollection. Returns the collection.
  Result<CollectionEntry> CreateIndex(std::string_view collection, std::string_view path);
  // NotFound for an unknown collection or index; InvalidArgument for a bad
  // path.
  Result<CollectionEntry> DropIndex(std::string_view collection, std::string_view path);
  // Every index of `collection` (every collection when empty) with the build
  // progress the nodes last reported; NotFound for an unknown collection.
  Result<std::vector<IndexStatus>> ListIndexes(std::string_view collection);

  // The cached map (as of the last Load or change).
  Result<ClusterMap> Map() const;
  // Calls `fn` with the cached map under the read lock, without copying it
  // (the failover heartbeat path). `fn` must be quick and must not call back
  // into this object. Unavailable when not loaded.
  Status ReadMap(const std::function<void(const ClusterMap&)>& fn) const;
  Result<MapSnapshot> Snapshot();
  // Recomputes node states on the clock; returns the changes since the last
  // Tick (or Load).
  std::vector<NodeTransition> Tick();

  // Applies `change` to a copy of the map and stores it with a
  // compare-and-swap, retrying on a fresh map when another write won (the
  // replication logic, failover.h, decides its changes this way). `change`
  // sets *changed when it changed the copy; its error is returned as is.
  Result<ClusterMap> ChangeMap(std::string_view what,
                               const std::function<Status(ClusterMap&, bool*)>& change);

  // "cluster not yet placed: 2 of 3 nodes registered", or OK once placed.
  Status CheckPlaced() const;

  const ClusterOptions& options() const { return options_; }

 private:
  struct Soft {
    Nanos last_seen{0};       // registration, heartbeat or Load
    Nanos last_heartbeat{0};  // 0: none reached this leader
    NodeReport report;
    NodeState state = NodeState::kUp;  // as of the last Tick
  };

  // Applies `change` to a copy of the current map and stores it with a CAS,
  // retrying on conflicts. `change` sets *changed when it changed the copy
  // (nothing is written otherwise) and may fail. An outcome without a write
  // (a failure or no change) stands only once a re-read of the map key shows
  // the cache was current; otherwise the change runs again on the fresh map.
  // Returns the resulting map.
  template <typename Fn>
  Result<ClusterMap> Mutate(std::string_view what, Fn&& change) EXCLUDES(write_mu_, mu_);
  // Reads the map key into map_/revision_; true when its mod_revision moved.
  Result<bool> ReloadLocked() REQUIRES(write_mu_) EXCLUDES(mu_);
  NodeState StateAt(const Soft& s, Nanos now) const;
  int64_t WallMs() const;

  MetaStore* const store_;
  Clock* const clock_;
  const ClusterOptions options_;
  const Logger log_;

  Mutex write_mu_;  // before mu_
  mutable Mutex mu_;
  bool loaded_ GUARDED_BY(mu_) = false;
  ClusterMap map_ GUARDED_BY(mu_);
  int64_t revision_ GUARDED_BY(mu_) = 0;  // mod_revision of the map key
  std::optional<Compare> fence_ GUARDED_BY(mu_);
  std::map<NodeId, Soft> soft_ GUARDED_BY(mu_);
};

}  // namespace cairn::metaserver
