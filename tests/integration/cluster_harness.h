// A real local Cairn cluster for integration tests: child processes on
// loopback, certificates made on the spot, everything in one temp directory.
//
//   ClusterOptions o;                       // 3 chunk servers, 4 disks each
//   ASSERT_OK_AND_ASSIGN(auto cluster, Cluster::Start(o));
//   auto client = cluster->NewClient();      // libcairn as user:tester
//   cluster->KillChunkServer(1);             // SIGKILL
//   cluster->RestartChunkServer(1);          // same config, waits for ready
//
// Layout of the directory (Cluster::dir()):
//   (the cluster CA and certificates are in TestPki's own temp directory:
//   pki().certs_dir() holds ms1, cs<i>, tester (user), root (admin))
//   ms/             metaserver.conf, metaserver.log, ready
//   cs<i>/          chunkserver.conf, chunkserver.log, ready, disk0..disk3/
//   etcd            (optional) a private etcd from tests/metaserver
//
// Processes: the metaserver listens on 127.0.0.1, chunk server i on
// 127.0.0.<10+i>, each on a port picked free at start and kept across
// restarts. Readiness is the daemon's --ready-file. Each child gets
// PR_SET_PDEATHSIG=SIGKILL, so a crashed test process takes its cluster with
// it. The destructor stops every process it started by PID (SIGTERM, then
// SIGKILL after a few seconds) and removes the directory, also when a test
// failed; CAIRN_KEEP_CLUSTER_DIR=1 keeps the directory (logs!).
//
// Binary paths come from CMake: CAIRN_METASERVER_BIN, CAIRN_CHUNKSERVER_BIN
// (compile definitions), overridable by environment variables of the same
// name.
//
// Thread-safety: none; drive a Cluster from the test's main thread (clients
// made by NewClient are thread-safe as libcairn says).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/cairn.h"
#include "common/config.h"
#include "common/status.h"
#include "common/tls.h"
#include "tests/common/test_pki.h"

namespace cairn::metaserver::testing {
class EtcdTestServer;
}

namespace cairn::test {

struct ClusterOptions {
  int chunk_servers = 3;
  int disks_per_server = 4;
  uint32_t partitions = 16;
  // store=etcd with a private etcd (tests/metaserver/etcd_test_server.h)
  // instead of store=memory.
  bool use_etcd = false;
  // Replicas per partition. 1 (the default here; the daemons' default is 3):
  // one copy, the metaserver's failover off and the chunk servers'
  // replication off, for the tests that are not about replication. More:
  // failover on and every chunk server replicating (the *_set options below
  // may tune their timeouts). CAIRN_TEST_REPLICATION=R in the environment
  // turns every R = 1 cluster into an R one (at most chunk_servers), to run
  // any suite over replication by hand.
  int replication = 1;
  // Extra `--set key=value` for the metaserver and for every chunk server.
  std::vector<std::string> metaserver_set;
  std::vector<std::string> chunkserver_set;
  // More `--set key=value` for chunk server i, given the metaserver's address
  // and every chunk server's (index = i): e.g. a proxy per node in front of
  // the metaserver, or per node pair through peer_addresses
  // (tests/integration/tcp_proxy.h).
  std::function<std::vector<std::string>(int i, const HostPort& metaserver,
                                         const std::vector<HostPort>& chunkservers)>
      chunkserver_set_for;
  std::chrono::seconds ready_timeout{40};
  // Grace between SIGTERM and SIGKILL when stopping.
  std::chrono::seconds stop_grace{8};
};

// One started daemon.
struct ChildProcess {
  std::string name;  // "ms", "cs0", ...
  std::string dir;   // its directory (config, log, ready file)
  std::vector<std::string> argv;
  pid_t pid = -1;  // -1 when not running
  int last_wait_status = 0;
};

class Cluster {
 public:
  static Result<std::unique_ptr<Cluster>> Start(const ClusterOptions& options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // ---- processes
  // SIGKILL and reap. FailedPrecondition if it is not running.
  Status KillChunkServer(int i);
  // SIGTERM and wait; Internal if it needed SIGKILL or exited non-zero.
  Status StopChunkServer(int i);
  // Starts it again (same config, port and disks) and waits for readiness.
  Status RestartChunkServer(int i);
  Status StopMetaserver();
  Status RestartMetaserver();
  // FailedPrecondition naming every daemon that exited while it should run
  // (with the tail of its log). The tests call it at the end: no crash.
  Status CheckAllRunning();
  pid_t chunkserver_pid(int i) const { return chunkservers_[static_cast<size_t>(i)].pid; }
  pid_t metaserver_pid() const { return metaserver_.pid; }
  int chunk_server_count() const { return static_cast<int>(chunkservers_.size()); }
  // Copies of each partition (CAIRN_TEST_REPLICATION applied).
  int replication() const { return options_.replication; }

  // ---- addresses, files, identities
  const std::string& dir() const { return dir_.path(); }
  HostPort metaserver() const { return metaserver_address_; }
  HostPort chunkserver(int i) const { return chunkserver_addresses_[static_cast<size_t>(i)]; }
  // The disk directories of chunk server i, in slot order.
  std::vector<std::string> DiskDirs(int i) const;
  std::string MetaserverLog() const { return metaserver_.dir + "/metaserver.log"; }
  std::string ChunkServerLog(int i) const;
  // The tail of a log, for failure messages.
  static std::string LogTail(const std::string& path, size_t bytes = 4000);

  // user:tester, admin:root, and any other certificate issued on demand.
  TlsOptions UserTls() const { return pki_->Options("tester"); }
  TlsOptions AdminTls() const { return pki_->Options("root"); }
  TestPki& pki() { return *pki_; }

  client::Options ClientOptions() const;  // user:tester, short deadlines
  Result<std::unique_ptr<client::Client>> NewClient() const;
  // Writes a `cairn` CLI config file (metaservers, tls_*) and returns its path.
  Result<std::string> WriteClientConfig(const std::string& name, const TlsOptions& tls) const;

  // Blocks until the map (as a client sees it) names every chunk server and
  // every partition is placed (placement happens after the chunk servers
  // registered). Start() calls it.
  Status WaitServing(std::chrono::seconds timeout = std::chrono::seconds(40));

 private:
  explicit Cluster(ClusterOptions options);
  Status MakeCertificates();
  Status WriteConfigs();
  Status Launch(ChildProcess& p);
  Status WaitReady(ChildProcess& p);
  Status Stop(ChildProcess& p, bool expect_clean);
  Status Kill(ChildProcess& p);
  ChildProcess& cs(int i) { return chunkservers_[static_cast<size_t>(i)]; }

  ClusterOptions options_;
  TempDir dir_;
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<metaserver::testing::EtcdTestServer> etcd_;
  ChildProcess metaserver_;
  HostPort metaserver_address_;
  std::vector<ChildProcess> chunkservers_;
  std::vector<HostPort> chunkserver_addresses_;
};

// A TCP port on `host` that was free a moment ago.
Result<int> PickFreePortOn(const std::string& host);

// Runs a command to completion with stdout+stderr captured (and stdin from
// /dev/null). Returns the exit code (128+signal when killed).
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::seconds timeout = std::chrono::seconds(60),
                                 const std::vector<std::string>& extra_env = {});

// Peak resident set size (VmHWM) of a process in bytes, from /proc.
Result<uint64_t> PeakRssBytes(pid_t pid);

}  // namespace cairn::test
