// ChunkServiceProbe: the CollectionProbe of the daemon, over ChunkService.
//
// Until ChunkService has a CountDocuments call (thrift/chunk.thrift), a node
// is asked with List(limit 1) for every partition it leads (primary) in the
// map: the count returned is the number of those partitions that hold at
// least one document of the collection (0 exactly when it holds none). A
// NOT_FOUND answer (the node does not know the collection) counts as empty:
// a chunk server accepts documents only for collections in its map.
//
// Thread-safe (ConnectionPool is).
#pragma once

#include "metaserver/cluster_state.h"
#include "thrift/rpc_client.h"

namespace cairn::metaserver {

class ChunkServiceProbe final : public CollectionProbe {
 public:
  // Both borrowed; must outlive the probe.
  ChunkServiceProbe(ClusterState* state, net::ConnectionPool* pool) : state_(state), pool_(pool) {}

  Result<int64_t> CountDocuments(const NodeEntry& node, std::string_view collection) override;

 private:
  ClusterState* const state_;
  net::ConnectionPool* const pool_;
};

}  // namespace cairn::metaserver
