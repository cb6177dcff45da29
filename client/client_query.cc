// Query: parse here, ask every partition in parallel (ChunkService.Query),
// merge their sorted runs with the query's order and limit (query/topk.h).
#include <algorithm>
#include <atomic>
#include <map>

#include "client/client_impl.h"
#include "query/parser.h"
#include "query/topk.h"
#include "thrift/rpc_errors.h"

namespace cairn::client {

Result<QueryResult> Client::Query(std::string_view collection, std::string_view text,
                                  const QueryOptions& options) {
  RETURN_IF_ERROR(ValidateCollectionName(collection));
  // Errors in the text come back before any RPC, with the parser's column.
  ASSIGN_OR_RETURN(query::Query q, query::Parse(text));
  if (options.parallelism < 1) return Status::InvalidArgument("query parallelism must be >= 1");
  const uint64_t max_bytes =
      options.max_result_bytes > 0 ? options.max_result_bytes : kDefaultMaxQueryResultBytes;
  // The server must give up (and say so) before this client stops waiting.
  const auto call_ms = static_cast<uint64_t>(impl_->options.call_timeout_ms);
  uint64_t time_limit = call_ms > 2000 ? call_ms - 1000 : call_ms / 2;
  if (options.time_limit_ms > 0) time_limit = std::min(time_limit, options.time_limit_ms);

  Backoff b = impl_->NewBackoff();
  ASSIGN_OR_RETURN(std::shared_ptr<const ClusterMap> map, impl_->Map(b));
  const uint32_t parts = map->partition_count;
  std::vector<rpc::QueryResult> replies(parts);
  std::vector<Status> errors(parts);
  std::vector<char> asked(parts, 0);
  std::atomic<bool> failed{false};
  const std::string c(collection);
  const std::string t(text);
  const Impl::ReadRoute read = impl_->NewReadRoute(options.read_from);
  auto request = [&](uint32_t k, int64_t epoch) {
    rpc::QueryRequest req;
    req.partition = static_cast<int32_t>(k);
    req.epoch = epoch;
    req.collection = c;
    req.query = t;
    req.__set_time_limit_ms(static_cast<int64_t>(time_limit));
    if (options.max_result_bytes > 0) {
      req.__set_max_result_bytes(static_cast<int64_t>(options.max_result_bytes));
    }
    if (read.allow_backup()) req.__set_allow_backup(true);
    return req;
  };

  // Reads from primaries: one QueryPartitions call per node for the
  // partitions the map says it leads. What a call leaves (a partition that
  // moved, one skipped to keep the reply small, a node that failed) is asked
  // alone below, with the usual retries.
  std::atomic<uint64_t> node_calls{0};
  if (!read.allow_backup() && options.batch_by_node) {
    std::map<std::string, std::vector<ClusterMap::Route>> by_node;  // by address
    for (uint32_t k = 0; k < parts; ++k) {
      Result<ClusterMap::Route> route = map->Primary(PartitionId(k));
      if (route.ok()) by_node[route->address.ToString()].push_back(*route);
    }
    std::vector<const std::vector<ClusterMap::Route>*> nodes;
    for (const auto& [address, routes] : by_node) nodes.push_back(&routes);
    std::atomic<size_t> next_node{0};
    auto batch = [&] {
      for (size_t i = next_node.fetch_add(1); i < nodes.size(); i = next_node.fetch_add(1)) {
        std::vector<rpc::QueryRequest> reqs;
        for (const ClusterMap::Route& r : *nodes[i]) {
          reqs.push_back(request(r.partition.value(), static_cast<int64_t>(r.epoch.value())));
        }
        std::vector<rpc::QueryPartAnswer> answers;
        node_calls.fetch_add(1);
        int64_t error_map_version = 0;  // the parts asked alone refresh the map
        Status s = impl_->CallChunkOnce(
            nodes[i]->front(),
            [&](rpc::ChunkServiceClient& cl, int64_t) { cl.QueryPartitions(answers, reqs); },
            &error_map_version);
        if (!s.ok()) {
          LOG_DEBUG(impl_->log) << "query " << c << ": " << s.ToString()
                                << " (asking its partitions one by one)";
          continue;
        }
        for (rpc::QueryPartAnswer& a : answers) {
          if (a.partition < 0 || static_cast<uint32_t>(a.partition) >= parts) continue;
          const auto k = static_cast<uint32_t>(a.partition);
          if (a.__isset.result) {
            replies[k] = std::move(a.result);
            asked[k] = 1;
          } else if (a.__isset.error) {
            Status e = net::FromCairnError(a.error);
            if (Classify(e) == RetryAction::kFail) {
              errors[k] = std::move(e);
              asked[k] = 1;
              failed.store(true);
            }
          }
        }
      }
    };
    impl_->fanout.RunOnThreads(
        std::min<size_t>(nodes.size(), static_cast<size_t>(options.parallelism)), batch);
  }

  std::vector<uint32_t> todo;
  for (uint32_t k = 0; k < parts; ++k) {
    if (!asked[k]) todo.push_back(k);
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < todo.size(); i = next.fetch_add(1)) {
      const uint32_t k = todo[i];
      if (failed.load()) continue;  // the query fails anyway: do not load the others
      asked[k] = 1;
      rpc::QueryRequest req = request(k, 0);
      Backoff pb = impl_->NewBackoff();
      errors[k] = impl_->CallChunk(
          PartitionId(k), pb,
          [&](rpc::ChunkServiceClient& cl, int64_t epoch) {
            req.epoch = epoch;
            cl.Query(replies[k], req);
          },
          read);
      if (!errors[k].ok()) failed.store(true);
    }
  };
  if (!todo.empty() && !failed.load()) {
    const auto threads = std::min<size_t>(todo.size(), static_cast<size_t>(options.parallelism));
    impl_->fanout.RunOnThreads(threads, work);
  }
  for (uint32_t k = 0; k < parts; ++k) {
    if (!errors[k].ok()) return errors[k].WithContext("query " + c);
  }
  for (uint32_t k = 0; k < parts; ++k) {
    if (!asked[k])
      return Status::Internal("query " + c + ": partition " + std::to_string(k) + " not asked");
  }

  QueryResult out;
  out.stats.node_calls = node_calls.load();
  out.stats.partitions_alone = todo.size();
  std::vector<std::vector<query::Row>> runs(parts);
  for (uint32_t k = 0; k < parts; ++k) {
    rpc::QueryResult& r = replies[k];
    const rpc::QueryStats& s = r.stats;
    out.stats.partitions++;
    out.stats.docs_scanned += static_cast<uint64_t>(s.docs_scanned);
    out.stats.bytes_scanned += static_cast<uint64_t>(s.bytes_scanned);
    out.stats.docs_matched += static_cast<uint64_t>(s.docs_matched);
    out.stats.docs_skipped_large += static_cast<uint64_t>(s.docs_skipped_large);
    if (!s.index_used.empty()) {
      out.stats.partitions_indexed++;
      out.stats.index_used = s.index_used;
    }
    out.stats.max_partition_ms = std::max(out.stats.max_partition_ms, s.elapsed_ms);
    runs[k].reserve(r.rows.size());
    for (rpc::QueryRow& row : r.rows) {
      query::Row qr;
      qr.id = std::move(row.id);
      qr.json = std::move(row.json);
      if (!q.sort.empty()) {
        if (!row.__isset.sort_keys) {
          return Status::Internal("query " + c + ": partition " + std::to_string(k) +
                                  " sent a row without sort keys");
        }
        Result<std::vector<std::optional<query::Value>>> keys =
            query::DecodeSortKeys(row.sort_keys);
        if (!keys.ok()) return keys.status().WithContext("query " + c + ": sort keys from server");
        qr.keys = std::move(keys).value();
        if (qr.keys.size() != q.sort.size()) {
          return Status::Internal("query " + c + ": wrong number of sort keys from partition " +
                                  std::to_string(k));
        }
      }
      runs[k].push_back(std::move(qr));
    }
    r.rows.clear();
  }
  std::vector<query::Row> rows =
      query::MergeSorted(std::move(runs), query::RowOrder(q.sort), q.limit);
  out.rows.reserve(rows.size());
  for (query::Row& r : rows) {
    out.json_bytes += r.json.size();
    if (out.json_bytes > max_bytes) {
      return Status::LimitExceeded(
          "query " + c + ": the result is larger than the result-size limit of " +
          std::to_string(max_bytes) +
          " bytes: add limit= or fields= to the query, or raise the limit (cairn query "
          "--max-result-bytes N; each chunk server also caps its part at its "
          "query_max_result_bytes)");
    }
    out.rows.push_back({std::move(r.id), std::move(r.json)});
  }
  return out;
}

}  // namespace cairn::client
