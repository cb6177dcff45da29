// DocStore: construction, the read-only queries and statistics. The write
// path is in doc_store_write.cc, block reads in doc_store_read.cc, open-time
// recovery in doc_store_recovery.cc, checkpoints and compaction in
// doc_store_maintenance.cc.
#include "chunkserver/doc_store.h"

#include <set>
#include <string>
#include <utility>

#include "chunkserver/doc_names.h"

namespace cairn::chunkserver {

Status DocStoreOptions::Validate() const {
  if (block_bytes == 0 || block_bytes > kMaxBlockBytes) {
    return Status::InvalidArgument("block_bytes must be 1.." + std::to_string(kMaxBlockBytes));
  }
  if (zstd_level < 1 || zstd_level > 19) {
    return Status::InvalidArgument("zstd_level must be 1..19");
  }
  if (dedup_entries_per_partition > (1u << 20)) {
    return Status::InvalidArgument("dedup_entries_per_partition must be at most 1048576");
  }
  if (max_document_bytes == 0) return Status::InvalidArgument("max_document_bytes must be > 0");
  if (!(compact_live_fraction > 0 && compact_live_fraction <= 1)) {
    return Status::InvalidArgument("compact_live_fraction must be in (0, 1]");
  }
  if (max_segments_per_compaction == 0) {
    return Status::InvalidArgument("max_segments_per_compaction must be > 0");
  }
  if (checkpoint_part_bytes < 4096 || checkpoint_part_bytes > (16u << 20)) {
    return Status::InvalidArgument("checkpoint_part_bytes must be 4 KiB..16 MiB");
  }
  return Status::Ok();
}

DocStore::DocStore(raidlib::Volume* volume, DocStoreOptions options)
    : volume_(volume),
      options_(std::move(options)),
      log_("docstore", "vol=" + volume->uuid()),
      cache_(options_.cache_bytes),
      index_(options_.dedup_entries_per_partition) {}

DocStore::~DocStore() = default;

Result<std::unique_ptr<DocStore>> DocStore::Open(raidlib::Volume* volume, DocStoreOptions options) {
  if (volume == nullptr) return Status::InvalidArgument("DocStore::Open: no volume");
  RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<DocStore> store(new DocStore(volume, std::move(options)));
  RETURN_IF_ERROR(store->Recover());
  return store;
}

Result<std::optional<DocEntry>> DocStore::Lookup(PartitionId p, std::string_view collection,
                                                 std::string_view id) const {
  RETURN_IF_ERROR(ValidateCollection(collection));
  RETURN_IF_ERROR(ValidateDocId(id));
  MutexLock lock(&mu_);
  const DocEntry* e = index_.Find(p, collection, id);
  if (e == nullptr) return std::optional<DocEntry>();
  return std::optional<DocEntry>(*e);
}

Result<std::vector<std::optional<DocEntry>>> DocStore::LookupMany(
    PartitionId p, std::string_view collection, std::span<const std::string> ids) const {
  RETURN_IF_ERROR(ValidateCollection(collection));
  if (ids.size() > kMaxLookupBatch) {
    return Status::InvalidArgument("LookupMany: more than " + std::to_string(kMaxLookupBatch) +
                                   " ids");
  }
  for (const std::string& id : ids) RETURN_IF_ERROR(ValidateDocId(id));
  std::vector<std::optional<DocEntry>> out(ids.size());
  MutexLock lock(&mu_);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (const DocEntry* e = index_.Find(p, collection, ids[i])) out[i] = *e;
  }
  return out;
}

Result<EntryPage> DocStore::ListEntries(PartitionId p, std::string_view collection,
                                        std::string_view after_id, size_t limit) const {
  RETURN_IF_ERROR(ValidateCollection(collection));
  if (limit == 0) return Status::InvalidArgument("ListEntries: limit must be at least 1");
  if (after_id.size() > kMaxDocIdBytes) {
    return Status::InvalidArgument("ListEntries: after_id too long");
  }
  MutexLock lock(&mu_);
  return index_.ListEntries(p, collection, after_id, limit);
}

Result<ListPage> DocStore::List(PartitionId p, std::string_view collection,
                                std::string_view after_id, size_t limit) const {
  RETURN_IF_ERROR(ValidateCollection(collection));
  if (limit == 0) return Status::InvalidArgument("List: limit must be at least 1");
  if (after_id.size() > kMaxDocIdBytes) return Status::InvalidArgument("List: after_id too long");
  MutexLock lock(&mu_);
  return index_.List(p, collection, after_id, limit);
}

PartitionState DocStore::partition_state(PartitionId p) const {
  MutexLock lock(&mu_);
  return index_.State(p);
}

std::vector<PartitionId> DocStore::partitions() const {
  MutexLock lock(&mu_);
  std::set<PartitionId> all;
  for (PartitionId p : index_.Partitions()) all.insert(p);
  for (const auto& [p, last] : latest_lsn_) all.insert(p);  // also those only logged
  return {all.begin(), all.end()};
}

DocStoreStats DocStore::stats() const {
  DocStoreStats s;
  {
    MutexLock lock(&mu_);
    s.documents = index_.documents();
    s.live_bytes = index_.live_bytes();
  }
  uint64_t log_bytes = 0;
  for (const raidlib::SegmentInfo& seg : volume_->Segments()) {
    log_bytes += seg.logical_end - seg.logical_start;
  }
  s.dead_bytes = log_bytes > s.live_bytes ? log_bytes - s.live_bytes : 0;
  s.cache_hits = cache_.hits();
  s.cache_misses = cache_.misses();
  const uint64_t lookups = s.cache_hits + s.cache_misses;
  s.cache_hit_rate =
      lookups == 0 ? 0.0 : static_cast<double>(s.cache_hits) / static_cast<double>(lookups);
  s.cache_bytes = cache_.bytes();
  s.mutations_applied = counters_.mutations_applied.load();
  s.mutations_deduplicated = counters_.mutations_deduplicated.load();
  s.blocks_written = counters_.blocks_written.load();
  s.checkpoints = counters_.checkpoints.load();
  s.compactions = counters_.compactions.load();
  s.segments_released = counters_.segments_released.load();
  s.blocks_relocated = counters_.blocks_relocated.load();
  return s;
}

Status DocStore::sticky() const {
  MutexLock lock(&sticky_mu_);
  return sticky_;
}

void DocStore::SetSticky(const Status& s) {
  MutexLock lock(&sticky_mu_);
  if (sticky_.ok() && !s.ok()) {
    sticky_ = s.WithContext("document store stopped writing after a volume error");
    LOG_ERROR(log_) << sticky_.ToString();
  }
}

}  // namespace cairn::chunkserver
