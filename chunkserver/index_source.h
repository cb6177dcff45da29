// The seam between query execution on a chunk server and its secondary
// indexes. The executor (the query RPC handler) asks an IndexSource which
// indexed paths of a collection are ready on a partition, plans with
// query::PlanIndex over them, and for a kLookups plan takes the union of
// Lookup() over the plan's lookups as its candidates; the full filter still
// runs on each candidate. Without an IndexSource (or with no ready path) the
// executor scans. Implemented by the secondary-index component.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/strong_id.h"
#include "query/index_plan.h"

namespace cairn::chunkserver {

class IndexSource {
 public:
  virtual ~IndexSource() = default;

  // Indexed field paths of `collection` whose index on partition `p` is
  // complete (built and maintained): only these may drive a query.
  virtual std::vector<query::Path> ReadyPaths(PartitionId p, std::string_view collection) const = 0;

  // Ids of the documents of `collection` on partition `p` whose whole value
  // at lookup.path satisfies lookup.Contains, sorted and unique. A path that
  // is not ready gives FailedPrecondition (the executor then scans).
  virtual Result<std::vector<std::string>> Lookup(PartitionId p, std::string_view collection,
                                                  const query::IndexLookup& lookup) const = 0;
};

}  // namespace cairn::chunkserver
