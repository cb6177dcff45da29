// MetaServer: one `cairn-metaserver` process put together: its options, the
// store, the cluster state, the leader election, the Thrift server and a
// ticker that logs node state changes. main.cc parses flags and signals and
// runs one; tests run several in one process over a shared MemMetaStore.
//
// Thread-safety: Start/Stop/Abandon from one thread; the rest is internal.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/config.h"
#include "common/logging.h"
#include "common/status.h"
#include "metaserver/cluster_state.h"
#include "metaserver/failover_service.h"
#include "metaserver/leader_election.h"
#include "metaserver/meta_store.h"

namespace cairn::net {
class ConnectionPool;
class RpcServer;
}  // namespace cairn::net

namespace cairn::metaserver {

// Every option of cairn-metaserver (RegisterOptions describes each one;
// systemd/metaserver.conf.example documents them).
struct MetaServerOptions {
  std::string name;
  std::string listen = "127.0.0.1:7001";
  std::string advertise;
  std::string store = "etcd";
  std::vector<std::string> etcd_endpoints;
  std::string etcd_prefix = "/cairn/";
  std::string etcd_ca;
  std::string etcd_cert;
  std::string etcd_key;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  int64_t partitions = 64;
  int64_t initial_nodes = 1;
  int64_t heartbeat_timeout_ms = 2000;
  int64_t node_down_ms = 30000;
  int64_t election_ttl_s = 3;
  std::string log_level = "info";
  // Replicas per partition, 1..5 (fewer while fewer nodes have registered).
  int64_t replication = 3;
  // Replication and failover (docs/design-replication.md); the chunk servers
  // must run with replication = true.
  bool failover = true;
  // Defaults chosen for fast failover (bench/failover_bench: median 1.4 s).
  int64_t heartbeat_interval_ms = 200;
  int64_t failure_timeout_ms = 1000;
  int64_t lease_ms = 1000;
  int64_t replacement_timeout_ms = 30000;

  // Checks what OptionSet cannot: the partition count is a power of two,
  // addresses parse, store is etcd or memory (etcd needs endpoints), the
  // certificate is node:<name>, timeouts are ordered (also the failover
  // ones, FailoverOptions::Validate), 1 <= replication <= 5, and replication
  // > 1 only with failover.
  // InvalidArgument (or NotFound for a missing file) naming the option.
  Status Validate() const;
  // The failover options these name (valid once Validate passed).
  FailoverOptions Failover() const;
  // "<etcd_prefix>map" and "<etcd_prefix>leader" (a '/' is added to a prefix
  // that lacks one).
  std::string MapKey() const;
  std::string ElectionKey() const;
};

// Registers every option of `o` (with its description, default and bounds).
void RegisterOptions(OptionSet* set, MetaServerOptions* o);

class MetaServer {
 public:
  // Checks the stored map's partition count (FailedPrecondition with the fix
  // when it differs), binds the Thrift server, starts campaigning and returns.
  // `store` and `clock` are borrowed and must outlive the server; with a null
  // store the server opens its own from the options (etcd or memory).
  static Result<std::unique_ptr<MetaServer>> Start(const MetaServerOptions& options,
                                                   MetaStore* store = nullptr,
                                                   Clock* clock = nullptr);
  ~MetaServer();  // Stop()
  MetaServer(const MetaServer&) = delete;
  MetaServer& operator=(const MetaServer&) = delete;

  int port() const;
  const std::string& advertise() const { return advertise_; }
  bool IsLeader() const;
  // OK once this process leads or knows who does (it then answers usefully);
  // Timeout after `timeout`.
  Status WaitForElection(Nanos timeout);
  // Resigns leadership, stops serving and joins every thread. Idempotent.
  void Stop();
  // Stops like a crash: no resignation, the store lease runs out. For tests.
  void Abandon();
  // One failover planning round now (the failover timer runs one every
  // heartbeat_interval / 2). FailedPrecondition when failover is off,
  // Unavailable when not leading. For tests, which drive a ManualClock.
  Status RunFailoverPlan();

 private:
  MetaServer() = default;
  void RunTicker();
  void RunFailoverTimer();
  void Shutdown(bool resign);

  MetaServerOptions options_;
  std::string advertise_;
  Logger log_{"metaserver"};
  std::unique_ptr<MetaStore> owned_store_;
  MetaStore* store_ = nullptr;
  Clock* clock_ = nullptr;
  std::unique_ptr<ClusterState> state_;
  std::unique_ptr<FailoverService> failover_;  // null: failover off
  std::unique_ptr<net::ConnectionPool> pool_;
  std::unique_ptr<CollectionProbe> probe_;
  std::unique_ptr<LeaderElection> election_;
  std::atomic<LeaderElection*> election_ready_{nullptr};
  std::unique_ptr<net::RpcServer> server_;

  std::mutex ticker_mu_;
  std::condition_variable ticker_cv_;
  bool ticker_stop_ = false;  // guarded by ticker_mu_
  std::thread ticker_;
  std::thread failover_timer_;  // runs only with failover on
  bool stopped_ = false;
};

}  // namespace cairn::metaserver
