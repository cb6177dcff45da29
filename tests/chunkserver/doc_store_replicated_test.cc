// The doc store as a partition's replicated log (issue 6): Log() appends an
// entry without applying it, Commit() applies through an LSN, Truncate() cuts
// the uncommitted tail, and a restart with options.replicated keeps the
// checkpoint as the base and hands every later entry back as logged.
//
// The crash test drives a random replica's life (entries of several epochs,
// no-ops, syncs, commits, truncations, checkpoints, compactions) with power
// cuts at random disk writes, and checks after every reopen that the
// recovered log (base + logged entries) is a state the log really passed
// through since the last sync, holds everything synced that no later
// truncation cut, and that committing it gives exactly the documents of that
// log. CAIRN_SEED=<n> replays one seed, CAIRN_LONG=1 runs many more.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "tests/chunkserver/doc_test_util.h"

namespace cairn::chunkserver {
namespace {

using dtest::CrashMode;
using dtest::ModelBlock;
using dtest::ModelDoc;
using dtest::RigOptions;
using dtest::Seeds;
using dtest::SeedTrace;
using dtest::StoreRig;

constexpr char kColl[] = "c";

// One entry of the model log.
struct Entry {
  uint64_t epoch = 0;
  bool noop = false;
  bool del = false;
  std::string id;
  std::vector<ModelBlock> blocks;
  bool operator==(const Entry& o) const {
    return epoch == o.epoch && noop == o.noop && del == o.del && id == o.id &&
           dtest::DescribeBlocks(blocks) == dtest::DescribeBlocks(o.blocks);
  }
};
using Log = std::vector<Entry>;  // entry i has LSN i + 1

// The documents after applying `log[0, n)` of partition `p`.
std::map<std::string, ModelDoc> Replay(uint32_t p, const Log& log, size_t n) {
  std::map<std::string, ModelDoc> docs;
  for (size_t i = 0; i < n; ++i) {
    const Entry& e = log[i];
    if (e.noop) continue;
    if (e.del) {
      docs.erase(e.id);
      continue;
    }
    const uint64_t lsn = i + 1;
    Mutation m = dtest::PutMutation(p, lsn, kColl, e.id, e.blocks, {});
    ModelDoc d;
    d.version = lsn;
    d.meta = m.meta;
    d.body_hash = m.body_hash;
    d.blocks = e.blocks;
    docs[e.id] = d;
  }
  return docs;
}

dtest::Model ModelOf(const std::map<uint32_t, std::pair<Log, size_t>>& logs) {
  dtest::Model model;
  for (const auto& [p, lr] : logs) {
    for (auto& [id, d] : Replay(p, lr.first, lr.second)) model.docs[{p, kColl, id}] = d;
    if (lr.second > 0) model.last_lsn[p] = lr.second;
  }
  return model;
}

Entry RandomPut(Random* rng, uint64_t epoch, uint32_t block_bytes) {
  Entry e;
  e.epoch = epoch;
  e.id = "d" + std::to_string(rng->Uniform(6));
  ModelBlock b;
  b.seed = rng->Next();
  b.len = static_cast<uint32_t>(1 + rng->Uniform(block_bytes));
  b.compressible = rng->OneIn(2);
  e.blocks.push_back(b);
  if (rng->OneIn(4)) {  // a second block now and then
    ModelBlock c = b;
    c.seed = rng->Next();
    e.blocks.front().len = block_bytes;
    e.blocks.push_back(c);
  }
  return e;
}

Result<uint64_t> LogEntry(DocStore* store, uint32_t p, uint64_t lsn, const Entry& e) {
  if (e.noop) return store->LogNoop(PartitionId(p), Lsn(lsn), Epoch(e.epoch));
  Mutation m;
  if (e.del) {
    m.type = MutationType::kDelete;
    m.partition = PartitionId(p);
    m.lsn = Lsn(lsn);
    m.collection = kColl;
    m.id = e.id;
  } else {
    ASSIGN_OR_RETURN(std::vector<BlockRef> refs, dtest::WriteBlocks(store, e.blocks, {}));
    m = dtest::PutMutation(p, lsn, kColl, e.id, e.blocks, std::move(refs));
  }
  m.epoch = Epoch(e.epoch);
  return store->Log(m, /*check_state=*/false);
}

// The recovered log of `p` as entries (base: only its length is known).
struct Recovered {
  uint64_t base = 0;
  std::vector<MutationRecord> logged;
  uint64_t length() const { return base + logged.size(); }
};

bool Matches(const MutationRecord& r, const Entry& e) {
  if (r.epoch.value() != e.epoch) return false;
  if (e.noop) return r.type == RecordType::kNoop;
  if (e.del) return r.type == RecordType::kDelete && r.id == e.id;
  return r.type == RecordType::kPut && r.id == e.id && r.meta.xattrs.count("user.model") != 0 &&
         r.meta.xattrs.at("user.model") == dtest::DescribeBlocks(e.blocks);
}

// ---------------------------------------------------------------- unit tests

class ReplicatedLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RigOptions o;
    o.store.replicated = true;
    o.store.block_bytes = 4096;
    rig_ = std::make_unique<StoreRig>(o);
    ASSERT_TRUE(rig_->Create().ok());
    ASSERT_TRUE(rig_->Open().ok());
  }
  DocStore* store() { return rig_->store(); }
  Result<uint64_t> Put(uint32_t p, uint64_t lsn, uint64_t epoch, const std::string& id,
                       uint64_t seed) {
    Entry e;
    e.epoch = epoch;
    e.id = id;
    e.blocks.push_back(ModelBlock{seed, 1000, true});
    return LogEntry(store(), p, lsn, e);
  }
  bool Exists(uint32_t p, const std::string& id) {
    auto r = store()->Lookup(PartitionId(p), kColl, id);
    EXPECT_TRUE(r.ok());
    return r.ok() && r->has_value();
  }

  std::unique_ptr<StoreRig> rig_;
};

TEST_F(ReplicatedLogTest, LoggedEntriesAreInvisibleUntilCommitted) {
  ASSERT_TRUE(store()->LogNoop(PartitionId(0), Lsn(1), Epoch(1)).ok());
  ASSERT_TRUE(Put(0, 2, 1, "a", 1).ok());
  ASSERT_TRUE(Put(0, 3, 1, "b", 2).ok());
  ASSERT_TRUE(Put(1, 1, 1, "x", 3).ok());
  ASSERT_TRUE(store()->SyncLog().ok());
  EXPECT_FALSE(Exists(0, "a"));
  EXPECT_EQ(store()->partition_state(PartitionId(0)).last_lsn, Lsn(0));
  EXPECT_EQ(store()->last_logged(PartitionId(0)).first, Lsn(3));
  EXPECT_EQ(store()->LoggedEntries(PartitionId(0)).size(), 3u);

  ASSERT_TRUE(store()->Commit(PartitionId(0), Lsn(2)).ok());
  EXPECT_TRUE(Exists(0, "a"));
  EXPECT_FALSE(Exists(0, "b"));
  EXPECT_FALSE(Exists(1, "x"));  // another partition's entries wait for their own commit
  EXPECT_EQ(store()->partition_state(PartitionId(0)).last_lsn, Lsn(2));
  ASSERT_EQ(store()->LoggedEntries(PartitionId(0)).size(), 1u);
  EXPECT_EQ(store()->LoggedEntries(PartitionId(0))[0].lsn, Lsn(3));

  ASSERT_TRUE(store()->Commit(PartitionId(1), Lsn(1)).ok());
  EXPECT_TRUE(Exists(1, "x"));
  EXPECT_FALSE(Exists(0, "b"));
}

TEST_F(ReplicatedLogTest, CommitOfAnUnsyncedEntryAppliesItOnceDurable) {
  ASSERT_TRUE(Put(0, 1, 1, "a", 1).ok());
  ASSERT_TRUE(store()->Commit(PartitionId(0), Lsn(1)).ok());
  // Not necessarily durable yet: the index shows it only after the sync.
  ASSERT_TRUE(store()->SyncLog().ok());
  EXPECT_TRUE(Exists(0, "a"));
}

TEST_F(ReplicatedLogTest, RefusesGapsOldEpochsAndCutsBelowTheCommitPoint) {
  ASSERT_TRUE(Put(0, 1, 2, "a", 1).ok());
  auto gap = Put(0, 3, 2, "b", 2);
  EXPECT_EQ(gap.status().code(), StatusCode::kInvalidArgument) << gap.status().ToString();
  auto old = Put(0, 2, 1, "b", 2);
  EXPECT_EQ(old.status().code(), StatusCode::kStaleEpoch) << old.status().ToString();
  ASSERT_TRUE(Put(0, 2, 2, "b", 2).ok());
  ASSERT_TRUE(store()->SyncLog().ok());
  ASSERT_TRUE(store()->Commit(PartitionId(0), Lsn(2)).ok());
  auto cut = store()->Truncate(PartitionId(0), Lsn(1), Epoch(3));
  EXPECT_EQ(cut.status().code(), StatusCode::kFailedPrecondition) << cut.status().ToString();
  EXPECT_TRUE(Exists(0, "b"));
}

TEST_F(ReplicatedLogTest, CheckStateSeesLoggedEntries) {
  ASSERT_TRUE(Put(0, 1, 1, "a", 1).ok());  // logged, not committed
  Mutation m;
  m.type = MutationType::kPut;
  m.partition = PartitionId(0);
  m.lsn = Lsn(2);
  m.epoch = Epoch(1);
  m.collection = kColl;
  m.id = "a";
  m.expected_version = kMustNotExist;
  auto r = store()->Log(m, /*check_state=*/true);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
  Mutation d;
  d.type = MutationType::kDelete;
  d.partition = PartitionId(0);
  d.lsn = Lsn(2);
  d.epoch = Epoch(1);
  d.collection = kColl;
  d.id = "nope";
  r = store()->Log(d, /*check_state=*/true);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status().ToString();
}

TEST_F(ReplicatedLogTest, TruncateCutsTheTailAndANewPrimaryReusesItsLsns) {
  ASSERT_TRUE(Put(0, 1, 1, "a", 1).ok());
  ASSERT_TRUE(Put(0, 2, 1, "b", 2).ok());
  ASSERT_TRUE(Put(0, 3, 1, "c", 3).ok());
  ASSERT_TRUE(store()->SyncLog().ok());
  ASSERT_TRUE(store()->Commit(PartitionId(0), Lsn(1)).ok());
  ASSERT_TRUE(store()->Truncate(PartitionId(0), Lsn(1), Epoch(2)).ok());
  EXPECT_EQ(store()->last_logged(PartitionId(0)), std::make_pair(Lsn(1), Epoch(1)));
  ASSERT_TRUE(store()->LogNoop(PartitionId(0), Lsn(2), Epoch(2)).ok());
  ASSERT_TRUE(Put(0, 3, 2, "z", 4).ok());
  ASSERT_TRUE(store()->SyncLog().ok());
  ASSERT_TRUE(store()->Commit(PartitionId(0), Lsn(3)).ok());
  EXPECT_TRUE(Exists(0, "a"));
  EXPECT_FALSE(Exists(0, "b"));
  EXPECT_FALSE(Exists(0, "c"));
  EXPECT_TRUE(Exists(0, "z"));

  // The same after a restart: the cut entries stay cut.
  ASSERT_TRUE(rig_->Open().ok());
  auto logged = store()->LoggedEntries(PartitionId(0));
  ASSERT_EQ(logged.size(), 3u);
  EXPECT_EQ(logged[0].id, "a");
  EXPECT_EQ(logged[1].type, RecordType::kNoop);
  EXPECT_EQ(logged[2].id, "z");
  EXPECT_EQ(logged[2].epoch, Epoch(2));
  EXPECT_FALSE(Exists(0, "a"));  // nothing applied before the replica commits again
  ASSERT_TRUE(store()->Commit(PartitionId(0), Lsn(3)).ok());
  EXPECT_TRUE(Exists(0, "a"));
  EXPECT_FALSE(Exists(0, "b"));
  EXPECT_TRUE(Exists(0, "z"));
}

TEST_F(ReplicatedLogTest, RestartKeepsTheCheckpointAsTheBase) {
  ASSERT_TRUE(Put(0, 1, 1, "a", 1).ok());
  ASSERT_TRUE(Put(0, 2, 1, "b", 2).ok());
  ASSERT_TRUE(store()->SyncLog().ok());
  ASSERT_TRUE(store()->Commit(PartitionId(0), Lsn(1)).ok());
  ASSERT_TRUE(store()->Checkpoint().ok());  // holds LSN 1; LSN 2 is logged only
  ASSERT_TRUE(Put(0, 3, 1, "c", 3).ok());
  ASSERT_TRUE(store()->SyncLog().ok());
  ASSERT_TRUE(store()->Commit(PartitionId(0), Lsn(3)).ok());
  ASSERT_TRUE(rig_->Open().ok());
  EXPECT_EQ(store()->partition_state(PartitionId(0)).last_lsn, Lsn(1));
  EXPECT_TRUE(Exists(0, "a"));
  EXPECT_FALSE(Exists(0, "b"));
  auto logged = store()->LoggedEntries(PartitionId(0));
  ASSERT_EQ(logged.size(), 2u);
  EXPECT_EQ(logged[0].lsn, Lsn(2));
  EXPECT_EQ(logged[1].lsn, Lsn(3));
  EXPECT_EQ(store()->last_logged(PartitionId(0)).first, Lsn(3));
  ASSERT_TRUE(store()->Commit(PartitionId(0), Lsn(3)).ok());
  EXPECT_TRUE(Exists(0, "b"));
  EXPECT_TRUE(Exists(0, "c"));
}

TEST_F(ReplicatedLogTest, ASingleCopyStoreRefusesAReplicatedLog) {
  ASSERT_TRUE(Put(0, 1, 1, "a", 1).ok());
  ASSERT_TRUE(store()->SyncLog().ok());
  ASSERT_TRUE(store()->Truncate(PartitionId(0), Lsn(0), Epoch(2)).ok());
  ASSERT_TRUE(store()->SyncLog().ok());
  rig_->options().store.replicated = false;
  Status s = rig_->Open();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
}

// ---------------------------------------------------------------- crash test

struct PartitionModel {
  Log log;                     // the log now
  std::vector<Log> since;      // every state since the last successful sync, now included
  std::vector<uint64_t> ends;  // record end offset of each entry of `log` (0: unknown)
  uint64_t committed = 0;
  uint64_t epoch = 1;
};

void Changed(PartitionModel* m) { m->since.push_back(m->log); }

void RunLives(uint64_t seed, CrashMode mode) {
  SCOPED_TRACE(SeedTrace(seed));
  Random rng(seed);
  RigOptions ro;
  ro.disks = 3;
  ro.max_unit_bytes = rng.OneIn(2) ? 4096 : 16384;
  ro.segment_bytes = rng.OneIn(2) ? 64 << 10 : 128 << 10;
  ro.max_pending_bytes = rng.OneIn(2) ? 16 << 10 : 64 << 10;
  ro.store.replicated = true;
  ro.store.block_bytes = 4096;
  ro.store.zstd_level = 1;
  ro.store.checkpoint_part_bytes = 4096;
  ro.store.compact_live_fraction = 0.6;
  StoreRig rig(ro);
  ASSERT_TRUE(rig.Create().ok());
  ASSERT_TRUE(rig.Open().ok());
  constexpr uint32_t kPartitions = 2;
  std::map<uint32_t, PartitionModel> parts;
  for (uint32_t p = 0; p < kPartitions; ++p) Changed(&parts[p]);
  uint64_t durable = 0;  // what the last SyncLog returned

  for (int life = 0; life < 6; ++life) {
    const std::string ctx = "life " + std::to_string(life);
    rig.disk()->ArmCrash(rig.disk()->mutating_ops() + 1 + rng.Uniform(300), rng.OneIn(2), mode,
                         rng.Next());
    for (int step = 0; step < 200 && !rig.disk()->crashed(); ++step) {
      const uint32_t p = static_cast<uint32_t>(rng.Uniform(kPartitions));
      PartitionModel& m = parts[p];
      const uint64_t r = rng.Uniform(100);
      DocStore* st = rig.store();
      if (r < 55) {
        Entry e;
        if (r < 8) {
          e.noop = true;
          e.epoch = ++m.epoch;
        } else {
          e = RandomPut(&rng, m.epoch, ro.store.block_bytes);
          const auto docs = Replay(p, m.log, m.log.size());
          if (r < 18 && !docs.empty()) {
            auto it = docs.begin();
            std::advance(it, static_cast<long>(rng.Uniform(docs.size())));
            e.del = true;
            e.id = it->first;
            e.blocks.clear();
          }
        }
        m.log.push_back(e);
        m.ends.push_back(0);
        Changed(&m);  // a crash inside may or may not keep it
        auto end = LogEntry(st, p, m.log.size(), e);
        if (!end.ok()) {
          ASSERT_TRUE(rig.disk()->crashed()) << ctx << ": log: " << end.status().ToString();
          break;
        }
        m.ends.back() = *end;
      } else if (r < 70) {
        auto d = st->SyncLog();
        if (!d.ok()) {
          ASSERT_TRUE(rig.disk()->crashed()) << ctx << ": sync: " << d.status().ToString();
          break;
        }
        durable = *d;
        for (auto& [q, pm] : parts) pm.since = {pm.log};
      } else if (r < 82) {
        // Commit up to what is durable, like a replica does.
        uint64_t can = m.committed;
        while (can < m.log.size() && m.ends[can] != 0 && m.ends[can] <= durable) ++can;
        const uint64_t to = m.committed + rng.Uniform(can - m.committed + 1);
        Status s = st->Commit(PartitionId(p), Lsn(to));
        ASSERT_TRUE(s.ok() || rig.disk()->crashed()) << ctx << ": commit: " << s.ToString();
        m.committed = std::max(m.committed, to);
        if (rng.OneIn(4) && !rig.disk()->crashed()) {
          std::map<uint32_t, std::pair<Log, size_t>> applied;
          for (auto& [q, pm] : parts) applied[q] = {pm.log, pm.committed};
          dtest::ExpectStoreMatches(st, ModelOf(applied), ctx + " after commit");
          if (::testing::Test::HasFailure()) return;
        }
      } else if (r < 90) {
        if (m.log.size() == m.committed) continue;
        const uint64_t after = m.committed + rng.Uniform(m.log.size() - m.committed);
        m.log.resize(after);
        m.ends.resize(after);
        ++m.epoch;
        Changed(&m);
        auto end = st->Truncate(PartitionId(p), Lsn(after), Epoch(m.epoch));
        if (!end.ok()) {
          ASSERT_TRUE(rig.disk()->crashed()) << ctx << ": truncate: " << end.status().ToString();
          break;
        }
      } else if (r < 96) {
        Status s = st->Checkpoint();
        ASSERT_TRUE(s.ok() || rig.disk()->crashed()) << ctx << ": checkpoint: " << s.ToString();
      } else {
        auto c = st->Compact();
        ASSERT_TRUE(c.ok() || rig.disk()->crashed())
            << ctx << ": compact: " << c.status().ToString();
      }
    }
    rig.Crash(mode, rng.Next());
    Status s = rig.Open();
    ASSERT_TRUE(s.ok()) << ctx << ": reopen: " << s.ToString();

    std::map<uint32_t, std::pair<Log, size_t>> recovered_logs;
    for (auto& [p, m] : parts) {
      Recovered rec;
      rec.base = rig.store()->partition_state(PartitionId(p)).last_lsn.value();
      rec.logged = rig.store()->LoggedEntries(PartitionId(p));
      for (size_t i = 0; i < rec.logged.size(); ++i) {
        ASSERT_EQ(rec.logged[i].lsn.value(), rec.base + i + 1) << ctx << ": partition " << p;
      }
      // Everything committed was durable, so it is there.
      EXPECT_GE(rec.length(), m.committed) << ctx << ": partition " << p;
      // Every synced entry that no later state cut is there.
      size_t must = m.since.front().size();
      for (const Log& h : m.since) {
        size_t k = 0;
        while (k < must && k < h.size() && h[k] == m.since.front()[k]) ++k;
        must = k;
      }
      EXPECT_GE(rec.length(), must) << ctx << ": partition " << p << " lost synced entries";
      // The recovered log is a prefix of a state the log passed through.
      const Log* found = nullptr;
      for (auto h = m.since.rbegin(); h != m.since.rend() && found == nullptr; ++h) {
        if (h->size() < rec.length()) continue;
        bool same = true;
        for (size_t i = 0; i < rec.logged.size() && same; ++i) {
          same = Matches(rec.logged[i], (*h)[rec.base + i]);
        }
        if (same) found = &*h;
      }
      ASSERT_NE(found, nullptr) << ctx << ": partition " << p << ": recovered log of "
                                << rec.length() << " entries (base " << rec.base
                                << ") is no state the log was in";
      m.log.assign(found->begin(), found->begin() + static_cast<long>(rec.length()));
      m.ends.assign(m.log.size(), 1);  // all durable now
      m.committed = m.log.size();
      m.since = {m.log};
      for (const Entry& e : m.log) m.epoch = std::max(m.epoch, e.epoch);
      ++m.epoch;  // the replica restarts in a new epoch
      ASSERT_TRUE(rig.store()->Commit(PartitionId(p), Lsn(m.log.size())).ok());
      recovered_logs[p] = {m.log, m.log.size()};
    }
    durable = 0;
    // Committing the recovered log gives exactly its documents.
    dtest::ExpectStoreMatches(rig.store(), ModelOf(recovered_logs), ctx + " after reopen");
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(ReplicatedLogCrashTest, RandomCrashesDropUnsynced) {
  dtest::QuietLogs quiet;
  for (uint64_t seed : Seeds(40, 1000)) {
    RunLives(seed, CrashMode::kDropUnsynced);
    if (HasFailure()) return;
  }
}

TEST(ReplicatedLogCrashTest, RandomCrashesRandomPartial) {
  dtest::QuietLogs quiet;
  for (uint64_t seed : Seeds(40, 1000)) {
    RunLives(seed, CrashMode::kRandomPartial);
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace cairn::chunkserver
