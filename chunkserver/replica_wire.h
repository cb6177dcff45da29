// Conversions between the replication messages of replica.h and their Thrift
// twins (thrift/chunk.thrift, thrift/meta.thrift), for the RPC adapters of
// issue 6 phase 2. FromWire validates what a peer sent: negative ids, LSNs or
// epochs, entries that do not follow prev_lsn one by one, are
// InvalidArgument. Stateless; thread-safe.
#pragma once

#include "ChunkService.h"
#include "MetaService.h"
#include "chunkserver/replica.h"
#include "chunkserver/snapshot_stream.h"
#include "common/status.h"

namespace cairn::chunkserver {

// About the bytes `m` takes on the wire and in a queue: its payloads and
// state plus a fixed overhead per message and entry.
size_t ApproximateBytes(const PeerMessage& m);

rpc::ReplicateRequest ToWire(const ReplicateMsg& m);
Result<ReplicateMsg> FromWire(const rpc::ReplicateRequest& w);

rpc::ReplicateAck ToWire(const ReplicateAck& m);
Result<ReplicateAck> FromWire(const rpc::ReplicateAck& w);

// A snapshot travels in chunks (snapshot_stream.h); each call is answered
// with the chunk wanted next.
rpc::SnapshotChunk ToWire(const SnapshotChunkMsg& m);
Result<SnapshotChunkMsg> FromWire(const rpc::SnapshotChunk& w);
rpc::SnapshotChunkAck ToWire(const SnapshotChunkAnswer& a);
Result<SnapshotChunkAnswer> FromWire(const rpc::SnapshotChunkAck& w);

rpc::ReplicaReport ToWire(const ReplicaReport& r);

rpc::InSyncChange ToWire(const InSyncRequest& r);

}  // namespace cairn::chunkserver
