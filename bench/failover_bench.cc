// Failover time (issue 6): a real replicated cluster on loopback (metaserver
// with failover, three chunk servers with replication, R = 3). Each round
// SIGKILLs the chunk server that is the primary of one partition and
// measures the time from the kill to the first acknowledged write on that
// partition (a client writing as fast as it can, with short deadlines), then
// restarts the node and waits until every partition has three in-sync
// replicas again. Prints every round and the median and maximum.
//
//   failover_bench [--kills 20] [--profile fast|default]
//   failover_bench --throughput [--seconds 10] [--clients 8] [--bytes 1024]
//   failover_bench --rebuild [--mb 1024] [--rate 100] [--log-entries 8]
//
// --throughput instead measures the cost of replication: the same cluster
// (chunk servers with replication on) with R = 1, 2 and 3 in turn, `clients`
// threads putting `bytes`-byte documents for `seconds`: puts per second and
// p50/p99 latency, and the ratio to R = 1.
//
// --rebuild measures re-replication: four chunk servers, R = 3, a
// replacement timeout of 3 s; `mb` MiB of 1 MiB documents are loaded, then
// one chunk server is SIGKILLed for good and the clock runs until every
// partition has three in-sync replicas again (none on the dead node).
// Prints the seconds, the data its replicas held (rebuilt elsewhere), and
// seconds per GiB and MiB/s of it. `rate` is the chunk servers'
// snapshot_rate_mb_s (0: unlimited), `log-entries` their
// replication_log_entries: kept small so that the new replicas are built
// from snapshots, as a partition with more entries than the kept log is.
//
// `default` uses the daemons' default timeouts (heartbeat 500 ms, failure
// 2000 ms, lease 2000 ms); `fast` the ones the replication test uses
// (heartbeat 200 ms, failure 1000 ms, lease 1000 ms).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
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

struct Throughput {
  double ops_per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
};

int RunThroughput(int replication, int seconds, int clients, size_t bytes, Throughput* out) {
  ClusterOptions o;
  o.chunk_servers = 3;
  o.disks_per_server = 3;
  o.partitions = 16;
  o.metaserver_set = {"replication=" + std::to_string(replication), "failover=true",
                      "replacement_timeout_ms=600000"};
  o.chunkserver_set = {"replication=true"};
  auto cluster_or = Cluster::Start(o);
  if (!cluster_or.ok()) {
    std::fprintf(stderr, "cluster: %s\n", cluster_or.status().ToString().c_str());
    return 1;
  }
  Cluster& cluster = **cluster_or;
  auto client_or = cluster.NewClient();
  if (!client_or.ok()) return 1;
  client::Client& c = **client_or;
  if (!c.CreateCollection("tp").ok()) return 1;
  const std::string body(bytes, 'x');
  // Every partition's primary active before the clock starts.
  for (int i = 0; i < 64; ++i) {
    if (!c.Put("tp", "warm" + std::to_string(i), body).ok()) return 1;
  }
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<double> latencies_ms;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      std::vector<double> mine;
      uint64_t n = 0;
      while (!stop.load()) {
        const std::string id = "c" + std::to_string(t) + "-" + std::to_string(n++ % 1000);
        const auto t0 = Clock::now();
        if (!c.Put("tp", id, body).ok()) {
          ++failures;
          continue;
        }
        mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      std::lock_guard<std::mutex> l(mu);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (std::thread& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  if (latencies_ms.empty()) return 1;
  out->ops_per_s = static_cast<double>(latencies_ms.size()) / elapsed;
  out->p50_ms = latencies_ms[latencies_ms.size() / 2];
  out->p99_ms = latencies_ms[latencies_ms.size() * 99 / 100];
  std::printf(
      "R=%d: %zu puts of %zu bytes in %.1f s by %d clients: %.0f puts/s, p50 %.2f ms, "
      "p99 %.2f ms, %d failed\n",
      replication, latencies_ms.size(), bytes, elapsed, clients, out->ops_per_s, out->p50_ms,
      out->p99_ms, failures.load());
  std::fflush(stdout);
  return 0;
}

int RunRebuild(int mb, int rate_mb_s, int log_entries) {
  ClusterOptions o;
  o.chunk_servers = 4;
  o.disks_per_server = 3;
  o.partitions = 16;
  o.metaserver_set = {"replication=3",
                      "failover=true",
                      "replacement_timeout_ms=3000",
                      "heartbeat_interval_ms=200",
                      "failure_timeout_ms=1000",
                      "lease_ms=1000"};
  o.chunkserver_set = {"replication=true",
                       "heartbeat_interval_ms=200",
                       "lease_ms=1000",
                       "replication_timeout_ms=600",
                       "snapshot_rate_mb_s=" + std::to_string(rate_mb_s),
                       "replication_log_entries=" + std::to_string(log_entries)};
  auto cluster_or = Cluster::Start(o);
  if (!cluster_or.ok()) {
    std::fprintf(stderr, "cluster: %s\n", cluster_or.status().ToString().c_str());
    return 1;
  }
  Cluster& cluster = **cluster_or;
  client::Options co = cluster.ClientOptions();
  co.deadline_ms = 20000;
  co.call_timeout_ms = 10000;
  auto client_or = client::Client::Create(co);
  if (!client_or.ok()) return 1;
  client::Client& c = **client_or;
  if (!c.CreateCollection("rb").ok()) return 1;
  auto in_sync_everywhere = [&](std::optional<NodeId> dead) {
    auto map = c.GetClusterMap();
    if (!map.ok()) return false;
    for (const auto& p : map->partitions) {
      if (p.in_sync.size() != 3) return false;
      if (dead && std::find(p.in_sync.begin(), p.in_sync.end(), *dead) != p.in_sync.end()) {
        return false;
      }
    }
    return true;
  };

  // Load: 1 MiB documents of random bytes (nothing to compress) from 4
  // writers.
  std::string body(1 << 20, '\0');
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i + 8 <= body.size(); i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(body.data() + i, &x, 8);
  }
  std::atomic<int> next{0};
  std::atomic<int> failed{0};
  const auto load0 = Clock::now();
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&] {
      for (int i = next++; i < mb; i = next++) {
        std::string doc = body;
        std::snprintf(doc.data(), 16, "%015d", i);  // distinct bodies (no dedup)
        for (size_t k = 64; k < doc.size(); k += 4096) doc[k] = static_cast<char>(i);
        bool ok = false;
        for (int attempt = 0; attempt < 5 && !ok; ++attempt) {
          ok = c.Put("rb", "d" + std::to_string(i), doc).ok();
        }
        if (!ok) ++failed;
      }
    });
  }
  for (std::thread& t : writers) t.join();
  const double load_s = std::chrono::duration<double>(Clock::now() - load0).count();
  if (failed > 0) {
    std::fprintf(stderr, "%d puts failed\n", failed.load());
    return 1;
  }
  std::printf("loaded %d MiB in 1 MiB documents in %.1f s (%.1f MiB/s at R=3)\n", mb, load_s,
              mb / load_s);
  std::fflush(stdout);
  for (int i = 0; i < 600 && !in_sync_everywhere(std::nullopt); ++i) {
    std::this_thread::sleep_for(100ms);
  }
  if (!in_sync_everywhere(std::nullopt)) return 1;

  // The victim: the last chunk server. What its replicas held is rebuilt.
  const int victim = cluster.chunk_server_count() - 1;
  const std::string name = "cs" + std::to_string(victim);
  auto map = c.GetClusterMap();
  if (!map.ok()) return 1;
  std::optional<NodeId> dead;
  for (const auto& n : map->nodes) {
    if (n.name == name) dead = n.id;
  }
  if (!dead) return 1;
  uint64_t held = 0;
  for (const auto& p : map->partitions) {
    if (std::find(p.replicas.begin(), p.replicas.end(), *dead) != p.replicas.end()) ++held;
  }
  const double rebuilt_mib = static_cast<double>(mb) * static_cast<double>(held) / o.partitions;
  const auto t0 = Clock::now();
  if (!cluster.KillChunkServer(victim).ok()) return 1;
  const auto limit = t0 + std::chrono::seconds(600 + mb);
  bool whole = false;
  while (Clock::now() < limit && !(whole = in_sync_everywhere(dead))) {
    std::this_thread::sleep_for(50ms);
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!whole) {
    std::fprintf(stderr, "not every partition had three in-sync replicas after %.0f s\n", s);
    return 1;
  }
  std::printf(
      "rebuild after kill -9 of %s (%llu of %u partitions, ~%.0f MiB re-replicated; "
      "replacement timeout 3 s, snapshot_rate_mb_s=%d, replication_log_entries=%d): "
      "%.1f s, %.1f s per GiB, %.1f MiB/s\n",
      name.c_str(), static_cast<unsigned long long>(held), o.partitions, rebuilt_mib, rate_mb_s,
      log_entries, s, s / (rebuilt_mib / 1024), rebuilt_mib / s);
  return cluster.CheckAllRunning().ok() ? 0 : 1;
}

}  // namespace
}  // namespace cairn::test

int main(int argc, char** argv) {
  int kills = 20;
  bool fast = true;
  bool throughput = false;
  int seconds = 10;
  int clients = 8;
  size_t bytes = 1024;
  bool rebuild = false;
  int mb = 1024;
  int rate = 100;
  int log_entries = 8;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--kills") == 0 && i + 1 < argc) {
      kills = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--profile") == 0 && i + 1 < argc) {
      fast = std::strcmp(argv[++i], "default") != 0;
    } else if (std::strcmp(argv[i], "--throughput") == 0) {
      throughput = true;
    } else if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--clients") == 0 && i + 1 < argc) {
      clients = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--bytes") == 0 && i + 1 < argc) {
      bytes = static_cast<size_t>(std::atol(argv[++i]));
    } else if (std::strcmp(argv[i], "--rebuild") == 0) {
      rebuild = true;
    } else if (std::strcmp(argv[i], "--mb") == 0 && i + 1 < argc) {
      mb = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
      rate = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--log-entries") == 0 && i + 1 < argc) {
      log_entries = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: failover_bench [--kills N] [--profile fast|default]\n"
                   "       failover_bench --throughput [--seconds S] [--clients C] [--bytes B]\n"
                   "       failover_bench --rebuild [--mb M] [--rate MB_S] [--log-entries N]\n");
      return 64;
    }
  }
  if (rebuild) return cairn::test::RunRebuild(mb, rate, log_entries);
  if (!throughput) return cairn::test::Run(kills, fast);
  std::vector<cairn::test::Throughput> r(3);  // r[R - 1]
  for (int rep = 1; rep <= 3; ++rep) {
    if (cairn::test::RunThroughput(rep, seconds, clients, bytes,
                                   &r[static_cast<size_t>(rep - 1)]) != 0) {
      return 1;
    }
  }
  for (int rep = 2; rep <= 3; ++rep) {
    std::printf("R=%d / R=1: throughput %.2f, p99 latency %.2f\n", rep,
                r[static_cast<size_t>(rep - 1)].ops_per_s / r[0].ops_per_s,
                r[static_cast<size_t>(rep - 1)].p99_ms / r[0].p99_ms);
  }
  return 0;
}
