// ReplicaHost's snapshots: the outgoing streams (a thread each, paced by the
// host's RateLimiter, resumed after failed calls) and the staging of incoming
// chunks (replica_host.h, docs/snapshot-stream.md).
#include <algorithm>
#include <utility>

#include "chunkserver/replica_host.h"

namespace cairn::chunkserver {
namespace {

constexpr Nanos kMaxRetryDelay = std::chrono::seconds(5);

// The snapshot a stream carries, as the replica sees it (state to add).
SnapshotMsg SnapshotMsgOf(const SnapshotChunkMsg& c) {
  SnapshotMsg m;
  m.partition = c.partition;
  m.epoch = c.epoch;
  m.from = c.from;
  m.lsn = c.lsn;
  m.lsn_epoch = c.lsn_epoch;
  return m;
}

}  // namespace

// ---------------------------------------------------------------- sender

void ReplicaHost::StartSnapshotStream(Slot* slot, const SendSnapshotEffect& e) {
  const PartitionId p = slot->replica->partition();
  std::vector<std::unique_ptr<OutStream>> reaped;
  MutexLock l(&streams_mu_);
  if (streams_stopped_) return;
  for (auto it = streams_.begin(); it != streams_.end();) {
    if (it->second->finished) {
      reaped.push_back(std::move(it->second));
      it = streams_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& r : reaped) r->thread.join();  // finished: it only returns
  // One stream per peer and partition carries on; the replica asks again
  // while it lasts, and when it is over a new one starts.
  if (streams_.count({p, e.to}) != 0) return;
  if (streams_.size() >= options_.max_snapshot_streams) return;
  const auto to_peer = std::count_if(streams_.begin(), streams_.end(),
                                     [&](const auto& kv) { return kv.first.second == e.to; });
  if (static_cast<size_t>(to_peer) >= options_.max_snapshot_streams_per_peer) return;
  DocStore::PartitionSnapshot snap = store_->SnapshotPartition(p);
  if (snap.lsn != e.lsn) {
    LOG_WARN(log_) << "partition " << p.value() << ": no snapshot for node " << e.to.value()
                   << ": the applied state is at LSN " << snap.lsn.value()
                   << ", the replica asked for " << e.lsn.value();
    return;
  }
  auto s = std::make_unique<OutStream>();
  s->partition = p;
  s->to = e.to;
  s->epoch = e.epoch;
  s->lsn = e.lsn;
  s->lsn_epoch = e.lsn_epoch;
  s->id = snapshot_id_base_ + ++snapshot_seq_;
  s->source = std::make_unique<SnapshotSource>(std::move(snap.state), std::move(snap.blocks),
                                               options_.snapshot_chunk_bytes);
  probe_.streams_started.fetch_add(1);
  probe_.chunks_planned.fetch_add(s->source->chunk_count());
  LOG_INFO(log_) << "partition " << p.value() << ": node " << e.to.value()
                 << " is behind the kept log: streaming the state at LSN " << e.lsn.value() << " ("
                 << s->source->total_bytes() << " bytes in " << s->source->chunk_count()
                 << " chunks, snapshot " << s->id << ")";
  OutStream* raw = s.get();
  s->thread = std::thread([this, raw] { StreamLoop(raw); });
  streams_[{p, e.to}] = std::move(s);
}

std::optional<Epoch> ReplicaHost::PrimaryEpoch(PartitionId p) {
  Slot* slot = Find(p);
  if (slot == nullptr) return std::nullopt;
  MutexLock l(&slot->mu);
  if (slot->replica->role() != ReplicaRole::kPrimary) return std::nullopt;
  return slot->replica->epoch();
}

bool ReplicaHost::SleepOrStop(Nanos d) {
  MutexLock l(&run_mu_);
  return run_cv_.WaitFor(&run_mu_, d, [&]() REQUIRES(run_mu_) { return stopping_; });
}

void ReplicaHost::StreamLoop(OutStream* s) {
  const SnapshotSource::ReadBlock read = [&](const BlockRef& b, std::span<std::byte> out) {
    DocEntry one;
    one.partition = s->partition;
    one.blocks = {b};
    one.meta.size = b.raw_len;
    return store_->ReadRange(one, 0, out, DocStore::CacheUse::kNoFill);
  };
  const uint32_t count = s->source->chunk_count();
  SnapshotChunkMsg c;
  c.partition = s->partition;
  c.from = self_;
  c.lsn = s->lsn;
  c.lsn_epoch = s->lsn_epoch;
  c.snapshot_id = s->id;
  bool have_data = false;  // c.data holds chunk c.chunk_index
  uint32_t next = 0;
  Nanos retry = options_.snapshot_retry;
  std::optional<Nanos> failing_since;
  std::string outcome = "stopped";
  bool completed = false;
  for (;;) {
    // Only the partition's primary streams; a new epoch in which it still
    // leads (a learner joined, a backup dropped) does not change the state
    // it sends, and the chunks carry the epoch the receiver expects.
    const std::optional<Epoch> epoch = PrimaryEpoch(s->partition);
    if (!epoch || *epoch < s->epoch) {
      outcome = "no longer the primary";
      break;
    }
    if (!have_data || c.chunk_index != next) {
      Result<std::string> data = s->source->Chunk(next, read);
      if (!data.ok()) {
        // A block compaction released since the state was taken: the
        // replica asks again and gets a fresh state.
        outcome = "cannot read chunk " + std::to_string(next) + ": " + data.status().ToString();
        break;
      }
      c.data = std::move(*data);
      c.chunk_index = next;
      c.last = next + 1 == count;
      have_data = true;
    }
    c.epoch = *epoch;
    if (SleepOrStop(snapshot_limiter_.Reserve(c.data.size()))) break;
    Result<SnapshotChunkAnswer> answer = transport_->SendSnapshotChunk(s->to, c);
    const Nanos now = clock_->Now();
    if (!answer.ok()) {
      // Most failures send nothing (a refused connection); count none.
      snapshot_limiter_.Return(c.data.size());
      probe_.chunk_failures.fetch_add(1);
      if (!failing_since) failing_since = now;
      if (now - *failing_since > options_.snapshot_stream_timeout) {
        outcome = "node unreachable: " + answer.status().ToString();
        break;
      }
      LOG_EVERY_N_SEC(log_, kWarn, 10)
          << "partition " << s->partition.value() << ": snapshot chunk " << c.chunk_index
          << " to node " << s->to.value() << " failed (retrying): " << answer.status().ToString();
      if (SleepOrStop(retry)) break;
      retry = std::min(retry * 2, kMaxRetryDelay);
      continue;
    }
    failing_since.reset();
    retry = options_.snapshot_retry;
    probe_.chunks_sent.fetch_add(1);
    probe_.bytes_sent.fetch_add(c.data.size());
    if (answer->done) {
      completed = true;
      break;
    }
    if (answer->next_chunk <= c.chunk_index) probe_.chunks_rewound.fetch_add(1);
    if (answer->next_chunk >= count) {
      outcome = "the receiver wants chunk " + std::to_string(answer->next_chunk) + " of " +
                std::to_string(count);
      break;
    }
    next = answer->next_chunk;
  }
  if (completed) {
    if (Slot* slot = Find(s->partition)) {
      MutexLock l(&slot->mu);
      Run(slot, slot->replica->OnSnapshotDelivered(s->to, s->lsn, clock_->Now()));
    }
    probe_.streams_completed.fetch_add(1);
    LOG_INFO(log_) << "partition " << s->partition.value() << ": snapshot " << s->id << " to node "
                   << s->to.value() << " done";
  } else {
    probe_.streams_abandoned.fetch_add(1);
    LOG_WARN(log_) << "partition " << s->partition.value() << ": snapshot " << s->id << " to node "
                   << s->to.value() << " given up: " << outcome;
  }
  MutexLock l(&streams_mu_);
  s->finished = true;
}

void ReplicaHost::StopStreams() {
  std::map<std::pair<PartitionId, NodeId>, std::unique_ptr<OutStream>> streams;
  {
    MutexLock l(&streams_mu_);
    streams_stopped_ = true;
    streams.swap(streams_);
  }
  for (auto& [key, s] : streams) s->thread.join();  // stopping_ ends their waits
  std::vector<Slot*> all;
  {
    MutexLock l(&slots_mu_);
    for (auto& [p, slot] : slots_) all.push_back(slot.get());
  }
  for (Slot* slot : all) {
    MutexLock l(&slot->stage_mu);
    if (slot->stage) DropStage(slot, "the chunk server stops");
  }
}

// ---------------------------------------------------------------- receiver

void ReplicaHost::DropStage(Slot* slot, const char* why) {
  LOG_INFO(log_) << "dropping staged snapshot " << slot->stage->snapshot_id() << " ("
                 << slot->stage->written().size() << " blocks): " << why;
  store_->ForgetBlocks(slot->stage->written());
  slot->stage.reset();
  probe_.stages_dropped.fetch_add(1);
}

void ReplicaHost::ExpireStage(Slot* slot) {
  MutexLock sl(&slot->stage_mu);
  if (!slot->stage) return;
  if (clock_->Now() - slot->stage_touched > options_.snapshot_stream_timeout) {
    return DropStage(slot, "nothing received for the stream timeout");
  }
  MutexLock l(&slot->mu);
  // Caught up another way (a new primary's log reached past it). A new
  // primary's own snapshot replaces the stage with its chunk 0.
  if (slot->replica->commit_lsn() >= slot->stage->lsn()) DropStage(slot, "no longer needed");
}

Result<SnapshotChunkAnswer> ReplicaHost::OnSnapshotChunk(const SnapshotChunkMsg& c) {
  if (failed_) return Status::Unavailable("replication stopped on this node after a disk error");
  {
    MutexLock l(&streams_mu_);  // after Stop() nothing more is staged
    if (streams_stopped_) return Status::Unavailable("replication is stopping on this node");
  }
  Slot* slot = Find(c.partition);
  if (slot == nullptr) {
    return Status::Unavailable("partition " + std::to_string(c.partition.value()) +
                               " is not configured here yet");
  }
  MutexLock sl(&slot->stage_mu);
  {
    MutexLock l(&slot->mu);
    const Replica& r = *slot->replica;
    if (c.epoch < r.epoch()) {
      return Status(StatusCode::kStaleEpoch, "snapshot from epoch " +
                                                 std::to_string(c.epoch.value()) + " below " +
                                                 std::to_string(r.epoch().value()));
    }
    // A point the replica holds (or has committed past) needs no state: it
    // only confirms it (see Replica::OnSnapshot), and the stream ends.
    const bool have =
        c.lsn <= r.last_lsn() && c.lsn >= r.base_lsn() && r.EpochAt(c.lsn) == c.lsn_epoch;
    if (have || c.lsn < r.commit_lsn()) {
      if (slot->stage && slot->stage->snapshot_id() == c.snapshot_id) {
        DropStage(slot, "not needed any more");
      }
      Run(slot, slot->replica->OnMessage(PeerMessage(SnapshotMsgOf(c)), clock_->Now()));
      return SnapshotChunkAnswer{c.chunk_index + 1, true};
    }
  }
  if (!slot->stage || slot->stage->snapshot_id() != c.snapshot_id ||
      slot->stage->from() != c.from) {
    // Chunks of a stream this node does not hold (lost in a restart, or
    // dropped) start over; chunk 0 of a new one replaces an older stage.
    if (c.chunk_index != 0) return SnapshotChunkAnswer{0, false};
    if (slot->stage) DropStage(slot, "replaced by a newer snapshot");
    slot->stage =
        std::make_unique<SnapshotStage>(c.snapshot_id, c.from, c.epoch, c.lsn, c.lsn_epoch,
                                        store_->options().dedup_entries_per_partition);
    LOG_INFO(log_) << "partition " << c.partition.value() << ": receiving snapshot "
                   << c.snapshot_id << " at LSN " << c.lsn.value() << " from node "
                   << c.from.value();
  }
  SnapshotStage& stage = *slot->stage;
  if (c.chunk_index != stage.next_chunk()) {
    // A retry of a chunk taken before (its answer was lost), or one ahead.
    if (c.chunk_index < stage.next_chunk()) probe_.chunks_duplicate.fetch_add(1);
    return SnapshotChunkAnswer{stage.next_chunk(), false};
  }
  Status added =
      stage.Add(c, [&](std::span<const std::byte> raw) { return store_->WriteBlock(raw); });
  if (!added.ok()) {
    DropStage(slot, "a bad chunk");
    return added.WithContext("snapshot chunk " + std::to_string(c.chunk_index));
  }
  probe_.chunks_received.fetch_add(1);
  slot->stage_touched = clock_->Now();
  if (!stage.complete()) return SnapshotChunkAnswer{stage.next_chunk(), false};

  Result<std::string> state = stage.LocalState(c.partition);
  if (!state.ok()) {
    DropStage(slot, "an incomplete snapshot");
    return state.status();
  }
  SnapshotMsg m = SnapshotMsgOf(c);
  m.state = std::move(*state);
  const std::vector<BlockRef> blocks = stage.written();
  const uint32_t next = stage.next_chunk();
  slot->stage.reset();
  MutexLock l(&slot->mu);
  Effects fx = slot->replica->OnMessage(PeerMessage(std::move(m)), clock_->Now());
  const bool install = std::any_of(fx.begin(), fx.end(), [](const ReplicaEffect& e) {
    return std::holds_alternative<InstallSnapshotEffect>(e);
  });
  if (install) {
    probe_.snapshots_installed.fetch_add(1);
    LOG_INFO(log_) << "partition " << c.partition.value() << ": installing snapshot "
                   << c.snapshot_id << " at LSN " << c.lsn.value() << " (" << blocks.size()
                   << " blocks)";
  } else {
    store_->ForgetBlocks(blocks);  // the replica moved on meanwhile
  }
  Run(slot, std::move(fx));
  return SnapshotChunkAnswer{next, true};
}

std::optional<ReplicaHost::SnapshotProgress> ReplicaHost::ReceivingSnapshot(PartitionId p) {
  Slot* slot = Find(p);
  if (slot == nullptr) return std::nullopt;
  MutexLock sl(&slot->stage_mu);
  if (!slot->stage) return std::nullopt;
  return SnapshotProgress{slot->stage->bytes_done(), slot->stage->bytes_total()};
}

SnapshotStats ReplicaHost::snapshot_stats() const {
  SnapshotStats s;
  s.streams_started = probe_.streams_started.load();
  s.streams_completed = probe_.streams_completed.load();
  s.streams_abandoned = probe_.streams_abandoned.load();
  s.chunks_planned = probe_.chunks_planned.load();
  s.chunks_sent = probe_.chunks_sent.load();
  s.chunk_failures = probe_.chunk_failures.load();
  s.chunks_rewound = probe_.chunks_rewound.load();
  s.bytes_sent = probe_.bytes_sent.load();
  s.chunks_received = probe_.chunks_received.load();
  s.chunks_duplicate = probe_.chunks_duplicate.load();
  s.stages_dropped = probe_.stages_dropped.load();
  s.snapshots_installed = probe_.snapshots_installed.load();
  return s;
}

}  // namespace cairn::chunkserver
