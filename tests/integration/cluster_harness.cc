#include "tests/integration/cluster_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/certs.h"
#include "common/logging.h"
#include "tests/metaserver/etcd_test_server.h"

#ifndef CAIRN_METASERVER_BIN
#define CAIRN_METASERVER_BIN "cairn-metaserver"
#endif
#ifndef CAIRN_CHUNKSERVER_BIN
#define CAIRN_CHUNKSERVER_BIN "cairn-chunkserver"
#endif

namespace cairn::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string BinPath(const char* env_name, const char* built) {
  const char* v = std::getenv(env_name);  // NOLINT(concurrency-mt-unsafe)
  return v != nullptr && *v != '\0' ? std::string(v) : std::string(built);
}

Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::IOError("cannot write " + path);
  return Status::Ok();
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// fork + exec with stdout/stderr appended to `log`, stdin /dev/null. The
// child dies with the thread that forked it (PR_SET_PDEATHSIG): call from
// the test's main thread. Only async-signal-safe calls run in the child.
Result<pid_t> Spawn(const std::vector<std::string>& args, const std::string& log,
                    const std::vector<std::string>& extra_env) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // Environment prepared before fork (no allocation in the child).
  std::vector<std::string> env_store;
  // `extra_env` replaces an inherited variable of the same name (getenv
  // finds the first).
  auto overridden = [&](std::string_view var) {
    const std::string_view name = var.substr(0, var.find('='));
    return std::any_of(extra_env.begin(), extra_env.end(), [&](const std::string& x) {
      return std::string_view(x).substr(0, x.find('=')) == name;
    });
  };
  for (char** e = environ; *e != nullptr; ++e) {
    if (!overridden(*e)) env_store.emplace_back(*e);
  }
  for (const std::string& e : extra_env) env_store.push_back(e);
  std::vector<char*> envp;
  for (std::string& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno(errno, "fork for " + args[0]);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in >= 0) ::dup2(in, 0);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

std::string DescribeWait(int wstatus) {
  if (WIFEXITED(wstatus)) return "exit code " + std::to_string(WEXITSTATUS(wstatus));
  if (WIFSIGNALED(wstatus)) return "killed by signal " + std::to_string(WTERMSIG(wstatus));
  return "wait status " + std::to_string(wstatus);
}

// waitpid with a deadline; true when reaped.
bool WaitFor(pid_t pid, int* wstatus, Clock::duration timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const pid_t r = ::waitpid(pid, wstatus, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;  // not our child any more
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

Result<int> PickFreePortOn(const std::string& host) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    return Status::InvalidArgument("not an IPv4 address: " + host);
  }
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::FromErrno(err, "bind " + host + ":0");
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

Result<CommandResult> RunCommand(const std::vector<std::string>& argv, std::chrono::seconds timeout,
                                 const std::vector<std::string>& extra_env) {
  TempDir tmp("cairn-cmd");
  if (tmp.path().empty()) return Status::IOError("mkdtemp for a command's output");
  const std::string out = tmp.path() + "/out";
  ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, out, extra_env));
  int wstatus = 0;
  CommandResult r;
  if (!WaitFor(pid, &wstatus, timeout)) {
    ::kill(pid, SIGKILL);
    WaitFor(pid, &wstatus, std::chrono::seconds(5));
    return Status::Timeout("command did not finish within " + std::to_string(timeout.count()) +
                           " s: " + argv[0] + "\n" + ReadText(out));
  }
  r.exit_code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  r.output = ReadText(out);
  return r;
}

Result<uint64_t> PeakRssBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return Status::NotFound("no /proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream s(line.substr(6));
      uint64_t kib = 0;
      s >> kib;
      return kib * 1024;
    }
  }
  return Status::NotFound("no VmHWM in /proc/" + std::to_string(pid) + "/status");
}

// ---------------------------------------------------------------- Cluster

Cluster::Cluster(ClusterOptions options) : options_(std::move(options)), dir_("cairn-cluster") {}

Cluster::~Cluster() {
  for (ChildProcess& p : chunkservers_) Stop(p, false).IgnoreError();  // best effort
  Stop(metaserver_, false).IgnoreError();                              // best effort: tearing down
  etcd_.reset();
  pki_.reset();
  const char* keep = std::getenv("CAIRN_KEEP_CLUSTER_DIR");  // NOLINT(concurrency-mt-unsafe)
  if (keep != nullptr && std::string(keep) == "1") {
    // TempDir removes it: move it aside first.
    std::error_code ec;
    const std::string kept = dir_.path() + "-kept";
    fs::rename(dir_.path(), kept, ec);
    if (!ec) std::fprintf(stderr, "cluster directory kept in %s\n", kept.c_str());
  }
}

Result<std::unique_ptr<Cluster>> Cluster::Start(const ClusterOptions& given) {
  ClusterOptions options = given;
  // By hand: CAIRN_TEST_REPLICATION=R runs every single-copy test cluster
  // with R replicas (at most its chunk server count) instead.
  if (const char* r = std::getenv("CAIRN_TEST_REPLICATION");
      r != nullptr && options.replication == 1) {
    options.replication = std::clamp(std::atoi(r), 1, std::max(1, options.chunk_servers));
  }
  std::unique_ptr<Cluster> c(new Cluster(options));
  if (c->dir_.path().empty()) return Status::IOError("mkdtemp for the cluster directory");
  RETURN_IF_ERROR(c->MakeCertificates());
  if (options.use_etcd) {
    auto etcd = metaserver::testing::EtcdTestServer::Start();
    if (!etcd.ok()) return etcd.status().WithContext("private etcd");
    c->etcd_ = std::move(etcd).value();
  }
  RETURN_IF_ERROR(c->WriteConfigs());
  RETURN_IF_ERROR(c->Launch(c->metaserver_));
  RETURN_IF_ERROR(c->WaitReady(c->metaserver_));
  // Chunk servers start in parallel, then are awaited.
  for (ChildProcess& p : c->chunkservers_) RETURN_IF_ERROR(c->Launch(p));
  for (ChildProcess& p : c->chunkservers_) RETURN_IF_ERROR(c->WaitReady(p));
  RETURN_IF_ERROR(c->WaitServing(options.ready_timeout));
  return c;
}

Status Cluster::MakeCertificates() {
  pki_ = std::make_unique<TestPki>();
  if (!pki_->error().empty()) return Status::Internal("test CA: " + pki_->error());
  auto issue_node = [&](const std::string& name, const std::string& ip) {
    CertRequest req;
    req.name = name;
    req.role = Role::kNode;
    req.ip_addresses = {ip};
    if (ip != "127.0.0.1") req.ip_addresses.push_back("127.0.0.1");
    req.dns_names = {"localhost"};
    req.valid_days = 10;
    return IssueCertificate(pki_->ca_dir(), req, pki_->certs_dir());
  };
  RETURN_IF_ERROR(issue_node("ms1", "127.0.0.1"));
  for (int i = 0; i < options_.chunk_servers; ++i) {
    RETURN_IF_ERROR(issue_node("cs" + std::to_string(i), "127.0.0." + std::to_string(10 + i)));
  }
  RETURN_IF_ERROR(pki_->Issue("tester", Role::kUser));
  RETURN_IF_ERROR(pki_->Issue("root", Role::kAdmin));
  return Status::Ok();
}

Status Cluster::WriteConfigs() {
  auto tls_lines = [&](const std::string& name) {
    const TlsOptions t = pki_->Options(name);
    return "tls_ca = " + t.ca_file + "\ntls_cert = " + t.cert_file + "\ntls_key = " + t.key_file +
           "\n";
  };
  // The metaserver.
  metaserver_.name = "ms";
  metaserver_.dir = dir_.path() + "/ms";
  fs::create_directories(metaserver_.dir);
  ASSIGN_OR_RETURN(int ms_port, PickFreePortOn("127.0.0.1"));
  metaserver_address_ = {"127.0.0.1", ms_port};
  std::string ms = "# written by tests/integration/cluster_harness.cc\n";
  ms += "name = ms1\n";
  ms += "listen = " + metaserver_address_.ToString() + "\n";
  ms += tls_lines("ms1");
  ms += "partitions = " + std::to_string(options_.partitions) + "\n";
  ms += "initial_nodes = " + std::to_string(options_.chunk_servers) + "\n";
  ms += "replication = " + std::to_string(options_.replication) + "\n";
  ms += std::string("failover = ") + (options_.replication > 1 ? "true" : "false") + "\n";
  if (etcd_ != nullptr) {
    ms += "store = etcd\n";
    ms += "etcd_endpoints = " + etcd_->endpoint() + "\n";
    ms += "etcd_prefix = /cairn-it/\n";
    ms += "etcd_ca = " + etcd_->File("ca.crt") + "\n";
    ms += "etcd_cert = " + etcd_->File("client.crt") + "\n";
    ms += "etcd_key = " + etcd_->File("client.key") + "\n";
  } else {
    ms += "store = memory\n";
  }
  const std::string ms_conf = metaserver_.dir + "/metaserver.conf";
  RETURN_IF_ERROR(WriteText(ms_conf, ms));
  metaserver_.argv = {BinPath("CAIRN_METASERVER_BIN", CAIRN_METASERVER_BIN), "--config", ms_conf,
                      "--ready-file", metaserver_.dir + "/ready"};
  for (const std::string& s : options_.metaserver_set) {
    metaserver_.argv.push_back("--set");
    metaserver_.argv.push_back(s);
  }

  // The chunk servers: every address first (a chunk server's extra options
  // may name its peers').
  for (int i = 0; i < options_.chunk_servers; ++i) {
    const std::string host = "127.0.0." + std::to_string(10 + i);
    ASSIGN_OR_RETURN(int port, PickFreePortOn(host));
    chunkserver_addresses_.push_back(HostPort{host, port});
  }
  for (int i = 0; i < options_.chunk_servers; ++i) {
    ChildProcess p;
    p.name = "cs" + std::to_string(i);
    p.dir = dir_.path() + "/" + p.name;
    fs::create_directories(p.dir);
    const HostPort address = chunkserver_addresses_[static_cast<size_t>(i)];
    std::string disks;
    for (int d = 0; d < options_.disks_per_server; ++d) {
      const std::string disk = p.dir + "/disk" + std::to_string(d);
      fs::create_directories(disk);
      disks += (d == 0 ? "" : ",") + disk;
    }
    std::string cfg = "# written by tests/integration/cluster_harness.cc\n";
    cfg += "name = " + p.name + "\n";
    cfg += "listen = " + address.ToString() + "\n";
    cfg += "advertise = " + address.ToString() + "\n";
    cfg += "disks = " + disks + "\n";
    cfg += "metaservers = " + metaserver_address_.ToString() + "\n";
    cfg += tls_lines(p.name);
    cfg += std::string("replication = ") + (options_.replication > 1 ? "true" : "false") + "\n";
    const std::string conf = p.dir + "/chunkserver.conf";
    RETURN_IF_ERROR(WriteText(conf, cfg));
    p.argv = {BinPath("CAIRN_CHUNKSERVER_BIN", CAIRN_CHUNKSERVER_BIN), "--config", conf,
              "--ready-file", p.dir + "/ready"};
    for (const std::string& s : options_.chunkserver_set) {
      p.argv.push_back("--set");
      p.argv.push_back(s);
    }
    if (options_.chunkserver_set_for) {
      for (const std::string& s :
           options_.chunkserver_set_for(i, metaserver_address_, chunkserver_addresses_)) {
        p.argv.push_back("--set");
        p.argv.push_back(s);
      }
    }
    chunkservers_.push_back(std::move(p));
  }
  return Status::Ok();
}

Status Cluster::Launch(ChildProcess& p) {
  if (p.pid > 0) return Status::FailedPrecondition(p.name + " is already running");
  std::error_code ec;
  fs::remove(p.dir + "/ready", ec);
  const std::string log = p.dir + (p.name == "ms" ? "/metaserver.log" : "/chunkserver.log");
  {
    std::ofstream mark(log, std::ios::app);
    mark << "==== harness: starting " << p.name << "\n";
  }
  std::vector<std::string> env;
  if (std::getenv("CAIRN_LOG_LEVEL") == nullptr) env.push_back("CAIRN_LOG_LEVEL=info");  // NOLINT
  ASSIGN_OR_RETURN(p.pid, Spawn(p.argv, log, env));
  return Status::Ok();
}

Status Cluster::WaitReady(ChildProcess& p) {
  const std::string ready = p.dir + "/ready";
  const std::string log = p.dir + (p.name == "ms" ? "/metaserver.log" : "/chunkserver.log");
  const auto deadline = Clock::now() + options_.ready_timeout;
  while (Clock::now() < deadline) {
    int wstatus = 0;
    if (p.pid > 0 && ::waitpid(p.pid, &wstatus, WNOHANG) == p.pid) {
      p.pid = -1;
      p.last_wait_status = wstatus;
      return Status::Unavailable(p.name + " exited during start (" + DescribeWait(wstatus) +
                                 "); command: " + p.argv[0] + " --config " + p.argv[2] +
                                 "\nits log ends with:\n" + LogTail(log));
    }
    std::error_code ec;
    if (fs::exists(ready, ec) && fs::file_size(ready, ec) > 0) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::Timeout(p.name + " not ready within " +
                         std::to_string(options_.ready_timeout.count()) +
                         " s (no ready file); its log ends with:\n" + LogTail(log));
}

Status Cluster::Stop(ChildProcess& p, bool expect_clean) {
  if (p.pid <= 0) return Status::Ok();
  ::kill(p.pid, SIGTERM);
  int wstatus = 0;
  bool clean = true;
  if (!WaitFor(p.pid, &wstatus, options_.stop_grace)) {
    clean = false;
    ::kill(p.pid, SIGKILL);
    WaitFor(p.pid, &wstatus, std::chrono::seconds(10));
  }
  const pid_t pid = p.pid;
  p.pid = -1;
  p.last_wait_status = wstatus;
  if (!expect_clean) return Status::Ok();
  if (!clean) {
    return Status::Internal(p.name + " (pid " + std::to_string(pid) + ") did not stop within " +
                            std::to_string(options_.stop_grace.count()) + " s of SIGTERM; killed");
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return Status::Internal(p.name + " stopped with " + DescribeWait(wstatus));
  }
  return Status::Ok();
}

Status Cluster::Kill(ChildProcess& p) {
  if (p.pid <= 0) return Status::FailedPrecondition(p.name + " is not running");
  ::kill(p.pid, SIGKILL);
  int wstatus = 0;
  WaitFor(p.pid, &wstatus, std::chrono::seconds(10));
  p.pid = -1;
  p.last_wait_status = wstatus;
  return Status::Ok();
}

Status Cluster::KillChunkServer(int i) { return Kill(cs(i)); }
Status Cluster::StopChunkServer(int i) { return Stop(cs(i), true); }

Status Cluster::RestartChunkServer(int i) {
  if (cs(i).pid > 0) RETURN_IF_ERROR(Stop(cs(i), true));
  RETURN_IF_ERROR(Launch(cs(i)));
  return WaitReady(cs(i));
}

Status Cluster::StopMetaserver() { return Stop(metaserver_, true); }

Status Cluster::RestartMetaserver() {
  if (metaserver_.pid > 0) RETURN_IF_ERROR(Stop(metaserver_, true));
  RETURN_IF_ERROR(Launch(metaserver_));
  return WaitReady(metaserver_);
}

Status Cluster::CheckAllRunning() {
  std::string dead;
  auto check = [&](ChildProcess& p, const std::string& log) {
    if (p.pid <= 0) return;  // stopped on purpose
    int wstatus = 0;
    if (::waitpid(p.pid, &wstatus, WNOHANG) == p.pid) {
      p.pid = -1;
      p.last_wait_status = wstatus;
      dead += p.name + " exited (" + DescribeWait(wstatus) + "); its log ends with:\n" +
              LogTail(log) + "\n";
    }
  };
  check(metaserver_, MetaserverLog());
  for (int i = 0; i < chunk_server_count(); ++i) check(cs(i), ChunkServerLog(i));
  if (dead.empty()) return Status::Ok();
  return Status::FailedPrecondition(dead);
}

std::vector<std::string> Cluster::DiskDirs(int i) const {
  std::vector<std::string> out;
  for (int d = 0; d < options_.disks_per_server; ++d) {
    out.push_back(chunkservers_[static_cast<size_t>(i)].dir + "/disk" + std::to_string(d));
  }
  return out;
}

std::string Cluster::ChunkServerLog(int i) const {
  return chunkservers_[static_cast<size_t>(i)].dir + "/chunkserver.log";
}

std::string Cluster::LogTail(const std::string& path, size_t bytes) {
  std::string s = ReadText(path);
  return s.size() > bytes ? "..." + s.substr(s.size() - bytes) : s;
}

client::Options Cluster::ClientOptions() const {
  client::Options o;
  o.metaservers = {metaserver_address_};
  o.tls = UserTls();
  o.connect_timeout_ms = 2000;
  o.call_timeout_ms = 20000;
  o.deadline_ms = 30000;
  return o;
}

Result<std::unique_ptr<client::Client>> Cluster::NewClient() const {
  return client::Client::Create(ClientOptions());
}

Result<std::string> Cluster::WriteClientConfig(const std::string& name,
                                               const TlsOptions& tls) const {
  const std::string path = dir_.path() + "/" + name + ".conf";
  std::string text = "# a cairn CLI config written by the test harness\n";
  text += "metaservers = " + metaserver_address_.ToString() + "\n";
  text += "tls_ca = " + tls.ca_file + "\n";
  text += "tls_cert = " + tls.cert_file + "\n";
  text += "tls_key = " + tls.key_file + "\n";
  RETURN_IF_ERROR(WriteText(path, text));
  return path;
}

Status Cluster::WaitServing(std::chrono::seconds timeout) {
  ASSIGN_OR_RETURN(auto c, NewClient());
  const auto deadline = Clock::now() + timeout;
  Status last;
  while (Clock::now() < deadline) {
    auto map = c->GetClusterMap();
    if (map.ok()) {
      bool placed = map->partition_count > 0 && map->partitions.size() == map->partition_count &&
                    static_cast<int>(map->nodes.size()) >= options_.chunk_servers;
      for (const client::PartitionStatus& p : map->partitions) {
        placed = placed && !p.replicas.empty();
      }
      if (placed) return Status::Ok();
      last = Status::Unavailable("map version " + std::to_string(map->version) + ": " +
                                 std::to_string(map->nodes.size()) + " nodes, not all " +
                                 std::to_string(map->partition_count) + " partitions placed");
    } else {
      last = map.status();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status::Timeout("cluster not serving within " + std::to_string(timeout.count()) +
                         " s: " + last.ToString() + "\nmetaserver log ends with:\n" +
                         LogTail(MetaserverLog()));
}

}  // namespace cairn::test
