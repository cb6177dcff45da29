// Client construction, the map cache and the retry loops (client_impl.h).
#include <openssl/rand.h>
#include <thrift/Thrift.h>

#include <cstring>
#include <random>

#include "client/client_impl.h"
#include "client/rpc_convert.h"
#include "common/partitioning.h"
#include "thrift/rpc_errors.h"

namespace cairn::client {

namespace {

uint64_t RandomU64() {
  uint64_t v = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof(v)) != 1) {
    std::random_device rd;
    v = (uint64_t{rd()} << 32) ^ rd();
  }
  return v;
}

}  // namespace

std::string DocName(std::string_view collection, std::string_view id) {
  std::string s(collection);
  s += '/';
  s += id;
  return s;
}

Status ValidateCollectionName(std::string_view name) {
  if (name.empty() || name.size() > 128) {
    return Status::InvalidArgument("collection name must be 1-128 bytes, got " +
                                   std::to_string(name.size()));
  }
  if (name[0] == '.') {
    return Status::InvalidArgument("collection name '" + std::string(name) +
                                   "' must not start with '.'");
  }
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("collection name '" + std::string(name) +
                                     "' may hold only A-Z a-z 0-9 _ . -");
    }
  }
  return Status::Ok();
}

Status ValidateDocumentId(std::string_view id) {
  if (id.empty() || id.size() > 255) {
    return Status::InvalidArgument("document id must be 1-255 bytes, got " +
                                   std::to_string(id.size()));
  }
  if (id == "." || id == "..") return Status::InvalidArgument("document id must not be . or ..");
  if (id.find('/') != std::string_view::npos || id.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("document id '" + std::string(id) +
                                   "' must not contain '/' or NUL");
  }
  return Status::Ok();
}

Status Options::Validate() const {
  if (metaservers.empty()) {
    return Status::InvalidArgument("no metaserver given (metaservers = host:port,...)");
  }
  for (const HostPort& hp : metaservers) {
    if (hp.host.empty() || hp.port <= 0 || hp.port > 65535) {
      return Status::InvalidArgument("bad metaserver address '" + hp.ToString() + "'");
    }
  }
  if (connect_timeout_ms <= 0 || call_timeout_ms <= 0 || deadline_ms <= 0) {
    return Status::InvalidArgument("timeouts and the deadline must be positive");
  }
  if (retry.max_attempts < 1) return Status::InvalidArgument("retry.max_attempts must be >= 1");
  if (block_bytes < 4096 || block_bytes > (4u << 20)) {
    return Status::InvalidArgument("block_bytes must be 4 KiB..4 MiB, got " +
                                   std::to_string(block_bytes));
  }
  if (list_parallelism < 1) return Status::InvalidArgument("list_parallelism must be >= 1");
  return Status::Ok();
}

Client::Impl::Impl(const Options& o)
    : options(o),
      clock(o.clock != nullptr ? o.clock : &RealClock()),
      rng_(o.seed != 0 ? o.seed : RandomU64()) {
  client_hi = static_cast<int64_t>(RandomU64());
  client_lo = static_cast<int64_t>(RandomU64());
}

rpc::RequestId Client::Impl::NextRequestId() {
  rpc::RequestId id;
  id.client_hi = client_hi;
  id.client_lo = client_lo;
  id.seq = next_seq.fetch_add(1, std::memory_order_relaxed);
  return id;
}

Backoff Client::Impl::NewBackoff() {
  uint64_t seed;
  {
    MutexLock l(&mu_);
    seed = rng_.Next();
  }
  return Backoff(options.retry, clock, std::chrono::milliseconds(options.deadline_ms), seed);
}

Result<rpc::ClusterMap> Client::Impl::FetchMapOnce() {
  size_t first;
  {
    MutexLock l(&mu_);
    first = meta_index_;
  }
  const size_t n = options.metaservers.size();
  std::string errors;
  Status last;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (first + k) % n;
    const HostPort& ep = options.metaservers[i];
    rpc::ClusterMap m;
    Status s =
        pool->Call<rpc::MetaServiceClient>(ep, [&](rpc::MetaServiceClient& c) { c.GetMap(m, 0); });
    if (s.ok()) {
      MutexLock l(&mu_);
      meta_index_ = i;
      return m;
    }
    if (s.code() == StatusCode::kUnavailable) {
      // A follower names the leader: try it next if we know it.
      for (size_t j = 0; j < n; ++j) {
        if (j != i && s.message().find(options.metaservers[j].ToString()) != std::string::npos) {
          MutexLock l(&mu_);
          meta_index_ = j;
        }
      }
    }
    if (!errors.empty()) errors += "; ";
    errors += ep.ToString() + ": " + s.message();
    last = std::move(s);
  }
  // The code of the last error (Unavailable / Timeout / PermissionDenied...)
  // with every metaserver's reason.
  return Status(last.code(), "no metaserver answered (" + errors + ")");
}

Result<std::shared_ptr<const ClusterMap>> Client::Impl::Map(Backoff& backoff) {
  {
    MutexLock l(&mu_);
    if (map_ != nullptr) return map_;
  }
  RETURN_IF_ERROR(RefreshMap(0, backoff));
  MutexLock l(&mu_);
  return map_;
}

Status Client::Impl::RefreshMap(int64_t seen_version, Backoff& backoff) {
  MutexLock refresh(&refresh_mu_);
  {
    MutexLock l(&mu_);
    if (map_ != nullptr && map_->version > seen_version) return Status::Ok();
  }
  return FetchMap(backoff).status();
}

Result<std::shared_ptr<const ClusterMap>> Client::Impl::FetchMap(Backoff& backoff) {
  for (;;) {
    Result<rpc::ClusterMap> m = FetchMapOnce();
    Status s;
    if (m.ok()) {
      auto map = std::make_shared<const ClusterMap>(FromRpc(*m));
      s = map->Validate();
      if (s.ok()) {
        LOG_DEBUG(log) << "cluster map version " << map->version;
        MutexLock l(&mu_);
        // The metaserver is the authority, but an answer that crossed a
        // newer one must not move the cache backwards.
        if (map_ == nullptr || map->version >= map_->version) map_ = map;
        return map;
      }
      // A map not yet complete (e.g. a metaserver still starting) is worth
      // another look; the cluster is not usable until it is.
      s = Status::Unavailable(s.message());
    } else {
      s = m.status();
    }
    Nanos delay;
    if (Classify(s) == RetryAction::kFail || !backoff.NextDelay(&delay)) return s;
    Sleep(delay);
  }
}

Status Client::Impl::CallMeta(Backoff& backoff,
                              const std::function<void(rpc::MetaServiceClient&)>& fn) {
  for (;;) {
    size_t i;
    {
      MutexLock l(&mu_);
      i = meta_index_;
    }
    const HostPort ep = options.metaservers[i % options.metaservers.size()];
    Status s = pool->Call<rpc::MetaServiceClient>(ep, fn);
    if (s.ok()) return s;
    const RetryAction action = Classify(s);
    if (action == RetryAction::kFail) return s;
    {
      // Move on to the next metaserver, or the leader a follower named.
      MutexLock l(&mu_);
      if (meta_index_ == i) meta_index_ = (i + 1) % options.metaservers.size();
      for (size_t j = 0; j < options.metaservers.size(); ++j) {
        if (s.message().find(options.metaservers[j].ToString()) != std::string::npos && j != i) {
          meta_index_ = j;
        }
      }
    }
    Nanos delay;
    if (!backoff.NextDelay(&delay)) {
      return s.WithContext("metaserver, after " + std::to_string(backoff.attempts()) + " attempts");
    }
    Sleep(delay);
  }
}

Status Client::Impl::CallChunkOnce(
    const ClusterMap::Route& route,
    const std::function<void(rpc::ChunkServiceClient&, int64_t epoch)>& fn,
    int64_t* error_map_version) {
  *error_map_version = 0;
  std::optional<rpc::CairnError> error;
  const auto epoch = static_cast<int64_t>(route.epoch.value());
  Status s = pool->Call<rpc::ChunkServiceClient>(route.address, [&](rpc::ChunkServiceClient& c) {
    // Caught here rather than in the pool to keep the map version it names.
    try {
      fn(c, epoch);
    } catch (const rpc::CairnError& e) {
      error = e;
    }
  });
  if (!s.ok()) {
    if (s.code() == StatusCode::kUnavailable) pool->Forget(route.address);
    return s.WithContext("node " + route.address.ToString());
  }
  if (error.has_value()) {
    if (error->__isset.map_version) *error_map_version = error->map_version;
    return net::FromCairnError(*error);
  }
  return Status::Ok();
}

Client::Impl::ReadRoute Client::Impl::NewReadRoute(std::optional<ReadFrom> from) {
  ReadRoute r;
  r.from = from.value_or(options.read_from);
  if (r.from == ReadFrom::kAnyReplica) {
    MutexLock lock(&mu_);
    r.pick = rng_.Next();
  }
  return r;
}

Status Client::Impl::CallChunk(
    PartitionId partition, Backoff& backoff,
    const std::function<void(rpc::ChunkServiceClient&, int64_t epoch)>& fn) {
  return CallChunk(partition, backoff, fn, ReadRoute{});
}

Status Client::Impl::CallChunk(
    PartitionId partition, Backoff& backoff,
    const std::function<void(rpc::ChunkServiceClient&, int64_t epoch)>& fn, const ReadRoute& read) {
  for (uint64_t attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(std::shared_ptr<const ClusterMap> map, Map(backoff));
    Result<ClusterMap::Route> route = read.from == ReadFrom::kAnyReplica
                                          ? map->Replica(partition, read.pick + attempt)
                                          : map->Primary(partition);
    Status s;
    int64_t error_map_version = 0;
    if (route.ok()) {
      s = CallChunkOnce(*route, fn, &error_map_version);
    } else {
      s = route.status();
    }
    if (s.ok()) return s;
    const RetryAction action = Classify(s);
    if (action == RetryAction::kFail) {
      // The answer stands, but the map it came with is newer than ours: fetch
      // it for the next call (best effort).
      if (error_map_version > map->version) RefreshMap(map->version, backoff).IgnoreError();
      return s;
    }
    LOG_DEBUG(log) << "partition " << partition << ": " << s.ToString() << " (attempt "
                   << backoff.attempts() << ")";
    Nanos delay;
    if (!backoff.NextDelay(&delay)) {
      return s.WithContext("partition " + std::to_string(partition.value()) + ", after " +
                           std::to_string(backoff.attempts()) + " attempts");
    }
    Sleep(delay);
    if (action == RetryAction::kRefreshAndRetry || error_map_version > map->version) {
      // A refresh that fails leaves the old map; the next attempt tells.
      Status r = RefreshMap(map->version, backoff);
      if (!r.ok()) LOG_DEBUG(log) << "map refresh failed: " << r.ToString();
    }
  }
}

Result<PartitionId> Client::Impl::PartitionOf(std::string_view collection, std::string_view id,
                                              Backoff& backoff) {
  ASSIGN_OR_RETURN(std::shared_ptr<const ClusterMap> map, Map(backoff));
  return ::cairn::PartitionOf(collection, id, map->partition_count);
}

// ---------------------------------------------------------------- Client

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::Create(const Options& options) {
  RETURN_IF_ERROR(options.Validate());
  auto impl = std::make_unique<Impl>(options);
  net::ClientOptions co;
  co.tls = options.tls;
  co.connect_timeout_ms = options.connect_timeout_ms;
  co.call_timeout_ms = options.call_timeout_ms;
  ASSIGN_OR_RETURN(impl->pool, net::ConnectionPool::Create(co));
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Result<PartitionId> Client::PartitionOfDocument(std::string_view collection, std::string_view id) {
  Backoff b = impl_->NewBackoff();
  return impl_->PartitionOf(collection, id, b);
}

Result<ClusterMap> Client::GetClusterMap() {
  Backoff b = impl_->NewBackoff();
  ASSIGN_OR_RETURN(std::shared_ptr<const ClusterMap> map, impl_->FetchMap(b));
  return *map;
}

Result<std::vector<ReplicaStatus>> Client::NodeReplicas(NodeId node) {
  Backoff b = impl_->NewBackoff();
  ASSIGN_OR_RETURN(std::shared_ptr<const ClusterMap> map, impl_->FetchMap(b));
  const NodeStatus* n = map->FindNode(node);
  if (n == nullptr)
    return Status::NotFound("no node " + std::to_string(node.value()) + " in the map");
  rpc::NodeStatus st;
  RETURN_IF_ERROR(impl_->pool
                      ->Call<rpc::ChunkServiceClient>(
                          n->address, [&](rpc::ChunkServiceClient& c) { c.GetStatus(st); })
                      .WithContext("node " + n->name + " (" + n->address.ToString() + ")"));
  std::vector<ReplicaStatus> out;
  for (const rpc::PartitionStatus& p : st.partitions) {
    ReplicaStatus r;
    r.partition = PartitionId(static_cast<uint32_t>(p.partition));
    r.role = p.role;
    r.last_lsn = p.last_lsn;
    r.documents = p.documents;
    r.snapshot_bytes_done = p.__isset.snapshot_bytes_done ? p.snapshot_bytes_done : 0;
    r.snapshot_bytes_total = p.__isset.snapshot_bytes_total ? p.snapshot_bytes_total : 0;
    out.push_back(std::move(r));
  }
  return out;
}

Status Client::CreateCollection(std::string_view name) {
  RETURN_IF_ERROR(ValidateCollectionName(name));
  Backoff b = impl_->NewBackoff();
  const std::string n(name);
  Status s = impl_->CallMeta(b, [&](rpc::MetaServiceClient& c) {
    rpc::CollectionInfo info;
    c.CreateCollection(info, n);
  });
  // A retry after a lost answer finds the collection our first attempt made.
  if (s.code() == StatusCode::kAlreadyExists && b.attempts() > 1) s = Status::Ok();
  if (s.ok()) {
    // The new collection is in the next map; make sure this client sees it.
    Result<std::shared_ptr<const ClusterMap>> m = impl_->Map(b);
    if (m.ok()) impl_->RefreshMap((*m)->version, b).IgnoreError();
  }
  return s.ok() || s.message().find("'" + n + "'") != std::string::npos
             ? s
             : s.WithContext("collection " + n);
}

Status Client::DropCollection(std::string_view name) {
  RETURN_IF_ERROR(ValidateCollectionName(name));
  Backoff b = impl_->NewBackoff();
  const std::string n(name);
  Status s = impl_->CallMeta(b, [&](rpc::MetaServiceClient& c) { c.DropCollection(n); });
  // A retry after a lost answer finds the collection already dropped.
  if (s.code() == StatusCode::kNotFound && b.attempts() > 1) s = Status::Ok();
  return s.ok() || s.message().find("'" + n + "'") != std::string::npos
             ? s
             : s.WithContext("collection " + n);
}

Result<std::vector<CollectionStatus>> Client::ListCollections() {
  ASSIGN_OR_RETURN(ClusterMap map, GetClusterMap());
  std::vector<CollectionStatus> out = std::move(map.collections);
  std::sort(out.begin(), out.end(),
            [](const CollectionStatus& a, const CollectionStatus& b) { return a.name < b.name; });
  return out;
}

namespace {

// CreateIndex and DropIndex are idempotent in effect: when a retry (after a
// lost answer) meets `done` (AlreadyExists / NotFound), the first attempt did
// the change, and that is success.
using IndexCall = void (rpc::MetaServiceClient::*)(rpc::CollectionInfo&, const std::string&,
                                                   const std::string&);
Status ChangeIndex(Client::Impl& impl, std::string_view collection, std::string_view path,
                   IndexCall call, StatusCode done) {
  RETURN_IF_ERROR(ValidateCollectionName(collection));
  Backoff b = impl.NewBackoff();
  const std::string c(collection);
  const std::string p(path);
  Status s = impl.CallMeta(b, [&](rpc::MetaServiceClient& m) {
    rpc::CollectionInfo info;
    (m.*call)(info, c, p);
  });
  if (s.code() == done && b.attempts() > 1) s = Status::Ok();
  return s;
}

}  // namespace

Status Client::CreateIndex(std::string_view collection, std::string_view path) {
  return ChangeIndex(*impl_, collection, path, &rpc::MetaServiceClient::CreateIndex,
                     StatusCode::kAlreadyExists);
}

Status Client::DropIndex(std::string_view collection, std::string_view path) {
  return ChangeIndex(*impl_, collection, path, &rpc::MetaServiceClient::DropIndex,
                     StatusCode::kNotFound);
}

Result<std::vector<IndexStatus>> Client::ListIndexes(std::string_view collection) {
  if (!collection.empty()) RETURN_IF_ERROR(ValidateCollectionName(collection));
  Backoff b = impl_->NewBackoff();
  const std::string c(collection);
  std::vector<rpc::IndexStatus> list;
  RETURN_IF_ERROR(impl_->CallMeta(b, [&](rpc::MetaServiceClient& m) { m.ListIndexes(list, c); }));
  std::vector<IndexStatus> out;
  for (const rpc::IndexStatus& i : list) {
    IndexStatus st;
    st.collection = i.collection;
    st.path = i.path;
    st.docs_indexed = i.docs_indexed;
    st.docs_total = i.docs_total;
    st.entries = i.__isset.entries ? i.entries : 0;
    st.nodes_ready = i.nodes_ready;
    st.nodes_total = i.nodes_total;
    st.ready = i.ready;
    if (i.__isset.error) st.error = i.error;
    out.push_back(std::move(st));
  }
  return out;
}

}  // namespace cairn::client
