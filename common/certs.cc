// The cluster CA and certificate issuance with the OpenSSL 3 C API.
#include "common/certs.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <span>

#include "common/disk.h"
#include "common/openssl_util.h"

namespace cairn {

using internal::Asn1IntegerPtr;
using internal::BignumPtr;
using internal::BioPtr;
using internal::EvpPkeyPtr;
using internal::OpenSslError;
using internal::X509ExtensionPtr;
using internal::X509NamePtr;
using internal::X509Ptr;

namespace {

// Certificates start this long before "now" so that a peer whose clock is a
// little behind ours accepts a certificate issued a moment ago.
constexpr long kClockSkewSeconds = 3600;
constexpr int64_t kMaxBackdateSeconds = int64_t{10} * 366 * 86400;
constexpr size_t kMaxDnsNameBytes = 253;

// `text` for an error message: at most 80 bytes, non-printable bytes as \xNN.
std::string Quote(std::string_view text) {
  std::string out = "\"";
  size_t n = 0;
  for (char c : text) {
    if (++n > 80) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += "\"";
  return out;
}

Status ValidateValidDays(int valid_days) {
  if (valid_days < 1 || valid_days > kMaxValidDays) {
    return Status::InvalidArgument("valid_days " + std::to_string(valid_days) +
                                   ": must be between 1 and " + std::to_string(kMaxValidDays));
  }
  return Status::Ok();
}

Status ValidateIpAddress(const std::string& ip) {
  unsigned char buf[sizeof(struct in6_addr)];
  if (ip.find(':') != std::string::npos ? inet_pton(AF_INET6, ip.c_str(), buf) == 1
                                        : inet_pton(AF_INET, ip.c_str(), buf) == 1) {
    return Status::Ok();
  }
  return Status::InvalidArgument("ip address " + Quote(ip) +
                                 ": not an IPv4 or IPv6 address literal");
}

Status ValidateDnsName(const std::string& dns) {
  std::string prefix = "dns name " + Quote(dns) + ": ";
  if (dns.empty() || dns.size() > kMaxDnsNameBytes) {
    return Status::InvalidArgument(prefix + "must be 1 to " + std::to_string(kMaxDnsNameBytes) +
                                   " bytes");
  }
  size_t label = 0;
  for (size_t i = 0; i <= dns.size(); ++i) {
    if (i == dns.size() || dns[i] == '.') {
      if (label == 0 || label > 63) {
        return Status::InvalidArgument(prefix + "each dot-separated label must be 1 to 63 bytes");
      }
      if (dns[i - 1] == '-' || dns[i - label] == '-') {
        return Status::InvalidArgument(prefix + "a label must not start or end with '-'");
      }
      label = 0;
      continue;
    }
    char c = dns[i];
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) {
      return Status::InvalidArgument(prefix + "only letters, digits, '-' and '.' are allowed");
    }
    ++label;
  }
  return Status::Ok();
}

// True if something (even a dangling symlink) is at `path`.
Result<bool> Exists(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  return Status::FromErrno(errno, "stat " + path);
}

Status EnsureNotExists(const std::string& path) {
  ASSIGN_OR_RETURN(bool exists, Exists(path));
  if (exists) return Status::AlreadyExists(path + " already exists; refusing to overwrite it");
  return Status::Ok();
}

// Creates `dir` with mode 0700 if it is missing (one level) and makes the new
// entry durable in its parent.
Status EnsurePrivateDir(const std::string& dir) {
  if (dir.empty()) return Status::InvalidArgument("directory: empty path");
  if (::mkdir(dir.c_str(), 0700) == 0) return PosixDiskInstance().SyncDir(ParentPath(dir));
  int err = errno;
  struct stat st {};
  if (err == EEXIST && ::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::Ok();
    return Status::InvalidArgument(dir + ": not a directory");
  }
  return Status::FromErrno(err, "create directory " + dir);
}

// Writes a new file with exactly `mode` through WriteFileAtomic. The temporary
// file is created here with `mode` first, so a private key is never readable
// by others, not even for a moment.
Status WriteNewFile(const std::string& path, const std::string& data, mode_t mode) {
  RETURN_IF_ERROR(EnsureNotExists(path));
  const std::string tmp = path + ".tmp";
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno(errno, "remove stale " + tmp);
  }
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return Status::FromErrno(errno, "create " + tmp);
  int rc = ::fchmod(fd, mode);  // the umask must not widen or narrow it
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    ::unlink(tmp.c_str());
    return Status::FromErrno(err, "chmod " + tmp);
  }
  auto bytes = std::as_bytes(std::span<const char>(data.data(), data.size()));
  Status s = WriteFileAtomic(PosixDiskInstance(), path, bytes);
  if (!s.ok()) ::unlink(tmp.c_str());  // best effort; the status says what failed
  return s;
}

Result<EvpPkeyPtr> GenerateP256Key() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr) return OpenSslError(StatusCode::kIOError, "generate EC P-256 key");
  return key;
}

Result<std::string> PemOf(int (*write)(BIO*, void*), void* object, std::string_view what) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || write(bio.get(), object) != 1) {
    return OpenSslError(StatusCode::kIOError, std::string("encode ") + std::string(what));
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  if (len <= 0) return Status::IOError(std::string("encode ") + std::string(what) + ": empty");
  return std::string(data, static_cast<size_t>(len));
}

Result<std::string> KeyPem(EVP_PKEY* key) {
  return PemOf(
      [](BIO* bio, void* k) {
        return PEM_write_bio_PrivateKey(bio, static_cast<EVP_PKEY*>(k), nullptr, nullptr, 0,
                                        nullptr, nullptr);
      },
      key, "private key");
}

Result<std::string> CertPem(X509* cert) {
  return PemOf([](BIO* bio, void* c) { return PEM_write_bio_X509(bio, static_cast<X509*>(c)); },
               cert, "certificate");
}

// A random positive 128-bit serial number (RFC 5280 allows up to 20 bytes).
Status SetRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return OpenSslError(StatusCode::kIOError, "random serial number");
  }
  bytes[0] &= 0x7f;  // positive in DER
  bytes[0] |= 0x40;  // and never shorter than 16 bytes, nor zero
  BignumPtr bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  Asn1IntegerPtr serial(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
  if (serial == nullptr || X509_set_serialNumber(cert, serial.get()) != 1) {
    return OpenSslError(StatusCode::kIOError, "set serial number");
  }
  return Status::Ok();
}

// Sets notBefore = now - skew - backdate, notAfter = now + days - backdate.
Status SetValidity(X509* cert, int valid_days, int64_t backdate_seconds) {
  const long back = static_cast<long>(backdate_seconds);
  if (X509_time_adj_ex(X509_getm_notBefore(cert), 0, -kClockSkewSeconds - back, nullptr) ==
          nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert), valid_days, -back, nullptr) == nullptr) {
    return OpenSslError(StatusCode::kIOError, "set validity");
  }
  return Status::Ok();
}

Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OpenSslError(StatusCode::kIOError,
                        std::string("add extension ") + OBJ_nid2sn(nid) + " = " + value);
  }
  return Status::Ok();
}

Result<X509NamePtr> MakeName(const std::vector<std::pair<const char*, std::string>>& entries) {
  X509NamePtr name(X509_NAME_new());
  if (name == nullptr) return OpenSslError(StatusCode::kIOError, "X509_NAME_new");
  for (const auto& [field, value] : entries) {
    if (X509_NAME_add_entry_by_txt(name.get(), field, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
      return OpenSslError(StatusCode::kIOError, std::string("subject ") + field);
    }
  }
  return name;
}

// A version 3 certificate for `key` with a random serial and the validity set.
Result<X509Ptr> NewCertificate(EVP_PKEY* key, const X509_NAME* subject, int valid_days,
                               int64_t backdate_seconds) {
  X509Ptr cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_pubkey(cert.get(), key) != 1 || X509_set_subject_name(cert.get(), subject) != 1) {
    return OpenSslError(StatusCode::kIOError, "build certificate");
  }
  RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  RETURN_IF_ERROR(SetValidity(cert.get(), valid_days, backdate_seconds));
  return cert;
}

Status Sign(X509* cert, EVP_PKEY* issuer_key) {
  if (X509_sign(cert, issuer_key, EVP_sha256()) <= 0) {
    return OpenSslError(StatusCode::kIOError, "sign certificate");
  }
  return Status::Ok();
}

// Writes key then certificate (a present .crt means a complete pair).
Status WritePair(const std::string& key_path, EVP_PKEY* key, const std::string& cert_path,
                 X509* cert) {
  ASSIGN_OR_RETURN(std::string key_pem, KeyPem(key));
  ASSIGN_OR_RETURN(std::string cert_pem, CertPem(cert));
  RETURN_IF_ERROR(WriteNewFile(key_path, key_pem, 0600));
  return WriteNewFile(cert_path, cert_pem, 0644);
}

Status ValidateRequest(const CertRequest& req) {
  RETURN_IF_ERROR(ValidateCertName(req.name));
  switch (req.role) {
    case Role::kNode:
    case Role::kUser:
    case Role::kAdmin:
      break;
    default:
      return Status::InvalidArgument("role " + std::to_string(static_cast<int>(req.role)) +
                                     ": not node, user or admin");
  }
  RETURN_IF_ERROR(ValidateValidDays(req.valid_days));
  if (req.backdate_seconds < 0 || req.backdate_seconds > kMaxBackdateSeconds) {
    return Status::InvalidArgument("backdate_seconds " + std::to_string(req.backdate_seconds) +
                                   ": must be between 0 and " +
                                   std::to_string(kMaxBackdateSeconds));
  }
  for (const std::string& ip : req.ip_addresses) RETURN_IF_ERROR(ValidateIpAddress(ip));
  for (const std::string& dns : req.dns_names) RETURN_IF_ERROR(ValidateDnsName(dns));
  return Status::Ok();
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kNode:
      return "node";
    case Role::kUser:
      return "user";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

std::string Identity::ToString() const {
  std::string out(RoleName(role));
  out += ':';
  out += name;
  return out;
}

Result<Identity> ParseIdentity(std::string_view common_name) {
  size_t colon = common_name.find(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("identity " + Quote(common_name) +
                                   ": expected node:<name>, user:<name> or admin:<name>");
  }
  std::string_view role = common_name.substr(0, colon);
  Identity id;
  if (role == "node") {
    id.role = Role::kNode;
  } else if (role == "user") {
    id.role = Role::kUser;
  } else if (role == "admin") {
    id.role = Role::kAdmin;
  } else {
    return Status::InvalidArgument("identity " + Quote(common_name) + ": unknown role " +
                                   Quote(role) + " (expected node, user or admin)");
  }
  std::string_view name = common_name.substr(colon + 1);
  Status s = ValidateCertName(name);
  if (!s.ok()) return s.WithContext("identity " + Quote(common_name));
  id.name = std::string(name);
  return id;
}

Status ValidateCertName(std::string_view name, std::string_view what) {
  std::string prefix = std::string(what) + " " + Quote(name) + ": ";
  if (name.empty() || name.size() > kMaxCertNameBytes) {
    return Status::InvalidArgument(prefix + "must be 1 to " + std::to_string(kMaxCertNameBytes) +
                                   " bytes, is " + std::to_string(name.size()));
  }
  if (name[0] == '.' || name[0] == '-') {
    return Status::InvalidArgument(prefix + "must not start with '.' or '-'");
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "byte 0x%02x at offset %zu is not allowed",
                    static_cast<unsigned char>(c), i);
      return Status::InvalidArgument(prefix + buf + " (only letters, digits, '_', '.', '-')");
    }
  }
  return Status::Ok();
}

Status CreateClusterCa(const std::string& dir, const std::string& cluster_name, int valid_days) {
  RETURN_IF_ERROR(ValidateCertName(cluster_name, "cluster name"));
  RETURN_IF_ERROR(ValidateValidDays(valid_days));
  const std::string cert_path = JoinPath(dir, kCaCertFileName);
  const std::string key_path = JoinPath(dir, kCaKeyFileName);
  RETURN_IF_ERROR(EnsurePrivateDir(dir));
  // Checked before any work: an existing CA is never replaced, and a lone
  // ca.key means an earlier creation was interrupted (remove it to retry).
  RETURN_IF_ERROR(EnsureNotExists(cert_path).WithContext("cluster CA"));
  RETURN_IF_ERROR(EnsureNotExists(key_path).WithContext("cluster CA"));

  ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateP256Key());
  ASSIGN_OR_RETURN(X509NamePtr subject,
                   MakeName({{"O", "Cairn cluster CA"}, {"CN", cluster_name}}));
  ASSIGN_OR_RETURN(X509Ptr cert, NewCertificate(key.get(), subject.get(), valid_days, 0));
  if (X509_set_issuer_name(cert.get(), subject.get()) != 1) {
    return OpenSslError(StatusCode::kIOError, "set issuer");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  RETURN_IF_ERROR(Sign(cert.get(), key.get()));
  return WritePair(key_path, key.get(), cert_path, cert.get());
}

Status IssueCertificate(const std::string& ca_dir, const CertRequest& req,
                        const std::string& out_dir) {
  RETURN_IF_ERROR(ValidateRequest(req));
  const std::string ca_cert_path = JoinPath(ca_dir, kCaCertFileName);
  const std::string ca_key_path = JoinPath(ca_dir, kCaKeyFileName);
  ASSIGN_OR_RETURN(X509Ptr ca_cert, internal::ReadCertificatePem(ca_cert_path, "CA certificate"));
  ASSIGN_OR_RETURN(EvpPkeyPtr ca_key, internal::ReadPrivateKeyPem(ca_key_path, "CA key"));
  if (X509_check_ca(ca_cert.get()) < 1) {
    return Status::FailedPrecondition(ca_cert_path + ": not a CA certificate");
  }
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
    return OpenSslError(StatusCode::kFailedPrecondition,
                        ca_key_path + " does not match " + ca_cert_path);
  }
  if (X509_cmp_current_time(X509_get0_notAfter(ca_cert.get())) <= 0) {
    return Status::FailedPrecondition(
        "the cluster CA " + ca_cert_path + " expired at " +
        internal::Asn1TimeToString(X509_get0_notAfter(ca_cert.get())));
  }

  const std::string key_path = JoinPath(out_dir, req.name + ".key");
  const std::string cert_path = JoinPath(out_dir, req.name + ".crt");
  RETURN_IF_ERROR(EnsurePrivateDir(out_dir));
  RETURN_IF_ERROR(EnsureNotExists(key_path));
  RETURN_IF_ERROR(EnsureNotExists(cert_path));

  const Identity identity{req.role, req.name};
  ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateP256Key());
  ASSIGN_OR_RETURN(X509NamePtr subject, MakeName({{"CN", identity.ToString()}}));
  ASSIGN_OR_RETURN(X509Ptr cert,
                   NewCertificate(key.get(), subject.get(), req.valid_days, req.backdate_seconds));
  if (ASN1_TIME_compare(X509_get0_notAfter(cert.get()), X509_get0_notAfter(ca_cert.get())) > 0) {
    return Status::InvalidArgument(
        "valid_days " + std::to_string(req.valid_days) +
        ": the certificate would outlive the CA (" + ca_cert_path + " expires at " +
        internal::Asn1TimeToString(X509_get0_notAfter(ca_cert.get())) + ")");
  }
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get())) != 1) {
    return OpenSslError(StatusCode::kIOError, "set issuer");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca_cert.get(), cert.get(), nullptr, nullptr, 0);
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_ext_key_usage, "serverAuth,clientAuth"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));

  std::vector<std::string> ips = req.ip_addresses;
  std::vector<std::string> dns = req.dns_names;
  if (req.role == Role::kNode && ips.empty() && dns.empty()) {
    ips = {"127.0.0.1"};
    dns = {"localhost"};
  }
  // Joined into one config string: validation admits no "," in an entry.
  std::string san;
  for (const std::string& ip : ips) san += (san.empty() ? "IP:" : ",IP:") + ip;
  for (const std::string& name : dns) san += (san.empty() ? "DNS:" : ",DNS:") + name;
  if (!san.empty()) {
    RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_subject_alt_name, san));
  }
  RETURN_IF_ERROR(Sign(cert.get(), ca_key.get()));
  return WritePair(key_path, key.get(), cert_path, cert.get());
}

Result<std::string> IdentityFromCertificateFile(const std::string& path) {
  ASSIGN_OR_RETURN(X509Ptr cert, internal::ReadCertificatePem(path, "certificate"));
  Result<std::string> cn = internal::SubjectCommonName(cert.get());
  if (!cn.ok()) return cn.status().WithContext(path);
  Result<Identity> id = ParseIdentity(*cn);
  if (!id.ok()) return id.status().WithContext(path + ": not a Cairn certificate");
  return id->ToString();
}

}  // namespace cairn
