// cairn-fsd when things die: fsync then SIGKILL of the chunk server holding
// the document (intact after its restart); SIGKILL of fsd itself (the dead
// mount is cleared and the mount point usable after a restart); an
// unreachable cluster (operations fail within the -o timeout with
// EHOSTUNREACH/ETIMEDOUT/EIO, the daemon does not hang, and recovers); and
// the permissions other local users get with allow_other,default_permissions.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>

#include "tests/common/test_seeds.h"
#include "tests/fsd/fsd_harness.h"
#include "tests/integration/integration_util.h"

namespace cairn::test {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The chunk server index holding `path` (user.cairn.replicas = "cs<i>").
int HolderOf(const std::string& path) {
  char buf[128];
  const ssize_t n = ::getxattr(path.c_str(), "user.cairn.replicas", buf, sizeof(buf));
  if (n <= 2) return -1;
  return std::atoi(std::string(buf + 2, static_cast<size_t>(n) - 2).c_str());
}

struct World {
  QuietLogs quiet;
  std::unique_ptr<Cluster> cluster;
  std::unique_ptr<FsdMount> mount;
};

void Start(World* s, const std::vector<std::string>& opts) {
  ClusterOptions o;
  o.chunk_servers = 2;
  o.partitions = 8;
  auto c = Cluster::Start(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  s->cluster = std::move(*c);
  auto m = FsdMount::Start(*s->cluster, opts);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  s->mount = std::move(*m);
}

TEST(FsdFailure, FsyncThenKillTheChunkServerHoldingIt) {
  World s;
  ASSERT_NO_FATAL_FAILURE(Start(&s, {"attr_timeout=0", "entry_timeout=0", "timeout=30"}));
  const std::string dir = s.mount->path() + "/k";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  const std::string f = dir + "/durable";
  const std::string data = MakeBody(41, 1, (2u << 20) + 777);
  const int fd = ::open(f.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ASSERT_EQ(::fsync(fd), 0) << std::strerror(errno);
  const int holder = HolderOf(f);
  ASSERT_GE(holder, 0);
  IT_ASSERT_OK(s.cluster->KillChunkServer(holder));  // SIGKILL right after fsync
  EXPECT_EQ(::close(fd), 0);                         // nothing left to upload
  IT_ASSERT_OK(s.cluster->RestartChunkServer(holder));
  EXPECT_TRUE(ReadAll(f) == data);
  EXPECT_TRUE(s.mount->pid() > 0);
  if (HasFailure()) ADD_FAILURE() << s.mount->Log();
}

TEST(FsdFailure, KillFsdThenRestartOnTheDeadMount) {
  World s;
  ASSERT_NO_FATAL_FAILURE(Start(&s, {}));
  const std::string dir = s.mount->path() + "/kf";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  {
    std::ofstream out(dir + "/a");
    out << "before";
  }
  // Open at the kill: one created and written, never committed (nothing was
  // acknowledged: it does not exist afterwards); one fsynced (acknowledged:
  // it does, with what was written before the fsync).
  const int unsynced = ::open((dir + "/unsynced").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(unsynced, 0);
  ASSERT_EQ(::write(unsynced, "lost", 4), 4);
  const int synced = ::open((dir + "/synced").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(synced, 0);
  ASSERT_EQ(::write(synced, "kept", 4), 4);
  ASSERT_EQ(::fsync(synced), 0) << std::strerror(errno);
  ASSERT_EQ(::write(synced, "+lost", 5), 5);
  s.mount->Kill9();
  struct stat st;
  EXPECT_NE(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(errno, ENOTCONN);
  ::close(unsynced);  // the daemon is gone: whatever close says
  ::close(synced);
  IT_ASSERT_OK(s.mount->Restart());
  EXPECT_EQ(ReadAll(dir + "/a"), "before");
  EXPECT_EQ(ReadAll(dir + "/synced"), "kept");
  EXPECT_NE(::stat((dir + "/unsynced").c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
  {
    std::ofstream out(dir + "/b");
    out << "after";
  }
  EXPECT_EQ(ReadAll(dir + "/b"), "after");
}

TEST(FsdFailure, UnreachableClusterFailsWithinTheTimeout) {
  World s;
  ASSERT_NO_FATAL_FAILURE(Start(&s, {"attr_timeout=0", "entry_timeout=0", "timeout=4"}));
  const std::string dir = s.mount->path() + "/u";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  {
    std::ofstream out(dir + "/a");
    out << "data";
  }
  const int wfd = ::open((dir + "/a").c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(wfd, 0);
  ASSERT_EQ(::write(wfd, "new", 3), 3);
  IT_ASSERT_OK(s.cluster->KillChunkServer(0));
  IT_ASSERT_OK(s.cluster->KillChunkServer(1));
  const auto t0 = std::chrono::steady_clock::now();
  // The buffered write cannot be uploaded: close reports it.
  EXPECT_NE(::close(wfd), 0);
  const int close_errno = errno;
  EXPECT_EQ(close_errno, EIO) << std::strerror(close_errno);
  const int fd = ::open((dir + "/a").c_str(), O_RDONLY);
  const int open_errno = errno;
  EXPECT_LT(fd, 0);
  EXPECT_TRUE(open_errno == EHOSTUNREACH || open_errno == ETIMEDOUT || open_errno == EIO)
      << std::strerror(open_errno);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(took, 30.0);
  // The daemon is alive, and serves again once the cluster is back.
  EXPECT_EQ(::kill(s.mount->pid(), 0), 0);
  IT_ASSERT_OK(s.cluster->RestartChunkServer(0));
  IT_ASSERT_OK(s.cluster->RestartChunkServer(1));
  std::string got;
  for (int i = 0; i < 50 && got.empty(); ++i) {
    got = ReadAll(dir + "/a");
    if (got.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(got, "data");  // the failed upload changed nothing
  if (HasFailure()) ADD_FAILURE() << s.mount->Log();
}

TEST(FsdFailure, SigtermUploadsAndUnmountsCleanly) {
  World s;
  ASSERT_NO_FATAL_FAILURE(Start(&s, {}));
  const std::string dir = s.mount->path() + "/term";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  {
    std::ofstream out(dir + "/a");
    out << "kept";
  }
  const int st = s.mount->Terminate();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << "\n" << s.mount->Log();
  EXPECT_FALSE(IsMounted(s.mount->path()));
  auto c = s.cluster->NewClient();
  ASSERT_TRUE(c.ok());
  std::string body;
  ASSERT_TRUE((*c)->Get("term", "a", client::StringWriter(&body)).ok());
  EXPECT_EQ(body, "kept");
}

TEST(FsdFailure, FusermountUnmountEndsTheDaemon) {
  World s;
  ASSERT_NO_FATAL_FAILURE(Start(&s, {}));
  auto r = RunCommand({"/usr/bin/fusermount3", "-u", s.mount->path()});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0) << r->output;
  int st = -1;
  for (int i = 0; i < 100; ++i) {
    if (::waitpid(s.mount->pid(), &st, WNOHANG) == s.mount->pid()) break;
    st = -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  s.mount->Forget();
  EXPECT_FALSE(IsMounted(s.mount->path()));
}

TEST(FsdFailure, OtherUsersAreHeldToTheStoredModeAndOwner) {
  World s;
  ASSERT_NO_FATAL_FAILURE(Start(&s, {"allow_other", "default_permissions"}));
  const std::string dir = s.mount->path() + "/perm";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  {
    std::ofstream a(dir + "/private");
    a << "secret";
    std::ofstream b(dir + "/public");
    b << "hello";
  }
  ASSERT_EQ(::chmod((dir + "/private").c_str(), 0600), 0);
  ASSERT_EQ(::chmod((dir + "/public").c_str(), 0644), 0);
  auto as_nobody = [&](const std::string& cmd) {
    auto r = RunCommand({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                         "/bin/sh", "-c", cmd});
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : CommandResult{};
  };
  EXPECT_EQ(as_nobody("cat " + dir + "/public").output, "hello");
  CommandResult r = as_nobody("cat " + dir + "/private");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("Permission denied"), std::string::npos) << r.output;
  r = as_nobody("echo x >> " + dir + "/public");
  EXPECT_NE(r.exit_code, 0);
  // A file nobody creates is its own; root's files stay root's.
  r = as_nobody("echo mine > " + dir + "/theirs && stat -c %u " + dir + "/theirs");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "65534\n");
  r = as_nobody("rm " + dir + "/public");  // sticky collection: not theirs
  EXPECT_NE(r.exit_code, 0);
  r = as_nobody("mkdir " + s.mount->path() + "/newcoll");  // the root is the mounter's
  EXPECT_NE(r.exit_code, 0);
}

}  // namespace
}  // namespace cairn::test
