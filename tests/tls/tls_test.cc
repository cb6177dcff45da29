// The cluster CA (common/certs.h) and mutual TLS 1.3 over Thrift
// (common/tls.h): real sockets on 127.0.0.1, a server that keeps serving after
// every kind of refused client, and the bad inputs of the certs functions.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <thrift/TProcessor.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/server/TThreadedServer.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSSLServerSocket.h>
#include <thrift/transport/TSSLSocket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/certs.h"
#include "common/tls.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using apache::thrift::TConnectionInfo;
using apache::thrift::TProcessor;
using apache::thrift::TProcessorFactory;
using apache::thrift::protocol::TBinaryProtocol;
using apache::thrift::protocol::TBinaryProtocolFactory;
using apache::thrift::protocol::TProtocol;
using apache::thrift::server::TServerEventHandler;
using apache::thrift::server::TThreadedServer;
using apache::thrift::transport::TBufferedTransport;
using apache::thrift::transport::TBufferedTransportFactory;
using apache::thrift::transport::TSocket;
using apache::thrift::transport::TSSLServerSocket;
using apache::thrift::transport::TSSLSocketFactory;
using apache::thrift::transport::TTransport;
using apache::thrift::transport::TTransportException;

constexpr int kTimeoutMs = 5000;
constexpr uint32_t kBufferBytes = 64 * 1024;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");  // NOLINT(concurrency-mt-unsafe): no setenv here
    std::string templ =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/cairn-tls-test-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    char* made = ::mkdtemp(buf.data());
    if (made != nullptr) path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

mode_t FileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Length-prefixed frames (4 bytes big-endian) for the echo protocol.
std::string Frame(const std::string& payload) {
  uint32_t n = htonl(static_cast<uint32_t>(payload.size()));
  std::string out(reinterpret_cast<const char*>(&n), 4);
  return out + payload;
}

// ---------------------------------------------------------------------------
// Certificates shared by the TLS tests: one cluster CA with a server node,
// users and an admin, an expired user, and a second, foreign CA.

struct Pki {
  TempDir dir;
  std::string ca_dir, certs_dir, other_ca_dir, other_certs_dir;

  TlsOptions Options(const std::string& name) const {
    return {ca_dir + "/ca.crt", certs_dir + "/" + name + ".crt", certs_dir + "/" + name + ".key"};
  }
  TlsOptions OtherOptions(const std::string& name) const {
    return {other_ca_dir + "/ca.crt", other_certs_dir + "/" + name + ".crt",
            other_certs_dir + "/" + name + ".key"};
  }
};

Pki* g_pki = nullptr;

class TlsEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    g_pki = new Pki;
    Pki& p = *g_pki;
    ASSERT_FALSE(p.dir.path().empty()) << "mkdtemp failed";
    p.ca_dir = p.dir.path() + "/ca";
    p.certs_dir = p.dir.path() + "/certs";
    p.other_ca_dir = p.dir.path() + "/other-ca";
    p.other_certs_dir = p.dir.path() + "/other-certs";
    ASSERT_TRUE(CreateClusterCa(p.ca_dir, "test", 30).ok());
    ASSERT_TRUE(CreateClusterCa(p.other_ca_dir, "other", 30).ok());
    auto issue = [](const std::string& ca, const std::string& out, const std::string& name,
                    Role role, int days, int64_t backdate) {
      CertRequest req;
      req.name = name;
      req.role = role;
      req.valid_days = days;
      req.backdate_seconds = backdate;
      Status s = IssueCertificate(ca, req, out);
      EXPECT_TRUE(s.ok()) << name << ": " << s.ToString();
    };
    issue(p.ca_dir, p.certs_dir, "server1", Role::kNode, 10, 0);
    issue(p.ca_dir, p.certs_dir, "node2", Role::kNode, 10, 0);
    issue(p.ca_dir, p.certs_dir, "alice", Role::kUser, 10, 0);
    issue(p.ca_dir, p.certs_dir, "root", Role::kAdmin, 10, 0);
    {
      CertRequest far;  // a node whose certificate names another host only
      far.name = "far";
      far.dns_names = {"far.example.org"};
      far.valid_days = 10;
      Status s = IssueCertificate(p.ca_dir, far, p.certs_dir);
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    issue(p.ca_dir, p.certs_dir, "expired", Role::kUser, 1, int64_t{2} * 86400);
    issue(p.other_ca_dir, p.other_certs_dir, "mallory", Role::kUser, 10, 0);
    issue(p.other_ca_dir, p.other_certs_dir, "server1", Role::kNode, 10, 0);
  }
  // Runs after all tests, passed or failed: the directory goes away.
  void TearDown() override {
    delete g_pki;
    g_pki = nullptr;
  }
};

[[maybe_unused]] const ::testing::Environment* const kTlsEnvironment =
    ::testing::AddGlobalTestEnvironment(new TlsEnvironment);

// ---------------------------------------------------------------------------
// An echo server on 127.0.0.1:<ephemeral>, one connection at a time: it
// completes the handshake through PeerIdentity (over a TBufferedTransport),
// reads one frame and answers "<peer identity>|<payload>". Every accepted
// connection leaves an Outcome, so a test can check what the server saw.

struct Outcome {
  Status status;         // OK, or why the connection was refused or failed
  std::string identity;  // the peer as the server saw it
  std::string payload;
};

class EchoServer {
 public:
  explicit EchoServer(std::shared_ptr<TSSLSocketFactory> factory)
      : factory_(std::move(factory)),
        socket_(std::make_shared<TSSLServerSocket>("127.0.0.1", 0, factory_)) {
    socket_->setRecvTimeout(kTimeoutMs);
    socket_->setSendTimeout(kTimeoutMs);
    socket_->listen();
    port_ = socket_->getPort();
    thread_ = std::thread([this] { Loop(); });
  }
  ~EchoServer() {
    socket_->interrupt();
    thread_.join();
    socket_->close();
  }
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;

  int port() const { return port_; }

  // The outcome of the n-th accepted connection (from 0), waiting for it.
  std::optional<Outcome> WaitForOutcome(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::milliseconds(2 * kTimeoutMs),
                      [&] { return outcomes_.size() > n; })) {
      return std::nullopt;
    }
    return outcomes_[n];
  }

 private:
  void Loop() {
    for (;;) {
      std::shared_ptr<TTransport> client;
      try {
        client = socket_->accept();
      } catch (const TTransportException& e) {
        if (e.getType() == TTransportException::INTERRUPTED) return;
        continue;
      }
      Outcome outcome = Serve(client);
      try {
        client->close();
      } catch (const TTransportException&) {
      }
      std::lock_guard<std::mutex> lock(mu_);
      outcomes_.push_back(std::move(outcome));
      cv_.notify_all();
    }
  }

  static Outcome Serve(const std::shared_ptr<TTransport>& client) {
    Outcome out;
    auto transport = std::make_shared<TBufferedTransport>(client, kBufferBytes, kBufferBytes);
    Result<std::string> id = PeerIdentity(transport.get());
    if (!id.ok()) {
      out.status = id.status();
      return out;
    }
    out.identity = *id;
    try {
      uint8_t len_buf[4];
      transport->readAll(len_buf, 4);
      uint32_t len;
      std::memcpy(&len, len_buf, 4);
      len = ntohl(len);
      if (len > 16 * 1024 * 1024) {
        out.status = Status::InvalidArgument("frame too large");
        return out;
      }
      out.payload.resize(len);
      transport->readAll(reinterpret_cast<uint8_t*>(out.payload.data()), len);
      std::string reply = Frame(out.identity + "|" + out.payload);
      transport->write(reinterpret_cast<const uint8_t*>(reply.data()),
                       static_cast<uint32_t>(reply.size()));
      transport->flush();
    } catch (const TTransportException& e) {
      out.status = StatusFromTransportException(e, "echo server");
    }
    return out;
  }

  std::shared_ptr<TSSLSocketFactory> factory_;
  std::shared_ptr<TSSLServerSocket> socket_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Outcome> outcomes_;  // guarded by mu_
};

// A Cairn client: factory socket, 64 KiB TBufferedTransport, one frame.
// Returns the reply; `server_identity` gets the server as the client saw it.
Result<std::string> CairnEcho(const std::shared_ptr<TSSLSocketFactory>& factory, int port,
                              const std::string& payload, std::string* server_identity) {
  auto socket = factory->createSocket("127.0.0.1", port);
  socket->setConnTimeout(kTimeoutMs);
  socket->setRecvTimeout(kTimeoutMs);
  socket->setSendTimeout(kTimeoutMs);
  auto transport = std::make_shared<TBufferedTransport>(socket, kBufferBytes, kBufferBytes);
  try {
    transport->open();
    Result<std::string> id = PeerIdentity(transport.get());
    if (!id.ok()) return id.status();
    if (server_identity != nullptr) *server_identity = *id;
    std::string frame = Frame(payload);
    transport->write(reinterpret_cast<const uint8_t*>(frame.data()),
                     static_cast<uint32_t>(frame.size()));
    transport->flush();
    uint8_t len_buf[4];
    transport->readAll(len_buf, 4);
    uint32_t len;
    std::memcpy(&len, len_buf, 4);
    std::string reply(ntohl(len), '\0');
    transport->readAll(reinterpret_cast<uint8_t*>(reply.data()),
                       static_cast<uint32_t>(reply.size()));
    transport->close();
    return reply;
  } catch (const TTransportException& e) {
    return StatusFromTransportException(e, "echo client");
  }
}

// A client written with raw OpenSSL, to be what Cairn's factory would never
// be: no certificate, a foreign or expired one, TLS 1.2 at most.
struct RawClientConfig {
  std::string ca_file;
  std::string cert_file;  // empty: present no certificate
  std::string key_file;
  int max_version = 0;  // 0: the library's maximum
};

struct RawResult {
  bool connected = false;  // TLS handshake completed on the client side
  int version = 0;         // negotiated protocol version
  std::string error;       // first failure, "" if none
  std::string reply;
};

std::string SslErrors() {
  std::string out;
  while (unsigned long err = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(err);
    if (!out.empty()) out += "; ";
    out += reason != nullptr ? reason : "(unknown)";
  }
  return out;
}

int ConnectTcp(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{kTimeoutMs / 1000, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

RawResult RawTlsEcho(int port, const RawClientConfig& config, const std::string& payload) {
  RawResult result;
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    result.error = "SSL_CTX_new";
    return result;
  }
  if (config.max_version != 0) SSL_CTX_set_max_proto_version(ctx, config.max_version);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx, config.ca_file.c_str(), nullptr) != 1 ||
      (!config.cert_file.empty() &&
       (SSL_CTX_use_certificate_file(ctx, config.cert_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, config.key_file.c_str(), SSL_FILETYPE_PEM) != 1))) {
    result.error = "setup: " + SslErrors();
    SSL_CTX_free(ctx);
    return result;
  }
  int fd = ConnectTcp(port);
  SSL* ssl = fd < 0 ? nullptr : SSL_new(ctx);
  if (ssl == nullptr) {
    result.error = "connect failed";
  } else {
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) {
      result.error = "handshake: " + SslErrors();
    } else {
      result.connected = true;
      result.version = SSL_version(ssl);
      std::string frame = Frame(payload);
      // In TLS 1.3 the client finishes its handshake before the server has
      // judged the client certificate: a refusal arrives at the first read.
      if (SSL_write(ssl, frame.data(), static_cast<int>(frame.size())) <= 0) {
        result.error = "write: " + SslErrors();
      } else {
        std::string got;
        char buf[4096];
        for (;;) {
          int n = SSL_read(ssl, buf, sizeof(buf));
          if (n <= 0) {
            std::string errors = SslErrors();
            if (got.size() < 4 || errors.size() > 0) result.error = "read: " + errors;
            break;
          }
          got.append(buf, static_cast<size_t>(n));
          if (got.size() >= 4) {
            uint32_t len;
            std::memcpy(&len, got.data(), 4);
            if (got.size() >= 4 + size_t{ntohl(len)}) {
              result.reply = got.substr(4, ntohl(len));
              break;
            }
          }
        }
      }
    }
    SSL_free(ssl);
  }
  if (fd >= 0) ::close(fd);
  SSL_CTX_free(ctx);
  return result;
}

std::shared_ptr<TSSLSocketFactory> Factory(const TlsOptions& options, TlsRole role) {
  Result<std::shared_ptr<TSSLSocketFactory>> f = MakeTlsFactory(options, role);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? *f : nullptr;
}

// After a refused client, the server must still serve a good one.
void ExpectServesGoodClient(EchoServer& server, size_t outcome_index) {
  auto client = Factory(g_pki->Options("alice"), TlsRole::kClient);
  ASSERT_NE(client, nullptr);
  std::string server_id;
  Result<std::string> reply = CairnEcho(client, server.port(), "still here", &server_id);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(*reply, "user:alice|still here");
  EXPECT_EQ(server_id, "node:server1");
  std::optional<Outcome> o = server.WaitForOutcome(outcome_index);
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(o->status.ok()) << o->status.ToString();
  EXPECT_EQ(o->identity, "user:alice");
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(g_pki, nullptr);
    server_factory_ = Factory(g_pki->Options("server1"), TlsRole::kServer);
    ASSERT_NE(server_factory_, nullptr);
    server_ = std::make_unique<EchoServer>(server_factory_);
  }
  void TearDown() override { server_.reset(); }

  RawClientConfig Raw(const std::string& name) const {
    return {g_pki->ca_dir + "/ca.crt", g_pki->certs_dir + "/" + name + ".crt",
            g_pki->certs_dir + "/" + name + ".key", 0};
  }

  std::shared_ptr<TSSLSocketFactory> server_factory_;
  std::unique_ptr<EchoServer> server_;
};

// ---------------------------------------------------------------------------
// Mutual TLS that works.

TEST_F(TlsTest, BytesRoundTripAndBothSidesSeeThePeerIdentity) {
  size_t n = 0;
  for (const std::string name : {"alice", "root", "node2"}) {
    auto client = Factory(g_pki->Options(name), TlsRole::kClient);
    ASSERT_NE(client, nullptr);
    std::string server_id;
    Result<std::string> reply = CairnEcho(client, server_->port(), "hello " + name, &server_id);
    ASSERT_TRUE(reply.ok()) << name << ": " << reply.status().ToString();
    Result<std::string> expected_id =
        IdentityFromCertificateFile(g_pki->certs_dir + "/" + name + ".crt");
    ASSERT_TRUE(expected_id.ok());
    EXPECT_EQ(*reply, *expected_id + "|hello " + name);
    EXPECT_EQ(server_id, "node:server1");
    std::optional<Outcome> o = server_->WaitForOutcome(n++);
    ASSERT_TRUE(o.has_value());
    EXPECT_TRUE(o->status.ok()) << o->status.ToString();
    EXPECT_EQ(o->identity, *expected_id);
  }
  EXPECT_EQ(*IdentityFromCertificateFile(g_pki->certs_dir + "/root.crt"), "admin:root");

  // Bigger than a TLS record and the 64 KiB buffer.
  auto client = Factory(g_pki->Options("alice"), TlsRole::kClient);
  std::string big(size_t{300} * 1024, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 % 251);
  Result<std::string> reply = CairnEcho(client, server_->port(), big, nullptr);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_TRUE(*reply == "user:alice|" + big);
}

TEST_F(TlsTest, NegotiatesTls13) {
  RawResult r = RawTlsEcho(server_->port(), Raw("alice"), "v");
  EXPECT_TRUE(r.connected) << r.error;
  EXPECT_EQ(r.version, TLS1_3_VERSION);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.reply, "user:alice|v");
}

TEST_F(TlsTest, PeerIdentityOfAPlainTransportIsAnError) {
  auto plain = std::make_shared<TSocket>("127.0.0.1", server_->port());
  Result<std::string> id = PeerIdentity(plain.get());
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(PeerIdentity(nullptr).ok());
}

TEST_F(TlsTest, HostNamesAreNotChecked) {
  // Identity is the common name: a server certificate for far.example.org is
  // fine on 127.0.0.1, and so is a user certificate without any SAN.
  for (const std::string name : {"far", "root"}) {
    auto factory = Factory(g_pki->Options(name), TlsRole::kServer);
    ASSERT_NE(factory, nullptr);
    EchoServer server(factory);
    auto client = Factory(g_pki->Options("alice"), TlsRole::kClient);
    std::string server_id;
    Result<std::string> reply = CairnEcho(client, server.port(), "x", &server_id);
    ASSERT_TRUE(reply.ok()) << name << ": " << reply.status().ToString();
    EXPECT_EQ(*reply, "user:alice|x");
    EXPECT_EQ(server_id, *IdentityFromCertificateFile(g_pki->certs_dir + "/" + name + ".crt"));
  }
}

// ---------------------------------------------------------------------------
// Refused clients; the server goes on serving.

TEST_F(TlsTest, ClientWithoutCertificateIsRefused) {
  RawClientConfig config = Raw("alice");
  config.cert_file.clear();
  config.key_file.clear();
  RawResult r = RawTlsEcho(server_->port(), config, "no cert");
  EXPECT_EQ(r.reply, "");
  EXPECT_TRUE(Contains(r.error, "certificate required")) << r.error;

  std::optional<Outcome> o = server_->WaitForOutcome(0);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->status.code(), StatusCode::kPermissionDenied) << o->status.ToString();
  EXPECT_TRUE(Contains(o->status.message(), "peer did not return a certificate"))
      << o->status.ToString();
  ExpectServesGoodClient(*server_, 1);
}

TEST_F(TlsTest, ClientCertificateFromAnotherCaIsRefused) {
  RawClientConfig config = Raw("alice");
  config.cert_file = g_pki->other_certs_dir + "/mallory.crt";
  config.key_file = g_pki->other_certs_dir + "/mallory.key";
  RawResult r = RawTlsEcho(server_->port(), config, "foreign");
  EXPECT_EQ(r.reply, "");
  EXPECT_TRUE(Contains(r.error, "unknown ca")) << r.error;

  std::optional<Outcome> o = server_->WaitForOutcome(0);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->status.code(), StatusCode::kPermissionDenied) << o->status.ToString();
  EXPECT_TRUE(Contains(o->status.message(), "certificate verify failed")) << o->status.ToString();
  EXPECT_TRUE(Contains(o->status.message(), "unable to get local issuer certificate"))
      << o->status.ToString();
  ExpectServesGoodClient(*server_, 1);

  // A Cairn client that trusts both CAs (a bundle, as during a CA rotation)
  // passes its own checks, and is refused by the server with a clear error.
  const std::string bundle = g_pki->dir.path() + "/bundle.crt";
  {
    std::ifstream a(g_pki->ca_dir + "/ca.crt"), b(g_pki->other_ca_dir + "/ca.crt");
    std::ofstream out(bundle);
    out << a.rdbuf() << b.rdbuf();
  }
  TlsOptions rotating{bundle, config.cert_file, config.key_file};
  ASSERT_TRUE(rotating.Validate().ok()) << rotating.Validate().ToString();
  auto mallory = Factory(rotating, TlsRole::kClient);
  ASSERT_NE(mallory, nullptr);
  std::string server_id;
  Result<std::string> reply = CairnEcho(mallory, server_->port(), "let me in", &server_id);
  EXPECT_EQ(server_id, "node:server1") << "the client accepted the server";
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kPermissionDenied) << reply.status().ToString();
  EXPECT_TRUE(Contains(reply.status().message(), "alert unknown ca")) << reply.status().ToString();
  o = server_->WaitForOutcome(2);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->status.code(), StatusCode::kPermissionDenied) << o->status.ToString();
  ExpectServesGoodClient(*server_, 3);

  // Cairn's own factory refuses such a configuration before any connection.
  TlsOptions mixed = g_pki->Options("alice");
  mixed.cert_file = config.cert_file;
  mixed.key_file = config.key_file;
  Result<std::shared_ptr<TSSLSocketFactory>> f = MakeTlsFactory(mixed, TlsRole::kClient);
  ASSERT_FALSE(f.ok());
  EXPECT_TRUE(Contains(f.status().message(), "does not verify against the CA"))
      << f.status().ToString();
}

TEST_F(TlsTest, ExpiredClientCertificateIsRefused) {
  RawResult r = RawTlsEcho(server_->port(), Raw("expired"), "late");
  EXPECT_EQ(r.reply, "");
  EXPECT_TRUE(Contains(r.error, "certificate expired")) << r.error;

  std::optional<Outcome> o = server_->WaitForOutcome(0);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->status.code(), StatusCode::kPermissionDenied) << o->status.ToString();
  EXPECT_TRUE(Contains(o->status.message(), "certificate has expired")) << o->status.ToString();
  ExpectServesGoodClient(*server_, 1);

  Status s = g_pki->Options("expired").Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "certificate has expired")) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "expired at")) << s.ToString();
}

TEST_F(TlsTest, GarbageBytesAreRefused) {
  auto junk = std::make_shared<TSocket>("127.0.0.1", server_->port());
  junk->setRecvTimeout(kTimeoutMs);
  junk->open();
  std::string bytes = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int i = 0; i < 600; ++i) bytes += static_cast<char>(i * 37 % 256);
  junk->write(reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<uint32_t>(bytes.size()));
  junk->flush();
  // The server drops the connection (after at most an alert record).
  std::string got;
  try {
    uint8_t buf[1024];
    while (uint32_t n = junk->read(buf, sizeof(buf))) got.append(reinterpret_cast<char*>(buf), n);
  } catch (const TTransportException&) {
    // reset by the server: also a refusal
  }
  EXPECT_LT(got.size(), 64u) << "the server answered garbage with more than an alert";
  junk->close();

  std::optional<Outcome> o = server_->WaitForOutcome(0);
  ASSERT_TRUE(o.has_value());
  EXPECT_FALSE(o->status.ok());
  EXPECT_TRUE(Contains(o->status.message(), "SSL_accept")) << o->status.ToString();
  ExpectServesGoodClient(*server_, 1);
}

TEST_F(TlsTest, Tls12OnlyClientIsRefused) {
  RawClientConfig config = Raw("alice");
  config.max_version = TLS1_2_VERSION;
  RawResult r = RawTlsEcho(server_->port(), config, "old");
  EXPECT_FALSE(r.connected);
  EXPECT_TRUE(Contains(r.error, "protocol version")) << r.error;

  std::optional<Outcome> o = server_->WaitForOutcome(0);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->status.code(), StatusCode::kPermissionDenied) << o->status.ToString();
  EXPECT_TRUE(Contains(o->status.message(), "unsupported protocol")) << o->status.ToString();
  ExpectServesGoodClient(*server_, 1);
}

TEST_F(TlsTest, ClientRefusesTls12OnlyServer) {
  // A raw OpenSSL server with the right certificate but TLS 1.2 at most.
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  ASSERT_NE(ctx, nullptr);
  SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
  TlsOptions o = g_pki->Options("server1");
  ASSERT_EQ(SSL_CTX_use_certificate_file(ctx, o.cert_file.c_str(), SSL_FILETYPE_PEM), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM), 1);
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string server_error;
  std::thread raw_server([&] {
    int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    timeval tv{kTimeoutMs / 1000, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) server_error = SslErrors();
    SSL_free(ssl);
    ::close(fd);
  });

  auto client = Factory(g_pki->Options("alice"), TlsRole::kClient);
  Result<std::string> reply = CairnEcho(client, ntohs(addr.sin_port), "x", nullptr);
  raw_server.join();
  ::close(listener);
  SSL_CTX_free(ctx);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kPermissionDenied) << reply.status().ToString();
  // The client offers only 1.3; the server, which picks, finds nothing to
  // agree on and says so with a protocol_version alert.
  EXPECT_TRUE(Contains(reply.status().message(), "alert protocol version"))
      << reply.status().ToString();
  EXPECT_TRUE(Contains(server_error, "unsupported protocol")) << server_error;
}

TEST_F(TlsTest, ClientRefusesServerOfAnotherCluster) {
  // A server with the other cluster's CA and node certificate.
  auto foreign_factory = Factory(g_pki->OtherOptions("server1"), TlsRole::kServer);
  ASSERT_NE(foreign_factory, nullptr);
  EchoServer foreign(foreign_factory);
  auto client = Factory(g_pki->Options("alice"), TlsRole::kClient);
  Result<std::string> reply = CairnEcho(client, foreign.port(), "hi", nullptr);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kPermissionDenied) << reply.status().ToString();
  EXPECT_TRUE(Contains(reply.status().message(), "certificate verify failed"))
      << reply.status().ToString();
  std::optional<Outcome> o = foreign.WaitForOutcome(0);
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(Contains(o->status.message(), "unknown ca")) << o->status.ToString();
}

// ---------------------------------------------------------------------------
// The pattern servers use: TThreadedServer, identity from createContext and
// from the per-connection transport of TConnectionInfo.

class IdentityEventHandler : public TServerEventHandler {
 public:
  void preServe() override { listening_.set_value(); }
  void* createContext(std::shared_ptr<TProtocol> input, std::shared_ptr<TProtocol>) override {
    auto* id = new Result<std::string>(PeerIdentity(input->getTransport().get()));
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back(id->ok() ? **id : id->status().ToString());
    return id;
  }
  void deleteContext(void* ctx, std::shared_ptr<TProtocol>, std::shared_ptr<TProtocol>) override {
    delete static_cast<Result<std::string>*>(ctx);
  }
  std::future<void> Listening() { return listening_.get_future(); }
  std::vector<std::string> Seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  std::promise<void> listening_;
  std::mutex mu_;
  std::vector<std::string> seen_;  // guarded by mu_
};

// Reads a string, answers "<context identity>/<transport identity>|<string>".
class IdentityEchoProcessor : public TProcessor {
 public:
  explicit IdentityEchoProcessor(std::shared_ptr<TTransport> connection)
      : connection_(std::move(connection)) {}
  bool process(std::shared_ptr<TProtocol> in, std::shared_ptr<TProtocol> out,
               void* context) override {
    std::string request;
    in->readString(request);
    // Resolved lazily, in this connection's thread, after the handshake.
    if (identity_.empty()) {
      Result<std::string> id = PeerIdentity(connection_.get());
      identity_ = id.ok() ? *id : id.status().ToString();
    }
    auto* ctx = static_cast<Result<std::string>*>(context);
    std::string from_context = ctx != nullptr && ctx->ok() ? **ctx : "?";
    out->writeString(from_context + "/" + identity_ + "|" + request);
    out->getTransport()->flush();
    return true;
  }

 private:
  std::shared_ptr<TTransport> connection_;
  std::string identity_;
};

class IdentityEchoProcessorFactory : public TProcessorFactory {
 public:
  std::shared_ptr<TProcessor> getProcessor(const TConnectionInfo& info) override {
    // Accept thread: keep the transport, no I/O here.
    return std::make_shared<IdentityEchoProcessor>(info.transport);
  }
};

TEST_F(TlsTest, ThreadedServerHandlersSeeThePeerIdentity) {
  auto socket = std::make_shared<TSSLServerSocket>("127.0.0.1", 0, server_factory_);
  socket->setRecvTimeout(kTimeoutMs);
  auto handler = std::make_shared<IdentityEventHandler>();
  auto server = std::make_shared<TThreadedServer>(
      std::make_shared<IdentityEchoProcessorFactory>(), socket,
      std::make_shared<TBufferedTransportFactory>(), std::make_shared<TBinaryProtocolFactory>());
  server->setServerEventHandler(handler);
  std::future<void> listening = handler->Listening();
  std::thread serving([&] { server->serve(); });
  ASSERT_EQ(listening.wait_for(std::chrono::seconds(5)), std::future_status::ready);

  auto call = [&](const std::string& name, const std::string& text) -> std::string {
    auto client_factory = Factory(g_pki->Options(name), TlsRole::kClient);
    auto s = client_factory->createSocket("127.0.0.1", socket->getPort());
    s->setRecvTimeout(kTimeoutMs);
    auto transport = std::make_shared<TBufferedTransport>(s, kBufferBytes, kBufferBytes);
    TBinaryProtocol protocol(transport);
    std::string answer;
    try {
      transport->open();
      protocol.writeString(text);
      transport->flush();
      protocol.readString(answer);
      transport->close();
    } catch (const TTransportException& e) {
      return StatusFromTransportException(e, "call").ToString();
    }
    return answer;
  };
  EXPECT_EQ(call("alice", "one"), "user:alice/user:alice|one");
  EXPECT_EQ(call("root", "two"), "admin:root/admin:root|two");

  // A client without a certificate: createContext sees the refusal, and the
  // server goes on.
  RawClientConfig config = Raw("alice");
  config.cert_file.clear();
  config.key_file.clear();
  RawResult r = RawTlsEcho(socket->getPort(), config, "x");
  EXPECT_TRUE(Contains(r.error, "certificate required")) << r.error;
  EXPECT_EQ(call("node2", "three"), "node:node2/node:node2|three");

  server->stop();
  serving.join();
  std::vector<std::string> seen = handler->Seen();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0], "user:alice");
  EXPECT_EQ(seen[1], "admin:root");
  EXPECT_TRUE(Contains(seen[2], "PermissionDenied")) << seen[2];
  EXPECT_EQ(seen[3], "node:node2");
}

// ---------------------------------------------------------------------------
// TlsOptions::Validate and MakeTlsFactory with bad files.

TEST(TlsOptionsTest, ValidOptionsPass) {
  EXPECT_TRUE(g_pki->Options("alice").Validate().ok());
  EXPECT_TRUE(g_pki->Options("server1").Validate().ok());
}

TEST(TlsOptionsTest, BadFilesHaveClearErrors) {
  TempDir dir;
  const std::string garbage = dir.path() + "/garbage.pem";
  WriteText(garbage, "not a pem file\n");

  TlsOptions o = g_pki->Options("alice");
  o.ca_file.clear();
  Status s = o.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "ca_file is empty")) << s.ToString();

  o = g_pki->Options("alice");
  o.cert_file = dir.path() + "/missing.crt";
  s = o.Validate();
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "missing.crt")) << s.ToString();

  o = g_pki->Options("alice");
  o.key_file = garbage;
  s = o.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "not an unencrypted PEM private key")) << s.ToString();

  o = g_pki->Options("alice");
  o.ca_file = garbage;
  s = o.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "not a PEM certificate")) << s.ToString();

  o = g_pki->Options("alice");
  o.ca_file = g_pki->certs_dir + "/root.crt";  // a leaf is not a CA
  s = o.Validate();
  EXPECT_TRUE(Contains(s.message(), "not a CA certificate")) << s.ToString();

  o = g_pki->Options("alice");
  o.key_file = g_pki->certs_dir + "/root.key";
  s = o.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "does not match")) << s.ToString();

  if (::geteuid() != 0) {  // root reads anything
    o = g_pki->Options("alice");
    o.key_file = dir.path() + "/unreadable.key";
    WriteText(o.key_file, "x");
    ::chmod(o.key_file.c_str(), 0);
    s = o.Validate();
    EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s.ToString();
  }

  Result<std::shared_ptr<TSSLSocketFactory>> f = MakeTlsFactory(o, TlsRole::kServer);
  EXPECT_FALSE(f.ok());
}

// ---------------------------------------------------------------------------
// The CA and certificates themselves.

using X509Holder = std::unique_ptr<X509, decltype(&X509_free)>;

X509Holder ReadCert(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  X509* cert = f != nullptr ? PEM_read_X509(f, nullptr, nullptr, nullptr) : nullptr;
  if (f != nullptr) std::fclose(f);
  return X509Holder(cert, X509_free);
}

std::string SerialHex(X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr);
  char* hex = BN_bn2hex(bn);
  std::string out = hex;
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

TEST(CertsTest, CaAndIssuedCertificatesHaveTheRightShape) {
  TempDir dir;
  const std::string ca = dir.path() + "/ca";
  ASSERT_TRUE(CreateClusterCa(ca, "prod", 3650).ok());
  EXPECT_EQ(FileMode(ca), 0700u);
  EXPECT_EQ(FileMode(ca + "/ca.crt"), 0644u);
  EXPECT_EQ(FileMode(ca + "/ca.key"), 0600u);
  X509Holder ca_cert = ReadCert(ca + "/ca.crt");
  ASSERT_NE(ca_cert, nullptr);
  EXPECT_EQ(X509_check_ca(ca_cert.get()), 1);
  EXPECT_TRUE(X509_get_extension_flags(ca_cert.get()) & EXFLAG_CA);
  EXPECT_TRUE(X509_get_key_usage(ca_cert.get()) & KU_KEY_CERT_SIGN);
  EXPECT_TRUE(X509_get_key_usage(ca_cert.get()) & KU_CRL_SIGN);
  EXPECT_EQ(X509_get_extension_flags(ca_cert.get()) & EXFLAG_CRITICAL, 0u)
      << "no unknown critical extension";
  int crit = -1;
  auto* bc = static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(ca_cert.get(), NID_basic_constraints, &crit, nullptr));
  ASSERT_NE(bc, nullptr);
  EXPECT_NE(bc->ca, 0);
  BASIC_CONSTRAINTS_free(bc);
  EXPECT_EQ(crit, 1);
  // The IdentityFromCertificateFile of the CA: not a Cairn identity.
  EXPECT_EQ(IdentityFromCertificateFile(ca + "/ca.crt").status().code(),
            StatusCode::kInvalidArgument);

  // Never overwritten.
  Status again = CreateClusterCa(ca, "prod", 3650);
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists) << again.ToString();

  const std::string out = dir.path() + "/out";
  CertRequest node;
  node.name = "cs-1.rack_2";
  ASSERT_TRUE(IssueCertificate(ca, node, out).ok());
  EXPECT_EQ(FileMode(out + "/cs-1.rack_2.key"), 0600u);
  EXPECT_EQ(FileMode(out + "/cs-1.rack_2.crt"), 0644u);
  EXPECT_FALSE(fs::exists(out + "/cs-1.rack_2.key.tmp"));
  EXPECT_EQ(*IdentityFromCertificateFile(out + "/cs-1.rack_2.crt"), "node:cs-1.rack_2");
  X509Holder cert = ReadCert(out + "/cs-1.rack_2.crt");
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_SERVER, 0), 1);
  EXPECT_EQ(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_CLIENT, 0), 1);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_EQ(X509_check_issued(ca_cert.get(), cert.get()), X509_V_OK);
  EXPECT_EQ(SerialHex(cert.get()).size(), 32u) << "a 128-bit serial";
  EVP_PKEY* pub = X509_get0_pubkey(cert.get());
  ASSERT_NE(pub, nullptr);
  EXPECT_TRUE(EVP_PKEY_is_a(pub, "EC"));
  char group[64] = {};
  size_t group_len = 0;
  EVP_PKEY_get_group_name(pub, group, sizeof(group), &group_len);
  EXPECT_STREQ(group, "prime256v1");

  CertRequest user;
  user.name = "bob";
  user.role = Role::kUser;
  user.ip_addresses = {"10.0.0.7", "::1"};
  user.dns_names = {"bob.example.org"};
  ASSERT_TRUE(IssueCertificate(ca, user, out).ok());
  X509Holder bob = ReadCert(out + "/bob.crt");
  ASSERT_NE(bob, nullptr);
  EXPECT_EQ(X509_check_ip_asc(bob.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(bob.get(), "127.0.0.1", 0), 0);
  EXPECT_EQ(X509_check_host(bob.get(), "bob.example.org", 0, 0, nullptr), 1);
  EXPECT_NE(SerialHex(bob.get()), SerialHex(cert.get()));

  CertRequest admin;
  admin.name = "ops";
  admin.role = Role::kAdmin;
  ASSERT_TRUE(IssueCertificate(ca, admin, out).ok());
  EXPECT_EQ(*IdentityFromCertificateFile(out + "/ops.crt"), "admin:ops");
  X509Holder ops = ReadCert(out + "/ops.crt");
  EXPECT_LT(X509_get_ext_by_NID(ops.get(), NID_subject_alt_name, -1), 0)
      << "users and admins get no default SAN";

  // Never overwritten, and the existing files are untouched.
  Status dup = IssueCertificate(ca, admin, out);
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists) << dup.ToString();
  EXPECT_EQ(*IdentityFromCertificateFile(out + "/ops.crt"), "admin:ops");
}

TEST(CertsTest, BadInputsHaveClearErrors) {
  TempDir dir;
  const std::string ca = dir.path() + "/ca";
  const std::string out = dir.path() + "/out";

  EXPECT_EQ(CreateClusterCa(ca, "", 10).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateClusterCa(ca, "a b", 10).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateClusterCa(ca, "x", 0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateClusterCa(ca, "x", -5).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateClusterCa(ca, "x", kMaxValidDays + 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateClusterCa(dir.path() + "/no/such/parent", "x", 10).code(), StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(ca)) << "nothing is created for a refused request";

  // No CA yet.
  CertRequest req;
  req.name = "n1";
  req.valid_days = 5;
  Status s = IssueCertificate(ca, req, out);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "ca.crt")) << s.ToString();

  ASSERT_TRUE(CreateClusterCa(ca, "test", 10).ok());

  struct Case {
    std::string name;
    std::string expect;
  };
  for (const Case& c : std::vector<Case>{
           {"", "must be 1 to 58 bytes"},
           {std::string(59, 'a'), "must be 1 to 58 bytes"},
           {"a/b", "byte 0x2f at offset 1"},
           {"a:b", "byte 0x3a at offset 1"},
           {"caf\xc3\xa9", "byte 0xc3 at offset 3"},
           {std::string("a\0b", 3), "byte 0x00 at offset 1"},
           {".hidden", "must not start with '.' or '-'"},
           {"-rf", "must not start with '.' or '-'"},
       }) {
    req.name = c.name;
    s = IssueCertificate(ca, req, out);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.expect;
    EXPECT_TRUE(Contains(s.message(), c.expect)) << s.ToString();
  }
  req.name = std::string(58, 'a');
  req.role = Role::kAdmin;  // the longest common name: "admin:" + 58 = 64
  s = IssueCertificate(ca, req, out);
  EXPECT_TRUE(s.ok()) << "58 bytes is allowed: " << s.ToString();
  req.role = Role::kNode;

  req.name = "n2";
  req.ip_addresses = {"999.1.1.1"};
  s = IssueCertificate(ca, req, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "not an IPv4 or IPv6 address")) << s.ToString();
  req.ip_addresses = {"127.0.0.1,DNS:evil.com"};
  EXPECT_EQ(IssueCertificate(ca, req, out).code(), StatusCode::kInvalidArgument);
  req.ip_addresses.clear();
  for (const std::string& bad : std::vector<std::string>{
           "", "a..b", "-a.b", "a_b.c", "evil.com,IP:1.2.3.4", std::string(254, 'a')}) {
    req.dns_names = {bad};
    s = IssueCertificate(ca, req, out);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(Contains(s.message(), "dns name")) << s.ToString();
  }
  req.dns_names.clear();

  req.valid_days = 0;
  EXPECT_EQ(IssueCertificate(ca, req, out).code(), StatusCode::kInvalidArgument);
  req.valid_days = -1;
  EXPECT_EQ(IssueCertificate(ca, req, out).code(), StatusCode::kInvalidArgument);
  req.valid_days = 11;  // the CA expires in 10 days
  s = IssueCertificate(ca, req, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "outlive the CA")) << s.ToString();
  req.valid_days = 5;
  req.backdate_seconds = -1;
  EXPECT_EQ(IssueCertificate(ca, req, out).code(), StatusCode::kInvalidArgument);
  req.backdate_seconds = 0;
  req.role = static_cast<Role>(7);
  EXPECT_EQ(IssueCertificate(ca, req, out).code(), StatusCode::kInvalidArgument);
  req.role = Role::kNode;
  EXPECT_FALSE(fs::exists(out + "/n2.crt"));

  // A CA key that does not belong to the CA certificate.
  const std::string other = dir.path() + "/other";
  ASSERT_TRUE(CreateClusterCa(other, "other", 10).ok());
  const std::string mixed = dir.path() + "/mixed";
  fs::create_directory(mixed);
  fs::copy_file(ca + "/ca.crt", mixed + "/ca.crt");
  fs::copy_file(other + "/ca.key", mixed + "/ca.key");
  s = IssueCertificate(mixed, req, out);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "does not match")) << s.ToString();

  // A lone ca.key (interrupted creation) blocks a new CA.
  const std::string half = dir.path() + "/half";
  fs::create_directory(half);
  fs::copy_file(other + "/ca.key", half + "/ca.key");
  s = CreateClusterCa(half, "x", 10);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "ca.key")) << s.ToString();

  // IdentityFromCertificateFile.
  EXPECT_EQ(IdentityFromCertificateFile(dir.path() + "/none.crt").status().code(),
            StatusCode::kNotFound);
  WriteText(dir.path() + "/junk.crt",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  Result<std::string> id = IdentityFromCertificateFile(dir.path() + "/junk.crt");
  EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(id.status().message(), "not a PEM certificate")) << id.status().ToString();
  EXPECT_EQ(IdentityFromCertificateFile(ca + "/ca.key").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(CertsTest, ParseIdentity) {
  Result<Identity> id = ParseIdentity("user:alice");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->role, Role::kUser);
  EXPECT_EQ(id->name, "alice");
  EXPECT_EQ(id->ToString(), "user:alice");
  EXPECT_EQ(ParseIdentity("admin:z")->role, Role::kAdmin);
  EXPECT_EQ(ParseIdentity("node:x")->role, Role::kNode);
  for (const char* bad : {"", "alice", "root:x", "user:", "user:a:b", "User:a", "user:.a"}) {
    EXPECT_EQ(ParseIdentity(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace cairn
