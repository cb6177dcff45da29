// ChunkServer: the cairn-chunkserver daemon assembled (docs/design-store.md
// "Processes, configuration and bootstrap"): options, the raidlib volume and
// the DocStore on it, the partition logic and DocService, the Thrift server
// over mutual TLS, registration and heartbeats to the metaserver, periodic
// checkpoints, compaction and upload expiry. main.cc only parses the command
// line, handles signals and tells systemd.
//
// Start: validates the options, checks that the certificate names this node
// ("node:<name>"), creates the volume if every disk directory is empty (opens
// it otherwise), opens the store, starts serving, registers with a
// metaserver and fetches the map. If no metaserver answers it serves anyway
// (document calls answer UNAVAILABLE until a map arrives) and keeps trying
// from the heartbeat thread; later it keeps serving with the last map while
// the metaserver is down.
//
// Stop: stops the server (in-flight calls finish or fail), the background
// threads, checkpoints, and closes the store and the volume cleanly.
//
// Thread-safety: Start/Stop from one thread; the accessors are thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "chunkserver/doc_service.h"
#include "chunkserver/doc_store.h"
#include "chunkserver/index_source.h"
#include "chunkserver/meta_client.h"
#include "chunkserver/partition.h"
#include "chunkserver/query_executor.h"
#include "chunkserver/replica_host.h"
#include "chunkserver/secondary_index.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/logging.h"
#include "common/mutex.h"
#include "raidlib/volume.h"

namespace cairn::net {
class ConnectionPool;
class RpcServer;
}  // namespace cairn::net

namespace cairn::chunkserver {

class ThriftReplicaTransport;  // chunkserver/replica_transport.h

struct ChunkServerOptions {
  std::string name;
  std::string listen = "0.0.0.0:7100";
  std::string advertise;  // "" = listen (with the bound port)
  std::vector<std::string> disks;
  std::vector<std::string> metaservers;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  uint64_t block_bytes = 1u << 20;
  uint64_t cache_bytes = 64ull << 20;
  uint64_t header_cache_bytes = 64ull << 20;
  uint64_t max_document_bytes = 4ull << 30;
  int64_t zstd_level = 3;
  int64_t heartbeat_interval_ms = 200;
  int64_t checkpoint_interval_s = 300;
  int64_t compact_interval_s = 600;
  int64_t upload_idle_timeout_s = 600;
  int64_t max_uploads = 1024;
  // Query execution (docs/query-language.md "Limits"): per partition.
  int64_t query_time_limit_ms = 30000;
  uint64_t query_max_result_bytes = 64ull << 20;
  uint64_t query_max_body_bytes = 16ull << 20;
  // Secondary indexes (docs/indexes.md); bodies over query_max_body_bytes are
  // left out of them, as queries never match those.
  int64_t index_build_docs_per_s = 50000;
  // Replication (docs/design-replication.md): the partitions' replicas are
  // kept in step by their primaries; must equal the metaserver's failover
  // (the metaserver refuses the node otherwise).
  bool replication = true;
  int64_t lease_ms = 1000;                // equal to the metaserver's lease_ms
  int64_t replication_timeout_ms = 1000;  // a backup this late is reported
  // A read that allows a backup (GetRequest.allow_backup...) is served by an
  // in-sync backup only while it heard from its primary and the metaserver
  // within this: the bound on how stale such a read can be.
  int64_t backup_read_max_lag_ms = 1000;
  int64_t replication_log_entries = 1024;  // kept for lagging replicas
  int64_t snapshot_rate_mb_s = 100;        // snapshot sending, MiB/s (0: no limit)
  // A test and operations hook: "name=host:port" entries. Every connection
  // this chunk server makes to peer `name` (replication messages, forwarded
  // calls) goes to host:port instead of the address the map advertises, e.g.
  // a fault-injecting proxy per node pair (tests/integration/tcp_proxy.h) or
  // a tunnel. The peer's certificate is checked as always. Clients and the
  // metaserver still use the advertised address. Empty: the map's address.
  std::vector<std::string> peer_addresses;
  std::string log_level = "info";

  // Registers every option with its description, default and bounds.
  void Register(OptionSet* set);
  // Cross-field checks the OptionSet cannot make.
  Status Validate() const;
};

class ChunkServer {
 public:
  struct Seams {
    MetaClient* meta = nullptr;  // borrowed; nullptr: MetaService over TLS
    // Secondary indexes for queries; borrowed; nullptr: the chunk server's own
    // (SecondaryIndex, kept from the map's definitions).
    IndexSource* index = nullptr;
  };
  static Result<std::unique_ptr<ChunkServer>> Start(const ChunkServerOptions& options, Seams seams);
  ~ChunkServer();  // Stop()
  ChunkServer(const ChunkServer&) = delete;
  ChunkServer& operator=(const ChunkServer&) = delete;

  // The bound port.
  int port() const;
  // Idempotent; see the file comment. Returns the checkpoint's status.
  Status Stop();

  // Fetches the map; returns once a fetch that started after the call has
  // finished (concurrent callers share one).
  void RefreshMap();
  // One heartbeat round (register first if needed); what the heartbeat
  // thread does every heartbeat_interval_ms.
  void HeartbeatOnce();
  bool metaserver_reachable() const { return reachable_.load(); }

  DocService* service() { return service_.get(); }
  PartitionLogic* logic() { return logic_.get(); }
  DocStore* store() { return store_.get(); }
  // The replicas' host while replication runs (registered, map known), else
  // nullptr.
  ReplicaHost* replicas() { return replica_host_.load(); }
  // The secondary indexes (the query executor's IndexSource).
  SecondaryIndex* index() { return index_.get(); }
  raidlib::Volume* volume() { return volume_.get(); }

 private:
  ChunkServer(ChunkServerOptions options, Seams seams);
  Status Init();
  Status OpenStorage();
  bool TryRegister();
  // Replication: starts the replicas' host once this node has its id.
  Status StartReplication();
  // Hands the map's configuration of every partition this node holds or
  // held to its replica.
  void PushConfigs();
  // Where to reach peer `n`: its peer_addresses entry, else the map's
  // address.
  HostPort PeerAddress(const NodeAddress& n) const;
  void HeartbeatLoop();
  void MaintenanceLoop();

  const ChunkServerOptions options_;
  Logger log_;
  std::unique_ptr<net::ConnectionPool> pool_;
  std::unique_ptr<net::ConnectionPool> replica_pool_;  // replication: short timeouts
  std::unique_ptr<MetaClient> own_meta_;
  MetaClient* meta_ = nullptr;
  std::unique_ptr<raidlib::Volume> volume_;
  std::unique_ptr<DocStore> store_;
  std::unique_ptr<SecondaryIndex> index_;  // observes store_: destroyed before it
  std::unique_ptr<PartitionLogic> logic_;
  std::unique_ptr<DocService> service_;
  IndexSource* index_source_ = nullptr;  // Seams::index (tests); else index_
  std::unique_ptr<QueryExecutor> executor_;
  std::unique_ptr<net::RpcServer> server_;
  HostPort advertise_;
  // options_.peer_addresses parsed (node name -> address); set by Init,
  // read-only after.
  std::map<std::string, HostPort> peer_addresses_;
  // Replication (options_.replication).
  std::unique_ptr<ThriftReplicaTransport> replica_transport_;
  std::unique_ptr<ReplicaMetaLink> replica_meta_;
  std::unique_ptr<ReplicaHost> replicas_;
  std::atomic<ReplicaHost*> replica_host_{nullptr};
  uint64_t incarnation_ = 0;

  std::atomic<bool> reachable_{false};
  std::atomic<bool> registered_{false};
  // Serializes map fetches. refreshes_done_ counts finished ones: a caller
  // that sees two finish after it arrived knows one started after it did,
  // and needs no fetch of its own (concurrent callers share fetches).
  Mutex refresh_mu_;
  std::atomic<uint64_t> refreshes_done_{0};

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by stop_mu_
  bool stopped_ = false;   // Stop() ran (Start/Stop thread only)
  std::thread heartbeat_;
  std::thread maintenance_;
};

}  // namespace cairn::chunkserver
