// MemMetaStore: the MetaStore in memory, for unit tests and the deterministic
// simulation. It follows etcd's revision, lease and election rules exactly
// (meta_store.h) so logic tested on it behaves the same on etcd.
//
// Determinism: the same sequence of calls with the same clock readings gives
// the same results (lease ids are 1, 2, 3, ...). Time comes only from the
// injected Clock: a lease expires once Now() >= its last grant or keepalive
// plus its TTL. Expiry is applied at the start of every call (each expired
// lease, in id order, deletes its keys at one new revision), so it is observed
// exactly when the clock says so and never behind the caller's back.
//
// Campaign with a timeout > 0 may block: it re-checks every millisecond of
// real time (so another thread may advance a ManualClock or resign), and
// measures its timeout on the injected clock. With timeout 0 it never blocks,
// which is what a single-threaded simulation uses.
//
// Thread-safe: one mutex guards everything.
#pragma once

#include <map>
#include <set>

#include "common/clock.h"
#include "common/mutex.h"
#include "metaserver/meta_store.h"

namespace cairn::metaserver {

class MemMetaStore final : public MetaStore {
 public:
  // `clock` is borrowed and must outlive the store; nullptr means RealClock().
  explicit MemMetaStore(Clock* clock = nullptr);
  MemMetaStore(const MemMetaStore&) = delete;
  MemMetaStore& operator=(const MemMetaStore&) = delete;

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

  // The store's current revision (after applying due expiries).
  int64_t Revision();

 private:
  struct Entry {
    std::string value;
    int64_t create_revision = 0;
    int64_t mod_revision = 0;
    int64_t version = 0;
    int64_t lease = 0;
  };
  struct Lease {
    std::chrono::seconds ttl{0};
    Nanos deadline{0};
    std::set<std::string> keys;
  };

  void ExpireLeasesLocked() REQUIRES(mu_);
  // Deletes `key` if present (the caller moves the revision); returns whether
  // it existed.
  bool DeleteLocked(const std::string& key) REQUIRES(mu_);
  void PutLocked(const std::string& key, const std::string& value, int64_t lease, int64_t rev)
      REQUIRES(mu_);
  // Ends the lease and deletes its keys at one new revision (if it had any).
  void RevokeLocked(std::map<int64_t, Lease>::iterator it) REQUIRES(mu_);
  // The leader's entry of `election`, or end().
  std::map<std::string, Entry>::const_iterator LeaderLocked(std::string_view election) const
      REQUIRES(mu_);
  static KeyValue ToKeyValue(const std::string& key, const Entry& e);

  Clock* const clock_;

  Mutex mu_;
  std::map<std::string, Entry> kv_ GUARDED_BY(mu_);
  std::map<int64_t, Lease> leases_ GUARDED_BY(mu_);
  int64_t revision_ GUARDED_BY(mu_) = 1;
  int64_t next_lease_ GUARDED_BY(mu_) = 1;
};

}  // namespace cairn::metaserver
