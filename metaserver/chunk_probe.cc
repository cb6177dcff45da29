#include "metaserver/chunk_probe.h"

#include "ChunkService.h"

namespace cairn::metaserver {

Result<int64_t> ChunkServiceProbe::CountDocuments(const NodeEntry& node,
                                                  std::string_view collection) {
  ASSIGN_OR_RETURN(ClusterMap map, state_->Map());
  const HostPort endpoint{node.host, node.port};
  int64_t non_empty = 0;
  for (const PartitionEntry& p : map.partitions) {
    if (p.replicas.empty() || p.replicas[0] != node.id) continue;
    rpc::ListRequest req;
    req.partition = static_cast<int32_t>(p.id.value());
    req.epoch = static_cast<int64_t>(p.epoch.value());
    req.collection = std::string(collection);
    req.after_id = "";
    req.limit = 1;
    rpc::ListPage page;
    Status s = pool_->Call<rpc::ChunkServiceClient>(
        endpoint, [&](rpc::ChunkServiceClient& c) { c.List(page, req); });
    if (s.code() == StatusCode::kNotFound) continue;
    RETURN_IF_ERROR(s.WithContext("List partition " + std::to_string(p.id.value()) + " on " +
                                  endpoint.ToString()));
    if (!page.items.empty()) ++non_empty;
  }
  return non_empty;
}

}  // namespace cairn::metaserver
