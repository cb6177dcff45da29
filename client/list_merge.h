// Merging per-partition list pages into one page ordered by id (I/O-free).
//
// Every partition was asked for the ids after the same cursor, at most
// `per_partition` each. A partition that said "more" may hold ids beyond the
// last one it returned that sort before other partitions' items, so the
// merged page stops at the smallest such last id (the cutoff); everything up
// to it is complete. The page is then cut to `limit`. The next cursor is the
// last id returned, or "" when no partition has more and nothing was cut.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "client/cairn.h"

namespace cairn::client {

struct PartitionPage {
  std::vector<DocInfo> items;  // sorted by id, all after the cursor
  bool more = false;
};

// InvalidArgument if a page says "more" without any item (no progress would
// be possible) or a page is not sorted.
Result<ListResult> MergePages(std::vector<PartitionPage> pages, uint32_t limit);

// How many ids to ask each of `partitions` partitions for, for a page of
// `limit`: about twice the fair share, at least 16, at most `limit`.
uint32_t PerPartitionLimit(uint32_t limit, uint32_t partitions);

}  // namespace cairn::client
