// The cairn-metaserver executable as a process: with store = memory and with
// store = etcd (a private etcd, etcd_test_server.h). Fake chunk servers
// register and heartbeat, collections are created and dropped through mutual
// TLS; kill -9 and a restart keep the map in etcd; a second daemon follows
// and takes over on SIGTERM; garbage and certificate-less clients are refused
// while the daemon keeps serving; bad configurations are refused at start.
//
// Processes are stopped by PID (and die with the test through
// PR_SET_PDEATHSIG); temporary directories are removed on every exit path.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSSLSocket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "tests/common/test_seeds.h"
#include "tests/metaserver/etcd_test_server.h"
#include "tests/metaserver/meta_test_util.h"

namespace cairn::metaserver {
namespace {

using testing::EtcdTestServer;
using testing::MetaClient;
using testing::PoolFor;
using testing::TempDir;
using testing::TestCerts;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One cairn-metaserver process.
class Daemon {
 public:
  Daemon(std::string dir, std::string config) : dir_(std::move(dir)), config_(std::move(config)) {}
  ~Daemon() { Kill(SIGKILL); }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Starts and waits for the ready file. Fails with the log if it exits.
  Status Start(const std::vector<std::string>& extra = {}) {
    std::ofstream(dir_ + "/metaserver.conf") << config_;
    std::remove(ready_file().c_str());
    std::vector<std::string> args = {CAIRN_METASERVER_BIN, "--config", dir_ + "/metaserver.conf",
                                     "--ready-file", ready_file()};
    args.insert(args.end(), extra.begin(), extra.end());
    RETURN_IF_ERROR(Spawn(args));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      std::string port = ReadFile(ready_file());
      if (!port.empty()) {
        port_ = std::stoi(port);
        return Status::Ok();
      }
      int wstatus = 0;
      if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
        pid_ = -1;
        exit_status_ = wstatus;
        return Status::Unavailable("cairn-metaserver exited (" + std::to_string(wstatus) + "):\n" +
                                   log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return Status::Timeout("cairn-metaserver not ready within 30 s:\n" + log());
  }

  // Runs to completion (for configurations that must be refused).
  int RunToExit(const std::vector<std::string>& extra) {
    std::ofstream(dir_ + "/metaserver.conf") << config_;
    std::vector<std::string> args = {CAIRN_METASERVER_BIN, "--config", dir_ + "/metaserver.conf"};
    args.insert(args.end(), extra.begin(), extra.end());
    if (!Spawn(args).ok()) return -1;
    return Wait(std::chrono::seconds(30));
  }

  // Sends `sig`; for SIGKILL also reaps.
  void Kill(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    if (sig == SIGKILL) {
      while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
      pid_ = -1;
    }
  }
  // The exit code, or -1 when it did not exit normally within `within`.
  int Wait(std::chrono::seconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
      int wstatus = 0;
      if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    Kill(SIGKILL);
    return -1;
  }

  HostPort endpoint() const { return HostPort{"127.0.0.1", port_}; }
  std::string log() const { return ReadFile(dir_ + "/metaserver.log"); }
  std::string& config() { return config_; }
  // The systemd notification socket given to the next start ("": none).
  void set_notify_socket(std::string path) { notify_socket_ = std::move(path); }

 private:
  std::string ready_file() const { return dir_ + "/ready"; }
  Status Spawn(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const std::string log_path = dir_ + "/metaserver.log";
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string(*e).rfind("NOTIFY_SOCKET=", 0) != 0) env_strings.emplace_back(*e);
    }
    if (!notify_socket_.empty()) env_strings.push_back("NOTIFY_SOCKET=" + notify_socket_);
    std::vector<char*> envp;
    for (const std::string& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) return Status::FromErrno(errno, "fork");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    return Status::Ok();
  }

  std::string dir_;
  std::string config_;
  std::string notify_socket_;
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_status_ = 0;
};

// Retries `fn` while it answers Unavailable (an election in progress).
template <typename Fn>
auto Eventually(Fn&& fn, std::chrono::seconds within = std::chrono::seconds(15)) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  auto r = fn();
  while (!r.ok() && r.status().code() == StatusCode::kUnavailable &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = fn();
  }
  return r;
}

class MetaserverProcessTest : public ::testing::Test {
 protected:
  // `single_copy`: replication = 1 and failover = false (the daemon's
  // defaults are 3 and true); otherwise the caller adds them.
  std::string Config(const std::string& name, const std::string& store, int initial_nodes = 2,
                     bool single_copy = true) {
    TlsOptions tls = certs_.Node(name);
    std::string c = "# test\nname = " + name + "\nlisten = 127.0.0.1:0\nstore = " + store +
                    "\ntls_ca = " + tls.ca_file + "\ntls_cert = " + tls.cert_file +
                    "\ntls_key = " + tls.key_file +
                    "\npartitions = 8\ninitial_nodes = " + std::to_string(initial_nodes) +
                    "\nelection_ttl_s = 1\nlog_level = info\n";
    if (single_copy) c += "replication = 1\nfailover = false\n";
    return c;
  }
  std::string DaemonDir(const std::string& name) {
    const std::string d = dir_.path() + "/" + name;
    std::filesystem::create_directories(d);
    return d;
  }

  TempDir dir_;
  TestCerts certs_{dir_.path() + "/certs"};
};

// A unix datagram socket standing in for systemd's notification socket.
class NotifySocket {
 public:
  explicit NotifySocket(std::string path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    CAIRN_CHECK(path_.size() < sizeof(addr.sun_path));
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    CAIRN_CHECK(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  ~NotifySocket() { ::close(fd_); }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;
  const std::string& path() const { return path_; }
  // Everything received until a message contains `want` (or 10 s pass).
  std::string WaitFor(const std::string& want) {
    std::string all;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (all.find(want) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n > 0) all.append(buf, static_cast<size_t>(n)).append("\n");
    }
    return all;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// A raw TCP connection that sends junk and closes.
void SendGarbage(int port, uint64_t seed) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  std::mt19937_64 rng(seed);
  std::string junk(4096, '\0');
  for (char& c : junk) c = static_cast<char>(rng());
  junk.replace(0, 8, "\x80\x01\x00\x01\x7f\xff\xff\xff", 8);  // a Thrift-looking header
  ASSERT_GT(::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL), 0);
  ::close(fd);
}

// A TLS client that presents no certificate: the call must fail.
bool CallWithoutCertificate(int port, const std::string& ca) {
  using apache::thrift::protocol::TBinaryProtocol;
  using apache::thrift::transport::TBufferedTransport;
  using apache::thrift::transport::TSSLSocketFactory;
  auto factory = std::make_shared<TSSLSocketFactory>();
  factory->loadTrustedCertificates(ca.c_str());
  factory->authenticate(true);
  auto socket = factory->createSocket("127.0.0.1", port);
  socket->setConnTimeout(2000);
  socket->setRecvTimeout(5000);
  socket->setSendTimeout(5000);
  auto transport = std::make_shared<TBufferedTransport>(socket);
  rpc::MetaServiceClient client(std::make_shared<TBinaryProtocol>(transport));
  try {
    transport->open();
    rpc::ClusterMap m;
    client.GetMap(m, 0);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

TEST_F(MetaserverProcessTest, MemoryStoreServesAndSurvivesBadClients) {
  Daemon d(DaemonDir("m1"), Config("m1", "memory"));
  NotifySocket systemd(dir_.path() + "/notify");
  d.set_notify_socket(systemd.path());
  ASSERT_TRUE(d.Start().ok()) << d.log();
  EXPECT_NE(systemd.WaitFor("READY=1").find("READY=1"), std::string::npos);
  auto n1 = PoolFor(certs_.Node("n1"));
  auto n2 = PoolFor(certs_.Node("n2"));
  auto user = PoolFor(certs_.For(Role::kUser, "alice"));
  MetaClient as_n1(n1.get(), d.endpoint());
  MetaClient as_n2(n2.get(), d.endpoint());
  MetaClient as_user(user.get(), d.endpoint());

  // Before placement a drop asks nobody.
  ASSERT_TRUE(Eventually([&] { return as_user.Create("early"); }).ok());
  ASSERT_TRUE(as_user.Drop("early").ok());

  auto id1 = as_n1.Register("n1", "127.0.0.1", 7100);
  ASSERT_TRUE(id1.ok()) << id1.status().ToString();
  auto id2 = as_n2.Register("n2", "127.0.0.2", 7100);
  ASSERT_TRUE(id2.ok());
  ASSERT_TRUE(as_n1.Heartbeat(*id1).ok());
  EXPECT_EQ(as_user.Register("alice", "127.0.0.1", 1).status().code(),
            StatusCode::kPermissionDenied);
  ASSERT_TRUE(as_user.Create("orders").ok());
  EXPECT_EQ(as_user.Create("orders").status().code(), StatusCode::kAlreadyExists);
  // The fake nodes serve no ChunkService: the drop cannot be decided.
  EXPECT_EQ(as_user.Drop("orders").code(), StatusCode::kUnavailable);

  // Junk and a client without a certificate are refused; the daemon serves on.
  for (uint64_t seed : test::Seeds(3, 71)) SendGarbage(d.endpoint().port, seed);
  EXPECT_FALSE(CallWithoutCertificate(d.endpoint().port, certs_.ca()));
  TestCerts rogue(dir_.path() + "/rogue");
  auto stranger = PoolFor(rogue.For(Role::kAdmin, "root"));
  EXPECT_FALSE(MetaClient(stranger.get(), d.endpoint()).GetMap().ok());

  auto map = as_user.GetMap();
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(map->nodes.size(), 2u);
  EXPECT_EQ(map->collections.size(), 1u);
  for (const rpc::PartitionInfo& p : map->partitions) EXPECT_EQ(p.replicas.size(), 1u);

  d.Kill(SIGTERM);
  EXPECT_NE(systemd.WaitFor("STOPPING=1").find("STOPPING=1"), std::string::npos);
  EXPECT_EQ(d.Wait(std::chrono::seconds(10)), 0) << d.log();
}

TEST_F(MetaserverProcessTest, RefusesBadConfigurations) {
  Daemon d(DaemonDir("bad"), Config("m1", "memory"));
  EXPECT_EQ(d.RunToExit({"--set", "partitions=12"}), 1);
  EXPECT_NE(d.log().find("not a power of two"), std::string::npos) << d.log();
  EXPECT_EQ(d.RunToExit({"--set", "name=m9"}), 1);  // the certificate is node:m1
  EXPECT_EQ(d.RunToExit({"--set", "colour=blue"}), 1);
  EXPECT_EQ(d.RunToExit({"--set", "store=etcd"}), 1);  // no endpoints
  // etcd unreachable at start: exit 1 (systemd restarts it), saying why.
  EXPECT_EQ(d.RunToExit({"--set", "store=etcd", "--set", "etcd_endpoints=https://127.0.0.1:1"}), 1);
  EXPECT_NE(d.log().find("cannot start"), std::string::npos) << d.log();
  EXPECT_EQ(d.RunToExit({"--set", "failover=true", "--set", "lease_ms=5000"}), 1);
  EXPECT_NE(d.log().find("lease_ms (5000) must be at most failure_timeout_ms (1000)"),
            std::string::npos)
      << d.log();
  EXPECT_EQ(d.RunToExit({"--set", "replication=6"}), 1);
  EXPECT_NE(d.log().find("replication"), std::string::npos) << d.log();
  EXPECT_EQ(d.RunToExit({"--set", "replication=3"}), 1);  // failover = false
  EXPECT_NE(d.log().find("needs failover = true"), std::string::npos) << d.log();
  EXPECT_EQ(d.RunToExit({"--bogus"}), 2);
  EXPECT_EQ(d.RunToExit({"--help"}), 0);
  EXPECT_NE(d.log().find("heartbeat_timeout_ms"), std::string::npos);
  EXPECT_NE(d.log().find("replacement_timeout_ms"), std::string::npos);
}

// failover = true over the wire: a primary's heartbeat with replica reports
// gets its lease and the echoes, and ChangeInSync changes the in-sync set in
// a new epoch, once.
TEST_F(MetaserverProcessTest, FailoverLeasesAndChangeInSyncOverTheWire) {
  // Long failure timeouts: the fake nodes heartbeat only when told, and the
  // daemon's failover timer must not drop them meanwhile.
  Daemon d(DaemonDir("m1"), Config("m1", "memory", 2, /*single_copy=*/false) +
                                "failover = true\nreplication = 2\nfailure_timeout_ms = 60000\n"
                                "replacement_timeout_ms = 120000\n");
  ASSERT_TRUE(d.Start().ok()) << d.log();
  auto n1 = PoolFor(certs_.Node("n1"));
  auto n2 = PoolFor(certs_.Node("n2"));
  MetaClient as_n1(n1.get(), d.endpoint());
  MetaClient as_n2(n2.get(), d.endpoint());
  // A node that does not replicate is refused by a cluster that does.
  auto refused = Eventually([&] { return as_n1.Register("n1", "127.0.0.1", 7100); });
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition) << d.log();
  EXPECT_NE(refused.status().message().find("replication = true"), std::string::npos)
      << refused.status().ToString();
  auto id1 = as_n1.Register("n1", "127.0.0.1", 7100, /*replication=*/true);
  ASSERT_TRUE(id1.ok()) << id1.status().ToString() << d.log();
  auto id2 = as_n2.Register("n2", "127.0.0.2", 7100, /*replication=*/true);
  ASSERT_TRUE(id2.ok()) << id2.status().ToString();
  auto map = as_n1.GetMap();
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  const rpc::PartitionInfo p = map->partitions[0];
  ASSERT_EQ(p.replicas.size(), 2u);
  ASSERT_EQ(p.in_sync, p.replicas);
  const int32_t primary = p.replicas[0];
  const int32_t backup = p.replicas[1];
  MetaClient as_primary(primary == *id1 ? n1.get() : n2.get(), d.endpoint());

  rpc::HeartbeatRequest hb;
  hb.node_id = primary;
  rpc::ReplicaReport r;
  r.partition = 0;
  r.epoch = p.epoch;
  r.primary = true;
  r.last_lsn = 3;
  r.commit_lsn = 3;
  r.active = true;
  r.can_lead = true;
  hb.__set_replicas({r});
  hb.__set_sent_at_ns(123456789);
  hb.__set_incarnation(42);
  auto reply = as_primary.Heartbeat(hb);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  ASSERT_EQ(reply->leases.size(), 1u);
  EXPECT_EQ(reply->leases[0].partition, 0);
  EXPECT_EQ(reply->leases[0].epoch, p.epoch);
  EXPECT_EQ(reply->sent_at_ns, 123456789);
  EXPECT_EQ(reply->incarnation, 42);
  EXPECT_EQ(reply->map_version, map->version);

  rpc::InSyncChange drop;
  drop.join = false;
  drop.partition = 0;
  drop.epoch = p.epoch;
  drop.primary = primary;
  drop.node = backup;
  auto version = as_primary.ChangeInSync(drop);
  ASSERT_TRUE(version.ok()) << version.status().ToString() << d.log();
  EXPECT_EQ(*version, map->version + 1);
  EXPECT_EQ(as_primary.ChangeInSync(drop).status().code(), StatusCode::kStaleEpoch);
  auto after = as_n1.GetMap();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->version, *version);
  EXPECT_EQ(after->partitions[0].epoch, p.epoch + 1);
  EXPECT_EQ(after->partitions[0].in_sync, std::vector<int32_t>{primary});
  EXPECT_EQ(after->partitions[0].replicas, p.replicas);

  // The old epoch's lease is gone; the new epoch's is granted.
  reply = as_primary.Heartbeat(hb);
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->leases.empty());
  hb.replicas[0].epoch = p.epoch + 1;
  reply = as_primary.Heartbeat(hb);
  ASSERT_TRUE(reply.ok());
  ASSERT_EQ(reply->leases.size(), 1u);
  EXPECT_EQ(reply->leases[0].epoch, p.epoch + 1);

  d.Kill(SIGTERM);
  EXPECT_EQ(d.Wait(std::chrono::seconds(10)), 0) << d.log();
}

TEST_F(MetaserverProcessTest, EtcdStoreKeepsTheMapAcrossKillAndFailsOver) {
  auto etcd = EtcdTestServer::Start();
  ASSERT_TRUE(etcd.ok()) << etcd.status().ToString();
  auto etcd_config = [&](const std::string& name) {
    return Config(name, "etcd", 1) + "etcd_endpoints = " + (*etcd)->endpoint() +
           "\netcd_ca = " + (*etcd)->File("ca.crt") +
           "\netcd_cert = " + (*etcd)->File("client.crt") +
           "\netcd_key = " + (*etcd)->File("client.key") + "\netcd_prefix = /cairn-test/\n";
  };
  auto n1 = PoolFor(certs_.Node("n1"));
  auto admin = PoolFor(certs_.For(Role::kAdmin, "root"));

  Daemon a(DaemonDir("m1"), etcd_config("m1"));
  ASSERT_TRUE(a.Start().ok()) << a.log();
  MetaClient a_node(n1.get(), a.endpoint());
  MetaClient a_admin(admin.get(), a.endpoint());
  auto id = Eventually([&] { return a_node.Register("n1", "127.0.0.1", 7100); });
  ASSERT_TRUE(id.ok()) << id.status().ToString() << a.log();
  ASSERT_TRUE(a_admin.Create("orders").ok());
  ASSERT_TRUE(a_admin.Create("users").ok());
  auto before = a_admin.GetMap();
  ASSERT_TRUE(before.ok());

  a.Kill(SIGKILL);
  ASSERT_TRUE(a.Start().ok()) << a.log();  // same config, new port
  MetaClient a2_admin(admin.get(), a.endpoint());
  auto after = Eventually([&] { return a2_admin.GetMap(); });
  ASSERT_TRUE(after.ok()) << after.status().ToString() << a.log();
  EXPECT_EQ(after->version, before->version);
  EXPECT_EQ(after->partitions, before->partitions);
  EXPECT_EQ(after->collections, before->collections);
  ASSERT_EQ(after->nodes.size(), 1u);
  EXPECT_EQ(after->nodes[0].name, "n1");
  EXPECT_EQ(after->nodes[0].id, *id);

  // A second daemon follows and names the leader; SIGTERM hands over.
  Daemon b(DaemonDir("m2"), etcd_config("m2"));
  ASSERT_TRUE(b.Start().ok()) << b.log();
  MetaClient b_admin(admin.get(), b.endpoint());
  Status follower = b_admin.Create("x").status();
  EXPECT_EQ(follower.code(), StatusCode::kUnavailable);
  EXPECT_NE(follower.message().find("leader is 127.0.0.1:" + std::to_string(a.endpoint().port)),
            std::string::npos)
      << follower.ToString();
  a.Kill(SIGTERM);
  EXPECT_EQ(a.Wait(std::chrono::seconds(10)), 0) << a.log();
  auto created = Eventually([&] { return b_admin.Create("x"); });
  ASSERT_TRUE(created.ok()) << created.status().ToString() << b.log();
  auto list = b_admin.List();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 3u);

  // The stored map has 8 partitions: another count is refused at start.
  b.Kill(SIGTERM);
  EXPECT_EQ(b.Wait(std::chrono::seconds(10)), 0) << b.log();
  EXPECT_EQ(b.RunToExit({"--set", "partitions=16"}), 1);
  EXPECT_NE(b.log().find("has 8 partitions"), std::string::npos) << b.log();
}

}  // namespace
}  // namespace cairn::metaserver
