#include "client/list_merge.h"

#include <algorithm>
#include <optional>

namespace cairn::client {

uint32_t PerPartitionLimit(uint32_t limit, uint32_t partitions) {
  if (partitions <= 1) return limit;
  const uint64_t fair = (2ull * limit + partitions - 1) / partitions;
  return static_cast<uint32_t>(std::min<uint64_t>(limit, std::max<uint64_t>(fair, 16)));
}

Result<ListResult> MergePages(std::vector<PartitionPage> pages, uint32_t limit) {
  std::optional<std::string> cutoff;
  size_t total = 0;
  for (const PartitionPage& p : pages) {
    for (size_t i = 1; i < p.items.size(); ++i) {
      if (!(p.items[i - 1].id < p.items[i].id)) {
        return Status::InvalidArgument("a partition's list page is not sorted by id");
      }
    }
    total += p.items.size();
    if (!p.more) continue;
    if (p.items.empty()) {
      return Status::InvalidArgument("a partition said 'more' but returned no item");
    }
    if (!cutoff || p.items.back().id < *cutoff) cutoff = p.items.back().id;
  }
  std::vector<DocInfo> all;
  all.reserve(total);
  for (PartitionPage& p : pages) {
    for (DocInfo& d : p.items) {
      if (!cutoff || d.id <= *cutoff) all.push_back(std::move(d));
    }
  }
  std::sort(all.begin(), all.end(), [](const DocInfo& a, const DocInfo& b) { return a.id < b.id; });
  ListResult out;
  const bool cut = all.size() > limit;
  if (cut) all.resize(limit);
  out.items = std::move(all);
  if ((cut || cutoff) && !out.items.empty()) out.next_cursor = out.items.back().id;
  return out;
}

}  // namespace cairn::client
