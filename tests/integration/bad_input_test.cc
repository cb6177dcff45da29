// Bad input against a real cluster: invalid names, oversize documents, wrong
// expected versions, an unknown partition, node-only calls from a user, a
// client without a certificate, a certificate from another CA, and garbage
// bytes (plain and inside TLS) sent to every port. Each time: a clear error,
// no daemon crashes, and nothing stored changes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "ChunkService.h"
#include "MetaService.h"
#include "tests/common/test_seeds.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/integration_util.h"
#include "thrift/rpc_client.h"

namespace cairn::test {
namespace {

constexpr uint64_t kMaxDocumentBytes = 1 << 20;  // configured on the cluster

// ---------------------------------------------------------------- raw sockets

int ConnectTcp(const HostPort& hp) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(hp.port));
  ::inet_pton(AF_INET, hp.host.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

// Sends `bytes` in the clear and reads until the server closes the
// connection. Returns "closed" if it did within 10 s, "timeout" otherwise.
std::string PlainGarbage(const HostPort& hp, const std::string& bytes) {
  const int fd = ConnectTcp(hp);
  if (fd < 0) return "connect failed";
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  char buf[4096];
  std::string result = "timeout";
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) continue;  // a TLS alert, for instance
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) result = "closed";
    break;
  }
  ::close(fd);
  return result;
}

struct TlsOutcome {
  bool handshake_ok = false;
  bool got_reply = false;  // the server sent application bytes back
  std::string error;       // OpenSSL's error text for the failure, if any
};

std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += std::string(buf) + "; ";
  }
  return out;
}

// A TLS 1.3 connection made with OpenSSL directly (so that we can leave out
// the client certificate): sends `payload` and reads the answer.
TlsOutcome RawTls(const HostPort& hp, const std::string& ca, const std::string& cert,
                  const std::string& key, const std::string& payload) {
  TlsOutcome out;
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (!cert.empty()) {
    SSL_CTX_use_certificate_chain_file(ctx, cert.c_str());
    SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM);
  }
  const int fd = ConnectTcp(hp);
  if (fd < 0) {
    SSL_CTX_free(ctx);
    out.error = "connect failed";
    return out;
  }
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) == 1) {
    out.handshake_ok = true;
    if (SSL_write(ssl, payload.data(), static_cast<int>(payload.size())) > 0) {
      char buf[4096];
      const int n = SSL_read(ssl, buf, sizeof(buf));
      out.got_reply = n > 0;
      if (n <= 0) out.error = OpenSslErrors();
    } else {
      out.error = OpenSslErrors();
    }
  } else {
    out.error = OpenSslErrors();
  }
  SSL_free(ssl);
  ::close(fd);
  SSL_CTX_free(ctx);
  return out;
}

// A well-formed Thrift binary call of MetaService.GetMap(known_version = 0):
// strict header, method name, seqid, field 1 i64, stop.
std::string GetMapCall() {
  std::string m = std::string("\x80\x01\x00\x01", 4);
  const std::string name = "GetMap";
  m += std::string("\x00\x00\x00", 3) + static_cast<char>(name.size()) + name;
  m += std::string("\x00\x00\x00\x01", 4);                     // seqid
  m += std::string("\x0A\x00\x01", 3) + std::string(8, '\0');  // i64 field 1 = 0
  m += std::string(1, '\0');                                   // stop
  return m;
}

// ---------------------------------------------------------------- fixture

class IntegrationBadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.chunk_servers = 2;
    o.partitions = 8;
    o.chunkserver_set = {"max_document_bytes=" + std::to_string(kMaxDocumentBytes)};
    auto c = Cluster::Start(o);
    if (!c.ok()) {
      start_error_ = new std::string(c.status().ToString());
      return;
    }
    cluster_ = c->release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    delete start_error_;
    start_error_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr) << (start_error_ != nullptr ? *start_error_ : "");
    auto c = cluster_->NewClient();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(c).value();
    Status s = client_->CreateCollection("ref");
    ASSERT_TRUE(s.ok() || s.code() == StatusCode::kAlreadyExists) << s.ToString();
    // Reference documents, written once; every test checks them at its end.
    if (reference_.empty()) {
      for (int i = 0; i < 40; ++i) {
        const std::string id = "ref-" + std::to_string(i);
        std::string body = MakeBody(55, static_cast<uint64_t>(i), static_cast<size_t>(i * 97));
        auto r = client_->Put("ref", id, body);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        reference_[id] = {std::move(body), r->version};
      }
    }
  }

  void TearDown() override {
    if (cluster_ == nullptr || client_ == nullptr) return;
    // Nothing stored changed, and no daemon died.
    std::vector<client::DocInfo> listed;
    client::ListOptions lo;
    for (;;) {
      auto page = client_->List("ref", lo);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      for (auto& d : page->items) listed.push_back(d);
      if (page->next_cursor.empty()) break;
      lo.cursor = page->next_cursor;
    }
    ASSERT_EQ(listed.size(), reference_.size());
    for (const client::DocInfo& d : listed) {
      auto it = reference_.find(d.id);
      ASSERT_NE(it, reference_.end()) << "unexpected document " << d.id;
      EXPECT_EQ(d.version, it->second.second) << d.id;
      std::string got;
      auto r = client_->Get("ref", d.id, client::StringWriter(&got));
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_TRUE(got == it->second.first) << d.id;
    }
    IT_EXPECT_OK(cluster_->CheckAllRunning());
  }

  static Cluster* cluster_;
  static std::string* start_error_;
  static std::map<std::string, std::pair<std::string, int64_t>> reference_;
  std::unique_ptr<client::Client> client_;
};

Cluster* IntegrationBadInput::cluster_ = nullptr;
std::string* IntegrationBadInput::start_error_ = nullptr;
std::map<std::string, std::pair<std::string, int64_t>> IntegrationBadInput::reference_;

// ---------------------------------------------------------------- names

TEST_F(IntegrationBadInput, InvalidCollectionNames) {
  const std::vector<std::string> bad = {
      "",           ".hidden", "a/b", "sp ace", std::string(129, 'c'), std::string("nul\0x", 5),
      "caf\xC3\xA9"};
  for (const std::string& name : bad) {
    Status s = client_->CreateCollection(name);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << "'" << name << "': " << s.ToString();
    EXPECT_FALSE(s.message().empty());
    auto put = client_->Put(name, "x", "body");
    EXPECT_EQ(put.status().code(), StatusCode::kInvalidArgument)
        << "'" << name << "': " << put.status().ToString();
  }
  // A valid name that does not exist: NotFound naming it.
  auto put = client_->Put("nosuchcollection", "x", "body");
  EXPECT_EQ(put.status().code(), StatusCode::kNotFound) << put.status().ToString();
  EXPECT_NE(put.status().message().find("nosuchcollection"), std::string::npos)
      << put.status().ToString();
  // The longest valid name works.
  const std::string longest(128, 'k');
  IT_EXPECT_OK(client_->CreateCollection(longest));
  IT_EXPECT_OK(client_->DropCollection(longest));
  auto cols = client_->ListCollections();
  ASSERT_TRUE(cols.ok()) << cols.status().ToString();
  for (const client::CollectionStatus& c : *cols) {
    EXPECT_TRUE(c.name == "ref") << "unexpected collection '" << c.name << "'";
  }
}

TEST_F(IntegrationBadInput, InvalidDocumentIds) {
  const std::vector<std::string> bad = {
      "", ".", "..", "a/b", "/", std::string("nul\0x", 5), std::string(256, 'd')};
  for (const std::string& id : bad) {
    auto put = client_->Put("ref", id, "body");
    EXPECT_EQ(put.status().code(), StatusCode::kInvalidArgument)
        << "'" << id << "': " << put.status().ToString();
    EXPECT_FALSE(put.status().message().empty());
    std::string got;
    auto get = client_->Get("ref", id, client::StringWriter(&got));
    EXPECT_EQ(get.status().code(), StatusCode::kInvalidArgument) << get.status().ToString();
    EXPECT_EQ(client_->Delete("ref", id).code(), StatusCode::kInvalidArgument);
  }
  auto ren = client_->Rename("ref", "ref-1", "a/b");
  EXPECT_EQ(ren.status().code(), StatusCode::kInvalidArgument) << ren.status().ToString();
  // The longest valid id works (and is removed again).
  const std::string longest(255, 'i');
  IT_EXPECT_OK(client_->Put("ref", longest, "x").status());
  IT_EXPECT_OK(client_->Delete("ref", longest));
}

// ---------------------------------------------------------------- sizes

TEST_F(IntegrationBadInput, OversizeDocumentsAreRefused) {
  // Exactly the limit is fine.
  const std::string at_limit = MakeBody(1, 1, kMaxDocumentBytes);
  IT_EXPECT_OK(client_->Put("ref", "at-limit", at_limit).status());
  IT_EXPECT_OK(client_->Delete("ref", "at-limit"));
  // One byte more, in memory and streamed; and over an existing document.
  const std::string over = MakeBody(1, 2, kMaxDocumentBytes + 1);
  auto put = client_->Put("ref", "too-big", over);
  EXPECT_EQ(put.status().code(), StatusCode::kTooLarge) << put.status().ToString();
  const std::string way_over = MakeBody(1, 3, 3 * kMaxDocumentBytes + 5);
  auto put2 = client_->PutStream("ref", "too-big", client::StringReader(way_over));
  EXPECT_EQ(put2.status().code(), StatusCode::kTooLarge) << put2.status().ToString();
  auto put3 = client_->Put("ref", "ref-3", over);
  EXPECT_EQ(put3.status().code(), StatusCode::kTooLarge) << put3.status().ToString();
  auto stat = client_->Stat("ref", "too-big");
  EXPECT_EQ(stat.status().code(), StatusCode::kNotFound) << stat.status().ToString();
}

// ---------------------------------------------------------------- versions

TEST_F(IntegrationBadInput, WrongExpectedVersion) {
  const auto& [body, version] = reference_.at("ref-5");
  client::WriteOptions w;
  w.expected_version = version + 7;
  auto put = client_->Put("ref", "ref-5", "new body", w);
  EXPECT_EQ(put.status().code(), StatusCode::kVersionMismatch) << put.status().ToString();
  w.expected_version = client::kMustNotExist;
  auto create = client_->Put("ref", "ref-5", "new body", w);
  EXPECT_EQ(create.status().code(), StatusCode::kAlreadyExists) << create.status().ToString();
  EXPECT_EQ(client_->Delete("ref", "ref-5", version + 1).code(), StatusCode::kVersionMismatch);
  // Expecting a version of a document that does not exist.
  w.expected_version = 3;
  auto absent = client_->Put("ref", "absent", "x", w);
  EXPECT_TRUE(absent.status().code() == StatusCode::kNotFound ||
              absent.status().code() == StatusCode::kVersionMismatch)
      << absent.status().ToString();
  // A ranged write with a wrong version.
  auto wr = client_->WriteRange("ref", "ref-6", 0, "zz", reference_.at("ref-6").second + 1);
  EXPECT_EQ(wr.status().code(), StatusCode::kVersionMismatch) << wr.status().ToString();
  (void)body;
}

// ---------------------------------------------------------------- raw RPCs

TEST_F(IntegrationBadInput, UnknownPartitionAndNodeOnlyCalls) {
  net::ClientOptions o;
  o.tls = cluster_->UserTls();
  auto pool_or = net::ConnectionPool::Create(o);
  ASSERT_TRUE(pool_or.ok()) << pool_or.status().ToString();
  net::ConnectionPool& pool = **pool_or;
  for (int i = 0; i < cluster_->chunk_server_count(); ++i) {
    for (int32_t partition : {9999, -1, 8}) {
      rpc::DocMeta meta;
      Status s = pool.Call<rpc::ChunkServiceClient>(
          cluster_->chunkserver(i),
          [&](rpc::ChunkServiceClient& c) { c.Stat(meta, partition, 1, "ref", "ref-1", false); });
      EXPECT_TRUE(s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound)
          << "partition " << partition << " on cs" << i << ": " << s.ToString();
      EXPECT_NE(s.message().find("partition"), std::string::npos) << s.ToString();
      rpc::PutRequest put;
      put.partition = partition;
      put.epoch = 1;
      put.collection = "ref";
      put.id = "ref-1";
      put.size = 1;
      put.__set_body("x");
      s = pool.Call<rpc::ChunkServiceClient>(cluster_->chunkserver(i),
                                             [&](rpc::ChunkServiceClient& c) { c.Put(meta, put); });
      EXPECT_FALSE(s.ok()) << "a put into partition " << partition << " was accepted";
    }
  }
  // Node-only calls from a user.
  rpc::NodeRegistration reg;
  reg.name = "tester";
  reg.host = "127.0.0.1";
  reg.port = 1;
  int32_t node_id = 0;
  Status s = pool.Call<rpc::MetaServiceClient>(
      cluster_->metaserver(), [&](rpc::MetaServiceClient& c) { node_id = c.RegisterNode(reg); });
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s.ToString();
  auto map = client_->GetClusterMap();
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(map->nodes.size(), 2u);
}

// ---------------------------------------------------------------- TLS

TEST_F(IntegrationBadInput, ClientWithoutCertificateIsRefused) {
  const TlsOptions user = cluster_->UserTls();
  std::vector<HostPort> ports = {cluster_->metaserver()};
  for (int i = 0; i < cluster_->chunk_server_count(); ++i)
    ports.push_back(cluster_->chunkserver(i));
  for (const HostPort& hp : ports) {
    // Positive control: the same raw call with a certificate gets an answer.
    TlsOutcome good = RawTls(hp, user.ca_file, user.cert_file, user.key_file, GetMapCall());
    EXPECT_TRUE(good.got_reply) << hp.ToString() << ": " << good.error;
    TlsOutcome bad = RawTls(hp, user.ca_file, "", "", GetMapCall());
    EXPECT_FALSE(bad.got_reply) << hp.ToString() << " answered a client without certificate";
    EXPECT_NE(bad.error.find("certificate"), std::string::npos)
        << hp.ToString() << ": the refusal should say why: " << bad.error;
  }
}

TEST_F(IntegrationBadInput, CertificateFromAnotherCaIsRefused) {
  IT_ASSERT_OK(cluster_->pki().IssueForeign("tester", Role::kUser));
  const TlsOptions foreign = cluster_->pki().ForeignOptions("tester");
  client::Options o = cluster_->ClientOptions();
  o.tls = foreign;
  o.deadline_ms = 5000;
  auto c = client::Client::Create(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto put = (*c)->Put("ref", "ref-1", "overwritten by an outsider");
  EXPECT_EQ(put.status().code(), StatusCode::kPermissionDenied) << put.status().ToString();
  auto map = (*c)->GetClusterMap();
  EXPECT_EQ(map.status().code(), StatusCode::kPermissionDenied) << map.status().ToString();
  // Directly against every chunk server too.
  for (int i = 0; i < cluster_->chunk_server_count(); ++i) {
    TlsOutcome t = RawTls(cluster_->chunkserver(i), foreign.ca_file, foreign.cert_file,
                          foreign.key_file, GetMapCall());
    EXPECT_FALSE(t.got_reply) << "cs" << i;
    EXPECT_FALSE(t.error.empty());
  }
}

// ---------------------------------------------------------------- garbage

TEST_F(IntegrationBadInput, GarbageToEveryPort) {
  const TlsOptions user = cluster_->UserTls();
  std::vector<HostPort> ports = {cluster_->metaserver()};
  for (int i = 0; i < cluster_->chunk_server_count(); ++i)
    ports.push_back(cluster_->chunkserver(i));
  const std::string random = MakeBody(9, 9, 64 * 1024);
  // Thrift frames that lie: a 2 GiB method name, a 2 GiB binary field, a
  // list of 2^31 elements, an unknown message type, a deep struct nest.
  const std::string huge_name = std::string("\x80\x01\x00\x01\x7F\xFF\xFF\xFF", 8) + "Get";
  std::string huge_field = std::string("\x80\x01\x00\x01\x00\x00\x00\x03", 8) + "Put" +
                           std::string("\x00\x00\x00\x01", 4) + std::string("\x0C\x00\x01", 3) +
                           std::string("\x0B\x00\x0E\x7F\xFF\xFF\xF0", 7) + "abc";
  std::string huge_list = std::string("\x80\x01\x00\x01\x00\x00\x00\x06", 8) + "GetMap" +
                          std::string("\x00\x00\x00\x01", 4) +
                          std::string("\x0F\x00\x09\x0C\x7F\xFF\xFF\xFF", 8);
  std::string bad_type = std::string("\x80\x01\x00\x07\x00\x00\x00\x06", 8) + "GetMap" +
                         std::string("\x00\x00\x00\x01\x00", 5);
  std::string nest = std::string("\x80\x01\x00\x01\x00\x00\x00\x06", 8) + "GetMap" +
                     std::string("\x00\x00\x00\x01", 4);
  for (int d = 0; d < 100000; ++d) nest += std::string("\x0C\x00\x01", 3);
  const std::vector<std::string> frames = {random,    huge_name, huge_field,
                                           huge_list, bad_type,  nest};
  for (const HostPort& hp : ports) {
    EXPECT_EQ(PlainGarbage(hp, random), "closed") << hp.ToString();
    EXPECT_EQ(PlainGarbage(hp, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "closed") << hp.ToString();
    for (size_t f = 0; f < frames.size(); ++f) {
      TlsOutcome t = RawTls(hp, user.ca_file, user.cert_file, user.key_file, frames[f]);
      EXPECT_TRUE(t.handshake_ok) << hp.ToString() << " frame " << f << ": " << t.error;
      // A Thrift exception reply is fine; what matters is that the server lives.
    }
    IT_ASSERT_OK(cluster_->CheckAllRunning());
    // The port still serves a proper call.
    TlsOutcome good = RawTls(hp, user.ca_file, user.cert_file, user.key_file, GetMapCall());
    EXPECT_TRUE(good.got_reply) << hp.ToString() << ": " << good.error;
  }
}

}  // namespace
}  // namespace cairn::test
