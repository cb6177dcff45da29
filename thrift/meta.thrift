// The cluster map: the metaserver's service (docs/design-store.md). Fields are never renumbered or reused; new fields are optional.
include "cairn.thrift"

namespace cpp cairn.rpc
namespace py cairn_rpc.meta

// ---------------------------------------------------------------- cluster map

enum NodeState {
  UP = 1,
  SUSPECT = 2,   // missed heartbeats, not yet declared failed
  DOWN = 3,
}

struct DiskInfo {
  1: i32 index,
  2: string dir,
  3: string state,          // healthy | failed | rebuilding
  4: i64 io_errors,
  5: i64 checksum_errors,
}

struct NodeInfo {
  1: i32 id,
  2: string name,           // the certificate's node name
  3: string host,
  4: i32 port,
  5: NodeState state,
  6: i64 capacity_bytes,
  7: i64 used_bytes,
  8: list<DiskInfo> disks,
  9: i64 last_heartbeat_ms, // metaserver's clock, 0 if never
}

struct PartitionInfo {
  1: i32 id,
  2: i64 epoch,
  3: list<i32> replicas,    // node ids, primary first
  4: list<i32> in_sync,     // node ids
}

struct CollectionInfo {
  1: string name,
  2: i64 created_ms,
  3: list<string> indexes,  // indexed field paths (query issue)
}

struct ClusterMap {
  1: i64 version,
  2: i32 partition_count,
  3: list<NodeInfo> nodes,
  4: list<PartitionInfo> partitions,
  5: list<CollectionInfo> collections,
  // Placement waits until this many nodes have registered (the metaserver's
  // initial_nodes); a map whose partitions have no replicas is not placed yet.
  6: optional i32 initial_nodes,
}

// Replication (docs/design-replication.md): one replica's state, as each
// heartbeat reports it.
struct ReplicaReport {
  1: i32 partition,
  2: i64 epoch,
  3: bool primary,          // acting primary of epoch
  4: i64 last_lsn,
  5: i64 commit_lsn,
  6: bool active,           // primary whose epoch no-op is committed
  7: bool can_lead,         // false until its first post-restart configuration
}

// A lease for the primary of `partition` in `epoch`, valid from the
// heartbeat's sent_at_ns (the node's clock) for the lease length less the
// clock-skew margin.
struct PrimaryLease {
  1: i32 partition,
  2: i64 epoch,
}

// A primary's request to drop a backup from, or admit a learner to, the
// in-sync set; applied only if the map is still at `epoch` with the caller as
// primary (MetaService.ChangeInSync).
struct InSyncChange {
  1: bool join,             // false: drop
  2: i32 partition,
  3: i64 epoch,
  4: i32 primary,
  5: i32 node,
}

// Secondary indexes (docs/indexes.md): one index's build state on one chunk
// server, all its partitions together, as each heartbeat reports it.
struct IndexReport {
  1: string collection,
  2: string path,           // canonical field path text
  3: i64 docs_indexed,      // documents the current (or last) build scanned
  4: i64 docs_total,        // documents of the collection when that build started
  5: bool ready,            // built and maintained: queries may use it
  6: optional i64 entries,  // documents in the index now
  7: optional string error, // the last build error, while it waits to retry
}

struct HeartbeatRequest {
  1: i32 node_id,
  2: i64 map_version,
  3: list<DiskInfo> disks,
  4: i64 capacity_bytes,
  5: i64 used_bytes,
  6: optional list<ReplicaReport> replicas,
  7: optional i64 sent_at_ns,   // the node's monotonic clock
  8: optional i64 incarnation,  // grows with every start of the chunk server
  // Field numbers 9..19 are left to other work in flight.
  20: optional list<IndexReport> indexes,
}

// One index across the cluster (ListIndexes): the chunk servers' reports
// summed. ready when every live node holding replicas reports it ready.
struct IndexStatus {
  1: string collection,
  2: string path,
  3: i64 docs_indexed,
  4: i64 docs_total,
  5: i32 nodes_ready,
  6: i32 nodes_total,       // live nodes that hold partition replicas
  7: bool ready,
  8: optional i64 entries,
  9: optional string error, // one node's build error, if any
}

struct HeartbeatReply {
  1: i64 map_version,       // fetch the map if newer than the node's
  2: optional list<PrimaryLease> leases,
  3: optional i64 sent_at_ns,   // echoed
  4: optional i64 incarnation,  // echoed
}

struct NodeRegistration {
  1: string name,           // must match the certificate
  2: string host,
  3: i32 port,
  // The chunk server keeps its replicas in step (its `replication` option).
  // Refused (FAILED_PRECONDITION) when it differs from the metaserver's
  // `failover`: one cluster runs one way. Absent: false.
  4: optional bool replication,
}

// Served by the metaserver leader; followers answer UNAVAILABLE with the
// leader's address in the message ("not the leader; leader is 127.0.0.1:7001").
// Callers: RegisterNode and Heartbeat only from node:* certificates (the name
// must be the certificate's: the caller's own node); the rest from node:*,
// user:* and admin:* (docs/design-store.md "Who may call what").
service MetaService {
  ClusterMap GetMap(1: i64 known_version) throws (1: cairn.CairnError e),
  i32 RegisterNode(1: NodeRegistration reg) throws (1: cairn.CairnError e),
  HeartbeatReply Heartbeat(1: HeartbeatRequest req) throws (1: cairn.CairnError e),
  CollectionInfo CreateCollection(1: string name) throws (1: cairn.CairnError e),
  // NOT_FOUND when absent; NOT_EMPTY when a chunk server holds documents of
  // it; UNAVAILABLE when a chunk server holding partitions cannot be asked.
  void DropCollection(1: string name) throws (1: cairn.CairnError e),
  // Every collection, sorted by name (the same list as GetMap's).
  list<CollectionInfo> ListCollections() throws (1: cairn.CairnError e),
  // Secondary indexes (docs/indexes.md). `path` is a query field path
  // (INVALID_ARGUMENT when it does not parse); it is stored canonical.
  // NOT_FOUND for an unknown collection; ALREADY_EXISTS for a duplicate;
  // TOO_LARGE past the per-collection limit. Returns the collection.
  CollectionInfo CreateIndex(1: string collection, 2: string path) throws (1: cairn.CairnError e),
  // NOT_FOUND for an unknown collection or index.
  CollectionInfo DropIndex(1: string collection, 2: string path) throws (1: cairn.CairnError e),
  // Every index of `collection` ("" for all), sorted by collection and path,
  // with its build progress. NOT_FOUND for an unknown collection.
  list<IndexStatus> ListIndexes(1: string collection) throws (1: cairn.CairnError e),
  // Replication (docs/design-replication.md): a primary asks to drop a backup
  // from, or admit a learner to, the in-sync set of its partition. Nodes only;
  // the caller must be `change.primary`. Applied only if the map is still at
  // `change.epoch` with the caller as primary; every applied change makes a
  // new epoch. Returns the new map version. STALE_EPOCH when the map moved
  // on (also for a duplicate of an applied request), NOT_PRIMARY when the
  // caller no longer leads the partition, FAILED_PRECONDITION when `node` is
  // not a backup of it or when failover is off (the metaserver's `failover`
  // option), INVALID_ARGUMENT for an unknown partition, PERMISSION_DENIED
  // when the caller is not node `change.primary`.
  i64 ChangeInSync(1: InSyncChange change) throws (1: cairn.CairnError e),
}
