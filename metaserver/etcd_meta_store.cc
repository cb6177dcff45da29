#include "metaserver/etcd_meta_store.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "metaserver/base64.h"

namespace cairn::metaserver {
namespace {

using Json = nlohmann::json;

// Every JSON access below checks types first; this catch is the edge that
// keeps a nlohmann exception (a case the checks missed) from escaping.
template <typename F>
auto CatchJson(std::string_view what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Json::exception& e) {
    return Status::Corruption("etcd " + std::string(what) + ": malformed answer: " + e.what());
  }
}

Status Malformed(std::string_view what, std::string_view detail) {
  return Status::Corruption("etcd " + std::string(what) +
                            ": malformed answer: " + std::string(detail));
}

Result<Json> ParseAnswer(const std::string& body, std::string_view what) {
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Malformed(what, "not a JSON object: " + body.substr(0, 200));
  }
  return j;
}

// A protobuf int64: a JSON string of digits (or a number); absent means 0.
Result<int64_t> Int64Field(const Json& obj, const char* name, std::string_view what) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return int64_t{0};
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) return v;
  }
  return Malformed(what, std::string("field '") + name + "' is not an int64");
}

// Protobuf bytes: base64 in a JSON string; absent means empty.
Result<std::string> BytesField(const Json& obj, const char* name, std::string_view what) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Malformed(what, std::string("field '") + name + "' not a string");
  Result<std::string> r = Base64Decode(it->get_ref<const std::string&>());
  if (!r.ok()) return Malformed(what, std::string("field '") + name + "': " + r.status().message());
  return r;
}

// The object at `name`; nullptr when absent.
Result<const Json*> ObjectField(const Json& obj, const char* name, std::string_view what) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return static_cast<const Json*>(nullptr);
  if (!it->is_object()) return Malformed(what, std::string("field '") + name + "' not an object");
  return &*it;
}

// Every etcd answer carries a header with the store's revision.
Result<int64_t> HeaderRevision(const Json& answer, std::string_view what) {
  ASSIGN_OR_RETURN(const Json* header, ObjectField(answer, "header", what));
  if (header == nullptr) return Malformed(what, "no header");
  ASSIGN_OR_RETURN(int64_t revision, Int64Field(*header, "revision", what));
  if (revision <= 0) return Malformed(what, "header without a revision");
  return revision;
}

Result<KeyValue> ParseKeyValue(const Json& j, std::string_view what) {
  if (!j.is_object()) return Malformed(what, "key-value not an object");
  KeyValue kv;
  ASSIGN_OR_RETURN(kv.key, BytesField(j, "key", what));
  ASSIGN_OR_RETURN(kv.value, BytesField(j, "value", what));
  ASSIGN_OR_RETURN(kv.create_revision, Int64Field(j, "create_revision", what));
  ASSIGN_OR_RETURN(kv.mod_revision, Int64Field(j, "mod_revision", what));
  ASSIGN_OR_RETURN(kv.version, Int64Field(j, "version", what));
  ASSIGN_OR_RETURN(int64_t lease, Int64Field(j, "lease", what));
  kv.lease = StoreLeaseId(lease);
  if (kv.key.empty() || kv.create_revision <= 0 || kv.mod_revision < kv.create_revision ||
      kv.version <= 0) {
    return Malformed(what, "key-value without key or revisions");
  }
  return kv;
}

std::string Int(int64_t v) { return std::to_string(v); }

Json EncodeOp(const Op& op) {
  switch (op.type) {
    case Op::Type::kPut: {
      Json put{{"key", Base64Encode(op.key)}, {"value", Base64Encode(op.value)}};
      if (op.lease.value() != 0) put["lease"] = Int(op.lease.value());
      return Json{{"request_put", std::move(put)}};
    }
    case Op::Type::kDelete:
      return Json{{"request_delete_range", Json{{"key", Base64Encode(op.key)}}}};
  }
  return Json::object();
}

Json EncodeCompare(const Compare& c) {
  Json j{{"key", Base64Encode(c.key)}, {"result", "EQUAL"}};
  switch (c.target) {
    case Compare::Target::kModRevision:
      j["target"] = "MOD";
      j["mod_revision"] = Int(c.mod_revision);
      break;
    case Compare::Target::kValue:
      j["target"] = "VALUE";
      j["value"] = Base64Encode(c.value);
      break;
  }
  return j;
}

Json EncodeLeader(const LeaderKey& leader) {
  return Json{{"name", Base64Encode(leader.election)},
              {"key", Base64Encode(leader.key)},
              {"rev", Int(leader.revision)},
              {"lease", Int(leader.lease.value())}};
}

}  // namespace

Result<std::unique_ptr<EtcdMetaStore>> EtcdMetaStore::Open(EtcdOptions options) {
  RETURN_IF_ERROR(options.Validate());
  return std::unique_ptr<EtcdMetaStore>(new EtcdMetaStore(std::move(options)));
}

EtcdMetaStore::EtcdMetaStore(EtcdOptions options)
    : http_(std::move(options)), log_("metaserver", "etcd") {}

Result<std::vector<KeyValue>> EtcdMetaStore::Range(std::string_view key,
                                                   std::string_view range_end) {
  return CatchJson("range", [&]() -> Result<std::vector<KeyValue>> {
    Json req{{"key", Base64Encode(key)}};
    if (!range_end.empty()) req["range_end"] = Base64Encode(range_end);
    ASSIGN_OR_RETURN(std::string body,
                     http_.Post({.path = "/v3/kv/range", .body = req.dump(), .idempotent = true}));
    ASSIGN_OR_RETURN(Json answer, ParseAnswer(body, "range"));
    RETURN_IF_ERROR(HeaderRevision(answer, "range").status());
    std::vector<KeyValue> out;
    auto kvs = answer.find("kvs");
    if (kvs != answer.end() && !kvs->is_null()) {
      if (!kvs->is_array()) return Malformed("range", "kvs not an array");
      for (const Json& j : *kvs) {
        ASSIGN_OR_RETURN(KeyValue kv, ParseKeyValue(j, "range"));
        out.push_back(std::move(kv));
      }
    }
    ASSIGN_OR_RETURN(int64_t count, Int64Field(answer, "count", "range"));
    if (count != static_cast<int64_t>(out.size())) {
      return Malformed("range", "count " + Int(count) + " but " +
                                    Int(static_cast<int64_t>(out.size())) + " key-values");
    }
    return out;
  });
}

Result<std::optional<KeyValue>> EtcdMetaStore::Get(std::string_view key) {
  RETURN_IF_ERROR(ValidateKey(key));
  ASSIGN_OR_RETURN(std::vector<KeyValue> kvs, Range(key, ""));
  if (kvs.empty()) return std::optional<KeyValue>();
  if (kvs.size() != 1 || kvs[0].key != key) {
    return Malformed("range", "asked for one key, got another or several");
  }
  return std::optional<KeyValue>(std::move(kvs[0]));
}

Result<std::vector<KeyValue>> EtcdMetaStore::List(std::string_view prefix) {
  if (prefix.size() > kMaxKeyBytes) return Status::InvalidArgument("prefix too long");
  // etcd: range_end "\0" means every key >= key; key "\0" is below every key.
  const std::string start = prefix.empty() ? std::string(1, '\0') : std::string(prefix);
  std::string end = PrefixEnd(prefix);
  if (end.empty()) end = std::string(1, '\0');
  ASSIGN_OR_RETURN(std::vector<KeyValue> kvs, Range(start, end));
  for (size_t i = 0; i < kvs.size(); ++i) {
    if (!kvs[i].key.starts_with(prefix) || (i > 0 && kvs[i - 1].key >= kvs[i].key)) {
      return Malformed("range", "keys outside the prefix or out of order");
    }
  }
  return kvs;
}

Result<TxnResult> EtcdMetaStore::Txn(const std::vector<Compare>& compares,
                                     const std::vector<Op>& then_ops,
                                     const std::vector<Op>& else_ops) {
  RETURN_IF_ERROR(ValidateTxn(compares, then_ops, else_ops));
  return CatchJson("txn", [&]() -> Result<TxnResult> {
    Json req{{"compare", Json::array()}, {"success", Json::array()}, {"failure", Json::array()}};
    for (const Compare& c : compares) req["compare"].push_back(EncodeCompare(c));
    for (const Op& op : then_ops) req["success"].push_back(EncodeOp(op));
    for (const Op& op : else_ops) req["failure"].push_back(EncodeOp(op));
    ASSIGN_OR_RETURN(std::string body,
                     http_.Post({.path = "/v3/kv/txn", .body = req.dump(), .idempotent = false}));
    ASSIGN_OR_RETURN(Json answer, ParseAnswer(body, "txn"));
    TxnResult result;
    ASSIGN_OR_RETURN(result.revision, HeaderRevision(answer, "txn"));
    auto succeeded = answer.find("succeeded");
    if (succeeded != answer.end() && !succeeded->is_null()) {
      if (!succeeded->is_boolean()) return Malformed("txn", "succeeded not a boolean");
      result.succeeded = succeeded->get<bool>();
    }
    return result;
  });
}

Result<LeaseGrant> EtcdMetaStore::Grant(std::chrono::seconds ttl) {
  RETURN_IF_ERROR(ValidateLeaseTtl(ttl));
  return CatchJson("lease grant", [&]() -> Result<LeaseGrant> {
    Json req{{"TTL", Int(ttl.count())}};
    // A grant sent twice only leaves an unused lease to expire: retry freely.
    ASSIGN_OR_RETURN(
        std::string body,
        http_.Post({.path = "/v3/lease/grant", .body = req.dump(), .idempotent = true}));
    ASSIGN_OR_RETURN(Json answer, ParseAnswer(body, "lease grant"));
    RETURN_IF_ERROR(HeaderRevision(answer, "lease grant").status());
    auto error = answer.find("error");
    if (error != answer.end() && error->is_string() &&
        !error->get_ref<const std::string&>().empty()) {
      return Status::Unavailable("etcd lease grant: " + error->get<std::string>());
    }
    ASSIGN_OR_RETURN(int64_t id, Int64Field(answer, "ID", "lease grant"));
    ASSIGN_OR_RETURN(int64_t granted, Int64Field(answer, "TTL", "lease grant"));
    if (id <= 0 || granted <= 0) return Malformed("lease grant", "no lease ID or TTL");
    return LeaseGrant{StoreLeaseId(id), std::chrono::seconds(granted)};
  });
}

Result<std::chrono::seconds> EtcdMetaStore::KeepAlive(StoreLeaseId lease) {
  return CatchJson("lease keepalive", [&]() -> Result<std::chrono::seconds> {
    Json req{{"ID", Int(lease.value())}};
    ASSIGN_OR_RETURN(
        std::string body,
        http_.Post({.path = "/v3/lease/keepalive", .body = req.dump(), .idempotent = true}));
    ASSIGN_OR_RETURN(Json answer, ParseAnswer(body, "lease keepalive"));
    // The gateway streams: {"result": {...}} or {"error": {...}}.
    ASSIGN_OR_RETURN(const Json* error, ObjectField(answer, "error", "lease keepalive"));
    if (error != nullptr) {
      ASSIGN_OR_RETURN(int64_t code, Int64Field(*error, "grpc_code", "lease keepalive"));
      auto message = error->find("message");
      std::string text = message != error->end() && message->is_string()
                             ? message->get<std::string>()
                             : std::string("error");
      return Status(StatusCodeFromGrpc(code, text), "etcd lease keepalive: " + text);
    }
    ASSIGN_OR_RETURN(const Json* result, ObjectField(answer, "result", "lease keepalive"));
    if (result == nullptr) return Malformed("lease keepalive", "no result");
    RETURN_IF_ERROR(HeaderRevision(*result, "lease keepalive").status());
    ASSIGN_OR_RETURN(int64_t ttl, Int64Field(*result, "TTL", "lease keepalive"));
    // An expired or unknown lease answers with TTL 0 (the field absent).
    if (ttl <= 0) return Status::NotFound("lease " + Int(lease.value()) + " not found (expired)");
    return std::chrono::seconds(ttl);
  });
}

Status EtcdMetaStore::Revoke(StoreLeaseId lease) {
  return CatchJson("lease revoke", [&]() -> Status {
    Json req{{"ID", Int(lease.value())}};
    ASSIGN_OR_RETURN(
        std::string body,
        http_.Post({.path = "/v3/lease/revoke", .body = req.dump(), .idempotent = false}));
    ASSIGN_OR_RETURN(Json answer, ParseAnswer(body, "lease revoke"));
    return HeaderRevision(answer, "lease revoke").status();
  });
}

Result<LeaderKey> EtcdMetaStore::Campaign(std::string_view election, StoreLeaseId lease,
                                          std::string_view value, Nanos timeout,
                                          const std::atomic<bool>* cancel) {
  RETURN_IF_ERROR(ValidateCampaign(election, lease, value, timeout));
  Result<LeaderKey> won = CatchJson("campaign", [&]() -> Result<LeaderKey> {
    Json req{{"name", Base64Encode(election)},
             {"lease", Int(lease.value())},
             {"value", Base64Encode(value)}};
    // Not idempotent for the transport: a campaign that timed out must not be
    // sent again to the next endpoint (the timeout is the answer).
    ASSIGN_OR_RETURN(std::string body,
                     http_.Post({.path = "/v3/election/campaign",
                                 .body = req.dump(),
                                 .idempotent = false,
                                 .timeout = std::max(timeout, kMinEtcdCampaignWait),
                                 .cancel = cancel}));
    ASSIGN_OR_RETURN(Json answer, ParseAnswer(body, "campaign"));
    ASSIGN_OR_RETURN(const Json* leader, ObjectField(answer, "leader", "campaign"));
    if (leader == nullptr) return Malformed("campaign", "no leader key");
    LeaderKey key;
    ASSIGN_OR_RETURN(key.election, BytesField(*leader, "name", "campaign"));
    ASSIGN_OR_RETURN(key.key, BytesField(*leader, "key", "campaign"));
    ASSIGN_OR_RETURN(key.revision, Int64Field(*leader, "rev", "campaign"));
    ASSIGN_OR_RETURN(int64_t leader_lease, Int64Field(*leader, "lease", "campaign"));
    key.lease = StoreLeaseId(leader_lease);
    if (key.election != election || key.key != CandidateKey(election, lease) ||
        key.lease != lease || key.revision <= 0) {
      return Malformed("campaign", "leader key does not match the candidacy");
    }
    return key;
  });
  if (!won.ok()) {
    if (won.status().code() == StatusCode::kTimeout) {
      // etcd withdraws the candidacy when it sees the connection close; make
      // sure, since it may have won just as we gave up.
      Status withdrawn = Txn({}, {Op::Delete(CandidateKey(election, lease))}).status();
      if (!withdrawn.ok()) {
        LOG_WARN(log_) << "could not withdraw candidacy in '" << election
                       << "': " << withdrawn.ToString() << " (it ends with lease " << lease.value()
                       << ")";
      }
      return Status::Timeout("campaign for '" + std::string(election) +
                             "': not leader in time; candidacy withdrawn (" +
                             won.status().message() + ")");
    }
    return won.status();
  }
  // etcd 3.4 also declares a candidate leader when its own key vanished (its
  // lease expired) while it waited: check that the candidacy still stands.
  ASSIGN_OR_RETURN(std::optional<KeyValue> mine, Get(won->key));
  if (!mine.has_value() || mine->create_revision != won->revision) {
    return Status::FailedPrecondition("candidacy " + won->key +
                                      " vanished while campaigning (lease " + Int(lease.value()) +
                                      " expired or resigned)");
  }
  return won;
}

Result<std::optional<KeyValue>> EtcdMetaStore::Leader(std::string_view election) {
  if (election.empty()) return Status::InvalidArgument("empty election name");
  return CatchJson("leader", [&]() -> Result<std::optional<KeyValue>> {
    Json req{{"name", Base64Encode(election)}};
    Result<std::string> body =
        http_.Post({.path = "/v3/election/leader", .body = req.dump(), .idempotent = true});
    if (!body.ok()) {
      // "election: no leader" (gRPC UNKNOWN, HTTP 500) maps to NotFound.
      if (body.status().code() == StatusCode::kNotFound) return std::optional<KeyValue>();
      return body.status();
    }
    ASSIGN_OR_RETURN(Json answer, ParseAnswer(*body, "leader"));
    RETURN_IF_ERROR(HeaderRevision(answer, "leader").status());
    ASSIGN_OR_RETURN(const Json* kv, ObjectField(answer, "kv", "leader"));
    if (kv == nullptr) return std::optional<KeyValue>();
    ASSIGN_OR_RETURN(KeyValue leader, ParseKeyValue(*kv, "leader"));
    return std::optional<KeyValue>(std::move(leader));
  });
}

Status EtcdMetaStore::Resign(const LeaderKey& leader) {
  RETURN_IF_ERROR(ValidateKey(leader.key));
  return CatchJson("resign", [&]() -> Status {
    Json req{{"leader", EncodeLeader(leader)}};
    // Resigning twice is harmless: it deletes the key only if it is this
    // candidacy's (same create revision).
    ASSIGN_OR_RETURN(
        std::string body,
        http_.Post({.path = "/v3/election/resign", .body = req.dump(), .idempotent = true}));
    ASSIGN_OR_RETURN(Json answer, ParseAnswer(body, "resign"));
    return HeaderRevision(answer, "resign").status();
  });
}

}  // namespace cairn::metaserver
