// Replication with automatic failover, with real processes on loopback
// (issue 6): three chunk servers with replication on, the metaserver with
// failover on and R = 3. Writers put and delete documents and remember what
// was acknowledged while the test SIGKILLs chunk servers one after another
// (every kill takes down the primaries of the partitions that node led) and
// restarts them. At the end every acknowledged write is readable with its
// acknowledged content, nothing else appears, and every partition's replicas
// hold the same committed log (same last LSN, same documents).
//
// CI runs a bounded number of kills; CAIRN_LONG=1 runs many more.
#include <gtest/gtest.h>

#include <signal.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ChunkService.h"
#include "tests/common/test_seeds.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/integration_util.h"
#include "tests/integration/proxy_mesh.h"
#include "tests/integration/writer_model.h"
#include "thrift/rpc_client.h"

namespace cairn::test {
namespace {

using namespace std::chrono_literals;

constexpr char kColl[] = "repl";
constexpr int kWriters = 3;
constexpr int kDocsPerWriter = 40;

ClusterOptions ReplicatedCluster() {
  ClusterOptions o;
  o.chunk_servers = 3;
  o.disks_per_server = 3;
  o.partitions = 8;
  o.replication = 3;
  o.metaserver_set = {"heartbeat_interval_ms=200", "failure_timeout_ms=1000", "lease_ms=1000",
                      "replacement_timeout_ms=600000"};
  o.chunkserver_set = {"lease_ms=1000", "heartbeat_interval_ms=200", "replication_timeout_ms=600"};
  return o;
}

// partition -> (node name -> (last applied LSN, documents)), from every
// chunk server's GetStatus.
using Views = std::map<int32_t, std::map<std::string, std::pair<int64_t, int64_t>>>;

Result<Views> PartitionViews(Cluster& cluster) {
  net::ClientOptions co;
  co.tls = cluster.AdminTls();
  ASSIGN_OR_RETURN(auto pool, net::ConnectionPool::Create(co));
  Views out;
  for (int i = 0; i < cluster.chunk_server_count(); ++i) {
    if (cluster.chunkserver_pid(i) <= 0) continue;  // stopped by the test
    rpc::NodeStatus st;
    RETURN_IF_ERROR(pool->Call<rpc::ChunkServiceClient>(
        cluster.chunkserver(i), [&](rpc::ChunkServiceClient& c) { c.GetStatus(st); }));
    for (const rpc::PartitionStatus& p : st.partitions) {
      if (p.role == "removed") continue;  // the map gives it to other nodes
      out[p.partition][st.name] = {p.last_lsn, p.documents};
    }
  }
  return out;
}

// A client for tests that pause or cut a node: such a node may accept
// connections and never answer, so each call to it costs the call timeout;
// keep that short and the deadline long.
Result<std::unique_ptr<client::Client>> ShortTimeoutClient(const Cluster& cluster) {
  client::Options opts = cluster.ClientOptions();
  opts.call_timeout_ms = 1500;
  opts.connect_timeout_ms = 1000;
  opts.deadline_ms = 60000;
  return client::Client::Create(opts);
}

// Admin connections to the chunk servers, with a short call timeout (a
// paused node never answers).
std::unique_ptr<net::ConnectionPool> AdminPool(Cluster& cluster) {
  net::ClientOptions co;
  co.tls = cluster.AdminTls();
  co.call_timeout_ms = 1500;
  auto pool = net::ConnectionPool::Create(co);
  EXPECT_TRUE(pool.ok()) << pool.status().ToString();
  return pool.ok() ? std::move(*pool) : nullptr;
}

// Asks chunk server `node` directly for `id` (partition `p`, at the epoch the
// caller knew) every 20 ms for 3 s: each answer is a refusal or `want`,
// never an older value. Returns how many answers were `want`.
int ExpectNeverStale(Cluster& cluster, int node, PartitionId p, Epoch epoch, const std::string& id,
                     const std::string& want, const std::string& who) {
  auto pool = AdminPool(cluster);
  if (pool == nullptr) return 0;
  int refused = 0;
  int current = 0;
  const auto until = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < until) {
    rpc::GetRequest req;
    req.partition = static_cast<int32_t>(p.value());
    req.epoch = static_cast<int64_t>(epoch.value());
    req.collection = kColl;
    req.id = id;
    req.offset = 0;
    req.length = 1 << 20;
    rpc::GetResult r;
    Status s = pool->Call<rpc::ChunkServiceClient>(
        cluster.chunkserver(node), [&](rpc::ChunkServiceClient& cl) { cl.Get(r, req); });
    if (s.ok()) {
      EXPECT_EQ(r.data, want) << who << " served a stale value";
      if (r.data != want) return current;
      ++current;
    } else {
      ++refused;
    }
    std::this_thread::sleep_for(20ms);
  }
  std::printf("%s: %d refused, %d current answers\n", who.c_str(), refused, current);
  return current;
}

// Waits until every partition's replicas agree (the backups learn the commit
// point from the primary within a few retransmit periods). With `slack` > 0
// (writers still running) the applied LSNs may differ by that much: every
// replica is there and caught up.
::testing::AssertionResult ReplicasConverge(Cluster& cluster, std::chrono::seconds limit,
                                            int64_t slack = 0) {
  std::string last;
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    Result<Views> v = PartitionViews(cluster);
    if (v.ok()) {
      bool same = v->size() > 0;
      last.clear();
      for (const auto& [p, nodes] : *v) {
        if (nodes.size() != 3) same = false;
        for (const auto& [n, lsn_docs] : nodes) {
          const auto& first = nodes.begin()->second;
          if (slack == 0 ? lsn_docs != first
                         : std::abs(lsn_docs.first - first.first) > slack || lsn_docs.first == 0) {
            same = false;
          }
          last += "p" + std::to_string(p) + "@" + n + "=" + std::to_string(lsn_docs.first) + "/" +
                  std::to_string(lsn_docs.second) + " ";
        }
      }
      if (same) return ::testing::AssertionSuccess();
    } else {
      last = v.status().ToString();
    }
    std::this_thread::sleep_for(200ms);
  }
  return ::testing::AssertionFailure() << "replicas differ: " << last;
}

// Puts one small document per partition so that every primary is active.
::testing::AssertionResult Warmup(client::Client& c) {
  for (int i = 0; i < 32; ++i) {
    auto put = c.Put(kColl, "warmup-" + std::to_string(i), "x");
    if (!put.ok()) return ::testing::AssertionFailure() << put.status().ToString();
  }
  return ::testing::AssertionSuccess();
}

// kWriters writers (RunWriter) on `c` while chunk servers are SIGKILLed one
// after another (its primaries fail over to in-sync backups), each kept down
// for `down_for` and then back as a learner that catches up and rejoins;
// returns the writers' histories once they stopped.
std::vector<WriterState> WriteThroughKills(Cluster& cluster, client::Client& c, uint64_t seed,
                                           int rounds, int docs_per_writer, int streamed_every,
                                           std::chrono::milliseconds down_for) {
  std::atomic<bool> stop{false};
  std::vector<WriterState> states(kWriters);
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back(RunWriter, std::ref(c), std::string(kColl), w, docs_per_writer, seed,
                         std::cref(stop), &states[static_cast<size_t>(w)], streamed_every);
  }
  for (int round = 0; round < rounds; ++round) {
    std::this_thread::sleep_for(1500ms);
    const int victim = round % cluster.chunk_server_count();
    IT_EXPECT_OK(cluster.KillChunkServer(victim));
    std::this_thread::sleep_for(down_for);
    IT_EXPECT_OK(cluster.RestartChunkServer(victim));
    // Before the next kill, the cluster must be whole again (the fault
    // budget is R - 1 replicas of a partition down at a time, and a node
    // that has not caught up counts as down).
    EXPECT_TRUE(ReplicasConverge(cluster, 60s, /*slack=*/300)) << "round " << round;
  }
  std::this_thread::sleep_for(1000ms);
  stop = true;
  for (std::thread& t : writers) t.join();
  return states;
}

TEST(IntegrationReplication, SigkillPrimariesWhileWritingLosesNothingAcknowledged) {
  QuietLogs quiet;
  const uint64_t seed = Seeds(1, 606)[0];
  SCOPED_TRACE(SeedTrace(seed));
  const int rounds = std::getenv("CAIRN_LONG") != nullptr ? 60 : 20;
  auto cluster_or = Cluster::Start(ReplicatedCluster());
  ASSERT_TRUE(cluster_or.ok()) << cluster_or.status().ToString();
  Cluster& cluster = **cluster_or;
  auto client_or = cluster.NewClient();
  ASSERT_TRUE(client_or.ok()) << client_or.status().ToString();
  client::Client& c = **client_or;
  IT_ASSERT_OK(c.CreateCollection(kColl));
  ASSERT_TRUE(Warmup(c));
  const std::vector<WriterState> states =
      WriteThroughKills(cluster, c, seed, rounds, kDocsPerWriter, kStreamedPutEvery, 2500ms);

  int acked = 0;
  int failed = 0;
  for (const WriterState& s : states) {
    acked += s.acked;
    failed += s.failed;
  }
  std::printf("%d kills; writers: %d acknowledged, %d failed operations\n", rounds, acked, failed);
  EXPECT_GT(acked, 100) << "the writers made too little progress to test anything";
  VerifyAll(c, kColl, states, "after the kills");
  EXPECT_TRUE(ReplicasConverge(cluster, 60s));
  // One primary per partition, the other two its backups.
  auto pool = AdminPool(cluster);
  ASSERT_NE(pool, nullptr);
  std::map<int32_t, std::map<std::string, int>> roles;  // partition -> role -> count
  for (int i = 0; i < cluster.chunk_server_count(); ++i) {
    rpc::NodeStatus st;
    IT_ASSERT_OK(pool->Call<rpc::ChunkServiceClient>(
        cluster.chunkserver(i), [&](rpc::ChunkServiceClient& cl) { cl.GetStatus(st); }));
    for (const rpc::PartitionStatus& p : st.partitions) ++roles[p.partition][p.role];
  }
  for (const auto& [p, r] : roles) {
    EXPECT_EQ(r, (std::map<std::string, int>{{"backup", 2}, {"primary", 1}})) << "partition " << p;
  }
  IT_EXPECT_OK(cluster.CheckAllRunning());
}

// The whole body of `id` as chunk server `node` holds it, asked directly
// (a backup may answer).
Result<std::string> ReadFromReplica(net::ConnectionPool& pool, Cluster& cluster, int node,
                                    PartitionId p, Epoch epoch, const std::string& id) {
  std::string body;
  for (;;) {
    rpc::GetRequest req;
    req.partition = static_cast<int32_t>(p.value());
    req.epoch = static_cast<int64_t>(epoch.value());
    req.collection = kColl;
    req.id = id;
    req.offset = static_cast<int64_t>(body.size());
    req.length = 1 << 20;
    req.__set_allow_backup(true);
    rpc::GetResult r;
    RETURN_IF_ERROR(pool.Call<rpc::ChunkServiceClient>(
        cluster.chunkserver(node), [&](rpc::ChunkServiceClient& cl) { cl.Get(r, req); }));
    body += r.data;
    if (r.data.empty() || body.size() >= static_cast<size_t>(r.meta.size)) return body;
  }
}

// Streamed puts (uploads of 2 or 3 blocks, each block streamed on to the
// backups as it reaches the primary, ahead of the put) while chunk servers
// are SIGKILLed: a kill hits primaries mid-upload (the client starts over
// on the new primary) and backups holding streamed blocks whose put has not
// come (gone after the restart: the backup answers NotFound to the entry and
// gets them with it). Every acknowledged body must be whole on every
// replica, each read directly.
TEST(IntegrationReplication, StreamedPutsSurviveKillsAndAreWholeOnEveryReplica) {
  QuietLogs quiet;
  const uint64_t seed = Seeds(1, 607)[0];
  SCOPED_TRACE(SeedTrace(seed));
  const int rounds = std::getenv("CAIRN_LONG") != nullptr ? 30 : 6;
  ClusterOptions options = ReplicatedCluster();
  // Compaction every 2 s: it moves blocks streamed ahead and not yet
  // claimed (as it moves any upload's), and keeps the overwritten bodies
  // from filling the disk.
  options.chunkserver_set.push_back("compact_interval_s=2");
  auto cluster_or = Cluster::Start(options);
  ASSERT_TRUE(cluster_or.ok()) << cluster_or.status().ToString();
  Cluster& cluster = **cluster_or;
  auto client_or = cluster.NewClient();
  ASSERT_TRUE(client_or.ok()) << client_or.status().ToString();
  client::Client& c = **client_or;
  IT_ASSERT_OK(c.CreateCollection(kColl));
  ASSERT_TRUE(Warmup(c));
  const std::vector<WriterState> states = WriteThroughKills(
      cluster, c, seed, rounds, /*docs_per_writer=*/12, /*streamed_every=*/3, 1500ms);
  int acked = 0;
  for (const WriterState& s : states) acked += s.acked;
  std::printf("%d kills; writers: %d acknowledged\n", rounds, acked);
  EXPECT_GT(acked, 20) << "the writers made too little progress to test anything";
  VerifyAll(c, kColl, states, "after the kills");
  ASSERT_TRUE(ReplicasConverge(cluster, 60s));

  // Each replica of each document holds what the primary serves.
  auto map = c.GetClusterMap();
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  auto pool = AdminPool(cluster);
  ASSERT_NE(pool, nullptr);
  int streamed = 0;
  for (const WriterState& s : states) {
    for (const auto& [id, h] : s.docs) {
      std::string want;
      auto g = c.Get(kColl, id, client::StringWriter(&want));
      if (g.status().code() == StatusCode::kNotFound) continue;
      ASSERT_TRUE(g.ok()) << id << ": " << g.status().ToString();
      if (want.size() > (1u << 20)) ++streamed;
      auto p = c.PartitionOfDocument(kColl, id);
      ASSERT_TRUE(p.ok());
      const auto& entry = map->partitions[p->value()];
      ASSERT_EQ(entry.replicas.size(), 3u);
      for (NodeId n : entry.replicas) {
        const auto* node = map->FindNode(n);
        ASSERT_NE(node, nullptr);
        const int i = std::atoi(node->name.c_str() + 2);  // "cs<i>"
        Result<std::string> got = ReadFromReplica(*pool, cluster, i, *p, entry.epoch, id);
        ASSERT_TRUE(got.ok()) << id << " on " << node->name << ": " << got.status().ToString();
        EXPECT_TRUE(*got == want) << id << " on " << node->name << ": " << got->size()
                                  << " bytes, the primary serves " << want.size();
      }
    }
  }
  // And their blocks went to the backups ahead of the puts: each streamed
  // document's 2 or 3 blocks on 2 backups, most claimed from there.
  int64_t sent = 0;
  int64_t claimed = 0;
  for (int i = 0; i < cluster.chunk_server_count(); ++i) {
    rpc::NodeStatus st;
    IT_ASSERT_OK(pool->Call<rpc::ChunkServiceClient>(
        cluster.chunkserver(i), [&](rpc::ChunkServiceClient& cl) { cl.GetStatus(st); }));
    sent += st.streamed_blocks_sent;
    claimed += st.streamed_blocks_claimed;
  }
  std::printf(
      "%d streamed documents checked on every replica; blocks streamed ahead: %lld sent, "
      "%lld claimed by their puts (since the last restart of each node)\n",
      streamed, static_cast<long long>(sent), static_cast<long long>(claimed));
  EXPECT_GT(streamed, 5);
  EXPECT_GE(claimed, 2 * streamed) << "the backups did not take the blocks streamed ahead";
  IT_EXPECT_OK(cluster.CheckAllRunning());
}

// A node away for longer than the replacement timeout: each of its replicas
// is rebuilt on the fourth node (a learner that gets a snapshot and the log,
// then joins), the dead one leaves the replica sets, and every partition is
// back to three in-sync replicas without anyone acting.
// RunCommand captures stderr with stdout: the CLI logs nothing below errors
// (scripts/test.sh exports CAIRN_LOG_LEVEL=warn), so --json output parses.
const std::vector<std::string> kQuietCli = {"CAIRN_LOG_LEVEL=error"};

TEST(IntegrationReplication, ANodeAwayPastTheReplacementTimeoutIsReplaced) {
  QuietLogs quiet;
  ClusterOptions o = ReplicatedCluster();
  o.chunk_servers = 4;
  for (std::string& s : o.metaserver_set) {
    if (s.rfind("replacement_timeout_ms=", 0) == 0) s = "replacement_timeout_ms=3000";
  }
  // New replicas from snapshots (a short kept log), slow enough (4 MiB/s per
  // sender, partitions of ~8 MiB: two or three 4 MiB chunks each) that
  // `cairn status` sees them part-way.
  o.chunkserver_set.push_back("replication_log_entries=8");
  o.chunkserver_set.push_back("snapshot_rate_mb_s=4");
  auto cluster_or = Cluster::Start(o);
  ASSERT_TRUE(cluster_or.ok()) << cluster_or.status().ToString();
  Cluster& cluster = **cluster_or;
  auto client_or = cluster.NewClient();
  ASSERT_TRUE(client_or.ok()) << client_or.status().ToString();
  client::Client& c = **client_or;
  IT_ASSERT_OK(c.CreateCollection(kColl));
  std::map<std::string, std::string> docs;
  for (int i = 0; i < 200; ++i) {
    const std::string id = "d" + std::to_string(i);
    docs[id] = MakeBody(7, static_cast<uint64_t>(i), 100 + static_cast<size_t>(i) * 37);
    ASSERT_TRUE(c.Put(kColl, id, docs[id]).ok());
  }
  // 64 MiB of random bytes in 512 KiB documents: each partition's snapshot
  // takes a few seconds at the throttle.
  const uint64_t seed = Seeds(1, 808)[0];
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 128; ++i) {
    const std::string id = "big" + std::to_string(i);
    std::string body(512 << 10, '\0');
    for (char& ch : body) ch = static_cast<char>(rng());
    docs[id] = body;
    ASSERT_TRUE(c.Put(kColl, id, docs[id]).ok());
  }
  auto client_conf = cluster.WriteClientConfig("status", cluster.UserTls());
  ASSERT_TRUE(client_conf.ok()) << client_conf.status().ToString();
  auto before = c.GetClusterMap();
  ASSERT_TRUE(before.ok());
  // The node holding the most replicas goes away for good.
  std::map<uint32_t, int> held;
  for (const auto& p : before->partitions) {
    for (NodeId n : p.replicas) ++held[n.value()];
  }
  uint32_t gone_id = 0;
  for (const auto& [n, count] : held) {
    if (gone_id == 0 || count > held[gone_id]) gone_id = n;
  }
  const auto* gone = before->FindNode(NodeId(gone_id));
  ASSERT_NE(gone, nullptr);
  const int victim = std::atoi(gone->name.c_str() + 2);  // "cs<i>"
  IT_ASSERT_OK(cluster.KillChunkServer(victim));
  const auto t0 = std::chrono::steady_clock::now();

  bool whole = false;
  std::string last;
  // `cairn status` while the rebuild runs: a replica part-way through a
  // snapshot, in the JSON and in the text.
  bool seen_partial = false;
  bool seen_line = false;
  std::string last_status;
  while (!whole && std::chrono::steady_clock::now() < t0 + 120s) {
    std::this_thread::sleep_for(250ms);
    if (!seen_partial) {
      auto json = RunCommand(
          {CAIRN_CLI_BIN, "--config", *client_conf, "--timeout", "10", "status", "--json"}, 30s,
          kQuietCli);
      if (json.ok() && json->exit_code == 0) {
        last_status = json->output;
        const nlohmann::json status = nlohmann::json::parse(json->output);
        if (std::getenv("CAIRN_TEST_VERBOSE") != nullptr) {
          std::printf("rebuilding: %s\n", status["rebuilding"].dump().c_str());
        }
        for (const auto& e : status["rebuilding"]) {
          const int64_t done = e["snapshot_bytes_done"];
          const int64_t total = e["snapshot_bytes_total"];
          if (total > 0 && done < total && e["node_name"] != gone->name) seen_partial = true;
        }
      }
      auto text = RunCommand({CAIRN_CLI_BIN, "--config", *client_conf, "--timeout", "10", "status"},
                             30s, kQuietCli);
      if (text.ok() && text->output.find("receiving a snapshot") != std::string::npos) {
        seen_line = true;
      }
    }
    auto map = c.GetClusterMap();
    if (!map.ok()) continue;
    whole = true;
    last.clear();
    for (const auto& p : map->partitions) {
      const bool has_gone =
          std::find(p.replicas.begin(), p.replicas.end(), NodeId(gone_id)) != p.replicas.end();
      if (p.in_sync.size() != 3 || p.replicas.size() != 3 || has_gone) whole = false;
      last += "p" + std::to_string(p.id.value()) + " replicas " +
              std::to_string(p.replicas.size()) + " in-sync " + std::to_string(p.in_sync.size()) +
              (has_gone ? " (still names the dead node) " : " ");
    }
  }
  ASSERT_TRUE(whole) << "not back to three in-sync replicas: " << last;
  EXPECT_TRUE(seen_partial) << "cairn status never showed a snapshot part-way; last: "
                            << last_status;
  EXPECT_TRUE(seen_line);
  // Back to full replication: nothing under-replicated, nothing rebuilding.
  auto done_json =
      RunCommand({CAIRN_CLI_BIN, "--config", *client_conf, "--timeout", "10", "status", "--json"},
                 30s, kQuietCli);
  ASSERT_TRUE(done_json.ok() && done_json->exit_code == 0);
  const auto j = nlohmann::json::parse(done_json->output);
  EXPECT_EQ(j["under_replicated_partitions"], 0) << done_json->output;
  EXPECT_TRUE(j["rebuilding"].empty()) << done_json->output;
  std::printf("node %s replaced: three in-sync replicas everywhere after %.1f s\n",
              gone->name.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  for (const auto& [id, body] : docs) {
    std::string got;
    auto r = c.Get(kColl, id, client::StringWriter(&got));
    ASSERT_TRUE(r.ok()) << id << ": " << r.status().ToString();
    EXPECT_EQ(got, body) << id;
  }
  // The three live nodes hold every partition, identical.
  EXPECT_TRUE(ReplicasConverge(cluster, 60s));
  // The replaced node comes back: the map gives it nothing, so it drops the
  // copies it still holds (space, and uncommitted tails that would hold
  // back its checkpoints and compaction).
  IT_ASSERT_OK(cluster.RestartChunkServer(victim));
  auto admin = AdminPool(cluster);
  bool emptied = false;
  std::string held_back;
  for (int i = 0; i < 150 && !emptied; ++i) {
    std::this_thread::sleep_for(200ms);
    rpc::NodeStatus st;
    Status s = admin->Call<rpc::ChunkServiceClient>(
        cluster.chunkserver(victim), [&](rpc::ChunkServiceClient& cl) { cl.GetStatus(st); });
    if (!s.ok()) continue;
    emptied = true;
    held_back.clear();
    for (const rpc::PartitionStatus& p : st.partitions) {
      if (p.documents != 0 || p.last_lsn != 0) {
        emptied = false;
        held_back += "p" + std::to_string(p.partition) + " " + p.role + " " +
                     std::to_string(p.documents) + " docs; ";
      }
    }
  }
  EXPECT_TRUE(emptied) << "the replaced node still holds: " << held_back;
  EXPECT_TRUE(ReplicasConverge(cluster, 60s));
}

// What one node claims, from its GetStatus: (partition, epoch) -> nodes that
// report themselves primary of it. Accumulated over the polls of a test.
using PrimaryClaims = std::map<std::pair<int32_t, int64_t>, std::set<std::string>>;

void RecordPrimaryClaims(Cluster& cluster, net::ConnectionPool& pool, PrimaryClaims* claims) {
  for (int i = 0; i < cluster.chunk_server_count(); ++i) {
    rpc::NodeStatus st;
    Status s = pool.Call<rpc::ChunkServiceClient>(
        cluster.chunkserver(i), [&](rpc::ChunkServiceClient& cl) { cl.GetStatus(st); });
    if (!s.ok()) continue;
    for (const rpc::PartitionStatus& p : st.partitions) {
      if (p.role == "primary") (*claims)[{p.partition, p.epoch}].insert(st.name);
    }
  }
}

// A put of `id` sent straight to chunk server `node` for partition `p`, at the
// epoch that node itself reports (so a refusal is about its role or lease,
// not a stale epoch in the request).
Status DirectPut(Cluster& cluster, net::ConnectionPool& pool, int node, PartitionId p,
                 const std::string& id, const std::string& body, int64_t seq) {
  rpc::NodeStatus st;
  RETURN_IF_ERROR(pool.Call<rpc::ChunkServiceClient>(
      cluster.chunkserver(node), [&](rpc::ChunkServiceClient& cl) { cl.GetStatus(st); }));
  int64_t epoch = 0;
  for (const rpc::PartitionStatus& ps : st.partitions) {
    if (ps.partition == static_cast<int32_t>(p.value())) epoch = ps.epoch;
  }
  rpc::PutRequest req;
  req.partition = static_cast<int32_t>(p.value());
  req.epoch = epoch;
  req.request_id.client_hi = 0x7e57;
  req.request_id.client_lo = 0x9a27;
  req.request_id.seq = seq;
  req.collection = kColl;
  req.id = id;
  req.size = static_cast<int64_t>(body.size());
  req.body_hash = static_cast<int64_t>(XXH3_64bits(body.data(), body.size()));
  req.__set_body(body);
  rpc::DocMeta meta;
  return pool.Call<rpc::ChunkServiceClient>(
      cluster.chunkserver(node), [&](rpc::ChunkServiceClient& cl) { cl.Put(meta, req); });
}

enum class Cut : uint8_t {
  kMetaserver,          // from the metaserver only: peers and clients still reach it
  kMetaserverAndPeers,  // from the metaserver and from every peer, both ways: clients still reach
                        // it
};

// A network partition: the primary of a partition is cut (see Cut) while
// writers run. It must stop serving when its lease ends, exactly one new
// primary must take over and take writes within a few seconds of being named,
// and when the partition heals nothing acknowledged is lost and the old
// primary rejoins as a backup.
void CutAPrimaryWhileWriting(Cut cut, TcpProxy::CutMode how, uint64_t seed) {
  ProxyMesh mesh(3);
  ClusterOptions o = ReplicatedCluster();
  mesh.Wire(&o);
  auto cluster_or = Cluster::Start(o);
  ASSERT_TRUE(cluster_or.ok()) << cluster_or.status().ToString();
  Cluster& cluster = **cluster_or;
  struct Heal {  // before the cluster stops, also when an assertion ends the test
    ProxyMesh* mesh;
    ~Heal() { mesh->HealAll(); }
  } heal{&mesh};
  auto client_or = ShortTimeoutClient(cluster);
  ASSERT_TRUE(client_or.ok()) << client_or.status().ToString();
  client::Client& c = **client_or;
  auto admin = AdminPool(cluster);
  ASSERT_NE(admin, nullptr);
  IT_ASSERT_OK(c.CreateCollection(kColl));
  ASSERT_TRUE(c.Put(kColl, "x", "v1").ok());
  auto p = c.PartitionOfDocument(kColl, "x");
  ASSERT_TRUE(p.ok());
  auto map = c.GetClusterMap();
  ASSERT_TRUE(map.ok());
  const auto entry = map->partitions[p->value()];
  const auto* node = map->FindNode(entry.replicas.front());
  ASSERT_NE(node, nullptr);
  const int victim = std::atoi(node->name.c_str() + 2);  // "cs<i>"
  // A document of the same partition, for writes sent to the old primary.
  std::string probe;
  for (int k = 0; probe.empty(); ++k) {
    auto pk = c.PartitionOfDocument(kColl, "probe-" + std::to_string(k));
    ASSERT_TRUE(pk.ok());
    if (*pk == *p) probe = "probe-" + std::to_string(k);
  }

  std::atomic<bool> stop{false};
  std::vector<WriterState> states(kWriters);
  std::vector<std::thread> writers;
  struct Join {  // also when an assertion ends the test early
    std::atomic<bool>* stop;
    std::vector<std::thread>* threads;
    ~Join() {
      *stop = true;
      for (std::thread& t : *threads) {
        if (t.joinable()) t.join();
      }
    }
  } join{&stop, &writers};
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back(RunWriter, std::ref(c), std::string(kColl), w, kDocsPerWriter, seed,
                         std::cref(stop), &states[static_cast<size_t>(w)], kStreamedPutEvery);
  }
  std::this_thread::sleep_for(1s);
  mesh.CutFromMetaserver(victim, how);
  if (cut == Cut::kMetaserverAndPeers) mesh.CutFromPeers(victim, how);
  const auto t0 = std::chrono::steady_clock::now();
  auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  PrimaryClaims claims;
  // The metaserver names a new primary once the cut node's lease is over.
  bool moved = false;
  while (!moved && std::chrono::steady_clock::now() < t0 + 30s) {
    RecordPrimaryClaims(cluster, *admin, &claims);
    std::this_thread::sleep_for(50ms);
    auto m = c.GetClusterMap();
    moved = m.ok() && m->partitions[p->value()].replicas.front() != entry.replicas.front();
  }
  ASSERT_TRUE(moved) << "no new primary for partition " << p->value();
  const auto named = std::chrono::steady_clock::now();
  const double named_after = since(t0);
  // Its lease is over (the metaserver waited for it): asked directly, the
  // old primary refuses writes (the reads: ExpectNeverStale below).
  for (int k = 0; k < 5; ++k) {
    Status s = DirectPut(cluster, *admin, victim, *p, probe, "must never be acknowledged", k);
    EXPECT_TRUE(s.code() == StatusCode::kNotPrimary || s.code() == StatusCode::kUnavailable ||
                s.code() == StatusCode::kTimeout)
        << "the cut-off primary, asked for a write after its lease: " << s.ToString();
  }
  // The new primary takes writes once its epoch is active and it holds a
  // lease: within a few seconds of being named (a regression here once took
  // 20-50 s: the metaserver admitted the cut node back into the in-sync set
  // on its old primary's request and dropped it again, a new epoch every
  // few hundred ms).
  Status put_status;
  while (std::chrono::steady_clock::now() < named + 60s) {
    RecordPrimaryClaims(cluster, *admin, &claims);
    auto put = c.Put(kColl, "x", "v3");
    put_status = put.status();
    if (put.ok()) break;
  }
  ASSERT_TRUE(put_status.ok()) << put_status.ToString();
  const double writable_after = since(named);
  std::printf(
      "primary %s cut from the metaserver%s (%s): new primary named after %.2f s, x rewritten "
      "%.2f s later\n",
      node->name.c_str(), cut == Cut::kMetaserverAndPeers ? " and its peers" : "",
      how == TcpProxy::CutMode::kSilent ? "silent" : "connections closed", named_after,
      writable_after);
  EXPECT_LT(writable_after, 8.0) << "writes unavailable too long after the new primary was named";
  // The cut-off node, asked directly: never the old value; cut from its
  // peers too, it cannot have learnt the new one either.
  auto before = c.GetClusterMap();
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  const int current =
      ExpectNeverStale(cluster, victim, *p, entry.epoch, "x", "v3", "the cut-off primary");
  // Meanwhile (3 s) the map settles: at most the last drops of the cut node
  // (one per partition), not an epoch every few hundred ms.
  auto after = c.GetClusterMap();
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  std::printf("map versions %lld -> %lld during the cut\n", static_cast<long long>(before->version),
              static_cast<long long>(after->version));
  EXPECT_LE(after->version, before->version + static_cast<int64_t>(o.partitions))
      << "the map keeps changing";
  if (cut == Cut::kMetaserverAndPeers) {
    EXPECT_EQ(current, 0);
  }
  RecordPrimaryClaims(cluster, *admin, &claims);
  // At most one primary per partition and epoch, all along the cut.
  for (const auto& [pe, nodes] : claims) {
    EXPECT_EQ(nodes.size(), 1u) << "partition " << pe.first << " epoch " << pe.second << " has "
                                << nodes.size() << " primaries";
  }
  mesh.HealAll();
  const auto healed = std::chrono::steady_clock::now();
  // Writers go on across the heal while the old primary rejoins: every
  // partition has its three replicas in sync again.
  bool whole = false;
  while (!whole && std::chrono::steady_clock::now() < healed + 60s) {
    std::this_thread::sleep_for(100ms);
    auto m = c.GetClusterMap();
    whole = m.ok();
    for (size_t i = 0; whole && i < m->partitions.size(); ++i) {
      whole = m->partitions[i].in_sync.size() == 3;
    }
  }
  EXPECT_TRUE(whole) << "the old primary did not rejoin every partition";
  std::printf("healed: every partition has three in-sync replicas after %.2f s\n", since(healed));
  stop = true;
  for (std::thread& t : writers) t.join();
  int acked = 0;
  for (const WriterState& s : states) acked += s.acked;
  EXPECT_GT(acked, 50);
  VerifyAll(c, kColl, states, "after the partition healed");
  EXPECT_TRUE(ReplicasConverge(cluster, 60s));
  std::string got;
  ASSERT_TRUE(c.Get(kColl, "x", client::StringWriter(&got)).ok());
  EXPECT_EQ(got, "v3");
  // What the old primary took after its lease was never committed.
  got.clear();
  EXPECT_EQ(c.Get(kColl, probe, client::StringWriter(&got)).status().code(), StatusCode::kNotFound)
      << "a write refused by the cut-off primary exists: " << got;
  IT_EXPECT_OK(cluster.CheckAllRunning());
}

TEST(IntegrationReplication, APrimaryCutFromTheMetaserverStepsDownAndLosesNothing) {
  QuietLogs quiet;
  const uint64_t seed = Seeds(1, 707)[0];
  SCOPED_TRACE(SeedTrace(seed));
  CutAPrimaryWhileWriting(Cut::kMetaserver, TcpProxy::CutMode::kClose, seed);
}

// The hardest case of a partition: the primary is cut from the metaserver
// and from both backups (both ways), while clients still reach it and keep
// talking to it until their map says otherwise.
TEST(IntegrationReplication, APrimaryCutFromTheMetaserverAndItsBackupsStepsDownAndLosesNothing) {
  QuietLogs quiet;
  const uint64_t seed = Seeds(1, 808)[0];
  SCOPED_TRACE(SeedTrace(seed));
  CutAPrimaryWhileWriting(Cut::kMetaserverAndPeers, TcpProxy::CutMode::kClose, seed);
}

// The same, with a silent cut: nothing reaches the other side and nothing
// comes back, but no connection is closed (calls to and from the old primary
// hang until their timeouts, as when packets are dropped).
TEST(IntegrationReplication, APrimarySilentlyCutFromTheMetaserverAndItsBackupsLosesNothing) {
  QuietLogs quiet;
  const uint64_t seed = Seeds(1, 909)[0];
  SCOPED_TRACE(SeedTrace(seed));
  CutAPrimaryWhileWriting(Cut::kMetaserverAndPeers, TcpProxy::CutMode::kSilent, seed);
}

// A primary that stops (SIGSTOP: cut off from everyone, as in a network
// partition that isolates it) loses its partitions to in-sync backups once its
// lease has run out; when it runs again, it must not serve the old value (its
// lease ended on its own clock) and it rejoins as a backup of the new primary.
// Reads that allow a backup (client::ReadFrom::kAnyReplica, GetRequest.
// allow_backup): served by the in-sync backups themselves, complete once the
// replicas caught up, and never older than the write acknowledged before the
// last one the backup showed.
TEST(IntegrationReplication, ReadsFromBackupsAreServedThereAndFollowThePrimary) {
  QuietLogs quiet;
  auto cluster_or = Cluster::Start(ReplicatedCluster());
  ASSERT_TRUE(cluster_or.ok()) << cluster_or.status().ToString();
  Cluster& cluster = **cluster_or;
  auto writer_or = client::Client::Create(cluster.ClientOptions());
  ASSERT_TRUE(writer_or.ok()) << writer_or.status().ToString();
  client::Client& w = **writer_or;
  IT_ASSERT_OK(w.CreateCollection(kColl));
  constexpr int kDocs = 40;
  auto body = [](int i) { return "{\"n\": " + std::to_string(i) + "}"; };
  for (int i = 0; i < kDocs; ++i) {
    auto put = w.Put(kColl, "d" + std::to_string(i), body(i));
    ASSERT_TRUE(put.ok()) << put.status().ToString();
  }
  ASSERT_TRUE(ReplicasConverge(cluster, 60s));

  client::Options ro = cluster.ClientOptions();
  ro.read_from = client::ReadFrom::kAnyReplica;
  auto reader_or = client::Client::Create(ro);
  ASSERT_TRUE(reader_or.ok()) << reader_or.status().ToString();
  client::Client& r = **reader_or;
  auto backup_reads = [&]() -> int64_t {
    auto pool = AdminPool(cluster);
    int64_t sum = 0;
    for (int i = 0; i < cluster.chunk_server_count(); ++i) {
      rpc::NodeStatus st;
      Status s = pool->Call<rpc::ChunkServiceClient>(
          cluster.chunkserver(i), [&](rpc::ChunkServiceClient& c) { c.GetStatus(st); });
      EXPECT_TRUE(s.ok()) << s.ToString();
      sum += st.backup_reads;
    }
    return sum;
  };
  const int64_t before = backup_reads();
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kDocs; ++i) {
      const std::string id = "d" + std::to_string(i);
      std::string got;
      auto g = r.Get(kColl, id, client::StringWriter(&got));
      ASSERT_TRUE(g.ok()) << id << ": " << g.status().ToString();
      EXPECT_EQ(got, body(i));
      auto st = r.Stat(kColl, id);
      ASSERT_TRUE(st.ok()) << st.status().ToString();
      EXPECT_EQ(st->size, body(i).size());
    }
  }
  auto list = r.List(kColl);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(list->items.size(), static_cast<size_t>(kDocs));
  auto q = r.Query(kColl, "n >= 10");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->rows.size(), static_cast<size_t>(kDocs - 10));
  // A Get or Stat picks one of 3 in-sync replicas at random: about two
  // thirds land on backups (each Get and Stat checks once per call).
  const int64_t served = backup_reads() - before;
  std::printf("backup reads served: %lld of about %d reads\n", static_cast<long long>(served),
              2 * kRounds * kDocs);
  EXPECT_GT(served, kRounds * kDocs / 2) << "reads did not spread over the backups";

  // One backup asked directly while the primary takes new writes: after
  // each acknowledged write it shows that value or the one before, and the
  // new one soon.
  auto p = w.PartitionOfDocument(kColl, "x");
  ASSERT_TRUE(p.ok());
  auto map = w.GetClusterMap();
  ASSERT_TRUE(map.ok());
  const auto& entry = map->partitions[p->value()];
  ASSERT_EQ(entry.replicas.size(), 3u);
  const auto* node = map->FindNode(entry.replicas[1]);
  ASSERT_NE(node, nullptr);
  const int backup = std::atoi(node->name.c_str() + 2);  // "cs<i>"
  auto pool = AdminPool(cluster);
  ASSERT_NE(pool, nullptr);
  std::string previous;
  for (int k = 0; k < 10; ++k) {
    const std::string value = "w" + std::to_string(k);
    ASSERT_TRUE(w.Put(kColl, "x", value).ok());
    const auto until = std::chrono::steady_clock::now() + 10s;
    std::string seen;
    while (seen != value && std::chrono::steady_clock::now() < until) {
      rpc::GetRequest req;
      req.partition = static_cast<int32_t>(p->value());
      req.epoch = static_cast<int64_t>(entry.epoch.value());
      req.collection = kColl;
      req.id = "x";
      req.offset = 0;
      req.length = 1 << 20;
      req.__set_allow_backup(true);
      rpc::GetResult res;
      Status s = pool->Call<rpc::ChunkServiceClient>(
          cluster.chunkserver(backup), [&](rpc::ChunkServiceClient& cl) { cl.Get(res, req); });
      if (s.ok()) {
        seen = res.data;
        ASSERT_TRUE(seen == value || (!previous.empty() && seen == previous))
            << "backup " << node->name << " showed '" << seen << "' after '" << value
            << "' was acknowledged";
      } else {
        // Only "not there yet" (the first write) may be refused.
        ASSERT_TRUE(previous.empty() && s.code() == StatusCode::kNotFound) << s.ToString();
      }
      if (seen != value) std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(seen, value) << "backup " << node->name << " never showed the acknowledged write";
    previous = value;
  }
  IT_EXPECT_OK(cluster.CheckAllRunning());
}

TEST(IntegrationReplication, APausedPrimaryIsReplacedAndNeverServesStaleData) {
  QuietLogs quiet;
  auto cluster_or = Cluster::Start(ReplicatedCluster());
  ASSERT_TRUE(cluster_or.ok()) << cluster_or.status().ToString();
  Cluster& cluster = **cluster_or;
  auto client_or = ShortTimeoutClient(cluster);
  ASSERT_TRUE(client_or.ok()) << client_or.status().ToString();
  client::Client& c = **client_or;
  IT_ASSERT_OK(c.CreateCollection(kColl));
  ASSERT_TRUE(c.Put(kColl, "x", "v1").ok());
  auto p = c.PartitionOfDocument(kColl, "x");
  ASSERT_TRUE(p.ok());
  auto map = c.GetClusterMap();
  ASSERT_TRUE(map.ok());
  const auto& entry = map->partitions[p->value()];
  const auto* node = map->FindNode(entry.replicas.front());
  ASSERT_NE(node, nullptr);
  const int victim = std::atoi(node->name.c_str() + 2);  // "cs<i>"
  const pid_t pid = cluster.chunkserver_pid(victim);
  ASSERT_GT(pid, 0);

  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  struct Resume {
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }  // also when an assertion fails
  } resume{pid};
  // Writes go on on a new primary, after the old lease.
  const auto t0 = std::chrono::steady_clock::now();
  auto put = c.Put(kColl, "x", "v2");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  std::printf("paused primary %s replaced: first write after %.2f s\n", node->name.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  std::string got;
  ASSERT_TRUE(c.Get(kColl, "x", client::StringWriter(&got)).ok());
  EXPECT_EQ(got, "v2");

  // The old primary runs again: asked directly (it still has the old map at
  // first), it never answers with the old value.
  ASSERT_EQ(::kill(pid, SIGCONT), 0);
  ExpectNeverStale(cluster, victim, *p, entry.epoch, "x", "v2", "the old primary, resumed,");
  // It rejoins: every replica equal, one primary per partition.
  EXPECT_TRUE(ReplicasConverge(cluster, 60s));
  got.clear();
  ASSERT_TRUE(c.Get(kColl, "x", client::StringWriter(&got)).ok());
  EXPECT_EQ(got, "v2");
  IT_EXPECT_OK(cluster.CheckAllRunning());
}

}  // namespace
}  // namespace cairn::test
