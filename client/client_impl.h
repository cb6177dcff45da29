// Internals of libcairn's Client (cairn.h): the map cache, the retry loop
// around one RPC, request ids. Internal to client/; the operations live in
// client_docs.cc (single calls), client_stream.cc (put/get streaming,
// copy-on-write, cross-partition rename) and client_list.cc.
//
// Thread-safety: every method may be called concurrently.
// Lock order: refresh_mu_ before mu_.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "ChunkService.h"
#include "MetaService.h"
#include "client/cairn.h"
#include "common/logging.h"
#include "common/mutex.h"
#include "common/worker_pool.h"
#include "thrift/rpc_client.h"

namespace cairn::client {

// "orders/1234": how messages name a document.
std::string DocName(std::string_view collection, std::string_view id);

// Document ids and collection names the client refuses before any RPC
// (docs/design-store.md "Names and limits").
Status ValidateCollectionName(std::string_view name);
Status ValidateDocumentId(std::string_view id);

struct Client::Impl {
  explicit Impl(const Options& o);

  Options options;
  Clock* clock;
  Logger log{"client"};
  std::unique_ptr<net::ConnectionPool> pool;
  // This client's random 128-bit id; every mutation takes the next seq.
  int64_t client_hi = 0;
  int64_t client_lo = 0;
  std::atomic<int64_t> next_seq{1};
  // The chunk servers' block size, learned once (0 = not yet).
  std::atomic<uint32_t> block_bytes{0};

  rpc::RequestId NextRequestId();
  Backoff NewBackoff();

  // The cached map; fetched when there is none.
  Result<std::shared_ptr<const ClusterMap>> Map(Backoff& backoff);
  // Fetches the map again unless the cache is already newer than
  // `seen_version` (another thread refreshed it meanwhile).
  Status RefreshMap(int64_t seen_version, Backoff& backoff);
  // Fetches the map (with retries) and caches it unless the cache is newer.
  Result<std::shared_ptr<const ClusterMap>> FetchMap(Backoff& backoff);
  // One GetMap round over the metaservers (each tried once, starting with
  // the one that answered last).
  Result<rpc::ClusterMap> FetchMapOnce();

  // Runs `fn` on a MetaService client of the leader, with retries.
  Status CallMeta(Backoff& backoff, const std::function<void(rpc::MetaServiceClient&)>& fn);

  // Runs `fn(client, epoch)` against the primary of `partition` under the
  // current map, retrying per Classify() with `backoff`. `fn` may be called
  // several times and must be idempotent from the server's point of view
  // (mutations: the same RequestId every time). Returns the final status.
  Status CallChunk(PartitionId partition, Backoff& backoff,
                   const std::function<void(rpc::ChunkServiceClient&, int64_t epoch)>& fn);
  // Where one read operation goes: `from`, and for kAnyReplica the replica
  // to try first (ClusterMap::Replica(p, pick)); every retry tries the next.
  struct ReadRoute {
    ReadFrom from = ReadFrom::kPrimary;
    uint64_t pick = 0;
    bool allow_backup() const { return from == ReadFrom::kAnyReplica; }
  };
  ReadRoute NewReadRoute(std::optional<ReadFrom> from);
  // CallChunk for a read: to the primary, or a replica per `read`.
  Status CallChunk(PartitionId partition, Backoff& backoff,
                   const std::function<void(rpc::ChunkServiceClient&, int64_t epoch)>& fn,
                   const ReadRoute& read);
  // One attempt of CallChunk against a given route; also reports the map
  // version a CairnError named (0 if none).
  Status CallChunkOnce(const ClusterMap::Route& route,
                       const std::function<void(rpc::ChunkServiceClient&, int64_t epoch)>& fn,
                       int64_t* error_map_version);

  // The block size for new bodies: the chunk servers' (GetStatus, asked once
  // through the primary of `p`), else options.block_bytes.
  uint32_t BlockBytes(PartitionId p, Backoff& backoff);

  Result<PartitionId> PartitionOf(std::string_view collection, std::string_view id,
                                  Backoff& backoff);

  // Waits `d` on the client's clock.
  void Sleep(Nanos d) { clock->SleepFor(d); }

  // Streaming pieces (client_stream.cc).
  Result<DocInfo> PutStreamOnce(std::string_view collection, std::string_view id,
                                const Reader& reader, const WriteOptions& options,
                                const rpc::RequestId& request_id, bool* upload_lost,
                                std::optional<uint64_t> expected_hash);
  Result<DocInfo> CopyDocument(std::string_view collection, std::string_view from,
                               std::string_view to, bool replace, DocInfo* source);

 private:
  Mutex refresh_mu_ ACQUIRED_BEFORE(mu_);
  Mutex mu_;
  std::shared_ptr<const ClusterMap> map_ GUARDED_BY(mu_);
  size_t meta_index_ GUARDED_BY(mu_) = 0;  // the metaserver to try first
  Random rng_ GUARDED_BY(mu_);

 public:
  // Threads for Query's fan-out over partitions, kept between calls (a
  // query used to create and join one thread per partition in flight).
  // Declared last, so destroyed first: its idle threads are joined while
  // the rest of the client still exists.
  WorkerPool fanout;
};

}  // namespace cairn::client
