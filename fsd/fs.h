// The file system behind cairn-fsd, in plain C++ types: every FUSE callback
// (fuse_ops.cc) is a few lines around one method here. Results are errno
// values (0 = success) chosen through names.h ErrnoOf/NameErrno or, for the
// layout's own rules, named literally here.
//
// Consistency (the trade-off, stated once):
// - Close-to-open. open() stats the document and pins its version; reads
//   of that handle use blocks of that version (block cache keyed by
//   version). If another client commits meanwhile, the next uncached block
//   read moves the handle to the new version (logged at debug): a reader
//   racing a writer may see bytes of both, never an error. The kernel page
//   cache is kept across opens while the version is unchanged (keep_cache).
// - Writes are buffered per handle (FileBuffer: memory, then a temp file)
//   and committed at flush (close), fsync and release as ONE new version:
//   readers never see a torn document. Two writers of one file: the last
//   commit wins. A writer that keeps blocks of the version it opened (it did
//   not truncate) commits with that version expected; if someone else
//   committed meanwhile its commit fails (EIO, logged) instead of mixing.
// - A failed upload: close (flush) and fsync answer EIO (EFBIG over the
//   size limit, ENOSPC when the cluster is full) and log the document and
//   the cause; the buffer stays dirty, so a later flush/fsync or the release
//   tries again. Nothing is dropped in silence.
// - Sequential writers send full blocks while writing (BlockUpload), so
//   close sends only the tail; an unchanged block of a large document is
//   kept by reference, so a small change uploads only the blocks it touched.
// - Unlinked open files: unlink of a document some handle holds open renames
//   it to a hidden id (kUnlinkedPrefix, chosen in the same partition, so the
//   rename is one atomic call) and deletes that at the last release; handles
//   keep reading and writing it meanwhile. A crash of fsd leaves the hidden
//   document behind (never listed; removable with the cairn CLI).
//
// Thread-safety: every method may be called concurrently (FUSE's worker
// threads). Lock order: Fs::mu_ is a leaf (never held during an RPC or
// while taking a handle's mutex); a handle's mutex is held during its own
// RPCs (one operation per handle at a time).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/cairn.h"
#include "common/logging.h"
#include "common/mutex.h"
#include "fsd/block_cache.h"
#include "fsd/file_buffer.h"
#include "fsd/inode_table.h"
#include "fsd/query_file.h"

namespace cairn::fsd {

struct FsOptions {
  double entry_timeout_s = 1.0;        // kernel name cache lifetime
  double attr_timeout_s = 1.0;         // kernel attribute cache lifetime
  uint64_t cache_bytes = 64ull << 20;  // read block cache
  uint64_t spill_bytes = 64ull << 20;  // a write buffer above this moves to a temp file
  std::string spill_dir = "/var/tmp";
  uint32_t prefetch_blocks = 4;  // blocks read ahead on sequential reads (0 = off)
  uint32_t owner_uid = 0;        // owner of the root, the collections and special files
  uint32_t owner_gid = 0;
};

struct Attr {
  uint64_t ino = 0;
  uint32_t mode = 0;  // with the S_IF* type bits
  uint64_t size = 0;
  uint32_t nlink = 1;
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint32_t blksize = 4096;
  // Generated on every look (query files): the kernel must not cache the
  // entry or the attributes.
  bool uncached = false;
};

struct EntryOut {
  InodeId ino;
  Attr attr;
};

struct OpenOut {
  uint64_t fh = 0;
  bool keep_cache = false;
  bool direct_io = false;
};

struct SetAttrIn {
  std::optional<uint32_t> mode;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint64_t> size;
  std::optional<int64_t> mtime_ns;
};

struct DirEntry {
  std::string name;
  NodeKey key;       // for readdirplus lookups
  Attr attr;         // ino unset; type always set, the rest for readdirplus
  bool dot = false;  // "." or "..": no lookup
};

struct StatFsOut {
  uint64_t capacity_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t documents = 0;
};

class Fs {
 public:
  // `client` is borrowed and must outlive the Fs.
  Fs(client::Client* client, FsOptions options);
  ~Fs();
  Fs(const Fs&) = delete;
  Fs& operator=(const Fs&) = delete;

  const FsOptions& options() const { return options_; }
  InodeTable& inodes() { return inodes_; }

  int Lookup(InodeId parent, const std::string& name, EntryOut* out);
  void Forget(InodeId ino, uint64_t n);
  int GetAttr(InodeId ino, Attr* out);
  int SetAttr(InodeId ino, std::optional<uint64_t> fh, const SetAttrIn& in, Attr* out);
  int Mkdir(InodeId parent, const std::string& name, EntryOut* out);
  int Rmdir(InodeId parent, const std::string& name);
  int Unlink(InodeId parent, const std::string& name);
  int Rename(InodeId parent, const std::string& name, InodeId new_parent,
             const std::string& new_name, unsigned int flags);
  int Create(InodeId parent, const std::string& name, uint32_t mode, int flags, uint32_t uid,
             uint32_t gid, EntryOut* entry, OpenOut* out);
  int Open(InodeId ino, int flags, OpenOut* out);
  int Read(InodeId ino, uint64_t fh, uint64_t offset, uint64_t size, std::string* out);
  int Write(InodeId ino, uint64_t fh, uint64_t offset, std::string_view data);
  int Flush(InodeId ino, uint64_t fh);
  int Fsync(InodeId ino, uint64_t fh);
  // Commits what is left (errors are logged: close already reported them).
  void Release(InodeId ino, uint64_t fh);

  int OpenDir(InodeId ino, uint64_t* dh);
  // Entries [offset, ...) of an open directory; fewer (or none) at the end.
  // Fetches further pages of a collection as needed (List with a cursor).
  int ReadDir(uint64_t dh, uint64_t offset, size_t max_entries, std::vector<DirEntry>* out);
  void ReleaseDir(uint64_t dh);
  // fsync of a directory: stores the files created here and not stored yet
  // in it (a collection), so that their names are durable.
  int FsyncDir(uint64_t dh);

  int StatFs(StatFsOut* out);

  int GetXattr(InodeId ino, const std::string& name, std::string* value);
  int ListXattr(InodeId ino, std::vector<std::string>* names);
  int SetXattr(InodeId ino, const std::string& name, const std::string& value, int flags);
  int RemoveXattr(InodeId ino, const std::string& name);

  // Commits every dirty handle (unmount); returns how many failed.
  int CommitAll();

  // An open file. Specials hold their content; documents a pinned version
  // (readers) or a write buffer over a base version (writers).
  struct Handle {
    InodeId ino;
    NodeKind kind = NodeKind::kDocument;
    Mutex mu;  // one operation on this handle at a time (held during its RPCs)
    std::string content GUARDED_BY(mu);      // specials
    std::shared_ptr<const QueryFile> query;  // query files; set before the handle is shared
    bool writable = false;
    // .indexes opened for writing: content is the text to apply at flush.
    bool append GUARDED_BY(mu) = false;         // O_APPEND: writes go to the end
    bool content_dirty GUARDED_BY(mu) = false;  // written or truncated since applied
    uint32_t block_bytes GUARDED_BY(mu) = 0;
    client::DocInfo info GUARDED_BY(mu);  // version read, or the writer's base
    int64_t version GUARDED_BY(mu) = 0;   // == info.version; 0 = none (new)
    uint64_t size GUARDED_BY(mu) = 0;     // readers
    uint64_t last_read_end GUARDED_BY(mu) = 0;
    // Writers.
    std::unique_ptr<FileBuffer> buf GUARDED_BY(mu);
    bool force_commit GUARDED_BY(mu) = false;  // opened with O_TRUNC: commit even if unwritten
    // Created here and not stored yet (see Create): the first commit stores
    // it; until then this mount shows it from the buffer. Written under mu;
    // atomic so that StorePending* can pass over the other handles without
    // waiting for their locks (a writer holds its lock while it uploads).
    std::atomic<bool> pending{false};
    std::unique_ptr<client::BlockUpload> upload GUARDED_BY(mu);
    std::set<uint64_t> sent GUARDED_BY(mu);  // blocks in `upload`, unchanged since sent
    uint64_t last_write_end GUARDED_BY(mu) = 0;
    uint64_t stream_next GUARDED_BY(mu) = 0;  // next block the sequential streamer looks at
  };
  struct DirHandle;

 private:
  struct InodeState {
    int open = 0;  // open file handles
    // Query files: the result computed by the last lookup (or getattr), and
    // whether an open took it already (the next open runs the query again).
    std::shared_ptr<const QueryFile> query;
    bool query_taken = false;
    std::set<Handle*> writers;      // handles with a write buffer
    int64_t last_open_version = 0;  // keep_cache decision
    bool hidden = false;            // unlinked while open: delete at last release
  };

  Attr DocAttr(InodeId ino, const client::DocInfo& d) const;
  Attr DirAttr(InodeId ino) const;
  Attr SpecialAttr(InodeId ino, NodeKind kind, uint64_t size) const;
  int KeyOf(InodeId ino, NodeKey* key);
  std::shared_ptr<Handle> FindHandle(uint64_t fh);
  uint64_t AddHandle(std::shared_ptr<Handle> h);
  std::vector<std::shared_ptr<Handle>> WritersOf(InodeId ino);
  // Stores the files created here and not stored yet (Handle::pending) of
  // `ino`, or of every document of `collection`, so that an operation on
  // the stored documents (another open, unlink, rename, xattrs, listings,
  // rmdir) finds them. 0 or the errno of a failed commit.
  int StorePending(InodeId ino);
  int StorePendingIn(const std::string& collection);
  Result<std::string> StatusJson();
  // The text of <collection>/.indexes: the indexed paths, one a line.
  Result<std::string> IndexesText(const std::string& collection);
  // Makes the collection's indexes those listed in `text` (one path a line,
  // blank lines ignored): creates the missing, drops the others. EINVAL
  // (logged, nothing changed) when a line is not a field path.
  int ApplyIndexesText(const std::string& collection, const std::string& text);
  // Applies a written .indexes handle's content if dirty (flush, release).
  int ApplyIndexesHandle(Handle& h) REQUIRES(h.mu);
  int CollectionExists(const std::string& name);
  // Runs the query of a query file (key.id) and returns its result or
  // failure (logged); never null.
  std::shared_ptr<const QueryFile> RunQueryFile(const NodeKey& key);
  // The query file's current result. For an open: the one the last lookup
  // kept with the inode unless an earlier open took it, else a new run. For
  // stat and xattrs: the one kept (a new run only if there is none).
  std::shared_ptr<const QueryFile> QueryResultFor(InodeId ino, const NodeKey& key, bool for_open);

  // Write path (handle mutex held).
  // `pending`: a file created here, not stored yet (Handle::pending).
  int OpenWriter(InodeId ino, const client::DocInfo& info, bool truncate, OpenOut* out,
                 bool pending = false);
  Status FillBlocks(Handle& h, const std::vector<uint64_t>& blocks) REQUIRES(h.mu);
  Status StreamFullBlocks(Handle& h, uint64_t written_end) REQUIRES(h.mu);
  Status Commit(Handle& h, const char* why) REQUIRES(h.mu);
  int CommitLogged(Handle& h, const char* why) REQUIRES(h.mu);
  // Read path.
  Result<std::shared_ptr<const std::string>> ReaderBlock(Handle& h, uint64_t k) REQUIRES(h.mu);
  // [offset, offset + len) of the handle's version, uncached (small random
  // reads); follows a version committed meanwhile like ReaderBlock.
  Result<std::string> ReaderRange(Handle& h, const NodeKey& key, uint64_t offset, uint64_t len)
      REQUIRES(h.mu);
  Status FollowNewVersion(Handle& h, const NodeKey& key) REQUIRES(h.mu);
  void Prefetch(const NodeKey& key, int64_t version, uint32_t block_bytes, uint64_t size,
                uint64_t from_block);
  void PrefetchLoop();
  // Metadata change on a document: commit writers, apply, refresh writers.
  int ChangeMetadata(InodeId ino, const client::WriteOptions& change, Attr* out);
  // Renames an open document to a hidden id, deleted at its last release.
  int HideOpen(const NodeKey& key, InodeId ino);
  bool IsOpen(InodeId ino);
  Result<std::string> HiddenIdFor(const std::string& collection, const std::string& id,
                                  InodeId ino);
  int CopyAcross(const NodeKey& from, const NodeKey& to, bool replace);

  client::Client* const client_;
  const FsOptions options_;
  // The times of the root, the collections and .query/ (the map keeps no
  // directory times): when this mount started, not 1970.
  const int64_t mounted_ns_;
  Logger log_{"fsd"};
  InodeTable inodes_;
  BlockCache cache_;

  Mutex mu_;  // a leaf: see the header
  uint64_t next_fh_ GUARDED_BY(mu_) = 1;
  std::map<uint64_t, std::shared_ptr<Handle>> handles_ GUARDED_BY(mu_);
  std::map<uint64_t, std::shared_ptr<DirHandle>> dirs_ GUARDED_BY(mu_);
  std::map<uint64_t, InodeState> states_ GUARDED_BY(mu_);  // by inode number
  uint64_t hidden_seq_ GUARDED_BY(mu_) = 0;

  // Prefetch queue and its workers.
  struct PrefetchJob {
    BlockKey key;
    uint64_t offset = 0;
    uint64_t length = 0;
  };
  Mutex prefetch_mu_;
  CondVar prefetch_cv_;
  std::deque<PrefetchJob> prefetch_queue_ GUARDED_BY(prefetch_mu_);
  std::set<BlockKey> prefetch_pending_ GUARDED_BY(prefetch_mu_);
  bool stopping_ GUARDED_BY(prefetch_mu_) = false;
  std::vector<std::thread> prefetchers_;
};

}  // namespace cairn::fsd
