// Helpers for the metaserver tests: a temporary directory, a cluster CA with
// certificates for nodes, users and admins, and MetaService calls through a
// TLS connection pool.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "MetaService.h"
#include "common/certs.h"
#include "common/config.h"
#include "common/tls.h"
#include "thrift/rpc_client.h"

namespace cairn::metaserver::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");  // NOLINT(concurrency-mt-unsafe)
    std::string pattern =
        std::string(tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp") + "/cairn-meta-test-XXXXXX";
    CAIRN_CHECK(::mkdtemp(pattern.data()) != nullptr) << "mkdtemp " << pattern;
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A cluster CA in <dir>/ca and certificates in <dir>/<role>/<name>.{crt,key}.
class TestCerts {
 public:
  explicit TestCerts(std::string dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    CAIRN_CHECK(CreateClusterCa(dir_ + "/ca", "meta-test", 2).ok());
  }
  // Issues (once) and returns the TLS options of "<role>:<name>".
  TlsOptions For(Role role, const std::string& name) {
    const std::string out = dir_ + "/" + std::string(RoleName(role));
    const std::string key = std::string(RoleName(role)) + ":" + name;
    if (issued_.count(key) == 0) {
      CertRequest req;
      req.name = name;
      req.role = role;
      req.valid_days = 1;
      Status s = IssueCertificate(dir_ + "/ca", req, out);
      CAIRN_CHECK(s.ok()) << s.ToString();
      issued_[key] = true;
    }
    return TlsOptions{ca(), out + "/" + name + ".crt", out + "/" + name + ".key"};
  }
  TlsOptions Node(const std::string& name) { return For(Role::kNode, name); }
  std::string ca() const { return dir_ + "/ca/ca.crt"; }

 private:
  std::string dir_;
  std::map<std::string, bool> issued_;
};

// One connection pool per identity.
inline std::unique_ptr<net::ConnectionPool> PoolFor(const TlsOptions& tls) {
  net::ClientOptions o;
  o.tls = tls;
  o.connect_timeout_ms = 2000;
  o.call_timeout_ms = 10000;
  auto pool = net::ConnectionPool::Create(o);
  CAIRN_CHECK(pool.ok()) << pool.status().ToString();
  return std::move(pool).value();
}

// Typed MetaService calls returning Result.
class MetaClient {
 public:
  MetaClient(net::ConnectionPool* pool, HostPort endpoint)
      : pool_(pool), endpoint_(std::move(endpoint)) {}

  Result<rpc::ClusterMap> GetMap() {
    rpc::ClusterMap m;
    RETURN_IF_ERROR(Call([&](rpc::MetaServiceClient& c) { c.GetMap(m, 0); }));
    return m;
  }
  // `replication`: the node replicates (must match the metaserver's failover).
  Result<int32_t> Register(const std::string& name, const std::string& host, int port,
                           bool replication = false) {
    rpc::NodeRegistration reg;
    reg.name = name;
    reg.host = host;
    reg.port = port;
    if (replication) reg.__set_replication(true);
    int32_t id = 0;
    RETURN_IF_ERROR(Call([&](rpc::MetaServiceClient& c) { id = c.RegisterNode(reg); }));
    return id;
  }
  Result<int64_t> Heartbeat(int32_t node_id) {
    rpc::HeartbeatRequest req;
    req.node_id = node_id;
    req.capacity_bytes = 1000;
    rpc::HeartbeatReply reply;
    RETURN_IF_ERROR(Call([&](rpc::MetaServiceClient& c) { c.Heartbeat(reply, req); }));
    return reply.map_version;
  }
  // A heartbeat as the caller builds it (replica reports, send time).
  Result<rpc::HeartbeatReply> Heartbeat(const rpc::HeartbeatRequest& req) {
    rpc::HeartbeatReply reply;
    RETURN_IF_ERROR(Call([&](rpc::MetaServiceClient& c) { c.Heartbeat(reply, req); }));
    return reply;
  }
  Result<int64_t> ChangeInSync(const rpc::InSyncChange& change) {
    int64_t version = 0;
    RETURN_IF_ERROR(Call([&](rpc::MetaServiceClient& c) { version = c.ChangeInSync(change); }));
    return version;
  }
  Result<rpc::CollectionInfo> Create(const std::string& name) {
    rpc::CollectionInfo info;
    RETURN_IF_ERROR(Call([&](rpc::MetaServiceClient& c) { c.CreateCollection(info, name); }));
    return info;
  }
  Status Drop(const std::string& name) {
    return Call([&](rpc::MetaServiceClient& c) { c.DropCollection(name); });
  }
  Result<std::vector<rpc::CollectionInfo>> List() {
    std::vector<rpc::CollectionInfo> out;
    RETURN_IF_ERROR(Call([&](rpc::MetaServiceClient& c) { c.ListCollections(out); }));
    return out;
  }

 private:
  template <typename Fn>
  Status Call(Fn&& fn) {
    return pool_->Call<rpc::MetaServiceClient>(endpoint_, std::forward<Fn>(fn));
  }
  net::ConnectionPool* pool_;
  HostPort endpoint_;
};

}  // namespace cairn::metaserver::testing
