// Helpers for the document store tests: seeds, a volume + store over a
// MemDisk reached through a CrashPointDisk, deterministic document bodies,
// and a simple in-memory model of what the store must hold.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "chunkserver/doc_store.h"
#include "common/checksum.h"
#include "common/logging.h"
#include "common/mem_disk.h"
#include "common/random.h"
#include "raidlib/volume.h"
#include "tests/common/crash_point_disk.h"
#include "tests/common/test_seeds.h"

namespace cairn::chunkserver::dtest {

using CrashMode = MemDisk::CrashMode;

using cairn::test::QuietLogs;
using cairn::test::Seeds;
using cairn::test::SeedTrace;

// ---- deterministic bodies ----

// One block of a model body: its bytes are a function of (seed, len, kind).
struct ModelBlock {
  uint64_t seed = 0;
  uint32_t len = 0;
  bool compressible = false;
};

// Writes bytes [from, from + out.size()) of the block into out.
inline void FillBlock(const ModelBlock& b, uint64_t from, std::span<std::byte> out) {
  if (b.compressible) {
    // Text-like: a short phrase repeated, varied by the seed.
    static const char kWords[] = "the quick brown fox jumps over the lazy dog 0123456789 ";
    const uint64_t shift = b.seed % (sizeof(kWords) - 1);
    for (size_t i = 0; i < out.size(); ++i) {
      const uint64_t pos = from + i;
      char c = kWords[(pos + shift) % (sizeof(kWords) - 1)];
      if (pos % 997 == 0) c = static_cast<char>('A' + (b.seed + pos / 997) % 26);
      out[i] = static_cast<std::byte>(c);
    }
    return;
  }
  for (size_t i = 0; i < out.size();) {
    const uint64_t word = (from + i) / 8;
    Random r(b.seed * 0x9E3779B97F4A7C15ull + word);
    const uint64_t v = r.Next();
    for (uint64_t k = (from + i) % 8; k < 8 && i < out.size(); ++k, ++i) {
      out[i] = static_cast<std::byte>((v >> (8 * k)) & 0xFF);
    }
  }
}

inline std::vector<std::byte> BlockBytes(const ModelBlock& b) {
  std::vector<std::byte> out(b.len);
  FillBlock(b, 0, out);
  return out;
}

// ---- the model ----

struct ModelDoc {
  uint64_t version = 0;
  DocMetadata meta;
  uint64_t body_hash = 0;
  std::vector<ModelBlock> blocks;
};

using Key = std::tuple<uint32_t, std::string, std::string>;  // partition, collection, id

struct Model {
  std::map<Key, ModelDoc> docs;
  std::map<uint32_t, uint64_t> last_lsn;  // per partition

  uint64_t NextLsn(uint32_t p) const {
    auto it = last_lsn.find(p);
    return (it == last_lsn.end() ? 0 : it->second) + 1;
  }
};

// Bytes [offset, offset + out.size()) of a model body.
inline void ModelRead(const ModelDoc& d, uint64_t offset, std::span<std::byte> out) {
  uint64_t start = 0;
  size_t done = 0;
  for (const ModelBlock& b : d.blocks) {
    const uint64_t end = start + b.len;
    if (end > offset + done && done < out.size()) {
      const uint64_t from = offset + done - start;
      const size_t n = static_cast<size_t>(std::min<uint64_t>(b.len - from, out.size() - done));
      FillBlock(b, from, out.subspan(done, n));
      done += n;
    }
    start = end;
  }
}

inline uint64_t ModelSize(const std::vector<ModelBlock>& blocks) {
  uint64_t s = 0;
  for (const ModelBlock& b : blocks) s += b.len;
  return s;
}

// A body hash the tests can compute from the block list alone.
inline uint64_t ModelBodyHash(const std::vector<ModelBlock>& blocks) {
  uint64_t h = 0x1234;
  for (const ModelBlock& b : blocks) {
    const uint64_t v[3] = {b.seed, b.len, b.compressible ? 1u : 0u};
    h = Checksum64(v, sizeof(v), h);
  }
  return h;
}

// The block list as text ("seed:len:c;..."), kept in an attribute of every
// test document so a concurrent reader can tell what its bytes must be.
inline std::string DescribeBlocks(const std::vector<ModelBlock>& blocks) {
  std::string out;
  for (const ModelBlock& b : blocks) {
    out += std::to_string(b.seed) + ":" + std::to_string(b.len) + ":" +
           (b.compressible ? "c" : "r") + ";";
  }
  return out;
}

inline std::vector<ModelBlock> ParseBlocks(const std::string& text) {
  std::vector<ModelBlock> out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t c1 = text.find(':', at);
    const size_t c2 = text.find(':', c1 + 1);
    const size_t end = text.find(';', c2 + 1);
    ModelBlock b;
    b.seed = std::stoull(text.substr(at, c1 - at));
    b.len = static_cast<uint32_t>(std::stoul(text.substr(c1 + 1, c2 - c1 - 1)));
    b.compressible = text[c2 + 1] == 'c';
    out.push_back(b);
    at = end + 1;
  }
  return out;
}

// ---- a volume and a store over one MemDisk ----
struct RigOptions {
  uint32_t disks = 3;
  uint32_t max_unit_bytes = 16 << 10;
  uint64_t segment_bytes = 256 << 10;
  uint64_t max_pending_bytes = 256 << 10;
  DocStoreOptions store;
};

class StoreRig {
 public:
  explicit StoreRig(RigOptions o) : o_(std::move(o)) {
    for (uint32_t i = 0; i < o_.disks; ++i) dirs_.push_back("/d" + std::to_string(i));
  }
  ~StoreRig() { Close(/*cut_power=*/true); }
  StoreRig(const StoreRig&) = delete;
  StoreRig& operator=(const StoreRig&) = delete;

  raidlib::VolumeOptions VolumeOptionsFor(Disk* disk) const {
    raidlib::VolumeOptions v;
    v.disk_dirs = dirs_;
    v.max_unit_bytes = o_.max_unit_bytes;
    v.segment_bytes = o_.segment_bytes;
    v.max_pending_bytes = o_.max_pending_bytes;
    v.disk = disk;
    return v;
  }

  Status Create() { return raidlib::Volume::Create(VolumeOptionsFor(&mem_)); }

  // A power cut armed at the n-th mutating disk call (see CrashPointDisk).
  struct Arm {
    uint64_t op = 0;
    bool after = false;
    CrashMode mode = CrashMode::kDropUnsynced;
    uint64_t seed = 0;
  };

  // Opens volume and store through a fresh CrashPointDisk, with a power cut
  // armed during the open if `arm` is given.
  Status Open(std::optional<Arm> arm = std::nullopt) {
    Close(/*cut_power=*/false);
    cdisk_ = std::make_unique<testutil::CrashPointDisk>(&mem_);
    if (arm) cdisk_->ArmCrash(arm->op, arm->after, arm->mode, arm->seed);
    auto v = raidlib::Volume::Open(VolumeOptionsFor(cdisk_.get()));
    if (!v.ok()) return v.status();
    vol_ = std::move(v).value();
    auto s = DocStore::Open(vol_.get(), o_.store);
    if (!s.ok()) return s.status();
    store_ = std::move(s).value();
    return Status::Ok();
  }

  // Closes without a crash (unsynced bytes stay in the MemDisk), or cuts the
  // power first so that nothing more reaches it.
  void Close(bool cut_power) {
    if (cut_power && cdisk_) cdisk_->CutPower(CrashMode::kDropUnsynced, 0);
    store_.reset();
    vol_.reset();
  }

  // A power cut now: the MemDisk keeps what `mode` says; everything is closed.
  void Crash(CrashMode mode, uint64_t seed) {
    if (cdisk_) cdisk_->CutPower(mode, seed);
    Close(false);
  }

  DocStore* store() { return store_.get(); }
  raidlib::Volume* volume() { return vol_.get(); }
  testutil::CrashPointDisk* disk() { return cdisk_.get(); }
  MemDisk* mem() { return &mem_; }
  RigOptions& options() { return o_; }

 private:
  RigOptions o_;
  std::vector<std::string> dirs_;
  MemDisk mem_;
  std::unique_ptr<testutil::CrashPointDisk> cdisk_;
  std::unique_ptr<raidlib::Volume> vol_;
  std::unique_ptr<DocStore> store_;
};

// ---- driving the store ----

// Writes the blocks of `blocks` whose index is in `fresh` (all when empty
// means all of them) and reuses `kept` refs for the rest, in order.
inline Result<std::vector<BlockRef>> WriteBlocks(DocStore* store,
                                                 const std::vector<ModelBlock>& blocks,
                                                 const std::vector<std::optional<BlockRef>>& kept) {
  std::vector<BlockRef> refs;
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (i < kept.size() && kept[i].has_value()) {
      refs.push_back(*kept[i]);
      continue;
    }
    std::vector<std::byte> bytes = BlockBytes(blocks[i]);
    ASSIGN_OR_RETURN(BlockRef r, store->WriteBlock(bytes));
    refs.push_back(r);
  }
  return refs;
}

inline Mutation PutMutation(uint32_t partition, uint64_t lsn, const std::string& collection,
                            const std::string& id, const std::vector<ModelBlock>& blocks,
                            std::vector<BlockRef> refs) {
  Mutation m;
  m.type = MutationType::kPut;
  m.partition = PartitionId(partition);
  m.lsn = Lsn(lsn);
  m.epoch = Epoch(1);
  m.collection = collection;
  m.id = id;
  m.meta.size = ModelSize(blocks);
  m.meta.mtime_ns = static_cast<int64_t>(lsn) * 1000;
  m.meta.ctime_ns = static_cast<int64_t>(lsn) * 1000 + 1;
  m.meta.mode = 0644;
  m.meta.uid = 1000;
  m.meta.gid = 100 + partition;
  m.meta.xattrs["user.lsn"] = std::to_string(lsn);
  m.meta.xattrs["user.model"] = DescribeBlocks(blocks);
  m.body_hash = ModelBodyHash(blocks);
  m.blocks = std::move(refs);
  return m;
}

// Compares one document of the store with the model, bytes included.
inline void ExpectDocMatches(DocStore* store, const Key& key, const ModelDoc& want,
                             const std::string& ctx) {
  const auto& [p, c, id] = key;
  auto got = store->Lookup(PartitionId(p), c, id);
  ASSERT_TRUE(got.ok()) << ctx << ": " << got.status().ToString();
  ASSERT_TRUE(got->has_value()) << ctx << ": missing " << c << "/" << id << " in partition " << p;
  const DocEntry& e = **got;
  EXPECT_EQ(e.version, want.version) << ctx << ": " << c << "/" << id;
  EXPECT_EQ(e.meta, want.meta) << ctx << ": " << c << "/" << id;
  EXPECT_EQ(e.body_hash, want.body_hash) << ctx << ": " << c << "/" << id;
  ASSERT_EQ(e.blocks.size(), want.blocks.size()) << ctx << ": " << c << "/" << id;
  std::vector<std::byte> have(static_cast<size_t>(e.meta.size));
  std::vector<std::byte> expect(have.size());
  Status s = store->ReadRange(e, 0, have);
  ASSERT_TRUE(s.ok()) << ctx << ": reading " << c << "/" << id << ": " << s.ToString();
  ModelRead(want, 0, expect);
  ASSERT_TRUE(have == expect) << ctx << ": bytes differ for " << c << "/" << id;
}

// Everything in the model is in the store with its bytes, and nothing else.
inline void ExpectStoreMatches(DocStore* store, const Model& model, const std::string& ctx) {
  std::map<std::pair<uint32_t, std::string>, std::vector<std::string>> ids;
  for (const auto& [key, doc] : model.docs) {
    ExpectDocMatches(store, key, doc, ctx);
    if (::testing::Test::HasFatalFailure()) return;
    ids[{std::get<0>(key), std::get<1>(key)}].push_back(std::get<2>(key));
  }
  EXPECT_EQ(store->stats().documents, model.docs.size()) << ctx;
  for (const auto& [pc, want] : ids) {
    std::vector<std::string> got;
    std::string after;
    for (;;) {
      auto page = store->List(PartitionId(pc.first), pc.second, after, 7);
      ASSERT_TRUE(page.ok()) << ctx << ": " << page.status().ToString();
      for (const ListItem& it : page->items) got.push_back(it.id);
      if (!page->more) break;
      after = page->items.back().id;
    }
    EXPECT_EQ(got, want) << ctx << ": listing of " << pc.second << " in partition " << pc.first;
  }
  for (const auto& [p, lsn] : model.last_lsn) {
    EXPECT_EQ(store->partition_state(PartitionId(p)).last_lsn.value(), lsn)
        << ctx << ": last LSN of partition " << p;
  }
}

}  // namespace cairn::chunkserver::dtest
