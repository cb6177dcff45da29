// libcairn's block-level calls that cairn-fsd builds on (client/cairn.h:
// BlockUpload, UpdateMetadata, BlockBytesFor) against a real cluster.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <string>

#include "tests/common/test_seeds.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/integration_util.h"

namespace cairn::test {
namespace {

uint64_t Hash(const std::string& s) { return XXH3_64bits(s.data(), s.size()); }

TEST(ClientBlocks, UploadKeepAndMetadata) {
  QuietLogs quiet;
  ClusterOptions o;
  o.chunk_servers = 1;
  o.partitions = 4;
  auto c = Cluster::Start(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto cl = (*c)->NewClient();
  ASSERT_TRUE(cl.ok());
  client::Client& client = **cl;
  IT_ASSERT_OK(client.CreateCollection("b"));
  auto bb = client.BlockBytesFor("b", "doc");
  ASSERT_TRUE(bb.ok());
  const uint64_t B = *bb;

  // Three and a half blocks, sent out of order.
  const std::string body = MakeBody(77, 0, 3 * B + B / 2);
  auto up = client.BeginBlockUpload("b", "doc");
  ASSERT_TRUE(up.ok());
  EXPECT_FALSE((*up)->started());
  for (uint64_t k : {2u, 0u, 3u, 1u}) {
    IT_ASSERT_OK((*up)->SendBlock(k, std::string_view(body).substr(k * B, B)));
  }
  client::WriteOptions w;
  w.mode = 0640;
  auto v1 = (*up)->Commit(body.size(), Hash(body), 0, w);
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  std::string got;
  ASSERT_TRUE(client.Get("b", "doc", client::StringWriter(&got)).ok());
  EXPECT_TRUE(got == body);

  // Only block 1 changes; 0, 2 and 3 are kept by reference.
  std::string body2 = body;
  body2.replace(B + 5, 4, "ABCD");
  auto up2 = client.BeginBlockUpload("b", "doc");
  ASSERT_TRUE(up2.ok());
  IT_ASSERT_OK((*up2)->SendBlock(1, std::string_view(body2).substr(B, B)));
  client::WriteOptions w2;
  w2.expected_version = v1->version;
  auto v2 = (*up2)->Commit(body2.size(), Hash(body2), v1->version, w2);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  got.clear();
  ASSERT_TRUE(client.Get("b", "doc", client::StringWriter(&got)).ok());  // hash checked
  EXPECT_TRUE(got == body2);

  // Metadata only: the body and its hash stay.
  client::WriteOptions meta;
  meta.mode = 0600;
  meta.mtime_ns = 1234567890123456789;
  meta.xattrs = std::map<std::string, std::string>{{"user.k", "v"}};
  auto v3 = client.UpdateMetadata("b", "doc", meta);
  ASSERT_TRUE(v3.ok()) << v3.status().ToString();
  EXPECT_GT(v3->version, v2->version);
  EXPECT_EQ(v3->mode & 07777, 0600u);
  EXPECT_EQ(v3->mtime_ns, 1234567890123456789);
  EXPECT_EQ(v3->xattrs.at("user.k"), "v");
  EXPECT_EQ(v3->body_hash, v2->body_hash);
  got.clear();
  ASSERT_TRUE(client.Get("b", "doc", client::StringWriter(&got)).ok());
  EXPECT_TRUE(got == body2);
  // Of an empty document too; and a stale expected version is refused.
  ASSERT_TRUE(client.Put("b", "empty", "").ok());
  auto e = client.UpdateMetadata("b", "empty", meta);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->size, 0u);
  client::WriteOptions stale;
  stale.expected_version = v1->version;
  EXPECT_EQ(client.UpdateMetadata("b", "doc", stale).status().code(), StatusCode::kVersionMismatch);
  // A block neither sent nor kept is refused before anything is written.
  auto up3 = client.BeginBlockUpload("b", "x");
  ASSERT_TRUE(up3.ok());
  EXPECT_EQ((*up3)->Commit(2 * B, 0, 0, {}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::test
