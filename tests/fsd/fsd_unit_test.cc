// I/O-free parts of cairn-fsd, no mount: the inode table's lookup counting,
// the write buffer's block tracking (and its spill to a temp file), names,
// the errno mapping and the mount options.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "fsd/file_buffer.h"
#include "fsd/inode_table.h"
#include "fsd/names.h"
#include "fsd/options.h"
#include "fsd/query_file.h"

namespace cairn::fsd {
namespace {

NodeKey Doc(const std::string& c, const std::string& id) {
  return NodeKey{NodeKind::kDocument, c, id};
}

TEST(InodeTable, LookupCountsAndForget) {
  InodeTable t;
  EXPECT_EQ(t.Get(kRootInode)->kind, NodeKind::kRoot);
  const InodeId a = t.Lookup(Doc("c", "a"));
  EXPECT_NE(a, kRootInode);
  EXPECT_EQ(t.Lookup(Doc("c", "a")), a);  // stable while looked up
  EXPECT_EQ(t.LookupCount(a), 2u);
  EXPECT_FALSE(t.Forget(a, 1));
  EXPECT_TRUE(t.Forget(a, 1));
  EXPECT_FALSE(t.Get(a).has_value());
  const InodeId a2 = t.Lookup(Doc("c", "a"));
  EXPECT_NE(a2, a);  // a new number after forget
  EXPECT_EQ(t.size(), 2u);
  EXPECT_FALSE(t.Forget(kRootInode, 5));  // the root stays
}

TEST(InodeTable, ForgetUnderflowAborts) {
  InodeTable t;
  const InodeId a = t.Lookup(Doc("c", "a"));
  EXPECT_DEATH(t.Forget(a, 2), "forget");
}

TEST(InodeTable, RenameMovesAndDetaches) {
  InodeTable t;
  const InodeId a = t.Lookup(Doc("c", "a"));
  const InodeId b = t.Lookup(Doc("c", "b"));
  t.Rename(Doc("c", "a"), Doc("c", "b"));
  EXPECT_EQ(t.Get(a)->id, "b");
  EXPECT_EQ(*t.Find(Doc("c", "b")), a);
  EXPECT_FALSE(t.Find(Doc("c", "a")).has_value());
  EXPECT_TRUE(t.Detached(b));  // the replaced inode lives on by number
  EXPECT_EQ(t.Get(b)->id, "b");
  EXPECT_TRUE(t.Forget(b, 1));
  EXPECT_EQ(*t.Find(Doc("c", "b")), a);  // forgetting it does not touch the name
  t.Unlink(Doc("c", "b"));
  EXPECT_TRUE(t.Detached(a));
  EXPECT_FALSE(t.Find(Doc("c", "b")).has_value());
  t.Repoint(a, Doc("c", ".cairn-unlinked-x"));
  EXPECT_EQ(t.Get(a)->id, ".cairn-unlinked-x");
}

constexpr uint32_t kB = 16;  // a tiny block size for the buffer tests

std::string Bytes(size_t n, char c) { return std::string(n, c); }

TEST(FileBuffer, NewBodyWritesAndReads) {
  FileBuffer b(kB, 0, "/tmp", 1 << 20);
  EXPECT_FALSE(b.dirty());
  ASSERT_TRUE(b.Write(0, "hello").ok());
  ASSERT_TRUE(b.Write(40, "x").ok());  // a gap of zeros
  EXPECT_EQ(b.size(), 41u);
  EXPECT_EQ(b.block_count(), 3u);
  auto r = b.Read(0, 100);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "hello" + std::string(35, '\0') + "x");
  for (uint64_t k = 0; k < 3; ++k) EXPECT_FALSE(b.Keepable(k));
  EXPECT_TRUE(b.dirty());
}

TEST(FileBuffer, PartialWriteNeedsTheBaseBlock) {
  FileBuffer b(kB, 40, "/tmp", 1 << 20);          // blocks 0,1 full, 2 holds 8 bytes
  EXPECT_TRUE(b.MissingForWrite(0, kB).empty());  // whole block: nothing needed
  EXPECT_EQ(b.MissingForWrite(20, 4), (std::vector<uint64_t>{1}));
  EXPECT_FALSE(b.Write(20, "abcd").ok());
  ASSERT_TRUE(b.Fill(1, Bytes(kB, 'B')).ok());
  ASSERT_TRUE(b.Write(20, "abcd").ok());
  EXPECT_TRUE(b.Keepable(0));
  EXPECT_FALSE(b.Keepable(1));
  EXPECT_TRUE(b.Keepable(2));
  EXPECT_EQ(b.dirty_blocks(), (std::set<uint64_t>{1}));
  EXPECT_EQ(b.MissingForRead(0, 40), (std::vector<uint64_t>{0, 2}));
  auto blk = b.Block(1);
  ASSERT_TRUE(blk.ok());
  EXPECT_EQ(*blk, "BBBBabcdBBBBBBBB");
  // Growing re-sends the old last block (its length changes).
  EXPECT_EQ(b.MissingForWrite(40, 2), (std::vector<uint64_t>{2}));
  ASSERT_TRUE(b.Fill(2, Bytes(8, 'C')).ok());
  ASSERT_TRUE(b.Write(40, "zz").ok());
  EXPECT_FALSE(b.Keepable(2));
  EXPECT_EQ(b.size(), 42u);
}

TEST(FileBuffer, TruncateShrinksAndGrowsWithZeros) {
  FileBuffer b(kB, 40, "/tmp", 1 << 20);
  EXPECT_EQ(b.MissingForTruncate(20), (std::vector<uint64_t>{1}));
  ASSERT_TRUE(b.Fill(1, Bytes(kB, 'B')).ok());
  ASSERT_TRUE(b.Truncate(20).ok());
  EXPECT_EQ(b.size(), 20u);
  EXPECT_TRUE(b.Keepable(0));
  EXPECT_FALSE(b.Keepable(1));       // cut: re-sent
  ASSERT_TRUE(b.Truncate(36).ok());  // grow: zeros, not the old bytes
  auto r = b.Read(16, 20);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "BBBB" + std::string(16, '\0'));
  EXPECT_TRUE(b.MissingForRead(0, 36) == std::vector<uint64_t>{0});
  ASSERT_TRUE(b.Fill(0, Bytes(kB, 'A')).ok());
  b.MarkCommitted();
  EXPECT_FALSE(b.dirty());
  EXPECT_EQ(b.base_size(), 36u);
  EXPECT_TRUE(b.Keepable(2));
}

TEST(FileBuffer, SpillsToATempFile) {
  FileBuffer b(kB, 0, "/tmp", 64);
  ASSERT_TRUE(b.Write(0, Bytes(50, 'a')).ok());
  EXPECT_FALSE(b.spilled());
  ASSERT_TRUE(b.Write(50, Bytes(100, 'b')).ok());
  EXPECT_TRUE(b.spilled());
  auto r = b.Read(45, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "aaaaabbbbb");
  ASSERT_TRUE(b.Truncate(10).ok());
  ASSERT_TRUE(b.Truncate(20).ok());
  r = b.Read(0, 100);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Bytes(10, 'a') + std::string(10, '\0'));
}

TEST(Names, CollectionAndDocumentRules) {
  EXPECT_TRUE(CheckCollectionName("orders-2024_v1.x").ok());
  EXPECT_EQ(CheckCollectionName("").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckCollectionName(".dot").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckCollectionName("a b").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(NameErrno(CheckCollectionName(std::string(129, 'c'))), ENAMETOOLONG);
  EXPECT_TRUE(CheckDocumentName(std::string(255, 'd')).ok());
  EXPECT_TRUE(CheckDocumentName(".file.swp").ok());
  EXPECT_TRUE(CheckDocumentName("caf\xC3\xA9 \x01").ok());
  EXPECT_EQ(NameErrno(CheckDocumentName(std::string(256, 'd'))), ENAMETOOLONG);
  EXPECT_EQ(NameErrno(CheckDocumentName("..")), EINVAL);
  EXPECT_EQ(NameErrno(CheckDocumentName(".indexes")), EPERM);
  EXPECT_EQ(NameErrno(CheckDocumentName(".cairn-unlinked-3")), EPERM);
}

TEST(Names, ErrnoMapping) {
  EXPECT_EQ(ErrnoOf(Status::NotFound("x")), ENOENT);
  EXPECT_EQ(ErrnoOf(Status::AlreadyExists("x")), EEXIST);
  EXPECT_EQ(ErrnoOf(Status::NotEmpty("x")), ENOTEMPTY);
  EXPECT_EQ(ErrnoOf(Status::Timeout("x")), ETIMEDOUT);
  EXPECT_EQ(ErrnoOf(Status::Unavailable("x")), EHOSTUNREACH);
  EXPECT_EQ(ErrnoOf(Status::Corruption("x")), EIO);
  EXPECT_EQ(ErrnoOf(Status::LimitExceeded("x")), EFBIG);
}

TEST(QueryFiles, NamesAndResults) {
  EXPECT_EQ(DecodeQueryName("a == \"x%2Fy%2fz\""), "a == \"x/y/z\"");
  EXPECT_EQ(DecodeQueryName("s ^= \"100%25\" %20 %2"), "s ^= \"100%\" %20 %2");
  for (const std::string text : {"a/b%c", "%2F", "%25%", "plain"}) {
    EXPECT_EQ(DecodeQueryName(EncodeQueryName(text)), text) << text;
    EXPECT_EQ(EncodeQueryName(text).find('/'), std::string::npos);
  }
  // In memory, and spilled to an unlinked file above the threshold.
  std::vector<client::QueryRow> rows;
  for (int i = 0; i < 100; ++i)
    rows.push_back({"d" + std::to_string(i), "{\"n\":" + std::to_string(i) + "}"});
  std::string want;
  for (const auto& r : rows) want += r.json + "\n";
  for (const uint64_t spill_over : {uint64_t{1} << 20, uint64_t{100}}) {
    auto f = QueryFile::Make(rows, "/tmp", spill_over);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_EQ((*f)->spilled(), spill_over == 100);
    EXPECT_EQ((*f)->size(), want.size());
    std::string got, piece;
    for (uint64_t off = 0; off < want.size() + 10; off += 77) {
      ASSERT_TRUE((*f)->Read(off, 77, &piece).ok());
      got += piece;
    }
    EXPECT_EQ(got, want);
  }
  auto failed = QueryFile::Failed(Status::InvalidArgument("at column 3: x"));
  EXPECT_EQ(failed->size(), 0u);
  EXPECT_EQ(failed->error().message(), "at column 3: x");
}

TEST(MountOptions, OursAndFuses) {
  MountOptions m;
  ASSERT_TRUE(ParseMountOptions("allow_other,attr_timeout=2.5,timeout=7,cache_mib=8,"
                                "default_permissions,spill_dir=/x,prefetch=0",
                                &m)
                  .ok());
  EXPECT_DOUBLE_EQ(m.fs.attr_timeout_s, 2.5);
  EXPECT_EQ(m.timeout_s, 7);
  EXPECT_EQ(m.fs.cache_bytes, 8ull << 20);
  EXPECT_EQ(m.fs.spill_dir, "/x");
  EXPECT_EQ(m.fs.prefetch_blocks, 0u);
  EXPECT_EQ(m.fuse, (std::vector<std::string>{"allow_other", "default_permissions"}));
  EXPECT_FALSE(ParseMountOptions("timeout=0", &m).ok());
  EXPECT_FALSE(ParseMountOptions("attr_timeout=abc", &m).ok());
  EXPECT_FALSE(ParseMountOptions("spill_dir=rel", &m).ok());
}

}  // namespace
}  // namespace cairn::fsd
