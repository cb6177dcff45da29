// EtcdHttpClient: POSTs JSON to etcd's v3 gateway over HTTPS with a client
// certificate (libcurl), failing over across the endpoints of an etcd cluster.
// It knows etcd only as far as its error envelope
// ({"error": ..., "code": <gRPC code>, "message": ...}); EtcdMetaStore speaks
// the requests.
//
// Retries: a call goes to the endpoint that answered last, then to the others
// in order. It moves on when the request surely did not reach the server
// (connection refused, unreachable, TLS handshake refused, connect timeout),
// and, for idempotent calls only, after any transport failure or a gRPC
// Unavailable answer. A non-idempotent call (a transaction) that fails after
// it may have been sent is not retried: its outcome is unknown and the error
// says so.
//
// Errors: Unavailable (no endpoint reachable; each endpoint's failure is in
// the message), Timeout (no answer within the timeout after sending),
// PermissionDenied (TLS verification or client certificate refused, gRPC
// PermissionDenied/Unauthenticated), Corruption (an answer that is not etcd's
// JSON), and the gRPC code of an error answer mapped to a StatusCode.
//
// Thread-safe: calls run concurrently, each on its own CURL handle taken from
// a small pool (a handle keeps its TLS connection open between calls).
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/logging.h"
#include "common/mutex.h"
#include "common/status.h"

typedef void CURL;  // NOLINT: matches <curl/curl.h> without including it

namespace cairn::metaserver {

struct EtcdOptions {
  // Client URLs of the etcd members, "https://host:port" ("http://" only for
  // development). Tried in order, starting with the last one that answered.
  std::vector<std::string> endpoints;
  // PEM files: the CA that signed the members' certificates, and this
  // client's certificate and key (etcd --client-cert-auth). Empty: not used.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // Per attempt on one endpoint: connecting (TCP and TLS), and the whole call.
  Nanos connect_timeout = std::chrono::seconds(2);
  Nanos request_timeout = std::chrono::seconds(5);

  // InvalidArgument when an option is missing or malformed; NotFound when a
  // named file cannot be read.
  Status Validate() const;
};

// Maps a gRPC status code (as etcd's gateway reports it) to a StatusCode.
StatusCode StatusCodeFromGrpc(int64_t grpc_code, std::string_view message);

class EtcdHttpClient {
 public:
  // `options` must have passed Validate().
  explicit EtcdHttpClient(EtcdOptions options);
  ~EtcdHttpClient();
  EtcdHttpClient(const EtcdHttpClient&) = delete;
  EtcdHttpClient& operator=(const EtcdHttpClient&) = delete;

  struct Call {
    std::string_view path;  // "/v3/kv/range"
    std::string_view body;  // the JSON request
    // True when sending it twice does no harm (reads, keepalive, campaign):
    // then any failure moves on to the next endpoint.
    bool idempotent = false;
    // Per attempt; 0 means options.request_timeout.
    Nanos timeout{0};
    // Aborts the call when it becomes true (checked about once a second while
    // waiting). Borrowed; may be null.
    const std::atomic<bool>* cancel = nullptr;
  };

  // The body of a 200 answer.
  Result<std::string> Post(const Call& call);

  const EtcdOptions& options() const { return options_; }

 private:
  // One try against one endpoint. `*maybe_sent` tells whether the request
  // may have reached etcd.
  Result<std::string> PostOnce(const std::string& endpoint, const Call& call, bool* maybe_sent);
  // The connection and TLS options every handle gets.
  void SetTransportOptions(CURL* handle) const;
  // After a fresh HTTPS connection broke: connects again without sending and
  // returns PermissionDenied if the server refuses our certificate, else OK.
  Status DiagnoseTls(const std::string& endpoint) const;
  CURL* AcquireHandle();
  void ReleaseHandle(CURL* handle);

  const EtcdOptions options_;
  const Logger log_;
  std::atomic<size_t> preferred_{0};  // index of the endpoint that answered last

  Mutex mu_;
  std::vector<CURL*> idle_ GUARDED_BY(mu_);  // owned; kept open for reuse
};

}  // namespace cairn::metaserver
