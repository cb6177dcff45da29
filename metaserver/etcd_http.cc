#include "metaserver/etcd_http.h"

#include <curl/curl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <mutex>
#include <nlohmann/json.hpp>

namespace cairn::metaserver {
namespace {

// An answer larger than this is not one etcd would send us.
constexpr size_t kMaxAnswerBytes = 256u << 20;
// Idle CURL handles kept for reuse; more are closed when released.
constexpr size_t kMaxIdleHandles = 16;
// How long DiagnoseTls listens for the server's verdict on our certificate.
constexpr auto kTlsVerdictWait = std::chrono::milliseconds(500);

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Sink {
  std::string body;
  bool too_large = false;
};

size_t WriteBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  if (sink->body.size() + n > kMaxAnswerBytes) {
    sink->too_large = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  sink->body.append(data, n);
  return n;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const std::atomic<bool>*>(user);
  return cancel != nullptr && cancel->load() ? 1 : 0;
}

long ClampMillis(Nanos d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms < 1) return 1;
  if (ms > static_cast<int64_t>(LONG_MAX)) return LONG_MAX;
  return static_cast<long>(ms);
}

Status CheckReadable(const std::string& path, std::string_view what) {
  if (path.empty()) return Status::Ok();
  if (::access(path.c_str(), R_OK) != 0) {
    return Status::FromErrno(errno, "etcd " + std::string(what) + " file " + path);
  }
  return Status::Ok();
}

// True for TLS failures: the peer's certificate did not verify, or our
// certificate or key could not be used, or the peer refused our certificate.
bool IsTlsFailure(CURLcode rc, std::string_view detail) {
  switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
      return true;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
      // With TLS 1.3 the server checks our certificate after the handshake;
      // its refusal arrives as an alert on the first read.
      return detail.find("alert") != std::string_view::npos;
    default:
      return false;
  }
}

}  // namespace

Status EtcdOptions::Validate() const {
  if (endpoints.empty()) return Status::InvalidArgument("etcd: no endpoints");
  for (const std::string& e : endpoints) {
    if (!e.starts_with("https://") && !e.starts_with("http://")) {
      return Status::InvalidArgument("etcd endpoint '" + e + "' is not an http(s):// URL");
    }
    if (e.ends_with("/")) {
      return Status::InvalidArgument("etcd endpoint '" + e + "' must not end with '/'");
    }
  }
  if (cert_file.empty() != key_file.empty()) {
    return Status::InvalidArgument("etcd: cert_file and key_file go together");
  }
  if (connect_timeout <= Nanos(0) || request_timeout <= Nanos(0)) {
    return Status::InvalidArgument("etcd: timeouts must be positive");
  }
  RETURN_IF_ERROR(CheckReadable(ca_file, "CA"));
  RETURN_IF_ERROR(CheckReadable(cert_file, "certificate"));
  return CheckReadable(key_file, "key");
}

StatusCode StatusCodeFromGrpc(int64_t grpc_code, std::string_view message) {
  switch (grpc_code) {
    case 3:   // INVALID_ARGUMENT
    case 11:  // OUT_OF_RANGE (e.g. a compacted revision)
      return StatusCode::kInvalidArgument;
    case 4:
      return StatusCode::kTimeout;  // DEADLINE_EXCEEDED
    case 5:
      return StatusCode::kNotFound;
    case 6:
      return StatusCode::kAlreadyExists;
    case 7:   // PERMISSION_DENIED
    case 16:  // UNAUTHENTICATED
      return StatusCode::kPermissionDenied;
    case 8:
      return StatusCode::kNoSpace;  // RESOURCE_EXHAUSTED: quota exceeded
    case 9:
      return StatusCode::kFailedPrecondition;
    case 2:  // UNKNOWN: the election service wraps its errors in it
      // "etcdserver: requested lease not found", "election: no leader".
      if (message.find("not found") != std::string_view::npos ||
          message.find("election: no leader") != std::string_view::npos) {
        return StatusCode::kNotFound;
      }
      return StatusCode::kUnavailable;
    default:  // UNAVAILABLE (14) and the rest
      return StatusCode::kUnavailable;
  }
}

EtcdHttpClient::EtcdHttpClient(EtcdOptions options)
    : options_(std::move(options)), log_("metaserver", "etcd") {
  GlobalInitOnce();
}

EtcdHttpClient::~EtcdHttpClient() {
  MutexLock lock(&mu_);
  for (CURL* h : idle_) curl_easy_cleanup(h);
  idle_.clear();
}

CURL* EtcdHttpClient::AcquireHandle() {
  {
    MutexLock lock(&mu_);
    if (!idle_.empty()) {
      CURL* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void EtcdHttpClient::ReleaseHandle(CURL* handle) {
  // Drop the pointers into the finished call's stack (error buffer, sink);
  // reset keeps the open connection.
  curl_easy_reset(handle);
  {
    MutexLock lock(&mu_);
    if (idle_.size() < kMaxIdleHandles) {
      idle_.push_back(handle);
      return;
    }
  }
  curl_easy_cleanup(handle);
}

Result<std::string> EtcdHttpClient::Post(const Call& call) {
  const size_t n = options_.endpoints.size();
  const size_t first = preferred_.load() % n;
  std::string failures;
  bool permission_denied = false;
  for (size_t i = 0; i < n; ++i) {
    const size_t index = (first + i) % n;
    const std::string& endpoint = options_.endpoints[index];
    bool maybe_sent = false;
    Result<std::string> r = PostOnce(endpoint, call, &maybe_sent);
    if (r.ok()) {
      preferred_.store(index);
      return r;
    }
    const Status& s = r.status();
    // Answers from etcd itself (other than Unavailable) are final.
    const bool transport = s.code() == StatusCode::kUnavailable ||
                           s.code() == StatusCode::kTimeout ||
                           s.code() == StatusCode::kPermissionDenied;
    const bool cancelled = call.cancel != nullptr && call.cancel->load();
    if (!transport || cancelled) return s;
    if (maybe_sent && !call.idempotent) {
      return Status(s.code(), s.message() + " (the request may or may not have been applied)");
    }
    if (s.code() == StatusCode::kPermissionDenied) permission_denied = true;
    LOG_DEBUG(log_) << s.ToString() << (i + 1 < n ? "; trying the next endpoint" : "");
    if (n == 1) return s;
    if (!failures.empty()) failures += "; ";
    failures += s.message();
  }
  std::string message = "no etcd endpoint answered: " + failures;
  return permission_denied ? Status::PermissionDenied(std::move(message))
                           : Status::Unavailable(std::move(message));
}

void EtcdHttpClient::SetTransportOptions(CURL* h) const {
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ClampMillis(options_.connect_timeout));
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  // HTTP/1.1: one request per connection at a time, and a campaign that is
  // abandoned ends with its connection (etcd then withdraws the candidacy).
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
  if (!options_.cert_file.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, options_.cert_file.c_str());
    curl_easy_setopt(h, CURLOPT_SSLKEY, options_.key_file.c_str());
  }
}

Status EtcdHttpClient::DiagnoseTls(const std::string& endpoint) const {
  CURL* h = curl_easy_init();
  if (h == nullptr) return Status::Ok();
  char detail[CURL_ERROR_SIZE] = {0};
  SetTransportOptions(h);
  curl_easy_setopt(h, CURLOPT_URL, endpoint.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
  Status verdict;
  CURLcode rc = curl_easy_perform(h);
  auto why = [&] { return std::string(detail[0] != '\0' ? detail : curl_easy_strerror(rc)); };
  if (rc != CURLE_OK) {
    if (IsTlsFailure(rc, why())) verdict = Status::PermissionDenied("TLS refused: " + why());
  } else {
    // Listen without sending: a server that refuses our certificate sends an
    // alert and closes; one that accepts it sends nothing (but tickets).
    curl_socket_t sock = CURL_SOCKET_BAD;
    curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &sock);
    const auto deadline = std::chrono::steady_clock::now() + kTlsVerdictWait;
    while (sock != CURL_SOCKET_BAD && std::chrono::steady_clock::now() < deadline) {
      char buf[256];
      size_t n = 0;
      rc = curl_easy_recv(h, buf, sizeof(buf), &n);
      if (rc == CURLE_AGAIN) {
        pollfd pfd{sock, POLLIN, 0};
        ::poll(&pfd, 1, 20);
        continue;
      }
      if (rc != CURLE_OK || n == 0) {
        // A healthy etcd keeps an idle new connection open far longer.
        const std::string alert = why().find("alert") != std::string::npos ? ": " + why() : "";
        verdict = Status::PermissionDenied(
            "TLS refused: the server closed the connection right after the handshake, "
            "before any request: it does not accept our client certificate" +
            alert);
      }
      break;
    }
  }
  curl_easy_cleanup(h);
  return verdict;
}

Result<std::string> EtcdHttpClient::PostOnce(const std::string& endpoint, const Call& call,
                                             bool* maybe_sent) {
  *maybe_sent = false;
  const std::string url = endpoint + std::string(call.path);
  CURL* h = AcquireHandle();
  if (h == nullptr) return Status::Unavailable("curl_easy_init failed for " + url);

  // Reset keeps the handle's open connections; every option is set again.
  curl_easy_reset(h);
  Sink sink;
  char detail[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  const Nanos timeout = call.timeout > Nanos(0) ? call.timeout : options_.request_timeout;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, call.body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ClampMillis(timeout));
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  SetTransportOptions(h);
  if (call.cancel != nullptr) {
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &OnProgress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(call.cancel));
  }

  const CURLcode rc = curl_easy_perform(h);
  long http_status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http_status);
  curl_off_t pretransfer_us = 0;
  curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
  long new_connections = 0;
  curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &new_connections);
  // A handle that failed may hold a broken connection: do not reuse it.
  if (rc == CURLE_OK) {
    ReleaseHandle(h);
  } else {
    curl_easy_cleanup(h);
  }
  curl_slist_free_all(headers);

  if (rc != CURLE_OK) {
    std::string why = detail[0] != '\0' ? detail : curl_easy_strerror(rc);
    std::string where = "etcd at " + url + ": ";
    // pretransfer is reached once connected (and the TLS handshake is done).
    *maybe_sent = pretransfer_us > 0;
    if (IsTlsFailure(rc, why)) {
      *maybe_sent = false;
      return Status::PermissionDenied(where + "TLS refused: " + why);
    }
    // With TLS 1.3 a server that refuses our certificate says so after the
    // handshake, often racing our request into a reset connection. When a
    // fresh connection breaks like that, ask again without sending anything.
    const bool broken = rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR ||
                        rc == CURLE_GOT_NOTHING || rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM;
    if (broken && new_connections > 0 && endpoint.starts_with("https://")) {
      Status verdict = DiagnoseTls(endpoint);
      if (!verdict.ok()) {
        *maybe_sent = false;  // refused: nothing was applied
        return Status(verdict.code(), where + verdict.message());
      }
    }
    switch (rc) {
      case CURLE_ABORTED_BY_CALLBACK:
        return Status::Timeout(where + "cancelled");
      case CURLE_OPERATION_TIMEDOUT:
        return *maybe_sent ? Status::Timeout(where + "no answer: " + why)
                           : Status::Unavailable(where + "cannot connect: " + why);
      case CURLE_WRITE_ERROR:
        if (sink.too_large) {
          return Status::Corruption(where + "answer larger than " +
                                    std::to_string(kMaxAnswerBytes) + " bytes");
        }
        break;
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_CONNECT:
        *maybe_sent = false;
        return Status::Unavailable(where + "cannot connect: " + why);
      default:
        break;
    }
    return Status::Unavailable(where + why);
  }

  *maybe_sent = true;
  if (http_status == 200) return std::move(sink.body);

  // etcd answers errors as {"error": ..., "code": <gRPC code>, "message": ...}.
  const std::string where = "etcd at " + url + ": ";
  nlohmann::json j = nlohmann::json::parse(sink.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("code") && j["code"].is_number_integer() &&
      j.contains("message") && j["message"].is_string()) {
    const auto code = j["code"].get<int64_t>();
    const auto& message = j["message"].get_ref<const std::string&>();
    return Status(StatusCodeFromGrpc(code, message), where + message);
  }
  std::string excerpt = sink.body.substr(0, 200);
  return Status::Corruption(where + "unexpected HTTP " + std::to_string(http_status) +
                            " answer: " + excerpt);
}

}  // namespace cairn::metaserver
