// Failover time (issue 6): a real replicated cluster on loopback (metaserver
// with failover, three chunk servers with replication, R = 3). Each round
// SIGKILLs the chunk server that is the primary of one partition and
// measures the time from the kill to the first acknowledged write on that
// partition (a client writing as fast as it can, with short deadlines), then
// restarts the node and waits until every partition has three in-sync
// replicas again. Prints every round and the median and maximum.
//
//   failover_bench [--kills 20] [--profile fast|default]
//
// `default` uses the daemons' default timeouts (heartbeat 500 ms, failure
// 2000 ms, lease 2000 ms); `fast` the ones the replication test uses
// (heartbeat 200 ms, failure 1000 ms, lease 1000 ms).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster_harness.h"

namespace cairn::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int Run(int kills, bool fast) {
  ClusterOptions o;
  o.chunk_servers = 3;
  o.disks_per_server = 3;
  o.partitions = 8;
  o.metaserver_set = {"replication=3", "failover=true", "replacement_timeout_ms=600000"};
  o.chunkserver_set = {"replication=true"};
  if (fast) {
    for (const char* s :
         {"heartbeat_interval_ms=200", "failure_timeout_ms=1000", "lease_ms=1000"}) {
      o.metaserver_set.push_back(s);
    }
    for (const char* s :
         {"heartbeat_interval_ms=200", "lease_ms=1000", "replication_timeout_ms=600"}) {
      o.chunkserver_set.push_back(s);
    }
  }
  auto cluster_or = Cluster::Start(o);
  if (!cluster_or.ok()) {
    std::fprintf(stderr, "cluster: %s\n", cluster_or.status().ToString().c_str());
    return 1;
  }
  Cluster& cluster = **cluster_or;
  client::Options co = cluster.ClientOptions();
  co.deadline_ms = 400;  // one attempt window; the loop below retries at once
  co.call_timeout_ms = 400;
  co.connect_timeout_ms = 300;
  auto client_or = client::Client::Create(co);
  if (!client_or.ok()) return 1;
  client::Client& c = **client_or;
  if (!c.CreateCollection("fo").ok()) return 1;

  // A document id per partition.
  std::vector<std::string> ids(o.partitions);
  for (int i = 0, found = 0; found < static_cast<int>(o.partitions); ++i) {
    const std::string id = "k" + std::to_string(i);
    auto p = c.PartitionOfDocument("fo", id);
    if (!p.ok()) return 1;
    if (ids[p->value()].empty()) {
      ids[p->value()] = id;
      ++found;
    }
  }
  auto put_until_ok = [&](const std::string& id, Clock::time_point give_up) {
    while (Clock::now() < give_up) {
      if (c.Put("fo", id, "v" + std::to_string(Clock::now().time_since_epoch().count())).ok()) {
        return true;
      }
      std::this_thread::sleep_for(5ms);
    }
    return false;
  };
  auto whole = [&](std::chrono::seconds limit) {
    const auto until = Clock::now() + limit;
    while (Clock::now() < until) {
      auto map = c.GetClusterMap();
      if (map.ok()) {
        bool ok = true;
        for (const auto& p : map->partitions) ok = ok && p.in_sync.size() == 3;
        if (ok) return true;
      }
      std::this_thread::sleep_for(100ms);
    }
    return false;
  };
  for (const std::string& id : ids) {
    if (!put_until_ok(id, Clock::now() + 30s)) return 1;
  }
  if (!whole(60s)) {
    std::fprintf(stderr, "the cluster never had three in-sync replicas everywhere\n");
    return 1;
  }

  std::vector<double> seconds;
  for (int round = 0; round < kills; ++round) {
    const uint32_t p = static_cast<uint32_t>(round) % o.partitions;
    auto map = c.GetClusterMap();
    if (!map.ok()) return 1;
    const NodeId primary = map->partitions[p].replicas.front();
    const auto* node = map->FindNode(primary);
    const int victim = node == nullptr ? -1 : std::atoi(node->name.c_str() + 2);  // "cs<i>"
    if (victim < 0 || victim >= cluster.chunk_server_count()) return 1;
    const auto t0 = Clock::now();
    if (!cluster.KillChunkServer(victim).ok()) return 1;
    const bool ok = put_until_ok(ids[p], t0 + 60s);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("kill %2d: partition %u primary %s: %s after %.2f s\n", round + 1, p,
                node->name.c_str(), ok ? "first acknowledged write" : "NO WRITE", s);
    std::fflush(stdout);
    if (!ok) return 1;
    seconds.push_back(s);
    if (!cluster.RestartChunkServer(victim).ok() || !whole(120s)) {
      std::fprintf(stderr, "node %d did not rejoin\n", victim);
      return 1;
    }
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds.size() % 2 == 1
                            ? seconds[seconds.size() / 2]
                            : (seconds[seconds.size() / 2 - 1] + seconds[seconds.size() / 2]) / 2;
  std::printf("failover (%s timeouts), %zu kills: median %.2f s, max %.2f s, min %.2f s\n",
              fast ? "fast" : "default", seconds.size(), median, seconds.back(), seconds.front());
  return 0;
}

}  // namespace
}  // namespace cairn::test

int main(int argc, char** argv) {
  int kills = 20;
  bool fast = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--kills") == 0 && i + 1 < argc) {
      kills = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--profile") == 0 && i + 1 < argc) {
      fast = std::strcmp(argv[++i], "default") != 0;
    } else {
      std::fprintf(stderr, "usage: failover_bench [--kills N] [--profile fast|default]\n");
      return 64;
    }
  }
  return cairn::test::Run(kills, fast);
}
