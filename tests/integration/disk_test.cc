// A chunk server's disk directory corrupted (bytes flipped in its files while
// the server is stopped) or removed (while it runs, and while it is stopped):
// every read still returns the right bytes. One disk per server at a time:
// the fault budget of a raidlib volume (DESIGN.md).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/test_seeds.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/integration_util.h"

namespace cairn::test {
namespace {

namespace fs = std::filesystem;

// Flips `flips_per_file` bytes at seeded offsets in every regular file under
// `dir` (the segment files only, unless `superblock_too`: a bad superblock
// makes the whole disk unusable, a bad segment byte is found by a checksum).
// Returns how many bytes were flipped.
size_t CorruptFilesUnder(const std::string& dir, uint64_t seed, int flips_per_file,
                         bool superblock_too) {
  uint64_t rng = seed;
  size_t flipped = 0;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.file_size() == 0) continue;
    if (!superblock_too && e.path().filename().string().rfind("seg-", 0) != 0) continue;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    const uint64_t size = e.file_size();
    for (int k = 0; k < flips_per_file; ++k) {
      const auto off = static_cast<std::streamoff>(SplitMix64(rng) % size);
      char c = 0;
      f.seekg(off);
      f.read(&c, 1);
      c = static_cast<char>(c ^ 0x5A);
      f.seekp(off);
      f.write(&c, 1);
      ++flipped;
    }
  }
  return flipped;
}

class IntegrationDisks : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterOptions o;
    o.chunk_servers = 2;
    o.partitions = 8;
    auto c = Cluster::Start(o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = std::move(c).value();
    auto cl = cluster_->NewClient();
    ASSERT_TRUE(cl.ok()) << cl.status().ToString();
    client_ = std::move(cl).value();
    IT_ASSERT_OK(client_->CreateCollection("disks"));
    // Incompressible bodies, a few of several blocks, so that stripes cover
    // every disk.
    for (uint64_t i = 0; i < 120; ++i) {
      size_t size = static_cast<size_t>(1000 + (i * 7919) % 200000);
      if (i % 40 == 0) size = 3 * (1u << 20) + 777;
      docs_["d" + std::to_string(i)] = MakeBody(4242, i, size);
    }
    for (const auto& [id, body] : docs_) {
      auto r = client_->Put("disks", id, body);
      ASSERT_TRUE(r.ok()) << id << ": " << r.status().ToString();
    }
  }

  void ExpectAllReadable(const std::string& when) {
    for (const auto& [id, body] : docs_) {
      std::string got;
      auto r = client_->Get("disks", id, client::StringWriter(&got));
      EXPECT_TRUE(r.ok()) << when << ": " << id << ": " << r.status().ToString();
      EXPECT_TRUE(got == body) << when << ": " << id << " differs (" << got.size()
                               << " bytes, want " << body.size() << ")";
    }
    // A ranged read across a block boundary of a multi-block document.
    std::string got;
    client::ReadOptions ro;
    ro.offset = (1u << 20) - 10;
    ro.length = 20;
    auto r = client_->Get("disks", "d0", client::StringWriter(&got), ro);
    EXPECT_TRUE(r.ok()) << when << ": " << r.status().ToString();
    EXPECT_EQ(got, docs_["d0"].substr((1u << 20) - 10, 20)) << when;
  }

  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<client::Client> client_;
  std::map<std::string, std::string> docs_;
};

TEST_F(IntegrationDisks, SegmentsCorruptedWhileStopped) {
  ExpectAllReadable("before");
  IT_ASSERT_OK(cluster_->StopChunkServer(0));
  const size_t flipped = CorruptFilesUnder(cluster_->DiskDirs(0)[1], 99, 200, false);
  EXPECT_GT(flipped, 0u);
  IT_ASSERT_OK(cluster_->RestartChunkServer(0));
  ExpectAllReadable("after corrupting the segments of cs0/disk1");
  // The damage was seen (and is reported in the map's disk health).
  int64_t checksum_errors = 0;
  for (int k = 0; k < 50 && checksum_errors == 0; ++k) {
    auto map = client_->GetClusterMap();
    ASSERT_TRUE(map.ok()) << map.status().ToString();
    for (const client::NodeStatus& n : map->nodes) {
      if (n.name != "cs0") continue;
      for (const client::DiskStatus& d : n.disks) checksum_errors += d.checksum_errors;
    }
    if (checksum_errors == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GT(checksum_errors, 0) << "cs0 read corrupted units but reports no checksum error";
  // New writes work and read back too.
  IT_EXPECT_OK(client_->Put("disks", "after", "written after the corruption").status());
  std::string got;
  IT_EXPECT_OK(client_->Get("disks", "after", client::StringWriter(&got)).status());
  EXPECT_EQ(got, "written after the corruption");
  // And again after another restart (repairs, if any, were written right).
  IT_ASSERT_OK(cluster_->StopChunkServer(0));
  IT_ASSERT_OK(cluster_->RestartChunkServer(0));
  ExpectAllReadable("after a second restart");
  IT_EXPECT_OK(cluster_->CheckAllRunning());
}

TEST_F(IntegrationDisks, WholeDiskCorruptedWhileStopped) {
  IT_ASSERT_OK(cluster_->StopChunkServer(1));
  EXPECT_GT(CorruptFilesUnder(cluster_->DiskDirs(1)[3], 7, 64, true), 0u);
  IT_ASSERT_OK(cluster_->RestartChunkServer(1));
  ExpectAllReadable("after corrupting every file of cs1/disk3");
  IT_EXPECT_OK(client_->Put("disks", "after", "x").status());
  IT_EXPECT_OK(cluster_->CheckAllRunning());
}

TEST_F(IntegrationDisks, RemovedWhileRunning) {
  ExpectAllReadable("before");
  std::error_code ec;
  fs::remove_all(cluster_->DiskDirs(1)[2], ec);
  ASSERT_FALSE(ec) << ec.message();
  ExpectAllReadable("after removing cs1/disk2 while it runs");
  IT_EXPECT_OK(client_->Put("disks", "degraded", MakeBody(1, 1, 300000)).status());
  std::string got;
  IT_EXPECT_OK(client_->Get("disks", "degraded", client::StringWriter(&got)).status());
  EXPECT_TRUE(got == MakeBody(1, 1, 300000));
  IT_EXPECT_OK(cluster_->CheckAllRunning());
  // Restarted without the directory: still readable.
  IT_ASSERT_OK(cluster_->StopChunkServer(1));
  IT_ASSERT_OK(cluster_->RestartChunkServer(1));
  ExpectAllReadable("after restarting cs1 without disk2");
  IT_EXPECT_OK(cluster_->CheckAllRunning());
}

TEST_F(IntegrationDisks, RemovedWhileStopped) {
  IT_ASSERT_OK(cluster_->KillChunkServer(0));
  std::error_code ec;
  fs::remove_all(cluster_->DiskDirs(0)[0], ec);
  ASSERT_FALSE(ec) << ec.message();
  IT_ASSERT_OK(cluster_->RestartChunkServer(0));
  ExpectAllReadable("after removing cs0/disk0 while it was down");
  IT_EXPECT_OK(cluster_->CheckAllRunning());
}

}  // namespace
}  // namespace cairn::test
