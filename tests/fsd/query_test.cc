// Query files on a real cairn-fsd mount (fsd/README.md "Query files"):
// cat, jq, wc -l, head -n 1, grep on /<collection>/.query/<q>; the file's
// size is the result's (stat and wc -c agree), a result over 1 MiB (spilled
// to a temporary file) reads back whole; '/' and '%' in names; a malformed
// query gives EINVAL with the parser's message in user.cairn.query_error;
// writes, creates and unlinks in .query give EACCES; .query lists nothing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "tests/common/test_seeds.h"
#include "tests/fsd/fsd_harness.h"
#include "tests/integration/integration_util.h"

namespace cairn::test {
namespace {

class FsdQuery : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    quiet_ = new QuietLogs();
    ClusterOptions o;
    o.chunk_servers = 2;
    o.partitions = 8;
    auto c = Cluster::Start(o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = c->release();
    auto m = FsdMount::Start(*cluster_, {"timeout=20"});
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    mount_ = m->release();
  }
  static void TearDownTestSuite() {
    delete mount_;  // unmounts, also after a failure
    delete cluster_;
    delete quiet_;
  }
  void TearDown() override {
    if (HasFailure() && mount_ != nullptr) ADD_FAILURE() << "fsd log:\n" << mount_->Log();
  }
  static std::string P(const std::string& rel) { return mount_->path() + "/" + rel; }

  static std::string Sh(const std::string& script, int expect = 0) {
    auto r = RunCommand({"/bin/bash", "-c", "set -euo pipefail\n" + script},
                        std::chrono::seconds(50), {"M=" + mount_->path()});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return "";
    EXPECT_EQ(r->exit_code, expect) << script << "\n---\n" << r->output;
    return r->output;
  }

  static QuietLogs* quiet_;
  static Cluster* cluster_;
  static FsdMount* mount_;
};
QuietLogs* FsdQuery::quiet_ = nullptr;
Cluster* FsdQuery::cluster_ = nullptr;
FsdMount* FsdQuery::mount_ = nullptr;

TEST_F(FsdQuery, ToolsReadQueryFiles) {
  auto c = cluster_->NewClient();
  ASSERT_TRUE(c.ok());
  IT_ASSERT_OK((*c)->CreateCollection("orders"));
  for (int i = 0; i < 40; ++i) {
    const std::string status = i % 4 == 0 ? "paid" : "open";
    const std::string body = "{\"status\":\"" + status + "\",\"total\":" + std::to_string(i * 10) +
                             ",\"path\":\"" + (i % 10 == 0 ? "a/b" : "c%d") + "\"}";
    char id[16];
    std::snprintf(id, sizeof(id), "o%02d", i);
    IT_ASSERT_OK((*c)->Put("orders", id, body).status());
  }
  IT_ASSERT_OK((*c)->Put("orders", "not-json", "plain text").status());

  Sh(R"SH(
    Q="$M/orders/.query"
    # cat: JSON Lines in the query's order, "_id" first.
    [ "$(cat "$Q/status == \"paid\" ?sort=-total&limit=2&fields=total")" = \
      '{"_id":"o36","total":360}
{"_id":"o32","total":320}' ]
    # wc -l, head -n 1, grep, jq.
    [ "$(wc -l < "$Q/status == \"paid\"")" = 10 ]
    [ "$(wc -l < "$Q/?limit=1000")" = 40 ]
    [ "$(head -n 1 "$Q/total > 100 ?sort=total")" = \
      '{"_id":"o11","status":"open","total":110,"path":"c%d"}' ]
    [ "$(grep -c '"status":"paid"' "$Q/total >= 200")" = 5 ]
    [ "$(jq -s 'map(.total) | add' "$Q/status == \"paid\"")" = 1800 ]
    [ "$(jq -r '._id' "$Q/total < 30 ?sort=-total" | tr '\n' ' ')" = 'o02 o01 o00 ' ]
    # The size is the result's: stat agrees with what is read.
    F="$Q/status == \"open\""
    [ "$(stat -c %s "$F")" = "$(cat "$F" | wc -c)" ]
    # '/' is written %2F and '%' %25 in the name.
    [ "$(jq -r ._id "$Q/path == \"a%2Fb\" ?sort=_id" | tr '\n' ' ')" = 'o00 o10 o20 o30 ' ]
    [ "$(jq -r ._id "$Q/path ^= \"c%25\" && total < 20" | tr '\n' ' ')" = 'o01 ' ]
    # No match: an empty file.
    [ "$(stat -c %s "$Q/total > 100000")" = 0 ]
    [ -z "$(cat "$Q/total > 100000")" ]
    # .query lists nothing.
    [ -z "$(ls -A "$Q")" ]
  )SH");
}

TEST_F(FsdQuery, LargeResultSpills) {
  auto c = cluster_->NewClient();
  ASSERT_TRUE(c.ok());
  IT_ASSERT_OK((*c)->CreateCollection("big"));
  const std::string pad(5000, 'x');
  ParallelFor(300, 8, [&](size_t i) {
    auto r = (*c)->Put("big", "b" + std::to_string(1000 + i),
                       "{\"n\":" + std::to_string(i) + ",\"pad\":\"" + pad + "\"}");
    if (!r.ok()) ADD_FAILURE() << r.status().ToString();
  });
  // About 1.5 MB of JSON Lines: above the 1 MiB kept in memory.
  Sh(R"SH(
    F="$M/big/.query/n >= 0 ?sort=n"
    SIZE=$(stat -c %s "$F")
    [ "$SIZE" -gt 1048576 ]
    [ "$(cat "$F" | wc -c)" = "$SIZE" ]
    [ "$(wc -l < "$F")" = 300 ]
    [ "$(tail -n 1 "$F" | jq .n)" = 299 ]
    [ "$(jq -s 'map(.n) | add' "$F")" = 44850 ]
  )SH");
}

TEST_F(FsdQuery, MalformedQueryAndWrites) {
  ASSERT_EQ(::mkdir(P("bad").c_str(), 0755), 0) << std::strerror(errno);
  const std::string q = P("bad/.query/status == paid");
  errno = 0;
  int fd = ::open(q.c_str(), O_RDONLY);
  EXPECT_EQ(fd, -1);
  EXPECT_EQ(errno, EINVAL);
  if (fd >= 0) ::close(fd);
  char buf[512];
  const ssize_t n = ::getxattr(q.c_str(), "user.cairn.query_error", buf, sizeof(buf));
  ASSERT_GT(n, 0) << std::strerror(errno);
  const std::string reason(buf, static_cast<size_t>(n));
  EXPECT_NE(reason.find("at column 11: expected a JSON value"), std::string::npos) << reason;
  char names[256];
  const ssize_t ln = ::listxattr(q.c_str(), names, sizeof(names));
  ASSERT_GT(ln, 0);
  EXPECT_EQ(std::string(names, static_cast<size_t>(ln) - 1), "user.cairn.query_error");
  // The reason is in fsd's log too.
  EXPECT_NE(mount_->Log().find("at column 11"), std::string::npos);
  // A good query file has no such attribute.
  const std::string good = P("bad/.query/a == 1");
  EXPECT_EQ(::getxattr(good.c_str(), "user.cairn.query_error", buf, sizeof(buf)), -1);
  EXPECT_EQ(errno, ENODATA);

  // Read-only: no writes, creates, truncation, unlinks or renames.
  errno = 0;
  EXPECT_EQ(::open(good.c_str(), O_WRONLY), -1);
  EXPECT_EQ(errno, EACCES);
  errno = 0;
  EXPECT_EQ(::open(P("bad/.query/new one").c_str(), O_WRONLY | O_CREAT, 0644), -1);
  EXPECT_EQ(errno, EACCES);
  errno = 0;
  EXPECT_EQ(::truncate(good.c_str(), 0), -1);
  EXPECT_EQ(errno, EACCES);
  errno = 0;
  EXPECT_EQ(::unlink(good.c_str()), -1);
  EXPECT_EQ(errno, EACCES);
  ASSERT_EQ(::close(::open(P("bad/doc").c_str(), O_WRONLY | O_CREAT, 0644)), 0);
  errno = 0;
  EXPECT_EQ(::rename(P("bad/doc").c_str(), P("bad/.query/doc").c_str()), -1);
  EXPECT_EQ(errno, EACCES);
  Sh(R"SH(
    if echo x > "$M/bad/.query/a == 1" 2>/dev/null; then exit 1; fi
    [ -z "$(ls -A "$M/bad/.query")" ]
  )SH");
}

}  // namespace
}  // namespace cairn::test
