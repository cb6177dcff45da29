// The cluster with its map in a private etcd (store = etcd, as in the demo):
// the metaserver stopped (SIGTERM) and started again comes back
// with the same map, collections and placement, and documents stay readable.
#include <gtest/gtest.h>

#include <string>

#include "tests/common/test_seeds.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/integration_util.h"

namespace cairn::test {
namespace {

TEST(IntegrationEtcd, MetaserverRestartKeepsTheMap) {
  QuietLogs quiet;
  ClusterOptions o;
  o.use_etcd = true;
  o.chunk_servers = 2;
  o.partitions = 16;
  auto cluster_or = Cluster::Start(o);
  ASSERT_TRUE(cluster_or.ok()) << cluster_or.status().ToString();
  Cluster& cluster = **cluster_or;
  auto client_or = cluster.NewClient();
  ASSERT_TRUE(client_or.ok()) << client_or.status().ToString();
  client::Client& c = **client_or;
  IT_ASSERT_OK(c.CreateCollection("kept"));
  for (int i = 0; i < 50; ++i) {
    IT_ASSERT_OK(c.Put("kept", "d" + std::to_string(i), MakeBody(7, static_cast<uint64_t>(i), 500))
                     .status());
  }
  auto before = c.GetClusterMap();
  ASSERT_TRUE(before.ok()) << before.status().ToString();

  IT_ASSERT_OK(cluster.StopMetaserver());
  // Documents are served by the chunk servers meanwhile (cached maps).
  std::string got;
  IT_EXPECT_OK(c.Get("kept", "d3", client::StringWriter(&got)).status());
  EXPECT_TRUE(got == MakeBody(7, 3, 500));
  IT_ASSERT_OK(cluster.RestartMetaserver());

  auto after = c.GetClusterMap();
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_GE(after->version, before->version);
  ASSERT_EQ(after->partitions.size(), before->partitions.size());
  for (size_t p = 0; p < after->partitions.size(); ++p) {
    EXPECT_EQ(after->partitions[p].replicas, before->partitions[p].replicas) << "partition " << p;
  }
  EXPECT_NE(after->FindCollection("kept"), nullptr);
  EXPECT_EQ(after->nodes.size(), 2u);
  for (int i = 0; i < 50; ++i) {
    std::string body;
    auto r = c.Get("kept", "d" + std::to_string(i), client::StringWriter(&body));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(body == MakeBody(7, static_cast<uint64_t>(i), 500)) << i;
  }
  // The restarted metaserver serves changes, and the chunk servers see them.
  // (Fails about one run in three today: a chunk server whose pooled
  // connection to the metaserver predates the restart fails its map refresh
  // once -- "client disconnected", chunkserver/meta_client.cc CallAny tries
  // each metaserver once -- and answers the put NOT_FOUND "no collection".)
  IT_EXPECT_OK(c.CreateCollection("after"));
  IT_EXPECT_OK(c.Put("after", "x", "y").status());
  IT_EXPECT_OK(cluster.CheckAllRunning());
}

}  // namespace
}  // namespace cairn::test
