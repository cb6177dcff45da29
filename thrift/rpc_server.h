// A Thrift server over mutual TLS (docs/design-store.md "Processes and
// transport"): TThreadedServer (one thread per connection), TBinaryProtocol
// over a 64 KiB TBufferedTransport over TSSLSocket, TLS 1.3 only, peer
// certificate required and verified against the cluster CA.
//
// Every connection's peer identity is established before its first request
// (PeerIdentity); a peer without a valid certificate is refused and its
// connection closed. Inside a handler, CurrentCaller() is the identity of the
// caller of the request being served (one thread serves one connection).
//
// Limits against bad input: strings/binaries up to kMaxStringBytes and
// containers up to kMaxContainerItems per field; a frame that breaks them, or
// any garbage, ends that connection only. Idle connections are closed after
// idle_timeout_ms.
//
// Thread-safety: Start/Stop from one thread; the processor's handler is
// called concurrently from every connection thread and must be thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "common/certs.h"
#include "common/status.h"
#include "common/tls.h"

namespace apache::thrift {
class TProcessor;
namespace server {
class TThreadedServer;
}
}  // namespace apache::thrift

namespace cairn::net {

inline constexpr int32_t kMaxStringBytes = 16 << 20;    // a block is at most 4 MiB
inline constexpr int32_t kMaxContainerItems = 1 << 20;  // list/map items per field

struct ServerOptions {
  std::string host = "127.0.0.1";  // address to bind
  int port = 0;                    // 0: an ephemeral port (tests); see RpcServer::port()
  TlsOptions tls;
  // A connection that sends nothing for this long is closed (0: never).
  int idle_timeout_ms = 10 * 60 * 1000;
  // A connection that stops in the middle of a request or the handshake for
  // this long is closed.
  int io_timeout_ms = 30 * 1000;
};

// The verified identity of the peer whose request this thread is serving;
// nullptr outside a handler.
const Identity* CurrentCaller();

class RpcServer {
 public:
  // Binds, starts serving `processor` in background threads and returns once
  // the socket listens. `name` is for logs ("chunkserver", "metaserver").
  // Errors: InvalidArgument/NotFound for bad TLS files, Unavailable if the
  // address cannot be bound.
  static Result<std::unique_ptr<RpcServer>> Start(
      const ServerOptions& options, std::shared_ptr<apache::thrift::TProcessor> processor,
      std::string name);
  ~RpcServer();  // Stop()
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;

  // The bound port (useful with port 0).
  int port() const { return port_; }
  // Stops accepting, interrupts open connections and joins every thread.
  // Idempotent.
  void Stop();

 private:
  RpcServer() = default;
  std::string name_;
  int port_ = 0;
  std::shared_ptr<apache::thrift::server::TThreadedServer> server_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace cairn::net
