// The deterministic replication simulation (docs/design-replication.md
// "Simulation"). One thread, one seeded event queue, one global time. It runs
// the REAL chunkserver::Replica state machines on every simulated chunk
// server and the REAL metaserver logic (ClusterState over a MemMetaStore,
// with FailoverLogic deciding promotions, in-sync changes and replacement),
// connected by a simulated network that drops, delays, duplicates, reorders
// and partitions messages. Each node has its own clock (rate skew within the
// lease margin) and a durable-log model with an explicit fsync boundary: a
// crash keeps what was synced plus a random prefix of what was not (lost and
// torn writes), and an fsync may fail (the node then stops, as a real chunk
// server does on a sticky I/O error).
//
// Faults stay within the budget the design promises to survive: at most R-1
// nodes crashed or cut off at a time. Every step is followed by checks of the
// invariants (see Sim::Run). The outcome names the first broken invariant.
#pragma once

#include <cstdint>
#include <string>

#include "common/clock.h"
#include "common/status.h"

namespace cairn::sim {

// A bug the harness injects on purpose, to prove the checks catch it.
enum class InjectedBug : uint8_t {
  kNone,
  // A backup acknowledges entries as soon as it receives them, before they
  // are durable (the harness forges the ack).
  kAckBeforeDurable,
};

struct SimOptions {
  uint64_t seed = 1;
  uint32_t nodes = 4;
  uint32_t partitions = 4;  // a power of two
  uint32_t replication = 3;
  uint32_t clients = 3;
  Nanos fault_phase = std::chrono::seconds(20);  // faults and client load
  Nanos quiet_phase = std::chrono::seconds(30);  // healed: convergence
  bool faults = true;
  // Message faults during the fault phase (each 1 in n messages).
  uint64_t drop_one_in = 40;
  uint64_t duplicate_one_in = 50;
  uint64_t slow_one_in = 20;  // delayed by up to slow_max (reorders)
  Nanos slow_max = std::chrono::milliseconds(300);
  InjectedBug bug = InjectedBug::kNone;
  bool verbose = false;  // trace events to stderr
};

struct SimStats {
  uint64_t events = 0;
  uint64_t writes_acked = 0;
  uint64_t reads_checked = 0;
  uint64_t crashes = 0;
  uint64_t promotions = 0;  // primary changes in the map
  uint64_t snapshots = 0;
  uint64_t map_changes = 0;
  uint64_t joins = 0;         // learners admitted to the in-sync set
  uint64_t replacements = 0;  // replicas added for a long-dead one
  uint64_t messages = 0;
};

// Runs one seed. OK when every invariant held; otherwise Internal with the
// broken invariant, the simulated time and the seed.
Status RunSimulation(const SimOptions& options, SimStats* stats);

}  // namespace cairn::sim
