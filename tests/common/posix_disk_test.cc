// PosixDisk: the real disk, exercised in a fresh temporary directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/disk.h"
#include "common/random.h"

namespace cairn {
namespace {

std::vector<std::byte> Bytes(const std::string& s) {
  std::vector<std::byte> out(s.size());
  for (size_t i = 0; i < s.size(); ++i) out[i] = static_cast<std::byte>(s[i]);
  return out;
}

class PosixDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = "/tmp/cairn_posix_disk_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string P(const std::string& name) const { return JoinPath(dir_, name); }
  void Write(const std::string& path, const std::vector<std::byte>& data) {
    auto f = disk_.Open(path, OpenMode::kCreate);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->WriteAt(0, data).ok());
  }
  std::vector<std::byte> Read(const std::string& path) {
    auto r = ReadWholeFile(disk_, path, 64 << 20);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<std::byte>{};
  }

  Disk& disk_ = PosixDiskInstance();
  std::string dir_;
};

TEST_F(PosixDiskTest, OpenModesAndErrors) {
  EXPECT_EQ(disk_.Open(P("a"), OpenMode::kRead).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(disk_.Open(P("a"), OpenMode::kReadWrite).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(disk_.Open(P("a"), OpenMode::kCreateNew).ok());
  EXPECT_EQ(disk_.Open(P("a"), OpenMode::kCreateNew).status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(disk_.Open(P("a"), OpenMode::kCreate).ok());
  EXPECT_TRUE(disk_.Open(P("a"), OpenMode::kRead).ok());
  EXPECT_EQ(disk_.Open(P("nodir/a"), OpenMode::kCreate).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(disk_.Open(dir_, OpenMode::kRead).status().code(), StatusCode::kInvalidArgument);
  // A path through a regular file.
  EXPECT_FALSE(disk_.Open(P("a/b"), OpenMode::kCreate).ok());
}

TEST_F(PosixDiskTest, ReadWriteTruncateSize) {
  auto f = disk_.Open(P("f"), OpenMode::kCreate);
  ASSERT_TRUE(f.ok());
  File& file = **f;
  EXPECT_EQ(*file.Size(), 0u);
  ASSERT_TRUE(file.WriteAt(0, Bytes("hello")).ok());
  ASSERT_TRUE(file.WriteAt(8, Bytes("world")).ok());
  EXPECT_EQ(*file.Size(), 13u);
  std::vector<std::byte> buf(32, std::byte{0x77});
  auto n = file.ReadAt(0, buf);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(*n, 13u);
  std::vector<std::byte> want = Bytes("hello");
  want.resize(8, std::byte{0});
  for (auto b : Bytes("world")) want.push_back(b);
  EXPECT_TRUE(std::equal(want.begin(), want.end(), buf.begin()));
  EXPECT_EQ(*file.ReadAt(13, buf), 0u);
  EXPECT_EQ(*file.ReadAt(1 << 20, buf), 0u);
  ASSERT_TRUE(file.Sync().ok());
  ASSERT_TRUE(file.Truncate(4).ok());
  EXPECT_EQ(*file.Size(), 4u);
  EXPECT_EQ(Read(P("f")), Bytes("hell"));
  ASSERT_TRUE(file.Truncate(6).ok());
  EXPECT_EQ(Read(P("f")), (std::vector<std::byte>{std::byte{'h'}, std::byte{'e'}, std::byte{'l'},
                                                  std::byte{'l'}, std::byte{0}, std::byte{0}}));
}

TEST_F(PosixDiskTest, LargeRoundTrip) {
  Random rng(99);
  std::vector<std::byte> data((3 << 20) + 123);
  for (auto& b : data) b = static_cast<std::byte>(rng.Next() & 0xFF);
  auto f = disk_.Open(P("big"), OpenMode::kCreate);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->WriteAt(4096, data).ok());
  ASSERT_TRUE((*f)->Sync().ok());
  std::vector<std::byte> back(data.size());
  ASSERT_EQ(*(*f)->ReadAt(4096, back), data.size());
  EXPECT_TRUE(back == data);
}

TEST_F(PosixDiskTest, ReadOnlyHandleCannotWrite) {
  Write(P("f"), Bytes("abc"));
  auto f = disk_.Open(P("f"), OpenMode::kRead);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE((*f)->WriteAt(0, Bytes("x")).ok());
  EXPECT_EQ(Read(P("f")), Bytes("abc"));
}

TEST_F(PosixDiskTest, DirectoriesListStat) {
  EXPECT_TRUE(disk_.CreateDir(P("d")).ok());
  EXPECT_TRUE(disk_.CreateDir(P("d")).ok());
  EXPECT_EQ(disk_.CreateDir(P("x/y")).code(), StatusCode::kNotFound);
  Write(P("d/a"), Bytes("1"));
  Write(P("d/b"), Bytes("22"));
  ASSERT_TRUE(disk_.CreateDir(P("d/sub")).ok());
  EXPECT_EQ(disk_.CreateDir(P("d/a")).code(), StatusCode::kAlreadyExists);
  auto names = disk_.ListDir(P("d"));
  ASSERT_TRUE(names.ok());
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b", "sub"}));
  EXPECT_EQ(disk_.ListDir(P("nope")).status().code(), StatusCode::kNotFound);
  auto st = disk_.Stat(P("d/b"));
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(st->is_dir);
  EXPECT_EQ(st->size, 2u);
  EXPECT_TRUE(disk_.Stat(P("d/sub"))->is_dir);
  EXPECT_EQ(disk_.Stat(P("d/none")).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(disk_.SyncDir(P("d")).ok());
  EXPECT_EQ(disk_.SyncDir(P("nope")).code(), StatusCode::kNotFound);
}

TEST_F(PosixDiskTest, RenameAndRemove) {
  Write(P("a"), Bytes("A"));
  Write(P("b"), Bytes("B"));
  ASSERT_TRUE(disk_.Rename(P("a"), P("c")).ok());
  EXPECT_EQ(disk_.Stat(P("a")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Read(P("c")), Bytes("A"));
  ASSERT_TRUE(disk_.Rename(P("b"), P("c")).ok());  // replaces
  EXPECT_EQ(Read(P("c")), Bytes("B"));
  EXPECT_EQ(disk_.Rename(P("missing"), P("x")).code(), StatusCode::kNotFound);
  EXPECT_EQ(disk_.Rename(P("c"), P("nodir/c")).code(), StatusCode::kNotFound);
  ASSERT_TRUE(disk_.Remove(P("c")).ok());
  EXPECT_EQ(disk_.Remove(P("c")).code(), StatusCode::kNotFound);
  auto names = disk_.ListDir(dir_);
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty());
}

TEST_F(PosixDiskTest, WriteFileAtomicAndReadWholeFile) {
  ASSERT_TRUE(WriteFileAtomic(disk_, P("f"), Bytes("one")).ok());
  EXPECT_EQ(Read(P("f")), Bytes("one"));
  ASSERT_TRUE(WriteFileAtomic(disk_, P("f"), Bytes("two!")).ok());
  EXPECT_EQ(Read(P("f")), Bytes("two!"));
  auto names = disk_.ListDir(dir_);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"f"});
  EXPECT_EQ(ReadWholeFile(disk_, P("f"), 3).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadWholeFile(disk_, P("g"), 3).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(WriteFileAtomic(disk_, P("nodir/f"), Bytes("x")).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace cairn
