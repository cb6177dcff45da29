// client/python/cairn_example.py (run with /usr/bin/python3, which sees
// python3-thrift and python3-xxhash) against the fake services: mutual TLS,
// the map, routing by the same partition function, put, get and list.
#include <gtest/gtest.h>

#include <filesystem>

#include "client/cairn.h"
#include "tests/client/fake_cluster.h"
#include "tests/client/run_process.h"
#include "tests/common/test_seeds.h"

namespace cairn::test {
namespace {

TEST(PythonExample, PutsGetsAndLists) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/python3"))
      << "/usr/bin/python3 is missing: bash scripts/install-deps.sh";
  QuietLogs quiet;
  FakeClusterOptions fo;
  fo.metaservers = 2;
  fo.leader = 1;  // the first one redirects
  FakeCluster cluster(fo);
  ASSERT_EQ(cluster.error(), "");
  const TlsOptions tls = cluster.UserTls();
  ProcessResult r = RunProcess({"/usr/bin/python3", CAIRN_PY_EXAMPLE, "--gen-py", CAIRN_GEN_PY,
                                "--meta", cluster.MetaserverList(), "--ca", tls.ca_file, "--cert",
                                tls.cert_file, "--key", tls.key_file, "--count", "6"});
  ASSERT_EQ(r.code, 0) << "stdout:\n" << r.out << "\nstderr:\n" << r.err;
  EXPECT_NE(r.out.find("list docs: 6 documents"), std::string::npos) << r.out;
  // Routed directly: every put reached its partition's primary at once (a
  // wrong route is NOT_PRIMARY, a map refresh and another put).
  EXPECT_EQ(cluster.Calls("Put"), 6);
  EXPECT_EQ(cluster.Calls("GetMap"), 2);  // the follower, then the leader
  // What Python stored is what libcairn reads, in the partition libcairn
  // computes (same hash, same routing): the C++ client sees every document.
  auto c = client::Client::Create(cluster.ClientOptions());
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 6; ++i) {
    const std::string id = "example-" + std::to_string(i);
    std::string body;
    Result<client::DocInfo> d = (*c)->Get("docs", id, client::StringWriter(&body));
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_NE(body.find(id), std::string::npos);
    EXPECT_EQ(cluster.Body("docs", id), body);
  }
}

}  // namespace
}  // namespace cairn::test
