// libcairn: the client library of Cairn (DESIGN.md, docs/design-store.md).
//
//   client::Options o;
//   o.metaservers = {{"10.0.0.1", 7000}, {"10.0.0.2", 7000}};
//   o.tls = {"/etc/cairn/ca.crt", "/etc/cairn/me.crt", "/etc/cairn/me.key"};
//   ASSIGN_OR_RETURN(auto c, client::Client::Create(o));
//   ASSIGN_OR_RETURN(client::DocInfo d, c->Put("orders", "1234", R"({"total": 5})"));
//   std::string body;
//   RETURN_IF_ERROR(c->Get("orders", "1234", client::StringWriter(&body)).status());
//
// What the library does for every call:
//   - Routing: a document lives in partition PartitionOf(collection, id, P)
//     (common/partitioning.h); the call goes to that partition's primary
//     (replicas[0]) as named by the cached cluster map.
//   - The map comes from MetaService.GetMap, tried on each metaserver in turn
//     (a follower answers UNAVAILABLE naming the leader: the next one is
//     tried). It is fetched again when a call answers NOT_PRIMARY,
//     STALE_EPOCH or UNAVAILABLE, or names a newer map version.
//   - Retries: NOT_PRIMARY, STALE_EPOCH, UNAVAILABLE and TIMEOUT are retried
//     with exponential backoff and full jitter, within Options::deadline and
//     Options::retry.max_attempts. Every retry of a mutation carries the SAME
//     RequestId (a random 128-bit client id per Client, plus a sequence
//     number), so a mutation whose answer was lost is applied once.
//   - Streaming: bodies larger than one block are uploaded block by block
//     (UploadBegin, UploadBlock, Put with upload_id) and read block by block;
//     memory stays at about two blocks whatever the size.
//   - Integrity: the body hash (XXH3-64) is computed while streaming, sent
//     with the put, and checked again at the end of every whole-document read
//     (Corruption on mismatch). Every block carries its own XXH3-64.
//
// Errors are cairn::Status values with messages that name the document
// ("orders/1234: no such document"). The codes callers act on: NotFound,
// AlreadyExists, VersionMismatch, NotEmpty, InvalidArgument, TooLarge,
// PermissionDenied, Corruption (hash mismatch), Unavailable / Timeout (the
// cluster could not be reached within the deadline).
//
// Thread-safety: a Client is thread-safe; calls from many threads run
// concurrently (each uses its own pooled connection). Callbacks (Reader,
// Writer) are called on the calling thread only, never concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/cluster_map.h"
#include "client/retry.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/status.h"
#include "common/strong_id.h"
#include "common/tls.h"

namespace cairn::client {

// expected_version values.
inline constexpr int64_t kAnyVersion = 0;     // no check
inline constexpr int64_t kMustNotExist = -1;  // create only

inline constexpr uint32_t kDefaultBlockBytes = 1u << 20;

// Which replica of a partition serves a read (docs/design-replication.md
// "Reads from backups").
enum class ReadFrom : uint8_t {
  // The partition's primary under its lease: a read sees every write
  // acknowledged before it began.
  kPrimary,
  // Any in-sync replica (a random one per operation, the others and then the
  // primary if it cannot answer): spreads reads over the replicas. A backup
  // answers only while in touch with its primary and the metaserver, and may
  // miss writes acknowledged in about the last second (the chunk servers'
  // backup_read_max_lag_ms); two reads may see versions out of order.
  kAnyReplica,
};

struct Options {
  // Every metaserver, tried in turn. At least one.
  std::vector<HostPort> metaservers;
  // PEM files: cluster CA, this client's certificate and key (`cairn certs`).
  TlsOptions tls;
  int connect_timeout_ms = 3000;
  // One RPC; a slower answer is a Timeout (retried).
  int call_timeout_ms = 30000;
  // One operation, every retry included. A streamed put or get gets this
  // much per block, not for the whole body.
  int deadline_ms = 60000;
  RetryOptions retry;
  // Block size for bodies of new documents when the chunk servers do not
  // say theirs (the client asks once, ChunkService.GetStatus; every block but
  // the last must hold exactly the servers' block size). An existing
  // document's own block size (DocMeta.block_bytes) is used for
  // copy-on-write updates and reads.
  uint32_t block_bytes = kDefaultBlockBytes;
  // Partition pages fetched in parallel by List().
  int list_parallelism = 8;
  // Where Stat, Get, List and Query read unless their options say otherwise.
  ReadFrom read_from = ReadFrom::kPrimary;
  // Clock for backoff and deadlines; nullptr = the real clock. Borrowed.
  Clock* clock = nullptr;
  // Seed for backoff jitter; 0 = random.
  uint64_t seed = 0;

  // InvalidArgument naming what is wrong (no metaserver, bad timeouts...).
  Status Validate() const;
};

// A document version's metadata.
struct DocInfo {
  std::string collection;
  std::string id;
  int64_t version = 0;  // grows with every change
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::map<std::string, std::string> xattrs;  // user.* attributes
  uint64_t body_hash = 0;                     // XXH3-64 of the whole body
  PartitionId partition;
  uint32_t block_bytes = 0;
};

// Options of a put (and of WriteRange's metadata).
struct WriteOptions {
  // kAnyVersion, kMustNotExist, or the exact current version (> 0);
  // VersionMismatch otherwise (AlreadyExists for kMustNotExist).
  int64_t expected_version = kAnyVersion;
  // Unset fields get the server's defaults (a new document) or keep their
  // value (WriteRange).
  std::optional<uint32_t> mode;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<int64_t> mtime_ns;
  std::optional<std::map<std::string, std::string>> xattrs;
};

struct ReadOptions {
  uint64_t offset = 0;
  // Bytes to read from offset; nullopt = to the end. A range past the end is
  // cut at the end (like pread).
  std::optional<uint64_t> length;
  // If set (> 0), the read fails with VersionMismatch unless the document is
  // at this version: keeps several reads of one document consistent.
  int64_t if_version = 0;
  // nullopt: Options::read_from. Every block of one Get comes from one replica.
  std::optional<ReadFrom> read_from;
};

// A body source: fills up to `n` bytes into `buf`, returns how many (0 at the
// end). Called repeatedly on the calling thread.
using Reader = std::function<Result<size_t>(char* buf, size_t n)>;
// A body sink: called with consecutive pieces of the body, in order.
using Writer = std::function<Status(std::string_view data)>;

Reader StringReader(std::string_view data);  // `data` must outlive the Reader
Reader FdReader(int fd);                     // read(2) until end of file; fd borrowed
Writer StringWriter(std::string* out);       // appends; `out` borrowed
Writer FdWriter(int fd);                     // write(2) all; fd borrowed

struct ListOptions {
  // Resume after this cursor ("" = from the start): the next_cursor of the
  // previous page.
  std::string cursor;
  // At most this many items (1..10000).
  uint32_t limit = 1000;
  std::optional<ReadFrom> read_from;  // nullopt: Options::read_from
};

struct ListResult {
  std::vector<DocInfo> items;  // sorted by id (bytewise), across all partitions
  // Empty when the listing is complete; otherwise pass it as
  // ListOptions::cursor. A page may hold fewer than `limit` items and still
  // not be the last: only an empty next_cursor means the end.
  std::string next_cursor;
};

// Queries (docs/query-language.md).
struct QueryOptions {
  // Per partition, on the chunk servers; 0 = the servers' own
  // query_time_limit_ms. A request never gets more than the servers allow,
  // nor more than Options::call_timeout_ms less one second (so that the
  // server's LIMIT_EXCEEDED arrives before the client stops waiting).
  uint64_t time_limit_ms = 0;
  // Projected JSON of the result: asked of every partition (0 = the
  // servers' query_max_result_bytes) and checked on the merged result
  // (0 = kDefaultMaxQueryResultBytes).
  uint64_t max_result_bytes = 0;
  // Calls in flight at once (one thread each): QueryPartitions calls to
  // nodes, then the calls for single partitions. Without batching, a
  // selective query's latency is about one RPC per round of `parallelism`
  // partitions: 16 partitions in one round, the metaserver's default 64 in
  // four; with it, one round per `parallelism` chunk servers.
  int parallelism = 16;
  std::optional<ReadFrom> read_from;  // nullopt: Options::read_from
  // Reads from primaries: one call per chunk server for all the partitions
  // it leads (ChunkService.QueryPartitions), instead of one per partition;
  // a partition that call leaves is asked alone. Off: one call per partition.
  bool batch_by_node = true;
};

inline constexpr uint64_t kDefaultMaxQueryResultBytes = 64ull << 20;

struct QueryRow {
  std::string id;
  std::string json;  // one JSON object, "_id" first (docs/query-language.md "Options")
};

struct QueryStats {
  uint64_t partitions = 0;
  uint64_t partitions_indexed = 0;  // partitions where an index drove the scan
  uint64_t docs_scanned = 0;
  uint64_t bytes_scanned = 0;
  uint64_t docs_matched = 0;  // before the limit
  uint64_t docs_skipped_large = 0;
  std::string index_used;         // one plan an index drove ("" if none)
  int64_t max_partition_ms = 0;   // the slowest partition's own time
  uint64_t node_calls = 0;        // QueryPartitions calls (one per chunk server asked)
  uint64_t partitions_alone = 0;  // partitions asked with a call of their own
};

struct QueryResult {
  std::vector<QueryRow> rows;  // in the query's order, at most its limit
  uint64_t json_bytes = 0;     // sum of the rows' json sizes
  QueryStats stats;
};

struct RenameOptions {
  bool replace = false;  // overwrite an existing target (AlreadyExists otherwise)
};

class BlockUpload;

class Client {
 public:
  // Validates the options, loads the TLS files and prepares the connection
  // pool. Connects nothing yet: the first call fetches the map.
  static Result<std::unique_ptr<Client>> Create(const Options& options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // ---- documents

  // Puts a whole body held in memory. Bodies up to one block go inline in
  // one call; larger ones are streamed like PutStream.
  Result<DocInfo> Put(std::string_view collection, std::string_view id, std::string_view body,
                      const WriteOptions& options = {});
  // Streams a body of any size from `reader` with at most two blocks in
  // memory. A failure while streaming aborts the upload; nothing is
  // written. The reader is read once: an upload that the server forgets
  // (e.g. its primary changed) fails with Unavailable rather than reading
  // the source again (PutFile rewinds a seekable descriptor and retries).
  Result<DocInfo> PutStream(std::string_view collection, std::string_view id, const Reader& reader,
                            const WriteOptions& options = {});
  // Like PutStream from a descriptor; when `fd` is seekable (a regular file)
  // a lost upload is restarted from the file's starting offset.
  Result<DocInfo> PutFile(std::string_view collection, std::string_view id, int fd,
                          const WriteOptions& options = {});

  // Copy-on-write update: a new version equal to the current one with
  // `bytes` written at `offset` (the document grows if needed; a gap is
  // zeros). Only the blocks the range touches are sent; the others are kept
  // from the current version (BlockSpec keep_from_version). The new body
  // hash needs the unchanged blocks' bytes, so they are read (not written).
  // `expected_version` as in WriteOptions (kMustNotExist is refused); the
  // update fails with VersionMismatch if the document changes meanwhile.
  Result<DocInfo> WriteRange(std::string_view collection, std::string_view id, uint64_t offset,
                             std::string_view bytes, int64_t expected_version = kAnyVersion);

  // Streams the body (or a range) to `writer` block by block, memory bounded.
  // A whole-document read checks the body hash at the end: Corruption if it
  // differs (the writer has then seen the bad bytes: discard them). The read
  // is pinned to the version of its first block; VersionMismatch if the
  // document changes midway. Returns the metadata of the version read.
  Result<DocInfo> Get(std::string_view collection, std::string_view id, const Writer& writer,
                      const ReadOptions& options = {});
  Result<DocInfo> Stat(std::string_view collection, std::string_view id);
  // NotFound if absent; VersionMismatch if expected_version > 0 differs.
  Status Delete(std::string_view collection, std::string_view id,
                int64_t expected_version = kAnyVersion);
  // Renames `from` to `to` in one collection. When both names fall in the
  // same partition this is one atomic ChunkService.Rename. Otherwise it is a
  // copy then a delete, NOT atomic: the target is written completely (with
  // the source's metadata) before the source is deleted (only if it is still
  // the version copied), so a failure midway leaves the source, or both,
  // never neither; if the source changed meanwhile the call fails with
  // VersionMismatch and both names exist.
  Result<DocInfo> Rename(std::string_view collection, std::string_view from, std::string_view to,
                         const RenameOptions& options = {});
  // One page of a collection's documents, merged by id across partitions.
  Result<ListResult> List(std::string_view collection, const ListOptions& options = {});
  // Runs a query (docs/query-language.md) over every partition of the
  // collection in parallel and merges the partitions' sorted rows (order,
  // limit) into the result. The text is parsed here first: a malformed query
  // is InvalidArgument (or TooLarge) with the parser's "at column N" message
  // before any RPC. LimitExceeded (not retried) when a partition or the
  // merged result reaches a time or size limit; other errors are retried
  // per partition like other reads.
  Result<QueryResult> Query(std::string_view collection, std::string_view text,
                            const QueryOptions& options = {});

  // ---- collections and the cluster

  // AlreadyExists, unless only a retry of this call found it (its first
  // attempt's answer was lost): collections calls carry no request id.
  Status CreateCollection(std::string_view name);
  // NotFound (same retry rule), NotEmpty.
  Status DropCollection(std::string_view name);
  Result<std::vector<CollectionStatus>> ListCollections();

  // ---- secondary indexes (docs/indexes.md)

  // Defines an index on the field path `path` (query syntax, e.g.
  // customer.country); chunk servers build it in the background and queries
  // use it once ListIndexes says ready. InvalidArgument for a bad path,
  // NotFound for an unknown collection, AlreadyExists (same retry rule as
  // CreateCollection).
  Status CreateIndex(std::string_view collection, std::string_view path);
  // NotFound (same retry rule).
  Status DropIndex(std::string_view collection, std::string_view path);
  // Every index of `collection` ("" for all) with its build progress.
  Result<std::vector<IndexStatus>> ListIndexes(std::string_view collection = "");

  // The current map, fetched from the metaserver (not the cache).
  Result<ClusterMap> GetClusterMap();
  // The replicas chunk server `node` holds, as it reports them (one
  // GetStatus call, no retries: a node that is down answers Unavailable).
  // NotFound when the current map has no such node.
  Result<std::vector<ReplicaStatus>> NodeReplicas(NodeId node);

  // The partition of a document under the cached map (fetching it if none).
  Result<PartitionId> PartitionOfDocument(std::string_view collection, std::string_view id);

  // ---- block-level writes (cairn-fsd; client_blocks.cc)

  // The block size of new bodies of this document's partition (the chunk
  // servers' block_bytes, asked once).
  Result<uint32_t> BlockBytesFor(std::string_view collection, std::string_view id);
  // Starts writing a new version block by block: blocks are sent as they are
  // ready (the upload is opened on the first one) and BlockUpload::Commit
  // writes the version, keeping the blocks not sent from an older version.
  // Nothing is visible before Commit.
  Result<std::unique_ptr<BlockUpload>> BeginBlockUpload(std::string_view collection,
                                                        std::string_view id);
  // A new version with the same body and the metadata in `options` changed
  // (unset fields keep their value); no block is sent or read.
  // options.expected_version as in WriteOptions (kMustNotExist refused); with
  // kAnyVersion a concurrent change is retried a few times.
  Result<DocInfo> UpdateMetadata(std::string_view collection, std::string_view id,
                                 const WriteOptions& options);

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One new version written block by block (Client::BeginBlockUpload).
// Not thread-safe: one caller at a time. The Client must outlive it.
// Destroying it without a successful Commit aborts the upload.
class BlockUpload {
 public:
  ~BlockUpload();
  BlockUpload(const BlockUpload&) = delete;
  BlockUpload& operator=(const BlockUpload&) = delete;

  uint32_t block_bytes() const { return block_bytes_; }
  // Sends block `index`: exactly block_bytes() bytes, except the body's last
  // block (1..block_bytes()). A block may be sent again (the last one wins).
  Status SendBlock(uint64_t index, std::string_view data);
  // Writes the version: `size` bytes whose XXH3-64 is `body_hash`; every
  // block below size not sent is kept from version `keep_version` (which
  // must then hold it with the same length; 0 = none kept: every block must
  // have been sent). Returns after the put is committed. An upload the
  // server forgot (its primary restarted) fails with NotFound: start again.
  Result<DocInfo> Commit(uint64_t size, uint64_t body_hash, int64_t keep_version,
                         const WriteOptions& options);
  // Whether any block was sent (an upload is open).
  bool started() const { return upload_id_ != 0; }

 private:
  friend class Client;
  BlockUpload(Client::Impl* impl, std::string collection, std::string id, PartitionId partition,
              uint32_t block_bytes);
  void Abort();

  Client::Impl* impl_;  // borrowed from the Client
  std::string collection_;
  std::string id_;
  PartitionId partition_;
  uint32_t block_bytes_;
  int64_t upload_id_ = 0;
  bool committed_ = false;
  std::vector<uint64_t> sent_;  // indexes sent, unsorted, may repeat
};

}  // namespace cairn::client
