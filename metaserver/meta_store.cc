#include "metaserver/meta_store.h"

#include <cstdio>
#include <set>

namespace cairn::metaserver {
namespace {

Status ValidateOps(const std::vector<Op>& ops, std::string_view branch) {
  if (ops.size() > kMaxTxnOps) {
    return Status::InvalidArgument(std::string(branch) + ": " + std::to_string(ops.size()) +
                                   " operations, more than " + std::to_string(kMaxTxnOps));
  }
  std::set<std::string_view> keys;
  for (const Op& op : ops) {
    RETURN_IF_ERROR(ValidateKey(op.key).WithContext(branch));
    if (op.type == Op::Type::kPut && op.value.size() > kMaxValueBytes) {
      return Status::InvalidArgument(std::string(branch) + ": value of '" + op.key + "' is " +
                                     std::to_string(op.value.size()) + " bytes, more than " +
                                     std::to_string(kMaxValueBytes));
    }
    if (op.type == Op::Type::kPut && op.lease.value() < 0) {
      return Status::InvalidArgument(std::string(branch) + ": negative lease for '" + op.key + "'");
    }
    if (!keys.insert(op.key).second) {
      return Status::InvalidArgument(std::string(branch) + ": key '" + op.key +
                                     "' appears twice in one transaction");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<int64_t> MetaStore::Put(std::string key, std::string value, StoreLeaseId lease) {
  ASSIGN_OR_RETURN(TxnResult r, Txn({}, {Op::Put(std::move(key), std::move(value), lease)}));
  return r.revision;
}

Result<int64_t> MetaStore::Delete(std::string key) {
  ASSIGN_OR_RETURN(TxnResult r, Txn({}, {Op::Delete(std::move(key))}));
  return r.revision;
}

Status ValidateKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("empty key");
  if (key.size() > kMaxKeyBytes) {
    return Status::InvalidArgument("key of " + std::to_string(key.size()) + " bytes, more than " +
                                   std::to_string(kMaxKeyBytes));
  }
  return Status::Ok();
}

Status ValidateTxn(const std::vector<Compare>& compares, const std::vector<Op>& then_ops,
                   const std::vector<Op>& else_ops) {
  if (compares.size() > kMaxTxnOps) {
    return Status::InvalidArgument(std::to_string(compares.size()) +
                                   " compares in one transaction, more than " +
                                   std::to_string(kMaxTxnOps));
  }
  for (const Compare& c : compares) {
    RETURN_IF_ERROR(ValidateKey(c.key).WithContext("compare"));
    if (c.target == Compare::Target::kModRevision && c.mod_revision < 0) {
      return Status::InvalidArgument("compare: negative mod_revision for '" + c.key + "'");
    }
    if (c.target == Compare::Target::kValue && c.value.size() > kMaxValueBytes) {
      return Status::InvalidArgument("compare: value for '" + c.key + "' too large");
    }
  }
  RETURN_IF_ERROR(ValidateOps(then_ops, "then"));
  return ValidateOps(else_ops, "else");
}

Status ValidateLeaseTtl(std::chrono::seconds ttl) {
  if (ttl < std::chrono::seconds(1) || ttl > kMaxLeaseTtl) {
    return Status::InvalidArgument("lease TTL " + std::to_string(ttl.count()) +
                                   " s is outside [1, " + std::to_string(kMaxLeaseTtl.count()) +
                                   "] s");
  }
  return Status::Ok();
}

Status ValidateCampaign(std::string_view election, StoreLeaseId lease, std::string_view value,
                        Nanos timeout) {
  if (election.empty()) return Status::InvalidArgument("empty election name");
  if (election.size() > kMaxElectionNameBytes) {
    return Status::InvalidArgument("election name longer than " +
                                   std::to_string(kMaxElectionNameBytes) + " bytes");
  }
  // etcd's gateway would silently create (and leak) a fresh lease for lease 0.
  if (lease.value() <= 0) {
    return Status::InvalidArgument("campaign for '" + std::string(election) +
                                   "' needs a lease (got " + std::to_string(lease.value()) + ")");
  }
  if (value.size() > kMaxValueBytes) {
    return Status::InvalidArgument("campaign value too large");
  }
  if (timeout < Nanos(0)) return Status::InvalidArgument("negative campaign timeout");
  return Status::Ok();
}

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

std::string CandidateKey(std::string_view election, StoreLeaseId lease) {
  char hex[24];
  std::snprintf(hex, sizeof(hex), "%llx", static_cast<unsigned long long>(lease.value()));
  std::string key(election);
  key += '/';
  key += hex;
  return key;
}

}  // namespace cairn::metaserver
