// index_bench: secondary index build time, memory per entry and equality
// lookup latency (docs/indexes.md).
//
//   index_bench [--docs N] [--values V] [--partitions P] [--lookups L] [--dir D]
//
// Puts N small JSON documents ({"k":"v<i % V>","n":i,...}, ~80 bytes) into a
// DocStore on a raidlib volume in a temporary directory under D (/dev/shm), spread over P
// partitions, then defines an index on "k" and builds it unthrottled on this
// thread (the same code the chunk server's background builder runs). An
// equality lookup of one value on one partition returns about N / V / P ids
// (100 with the defaults). Reported: build time and docs/s, heap bytes per
// indexed document (glibc mallinfo2 before/after, so the store's own memory
// is not counted), and p50/p99/max of Lookup. Run it from a Release build:
//   cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release
//   ninja -C build-bench index_bench && build-bench/bench/index_bench
#include <malloc.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "chunkserver/doc_store.h"
#include "chunkserver/secondary_index.h"
#include "common/logging.h"
#include "common/random.h"
#include "query/index_key.h"
#include "raidlib/volume.h"

namespace cairn::bench {
namespace {

using Clock = std::chrono::steady_clock;
using chunkserver::DocStore;

struct Config {
  uint64_t docs = 1000000;
  uint64_t values = 1250;
  uint32_t partitions = 8;
  uint64_t lookups = 20000;
  std::string dir = "/dev/shm";
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string Body(uint64_t i, uint64_t values) {
  return "{\"k\":\"v" + std::to_string(i % values) + "\",\"n\":" + std::to_string(i) +
         ",\"tags\":[\"a\",\"b\"],\"name\":\"customer " + std::to_string(i * 7919 % 100000) + "\"}";
}

int Run(const Config& cfg) {
  SetLogLevel(LogLevel::kWarn);
  // The volume on tmpfs (/dev/shm by default): real files, cheap syncs.
  char tmpl[256];
  std::snprintf(tmpl, sizeof(tmpl), "%s/cairn-index-bench-XXXXXX", cfg.dir.c_str());
  if (::mkdtemp(tmpl) == nullptr) {
    std::fprintf(stderr, "mkdtemp in %s failed\n", cfg.dir.c_str());
    return 1;
  }
  const std::string root = tmpl;
  struct Cleanup {
    std::string root;
    ~Cleanup() { std::filesystem::remove_all(root); }
  } cleanup{root};
  raidlib::VolumeOptions vo;
  for (int d = 0; d < 3; ++d) {
    vo.disk_dirs.push_back(root + "/d" + std::to_string(d));
    std::filesystem::create_directories(vo.disk_dirs.back());
  }
  vo.max_unit_bytes = 64 << 10;  // small stripes: the load syncs after every put
  vo.segment_bytes = 64 << 20;
  if (Status s = raidlib::Volume::Create(vo); !s.ok()) {
    std::fprintf(stderr, "volume create: %s\n", s.ToString().c_str());
    return 1;
  }
  auto volume = raidlib::Volume::Open(vo);
  if (!volume.ok()) return 1;
  chunkserver::DocStoreOptions so;
  so.cache_bytes = 0;  // the build reads through the volume: measure the index, not a cache
  auto store_or = DocStore::Open(volume->get(), so);
  if (!store_or.ok()) return 1;
  DocStore* store = store_or->get();

  // Load: one writer per partition (LSNs are per partition), so that their
  // syncs are group-committed. A document's partition is a hash of its number.
  const auto load_start = Clock::now();
  auto writer = [&](uint32_t part) {
    uint64_t lsn = 0;
    for (uint64_t i = 0; i < cfg.docs; ++i) {
      uint64_t h = i * 0x9E3779B97F4A7C15ull;
      h ^= h >> 29;
      if (h % cfg.partitions != part) continue;
      const std::string body = Body(i, cfg.values);
      auto ref = store->WriteBlock(std::as_bytes(std::span(body)));
      if (!ref.ok()) std::abort();
      chunkserver::Mutation m;
      m.partition = PartitionId(part);
      m.lsn = Lsn(++lsn);
      m.epoch = Epoch(1);
      m.collection = "c";
      m.id = "doc-" + std::to_string(i);
      m.meta.size = body.size();
      m.blocks = {*ref};
      if (!store->Apply(m).ok()) std::abort();
    }
  };
  std::vector<std::thread> writers;
  for (uint32_t p = 0; p < cfg.partitions; ++p) writers.emplace_back(writer, p);
  for (std::thread& t : writers) t.join();
  std::printf("loaded %llu documents in %.1f s\n", static_cast<unsigned long long>(cfg.docs),
              Seconds(Clock::now() - load_start));

  chunkserver::SecondaryIndexOptions io;
  io.background = false;
  io.build_docs_per_second = 0;
  const size_t heap_before = mallinfo2().uordblks;
  chunkserver::SecondaryIndex index(store, io);
  index.SetDefinitions({{"c", {"k"}}});
  const auto build_start = Clock::now();
  index.BuildPending();
  const double build_s = Seconds(Clock::now() - build_start);
  const size_t heap_after = mallinfo2().uordblks;
  const auto progress = index.Progress();
  if (progress.size() != 1 || !progress[0].ready) {
    std::fprintf(stderr, "index not ready: %s\n",
                 progress.empty() ? "none" : progress[0].error.c_str());
    return 1;
  }
  const uint64_t entries = progress[0].entries;
  std::printf("build: %llu entries in %.2f s (%.0f docs/s)\n",
              static_cast<unsigned long long>(entries), build_s,
              static_cast<double>(cfg.docs) / build_s);
  std::printf("memory: %.0f heap bytes per entry (%.1f MiB)\n",
              static_cast<double>(heap_after - heap_before) / static_cast<double>(entries),
              static_cast<double>(heap_after - heap_before) / (1 << 20));

  Random rnd(42);
  std::vector<double> us;
  us.reserve(cfg.lookups);
  uint64_t ids = 0;
  query::IndexLookup l;
  l.path = *query::ParseIndexPath("k");
  for (uint64_t i = 0; i < cfg.lookups; ++i) {
    l.points = {query::Value::Str("v" + std::to_string(rnd.Uniform(cfg.values)))};
    const PartitionId p(static_cast<uint32_t>(rnd.Uniform(cfg.partitions)));
    const auto t0 = Clock::now();
    auto r = index.Lookup(p, "c", l);
    us.push_back(Seconds(Clock::now() - t0) * 1e6);
    if (!r.ok()) std::abort();
    ids += r->size();
  }
  std::sort(us.begin(), us.end());
  auto pct = [&](double q) {
    return us[static_cast<size_t>(q * static_cast<double>(us.size() - 1))];
  };
  std::printf("equality lookup: %.1f ids on average; p50 %.1f us, p99 %.1f us, max %.1f us\n",
              static_cast<double>(ids) / static_cast<double>(cfg.lookups), pct(0.5), pct(0.99),
              us.back());
  return 0;
}

}  // namespace
}  // namespace cairn::bench

int main(int argc, char** argv) {
  cairn::bench::Config cfg;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const uint64_t v = std::strtoull(argv[i + 1], nullptr, 10);
    if (flag == "--docs") {
      cfg.docs = v;
    } else if (flag == "--values") {
      cfg.values = v;
    } else if (flag == "--partitions") {
      cfg.partitions = static_cast<uint32_t>(v);
    } else if (flag == "--lookups") {
      cfg.lookups = v;
    } else if (flag == "--dir") {
      cfg.dir = argv[i + 1];
    } else {
      std::fprintf(stderr,
                   "usage: index_bench [--docs N] [--values V] [--partitions P] "
                   "[--lookups L] [--dir D]\n");
      return 64;
    }
  }
  return cairn::bench::Run(cfg);
}
