// TLS for every Cairn connection: Thrift TSSLSocket, TLS 1.3 only, mutual
// authentication against the cluster CA (DESIGN.md "Security").
//
// A peer is accepted when its certificate chain verifies against the cluster
// CA (OpenSSL does the check, including validity dates and the
// serverAuth/clientAuth purpose). Host names and IP addresses are not checked:
// the identity is the certificate's common name ("node:x", "user:y",
// "admin:z", certs.h), and servers authorize requests by it.
//
// Client:
//   ASSIGN_OR_RETURN(auto factory, MakeTlsFactory(options, TlsRole::kClient));
//   auto socket = factory->createSocket(host, port);   // factory kept alive
//   socket->setConnTimeout(...); socket->setRecvTimeout(...);
//   auto transport = std::make_shared<TBufferedTransport>(socket, 64 * 1024, 64 * 1024);
//   transport->open();   // TCP only: the handshake happens at the first I/O
//
// Server (TThreadedServer: one thread per connection):
//   auto server_socket = std::make_shared<TSSLServerSocket>(address, port, factory);
//   server->setServerEventHandler(std::make_shared<AuthEventHandler>());
//   class AuthEventHandler : public apache::thrift::server::TServerEventHandler {
//     // Runs in the connection's own thread before its first request; the
//     // TLS handshake happens inside PeerIdentity.
//     void* createContext(std::shared_ptr<TProtocol> in, std::shared_ptr<TProtocol>) override {
//       return new Result<std::string>(PeerIdentity(in->getTransport().get()));
//     }
//     void deleteContext(void* ctx, std::shared_ptr<TProtocol>,
//                        std::shared_ptr<TProtocol>) override {
//       delete static_cast<Result<std::string>*>(ctx);
//     }
//     // processContext(ctx, transport) runs in the same thread before every
//     // request: the place to make the identity visible to the handler (e.g.
//     // a thread_local pointer, which is safe because one thread serves one
//     // connection).
//   };
// Alternatively a TProcessorFactory / generated `<Service>IfFactory` gets
// TConnectionInfo::transport (the TSSLSocket) per connection: keep that
// pointer and call PeerIdentity at the first request. Never call PeerIdentity
// in getProcessor/getHandler themselves: they run in the accept thread, and a
// slow handshake there would stall every new connection.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"

namespace apache::thrift::transport {
class TSSLSocketFactory;
class TTransport;
class TTransportException;
}  // namespace apache::thrift::transport

namespace cairn {

// PEM files of one process: the cluster CA certificate, its own certificate
// and private key (certs.h writes them).
struct TlsOptions {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;

  // OK when every file exists and parses, the key matches the certificate,
  // and the certificate verifies against the CA now (not expired, not yet
  // valid, or issued by another CA are refused). NotFound / PermissionDenied
  // for unreadable files, InvalidArgument otherwise; messages name the file.
  // Logs a warning when the key file is readable by group or others.
  Status Validate() const;
};

enum class TlsRole { kServer, kClient };

// A socket factory for `role`: TLS 1.3 only (minimum and maximum), peer
// certificate required and verified against `options.ca_file` only (no
// system trust store), session tickets and resumption off (connections are
// long-lived), the access manager described above. Validates `options` first.
// The first call also ignores SIGPIPE for the process (OpenSSL writes to a
// closed peer would kill it) and takes OpenSSL initialization away from
// Thrift (whose last factory's destructor would otherwise tear down OpenSSL
// state still used by other code, e.g. libcurl), and sends Thrift's
// diagnostics (GlobalOutput) to the "thrift" logger (common/logging.h).
//
// Keep one factory per process and role alive for as long as any socket it
// made: sockets share its SSL_CTX. The factory is thread-safe for
// createSocket; each socket belongs to one thread at a time.
Result<std::shared_ptr<apache::thrift::transport::TSSLSocketFactory>> MakeTlsFactory(
    const TlsOptions& options, TlsRole role);

// The identity ("node:x", "user:y", "admin:z") of the verified peer of a TLS
// connection. `transport` is a TSSLSocket or a TBufferedTransport /
// TFramedTransport over one (possibly nested). Completes the TLS handshake
// first if it has not happened yet, which blocks up to the socket's receive
// timeout. When a server-side handshake fails, it half-closes the socket and
// reads until the client closes, for at most 0.5 s, so that the client gets
// the TLS alert saying why instead of a connection reset. Call it only from
// the thread that uses the connection.
// Errors: InvalidArgument (not a TLS transport), Unavailable / Timeout /
// PermissionDenied (handshake failed: see StatusFromTransportException),
// PermissionDenied (no verified peer certificate, or its name is not a Cairn
// identity). Never throws.
Result<std::string> PeerIdentity(apache::thrift::transport::TTransport* transport);

// Turns a Thrift transport exception into a Status for the RPC edge:
// TIMED_OUT -> Timeout; TLS failures that name a certificate or protocol
// problem (the peer refused us or we refused it) -> PermissionDenied; all
// else (refused connection, reset, end of file) -> Unavailable. The message
// is "<context>: <exception text>". After any of these the connection is out
// of step and must be closed.
Status StatusFromTransportException(const apache::thrift::transport::TTransportException& e,
                                    const std::string& context);

}  // namespace cairn
