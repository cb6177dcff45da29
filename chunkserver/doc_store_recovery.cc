// Open-time recovery: the newest checkpoint, then the log after it.
// docs/docstore-format.md "Recovery" lists the crash cases this handles.
#include <string>
#include <utility>

#include "chunkserver/doc_log_reader.h"
#include "chunkserver/doc_store.h"
#include "chunkserver/wire.h"

namespace cairn::chunkserver {

Status DocStore::Recover() {
  MutexLock maintenance(&maintenance_mu_);
  DocRoot root;
  const std::vector<std::byte> root_bytes = volume_->app_root();
  if (!root_bytes.empty()) {
    ASSIGN_OR_RETURN(root, DecodeRoot(root_bytes));
  }
  bool torn = false;
  uint64_t documents = 0;
  {
    MutexLock lock(&mu_);
    if (root.has_checkpoint) RETURN_IF_ERROR(LoadCheckpoint(root));
    const size_t skips = root.skips.size();
    RETURN_IF_ERROR(Replay(&root));
    torn = root.skips.size() != skips;
    for (PartitionId p : index_.Partitions()) {
      PartitionState s = index_.State(p);
      latest_lsn_.try_emplace(p, s.last_lsn, s.last_epoch);  // logged entries are newer
    }
    documents = index_.documents();
  }
  checkpoint_seq_ = root.checkpoint_seq;
  if (torn) {
    // The log resumes after the torn range: say so durably before anything
    // is appended behind it, or a later replay would read the torn record's
    // length over the new records.
    if (root.skips.size() > kMaxRootSkips) {
      return Status::FailedPrecondition(
          "document log: " + std::to_string(root.skips.size()) +
          " torn ranges since the last checkpoint (crashes during recovery?); at most " +
          std::to_string(kMaxRootSkips) + " fit the volume root");
    }
    RETURN_IF_ERROR(volume_->SetAppRoot(EncodeRoot(root)));
  }
  root_ = root;
  LOG_INFO(log_) << "opened: " << documents << " documents, checkpoint " << root.checkpoint_seq
                 << ", replayed from " << root.replay_from << (torn ? ", torn tail skipped" : "");
  if (root.skips.size() >= kMaxRootSkips / 2) {
    // Clears the skip list (they all lie before the new replay point).
    RETURN_IF_ERROR(CheckpointLocked());
  }
  return Status::Ok();
}

Status DocStore::LoadCheckpoint(const DocRoot& root) {
  const uint64_t end = volume_->end_offset();
  auto bad = [&](const std::string& what) {
    return Status::Corruption("checkpoint " + std::to_string(root.checkpoint_seq) + " at " +
                              std::to_string(root.end_offset) + ": " + what);
  };
  if (root.end_offset > end || root.end_len > end - root.end_offset) {
    return bad("lies past the end of the log");
  }
  ASSIGN_OR_RETURN(RecordHeader eh, ReadRecordHeader(volume_, root.end_offset));
  if (eh.type != RecordType::kCheckpointEnd || eh.record_len() != root.end_len) {
    return bad("the root does not point at a checkpoint end record");
  }
  ASSIGN_OR_RETURN(std::vector<std::byte> ep, ReadRecordPayload(volume_, root.end_offset, eh));
  ASSIGN_OR_RETURN(CheckpointEnd ce, DecodeCheckpointEnd(ep, root.end_offset));
  if (ce.seq != root.checkpoint_seq || ce.replay_from != root.replay_from) {
    return bad("end record does not match the root");
  }
  std::vector<std::byte> blob;  // the partition being assembled
  bool open = false;
  PartitionId current;
  uint32_t next_index = 0;
  for (const auto& [off, len] : ce.parts) {
    ASSIGN_OR_RETURN(RecordHeader ph, ReadRecordHeader(volume_, off));
    if (ph.type != RecordType::kCheckpointPart || ph.record_len() != len) {
      return bad("part at " + std::to_string(off) + " is not a checkpoint part");
    }
    ASSIGN_OR_RETURN(std::vector<std::byte> pp, ReadRecordPayload(volume_, off, ph));
    std::span<const std::byte> data;
    ASSIGN_OR_RETURN(CheckpointPartHeader h, DecodeCheckpointPart(pp, off, &data));
    if (h.seq != ce.seq) return bad("part at " + std::to_string(off) + " of another checkpoint");
    if (!open) {
      if (h.index != 0) return bad("partition starts with part " + std::to_string(h.index));
      open = true;
      current = h.partition;
      next_index = 0;
      blob.clear();
    }
    if (h.partition != current || h.index != next_index) return bad("parts out of order");
    ++next_index;
    blob.insert(blob.end(), data.begin(), data.end());
    if (h.last) {
      RETURN_IF_ERROR(index_.LoadPartition(blob));
      open = false;
      blob.clear();
      blob.shrink_to_fit();
    }
  }
  if (open) return bad("last partition is incomplete");
  return Status::Ok();
}

Status DocStore::Replay(DocRoot* root) {
  const uint64_t end = volume_->end_offset();
  LogScanner scan(volume_, root->replay_from, end, root->skips);
  uint64_t applied = 0;
  for (;;) {
    ASSIGN_OR_RETURN(const bool more, scan.Next());
    if (!more) break;
    const RecordHeader& h = scan.header();
    if (h.type == RecordType::kSnapshot) {
      if (!options_.replicated) {
        return Status::FailedPrecondition(
            "document log record at " + std::to_string(scan.offset()) +
            " installs a replica's snapshot: open the store with replication on");
      }
      ASSIGN_OR_RETURN(std::vector<std::byte> payload, scan.ReadPayload());
      if (payload.size() < 20) {
        return Status::Corruption("snapshot record at " + std::to_string(scan.offset()) +
                                  " is too short");
      }
      const PartitionId p(LoadLE<uint32_t>(payload.data()));
      const Lsn lsn(LoadLE<uint64_t>(payload.data() + 4));
      RETURN_IF_ERROR(
          LoadSnapshotLocked(p, lsn, std::span(payload).subspan(20), false)
              .WithContext("replaying the snapshot at " + std::to_string(scan.offset())));
      ++applied;
      continue;
    }
    if (!HasMutationPrefix(h.type)) continue;  // blocks and checkpoints: nothing to apply
    ASSIGN_OR_RETURN(std::vector<std::byte> payload, scan.ReadPayload());
    ASSIGN_OR_RETURN(MutationRecord rec, DecodeMutation(h.type, payload, scan.offset()));
    if (rec.type == RecordType::kTruncate) {
      // Cuts the entries logged before it; the ones after it are the new
      // primary's. Only a replicated store writes these.
      if (!options_.replicated) {
        return Status::FailedPrecondition(
            "document log record at " + std::to_string(scan.offset()) +
            " cuts a replicated partition's log: open the store with replication on");
      }
      CutLoggedLocked(rec.partition, rec.lsn);
      continue;
    }
    // Records the checkpoint already holds: a partition is checkpointed at
    // some point after replay_from, and its LSNs only grow in the log.
    if (rec.lsn <= index_.State(rec.partition).last_lsn) continue;
    if (options_.replicated) {
      // Committed or not, it waits for the partition's replica to commit it
      // again (the checkpoint is the base every replica restarts from).
      const uint64_t at = scan.offset();
      AddPendingLocked(Pending{at, at + h.record_len(), std::move(rec), /*logged=*/true});
      ++applied;
      continue;
    }
    Status s = index_.Apply(rec);
    if (!s.ok()) {
      LOG_ERROR(log_) << "replaying record at " << scan.offset() << ": " << s.ToString();
    }
    ++applied;
  }
  if (scan.torn_at()) {
    LOG_INFO(log_) << "document log torn at " << *scan.torn_at() << " (volume end " << end
                   << "): an unacknowledged tail, skipped";
    root->skips.emplace_back(*scan.torn_at(), end);
  }
  LOG_INFO(log_) << (options_.replicated ? "logged " : "replayed ") << applied << " entries from "
                 << root->replay_from;
  return Status::Ok();
}

}  // namespace cairn::chunkserver
