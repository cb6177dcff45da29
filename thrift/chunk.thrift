// Documents: the chunk servers' service (docs/design-store.md). Fields are never renumbered or reused; new fields are optional.
include "cairn.thrift"

namespace cpp cairn.rpc
namespace py cairn_rpc.chunk

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
  3: cairn.RequestId request_id,
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
  // Also served by an in-sync backup in recent touch with its primary and
  // the metaserver: may miss writes of about the last second
  // (docs/design-replication.md "Reads from backups").
  8: optional bool allow_backup,
}

struct GetResult {
  1: DocMeta meta,
  2: binary data,
}

struct DeleteRequest {
  1: i32 partition,
  2: i64 epoch,
  3: cairn.RequestId request_id,
  4: string collection,
  5: string id,
  6: i64 expected_version,  // 0: any
}

struct RenameRequest {
  1: i32 partition,         // both names must be in this partition
  2: i64 epoch,
  3: cairn.RequestId request_id,
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
  6: optional bool allow_backup, // as in GetRequest
}

struct ListPage {
  1: list<DocMeta> items,   // sorted by id
  2: bool more,
}

// ---------------------------------------------------------------- queries

// One partition's part of a query (docs/query-language.md "Execution").
struct QueryRequest {
  1: i32 partition,
  2: i64 epoch,
  3: string collection,
  4: string query,          // the query text: filter and ?options
  // Lower the chunk server's own limits for this request (absent or 0: the
  // server's query_time_limit_ms / query_max_result_bytes). A request
  // cannot raise them above the server's.
  5: optional i64 time_limit_ms,
  6: optional i64 max_result_bytes,
  7: optional bool allow_backup, // as in GetRequest
}

struct QueryRow {
  1: binary id,             // the document id (any bytes)
  2: string json,           // the projected document, "_id" first
  3: optional string sort_keys, // query::EncodeSortKeys, when the query sorts
}

struct QueryStats {
  1: i64 docs_scanned,      // documents loaded and filtered
  2: i64 bytes_scanned,     // their body bytes
  3: i64 docs_matched,
  4: i64 docs_skipped_large, // over query_max_body_bytes: not read, never match
  5: string index_used,     // "" for a full scan, else the index plan
  6: i64 elapsed_ms,
}

// The partition's matching rows, sorted by the query's order and cut at its
// limit (query::TopK).
struct QueryResult {
  1: list<QueryRow> rows,
  2: QueryStats stats,
}

// One partition's answer within QueryPartitions: its result, or the error
// it alone met (the others may have answered), or neither when the node
// left it out to keep the reply small (`skipped`: ask it with Query).
struct QueryPartAnswer {
  1: i32 partition,
  2: optional QueryResult result,
  3: optional cairn.CairnError error,
  4: optional bool skipped,
}

// ---------------------------------------------------------------- node status

struct NodeDisk {
  1: i32 index,
  2: string dir,
  3: string state,          // healthy | failed | rebuilding
  4: i64 io_errors,
  5: i64 checksum_errors,
  6: i64 repaired_units,
  7: i64 capacity_bytes,    // of the file system holding the directory
  8: i64 used_bytes,        // used on that file system (by anything)
}

struct PartitionStatus {
  1: i32 partition,
  2: i64 epoch,             // from the map; 0 if this node does not serve it
  3: string role,           // primary | none; replicated: primary | backup | learner | fenced | removed
  4: i64 last_lsn,
  5: i64 documents,
  // A snapshot being received (replicated): its bytes so far and in all
  // (state plus raw block bytes); 0 / 0 when none is in progress.
  6: i64 snapshot_bytes_done,
  7: i64 snapshot_bytes_total,
}

struct StoreStats {
  1: i64 documents,
  2: i64 live_bytes,
  3: i64 dead_bytes,
  4: i64 cache_hits,
  5: i64 cache_misses,
  6: i64 cache_bytes,
  7: i64 mutations_applied,
  8: i64 mutations_deduplicated,
  9: i64 blocks_written,
  10: i64 checkpoints,
  11: i64 compactions,
  12: i64 segments_released,
  13: i64 volume_end_offset, // bytes appended to the volume's log, ever
}

struct NodeStatus {
  1: string name,
  2: i32 node_id,           // 0 until registered
  3: i64 map_version,
  4: list<NodeDisk> disks,
  5: i64 capacity_bytes,    // sums over the disks
  6: i64 used_bytes,
  7: list<PartitionStatus> partitions, // held by the store or given by the map
  8: StoreStats store,
  9: i32 open_uploads,
  10: bool metaserver_reachable, // the last register/heartbeat succeeded
  11: i32 block_bytes,
  12: string rebuild,       // "" or a line about a disk rebuild in progress
  13: i64 backup_reads,     // reads served here as a backup (allow_backup), since start
  // Blocks of uploads streamed ahead of their puts, since start: handed on
  // to backups here as a primary, and taken here as a backup by the put
  // that named them (docs/design-replication.md "Large puts").
  14: optional i64 streamed_blocks_sent,
  15: optional i64 streamed_blocks_claimed,
}

// ---------------------------------------------------------------- replication

// Replication messages between the replicas of a partition
// (docs/design-replication.md "Messages"); plain-type twins of
// chunkserver/replica.h. Issue 6 phase 2 adds the ChunkService calls that
// carry them.

// One entry of a partition's replicated log.
struct ReplLogEntry {
  1: i64 lsn,
  2: i64 epoch,             // of the primary that created it
  3: cairn.RequestId request_id,
  4: binary payload,        // the mutation record; empty for a no-op
  5: bool noop,
}

// Primary -> replica: entries after (prev_lsn, prev_epoch) and the commit point.
struct ReplicateRequest {
  1: i32 partition,
  2: i64 epoch,
  3: i32 from_node,
  4: i64 prev_lsn,
  5: i64 prev_epoch,
  6: list<ReplLogEntry> entries,  // empty: a heartbeat carrying commit_lsn
  7: i64 commit_lsn,
}

// Replica -> primary. ok: equal to the primary's log and durable through
// last_lsn. Not ok: resume after last_lsn, or (epoch newer) the sender is
// deposed.
struct ReplicateAck {
  1: i32 partition,
  2: i64 epoch,
  3: i32 from_node,
  4: bool ok,
  5: i64 last_lsn,
}

// Primary -> replica too far behind: one chunk of the applied state at lsn,
// streamed in order and acknowledged chunk by chunk (resumable by
// snapshot_id and chunk index). Layout of `data`: docs/snapshot-stream.md.
struct SnapshotChunk {
  1: i32 partition,
  2: i64 epoch,
  3: i32 from_node,
  4: i64 lsn,
  5: i64 lsn_epoch,
  6: i64 snapshot_id,
  7: i32 chunk_index,
  8: bool last,
  9: binary data,
}

// The receiver's answer to a chunk: the index of the chunk it wants next
// (the one after it when taken; an earlier one when it lost what it had
// staged; a later one for a chunk it already held), or `done` when the
// snapshot is installed or not needed (the sender stops).
struct SnapshotChunkAck {
  1: i32 next_chunk,
  2: bool done,
}

// Primary -> replica, ahead of a large put entry (its blocks hold more than
// the host's stage_bytes): one raw block of the entry (partition, lsn,
// epoch), which then travels without its blocks and claims these.
// With `ahead` set, a block of an upload still being written, streamed on
// as it reaches the primary `from_node` (lsn and index are 0): the replica
// keeps it under (partition, from_node, source_offset), the block's offset
// in the primary's volume, which the entry's record names when it comes.
struct StageBlockRequest {
  1: i32 partition,
  2: i64 epoch,
  3: i64 lsn,
  4: i32 index,
  5: i64 hash,              // the block's content hash (XXH3-64 of data)
  6: binary data,
  7: optional bool ahead,
  8: optional i64 source_offset,
  9: optional i32 from_node,
}

// ---------------------------------------------------------------- services

// Served by every chunk server. A request for a partition the server does
// not hold is forwarded to the one that does (thin clients may talk to one
// node), unless the caller is itself a node.
service ChunkService {
  DocMeta Put(1: PutRequest req) throws (1: cairn.CairnError e),
  // Streams a large body block by block; then Put with upload_id commits it.
  i64 UploadBegin(1: i32 partition, 2: i64 epoch, 3: string collection, 4: string id)
      throws (1: cairn.CairnError e),
  void UploadBlock(1: i64 upload_id, 2: i32 index, 3: binary data, 4: i64 data_hash)
      throws (1: cairn.CairnError e),
  void UploadAbort(1: i64 upload_id) throws (1: cairn.CairnError e),

  GetResult Get(1: GetRequest req) throws (1: cairn.CairnError e),
  DocMeta Stat(1: i32 partition, 2: i64 epoch, 3: string collection, 4: string id,
               5: bool allow_backup) // as in GetRequest; absent: false
      throws (1: cairn.CairnError e),
  void Delete(1: DeleteRequest req) throws (1: cairn.CairnError e),
  DocMeta Rename(1: RenameRequest req) throws (1: cairn.CairnError e),
  ListPage List(1: ListRequest req) throws (1: cairn.CairnError e),
  // Runs a query on one partition. INVALID_ARGUMENT / TOO_LARGE for a
  // malformed query (the parser's positioned message), LIMIT_EXCEEDED when
  // the time or result-size limit is reached.
  QueryResult Query(1: QueryRequest req) throws (1: cairn.CairnError e),
  // The same query on several partitions of this node in one call (one
  // QueryRequest each, in any order; answers in the same order). Never
  // forwarded: a partition this node is not the primary of at the given
  // epoch gets its own NOT_PRIMARY / STALE_EPOCH error, and the client asks
  // it with Query. The parts run in parallel under one time limit; a part
  // whose rows would take the reply past a few tens of MiB is `skipped`.
  list<QueryPartAnswer> QueryPartitions(1: list<QueryRequest> parts)
      throws (1: cairn.CairnError e),

  // Documents of `collection` over every partition this node holds (the
  // metaserver asks every node before dropping a collection). Callers:
  // node:* and admin:*.
  i64 CountDocuments(1: string collection) throws (1: cairn.CairnError e),
  // Disks, partitions and store counters of this node (never forwarded).
  NodeStatus GetStatus() throws (1: cairn.CairnError e),
  // Replication (docs/design-replication.md), node to node only: a primary's
  // entries (payloads carry the put's block bytes) and a replica's
  // acknowledgement. Answered at once; the effects travel as new calls.
  void Replicate(1: ReplicateRequest req) throws (1: cairn.CairnError e),
  void ReplicateAcknowledge(1: ReplicateAck ack) throws (1: cairn.CairnError e),
  // A replica too far behind the primary's kept log: its applied state, one
  // chunk per call; answered once the chunk is written (staged) here.
  SnapshotChunkAck InstallSnapshot(1: SnapshotChunk chunk) throws (1: cairn.CairnError e),
  // One block of a large entry, ahead of the entry (StageBlockRequest).
  void StageBlock(1: StageBlockRequest req) throws (1: cairn.CairnError e),
}

