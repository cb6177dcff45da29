// LeaderElection: one metaserver of 1..3 leads (DESIGN.md "Metaserver
// group"), elected with the MetaStore's election on a store lease of a few
// seconds that a background thread keeps alive.
//
// The campaign value is "<advertise host:port>|<incarnation>", unique per
// process start; followers read the leader's address from it, and the leader
// fences every map write with Compare::ValueIs(<its candidacy key>, value)
// (cluster_state.h SetFence), so a deposed leader's write fails.
//
// Life of a term: grant a lease -> campaign (blocks while another leads) ->
// on_elected(fence) (loads the map; an error gives the term up and campaigns
// again after a pause) -> leader until the lease is lost (a keepalive answers
// NotFound, keepalives fail for a whole TTL, or the store names another
// leader) or Stop() -> on_lost() -> (Stop: resign and revoke the lease).
//
// Threads: two of its own (campaign and keepalive), started by Start() and
// joined by Stop()/Abandon(). Callbacks run in the campaign thread.
// IsLeader/CheckLeader are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "common/logging.h"
#include "common/status.h"
#include "metaserver/meta_store.h"

namespace cairn::metaserver {

struct ElectionOptions {
  std::string election = "/cairn/leader";  // the election's key prefix
  std::string advertise;                   // "host:port" clients should use
  std::chrono::seconds ttl{3};             // the store lease
  // Pause after a failed term or an unreachable store before trying again.
  Nanos retry_pause = std::chrono::milliseconds(500);
};

class LeaderElection {
 public:
  struct Callbacks {
    // This process just won; `fence` must guard its writes. Must load what
    // it serves before returning OK.
    std::function<Status(const Compare& fence)> on_elected;
    // Leadership ended (lost or given up); stop serving.
    std::function<void()> on_lost;
  };

  // `store` is borrowed and must outlive this object.
  LeaderElection(MetaStore* store, ElectionOptions options, Callbacks callbacks);
  ~LeaderElection();  // Stop()
  LeaderElection(const LeaderElection&) = delete;
  LeaderElection& operator=(const LeaderElection&) = delete;

  void Start();
  // Gives up leadership (resigns, revokes the lease) and joins the threads.
  // Idempotent. Returns within about a second plus one store call.
  void Stop();
  // Joins the threads without resigning or revoking, as if the process had
  // died: the lease runs out on its own. For tests.
  void Abandon();

  bool IsLeader() const { return leader_.load(); }
  // OK when leading; otherwise Unavailable "not the leader; leader is
  // 127.0.0.1:7001" (or why no leader is known).
  Status CheckLeader();
  // The campaign value of this process.
  const std::string& value() const { return value_; }

 private:
  void RunCampaigns();
  void RunKeepAlive();
  // Waits up to `d` or until stop; true when stopping.
  bool SleepUnlessStopping(Nanos d);
  // Ends the current term when `lease` is still the current one.
  void LoseLease(int64_t lease, const std::string& why);
  void Shutdown(bool resign);

  MetaStore* const store_;
  const ElectionOptions options_;
  const Callbacks callbacks_;
  const std::string value_;
  const Logger log_;

  // std::mutex rather than common/mutex.h: the threads need timed waits.
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;            // guarded by mu_
  bool resign_ = true;               // guarded by mu_; false after Abandon
  int64_t lease_ = 0;                // guarded by mu_; the current term's lease, 0: none
  bool term_over_ = false;           // guarded by mu_; the current term has ended
  std::atomic<bool> cancel_{false};  // cancels a blocked Campaign
  std::atomic<bool> leader_{false};
  std::thread campaign_thread_;
  std::thread keepalive_thread_;
};

}  // namespace cairn::metaserver
