// The metaserver's consistent store (DESIGN.md "Metaserver group"): an
// etcd-shaped key-value interface so the metaserver logic runs the same on
// etcd (production, the demo) and in memory (tests, the simulation).
//
// Model (etcd v3's, which every implementation follows):
//  - The store has one revision, a counter that grows by one with every
//    transaction that changes something (a put, or a delete of a present key).
//    An empty store is at revision 1.
//  - A key carries create_revision (revision of the put that created it),
//    mod_revision (revision of its last put) and version (puts since it was
//    created, from 1). A deleted key is absent; re-created, it starts over.
//  - Every configuration change is a Txn: compares, then the "then" ops if all
//    compares hold, else the "else" ops, atomically at one new revision.
//  - A lease has a TTL; keys put with it are deleted (at one new revision) when
//    it expires or is revoked. KeepAlive restarts its TTL.
//  - Leader election is etcd's recipe (concurrency.Election): a candidate puts
//    "<election>/<lease id in lowercase hex>" with its lease; the leader is the
//    key under "<election>/" with the smallest create_revision.
//
// Concurrency: every method of every implementation is thread-safe.
// Errors: Unavailable (store not reachable), Timeout, PermissionDenied (TLS or
// authorization refused), NotFound (unknown lease), InvalidArgument (bad input,
// checked by ValidateTxn and friends the same way everywhere), Corruption (a
// malformed answer from the store).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/strong_id.h"

namespace cairn::metaserver {

// A lease of the store (an etcd lease), not a primary's lease. 0 is "none".
using StoreLeaseId = StrongId<struct StoreLeaseIdTag, int64_t>;

// Limits checked identically by every implementation (etcd's defaults allow
// 1.5 MiB per request and 128 operations per transaction).
inline constexpr size_t kMaxKeyBytes = 4096;
inline constexpr size_t kMaxValueBytes = 1u << 20;
inline constexpr size_t kMaxTxnOps = 128;  // compares, then ops, else ops: each
inline constexpr std::chrono::seconds kMaxLeaseTtl{24 * 3600};
// An election owns every key under "<election>/"; its name is not empty.
inline constexpr size_t kMaxElectionNameBytes = 256;

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  StoreLeaseId lease;  // 0 when the key has no lease

  bool operator==(const KeyValue&) const = default;
};

// One condition of a transaction.
struct Compare {
  enum class Target : uint8_t {
    kModRevision,  // the key's mod_revision equals `mod_revision` (0 = absent)
    kValue,        // the key is present and its value equals `value`
  };
  Target target = Target::kModRevision;
  std::string key;
  int64_t mod_revision = 0;
  std::string value;

  static Compare ModRevisionIs(std::string key, int64_t mod_revision) {
    return Compare{Target::kModRevision, std::move(key), mod_revision, {}};
  }
  static Compare Absent(std::string key) { return ModRevisionIs(std::move(key), 0); }
  // An absent key never equals any value, not even "".
  static Compare ValueIs(std::string key, std::string value) {
    return Compare{Target::kValue, std::move(key), 0, std::move(value)};
  }
};

// One write of a transaction.
struct Op {
  enum class Type : uint8_t { kPut, kDelete };
  Type type = Type::kPut;
  std::string key;
  std::string value;
  // Put only: the lease the key is attached to (0: none; a put without a lease
  // detaches the key from any lease it had). The lease must exist, or the
  // whole transaction fails with NotFound and changes nothing.
  StoreLeaseId lease;

  static Op Put(std::string key, std::string value, StoreLeaseId lease = StoreLeaseId()) {
    return Op{Type::kPut, std::move(key), std::move(value), lease};
  }
  // Deleting an absent key is allowed and changes nothing.
  static Op Delete(std::string key) { return Op{Type::kDelete, std::move(key), {}, {}}; }
};

struct TxnResult {
  bool succeeded = false;  // every compare held and the "then" ops were applied
  // The store's revision after the transaction: the revision of its writes if
  // it changed anything, else the current revision.
  int64_t revision = 0;
};

struct LeaseGrant {
  StoreLeaseId id;
  // The TTL the store granted: etcd raises a short one to its minimum (about
  // 1.5 x its election timeout, rounded up to whole seconds: 2 s by default).
  std::chrono::seconds ttl{0};
};

// Identifies one candidacy that won an election; pass it to Resign().
struct LeaderKey {
  std::string election;
  std::string key;       // "<election>/<lease hex>"
  int64_t revision = 0;  // the key's create_revision
  StoreLeaseId lease;

  bool operator==(const LeaderKey&) const = default;
};

class MetaStore {
 public:
  virtual ~MetaStore() = default;

  // The key, or nullopt when it is absent.
  virtual Result<std::optional<KeyValue>> Get(std::string_view key) = 0;

  // Every key that starts with `prefix` ("" lists everything), sorted by key.
  virtual Result<std::vector<KeyValue>> List(std::string_view prefix) = 0;

  // Atomically: if every compare holds apply then_ops, else else_ops. A key
  // may appear at most once among the ops of one branch.
  virtual Result<TxnResult> Txn(const std::vector<Compare>& compares,
                                const std::vector<Op>& then_ops,
                                const std::vector<Op>& else_ops = {}) = 0;

  // A new lease with (at least) `ttl`, between 1 s and kMaxLeaseTtl.
  virtual Result<LeaseGrant> Grant(std::chrono::seconds ttl) = 0;
  // Restarts the lease's TTL; returns it. NotFound if it expired or never was.
  virtual Result<std::chrono::seconds> KeepAlive(StoreLeaseId lease) = 0;
  // Ends the lease now and deletes its keys. NotFound if it is not alive.
  virtual Status Revoke(StoreLeaseId lease) = 0;

  // Becomes leader of `election` with `lease`, publishing `value` (make it
  // unique to this process incarnation: the leader fences its writes with
  // Compare::ValueIs(leader_key.key, value)). Blocks until this candidacy
  // leads, then returns its key. Campaigning again with the same lease reuses
  // the candidacy (and publishes the new value).
  //
  // Fails with Timeout when it does not lead within `timeout` or when
  // `*cancel` becomes true (borrowed; may be null; checked at least once a
  // second), after withdrawing this lease's candidacy (even one made by an
  // earlier call: the caller gave up leading). With timeout 0 the in-memory
  // store makes one attempt and never waits; the etcd store waits at least a
  // network round trip (kMinEtcdCampaignWait). FailedPrecondition when the
  // lease expired while waiting; NotFound when the lease is not alive.
  // The in-memory store measures `timeout` on its clock.
  virtual Result<LeaderKey> Campaign(std::string_view election, StoreLeaseId lease,
                                     std::string_view value, Nanos timeout,
                                     const std::atomic<bool>* cancel = nullptr) = 0;

  // The current leader's key and value, or nullopt when nobody leads.
  virtual Result<std::optional<KeyValue>> Leader(std::string_view election) = 0;

  // Gives up leadership (deletes the candidacy key if it is still this
  // candidacy's). OK when it is already gone.
  virtual Status Resign(const LeaderKey& leader) = 0;

  // Conveniences over Txn.
  Result<int64_t> Put(std::string key, std::string value, StoreLeaseId lease = StoreLeaseId());
  Result<int64_t> Delete(std::string key);
};

// Shared validation, so every implementation refuses the same inputs.
Status ValidateKey(std::string_view key);
Status ValidateTxn(const std::vector<Compare>& compares, const std::vector<Op>& then_ops,
                   const std::vector<Op>& else_ops);
Status ValidateLeaseTtl(std::chrono::seconds ttl);
Status ValidateCampaign(std::string_view election, StoreLeaseId lease, std::string_view value,
                        Nanos timeout);

// The first key after every key that starts with `prefix` (etcd's range_end
// for a prefix); "" when no such key exists (prefix empty or all 0xff).
std::string PrefixEnd(std::string_view prefix);

// "<election>/<lease in lowercase hex>": the candidacy key of etcd's recipe.
std::string CandidateKey(std::string_view election, StoreLeaseId lease);

}  // namespace cairn::metaserver
