// The cluster certificate authority and the certificates it issues.
//
// Every Cairn connection is mutual TLS 1.3 against one cluster CA (tls.h);
// the subject common name of a certificate is the identity of its holder:
//
//   node:<name>    a metaserver or chunk server
//   user:<name>    a person or program using the store
//   admin:<name>   an administrator
//
// Keys are EC P-256. Files are PEM: `ca.crt` (0644) and `ca.key` (0600) in the
// CA directory; `<name>.crt` (0644) and `<name>.key` (0600) for an issued
// certificate. Each file is written with WriteFileAtomic, private key first,
// so a present `.crt` means a complete pair. Nothing is ever overwritten:
// an existing file is AlreadyExists (remove it first to reissue).
//
// Thread-safety: the functions are thread-safe, but two calls must not write
// the same files at the same time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cairn {

enum class Role : uint8_t { kNode, kUser, kAdmin };

// "node", "user", "admin".
std::string_view RoleName(Role role);

// A parsed certificate identity.
struct Identity {
  Role role = Role::kNode;
  std::string name;

  // "node:<name>", the form used in certificates and logs.
  std::string ToString() const;
  bool operator==(const Identity&) const = default;
};

// Parses "node:x" / "user:x" / "admin:x" with a valid name; InvalidArgument
// otherwise.
Result<Identity> ParseIdentity(std::string_view common_name);

// Names of nodes, users, admins and clusters: 1..58 bytes of [A-Za-z0-9_.-],
// not starting with '.' or '-' (they become file names). 58 because X.509
// caps a common name at 64 characters (RFC 5280 ub-common-name, enforced by
// OpenSSL) and "admin:" takes 6. InvalidArgument with the reason otherwise;
// `what` names the field in the message ("name").
inline constexpr size_t kMaxCertNameBytes = 58;
Status ValidateCertName(std::string_view name, std::string_view what = "name");

// Validity bounds for CreateClusterCa and CertRequest (100 years).
inline constexpr int kMaxValidDays = 36500;

// File names inside the CA directory.
inline constexpr char kCaCertFileName[] = "ca.crt";
inline constexpr char kCaKeyFileName[] = "ca.key";

// Creates the cluster CA in `dir` (created with mode 0700 if missing; its
// parent must exist): a new EC P-256 key and a self-signed certificate with
// subject "O=Cairn cluster CA, CN=<cluster_name>" valid for `valid_days`
// (1..kMaxValidDays) from one hour ago (clock skew), basicConstraints
// CA:TRUE (critical), keyUsage keyCertSign+cRLSign (critical).
// AlreadyExists if `ca.crt` or `ca.key` exists; InvalidArgument for a bad
// cluster name or validity. Durable when OK (files and directory fsynced).
Status CreateClusterCa(const std::string& dir, const std::string& cluster_name, int valid_days);

struct CertRequest {
  // Validated with ValidateCertName; the subject CN is "<role>:<name>".
  std::string name;
  Role role = Role::kNode;
  // subjectAltName entries. Identity is the CN and hostnames are not checked
  // by Cairn, but other TLS clients (Python's ssl, etcd) check them. A node
  // request with neither gets 127.0.0.1 and localhost; users and admins get
  // no SAN unless asked.
  std::vector<std::string> ip_addresses;  // IPv4 or IPv6 literals
  std::vector<std::string> dns_names;     // [A-Za-z0-9.-], at most 253 bytes
  // 1..kMaxValidDays. The certificate must not outlive the CA.
  int valid_days = 365;
  // For tests only: shifts the validity window this many seconds into the
  // past (0..10 years), e.g. valid_days = 1 with two days gives a certificate
  // that expired yesterday.
  int64_t backdate_seconds = 0;
};

// Issues a certificate signed by the CA in `ca_dir` into `out_dir` (created
// with mode 0700 if missing; its parent must exist): a new EC P-256 key,
// random positive 128-bit serial, basicConstraints CA:FALSE,
// keyUsage digitalSignature, extendedKeyUsage serverAuth+clientAuth,
// subject/authority key identifiers and the SAN entries of `req`.
// Writes `<name>.key` (0600) then `<name>.crt` (0644). Errors:
// InvalidArgument (bad request, certificate would outlive the CA), NotFound
// (no CA in `ca_dir`), FailedPrecondition (CA expired, CA key does not match
// its certificate), AlreadyExists (an output file exists). Durable when OK.
Status IssueCertificate(const std::string& ca_dir, const CertRequest& req,
                        const std::string& out_dir);

// The identity ("node:x") of the PEM certificate at `path`. NotFound if the
// file is missing, InvalidArgument if it is not a certificate or its common
// name is not a Cairn identity. Does not verify the certificate.
Result<std::string> IdentityFromCertificateFile(const std::string& path);

}  // namespace cairn
