// Cairn's RPC interface: the public client API and the calls between
// processes. Every connection is Thrift binary protocol over a buffered
// transport over mutual TLS 1.3 (docs/design-store.md). Fields are never
// renumbered or reused; new fields are optional.

namespace cpp cairn.rpc
namespace py cairn_rpc

// ---------------------------------------------------------------- errors

enum ErrorCode {
  NOT_FOUND = 1,
  ALREADY_EXISTS = 2,
  INVALID_ARGUMENT = 3,
  VERSION_MISMATCH = 4,   // expected_version did not match
  NOT_PRIMARY = 5,        // refresh the map and retry with the same request id
  STALE_EPOCH = 6,        // refresh the map and retry with the same request id
  UNAVAILABLE = 7,        // retry later (node starting, partition moving)
  TIMEOUT = 8,
  PERMISSION_DENIED = 9,
  TOO_LARGE = 10,         // a size limit; the message names it
  DATA_LOSS = 11,         // stored data could not be recovered
  NOT_EMPTY = 12,         // e.g. dropping a collection that has documents
  INTERNAL = 13,
}

exception CairnError {
  1: ErrorCode code,
  2: string message,
  // The sender's map version, when the error is about routing.
  3: optional i64 map_version,
}

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
}

// ---------------------------------------------------------------- documents

struct DocMeta {
  1: string collection,
  2: string id,
  3: i64 version,           // grows with every change of the document
  4: i64 size,
  5: i64 mtime_ns,
  6: i64 ctime_ns,
  7: i32 mode,
  8: i32 uid,
  9: i32 gid,
  10: map<string, binary> xattrs,   // user.* attributes
  11: i64 body_hash,        // XXH3-64 of the whole body
  12: i32 partition,
  13: i32 block_bytes,      // block size of this version
}

// Identifies a mutation across retries: (client, sequence). A retried
// mutation with the same id is applied once and answered with the first
// result.
struct RequestId {
  1: i64 client_hi,
  2: i64 client_lo,
  3: i64 seq,
}

// A body block of a put. Either new bytes or a block kept from the version
// being replaced (copy-on-write).
struct BlockSpec {
  1: i32 index,
  2: optional binary data,      // new bytes (at most block_bytes)
  3: optional i64 data_hash,    // XXH3-64 of data; checked by every hop
  4: optional i64 keep_from_version, // reuse block `index` of this version
}

struct PutRequest {
  1: i32 partition,
  2: i64 epoch,             // the client's view; STALE_EPOCH if older
  3: RequestId request_id,
  4: string collection,
  5: string id,
  // -1: must not exist; 0: any; >0: must be this version.
  6: i64 expected_version,
  7: i64 size,
  8: i64 body_hash,
  9: optional i32 mode,
  10: optional i32 uid,
  11: optional i32 gid,
  12: optional i64 mtime_ns,
  13: optional map<string, binary> xattrs,
  // Small bodies inline (at most one block); large ones through an upload.
  14: optional binary body,
  15: optional i64 upload_id,
  16: optional list<BlockSpec> kept_blocks,
}

struct GetRequest {
  1: i32 partition,
  2: i64 epoch,
  3: string collection,
  4: string id,
  5: i64 offset,
  6: i32 length,            // at most one block's worth per call
  7: optional i64 if_version, // VERSION_MISMATCH if the document changed
  8: optional bool allow_backup, // stale read from a backup (replication issue)
}

struct GetResult {
  1: DocMeta meta,
  2: binary data,
}

struct DeleteRequest {
  1: i32 partition,
  2: i64 epoch,
  3: RequestId request_id,
  4: string collection,
  5: string id,
  6: i64 expected_version,  // 0: any
}

struct RenameRequest {
  1: i32 partition,         // both names must be in this partition
  2: i64 epoch,
  3: RequestId request_id,
  4: string collection,
  5: string from_id,
  6: string to_id,
  7: bool replace,          // replace an existing to_id
}

struct ListRequest {
  1: i32 partition,
  2: i64 epoch,
  3: string collection,
  4: string after_id,       // "" from the start
  5: i32 limit,
}

struct ListPage {
  1: list<DocMeta> items,   // sorted by id
  2: bool more,
}

// ---------------------------------------------------------------- services

// Served by every chunk server. A request for a partition the server does
// not hold is forwarded to the one that does (thin clients may talk to one
// node), unless the caller is itself a node.
service ChunkService {
  DocMeta Put(1: PutRequest req) throws (1: CairnError e),
  // Streams a large body block by block; then Put with upload_id commits it.
  i64 UploadBegin(1: i32 partition, 2: i64 epoch, 3: string collection, 4: string id)
      throws (1: CairnError e),
  void UploadBlock(1: i64 upload_id, 2: i32 index, 3: binary data, 4: i64 data_hash)
      throws (1: CairnError e),
  void UploadAbort(1: i64 upload_id) throws (1: CairnError e),

  GetResult Get(1: GetRequest req) throws (1: CairnError e),
  DocMeta Stat(1: i32 partition, 2: i64 epoch, 3: string collection, 4: string id)
      throws (1: CairnError e),
  void Delete(1: DeleteRequest req) throws (1: CairnError e),
  DocMeta Rename(1: RenameRequest req) throws (1: CairnError e),
  ListPage List(1: ListRequest req) throws (1: CairnError e),
}

struct HeartbeatRequest {
  1: i32 node_id,
  2: i64 map_version,
  3: list<DiskInfo> disks,
  4: i64 capacity_bytes,
  5: i64 used_bytes,
}

struct HeartbeatReply {
  1: i64 map_version,       // fetch the map if newer than the node's
}

struct NodeRegistration {
  1: string name,           // must match the certificate
  2: string host,
  3: i32 port,
}

// Served by the metaserver leader; followers answer UNAVAILABLE with the
// leader's address in the message.
service MetaService {
  ClusterMap GetMap(1: i64 known_version) throws (1: CairnError e),
  i32 RegisterNode(1: NodeRegistration reg) throws (1: CairnError e),
  HeartbeatReply Heartbeat(1: HeartbeatRequest req) throws (1: CairnError e),
  CollectionInfo CreateCollection(1: string name) throws (1: CairnError e),
  void DropCollection(1: string name) throws (1: CairnError e),
}
