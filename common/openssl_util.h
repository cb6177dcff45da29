// Small OpenSSL helpers shared by certs.cc and tls.cc (not a public API).
//
// Owning pointers for OpenSSL objects, reading PEM files with clear errors,
// and turning the OpenSSL error queue into text. Thread-safe: OpenSSL 3's
// error queue is per thread.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cairn::internal {

template <auto kFree>
struct OpenSslDeleter {
  template <typename T>
  void operator()(T* p) const {
    kFree(p);
  }
};

using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslDeleter<BN_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpenSslDeleter<EVP_PKEY_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, OpenSslDeleter<X509_NAME_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OpenSslDeleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OpenSslDeleter<X509_STORE_CTX_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpenSslDeleter<X509_EXTENSION_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, OpenSslDeleter<ASN1_INTEGER_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, OpenSslDeleter<ASN1_TIME_free>>;

// Drains this thread's OpenSSL error queue: "reason; reason", or "" if empty.
std::string DrainOpenSslErrors();

// `context` plus the drained OpenSSL errors, as a Status with `code`.
Status OpenSslError(StatusCode code, std::string_view context);

// Reads the first PEM certificate / private key of a file. NotFound or
// PermissionDenied when the file cannot be opened, InvalidArgument when it
// holds no parsable PEM object of that kind. `what` names the file's role in
// messages ("CA certificate").
Result<X509Ptr> ReadCertificatePem(const std::string& path, std::string_view what);
Result<EvpPkeyPtr> ReadPrivateKeyPem(const std::string& path, std::string_view what);

// The subject common name (UTF-8) of `cert`; InvalidArgument if it has none.
Result<std::string> SubjectCommonName(const X509* cert);

// "2025-01-31 12:00:00 UTC" for messages.
std::string Asn1TimeToString(const ASN1_TIME* t);

}  // namespace cairn::internal
