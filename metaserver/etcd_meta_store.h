// EtcdMetaStore: the MetaStore on etcd 3.4 through its v3 JSON gateway
// (facts about the gateway: metaserver/README.md).
//
//   Get, List   POST /v3/kv/range (List: range_end = PrefixEnd(prefix))
//   Txn         POST /v3/kv/txn   (compares on MOD or VALUE, EQUAL)
//   Grant       POST /v3/lease/grant
//   KeepAlive   POST /v3/lease/keepalive (one message of the stream)
//   Revoke      POST /v3/lease/revoke
//   Campaign    POST /v3/election/campaign (blocks while another leads), then
//               a range on the returned key: etcd 3.4 also reports success to
//               a candidate whose lease expired while it waited.
//   Leader      POST /v3/election/leader ("election: no leader" -> nullopt)
//   Resign      POST /v3/election/resign
//
// Keys and values travel base64-encoded, 64-bit integers as JSON strings.
// Reads, keepalives and campaigns fail over to the next endpoint on any
// transport failure; writes only when they surely did not reach etcd (see
// etcd_http.h). Thread-safe.
#pragma once

#include <memory>

#include "metaserver/etcd_http.h"
#include "metaserver/meta_store.h"

namespace cairn::metaserver {

// A Campaign over HTTP waits at least this long, even with timeout 0: one
// round trip through the gateway and etcd's election service.
inline constexpr Nanos kMinEtcdCampaignWait = std::chrono::milliseconds(500);

class EtcdMetaStore final : public MetaStore {
 public:
  // Validates the options; does not contact etcd (the first call does).
  static Result<std::unique_ptr<EtcdMetaStore>> Open(EtcdOptions options);
  EtcdMetaStore(const EtcdMetaStore&) = delete;
  EtcdMetaStore& operator=(const EtcdMetaStore&) = delete;

  Result<std::optional<KeyValue>> Get(std::string_view key) override;
  Result<std::vector<KeyValue>> List(std::string_view prefix) override;
  Result<TxnResult> Txn(const std::vector<Compare>& compares, const std::vector<Op>& then_ops,
                        const std::vector<Op>& else_ops = {}) override;
  Result<LeaseGrant> Grant(std::chrono::seconds ttl) override;
  Result<std::chrono::seconds> KeepAlive(StoreLeaseId lease) override;
  Status Revoke(StoreLeaseId lease) override;
  Result<LeaderKey> Campaign(std::string_view election, StoreLeaseId lease, std::string_view value,
                             Nanos timeout, const std::atomic<bool>* cancel = nullptr) override;
  Result<std::optional<KeyValue>> Leader(std::string_view election) override;
  Status Resign(const LeaderKey& leader) override;

 private:
  explicit EtcdMetaStore(EtcdOptions options);

  // Range over [key, range_end) ("" range_end: the single key).
  Result<std::vector<KeyValue>> Range(std::string_view key, std::string_view range_end);

  EtcdHttpClient http_;
  const Logger log_;
};

}  // namespace cairn::metaserver
