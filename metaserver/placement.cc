#include "metaserver/placement.h"

#include <map>

namespace cairn::metaserver {

Status PlaceUnplacedPartitions(ClusterMap* map, uint32_t replication) {
  if (replication == 0) return Status::InvalidArgument("replication must be at least 1");
  const size_t n = map->nodes.size();
  if (n < replication) {
    return Status::FailedPrecondition("cannot place " + std::to_string(replication) +
                                      " replicas per partition on " + std::to_string(n) + " nodes");
  }
  // Greedy on the loads so far (placed partitions included): the primary goes
  // to a node with the fewest primaries, each backup to one with the fewest
  // replicas; ties go to the first node in id order after the previous
  // choice, cyclically. With R = 1 this is plain round-robin over the nodes
  // sorted by id (map->nodes is sorted, ClusterMap::Validate).
  std::map<NodeId, size_t> index;
  for (size_t i = 0; i < n; ++i) index[map->nodes[i].id] = i;
  std::vector<size_t> primaries(n, 0), replicas(n, 0);
  for (const PartitionEntry& p : map->partitions) {
    for (size_t k = 0; k < p.replicas.size(); ++k) {
      auto it = index.find(p.replicas[k]);
      if (it == index.end()) continue;
      replicas[it->second]++;
      if (k == 0) primaries[it->second]++;
    }
  }
  size_t cursor = n - 1;  // the previous primary's index
  for (PartitionEntry& p : map->partitions) {
    if (!p.replicas.empty()) continue;
    std::vector<bool> taken(n, false);
    // The first node after `from` (cyclically) minimizing `key`.
    auto pick = [&](size_t from, auto key) {
      size_t best = n;
      for (size_t step = 1; step <= n; ++step) {
        const size_t c = (from + step) % n;
        if (taken[c]) continue;
        if (best == n || key(c) < key(best)) best = c;
      }
      return best;
    };
    const size_t primary =
        pick(cursor, [&](size_t c) { return std::make_pair(primaries[c], replicas[c]); });
    taken[primary] = true;
    primaries[primary]++;
    replicas[primary]++;
    p.replicas.push_back(map->nodes[primary].id);
    for (uint32_t k = 1; k < replication; ++k) {
      const size_t backup = pick(primary, [&](size_t c) { return replicas[c]; });
      taken[backup] = true;
      replicas[backup]++;
      p.replicas.push_back(map->nodes[backup].id);
    }
    cursor = primary;
    p.in_sync = p.replicas;
    p.epoch = Epoch(1);
  }
  return Status::Ok();
}

}  // namespace cairn::metaserver
