// Thrift <-> libcairn's plain types (STYLE.md: generated types stay inside
// the library's RPC edge). Internal to client/.
#pragma once

#include "ChunkService.h"
#include "MetaService.h"
#include "client/cairn.h"
#include "client/cluster_map.h"

namespace cairn::client {

// Partitions are sorted by id and nodes by id; Validate() is not called here.
ClusterMap FromRpc(const rpc::ClusterMap& m);
DocInfo FromRpc(const rpc::DocMeta& m);
CollectionStatus FromRpc(const rpc::CollectionInfo& c);

}  // namespace cairn::client
