#include "chunkserver/query_executor.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "query/evaluator.h"
#include "query/index_plan.h"
#include "query/prefilter.h"

namespace cairn::chunkserver {

namespace {

std::string PartitionText(PartitionId p) { return "partition " + std::to_string(p.value()); }

bool HasPrefix(const query::Path& path, const query::Path& prefix) {
  return path.segments.size() >= prefix.segments.size() &&
         std::equal(prefix.segments.begin(), prefix.segments.end(), path.segments.begin());
}

// Whether `filter` is false for every document where `path` is missing: a
// predicate on the path or below it (each is false on a missing field), in
// a conjunction or in every branch of a disjunction.
bool RequiresPath(const query::Node& n, const query::Path& path) {
  switch (n.kind) {
    case query::NodeKind::kCompare:
    case query::NodeKind::kIn:
    case query::NodeKind::kExists:
    case query::NodeKind::kPrefix:
    case query::NodeKind::kContains:
      return HasPrefix(n.path, path);
    case query::NodeKind::kAnd:
      return std::any_of(n.children.begin(), n.children.end(),
                         [&](const query::Node& c) { return RequiresPath(c, path); });
    case query::NodeKind::kOr:
      return std::all_of(n.children.begin(), n.children.end(),
                         [&](const query::Node& c) { return RequiresPath(c, path); });
    case query::NodeKind::kTrue:
    case query::NodeKind::kNot:
      return false;
  }
  return false;
}

// Whether candidates visited in ascending id order reach the query's order
// best first: no sort (by _id only) or a first sort key of _id ascending.
bool IdOrdered(const query::Query& q) {
  if (q.sort.empty()) return true;
  const query::SortKey& k = q.sort[0];
  return !k.descending && k.path.segments.size() == 1 && k.path.segments[0] == query::kIdField;
}

}  // namespace

// One Run's state on one partition: the candidates' reading, filtering and
// the TopK.
class QueryExecutor::PartitionRun {
 public:
  // Rows go to `shared` when given (a merged walk's one TopK), else to a
  // TopK of the run's own.
  PartitionRun(const QueryExecutor& ex, PartitionId p, std::string_view collection,
               const query::Query& q, const QueryLimits& limits, Nanos start,
               query::TopK* shared = nullptr)
      : ex_(ex),
        p_(p),
        collection_(collection),
        q_(q),
        limits_(limits),
        start_(start),
        prefilter_(q.filter),
        own_top_(query::RowOrder(q.sort), q.limit),
        top_(shared != nullptr ? shared : &own_top_) {}

  // Visits `ids` in order, their entries looked up in batches; stops early
  // when `stop` says so before a candidate.
  template <typename Stop>
  Status VisitIds(std::span<const std::string> ids, Stop stop) {
    for (size_t at = 0; at < ids.size(); at += kLookupBatch) {
      const std::span<const std::string> batch =
          ids.subspan(at, std::min(kLookupBatch, ids.size() - at));
      ASSIGN_OR_RETURN(std::vector<std::optional<DocEntry>> entries,
                       ex_.store_->LookupMany(p_, collection_, batch));
      for (size_t i = 0; i < batch.size(); ++i) {
        if (stop(i + at)) return Status::Ok();
        RETURN_IF_ERROR(Visit(batch[i], std::move(entries[i]), DocStore::CacheUse::kFill));
      }
    }
    return Status::Ok();
  }

  QueryStats& stats() { return stats_; }
  std::vector<query::Row> TakeRows() { return top_->Take(); }
  // The TopK holds `limit` rows: a candidate worse than all of them in the
  // first sort key cannot be admitted.
  bool full() const { return q_.limit.has_value() && top_->size() >= *q_.limit; }

  Status OverTime() const {
    const Nanos elapsed = ex_.clock_->Now() - start_;
    if (elapsed <= limits_.time_limit) return Status::Ok();
    return Status::LimitExceeded(
        "query time limit of " + std::to_string(limits_.time_limit.count()) + " ms reached on " +
        PartitionText(p_) + " after scanning " + std::to_string(stats_.docs_scanned) +
        " documents: narrow the query or index its fields, or raise the limit (cairn query "
        "--time-limit MS, up to the chunk servers' query_time_limit_ms)");
  }

  // One candidate, its entry as a batch lookup or listing found it (nullopt:
  // missing): read, filter, offer. Missing documents (deleted since they
  // were listed or indexed) are skipped.
  Status Visit(const std::string& id, std::optional<DocEntry> entry, DocStore::CacheUse cache) {
    if (++visited_ % kClockEvery == 0) RETURN_IF_ERROR(OverTime());
    Status read;
    // A compaction may release the blocks of the version looked up: look
    // again (the new entry points at the copies).
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (attempt > 0) {
        ASSIGN_OR_RETURN(entry, ex_.store_->Lookup(p_, collection_, id));
      }
      if (!entry) return Status::Ok();
      if (entry->meta.size > limits_.max_body_bytes) {
        ++stats_.docs_skipped_large;
        return Status::Ok();
      }
      body_.resize(static_cast<size_t>(entry->meta.size));
      read = body_.empty() ? Status::Ok()
                           : ex_.store_->ReadRange(*entry, 0,
                                                   std::as_writable_bytes(std::span(body_)), cache);
      if (read.code() != StatusCode::kUnavailable) break;
    }
    RETURN_IF_ERROR(read.WithContext("query reading " + std::string(collection_) + "/" + id));
    ++stats_.docs_scanned;
    stats_.bytes_scanned += body_.size();
    // Most non-matching documents of a selective filter are ruled out on
    // their bytes, without a parse.
    if (!prefilter_.MayMatch(body_)) return Status::Ok();
    if (!doc_.Load(id, body_) || !query::Matches(q_.filter, doc_)) return Status::Ok();
    ++stats_.docs_matched;
    query::Row row{id, query::SortKeyOf(q_.sort, doc_), ""};
    if (!top_->Admits(row)) return Status::Ok();
    row.json = query::Project(q_.fields, doc_);
    top_->Offer(std::move(row));
    if (top_->json_bytes() > limits_.max_result_bytes) {
      return Status::LimitExceeded(
          "query result larger than the result-size limit of " +
          std::to_string(limits_.max_result_bytes) + " bytes on " + PartitionText(p_) + " after " +
          std::to_string(stats_.docs_matched) +
          " matching documents: add limit= or fields= to the query, or raise the limit (cairn "
          "query --max-result-bytes N, up to the chunk servers' query_max_result_bytes)");
    }
    return Status::Ok();
  }

 private:
  const QueryExecutor& ex_;
  const PartitionId p_;
  const std::string_view collection_;
  const query::Query& q_;
  const QueryLimits& limits_;
  const Nanos start_;
  const query::RawPrefilter prefilter_;
  QueryStats stats_;
  query::TopK own_top_;
  query::TopK* const top_;
  query::Document doc_;
  std::string body_;
  uint64_t visited_ = 0;
};

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

std::optional<QueryExecutor::WalkPlan> QueryExecutor::PlanWalk(
    const query::Query& q, const std::vector<query::Path>& ready,
    const query::IndexPlan& plan) const {
  if (!q.limit.has_value() || q.sort.empty()) return std::nullopt;
  const query::SortKey& first = q.sort[0];
  if (std::find(ready.begin(), ready.end(), first.path) == ready.end()) return std::nullopt;
  // Lookups on another index find every match without walking: keep them.
  if (plan.kind == query::IndexPlan::Kind::kLookups) {
    for (const query::IndexLookup& l : plan.lookups) {
      if (!(l.path == first.path)) return std::nullopt;
    }
  }
  WalkPlan w;
  w.path = first.path;
  w.descending = first.descending;
  // Documents without the path are not in the index and sort first: an
  // ascending walk must know none can match.
  w.complete_when_exhausted = RequiresPath(q.filter, first.path);
  if (!w.descending && !w.complete_when_exhausted) return std::nullopt;
  const query::IndexPlan own = query::PlanIndex(q.filter, {first.path});
  if (own.kind == query::IndexPlan::Kind::kLookups && own.lookups.size() == 1) {
    w.bound = own.lookups[0];
  }
  return w;
}

Result<bool> QueryExecutor::RunWalk(PartitionId p, std::string_view collection, const WalkPlan& w,
                                    PartitionRun* run) const {
  IndexWalkRequest req;
  req.path = w.path;
  req.descending = w.descending;
  req.bound = w.bound;
  req.max_entries = kWalkFirstPage;
  std::unordered_set<std::string> seen;  // a document re-filed during the walk comes once
  std::optional<std::string> last_key;
  for (;;) {
    Result<IndexWalkPage> page = index_->Walk(p, collection, req);
    if (!page.ok()) {
      LOG_DEBUG(log_) << PartitionText(p) << ": index walk on " << w.path.ToString()
                      << " failed, planning again: " << page.status().ToString();
      return false;
    }
    std::vector<std::string> ids;
    std::vector<const std::string*> keys;
    for (const IndexWalkEntry& e : page->entries) {
      if (!seen.insert(e.id).second) continue;
      ids.push_back(e.id);
      keys.push_back(&e.key);
    }
    bool stopped = false;
    RETURN_IF_ERROR(run->VisitIds(ids, [&](size_t i) {
      // Every later entry's first sort key is worse than all rows kept.
      const std::string& key = *keys[i];
      if (run->full() && last_key.has_value() && key != *last_key) return stopped = true;
      if (!last_key.has_value() || *last_key != key) last_key = key;
      return false;
    }));
    if (stopped) return true;
    if (!page->more || page->entries.empty()) break;
    req.after = std::make_pair(page->entries.back().key, page->entries.back().id);
    req.max_entries = std::min(req.max_entries * 2, kWalkMaxPage);
  }
  // Exhausted: every indexed candidate was visited. The documents without
  // the path sort last when descending, so a full TopK needs none of them.
  return w.complete_when_exhausted || run->full();
}

Result<std::optional<std::vector<QueryOutput>>> QueryExecutor::RunMerged(
    std::span<const PartitionId> ps, std::string_view collection, const query::Query& q,
    const QueryLimits& limits) const {
  using Out = std::optional<std::vector<QueryOutput>>;
  if (index_ == nullptr || ps.size() < 2 || !q.limit.has_value() || q.sort.empty()) {
    return Out();
  }
  const Nanos start = clock_->Now();
  // The plan depends on the query and on whether the sort key (and no other
  // lookup path) is ready, so it is one plan for all or none.
  std::optional<WalkPlan> w;
  for (const PartitionId p : ps) {
    const std::vector<query::Path> ready = index_->ReadyPaths(p, collection);
    const query::IndexPlan plan = query::PlanIndex(q.filter, ready);
    if (plan.kind == query::IndexPlan::Kind::kEmpty) return Out();
    w = PlanWalk(q, ready, plan);
    if (!w) return Out();
  }

  query::TopK top(query::RowOrder(q.sort), q.limit);
  struct Cursor {
    PartitionId p;
    std::unique_ptr<PartitionRun> run;
    IndexWalkRequest req;
    IndexWalkPage page;
    size_t at = 0;
    bool started = false;
    bool done = false;
    std::unordered_set<std::string> seen;  // a document re-filed during the walk comes once
  };
  std::vector<Cursor> cursors(ps.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    Cursor& c = cursors[i];
    c.p = ps[i];
    c.run = std::make_unique<PartitionRun>(*this, ps[i], collection, q, limits, start, &top);
    c.req.path = w->path;
    c.req.descending = w->descending;
    c.req.bound = w->bound;
    c.req.max_entries = kWalkFirstPage;
  }
  // Gives `c` a current entry unless its walk is over; false when its
  // index failed (the caller plans each partition again).
  auto fill = [&](Cursor& c) -> bool {
    while (!c.done && c.at >= c.page.entries.size()) {
      if (c.started) {
        if (!c.page.more || c.page.entries.empty()) {
          c.done = true;
          break;
        }
        c.req.after = std::make_pair(c.page.entries.back().key, c.page.entries.back().id);
        c.req.max_entries = std::min(c.req.max_entries * 2, kWalkMaxPage);
      }
      Result<IndexWalkPage> page = index_->Walk(c.p, collection, c.req);
      if (!page.ok()) {
        LOG_DEBUG(log_) << PartitionText(c.p) << ": merged index walk on " << w->path.ToString()
                        << " failed, planning again: " << page.status().ToString();
        return false;
      }
      c.page = std::move(*page);
      c.at = 0;
      c.started = true;
    }
    return true;
  };
  std::optional<std::string> last_key;
  std::unordered_map<std::string, size_t> owner;  // row id -> cursor
  bool stopped = false;
  for (uint64_t step = 1;; ++step) {
    if (step % kClockEvery == 0) RETURN_IF_ERROR(cursors[0].run->OverTime());
    // The best current entry of all partitions in walk order.
    Cursor* best = nullptr;
    for (Cursor& c : cursors) {
      if (!fill(c)) return Out();
      if (c.done) continue;
      if (best == nullptr) {
        best = &c;
        continue;
      }
      const std::string& k = c.page.entries[c.at].key;
      const std::string& b = best->page.entries[best->at].key;
      if (w->descending ? k > b : k < b) best = &c;
    }
    if (best == nullptr) break;
    const IndexWalkEntry& e = best->page.entries[best->at++];
    if (!best->seen.insert(e.id).second) continue;
    // Every later entry's first sort key is worse than all rows kept.
    if (best->run->full() && last_key.has_value() && e.key != *last_key) {
      stopped = true;
      break;
    }
    if (!last_key.has_value() || *last_key != e.key) last_key = e.key;
    ASSIGN_OR_RETURN(std::optional<DocEntry> entry, store_->Lookup(best->p, collection, e.id));
    owner[e.id] = static_cast<size_t>(best - cursors.data());
    RETURN_IF_ERROR(best->run->Visit(e.id, std::move(entry), DocStore::CacheUse::kFill));
  }
  // Exhausted: as RunWalk.
  if (!stopped && !w->complete_when_exhausted && !cursors[0].run->full()) return Out();
  RETURN_IF_ERROR(cursors[0].run->OverTime());

  std::vector<QueryOutput> outs(ps.size());
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock_->Now() - start);
  const std::string used = "ordered walk of " + w->path.ToString() +
                           (w->descending ? " descending" : " ascending") +
                           (w->bound ? " within " + w->bound->ToString() : "") + ", merged over " +
                           std::to_string(ps.size()) + " partitions";
  for (size_t i = 0; i < ps.size(); ++i) {
    outs[i].stats = cursors[i].run->stats();
    outs[i].stats.index_used = used;
    outs[i].stats.elapsed = elapsed;
  }
  // In the TopK's order, so each partition's rows stay sorted.
  for (query::Row& row : top.Take()) {
    auto it = owner.find(row.id);
    outs[it == owner.end() ? 0 : it->second].rows.push_back(std::move(row));
  }
  return Out(std::move(outs));
}

Result<QueryOutput> QueryExecutor::Run(PartitionId p, std::string_view collection,
                                       const query::Query& q, const QueryLimits& limits) const {
  const Nanos start = clock_->Now();
  QueryOutput out;

  // The plan: an index when one is ready and fits, else a full scan.
  query::IndexPlan plan;
  std::vector<query::Path> ready;
  if (index_ != nullptr) {
    ready = index_->ReadyPaths(p, collection);
    if (!ready.empty()) plan = query::PlanIndex(q.filter, ready);
  }
  if (plan.kind == query::IndexPlan::Kind::kEmpty) {
    out.stats.index_used = plan.ToString();
    return out;
  }

  auto finish = [&](PartitionRun* run) -> Result<QueryOutput> {
    RETURN_IF_ERROR(run->OverTime());
    QueryOutput o;
    o.stats = run->stats();
    o.rows = run->TakeRows();
    o.stats.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock_->Now() - start);
    return o;
  };

  // A sort on an indexed path with a limit: walk that index in sort order
  // and stop after the limit. Falls through when the walk cannot finish the
  // query (the index went away, or documents without the path may be needed).
  if (std::optional<WalkPlan> w = PlanWalk(q, ready, plan)) {
    PartitionRun run(*this, p, collection, q, limits, start);
    ASSIGN_OR_RETURN(bool complete, RunWalk(p, collection, *w, &run));
    if (complete) {
      run.stats().index_used = "ordered walk of " + w->path.ToString() +
                               (w->descending ? " descending" : " ascending") +
                               (w->bound ? " within " + w->bound->ToString() : "");
      return finish(&run);
    }
  }

  PartitionRun run(*this, p, collection, q, limits, start);
  std::vector<std::string> candidates;
  bool use_index = plan.kind == query::IndexPlan::Kind::kLookups;
  if (use_index) candidates = Candidates(p, collection, plan, &use_index);
  if (use_index) run.stats().index_used = plan.ToString();
  // Candidates come in ascending id order: when that is the query's order,
  // a full TopK admits no later one.
  const bool stop_when_full = IdOrdered(q) && q.limit.has_value();

  if (use_index) {
    RETURN_IF_ERROR(
        run.VisitIds(candidates, [&](size_t /*i*/) { return stop_when_full && run.full(); }));
  } else {
    // Whole entries page by page (no Lookup per document), read without
    // filling the block cache: a scan reads each block once and would only
    // evict what other queries and reads reuse.
    std::string after;
    for (;;) {
      ASSIGN_OR_RETURN(EntryPage page, store_->ListEntries(p, collection, after, kScanPage));
      if (!page.entries.empty()) after = page.entries.back().id;  // before they are moved
      for (DocEntry& e : page.entries) {
        if (stop_when_full && run.full()) break;
        const std::string id = e.id;
        RETURN_IF_ERROR(run.Visit(id, std::move(e), DocStore::CacheUse::kNoFill));
      }
      if (!page.more || page.entries.empty() || (stop_when_full && run.full())) break;
    }
  }
  return finish(&run);
}

}  // namespace cairn::chunkserver
