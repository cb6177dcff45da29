// Mutual TLS 1.3 over Thrift 0.17's TSSLSocket.
#include "common/tls.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thrift/TOutput.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSSLSocket.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string_view>

#include "common/certs.h"
#include "common/logging.h"
#include "common/openssl_util.h"

namespace cairn {

using apache::thrift::transport::AccessManager;
using apache::thrift::transport::SSLTLS;
using apache::thrift::transport::TBufferedTransport;
using apache::thrift::transport::TFramedTransport;
using apache::thrift::transport::TSSLException;
using apache::thrift::transport::TSSLSocket;
using apache::thrift::transport::TSSLSocketFactory;
using apache::thrift::transport::TTransport;
using apache::thrift::transport::TTransportException;
using internal::EvpPkeyPtr;
using internal::OpenSslError;
using internal::X509Ptr;
using internal::X509StoreCtxPtr;
using internal::X509StorePtr;

namespace {

const Logger& TlsLog() {
  static const Logger log("tls");
  return log;
}

// Accepts every peer that reaches it. Thrift calls the access manager from
// TSSLSocket::authorize() only after the handshake succeeded, which with
// authenticate(true) means OpenSSL verified the peer's chain against the
// cluster CA and a certificate was presented; authorize() also re-checks
// SSL_get_verify_result(). Answering ALLOW to the address check skips
// Thrift's host name matching (identity is the CN, read by PeerIdentity).
// Without an access manager a client factory would install
// DefaultClientAccessManager, which requires the host name or IP to match a
// SAN or the CN.
class ClusterCaAccessManager final : public AccessManager {
 public:
  Decision verify(const sockaddr_storage& /*sa*/) noexcept override { return ALLOW; }
  Decision verify(const std::string& /*host*/, const char* /*name*/,
                  int /*size*/) noexcept override {
    return ALLOW;
  }
  Decision verify(const sockaddr_storage& /*sa*/, const char* /*data*/,
                  int /*size*/) noexcept override {
    return ALLOW;
  }
};

// Thrift 0.17 keeps the SSL_CTX in the protected `ctx_`; a subclass is the
// only way to set protocol versions (its SSLProtocol enum stops at TLSv1_2,
// meaning "1.2 or later").
class ClusterTlsSocketFactory final : public TSSLSocketFactory {
 public:
  ClusterTlsSocketFactory() : TSSLSocketFactory(SSLTLS) {}
  SSL_CTX* ssl_ctx() { return ctx_->get(); }
};

// TSSLSocket keeps its SSL* and the handshake in protected members. A pointer
// to a protected member formed through a derived class is valid on any
// TSSLSocket ([class.protected]); this type is never instantiated.
struct SslSocketInternals : TSSLSocket {
  static SSL* Ssl(TSSLSocket& socket) { return socket.*(&SslSocketInternals::ssl_); }
  // Runs SSL_accept/SSL_connect and authorize() if not done yet; throws
  // TTransportException/TSSLException on failure.
  static void Handshake(TSSLSocket& socket) {
    (socket.*(&SslSocketInternals::initializeHandshake))();
  }
};

// Thrift's own diagnostics (GlobalOutput) in Cairn's log style. The
// "SSL_shutdown: ..." lines Thrift prints on closing after a refused handshake
// and on many normal closes carry nothing: debug. The rest ("TConnectedClient
// died: ...") are warnings, at most one a second: a peer controls how often.
void ThriftOutputToLog(const char* message) {
  static const Logger log("thrift");
  std::string_view text = message != nullptr ? message : "";
  if (text.starts_with("SSL_shutdown:")) {
    LOG_DEBUG(log) << text;
    return;
  }
  LOG_EVERY_N_SEC(log, kWarn, 1) << text;
}

void InitializeProcessOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    // An OpenSSL write to a peer that closed raises SIGPIPE, which would kill
    // the process; ignored, the write fails with EPIPE and becomes an error.
    std::signal(SIGPIPE, SIG_IGN);
    // OpenSSL 3 initializes itself. Left to Thrift, the destructor of the last
    // TSSLSocketFactory would run cleanupOpenSSL() under any other OpenSSL
    // user in the process (libcurl for etcd, certs.cc).
    TSSLSocketFactory::setManualOpenSSLInitialization(true);
    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, nullptr);
    apache::thrift::GlobalOutput.setOutputFunction(ThriftOutputToLog);
  });
}

// The TLS socket under `transport`, through buffered/framed layers.
TSSLSocket* FindSslSocket(TTransport* transport) {
  for (int depth = 0; transport != nullptr && depth < 8; ++depth) {
    if (auto* ssl = dynamic_cast<TSSLSocket*>(transport)) return ssl;
    if (auto* buffered = dynamic_cast<TBufferedTransport*>(transport)) {
      transport = buffered->getUnderlyingTransport().get();
    } else if (auto* framed = dynamic_cast<TFramedTransport*>(transport)) {
      transport = framed->getUnderlyingTransport().get();
    } else {
      return nullptr;
    }
  }
  return nullptr;
}

// "127.0.0.1:5000" for messages; numeric, so never a DNS lookup.
std::string PeerDescription(TSSLSocket& socket) {
  try {
    if (socket.server()) {
      return socket.getPeerAddress() + ":" + std::to_string(socket.getPeerPort());
    }
    return socket.getHost() + ":" + std::to_string(socket.getPort());
  } catch (const std::exception&) {
    return "(unknown peer)";
  }
}

// After a refused handshake on the server side: OpenSSL has sent its alert,
// but the client's last handshake records (and in TLS 1.3 its first request,
// sent before it learns of the refusal) are still unread. Closing now would
// make the kernel answer with a RST, which can destroy the alert before the
// client reads it: the client would see "connection reset" instead of
// "alert certificate required". So: send FIN after the alert, then read and
// discard until the client closes, for at most kLingerAfterRefusal.
constexpr auto kLingerAfterRefusal = std::chrono::milliseconds(500);
constexpr size_t kMaxDrainBytes = size_t{256} * 1024;

void DrainBeforeClose(int fd) {
  if (fd < 0 || ::shutdown(fd, SHUT_WR) != 0) return;
  const auto deadline = std::chrono::steady_clock::now() + kLingerAfterRefusal;
  size_t drained = 0;
  char buf[4096];
  while (drained < kMaxDrainBytes) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    pollfd pfd{fd, POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      drained += static_cast<size_t>(n);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
      return;  // the client closed, or the connection is gone
    }
  }
}

bool LooksLikeAuthenticationFailure(std::string_view what) {
  // Thrift folds OpenSSL's error queue into the exception text; these are the
  // reasons OpenSSL gives when a certificate or the protocol version was
  // refused, by us ("certificate verify failed", "peer did not return a
  // certificate", "unsupported protocol") or by the peer (received alerts:
  // "tlsv1 alert unknown ca", "tlsv13 alert certificate required",
  // "sslv3 alert certificate expired", "tlsv1 alert protocol version").
  for (std::string_view marker :
       {"certificate", "unknown ca", "protocol version", "unsupported protocol", "authorize:"}) {
    if (what.find(marker) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace

Status TlsOptions::Validate() const {
  if (ca_file.empty()) return Status::InvalidArgument("TLS options: ca_file is empty");
  if (cert_file.empty()) return Status::InvalidArgument("TLS options: cert_file is empty");
  if (key_file.empty()) return Status::InvalidArgument("TLS options: key_file is empty");

  ASSIGN_OR_RETURN(X509Ptr ca, internal::ReadCertificatePem(ca_file, "CA certificate"));
  if (X509_check_ca(ca.get()) < 1) {
    return Status::InvalidArgument("CA certificate " + ca_file + ": not a CA certificate");
  }
  ASSIGN_OR_RETURN(X509Ptr cert, internal::ReadCertificatePem(cert_file, "certificate"));
  ASSIGN_OR_RETURN(EvpPkeyPtr key, internal::ReadPrivateKeyPem(key_file, "private key"));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    internal::DrainOpenSslErrors();
    return Status::InvalidArgument("private key " + key_file + " does not match certificate " +
                                   cert_file);
  }

  // The same check a peer will make: every certificate of ca_file is trusted
  // (a bundle during a CA rotation), nothing else.
  X509StorePtr store(X509_STORE_new());
  X509StoreCtxPtr vctx(X509_STORE_CTX_new());
  if (store == nullptr || vctx == nullptr ||
      X509_STORE_load_file(store.get(), ca_file.c_str()) != 1 ||
      X509_STORE_CTX_init(vctx.get(), store.get(), cert.get(), nullptr) != 1) {
    return OpenSslError(StatusCode::kInvalidArgument, "load CA certificate " + ca_file);
  }
  if (X509_verify_cert(vctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(vctx.get());
    int depth = X509_STORE_CTX_get_error_depth(vctx.get());
    std::string msg = "certificate " + cert_file + " does not verify against the CA " + ca_file +
                      ": " + X509_verify_cert_error_string(err);
    const X509* bad = X509_STORE_CTX_get_current_cert(vctx.get());
    if (bad != nullptr && err == X509_V_ERR_CERT_HAS_EXPIRED) {
      msg += std::string(depth == 0 ? " (certificate" : " (CA") + " expired at " +
             internal::Asn1TimeToString(X509_get0_notAfter(bad)) + ")";
    } else if (bad != nullptr && err == X509_V_ERR_CERT_NOT_YET_VALID) {
      msg += std::string(depth == 0 ? " (certificate" : " (CA") + " valid from " +
             internal::Asn1TimeToString(X509_get0_notBefore(bad)) + ")";
    }
    internal::DrainOpenSslErrors();
    return Status::InvalidArgument(std::move(msg));
  }

  Result<std::string> cn = internal::SubjectCommonName(cert.get());
  if (!cn.ok()) return cn.status().WithContext("certificate " + cert_file);
  Result<Identity> id = ParseIdentity(*cn);
  if (!id.ok()) return id.status().WithContext("certificate " + cert_file);

  struct stat st {};
  if (::stat(key_file.c_str(), &st) == 0 && (st.st_mode & 0077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%03o", static_cast<unsigned>(st.st_mode & 0777));
    LOG_WARN(TlsLog()) << "private key " << key_file << " is readable by group or others (mode "
                       << mode << "); chmod 600 it";
  }
  return Status::Ok();
}

Result<std::shared_ptr<TSSLSocketFactory>> MakeTlsFactory(const TlsOptions& options, TlsRole role) {
  RETURN_IF_ERROR(options.Validate());
  InitializeProcessOnce();
  const char* role_name = role == TlsRole::kServer ? "server" : "client";
  try {
    auto factory = std::make_shared<ClusterTlsSocketFactory>();
    SSL_CTX* ctx = factory->ssl_ctx();
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
      return OpenSslError(StatusCode::kFailedPrecondition, "TLS: cannot restrict to TLS 1.3");
    }
    // Connections are long-lived: no session tickets or cache, so every
    // connection is a full handshake with a freshly verified certificate.
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);

    factory->server(role == TlsRole::kServer);
    // SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE
    factory->authenticate(true);
    factory->loadTrustedCertificates(options.ca_file.c_str());
    factory->loadCertificate(options.cert_file.c_str());
    factory->loadPrivateKey(options.key_file.c_str());
    if (SSL_CTX_check_private_key(ctx) != 1) {
      return OpenSslError(StatusCode::kInvalidArgument, "TLS: private key " + options.key_file +
                                                            " does not match " + options.cert_file);
    }
    if (role == TlsRole::kServer) {
      // Tells clients which CA to pick a certificate for.
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.ca_file.c_str());
      if (names == nullptr) {
        return OpenSslError(StatusCode::kInvalidArgument,
                            "TLS: read CA names from " + options.ca_file);
      }
      SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
    }
    factory->access(std::make_shared<ClusterCaAccessManager>());
    LOG_DEBUG(TlsLog()) << "TLS 1.3 " << role_name << " factory for " << options.cert_file;
    return std::shared_ptr<TSSLSocketFactory>(std::move(factory));
  } catch (const TTransportException& e) {
    internal::DrainOpenSslErrors();
    return Status::InvalidArgument(std::string("TLS ") + role_name + " setup: " + e.what());
  } catch (const std::exception& e) {
    internal::DrainOpenSslErrors();
    return Status::IOError(std::string("TLS ") + role_name + " setup: " + e.what());
  }
}

Result<std::string> PeerIdentity(TTransport* transport) {
  TSSLSocket* socket = FindSslSocket(transport);
  if (socket == nullptr) {
    return Status::InvalidArgument("peer identity: the transport is not a TLS socket");
  }
  const std::string peer = PeerDescription(*socket);
  try {
    SslSocketInternals::Handshake(*socket);
  } catch (const TTransportException& e) {
    Status s = StatusFromTransportException(e, "TLS handshake with " + peer);
    if (socket->server()) DrainBeforeClose(static_cast<int>(socket->getSocketFD()));
    // OpenSSL's error text says only "certificate verify failed"; the reason
    // (expired, unknown CA, ...) is in the verify result of the failed SSL.
    SSL* ssl = SslSocketInternals::Ssl(*socket);
    long verify = ssl == nullptr ? X509_V_OK : SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      return Status::PermissionDenied(
          s.message() + " (peer certificate: " + X509_verify_cert_error_string(verify) + ")");
    }
    return s;
  } catch (const std::exception& e) {
    return Status::Unavailable("TLS handshake with " + peer + ": " + e.what());
  }
  SSL* ssl = SslSocketInternals::Ssl(*socket);
  if (ssl == nullptr) return Status::Unavailable("TLS connection with " + peer + " is not open");
  long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    return Status::PermissionDenied("TLS peer " + peer + ": certificate not verified: " +
                                    X509_verify_cert_error_string(verify));
  }
  const X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) {
    return Status::PermissionDenied("TLS peer " + peer + " presented no certificate");
  }
  Result<std::string> cn = internal::SubjectCommonName(cert);
  if (!cn.ok()) return Status::PermissionDenied("TLS peer " + peer + ": " + cn.status().message());
  Result<Identity> id = ParseIdentity(*cn);
  if (!id.ok()) return Status::PermissionDenied("TLS peer " + peer + ": " + id.status().message());
  return id->ToString();
}

Status StatusFromTransportException(const TTransportException& e, const std::string& context) {
  std::string msg = context + ": " + e.what();
  if (e.getType() == TTransportException::TIMED_OUT) return Status::Timeout(std::move(msg));
  if (dynamic_cast<const TSSLException*>(&e) != nullptr &&
      LooksLikeAuthenticationFailure(e.what())) {
    return Status::PermissionDenied(std::move(msg));
  }
  return Status::Unavailable(std::move(msg));
}

}  // namespace cairn
