// Placement of partitions on chunk servers (docs/design-store.md "Cluster
// bootstrap and placement"). Pure functions over a ClusterMap.
//
// Issue 3 places each partition once, with one replica, when the initial
// nodes have registered, and never moves it: partition i goes to the node
// i mod n of the nodes sorted by id (round-robin). With R replicas (issue 6)
// the same greedy choice spreads them: every node holds P/n primaries (+-1)
// and P*R/n replicas (+-1, checked by the tests for up to 7 nodes and R <= 3),
// and a partition never has two replicas on one node.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "metaserver/cluster_map.h"

namespace cairn::metaserver {

// Gives every unplaced partition (no replicas) `replication` replicas at
// epoch 1, all of them in sync; placed partitions are left alone. Does not
// change map->version (the caller's store write does).
// FailedPrecondition when the map has fewer nodes than `replication`;
// InvalidArgument when replication is 0.
Status PlaceUnplacedPartitions(ClusterMap* map, uint32_t replication);

}  // namespace cairn::metaserver
