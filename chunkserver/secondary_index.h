// SecondaryIndex: a chunk server's secondary indexes (docs/indexes.md), the
// IndexSource the query executor plans with.
//
// For every defined (collection, path) it keeps, per partition, an ordered
// set of (index key (query/index_key.h), document id) and, per document, the
// key it is filed under. The whole value at the path is the key
// (an array is one key); documents without the path, that are not JSON
// objects, or whose body is larger than max_document_bytes are not in it (the
// executor never matches those either).
//
// Maintenance: the index is the DocStore's ApplyObserver. Every applied put,
// delete and rename of a collection with indexes is delivered in LSN order
// before Apply returns, so an acknowledged write is in the index when the
// client hears of it.
//
// Building: indexes live in memory only. A new definition, and every
// definition after a restart, is built by a background thread that scans the
// collection's documents (throttled, one document at a time under the lock);
// changes delivered meanwhile are applied at once and win over what the scan
// read (each entry carries the version it was made from, deletions leave a
// tombstone until the build ends). Only a finished build is "ready": a query
// never uses a partial index. Rebuilding at start costs a scan but needs no
// on-disk format and no recovery: an index cannot disagree with the store
// after a crash (docs/indexes.md, "Why in memory").
//
// Thread-safety: every public method is thread-safe. Lock order: the store's
// locks -> mu_ -> wanted_mu_; the index never calls the store with mu_ held.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "chunkserver/doc_store.h"
#include "chunkserver/index_source.h"
#include "common/logging.h"
#include "common/mutex.h"
#include "query/ast.h"
#include "query/evaluator.h"

namespace cairn::chunkserver {

struct SecondaryIndexOptions {
  // Bodies larger than this are never indexed (the store's
  // index_max_document_bytes; the executor's query_max_body_bytes).
  uint64_t max_document_bytes = 16ull << 20;
  // Documents read per second by a build, all indexes together (0: no limit).
  uint64_t build_docs_per_second = 50000;
  // false: no background thread; the caller builds with BuildPending (tests).
  bool background = true;
  std::string node_name;  // log context
};

// Build state of one index on this chunk server (all partitions together).
struct IndexProgress {
  std::string collection;
  std::string path;           // canonical text (query::Path::ToString)
  uint64_t docs_indexed = 0;  // documents the current (or last) build scanned
  uint64_t docs_total = 0;    // documents of the collection when the build started
  uint64_t entries = 0;       // documents in the index now
  bool ready = false;
  std::string error;  // the last build error, if the build is waiting to retry
};

class SecondaryIndex : public IndexSource, public ApplyObserver {
 public:
  // Attaches itself as `store`'s observer; `store` is borrowed and must
  // outlive the index.
  SecondaryIndex(DocStore* store, SecondaryIndexOptions options);
  ~SecondaryIndex() override;  // stops the builder, detaches from the store
  SecondaryIndex(const SecondaryIndex&) = delete;
  SecondaryIndex& operator=(const SecondaryIndex&) = delete;

  // The wanted indexes: collection -> path texts. New ones start building,
  // missing ones are dropped (their memory freed). A path that does not parse
  // is skipped with a log line (the metaserver validates them).
  void SetDefinitions(const std::map<std::string, std::vector<std::string>>& defs)
      EXCLUDES(mu_, wanted_mu_);

  // Every defined index, sorted by (collection, path).
  std::vector<IndexProgress> Progress() const EXCLUDES(mu_);

  // Builds every index that needs it on the calling thread; returns when
  // none does (or a build failed: the error is in Progress). For tests and
  // options.background == false.
  void BuildPending() EXCLUDES(mu_);

  // IndexSource
  std::vector<query::Path> ReadyPaths(PartitionId p, std::string_view collection) const override
      EXCLUDES(mu_);
  Result<std::vector<std::string>> Lookup(PartitionId p, std::string_view collection,
                                          const query::IndexLookup& lookup) const override
      EXCLUDES(mu_);
  Result<IndexWalkPage> Walk(PartitionId p, std::string_view collection,
                             const IndexWalkRequest& req) const override EXCLUDES(mu_);

  // ApplyObserver
  bool Wants(PartitionId p, std::string_view collection) const override EXCLUDES(wanted_mu_);
  void OnApplied(const AppliedChange& change) override EXCLUDES(mu_);

 private:
  struct DocState {
    uint64_t version = 0;
    bool present = false;  // false: a tombstone (kept only while building)
    std::string key;       // when present
  };
  struct Part {
    std::set<std::pair<std::string, std::string>> entries;  // (key, id)
    std::unordered_map<std::string, DocState> docs;
  };
  struct PathIndex {
    query::Path path;
    std::string text;
    bool ready = false;
    uint64_t build_generation = 0;  // a new unique one asks for a (re)build
    uint64_t built_generation = 0;  // the generation that last finished
    uint64_t docs_indexed = 0;
    uint64_t docs_total = 0;
    uint64_t entries = 0;
    std::string error;
    std::map<PartitionId, Part> parts;
    bool building() const { return built_generation != build_generation; }
  };
  using Key = std::pair<std::string, std::string>;  // collection, path text

  // Files `id` under `key` (nullopt: not in the index) as of `version`,
  // unless the index already knows a newer version (or the same one, when
  // `from_scan`: the scan never overrides a delivered change).
  void UpdateLocked(PathIndex* ix, PartitionId p, const std::string& id, uint64_t version,
                    std::optional<std::string> key, bool from_scan) REQUIRES(mu_);
  // The index key of the document at ix's path, or nullopt.
  std::optional<std::string> KeyOf(const query::Path& path, const query::Document& doc) const;
  // Builds one index (the generation it was asked in); false on an error.
  bool Build(const Key& which, uint64_t generation) EXCLUDES(mu_);
  // Sleeps as the throttle says; false when stopping.
  bool Throttle(uint64_t docs_done, std::chrono::steady_clock::time_point start);
  std::optional<std::pair<Key, uint64_t>> NextToBuild() const EXCLUDES(mu_);
  void BuilderLoop();
  void Wake();

  DocStore* const store_;  // borrowed
  const SecondaryIndexOptions options_;
  Logger log_;

  // Serializes OnApplied (the store calls it one at a time already); guards
  // the parser it reuses.
  Mutex apply_mu_ ACQUIRED_BEFORE(mu_);
  std::unique_ptr<query::Document> apply_doc_ GUARDED_BY(apply_mu_);

  mutable Mutex mu_ ACQUIRED_BEFORE(wanted_mu_);
  std::map<Key, std::unique_ptr<PathIndex>> indexes_ GUARDED_BY(mu_);
  // Build generations are unique across indexes, so a build of a dropped
  // index never writes into one defined again under the same name.
  uint64_t next_generation_ GUARDED_BY(mu_) = 1;

  // Collections with at least one index: what Wants() answers from, under
  // its own small lock so that the store's apply path never waits on a
  // Lookup.
  mutable Mutex wanted_mu_;
  std::set<std::string, std::less<>> wanted_ GUARDED_BY(wanted_mu_);

  // The builder thread's wake-up and stop.
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool wake_ = false;      // guarded by wake_mu_
  bool stopping_ = false;  // guarded by wake_mu_
  std::thread builder_;
};

}  // namespace cairn::chunkserver
