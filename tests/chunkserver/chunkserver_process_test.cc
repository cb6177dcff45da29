// The cairn-chunkserver process against a tiny MetaService served in the test
// (all partitions on the one node), over real mutual TLS on 127.0.0.1:
// put/get/list/rename/delete, an upload in blocks, SIGKILL after
// acknowledged puts and a restart (every acknowledged document intact), a
// garbage frame and a client without a certificate (refused, daemon alive),
// a clean SIGTERM (exit 0), and a refused start (certificate of another
// name). The process is stopped by its PID, also when a check fails.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include "ChunkService.h"
#include "MetaService.h"
#include "common/checksum.h"
#include "common/partitioning.h"
#include "common/random.h"
#include "tests/common/test_pki.h"
#include "tests/common/test_seeds.h"
#include "thrift/rpc_client.h"
#include "thrift/rpc_server.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
constexpr int32_t kParts = 8;

// A MetaService that registers one node and gives it every partition.
class TinyMeta : public rpc::MetaServiceIf {
 public:
  void GetMap(rpc::ClusterMap& out, int64_t) override {
    MutexLock lock(&mu_);
    out.version = version_;
    out.partition_count = kParts;
    if (registered_) out.nodes.push_back(node_);
    for (int32_t p = 0; p < kParts; ++p) {
      rpc::PartitionInfo pi;
      pi.id = p;
      pi.epoch = 1;
      if (registered_) pi.replicas = {1};
      pi.in_sync = pi.replicas;
      out.partitions.push_back(pi);
    }
    rpc::CollectionInfo c;
    c.name = "c";
    out.collections.push_back(c);
  }
  int32_t RegisterNode(const rpc::NodeRegistration& reg) override {
    MutexLock lock(&mu_);
    node_.id = 1;
    node_.name = reg.name;
    node_.host = reg.host;
    node_.port = reg.port;
    node_.state = rpc::NodeState::UP;
    registered_ = true;
    ++version_;
    ++registrations_;
    return 1;
  }
  void Heartbeat(rpc::HeartbeatReply& out, const rpc::HeartbeatRequest&) override {
    MutexLock lock(&mu_);
    ++heartbeats_;
    out.map_version = version_;
  }
  void CreateCollection(rpc::CollectionInfo&, const std::string&) override {
    throw rpc::CairnError();
  }
  void DropCollection(const std::string&) override { throw rpc::CairnError(); }
  void ListCollections(std::vector<rpc::CollectionInfo>&) override {}
  void CreateIndex(rpc::CollectionInfo&, const std::string&, const std::string&) override {
    throw rpc::CairnError();
  }
  void DropIndex(rpc::CollectionInfo&, const std::string&, const std::string&) override {
    throw rpc::CairnError();
  }
  void ListIndexes(std::vector<rpc::IndexStatus>&, const std::string&) override {}
  int64_t ChangeInSync(const rpc::InSyncChange&) override { throw rpc::CairnError(); }
  int heartbeats() {
    MutexLock lock(&mu_);
    return heartbeats_;
  }
  int registrations() {
    MutexLock lock(&mu_);
    return registrations_;
  }

 private:
  Mutex mu_;
  int64_t version_ GUARDED_BY(mu_) = 1;
  bool registered_ GUARDED_BY(mu_) = false;
  rpc::NodeInfo node_ GUARDED_BY(mu_);
  int heartbeats_ GUARDED_BY(mu_) = 0;
  int registrations_ GUARDED_BY(mu_) = 0;
};

int64_t Hash(const std::string& s) { return static_cast<int64_t>(Checksum64(s.data(), s.size())); }

int32_t PartOf(const std::string& id) {
  return static_cast<int32_t>(PartitionOf("c", id, kParts).value());
}

std::string Body(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  Random r(seed);
  for (char& ch : s) ch = static_cast<char>(r.Next() & 0xFF);
  return s;
}

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(pki_.error(), "");
    ASSERT_TRUE(pki_.Issue("cs1", Role::kNode).ok());
    ASSERT_TRUE(pki_.Issue("meta", Role::kNode).ok());
    ASSERT_TRUE(pki_.Issue("alice", Role::kUser).ok());
    meta_ = std::make_shared<TinyMeta>();
    net::ServerOptions so;
    so.host = "127.0.0.1";
    so.port = 0;
    so.tls = pki_.Options("meta");
    auto server =
        net::RpcServer::Start(so, std::make_shared<rpc::MetaServiceProcessor>(meta_), "test-meta");
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    meta_server_ = std::move(*server);
    net::ClientOptions co;
    co.tls = pki_.Options("alice");
    co.call_timeout_ms = 10000;
    auto pool = net::ConnectionPool::Create(co);
    ASSERT_TRUE(pool.ok());
    alice_ = std::move(*pool);
  }
  void TearDown() override {
    Kill(SIGKILL);
    if (meta_server_) meta_server_->Stop();
  }

  std::string WriteConfig(const std::string& name) {
    const TlsOptions t = pki_.Options(name);
    const std::string path = dir_.path() + "/chunkserver.conf";
    std::ofstream out(path, std::ios::trunc);
    out << "# cairn-chunkserver test config\n"
        << "name = cs1\n"
        << "listen = 127.0.0.1:0\n"
        << "disks = " << dir_.path() << "/d0," << dir_.path() << "/d1," << dir_.path() << "/d2\n"
        << "metaservers = 127.0.0.1:" << meta_server_->port() << "\n"
        << "tls_ca = " << t.ca_file << "\ntls_cert = " << t.cert_file
        << "\ntls_key = " << t.key_file << "\n"
        << "block_bytes = 64K\n"
        << "heartbeat_interval_ms = 100\n"
        << "checkpoint_interval_s = 1\n"
        << "replication = false\n"  // the fake metaserver does not run failover
        << "log_level = warn\n";
    return path;
  }

  // Starts the daemon; returns its port (0 if it did not get ready).
  int Launch(const std::string& cert_name = "cs1") {
    const std::string config = WriteConfig(cert_name);
    const std::string ready = dir_.path() + "/ready";
    fs::remove(ready);
    const std::string log = dir_.path() + "/chunkserver.log";
    pid_ = ::fork();
    if (pid_ == 0) {
      FILE* f = std::freopen(log.c_str(), "a", stderr);
      (void)f;
      ::execl(CAIRN_CHUNKSERVER_BIN, CAIRN_CHUNKSERVER_BIN, "--config", config.c_str(),
              "--ready-file", ready.c_str(), "--set", "upload_idle_timeout_s=60",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 300; ++i) {
      std::ifstream in(ready);
      int port = 0;
      if (in >> port && port > 0) return port;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_status_ = status;
        pid_ = -1;
        return 0;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return 0;
  }
  // Sends `sig` and waits for the exit; returns the wait status.
  int Kill(int sig) {
    if (pid_ <= 0) return exit_status_;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  bool Alive() const { return pid_ > 0 && ::kill(pid_, 0) == 0; }
  std::string Log() const {
    std::ifstream in(dir_.path() + "/chunkserver.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  Status Put(int port, const std::string& id, const std::string& body, rpc::DocMeta* out) {
    rpc::PutRequest r;
    r.partition = PartOf(id);
    r.epoch = 1;
    r.request_id.client_hi = 7;
    r.request_id.seq = ++seq_;
    r.collection = "c";
    r.id = id;
    r.size = static_cast<int64_t>(body.size());
    r.body_hash = Hash(body);
    r.__set_body(body);
    return alice_->Call<rpc::ChunkServiceClient>({"127.0.0.1", port},
                                                 [&](auto& c) { c.Put(*out, r); });
  }
  // Reads a whole document block by block; checks the body hash.
  Result<std::string> Read(int port, const std::string& id) {
    std::string out;
    for (;;) {
      rpc::GetRequest g;
      g.partition = PartOf(id);
      g.epoch = 1;
      g.collection = "c";
      g.id = id;
      g.offset = static_cast<int64_t>(out.size());
      g.length = 1 << 30;
      rpc::GetResult r;
      RETURN_IF_ERROR(alice_->Call<rpc::ChunkServiceClient>({"127.0.0.1", port},
                                                            [&](auto& c) { c.Get(r, g); }));
      EXPECT_LE(r.data.size(), 64u << 10);
      out += r.data;
      if (r.data.empty() || out.size() >= static_cast<size_t>(r.meta.size)) {
        EXPECT_EQ(Hash(out), r.meta.body_hash) << id;
        return out;
      }
    }
  }

  test::QuietLogs quiet_;
  test::TestPki pki_;
  test::TempDir dir_{"cairn-csproc"};
  std::shared_ptr<TinyMeta> meta_;
  std::unique_ptr<net::RpcServer> meta_server_;
  std::unique_ptr<net::ConnectionPool> alice_;
  pid_t pid_ = -1;
  int exit_status_ = 0;
  int64_t seq_ = 0;
};

// A TLS client with no certificate (raw OpenSSL): returns true if the server
// answered anything to a request written after the handshake.
bool NoCertClientGetsAnAnswer(int port, const std::string& ca_file) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool answered = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) {
      const char junk[] = "\x80\x01\x00\x01\x00\x00\x00\x09GetStatus\x00\x00\x00\x01\x00";
      if (SSL_write(ssl, junk, sizeof(junk) - 1) > 0) {
        char buf[256];
        answered = SSL_read(ssl, buf, sizeof(buf)) > 0;
      }
    }
    SSL_free(ssl);
  }
  ::close(fd);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return answered;
}

void SendGarbage(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string junk = "\xff\xff\xff\x7f garbage frame " + Body(4096, 9);
    ssize_t n = ::write(fd, junk.data(), junk.size());
    (void)n;
    char buf[64];
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    n = ::read(fd, buf, sizeof(buf));
    (void)n;
  }
  ::close(fd);
}

TEST_F(ProcessTest, DocumentsSurviveSigkillAndBadClientsAreRefused) {
  int port = Launch();
  ASSERT_GT(port, 0) << Log();
  EXPECT_EQ(meta_->registrations(), 1);

  // Acknowledged puts of assorted sizes (a body is at most one 64 KiB block).
  std::map<std::string, std::string> acked;
  for (int i = 0; i < 40; ++i) {
    const std::string id = "doc-" + std::to_string(i);
    const std::string body = Body(static_cast<size_t>(i) * 1601 % (64 << 10), uint64_t(i));
    rpc::DocMeta m;
    Status s = Put(port, id, body, &m);
    ASSERT_TRUE(s.ok()) << id << ": " << s.ToString();
    acked[id] = body;
  }
  // A 3-block body through an upload.
  const std::string big = Body(3 * (64 << 10) - 5, 99);
  {
    const HostPort at{"127.0.0.1", port};
    int64_t up = 0;
    ASSERT_TRUE(alice_
                    ->Call<rpc::ChunkServiceClient>(
                        at, [&](auto& c) { up = c.UploadBegin(PartOf("big"), 1, "c", "big"); })
                    .ok());
    for (int32_t i = 0; i * (64 << 10) < static_cast<int>(big.size()); ++i) {
      std::string b = big.substr(static_cast<size_t>(i) * (64 << 10), 64 << 10);
      ASSERT_TRUE(alice_
                      ->Call<rpc::ChunkServiceClient>(
                          at, [&](auto& c) { c.UploadBlock(up, i, b, Hash(b)); })
                      .ok());
    }
    rpc::PutRequest r;
    r.partition = PartOf("big");
    r.epoch = 1;
    r.collection = "c";
    r.id = "big";
    r.size = static_cast<int64_t>(big.size());
    r.body_hash = Hash(big);
    r.__set_upload_id(up);
    rpc::DocMeta m;
    Status s = alice_->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { c.Put(m, r); });
    ASSERT_TRUE(s.ok()) << s.ToString();
    acked["big"] = big;
  }
  // Rename and delete (the rename target must share the partition).
  std::string to;
  for (int i = 0; to.empty(); ++i) {
    std::string cand = "renamed-" + std::to_string(i);
    if (PartOf(cand) == PartOf("doc-1")) to = cand;
  }
  {
    const HostPort at{"127.0.0.1", port};
    rpc::RenameRequest rn;
    rn.partition = PartOf("doc-1");
    rn.epoch = 1;
    rn.collection = "c";
    rn.from_id = "doc-1";
    rn.to_id = to;
    rpc::DocMeta m;
    ASSERT_TRUE(alice_->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { c.Rename(m, rn); }).ok());
    acked[to] = acked["doc-1"];
    acked.erase("doc-1");
    rpc::DeleteRequest del;
    del.partition = PartOf("doc-2");
    del.epoch = 1;
    del.collection = "c";
    del.id = "doc-2";
    ASSERT_TRUE(alice_->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { c.Delete(del); }).ok());
    acked.erase("doc-2");
    // Listing every partition finds exactly the acknowledged ids.
    std::set<std::string> listed;
    for (int32_t p = 0; p < kParts; ++p) {
      rpc::ListRequest lr;
      lr.partition = p;
      lr.epoch = 1;
      lr.collection = "c";
      lr.limit = 1000;
      rpc::ListPage page;
      ASSERT_TRUE(
          alice_->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { c.List(page, lr); }).ok());
      for (const rpc::DocMeta& d : page.items) listed.insert(d.id);
    }
    std::set<std::string> want;
    for (const auto& [id, b] : acked) want.insert(id);
    EXPECT_EQ(listed, want);
  }

  // SIGKILL right after the acknowledgements, then restart.
  Kill(SIGKILL);
  alice_->Forget({"127.0.0.1", port});
  port = Launch();
  ASSERT_GT(port, 0) << Log();
  for (const auto& [id, body] : acked) {
    Result<std::string> got = Read(port, id);
    ASSERT_TRUE(got.ok()) << id << ": " << got.status().ToString();
    EXPECT_TRUE(*got == body) << id << " differs after the restart";
  }
  EXPECT_FALSE(Read(port, "doc-2").ok());
  EXPECT_FALSE(Read(port, "doc-1").ok());

  // Garbage and a client without a certificate: refused, the daemon lives on.
  SendGarbage(port);
  EXPECT_FALSE(NoCertClientGetsAnAnswer(port, pki_.ca_file()));
  EXPECT_TRUE(Alive());
  Result<std::string> again = Read(port, "big");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(*again == big);
  // Heartbeats flow.
  const int hb = meta_->heartbeats();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_GT(meta_->heartbeats(), hb);

  // SIGTERM: a clean stop with exit code 0.
  const int status = Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << Log();
}

TEST_F(ProcessTest, RefusesToStartWithTheCertificateOfAnotherNode) {
  ASSERT_TRUE(pki_.Issue("other", Role::kNode).ok());
  EXPECT_EQ(Launch("other"), 0);
  EXPECT_TRUE(WIFEXITED(exit_status_) && WEXITSTATUS(exit_status_) == 1) << exit_status_;
  EXPECT_NE(Log().find("node:other"), std::string::npos) << Log();
}

}  // namespace
}  // namespace cairn
