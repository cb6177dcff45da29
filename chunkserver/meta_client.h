// How a chunk server talks to the metaserver: register, heartbeat, fetch the
// map. An interface, so that ChunkServer can be tested with a fake and the
// simulation can plug in its own; ThriftMetaClient is the real one.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chunkserver/partition.h"
#include "chunkserver/replica.h"
#include "common/config.h"
#include "common/mutex.h"
#include "common/status.h"

namespace cairn::net {
class ConnectionPool;
}

namespace cairn::chunkserver {

struct DiskReport {
  uint32_t index = 0;
  std::string dir;
  std::string state;  // healthy | failed | rebuilding
  uint64_t io_errors = 0;
  uint64_t checksum_errors = 0;
};

// One secondary index's build state on this node (SecondaryIndex::Progress).
struct IndexReportInfo {
  std::string collection;
  std::string path;
  uint64_t docs_indexed = 0;
  uint64_t docs_total = 0;
  uint64_t entries = 0;
  bool ready = false;
  std::string error;
};

struct HeartbeatInfo {
  NodeId node;
  uint64_t map_version = 0;
  std::vector<DiskReport> disks;
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;
  std::vector<IndexReportInfo> indexes;
  // Replication on: every replica's state, the send time on this node's
  // monotonic clock (leases run from it) and the process incarnation.
  std::optional<std::vector<ReplicaReport>> replicas;
  Nanos sent_at{0};
  uint64_t incarnation = 0;
};

struct HeartbeatAnswer {
  uint64_t map_version = 0;
  // Leases granted for (partition, epoch), running from HeartbeatInfo::sent_at.
  std::vector<std::pair<PartitionId, Epoch>> leases;
};

// Thread-safety: implementations are thread-safe.
class MetaClient {
 public:
  virtual ~MetaClient() = default;
  // Registers (or re-registers) this node; returns its id.
  // `replication`: this node keeps its replicas in step (the metaserver
  // refuses a node that does not run like the cluster).
  virtual Result<NodeId> Register(const std::string& name, const HostPort& advertise,
                                  bool replication) = 0;
  // Returns the metaserver's map version and the leases it granted.
  virtual Result<HeartbeatAnswer> Heartbeat(const HeartbeatInfo& info) = 0;
  virtual Result<ClusterView> GetMap(uint64_t known_version) = 0;
  // A primary's in-sync drop or join (replication); returns the new map
  // version. Fakes without replication keep the default.
  virtual Result<uint64_t> ChangeInSync(const InSyncRequest& request) {
    (void)request;
    return Status::Unavailable("ChangeInSync is not supported by this metaserver client");
  }
};

// MetaService over mutual TLS. Tries the metaserver that answered last
// first, then the leader a follower names ("leader is host:port"), then
// every listed one in turn.
class ThriftMetaClient : public MetaClient {
 public:
  // `pool` is borrowed and must outlive the client.
  ThriftMetaClient(std::vector<HostPort> metaservers, net::ConnectionPool* pool);
  Result<NodeId> Register(const std::string& name, const HostPort& advertise,
                          bool replication) override;
  Result<HeartbeatAnswer> Heartbeat(const HeartbeatInfo& info) override;
  Result<ClusterView> GetMap(uint64_t known_version) override;
  Result<uint64_t> ChangeInSync(const InSyncRequest& request) override;

 private:
  template <class Fn>
  Status CallAny(Fn&& fn);

  const std::vector<HostPort> metaservers_;
  net::ConnectionPool* const pool_;
  Mutex mu_;
  std::optional<HostPort> preferred_ GUARDED_BY(mu_);
};

}  // namespace cairn::chunkserver
