#include "chunkserver/secondary_index.h"

#include <algorithm>
#include <chrono>
#include <span>

#include "query/index_key.h"

namespace cairn::chunkserver {

namespace {

constexpr size_t kScanPage = 256;

// A run of index keys in byte order: from lo ("": the first key) to hi
// (nullopt: the last key), each end inclusive or not.
struct KeyInterval {
  std::string lo;
  bool lo_inclusive = true;
  std::optional<std::string> hi;
  bool hi_inclusive = true;
};

// The key intervals a walk's bound allows, in ascending order.
std::vector<KeyInterval> IntervalsOf(const std::optional<query::IndexLookup>& bound) {
  if (!bound.has_value()) return {KeyInterval{}};
  std::vector<KeyInterval> out;
  if (bound->kind == query::IndexLookup::Kind::kPoints) {
    // Sorted by value, so by key (query/index_key.h).
    for (const query::Value& v : bound->points) {
      std::string k = query::EncodeIndexKey(v);
      out.push_back(KeyInterval{k, true, std::move(k), true});
    }
    return out;
  }
  const query::IndexRange& r = bound->range;
  const char cls = query::IndexKeyClassByte(r.type);
  KeyInterval i;
  if (r.lower.has_value()) {
    i.lo = query::EncodeIndexKey(*r.lower);
    i.lo_inclusive = r.lower_inclusive;
  } else {
    i.lo = std::string(1, cls);  // at or below every key of the class
  }
  if (r.upper.has_value()) {
    i.hi = query::EncodeIndexKey(*r.upper);
    i.hi_inclusive = r.upper_inclusive;
  } else {
    i.hi = std::string(1, static_cast<char>(cls + 1));  // above every key of the class
    i.hi_inclusive = false;
  }
  out.push_back(std::move(i));
  return out;
}

// The smallest (key, id) above every entry whose key is `k`: every key
// greater than k is at least k + '\0' (bytewise), and ids sort after "".
std::pair<std::string, std::string> PastKey(const std::string& k) {
  return {k + std::string(1, '\0'), std::string()};
}

}  // namespace

SecondaryIndex::SecondaryIndex(DocStore* store, SecondaryIndexOptions options)
    : store_(store),
      options_(std::move(options)),
      log_("index", options_.node_name),
      apply_doc_(std::make_unique<query::Document>()) {
  store_->SetApplyObserver(this);
  if (options_.background) builder_ = std::thread([this] { BuilderLoop(); });
}

SecondaryIndex::~SecondaryIndex() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    stopping_ = true;
  }
  wake_cv_.notify_all();
  if (builder_.joinable()) builder_.join();
  store_->SetApplyObserver(nullptr);
}

void SecondaryIndex::Wake() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    wake_ = true;
  }
  wake_cv_.notify_all();
}

// ---------------------------------------------------------------- definitions

void SecondaryIndex::SetDefinitions(const std::map<std::string, std::vector<std::string>>& defs) {
  std::map<Key, query::Path> wanted;
  for (const auto& [collection, paths] : defs) {
    for (const std::string& text : paths) {
      Result<query::Path> p = query::ParseIndexPath(text);
      if (!p.ok()) {
        LOG_EVERY_N_SEC(log_, kWarn, 60)
            << "ignoring index " << collection << " " << text << ": " << p.status().ToString();
        continue;
      }
      std::string canonical = p->ToString();
      wanted.emplace(Key(collection, std::move(canonical)), std::move(*p));
    }
  }
  bool added = false;
  // Dropped indexes are freed after the lock is released (a large one takes
  // a while), so writes and lookups do not wait for it.
  std::vector<std::unique_ptr<PathIndex>> dropped;
  {
    MutexLock lock(&mu_);
    for (auto it = indexes_.begin(); it != indexes_.end();) {
      if (wanted.count(it->first) == 0) {
        LOG_INFO(log_) << "dropping index " << it->first.first << " " << it->first.second;
        dropped.push_back(std::move(it->second));
        it = indexes_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [key, path] : wanted) {
      if (indexes_.count(key) != 0) continue;
      auto ix = std::make_unique<PathIndex>();
      ix->build_generation = next_generation_++;
      ix->path = std::move(path);
      ix->text = key.second;
      LOG_INFO(log_) << "new index " << key.first << " " << key.second << ": building";
      indexes_.emplace(key, std::move(ix));
      added = true;
    }
    // Registered under mu_ before any build starts: a change applied after
    // Wants() says yes is delivered; one applied before is seen by the scan.
    MutexLock w(&wanted_mu_);
    wanted_.clear();
    for (const auto& [key, ix] : indexes_) wanted_.insert(key.first);
  }
  if (added) Wake();
}

std::vector<IndexProgress> SecondaryIndex::Progress() const {
  std::vector<IndexProgress> out;
  MutexLock lock(&mu_);
  for (const auto& [key, ix] : indexes_) {
    IndexProgress p;
    p.collection = key.first;
    p.path = key.second;
    p.docs_indexed = ix->docs_indexed;
    p.docs_total = ix->docs_total;
    p.entries = ix->entries;
    p.ready = ix->ready;
    p.error = ix->error;
    out.push_back(std::move(p));
  }
  return out;
}

// ---------------------------------------------------------------- queries

std::vector<query::Path> SecondaryIndex::ReadyPaths(PartitionId /*p*/,
                                                    std::string_view collection) const {
  std::vector<query::Path> out;
  MutexLock lock(&mu_);
  for (auto it = indexes_.lower_bound(Key(std::string(collection), ""));
       it != indexes_.end() && it->first.first == collection; ++it) {
    if (it->second->ready) out.push_back(it->second->path);
  }
  return out;
}

Result<std::vector<std::string>> SecondaryIndex::Lookup(PartitionId p, std::string_view collection,
                                                        const query::IndexLookup& lookup) const {
  const Key key(std::string(collection), lookup.path.ToString());
  std::vector<std::string> ids;
  {
    MutexLock lock(&mu_);
    auto it = indexes_.find(key);
    if (it == indexes_.end() || !it->second->ready) {
      return Status::FailedPrecondition("no ready index on " + key.first + " " + key.second);
    }
    const PathIndex& ix = *it->second;
    auto part_it = ix.parts.find(p);
    if (part_it == ix.parts.end()) return ids;
    const auto& entries = part_it->second.entries;
    if (lookup.kind == query::IndexLookup::Kind::kPoints) {
      for (const query::Value& v : lookup.points) {
        const std::string k = query::EncodeIndexKey(v);
        for (auto e = entries.lower_bound({k, std::string()}); e != entries.end() && e->first == k;
             ++e) {
          ids.push_back(e->second);
        }
      }
    } else {
      const query::IndexRange& r = lookup.range;
      const char cls = query::IndexKeyClassByte(r.type);
      const std::string lower = r.lower ? query::EncodeIndexKey(*r.lower) : std::string(1, cls);
      const std::string upper = r.upper ? query::EncodeIndexKey(*r.upper) : std::string();
      auto e = entries.lower_bound({lower, std::string()});
      if (r.lower && !r.lower_inclusive) {
        while (e != entries.end() && e->first == lower) ++e;
      }
      for (; e != entries.end() && !e->first.empty() && e->first[0] == cls; ++e) {
        if (r.upper) {
          const int c = e->first.compare(upper);
          if (c > 0 || (c == 0 && !r.upper_inclusive)) break;
        }
        ids.push_back(e->second);
      }
    }
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

Result<IndexWalkPage> SecondaryIndex::Walk(PartitionId p, std::string_view collection,
                                           const IndexWalkRequest& req) const {
  const Key key(std::string(collection), req.path.ToString());
  const std::vector<KeyInterval> intervals = IntervalsOf(req.bound);
  const size_t max = std::max<size_t>(req.max_entries, 1);
  IndexWalkPage page;
  MutexLock lock(&mu_);
  auto it = indexes_.find(key);
  if (it == indexes_.end() || !it->second->ready) {
    return Status::FailedPrecondition("no ready index on " + key.first + " " + key.second);
  }
  const PathIndex& ix = *it->second;
  auto part_it = ix.parts.find(p);
  if (part_it == ix.parts.end()) return page;
  const auto& entries = part_it->second.entries;
  auto emit = [&](const std::pair<std::string, std::string>& e) {
    page.entries.push_back(IndexWalkEntry{e.first, e.second});
    return page.entries.size() < max;
  };
  if (!req.descending) {
    for (const KeyInterval& iv : intervals) {
      auto e = entries.lower_bound(iv.lo_inclusive ? std::make_pair(iv.lo, std::string())
                                                   : PastKey(iv.lo));
      if (req.after.has_value() && e != entries.end() && !(*req.after < *e)) {
        e = entries.upper_bound(*req.after);
      }
      for (; e != entries.end(); ++e) {
        if (iv.hi.has_value()) {
          const int c = e->first.compare(*iv.hi);
          if (c > 0 || (c == 0 && !iv.hi_inclusive)) break;
        }
        if (!emit(*e)) {
          page.more = true;
          return page;
        }
      }
    }
    return page;
  }
  for (auto iv = intervals.rbegin(); iv != intervals.rend(); ++iv) {
    // One past the interval's last entry, then backwards.
    auto e = !iv->hi.has_value() ? entries.end()
             : iv->hi_inclusive  ? entries.lower_bound(PastKey(*iv->hi))
                                 : entries.lower_bound({*iv->hi, std::string()});
    if (req.after.has_value()) {
      auto c = entries.lower_bound(*req.after);
      if (e == entries.end() || (c != entries.end() && *c < *e)) e = c;
    }
    while (e != entries.begin()) {
      --e;
      const int c = e->first.compare(iv->lo);
      if (c < 0 || (c == 0 && !iv->lo_inclusive)) break;
      if (!emit(*e)) {
        page.more = true;
        return page;
      }
    }
  }
  return page;
}

// ---------------------------------------------------------------- maintenance

bool SecondaryIndex::Wants(PartitionId /*p*/, std::string_view collection) const {
  MutexLock lock(&wanted_mu_);
  return wanted_.find(collection) != wanted_.end();
}

std::optional<std::string> SecondaryIndex::KeyOf(const query::Path& path,
                                                 const query::Document& doc) const {
  if (!doc.loaded()) return std::nullopt;
  std::optional<query::Value> v = query::ValueAt(path, doc);
  if (!v) return std::nullopt;
  return query::EncodeIndexKey(*v);
}

void SecondaryIndex::UpdateLocked(PathIndex* ix, PartitionId p, const std::string& id,
                                  uint64_t version, std::optional<std::string> key,
                                  bool from_scan) {
  Part& part = ix->parts[p];
  auto it = part.docs.find(id);
  if (it != part.docs.end()) {
    if (it->second.version > version || (from_scan && it->second.version == version)) return;
    if (it->second.present) {
      part.entries.erase({it->second.key, id});
      --ix->entries;
    }
  }
  if (key) {
    part.entries.emplace(*key, id);
    ++ix->entries;
    DocState& st = part.docs[id];
    st.version = version;
    st.present = true;
    st.key = std::move(*key);
  } else if (ix->building()) {
    // A tombstone: the scan may still come with an older version of it.
    DocState& st = part.docs[id];
    st.version = version;
    st.present = false;
    st.key.clear();
  } else if (it != part.docs.end()) {
    part.docs.erase(it);
  }
}

void SecondaryIndex::OnApplied(const AppliedChange& c) {
  MutexLock a(&apply_mu_);
  query::Document& doc = *apply_doc_;
  const bool parsed = c.exists && c.body && doc.Load(c.id, *c.body);
  bool rebuild = false;
  {
    MutexLock lock(&mu_);
    for (auto it = indexes_.lower_bound(Key(c.collection, ""));
         it != indexes_.end() && it->first.first == c.collection; ++it) {
      PathIndex* ix = it->second.get();
      std::optional<std::string> key;
      if (parsed) key = KeyOf(ix->path, doc);
      if (c.exists && !c.body && !c.read_error.ok()) {
        // The body could not be read: forget the document and rebuild, which
        // reads it again (an index must never miss a match).
        LOG_EVERY_N_SEC(log_, kWarn, 10)
            << "index " << it->first.first << " " << ix->text << ": cannot read " << c.id << " ("
            << c.read_error.ToString() << "); rebuilding";
        Part& part = ix->parts[c.partition];
        auto d = part.docs.find(c.id);
        if (d != part.docs.end()) {
          if (d->second.present) {
            part.entries.erase({d->second.key, c.id});
            --ix->entries;
          }
          part.docs.erase(d);
        }
        ix->ready = false;
        ix->build_generation = next_generation_++;
        rebuild = true;
        continue;
      }
      UpdateLocked(ix, c.partition, c.id, c.version, std::move(key), /*from_scan=*/false);
    }
  }
  if (rebuild) Wake();
}

// ---------------------------------------------------------------- building

std::optional<std::pair<SecondaryIndex::Key, uint64_t>> SecondaryIndex::NextToBuild() const {
  MutexLock lock(&mu_);
  for (const auto& [key, ix] : indexes_) {
    if (ix->building() && ix->error.empty()) return std::make_pair(key, ix->build_generation);
  }
  return std::nullopt;
}

bool SecondaryIndex::Throttle(uint64_t docs_done, std::chrono::steady_clock::time_point start) {
  std::unique_lock<std::mutex> lock(wake_mu_);
  if (stopping_) return false;
  if (options_.build_docs_per_second == 0) return true;
  const auto due =
      start + std::chrono::microseconds(docs_done * 1000000 / options_.build_docs_per_second);
  wake_cv_.wait_until(lock, due, [this] { return stopping_; });
  return !stopping_;
}

bool SecondaryIndex::Build(const Key& which, uint64_t generation) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<PartitionId> partitions = store_->partitions();
  auto fail = [&](const Status& s) {
    LOG_WARN(log_) << "building index " << which.first << " " << which.second
                   << " failed (will retry): " << s.ToString();
    MutexLock lock(&mu_);
    auto it = indexes_.find(which);
    if (it != indexes_.end()) it->second->error = s.ToString();
    return false;
  };
  // Count first (the listing is in memory), so progress has a total.
  uint64_t total = 0;
  for (PartitionId p : partitions) {
    std::string after;
    for (;;) {
      Result<ListPage> page = store_->List(p, which.first, after, 4096);
      if (!page.ok()) return fail(page.status());
      total += page->items.size();
      if (!page->more || page->items.empty()) break;
      after = page->items.back().id;
    }
  }
  query::Path path;
  {
    MutexLock lock(&mu_);
    auto it = indexes_.find(which);
    if (it == indexes_.end() || it->second->build_generation != generation) return true;
    it->second->docs_total = total;
    it->second->docs_indexed = 0;
    it->second->error.clear();
    path = it->second->path;
  }
  LOG_INFO(log_) << "building index " << which.first << " " << which.second << ": " << total
                 << " documents";
  query::Document doc;
  std::string body;
  uint64_t done = 0;
  for (PartitionId p : partitions) {
    std::string after;
    for (;;) {
      Result<ListPage> page = store_->List(p, which.first, after, kScanPage);
      if (!page.ok()) return fail(page.status());
      for (const ListItem& item : page->items) {
        if (options_.background && !Throttle(done, start)) return true;
        ++done;
        // Read the current version (a change delivered meanwhile wins).
        Result<std::optional<DocEntry>> e = store_->Lookup(p, which.first, item.id);
        if (!e.ok()) return fail(e.status());
        std::optional<std::string> key;
        uint64_t version = item.version;
        if (e->has_value()) {
          const DocEntry& entry = **e;
          version = entry.version;
          if (entry.meta.size <= options_.max_document_bytes) {
            body.assign(static_cast<size_t>(entry.meta.size), '\0');
            Status s = store_->ReadRange(entry, 0, std::as_writable_bytes(std::span(body)));
            if (s.code() == StatusCode::kUnavailable) {
              // Moved by compaction since the lookup: look again.
              e = store_->Lookup(p, which.first, item.id);
              if (!e.ok()) return fail(e.status());
              if (!e->has_value()) continue;
              version = (*e)->version;
              body.assign(static_cast<size_t>((*e)->meta.size), '\0');
              s = store_->ReadRange(**e, 0, std::as_writable_bytes(std::span(body)));
            }
            if (!s.ok()) return fail(s.WithContext("reading " + which.first + "/" + item.id));
            if (body.size() <= options_.max_document_bytes && doc.Load(item.id, body)) {
              key = KeyOf(path, doc);
            }
          }
        } else {
          continue;  // gone since the listing: its deletion was delivered
        }
        MutexLock lock(&mu_);
        auto it = indexes_.find(which);
        if (it == indexes_.end() || it->second->build_generation != generation) return true;
        UpdateLocked(it->second.get(), p, item.id, version, std::move(key), /*from_scan=*/true);
        it->second->docs_indexed = done;
      }
      if (!page->more || page->items.empty()) break;
      after = page->items.back().id;
    }
  }
  MutexLock lock(&mu_);
  auto it = indexes_.find(which);
  if (it == indexes_.end() || it->second->build_generation != generation) return true;
  PathIndex& ix = *it->second;
  ix.built_generation = generation;
  ix.ready = true;
  ix.docs_indexed = done;
  ix.docs_total = std::max(total, done);
  for (auto& [p, part] : ix.parts) {
    for (auto d = part.docs.begin(); d != part.docs.end();) {
      d = d->second.present ? std::next(d) : part.docs.erase(d);
    }
  }
  LOG_INFO(log_) << "index " << which.first << " " << which.second << " ready: " << ix.entries
                 << " of " << done << " documents indexed";
  return true;
}

void SecondaryIndex::BuildPending() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(wake_mu_);
      if (stopping_) return;  // a stopped build returns without progress
    }
    std::optional<std::pair<Key, uint64_t>> next = NextToBuild();
    if (!next) return;
    if (!Build(next->first, next->second)) return;
  }
}

void SecondaryIndex::BuilderLoop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(wake_mu_);
      // Wake on demand, and every few seconds to retry failed builds.
      wake_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return stopping_ || wake_; });
      if (stopping_) return;
      wake_ = false;
    }
    {
      MutexLock lock(&mu_);
      for (auto& [key, ix] : indexes_) ix->error.clear();  // retry failed builds
    }
    BuildPending();
  }
}

}  // namespace cairn::chunkserver
