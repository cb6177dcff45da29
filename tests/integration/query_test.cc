// Queries through a real cluster (metaserver + 3 chunk servers over TLS on
// loopback): ~2000 random documents (tests/query/generators.h) over every
// partition, then Client::Query against the brute-force oracle over the same
// documents; ChunkService.Query forwarded by a node that is not the
// partition's primary; the time and result-size limits (LIMIT_EXCEEDED);
// a malformed query; the CLI (`cairn query`, JSON Lines and table).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "ChunkService.h"
#include "query/parser.h"
#include "tests/common/test_seeds.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/integration_util.h"
#include "tests/query/generators.h"
#include "tests/query/oracle.h"
#include "thrift/rpc_client.h"
#include "thrift/rpc_errors.h"

#ifndef CAIRN_CLI_BIN
#define CAIRN_CLI_BIN "cairn"
#endif

namespace cairn::test {
namespace {

using query::oracle::Json;

constexpr int kDocs = 2000;

class IntegrationQuery : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.partitions = 16;
    auto c = Cluster::Start(o);
    if (!c.ok()) {
      start_error_ = new std::string(c.status().ToString());
      return;
    }
    cluster_ = c->release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    delete start_error_;
    start_error_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr) << (start_error_ != nullptr ? *start_error_ : "");
    auto c = cluster_->NewClient();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(c).value();
  }
  void TearDown() override {
    if (cluster_ != nullptr) IT_EXPECT_OK(cluster_->CheckAllRunning());
  }

  QuietLogs quiet_;
  static Cluster* cluster_;
  static std::string* start_error_;
  std::unique_ptr<client::Client> client_;
};

Cluster* IntegrationQuery::cluster_ = nullptr;
std::string* IntegrationQuery::start_error_ = nullptr;

TEST_F(IntegrationQuery, RandomQueriesEqualOracleAndForwarding) {
  client::Client& c = *client_;
  IT_ASSERT_OK(c.CreateCollection("q"));
  const uint64_t seed = Seeds(1, 7001)[0];
  query::testgen::Gen g(seed);
  std::vector<std::string> ids(kDocs), bodies(kDocs);
  std::vector<query::oracle::Doc> odocs;
  for (int i = 0; i < kDocs; ++i) {
    ids[static_cast<size_t>(i)] = "id-" + std::to_string(i);
    bodies[static_cast<size_t>(i)] = g.DocText(i);
    odocs.push_back(
        query::oracle::MakeDoc(ids[static_cast<size_t>(i)], bodies[static_cast<size_t>(i)]));
  }
  std::atomic<int> failures{0};
  ParallelFor(kDocs, 8, [&](size_t i) {
    auto r = c.Put("q", ids[i], bodies[i]);
    if (!r.ok() && failures.fetch_add(1) < 5) ADD_FAILURE() << r.status().ToString();
  });
  ASSERT_EQ(failures.load(), 0);

  int nonempty = 0;
  for (int k = 0; k < 40; ++k) {
    const std::string text = k == 0 ? "" : g.QueryText();
    Result<query::Query> q = query::Parse(text);
    ASSERT_TRUE(q.ok()) << text;
    const auto want = query::oracle::Run(*q, odocs);
    Result<client::QueryResult> got = c.Query("q", text);
    const std::string ctx = SeedTrace(seed) + " query: " + text;
    ASSERT_TRUE(got.ok()) << ctx << ": " << got.status().ToString();
    ASSERT_EQ(got->rows.size(), want.size()) << ctx;
    nonempty += want.empty() ? 0 : 1;
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(got->rows[i].id, want[i].id) << ctx << " row " << i;
      ASSERT_EQ(Json::parse(got->rows[i].json, nullptr, false), want[i].row)
          << ctx << " row " << i << ": " << got->rows[i].json;
    }
    EXPECT_EQ(got->stats.partitions, 16u);
    // One call per chunk server, none per partition, on a healthy cluster;
    // and the same rows the one-call-per-partition way.
    EXPECT_GE(got->stats.node_calls, 1u) << ctx;
    EXPECT_LE(got->stats.node_calls, static_cast<uint64_t>(cluster_->chunk_server_count()));
    EXPECT_EQ(got->stats.partitions_alone, 0u) << ctx;
    client::QueryOptions alone;
    alone.batch_by_node = false;
    Result<client::QueryResult> one_by_one = c.Query("q", text, alone);
    ASSERT_TRUE(one_by_one.ok()) << ctx << ": " << one_by_one.status().ToString();
    EXPECT_EQ(one_by_one->stats.node_calls, 0u);
    EXPECT_EQ(one_by_one->stats.partitions_alone, 16u);
    ASSERT_EQ(one_by_one->rows.size(), got->rows.size()) << ctx;
    for (size_t i = 0; i < got->rows.size(); ++i) {
      ASSERT_EQ(one_by_one->rows[i].id, got->rows[i].id) << ctx << " row " << i;
      ASSERT_EQ(one_by_one->rows[i].json, got->rows[i].json) << ctx << " row " << i;
    }
    if (k == 0) {
      // The empty query scans (and returns) every JSON object document.
      EXPECT_EQ(got->stats.docs_scanned, static_cast<uint64_t>(kDocs));
    }
  }
  EXPECT_GT(nonempty, 10);

  // ChunkService.Query sent to a node that is not the partition's primary is
  // forwarded (as Get is) and answers what the primary answers.
  Result<client::ClusterMap> map = c.GetClusterMap();
  ASSERT_TRUE(map.ok());
  net::ClientOptions co;
  co.tls = cluster_->UserTls();
  auto pool = net::ConnectionPool::Create(co);
  ASSERT_TRUE(pool.ok());
  int forwarded = 0;
  for (uint32_t p = 0; p < map->partition_count && forwarded < 3; ++p) {
    Result<client::ClusterMap::Route> route = map->Primary(PartitionId(p));
    ASSERT_TRUE(route.ok());
    HostPort other;
    for (int i = 0; i < cluster_->chunk_server_count(); ++i) {
      if (cluster_->chunkserver(i).ToString() != route->address.ToString()) {
        other = cluster_->chunkserver(i);
      }
    }
    rpc::QueryRequest req;
    req.partition = static_cast<int32_t>(p);
    req.epoch = static_cast<int64_t>(route->epoch.value());
    req.collection = "q";
    req.query = "a exists ?sort=a&fields=a";
    rpc::QueryResult direct, via;
    IT_ASSERT_OK((*pool)->Call<rpc::ChunkServiceClient>(
        route->address, [&](rpc::ChunkServiceClient& cl) { cl.Query(direct, req); }));
    IT_ASSERT_OK((*pool)->Call<rpc::ChunkServiceClient>(
        other, [&](rpc::ChunkServiceClient& cl) { cl.Query(via, req); }));
    ASSERT_FALSE(direct.rows.empty());
    ASSERT_EQ(direct.rows.size(), via.rows.size());
    for (size_t i = 0; i < direct.rows.size(); ++i) {
      EXPECT_EQ(direct.rows[i].id, via.rows[i].id);
      EXPECT_EQ(direct.rows[i].json, via.rows[i].json);
      EXPECT_EQ(direct.rows[i].sort_keys, via.rows[i].sort_keys);
    }
    ++forwarded;
  }
  EXPECT_EQ(forwarded, 3);

  // QueryPartitions on one node: its own partitions answer as Query does; a
  // partition it does not lead gets its own error (never forwarded), and the
  // other parts still answer.
  const HostPort node = cluster_->chunkserver(0);
  std::vector<rpc::QueryRequest> reqs;
  std::vector<rpc::QueryRequest> own;
  for (uint32_t p = 0; p < map->partition_count; ++p) {
    Result<client::ClusterMap::Route> route = map->Primary(PartitionId(p));
    ASSERT_TRUE(route.ok());
    rpc::QueryRequest req;
    req.partition = static_cast<int32_t>(p);
    req.epoch = static_cast<int64_t>(route->epoch.value());
    req.collection = "q";
    req.query = "a exists ?sort=a&fields=a";
    reqs.push_back(req);
    if (route->address.ToString() == node.ToString()) own.push_back(req);
  }
  ASSERT_FALSE(own.empty());
  std::vector<rpc::QueryPartAnswer> answers;
  IT_ASSERT_OK((*pool)->Call<rpc::ChunkServiceClient>(
      node, [&](rpc::ChunkServiceClient& cl) { cl.QueryPartitions(answers, reqs); }));
  ASSERT_EQ(answers.size(), reqs.size());
  size_t answered = 0, refused = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const rpc::QueryPartAnswer& a = answers[i];
    EXPECT_EQ(a.partition, reqs[i].partition);
    const bool mine = std::any_of(own.begin(), own.end(), [&](const rpc::QueryRequest& r) {
      return r.partition == reqs[i].partition;
    });
    if (!mine) {
      ASSERT_TRUE(a.__isset.error) << "partition " << a.partition;
      EXPECT_FALSE(a.__isset.result);
      EXPECT_EQ(net::FromCairnError(a.error).code(), StatusCode::kNotPrimary)
          << net::FromCairnError(a.error).ToString();
      ++refused;
      continue;
    }
    ASSERT_TRUE(a.__isset.result) << "partition " << a.partition << ": "
                                  << (a.__isset.error ? a.error.message : "");
    rpc::QueryResult direct;
    IT_ASSERT_OK((*pool)->Call<rpc::ChunkServiceClient>(
        node, [&](rpc::ChunkServiceClient& cl) { cl.Query(direct, reqs[i]); }));
    ASSERT_EQ(a.result.rows.size(), direct.rows.size());
    for (size_t r = 0; r < direct.rows.size(); ++r) {
      EXPECT_EQ(a.result.rows[r].id, direct.rows[r].id);
      EXPECT_EQ(a.result.rows[r].json, direct.rows[r].json);
      EXPECT_EQ(a.result.rows[r].sort_keys, direct.rows[r].sort_keys);
    }
    ++answered;
  }
  EXPECT_EQ(answered, own.size());
  EXPECT_EQ(refused, reqs.size() - own.size());
  EXPECT_GT(refused, 0u);  // 16 partitions over several chunk servers
  // Parts must share the query; a bad one fails the call as Query would.
  std::vector<rpc::QueryRequest> mixed = {own[0], own[0]};
  mixed[1].query = "b exists";
  Status s = (*pool)->Call<rpc::ChunkServiceClient>(
      node, [&](rpc::ChunkServiceClient& cl) { cl.QueryPartitions(answers, mixed); });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  std::vector<rpc::QueryRequest> bad = {own[0]};
  bad[0].query = "a ==";
  s = (*pool)->Call<rpc::ChunkServiceClient>(
      node, [&](rpc::ChunkServiceClient& cl) { cl.QueryPartitions(answers, bad); });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
}

// The same property with real secondary indexes: indexes on the paths the
// generator queries are created on a loaded collection and built in the
// background; once ready, random queries (many of them planned on an index)
// must equal the brute-force oracle, also after updates and deletes, and after
// a chunk server is killed with SIGKILL and restarted (its indexes rebuilt
// before queries use them again).
TEST_F(IntegrationQuery, RandomQueriesWithIndexesEqualOracle) {
  client::Client& c = *client_;
  IT_ASSERT_OK(c.CreateCollection("qi"));
  const uint64_t seed = Seeds(1, 7101)[0];
  query::testgen::Gen g(seed);
  std::map<std::string, std::string> docs;  // id -> body
  for (int i = 0; i < kDocs; ++i) docs["id-" + std::to_string(i)] = g.DocText(i);
  auto put_all = [&](const std::vector<std::pair<std::string, std::string>>& batch) {
    std::atomic<int> failures{0};
    ParallelFor(batch.size(), 8, [&](size_t i) {
      auto r = c.Put("qi", batch[i].first, batch[i].second);
      if (!r.ok() && failures.fetch_add(1) < 5) ADD_FAILURE() << r.status().ToString();
    });
    return failures.load() == 0;
  };
  ASSERT_TRUE(put_all({docs.begin(), docs.end()}));
  const std::vector<std::string> paths = {"a", "b", "s", "n.x", "tags", "`first name`"};
  for (const std::string& p : paths) IT_ASSERT_OK(c.CreateIndex("qi", p));
  auto wait_ready = [&]() -> bool {
    for (int i = 0; i < 600; ++i) {
      Result<std::vector<client::IndexStatus>> l = c.ListIndexes("qi");
      if (l.ok() && l->size() == paths.size() &&
          std::all_of(l->begin(), l->end(), [](const client::IndexStatus& s) { return s.ready; })) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };
  ASSERT_TRUE(wait_ready()) << "indexes not ready in 60 s";

  int indexed_queries = 0;
  auto check = [&](const std::string& phase) {
    std::vector<query::oracle::Doc> odocs;
    for (const auto& [id, body] : docs) odocs.push_back(query::oracle::MakeDoc(id, body));
    for (int k = 0; k < 40; ++k) {
      const std::string text = g.QueryText();
      Result<query::Query> q = query::Parse(text);
      ASSERT_TRUE(q.ok()) << text;
      const auto want = query::oracle::Run(*q, odocs);
      Result<client::QueryResult> got = c.Query("qi", text);
      const std::string ctx = SeedTrace(seed) + " " + phase + " query: " + text;
      ASSERT_TRUE(got.ok()) << ctx << ": " << got.status().ToString();
      ASSERT_EQ(got->rows.size(), want.size()) << ctx << " (index " << got->stats.index_used << ")";
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_EQ(got->rows[i].id, want[i].id) << ctx << " row " << i;
        ASSERT_EQ(Json::parse(got->rows[i].json, nullptr, false), want[i].row) << ctx;
      }
      if (got->stats.partitions_indexed > 0) ++indexed_queries;
    }
  };
  check("built");
  // A sorted query with a limit on an indexed path: each chunk server walks
  // the indexes of the partitions it leads as one and reads about `limit`
  // documents in all, where one call per partition reads `limit` in each.
  {
    const std::string text = "b exists ?sort=-b&limit=3";
    Result<query::Query> q = query::Parse(text);
    ASSERT_TRUE(q.ok());
    std::vector<query::oracle::Doc> odocs;
    for (const auto& [id, body] : docs) odocs.push_back(query::oracle::MakeDoc(id, body));
    const auto want = query::oracle::Run(*q, odocs);
    ASSERT_EQ(want.size(), 3u);
    client::QueryOptions alone;
    alone.batch_by_node = false;
    Result<client::QueryResult> merged = c.Query("qi", text);
    Result<client::QueryResult> one_by_one = c.Query("qi", text, alone);
    ASSERT_TRUE(merged.ok()) << merged.status().ToString();
    ASSERT_TRUE(one_by_one.ok()) << one_by_one.status().ToString();
    for (const client::QueryResult* r : {&*merged, &*one_by_one}) {
      ASSERT_EQ(r->rows.size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(r->rows[i].id, want[i].id) << i;
    }
    EXPECT_NE(merged->stats.index_used.find("merged"), std::string::npos)
        << merged->stats.index_used;
    EXPECT_LT(merged->stats.docs_scanned, one_by_one->stats.docs_scanned);
  }
  // Updates (new values, other types, non-JSON) and deletes.
  std::vector<std::pair<std::string, std::string>> updates;
  for (int i = 0; i < 300; ++i) {
    const std::string id = "id-" + std::to_string((i * 7) % kDocs);
    docs[id] = i % 10 == 0 ? std::string("not json ") + std::to_string(i) : g.DocText(kDocs + i);
    updates.emplace_back(id, docs[id]);
  }
  ASSERT_TRUE(put_all(updates));
  for (int i = 0; i < 200; ++i) {
    const std::string id = "id-" + std::to_string((i * 13 + 5) % kDocs);
    if (docs.erase(id) == 1) IT_ASSERT_OK(c.Delete("qi", id));
  }
  check("updated");
  // A chunk server killed and restarted: its indexes are rebuilt from the
  // store before they drive a query again.
  IT_ASSERT_OK(cluster_->KillChunkServer(1));
  // A query meanwhile: the call to the dead node fails, and its partitions
  // are asked one by one, retried until it is back (or a backup leads).
  std::vector<query::oracle::Doc> all_docs;
  for (const auto& [id, body] : docs) all_docs.push_back(query::oracle::MakeDoc(id, body));
  Result<query::Query> everything = query::Parse("?fields=a");
  ASSERT_TRUE(everything.ok());
  const auto want_all = query::oracle::Run(*everything, all_docs);
  auto during = std::async(std::launch::async, [&] { return c.Query("qi", "?fields=a"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  IT_ASSERT_OK(cluster_->RestartChunkServer(1));
  Result<client::QueryResult> got_during = during.get();
  ASSERT_TRUE(got_during.ok()) << got_during.status().ToString();
  EXPECT_GT(got_during->stats.partitions_alone, 0u);
  ASSERT_EQ(got_during->rows.size(), want_all.size());
  for (size_t i = 0; i < want_all.size(); ++i) {
    ASSERT_EQ(got_during->rows[i].id, want_all[i].id) << "row " << i;
  }
  ASSERT_TRUE(wait_ready()) << "indexes not rebuilt in 60 s";
  check("restarted");
  EXPECT_GT(indexed_queries, 20) << "few queries used an index";
  for (const std::string& p : paths) IT_ASSERT_OK(c.DropIndex("qi", p));
}

TEST_F(IntegrationQuery, LimitsAndMalformedQueries) {
  client::Client& c = *client_;
  IT_ASSERT_OK(c.CreateCollection("big"));
  // ~300 documents of ~48 KiB of JSON: every partition has some work.
  ParallelFor(300, 8, [&](size_t i) {
    std::string body = "{\"n\":" + std::to_string(i) + ",\"items\":[";
    for (int k = 0; k < 1500; ++k) {
      body += (k ? "," : "") + std::string("{\"sku\":\"s") + std::to_string(k) +
              "\",\"q\":" + std::to_string(k % 7) + "}";
    }
    body += "]}";
    auto r = c.Put("big", "b" + std::to_string(i), body);
    if (!r.ok()) ADD_FAILURE() << r.status().ToString();
  });

  Result<client::QueryResult> ok = c.Query("big", "n >= 0 ?fields=n&sort=-n&limit=3");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ(ok->rows.size(), 3u);
  EXPECT_EQ(ok->rows[0].json, R"({"_id":"b299","n":299})");
  EXPECT_EQ(ok->stats.docs_scanned, 300u);

  client::QueryOptions small;
  small.max_result_bytes = 4096;
  Result<client::QueryResult> r = c.Query("big", "n >= 0", small);
  ASSERT_EQ(r.status().code(), StatusCode::kLimitExceeded) << r.status().ToString();
  EXPECT_NE(r.status().message().find("result-size limit of 4096 bytes"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("--max-result-bytes"), std::string::npos);

  client::QueryOptions quick;
  quick.time_limit_ms = 1;
  r = c.Query("big", "items contains {\"sku\":\"none\"}", quick);
  ASSERT_EQ(r.status().code(), StatusCode::kLimitExceeded) << r.status().ToString();
  EXPECT_NE(r.status().message().find("time limit of 1 ms"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("query_time_limit_ms"), std::string::npos);

  r = c.Query("big", "n >= && x");
  ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_NE(r.status().message().find("at column 6"), std::string::npos) << r.status().message();

  // A malformed query sent to a chunk server directly: INVALID_ARGUMENT with
  // the parser's positioned message.
  net::ClientOptions co;
  co.tls = cluster_->UserTls();
  auto pool = net::ConnectionPool::Create(co);
  ASSERT_TRUE(pool.ok());
  Result<client::ClusterMap> map = c.GetClusterMap();
  ASSERT_TRUE(map.ok());
  Result<client::ClusterMap::Route> route = map->Primary(PartitionId(0));
  ASSERT_TRUE(route.ok());
  rpc::QueryRequest req;
  req.partition = 0;
  req.epoch = static_cast<int64_t>(route->epoch.value());
  req.collection = "big";
  req.query = "n >= 1 ?limit=0";
  rpc::QueryResult out;
  Status s = (*pool)->Call<rpc::ChunkServiceClient>(
      route->address, [&](rpc::ChunkServiceClient& cl) { cl.Query(out, req); });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("at column 15: limit must be between 1 and 1000000"),
            std::string::npos)
      << s.ToString();
}

TEST_F(IntegrationQuery, Cli) {
  client::Client& c = *client_;
  IT_ASSERT_OK(c.CreateCollection("cli"));
  IT_ASSERT_OK(
      c.Put("cli", "o1", R"({"status":"paid","total":120,"who":{"name":"Ann"}})").status());
  IT_ASSERT_OK(c.Put("cli", "o2", R"({"status":"open","total":80})").status());
  IT_ASSERT_OK(c.Put("cli", "o3", R"({"status":"paid","total":300,"who":{"name":"Bo"}})").status());
  auto conf = cluster_->WriteClientConfig("client", cluster_->UserTls());
  ASSERT_TRUE(conf.ok());
  auto cli = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {CAIRN_CLI_BIN, "--config", *conf, "--timeout", "30"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = RunCommand(argv, std::chrono::seconds(60));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : CommandResult{};
  };
  CommandResult r = cli({"query", "cli", "status == \"paid\" ?sort=-total"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output,
            "{\"_id\":\"o3\",\"status\":\"paid\",\"total\":300,\"who\":{\"name\":\"Bo\"}}\n"
            "{\"_id\":\"o1\",\"status\":\"paid\",\"total\":120,\"who\":{\"name\":\"Ann\"}}\n");

  r = cli({"query", "cli", "total > 0 ?sort=total&fields=total,who.name", "--format", "table"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output,
            "_ID  TOTAL  WHO.NAME\n"
            "o2   80\n"
            "o1   120    Ann\n"
            "o3   300    Bo\n");

  r = cli({"query", "cli", "status == \"paid\" ?limit=1", "--stats"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("scanned 3 documents"), std::string::npos) << r.output;

  r = cli({"query", "cli", "status == paid"});
  EXPECT_EQ(r.exit_code, 65) << r.output;
  EXPECT_NE(r.output.find("at column 11: expected a JSON value"), std::string::npos) << r.output;

  r = cli({"query", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--time-limit MS"), std::string::npos) << r.output;
}

// The Python example client's --query (same RPC, its own merge) prints what
// libcairn returns.
TEST_F(IntegrationQuery, PythonExampleClient) {
#if defined(CAIRN_PY_EXAMPLE) && defined(CAIRN_GEN_PY)
  client::Client& c = *client_;
  IT_ASSERT_OK(c.CreateCollection("pyq"));
  query::testgen::Gen g(Seeds(1, 7002)[0]);
  for (int i = 0; i < 150; ++i) {
    IT_ASSERT_OK(c.Put("pyq", "p" + std::to_string(i), g.DocText(i)).status());
  }
  const TlsOptions t = cluster_->UserTls();
  for (const std::string& text :
       {std::string("a exists ?sort=-a,_id&limit=25"), std::string("?sort=s,-n.x&fields=s,n"),
        std::string("tags contains \"a\" || s ^= \"a\" ?sort=tags"), std::string("")}) {
    Result<client::QueryResult> want = c.Query("pyq", text);
    ASSERT_TRUE(want.ok()) << text << ": " << want.status().ToString();
    std::string lines;
    for (const client::QueryRow& r : want->rows) lines += r.json + "\n";
    auto r = RunCommand({"/usr/bin/python3", CAIRN_PY_EXAMPLE, "--gen-py", CAIRN_GEN_PY, "--meta",
                         cluster_->metaserver().ToString(), "--ca", t.ca_file, "--cert",
                         t.cert_file, "--key", t.key_file, "--collection", "pyq", "--query", text},
                        std::chrono::seconds(60));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->exit_code, 0) << text << ":\n" << r->output;
    EXPECT_EQ(r->output, lines) << text;
  }
  auto bad = RunCommand({"/usr/bin/python3", CAIRN_PY_EXAMPLE, "--gen-py", CAIRN_GEN_PY, "--meta",
                         cluster_->metaserver().ToString(), "--ca", t.ca_file, "--cert",
                         t.cert_file, "--key", t.key_file, "--collection", "pyq", "--query", "a >"},
                        std::chrono::seconds(60));
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->exit_code, 65) << bad->output;
  EXPECT_NE(bad->output.find("at column 4"), std::string::npos) << bad->output;
#else
  GTEST_SKIP() << "built without the Python example client";
#endif
}

}  // namespace
}  // namespace cairn::test
