// POSIX behaviour of a real cairn-fsd mount: every supported operation done
// with system calls, and the errno of each misuse (fsd/README.md "Errors").
// One cluster (2 chunk servers) and one mount for the whole suite.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "tests/common/test_seeds.h"
#include "tests/fsd/fsd_harness.h"
#include "tests/integration/integration_util.h"

namespace cairn::test {
namespace {

class FsdPosix : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    quiet_ = new QuietLogs();
    ClusterOptions o;
    o.chunk_servers = 2;
    o.partitions = 8;
    auto c = Cluster::Start(o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = c->release();
    auto m = FsdMount::Start(*cluster_, {"attr_timeout=0", "entry_timeout=0", "timeout=10"});
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    mount_ = m->release();
    auto cl = cluster_->NewClient();
    ASSERT_TRUE(cl.ok());
    client_ = cl->release();
  }
  static void TearDownTestSuite() {
    delete client_;
    delete mount_;  // unmounts before the cluster goes
    delete cluster_;
    delete quiet_;
  }
  void TearDown() override {
    if (HasFailure() && mount_ != nullptr) ADD_FAILURE() << "fsd log:\n" << mount_->Log();
  }

  static std::string P(const std::string& rel) { return mount_->path() + "/" + rel; }
  static void MakeCollection(const std::string& name) {
    ASSERT_EQ(::mkdir(P(name).c_str(), 0755), 0) << name << ": " << std::strerror(errno);
  }
  static bool WriteFile(const std::string& path, const std::string& data, int flags = O_TRUNC) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | flags, 0644);
    if (fd < 0) return false;
    const bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
    return ::close(fd) == 0 && ok;
  }
  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static std::set<std::string> List(const std::string& dir) {
    std::set<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return out;
    while (dirent* e = ::readdir(d)) out.insert(e->d_name);
    ::closedir(d);
    return out;
  }
  static int Errno(int rc) { return rc < 0 ? errno : 0; }

  static QuietLogs* quiet_;
  static Cluster* cluster_;
  static FsdMount* mount_;
  static client::Client* client_;
};
QuietLogs* FsdPosix::quiet_ = nullptr;
Cluster* FsdPosix::cluster_ = nullptr;
FsdMount* FsdPosix::mount_ = nullptr;
client::Client* FsdPosix::client_ = nullptr;

TEST_F(FsdPosix, LayoutRootStatusIndexesQuery) {
  MakeCollection("layout");
  const std::set<std::string> root = List(mount_->path());
  EXPECT_TRUE(root.count(".status") && root.count("layout"));
  const std::string status = ReadFile(P(".status"));
  EXPECT_NE(status.find("\"map_version\""), std::string::npos) << status;
  EXPECT_NE(status.find("\"layout\""), std::string::npos) << status;
  const std::set<std::string> coll = List(P("layout"));
  EXPECT_EQ(coll, (std::set<std::string>{".", "..", ".indexes", ".query"}));
  EXPECT_EQ(ReadFile(P("layout/.indexes")), "");
  EXPECT_EQ(List(P("layout/.query")), (std::set<std::string>{".", ".."}));
  struct stat st;
  ASSERT_EQ(::stat(P("layout").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  ASSERT_EQ(::stat(P(".status").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0444u);
}

TEST_F(FsdPosix, CreateWriteReadAppendTruncateStat) {
  MakeCollection("rw");
  const std::string f = P("rw/a.txt");
  ASSERT_TRUE(WriteFile(f, "hello world"));
  EXPECT_EQ(ReadFile(f), "hello world");
  // The document is in the store.
  std::string body;
  ASSERT_TRUE(client_->Get("rw", "a.txt", client::StringWriter(&body)).ok());
  EXPECT_EQ(body, "hello world");
  ASSERT_TRUE(WriteFile(f, "!!", O_APPEND));
  EXPECT_EQ(ReadFile(f), "hello world!!");
  struct stat st;
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 13);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_GT(st.st_mtim.tv_sec, 1600000000);
  // pread/pwrite at offsets, and a write past the end leaves zeros.
  int fd = ::open(f.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "W", 1, 6), 1);
  char buf[8] = {};
  ASSERT_EQ(::pread(fd, buf, 5, 6), 5);
  EXPECT_EQ(std::string(buf, 5), "World");
  ASSERT_EQ(::pwrite(fd, "Z", 1, 20), 1);
  ASSERT_EQ(::ftruncate(fd, 22), 0);
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(ReadFile(f), std::string("hello World!!") + std::string(7, '\0') + "Z" + '\0');
  ASSERT_EQ(::truncate(f.c_str(), 5), 0);
  EXPECT_EQ(ReadFile(f), "hello");
  ASSERT_EQ(::truncate(f.c_str(), 0), 0);
  EXPECT_EQ(ReadFile(f), "");
  // O_TRUNC replaces.
  ASSERT_TRUE(WriteFile(f, "again"));
  EXPECT_EQ(ReadFile(f), "again");
  // Empty file created with open(O_CREAT) exists before close.
  fd = ::open(P("rw/empty").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::stat(P("rw/empty").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ::close(fd);
  EXPECT_EQ(Errno(::open(P("rw/empty").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600)), EEXIST);
}

TEST_F(FsdPosix, MultiBlockPartialUpdate) {
  MakeCollection("big");
  const std::string f = P("big/blob");
  const std::string data = MakeBody(11, 1, (3u << 20) + 4567);
  ASSERT_TRUE(WriteFile(f, data));
  EXPECT_EQ(ReadFile(f), data);
  auto before = client_->Stat("big", "blob");
  ASSERT_TRUE(before.ok());
  // A small change in the middle of block 1.
  int fd = ::open(f.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "PATCH", 5, (1u << 20) + 100), 5);
  ASSERT_EQ(::close(fd), 0);
  std::string expect = data;
  expect.replace((1u << 20) + 100, 5, "PATCH");
  std::string body;
  auto after = client_->Get("big", "blob", client::StringWriter(&body));
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(body, expect);
  EXPECT_GT(after->version, before->version);
  EXPECT_EQ(ReadFile(f), expect);
}

TEST_F(FsdPosix, RenameWithinAndAcrossCollections) {
  MakeCollection("ren1");
  MakeCollection("ren2");
  ASSERT_TRUE(WriteFile(P("ren1/a"), "A"));
  ASSERT_TRUE(WriteFile(P("ren1/b"), "B"));
  ASSERT_EQ(::rename(P("ren1/a").c_str(), P("ren1/c").c_str()), 0);
  EXPECT_EQ(ReadFile(P("ren1/c")), "A");
  EXPECT_EQ(Errno(::access(P("ren1/a").c_str(), F_OK)), ENOENT);
  // Over an existing name.
  ASSERT_EQ(::rename(P("ren1/c").c_str(), P("ren1/b").c_str()), 0);
  EXPECT_EQ(ReadFile(P("ren1/b")), "A");
  // Across collections, with its mode kept.
  ASSERT_EQ(::chmod(P("ren1/b").c_str(), 0640), 0);
  ASSERT_EQ(::rename(P("ren1/b").c_str(), P("ren2/moved").c_str()), 0);
  EXPECT_EQ(ReadFile(P("ren2/moved")), "A");
  struct stat st;
  ASSERT_EQ(::stat(P("ren2/moved").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(Errno(::access(P("ren1/b").c_str(), F_OK)), ENOENT);
  EXPECT_EQ(Errno(::rename(P("ren1/nothing").c_str(), P("ren1/x").c_str())), ENOENT);
}

TEST_F(FsdPosix, UnlinkWhileOpenKeepsReading) {
  MakeCollection("unl");
  const std::string data = MakeBody(12, 1, (2u << 20) + 10);
  ASSERT_TRUE(WriteFile(P("unl/f"), data));
  const int fd = ::open(P("unl/f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::unlink(P("unl/f").c_str()), 0);
  EXPECT_EQ(Errno(::access(P("unl/f").c_str(), F_OK)), ENOENT);
  EXPECT_EQ(List(P("unl")), (std::set<std::string>{".", "..", ".indexes", ".query"}));
  std::string got(data.size(), '\0');
  size_t done = 0;
  while (done < got.size()) {
    const ssize_t n = ::pread(fd, got.data() + done, got.size() - done, static_cast<off_t>(done));
    ASSERT_GT(n, 0) << std::strerror(errno);
    done += static_cast<size_t>(n);
  }
  EXPECT_TRUE(got == data);
  ASSERT_EQ(::close(fd), 0);
  // The hidden copy is gone after the last close (release is asynchronous:
  // close returns before the daemon hears of it).
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    auto page = client_->List("unl");
    ASSERT_TRUE(page.ok());
    gone = page->items.empty();
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone);
  EXPECT_EQ(Errno(::unlink(P("unl/f").c_str())), ENOENT);
}

// A file created without O_EXCL is stored by its first commit (close,
// fsync, or an operation that needs it stored), content and all: one
// replicated write, not an empty version first. Until then this mount shows
// it (stat, lookup) from the writer's buffer and the cluster does not have it;
// listing the collection, another open, rename, unlink and O_EXCL store it
// first; a file created and closed unwritten is stored empty.
TEST_F(FsdPosix, CreatedFilesAreStoredByTheirFirstCommit) {
  MakeCollection("pend");
  auto stored = [](const std::string& id) { return client_->Stat("pend", id).ok(); };
  auto body = [](const std::string& id) {
    std::string b;
    return client_->Get("pend", id, client::StringWriter(&b)).ok() ? b : "<missing>";
  };

  // Shown here, not stored yet; stored by close with its content as the first version.
  int fd = ::open(P("pend/a").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0640);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::write(fd, "hello", 5), 5);
  struct stat st;
  ASSERT_EQ(::stat(P("pend/a").c_str(), &st), 0) << std::strerror(errno);
  EXPECT_EQ(st.st_size, 5);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_FALSE(stored("a"));
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(body("a"), "hello");
  auto info = client_->Stat("pend", "a");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->mode, 0640u);

  // Created and closed unwritten: stored empty.
  fd = ::open(P("pend/empty").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::close(fd), 0);
  EXPECT_TRUE(stored("empty"));
  EXPECT_EQ(ReadFile(P("pend/empty")), "");

  // Listing the collection stores what is pending in it; so does fsync.
  fd = ::open(P("pend/b").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "bb", 2), 2);
  EXPECT_TRUE(List(P("pend")).count("b"));
  EXPECT_TRUE(stored("b"));
  ASSERT_EQ(::write(fd, "b", 1), 1);
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(body("b"), "bbb");
  fd = ::open(P("pend/s").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "ss", 2), 2);
  ASSERT_EQ(::fsync(fd), 0);
  EXPECT_EQ(body("s"), "ss");
  ASSERT_EQ(::close(fd), 0);

  // fsync of the directory stores the names created in it (opened first:
  // opening it lists it, which stores them too).
  {
    const int dfd = ::open(P("pend").c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_GE(dfd, 0) << std::strerror(errno);
    fd = ::open(P("pend/d").c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "dd", 2), 2);
    EXPECT_FALSE(stored("d"));
    ASSERT_EQ(::fsync(dfd), 0) << std::strerror(errno);
    EXPECT_EQ(body("d"), "dd");
    ::close(dfd);
    ASSERT_EQ(::close(fd), 0);
  }

  // Another open (a reader) finds what was written so far.
  fd = ::open(P("pend/r").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "partial", 7), 7);
  EXPECT_EQ(ReadFile(P("pend/r")), "partial");
  ASSERT_EQ(::write(fd, "+", 1), 1);
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(ReadFile(P("pend/r")), "partial+");

  // O_EXCL on a name pending here: EEXIST, as for a stored one.
  fd = ::open(P("pend/x").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(Errno(::open(P("pend/x").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644)), EEXIST);
  ASSERT_EQ(::close(fd), 0);

  // Renamed while pending: the content ends under the new name only.
  fd = ::open(P("pend/old").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "moved", 5), 5);
  ASSERT_EQ(::rename(P("pend/old").c_str(), P("pend/new").c_str()), 0) << std::strerror(errno);
  ASSERT_EQ(::write(fd, "!", 1), 1);
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(ReadFile(P("pend/new")), "moved!");
  EXPECT_FALSE(stored("old"));
  EXPECT_EQ(Errno(::access(P("pend/old").c_str(), F_OK)), ENOENT);

  // Unlinked while pending: gone at once, nothing left after the close.
  fd = ::open(P("pend/u").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "temp", 4), 4);
  ASSERT_EQ(::unlink(P("pend/u").c_str()), 0) << std::strerror(errno);
  EXPECT_EQ(Errno(::access(P("pend/u").c_str(), F_OK)), ENOENT);
  char buf[8] = {};
  EXPECT_EQ(::pread(fd, buf, sizeof buf, 0), 4);
  EXPECT_EQ(std::string(buf, 4), "temp");
  ASSERT_EQ(::close(fd), 0);
  bool clean = false;
  for (int i = 0; i < 100 && !clean; ++i) {
    auto page = client_->List("pend");
    ASSERT_TRUE(page.ok());
    clean = true;
    for (const auto& item : page->items) clean = clean && item.id != "u" && item.id[0] != '.';
    if (!clean) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(clean) << "the unlinked file (or its hidden copy) stayed";
  EXPECT_EQ(List(P("pend")), (std::set<std::string>{".", "..", ".indexes", ".query", "a", "empty",
                                                    "b", "s", "d", "r", "x", "new"}));
}

TEST_F(FsdPosix, RenameOverAnOpenFileKeepsItsReaderReading) {
  MakeCollection("rover");
  ASSERT_TRUE(WriteFile(P("rover/target"), "old body"));
  ASSERT_TRUE(WriteFile(P("rover/new"), "new body!"));
  const int fd = ::open(P("rover/target").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::rename(P("rover/new").c_str(), P("rover/target").c_str()), 0);
  char buf[32] = {};
  ASSERT_EQ(::pread(fd, buf, sizeof(buf), 0), 8);
  EXPECT_EQ(std::string(buf, 8), "old body");
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(ReadFile(P("rover/target")), "new body!");
  EXPECT_EQ(List(P("rover")), (std::set<std::string>{".", "..", ".indexes", ".query", "target"}));
}

TEST_F(FsdPosix, MkdirRmdir) {
  MakeCollection("dirs");
  EXPECT_EQ(Errno(::mkdir(P("dirs").c_str(), 0755)), EEXIST);
  // Directories carry the mount's start time, not the epoch (ls -l, find
  // -newer and rsync see a plausible time).
  struct stat st;
  ASSERT_EQ(::stat(P("dirs").c_str(), &st), 0);
  EXPECT_GT(st.st_mtime, ::time(nullptr) - 24 * 3600);
  EXPECT_LE(st.st_mtime, ::time(nullptr) + 60);
  ASSERT_EQ(::stat(mount_->path().c_str(), &st), 0);
  EXPECT_GT(st.st_mtime, ::time(nullptr) - 24 * 3600);
  ASSERT_TRUE(WriteFile(P("dirs/x"), "x"));
  EXPECT_EQ(Errno(::rmdir(P("dirs").c_str())), ENOTEMPTY);
  ASSERT_EQ(::unlink(P("dirs/x").c_str()), 0);
  EXPECT_EQ(::rmdir(P("dirs").c_str()), 0);
  EXPECT_EQ(Errno(::rmdir(P("dirs").c_str())), ENOENT);
  EXPECT_FALSE(List(mount_->path()).count("dirs"));
}

TEST_F(FsdPosix, ErrnoOfEachMisuse) {
  MakeCollection("err");
  ASSERT_TRUE(WriteFile(P("err/file"), "f"));
  EXPECT_EQ(Errno(::open(P("err/missing").c_str(), O_RDONLY)), ENOENT);
  EXPECT_EQ(Errno(::open(P("nocoll/x").c_str(), O_RDONLY)), ENOENT);
  EXPECT_EQ(Errno(::open(P("err").c_str(), O_WRONLY)), EISDIR);
  EXPECT_EQ(Errno(::open(P("err/file/x").c_str(), O_RDONLY)), ENOTDIR);
  EXPECT_EQ(Errno(::rmdir(P("err/file").c_str())), ENOTDIR);
  EXPECT_EQ(Errno(::unlink(P("err").c_str())), EISDIR);
  // Names: 255 bytes is fine, 256 is too long.
  const std::string n255(255, 'n');
  EXPECT_TRUE(WriteFile(P("err/" + n255), "long"));
  EXPECT_EQ(ReadFile(P("err/" + n255)), "long");
  EXPECT_EQ(Errno(::open(P("err/" + std::string(256, 'n')).c_str(), O_WRONLY | O_CREAT, 0644)),
            ENAMETOOLONG);
  EXPECT_EQ(Errno(::mkdir(P(std::string(129, 'c')).c_str(), 0755)), ENAMETOOLONG);
  // Collection names are stricter than file names.
  EXPECT_EQ(Errno(::mkdir(P("bad name").c_str(), 0755)), EINVAL);
  EXPECT_EQ(Errno(::mkdir(P("bad*").c_str(), 0755)), EINVAL);
  EXPECT_EQ(Errno(::mkdir(P(".hidden").c_str(), 0755)), EINVAL);
  // What the layout does not allow.
  EXPECT_EQ(Errno(::mkdir(P("err/sub").c_str(), 0755)), EPERM);
  // Every name in .query is a query file (fsd/README.md "Query files").
  EXPECT_EQ(Errno(::mkdir(P("err/.query/q").c_str(), 0755)), EEXIST);
  EXPECT_EQ(Errno(::open(P("rootfile").c_str(), O_WRONLY | O_CREAT, 0644)), EPERM);
  EXPECT_EQ(Errno(::open(P(".status").c_str(), O_WRONLY)), EPERM);
  // (.indexes is writable: IndexesFileEditsIndexes.)
  EXPECT_EQ(Errno(::unlink(P(".status").c_str())), EPERM);
  EXPECT_EQ(Errno(::unlink(P("err/.indexes").c_str())), EPERM);
  EXPECT_EQ(Errno(::rmdir(P("err/.query").c_str())), EPERM);
  EXPECT_EQ(Errno(::rename(P("err/file").c_str(), P("err/.indexes").c_str())), EPERM);
  EXPECT_EQ(Errno(::link(P("err/file").c_str(), P("err/hard").c_str())), EPERM);
  EXPECT_EQ(Errno(::symlink("file", P("err/sym").c_str())), EPERM);
  // Hidden files (editors' swap files) are ordinary documents.
  EXPECT_TRUE(WriteFile(P("err/.file.swp"), "swap"));
  EXPECT_TRUE(List(P("err")).count(".file.swp"));
}

// <collection>/.indexes: one indexed path a line; appending or rewriting it
// creates and drops indexes at close; a bad line is EINVAL at close (and a
// log line) with nothing changed; rename over it is EPERM.
TEST_F(FsdPosix, IndexesFileEditsIndexes) {
  MakeCollection("ix");
  const std::string f = P("ix/.indexes");
  auto listed = [&] {
    std::string out;
    auto l = client_->ListIndexes("ix");
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    if (l.ok()) {
      for (const client::IndexStatus& i : *l) out += i.path + "\n";
    }
    return out;
  };
  EXPECT_EQ(ReadFile(f), "");
  EXPECT_TRUE(WriteFile(f, "status\n", O_APPEND));
  EXPECT_EQ(ReadFile(f), "status\n");
  auto sh = RunCommand({"/bin/sh", "-c", "echo 'customer.`first name`' >> '" + f + "'"});
  ASSERT_TRUE(sh.ok());
  EXPECT_EQ(sh->exit_code, 0) << sh->output;
  EXPECT_EQ(ReadFile(f), "customer.`first name`\nstatus\n");
  EXPECT_EQ(listed(), ReadFile(f));
  // An in-place edit (truncate, write): the difference is applied.
  EXPECT_TRUE(WriteFile(f, "total\n\n  status  \n"));
  EXPECT_EQ(ReadFile(f), "status\ntotal\n");
  EXPECT_EQ(listed(), "status\ntotal\n");
  // A bad path: EINVAL at close, logged, nothing changed.
  int fd = ::open(f.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::write(fd, "a ==\nnew\n", 10), 10);
  EXPECT_EQ(Errno(::close(fd)), EINVAL);
  EXPECT_EQ(ReadFile(f), "status\ntotal\n");
  EXPECT_NE(mount_->Log().find(".indexes line 3"), std::string::npos) << mount_->Log();
  // Rename over .indexes (an editor's save through a temporary) is refused.
  EXPECT_TRUE(WriteFile(P("ix/tmp"), "x\n"));
  EXPECT_EQ(Errno(::rename(P("ix/tmp").c_str(), f.c_str())), EPERM);
  // truncate to 0 by path drops them all.
  EXPECT_EQ(Errno(::truncate(f.c_str(), 0)), 0);
  EXPECT_EQ(ReadFile(f), "");
  EXPECT_EQ(listed(), "");
  struct stat st;
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST_F(FsdPosix, AttributesKeptWithTheDocument) {
  MakeCollection("attr");
  const std::string f = P("attr/doc");
  ASSERT_TRUE(WriteFile(f, "content"));
  ASSERT_EQ(::chmod(f.c_str(), 0600), 0);
  ASSERT_EQ(::chown(f.c_str(), 1234, 5678), 0);
  struct timespec times[2] = {{1000, 0}, {1500000000, 123456789}};
  ASSERT_EQ(::utimensat(AT_FDCWD, f.c_str(), times, 0), 0);
  auto d = client_->Stat("attr", "doc");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->mode & 07777, 0600u);
  EXPECT_EQ(d->uid, 1234u);
  EXPECT_EQ(d->gid, 5678u);
  EXPECT_EQ(d->mtime_ns, 1500000000123456789ll);
  struct stat st;
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(ReadFile(f), "content");  // the body did not change
  // futimens on an open, written file (cp -p) lands after the data.
  const int fd = ::open(P("attr/p").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "data", 4), 4);
  ASSERT_EQ(::futimens(fd, times), 0);
  ASSERT_EQ(::close(fd), 0);
  ASSERT_EQ(::stat(P("attr/p").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(st.st_size, 4);
}

TEST_F(FsdPosix, ExtendedAttributes) {
  MakeCollection("xat");
  const std::string f = P("xat/doc");
  ASSERT_TRUE(WriteFile(f, "x"));
  char buf[256];
  ssize_t n = ::getxattr(f.c_str(), "user.cairn.version", buf, sizeof(buf));
  ASSERT_GT(n, 0);
  auto d = client_->Stat("xat", "doc");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), std::to_string(d->version));
  n = ::getxattr(f.c_str(), "user.cairn.partition", buf, sizeof(buf));
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), std::to_string(d->partition.value()));
  n = ::getxattr(f.c_str(), "user.cairn.replicas", buf, sizeof(buf));
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)).rfind("cs", 0), 0u)
      << std::string(buf, static_cast<size_t>(n));
  ASSERT_EQ(::setxattr(f.c_str(), "user.color", "blue", 4, 0), 0);
  n = ::getxattr(f.c_str(), "user.color", buf, sizeof(buf));
  ASSERT_EQ(n, 4);
  EXPECT_EQ(std::string(buf, 4), "blue");
  d = client_->Stat("xat", "doc");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->xattrs["user.color"], "blue");
  EXPECT_EQ(Errno(static_cast<int>(::setxattr(f.c_str(), "user.color", "red", 3, XATTR_CREATE))),
            EEXIST);
  EXPECT_EQ(Errno(static_cast<int>(::setxattr(f.c_str(), "user.cairn.version", "1", 1, 0))), EPERM);
  EXPECT_EQ(Errno(static_cast<int>(::setxattr(f.c_str(), "trusted.x", "1", 1, 0))), ENOTSUP);
  n = ::listxattr(f.c_str(), buf, sizeof(buf));
  ASSERT_GT(n, 0);
  std::set<std::string> names;
  for (const char* p = buf; p < buf + n; p += std::strlen(p) + 1) names.insert(p);
  EXPECT_EQ(names, (std::set<std::string>{"user.cairn.version", "user.cairn.partition",
                                          "user.cairn.replicas", "user.color"}));
  ASSERT_EQ(::removexattr(f.c_str(), "user.color"), 0);
  EXPECT_EQ(Errno(static_cast<int>(::getxattr(f.c_str(), "user.color", buf, sizeof(buf)))),
            ENODATA);
  EXPECT_EQ(Errno(::removexattr(f.c_str(), "user.color")), ENODATA);
  EXPECT_EQ(ReadFile(f), "x");
}

TEST_F(FsdPosix, StatfsReportsCapacityAndNameLimit) {
  struct statvfs sv;
  ASSERT_EQ(::statvfs(mount_->path().c_str(), &sv), 0);
  EXPECT_EQ(sv.f_namemax, 255u);
  EXPECT_GT(sv.f_blocks, 0u);
  EXPECT_LE(sv.f_bfree, sv.f_blocks);
}

TEST_F(FsdPosix, LargeCollectionListsInPages) {
  MakeCollection("many");
  constexpr size_t kDocs = 6500;  // several List pages, more than the handle keeps
  ParallelFor(kDocs, 8, [&](size_t i) {
    auto r = client_->Put("many", "d" + std::to_string(i), "v");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
  });
  const std::set<std::string> names = List(P("many"));
  EXPECT_EQ(names.size(), kDocs + 4);
  EXPECT_TRUE(names.count("d0") && names.count("d6499"));
  // rewinddir lists everything again.
  DIR* d = ::opendir(P("many").c_str());
  ASSERT_NE(d, nullptr);
  size_t first_pass = 0, second_pass = 0;
  while (::readdir(d) != nullptr) ++first_pass;
  ::rewinddir(d);
  while (::readdir(d) != nullptr) ++second_pass;
  ::closedir(d);
  EXPECT_EQ(first_pass, kDocs + 4);
  EXPECT_EQ(second_pass, kDocs + 4);
  // readdirplus attributes: stat of every entry agrees.
  struct stat st;
  ASSERT_EQ(::stat(P("many/d17").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 1);
}

}  // namespace
}  // namespace cairn::test
