// Round trips and validation of the replication messages' Thrift twins.
#include "chunkserver/replica_wire.h"

#include <gtest/gtest.h>

namespace cairn::chunkserver {
namespace {

ReplicateMsg Sample() {
  ReplicateMsg m;
  m.partition = PartitionId(7);
  m.epoch = Epoch(5);
  m.from = NodeId(3);
  m.prev_lsn = Lsn(41);
  m.prev_epoch = Epoch(4);
  m.commit_lsn = Lsn(40);
  m.entries.push_back(LogEntry{Lsn(42), Epoch(5), RequestId{1, 2, 3}, "", true});
  m.entries.push_back(LogEntry{Lsn(43), Epoch(5), RequestId{0xFFFFFFFFFFFFFFFFull, 9, 10},
                               std::string("a\0b", 3), false});
  return m;
}

TEST(ReplicaWire, ReplicateRoundTrip) {
  const ReplicateMsg m = Sample();
  Result<ReplicateMsg> back = FromWire(ToWire(m));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->partition, m.partition);
  EXPECT_EQ(back->epoch, m.epoch);
  EXPECT_EQ(back->from, m.from);
  EXPECT_EQ(back->prev_lsn, m.prev_lsn);
  EXPECT_EQ(back->prev_epoch, m.prev_epoch);
  EXPECT_EQ(back->commit_lsn, m.commit_lsn);
  EXPECT_EQ(back->entries, m.entries);
}

TEST(ReplicaWire, ReplicateRefusesBrokenInput) {
  rpc::ReplicateRequest w = ToWire(Sample());
  w.entries[1].lsn = 45;  // a gap
  EXPECT_EQ(FromWire(w).status().code(), StatusCode::kInvalidArgument);
  w = ToWire(Sample());
  w.entries[0].epoch = 6;  // later than the message's epoch
  EXPECT_EQ(FromWire(w).status().code(), StatusCode::kInvalidArgument);
  w = ToWire(Sample());
  w.prev_lsn = -1;
  EXPECT_EQ(FromWire(w).status().code(), StatusCode::kInvalidArgument);
}

TEST(ReplicaWire, AckRoundTripAndReports) {
  ReplicateAck a{PartitionId(1), Epoch(9), NodeId(2), true, Lsn(77)};
  Result<ReplicateAck> back = FromWire(ToWire(a));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->last_lsn, Lsn(77));
  EXPECT_TRUE(back->ok);
  rpc::ReplicateAck bad = ToWire(a);
  bad.epoch = -3;
  EXPECT_FALSE(FromWire(bad).ok());

  ReplicaReport r;
  r.partition = PartitionId(4);
  r.epoch = Epoch(2);
  r.role = ReplicaRole::kPrimary;
  r.last_lsn = Lsn(10);
  r.commit_lsn = Lsn(9);
  r.can_lead = true;
  const rpc::ReplicaReport w = ToWire(r);
  EXPECT_TRUE(w.primary);
  EXPECT_EQ(w.last_lsn, 10);
  EXPECT_TRUE(w.can_lead);
  const rpc::InSyncChange c = ToWire(
      InSyncRequest{InSyncRequest::Kind::kJoin, PartitionId(4), Epoch(2), NodeId(1), NodeId(3)});
  EXPECT_TRUE(c.join);
  EXPECT_EQ(c.node, 3);
}

TEST(ReplicaWire, SnapshotChunkRoundTripAndAnswers) {
  SnapshotChunkMsg m;
  m.partition = PartitionId(3);
  m.epoch = Epoch(7);
  m.from = NodeId(2);
  m.lsn = Lsn(500);
  m.lsn_epoch = Epoch(6);
  m.snapshot_id = 1ull << 60;
  m.chunk_index = 41;
  m.last = true;
  m.data = std::string("\0\1chunk", 7);
  Result<SnapshotChunkMsg> back = FromWire(ToWire(m));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->partition, m.partition);
  EXPECT_EQ(back->epoch, m.epoch);
  EXPECT_EQ(back->from, m.from);
  EXPECT_EQ(back->lsn, m.lsn);
  EXPECT_EQ(back->lsn_epoch, m.lsn_epoch);
  EXPECT_EQ(back->snapshot_id, m.snapshot_id);
  EXPECT_EQ(back->chunk_index, 41u);
  EXPECT_TRUE(back->last);
  EXPECT_EQ(back->data, m.data);
  rpc::SnapshotChunk bad = ToWire(m);
  bad.chunk_index = -1;
  EXPECT_FALSE(FromWire(bad).ok());
  bad = ToWire(m);
  bad.snapshot_id = -5;
  EXPECT_FALSE(FromWire(bad).ok());

  Result<SnapshotChunkAnswer> a = FromWire(ToWire(SnapshotChunkAnswer{12, false}));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->next_chunk, 12u);
  EXPECT_FALSE(a->done);
  rpc::SnapshotChunkAck neg;
  neg.next_chunk = -1;
  EXPECT_FALSE(FromWire(neg).ok());
}

}  // namespace
}  // namespace cairn::chunkserver
