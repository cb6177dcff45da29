// DocService: carries out the partition logic's decisions on a DocStore. It is
// the whole document path of a chunk server without the network: the Thrift
// adapter (chunk_service.h) converts types, authorizes and forwards, then
// calls one method here; the replication simulation (issue 6) can call it the
// same way.
//
// Per request: the partition logic checks routing, names and sizes; blocks
// sent inline are written (DocStore::WriteBlock); then, under the
// partition's lock, a retried request id gets its first answer, the logic
// builds the mutation from the current version and the partition's last LSN,
// and DocStore::Apply makes it durable. Mutations of one partition are
// serialized (LSNs are assigned in order); those of different partitions run
// concurrently and share the volume's group commit. Every mutation returns
// only after Apply returned, i.e. once it is durable.
//
// Errors are the logic's and the store's, except that the store's
// FailedPrecondition for an expected version is VersionMismatch here
// (AlreadyExists when expected_version is -1: the document had to be new).
//
// Thread-safety: every method is thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "chunkserver/doc_store.h"
#include "chunkserver/partition.h"
#include "chunkserver/replica_host.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/mutex.h"
#include "common/status.h"

namespace cairn::chunkserver {

struct GetOutput {
  DocEntry doc;
  std::string data;  // at most one block's worth
};

struct PartitionSummary {
  PartitionId partition;
  Epoch epoch;  // from the map (0 when not placed here)
  bool primary = false;
  Lsn last_lsn;
  uint64_t documents = 0;
};

class DocService {
 public:
  // Borrows all three; they must outlive the service.
  DocService(DocStore* store, PartitionLogic* logic, Clock* clock);
  DocService(const DocService&) = delete;
  DocService& operator=(const DocService&) = delete;

  // Called (synchronously) when a request names a collection the map does not
  // know, before answering NotFound: the daemon fetches the map then.
  void SetMapRefresher(std::function<void()> refresh);
  // Replication on (call before serving): every call is refused as
  // Unavailable until SetReplicaHost; from then on mutations go through the
  // host (committed on every in-sync replica before they are answered) and
  // every call checks that this node is the partition's active primary under
  // its lease.
  void EnableReplication() { replicated_ = true; }
  void SetReplicaHost(ReplicaHost* host) { replication_ = host; }

  // Returns the new current version (or, for a retried request id, the
  // current version if it is still the one the first attempt wrote).
  Result<DocEntry> Put(const PutInput& in);
  Result<uint64_t> UploadBegin(PartitionId p, Epoch epoch, std::string_view collection,
                               std::string_view id);
  Status UploadBlock(uint64_t upload_id, uint32_t index, std::string_view data, uint64_t data_hash);
  Status UploadAbort(uint64_t upload_id);

  // Bytes [offset, offset + min(length, block_bytes)) clipped to the body.
  // VersionMismatch if if_version is given and differs. Reads (Get, Stat,
  // List, Query) are served by the primary; with `allow_backup` also by an
  // in-sync backup (ReplicaHost::CheckRead: possibly a little stale).
  Result<GetOutput> Get(PartitionId p, Epoch epoch, std::string_view collection,
                        std::string_view id, uint64_t offset, uint64_t length,
                        std::optional<uint64_t> if_version, bool allow_backup = false);
  Result<DocEntry> Stat(PartitionId p, Epoch epoch, std::string_view collection,
                        std::string_view id, bool allow_backup = false);
  Status Delete(const DeleteInput& in);
  // Returns the renamed document under its new id.
  Result<DocEntry> Rename(const RenameInput& in);
  // Routing and name checks of a call on a whole collection of one partition
  // (List, Query): this node is the primary at `epoch` and the map knows
  // the collection (fetched again once if it does not).
  Status CheckCollectionRequest(PartitionId p, Epoch epoch, std::string_view collection,
                                bool allow_backup = false);
  // limit 0 means kDefaultListLimit; more than kMaxListLimit is clipped.
  Result<ListPage> List(PartitionId p, Epoch epoch, std::string_view collection,
                        std::string_view after_id, uint32_t limit, bool allow_backup = false);

  // Documents of `collection` over every partition this node's store holds.
  Result<uint64_t> CountDocuments(std::string_view collection);
  // Every partition the store holds or the map gives this node.
  std::vector<PartitionSummary> Partitions() const;

  // Ends idle upload sessions (now from the clock) and forgets their blocks.
  // Returns how many blocks were forgotten.
  size_t ExpireUploads();

  static constexpr uint32_t kDefaultListLimit = 1000;
  static constexpr uint32_t kMaxListLimit = 10000;

  DocStore* store() const { return store_; }
  PartitionLogic* logic() const { return logic_; }

 private:
  Status CheckRequest(PartitionId p, Epoch epoch, std::string_view collection, std::string_view id,
                      bool allow_backup = false);
  Mutex& PartitionMutex(PartitionId p) { return partition_mu_[p.value() % partition_mu_.size()]; }
  // Reads the blocks of `m` back and compares their hash with m.body_hash.
  Status VerifyBodyByReading(const Mutation& m);
  Result<DocEntry> AnswerFor(const Mutation& m, const ApplyResult& r);
  // Replicated: OK when this node may serve `p` now.
  Status CheckReplica(PartitionId p, bool allow_backup = false);
  // Applies `m` (through the replicas when replicated).
  Result<ApplyResult> Commit(const Mutation& m);

  DocStore* const store_;
  PartitionLogic* const logic_;
  Clock* const clock_;
  Logger log_;
  std::function<void()> refresh_;  // set before serving
  std::atomic<bool> replicated_{false};
  std::atomic<ReplicaHost*> replication_{nullptr};
  // Serializes the mutations of a partition (LSN assignment through Apply).
  std::array<Mutex, 64> partition_mu_;
};

}  // namespace cairn::chunkserver
