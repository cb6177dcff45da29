// A 1 GiB file written through a real cairn-fsd mount (sequential 1 MiB
// writes: full blocks stream out while writing, the buffer spills to a temp
// file) and read back with random ranged reads, checked byte-exact against
// the same deterministic generator. Label "large" (~30-45 s here).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "tests/common/test_seeds.h"
#include "tests/fsd/fsd_harness.h"
#include "tests/integration/integration_util.h"

namespace cairn::test {
namespace {

#ifndef CAIRN_FSD_LARGE_MIB
#define CAIRN_FSD_LARGE_MIB 1024
#endif
constexpr uint64_t kMiB = 1u << 20;
constexpr uint64_t kSize = CAIRN_FSD_LARGE_MIB * kMiB;
constexpr uint64_t kSeed = 4242;

// The byte range [off, off+len) of the file: MiB k is MakeBody(kSeed, k, 1 MiB).
std::string Expected(uint64_t off, uint64_t len) {
  std::string out;
  while (len > 0) {
    const uint64_t k = off / kMiB, in = off % kMiB;
    const std::string chunk = MakeBody(kSeed, k, kMiB);
    const uint64_t n = std::min(len, kMiB - in);
    out.append(chunk, in, n);
    off += n;
    len -= n;
  }
  return out;
}

TEST(FsdLarge, OneGibWrittenAndReadBackWithRandomRanges) {
  QuietLogs quiet;
  ClusterOptions o;
  o.chunk_servers = 2;
  o.partitions = 8;
  auto c = Cluster::Start(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto m = FsdMount::Start(**c, {"timeout=60"});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  FsdMount& mount = **m;
  const std::string dir = mount.path() + "/large";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  const std::string f = dir + "/blob";
  const auto t0 = std::chrono::steady_clock::now();
  int fd = ::open(f.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  for (uint64_t k = 0; k < kSize / kMiB; ++k) {
    const std::string chunk = MakeBody(kSeed, k, kMiB);
    ASSERT_EQ(::write(fd, chunk.data(), chunk.size()), static_cast<ssize_t>(kMiB))
        << std::strerror(errno);
  }
  ASSERT_EQ(::close(fd), 0) << std::strerror(errno) << "\n" << mount.Log();
  const auto t1 = std::chrono::steady_clock::now();
  struct stat st;
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kSize);
  fd = ::open(f.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  uint64_t state = kSeed;
  for (int i = 0; i < 200; ++i) {
    const uint64_t len = 1 + SplitMix64(state) % (3 * kMiB);
    const uint64_t off = SplitMix64(state) % (kSize - len);
    std::string got(len, '\0');
    uint64_t done = 0;
    while (done < len) {
      const ssize_t n = ::pread(fd, got.data() + done, len - done, static_cast<off_t>(off + done));
      ASSERT_GT(n, 0) << std::strerror(errno);
      done += static_cast<uint64_t>(n);
    }
    ASSERT_TRUE(got == Expected(off, len)) << "range " << off << "+" << len;
  }
  // The last bytes, and a read past the end.
  std::string tail(10, '\0');
  EXPECT_EQ(::pread(fd, tail.data(), 10, static_cast<off_t>(kSize - 5)), 5);
  EXPECT_EQ(tail.substr(0, 5), Expected(kSize - 5, 5));
  ::close(fd);
  // O_DIRECT 4 KiB random reads (a database's pattern): the kernel passes
  // each one through, and fsd fetches just those bytes (fs.cc, Read).
  fd = ::open(f.c_str(), O_RDONLY | O_DIRECT);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  void* raw = nullptr;
  ASSERT_EQ(::posix_memalign(&raw, 4096, 4096), 0);
  std::unique_ptr<char, decltype(&std::free)> page(static_cast<char*>(raw), &std::free);
  for (int i = 0; i < 500; ++i) {
    const uint64_t off = (SplitMix64(state) % (kSize / 4096)) * 4096;
    ASSERT_EQ(::pread(fd, page.get(), 4096, static_cast<off_t>(off)), 4096) << std::strerror(errno);
    ASSERT_TRUE(std::string(page.get(), 4096) == Expected(off, 4096)) << "O_DIRECT page " << off;
  }
  ::close(fd);
  const auto t2 = std::chrono::steady_clock::now();
  std::printf("write+close %.1f s, 200 random reads %.1f s\n",
              std::chrono::duration<double>(t1 - t0).count(),
              std::chrono::duration<double>(t2 - t1).count());
}

}  // namespace
}  // namespace cairn::test
