#include "metaserver/meta_server.h"

#include <thrift/TProcessor.h>

#include <algorithm>

#include "MetaService.h"
#include "common/certs.h"
#include "common/partitioning.h"
#include "metaserver/chunk_probe.h"
#include "metaserver/etcd_meta_store.h"
#include "metaserver/mem_meta_store.h"
#include "metaserver/meta_service.h"
#include "thrift/rpc_client.h"
#include "thrift/rpc_server.h"

namespace cairn::metaserver {
namespace {

constexpr auto kTickPeriod = std::chrono::milliseconds(250);

std::string Prefix(const std::string& p) { return p.empty() || p.back() == '/' ? p : p + "/"; }

// ParseHostPort, and port 0 (any free port: tests) as well.
Result<HostPort> ParseListen(std::string_view text) {
  if (text.size() > 2 && text.substr(text.size() - 2) == ":0") {
    ASSIGN_OR_RETURN(HostPort hp,
                     ParseHostPort(std::string(text.substr(0, text.size() - 2)) + ":1"));
    hp.port = 0;
    return hp;
  }
  return ParseHostPort(text);
}

}  // namespace

std::string MetaServerOptions::MapKey() const { return Prefix(etcd_prefix) + "map"; }
std::string MetaServerOptions::ElectionKey() const { return Prefix(etcd_prefix) + "leader"; }

void RegisterOptions(OptionSet* set, MetaServerOptions* o) {
  set->String("name", &o->name,
              "this metaserver's node name; its certificate (tls_cert) must be node:<name>",
              /*required=*/true);
  set->String("listen", &o->listen, "host:port to serve MetaService on (port 0: any free port)");
  set->String("advertise", &o->advertise,
              "host:port that followers name as the leader's address (default: listen, with the "
              "bound port)");
  set->String("store", &o->store,
              "where the cluster map lives: etcd (production) or memory (a single process, "
              "lost at exit: development and tests)");
  set->List("etcd_endpoints", &o->etcd_endpoints,
            "etcd client URLs, https://host:port (store = etcd)");
  set->String("etcd_prefix", &o->etcd_prefix,
              "key prefix of this cluster in etcd: the map is <prefix>map, the election "
              "<prefix>leader");
  set->String("etcd_ca", &o->etcd_ca, "CA of etcd's certificates (default: tls_ca)");
  set->String("etcd_cert", &o->etcd_cert, "client certificate for etcd (default: tls_cert)");
  set->String("etcd_key", &o->etcd_key, "its private key (default: tls_key)");
  set->String("tls_ca", &o->tls_ca, "the cluster CA certificate (PEM)", /*required=*/true);
  set->String("tls_cert", &o->tls_cert, "this metaserver's certificate, node:<name> (PEM)",
              /*required=*/true);
  set->String("tls_key", &o->tls_key, "its private key (PEM, mode 0600)", /*required=*/true);
  set->Int("partitions", &o->partitions,
           "partition count P of a new cluster, a power of two; must equal the stored map's", 1,
           kMaxPartitionCount);
  set->Int("initial_nodes", &o->initial_nodes,
           "chunk servers that must register before the partitions are placed", 1, 1024);
  set->Int("heartbeat_timeout_ms", &o->heartbeat_timeout_ms, "a node silent this long is SUSPECT",
           100, 3'600'000);
  set->Int("node_down_ms", &o->node_down_ms, "a node silent this long is DOWN", 100,
           24 * 3'600'000);
  set->Int("election_ttl_s", &o->election_ttl_s,
           "TTL of the leader's store lease: a dead leader is replaced after about this long", 1,
           60);
  set->String("log_level", &o->log_level, "debug, info, warn or error");
  set->Int("replication", &o->replication,
           "replicas per partition (1..5), each on its own node; more than 1 needs failover = "
           "true. Placed on fewer nodes when fewer have registered; the missing replicas are "
           "added as nodes join",
           1, 5);
  set->Bool("failover", &o->failover,
            "manage replication: grant primary leases in heartbeat answers, detect failed nodes, "
            "promote in-sync backups, apply in-sync changes, replace long-dead replicas, add "
            "missing ones. Every chunk server must run with replication = true (false: with "
            "replication = false; nodes that differ are refused at registration)");
  set->Int("heartbeat_interval_ms", &o->heartbeat_interval_ms,
           "how often chunk servers heartbeat; the failover timer plans every half of it", 10,
           60'000);
  set->Int("failure_timeout_ms", &o->failure_timeout_ms,
           "failover: a node without a heartbeat this long is failed (its primaries are replaced, "
           "it leaves in-sync sets)",
           20, 3'600'000);
  set->Int("lease_ms", &o->lease_ms,
           "failover: the primary lease granted with a heartbeat answer; no new primary is named "
           "before the last one granted has run out (at most failure_timeout_ms)",
           10, 3'600'000);
  set->Int("replacement_timeout_ms", &o->replacement_timeout_ms,
           "failover: a replica failed this long gets a substitute on another node", 20,
           7 * 24 * 3'600'000LL);
}

FailoverOptions MetaServerOptions::Failover() const {
  FailoverOptions f;
  f.heartbeat_interval = std::chrono::milliseconds(heartbeat_interval_ms);
  f.failure_timeout = std::chrono::milliseconds(failure_timeout_ms);
  f.lease = std::chrono::milliseconds(lease_ms);
  f.replacement_timeout = std::chrono::milliseconds(replacement_timeout_ms);
  f.replication = static_cast<uint32_t>(std::clamp<int64_t>(replication, 0, 1000));
  return f;
}

Status MetaServerOptions::Validate() const {
  RETURN_IF_ERROR(ValidateCertName(name, "name"));
  if (!ValidPartitionCount(static_cast<uint64_t>(partitions))) {
    return Status::InvalidArgument("partitions = " + std::to_string(partitions) +
                                   " is not a power of two (1, 2, 4, ... " +
                                   std::to_string(kMaxPartitionCount) + ")");
  }
  RETURN_IF_ERROR(ParseListen(listen).status().WithContext("listen"));
  if (!advertise.empty()) {
    ASSIGN_OR_RETURN(HostPort a, ParseHostPort(advertise));
    if (a.port == 0) return Status::InvalidArgument("advertise needs a port");
  }
  if (store == "etcd") {
    if (etcd_endpoints.empty()) {
      return Status::InvalidArgument("store = etcd needs etcd_endpoints (https://host:port,...)");
    }
  } else if (store != "memory") {
    return Status::InvalidArgument("store must be etcd or memory, got '" + store + "'");
  }
  if (etcd_prefix.empty() || etcd_prefix[0] != '/') {
    return Status::InvalidArgument("etcd_prefix must start with '/', got '" + etcd_prefix + "'");
  }
  if (node_down_ms < heartbeat_timeout_ms) {
    return Status::InvalidArgument("node_down_ms (" + std::to_string(node_down_ms) +
                                   ") must be at least heartbeat_timeout_ms (" +
                                   std::to_string(heartbeat_timeout_ms) + ")");
  }
  if (replication < 1 || replication > 5) {
    return Status::InvalidArgument("replication must be 1..5, got " + std::to_string(replication));
  }
  if (replication > 1 && !failover) {
    return Status::InvalidArgument(
        "replication = " + std::to_string(replication) +
        " needs failover = true (the replicas are kept by the replication protocol); for a "
        "single copy set replication = 1 and failover = false, here and replication = false on "
        "the chunk servers");
  }
  // FailoverOptions::Validate's rules, said with the options' names.
  auto order = [](const char* a, int64_t va, const char* rel, const char* b, int64_t vb) {
    return Status::InvalidArgument(std::string(a) + " (" + std::to_string(va) + ") must be " + rel +
                                   " " + b + " (" + std::to_string(vb) + ")");
  };
  if (heartbeat_interval_ms >= failure_timeout_ms) {
    return order("heartbeat_interval_ms", heartbeat_interval_ms, "less than", "failure_timeout_ms",
                 failure_timeout_ms);
  }
  if (lease_ms > failure_timeout_ms) {
    return order("lease_ms", lease_ms, "at most", "failure_timeout_ms", failure_timeout_ms);
  }
  if (replacement_timeout_ms < failure_timeout_ms) {
    return order("replacement_timeout_ms", replacement_timeout_ms, "at least", "failure_timeout_ms",
                 failure_timeout_ms);
  }
  RETURN_IF_ERROR(Failover().Validate().WithContext("failover options"));
  LogLevel level;
  if (!ParseLogLevel(log_level, &level)) {
    return Status::InvalidArgument("log_level must be debug, info, warn or error, got '" +
                                   log_level + "'");
  }
  ASSIGN_OR_RETURN(std::string identity, IdentityFromCertificateFile(tls_cert));
  if (identity != "node:" + name) {
    return Status::InvalidArgument("tls_cert " + tls_cert + " is " + identity +
                                   ", but name = " + name + " needs node:" + name);
  }
  return Status::Ok();
}

Result<std::unique_ptr<MetaServer>> MetaServer::Start(const MetaServerOptions& options,
                                                      MetaStore* store, Clock* clock) {
  RETURN_IF_ERROR(options.Validate());
  const TlsOptions tls{options.tls_ca, options.tls_cert, options.tls_key};
  RETURN_IF_ERROR(tls.Validate());
  std::unique_ptr<MetaServer> s(new MetaServer());
  s->options_ = options;
  s->clock_ = clock != nullptr ? clock : &RealClock();
  s->log_ = Logger("metaserver", options.name);
  if (store != nullptr) {
    s->store_ = store;
  } else if (options.store == "memory") {
    LOG_WARN(s->log_) << "store = memory: the cluster map lives in this process only and is lost "
                         "when it exits; use etcd for anything but development";
    s->owned_store_ = std::make_unique<MemMetaStore>(s->clock_);
    s->store_ = s->owned_store_.get();
  } else {
    EtcdOptions etcd;
    etcd.endpoints = options.etcd_endpoints;
    etcd.ca_file = options.etcd_ca.empty() ? options.tls_ca : options.etcd_ca;
    etcd.cert_file = options.etcd_cert.empty() ? options.tls_cert : options.etcd_cert;
    etcd.key_file = options.etcd_key.empty() ? options.tls_key : options.etcd_key;
    ASSIGN_OR_RETURN(s->owned_store_, EtcdMetaStore::Open(std::move(etcd)));
    s->store_ = s->owned_store_.get();
  }

  ClusterOptions cluster;
  cluster.map_key = options.MapKey();
  cluster.partition_count = static_cast<uint32_t>(options.partitions);
  cluster.initial_nodes = static_cast<uint32_t>(options.initial_nodes);
  cluster.heartbeat_timeout = std::chrono::milliseconds(options.heartbeat_timeout_ms);
  cluster.node_down = std::chrono::milliseconds(options.node_down_ms);
  cluster.replication = static_cast<uint32_t>(options.replication);
  RETURN_IF_ERROR(cluster.Validate());

  // Refuse to start against a map of another partition count: every leader
  // would refuse to load it (ClusterState::Load) and the cluster would never
  // serve, so say so now.
  ASSIGN_OR_RETURN(std::optional<KeyValue> stored, s->store_->Get(cluster.map_key));
  if (stored.has_value()) {
    ASSIGN_OR_RETURN(ClusterMap m, DecodeClusterMap(stored->value));
    if (m.partition_count != cluster.partition_count) {
      return Status::FailedPrecondition(
          "the stored cluster map (" + cluster.map_key + ") has " +
          std::to_string(m.partition_count) +
          " partitions but partitions = " + std::to_string(cluster.partition_count) +
          " is configured; the partition count is fixed when the cluster is created: set "
          "partitions = " +
          std::to_string(m.partition_count));
    }
  }

  s->state_ = std::make_unique<ClusterState>(s->store_, s->clock_, cluster);
  if (options.failover) {
    s->failover_ =
        std::make_unique<FailoverService>(s->state_.get(), s->clock_, options.Failover());
    LOG_WARN(s->log_) << "failover = true: this metaserver grants primary leases, promotes "
                         "backups and changes in-sync sets; the chunk servers must speak the "
                         "replication protocol (docs/design-replication.md)";
  }
  net::ClientOptions client;
  client.tls = tls;
  client.call_timeout_ms = 10000;
  ASSIGN_OR_RETURN(s->pool_, net::ConnectionPool::Create(client));
  s->probe_ = std::make_unique<ChunkServiceProbe>(s->pool_.get());

  MetaServer* self = s.get();
  auto handler = std::make_shared<MetaServiceHandler>(
      s->state_.get(), s->probe_.get(),
      [self]() -> Status {
        LeaderElection* e = self->election_ready_.load();
        if (e == nullptr) return Status::Unavailable("metaserver starting; retry");
        return e->CheckLeader();
      },
      s->failover_.get());
  auto processor = std::make_shared<rpc::MetaServiceProcessor>(handler);
  ASSIGN_OR_RETURN(HostPort listen, ParseListen(options.listen));
  net::ServerOptions server;
  server.host = listen.host;
  server.port = listen.port;
  server.tls = tls;
  ASSIGN_OR_RETURN(s->server_, net::RpcServer::Start(server, processor, "metaserver"));
  s->advertise_ = options.advertise.empty() ? HostPort{listen.host, s->server_->port()}.ToString()
                                            : options.advertise;

  ElectionOptions election;
  election.election = options.ElectionKey();
  election.advertise = s->advertise_;
  election.ttl = std::chrono::seconds(options.election_ttl_s);
  ClusterState* state = s->state_.get();
  FailoverService* failover = s->failover_.get();
  LeaderElection::Callbacks callbacks;
  callbacks.on_elected = [state, failover](const Compare& fence) {
    state->SetFence(fence);
    Status loaded = state->Load();
    // A new term starts its failover soft state from nothing, at now.
    if (loaded.ok() && failover != nullptr) failover->BecameLeader();
    return loaded;
  };
  callbacks.on_lost = [state, failover]() {
    if (failover != nullptr) failover->LostLeadership();
    state->Unload();
    state->SetFence(std::nullopt);
  };
  s->election_ = std::make_unique<LeaderElection>(s->store_, election, std::move(callbacks));
  s->election_->Start();
  s->election_ready_ = s->election_.get();
  s->ticker_ = std::thread([self] { self->RunTicker(); });
  if (s->failover_ != nullptr)
    s->failover_timer_ = std::thread([self] { self->RunFailoverTimer(); });
  LOG_INFO(s->log_) << "serving MetaService on " << listen.host << ":" << s->server_->port()
                    << " (advertised as " << s->advertise_ << "), store " << options.store
                    << ", map " << cluster.map_key;
  return s;
}

MetaServer::~MetaServer() { Stop(); }

int MetaServer::port() const { return server_ ? server_->port() : 0; }

bool MetaServer::IsLeader() const { return election_ && election_->IsLeader() && state_->loaded(); }

Status MetaServer::WaitForElection(Nanos timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Status last;
  while (std::chrono::steady_clock::now() < deadline) {
    if (IsLeader()) return Status::Ok();
    last = election_->CheckLeader();
    if (last.message().find("leader is ") != std::string::npos) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::Timeout("no leader known within the wait: " + last.ToString());
}

void MetaServer::RunTicker() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(ticker_mu_);
      ticker_cv_.wait_for(lock, kTickPeriod, [&] { return ticker_stop_; });
      if (ticker_stop_) return;
    }
    for (const NodeTransition& t : state_->Tick()) {
      LOG_WARN(log_) << "node " << t.name << " (id " << t.node << ") " << NodeStateName(t.from)
                     << " -> " << NodeStateName(t.to);
    }
  }
}

void MetaServer::RunFailoverTimer() {
  const Nanos period =
      std::max<Nanos>(failover_->options().heartbeat_interval / 2, std::chrono::milliseconds(5));
  std::string last_error;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(ticker_mu_);
      ticker_cv_.wait_for(lock, period, [&] { return ticker_stop_; });
      if (ticker_stop_) return;
    }
    if (!IsLeader()) continue;
    Result<bool> planned = failover_->Plan();
    if (planned.ok()) {
      last_error.clear();
    } else if (planned.status().ToString() != last_error) {
      // Once per distinct error: a store outage would otherwise log every round.
      last_error = planned.status().ToString();
      LOG_WARN(log_) << "failover plan: " << last_error;
    }
  }
}

Status MetaServer::RunFailoverPlan() {
  if (failover_ == nullptr) return Status::FailedPrecondition("failover is off");
  return failover_->Plan().status();
}

void MetaServer::Stop() { Shutdown(/*resign=*/true); }
void MetaServer::Abandon() { Shutdown(/*resign=*/false); }

void MetaServer::Shutdown(bool resign) {
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> lock(ticker_mu_);
    ticker_stop_ = true;
  }
  ticker_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  if (failover_timer_.joinable()) failover_timer_.join();
  // Leadership first, so a follower can take over while we close sockets.
  if (election_) {
    if (resign) {
      election_->Stop();
    } else {
      election_->Abandon();
    }
  }
  if (server_) server_->Stop();
  LOG_INFO(log_) << "stopped";
}

}  // namespace cairn::metaserver
