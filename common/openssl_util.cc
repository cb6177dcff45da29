#include "common/openssl_util.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <cerrno>

namespace cairn::internal {

std::string DrainOpenSslErrors() {
  std::string out;
  while (unsigned long err = ERR_get_error()) {
    if (!out.empty()) out += "; ";
    const char* reason = ERR_reason_error_string(err);
    if (reason != nullptr) {
      out += reason;
    } else {
      char buf[256];
      ERR_error_string_n(err, buf, sizeof(buf));
      out += buf;
    }
  }
  return out;
}

Status OpenSslError(StatusCode code, std::string_view context) {
  std::string msg(context);
  std::string errors = DrainOpenSslErrors();
  if (!errors.empty()) {
    msg += ": ";
    msg += errors;
  }
  return Status(code, std::move(msg));
}

namespace {

// Opens `path` for reading; the errno of a failed open becomes the Status.
Result<BioPtr> OpenForRead(const std::string& path, std::string_view what) {
  if (path.empty()) return Status::InvalidArgument(std::string(what) + ": no file given");
  errno = 0;
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (bio == nullptr) {
    int err = errno;
    DrainOpenSslErrors();
    std::string context = std::string(what) + " " + path;
    if (err != 0) return Status::FromErrno(err, context);
    return Status::IOError(context + ": cannot open");
  }
  return bio;
}

}  // namespace

Result<X509Ptr> ReadCertificatePem(const std::string& path, std::string_view what) {
  ASSIGN_OR_RETURN(BioPtr bio, OpenForRead(path, what));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    return OpenSslError(StatusCode::kInvalidArgument,
                        std::string(what) + " " + path + ": not a PEM certificate");
  }
  return cert;
}

Result<EvpPkeyPtr> ReadPrivateKeyPem(const std::string& path, std::string_view what) {
  ASSIGN_OR_RETURN(BioPtr bio, OpenForRead(path, what));
  // No password callback: a passphrase-protected key fails here, with a message.
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return OpenSslError(StatusCode::kInvalidArgument,
                        std::string(what) + " " + path + ": not an unencrypted PEM private key");
  }
  return key;
}

Result<std::string> SubjectCommonName(const X509* cert) {
  const X509_NAME* subject = X509_get_subject_name(cert);
  int index = subject == nullptr ? -1 : X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return Status::InvalidArgument("certificate has no subject common name");
  if (X509_NAME_get_index_by_NID(subject, NID_commonName, index) >= 0) {
    return Status::InvalidArgument("certificate has more than one subject common name");
  }
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return OpenSslError(StatusCode::kInvalidArgument, "certificate common name");
  std::string cn(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  if (cn.find('\0') != std::string::npos) {
    return Status::InvalidArgument("certificate common name contains a NUL byte");
  }
  return cn;
}

std::string Asn1TimeToString(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return "(invalid time)";
  char buf[64];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return std::string(buf, n);
}

}  // namespace cairn::internal
