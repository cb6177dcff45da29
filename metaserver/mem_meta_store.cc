#include "metaserver/mem_meta_store.h"

#include <thread>

namespace cairn::metaserver {
namespace {

std::string LeaseName(int64_t lease) { return "lease " + std::to_string(lease); }

// How often a blocked Campaign looks again, in real time.
constexpr auto kCampaignPoll = std::chrono::milliseconds(1);

}  // namespace

MemMetaStore::MemMetaStore(Clock* clock) : clock_(clock != nullptr ? clock : &RealClock()) {}

KeyValue MemMetaStore::ToKeyValue(const std::string& key, const Entry& e) {
  return KeyValue{
      key, e.value, e.create_revision, e.mod_revision, e.version, StoreLeaseId(e.lease)};
}

int64_t MemMetaStore::Revision() {
  MutexLock lock(&mu_);
  ExpireLeasesLocked();
  return revision_;
}

void MemMetaStore::ExpireLeasesLocked() {
  const Nanos now = clock_->Now();
  for (auto it = leases_.begin(); it != leases_.end();) {
    auto next = std::next(it);
    if (it->second.deadline <= now) RevokeLocked(it);
    it = next;
  }
}

void MemMetaStore::RevokeLocked(std::map<int64_t, Lease>::iterator it) {
  bool changed = false;
  // Copy: DeleteLocked detaches keys from this very set.
  const std::set<std::string> keys = it->second.keys;
  for (const std::string& key : keys) changed |= DeleteLocked(key);
  if (changed) ++revision_;
  leases_.erase(it);
}

bool MemMetaStore::DeleteLocked(const std::string& key) {
  auto it = kv_.find(key);
  if (it == kv_.end()) return false;
  if (it->second.lease != 0) {
    auto lit = leases_.find(it->second.lease);
    if (lit != leases_.end()) lit->second.keys.erase(key);
  }
  kv_.erase(it);
  return true;
}

void MemMetaStore::PutLocked(const std::string& key, const std::string& value, int64_t lease,
                             int64_t rev) {
  Entry& e = kv_[key];
  if (e.create_revision == 0) {
    e.create_revision = rev;
    e.version = 0;
  }
  if (e.lease != lease && e.lease != 0) {
    auto lit = leases_.find(e.lease);
    if (lit != leases_.end()) lit->second.keys.erase(key);
  }
  if (lease != 0) leases_.at(lease).keys.insert(key);
  e.value = value;
  e.mod_revision = rev;
  e.version++;
  e.lease = lease;
}

Result<std::optional<KeyValue>> MemMetaStore::Get(std::string_view key) {
  RETURN_IF_ERROR(ValidateKey(key));
  MutexLock lock(&mu_);
  ExpireLeasesLocked();
  auto it = kv_.find(std::string(key));
  if (it == kv_.end()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(ToKeyValue(it->first, it->second));
}

Result<std::vector<KeyValue>> MemMetaStore::List(std::string_view prefix) {
  if (prefix.size() > kMaxKeyBytes) return Status::InvalidArgument("prefix too long");
  MutexLock lock(&mu_);
  ExpireLeasesLocked();
  std::vector<KeyValue> out;
  for (auto it = kv_.lower_bound(std::string(prefix));
       it != kv_.end() && std::string_view(it->first).starts_with(prefix); ++it) {
    out.push_back(ToKeyValue(it->first, it->second));
  }
  return out;
}

Result<TxnResult> MemMetaStore::Txn(const std::vector<Compare>& compares,
                                    const std::vector<Op>& then_ops,
                                    const std::vector<Op>& else_ops) {
  RETURN_IF_ERROR(ValidateTxn(compares, then_ops, else_ops));
  MutexLock lock(&mu_);
  ExpireLeasesLocked();

  bool succeeded = true;
  for (const Compare& c : compares) {
    auto it = kv_.find(c.key);
    switch (c.target) {
      case Compare::Target::kModRevision:
        succeeded = (it == kv_.end() ? 0 : it->second.mod_revision) == c.mod_revision;
        break;
      case Compare::Target::kValue:
        succeeded = it != kv_.end() && it->second.value == c.value;
        break;
    }
    if (!succeeded) break;
  }
  const std::vector<Op>& ops = succeeded ? then_ops : else_ops;

  // As etcd: an unknown lease fails the whole transaction before any write.
  for (const Op& op : ops) {
    if (op.type == Op::Type::kPut && op.lease.value() != 0 &&
        leases_.find(op.lease.value()) == leases_.end()) {
      return Status::NotFound(LeaseName(op.lease.value()) + " not found (put of '" + op.key + "')");
    }
  }

  const int64_t rev = revision_ + 1;
  bool changed = false;
  for (const Op& op : ops) {
    switch (op.type) {
      case Op::Type::kPut:
        PutLocked(op.key, op.value, op.lease.value(), rev);
        changed = true;
        break;
      case Op::Type::kDelete:
        changed |= DeleteLocked(op.key);
        break;
    }
  }
  if (changed) revision_ = rev;
  return TxnResult{succeeded, revision_};
}

Result<LeaseGrant> MemMetaStore::Grant(std::chrono::seconds ttl) {
  RETURN_IF_ERROR(ValidateLeaseTtl(ttl));
  MutexLock lock(&mu_);
  ExpireLeasesLocked();
  const int64_t id = next_lease_++;
  leases_[id] = Lease{ttl, clock_->Now() + ttl, {}};
  return LeaseGrant{StoreLeaseId(id), ttl};
}

Result<std::chrono::seconds> MemMetaStore::KeepAlive(StoreLeaseId lease) {
  MutexLock lock(&mu_);
  ExpireLeasesLocked();
  auto it = leases_.find(lease.value());
  if (it == leases_.end()) return Status::NotFound(LeaseName(lease.value()) + " not found");
  it->second.deadline = clock_->Now() + it->second.ttl;
  return it->second.ttl;
}

Status MemMetaStore::Revoke(StoreLeaseId lease) {
  MutexLock lock(&mu_);
  ExpireLeasesLocked();
  auto it = leases_.find(lease.value());
  if (it == leases_.end()) return Status::NotFound(LeaseName(lease.value()) + " not found");
  RevokeLocked(it);
  return Status::Ok();
}

std::map<std::string, MemMetaStore::Entry>::const_iterator MemMetaStore::LeaderLocked(
    std::string_view election) const {
  const std::string prefix = std::string(election) + "/";
  auto best = kv_.end();
  for (auto it = kv_.lower_bound(prefix);
       it != kv_.end() && std::string_view(it->first).starts_with(prefix); ++it) {
    if (best == kv_.end() || it->second.create_revision < best->second.create_revision) best = it;
  }
  return best;
}

Result<LeaderKey> MemMetaStore::Campaign(std::string_view election, StoreLeaseId lease,
                                         std::string_view value, Nanos timeout,
                                         const std::atomic<bool>* cancel) {
  RETURN_IF_ERROR(ValidateCampaign(election, lease, value, timeout));
  const std::string key = CandidateKey(election, lease);
  const Nanos deadline = clock_->Now() + timeout;
  int64_t my_rev = 0;
  {
    MutexLock lock(&mu_);
    ExpireLeasesLocked();
    if (leases_.find(lease.value()) == leases_.end()) {
      return Status::NotFound(LeaseName(lease.value()) + " not found (campaign for '" +
                              std::string(election) + "')");
    }
    // etcd's recipe: create the candidacy key, or reuse this lease's one and
    // publish the new value on it (Proclaim).
    auto it = kv_.find(key);
    if (it == kv_.end()) {
      my_rev = ++revision_;
      PutLocked(key, std::string(value), lease.value(), my_rev);
    } else {
      my_rev = it->second.create_revision;
      if (it->second.value != value || it->second.lease != lease.value()) {
        ++revision_;
        PutLocked(key, std::string(value), lease.value(), revision_);
      }
    }
  }
  for (;;) {
    {
      MutexLock lock(&mu_);
      ExpireLeasesLocked();
      auto it = kv_.find(key);
      if (it == kv_.end() || it->second.create_revision != my_rev) {
        return Status::FailedPrecondition("candidacy " + key + " vanished while campaigning (" +
                                          LeaseName(lease.value()) + " expired or resigned)");
      }
      if (LeaderLocked(election) == it) {
        return LeaderKey{std::string(election), key, my_rev, lease};
      }
      const bool cancelled = cancel != nullptr && cancel->load();
      if (cancelled || clock_->Now() >= deadline) {
        if (DeleteLocked(key)) ++revision_;
        return Status::Timeout(std::string(cancelled ? "cancelled" : "timed out") +
                               " campaigning for '" + std::string(election) +
                               "'; candidacy withdrawn");
      }
    }
    std::this_thread::sleep_for(kCampaignPoll);
  }
}

Result<std::optional<KeyValue>> MemMetaStore::Leader(std::string_view election) {
  if (election.empty()) return Status::InvalidArgument("empty election name");
  MutexLock lock(&mu_);
  ExpireLeasesLocked();
  auto it = LeaderLocked(election);
  if (it == kv_.end()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(ToKeyValue(it->first, it->second));
}

Status MemMetaStore::Resign(const LeaderKey& leader) {
  RETURN_IF_ERROR(ValidateKey(leader.key));
  MutexLock lock(&mu_);
  ExpireLeasesLocked();
  auto it = kv_.find(leader.key);
  if (it != kv_.end() && it->second.create_revision == leader.revision) {
    DeleteLocked(leader.key);
    ++revision_;
  }
  return Status::Ok();
}

}  // namespace cairn::metaserver
