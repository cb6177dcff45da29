#include "metaserver/chunk_probe.h"

#include "ChunkService.h"

namespace cairn::metaserver {

Result<int64_t> ChunkServiceProbe::CountDocuments(const NodeEntry& node,
                                                  std::string_view collection) {
  const HostPort endpoint{node.host, node.port};
  const std::string name(collection);
  int64_t count = 0;
  Status s = pool_->Call<rpc::ChunkServiceClient>(
      endpoint, [&](rpc::ChunkServiceClient& c) { count = c.CountDocuments(name); });
  RETURN_IF_ERROR(
      s.WithContext("CountDocuments on node " + node.name + " at " + endpoint.ToString()));
  return count;
}

}  // namespace cairn::metaserver
