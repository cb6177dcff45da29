#include "common/config.h"

#include <gtest/gtest.h>

#include "common/partitioning.h"

namespace cairn {
namespace {

struct Opts {
  std::string name;
  int64_t port = 7100;
  bool verbose = false;
  double ratio = 0.5;
  std::vector<std::string> disks;
  uint64_t cache = 64ull << 20;
};

void Register(OptionSet& set, Opts& o) {
  set.String("name", &o.name, "node name", /*required=*/true);
  set.Int("port", &o.port, "TCP port", 1, 65535);
  set.Bool("verbose", &o.verbose, "more logs");
  set.Double("ratio", &o.ratio, "a fraction", 0, 1);
  set.List("disks", &o.disks, "disk directories");
  set.Bytes("cache", &o.cache, "cache size", 0, 1ull << 40);
}

TEST(ConfigTest, ParsesEveryKindAndKeepsDefaults) {
  Opts o;
  OptionSet set("test");
  Register(set, o);
  ASSERT_TRUE(set.LoadText("# comment\n\n name = cs1 \nverbose=yes\ndisks = /a, /b,,/c\n"
                           "cache = 2G\nratio = 0.25\n",
                           "f.conf")
                  .ok());
  ASSERT_TRUE(set.Finish().ok());
  EXPECT_EQ(o.name, "cs1");
  EXPECT_EQ(o.port, 7100);  // default kept
  EXPECT_TRUE(o.verbose);
  EXPECT_EQ(o.disks, (std::vector<std::string>{"/a", "/b", "/c"}));
  EXPECT_EQ(o.cache, 2ull << 30);
  EXPECT_DOUBLE_EQ(o.ratio, 0.25);
  ASSERT_TRUE(set.Override("port=7101").ok());
  EXPECT_EQ(o.port, 7101);
  EXPECT_NE(set.Dump().find("port = 7101"), std::string::npos);
  EXPECT_NE(set.Describe().find("name (required)"), std::string::npos);
  EXPECT_NE(set.Describe().find("port = 7100"), std::string::npos);
}

TEST(ConfigTest, ErrorsNameTheFileLineAndKey) {
  struct Case {
    std::string text;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"name = a\nbogus = 1\n", "f.conf:2: unknown option 'bogus'"},
      {"name = a\nport = 0\n", "f.conf:2: port: 0 is outside 1..65535"},
      {"port = 7x\n", "f.conf:1: port: '7x' is not an integer"},
      {"name = a\nname = b\n", "f.conf:2: option 'name' is given twice"},
      {"verbose = maybe\n", "f.conf:1: verbose: 'maybe' is not true or false"},
      {"just words\n", "f.conf:1: expected 'key = value'"},
      {"cache = 3X\n", "f.conf:1: cache: '3X' is not a size"},
      {"ratio = 2\n", "f.conf:1: ratio: '2' is out of range"},
      {"= 4\n", "f.conf:1: missing option name"},
  };
  for (const Case& c : cases) {
    Opts o;
    OptionSet set("test");
    Register(set, o);
    Status s = set.LoadText(c.text, "f.conf");
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << s.message();
  }
  Opts o;
  OptionSet set("test");
  Register(set, o);
  Status missing = set.Finish();
  EXPECT_NE(missing.message().find("option 'name' is required"), std::string::npos);
  EXPECT_EQ(set.Override("novalue").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(set.LoadFile("/nonexistent/cairn.conf").code(), StatusCode::kNotFound);
}

TEST(ConfigTest, HostPort) {
  auto hp = ParseHostPort("127.0.0.2:7100");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "127.0.0.2");
  EXPECT_EQ(hp->port, 7100);
  EXPECT_EQ(hp->ToString(), "127.0.0.2:7100");
  EXPECT_EQ(ParseHostPort("[::1]:80")->host, "::1");
  EXPECT_FALSE(ParseHostPort("localhost").ok());
  EXPECT_FALSE(ParseHostPort("h:0").ok());
  EXPECT_FALSE(ParseHostPort("h:65536").ok());
  EXPECT_FALSE(ParseHostPort(":80").ok());
}

TEST(PartitioningTest, TopBitsOfTheDocumentHash) {
  EXPECT_TRUE(ValidPartitionCount(1));
  EXPECT_TRUE(ValidPartitionCount(64));
  EXPECT_FALSE(ValidPartitionCount(0));
  EXPECT_FALSE(ValidPartitionCount(48));
  EXPECT_FALSE(ValidPartitionCount(kMaxPartitionCount * 2ull));
  // collection NUL id: "ab"/"c" and "a"/"bc" are different documents.
  EXPECT_NE(DocumentHash("ab", "c"), DocumentHash("a", "bc"));
  for (uint32_t p : {1u, 2u, 64u, 1024u}) {
    std::vector<int> hits(p);
    for (int i = 0; i < 20000; ++i) {
      const std::string id = "doc-" + std::to_string(i);
      PartitionId part = PartitionOf("orders", id, p);
      ASSERT_LT(part.value(), p);
      EXPECT_EQ(part.value(),
                p == 1 ? 0 : DocumentHash("orders", id) >> (64 - std::countr_zero(p)));
      ++hits[part.value()];
    }
    // Roughly even: every partition gets something when P is small.
    if (p <= 64) {
      for (int h : hits) EXPECT_GT(h, 20000 / static_cast<int>(p) / 2);
    }
  }
  // Halving P maps a partition to its parent range (a later split halves it).
  EXPECT_EQ(PartitionOf("c", "x", 32).value(), PartitionOf("c", "x", 64).value() / 2);
}

}  // namespace
}  // namespace cairn
