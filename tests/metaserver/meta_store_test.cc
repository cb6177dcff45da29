// One contract for every MetaStore: the same typed tests run against the
// in-memory store (on a ManualClock) and against a private etcd 3.4 over its
// JSON gateway with TLS client certificates (tests/metaserver/
// etcd_test_server.h). Then tests of what only one of them has: the memory
// store's exact clock and determinism, the etcd store's error mapping.
//
// If etcd is not installed the etcd tests fail (they do not skip): run
// scripts/install-deps.sh.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "metaserver/etcd_meta_store.h"
#include "metaserver/mem_meta_store.h"
#include "tests/metaserver/etcd_test_server.h"

namespace cairn::metaserver {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::EtcdTestServer;

// ---------------------------------------------------------------------------
// The shared etcd: started at first use, killed when the test program ends.

class EtcdEnvironment : public ::testing::Environment {
 public:
  // The running server, or the reason there is none (remembered: a failed
  // start is not retried by every test).
  static Result<EtcdTestServer*> Server() {
    if (server_ == nullptr && start_error_.ok()) {
      auto started = EtcdTestServer::Start();
      if (started.ok()) {
        server_ = std::move(started).value();
      } else {
        start_error_ = started.status();
      }
    }
    if (server_ == nullptr) return start_error_;
    return server_.get();
  }
  void TearDown() override { server_.reset(); }

 private:
  static inline std::unique_ptr<EtcdTestServer> server_;
  static inline Status start_error_;
};

// ---------------------------------------------------------------------------
// Backends: how the contract tests get a store and let time pass.

struct MemBackend {
  Status Prepare() { return Status::Ok(); }
  std::unique_ptr<MetaStore> NewStore() { return std::make_unique<MemMetaStore>(&clock); }
  // Time passes only when the test says so. The short real pause lets other
  // threads (a blocked Campaign polls every millisecond) see the new time.
  void Elapse(Nanos d) {
    clock.Advance(d);
    std::this_thread::sleep_for(milliseconds(2));
  }
  ManualClock clock;
};

struct EtcdBackend {
  Status Prepare() {
    ASSIGN_OR_RETURN(server, EtcdEnvironment::Server());
    return Status::Ok();
  }
  std::unique_ptr<MetaStore> NewStore() {
    auto store = EtcdMetaStore::Open(server->ClientOptions());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::unique_ptr<MetaStore>(std::move(store).value()) : nullptr;
  }
  void Elapse(Nanos d) { std::this_thread::sleep_for(d); }
  EtcdTestServer* server = nullptr;
};

template <typename Backend>
class MetaStoreContract : public ::testing::Test {
 protected:
  void SetUp() override {
    Status ready = backend_.Prepare();
    ASSERT_TRUE(ready.ok()) << ready.ToString();
    store_ = backend_.NewStore();
    ASSERT_NE(store_, nullptr);
    // Tests share one etcd: each works under its own prefix.
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = std::string("/") + info->test_suite_name() + "/" + info->name() + "/";
  }

  std::string K(std::string_view name) const { return prefix_ + std::string(name); }

  std::optional<KeyValue> MustGet(std::string_view key) {
    auto r = store_->Get(key);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }

  int64_t MustPut(const std::string& key, const std::string& value,
                  StoreLeaseId lease = StoreLeaseId()) {
    auto r = store_->Put(key, value, lease);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : -1;
  }

  LeaseGrant MustGrant(seconds ttl) {
    auto r = store_->Grant(ttl);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : LeaseGrant{};
  }

  // Lets time pass in `step`s until pred() holds or `limit` has passed.
  bool ElapseUntil(const std::function<bool()>& pred, Nanos limit, Nanos step = milliseconds(100)) {
    for (Nanos waited{0}; !pred(); waited += step) {
      if (waited >= limit) return false;
      backend_.Elapse(step);
    }
    return true;
  }

  Backend backend_;
  std::unique_ptr<MetaStore> store_;
  std::string prefix_;
};

using Backends = ::testing::Types<MemBackend, EtcdBackend>;
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, MemBackend> ? "Mem" : "Etcd";
  }
};
TYPED_TEST_SUITE(MetaStoreContract, Backends, BackendNames);

// ---------------------------------------------------------------------------
// Keys, values, revisions.

TYPED_TEST(MetaStoreContract, GetPutAndRevisions) {
  auto& s = *this->store_;
  const std::string a = this->K("a");
  EXPECT_EQ(this->MustGet(a), std::nullopt);

  const int64_t r1 = this->MustPut(a, "one");
  auto kv = this->MustGet(a);
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->key, a);
  EXPECT_EQ(kv->value, "one");
  EXPECT_EQ(kv->create_revision, r1);
  EXPECT_EQ(kv->mod_revision, r1);
  EXPECT_EQ(kv->version, 1);
  EXPECT_EQ(kv->lease, StoreLeaseId());

  const int64_t r2 = this->MustPut(a, "two");
  EXPECT_GT(r2, r1);
  kv = this->MustGet(a);
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->value, "two");
  EXPECT_EQ(kv->create_revision, r1);
  EXPECT_EQ(kv->mod_revision, r2);
  EXPECT_EQ(kv->version, 2);

  // Empty values and arbitrary bytes survive (etcd omits an empty value in
  // JSON; keys and values travel in base64).
  const std::string binary_key = this->K(std::string("bin\0\xff\x01", 6));
  const std::string binary_value("\0\xfe\xff\n\"\\", 6);
  this->MustPut(binary_key, binary_value);
  this->MustPut(this->K("empty"), "");
  kv = this->MustGet(binary_key);
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->value, binary_value);
  kv = this->MustGet(this->K("empty"));
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->value, "");

  // A transaction that changes nothing does not move the revision.
  auto noop = s.Txn({}, {});
  ASSERT_TRUE(noop.ok()) << noop.status().ToString();
  auto del_absent = s.Txn({}, {Op::Delete(this->K("never"))});
  ASSERT_TRUE(del_absent.ok()) << del_absent.status().ToString();
  EXPECT_TRUE(del_absent->succeeded);
  EXPECT_EQ(del_absent->revision, noop->revision);
}

TYPED_TEST(MetaStoreContract, ListIsSortedAndByPrefix) {
  auto& s = *this->store_;
  for (const char* k : {"b", "a/2", "c", "a", "a/1", "ab"}) this->MustPut(this->K(k), k);
  auto all = s.List(this->prefix_);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::vector<std::string> keys;
  for (const KeyValue& kv : *all) keys.push_back(kv.key.substr(this->prefix_.size()));
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "a/1", "a/2", "ab", "b", "c"}));
  EXPECT_EQ((*all)[0].value, "a");

  auto sub = s.List(this->K("a/"));
  ASSERT_TRUE(sub.ok());
  ASSERT_EQ(sub->size(), 2u);
  EXPECT_EQ((*sub)[0].key, this->K("a/1"));
  EXPECT_EQ((*sub)[1].key, this->K("a/2"));

  auto none = s.List(this->K("zzz"));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  // A prefix ending in 0xff: its range end is computed by carrying.
  this->MustPut(this->K("\xff\xff"
                        "x"),
                "ff");
  this->MustPut(this->K("\xff\xfe"), "fe");
  auto ff = s.List(this->K("\xff\xff"));
  ASSERT_TRUE(ff.ok());
  ASSERT_EQ(ff->size(), 1u);
  EXPECT_EQ((*ff)[0].value, "ff");

  // The empty prefix lists everything, this test's keys included.
  auto everything = s.List("");
  ASSERT_TRUE(everything.ok()) << everything.status().ToString();
  EXPECT_GE(everything->size(), 8u);
}

TYPED_TEST(MetaStoreContract, DeleteRemovesAndRecreateStartsOver) {
  auto& s = *this->store_;
  const std::string k = this->K("k");
  const int64_t created = this->MustPut(k, "v1");
  this->MustPut(k, "v2");
  auto del = s.Delete(k);
  ASSERT_TRUE(del.ok()) << del.status().ToString();
  EXPECT_EQ(this->MustGet(k), std::nullopt);
  auto listed = s.List(this->prefix_);
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());

  const int64_t recreated = this->MustPut(k, "v3");
  EXPECT_GT(recreated, *del);
  auto kv = this->MustGet(k);
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->create_revision, recreated);
  EXPECT_NE(kv->create_revision, created);
  EXPECT_EQ(kv->version, 1);
}

// ---------------------------------------------------------------------------
// Transactions.

TYPED_TEST(MetaStoreContract, TxnComparesModRevisionAndValue) {
  auto& s = *this->store_;
  const std::string map = this->K("map");
  const std::string other = this->K("other");

  // Create-if-absent.
  auto create = s.Txn({Compare::Absent(map)}, {Op::Put(map, "v1")});
  ASSERT_TRUE(create.ok()) << create.status().ToString();
  EXPECT_TRUE(create->succeeded);
  auto again = s.Txn({Compare::Absent(map)}, {Op::Put(map, "clobbered")});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->succeeded);
  EXPECT_EQ(again->revision, create->revision);  // nothing written
  EXPECT_EQ(this->MustGet(map)->value, "v1");

  // Compare-and-swap on the revision read; the failed branch runs else_ops.
  const int64_t read_rev = this->MustGet(map)->mod_revision;
  auto cas = s.Txn({Compare::ModRevisionIs(map, read_rev)},
                   {Op::Put(map, "v2"), Op::Put(other, "both")}, {Op::Put(other, "else")});
  ASSERT_TRUE(cas.ok());
  EXPECT_TRUE(cas->succeeded);
  EXPECT_EQ(this->MustGet(map)->mod_revision, cas->revision);
  EXPECT_EQ(this->MustGet(other)->mod_revision, cas->revision);  // one revision, both writes
  auto stale = s.Txn({Compare::ModRevisionIs(map, read_rev)}, {Op::Put(map, "v3")},
                     {Op::Put(other, "else")});
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(stale->succeeded);
  EXPECT_EQ(this->MustGet(map)->value, "v2");
  EXPECT_EQ(this->MustGet(other)->value, "else");
  EXPECT_GT(stale->revision, cas->revision);  // the else branch wrote
  EXPECT_EQ(this->MustGet(other)->mod_revision, stale->revision);

  // Value equality; an absent key equals nothing, not even "".
  auto by_value = s.Txn({Compare::ValueIs(map, "v2")}, {Op::Delete(other)});
  ASSERT_TRUE(by_value.ok());
  EXPECT_TRUE(by_value->succeeded);
  EXPECT_EQ(this->MustGet(other), std::nullopt);
  auto wrong_value = s.Txn({Compare::ValueIs(map, "v1")}, {Op::Delete(map)});
  ASSERT_TRUE(wrong_value.ok());
  EXPECT_FALSE(wrong_value->succeeded);
  auto absent_empty = s.Txn({Compare::ValueIs(this->K("absent"), "")}, {Op::Delete(map)});
  ASSERT_TRUE(absent_empty.ok());
  EXPECT_FALSE(absent_empty->succeeded);
  this->MustPut(this->K("empty"), "");
  auto present_empty = s.Txn({Compare::ValueIs(this->K("empty"), "")}, {});
  ASSERT_TRUE(present_empty.ok());
  EXPECT_TRUE(present_empty->succeeded);

  // Every compare must hold.
  auto mixed = s.Txn({Compare::ValueIs(map, "v2"), Compare::Absent(map)}, {Op::Delete(map)});
  ASSERT_TRUE(mixed.ok());
  EXPECT_FALSE(mixed->succeeded);
  EXPECT_TRUE(this->MustGet(map).has_value());
}

TYPED_TEST(MetaStoreContract, RacingWritersOnOneRevisionExactlyOneWins) {
  const std::string key = this->K("config");
  constexpr int kWriters = 8;
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    const int64_t read_rev = this->MustPut(key, "round " + std::to_string(round));
    std::atomic<int> wins{0};
    std::atomic<int> ready{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        ready.fetch_add(1);
        while (ready.load() < kWriters) std::this_thread::yield();
        auto r = this->store_->Txn({Compare::ModRevisionIs(key, read_rev)},
                                   {Op::Put(key, "writer " + std::to_string(w))});
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        if (r->succeeded) wins.fetch_add(1);
      });
    }
    for (auto& t : writers) t.join();
    EXPECT_EQ(wins.load(), 1) << "round " << round;
    auto kv = this->MustGet(key);
    ASSERT_TRUE(kv.has_value());
    EXPECT_EQ(kv->mod_revision, read_rev + 1);
    EXPECT_TRUE(kv->value.starts_with("writer "));
  }
}

TYPED_TEST(MetaStoreContract, CasIncrementsFromManyThreadsAreNeverLost) {
  const std::string key = this->K("counter");
  this->MustPut(key, "0");
  constexpr int kThreads = 4;
  constexpr int kIncrements = 10;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        for (;;) {
          auto kv = this->store_->Get(key);
          ASSERT_TRUE(kv.ok() && kv->has_value()) << kv.status().ToString();
          const int n = std::stoi((*kv)->value);
          auto r = this->store_->Txn({Compare::ModRevisionIs(key, (*kv)->mod_revision)},
                                     {Op::Put(key, std::to_string(n + 1))});
          ASSERT_TRUE(r.ok()) << r.status().ToString();
          if (r->succeeded) break;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  auto kv = this->MustGet(key);
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->value, std::to_string(kThreads * kIncrements));
  EXPECT_EQ(kv->version, kThreads * kIncrements + 1);
}

TYPED_TEST(MetaStoreContract, BadInputIsRefusedTheSameWay) {
  auto& s = *this->store_;
  const std::string k = this->K("k");
  EXPECT_EQ(s.Get("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Put("", "v").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Put(std::string(kMaxKeyBytes + 1, 'k'), "v").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Put(k, std::string(kMaxValueBytes + 1, 'v')).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Txn({}, {Op::Put(k, "1"), Op::Put(k, "2")}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Txn({}, {Op::Put(k, "1"), Op::Delete(k)}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Txn({}, std::vector<Op>(kMaxTxnOps + 1, Op::Delete(k))).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Grant(seconds(0)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Campaign("", StoreLeaseId(1), "v", Nanos(0)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Campaign(this->K("e"), StoreLeaseId(), "v", Nanos(0)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->MustGet(k), std::nullopt);  // nothing was written
}

// ---------------------------------------------------------------------------
// Leases.

TYPED_TEST(MetaStoreContract, KeysVanishWhenTheirLeaseExpires) {
  auto& s = *this->store_;
  const LeaseGrant lease = this->MustGrant(seconds(1));
  ASSERT_GE(lease.ttl, seconds(1));
  this->MustPut(this->K("leased1"), "x", lease.id);
  this->MustPut(this->K("leased2"), "y", lease.id);
  this->MustPut(this->K("kept"), "z");
  EXPECT_EQ(this->MustGet(this->K("leased1"))->lease, lease.id);

  const bool gone = this->ElapseUntil(
      [&] { return !this->MustGet(this->K("leased1")).has_value(); }, lease.ttl + seconds(3));
  ASSERT_TRUE(gone) << "key outlived its lease";
  EXPECT_EQ(this->MustGet(this->K("leased2")), std::nullopt);
  EXPECT_TRUE(this->MustGet(this->K("kept")).has_value());
  EXPECT_EQ(s.KeepAlive(lease.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s.Revoke(lease.id).code(), StatusCode::kNotFound);

  // A write with a dead lease fails as a whole.
  auto r = s.Txn({}, {Op::Put(this->K("a"), "1"), Op::Put(this->K("b"), "2", lease.id)});
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status().ToString();
  EXPECT_EQ(this->MustGet(this->K("a")), std::nullopt);
}

TYPED_TEST(MetaStoreContract, KeepAliveKeepsKeysAndRevokeDeletesThem) {
  auto& s = *this->store_;
  const LeaseGrant lease = this->MustGrant(seconds(1));
  this->MustPut(this->K("leased"), "x", lease.id);
  // Three TTLs pass; renewing every third of a TTL keeps the key.
  const Nanos step = std::chrono::duration_cast<Nanos>(lease.ttl) / 3;
  for (int i = 0; i < 9; ++i) {
    this->backend_.Elapse(step);
    auto ttl = s.KeepAlive(lease.id);
    ASSERT_TRUE(ttl.ok()) << "renewal " << i << ": " << ttl.status().ToString();
    EXPECT_EQ(*ttl, lease.ttl);
    ASSERT_TRUE(this->MustGet(this->K("leased")).has_value()) << "renewal " << i;
  }
  // A put without the lease detaches the key from it.
  this->MustPut(this->K("detached"), "d", lease.id);
  this->MustPut(this->K("detached"), "d2");
  EXPECT_EQ(this->MustGet(this->K("detached"))->lease, StoreLeaseId());

  ASSERT_TRUE(s.Revoke(lease.id).ok());
  EXPECT_EQ(this->MustGet(this->K("leased")), std::nullopt);
  EXPECT_TRUE(this->MustGet(this->K("detached")).has_value());
  EXPECT_EQ(s.KeepAlive(lease.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s.KeepAlive(StoreLeaseId(0x7777777777)).status().code(), StatusCode::kNotFound);
}

// ---------------------------------------------------------------------------
// Leader election.

TYPED_TEST(MetaStoreContract, FreeElectionIsWonAtOnceAndLeaderIsReported) {
  auto& s = *this->store_;
  const std::string election = this->K("election");
  auto nobody = s.Leader(election);
  ASSERT_TRUE(nobody.ok()) << nobody.status().ToString();
  EXPECT_EQ(*nobody, std::nullopt);

  const LeaseGrant lease = this->MustGrant(seconds(30));
  auto won = s.Campaign(election, lease.id, "meta-1", Nanos(0));
  ASSERT_TRUE(won.ok()) << won.status().ToString();
  EXPECT_EQ(won->election, election);
  EXPECT_EQ(won->key, CandidateKey(election, lease.id));
  EXPECT_EQ(won->lease, lease.id);
  auto leader = s.Leader(election);
  ASSERT_TRUE(leader.ok() && leader->has_value()) << leader.status().ToString();
  EXPECT_EQ((*leader)->value, "meta-1");
  EXPECT_EQ((*leader)->key, won->key);
  EXPECT_EQ((*leader)->create_revision, won->revision);

  // Campaigning again with the same lease keeps the candidacy and publishes
  // the new value.
  auto again = s.Campaign(election, lease.id, "meta-1b", Nanos(0));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *won);
  EXPECT_EQ((*s.Leader(election))->value, "meta-1b");

  // An unknown lease cannot campaign.
  EXPECT_EQ(s.Campaign(election, StoreLeaseId(0x7777777777), "x", Nanos(0)).status().code(),
            StatusCode::kNotFound);

  ASSERT_TRUE(s.Resign(*won).ok());
  ASSERT_TRUE(s.Resign(*won).ok());  // resigning twice is harmless
  EXPECT_EQ(*s.Leader(election), std::nullopt);
  ASSERT_TRUE(s.Revoke(lease.id).ok());
}

TYPED_TEST(MetaStoreContract, OnlyOneLeaderAtATime) {
  const std::string election = this->K("election");
  constexpr size_t kCandidates = 4;
  std::atomic<int> in_office{0};
  std::atomic<int> terms{0};
  std::atomic<bool> overlap{false};
  std::vector<LeaseGrant> leases;
  for (size_t c = 0; c < kCandidates; ++c) leases.push_back(this->MustGrant(seconds(30)));
  std::vector<std::thread> candidates;
  for (size_t c = 0; c < kCandidates; ++c) {
    candidates.emplace_back([&, c] {
      const std::string me = "candidate-" + std::to_string(c);
      auto won = this->store_->Campaign(election, leases[c].id, me, std::chrono::seconds(20));
      ASSERT_TRUE(won.ok()) << me << ": " << won.status().ToString();
      if (in_office.fetch_add(1) != 0) overlap = true;
      auto leader = this->store_->Leader(election);
      EXPECT_TRUE(leader.ok() && leader->has_value() && (*leader)->value == me)
          << me << " leads but Leader() disagrees";
      std::this_thread::sleep_for(milliseconds(30));
      in_office.fetch_sub(1);
      terms.fetch_add(1);
      ASSERT_TRUE(this->store_->Resign(*won).ok());
    });
  }
  for (auto& t : candidates) t.join();
  EXPECT_FALSE(overlap.load()) << "two candidates led at once";
  EXPECT_EQ(terms.load(), static_cast<int>(kCandidates));
  for (const LeaseGrant& l : leases) EXPECT_TRUE(this->store_->Revoke(l.id).ok());
}

TYPED_TEST(MetaStoreContract, NextCandidateTakesOverAfterResign) {
  auto& s = *this->store_;
  const std::string election = this->K("election");
  const LeaseGrant a = this->MustGrant(seconds(30));
  const LeaseGrant b = this->MustGrant(seconds(30));
  auto a_won = s.Campaign(election, a.id, "a", Nanos(0));
  ASSERT_TRUE(a_won.ok()) << a_won.status().ToString();

  std::atomic<bool> b_done{false};
  Result<LeaderKey> b_won = Status::Unavailable("not run");
  std::thread b_thread([&] {
    b_won = this->store_->Campaign(election, b.id, "b", std::chrono::seconds(20));
    b_done = true;
  });
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_FALSE(b_done.load()) << "b won while a leads";
  EXPECT_EQ((*s.Leader(election))->value, "a");

  // Fencing: the leader's writes compare its candidacy's value.
  auto fenced = s.Txn({Compare::ValueIs(a_won->key, "a")}, {Op::Put(this->K("map"), "by a")});
  ASSERT_TRUE(fenced.ok());
  EXPECT_TRUE(fenced->succeeded);

  ASSERT_TRUE(s.Resign(*a_won).ok());
  b_thread.join();
  ASSERT_TRUE(b_won.ok()) << b_won.status().ToString();
  EXPECT_EQ((*s.Leader(election))->value, "b");
  // The old leader's fenced write now fails.
  auto late = s.Txn({Compare::ValueIs(a_won->key, "a")}, {Op::Put(this->K("map"), "late a")});
  ASSERT_TRUE(late.ok());
  EXPECT_FALSE(late->succeeded);
  EXPECT_EQ(this->MustGet(this->K("map"))->value, "by a");
  ASSERT_TRUE(s.Revoke(a.id).ok());
  ASSERT_TRUE(s.Revoke(b.id).ok());
}

TYPED_TEST(MetaStoreContract, NextCandidateTakesOverWhenTheLeadersLeaseExpires) {
  auto& s = *this->store_;
  const std::string election = this->K("election");
  const LeaseGrant a = this->MustGrant(seconds(1));  // never renewed: the leader "dies"
  const LeaseGrant b = this->MustGrant(seconds(5));
  auto a_won = s.Campaign(election, a.id, "a", Nanos(0));
  ASSERT_TRUE(a_won.ok()) << a_won.status().ToString();

  std::atomic<bool> b_done{false};
  Result<LeaderKey> b_won = Status::Unavailable("not run");
  std::thread b_thread([&] {
    b_won = this->store_->Campaign(election, b.id, "b", std::chrono::seconds(20));
    b_done = true;
  });
  // Time passes; b keeps its lease alive, a does not.
  const bool took_over = this->ElapseUntil(
      [&] {
        EXPECT_TRUE(this->store_->KeepAlive(b.id).ok());
        return b_done.load();
      },
      seconds(8), milliseconds(200));
  b_thread.join();
  ASSERT_TRUE(took_over);
  ASSERT_TRUE(b_won.ok()) << b_won.status().ToString();
  EXPECT_EQ((*s.Leader(election))->value, "b");
  EXPECT_EQ(this->MustGet(a_won->key), std::nullopt);
  ASSERT_TRUE(s.Revoke(b.id).ok());
}

TYPED_TEST(MetaStoreContract, CampaignThatTimesOutOrIsCancelledWithdraws) {
  auto& s = *this->store_;
  const std::string election = this->K("election");
  const LeaseGrant a = this->MustGrant(seconds(30));
  const LeaseGrant b = this->MustGrant(seconds(30));
  auto a_won = s.Campaign(election, a.id, "a", Nanos(0));
  ASSERT_TRUE(a_won.ok()) << a_won.status().ToString();

  auto timed_out = s.Campaign(election, b.id, "b", Nanos(0));
  EXPECT_EQ(timed_out.status().code(), StatusCode::kTimeout) << timed_out.status().ToString();
  auto keys = s.List(election + "/");
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 1u) << "the timed-out candidacy was left behind";
  EXPECT_EQ((*keys)[0].key, a_won->key);

  std::atomic<bool> cancel{false};
  Result<LeaderKey> cancelled = Status::Unavailable("not run");
  std::thread b_thread([&] {
    cancelled = this->store_->Campaign(election, b.id, "b", std::chrono::seconds(60), &cancel);
  });
  std::this_thread::sleep_for(milliseconds(200));
  const auto asked = std::chrono::steady_clock::now();
  cancel = true;
  b_thread.join();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, seconds(3));
  EXPECT_EQ(cancelled.status().code(), StatusCode::kTimeout) << cancelled.status().ToString();
  keys = s.List(election + "/");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 1u) << "the cancelled candidacy was left behind";
  EXPECT_EQ((*s.Leader(election))->value, "a");
  ASSERT_TRUE(s.Revoke(a.id).ok());
  ASSERT_TRUE(s.Revoke(b.id).ok());
}

TYPED_TEST(MetaStoreContract, CandidateWhoseLeaseExpiresWhileWaitingDoesNotLead) {
  auto& s = *this->store_;
  const std::string election = this->K("election");
  const LeaseGrant a = this->MustGrant(seconds(30));
  const LeaseGrant b = this->MustGrant(seconds(1));  // never renewed
  auto a_won = s.Campaign(election, a.id, "a", Nanos(0));
  ASSERT_TRUE(a_won.ok()) << a_won.status().ToString();

  Result<LeaderKey> b_won = Status::Unavailable("not run");
  std::thread b_thread(
      [&] { b_won = this->store_->Campaign(election, b.id, "b", std::chrono::seconds(20)); });
  // Wait (in real time, the clock standing still) for b's candidacy.
  const std::string b_key = CandidateKey(election, b.id);
  for (int i = 0; i < 5000 && !this->MustGet(b_key).has_value(); ++i) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_TRUE(this->MustGet(b_key).has_value());
  const bool expired = this->ElapseUntil(
      [&] {
        auto keys = this->store_->List(election + "/");
        return keys.ok() && keys->size() == 1;  // b's candidacy came and went
      },
      seconds(5));
  EXPECT_TRUE(expired);
  ASSERT_TRUE(s.Resign(*a_won).ok());
  b_thread.join();
  EXPECT_EQ(b_won.status().code(), StatusCode::kFailedPrecondition) << b_won.status().ToString();
  EXPECT_EQ(*s.Leader(election), std::nullopt);
  ASSERT_TRUE(s.Revoke(a.id).ok());
}

// ---------------------------------------------------------------------------
// The in-memory store: exact clock, determinism.

TEST(MemMetaStore, LeaseExpiresExactlyAtItsTtlOnTheClock) {
  ManualClock clock;
  MemMetaStore store(&clock);
  auto lease = store.Grant(seconds(2));
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(store.Put("/k", "v", lease->id).ok());
  const int64_t rev = store.Revision();
  clock.Advance(seconds(2) - Nanos(1));
  EXPECT_TRUE((*store.Get("/k")).has_value());
  EXPECT_EQ(store.Revision(), rev);
  clock.Advance(Nanos(1));
  EXPECT_FALSE((*store.Get("/k")).has_value());
  EXPECT_EQ(store.Revision(), rev + 1);  // the expiry is one revision
}

TEST(MemMetaStore, SameCallsSameClockSameResults) {
  auto run = [] {
    ManualClock clock;
    MemMetaStore store(&clock);
    std::vector<std::string> trace;
    for (int i = 0; i < 20; ++i) {
      auto lease = store.Grant(seconds(1 + i % 3));
      trace.push_back("lease " + std::to_string(lease->id.value()));
      auto r = store.Txn({Compare::ModRevisionIs("/k" + std::to_string(i % 5), 0)},
                         {Op::Put("/k" + std::to_string(i % 5), "v", lease->id)},
                         {Op::Put("/other", std::to_string(i))});
      trace.push_back(std::to_string(r->succeeded) + "@" + std::to_string(r->revision));
      auto won = store.Campaign("/e", lease->id, std::to_string(i), Nanos(0));
      trace.push_back(won.ok() ? won->key : won.status().ToString());
      clock.Advance(milliseconds(700));
    }
    auto listed = store.List("");
    for (const KeyValue& kv : *listed) {
      trace.push_back(kv.key + "=" + kv.value + "/" + std::to_string(kv.mod_revision));
    }
    return trace;
  };
  EXPECT_EQ(run(), run());
}

// ---------------------------------------------------------------------------
// The etcd store: errors.

class EtcdMetaStoreErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = EtcdEnvironment::Server();
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = *server;
  }
  Result<std::unique_ptr<EtcdMetaStore>> Open(const EtcdOptions& options) {
    return EtcdMetaStore::Open(options);
  }
  EtcdTestServer* server_ = nullptr;
};

TEST_F(EtcdMetaStoreErrors, OptionsAreValidated) {
  EtcdOptions o = server_->ClientOptions();
  o.endpoints.clear();
  EXPECT_EQ(Open(o).status().code(), StatusCode::kInvalidArgument);
  o = server_->ClientOptions();
  o.endpoints = {"127.0.0.1:2379"};
  EXPECT_EQ(Open(o).status().code(), StatusCode::kInvalidArgument);
  o = server_->ClientOptions();
  o.key_file.clear();
  EXPECT_EQ(Open(o).status().code(), StatusCode::kInvalidArgument);
  o = server_->ClientOptions();
  o.ca_file = server_->File("no-such-ca.crt");
  auto missing = Open(o);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no-such-ca.crt"), std::string::npos);
}

TEST_F(EtcdMetaStoreErrors, UnreachableEtcdIsUnavailableAndNamesTheEndpoint) {
  auto port = testing::PickFreePort();
  ASSERT_TRUE(port.ok());
  EtcdOptions o = server_->ClientOptions();
  const std::string dead = "https://127.0.0.1:" + std::to_string(*port);
  o.endpoints = {dead};
  auto store = Open(o);
  ASSERT_TRUE(store.ok());
  auto r = (*store)->Get("/k");
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find(dead), std::string::npos) << r.status().ToString();
  auto w = (*store)->Put("/k", "v");
  EXPECT_EQ(w.status().code(), StatusCode::kUnavailable) << w.status().ToString();
}

TEST_F(EtcdMetaStoreErrors, FailsOverToTheNextEndpoint) {
  auto port = testing::PickFreePort();
  ASSERT_TRUE(port.ok());
  EtcdOptions o = server_->ClientOptions();
  o.endpoints = {"https://127.0.0.1:" + std::to_string(*port), server_->endpoint()};
  auto store = Open(o);
  ASSERT_TRUE(store.ok());
  // A write that never reached the dead endpoint is safe to send to the next.
  auto w = (*store)->Put("/EtcdMetaStoreErrors/failover", "v");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  auto r = (*store)->Get("/EtcdMetaStoreErrors/failover");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->value, "v");
}

TEST_F(EtcdMetaStoreErrors, TlsFailuresArePermissionDenied) {
  struct Case {
    const char* what;
    std::function<void(EtcdOptions&)> change;
  };
  const std::vector<Case> cases = {
      {"server not signed by our CA",
       [&](EtcdOptions& o) { o.ca_file = server_->File("rogue-ca.crt"); }},
      {"client certificate from another CA",
       [&](EtcdOptions& o) {
         o.cert_file = server_->File("rogue-client.crt");
         o.key_file = server_->File("rogue-client.key");
       }},
      {"no client certificate",
       [&](EtcdOptions& o) {
         o.cert_file.clear();
         o.key_file.clear();
       }},
      {"key that does not match the certificate",
       [&](EtcdOptions& o) { o.key_file = server_->File("rogue-client.key"); }},
  };
  for (const Case& c : cases) {
    EtcdOptions o = server_->ClientOptions();
    c.change(o);
    auto store = Open(o);
    ASSERT_TRUE(store.ok()) << c.what;
    auto r = (*store)->Get("/k");
    EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied)
        << c.what << ": " << r.status().ToString();
    auto w = (*store)->Put("/k", "v");
    EXPECT_EQ(w.status().code(), StatusCode::kPermissionDenied)
        << c.what << ": " << w.status().ToString();
  }
}

// A plain-HTTP server on 127.0.0.1 that answers every request with one
// canned response (or never answers): what etcd must not say.
class FakeHttpServer {
 public:
  // `response` is the full HTTP response; empty: read requests, never answer.
  explicit FakeHttpServer(std::string response) : response_(std::move(response)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeHttpServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  EtcdOptions Options() const {
    EtcdOptions o;
    o.endpoints = {"http://127.0.0.1:" + std::to_string(port_)};
    o.request_timeout = milliseconds(300);
    return o;
  }

 private:
  void Serve() {
    std::vector<int> held;  // connections never answered
    while (!stop_) {
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 20) <= 0) continue;
      const int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      ReadRequest(conn);
      if (response_.empty()) {
        held.push_back(conn);
        continue;
      }
      EXPECT_EQ(::write(conn, response_.data(), response_.size()),
                static_cast<ssize_t>(response_.size()));
      ::close(conn);
    }
    for (int conn : held) ::close(conn);
  }
  // Reads headers and a Content-Length body (bounded wait).
  static void ReadRequest(int conn) {
    std::string req;
    char buf[4096];
    for (int i = 0; i < 50; ++i) {
      const size_t header_end = req.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        const size_t cl = req.find("Content-Length: ");
        const size_t body = cl == std::string::npos ? 0 : std::stoul(req.substr(cl + 16));
        if (req.size() >= header_end + 4 + body) return;
      }
      pollfd pfd{conn, POLLIN, 0};
      if (::poll(&pfd, 1, 20) <= 0) continue;
      const ssize_t n = ::read(conn, buf, sizeof(buf));
      if (n <= 0) return;
      req.append(buf, static_cast<size_t>(n));
    }
  }

  const std::string response_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string HttpResponse(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

TEST(EtcdMetaStoreAnswers, MalformedAnswersAreCorruption) {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"not JSON", HttpResponse(200, "hello")},
      {"JSON but not an object", HttpResponse(200, "[1,2]")},
      {"no header", HttpResponse(200, R"({"kvs":[]})")},
      {"revision not a number", HttpResponse(200, R"({"header":{"revision":"x"}})")},
      {"key not base64",
       HttpResponse(200, R"({"header":{"revision":"5"},"kvs":[{"key":"!!","create_revision":"1",)"
                         R"("mod_revision":"1","version":"1"}],"count":"1"})")},
      {"count disagrees", HttpResponse(200, R"({"header":{"revision":"5"},"count":"3"})")},
      {"another key than asked",
       HttpResponse(200, R"({"header":{"revision":"5"},"kvs":[{"key":"Zm9v","create_revision":"1",)"
                         R"("mod_revision":"1","version":"1"}],"count":"1"})")},
      {"not etcd at all", HttpResponse(404, "Not Found")},
  };
  for (const auto& [what, response] : cases) {
    FakeHttpServer fake(response);
    auto store = EtcdMetaStore::Open(fake.Options());
    ASSERT_TRUE(store.ok());
    auto r = (*store)->Get("/k");
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << what << ": " << r.status().ToString();
  }
}

TEST(EtcdMetaStoreAnswers, GatewayErrorsMapToStatusCodes) {
  const std::vector<std::tuple<const char*, std::string, StatusCode>> cases = {
      {"invalid argument",
       HttpResponse(400, R"({"error":"etcdserver: bad","message":"etcdserver: bad","code":3})"),
       StatusCode::kInvalidArgument},
      {"unavailable",
       HttpResponse(503, R"({"error":"etcdserver: no leader","message":"etcdserver: no leader",)"
                         R"("code":14})"),
       StatusCode::kUnavailable},
      {"permission denied",
       HttpResponse(403, R"({"error":"etcdserver: permission denied",)"
                         R"("message":"etcdserver: permission denied","code":7})"),
       StatusCode::kPermissionDenied},
      {"space exceeded",
       HttpResponse(429, R"({"error":"etcdserver: mvcc: database space exceeded",)"
                         R"("message":"etcdserver: mvcc: database space exceeded","code":8})"),
       StatusCode::kNoSpace},
  };
  for (const auto& [what, response, code] : cases) {
    FakeHttpServer fake(response);
    auto store = EtcdMetaStore::Open(fake.Options());
    ASSERT_TRUE(store.ok());
    auto r = (*store)->Put("/k", "v");
    EXPECT_EQ(r.status().code(), code) << what << ": " << r.status().ToString();
  }
}

TEST(EtcdMetaStoreAnswers, NoAnswerIsTimeoutAndAWriteSaysItsOutcomeIsUnknown) {
  FakeHttpServer silent("");
  auto store = EtcdMetaStore::Open(silent.Options());
  ASSERT_TRUE(store.ok());
  auto r = (*store)->Get("/k");
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout) << r.status().ToString();
  auto w = (*store)->Put("/k", "v");
  EXPECT_EQ(w.status().code(), StatusCode::kTimeout) << w.status().ToString();
  EXPECT_NE(w.status().message().find("may or may not have been applied"), std::string::npos)
      << w.status().ToString();
}

}  // namespace
}  // namespace cairn::metaserver

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new cairn::metaserver::EtcdEnvironment());
  return RUN_ALL_TESTS();
}
