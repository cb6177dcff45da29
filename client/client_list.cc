// List: one page across every partition, fetched in parallel and merged by
// id (list_merge.h).
#include <atomic>
#include <thread>

#include "client/client_impl.h"
#include "client/list_merge.h"
#include "client/rpc_convert.h"

namespace cairn::client {

Result<ListResult> Client::List(std::string_view collection, const ListOptions& options) {
  RETURN_IF_ERROR(ValidateCollectionName(collection));
  if (options.limit < 1 || options.limit > 10000) {
    return Status::InvalidArgument("list limit must be 1..10000, got " +
                                   std::to_string(options.limit));
  }
  Backoff b = impl_->NewBackoff();
  ASSIGN_OR_RETURN(std::shared_ptr<const ClusterMap> map, impl_->Map(b));
  const uint32_t parts = map->partition_count;
  const uint32_t per = PerPartitionLimit(options.limit, parts);
  std::vector<PartitionPage> pages(parts);
  std::vector<Status> errors(parts);
  std::atomic<uint32_t> next{0};
  const std::string c(collection);
  const Impl::ReadRoute read = impl_->NewReadRoute(options.read_from);
  auto work = [&] {
    for (uint32_t k = next.fetch_add(1); k < parts; k = next.fetch_add(1)) {
      rpc::ListRequest req;
      req.partition = static_cast<int32_t>(k);
      req.collection = c;
      req.after_id = options.cursor;
      req.limit = static_cast<int32_t>(per);
      if (read.allow_backup()) req.__set_allow_backup(true);
      rpc::ListPage page;
      Backoff pb = impl_->NewBackoff();
      errors[k] = impl_->CallChunk(
          PartitionId(k), pb,
          [&](rpc::ChunkServiceClient& cl, int64_t epoch) {
            req.epoch = epoch;
            cl.List(page, req);
          },
          read);
      if (!errors[k].ok()) continue;
      pages[k].more = page.more;
      for (const rpc::DocMeta& m : page.items) pages[k].items.push_back(FromRpc(m));
    }
  };
  const auto threads =
      std::min<uint32_t>(parts, static_cast<uint32_t>(impl_->options.list_parallelism));
  std::vector<std::thread> pool;
  for (uint32_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  for (uint32_t k = 0; k < parts; ++k) {
    if (!errors[k].ok()) return errors[k].WithContext("list " + c);
  }
  Result<ListResult> r = MergePages(std::move(pages), options.limit);
  if (!r.ok()) return r.status().WithContext("list " + c);
  return r;
}

}  // namespace cairn::client
