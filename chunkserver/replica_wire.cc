#include "chunkserver/replica_wire.h"

#include <string>

namespace cairn::chunkserver {
namespace {

int64_t I64(uint64_t v) { return static_cast<int64_t>(v); }
int32_t I32(uint32_t v) { return static_cast<int32_t>(v); }

// Every field a peer sends is checked before it becomes a strong id.
class Checker {
 public:
  uint64_t U64(int64_t v, const char* what) {
    if (v < 0 && status_.ok()) status_ = Status::InvalidArgument(std::string("negative ") + what);
    return static_cast<uint64_t>(v);
  }
  uint32_t U32(int32_t v, const char* what) {
    if (v < 0 && status_.ok()) status_ = Status::InvalidArgument(std::string("negative ") + what);
    return static_cast<uint32_t>(v);
  }
  void Fail(std::string what) {
    if (status_.ok()) status_ = Status::InvalidArgument(std::move(what));
  }
  const Status& status() const { return status_; }

 private:
  Status status_;
};

rpc::ReplLogEntry EntryToWire(const LogEntry& e) {
  rpc::ReplLogEntry w;
  w.lsn = I64(e.lsn.value());
  w.epoch = I64(e.epoch.value());
  w.request_id.client_hi = I64(e.request_id.client_hi);
  w.request_id.client_lo = I64(e.request_id.client_lo);
  w.request_id.seq = I64(e.request_id.seq);
  w.payload = e.payload;
  w.noop = e.noop;
  return w;
}

}  // namespace

size_t ApproximateBytes(const PeerMessage& m) {
  constexpr size_t kMessage = 64;
  constexpr size_t kEntry = 48;
  if (const auto* r = std::get_if<ReplicateMsg>(&m)) {
    size_t n = kMessage;
    for (const LogEntry& e : r->entries) n += kEntry + e.payload.size();
    return n;
  }
  if (const auto* s = std::get_if<SnapshotMsg>(&m)) return kMessage + s->state.size();
  return kMessage;
}

rpc::ReplicateRequest ToWire(const ReplicateMsg& m) {
  rpc::ReplicateRequest w;
  w.partition = I32(m.partition.value());
  w.epoch = I64(m.epoch.value());
  w.from_node = I32(m.from.value());
  w.prev_lsn = I64(m.prev_lsn.value());
  w.prev_epoch = I64(m.prev_epoch.value());
  w.entries.reserve(m.entries.size());
  for (const LogEntry& e : m.entries) w.entries.push_back(EntryToWire(e));
  w.commit_lsn = I64(m.commit_lsn.value());
  return w;
}

Result<ReplicateMsg> FromWire(const rpc::ReplicateRequest& w) {
  Checker c;
  ReplicateMsg m;
  m.partition = PartitionId(c.U32(w.partition, "partition"));
  m.epoch = Epoch(c.U64(w.epoch, "epoch"));
  m.from = NodeId(c.U32(w.from_node, "node"));
  m.prev_lsn = Lsn(c.U64(w.prev_lsn, "prev_lsn"));
  m.prev_epoch = Epoch(c.U64(w.prev_epoch, "prev_epoch"));
  m.commit_lsn = Lsn(c.U64(w.commit_lsn, "commit_lsn"));
  m.entries.reserve(w.entries.size());
  uint64_t expect = m.prev_lsn.value() + 1;
  for (const rpc::ReplLogEntry& we : w.entries) {
    LogEntry e;
    e.lsn = Lsn(c.U64(we.lsn, "lsn"));
    e.epoch = Epoch(c.U64(we.epoch, "entry epoch"));
    e.request_id = RequestId{static_cast<uint64_t>(we.request_id.client_hi),
                             static_cast<uint64_t>(we.request_id.client_lo),
                             static_cast<uint64_t>(we.request_id.seq)};
    e.payload = we.payload;
    e.noop = we.noop;
    if (e.lsn.value() != expect) {
      c.Fail("replicate: entry lsn " + std::to_string(e.lsn.value()) + " where " +
             std::to_string(expect) + " was expected");
    }
    if (e.epoch > m.epoch) c.Fail("replicate: an entry of a later epoch than the message");
    ++expect;
    m.entries.push_back(std::move(e));
  }
  if (!c.status().ok()) return c.status();
  return m;
}

rpc::ReplicateAck ToWire(const ReplicateAck& m) {
  rpc::ReplicateAck w;
  w.partition = I32(m.partition.value());
  w.epoch = I64(m.epoch.value());
  w.from_node = I32(m.from.value());
  w.ok = m.ok;
  w.last_lsn = I64(m.last_lsn.value());
  return w;
}

Result<ReplicateAck> FromWire(const rpc::ReplicateAck& w) {
  Checker c;
  ReplicateAck m;
  m.partition = PartitionId(c.U32(w.partition, "partition"));
  m.epoch = Epoch(c.U64(w.epoch, "epoch"));
  m.from = NodeId(c.U32(w.from_node, "node"));
  m.ok = w.ok;
  m.last_lsn = Lsn(c.U64(w.last_lsn, "last_lsn"));
  if (!c.status().ok()) return c.status();
  return m;
}

rpc::SnapshotChunk ToWire(const SnapshotChunkMsg& m) {
  rpc::SnapshotChunk w;
  w.partition = I32(m.partition.value());
  w.epoch = I64(m.epoch.value());
  w.from_node = I32(m.from.value());
  w.lsn = I64(m.lsn.value());
  w.lsn_epoch = I64(m.lsn_epoch.value());
  w.snapshot_id = I64(m.snapshot_id);
  w.chunk_index = I32(m.chunk_index);
  w.last = m.last;
  w.data = m.data;
  return w;
}

Result<SnapshotChunkMsg> FromWire(const rpc::SnapshotChunk& w) {
  Checker c;
  SnapshotChunkMsg m;
  m.partition = PartitionId(c.U32(w.partition, "partition"));
  m.epoch = Epoch(c.U64(w.epoch, "epoch"));
  m.from = NodeId(c.U32(w.from_node, "node"));
  m.lsn = Lsn(c.U64(w.lsn, "lsn"));
  m.lsn_epoch = Epoch(c.U64(w.lsn_epoch, "lsn_epoch"));
  m.snapshot_id = c.U64(w.snapshot_id, "snapshot_id");
  m.chunk_index = c.U32(w.chunk_index, "chunk_index");
  if (!c.status().ok()) return c.status();
  m.last = w.last;
  m.data = w.data;
  return m;
}

rpc::SnapshotChunkAck ToWire(const SnapshotChunkAnswer& a) {
  rpc::SnapshotChunkAck w;
  w.next_chunk = I32(a.next_chunk);
  w.done = a.done;
  return w;
}

Result<SnapshotChunkAnswer> FromWire(const rpc::SnapshotChunkAck& w) {
  if (w.next_chunk < 0) return Status::InvalidArgument("negative next_chunk");
  return SnapshotChunkAnswer{static_cast<uint32_t>(w.next_chunk), w.done};
}

rpc::ReplicaReport ToWire(const ReplicaReport& r) {
  rpc::ReplicaReport w;
  w.partition = I32(r.partition.value());
  w.epoch = I64(r.epoch.value());
  w.primary = r.role == ReplicaRole::kPrimary;
  w.last_lsn = I64(r.last_lsn.value());
  w.commit_lsn = I64(r.commit_lsn.value());
  w.active = r.active;
  w.can_lead = r.can_lead;
  return w;
}

rpc::InSyncChange ToWire(const InSyncRequest& r) {
  rpc::InSyncChange w;
  w.join = r.kind == InSyncRequest::Kind::kJoin;
  w.partition = I32(r.partition.value());
  w.epoch = I64(r.epoch.value());
  w.primary = I32(r.primary.value());
  w.node = I32(r.node.value());
  return w;
}

}  // namespace cairn::chunkserver
