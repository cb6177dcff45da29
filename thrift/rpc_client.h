// Client connections over mutual TLS, pooled per endpoint (DESIGN.md facts
// about Thrift: generated clients are not thread-safe, a connection is out
// of step after any transport exception and must be closed, one socket
// factory per process).
//
//   ASSIGN_OR_RETURN(auto pool, ConnectionPool::Create(options));
//   rpc::GetResult r;
//   Status s = pool->Call<rpc::ChunkServiceClient>(endpoint, [&](rpc::ChunkServiceClient& c) {
//     c.Get(r, request);
//   });
//
// Call() borrows an idle connection to the endpoint (or opens one), runs the
// lambda on a generated client over it and returns the connection to the
// pool. Errors:
//   - rpc::CairnError thrown by the server -> FromCairnError (the connection
//     stays usable and is pooled again);
//   - transport errors -> StatusFromTransportException: Timeout, Unavailable
//     (refused, reset, closed), PermissionDenied (TLS refused); the
//     connection is discarded;
//   - other Thrift errors (protocol, application exceptions) -> Internal or
//     Unavailable; the connection is discarded.
// Call() retries only one case: a pooled idle connection that fails at once
// with end-of-file or a reset (the peer restarted or closed it while idle)
// is replaced by a new connection and the call made once more; the request
// reached no live server. Every other retry policy (same request id) belongs
// to the caller.
//
// Thread-safety: ConnectionPool is thread-safe; each Call() uses its own
// connection.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/mutex.h"
#include "common/status.h"
#include "common/tls.h"

namespace apache::thrift::protocol {
class TProtocol;
}
namespace apache::thrift::transport {
class TSSLSocketFactory;
}

namespace cairn::net {

struct ClientOptions {
  TlsOptions tls;
  int connect_timeout_ms = 3000;
  // Per call: a reply that takes longer is a Timeout (and the connection is
  // discarded). Large enough for one block under load.
  int call_timeout_ms = 30000;
  // Idle connections kept per endpoint.
  int max_idle_per_endpoint = 16;
};

class ConnectionPool {
 public:
  static Result<std::unique_ptr<ConnectionPool>> Create(const ClientOptions& options);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // See the file comment. `Client` is a generated <Service>Client.
  template <class Client, class Fn>
  Status Call(const HostPort& endpoint, Fn&& fn) {
    return CallRaw(endpoint, [&](std::shared_ptr<apache::thrift::protocol::TProtocol> p) {
      Client client(p);
      fn(client);
    });
  }

  // Drops every idle connection to `endpoint` (e.g. after it restarted).
  void Forget(const HostPort& endpoint);

  const ClientOptions& options() const { return options_; }

 private:
  struct Connection;
  explicit ConnectionPool(const ClientOptions& options);
  Status CallRaw(
      const HostPort& endpoint,
      const std::function<void(std::shared_ptr<apache::thrift::protocol::TProtocol>)>& fn);
  // An idle connection (*reused = true) or a new one.
  Result<std::unique_ptr<Connection>> Take(const HostPort& endpoint, bool* reused);
  void Give(const HostPort& endpoint, std::unique_ptr<Connection> c);

  ClientOptions options_;
  std::shared_ptr<apache::thrift::transport::TSSLSocketFactory> factory_;
  Mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<Connection>>> idle_ GUARDED_BY(mu_);
};

}  // namespace cairn::net
