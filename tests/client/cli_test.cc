// The `cairn` command as a user runs it (a child process): argument errors,
// certs subcommands, and every document, collection and status command
// against the fake services (fake_cluster.h).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/certs.h"
#include "tests/client/fake_cluster.h"
#include "tests/client/run_process.h"
#include "tests/common/test_seeds.h"

namespace cairn::test {
namespace {

using CliRun = ProcessResult;

// Runs the cairn binary (see RunProcess).
CliRun Cairn(const std::vector<std::string>& args, const std::string& stdin_file = "",
             const std::vector<std::string>& env = {}) {
  std::vector<std::string> all = {CAIRN_BIN};
  all.insert(all.end(), args.begin(), args.end());
  return RunProcess(all, stdin_file, env);
}

TEST(CliUsage, ErrorsAndHelp) {
  EXPECT_EQ(Cairn({}).code, 64);
  CliRun unknown = Cairn({"frobnicate"});
  EXPECT_EQ(unknown.code, 64);
  EXPECT_NE(unknown.err.find("unknown command 'frobnicate'"), std::string::npos) << unknown.err;
  EXPECT_EQ(Cairn({"get", "docs"}).code, 64);
  EXPECT_EQ(Cairn({"get", "docs", "a", "--bogus"}).code, 64);
  EXPECT_EQ(Cairn({"get", "docs", "a", "--range", "12"}).code, 64);
  EXPECT_EQ(Cairn({"ls", "docs", "--limit"}).code, 64);
  EXPECT_EQ(Cairn({"collection"}).code, 64);
  CliRun help = Cairn({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("certs issue"), std::string::npos);
  for (const char* cmd : {"put", "get", "rm", "ls", "stat", "mv", "status"}) {
    CliRun h = Cairn({cmd, "--help"});
    EXPECT_EQ(h.code, 0) << cmd;
    EXPECT_NE(h.out.find(std::string("usage: cairn ") + cmd), std::string::npos) << h.out;
  }
  EXPECT_EQ(Cairn({"collection", "create", "--help"}).code, 0);
  // No metaserver configured anywhere: a usage error that says what to do.
  CliRun none = Cairn({"stat", "docs", "a"});
  EXPECT_EQ(none.code, 64);
  EXPECT_NE(none.err.find("--meta"), std::string::npos) << none.err;
}

TEST(CliCerts, InitAndIssue) {
  TempDir tmp("cairn-cli-certs");
  const std::string ca = tmp.path() + "/ca";
  CliRun init = Cairn({"certs", "init", "--dir", ca, "--cluster", "prod"});
  ASSERT_EQ(init.code, 0) << init.err;
  EXPECT_TRUE(std::filesystem::exists(ca + "/ca.crt"));
  EXPECT_EQ(Cairn({"certs", "init", "--dir", ca}).code, 1);  // never overwritten
  CliRun node = Cairn({"certs", "issue", "--dir", ca, "--node", "cs1", "--ip", "127.0.0.2", "--ip",
                       "10.0.0.1", "--out", tmp.path() + "/cs1"});
  ASSERT_EQ(node.code, 0) << node.err;
  Result<std::string> id = IdentityFromCertificateFile(tmp.path() + "/cs1/cs1.crt");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "node:cs1");
  ASSERT_EQ(Cairn({"certs", "issue", "--dir", ca, "--admin", "root"}).code, 0);
  EXPECT_EQ(*IdentityFromCertificateFile(ca + "/root.crt"), "admin:root");
  EXPECT_EQ(Cairn({"certs", "issue", "--dir", ca, "--admin", "root"}).code, 1);
  EXPECT_EQ(Cairn({"certs", "issue", "--dir", ca}).code, 64);
  EXPECT_EQ(Cairn({"certs", "issue", "--dir", ca, "--user", "a", "--node", "b"}).code, 64);
  EXPECT_EQ(Cairn({"certs", "issue", "--dir", ca, "--user", "bad/name"}).code, 1);
  EXPECT_EQ(Cairn({"certs", "issue", "--node", "x"}).code, 64);
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<FakeCluster>(FakeClusterOptions{});
    ASSERT_EQ(cluster_->error(), "");
    const TlsOptions tls = cluster_->UserTls();
    global_ = {"--meta", cluster_->MetaserverList(),
               "--ca",   tls.ca_file,
               "--cert", tls.cert_file,
               "--key",  tls.key_file};
  }
  CliRun C(std::vector<std::string> args, const std::string& in = "") {
    args.insert(args.end(), global_.begin(), global_.end());
    return Cairn(args, in);
  }
  std::string File(const std::string& name, const std::string& content) {
    const std::string p = tmp_.path() + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

  QuietLogs quiet_;
  TempDir tmp_{"cairn-cli-data"};
  std::unique_ptr<FakeCluster> cluster_;
  std::vector<std::string> global_;
};

TEST_F(CliTest, DocumentCommands) {
  std::string big(300 * 1024, '\0');
  Random rng(Seeds(1, 41)[0]);
  for (char& ch : big) ch = static_cast<char>(rng.Next());
  CliRun put = C({"put", "docs", "big", File("big", big)});
  ASSERT_EQ(put.code, 0) << put.err;
  EXPECT_NE(put.out.find("docs/big version"), std::string::npos) << put.out;
  // From standard input, twice with --create.
  ASSERT_EQ(C({"put", "docs", "small"}, File("in", "hello\n")).code, 0);
  CliRun again = C({"put", "docs", "small", "--create", "-"}, File("in", "x"));
  EXPECT_EQ(again.code, 1);
  CliRun get = C({"get", "docs", "small"});
  EXPECT_EQ(get.code, 0);
  EXPECT_EQ(get.out, "hello\n");
  ASSERT_EQ(C({"get", "docs", "big", "-o", tmp_.path() + "/copy"}).code, 0);
  EXPECT_EQ(Slurp(tmp_.path() + "/copy"), big);
  CliRun range = C({"get", "docs", "big", "--range", "70000:100"});
  EXPECT_EQ(range.out, big.substr(70000, 100));
  CliRun stat = C({"stat", "docs", "big"});
  EXPECT_EQ(stat.code, 0);
  EXPECT_NE(stat.out.find("size:      307200"), std::string::npos) << stat.out;
  CliRun statj = C({"stat", "docs", "big", "--json"});
  EXPECT_EQ(nlohmann::json::parse(statj.out)["size"], 307200);

  CliRun missing = C({"get", "docs", "nope"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err, "cairn: get docs/nope: no such document\n");
  EXPECT_FALSE(std::filesystem::exists(tmp_.path() + "/nope.cairn-tmp"));
  CliRun nocoll = C({"put", "nocoll", "a"}, File("in", "x"));
  EXPECT_EQ(nocoll.code, 1);
  EXPECT_NE(nocoll.err.find("no collection 'nocoll'"), std::string::npos) << nocoll.err;

  // A corrupt read with -o leaves no file.
  cluster_->CorruptGets(true);
  CliRun bad = C({"get", "docs", "big", "-o", tmp_.path() + "/bad"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("hash mismatch"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(tmp_.path() + "/bad"));
  cluster_->CorruptGets(false);

  ASSERT_EQ(C({"mv", "docs", "small", "renamed"}).code, 0);
  EXPECT_EQ(C({"get", "docs", "renamed"}).out, "hello\n");
  EXPECT_EQ(C({"stat", "docs", "small"}).code, 1);
  CliRun ls = C({"ls", "docs"});
  EXPECT_EQ(ls.out, "big\nrenamed\n");
  CliRun lsl = C({"ls", "docs", "--long", "--limit", "1"});
  EXPECT_NE(lsl.out.find(" 307200 "), std::string::npos) << lsl.out;
  EXPECT_EQ(std::count(lsl.out.begin(), lsl.out.end(), '\n'), 1);
  ASSERT_EQ(C({"rm", "docs", "renamed"}).code, 0);
  EXPECT_EQ(C({"rm", "docs", "renamed"}).code, 1);
  EXPECT_EQ(C({"rm", "docs", "big", "--expect-version", "999"}).code, 1);
}

TEST_F(CliTest, CollectionsStatusAndConfigFile) {
  ASSERT_EQ(C({"collection", "create", "orders"}).code, 0);
  EXPECT_EQ(C({"collection", "create", "orders"}).code, 1);
  EXPECT_EQ(C({"collection", "list"}).out, "docs\norders\n");
  ASSERT_EQ(C({"put", "orders", "1"}, File("o", "{}")).code, 0);
  CliRun notempty = C({"collection", "drop", "orders"});
  EXPECT_EQ(notempty.code, 1);
  EXPECT_NE(notempty.err.find("not empty"), std::string::npos) << notempty.err;
  ASSERT_EQ(C({"rm", "orders", "1"}).code, 0);
  EXPECT_EQ(C({"collection", "drop", "orders"}).code, 0);

  CliRun status = C({"status"});
  ASSERT_EQ(status.code, 0) << status.err;
  EXPECT_NE(status.out.find("8 partitions (0 unplaced), 2 nodes"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("chunk1"), std::string::npos);
  CliRun js = C({"status", "--json"});
  ASSERT_EQ(js.code, 0);
  nlohmann::json j = nlohmann::json::parse(js.out);
  EXPECT_EQ(j["partition_count"], 8);
  ASSERT_EQ(j["nodes"].size(), 2u);
  EXPECT_EQ(j["nodes"][0]["primary_partitions"].size(), 4u);
  EXPECT_EQ(j["nodes"][1]["disks"].size(), 3u);

  // The same through a configuration file (--config, then CAIRN_CONFIG).
  const TlsOptions tls = cluster_->UserTls();
  const std::string conf =
      File("client.conf", "# test\nmetaservers = " + cluster_->MetaserverList() +
                              "\ntls_ca = " + tls.ca_file + "\ntls_cert = " + tls.cert_file +
                              "\ntls_key = " + tls.key_file + "\n");
  EXPECT_EQ(Cairn({"--config", conf, "collection", "list"}).out, "docs\n");
  EXPECT_EQ(Cairn({"collection", "list"}, "", {"CAIRN_CONFIG=" + conf}).out, "docs\n");
  CliRun badconf = Cairn({"--config", File("bad.conf", "colour = blue\n"), "status"});
  EXPECT_EQ(badconf.code, 64);
  EXPECT_NE(badconf.err.find("colour"), std::string::npos) << badconf.err;

  // Nobody listening: exit code 2, quickly with --timeout.
  CliRun down = Cairn({"--meta", "127.0.0.1:1", "--ca", tls.ca_file, "--cert", tls.cert_file,
                       "--key", tls.key_file, "--timeout", "1", "ls", "docs"});
  EXPECT_EQ(down.code, 2);
  EXPECT_NE(down.err.find("no metaserver answered"), std::string::npos) << down.err;
}

}  // namespace
}  // namespace cairn::test
