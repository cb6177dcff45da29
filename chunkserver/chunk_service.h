// The Thrift adapter of a chunk server: rpc::ChunkServiceIf (thrift/chunk.thrift)
// over DocService. Each handler authorizes the caller, forwards a request
// for a partition this node does not serve, converts the thrift types and
// makes one DocService call; errors become CairnError (thrift/rpc_errors.h).
//
// Authorization (docs/design-store.md "Who may call what"): node:*, user:*
// and admin:* may make every document call and GetStatus; CountDocuments
// (the metaserver's check before dropping a collection) is for node:* and
// admin:* only. Refusals are logged with the identity.
//
// Forwarding: a request from a user or an admin for a partition that the
// cached map gives to another node is sent on to that node through the
// connection pool, with this node's certificate. A request from a node is
// never forwarded again: it gets NOT_PRIMARY. UploadBlock and UploadAbort
// are routed by the partition their upload id carries.
//
// Thread-safety: one handler serves every connection; it is thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "ChunkService.h"
#include "chunkserver/doc_service.h"
#include "chunkserver/query_executor.h"
#include "chunkserver/replica_host.h"
#include "common/config.h"
#include "common/logging.h"
#include "common/worker_pool.h"
#include "raidlib/volume.h"

namespace cairn::net {
class ConnectionPool;
}

namespace cairn::chunkserver {

struct ChunkServiceDeps {
  DocService* service = nullptr;        // borrowed
  raidlib::Volume* volume = nullptr;    // borrowed; for GetStatus
  net::ConnectionPool* pool = nullptr;  // borrowed; nullptr: never forward
  QueryExecutor* executor = nullptr;    // borrowed; nullptr: Query answers UNAVAILABLE
  // The node's query limits: a request may lower them, never raise them.
  QueryLimits query_limits;
  std::string node_name;
  // Whether the last register/heartbeat reached a metaserver (GetStatus).
  std::function<bool()> metaserver_reachable;
  // Replication on: returns the replicas' host (borrowed), nullptr while it
  // is not running (Replicate calls then answer UNAVAILABLE).
  std::function<ReplicaHost*()> replication;
  // Where to reach a peer chunk server for a forwarded call (the node's
  // peer_addresses hook); nullptr: the map's address.
  std::function<HostPort(const NodeAddress&)> peer_address;
};

class ChunkServiceHandler : public rpc::ChunkServiceIf {
 public:
  explicit ChunkServiceHandler(ChunkServiceDeps deps);

  void Put(rpc::DocMeta& out, const rpc::PutRequest& req) override;
  int64_t UploadBegin(int32_t partition, int64_t epoch, const std::string& collection,
                      const std::string& id) override;
  void UploadBlock(int64_t upload_id, int32_t index, const std::string& data,
                   int64_t data_hash) override;
  void UploadAbort(int64_t upload_id) override;
  void Get(rpc::GetResult& out, const rpc::GetRequest& req) override;
  void Stat(rpc::DocMeta& out, int32_t partition, int64_t epoch, const std::string& collection,
            const std::string& id, bool allow_backup) override;
  // Node to node only (docs/design-replication.md).
  void Replicate(const rpc::ReplicateRequest& req) override;
  void ReplicateAcknowledge(const rpc::ReplicateAck& ack) override;
  void InstallSnapshot(rpc::SnapshotChunkAck& out, const rpc::SnapshotChunk& chunk) override;
  void StageBlock(const rpc::StageBlockRequest& req) override;
  void Delete(const rpc::DeleteRequest& req) override;
  void Rename(rpc::DocMeta& out, const rpc::RenameRequest& req) override;
  void List(rpc::ListPage& out, const rpc::ListRequest& req) override;
  void Query(rpc::QueryResult& out, const rpc::QueryRequest& req) override;
  void QueryPartitions(std::vector<rpc::QueryPartAnswer>& out,
                       const std::vector<rpc::QueryRequest>& parts) override;
  int64_t CountDocuments(const std::string& collection) override;
  void GetStatus(rpc::NodeStatus& out) override;

 private:
  enum class Access { kClient, kNodeOrAdmin, kNode };
  // Throws PERMISSION_DENIED unless the current caller may make `call`.
  void Authorize(Access access, const char* call) const;
  // If the request should go to another node, calls `fn` on a client to it
  // (throwing its error) and returns true.
  template <class Fn>
  bool MaybeForward(int32_t partition, Fn&& fn, bool allow_backup = false);
  rpc::DocMeta ToThrift(const DocEntry& e) const;
  // One partition's part of a query, here (no forwarding); throws
  // rpc::CairnError. The time limit counts from `start`.
  void RunQuery(rpc::QueryResult& out, const rpc::QueryRequest& req, const query::Query& q,
                std::chrono::steady_clock::time_point start);
  // RunQuery's checks (routing, a query executor) and the limits the part
  // runs under, what is left of its time limit counted from `start`; throws
  // rpc::CairnError.
  QueryLimits PartLimits(const rpc::QueryRequest& req,
                         std::chrono::steady_clock::time_point start) const;
  // QueryPartitions' merged walk (QueryExecutor::RunMerged) over the parts
  // that pass PartLimits: answers them (rows or one error for all) and marks
  // them in `answered`; leaves the others for the caller (a part refused by
  // PartLimits is answered with its error).
  void RunMergedParts(std::vector<rpc::QueryPartAnswer>& out,
                      const std::vector<rpc::QueryRequest>& parts, const query::Query& q,
                      std::chrono::steady_clock::time_point start, std::vector<char>* answered);

  ChunkServiceDeps deps_;
  Logger log_;
  // Threads for QueryPartitions' parts, kept between calls.
  WorkerPool query_pool_;
};

}  // namespace cairn::chunkserver
