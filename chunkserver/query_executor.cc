#include "chunkserver/query_executor.h"

#include <algorithm>
#include <optional>
#include <span>

#include "query/evaluator.h"
#include "query/index_plan.h"

namespace cairn::chunkserver {

namespace {

std::string PartitionText(PartitionId p) { return "partition " + std::to_string(p.value()); }

}  // namespace

QueryExecutor::QueryExecutor(DocStore* store, const IndexSource* index, Clock* clock)
    : store_(store), index_(index), clock_(clock) {}

std::vector<std::string> QueryExecutor::Candidates(PartitionId p, std::string_view collection,
                                                   const query::IndexPlan& plan,
                                                   bool* usable) const {
  std::vector<std::string> ids;
  *usable = true;
  for (const query::IndexLookup& l : plan.lookups) {
    Result<std::vector<std::string>> r = index_->Lookup(p, collection, l);
    if (!r.ok()) {
      // Not ready after all (dropped or rebuilding since ReadyPaths): scan.
      LOG_DEBUG(log_) << PartitionText(p) << ": index lookup " << l.ToString()
                      << " failed, scanning: " << r.status().ToString();
      *usable = false;
      return {};
    }
    ids.insert(ids.end(), std::make_move_iterator(r->begin()), std::make_move_iterator(r->end()));
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

Result<QueryOutput> QueryExecutor::Run(PartitionId p, std::string_view collection,
                                       const query::Query& q, const QueryLimits& limits) const {
  const Nanos start = clock_->Now();
  QueryOutput out;
  QueryStats& st = out.stats;

  auto over_time = [&]() -> Status {
    const Nanos elapsed = clock_->Now() - start;
    if (elapsed <= limits.time_limit) return Status::Ok();
    return Status::LimitExceeded(
        "query time limit of " + std::to_string(limits.time_limit.count()) + " ms reached on " +
        PartitionText(p) + " after scanning " + std::to_string(st.docs_scanned) +
        " documents: narrow the query or index its fields, or raise the limit (cairn query "
        "--time-limit MS, up to the chunk servers' query_time_limit_ms)");
  };

  // The plan: an index when one is ready and fits, else a full scan.
  query::IndexPlan plan;
  if (index_ != nullptr) {
    const std::vector<query::Path> ready = index_->ReadyPaths(p, collection);
    if (!ready.empty()) plan = query::PlanIndex(q.filter, ready);
  }
  if (plan.kind == query::IndexPlan::Kind::kEmpty) {
    st.index_used = plan.ToString();
    return out;
  }
  std::vector<std::string> candidates;
  bool use_index = plan.kind == query::IndexPlan::Kind::kLookups;
  if (use_index) candidates = Candidates(p, collection, plan, &use_index);
  if (use_index) st.index_used = plan.ToString();

  query::Document doc;
  query::TopK top(query::RowOrder(q.sort), q.limit);
  std::string body;
  uint64_t visited = 0;

  // One candidate: read, filter, offer. Missing documents (deleted since
  // they were listed or indexed) are skipped.
  auto visit = [&](const std::string& id) -> Status {
    if (++visited % kClockEvery == 0) RETURN_IF_ERROR(over_time());
    std::optional<DocEntry> entry;
    Status read;
    // A compaction may release the blocks of the version looked up: look
    // again (the new entry points at the copies).
    for (int attempt = 0; attempt < 3; ++attempt) {
      ASSIGN_OR_RETURN(entry, store_->Lookup(p, collection, id));
      if (!entry) return Status::Ok();
      if (entry->meta.size > limits.max_body_bytes) {
        ++st.docs_skipped_large;
        return Status::Ok();
      }
      body.resize(static_cast<size_t>(entry->meta.size));
      read = body.empty() ? Status::Ok()
                          : store_->ReadRange(
                                *entry, 0,
                                std::span(reinterpret_cast<std::byte*>(body.data()), body.size()));
      if (read.code() != StatusCode::kUnavailable) break;
    }
    RETURN_IF_ERROR(read.WithContext("query reading " + std::string(collection) + "/" + id));
    ++st.docs_scanned;
    st.bytes_scanned += body.size();
    if (!doc.Load(id, body) || !query::Matches(q.filter, doc)) return Status::Ok();
    ++st.docs_matched;
    query::Row row{id, query::SortKeyOf(q.sort, doc), ""};
    if (!top.Admits(row)) return Status::Ok();
    row.json = query::Project(q.fields, doc);
    top.Offer(std::move(row));
    if (top.json_bytes() > limits.max_result_bytes) {
      return Status::LimitExceeded(
          "query result larger than the result-size limit of " +
          std::to_string(limits.max_result_bytes) + " bytes on " + PartitionText(p) + " after " +
          std::to_string(st.docs_matched) +
          " matching documents: add limit= or fields= to the query, or raise the limit (cairn "
          "query --max-result-bytes N, up to the chunk servers' query_max_result_bytes)");
    }
    return Status::Ok();
  };

  if (use_index) {
    for (const std::string& id : candidates) RETURN_IF_ERROR(visit(id));
  } else {
    std::string after;
    for (;;) {
      ASSIGN_OR_RETURN(ListPage page, store_->List(p, collection, after, kScanPage));
      for (const ListItem& item : page.items) RETURN_IF_ERROR(visit(item.id));
      if (!page.more || page.items.empty()) break;
      after = page.items.back().id;
    }
  }
  RETURN_IF_ERROR(over_time());
  out.rows = top.Take();
  st.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock_->Now() - start);
  return out;
}

}  // namespace cairn::chunkserver
