#include "metaserver/failover_service.h"

#include <sstream>

namespace cairn::metaserver {
namespace {

Status NotLeading() {
  return Status::Unavailable("failover: this metaserver is not serving as leader");
}

std::string NodeName(const ClusterMap& m, NodeId id) {
  const NodeEntry* n = m.FindNode(id);
  return n != nullptr ? n->name : "#" + std::to_string(id.value());
}

std::string Names(const ClusterMap& m, const std::vector<NodeId>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ",";
    out += NodeName(m, ids[i]);
  }
  return out + "]";
}

// One line per partition whose configuration changed from `before` to
// `after` (same partition count: the count never changes).
std::vector<std::string> DescribeChanges(const ClusterMap& before, const ClusterMap& after) {
  std::vector<std::string> out;
  for (size_t i = 0; i < after.partitions.size() && i < before.partitions.size(); ++i) {
    const PartitionEntry& a = before.partitions[i];
    const PartitionEntry& b = after.partitions[i];
    if (a == b) continue;
    std::ostringstream line;
    line << "partition " << b.id << ": epoch " << a.epoch << " -> " << b.epoch;
    const NodeId pa = a.replicas.empty() ? NodeId() : a.replicas[0];
    const NodeId pb = b.replicas.empty() ? NodeId() : b.replicas[0];
    if (pa != pb) line << ", primary " << NodeName(after, pa) << " -> " << NodeName(after, pb);
    line << ", replicas " << Names(after, b.replicas) << ", in_sync " << Names(after, b.in_sync);
    out.push_back(line.str());
  }
  return out;
}

}  // namespace

FailoverService::FailoverService(ClusterState* state, Clock* clock, FailoverOptions options)
    : state_(state), clock_(clock), options_(options), log_("metaserver", "failover") {
  const Status valid = options_.Validate();
  CAIRN_CHECK(valid.ok()) << valid.ToString();
}

void FailoverService::BecameLeader() {
  const Nanos now = clock_->Now();
  MutexLock lock(&mu_);
  logic_ = std::make_unique<FailoverLogic>(options_, now);
  map_uncertain_ = false;  // the map was just loaded
  LOG_INFO(log_) << "leading: no primary is named before one lease ("
                 << std::chrono::duration_cast<std::chrono::milliseconds>(options_.lease).count()
                 << " ms) has passed";
}

void FailoverService::LostLeadership() {
  MutexLock lock(&mu_);
  logic_.reset();
}

Result<std::vector<PrimaryLease>> FailoverService::OnHeartbeat(
    NodeId node, const std::vector<PartitionReport>& reports) {
  MutexLock lock(&mu_);
  if (logic_ == nullptr) return NotLeading();
  FailoverLogic* logic = logic_.get();
  const Nanos now = clock_->Now();
  std::vector<PrimaryLease> leases;
  RETURN_IF_ERROR(state_->ReadMap(
      [&](const ClusterMap& m) { leases = logic->OnHeartbeat(m, node, reports, now); }));
  // Heard all the same; a grant recorded but not sent only delays promotions.
  if (map_uncertain_) leases.clear();
  return leases;
}

void FailoverService::NoteWriteError(const Status& s) {
  switch (s.code()) {
    case StatusCode::kStaleEpoch:
    case StatusCode::kNotPrimary:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kInvalidArgument:
    case StatusCode::kPermissionDenied:
      return;  // refused on a map the store confirmed
    default:
      if (!map_uncertain_) {
        LOG_WARN(log_) << "a map write failed (" << s.ToString()
                       << "); no lease is granted until the map is read again";
      }
      map_uncertain_ = true;
  }
}

Result<uint64_t> FailoverService::ChangeInSync(std::string_view caller_name,
                                               const InSyncChange& change) {
  MutexLock lock(&mu_);
  if (logic_ == nullptr) return NotLeading();
  const FailoverLogic* logic = logic_.get();
  ClusterMap before;
  Result<ClusterMap> after = state_->ChangeMap(
      "in-sync change of partition " + std::to_string(change.partition.value()),
      [&](ClusterMap& m, bool* changed) -> Status {
        const NodeEntry* primary = m.FindNode(change.primary);
        if (primary == nullptr || primary->name != caller_name) {
          return Status::PermissionDenied(
              "node:" + std::string(caller_name) + " cannot ask for an in-sync change as node id " +
              std::to_string(change.primary.value()) +
              (primary != nullptr ? " (node:" + primary->name + ")" : ""));
        }
        before = m;
        return logic->ApplyInSyncChange(&m, change, clock_->Now(), changed);
      });
  if (!after.ok()) {
    NoteWriteError(after.status());
    return after.status();
  }
  for (const std::string& line : DescribeChanges(before, *after)) {
    LOG_INFO(log_) << (change.kind == InSyncChange::Kind::kJoin ? "join " : "drop ")
                   << NodeName(*after, change.node) << " asked by " << caller_name << ": " << line
                   << " (map version " << after->version << ")";
  }
  return after->version;
}

Result<bool> FailoverService::Plan() {
  MutexLock lock(&mu_);
  if (logic_ == nullptr) return NotLeading();
  const FailoverLogic* logic = logic_.get();
  // Decide on the cached map first: an idle round costs no store call. After
  // a write of unknown outcome, go through ChangeMap, which confirms the
  // cache against the store (or writes) before it answers.
  ASSIGN_OR_RETURN(ClusterMap before, state_->Map());
  if (!map_uncertain_) {
    ClusterMap trial = before;
    if (!logic->Plan(&trial, clock_->Now())) return false;
  }
  bool did = false;
  Result<ClusterMap> after =
      state_->ChangeMap("failover plan", [&](ClusterMap& m, bool* changed) -> Status {
        before = m;
        did = logic->Plan(&m, clock_->Now());
        *changed = did;
        return Status::Ok();
      });
  if (!after.ok()) {
    NoteWriteError(after.status());
    return after.status();
  }
  if (map_uncertain_) LOG_INFO(log_) << "the map is read again: leases are granted again";
  map_uncertain_ = false;
  for (const std::string& line : DescribeChanges(before, *after)) {
    LOG_WARN(log_) << line << " (map version " << after->version << ")";
  }
  return did;
}

}  // namespace cairn::metaserver
