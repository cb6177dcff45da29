// Unit tests of the replica state machine (chunkserver/replica.h), driven by
// hand: every message and every fsync completion is delivered explicitly.
#include "chunkserver/replica.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>

namespace cairn::chunkserver {
namespace {

using namespace std::chrono_literals;

const PartitionId kP(0);
const NodeId kA(1), kB(2), kC(3);

ReplicaConfig Config(uint64_t epoch, std::vector<NodeId> replicas, std::vector<NodeId> in_sync) {
  return ReplicaConfig{kP, Epoch(epoch), std::move(replicas), std::move(in_sync)};
}

// Three replicas; effects are queued, and delivered or synced on request.
struct Trio {
  std::map<NodeId, std::unique_ptr<Replica>> r;
  std::deque<std::pair<NodeId, PeerMessage>> wire;
  std::map<NodeId, uint64_t> last_seq;
  std::vector<ReplyEffect> replies;
  std::map<NodeId, std::vector<LogEntry>> applied;
  std::vector<InSyncRequest> requests;
  std::map<NodeId, int> installed;
  Nanos now{1'000'000'000};

  explicit Trio(ReplicaOptions o = ReplicaOptions{}) {
    for (NodeId n : {kA, kB, kC}) {
      r[n] = std::make_unique<Replica>(n, kP, o, RecoveredLog{{}, {}, {}, true});
    }
  }
  void Take(NodeId at, Effects fx) {
    for (auto& e : fx) {
      if (auto* a = std::get_if<AppendEffect>(&e)) last_seq[at] = a->seq;
      if (auto* t = std::get_if<TruncateEffect>(&e)) last_seq[at] = t->seq;
      if (auto* s = std::get_if<SendEffect>(&e)) wire.emplace_back(s->to, s->msg);
      if (auto* p = std::get_if<ReplyEffect>(&e)) replies.push_back(*p);
      if (auto* a = std::get_if<ApplyEffect>(&e)) applied[at].push_back(a->entry);
      if (auto* m = std::get_if<MetaRequestEffect>(&e)) requests.push_back(m->request);
      if (auto* i = std::get_if<InstallSnapshotEffect>(&e)) {
        last_seq[at] = i->seq;
        installed[at]++;
      }
      if (auto* ss = std::get_if<SendSnapshotEffect>(&e)) {
        wire.emplace_back(ss->to, SnapshotMsg{kP, ss->epoch, at, ss->lsn, ss->lsn_epoch, "state"});
      }
    }
  }
  void ConfigAll(const ReplicaConfig& c) {
    for (auto& [n, x] : r) Take(n, x->OnConfig(c, now));
  }
  void Sync(NodeId n) { Take(n, r[n]->OnDurable(last_seq[n], now)); }
  void SyncAll() {
    for (NodeId n : {kA, kB, kC}) Sync(n);
  }
  // Delivers every queued message (and what they cause) except to `drop`.
  void Pump(std::optional<NodeId> drop = std::nullopt) {
    for (int rounds = 0; rounds < 100 && !wire.empty(); ++rounds) {
      auto [to, m] = wire.front();
      wire.pop_front();
      if (drop && to == *drop) continue;
      Take(to, r[to]->OnMessage(m, now));
    }
  }
  void Settle(std::optional<NodeId> drop = std::nullopt) {
    for (int i = 0; i < 6; ++i) {
      Pump(drop);
      for (NodeId n : {kA, kB, kC}) {
        if (!drop || n != *drop) Sync(n);
      }
    }
    Pump(drop);
  }
};

TEST(Replica, CommitWaitsForEveryInSyncBackup) {
  Trio t;
  t.ConfigAll(Config(1, {kA, kB, kC}, {kA, kB, kC}));
  EXPECT_EQ(t.r[kA]->role(), ReplicaRole::kPrimary);
  t.Take(kA, t.r[kA]->OnLease(Epoch(1), t.now, t.now));
  t.Settle();
  ASSERT_TRUE(t.r[kA]->active());  // the epoch's no-op committed
  t.Take(kA, t.r[kA]->OnClientMutation(7, RequestId{1, 1, 1}, "k\nv", t.now));
  // Delivered to B only; C never answers: no commit.
  t.Settle(kC);
  EXPECT_TRUE(t.replies.empty());
  EXPECT_EQ(t.r[kA]->commit_lsn(), Lsn(1));
  // C comes back: committed, answered with its LSN, applied everywhere.
  t.Take(kA, t.r[kA]->OnTick(t.now + 300ms));
  t.Settle();
  ASSERT_EQ(t.replies.size(), 1u);
  EXPECT_TRUE(t.replies[0].status.ok());
  EXPECT_EQ(t.replies[0].lsn, Lsn(2));
  EXPECT_EQ(t.applied[kA].size(), 2u);
  // The backups learn the commit point with the next message.
  t.Take(kA, t.r[kA]->OnTick(t.now + 600ms));
  t.Settle();
  EXPECT_EQ(t.r[kB]->commit_lsn(), Lsn(2));
  EXPECT_EQ(t.r[kC]->commit_lsn(), Lsn(2));
}

TEST(Replica, NoLeaseNoService) {
  Trio t;
  t.ConfigAll(Config(1, {kA, kB, kC}, {kA, kB, kC}));
  t.Settle();
  EXPECT_FALSE(t.r[kA]->active());  // cannot commit its no-op without a lease
  t.Take(kA, t.r[kA]->OnClientMutation(1, RequestId{1, 1, 1}, "k\nv", t.now));
  ASSERT_EQ(t.replies.size(), 1u);
  EXPECT_EQ(t.replies[0].status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(t.r[kA]->CheckRead(t.now).code(), StatusCode::kUnavailable);
  t.Take(kA, t.r[kA]->OnLease(Epoch(1), t.now, t.now));
  t.Settle();
  EXPECT_TRUE(t.r[kA]->CheckRead(t.now).ok());
  // The lease runs out before lease * (1 - margin) on the primary's clock.
  EXPECT_FALSE(t.r[kA]->CheckRead(t.now + 1800ms).ok());
  EXPECT_EQ(t.r[kB]->CheckRead(t.now).code(), StatusCode::kNotPrimary);
}

TEST(Replica, RetryWithSameRequestIdJoinsTheEntry) {
  Trio t;
  t.ConfigAll(Config(1, {kA, kB, kC}, {kA, kB, kC}));
  t.Take(kA, t.r[kA]->OnLease(Epoch(1), t.now, t.now));
  t.Settle();
  t.Take(kA, t.r[kA]->OnClientMutation(1, RequestId{1, 1, 5}, "k\nv", t.now));
  t.Take(kA, t.r[kA]->OnClientMutation(2, RequestId{1, 1, 5}, "k\nv", t.now));
  t.Settle();
  ASSERT_EQ(t.replies.size(), 2u);
  EXPECT_EQ(t.replies[0].lsn, t.replies[1].lsn);
  EXPECT_EQ(t.r[kA]->last_lsn(), Lsn(2));  // one entry, not two
}

TEST(Replica, OldEpochIsRefusedAndOldPrimaryStepsDown) {
  Trio t;
  t.ConfigAll(Config(1, {kA, kB, kC}, {kA, kB, kC}));
  t.Take(kA, t.r[kA]->OnLease(Epoch(1), t.now, t.now));
  t.Settle();
  // B becomes primary in epoch 2 (A missed the change).
  auto c2 = Config(2, {kB, kA, kC}, {kB, kC});
  t.Take(kB, t.r[kB]->OnConfig(c2, t.now));
  t.Take(kC, t.r[kC]->OnConfig(c2, t.now));
  t.Take(kA, t.r[kA]->OnClientMutation(1, RequestId{1, 1, 1}, "k\nv", t.now));
  t.Settle();
  EXPECT_EQ(t.r[kA]->role(), ReplicaRole::kBackup);  // heard of epoch 2
  ASSERT_EQ(t.replies.size(), 1u);
  EXPECT_EQ(t.replies[0].status.code(), StatusCode::kNotPrimary);
}

TEST(Replica, NewPrimaryCutsTheUncommittedTail) {
  Trio t;
  t.ConfigAll(Config(1, {kA, kB, kC}, {kA, kB, kC}));
  t.Take(kA, t.r[kA]->OnLease(Epoch(1), t.now, t.now));
  t.Settle();
  // Entry 2 reaches C only (B and A's acks never complete it).
  t.Take(kA, t.r[kA]->OnClientMutation(1, RequestId{1, 1, 1}, "k\nold", t.now));
  t.Pump(kB);
  t.Sync(kC);
  EXPECT_EQ(t.r[kC]->last_lsn(), Lsn(2));
  t.wire.clear();
  // A dies; B (without entry 2) is promoted; C's entry 2 is cut.
  auto c2 = Config(2, {kB, kA, kC}, {kB, kC});
  t.Take(kB, t.r[kB]->OnConfig(c2, t.now));
  t.Take(kC, t.r[kC]->OnConfig(c2, t.now));
  t.Take(kB, t.r[kB]->OnLease(Epoch(2), t.now, t.now));
  for (int i = 0; i < 5; ++i) {
    t.Settle(kA);
    t.Take(kB, t.r[kB]->OnTick(t.now + std::chrono::milliseconds(300 * (i + 1))));
  }
  t.Settle(kA);
  EXPECT_TRUE(t.r[kB]->active());
  ASSERT_NE(t.r[kC]->EntryAt(Lsn(2)), nullptr);
  EXPECT_TRUE(t.r[kC]->EntryAt(Lsn(2))->noop);  // B's epoch-2 no-op replaced it
  EXPECT_EQ(t.r[kC]->EpochAt(Lsn(2)), Epoch(2));
}

TEST(Replica, RestartedPrimaryDoesNotLeadTheEpochItSaw) {
  Replica r(kA, kP, ReplicaOptions{},
            RecoveredLog{Lsn(0), Epoch(0), {LogEntry{Lsn(1), Epoch(3), {}, "", true}}});
  EXPECT_FALSE(r.Report().can_lead);
  Effects fx = r.OnConfig(Config(3, {kA, kB}, {kA, kB}), Nanos(0));
  EXPECT_EQ(r.role(), ReplicaRole::kFenced);
  EXPECT_FALSE(r.Report().can_lead);
  fx = r.OnConfig(Config(4, {kA, kB}, {kA, kB}), Nanos(0));
  EXPECT_EQ(r.role(), ReplicaRole::kPrimary);
  EXPECT_EQ(r.last_lsn(), Lsn(2));  // its epoch-4 no-op
}

TEST(Replica, SilentBackupIsReportedAndDroppedThroughTheMetaserver) {
  Trio t;
  t.ConfigAll(Config(1, {kA, kB, kC}, {kA, kB, kC}));
  t.Take(kA, t.r[kA]->OnLease(Epoch(1), t.now, t.now));
  t.Settle();
  t.Take(kA, t.r[kA]->OnClientMutation(1, RequestId{1, 1, 1}, "k\nv", t.now));
  t.Settle(kC);
  t.Take(kA, t.r[kA]->OnTick(t.now + 1100ms));
  ASSERT_EQ(t.requests.size(), 1u);
  EXPECT_EQ(t.requests[0].kind, InSyncRequest::Kind::kDrop);
  EXPECT_EQ(t.requests[0].node, kC);
  EXPECT_TRUE(t.replies.empty());  // still waiting: only the metaserver drops a backup
  // The metaserver's new epoch without C: A commits (same primary continues).
  t.Take(kA, t.r[kA]->OnConfig(Config(2, {kA, kB, kC}, {kA, kB}), t.now + 1100ms));
  ASSERT_EQ(t.replies.size(), 1u);
  EXPECT_TRUE(t.replies[0].status.ok());
}

TEST(Replica, LearnerCatchesUpBySnapshotThenAsksToJoin) {
  ReplicaOptions o;
  o.log_retention = 2;  // the primary keeps little log: a snapshot is needed
  Trio t(o);
  t.ConfigAll(Config(1, {kA, kB, kC}, {kA, kB}));  // C is a learner
  EXPECT_EQ(t.r[kC]->role(), ReplicaRole::kLearner);
  t.Take(kA, t.r[kA]->OnLease(Epoch(1), t.now, t.now));
  t.Settle(kC);
  for (uint64_t i = 1; i <= 10; ++i) {
    t.Take(kA, t.r[kA]->OnClientMutation(i, RequestId{1, 1, i}, "k\nv", t.now));
    t.Settle(kC);  // commits without the learner
  }
  EXPECT_EQ(t.replies.size(), 10u);
  EXPECT_GT(t.r[kA]->base_lsn(), Lsn(0));  // compacted
  EXPECT_TRUE(t.requests.empty());
  // C comes back: a snapshot, then the log, then the primary asks to admit it.
  for (int i = 1; i <= 4; ++i) {
    t.Take(kA, t.r[kA]->OnTick(t.now + std::chrono::milliseconds(i * 1100)));
    t.Settle();
  }
  EXPECT_EQ(t.installed[kC], 1);
  EXPECT_EQ(t.r[kC]->last_lsn(), t.r[kA]->last_lsn());
  ASSERT_FALSE(t.requests.empty());
  EXPECT_EQ(t.requests.back().kind, InSyncRequest::Kind::kJoin);
  EXPECT_EQ(t.requests.back().node, kC);
  // From the request on, commits wait for C too.
  t.now += 5s;
  t.Take(kA, t.r[kA]->OnLease(Epoch(1), t.now, t.now));
  t.Take(kA, t.r[kA]->OnClientMutation(99, RequestId{1, 1, 99}, "k\nw", t.now));
  t.Settle(kC);
  EXPECT_EQ(t.replies.size(), 10u);
  t.Take(kA, t.r[kA]->OnTick(t.now + 300ms));  // resends to C
  t.Settle();
  ASSERT_EQ(t.replies.size(), 11u);
  EXPECT_TRUE(t.replies.back().status.ok()) << t.replies.back().status.ToString();
}

// A delivered snapshot (the host's stream ended with the receiver's "done")
// moves the peer past it at once: the next tick sends entries, not another
// snapshot, even though the receiver has not yet acknowledged it durably.
// Without that, each tick after a stream ended started a new snapshot of
// the moving state while writes ran.
TEST(Replica, ADeliveredSnapshotIsFollowedByTheLogNotAnotherSnapshot) {
  ReplicaOptions o;
  o.log_retention = 2;
  Trio t(o);
  t.ConfigAll(Config(1, {kA, kB, kC}, {kA, kB}));  // C is a learner
  t.Take(kA, t.r[kA]->OnLease(Epoch(1), t.now, t.now));
  t.Settle(kC);
  for (uint64_t i = 1; i <= 10; ++i) {
    t.Take(kA, t.r[kA]->OnClientMutation(i, RequestId{1, 1, i}, "k\nv", t.now));
    t.Settle(kC);
  }
  ASSERT_GT(t.r[kA]->base_lsn(), Lsn(1));
  auto snapshots_to_c = [&](const Effects& fx) {
    return std::count_if(fx.begin(), fx.end(), [](const ReplicaEffect& e) {
      const auto* ss = std::get_if<SendSnapshotEffect>(&e);
      return ss != nullptr && ss->to == kC;
    });
  };
  t.now += 1100ms;
  Effects fx = t.r[kA]->OnTick(t.now);
  ASSERT_EQ(snapshots_to_c(fx), 1);
  const Lsn at = t.r[kA]->commit_lsn();
  // Two more writes while the stream runs (C hears nothing of them).
  for (uint64_t i = 11; i <= 12; ++i) {
    t.Take(kA, t.r[kA]->OnClientMutation(i, RequestId{1, 1, i}, "k\nv", t.now));
    t.Settle(kC);
  }
  // C installs the snapshot; its durable acknowledgement is not there yet.
  t.Take(kC, t.r[kC]->OnMessage(SnapshotMsg{kP, Epoch(1), kA, at, Epoch(1), "state"}, t.now));
  t.wire.clear();
  t.now += 1100ms;
  fx = t.r[kA]->OnSnapshotDelivered(kC, at, t.now);
  EXPECT_EQ(snapshots_to_c(fx), 0);
  bool entries_after = false;
  for (const ReplicaEffect& e : fx) {
    const auto* s = std::get_if<SendEffect>(&e);
    if (s == nullptr || s->to != kC) continue;
    if (const auto* m = std::get_if<ReplicateMsg>(&s->msg)) {
      if (m->prev_lsn == at && !m->entries.empty()) entries_after = true;
    }
  }
  EXPECT_TRUE(entries_after);
  t.Take(kA, std::move(fx));
  t.now += 1100ms;
  EXPECT_EQ(snapshots_to_c(t.r[kA]->OnTick(t.now)), 0);
  // C takes the entries after its snapshot and reaches the primary's log.
  t.Settle();
  EXPECT_EQ(t.installed[kC], 1);
  EXPECT_EQ(t.r[kC]->last_lsn(), t.r[kA]->last_lsn());
}

// An in-sync backup whose volume was wiped comes back with an empty log. It
// hears from the primary but serves no backup read, and the primary, told
// that it lacks committed entries, asks the metaserver to drop it from the
// in-sync set (it then catches up as a learner).
TEST(Replica, AnInSyncBackupThatLostItsLogIsDroppedAndServesNoReads) {
  Trio t;
  t.ConfigAll(Config(1, {kA, kB, kC}, {kA, kB, kC}));
  t.Take(kA, t.r[kA]->OnLease(Epoch(1), t.now, t.now));
  t.Settle();
  for (uint64_t i = 1; i <= 5; ++i) {
    t.Take(kA, t.r[kA]->OnClientMutation(i, RequestId{1, 1, i}, "k\nv", t.now));
    t.Settle();
  }
  ASSERT_EQ(t.replies.size(), 5u);
  const Lsn committed = t.r[kA]->commit_lsn();
  ASSERT_GE(committed, Lsn(6));
  t.now += 300ms;
  t.Take(kA, t.r[kA]->OnTick(t.now));  // the commit point reaches C
  t.Settle();
  ASSERT_TRUE(t.r[kC]->CheckBackupRead(t.now, 1000ms).ok());
  ASSERT_TRUE(t.requests.empty());
  // C's volume is replaced: a fresh, empty log, same node.
  t.r[kC] = std::make_unique<Replica>(kC, kP, ReplicaOptions{}, RecoveredLog{{}, {}, {}, true});
  t.Take(kC, t.r[kC]->OnConfig(Config(1, {kA, kB, kC}, {kA, kB, kC}), t.now));
  t.now += 300ms;
  t.Take(kA, t.r[kA]->OnTick(t.now));
  t.Pump();
  // It heard from its primary, yet it holds nothing: no backup read.
  EXPECT_FALSE(t.r[kC]->CheckBackupRead(t.now, 1000ms).ok());
  ASSERT_FALSE(t.requests.empty());
  EXPECT_EQ(t.requests.back().kind, InSyncRequest::Kind::kDrop);
  EXPECT_EQ(t.requests.back().node, kC);
  // B, which holds everything, is never asked about.
  for (const InSyncRequest& r : t.requests) EXPECT_NE(r.node, kB);
}

// A learner that is close behind while writes go on: commits wait for it
// from then on (a pending join), so it reaches the commit point and is asked
// in, instead of chasing a commit point that moves on with every write.
TEST(Replica, ALearnerCloseBehindIsWaitedForThenAskedToJoin) {
  Trio t;
  t.ConfigAll(Config(1, {kA, kB, kC}, {kA, kB}));  // C is a learner
  t.Take(kA, t.r[kA]->OnLease(Epoch(1), t.now, t.now));
  t.Settle(kC);
  ASSERT_TRUE(t.r[kA]->active());
  // Delivers the queued messages `pick` accepts (and what they cause), once.
  auto deliver = [&](auto pick) {
    std::deque<std::pair<NodeId, PeerMessage>> keep;
    while (!t.wire.empty()) {
      auto [to, m] = t.wire.front();
      t.wire.pop_front();
      if (pick(to, m)) {
        t.Take(to, t.r[to]->OnMessage(m, t.now));
      } else {
        keep.emplace_back(to, m);
      }
    }
    t.wire = std::move(keep);
  };
  auto from = [](const PeerMessage& m) {
    if (const auto* a = std::get_if<ReplicateAck>(&m)) return a->from;
    return kA;
  };
  // Committed with B while C has not answered yet.
  auto commit_with_b = [&](uint64_t i) {
    t.Take(kA, t.r[kA]->OnClientMutation(i, RequestId{1, 1, i}, "k\nv", t.now));
    t.Sync(kA);
    deliver([](NodeId to, const PeerMessage&) { return to == kB; });
    t.Sync(kB);
    deliver([&](NodeId to, const PeerMessage& m) { return to == kA && from(m) == kB; });
  };
  commit_with_b(1);
  commit_with_b(2);
  ASSERT_EQ(t.replies.size(), 2u);
  // C gets and acknowledges what it was sent, but a write commits meanwhile.
  deliver([](NodeId to, const PeerMessage&) { return to == kC; });
  t.Sync(kC);
  commit_with_b(3);
  ASSERT_EQ(t.replies.size(), 3u);
  deliver([&](NodeId to, const PeerMessage& m) { return to == kA && from(m) == kC; });
  EXPECT_LT(t.r[kA]->commit_lsn(), Lsn(5));  // no-op and three writes: C is behind
  EXPECT_TRUE(t.requests.empty());           // not asked while behind
  // From now on commits wait for C: B alone does not commit the next write.
  commit_with_b(4);
  EXPECT_EQ(t.replies.size(), 3u);
  // C catches up: the write commits, and C is asked in.
  t.Settle();
  ASSERT_EQ(t.replies.size(), 4u);
  EXPECT_TRUE(t.replies.back().status.ok()) << t.replies.back().status.ToString();
  ASSERT_FALSE(t.requests.empty());
  EXPECT_EQ(t.requests.back().kind, InSyncRequest::Kind::kJoin);
  EXPECT_EQ(t.requests.back().node, kC);
}

TEST(Replica, StaleSnapshotNeverTakesAReplicaBack) {
  Trio t;
  t.ConfigAll(Config(1, {kA, kB, kC}, {kA, kB, kC}));
  t.Take(kA, t.r[kA]->OnLease(Epoch(1), t.now, t.now));
  t.Settle();
  for (uint64_t i = 1; i <= 3; ++i) {
    t.Take(kA, t.r[kA]->OnClientMutation(i, RequestId{1, 1, i}, "k\nv", t.now));
    t.Settle();
  }
  const Lsn before = t.r[kB]->last_lsn();
  // A late duplicate of an old snapshot (at LSN 1) reaches B.
  t.Take(kB, t.r[kB]->OnMessage(SnapshotMsg{kP, Epoch(1), kA, Lsn(1), Epoch(1), "old"}, t.now));
  EXPECT_EQ(t.installed[kB], 0);
  EXPECT_EQ(t.r[kB]->last_lsn(), before);
}

TEST(Replica, BackupReadsOnlyInSyncAndInTouchWithThePrimary) {
  Trio t;
  t.ConfigAll(Config(1, {kA, kB, kC}, {kA, kB}));  // C is a learner
  t.Take(kA, t.r[kA]->OnLease(Epoch(1), t.now, t.now));
  t.Settle();
  t.Take(kA, t.r[kA]->OnClientMutation(1, RequestId{1, 1, 1}, "k\nv", t.now));
  t.Settle();
  ASSERT_EQ(t.replies.size(), 1u);
  const Nanos lag = 1000ms;
  // The primary answers as CheckRead; the in-sync backup B too, while it
  // recently heard from the primary; the learner C never.
  EXPECT_TRUE(t.r[kA]->CheckBackupRead(t.now, lag).ok());
  EXPECT_TRUE(t.r[kB]->CheckBackupRead(t.now + 500ms, lag).ok());
  EXPECT_EQ(t.r[kC]->CheckBackupRead(t.now, lag).code(), StatusCode::kNotPrimary);
  EXPECT_EQ(t.r[kB]->CheckRead(t.now).code(), StatusCode::kNotPrimary);  // a primary read
  // Silence from the primary for max_lag: B stops answering until it hears again.
  EXPECT_EQ(t.r[kB]->CheckBackupRead(t.now + 1000ms, lag).code(), StatusCode::kUnavailable);
  t.now += 1000ms;
  t.Take(kA, t.r[kA]->OnTick(t.now));  // the idle primary's commit point
  t.Pump();
  EXPECT_TRUE(t.r[kB]->CheckBackupRead(t.now, lag).ok());
  EXPECT_EQ(t.r[kB]->commit_lsn(), t.r[kA]->commit_lsn());  // it has the acknowledged write
  // A message of a newer epoch before its configuration: not yet known to
  // be in sync in that epoch, so no backup reads.
  ReplicateMsg newer;
  newer.partition = kP;
  newer.epoch = Epoch(2);
  newer.from = kC;
  newer.prev_lsn = t.r[kB]->last_lsn();
  newer.prev_epoch = t.r[kB]->EpochAt(newer.prev_lsn);
  newer.commit_lsn = Lsn(0);
  t.Take(kB, t.r[kB]->OnMessage(newer, t.now));
  EXPECT_EQ(t.r[kB]->CheckBackupRead(t.now, lag).code(), StatusCode::kNotPrimary);
  // Dropped from the in-sync set: no backup reads either.
  t.Take(kB, t.r[kB]->OnConfig(Config(2, {kC, kA, kB}, {kC, kA}), t.now));
  EXPECT_EQ(t.r[kB]->role(), ReplicaRole::kLearner);
  t.Take(kB, t.r[kB]->OnMessage(newer, t.now));
  EXPECT_EQ(t.r[kB]->CheckBackupRead(t.now, lag).code(), StatusCode::kNotPrimary);
}

}  // namespace
}  // namespace cairn::chunkserver
