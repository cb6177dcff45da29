// The `cairn` CLI and the Python example client end to end against a real
// cluster; what they write is checked through libcairn and the other way
// round.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/test_seeds.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/integration_util.h"

#ifndef CAIRN_CLI_BIN
#define CAIRN_CLI_BIN "cairn"
#endif
#ifndef CAIRN_PY_EXAMPLE
#define CAIRN_PY_EXAMPLE ""
#endif
#ifndef CAIRN_GEN_PY
#define CAIRN_GEN_PY ""
#endif

namespace cairn::test {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

class IntegrationTools : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto c = Cluster::Start(ClusterOptions{});
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
    auto conf = cluster_->WriteClientConfig("client", cluster_->UserTls());
    ASSERT_TRUE(conf.ok()) << conf.status().ToString();
    config_ = *conf;
  }
  void TearDown() override {
    if (cluster_ != nullptr) IT_EXPECT_OK(cluster_->CheckAllRunning());
  }

  // Runs `cairn --config <client.conf> args...`.
  CommandResult Cli(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {CAIRN_CLI_BIN, "--config", config_, "--timeout", "30"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = RunCommand(argv, std::chrono::seconds(60));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : CommandResult{};
  }

  static Cluster* cluster_;
  static std::string* start_error_;
  std::unique_ptr<client::Client> client_;
  std::string config_;
};

Cluster* IntegrationTools::cluster_ = nullptr;
std::string* IntegrationTools::start_error_ = nullptr;

TEST_F(IntegrationTools, CliEndToEnd) {
  const std::string dir = cluster_->dir();
  CommandResult r = Cli({"collection", "create", "cli"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Cli({"collection", "list"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("cli"), std::string::npos) << r.output;

  // put from a file with every byte value, get it back exactly (file and
  // libcairn), a range, stat.
  std::string binary;
  for (int rep = 0; rep < 4000; ++rep) {
    for (int b = 0; b < 256; ++b) binary.push_back(static_cast<char>(b));
  }
  WriteFile(dir + "/in.bin", binary);
  r = Cli({"put", "cli", "doc one", dir + "/in.bin"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  WriteFile(dir + "/small.json", "{\"x\": 1}\n");
  r = Cli({"put", "cli", "doc2", dir + "/small.json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Cli({"get", "cli", "doc one", "-o", dir + "/out.bin"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(ReadFile(dir + "/out.bin") == binary) << "cairn get returned other bytes";
  std::string via_lib;
  IT_EXPECT_OK(client_->Get("cli", "doc one", client::StringWriter(&via_lib)).status());
  EXPECT_TRUE(via_lib == binary) << "libcairn reads other bytes than cairn put wrote";
  r = Cli({"get", "cli", "doc2"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "{\"x\": 1}\n");
  r = Cli({"get", "cli", "doc one", "--range", "300:5", "-o", dir + "/range.bin"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ReadFile(dir + "/range.bin"), binary.substr(300, 5));
  r = Cli({"stat", "cli", "doc one", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(std::to_string(binary.size())), std::string::npos) << r.output;

  // A document written by libcairn, read by the CLI.
  IT_EXPECT_OK(client_->Put("cli", "from-lib", "written by libcairn").status());
  r = Cli({"get", "cli", "from-lib"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "written by libcairn");

  // ls: every id, sorted.
  r = Cli({"ls", "cli"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "doc one\ndoc2\nfrom-lib\n");
  r = Cli({"ls", "cli", "--long"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(std::to_string(binary.size())), std::string::npos) << r.output;

  // mv, then the old name is gone (exit 1, a message naming it).
  r = Cli({"mv", "cli", "doc one", "doc3"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = Cli({"get", "cli", "doc one"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("doc one"), std::string::npos) << r.output;
  std::string moved;
  IT_EXPECT_OK(client_->Get("cli", "doc3", client::StringWriter(&moved)).status());
  EXPECT_TRUE(moved == binary);

  // drop refuses a non-empty collection; rm; rm again fails; drop works.
  r = Cli({"collection", "drop", "cli"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  for (const char* id : {"doc3", "doc2", "from-lib"}) {
    r = Cli({"rm", "cli", id});
    EXPECT_EQ(r.exit_code, 0) << id << ": " << r.output;
  }
  r = Cli({"rm", "cli", "doc3"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  r = Cli({"ls", "cli"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "");
  r = Cli({"collection", "drop", "cli"});
  EXPECT_EQ(r.exit_code, 0) << r.output;

  // status names every node.
  r = Cli({"status"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (int i = 0; i < cluster_->chunk_server_count(); ++i) {
    EXPECT_NE(r.output.find("cs" + std::to_string(i)), std::string::npos) << r.output;
  }
  // One replica per partition, all in sync.
  EXPECT_NE(r.output.find("under-replicated partitions (fewer than 1 in-sync replicas): 0\n"),
            std::string::npos)
      << r.output;
  r = Cli({"status", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_EQ(j["under_replicated_partitions"], 0) << r.output;
  EXPECT_EQ(j["replication"], 1) << r.output;
  ASSERT_TRUE(j["partitions"].is_array()) << r.output;
  ASSERT_EQ(j["partitions"].size(), j["partition_count"].get<size_t>()) << r.output;
  for (const auto& p : j["partitions"]) {
    EXPECT_GE(p["epoch"].get<int64_t>(), 1) << p.dump();
    ASSERT_EQ(p["replicas"].size(), 1u) << p.dump();
    EXPECT_EQ(p["in_sync"], p["replicas"]) << p.dump();
  }
}

TEST_F(IntegrationTools, CliErrors) {
  // Bad command line: 64.
  CommandResult r = Cli({"frobnicate"});
  EXPECT_EQ(r.exit_code, 64) << r.output;
  r = Cli({"put", "onlyone"});
  EXPECT_EQ(r.exit_code, 64) << r.output;
  // Invalid names: 1 with a message.
  r = Cli({"collection", "create", "bad/name"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_FALSE(r.output.empty());
  // Unreachable cluster: 2.
  const std::string dead = cluster_->dir() + "/dead.conf";
  auto port = PickFreePortOn("127.0.0.1");
  ASSERT_TRUE(port.ok());
  const TlsOptions t = cluster_->UserTls();
  WriteFile(dead, "metaservers = 127.0.0.1:" + std::to_string(*port) + "\ntls_ca = " + t.ca_file +
                      "\ntls_cert = " + t.cert_file + "\ntls_key = " + t.key_file + "\n");
  auto res = RunCommand({CAIRN_CLI_BIN, "--config", dead, "--timeout", "3", "status"},
                        std::chrono::seconds(30));
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->exit_code, 2) << res->output;
}

TEST_F(IntegrationTools, PythonExampleClient) {
  const std::string script = CAIRN_PY_EXAMPLE;
  if (script.empty() || !std::filesystem::exists(script)) {
    GTEST_FAIL() << "the Python example client is missing: " << script;
  }
  IT_ASSERT_OK(client_->CreateCollection("py"));
  const TlsOptions t = cluster_->UserTls();
  for (const char* route : {"direct", "any"}) {
    auto r =
        RunCommand({"/usr/bin/python3", script, "--gen-py", CAIRN_GEN_PY, "--meta",
                    cluster_->metaserver().ToString(), "--ca", t.ca_file, "--cert", t.cert_file,
                    "--key", t.key_file, "--collection", "py", "--count", "6", "--route", route},
                   std::chrono::seconds(60));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->exit_code, 0) << route << ":\n" << r->output;
    EXPECT_NE(r->output.find("ok"), std::string::npos) << r->output;
  }
  // What Python wrote, read by libcairn.
  for (int i = 0; i < 6; ++i) {
    const std::string name = "example-" + std::to_string(i);
    std::string got;
    auto g = client_->Get("py", name, client::StringWriter(&got));
    ASSERT_TRUE(g.ok()) << name << ": " << g.status().ToString();
    EXPECT_EQ(got, "{\"name\": \"" + name + "\", \"n\": " + std::to_string(name.size()) + "}");
  }
  auto list = client_->List("py");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(list->items.size(), 6u);
}

}  // namespace
}  // namespace cairn::test
