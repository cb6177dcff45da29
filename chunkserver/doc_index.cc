#include "chunkserver/doc_index.h"

#include <algorithm>
#include <string>
#include <utility>

#include "chunkserver/wire.h"
#include "common/assert.h"

namespace cairn::chunkserver {

Status DocIndex::Apply(const MutationRecord& r) {
  Partition& part = partitions_[r.partition];
  part.last_lsn = r.lsn;
  part.last_epoch = r.epoch;
  const ApplyResult result{r.lsn, r.version, false};
  if (!r.request_id.empty()) Remember(&part, r.request_id, result);

  switch (r.type) {
    case RecordType::kPut: {
      DocEntry e;
      e.partition = r.partition;
      e.collection = r.collection;
      e.id = r.id;
      e.version = r.version;
      e.lsn = r.lsn;
      e.meta = r.meta;
      e.body_hash = r.body_hash;
      e.blocks = r.blocks;
      PutEntry(&part, std::move(e));
      return Status::Ok();
    }
    case RecordType::kDelete: {
      if (!TakeEntry(&part, r.collection, r.id)) {
        return Status::Corruption("delete of missing document " + r.collection + "/" + r.id +
                                  " at LSN " + std::to_string(r.lsn.value()));
      }
      return Status::Ok();
    }
    case RecordType::kRename: {
      std::optional<DocEntry> e = TakeEntry(&part, r.collection, r.id);
      if (!e) {
        return Status::Corruption("rename of missing document " + r.collection + "/" + r.id +
                                  " at LSN " + std::to_string(r.lsn.value()));
      }
      e->id = r.to_id;
      e->version = r.version;
      e->lsn = r.lsn;
      PutEntry(&part, std::move(*e));
      return Status::Ok();
    }
    case RecordType::kNoop:  // an epoch's first entry: only the LSN moves
      return Status::Ok();
    default:
      CAIRN_CHECK(false) << "not a mutation record type " << static_cast<int>(r.type);
  }
  return Status::Ok();
}

void DocIndex::PutEntry(Partition* part, DocEntry entry) {
  AddRefs(entry.blocks);  // before dropping the old ones: they may share blocks
  Docs& docs = part->collections[entry.collection];
  auto it = docs.find(entry.id);
  if (it != docs.end()) {
    DropRefs(it->second.blocks);
    it->second = std::move(entry);
    return;
  }
  std::string id = entry.id;
  docs.emplace(std::move(id), std::move(entry));
  ++part->documents;
  ++documents_;
}

std::optional<DocEntry> DocIndex::TakeEntry(Partition* part, std::string_view collection,
                                            std::string_view id) {
  auto c = part->collections.find(collection);
  if (c == part->collections.end()) return std::nullopt;
  auto it = c->second.find(id);
  if (it == c->second.end()) return std::nullopt;
  DocEntry e = std::move(it->second);
  c->second.erase(it);
  if (c->second.empty()) part->collections.erase(c);
  DropRefs(e.blocks);
  --part->documents;
  --documents_;
  return e;
}

void DocIndex::Remember(Partition* part, const RequestId& id, const ApplyResult& result) {
  if (dedup_cap_ == 0) return;
  // The first answer stays (a record never repeats a remembered id anyway).
  if (!part->dedup.try_emplace(id, result).second) return;
  part->dedup_order.push_back({id, result});
  while (part->dedup_order.size() > dedup_cap_) {
    part->dedup.erase(part->dedup_order.front().id);
    part->dedup_order.pop_front();
  }
}

void DocIndex::AddRefs(const std::vector<BlockRef>& refs) {
  for (const BlockRef& r : refs) {
    auto [it, inserted] = live_.try_emplace(r.offset);
    if (inserted) {
      it->second.ref = r;
      live_bytes_ += r.record_len();
      max_live_record_ = std::max(max_live_record_, r.record_len());
    }
    ++it->second.refs;
  }
}

void DocIndex::DropRefs(const std::vector<BlockRef>& refs) {
  for (const BlockRef& r : refs) {
    auto it = live_.find(r.offset);
    CAIRN_CHECK(it != live_.end() && it->second.refs > 0)
        << "block reference count underflow at offset " << r.offset;
    if (--it->second.refs == 0) {
      live_bytes_ -= it->second.ref.record_len();
      live_.erase(it);
    }
  }
}

const DocEntry* DocIndex::Find(PartitionId p, std::string_view collection,
                               std::string_view id) const {
  auto part = partitions_.find(p);
  if (part == partitions_.end()) return nullptr;
  auto c = part->second.collections.find(collection);
  if (c == part->second.collections.end()) return nullptr;
  auto it = c->second.find(id);
  return it == c->second.end() ? nullptr : &it->second;
}

ListPage DocIndex::List(PartitionId p, std::string_view collection, std::string_view after_id,
                        size_t limit) const {
  ListPage page;
  auto part = partitions_.find(p);
  if (part == partitions_.end()) return page;
  auto c = part->second.collections.find(collection);
  if (c == part->second.collections.end()) return page;
  auto it = after_id.empty() ? c->second.begin() : c->second.upper_bound(after_id);
  for (; it != c->second.end(); ++it) {
    if (page.items.size() == limit) {
      page.more = true;
      break;
    }
    const DocEntry& e = it->second;
    page.items.push_back({e.id, e.version, e.meta, e.body_hash});
  }
  return page;
}

EntryPage DocIndex::ListEntries(PartitionId p, std::string_view collection,
                                std::string_view after_id, size_t limit) const {
  EntryPage page;
  auto part = partitions_.find(p);
  if (part == partitions_.end()) return page;
  auto c = part->second.collections.find(collection);
  if (c == part->second.collections.end()) return page;
  auto it = after_id.empty() ? c->second.begin() : c->second.upper_bound(after_id);
  page.entries.reserve(std::min(limit, c->second.size()));
  for (; it != c->second.end(); ++it) {
    if (page.entries.size() == limit) {
      page.more = true;
      break;
    }
    page.entries.push_back(it->second);
  }
  return page;
}

std::optional<ApplyResult> DocIndex::FindRequest(PartitionId p, const RequestId& id) const {
  auto part = partitions_.find(p);
  if (part == partitions_.end()) return std::nullopt;
  auto it = part->second.dedup.find(id);
  if (it == part->second.dedup.end()) return std::nullopt;
  return it->second;
}

PartitionState DocIndex::State(PartitionId p) const {
  PartitionState s;
  s.partition = p;
  auto part = partitions_.find(p);
  if (part == partitions_.end()) return s;
  s.last_lsn = part->second.last_lsn;
  s.last_epoch = part->second.last_epoch;
  s.documents = part->second.documents;
  return s;
}

std::vector<PartitionId> DocIndex::Partitions() const {
  std::vector<PartitionId> out;
  for (const auto& [p, part] : partitions_) out.push_back(p);
  return out;
}

// ---- checkpoints ----

std::vector<std::byte> DocIndex::SerializePartition(PartitionId p) const {
  std::vector<std::byte> out;
  auto it = partitions_.find(p);
  CAIRN_CHECK(it != partitions_.end()) << "no partition " << p;
  const Partition& part = it->second;
  Encoder e(&out);
  e.Put<uint32_t>(p.value());
  e.Put<uint64_t>(part.last_lsn.value());
  e.Put<uint64_t>(part.last_epoch.value());
  e.Put<uint32_t>(static_cast<uint32_t>(part.dedup_order.size()));
  for (const Dedup& d : part.dedup_order) {
    EncodeRequestId(d.id, &e);
    e.Put<uint64_t>(d.result.lsn.value());
    e.Put<uint64_t>(d.result.version);
  }
  e.Put<uint32_t>(static_cast<uint32_t>(part.collections.size()));
  for (const auto& [name, docs] : part.collections) {
    e.PutString16(name);
    e.Put<uint64_t>(docs.size());
    for (const auto& [id, doc] : docs) {
      e.PutString16(id);
      e.Put<uint64_t>(doc.version);
      e.Put<uint64_t>(doc.lsn.value());
      EncodeMetadata(doc.meta, &e);
      e.Put<uint64_t>(doc.body_hash);
      EncodeBlockRefs(doc.blocks, &e);
    }
  }
  return out;
}

std::vector<std::byte> DocIndex::EmptyPartition(PartitionId p) {
  std::vector<std::byte> out;
  Encoder e(&out);
  e.Put<uint32_t>(p.value());
  e.Put<uint64_t>(0);  // last LSN
  e.Put<uint64_t>(0);  // its epoch
  e.Put<uint32_t>(0);  // request ids
  e.Put<uint32_t>(0);  // collections
  return out;
}

Status DocIndex::LoadPartition(std::span<const std::byte> blob) {
  Decoder d(blob);
  const PartitionId p(d.Get<uint32_t>());
  auto bad = [&](const std::string& what) {
    return Status::Corruption("checkpoint of partition " + std::to_string(p.value()) + ": " + what);
  };
  if (!d.ok()) return bad("empty");
  if (partitions_.count(p) != 0) return bad("appears twice");
  Partition& part = partitions_[p];
  part.last_lsn = Lsn(d.Get<uint64_t>());
  part.last_epoch = Epoch(d.Get<uint64_t>());
  const uint32_t dedups = d.Get<uint32_t>();
  if (uint64_t{dedups} * 40 > d.remaining()) return bad("bad request-id count");
  for (uint32_t i = 0; i < dedups; ++i) {
    RequestId id = DecodeRequestId(&d);
    const Lsn lsn(d.Get<uint64_t>());
    const uint64_t version = d.Get<uint64_t>();
    Remember(&part, id, ApplyResult{lsn, version, false});
  }
  const uint32_t collections = d.Get<uint32_t>();
  for (uint32_t c = 0; c < collections && d.ok(); ++c) {
    std::string name = d.GetString16();
    const uint64_t n = d.Get<uint64_t>();
    if (n > d.remaining()) return bad("bad document count");
    for (uint64_t i = 0; i < n && d.ok(); ++i) {
      DocEntry e;
      e.partition = p;
      e.collection = name;
      e.id = d.GetString16();
      e.version = d.Get<uint64_t>();
      e.lsn = Lsn(d.Get<uint64_t>());
      e.meta = DecodeMetadata(&d);
      e.body_hash = d.Get<uint64_t>();
      e.blocks = DecodeBlockRefs(&d);
      if (!d.ok()) break;
      PutEntry(&part, std::move(e));
    }
  }
  if (!d.done()) return bad("malformed");
  return Status::Ok();
}

// ---- blocks ----

const DocIndex::LiveBlock* DocIndex::FindLive(uint64_t offset) const {
  auto it = live_.find(offset);
  return it == live_.end() ? nullptr : &it->second;
}

std::vector<BlockRef> DocIndex::LiveBlocksIn(uint64_t start, uint64_t end) const {
  std::vector<BlockRef> out;
  const uint64_t from = start > max_live_record_ ? start - max_live_record_ : 0;
  for (auto it = live_.lower_bound(from); it != live_.end() && it->first < end; ++it) {
    if (it->first + it->second.ref.record_len() > start) out.push_back(it->second.ref);
  }
  return out;
}

uint64_t DocIndex::LiveBytesIn(uint64_t start, uint64_t end) const {
  uint64_t bytes = 0;
  for (const BlockRef& r : LiveBlocksIn(start, end)) bytes += r.record_len();
  return bytes;
}

void DocIndex::DropPartition(PartitionId p) {
  auto it = partitions_.find(p);
  if (it == partitions_.end()) return;
  for (auto& [name, docs] : it->second.collections) {
    for (auto& [id, doc] : docs) DropRefs(doc.blocks);
  }
  documents_ -= it->second.documents;
  partitions_.erase(it);
}

std::vector<std::pair<std::string, std::string>> DocIndex::DocumentsOf(PartitionId p) const {
  std::vector<std::pair<std::string, std::string>> out;
  auto it = partitions_.find(p);
  if (it == partitions_.end()) return out;
  for (const auto& [name, docs] : it->second.collections) {
    for (const auto& [id, doc] : docs) out.emplace_back(name, id);
  }
  return out;
}

std::vector<BlockRef> DocIndex::BlocksOf(PartitionId p) const {
  std::map<uint64_t, BlockRef> all;
  auto it = partitions_.find(p);
  if (it != partitions_.end()) {
    for (const auto& [name, docs] : it->second.collections) {
      for (const auto& [id, doc] : docs) {
        for (const BlockRef& r : doc.blocks) all.emplace(r.offset, r);
      }
    }
  }
  std::vector<BlockRef> out;
  for (const auto& [off, r] : all) out.push_back(r);
  return out;
}

uint64_t DocIndex::Relocate(const std::map<uint64_t, BlockRef>& moved) {
  if (moved.empty()) return 0;
  uint64_t changed = 0;
  for (auto& [p, part] : partitions_) {
    for (auto& [name, docs] : part.collections) {
      for (auto& [id, doc] : docs) {
        bool touched = false;
        for (const BlockRef& r : doc.blocks) touched = touched || moved.count(r.offset) != 0;
        if (!touched) continue;
        std::vector<BlockRef> next = doc.blocks;
        for (BlockRef& r : next) {
          auto m = moved.find(r.offset);
          if (m != moved.end()) {
            r = m->second;
            ++changed;
          }
        }
        AddRefs(next);
        DropRefs(doc.blocks);
        doc.blocks = std::move(next);
      }
    }
  }
  return changed;
}

}  // namespace cairn::chunkserver
