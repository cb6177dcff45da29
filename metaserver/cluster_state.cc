#include "metaserver/cluster_state.h"

#include <chrono>
#include <set>
#include <thread>

#include "common/certs.h"
#include "common/partitioning.h"
#include "metaserver/placement.h"
#include "query/index_key.h"

namespace cairn::metaserver {
namespace {

int64_t ToMs(Nanos t) { return std::chrono::duration_cast<std::chrono::milliseconds>(t).count(); }

Status NotLoaded() {
  return Status::Unavailable(
      "the cluster map is not loaded (this metaserver is not serving as "
      "leader)");
}

}  // namespace

std::string_view NodeStateName(NodeState s) {
  switch (s) {
    case NodeState::kUp:
      return "UP";
    case NodeState::kSuspect:
      return "SUSPECT";
    case NodeState::kDown:
      return "DOWN";
  }
  return "?";
}

Status ClusterOptions::Validate() const {
  if (!ValidPartitionCount(partition_count)) {
    return Status::InvalidArgument("partitions must be a power of two between 1 and " +
                                   std::to_string(kMaxPartitionCount) + ", got " +
                                   std::to_string(partition_count));
  }
  if (initial_nodes == 0) return Status::InvalidArgument("initial_nodes must be at least 1");
  if (replication == 0 || replication > 5) {
    return Status::InvalidArgument("replication must be 1..5, got " + std::to_string(replication));
  }
  if (heartbeat_timeout <= Nanos(0) || node_down < heartbeat_timeout) {
    return Status::InvalidArgument("need 0 < heartbeat timeout <= node down timeout");
  }
  if (map_key.empty()) return Status::InvalidArgument("empty map key");
  if (max_cas_attempts < 1) return Status::InvalidArgument("max_cas_attempts must be >= 1");
  return Status::Ok();
}

ClusterState::ClusterState(MetaStore* store, Clock* clock, ClusterOptions options)
    : store_(store), clock_(clock), options_(std::move(options)), log_("metaserver", "map") {}

int64_t ClusterState::WallMs() const { return clock_->WallNanos() / 1'000'000; }

NodeState ClusterState::StateAt(const Soft& s, Nanos now) const {
  const Nanos age = now - s.last_seen;
  if (age < options_.heartbeat_timeout) return NodeState::kUp;
  if (age < options_.node_down) return NodeState::kSuspect;
  return NodeState::kDown;
}

Result<bool> ClusterState::ReloadLocked() {
  ASSIGN_OR_RETURN(std::optional<KeyValue> kv, store_->Get(options_.map_key));
  if (!kv.has_value()) {
    return Status::FailedPrecondition("the cluster map " + options_.map_key +
                                      " vanished from the store");
  }
  ASSIGN_OR_RETURN(ClusterMap m, DecodeClusterMap(kv->value));
  MutexLock lock(&mu_);
  const bool moved = kv->mod_revision != revision_;
  map_ = std::move(m);
  revision_ = kv->mod_revision;
  return moved;
}

Status ClusterState::Load() {
  RETURN_IF_ERROR(options_.Validate());
  {
    MutexLock wl(&write_mu_);
    {
      MutexLock lock(&mu_);
      loaded_ = false;
    }
    ASSIGN_OR_RETURN(std::optional<KeyValue> kv, store_->Get(options_.map_key));
    ClusterMap m;
    int64_t rev = 0;
    if (kv.has_value()) {
      ASSIGN_OR_RETURN(m, DecodeClusterMap(kv->value));
      rev = kv->mod_revision;
    } else {
      m = ClusterMap::New(options_.partition_count);
      std::vector<Compare> compares = {Compare::Absent(options_.map_key)};
      {
        MutexLock lock(&mu_);
        if (fence_.has_value()) compares.push_back(*fence_);
      }
      ASSIGN_OR_RETURN(TxnResult r,
                       store_->Txn(compares, {Op::Put(options_.map_key, EncodeClusterMap(m))}));
      if (!r.succeeded) {
        // Someone else created it (or we lost the fence): read what is there.
        ASSIGN_OR_RETURN(kv, store_->Get(options_.map_key));
        if (!kv.has_value()) return Status::Unavailable("lost leadership while creating the map");
        ASSIGN_OR_RETURN(m, DecodeClusterMap(kv->value));
        rev = kv->mod_revision;
      } else {
        rev = r.revision;
        LOG_INFO(log_) << "created the cluster map with " << options_.partition_count
                       << " partitions at " << options_.map_key;
      }
    }
    if (m.partition_count != options_.partition_count) {
      return Status::FailedPrecondition(
          "the stored cluster map (" + options_.map_key + ") has " +
          std::to_string(m.partition_count) + " partitions but this metaserver is configured " +
          "with partitions = " + std::to_string(options_.partition_count) +
          "; the partition count is fixed when the cluster is created: set partitions = " +
          std::to_string(m.partition_count));
    }
    const Nanos now = clock_->Now();
    MutexLock lock(&mu_);
    map_ = std::move(m);
    revision_ = rev;
    soft_.clear();
    for (const NodeEntry& n : map_.nodes) soft_[n.id] = Soft{now, Nanos(0), {}, NodeState::kUp};
    loaded_ = true;
    LOG_INFO(log_) << "loaded the cluster map: version " << map_.version << ", "
                   << map_.nodes.size() << " nodes, " << map_.collections.size() << " collections, "
                   << (map_.Placed() ? "placed" : "not yet placed");
  }
  // A lower initial_nodes than at creation may allow placement now.
  auto placed = Mutate("place partitions", [&](ClusterMap& m, bool* changed) -> Status {
    if (m.Placed() || m.nodes.size() < options_.initial_nodes) return Status::Ok();
    RETURN_IF_ERROR(PlaceUnplacedPartitions(&m, options_.PlacedReplication(m.nodes.size())));
    *changed = true;
    return Status::Ok();
  });
  return placed.status();
}

void ClusterState::Unload() {
  MutexLock lock(&mu_);
  loaded_ = false;
  soft_.clear();
}

bool ClusterState::loaded() const {
  MutexLock lock(&mu_);
  return loaded_;
}

void ClusterState::SetFence(std::optional<Compare> fence) {
  MutexLock lock(&mu_);
  fence_ = std::move(fence);
}

template <typename Fn>
Result<ClusterMap> ClusterState::Mutate(std::string_view what, Fn&& change) {
  MutexLock wl(&write_mu_);
  Status last;
  for (int attempt = 0; attempt < options_.max_cas_attempts; ++attempt) {
    ClusterMap next;
    int64_t rev = 0;
    std::vector<Compare> compares;
    {
      MutexLock lock(&mu_);
      if (!loaded_) return NotLoaded();
      next = map_;
      rev = revision_;
      if (fence_.has_value()) compares.push_back(*fence_);
    }
    bool changed = false;
    Status refused = change(next, &changed);
    if (!refused.ok() || !changed) {
      // Decided without a write, on the cache: make sure it was current (an
      // ALREADY_EXISTS, or "nothing to do", on a map another writer has
      // changed would be wrong). Such outcomes are rare: one read.
      ASSIGN_OR_RETURN(bool moved, ReloadLocked());
      if (moved) continue;
      if (!refused.ok()) return refused;
      return next;
    }
    next.version++;
    CAIRN_DCHECK(next.Validate().ok()) << what << ": " << next.Validate().ToString();
    compares.push_back(Compare::ModRevisionIs(options_.map_key, rev));
    Result<TxnResult> r =
        store_->Txn(compares, {Op::Put(options_.map_key, EncodeClusterMap(next))});
    if (!r.ok()) {
      // The write may or may not have happened: refresh the cache so the next
      // change starts from what the store holds, and report the failure.
      Result<bool> reload = ReloadLocked();
      if (!reload.ok()) {
        LOG_WARN(log_) << what << ": cannot re-read the map: " << reload.status().ToString();
      }
      return r.status().WithContext(std::string(what));
    }
    if (r->succeeded) {
      MutexLock lock(&mu_);
      map_ = next;
      revision_ = r->revision;
      const Nanos now = clock_->Now();
      for (const NodeEntry& n : map_.nodes) {
        soft_.try_emplace(n.id, Soft{now, Nanos(0), {}, NodeState::kUp});
      }
      LOG_DEBUG(log_) << what << ": map version " << map_.version;
      return next;
    }
    // A compare failed: either the map moved (another writer; retry on the
    // fresh map) or the fence failed (this process no longer leads).
    ASSIGN_OR_RETURN(bool moved, ReloadLocked());
    if (!moved) {
      return Status::Unavailable(std::string(what) +
                                 ": this metaserver lost its leadership (fence failed)");
    }
    LOG_INFO(log_) << what << ": the map changed under us (attempt " << attempt + 1
                   << "), retrying";
    last = Status::Unavailable(std::string(what) + ": the map kept changing under us");
  }
  return last;
}

Result<ClusterMap> ClusterState::ChangeMap(
    std::string_view what, const std::function<Status(ClusterMap&, bool*)>& change) {
  return Mutate(what, change);
}

Result<NodeId> ClusterState::RegisterNode(std::string_view name, std::string_view host, int port) {
  RETURN_IF_ERROR(ValidateCertName(name, "node name"));
  if (host.empty() || host.size() > kMaxHostBytes) {
    return Status::InvalidArgument("node " + std::string(name) + ": host must be 1-" +
                                   std::to_string(kMaxHostBytes) + " bytes");
  }
  if (port < 1 || port > 65535) {
    return Status::InvalidArgument("node " + std::string(name) + ": port " + std::to_string(port) +
                                   " out of range");
  }
  NodeId id;
  bool placed_now = false;
  auto result =
      Mutate("register node " + std::string(name), [&](ClusterMap& m, bool* changed) -> Status {
        placed_now = false;
        auto it = std::find_if(m.nodes.begin(), m.nodes.end(),
                               [&](const NodeEntry& n) { return n.name == name; });
        if (it != m.nodes.end()) {
          id = it->id;
          if (it->host != host || it->port != port) {
            it->host = std::string(host);
            it->port = port;
            *changed = true;
          }
        } else {
          if (m.nodes.size() >= kMaxNodes) {
            return Status::TooLarge("the map holds " + std::to_string(kMaxNodes) +
                                    " nodes already");
          }
          id = m.next_node_id;
          m.next_node_id = m.next_node_id.Next();
          m.nodes.push_back(NodeEntry{id, std::string(name), std::string(host), port, WallMs()});
          *changed = true;
        }
        if (!m.Placed() && m.nodes.size() >= options_.initial_nodes) {
          RETURN_IF_ERROR(PlaceUnplacedPartitions(&m, options_.PlacedReplication(m.nodes.size())));
          placed_now = true;
          *changed = true;
        }
        return Status::Ok();
      });
  if (!result.ok()) return result.status();
  LOG_INFO(log_) << "node " << name << " registered as id " << id << " at " << host << ":" << port
                 << " (map version " << result->version << ")";
  if (placed_now) {
    LOG_INFO(log_) << "placed " << result->partition_count << " partitions on "
                   << result->nodes.size() << " nodes (map version " << result->version << ")";
  }
  MutexLock lock(&mu_);
  Soft& s = soft_[id];
  s.last_seen = clock_->Now();
  return id;
}

Result<uint64_t> ClusterState::Heartbeat(NodeId id, std::string_view caller_name,
                                         NodeReport report) {
  MutexLock lock(&mu_);
  if (!loaded_) return NotLoaded();
  const NodeEntry* n = map_.FindNode(id);
  if (n == nullptr) {
    return Status::NotFound("node id " + std::to_string(id.value()) +
                            " is not registered: call RegisterNode first");
  }
  if (n->name != caller_name) {
    return Status::PermissionDenied("node:" + std::string(caller_name) +
                                    " sent a heartbeat for node id " + std::to_string(id.value()) +
                                    ", which is node:" + n->name);
  }
  Soft& s = soft_[id];
  const Nanos now = clock_->Now();
  s.last_seen = now;
  s.last_heartbeat = now;
  s.report = std::move(report);
  return map_.version;
}

Result<CollectionEntry> ClusterState::CreateCollection(std::string_view name) {
  RETURN_IF_ERROR(ValidateCollectionName(name));
  CollectionEntry entry;
  auto result =
      Mutate("create collection " + std::string(name), [&](ClusterMap& m, bool* changed) -> Status {
        if (m.collections.count(std::string(name)) != 0) {
          return Status::AlreadyExists("collection '" + std::string(name) + "' already exists");
        }
        if (m.collections.size() >= kMaxCollections) {
          return Status::TooLarge("the map holds " + std::to_string(kMaxCollections) +
                                  " collections already");
        }
        entry = CollectionEntry{std::string(name), WallMs(), {}};
        m.collections.emplace(entry.name, entry);
        *changed = true;
        return Status::Ok();
      });
  if (!result.ok()) return result.status();
  LOG_INFO(log_) << "created collection '" << name << "' (map version " << result->version << ")";
  return entry;
}

Status ClusterState::DropCollection(std::string_view name, CollectionProbe* probe) {
  RETURN_IF_ERROR(ValidateCollectionName(name));
  // Decide from the store, not the cache: who holds partitions must not be
  // missed (drops are rare; one read is cheap).
  ClusterMap m;
  {
    MutexLock wl(&write_mu_);
    {
      MutexLock lock(&mu_);
      if (!loaded_) return NotLoaded();
    }
    RETURN_IF_ERROR(ReloadLocked().status());
    MutexLock lock(&mu_);
    m = map_;
  }
  if (m.collections.count(std::string(name)) == 0) {
    return Status::NotFound("no collection '" + std::string(name) + "'");
  }
  // Every node that holds a replica of some partition.
  std::set<NodeId> holders;
  bool replicated = false;
  for (const PartitionEntry& p : m.partitions) {
    holders.insert(p.replicas.begin(), p.replicas.end());
    replicated |= p.replicas.size() > 1;
  }
  for (NodeId id : holders) {
    const NodeEntry* n = m.FindNode(id);
    CAIRN_CHECK(n != nullptr) << "validated map names unknown node " << id;
    Result<int64_t> count = probe->CountDocuments(*n, name);
    // A backup applies the last deletes once it learns their commit from the
    // primary (within one retransmit period, 200 ms): ask it again for a
    // few periods (a genuinely non-empty collection costs that much more).
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(600);
    while (replicated && count.ok() && *count > 0 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      count = probe->CountDocuments(*n, name);
    }
    if (!count.ok()) {
      return Status::Unavailable("cannot drop collection '" + std::string(name) +
                                 "': cannot ask node " + n->name + " (" + n->host + ":" +
                                 std::to_string(n->port) +
                                 ") whether it is empty: " + count.status().ToString());
    }
    if (*count > 0) {
      return Status::NotEmpty("collection '" + std::string(name) + "' is not empty (node " +
                              n->name + " holds documents of it)");
    }
  }
  auto result = Mutate("drop collection " + std::string(name),
                       [&](ClusterMap& next, bool* changed) -> Status {
                         if (next.collections.erase(std::string(name)) == 0) {
                           return Status::NotFound("no collection '" + std::string(name) + "'");
                         }
                         *changed = true;
                         return Status::Ok();
                       });
  if (!result.ok()) return result.status();
  LOG_INFO(log_) << "dropped collection '" << name << "' (map version " << result->version << ")";
  return Status::Ok();
}

Result<ClusterMap> ClusterState::Map() const {
  MutexLock lock(&mu_);
  if (!loaded_) return NotLoaded();
  return map_;
}

Status ClusterState::ReadMap(const std::function<void(const ClusterMap&)>& fn) const {
  MutexLock lock(&mu_);
  if (!loaded_) return NotLoaded();
  fn(map_);
  return Status::Ok();
}

Result<MapSnapshot> ClusterState::Snapshot() {
  const Nanos now = clock_->Now();
  MutexLock lock(&mu_);
  if (!loaded_) return NotLoaded();
  MapSnapshot snap{map_, {}};
  for (const NodeEntry& n : map_.nodes) {
    auto it = soft_.find(n.id);
    NodeLiveness l;
    if (it != soft_.end()) {
      l.state = StateAt(it->second, now);
      l.last_heartbeat_ms =
          it->second.last_heartbeat == Nanos(0) ? 0 : ToMs(it->second.last_heartbeat);
      l.report = it->second.report;
    }
    snap.liveness.emplace(n.id, std::move(l));
  }
  return snap;
}

std::vector<NodeTransition> ClusterState::Tick() {
  const Nanos now = clock_->Now();
  std::vector<NodeTransition> out;
  MutexLock lock(&mu_);
  if (!loaded_) return out;
  for (const NodeEntry& n : map_.nodes) {
    auto it = soft_.find(n.id);
    if (it == soft_.end()) continue;
    const NodeState s = StateAt(it->second, now);
    if (s != it->second.state) {
      out.push_back(NodeTransition{n.id, n.name, it->second.state, s});
      it->second.state = s;
    }
  }
  return out;
}

Status ClusterState::CheckPlaced() const {
  MutexLock lock(&mu_);
  if (!loaded_) return NotLoaded();
  if (map_.Placed()) return Status::Ok();
  return Status::Unavailable("cluster not yet placed: " + std::to_string(map_.nodes.size()) +
                             " of " + std::to_string(options_.initial_nodes) + " nodes registered");
}

// ---------------------------------------------------------------- indexes

namespace {

Result<std::string> CanonicalIndexPath(std::string_view path) {
  ASSIGN_OR_RETURN(query::Path p, query::ParseIndexPath(path));
  return p.ToString();
}

Status UnknownCollection(std::string_view name) {
  return Status::NotFound("no collection '" + std::string(name) + "'");
}

}  // namespace

Result<CollectionEntry> ClusterState::CreateIndex(std::string_view collection,
                                                  std::string_view path) {
  RETURN_IF_ERROR(ValidateCollectionName(collection));
  ASSIGN_OR_RETURN(const std::string canonical, CanonicalIndexPath(path));
  CollectionEntry entry;
  auto result = Mutate(
      "create index " + std::string(collection) + " " + canonical,
      [&](ClusterMap& m, bool* changed) -> Status {
        auto it = m.collections.find(std::string(collection));
        if (it == m.collections.end()) return UnknownCollection(collection);
        std::vector<std::string>& ix = it->second.indexes;
        if (std::find(ix.begin(), ix.end(), canonical) != ix.end()) {
          return Status::AlreadyExists("collection '" + std::string(collection) +
                                       "' already has an index on " + canonical);
        }
        if (ix.size() >= kMaxIndexesPerCollection) {
          return Status::TooLarge("collection '" + std::string(collection) + "' has " +
                                  std::to_string(kMaxIndexesPerCollection) + " indexes already");
        }
        ix.push_back(canonical);
        std::sort(ix.begin(), ix.end());
        entry = it->second;
        *changed = true;
        return Status::Ok();
      });
  if (!result.ok()) return result.status();
  LOG_INFO(log_) << "created index " << collection << " " << canonical << " (map version "
                 << result->version << ")";
  return entry;
}

Result<CollectionEntry> ClusterState::DropIndex(std::string_view collection,
                                                std::string_view path) {
  RETURN_IF_ERROR(ValidateCollectionName(collection));
  ASSIGN_OR_RETURN(const std::string canonical, CanonicalIndexPath(path));
  CollectionEntry entry;
  auto result = Mutate("drop index " + std::string(collection) + " " + canonical,
                       [&](ClusterMap& m, bool* changed) -> Status {
                         auto it = m.collections.find(std::string(collection));
                         if (it == m.collections.end()) return UnknownCollection(collection);
                         std::vector<std::string>& ix = it->second.indexes;
                         auto at = std::find(ix.begin(), ix.end(), canonical);
                         if (at == ix.end()) {
                           return Status::NotFound("collection '" + std::string(collection) +
                                                   "' has no index on " + canonical);
                         }
                         ix.erase(at);
                         entry = it->second;
                         *changed = true;
                         return Status::Ok();
                       });
  if (!result.ok()) return result.status();
  LOG_INFO(log_) << "dropped index " << collection << " " << canonical << " (map version "
                 << result->version << ")";
  return entry;
}

Result<std::vector<IndexStatus>> ClusterState::ListIndexes(std::string_view collection) {
  MutexLock lock(&mu_);
  if (!loaded_) return NotLoaded();
  if (!collection.empty() && map_.collections.count(std::string(collection)) == 0) {
    return UnknownCollection(collection);
  }
  // Nodes that hold replicas and are not DOWN: each must build every index.
  std::set<NodeId> holders;
  for (const PartitionEntry& p : map_.partitions)
    holders.insert(p.replicas.begin(), p.replicas.end());
  const Nanos now = clock_->Now();
  std::vector<IndexStatus> out;
  for (const auto& [name, c] : map_.collections) {
    if (!collection.empty() && name != collection) continue;
    for (const std::string& path : c.indexes) {
      IndexStatus st;
      st.collection = name;
      st.path = path;
      for (NodeId id : holders) {
        auto soft = soft_.find(id);
        if (soft != soft_.end() && StateAt(soft->second, now) == NodeState::kDown) continue;
        ++st.nodes_total;
        if (soft == soft_.end()) continue;
        for (const IndexReport& r : soft->second.report.indexes) {
          if (r.collection != name || r.path != path) continue;
          st.docs_indexed += r.docs_indexed;
          st.docs_total += r.docs_total;
          st.entries += r.entries;
          if (r.ready) ++st.nodes_ready;
          if (!r.error.empty() && st.error.empty()) {
            const NodeEntry* n = map_.FindNode(id);
            st.error = (n != nullptr ? n->name : std::to_string(id.value())) + ": " + r.error;
          }
        }
      }
      st.ready = st.nodes_total > 0 && st.nodes_ready == st.nodes_total;
      out.push_back(std::move(st));
    }
  }
  return out;
}

}  // namespace cairn::metaserver
