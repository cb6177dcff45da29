// A random workload over a DocStore that keeps a Model of what must be
// there: puts of new documents, copy-on-write updates, metadata-only
// updates, deletes, renames, expected-version conflicts and retried request
// ids. Each step checks the store's answer against the model. If a step is
// cut by a power failure, the mutation it was applying is remembered as in
// flight: after reopen, the partition's last LSN tells whether it made it.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tests/chunkserver/doc_test_util.h"

namespace cairn::chunkserver::dtest {

struct WorkloadOptions {
  uint32_t partition_base = 0;  // partitions used: base .. base + partitions - 1
  uint32_t partitions = 2;
  uint32_t ids_per_collection = 12;
  uint32_t max_blocks = 4;
  uint32_t block_bytes = 16 << 10;
};

class Workload {
 public:
  Workload(uint64_t seed, WorkloadOptions o, Model* model)
      : rng_(seed), seed_(seed), o_(o), model_(model) {}

  // One random step. Returns false if the store failed in a way the model does
  // not explain (the test has already recorded a failure) or the disk lost
  // power (crashed() on the rig tells which).
  bool Step(DocStore* store) {
    const uint32_t p = o_.partition_base + static_cast<uint32_t>(rng_.Uniform(o_.partitions));
    const std::string c = rng_.OneIn(2) ? "alpha" : "beta.docs";
    const std::string id = RandomId();
    const Key key{p, c, id};
    const auto existing = model_->docs.find(key);
    const bool exists = existing != model_->docs.end();
    const uint64_t r = rng_.Uniform(100);
    if (r < 30 || !exists) return PutNew(store, key);
    if (r < 50) return Update(store, key, /*touch_only=*/false);
    if (r < 58) return Update(store, key, /*touch_only=*/true);
    if (r < 70) return Delete(store, key);
    if (r < 82) return Rename(store, key);
    if (r < 90) return Conflict(store, key);
    return Retry(store);
  }

  // Called after a reopen: folds the in-flight mutation into the model if
  // the store has it.
  void ResolveInFlight(DocStore* store) {
    if (!in_flight_) return;
    const uint64_t last =
        store->partition_state(PartitionId(in_flight_->partition)).last_lsn.value();
    if (last == in_flight_->lsn) {
      in_flight_->apply();
      model_->last_lsn[in_flight_->partition] = in_flight_->lsn;
      done_.push_back(in_flight_->retry);
    }
    in_flight_.reset();
  }

  uint64_t steps() const { return steps_; }
  uint64_t unavailable() const { return unavailable_; }
  // With compactions running concurrently, a put naming blocks looked up
  // before several compactions may be refused with Unavailable (retryable).
  void set_tolerate_unavailable(bool on) { tolerate_unavailable_ = on; }
  // Tells whether the disk has lost power: then any error is expected.
  void set_crash_probe(std::function<bool()> probe) { crashed_ = std::move(probe); }

 private:
  struct Retryable {
    Mutation m;
    ApplyResult result;
  };
  struct InFlight {
    uint32_t partition = 0;
    uint64_t lsn = 0;
    std::function<void()> apply;
    Retryable retry;
  };

  std::string RandomId() {
    const uint64_t n = rng_.Uniform(o_.ids_per_collection);
    return n % 3 == 0 ? "doc-" + std::to_string(n) : "file " + std::to_string(n) + ".json";
  }

  std::vector<ModelBlock> RandomBlocks(uint32_t min_blocks) {
    std::vector<ModelBlock> out;
    const uint32_t n =
        min_blocks + static_cast<uint32_t>(rng_.Uniform(o_.max_blocks + 1 - min_blocks));
    for (uint32_t i = 0; i < n; ++i) out.push_back(RandomBlock());
    return out;
  }

  ModelBlock RandomBlock() {
    ModelBlock b;
    b.seed = rng_.Next();
    b.len = 1 + static_cast<uint32_t>(rng_.Uniform(o_.block_bytes));
    b.compressible = rng_.OneIn(2);
    return b;
  }

  RequestId NextRequest() { return RequestId{seed_, 7, ++requests_}; }

  // Runs m; on success folds `apply` into the model. `expect` is the code
  // the model predicts.
  bool Run(DocStore* store, Mutation m, StatusCode expect,
           const std::function<void(uint64_t)>& apply) {
    ++steps_;
    const uint32_t p = m.partition.value();
    if (expect == StatusCode::kOk) {
      in_flight_ = InFlight{p, m.lsn.value(), [apply, v = m.lsn.value()] { apply(v); },
                            Retryable{m, ApplyResult{m.lsn, m.lsn.value(), false}}};
    }
    Result<ApplyResult> r = store->Apply(m);
    if (!r.ok()) {
      if (r.status().code() == expect) {
        in_flight_.reset();
        return true;
      }
      if (crashed_ && crashed_()) return false;  // power cut: the caller reopens
      if (tolerate_unavailable_ && r.status().code() == StatusCode::kUnavailable &&
          !m.blocks.empty()) {
        // Blocks we looked up moved under a concurrent compaction: the
        // contract is to look up again; this step simply did not happen.
        in_flight_.reset();
        ++unavailable_;
        return true;
      }
      ADD_FAILURE() << "Apply of LSN " << m.lsn.value() << ": " << r.status().ToString()
                    << ", model expected " << StatusCodeName(expect);
      return false;
    }
    if (expect != StatusCode::kOk) {
      ADD_FAILURE() << "Apply of LSN " << m.lsn.value() << " succeeded, model expected "
                    << StatusCodeName(expect);
      return false;
    }
    EXPECT_EQ(r->version, m.lsn.value());
    EXPECT_FALSE(r->deduplicated);
    in_flight_.reset();
    apply(r->version);
    model_->last_lsn[p] = m.lsn.value();
    done_.push_back(Retryable{m, *r});
    if (done_.size() > 16) done_.pop_front();
    return true;
  }

  bool PutNew(DocStore* store, const Key& key) {
    const auto& [p, c, id] = key;
    std::vector<ModelBlock> blocks = RandomBlocks(0);
    auto refs = WriteBlocks(store, blocks, {});
    if (!refs.ok()) return false;
    Mutation m = PutMutation(p, model_->NextLsn(p), c, id, blocks, *refs);
    m.request_id = NextRequest();
    const bool exists = model_->docs.count(key) != 0;
    m.expected_version = exists ? kAnyVersion : (rng_.OneIn(2) ? kMustNotExist : kAnyVersion);
    ModelDoc doc{0, m.meta, m.body_hash, blocks};
    return Run(store, m, StatusCode::kOk, [this, key, doc](uint64_t v) mutable {
      doc.version = v;
      model_->docs[key] = doc;
    });
  }

  // Copy-on-write: keeps the refs of unchanged blocks.
  bool Update(DocStore* store, const Key& key, bool touch_only) {
    const auto& [p, c, id] = key;
    const ModelDoc& cur = model_->docs.at(key);
    auto entry = store->Lookup(PartitionId(p), c, id);
    if (!entry.ok() || !entry->has_value()) {
      ADD_FAILURE() << "lookup of " << c << "/" << id << " before update failed";
      return false;
    }
    std::vector<ModelBlock> blocks = cur.blocks;
    std::vector<std::optional<BlockRef>> kept((*entry)->blocks.begin(), (*entry)->blocks.end());
    if (!touch_only) {
      const uint64_t how = rng_.Uniform(3);
      if (how == 0 || blocks.empty()) {
        blocks.push_back(RandomBlock());
      } else if (how == 1) {
        const size_t i = static_cast<size_t>(rng_.Uniform(blocks.size()));
        blocks[i] = RandomBlock();
        kept[i].reset();
      } else {
        blocks.pop_back();
        kept.pop_back();
      }
    }
    auto refs = WriteBlocks(store, blocks, kept);
    if (!refs.ok()) return false;
    Mutation m = PutMutation(p, model_->NextLsn(p), c, id, blocks, *refs);
    m.request_id = NextRequest();
    m.expected_version = rng_.OneIn(2) ? static_cast<int64_t>(cur.version) : kAnyVersion;
    ModelDoc doc{0, m.meta, m.body_hash, blocks};
    return Run(store, m, StatusCode::kOk, [this, key, doc](uint64_t v) mutable {
      doc.version = v;
      model_->docs[key] = doc;
    });
  }

  bool Delete(DocStore* store, const Key& key) {
    const auto& [p, c, id] = key;
    Mutation m;
    m.type = MutationType::kDelete;
    m.partition = PartitionId(p);
    m.lsn = Lsn(model_->NextLsn(p));
    m.epoch = Epoch(1);
    m.request_id = NextRequest();
    m.collection = c;
    m.id = id;
    m.expected_version =
        rng_.OneIn(2) ? static_cast<int64_t>(model_->docs.at(key).version) : kAnyVersion;
    return Run(store, m, StatusCode::kOk, [this, key](uint64_t) { model_->docs.erase(key); });
  }

  bool Rename(DocStore* store, const Key& key) {
    const auto& [p, c, id] = key;
    std::string to = RandomId();
    if (to == id) to = "renamed-" + id;
    const Key to_key{p, c, to};
    Mutation m;
    m.type = MutationType::kRename;
    m.partition = PartitionId(p);
    m.lsn = Lsn(model_->NextLsn(p));
    m.epoch = Epoch(1);
    m.request_id = NextRequest();
    m.collection = c;
    m.id = id;
    m.to_id = to;
    m.replace = rng_.OneIn(2);
    const bool target_exists = model_->docs.count(to_key) != 0;
    const StatusCode expect =
        target_exists && !m.replace ? StatusCode::kAlreadyExists : StatusCode::kOk;
    return Run(store, m, expect, [this, key, to_key](uint64_t v) {
      ModelDoc d = model_->docs.at(key);
      d.version = v;
      model_->docs.erase(key);
      model_->docs[to_key] = d;
    });
  }

  bool Conflict(DocStore* store, const Key& key) {
    const auto& [p, c, id] = key;
    Mutation m = PutMutation(p, model_->NextLsn(p), c, id, {}, {});
    m.request_id = NextRequest();
    m.expected_version =
        rng_.OneIn(2) ? kMustNotExist : static_cast<int64_t>(model_->docs.at(key).version + 1);
    const bool ok = Run(store, m, StatusCode::kFailedPrecondition, [](uint64_t) {});
    if (ok) {  // nothing was applied
      EXPECT_EQ(store->partition_state(PartitionId(p)).last_lsn.value(), model_->NextLsn(p) - 1);
    }
    return ok;
  }

  bool Retry(DocStore* store) {
    if (done_.empty()) return true;
    ++steps_;
    const Retryable& r = done_[static_cast<size_t>(rng_.Uniform(done_.size()))];
    Mutation m = r.m;
    m.lsn = Lsn(model_->NextLsn(m.partition.value()));  // a retry gets a new LSN: ignored
    Result<ApplyResult> got = store->Apply(m);
    if (!got.ok()) {
      if (crashed_ && crashed_()) return false;
      ADD_FAILURE() << "retry: " << got.status().ToString();
      return false;
    }
    EXPECT_TRUE(got->deduplicated);
    EXPECT_EQ(got->version, r.result.version);
    EXPECT_EQ(got->lsn, r.result.lsn);
    return true;
  }

  Random rng_;
  const uint64_t seed_;
  const WorkloadOptions o_;
  Model* const model_;
  uint64_t requests_ = 0;
  uint64_t steps_ = 0;
  uint64_t unavailable_ = 0;
  bool tolerate_unavailable_ = false;
  std::optional<InFlight> in_flight_;
  std::deque<Retryable> done_;
  std::function<bool()> crashed_;
};

}  // namespace cairn::chunkserver::dtest
