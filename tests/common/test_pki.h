// Test helpers shared by every suite that needs TLS: a temporary directory
// and a throw-away cluster CA with certificates.
//
//   TestPki pki;                                  // CA "test" in a temp dir
//   ASSERT_TRUE(pki.Issue("cs1", Role::kNode).ok());
//   TlsOptions o = pki.Options("cs1");           // ca.crt, cs1.crt, cs1.key
//   TlsOptions bad = pki.ForeignOptions("eve");  // issued by another CA
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "common/certs.h"
#include "common/status.h"
#include "common/tls.h"

namespace cairn::test {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "cairn-test") {
    const char* base = std::getenv("TMPDIR");  // NOLINT(concurrency-mt-unsafe)
    std::string templ =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/" + prefix + "-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    char* made = ::mkdtemp(buf.data());
    if (made != nullptr) path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A cluster CA (and, made on demand, a foreign one) in a temporary directory.
class TestPki {
 public:
  TestPki() : dir_("cairn-pki") {
    Status s = CreateClusterCa(ca_dir(), "test", 30);
    if (!s.ok()) error_ = s.ToString();
  }
  // Empty when the CA was made.
  const std::string& error() const { return error_; }

  std::string ca_dir() const { return dir_.path() + "/ca"; }
  std::string certs_dir() const { return dir_.path() + "/certs"; }
  std::string ca_file() const { return ca_dir() + "/ca.crt"; }

  // Issues <name>.crt/.key (idempotent: an existing pair is kept).
  Status Issue(const std::string& name, Role role, int valid_days = 10) {
    return IssueInto(ca_dir(), certs_dir(), name, role, valid_days);
  }
  TlsOptions Options(const std::string& name) const {
    return {ca_file(), certs_dir() + "/" + name + ".crt", certs_dir() + "/" + name + ".key"};
  }

  // A certificate from a second CA: valid in form, refused by the cluster.
  Status IssueForeign(const std::string& name, Role role) {
    if (!std::filesystem::exists(dir_.path() + "/other-ca/ca.crt")) {
      RETURN_IF_ERROR(CreateClusterCa(dir_.path() + "/other-ca", "other", 30));
    }
    return IssueInto(dir_.path() + "/other-ca", dir_.path() + "/other-certs", name, role, 10);
  }
  // The foreign certificate with a CA bundle that trusts both CAs: an
  // outsider that accepts our servers, so that only the server's check can
  // refuse it.
  TlsOptions ForeignOptions(const std::string& name) const {
    const std::string bundle = dir_.path() + "/both-cas.crt";
    std::ofstream out(bundle, std::ios::binary | std::ios::trunc);
    out << std::ifstream(ca_file(), std::ios::binary).rdbuf()
        << std::ifstream(dir_.path() + "/other-ca/ca.crt", std::ios::binary).rdbuf();
    return {bundle, dir_.path() + "/other-certs/" + name + ".crt",
            dir_.path() + "/other-certs/" + name + ".key"};
  }

 private:
  static Status IssueInto(const std::string& ca, const std::string& out, const std::string& name,
                          Role role, int valid_days) {
    if (std::filesystem::exists(out + "/" + name + ".crt")) return Status::Ok();
    CertRequest req;
    req.name = name;
    req.role = role;
    req.valid_days = valid_days;
    return IssueCertificate(ca, req, out);
  }

  TempDir dir_;
  std::string error_;
};

}  // namespace cairn::test
