// Checkpoints and compaction. docs/docstore-format.md explains why each step
// comes where it does; the comments below say what each step protects.
#include <algorithm>
#include <set>
#include <string>
#include <utility>

#include "chunkserver/block_codec.h"
#include "chunkserver/doc_store.h"

namespace cairn::chunkserver {

Status DocStore::Checkpoint() {
  MutexLock maintenance(&maintenance_mu_);
  return CheckpointLocked();
}

Status DocStore::AppendCheckpointPartition(uint64_t seq, PartitionId p, CheckpointEnd* end) {
  std::vector<std::byte> blob;
  {
    // One partition at a time: its state is consistent as of this moment,
    // which lies after replay_from; replay skips its records with LSN up to
    // the checkpointed last LSN.
    MutexLock lock(&mu_);
    blob = index_.SerializePartition(p);
  }
  const size_t part_bytes = options_.checkpoint_part_bytes;
  uint32_t index = 0;
  size_t at = 0;
  do {
    const size_t n = std::min(part_bytes, blob.size() - at);
    CheckpointPartHeader h;
    h.seq = seq;
    h.partition = p;
    h.index = index++;
    h.last = at + n == blob.size();
    std::vector<std::byte> rec = FrameRecord(
        RecordType::kCheckpointPart, EncodeCheckpointPart(h, std::span(blob).subspan(at, n)));
    ASSIGN_OR_RETURN(const uint64_t off, AppendRecord(rec));
    end->parts.emplace_back(off, static_cast<uint32_t>(rec.size()));
    at += n;
  } while (at < blob.size());
  return Status::Ok();
}

Status DocStore::CheckpointLocked() {
  RETURN_IF_ERROR(sticky());
  CheckpointEnd end;
  end.seq = checkpoint_seq_ + 1;
  std::vector<PartitionId> parts;
  {
    // With write_mu_ held no mutation record is on its way into the log, so
    // every mutation below replay_from is in the index.
    MutexLock write_lock(&write_mu_);
    MutexLock lock(&mu_);
    const uint64_t oldest = OldestPendingOffsetLocked();
    end.replay_from = oldest == UINT64_MAX ? volume_->end_offset() : oldest;
    parts = index_.Partitions();
  }
  for (PartitionId p : parts) RETURN_IF_ERROR(AppendCheckpointPartition(end.seq, p, &end));
  std::vector<std::byte> rec = FrameRecord(RecordType::kCheckpointEnd, EncodeCheckpointEnd(end));
  ASSIGN_OR_RETURN(const uint64_t end_offset, AppendRecord(rec));
  // The checkpoint must be durable before the root names it.
  Status s = volume_->Sync();
  if (!s.ok()) {
    SetSticky(s);
    return s;
  }
  DocRoot next;
  next.has_checkpoint = true;
  next.checkpoint_seq = end.seq;
  next.end_offset = end_offset;
  next.end_len = static_cast<uint32_t>(rec.size());
  next.replay_from = end.replay_from;
  for (const auto& skip : root_.skips) {
    if (skip.first >= end.replay_from) next.skips.push_back(skip);
  }
  // Atomic: after a crash the root is the old one (whose checkpoint and log
  // are all still there) or this one.
  RETURN_IF_ERROR(volume_->SetAppRoot(EncodeRoot(next)));
  root_ = std::move(next);
  checkpoint_seq_ = end.seq;
  counters_.checkpoints.fetch_add(1);
  LOG_DEBUG(log_) << "checkpoint " << end.seq << ": " << end.parts.size() << " parts, replay from "
                  << end.replay_from;
  return Status::Ok();
}

Result<BlockRef> DocStore::CopyBlock(const BlockRef& ref) {
  std::vector<std::byte> record(ref.record_len());
  RETURN_IF_ERROR(volume_->Read(ref.offset, record)
                      .WithContext("compaction: reading block at " + std::to_string(ref.offset)));
  // Never copy damage: the copy gets a fresh header seal, so check first.
  RETURN_IF_ERROR(VerifyBlockRecord(record, ref));
  BlockRef copy = ref;
  ASSIGN_OR_RETURN(copy.offset, AppendRecord(record));
  return copy;
}

Result<CompactionReport> DocStore::Compact() {
  MutexLock maintenance(&maintenance_mu_);
  RETURN_IF_ERROR(sticky());
  CompactionReport report;

  // 1. Choose sealed segments with little live data, emptiest first. A
  // segment's range is taken as [its start, the next listed segment's
  // start): the volume may report a segment sealed while the write-out that
  // sealed it is still adding stripes to it (its logical_end is then short),
  // but once a later segment has stripes, the earlier one is complete. So a
  // segment without a successor is never chosen.
  struct Candidate {
    double live = 0;
    SegmentId id;
    uint64_t start = 0;
    uint64_t end = 0;
  };
  std::vector<Candidate> candidates;
  {
    const std::vector<raidlib::SegmentInfo> segs = volume_->Segments();
    MutexLock lock(&mu_);
    // Records of entries not yet applied (a replica's logged, uncommitted
    // entries may sit there for long) are replayed from the log after a
    // restart: their segments stay. Pending entries are only removed or
    // added at the end, so this bound only grows.
    const uint64_t keep_from = OldestPendingOffsetLocked();
    for (size_t i = 0; i + 1 < segs.size(); ++i) {
      const uint64_t start = segs[i].logical_start;
      const uint64_t end = segs[i + 1].logical_start;
      if (!segs[i].sealed || end <= start || end > keep_from) continue;
      // The live share of its logical bytes, times how densely it was
      // written: a segment of small group commits (each its own stripe of
      // padded 4 KiB units) takes many times its data on disk even when all
      // of it is live, and compaction's copies are written in full stripes.
      const double density = segs[i].allocated_bytes == 0
                                 ? 1.0
                                 : std::min(1.0, static_cast<double>(segs[i].dense_bytes) /
                                                     static_cast<double>(segs[i].allocated_bytes));
      const double live = density * static_cast<double>(index_.LiveBytesIn(start, end)) /
                          static_cast<double>(end - start);
      if (live < options_.compact_live_fraction) {
        candidates.push_back({live, segs[i].id, start, end});
      }
    }
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& a, const Candidate& b) { return a.live < b.live; });
  if (candidates.size() > options_.max_segments_per_compaction) {
    candidates.resize(options_.max_segments_per_compaction);
  }
  if (candidates.empty()) return report;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const Candidate& c : candidates) ranges.emplace_back(c.start, c.end);
  auto in_ranges = [&](const BlockRef& r) {
    return std::any_of(ranges.begin(), ranges.end(), [&](const auto& g) {
      return r.offset < g.second && g.first < r.offset + r.record_len();
    });
  };

  // 2. Copy their live blocks to the log's end, without holding the index:
  // reads and writes go on meanwhile.
  std::map<uint64_t, BlockRef> moved;  // old record offset -> copy
  {
    std::vector<BlockRef> live;
    {
      MutexLock lock(&mu_);
      for (const auto& g : ranges) {
        for (const BlockRef& r : index_.LiveBlocksIn(g.first, g.second)) live.push_back(r);
      }
      // Uploads in progress: their blocks will be live soon.
      MutexLock u(&unclaimed_mu_);
      for (const auto& [orig, cur] : unclaimed_) {
        if (in_ranges(cur)) live.push_back(cur);
      }
    }
    for (const BlockRef& r : live) {
      if (moved.count(r.offset) != 0) continue;
      ASSIGN_OR_RETURN(BlockRef copy, CopyBlock(r));
      moved.emplace(r.offset, copy);
      ++report.blocks_relocated;
      report.bytes_relocated += copy.record_len();
    }
  }

  // 3. Switch: from here on no new record may name a block of these segments
  // that was not moved (Apply translates moved ones, refuses others).
  {
    MutexLock write_lock(&write_mu_);  // no mutation record half-way in
    MutexLock lock(&mu_);
    // Blocks that became live, or were named by a mutation still pending,
    // after step 2 looked (rare): copy them now, before anything is frozen.
    std::vector<BlockRef> late;
    for (const auto& g : ranges) {
      for (const BlockRef& r : index_.LiveBlocksIn(g.first, g.second)) late.push_back(r);
    }
    for (const auto& [partition, queue] : pending_) {
      for (const Pending& p : queue) {
        for (const BlockRef& r : p.rec.blocks) {
          if (in_ranges(r)) late.push_back(r);
        }
      }
    }
    {
      // Every block appended so far is registered once append_mu_ is
      // passed (WriteBlock registers under it); later ones land past these
      // segments.
      { MutexLock barrier(&append_mu_); }
      MutexLock u(&unclaimed_mu_);
      for (const auto& [orig, cur] : unclaimed_) {
        if (in_ranges(cur)) late.push_back(cur);
      }
    }
    for (const BlockRef& r : late) {
      if (moved.count(r.offset) != 0) continue;
      ASSIGN_OR_RETURN(BlockRef copy, CopyBlock(r));
      moved.emplace(r.offset, copy);
      ++report.blocks_relocated;
      report.bytes_relocated += copy.record_len();
    }
    frozen_.insert(frozen_.end(), ranges.begin(), ranges.end());
    // Forwarding for the last few compactions, chains shortened (A->B and
    // B->C become A->C, B->C), so readers and writers holding DocEntries that
    // old still find the blocks; older ones get Unavailable. Each old offset
    // is moved once (after that it is dead), so generations never share keys.
    for (auto& [old, to] : forwarding_) {
      auto m = moved.find(to.offset);
      if (m != moved.end()) to = m->second;
    }
    std::vector<uint64_t> keys;
    for (const auto& [old, copy] : moved) {
      forwarding_[old] = copy;
      keys.push_back(old);
    }
    forwarding_generations_.push_back(std::move(keys));
    while (forwarding_generations_.size() > kForwardingGenerations) {
      for (uint64_t k : forwarding_generations_.front()) forwarding_.erase(k);
      forwarding_generations_.pop_front();
    }
    index_.Relocate(moved);
    MutexLock u(&unclaimed_mu_);
    for (auto& [orig, cur] : unclaimed_) {
      auto m = moved.find(cur.offset);
      if (m != moved.end()) cur = m->second;
    }
  }

  // 4. Apply every mutation logged before the switch (it may name old
  // places; applying translates them), so that the checkpoint's replay point
  // lies after all of them.
  RETURN_IF_ERROR(SyncAndApply());

  // 5. A checkpoint of the relocated index: after it, recovery needs nothing
  // from the chosen segments.
  RETURN_IF_ERROR(CheckpointLocked());

  // 6. Give the space back.
  for (const Candidate& c : candidates) {
    RETURN_IF_ERROR(volume_->ReleaseSegment(c.id));
    report.released.push_back(c.id);
    counters_.segments_released.fetch_add(1);
  }
  counters_.compactions.fetch_add(1);
  counters_.blocks_relocated.fetch_add(report.blocks_relocated);
  LOG_INFO(log_) << "compaction released " << report.released.size() << " segments, moved "
                 << report.blocks_relocated << " blocks (" << report.bytes_relocated << " bytes)";
  return report;
}

}  // namespace cairn::chunkserver
