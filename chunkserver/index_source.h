// The seam between query execution on a chunk server and its secondary
// indexes. The executor (the query RPC handler) asks an IndexSource which
// indexed paths of a collection are ready on a partition, plans with
// query::PlanIndex over them, and for a kLookups plan takes the union of
// Lookup() over the plan's lookups as its candidates; the full filter still
// runs on each candidate. For a sorted query with a limit whose first sort
// key is a ready path, it may instead Walk() that index in sort order and
// stop early (query_executor.h). Without an IndexSource (or with no ready
// path) the executor scans. Implemented by the secondary-index component.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/strong_id.h"
#include "query/index_plan.h"

namespace cairn::chunkserver {

// One page of an ordered walk over one index of one partition.
struct IndexWalkRequest {
  query::Path path;
  bool descending = false;  // false: ascending key order (query/index_key.h)
  // Only entries whose key this lookup (on `path`) contains; nullopt: all.
  std::optional<query::IndexLookup> bound;
  // Resume strictly after this (encoded key, id) in walk order; nullopt:
  // from the first entry.
  std::optional<std::pair<std::string, std::string>> after;
  size_t max_entries = 256;  // >= 1
};

struct IndexWalkEntry {
  std::string key;  // query::EncodeIndexKey of the value at the path
  std::string id;
};

struct IndexWalkPage {
  // In walk order: by key (ascending or descending); entries of one key in
  // some order of their ids (the caller orders ties itself).
  std::vector<IndexWalkEntry> entries;
  bool more = false;  // false: the walk is complete
};

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

  // Up to req.max_entries entries of the index on req.path in key order,
  // after req.after: every document of `collection` on `p` whose value at the
  // path exists (and that the index holds, as for Lookup) appears once per
  // walk unless it changes during the walk (the walk is not a snapshot: a
  // document re-filed under another key between pages may be seen twice or
  // not at all). FailedPrecondition when the path is not ready or walks are
  // not supported (this default): the executor then plans without it.
  virtual Result<IndexWalkPage> Walk(PartitionId p, std::string_view collection,
                                     const IndexWalkRequest& req) const;
};

}  // namespace cairn::chunkserver
