// `cairn certs init` and `cairn certs issue` (common/certs.h): the cluster
// CA and the certificates of nodes, users and administrators.
#include <iostream>

#include "client/cli/args.h"
#include "client/cli/cli.h"
#include "common/certs.h"

namespace cairn::cli {

namespace {

Result<int> Days(const Args& a, int def) {
  if (auto d = a.Value("--days")) {
    ASSIGN_OR_RETURN(uint64_t n, ParseUint(*d, "--days"));
    if (n < 1 || n > static_cast<uint64_t>(kMaxValidDays)) {
      return Status::InvalidArgument("--days must be 1.." + std::to_string(kMaxValidDays));
    }
    return static_cast<int>(n);
  }
  return def;
}

}  // namespace

int CertsInit(const Args& a) {
  const std::optional<std::string> dir = a.Value("--dir");
  if (!dir) return Usage("certs init needs --dir DIR", "certs init");
  const std::string cluster = a.Value("--cluster").value_or("cairn");
  Result<int> days = Days(a, 3650);
  if (!days.ok()) return Usage(days.status().message(), "certs init");
  Status s = CreateClusterCa(*dir, cluster, *days);
  if (!s.ok()) return Fail("certs init", s);
  std::cout << "cluster CA '" << cluster << "' created: " << *dir << "/" << kCaCertFileName
            << " (share it) and " << *dir << "/" << kCaKeyFileName << " (keep it secret)\n";
  return kExitOk;
}

int CertsIssue(const Args& a) {
  const std::optional<std::string> dir = a.Value("--dir");
  if (!dir) return Usage("certs issue needs --dir DIR (the CA directory)", "certs issue");
  CertRequest req;
  int roles = 0;
  for (const auto& [flag, role] : {std::pair<const char*, Role>{"--node", Role::kNode},
                                   {"--user", Role::kUser},
                                   {"--admin", Role::kAdmin}}) {
    if (auto v = a.Value(flag)) {
      req.name = *v;
      req.role = role;
      roles += static_cast<int>(a.values.at(flag).size());
    }
  }
  if (roles != 1) {
    return Usage("certs issue needs exactly one of --node NAME, --user NAME, --admin NAME",
                 "certs issue");
  }
  if (a.values.count("--ip") != 0) req.ip_addresses = a.values.at("--ip");
  if (a.values.count("--dns") != 0) req.dns_names = a.values.at("--dns");
  Result<int> days = Days(a, 365);
  if (!days.ok()) return Usage(days.status().message(), "certs issue");
  req.valid_days = *days;
  const std::string out = a.Value("--out").value_or(*dir);
  Status s = IssueCertificate(*dir, req, out);
  if (!s.ok()) return Fail("certs issue " + std::string(RoleName(req.role)) + ":" + req.name, s);
  std::cout << RoleName(req.role) << ":" << req.name << ": " << out << "/" << req.name
            << ".crt and " << out << "/" << req.name << ".key\n";
  return kExitOk;
}

}  // namespace cairn::cli
