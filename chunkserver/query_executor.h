// QueryExecutor: one partition's part of a query, next to the data
// (docs/query-language.md "Execution"). No network: the Thrift adapter
// (chunk_service.h) parses nothing itself, checks routing, and calls Run.
//
// Per call: plans with query::PlanIndex over the IndexSource's ready paths
// (no IndexSource, no ready path or a failing lookup: a full scan); takes the
// candidates (the union of the plan's lookups, or every document of the
// collection on the partition, listed in id order page by page); reads each
// whole body (at most max_body_bytes, larger ones are skipped and counted:
// they never match; a full scan reads around the block cache, see
// DocStore::CacheUse), drops it if query::RawPrefilter rules it out on its
// bytes, else loads it into a query::Document, filters, and feeds a
// query::TopK with the sort keys, projecting only rows the TopK admits.
// Candidates in id order stop once the TopK is full when the query's order
// is by _id (no sort, or a first sort key of _id ascending).
//
// Ordered walk: with a limit and a first sort key on a ready indexed path
// (and no lookup plan on another path), the executor walks that index in
// the sort key's direction (IndexSource::Walk), bounded by the filter's own
// lookup on the path if it has one, visits each entry as above, and stops at
// the first entry whose key differs from the previous one once the TopK
// holds `limit` rows: the rest of the key's group is still read, so ties on
// the first key are ordered by the other keys and _id exactly as without
// the walk. Documents without the path are not in the index and sort first:
// an ascending walk is used only when the filter is false for them
// (RequiresPath), a descending one that runs out of entries before the TopK
// is full, or any walk whose index fails, is abandoned for the plan above.
//
// Merged walk (RunMerged): the parts of one query on several partitions of
// this node (one QueryPartitions call) that would each take the ordered walk
// walk their indexes together, entries taken from the partitions in one key
// order into one TopK, and stop as one walk does. The node then reads about
// `limit` documents (plus ties), not `limit` per partition; each partition's
// answer holds the rows of the node's TopK that came from it. That is
// enough for libcairn's merge: the query's top `limit` rows among this
// node's partitions are all in the node's TopK.
//
// Limits: the time limit is checked between documents (and the elapsed
// time of a finished scan against it too), the result-size limit on the
// projected JSON the TopK holds. Either gives LimitExceeded with a message
// naming the limit, its value, where it was reached and how to raise it.
//
// Consistency: each document is read at the version its page of entries
// (a listing page, or a batch of kLookupBatch lookups) found, shortly before
// the scan reaches it; the scan is not a snapshot of the partition (a
// document written or deleted during the scan may or may not be seen in
// either state, one renamed during the scan may be seen under both names or
// neither).
//
// Thread-safety: Run may be called concurrently (each call has its own
// Document and TopK); the store, the index source and the clock are
// borrowed and must be thread-safe and outlive the executor.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chunkserver/doc_store.h"
#include "chunkserver/index_source.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/status.h"
#include "query/ast.h"
#include "query/topk.h"

namespace cairn::chunkserver {

struct QueryLimits {
  // Whole query on one partition, from the start of Run.
  std::chrono::milliseconds time_limit{30000};
  // Projected JSON held for the result (rows kept by the TopK).
  uint64_t max_result_bytes = 64ull << 20;
  // Bodies above this are not read (counted in docs_skipped_large).
  uint64_t max_body_bytes = 16ull << 20;
};

struct QueryStats {
  uint64_t docs_scanned = 0;  // bodies read and filtered
  uint64_t bytes_scanned = 0;
  uint64_t docs_matched = 0;
  uint64_t docs_skipped_large = 0;
  std::string index_used;  // "" for a full scan, else the plan's text
  std::chrono::milliseconds elapsed{0};
};

struct QueryOutput {
  std::vector<query::Row> rows;  // sorted by the query's order, at most its limit
  QueryStats stats;
};

class QueryExecutor {
 public:
  // `index` may be nullptr (always scan). All three are borrowed.
  QueryExecutor(DocStore* store, const IndexSource* index, Clock* clock);
  QueryExecutor(const QueryExecutor&) = delete;
  QueryExecutor& operator=(const QueryExecutor&) = delete;

  // Runs `q` over the documents of `collection` on partition `p` as the
  // store holds them (no routing check: the caller made it). Errors:
  // LimitExceeded (time, result size), the store's read errors.
  Result<QueryOutput> Run(PartitionId p, std::string_view collection, const query::Query& q,
                          const QueryLimits& limits) const;

  // Runs `q` on the partitions `ps` (two or more, distinct, routing checked
  // by the caller) with one merged ordered walk (see the header comment):
  // one QueryOutput per partition, in the order of `ps`. nullopt when the
  // merged walk does not apply to all of them (no limit or sort, the first
  // sort key not a ready index on one, a walk that fails or cannot finish
  // the query): the caller runs each partition alone. Errors as Run.
  Result<std::optional<std::vector<QueryOutput>>> RunMerged(std::span<const PartitionId> ps,
                                                            std::string_view collection,
                                                            const query::Query& q,
                                                            const QueryLimits& limits) const;

  // Documents listed per store page while scanning.
  static constexpr size_t kScanPage = 1000;
  // Candidates (of index lookups and walks) looked up per store call.
  static constexpr size_t kLookupBatch = 256;
  // How often (in documents) the clock is read.
  static constexpr uint64_t kClockEvery = 16;
  // Index entries asked for by an ordered walk's first page; each later page
  // asks for twice as many, up to kWalkMaxPage.
  static constexpr size_t kWalkFirstPage = 64;
  static constexpr size_t kWalkMaxPage = 4096;

 private:
  class PartitionRun;
  struct WalkPlan {
    query::Path path;  // the first sort key's, a ready index
    bool descending = false;
    std::optional<query::IndexLookup> bound;  // the filter's lookup on `path`
    // The filter is false for documents without the path, so an exhausted
    // walk has seen every possible match.
    bool complete_when_exhausted = false;
  };

  // The ordered walk `q` can use, or nullopt (see the header comment).
  std::optional<WalkPlan> PlanWalk(const query::Query& q, const std::vector<query::Path>& ready,
                                   const query::IndexPlan& plan) const;
  // Walks into `run`; false when the walk could not finish the query (the
  // caller starts over without it), errors as Run.
  Result<bool> RunWalk(PartitionId p, std::string_view collection, const WalkPlan& w,
                       PartitionRun* run) const;
  // The candidates of an index plan: sorted, unique ids. Sets *usable to
  // false when a lookup failed (the caller scans instead).
  std::vector<std::string> Candidates(PartitionId p, std::string_view collection,
                                      const query::IndexPlan& plan, bool* usable) const;

  DocStore* const store_;
  const IndexSource* const index_;
  Clock* const clock_;
  Logger log_{"query"};
};

}  // namespace cairn::chunkserver
