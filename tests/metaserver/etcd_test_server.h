// A private etcd for tests: a throwaway CA and certificates made with the
// openssl tool, one etcd member on 127.0.0.1 with free ports, TLS and
// client-certificate authentication, its data in a fresh temporary directory.
//
// The destructor kills etcd by its PID (SIGKILL) and removes the directory.
// If the test process dies first, the kernel kills etcd (PR_SET_PDEATHSIG);
// only the directory is left behind then.
//
// The etcd binary is $CAIRN_ETCD_BIN or /usr/bin/etcd (Debian's etcd-server).
// Set CAIRN_KEEP_ETCD_DIR=1 to keep the directory (certificates, etcd.log).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "common/status.h"
#include "metaserver/etcd_http.h"

namespace cairn::metaserver::testing {

class EtcdTestServer {
 public:
  // FailedPrecondition (with how to install it) when etcd is not installed;
  // Unavailable when it does not start or become healthy.
  static Result<std::unique_ptr<EtcdTestServer>> Start();
  ~EtcdTestServer();
  EtcdTestServer(const EtcdTestServer&) = delete;
  EtcdTestServer& operator=(const EtcdTestServer&) = delete;

  // "https://127.0.0.1:<port>"
  const std::string& endpoint() const { return endpoint_; }
  // Options for a client with a valid certificate.
  EtcdOptions ClientOptions() const;
  // A file in the server's directory: ca.crt, client.crt, client.key, and
  // rogue-ca.crt, rogue-client.crt, rogue-client.key (from another CA).
  std::string File(const std::string& name) const { return dir_ + "/" + name; }
  pid_t pid() const { return pid_; }

 private:
  EtcdTestServer() = default;
  Status MakeCertificates();
  Status Launch(const std::string& etcd_bin, int client_port, int peer_port);
  Status WaitHealthy();
  std::string LogTail() const;

  std::string dir_;
  std::string endpoint_;
  pid_t pid_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0).
Result<int> PickFreePort();

}  // namespace cairn::metaserver::testing
