#include "tests/metaserver/etcd_test_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "metaserver/etcd_meta_store.h"

namespace cairn::metaserver::testing {
namespace {

constexpr auto kHealthyWithin = std::chrono::seconds(20);
constexpr int kLaunchAttempts = 3;  // a picked port may be taken meanwhile

// Forks and execs argv with stdout and stderr appended to `log`. In the child
// only async-signal-safe calls run before exec. Returns the child's PID.
Result<pid_t> Spawn(const std::vector<std::string>& args, const std::string& log,
                    bool die_with_parent) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno(errno, "fork for " + args[0]);
  if (pid == 0) {
    if (die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);  // the parent died before prctl
    }
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// Runs a command to completion; error with its log when it fails.
Status Run(const std::vector<std::string>& args, const std::string& log) {
  ASSIGN_OR_RETURN(pid_t pid, Spawn(args, log, /*die_with_parent=*/true));
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return Status::FromErrno(errno, "waitpid " + args[0]);
  }
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) return Status::Ok();
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  std::string cmd;
  for (const std::string& a : args) cmd += a + " ";
  return Status::Unavailable("command failed (" + std::to_string(wstatus) + "): " + cmd + "\n" +
                             text.str());
}

Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return Status::IOError("cannot write " + path);
  return Status::Ok();
}

}  // namespace

Result<int> PickFreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::FromErrno(err, "bind 127.0.0.1:0");
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

Result<std::unique_ptr<EtcdTestServer>> EtcdTestServer::Start() {
  const char* env_bin = std::getenv("CAIRN_ETCD_BIN");
  const std::string etcd_bin = env_bin != nullptr ? env_bin : "/usr/bin/etcd";
  if (::access(etcd_bin.c_str(), X_OK) != 0) {
    return Status::FailedPrecondition(
        "etcd is not installed (" + etcd_bin +
        " not found): the etcd store tests need it; run scripts/install-deps.sh, which installs "
        "Debian's etcd-server (or set CAIRN_ETCD_BIN)");
  }
  std::unique_ptr<EtcdTestServer> server(new EtcdTestServer());
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp") + "/cairn-etcd-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return Status::FromErrno(errno, "mkdtemp " + pattern);
  server->dir_ = pattern;
  RETURN_IF_ERROR(server->MakeCertificates());

  Status last;
  for (int attempt = 0; attempt < kLaunchAttempts; ++attempt) {
    ASSIGN_OR_RETURN(int client_port, PickFreePort());
    ASSIGN_OR_RETURN(int peer_port, PickFreePort());
    if (peer_port == client_port) continue;
    last = server->Launch(etcd_bin, client_port, peer_port);
    if (last.ok()) last = server->WaitHealthy();
    if (last.ok()) return server;
    if (server->pid_ > 0) {
      ::kill(server->pid_, SIGKILL);
      ::waitpid(server->pid_, nullptr, 0);
      server->pid_ = -1;
    }
    std::error_code ec;
    std::filesystem::remove_all(server->File("data"), ec);
  }
  return last;
}

EtcdTestServer::~EtcdTestServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  const char* keep = std::getenv("CAIRN_KEEP_ETCD_DIR");
  if (!dir_.empty() && (keep == nullptr || std::string(keep) != "1")) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

Status EtcdTestServer::MakeCertificates() {
  const std::string log = File("openssl.log");
  const std::vector<std::string> ec_key = {"-newkey", "ec", "-pkeyopt",
                                           "ec_paramgen_curve:prime256v1", "-nodes"};
  auto make_ca = [&](const std::string& name) {
    std::vector<std::string> args = {"openssl", "req", "-x509"};
    args.insert(args.end(), ec_key.begin(), ec_key.end());
    args.insert(args.end(),
                {"-keyout", File(name + ".key"), "-out", File(name + ".crt"), "-days", "2", "-subj",
                 "/CN=cairn test " + name, "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
    return Run(args, log);
  };
  auto make_cert = [&](const std::string& name, const std::string& ca, const std::string& cn,
                       const std::string& extensions) -> Status {
    RETURN_IF_ERROR(WriteFile(File(name + ".ext"), extensions));
    std::vector<std::string> req = {"openssl", "req", "-new"};
    req.insert(req.end(), ec_key.begin(), ec_key.end());
    req.insert(req.end(),
               {"-keyout", File(name + ".key"), "-out", File(name + ".csr"), "-subj", "/CN=" + cn});
    RETURN_IF_ERROR(Run(req, log));
    return Run({"openssl", "x509", "-req", "-in", File(name + ".csr"), "-CA", File(ca + ".crt"),
                "-CAkey", File(ca + ".key"), "-CAcreateserial", "-days", "2", "-out",
                File(name + ".crt"), "-extfile", File(name + ".ext")},
               log);
  };
  RETURN_IF_ERROR(make_ca("ca"));
  RETURN_IF_ERROR(make_ca("rogue-ca"));
  // etcd 3.4's gateway dials etcd's own gRPC port presenting the server
  // certificate as a client certificate: it needs clientAuth as well.
  RETURN_IF_ERROR(make_cert("server", "ca", "127.0.0.1",
                            "subjectAltName=IP:127.0.0.1\n"
                            "extendedKeyUsage=serverAuth,clientAuth\n"));
  RETURN_IF_ERROR(make_cert("client", "ca", "cairn-test-client", "extendedKeyUsage=clientAuth\n"));
  return make_cert("rogue-client", "rogue-ca", "cairn-test-client",
                   "extendedKeyUsage=clientAuth\n");
}

Status EtcdTestServer::Launch(const std::string& etcd_bin, int client_port, int peer_port) {
  const std::string client_url = "https://127.0.0.1:" + std::to_string(client_port);
  const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer_port);
  endpoint_ = client_url;
  const std::vector<std::string> args = {
      etcd_bin,
      "--name=cairn-test",
      "--data-dir=" + File("data"),
      "--listen-client-urls=" + client_url,
      "--advertise-client-urls=" + client_url,
      "--listen-peer-urls=" + peer_url,
      "--initial-advertise-peer-urls=" + peer_url,
      "--initial-cluster=cairn-test=" + peer_url,
      "--initial-cluster-state=new",
      "--cert-file=" + File("server.crt"),
      "--key-file=" + File("server.key"),
      "--trusted-ca-file=" + File("ca.crt"),
      "--client-cert-auth",
      // Short timers: the minimum lease TTL becomes 1 s (etcd's default
      // 100 ms / 1000 ms gives 2 s), so lease tests run quickly.
      "--heartbeat-interval=10",
      "--election-timeout=100",
  };
  ASSIGN_OR_RETURN(pid_, Spawn(args, File("etcd.log"), /*die_with_parent=*/true));
  return Status::Ok();
}

Status EtcdTestServer::WaitHealthy() {
  EtcdOptions options = ClientOptions();
  options.request_timeout = std::chrono::seconds(1);
  ASSIGN_OR_RETURN(auto store, EtcdMetaStore::Open(options));
  const auto deadline = std::chrono::steady_clock::now() + kHealthyWithin;
  Status last;
  while (std::chrono::steady_clock::now() < deadline) {
    int wstatus = 0;
    if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return Status::Unavailable("etcd exited during start (" + std::to_string(wstatus) +
                                 "); its log ends with:\n" + LogTail());
    }
    last = store->Get("/cairn-test/health").status();
    if (last.ok()) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Unavailable("etcd at " + endpoint_ + " not healthy within " +
                             std::to_string(kHealthyWithin.count()) + " s (" + last.ToString() +
                             "); its log ends with:\n" + LogTail());
}

std::string EtcdTestServer::LogTail() const {
  std::ifstream in(File("etcd.log"));
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  return s.size() > 3000 ? s.substr(s.size() - 3000) : s;
}

EtcdOptions EtcdTestServer::ClientOptions() const {
  EtcdOptions o;
  o.endpoints = {endpoint_};
  o.ca_file = File("ca.crt");
  o.cert_file = File("client.crt");
  o.key_file = File("client.key");
  o.connect_timeout = std::chrono::seconds(2);
  o.request_timeout = std::chrono::seconds(5);
  return o;
}

}  // namespace cairn::metaserver::testing
