#include "chunkserver/chunk_server.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <random>
#include <set>

#include "ChunkService.h"
#include "chunkserver/chunk_service.h"
#include "chunkserver/replica_transport.h"
#include "common/certs.h"
#include "thrift/rpc_client.h"
#include "thrift/rpc_server.h"

namespace cairn::chunkserver {

namespace {

// host:port where port 0 (an ephemeral port, for tests) is allowed.
Result<HostPort> ParseListen(const std::string& text) {
  if (text.size() > 2 && text.ends_with(":0")) {
    HostPort hp{text.substr(0, text.size() - 2), 0};
    if (hp.host.empty()) return Status::InvalidArgument("'" + text + "' is not host:port");
    return hp;
  }
  return ParseHostPort(text);
}

// One peer_addresses entry, "name=host:port".
Result<std::pair<std::string, HostPort>> ParsePeerAddress(const std::string& entry) {
  const size_t eq = entry.find('=');
  if (eq == std::string::npos) {
    return Status::InvalidArgument("'" + entry + "' is not name=host:port");
  }
  std::string name = entry.substr(0, eq);
  RETURN_IF_ERROR(ValidateCertName(name, "peer name"));
  ASSIGN_OR_RETURN(HostPort address, ParseHostPort(entry.substr(eq + 1)));
  return std::make_pair(std::move(name), std::move(address));
}

bool DirMissingOrEmpty(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return true;
  return std::filesystem::is_directory(dir, ec) && std::filesystem::is_empty(dir, ec);
}

// Sends a primary's in-sync requests to the metaserver from a thread of its
// own (ReplicaHost asks under a partition's lock), then fetches the map so
// that the answer (a new epoch) reaches the replicas at once.
class InSyncLink : public ReplicaMetaLink {
 public:
  InSyncLink(MetaClient* meta, std::function<void()> refresh)
      : meta_(meta), refresh_(std::move(refresh)), log_("replication") {
    thread_ = std::thread([this] { Loop(); });
  }
  ~InSyncLink() override {
    {
      MutexLock l(&mu_);
      stop_ = true;
      cv_.NotifyAll();
    }
    thread_.join();
  }
  InSyncLink(const InSyncLink&) = delete;
  InSyncLink& operator=(const InSyncLink&) = delete;

  void RequestInSync(const InSyncRequest& request) override {
    MutexLock l(&mu_);
    queue_.push_back(request);
    cv_.NotifyAll();
  }

 private:
  void Loop() {
    for (;;) {
      InSyncRequest r;
      {
        MutexLock l(&mu_);
        cv_.Wait(&mu_, [&]() REQUIRES(mu_) { return stop_ || !queue_.empty(); });
        if (stop_) return;
        r = queue_.front();
        queue_.pop_front();
      }
      Result<uint64_t> v = meta_->ChangeInSync(r);
      if (!v.ok()) {
        LOG_EVERY_N_SEC(log_, kWarn, 5)
            << "in-sync " << (r.kind == InSyncRequest::Kind::kDrop ? "drop" : "join") << " of node "
            << r.node.value() << " on partition " << r.partition.value()
            << " refused: " << v.status().ToString();
      }
      refresh_();
    }
  }

  MetaClient* const meta_;
  const std::function<void()> refresh_;
  Logger log_;
  Mutex mu_;
  CondVar cv_;
  std::deque<InSyncRequest> queue_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace

// ---------------------------------------------------------------- options

void ChunkServerOptions::Register(OptionSet* set) {
  set->String("name", &name, "this node's name; must equal the certificate's (node:<name>)", true);
  set->String("listen", &listen, "address to serve on, host:port");
  set->String("advertise", &advertise,
              "host:port clients should use to reach this node (default: listen, with the "
              "bound port)");
  set->List("disks", &disks,
            "disk directories of the raidlib volume, in slot order (comma list); the volume is "
            "created at the first start when all are empty. 3 or more for parity",
            true);
  set->List("metaservers", &metaservers, "every metaserver, host:port comma list", true);
  set->String("tls_ca", &tls_ca, "cluster CA certificate (PEM)", true);
  set->String("tls_cert", &tls_cert, "this node's certificate (PEM), CN node:<name>", true);
  set->String("tls_key", &tls_key, "this node's private key (PEM)", true);
  set->Bytes("block_bytes", &block_bytes,
             "bytes per body block before compression; Get returns at most this much per call",
             4096, 4ull << 20);
  set->Bytes("cache_bytes", &cache_bytes, "decompressed block cache, bytes (0: none)", 0,
             1ull << 40);
  set->Bytes("header_cache_bytes", &header_cache_bytes,
             "volume unit headers (chunk checksums) kept in memory for reads, bytes (0: none)", 0,
             1ull << 40);
  set->Bytes("max_document_bytes", &max_document_bytes, "largest document body", 1, 1ull << 42);
  set->Int("zstd_level", &zstd_level, "zstd level for stored blocks", 1, 19);
  set->Int("heartbeat_interval_ms", &heartbeat_interval_ms,
           "heartbeat to the metaserver every this many ms", 10, 60000);
  set->Int("checkpoint_interval_s", &checkpoint_interval_s,
           "checkpoint the index every this many seconds (0: only at stop)", 0, 86400);
  set->Int("compact_interval_s", &compact_interval_s,
           "compact the log every this many seconds (0: never)", 0, 86400 * 7);
  set->Int("upload_idle_timeout_s", &upload_idle_timeout_s,
           "an upload session idle this long is dropped and its blocks forgotten", 1, 86400);
  set->Int("max_uploads", &max_uploads, "upload sessions open at once", 1, 1 << 20);
  set->Int("query_time_limit_ms", &query_time_limit_ms,
           "a query's time on one partition; past it the query fails (LIMIT_EXCEEDED). "
           "Requests may ask for less, never more",
           1, 24 * 3600 * 1000);
  set->Bytes("query_max_result_bytes", &query_max_result_bytes,
             "projected JSON a query may return from one partition (LIMIT_EXCEEDED past it); "
             "requests may ask for less, never more",
             1024, 1ull << 30);
  set->Bytes("query_max_body_bytes", &query_max_body_bytes,
             "documents larger than this are skipped by queries (never match; counted in the "
             "query's stats)",
             1, 1ull << 32);
  set->Int("index_build_docs_per_s", &index_build_docs_per_s,
           "documents per second an index build reads, all builds together (0: no limit)", 0,
           int64_t{1} << 32);
  set->Bool("replication", &replication,
            "keep every partition's replicas in step through its primary "
            "(docs/design-replication.md); must equal the metaserver's failover (a node that "
            "differs is refused at registration). A volume written with replication must keep "
            "it");
  set->Int("lease_ms", &lease_ms,
           "replication: the primary lease the metaserver grants; equal to its lease_ms", 100,
           600000);
  set->Int("replication_timeout_ms", &replication_timeout_ms,
           "replication: a backup that has not acknowledged for this long is reported to the "
           "metaserver, which drops it from the in-sync set",
           10, 600000);
  set->Int("backup_read_max_lag_ms", &backup_read_max_lag_ms,
           "replication: a read that allows a backup is served by an in-sync backup only while "
           "it heard from its primary and the metaserver within this (how stale it can be)",
           10, 600000);
  set->Int("replication_log_entries", &replication_log_entries,
           "replication: entries a primary keeps past its applied point for replicas that "
           "lag; a replica further behind gets a snapshot",
           4, 1 << 20);
  set->Int("snapshot_rate_mb_s", &snapshot_rate_mb_s,
           "replication: MiB per second this node sends in snapshots to replicas behind the "
           "kept log (re-replication), all streams together (0: no limit)",
           0, 1 << 20);
  set->List("peer_addresses", &peer_addresses,
            "test and operations hook: name=host:port comma list; connections to peer chunk "
            "server `name` (replication, forwarded calls) go to host:port (a proxy or tunnel) "
            "instead of the address the map advertises; its certificate is still checked");
  set->String("log_level", &log_level, "debug | info | warn | error");
}

Status ChunkServerOptions::Validate() const {
  RETURN_IF_ERROR(ValidateCertName(name, "name"));
  RETURN_IF_ERROR(ParseListen(listen).status().WithContext("listen"));
  if (!advertise.empty())
    RETURN_IF_ERROR(ParseHostPort(advertise).status().WithContext("advertise"));
  if (disks.empty()) return Status::InvalidArgument("disks: at least one directory");
  for (const std::string& m : metaservers) {
    RETURN_IF_ERROR(ParseHostPort(m).status().WithContext("metaservers"));
  }
  for (const std::string& e : peer_addresses) {
    RETURN_IF_ERROR(ParsePeerAddress(e).status().WithContext("peer_addresses"));
  }
  LogLevel level;
  if (!ParseLogLevel(log_level, &level)) {
    return Status::InvalidArgument("log_level must be debug, info, warn or error");
  }
  if (max_document_bytes < block_bytes) {
    return Status::InvalidArgument("max_document_bytes must be at least block_bytes");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- start

ChunkServer::ChunkServer(ChunkServerOptions options, Seams seams)
    : options_(std::move(options)),
      log_("chunkserver", options_.name),
      meta_(seams.meta),
      index_source_(seams.index) {}

Result<std::unique_ptr<ChunkServer>> ChunkServer::Start(const ChunkServerOptions& options,
                                                        Seams seams) {
  std::unique_ptr<ChunkServer> s(new ChunkServer(options, seams));
  Status st = s->Init();
  if (!st.ok()) {
    s->Stop().IgnoreError();  // the start's error is the one to report
    return st;
  }
  return s;
}

Status ChunkServer::OpenStorage() {
  if (options_.disks.size() < 3) {
    LOG_WARN(log_) << "WARNING: " << options_.disks.size() << " disk(s): the volume has no parity; "
                   << (options_.disks.size() == 2 ? "2 disks mirror" : "1 disk has NO redundancy")
                   << ". Use 3 or more disks.";
  }
  raidlib::VolumeOptions vo;
  vo.disk_dirs = options_.disks;
  vo.header_cache_bytes = options_.header_cache_bytes;
  const bool fresh = std::all_of(options_.disks.begin(), options_.disks.end(), DirMissingOrEmpty);
  if (fresh) {
    LOG_INFO(log_) << "creating a new volume on " << options_.disks.size() << " disk(s)";
    for (const std::string& d : options_.disks) {
      std::error_code ec;
      std::filesystem::create_directories(d, ec);
      if (ec) return Status::IOError("creating disk directory " + d + ": " + ec.message());
    }
    RETURN_IF_ERROR(raidlib::Volume::Create(vo).WithContext("creating the volume"));
  }
  ASSIGN_OR_RETURN(volume_, raidlib::Volume::Open(vo));
  DocStoreOptions so;
  so.block_bytes = static_cast<uint32_t>(options_.block_bytes);
  so.zstd_level = static_cast<int>(options_.zstd_level);
  so.cache_bytes = options_.cache_bytes;
  so.max_document_bytes = options_.max_document_bytes;
  so.index_max_document_bytes = options_.query_max_body_bytes;  // what queries can match
  so.replicated = options_.replication;
  RETURN_IF_ERROR(so.Validate());
  ASSIGN_OR_RETURN(store_, DocStore::Open(volume_.get(), so));
  LOG_INFO(log_) << "store open: " << store_->stats().documents << " documents in "
                 << store_->partitions().size() << " partitions";
  // Indexes are in memory: rebuilt in the background from the store once the
  // map names them (not ready, so not used by queries, until then).
  SecondaryIndexOptions io;
  io.max_document_bytes = options_.query_max_body_bytes;
  io.build_docs_per_second = static_cast<uint64_t>(options_.index_build_docs_per_s);
  io.node_name = options_.name;
  index_ = std::make_unique<SecondaryIndex>(store_.get(), io);
  return Status::Ok();
}

Status ChunkServer::Init() {
  RETURN_IF_ERROR(options_.Validate());
  TlsOptions tls{options_.tls_ca, options_.tls_cert, options_.tls_key};
  RETURN_IF_ERROR(tls.Validate());
  ASSIGN_OR_RETURN(std::string cert_identity, IdentityFromCertificateFile(options_.tls_cert));
  if (cert_identity != "node:" + options_.name) {
    return Status::InvalidArgument(
        "the certificate " + options_.tls_cert + " is for '" + cert_identity + "' but name is '" +
        options_.name +
        "': a chunk server's name must be its certificate's (node:" + options_.name + ")");
  }
  ASSIGN_OR_RETURN(HostPort listen, ParseListen(options_.listen));
  for (const std::string& e : options_.peer_addresses) {
    ASSIGN_OR_RETURN(auto entry, ParsePeerAddress(e));
    LOG_WARN(log_) << "peer_addresses: connections to " << entry.first << " go to "
                   << entry.second.ToString() << " instead of its advertised address";
    peer_addresses_[entry.first] = entry.second;
  }
  RETURN_IF_ERROR(OpenStorage());

  PartitionLimits limits;
  limits.block_bytes = static_cast<uint32_t>(options_.block_bytes);
  limits.max_document_bytes = options_.max_document_bytes;
  limits.max_uploads = static_cast<uint32_t>(options_.max_uploads);
  limits.upload_idle_timeout = std::chrono::seconds(options_.upload_idle_timeout_s);
  RETURN_IF_ERROR(limits.Validate());
  logic_ = std::make_unique<PartitionLogic>(limits, std::random_device{}());
  service_ = std::make_unique<DocService>(store_.get(), logic_.get(), &RealClock());
  service_->SetMapRefresher([this] { RefreshMap(); });
  if (options_.replication) service_->EnableReplication();
  incarnation_ = static_cast<uint64_t>(RealClock().WallNanos());
  // The secondary indexes drive queries, unless a test gives its own source.
  IndexSource* source = index_source_ != nullptr ? index_source_ : index_.get();
  executor_ = std::make_unique<QueryExecutor>(store_.get(), source, &RealClock());

  net::ClientOptions co;
  co.tls = tls;
  ASSIGN_OR_RETURN(pool_, net::ConnectionPool::Create(co));
  // Replication calls are small (at most one block) and answered at once: a
  // peer that does not answer within seconds is paused or cut off, and the
  // per-peer sender thread must not wait the 30 s a forwarded query may take.
  net::ClientOptions ro = co;
  ro.connect_timeout_ms = 1000;
  ro.call_timeout_ms = 5000;
  ASSIGN_OR_RETURN(replica_pool_, net::ConnectionPool::Create(ro));
  if (meta_ == nullptr) {
    std::vector<HostPort> ms;
    for (const std::string& m : options_.metaservers) ms.push_back(*ParseHostPort(m));
    own_meta_ = std::make_unique<ThriftMetaClient>(std::move(ms), pool_.get());
    meta_ = own_meta_.get();
  }

  ChunkServiceDeps deps;
  deps.service = service_.get();
  deps.volume = volume_.get();
  deps.pool = pool_.get();
  deps.executor = executor_.get();
  deps.query_limits.time_limit = std::chrono::milliseconds(options_.query_time_limit_ms);
  deps.query_limits.max_result_bytes = options_.query_max_result_bytes;
  deps.query_limits.max_body_bytes = options_.query_max_body_bytes;
  deps.node_name = options_.name;
  deps.metaserver_reachable = [this] { return reachable_.load(); };
  deps.replication = [this] { return replica_host_.load(); };
  deps.peer_address = [this](const NodeAddress& n) { return PeerAddress(n); };
  auto handler = std::make_shared<ChunkServiceHandler>(std::move(deps));
  net::ServerOptions so;
  so.host = listen.host;
  so.port = listen.port;
  so.tls = tls;
  ASSIGN_OR_RETURN(server_,
                   net::RpcServer::Start(so, std::make_shared<rpc::ChunkServiceProcessor>(handler),
                                         "chunkserver"));
  if (!options_.advertise.empty()) {
    advertise_ = *ParseHostPort(options_.advertise);
  } else {
    advertise_ = HostPort{listen.host, server_->port()};
    if (advertise_.host == "0.0.0.0") {
      LOG_WARN(log_) << "listen is 0.0.0.0 and advertise is not set: advertising 127.0.0.1";
      advertise_.host = "127.0.0.1";
    }
  }
  LOG_INFO(log_) << "serving on " << listen.host << ":" << server_->port() << " (advertised as "
                 << advertise_.ToString() << ")";

  if (TryRegister()) RefreshMap();
  heartbeat_ = std::thread([this] { HeartbeatLoop(); });
  maintenance_ = std::thread([this] { MaintenanceLoop(); });
  return Status::Ok();
}

int ChunkServer::port() const { return server_ ? server_->port() : 0; }

// ---------------------------------------------------------------- the metaserver

bool ChunkServer::TryRegister() {
  Result<NodeId> id = meta_->Register(options_.name, advertise_, options_.replication);
  if (!id.ok()) {
    reachable_ = false;
    if (id.status().code() == StatusCode::kFailedPrecondition) {
      // A configuration mistake (replication on one side only): loud, and
      // retried, so that fixing the metaserver is enough.
      LOG_EVERY_N_SEC(log_, kError, 10)
          << "the metaserver refuses this node: " << id.status().ToString();
    } else {
      LOG_WARN(log_) << "cannot register with a metaserver (will retry): "
                     << id.status().ToString();
    }
    return false;
  }
  if (logic_->self() != *id) LOG_INFO(log_) << "registered as node " << id->value();
  logic_->SetSelf(*id);
  registered_ = true;
  reachable_ = true;
  if (options_.replication && replicas_ == nullptr) {
    Status s = StartReplication();
    if (!s.ok()) LOG_ERROR(log_) << "cannot start replication: " << s.ToString();
  }
  return true;
}

Status ChunkServer::StartReplication() {
  PartitionLogic* logic = logic_.get();
  replica_transport_ = std::make_unique<ThriftReplicaTransport>(
      replica_pool_.get(),
      [this, logic](NodeId n) -> std::optional<HostPort> {
        for (const NodeAddress& a : logic->map().nodes) {
          if (a.id == n) return PeerAddress(a);
        }
        return std::nullopt;
      },
      &RealClock());
  replica_meta_ = std::make_unique<InSyncLink>(meta_, [this] { RefreshMap(); });
  ReplicaHostOptions ho;
  ho.replica.lease = std::chrono::milliseconds(options_.lease_ms);
  ho.replica.replication_timeout = std::chrono::milliseconds(options_.replication_timeout_ms);
  ho.backup_read_max_lag = std::chrono::milliseconds(options_.backup_read_max_lag_ms);
  ho.replica.log_retention = static_cast<uint32_t>(options_.replication_log_entries);
  ho.snapshot_rate_bytes_per_s = static_cast<uint64_t>(options_.snapshot_rate_mb_s) << 20;
  replicas_ =
      std::make_unique<ReplicaHost>(logic_->self(), store_.get(), ho, replica_transport_.get(),
                                    replica_meta_.get(), &RealClock());
  RETURN_IF_ERROR(replicas_->Start());
  replica_transport_->SetHost(replicas_.get());
  replica_host_ = replicas_.get();
  service_->SetReplicaHost(replicas_.get());
  LOG_INFO(log_) << "replication running as node " << logic_->self().value();
  PushConfigs();
  return Status::Ok();
}

HostPort ChunkServer::PeerAddress(const NodeAddress& n) const {
  auto it = peer_addresses_.find(n.name);
  return it != peer_addresses_.end() ? it->second : HostPort{n.host, n.port};
}

void ChunkServer::PushConfigs() {
  ReplicaHost* host = replica_host_.load();
  if (host == nullptr) return;
  const ClusterView map = logic_->map();
  const NodeId self = logic_->self();
  std::set<PartitionId> held;
  for (const ReplicaReport& r : host->Reports()) held.insert(r.partition);
  for (uint32_t i = 0; i < map.partitions.size(); ++i) {
    const PartitionPlacement& pl = map.partitions[i];
    const PartitionId p(i);
    const bool mine = std::find(pl.replicas.begin(), pl.replicas.end(), self) != pl.replicas.end();
    if (pl.replicas.empty() || (!mine && held.count(p) == 0)) continue;
    host->OnConfig(ReplicaConfig{p, pl.epoch, pl.replicas, pl.in_sync});
  }
}

void ChunkServer::RefreshMap() {
  const uint64_t arrived = refreshes_done_.load();
  MutexLock lock(&refresh_mu_);
  // The one in flight when we arrived may predate what we need to see; the
  // one after it does not.
  if (refreshes_done_.load() >= arrived + 2) return;
  struct Done {
    std::atomic<uint64_t>* n;
    ~Done() { n->fetch_add(1); }
  } done{&refreshes_done_};
  Result<ClusterView> map = meta_->GetMap(logic_->map_version());
  if (!map.ok()) {
    reachable_ = false;
    LOG_WARN(log_) << "cannot fetch the map (serving with version " << logic_->map_version()
                   << "): " << map.status().ToString();
    return;
  }
  reachable_ = true;
  const uint64_t version = map->version;
  if (logic_->UpdateMap(std::move(*map))) {
    LOG_INFO(log_) << "map version " << version;
    if (index_) index_->SetDefinitions(logic_->map().indexes);
    PushConfigs();
  }
}

void ChunkServer::HeartbeatOnce() {
  if (!registered_) {
    if (TryRegister()) RefreshMap();
    return;
  }
  HeartbeatInfo hb;
  hb.node = logic_->self();
  hb.map_version = logic_->map_version();
  for (const raidlib::DiskStatus& d : volume_->disks()) {
    DiskReport r;
    r.index = d.index.value();
    r.dir = d.dir;
    r.state = raidlib::DiskStateName(d.state);
    r.io_errors = d.io_errors;
    r.checksum_errors = d.checksum_errors;
    struct statvfs fs {};
    if (::statvfs(d.dir.c_str(), &fs) == 0) {
      hb.capacity_bytes += uint64_t{fs.f_blocks} * fs.f_frsize;
      hb.used_bytes += uint64_t{fs.f_blocks - fs.f_bavail} * fs.f_frsize;
    }
    hb.disks.push_back(std::move(r));
  }
  if (index_) {
    for (const IndexProgress& p : index_->Progress()) {
      hb.indexes.push_back(IndexReportInfo{p.collection, p.path, p.docs_indexed, p.docs_total,
                                           p.entries, p.ready, p.error});
    }
  }
  ReplicaHost* host = replica_host_.load();
  if (host != nullptr) {
    hb.replicas = host->Reports();
    hb.incarnation = incarnation_;
  }
  hb.sent_at = RealClock().Now();  // a lease runs from here, on this node's clock
  Result<HeartbeatAnswer> answer = meta_->Heartbeat(hb);
  if (!answer.ok()) {
    reachable_ = false;
    LOG_EVERY_N_SEC(log_, kWarn, 10) << "heartbeat failed: " << answer.status().ToString();
    if (answer.status().code() == StatusCode::kNotFound) registered_ = false;  // forgotten
    return;
  }
  reachable_ = true;
  if (answer->map_version > logic_->map_version()) RefreshMap();
  if (host != nullptr) {
    PushConfigs();
    host->OnMetaContact(hb.sent_at);
    for (const auto& [p, epoch] : answer->leases) host->OnLease(p, epoch, hb.sent_at);
  }
}

void ChunkServer::HeartbeatLoop() {
  const auto interval = std::chrono::milliseconds(options_.heartbeat_interval_ms);
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(stop_mu_);
      if (stop_cv_.wait_for(lock, interval, [this] { return stopping_; })) return;
    }
    HeartbeatOnce();
    const size_t forgotten = service_->ExpireUploads();
    if (forgotten > 0) LOG_INFO(log_) << "expired idle uploads: " << forgotten << " blocks";
  }
}

void ChunkServer::MaintenanceLoop() {
  const auto checkpoint_every = std::chrono::seconds(options_.checkpoint_interval_s);
  const auto compact_every = std::chrono::seconds(options_.compact_interval_s);
  Nanos last_checkpoint = RealClock().Now();
  Nanos last_compact = last_checkpoint;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(stop_mu_);
      if (stop_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) return;
    }
    const Nanos now = RealClock().Now();
    if (options_.checkpoint_interval_s > 0 && now - last_checkpoint >= checkpoint_every) {
      last_checkpoint = now;
      Status s = store_->Checkpoint();
      if (!s.ok()) LOG_ERROR(log_) << "checkpoint failed: " << s.ToString();
    }
    if (options_.compact_interval_s > 0 && now - last_compact >= compact_every) {
      last_compact = now;
      Result<CompactionReport> r = store_->Compact();
      if (!r.ok()) {
        LOG_ERROR(log_) << "compaction failed: " << r.status().ToString();
      } else if (!r->released.empty()) {
        LOG_INFO(log_) << "compaction released " << r->released.size() << " segments, moved "
                       << r->blocks_relocated << " blocks";
      }
    }
  }
}

// ---------------------------------------------------------------- stop

Status ChunkServer::Stop() {
  if (stopped_) return Status::Ok();
  stopped_ = true;
  if (server_) server_->Stop();
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
  if (maintenance_.joinable()) maintenance_.join();
  replica_host_ = nullptr;
  if (service_) service_->SetReplicaHost(nullptr);
  if (replicas_) replicas_->Stop();
  replica_meta_.reset();  // its thread may refresh the map: before what that uses goes
  replica_transport_.reset();
  replicas_.reset();
  Status s;
  if (store_) {
    s = store_->Checkpoint();
    if (!s.ok()) LOG_ERROR(log_) << "final checkpoint failed: " << s.ToString();
  }
  server_.reset();
  service_.reset();
  index_.reset();
  store_.reset();
  volume_.reset();
  return s;
}

ChunkServer::~ChunkServer() { Stop().IgnoreError(); }  // errors were logged

}  // namespace cairn::chunkserver
