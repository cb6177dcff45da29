#include "metaserver/leader_election.h"

#include <unistd.h>

#include <random>

#include "common/clock.h"

namespace cairn::metaserver {
namespace {

// A campaign call blocks at most this many TTLs before it is renewed (the
// cancel flag ends it sooner).
constexpr int kCampaignTtls = 10;

std::string MakeValue(const std::string& advertise) {
  std::random_device rd;
  return advertise + "|" + std::to_string(::getpid()) + "-" +
         std::to_string(RealClock().WallNanos()) + "-" + std::to_string(rd());
}

std::string AddressOf(const std::string& value) { return value.substr(0, value.find('|')); }

}  // namespace

LeaderElection::LeaderElection(MetaStore* store, ElectionOptions options, Callbacks callbacks)
    : store_(store),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      value_(MakeValue(options_.advertise)),
      log_("metaserver", "election") {}

LeaderElection::~LeaderElection() { Stop(); }

void LeaderElection::Start() {
  campaign_thread_ = std::thread([this] { RunCampaigns(); });
  keepalive_thread_ = std::thread([this] { RunKeepAlive(); });
}

void LeaderElection::Stop() { Shutdown(/*resign=*/true); }
void LeaderElection::Abandon() { Shutdown(/*resign=*/false); }

void LeaderElection::Shutdown(bool resign) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) resign_ = resign;
    stopping_ = true;
    term_over_ = true;
  }
  cancel_ = true;
  cv_.notify_all();
  if (campaign_thread_.joinable()) campaign_thread_.join();
  if (keepalive_thread_.joinable()) keepalive_thread_.join();
}

bool LeaderElection::SleepUnlessStopping(Nanos d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, d, [&] { return stopping_; });
  return stopping_;
}

void LeaderElection::LoseLease(int64_t lease, const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (lease_ != lease || term_over_) return;
    term_over_ = true;
  }
  LOG_WARN(log_) << "term ends: " << why;
  cancel_ = true;
  cv_.notify_all();
}

void LeaderElection::RunCampaigns() {
  bool stopping = false;
  while (!stopping) {
    Result<LeaseGrant> grant = store_->Grant(options_.ttl);
    if (!grant.ok()) {
      LOG_EVERY_N_SEC(log_, kWarn, 10) << "cannot get a store lease: " << grant.status().ToString();
      stopping = SleepUnlessStopping(options_.retry_pause);
      continue;
    }
    const StoreLeaseId lease = grant->id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        store_->Revoke(lease).IgnoreError();  // best effort: it expires anyway
        break;
      }
      lease_ = lease.value();
      term_over_ = false;
      cancel_ = false;
    }
    cv_.notify_all();  // the keepalive thread has a lease to keep
    Result<LeaderKey> key =
        store_->Campaign(options_.election, lease, value_, options_.ttl * kCampaignTtls, &cancel_);
    bool won = key.ok();
    if (won) {
      std::lock_guard<std::mutex> lock(mu_);
      won = !term_over_;
    }
    if (won) {
      const Compare fence = Compare::ValueIs(key->key, value_);
      Status s = callbacks_.on_elected ? callbacks_.on_elected(fence) : Status::Ok();
      if (s.ok()) {
        leader_ = true;
        LOG_INFO(log_) << "leader (" << key->key << ", advertising " << options_.advertise << ")";
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return term_over_; });
      } else {
        LOG_ERROR(log_) << "won the election but cannot serve: " << s.ToString();
      }
      leader_ = false;
      if (callbacks_.on_lost) callbacks_.on_lost();
      if (s.ok()) LOG_INFO(log_) << "no longer leader";
    } else if (!key.ok() && key.status().code() != StatusCode::kTimeout) {
      LOG_EVERY_N_SEC(log_, kWarn, 10) << "campaign failed: " << key.status().ToString();
    }
    bool resign = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      lease_ = 0;
      stopping = stopping_;
      resign = resign_;
    }
    if (resign) {
      if (key.ok()) store_->Resign(*key).IgnoreError();  // best effort: revoke follows
      store_->Revoke(lease).IgnoreError();               // best effort: it expires anyway
    }
    if (!stopping) stopping = SleepUnlessStopping(options_.retry_pause);
  }
}

void LeaderElection::RunKeepAlive() {
  const Nanos period = std::chrono::duration_cast<Nanos>(options_.ttl) / 3;
  Nanos last_ok = RealClock().Now();
  int64_t kept = 0;
  while (true) {
    int64_t lease = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, period, [&] { return stopping_; });
      if (stopping_) return;
      lease = lease_;
    }
    if (lease == 0) continue;
    if (lease != kept) {
      kept = lease;
      last_ok = RealClock().Now();
    }
    Result<std::chrono::seconds> r = store_->KeepAlive(StoreLeaseId(lease));
    if (r.ok()) {
      last_ok = RealClock().Now();
    } else if (r.status().code() == StatusCode::kNotFound) {
      LoseLease(lease, "the store lease expired");
      continue;
    } else if (RealClock().Now() - last_ok >= options_.ttl) {
      LoseLease(lease, "no keepalive got through for a whole TTL: " + r.status().ToString());
      continue;
    }
    if (leader_) {
      Result<std::optional<KeyValue>> current = store_->Leader(options_.election);
      if (current.ok() && (!current->has_value() || (*current)->value != value_)) {
        LoseLease(lease, "the store names another leader");
      }
    }
  }
}

Status LeaderElection::CheckLeader() {
  if (leader_) return Status::Ok();
  Result<std::optional<KeyValue>> current = store_->Leader(options_.election);
  if (!current.ok()) {
    return Status::Unavailable("not the leader; cannot learn the leader from the store: " +
                               current.status().ToString());
  }
  if (!current->has_value()) return Status::Unavailable("not the leader; no leader elected yet");
  if ((*current)->value == value_) {
    return Status::Unavailable("not the leader yet; this metaserver (" + options_.advertise +
                               ") is taking over: retry");
  }
  return Status::Unavailable("not the leader; leader is " + AddressOf((*current)->value));
}

}  // namespace cairn::metaserver
