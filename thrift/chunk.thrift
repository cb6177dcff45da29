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
  8: optional bool allow_backup, // stale read from a backup (replication issue)
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
  DocMeta Put(1: PutRequest req) throws (1: cairn.CairnError e),
  // Streams a large body block by block; then Put with upload_id commits it.
  i64 UploadBegin(1: i32 partition, 2: i64 epoch, 3: string collection, 4: string id)
      throws (1: cairn.CairnError e),
  void UploadBlock(1: i64 upload_id, 2: i32 index, 3: binary data, 4: i64 data_hash)
      throws (1: cairn.CairnError e),
  void UploadAbort(1: i64 upload_id) throws (1: cairn.CairnError e),

  GetResult Get(1: GetRequest req) throws (1: cairn.CairnError e),
  DocMeta Stat(1: i32 partition, 2: i64 epoch, 3: string collection, 4: string id)
      throws (1: cairn.CairnError e),
  void Delete(1: DeleteRequest req) throws (1: cairn.CairnError e),
  DocMeta Rename(1: RenameRequest req) throws (1: cairn.CairnError e),
  ListPage List(1: ListRequest req) throws (1: cairn.CairnError e),
}

