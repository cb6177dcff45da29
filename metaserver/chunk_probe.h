// ChunkServiceProbe: the CollectionProbe of the daemon, over ChunkService:
// one CountDocuments(collection) call per node (thrift/chunk.thrift), which
// counts the collection's documents over every partition the node stores.
// A node that cannot be reached, or answers with an error, makes the probe
// fail (DropCollection then answers UNAVAILABLE).
//
// Thread-safe (ConnectionPool is).
#pragma once

#include "metaserver/cluster_state.h"
#include "thrift/rpc_client.h"

namespace cairn::metaserver {

class ChunkServiceProbe final : public CollectionProbe {
 public:
  // Borrowed; must outlive the probe. Its TLS identity is the metaserver's
  // node:* certificate (ChunkService lets node:* and admin:* count).
  explicit ChunkServiceProbe(net::ConnectionPool* pool) : pool_(pool) {}

  Result<int64_t> CountDocuments(const NodeEntry& node, std::string_view collection) override;

 private:
  net::ConnectionPool* const pool_;
};

}  // namespace cairn::metaserver
