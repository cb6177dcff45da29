#include "fsd/fs.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "query/index_key.h"

namespace cairn::fsd {

namespace {

constexpr uint32_t kDefaultFileMode = 0644;
constexpr std::string_view kCairnXattrPrefix = "user.cairn.";
constexpr std::string_view kXattrVersion = "user.cairn.version";
constexpr std::string_view kXattrPartition = "user.cairn.partition";
constexpr std::string_view kXattrReplicas = "user.cairn.replicas";
// On a query file: why it has no result (a malformed query: the parser's
// message with its column; a limit; the cluster unreachable).
constexpr std::string_view kXattrQueryError = "user.cairn.query_error";
constexpr uint32_t kListPage = 1000;

bool WantsWrite(int flags) { return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0; }

int64_t NowNanos() { return RealClock().WallNanos(); }

}  // namespace

// An open directory: a window of its entries. Offsets are positions in the
// listing; entries before the window were sent and dropped (a big
// collection is not held whole), and a rewind lists again from the start.
struct Fs::DirHandle {
  NodeKey key;
  std::vector<DirEntry> head;  // ".", "..", specials (and the collections of the root)
  bool head_only = false;      // nothing to page through (root, .query)
  Mutex mu;
  std::vector<DirEntry> entries GUARDED_BY(mu);  // offsets first .. first+size-1
  uint64_t first GUARDED_BY(mu) = 0;
  std::string cursor GUARDED_BY(mu);
  bool done GUARDED_BY(mu) = false;
};

Fs::Fs(client::Client* client, FsOptions options)
    : client_(client),
      options_(std::move(options)),
      mounted_ns_(NowNanos()),
      cache_(options_.cache_bytes) {
  const int workers = options_.prefetch_blocks > 0 ? 2 : 0;
  for (int i = 0; i < workers; ++i) prefetchers_.emplace_back([this] { PrefetchLoop(); });
}

Fs::~Fs() {
  {
    MutexLock lock(&prefetch_mu_);
    stopping_ = true;
  }
  prefetch_cv_.NotifyAll();
  for (std::thread& t : prefetchers_) t.join();
}

// ---------------------------------------------------------------- attributes

Attr Fs::DirAttr(InodeId ino) const {
  Attr a;
  a.ino = ino.value();
  a.nlink = 2;
  a.uid = options_.owner_uid;
  a.gid = options_.owner_gid;
  const std::optional<NodeKey> k = const_cast<InodeTable&>(inodes_).Get(ino);
  const NodeKind kind = k ? k->kind : NodeKind::kRoot;
  // Collections are shared like /tmp: anyone may create, only owners remove.
  a.mode = S_IFDIR | (kind == NodeKind::kRoot         ? 0755u
                      : kind == NodeKind::kCollection ? 01777u
                                                      : 0555u);
  a.mtime_ns = a.ctime_ns = mounted_ns_;
  return a;
}

Attr Fs::SpecialAttr(InodeId ino, NodeKind kind, uint64_t size) const {
  Attr a;
  a.ino = ino.value();
  a.mode = S_IFREG | (kind == NodeKind::kIndexes ? 0644u : 0444u);
  a.size = size;
  a.uid = options_.owner_uid;
  a.gid = options_.owner_gid;
  a.mtime_ns = a.ctime_ns = NowNanos();
  return a;
}

Attr Fs::DocAttr(InodeId ino, const client::DocInfo& d) const {
  Attr a;
  a.ino = ino.value();
  const uint32_t perm = d.mode & 07777u;
  a.mode = S_IFREG | (perm != 0 ? perm : kDefaultFileMode);
  a.size = d.size;
  a.uid = d.uid;
  a.gid = d.gid;
  a.mtime_ns = d.mtime_ns;
  a.ctime_ns = d.ctime_ns;
  a.blksize = d.block_bytes > 0 ? d.block_bytes : 4096;
  a.nlink = ino.value() != 0 && inodes_.Detached(ino) ? 0 : 1;
  return a;
}

int Fs::KeyOf(InodeId ino, NodeKey* key) {
  std::optional<NodeKey> k = inodes_.Get(ino);
  if (!k) return ESTALE;
  *key = std::move(*k);
  return 0;
}

std::shared_ptr<Fs::Handle> Fs::FindHandle(uint64_t fh) {
  MutexLock lock(&mu_);
  auto it = handles_.find(fh);
  return it == handles_.end() ? nullptr : it->second;
}

uint64_t Fs::AddHandle(std::shared_ptr<Handle> h) {
  MutexLock lock(&mu_);
  const uint64_t fh = next_fh_++;
  InodeState& st = states_[h->ino.value()];
  ++st.open;
  if (h->writable) st.writers.insert(h.get());
  handles_.emplace(fh, std::move(h));
  return fh;
}

std::vector<std::shared_ptr<Fs::Handle>> Fs::WritersOf(InodeId ino) {
  MutexLock lock(&mu_);
  std::vector<std::shared_ptr<Handle>> out;
  auto st = states_.find(ino.value());
  if (st == states_.end() || st->second.writers.empty()) return out;
  for (auto& [fh, h] : handles_) {
    if (st->second.writers.count(h.get()) != 0) out.push_back(h);
  }
  return out;
}

int Fs::StorePending(InodeId ino) {
  for (const std::shared_ptr<Handle>& h : WritersOf(ino)) {
    if (!h->pending) continue;
    MutexLock lock(&h->mu);
    if (!h->pending) continue;
    if (int e = CommitLogged(*h, "store")) return e;
  }
  return 0;
}

int Fs::StorePendingIn(const std::string& collection) {
  std::vector<std::shared_ptr<Handle>> writers;
  {
    MutexLock lock(&mu_);
    for (auto& [fh, h] : handles_) {
      if (h->writable && h->kind == NodeKind::kDocument) writers.push_back(h);
    }
  }
  for (const std::shared_ptr<Handle>& h : writers) {
    if (!h->pending) continue;
    MutexLock lock(&h->mu);
    if (!h->pending) continue;
    NodeKey key;
    if (KeyOf(h->ino, &key) != 0 || key.collection != collection) continue;
    if (int e = CommitLogged(*h, "store")) return e;
  }
  return 0;
}

int Fs::CollectionExists(const std::string& name) {
  Result<std::vector<client::CollectionStatus>> cols = client_->ListCollections();
  if (!cols.ok()) {
    LOG_WARN(log_) << "list collections: " << cols.status().ToString();
    return ErrnoOf(cols.status());
  }
  for (const client::CollectionStatus& c : *cols) {
    if (c.name == name) return 0;
  }
  return ENOENT;
}

int Fs::GetAttr(InodeId ino, Attr* out) {
  NodeKey key;
  if (int e = KeyOf(ino, &key)) return e;
  switch (key.kind) {
    case NodeKind::kRoot:
    case NodeKind::kCollection:
    case NodeKind::kQueryDir:
      *out = DirAttr(ino);
      return 0;
    case NodeKind::kStatus: {
      Result<std::string> json = StatusJson();
      *out = SpecialAttr(ino, key.kind, json.ok() ? json->size() : 0);
      return 0;
    }
    case NodeKind::kIndexes: {
      Result<std::string> text = IndexesText(key.collection);
      if (!text.ok()) return ErrnoOf(text.status());
      *out = SpecialAttr(ino, key.kind, text->size());
      return 0;
    }
    case NodeKind::kQueryFile: {
      std::shared_ptr<const QueryFile> q = QueryResultFor(ino, key, /*for_open=*/false);
      *out = SpecialAttr(ino, key.kind, q->size());
      out->uncached = true;
      return 0;
    }
    case NodeKind::kDocument:
      break;
  }
  // A file being written: its size is the buffer's.
  for (const std::shared_ptr<Handle>& h : WritersOf(ino)) {
    MutexLock lock(&h->mu);
    if (h->buf && (h->buf->dirty() || h->pending)) {
      client::DocInfo d = h->info;
      d.size = h->buf->size();
      d.mtime_ns = NowNanos();
      *out = DocAttr(ino, d);
      return 0;
    }
  }
  Result<client::DocInfo> d = client_->Stat(key.collection, key.id);
  if (!d.ok()) {
    if (d.status().code() != StatusCode::kNotFound) {
      LOG_WARN(log_) << "stat: " << d.status().ToString();
    }
    return ErrnoOf(d.status());
  }
  *out = DocAttr(ino, *d);
  return 0;
}

// ---------------------------------------------------------------- query files

std::shared_ptr<const QueryFile> Fs::RunQueryFile(const NodeKey& key) {
  Result<client::QueryResult> r = client_->Query(key.collection, key.id);
  if (!r.ok()) {
    // At warn, fsd's default level: the user asked for this file and the
    // log is where the reason is (besides user.cairn.query_error).
    LOG_WARN(log_) << "query file " << key.collection << "/.query/" << EncodeQueryName(key.id)
                   << ": " << r.status().ToString();
    return QueryFile::Failed(r.status());
  }
  Result<std::shared_ptr<const QueryFile>> f = QueryFile::Make(r->rows, options_.spill_dir);
  if (!f.ok()) {
    LOG_WARN(log_) << "query file " << key.collection << ": " << f.status().ToString();
    return QueryFile::Failed(f.status());
  }
  return std::move(f).value();
}

std::shared_ptr<const QueryFile> Fs::QueryResultFor(InodeId ino, const NodeKey& key,
                                                    bool for_open) {
  {
    MutexLock lock(&mu_);
    InodeState& st = states_[ino.value()];
    // stat and xattrs report the latest result, also one an open took (an
    // fstat of that open then agrees with what it reads); every path-based
    // access looked the name up first, which ran the query again.
    if (st.query != nullptr && (!for_open || !st.query_taken)) {
      if (for_open) st.query_taken = true;
      return st.query;
    }
  }
  // Taken by an earlier open (or never run): a new run, kept for stat and
  // xattrs (and, when run for a getattr, for the next open).
  std::shared_ptr<const QueryFile> q = RunQueryFile(key);
  MutexLock lock(&mu_);
  InodeState& st = states_[ino.value()];
  st.query = q;
  st.query_taken = for_open;
  return q;
}

// ---------------------------------------------------------------- names

int Fs::Lookup(InodeId parent, const std::string& name, EntryOut* out) {
  NodeKey pkey;
  if (int e = KeyOf(parent, &pkey)) return e;
  NodeKey key;
  switch (pkey.kind) {
    case NodeKind::kRoot: {
      if (name == kStatusName) {
        key.kind = NodeKind::kStatus;
        break;
      }
      Status s = CheckCollectionName(name);
      if (!s.ok())
        return s.code() == StatusCode::kTooLarge && name.size() > kNameMax ? ENAMETOOLONG : ENOENT;
      if (int e = CollectionExists(name)) return e;
      key.kind = NodeKind::kCollection;
      key.collection = name;
      break;
    }
    case NodeKind::kCollection: {
      key.collection = pkey.collection;
      if (name == kIndexesName) {
        key.kind = NodeKind::kIndexes;
        break;
      }
      if (name == kQueryName) {
        key.kind = NodeKind::kQueryDir;
        break;
      }
      Status s = CheckDocumentName(name);
      if (!s.ok()) return s.code() == StatusCode::kTooLarge ? ENAMETOOLONG : ENOENT;
      key.kind = NodeKind::kDocument;
      key.id = name;
      break;
    }
    case NodeKind::kQueryDir: {
      // Every name is a query file; looking it up runs the query (its size
      // is the result's), kept with the inode for the next open.
      key.kind = NodeKind::kQueryFile;
      key.collection = pkey.collection;
      key.id = DecodeQueryName(name);
      std::shared_ptr<const QueryFile> q = RunQueryFile(key);
      out->ino = inodes_.Lookup(key);
      {
        MutexLock lock(&mu_);
        InodeState& st = states_[out->ino.value()];
        st.query = q;
        st.query_taken = false;
      }
      out->attr = SpecialAttr(out->ino, key.kind, q->size());
      out->attr.uncached = true;
      return 0;
    }
    default:
      return ENOTDIR;
  }
  // Count the lookup only once the attributes are known to exist.
  if (key.kind == NodeKind::kDocument) {
    // A document being written here is found with the writer's size.
    if (std::optional<InodeId> known = inodes_.Find(key)) {
      Attr a;
      if (GetAttr(*known, &a) == 0) {
        out->ino = inodes_.Lookup(key);
        out->attr = a;
        out->attr.ino = out->ino.value();
        return 0;
      }
    }
    Result<client::DocInfo> d = client_->Stat(key.collection, key.id);
    if (!d.ok()) {
      if (d.status().code() != StatusCode::kNotFound) {
        LOG_WARN(log_) << "lookup: " << d.status().ToString();
      }
      return ErrnoOf(d.status());
    }
    out->ino = inodes_.Lookup(key);
    out->attr = DocAttr(out->ino, *d);
    return 0;
  }
  out->ino = inodes_.Lookup(key);
  if (int e = GetAttr(out->ino, &out->attr)) {
    inodes_.Forget(out->ino, 1);
    return e;
  }
  return 0;
}

void Fs::Forget(InodeId ino, uint64_t n) {
  if (inodes_.Forget(ino, n)) {
    MutexLock lock(&mu_);
    auto it = states_.find(ino.value());
    if (it != states_.end() && it->second.open == 0) states_.erase(it);
  }
}

int Fs::Mkdir(InodeId parent, const std::string& name, EntryOut* out) {
  NodeKey pkey;
  if (int e = KeyOf(parent, &pkey)) return e;
  if (pkey.kind == NodeKind::kQueryDir) return EACCES;
  if (pkey.kind != NodeKind::kRoot) return EPERM;  // no nested directories
  if (name == kStatusName) return EEXIST;
  if (Status s = CheckCollectionName(name); !s.ok()) return NameErrno(s);
  Status s = client_->CreateCollection(name);
  if (!s.ok()) {
    if (s.code() != StatusCode::kAlreadyExists) LOG_WARN(log_) << "mkdir: " << s.ToString();
    return ErrnoOf(s);
  }
  NodeKey key{NodeKind::kCollection, name, ""};
  out->ino = inodes_.Lookup(key);
  out->attr = DirAttr(out->ino);
  return 0;
}

int Fs::Rmdir(InodeId parent, const std::string& name) {
  NodeKey pkey;
  if (int e = KeyOf(parent, &pkey)) return e;
  if (pkey.kind == NodeKind::kCollection) {
    if (name == kQueryName) return EPERM;
    if (name == kIndexesName) return ENOTDIR;
    return ENOTDIR;  // documents (the kernel usually answers this itself)
  }
  if (pkey.kind != NodeKind::kRoot) return ENOENT;
  if (name == kStatusName) return ENOTDIR;
  if (Status s = CheckCollectionName(name); !s.ok()) return ENOENT;
  if (int e = StorePendingIn(name)) return e;  // files created here are not empty dirs
  Status s = client_->DropCollection(name);
  if (!s.ok()) {
    if (s.code() != StatusCode::kNotEmpty && s.code() != StatusCode::kNotFound) {
      LOG_WARN(log_) << "rmdir: " << s.ToString();
    }
    return ErrnoOf(s);
  }
  inodes_.Unlink(NodeKey{NodeKind::kCollection, name, ""});
  return 0;
}

Result<std::string> Fs::HiddenIdFor(const std::string& collection, const std::string& id,
                                    InodeId ino) {
  ASSIGN_OR_RETURN(PartitionId p, client_->PartitionOfDocument(collection, id));
  uint64_t seq;
  {
    MutexLock lock(&mu_);
    seq = ++hidden_seq_;
  }
  const std::string base =
      std::string(kUnlinkedPrefix) + std::to_string(ino.value()) + "-" + std::to_string(seq) + "-";
  // Same partition as the name: the rename is one atomic call (P is small:
  // a few dozen tries on average).
  for (int n = 0; n < 100000; ++n) {
    const std::string cand = base + std::to_string(n);
    ASSIGN_OR_RETURN(PartitionId q, client_->PartitionOfDocument(collection, cand));
    if (q == p) return cand;
  }
  return Status::Internal("no hidden name in partition " + std::to_string(p.value()));
}

int Fs::HideOpen(const NodeKey& key, InodeId ino) {
  // Keep the body for the open handles under a hidden id (see fs.h).
  Result<std::string> hidden = HiddenIdFor(key.collection, key.id, ino);
  if (!hidden.ok()) return ErrnoOf(hidden.status());
  client::RenameOptions ro;
  ro.replace = true;
  Result<client::DocInfo> r = client_->Rename(key.collection, key.id, *hidden, ro);
  if (!r.ok()) {
    if (r.status().code() != StatusCode::kNotFound) {
      LOG_WARN(log_) << "hiding " << key.collection << "/" << key.id << ": "
                     << r.status().ToString();
    }
    return ErrnoOf(r.status());
  }
  inodes_.Repoint(ino, NodeKey{NodeKind::kDocument, key.collection, *hidden});
  MutexLock lock(&mu_);
  states_[ino.value()].hidden = true;
  return 0;
}

bool Fs::IsOpen(InodeId ino) {
  MutexLock lock(&mu_);
  auto it = states_.find(ino.value());
  return it != states_.end() && it->second.open > 0;
}

int Fs::Unlink(InodeId parent, const std::string& name) {
  NodeKey pkey;
  if (int e = KeyOf(parent, &pkey)) return e;
  if (pkey.kind == NodeKind::kRoot) return name == kStatusName ? EPERM : EISDIR;
  if (pkey.kind == NodeKind::kQueryDir) return EACCES;  // query files are not stored
  if (pkey.kind != NodeKind::kCollection) return ENOENT;
  if (name == kIndexesName) return EPERM;
  if (name == kQueryName) return EISDIR;
  if (Status s = CheckDocumentName(name); !s.ok()) return NameErrno(s);
  NodeKey key{NodeKind::kDocument, pkey.collection, name};
  std::optional<InodeId> ino = inodes_.Find(key);
  if (ino) {
    if (int e = StorePending(*ino)) return e;
  }
  if (ino && IsOpen(*ino)) return HideOpen(key, *ino);
  Status s = client_->Delete(key.collection, key.id);
  if (!s.ok()) {
    if (s.code() != StatusCode::kNotFound) LOG_WARN(log_) << "unlink: " << s.ToString();
    return ErrnoOf(s);
  }
  inodes_.Unlink(key);
  return 0;
}

int Fs::CopyAcross(const NodeKey& from, const NodeKey& to, bool replace) {
  std::string tmpl = options_.spill_dir + "/cairn-fsd-mv-XXXXXX";
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) {
    LOG_ERROR(log_) << "rename: temp file in " << options_.spill_dir << ": errno " << errno;
    return EIO;
  }
  ::unlink(tmpl.c_str());
  auto done = [&](int e) {
    ::close(fd);
    return e;
  };
  Result<client::DocInfo> src = client_->Get(from.collection, from.id, client::FdWriter(fd));
  if (!src.ok()) return done(ErrnoOf(src.status()));
  if (::lseek(fd, 0, SEEK_SET) != 0) return done(EIO);
  client::WriteOptions w;
  w.expected_version = replace ? client::kAnyVersion : client::kMustNotExist;
  w.mode = src->mode;
  w.uid = src->uid;
  w.gid = src->gid;
  w.mtime_ns = src->mtime_ns;
  w.xattrs = src->xattrs;
  Result<client::DocInfo> put = client_->PutFile(to.collection, to.id, fd, w);
  if (!put.ok()) {
    LOG_WARN(log_) << "rename (copy): " << put.status().ToString();
    return done(ErrnoOf(put.status()));
  }
  // The source goes only if it is still the version copied: never neither.
  Status s = client_->Delete(from.collection, from.id, src->version);
  if (!s.ok()) {
    LOG_WARN(log_) << "rename: copied to " << to.collection << "/" << to.id
                   << " but the source stays: " << s.ToString();
    return done(ErrnoOf(s));
  }
  return done(0);
}

int Fs::Rename(InodeId parent, const std::string& name, InodeId new_parent,
               const std::string& new_name, unsigned int flags) {
  if ((flags & ~static_cast<unsigned int>(RENAME_NOREPLACE)) != 0) return EINVAL;
  NodeKey p1, p2;
  if (int e = KeyOf(parent, &p1)) return e;
  if (int e = KeyOf(new_parent, &p2)) return e;
  if (p1.kind == NodeKind::kRoot) {
    if (name == kStatusName) return EPERM;
    // A collection is not renamed in place: mv falls back to copying.
    return p2.kind == NodeKind::kRoot ? EXDEV : EPERM;
  }
  if (p1.kind == NodeKind::kQueryDir || p2.kind == NodeKind::kQueryDir) return EACCES;
  if (p1.kind != NodeKind::kCollection || p2.kind != NodeKind::kCollection) return EPERM;
  if (name == kIndexesName || name == kQueryName) return EPERM;
  if (new_name == kIndexesName || new_name == kQueryName) return EPERM;
  if (Status s = CheckDocumentName(name); !s.ok()) return NameErrno(s);
  if (Status s = CheckDocumentName(new_name); !s.ok()) return NameErrno(s);
  const NodeKey from{NodeKind::kDocument, p1.collection, name};
  const NodeKey to{NodeKind::kDocument, p2.collection, new_name};
  if (from == to) return 0;
  const bool replace = (flags & RENAME_NOREPLACE) == 0;
  for (const NodeKey* k : {&from, &to}) {
    if (std::optional<InodeId> known = inodes_.Find(*k)) {
      if (int e = StorePending(*known)) return e;
    }
  }
  // A target some handle holds open keeps its body for that handle, as if
  // unlinked (its name is then free).
  if (std::optional<InodeId> target = inodes_.Find(to); replace && target && IsOpen(*target)) {
    if (int e = HideOpen(to, *target); e != 0 && e != ENOENT) return e;
  }
  if (from.collection == to.collection) {
    client::RenameOptions ro;
    ro.replace = replace;
    Result<client::DocInfo> r = client_->Rename(from.collection, from.id, to.id, ro);
    if (!r.ok()) {
      if (r.status().code() != StatusCode::kNotFound &&
          r.status().code() != StatusCode::kAlreadyExists) {
        LOG_WARN(log_) << "rename: " << r.status().ToString();
      }
      return ErrnoOf(r.status());
    }
  } else if (int e = CopyAcross(from, to, replace)) {
    return e;
  }
  inodes_.Rename(from, to);
  return 0;
}

// ---------------------------------------------------------------- open, create

int Fs::OpenWriter(InodeId ino, const client::DocInfo& info, bool truncate, OpenOut* out,
                   bool pending) {
  auto h = std::make_shared<Handle>();
  h->ino = ino;
  h->kind = NodeKind::kDocument;
  h->writable = true;
  {
    MutexLock lock(&h->mu);
    uint32_t bb = info.block_bytes;
    if (bb == 0) {
      Result<uint32_t> r = client_->BlockBytesFor(info.collection, info.id);
      if (!r.ok()) return ErrnoOf(r.status());
      bb = *r;
    }
    h->block_bytes = bb;
    h->info = info;
    h->version = info.version;
    h->buf = std::make_unique<FileBuffer>(bb, truncate ? 0 : info.size, options_.spill_dir,
                                          options_.spill_bytes);
    h->force_commit = (truncate && info.size > 0) || pending;
    h->pending = pending;
  }
  out->fh = AddHandle(h);
  out->keep_cache = false;
  out->direct_io = false;
  return 0;
}

int Fs::Create(InodeId parent, const std::string& name, uint32_t mode, int flags, uint32_t uid,
               uint32_t gid, EntryOut* entry, OpenOut* out) {
  NodeKey pkey;
  if (int e = KeyOf(parent, &pkey)) return e;
  if (pkey.kind == NodeKind::kRoot) return name == kStatusName ? EEXIST : EPERM;
  if (pkey.kind == NodeKind::kQueryDir) return EACCES;  // read-only: queries are looked up
  if (pkey.kind != NodeKind::kCollection) return EPERM;
  if (name == kIndexesName || name == kQueryName) return EEXIST;
  if (Status s = CheckDocumentName(name); !s.ok()) return NameErrno(s);
  const NodeKey key{NodeKind::kDocument, pkey.collection, name};
  // A file created here and not stored yet is an existing file to this one.
  if (std::optional<InodeId> known = inodes_.Find(key)) {
    if (int e = StorePending(*known)) return e;
  }
  client::WriteOptions w;
  w.expected_version = client::kMustNotExist;
  w.mode = mode & 07777u;
  w.uid = uid;
  w.gid = gid;
  Result<client::DocInfo> r = Status::NotFound("");
  bool pending = false;
  if ((flags & O_EXCL) != 0) {
    // Exclusive (lock files, mkstemp): the name is taken in the cluster by
    // create() itself, an empty version.
    r = client_->Put(pkey.collection, name, "", w);
    if (!r.ok() && r.status().code() == StatusCode::kAlreadyExists) return EEXIST;
  } else {
    // Otherwise the file is stored by its first commit (close, fsync, or an
    // operation that needs it stored: StorePending), content and all: one
    // replicated write per small file instead of two. Until then this mount
    // shows it from the buffer; other mounts see it from the commit on.
    r = client_->Stat(pkey.collection, name);
    if (!r.ok() && r.status().code() == StatusCode::kNotFound) {
      client::DocInfo d;
      d.collection = pkey.collection;
      d.id = name;
      d.mode = *w.mode;
      d.uid = uid;
      d.gid = gid;
      d.mtime_ns = NowNanos();
      r = d;
      pending = true;
    }
  }
  if (!r.ok()) {
    LOG_WARN(log_) << "create: " << r.status().ToString();
    return ErrnoOf(r.status());
  }
  const bool truncate =
      !pending && r->version > 0 && (flags & O_TRUNC) != 0 && (flags & O_EXCL) == 0;
  entry->ino = inodes_.Lookup(key);
  if (int e = OpenWriter(entry->ino, *r, truncate, out, pending)) {
    inodes_.Forget(entry->ino, 1);
    return e;
  }
  entry->attr = DocAttr(entry->ino, *r);
  if (truncate) entry->attr.size = 0;
  return 0;
}

int Fs::Open(InodeId ino, int flags, OpenOut* out) {
  NodeKey key;
  if (int e = KeyOf(ino, &key)) return e;
  switch (key.kind) {
    case NodeKind::kRoot:
    case NodeKind::kCollection:
    case NodeKind::kQueryDir:
      return EISDIR;
    case NodeKind::kStatus:
    case NodeKind::kIndexes: {
      if (WantsWrite(flags) && key.kind == NodeKind::kStatus) return EPERM;
      auto h = std::make_shared<Handle>();
      h->ino = ino;
      h->kind = key.kind;
      if (key.kind == NodeKind::kStatus) {
        Result<std::string> json = StatusJson();
        if (!json.ok()) return ErrnoOf(json.status());
        MutexLock lock(&h->mu);
        h->content = std::move(*json);
      } else {
        // .indexes: the current list; a writer edits a copy of it, applied
        // at flush/close (see docs/indexes.md, "The .indexes file").
        Result<std::string> text = IndexesText(key.collection);
        if (!text.ok()) return ErrnoOf(text.status());
        MutexLock lock(&h->mu);
        h->content = std::move(*text);
        if (WantsWrite(flags)) {
          h->writable = true;
          h->append = (flags & O_APPEND) != 0;
          if ((flags & O_TRUNC) != 0) {
            h->content.clear();
            h->content_dirty = true;
          }
        }
      }
      out->fh = AddHandle(h);
      out->direct_io = true;  // generated content: its size is not known ahead
      return 0;
    }
    case NodeKind::kQueryFile: {
      if (WantsWrite(flags)) return EACCES;
      std::shared_ptr<const QueryFile> q = QueryResultFor(ino, key, /*for_open=*/true);
      if (!q->error().ok()) {
        const StatusCode c = q->error().code();
        return c == StatusCode::kInvalidArgument || c == StatusCode::kTooLarge
                   ? EINVAL
                   : ErrnoOf(q->error());
      }
      auto h = std::make_shared<Handle>();
      h->ino = ino;
      h->kind = key.kind;
      h->query = std::move(q);
      out->fh = AddHandle(h);
      // Each open may see a new result: no page cache across opens.
      out->direct_io = true;
      return 0;
    }
    case NodeKind::kDocument:
      break;
  }
  if (int e = StorePending(ino)) return e;
  Result<client::DocInfo> info = client_->Stat(key.collection, key.id);
  if (!info.ok()) return ErrnoOf(info.status());
  if (WantsWrite(flags)) return OpenWriter(ino, *info, (flags & O_TRUNC) != 0, out);
  auto h = std::make_shared<Handle>();
  h->ino = ino;
  h->kind = NodeKind::kDocument;
  {
    MutexLock lock(&h->mu);
    h->info = *info;
    h->version = info->version;
    h->size = info->size;
    h->block_bytes = info->block_bytes > 0 ? info->block_bytes : client::kDefaultBlockBytes;
  }
  {
    MutexLock lock(&mu_);
    InodeState& st = states_[ino.value()];
    out->keep_cache = st.last_open_version == info->version;
    st.last_open_version = info->version;
  }
  out->fh = AddHandle(h);
  return 0;
}

// ---------------------------------------------------------------- read

namespace {

Result<std::string> GetRange(client::Client* c, const NodeKey& key, int64_t version,
                             uint64_t offset, uint64_t len) {
  std::string data;
  client::ReadOptions ro;
  ro.offset = offset;
  ro.length = len;
  ro.if_version = version;
  Result<client::DocInfo> r = c->Get(key.collection, key.id, client::StringWriter(&data), ro);
  if (!r.ok()) return r.status();
  if (data.size() != len) {
    return Status::Internal(key.collection + "/" + key.id + ": short read of " +
                            std::to_string(data.size()) + " of " + std::to_string(len) +
                            " bytes at " + std::to_string(offset));
  }
  return data;
}

}  // namespace

Result<std::shared_ptr<const std::string>> Fs::ReaderBlock(Handle& h, uint64_t k) {
  NodeKey key;
  if (KeyOf(h.ino, &key) != 0) return Status::NotFound("inode forgotten");
  for (int attempt = 0;; ++attempt) {
    const uint64_t start = k * h.block_bytes;
    if (start >= h.size) return std::make_shared<const std::string>();
    const uint64_t len = std::min<uint64_t>(h.block_bytes, h.size - start);
    BlockKey bk{key.collection, key.id, h.version, k};
    if (std::shared_ptr<const std::string> hit = cache_.Get(bk)) {
      if (hit->size() == len) return hit;
    }
    Result<std::string> data = GetRange(client_, key, h.version, start, len);
    if (data.ok()) {
      auto p = std::make_shared<const std::string>(std::move(*data));
      cache_.Put(bk, p);
      return p;
    }
    if (data.status().code() != StatusCode::kVersionMismatch || attempt > 2) return data.status();
    RETURN_IF_ERROR(FollowNewVersion(h, key));
  }
}

Status Fs::FollowNewVersion(Handle& h, const NodeKey& key) {
  // Another client committed a new version: continue with it (fs.h).
  Result<client::DocInfo> info = client_->Stat(key.collection, key.id);
  if (!info.ok()) return info.status();
  LOG_DEBUG(log_) << key.collection << "/" << key.id << ": version " << h.version << " -> "
                  << info->version << " while open";
  h.info = *info;
  h.version = info->version;
  h.size = info->size;
  if (info->block_bytes > 0) h.block_bytes = info->block_bytes;
  return Status::Ok();
}

Result<std::string> Fs::ReaderRange(Handle& h, const NodeKey& key, uint64_t offset, uint64_t len) {
  for (int attempt = 0;; ++attempt) {
    if (offset >= h.size) return std::string();
    len = std::min(len, h.size - offset);
    Result<std::string> data = GetRange(client_, key, h.version, offset, len);
    if (data.ok() || data.status().code() != StatusCode::kVersionMismatch || attempt > 2) {
      return data;
    }
    RETURN_IF_ERROR(FollowNewVersion(h, key));
  }
}

void Fs::Prefetch(const NodeKey& key, int64_t version, uint32_t block_bytes, uint64_t size,
                  uint64_t from_block) {
  if (options_.prefetch_blocks == 0) return;
  {
    MutexLock lock(&prefetch_mu_);
    for (uint64_t k = from_block; k < from_block + options_.prefetch_blocks; ++k) {
      const uint64_t start = k * block_bytes;
      if (start >= size) break;
      BlockKey bk{key.collection, key.id, version, k};
      if (prefetch_pending_.count(bk) != 0 || cache_.Contains(bk)) continue;
      prefetch_pending_.insert(bk);
      prefetch_queue_.push_back({bk, start, std::min<uint64_t>(block_bytes, size - start)});
    }
  }
  prefetch_cv_.NotifyAll();
}

void Fs::PrefetchLoop() {
  for (;;) {
    PrefetchJob job;
    {
      MutexLock lock(&prefetch_mu_);
      prefetch_cv_.Wait(&prefetch_mu_, [&]() REQUIRES(prefetch_mu_) {
        return stopping_ || !prefetch_queue_.empty();
      });
      if (stopping_) return;
      job = std::move(prefetch_queue_.front());
      prefetch_queue_.pop_front();
    }
    if (!cache_.Contains(job.key)) {
      NodeKey key{NodeKind::kDocument, job.key.collection, job.key.id};
      Result<std::string> data = GetRange(client_, key, job.key.version, job.offset, job.length);
      if (data.ok()) {
        cache_.Put(job.key, std::make_shared<const std::string>(std::move(*data)));
      }
    }
    MutexLock lock(&prefetch_mu_);
    prefetch_pending_.erase(job.key);
  }
}

Status Fs::FillBlocks(Handle& h, const std::vector<uint64_t>& blocks) {
  if (blocks.empty()) return Status::Ok();
  NodeKey key;
  if (KeyOf(h.ino, &key) != 0) return Status::NotFound("inode forgotten");
  for (uint64_t k : blocks) {
    const uint64_t len = h.buf->FetchLength(k);
    BlockKey bk{key.collection, key.id, h.version, k};
    std::string data;
    if (std::shared_ptr<const std::string> hit = cache_.Get(bk); hit && hit->size() == len) {
      data = *hit;
    } else {
      ASSIGN_OR_RETURN(data, GetRange(client_, key, h.version, k * h.block_bytes, len));
    }
    RETURN_IF_ERROR(h.buf->Fill(k, data));
  }
  return Status::Ok();
}

int Fs::Read(InodeId, uint64_t fh, uint64_t offset, uint64_t size, std::string* out) {
  std::shared_ptr<Handle> h = FindHandle(fh);
  if (!h) return EBADF;
  if (h->kind == NodeKind::kQueryFile) {
    Status s = h->query->Read(offset, size, out);
    if (!s.ok()) LOG_WARN(log_) << "read (query result): " << s.ToString();
    return ErrnoOf(s);
  }
  MutexLock lock(&h->mu);
  if (h->kind != NodeKind::kDocument) {
    if (offset < h->content.size()) *out = h->content.substr(offset, size);
    return 0;
  }
  if (h->buf) {
    Status s = FillBlocks(*h, h->buf->MissingForRead(offset, size));
    if (!s.ok()) {
      LOG_WARN(log_) << "read (base blocks): " << s.ToString();
      return ErrnoOf(s);
    }
    Result<std::string> r = h->buf->Read(offset, size);
    if (!r.ok()) return ErrnoOf(r.status());
    *out = std::move(*r);
    return 0;
  }
  out->clear();
  const uint64_t end = std::min(h->size, offset + size);
  // A small random read (O_DIRECT 4 KiB, a database page) inside one block
  // that is not cached fetches just its bytes: fetching and caching the whole
  // block would move 256 times the data for a 4 KiB read. Sequential reads
  // keep whole blocks, the cache and read-ahead.
  if (offset != h->last_read_end && end > offset && h->block_bytes > 0 &&
      end - offset <= h->block_bytes / 4 && offset / h->block_bytes == (end - 1) / h->block_bytes) {
    NodeKey key;
    if (KeyOf(h->ino, &key) != 0) return ESTALE;
    if (!cache_.Contains(BlockKey{key.collection, key.id, h->version, offset / h->block_bytes})) {
      Result<std::string> r = ReaderRange(*h, key, offset, end - offset);
      if (!r.ok()) {
        LOG_WARN(log_) << "read: " << r.status().ToString();
        return r.status().code() == StatusCode::kNotFound ? ESTALE : ErrnoOf(r.status());
      }
      *out = std::move(*r);
      h->last_read_end = offset + out->size();
      return 0;
    }
  }
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t k = pos / h->block_bytes;
    Result<std::shared_ptr<const std::string>> b = ReaderBlock(*h, k);
    if (!b.ok()) {
      LOG_WARN(log_) << "read: " << b.status().ToString();
      // Deleted by another client while open here.
      return b.status().code() == StatusCode::kNotFound ? ESTALE : ErrnoOf(b.status());
    }
    const uint64_t in = pos - k * h->block_bytes;
    if (in >= (*b)->size()) break;
    const uint64_t n = std::min<uint64_t>((*b)->size() - in, end - pos);
    out->append(**b, in, n);
    pos += n;
  }
  // Sequential: read ahead the next blocks in the background.
  if (offset == h->last_read_end && !out->empty()) {
    NodeKey key;
    if (KeyOf(h->ino, &key) == 0) {
      Prefetch(key, h->version, h->block_bytes, h->size,
               (offset + out->size() + h->block_bytes - 1) / h->block_bytes);
    }
  }
  h->last_read_end = offset + out->size();
  return 0;
}

// ---------------------------------------------------------------- write

Status Fs::StreamFullBlocks(Handle& h, uint64_t written_end) {
  // Only new or truncated bodies written from the start stream: the others
  // keep unchanged blocks by reference at commit.
  const uint64_t bb = h.block_bytes;
  while ((h.stream_next + 1) * bb <= written_end) {
    const uint64_t k = h.stream_next;
    if (h.buf->is_dirty(k) && h.sent.count(k) == 0 && h.buf->BlockLength(k) == bb) {
      if (!h.upload) {
        NodeKey key;
        if (KeyOf(h.ino, &key) != 0) return Status::NotFound("inode forgotten");
        ASSIGN_OR_RETURN(h.upload, client_->BeginBlockUpload(key.collection, key.id));
        if (h.upload->block_bytes() != bb) {
          h.upload.reset();
          return Status::Ok();  // a block size disagreement: commit sends it all
        }
      }
      ASSIGN_OR_RETURN(std::string data, h.buf->Block(k));
      RETURN_IF_ERROR(h.upload->SendBlock(k, data));
      h.sent.insert(k);
    }
    ++h.stream_next;
  }
  return Status::Ok();
}

int Fs::Write(InodeId, uint64_t fh, uint64_t offset, std::string_view data) {
  std::shared_ptr<Handle> h = FindHandle(fh);
  if (!h) return EBADF;
  MutexLock lock(&h->mu);
  if (h->kind == NodeKind::kIndexes && h->writable) {
    constexpr uint64_t kMaxIndexesText = 1 << 20;
    if (h->append) offset = h->content.size();
    if (offset > kMaxIndexesText || data.size() > kMaxIndexesText - offset) return EFBIG;
    if (h->content.size() < offset + data.size()) h->content.resize(offset + data.size(), '\n');
    h->content.replace(offset, data.size(), data);
    h->content_dirty = true;
    return 0;
  }
  if (!h->buf) return EBADF;
  Status s = FillBlocks(*h, h->buf->MissingForWrite(offset, data.size()));
  if (s.ok()) s = h->buf->Write(offset, data);
  if (!s.ok()) {
    LOG_ERROR(log_) << "write: " << s.ToString();
    return ErrnoOf(s);
  }
  // Blocks changed since they were sent go again at commit.
  const uint64_t bb = h->block_bytes;
  if (!h->sent.empty()) {
    auto first = h->sent.lower_bound(offset / bb);
    auto last = h->sent.upper_bound((offset + data.size() - 1) / bb);
    h->sent.erase(first, last);
  }
  const bool sequential = offset == h->last_write_end && h->buf->base_size() == 0;
  h->last_write_end = offset + data.size();
  if (sequential && h->last_write_end >= 2ull * bb) {
    Status st = StreamFullBlocks(*h, h->last_write_end);
    if (!st.ok()) {
      // Not fatal: the data is in the buffer and commit sends it again.
      LOG_WARN(log_) << "streaming a block early: " << st.ToString() << " (retried at close)";
      h->upload.reset();
      h->sent.clear();
    }
  }
  return 0;
}

Status Fs::Commit(Handle& h, const char* why) {
  if (!h.buf || (!h.buf->dirty() && !h.force_commit)) return Status::Ok();
  NodeKey key;
  if (KeyOf(h.ino, &key) != 0) return Status::NotFound("inode forgotten");
  FileBuffer& b = *h.buf;
  const uint64_t n = b.block_count();
  bool keeps = false;
  for (uint64_t k = 0; k < n && h.version > 0; ++k) keeps = keeps || b.Keepable(k);
  client::WriteOptions w;
  w.mode = h.info.mode;
  w.uid = h.info.uid;
  w.gid = h.info.gid;
  w.xattrs = h.info.xattrs;
  w.mtime_ns = NowNanos();
  w.expected_version = keeps ? h.version : client::kAnyVersion;
  Result<client::DocInfo> r = Status::Internal("not committed");
  if (!keeps && b.size() <= h.block_bytes && !h.upload) {
    Result<std::string> body = b.Read(0, b.size());
    if (!body.ok()) return body.status();
    r = client_->Put(key.collection, key.id, *body, w);
  } else {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!h.upload) {
        Result<std::unique_ptr<client::BlockUpload>> u =
            client_->BeginBlockUpload(key.collection, key.id);
        if (!u.ok()) return u.status();
        h.upload = std::move(*u);
        h.sent.clear();
        if (h.upload->block_bytes() != h.block_bytes) {
          return Status::Internal("block size " + std::to_string(h.block_bytes) +
                                  " differs from the servers' " +
                                  std::to_string(h.upload->block_bytes()));
        }
      }
      XXH3_state_t* state = XXH3_createState();
      XXH3_64bits_reset(state);
      Status s;
      for (uint64_t k = 0; k < n && s.ok(); ++k) {
        std::string data;
        if (b.present(k)) {
          Result<std::string> d = b.Block(k);
          if (!d.ok()) {
            s = d.status();
            break;
          }
          data = std::move(*d);
        } else {
          // Kept by reference; its bytes are needed for the body hash only.
          Result<std::string> d =
              GetRange(client_, key, h.version, k * h.block_bytes, b.FetchLength(k));
          if (!d.ok()) {
            s = d.status();
            break;
          }
          data = std::move(*d);
        }
        XXH3_64bits_update(state, data.data(), data.size());
        if (!b.Keepable(k) && h.sent.count(k) == 0) {
          s = h.upload->SendBlock(k, data);
          if (s.ok()) h.sent.insert(k);
        }
      }
      const uint64_t hash = XXH3_64bits_digest(state);
      XXH3_freeState(state);
      if (!s.ok()) {
        r = s;
      } else {
        r = h.upload->Commit(b.size(), hash, keeps ? h.version : 0, w);
      }
      if (r.ok() || attempt > 0 || r.status().code() != StatusCode::kNotFound) break;
      // The server forgot the upload (restarted): send everything again.
      h.upload.reset();
      h.sent.clear();
    }
  }
  h.upload.reset();
  h.sent.clear();
  h.stream_next = 0;
  if (!r.ok()) {
    LOG_ERROR(log_) << why << ": upload of " << key.collection << "/" << key.id << " (" << b.size()
                    << " bytes) failed: " << r.status().ToString();
    return r.status();
  }
  b.MarkCommitted();
  h.info = *r;
  h.version = r->version;
  h.force_commit = false;
  h.pending = false;
  {
    MutexLock lock(&mu_);
    states_[h.ino.value()].last_open_version = r->version;
  }
  return Status::Ok();
}

int Fs::CommitLogged(Handle& h, const char* why) {
  Status s = Commit(h, why);  // logs the failure
  if (s.ok()) return 0;
  // A failed upload is EIO for close and fsync (the buffer stays dirty: the
  // next flush, fsync or the release tries again), except for the two
  // errors a writer can act on.
  if (s.code() == StatusCode::kTooLarge) return EFBIG;
  if (s.code() == StatusCode::kNoSpace) return ENOSPC;
  return EIO;
}

int Fs::Flush(InodeId, uint64_t fh) {
  std::shared_ptr<Handle> h = FindHandle(fh);
  if (!h) return EBADF;
  MutexLock lock(&h->mu);
  if (h->kind == NodeKind::kIndexes) return ApplyIndexesHandle(*h);
  return CommitLogged(*h, "close");
}

int Fs::Fsync(InodeId, uint64_t fh) {
  std::shared_ptr<Handle> h = FindHandle(fh);
  if (!h) return EBADF;
  MutexLock lock(&h->mu);
  if (h->kind == NodeKind::kIndexes) return ApplyIndexesHandle(*h);
  return CommitLogged(*h, "fsync");
}

void Fs::Release(InodeId ino, uint64_t fh) {
  std::shared_ptr<Handle> h;
  {
    MutexLock lock(&mu_);
    auto it = handles_.find(fh);
    if (it == handles_.end()) return;
    h = it->second;
    handles_.erase(it);
  }
  {
    MutexLock lock(&h->mu);
    if (h->buf) CommitLogged(*h, "release");
    if (h->kind == NodeKind::kIndexes) ApplyIndexesHandle(*h);
  }
  bool delete_hidden = false;
  {
    MutexLock lock(&mu_);
    InodeState& st = states_[ino.value()];
    --st.open;
    st.writers.erase(h.get());
    if (st.open == 0 && st.hidden) {
      delete_hidden = true;
      st.hidden = false;
    }
  }
  if (delete_hidden) {
    NodeKey key;
    if (KeyOf(ino, &key) == 0) {
      Status s = client_->Delete(key.collection, key.id);
      if (!s.ok() && s.code() != StatusCode::kNotFound) {
        LOG_WARN(log_) << "deleting unlinked " << key.collection << "/" << key.id << ": "
                       << s.ToString();
      }
    }
  }
}

int Fs::CommitAll() {
  std::vector<std::shared_ptr<Handle>> all;
  {
    MutexLock lock(&mu_);
    for (auto& [fh, h] : handles_) all.push_back(h);
  }
  int failed = 0;
  for (auto& h : all) {
    MutexLock lock(&h->mu);
    if (h->buf && CommitLogged(*h, "unmount") != 0) ++failed;
  }
  return failed;
}

// ---------------------------------------------------------------- setattr

int Fs::ChangeMetadata(InodeId ino, const client::WriteOptions& change, Attr* out) {
  NodeKey key;
  if (int e = KeyOf(ino, &key)) return e;
  std::vector<std::shared_ptr<Handle>> writers = WritersOf(ino);
  // Pending data first, so the metadata lands on (and stays with) it.
  for (auto& h : writers) {
    MutexLock lock(&h->mu);
    if (int e = CommitLogged(*h, "setattr")) return e;
  }
  Result<client::DocInfo> r = client_->UpdateMetadata(key.collection, key.id, change);
  if (!r.ok()) {
    if (r.status().code() != StatusCode::kNotFound) {
      LOG_WARN(log_) << "setattr: " << r.status().ToString();
    }
    return ErrnoOf(r.status());
  }
  for (auto& h : writers) {
    MutexLock lock(&h->mu);
    // Same blocks, new version: the writer's base moves along.
    if (h->version == 0 || !h->buf->dirty()) {
      h->info = *r;
      h->version = r->version;
    }
  }
  {
    MutexLock lock(&mu_);
    auto it = states_.find(ino.value());
    if (it != states_.end()) it->second.last_open_version = r->version;
  }
  *out = DocAttr(ino, *r);
  return 0;
}

int Fs::SetAttr(InodeId ino, std::optional<uint64_t> fh, const SetAttrIn& in, Attr* out) {
  NodeKey key;
  if (int e = KeyOf(ino, &key)) return e;
  if (key.kind != NodeKind::kDocument) {
    if (key.kind == NodeKind::kIndexes && in.size) {
      // Truncating .indexes: through a writer's handle it edits the text
      // applied at close; by path it applies at once (size 0 drops all).
      std::shared_ptr<Handle> h = fh ? FindHandle(*fh) : nullptr;
      if (h && h->kind == NodeKind::kIndexes && h->writable) {
        MutexLock lock(&h->mu);
        h->content.resize(static_cast<size_t>(std::min<uint64_t>(*in.size, 1 << 20)), '\n');
        h->content_dirty = true;
      } else {
        Result<std::string> text = IndexesText(key.collection);
        if (!text.ok()) return ErrnoOf(text.status());
        text->resize(static_cast<size_t>(std::min<uint64_t>(*in.size, 1 << 20)), '\n');
        if (int e = ApplyIndexesText(key.collection, *text)) return e;
      }
      if (in.mode || in.uid || in.gid) return EPERM;
      return GetAttr(ino, out);
    }
    if (key.kind == NodeKind::kStatus || key.kind == NodeKind::kIndexes) {
      if (in.size || in.mode || in.uid || in.gid) return EPERM;
    }
    if (key.kind == NodeKind::kQueryFile) {
      if (in.size) return EACCES;
      if (in.mode || in.uid || in.gid) return EPERM;
    }
    // Directories have no stored attributes; times and modes set by tools
    // (cp -a, rsync, tar) are accepted and not kept.
    return GetAttr(ino, out);
  }
  if (in.size) {
    std::shared_ptr<Handle> h;
    if (fh) {
      h = FindHandle(*fh);
      if (h && !h->writable) h = nullptr;
    }
    if (!h) {
      std::vector<std::shared_ptr<Handle>> w = WritersOf(ino);
      if (!w.empty()) h = w.front();
    }
    if (h) {
      MutexLock lock(&h->mu);
      Status s = FillBlocks(*h, h->buf->MissingForTruncate(*in.size));
      if (s.ok()) s = h->buf->Truncate(*in.size);
      if (!s.ok()) {
        LOG_ERROR(log_) << "truncate: " << s.ToString();
        return ErrnoOf(s);
      }
      h->sent.erase(h->sent.lower_bound(*in.size / h->block_bytes), h->sent.end());
      h->stream_next = std::min(h->stream_next, *in.size / h->block_bytes);
    } else {
      // Nobody has it open for writing: a one-off writer.
      Result<client::DocInfo> info = client_->Stat(key.collection, key.id);
      if (!info.ok()) return ErrnoOf(info.status());
      if (info->size != *in.size) {
        Handle tmp;
        tmp.ino = ino;
        tmp.writable = true;
        MutexLock lock(&tmp.mu);
        uint32_t bb = info->block_bytes;
        if (bb == 0) {
          Result<uint32_t> r = client_->BlockBytesFor(key.collection, key.id);
          if (!r.ok()) return ErrnoOf(r.status());
          bb = *r;
        }
        tmp.block_bytes = bb;
        tmp.info = *info;
        tmp.version = info->version;
        tmp.buf = std::make_unique<FileBuffer>(bb, *in.size == 0 ? 0 : info->size,
                                               options_.spill_dir, options_.spill_bytes);
        tmp.force_commit = true;
        Status s = FillBlocks(tmp, tmp.buf->MissingForTruncate(*in.size));
        if (s.ok()) s = tmp.buf->Truncate(*in.size);
        if (!s.ok()) return ErrnoOf(s);
        if (int e = CommitLogged(tmp, "truncate")) return e;
      }
    }
  }
  if (in.mode || in.uid || in.gid || in.mtime_ns) {
    client::WriteOptions w;
    if (in.mode) w.mode = *in.mode & 07777u;
    w.uid = in.uid;
    w.gid = in.gid;
    w.mtime_ns = in.mtime_ns;
    return ChangeMetadata(ino, w, out);
  }
  return GetAttr(ino, out);
}

// ---------------------------------------------------------------- directories

int Fs::OpenDir(InodeId ino, uint64_t* dh) {
  NodeKey key;
  if (int e = KeyOf(ino, &key)) return e;
  if (!key.is_dir()) return ENOTDIR;
  std::vector<DirEntry> entries;
  bool done = false;
  auto add = [&](std::string name, NodeKey k, uint32_t type, bool dot) {
    DirEntry e;
    e.name = std::move(name);
    e.key = std::move(k);
    e.attr.mode = type;
    e.dot = dot;
    entries.push_back(std::move(e));
  };
  add(".", key, S_IFDIR, true);
  add("..", NodeKey{}, S_IFDIR, true);
  if (key.kind == NodeKind::kRoot) {
    add(std::string(kStatusName), NodeKey{NodeKind::kStatus, "", ""}, S_IFREG, false);
    Result<std::vector<client::CollectionStatus>> cols = client_->ListCollections();
    if (!cols.ok()) return ErrnoOf(cols.status());
    std::vector<std::string> names;
    for (const auto& c : *cols) names.push_back(c.name);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
      add(n, NodeKey{NodeKind::kCollection, n, ""}, S_IFDIR, false);
    }
    done = true;
  } else if (key.kind == NodeKind::kCollection) {
    if (int e = CollectionExists(key.collection)) return e;
    if (int e = StorePendingIn(key.collection)) return e;
    add(std::string(kIndexesName), NodeKey{NodeKind::kIndexes, key.collection, ""}, S_IFREG, false);
    add(std::string(kQueryName), NodeKey{NodeKind::kQueryDir, key.collection, ""}, S_IFDIR, false);
  } else {
    done = true;
  }
  auto d = std::make_shared<DirHandle>();
  d->key = key;
  d->head = entries;
  d->head_only = done;
  {
    MutexLock lock(&d->mu);
    d->entries = std::move(entries);
    d->done = done;
  }
  MutexLock lock(&mu_);
  *dh = next_fh_++;
  dirs_.emplace(*dh, std::move(d));
  return 0;
}

int Fs::ReadDir(uint64_t dh, uint64_t offset, size_t max_entries, std::vector<DirEntry>* out) {
  std::shared_ptr<DirHandle> d;
  {
    MutexLock lock(&mu_);
    auto it = dirs_.find(dh);
    if (it == dirs_.end()) return EBADF;
    d = it->second;
  }
  MutexLock lock(&d->mu);
  if (offset < d->first) {  // rewinddir, or a seek back before the window
    d->entries = d->head;
    d->first = 0;
    d->cursor.clear();
    d->done = d->head_only;
  }
  while (!d->done && d->first + d->entries.size() < offset + max_entries) {
    client::ListOptions lo;
    lo.cursor = d->cursor;
    lo.limit = kListPage;
    Result<client::ListResult> page = client_->List(d->key.collection, lo);
    if (!page.ok()) {
      LOG_WARN(log_) << "readdir: " << page.status().ToString();
      return ErrnoOf(page.status());
    }
    for (const client::DocInfo& doc : page->items) {
      if (!CheckDocumentName(doc.id).ok()) continue;  // hidden or shadowed names
      DirEntry e;
      e.name = doc.id;
      e.key = NodeKey{NodeKind::kDocument, d->key.collection, doc.id};
      e.attr = DocAttr(InodeId(0), doc);
      d->entries.push_back(std::move(e));
    }
    d->cursor = page->next_cursor;
    d->done = d->cursor.empty();
  }
  for (uint64_t i = offset - d->first; i < d->entries.size() && out->size() < max_entries; ++i) {
    out->push_back(d->entries[i]);
  }
  // Drop what was sent long ago: memory stays bounded by a few pages.
  constexpr uint64_t kKeepBehind = 4 * kListPage;
  if (offset - d->first > kKeepBehind) {
    const uint64_t drop = offset - d->first - kKeepBehind;
    d->entries.erase(d->entries.begin(), d->entries.begin() + static_cast<ptrdiff_t>(drop));
    d->first += drop;
  }
  // Specials get full attributes for readdirplus.
  for (DirEntry& e : *out) {
    if (e.dot || e.key.kind == NodeKind::kDocument) continue;
    if (e.key.kind == NodeKind::kStatus || e.key.kind == NodeKind::kIndexes) {
      e.attr = SpecialAttr(InodeId(0), e.key.kind, 0);
    } else {
      e.attr = DirAttr(InodeId(0));
      e.attr.mode = S_IFDIR | (e.key.kind == NodeKind::kCollection ? 01777u : 0555u);
    }
  }
  return 0;
}

void Fs::ReleaseDir(uint64_t dh) {
  MutexLock lock(&mu_);
  dirs_.erase(dh);
}

int Fs::FsyncDir(uint64_t dh) {
  NodeKey key;
  {
    MutexLock lock(&mu_);
    auto it = dirs_.find(dh);
    if (it == dirs_.end()) return EBADF;
    key = it->second->key;
  }
  return key.kind == NodeKind::kCollection ? StorePendingIn(key.collection) : 0;
}

// ---------------------------------------------------------------- cluster

Result<std::string> Fs::StatusJson() {
  ASSIGN_OR_RETURN(client::ClusterMap m, client_->GetClusterMap());
  nlohmann::json j;
  j["map_version"] = m.version;
  j["partition_count"] = m.partition_count;
  uint64_t unplaced = 0;
  for (const auto& p : m.partitions) unplaced += p.replicas.empty() ? 1u : 0u;
  j["unplaced_partitions"] = unplaced;
  bool healthy = unplaced == 0;
  nlohmann::json nodes = nlohmann::json::array();
  for (const client::NodeStatus& n : m.nodes) {
    nlohmann::json o;
    o["id"] = n.id.value();
    o["name"] = n.name;
    o["address"] = n.address.host + ":" + std::to_string(n.address.port);
    o["state"] = std::string(client::NodeStateName(n.state));
    o["capacity_bytes"] = n.capacity_bytes;
    o["used_bytes"] = n.used_bytes;
    nlohmann::json disks = nlohmann::json::array();
    for (const client::DiskStatus& dk : n.disks) {
      disks.push_back({{"index", dk.index}, {"dir", dk.dir}, {"state", dk.state}});
      healthy = healthy && dk.state == "healthy";
    }
    o["disks"] = disks;
    healthy = healthy && n.state == client::NodeState::kUp;
    nodes.push_back(o);
  }
  j["nodes"] = nodes;
  nlohmann::json cols = nlohmann::json::array();
  for (const auto& c : m.collections) cols.push_back(c.name);
  j["collections"] = cols;
  j["healthy"] = healthy;
  return j.dump(2) + "\n";
}

int Fs::StatFs(StatFsOut* out) {
  Result<client::ClusterMap> m = client_->GetClusterMap();
  if (!m.ok()) {
    LOG_WARN(log_) << "statfs: " << m.status().ToString();
    return ErrnoOf(m.status());
  }
  for (const client::NodeStatus& n : m->nodes) {
    out->capacity_bytes += static_cast<uint64_t>(std::max<int64_t>(0, n.capacity_bytes));
    out->free_bytes += static_cast<uint64_t>(std::max<int64_t>(0, n.capacity_bytes - n.used_bytes));
  }
  return 0;
}

// ---------------------------------------------------------------- xattrs

int Fs::GetXattr(InodeId ino, const std::string& name, std::string* value) {
  NodeKey key;
  if (int e = KeyOf(ino, &key)) return e;
  if (key.kind == NodeKind::kQueryFile) {
    if (name != kXattrQueryError) return ENODATA;
    std::shared_ptr<const QueryFile> q = QueryResultFor(ino, key, /*for_open=*/false);
    if (q->error().ok()) return ENODATA;
    *value = q->error().message();
    return 0;
  }
  if (key.kind != NodeKind::kDocument || !name.starts_with("user.")) return ENODATA;
  if (int e = StorePending(ino)) return e;
  Result<client::DocInfo> d = client_->Stat(key.collection, key.id);
  if (!d.ok()) return ErrnoOf(d.status());
  if (name == kXattrVersion) {
    *value = std::to_string(d->version);
  } else if (name == kXattrPartition) {
    *value = std::to_string(d->partition.value());
  } else if (name == kXattrReplicas) {
    Result<client::ClusterMap> m = client_->GetClusterMap();
    if (!m.ok()) return ErrnoOf(m.status());
    std::string out;
    if (d->partition.value() < m->partitions.size()) {
      for (NodeId n : m->partitions[d->partition.value()].replicas) {
        const client::NodeStatus* node = m->FindNode(n);
        if (!out.empty()) out += ",";
        out += node != nullptr ? node->name : "node" + std::to_string(n.value());
      }
    }
    *value = out;
  } else {
    auto it = d->xattrs.find(name);
    if (it == d->xattrs.end()) return ENODATA;
    *value = it->second;
  }
  return 0;
}

int Fs::ListXattr(InodeId ino, std::vector<std::string>* names) {
  NodeKey key;
  if (int e = KeyOf(ino, &key)) return e;
  if (key.kind == NodeKind::kQueryFile) {
    if (!QueryResultFor(ino, key, /*for_open=*/false)->error().ok()) {
      names->push_back(std::string(kXattrQueryError));
    }
    return 0;
  }
  if (key.kind != NodeKind::kDocument) return 0;
  if (int e = StorePending(ino)) return e;
  Result<client::DocInfo> d = client_->Stat(key.collection, key.id);
  if (!d.ok()) return ErrnoOf(d.status());
  names->push_back(std::string(kXattrVersion));
  names->push_back(std::string(kXattrPartition));
  names->push_back(std::string(kXattrReplicas));
  for (const auto& [k, v] : d->xattrs) names->push_back(k);
  return 0;
}

int Fs::SetXattr(InodeId ino, const std::string& name, const std::string& value, int flags) {
  NodeKey key;
  if (int e = KeyOf(ino, &key)) return e;
  if (!name.starts_with("user.")) return ENOTSUP;
  if (key.kind != NodeKind::kDocument) return EPERM;
  if (name.starts_with(kCairnXattrPrefix)) return EPERM;  // read-only, computed
  if (int e = StorePending(ino)) return e;
  Result<client::DocInfo> d = client_->Stat(key.collection, key.id);
  if (!d.ok()) return ErrnoOf(d.status());
  std::map<std::string, std::string> x = d->xattrs;
  const bool exists = x.count(name) != 0;
  if ((flags & XATTR_CREATE) != 0 && exists) return EEXIST;
  if ((flags & XATTR_REPLACE) != 0 && !exists) return ENODATA;
  x[name] = value;
  client::WriteOptions w;
  w.xattrs = std::move(x);
  Attr a;
  return ChangeMetadata(ino, w, &a);
}

int Fs::RemoveXattr(InodeId ino, const std::string& name) {
  NodeKey key;
  if (int e = KeyOf(ino, &key)) return e;
  if (!name.starts_with("user.")) return ENOTSUP;
  if (key.kind != NodeKind::kDocument) return ENODATA;
  if (name.starts_with(kCairnXattrPrefix)) return EPERM;
  if (int e = StorePending(ino)) return e;
  Result<client::DocInfo> d = client_->Stat(key.collection, key.id);
  if (!d.ok()) return ErrnoOf(d.status());
  std::map<std::string, std::string> x = d->xattrs;
  if (x.erase(name) == 0) return ENODATA;
  client::WriteOptions w;
  w.xattrs = std::move(x);
  Attr a;
  return ChangeMetadata(ino, w, &a);
}

// ---------------------------------------------------------------- .indexes

Result<std::string> Fs::IndexesText(const std::string& collection) {
  ASSIGN_OR_RETURN(std::vector<client::IndexStatus> list, client_->ListIndexes(collection));
  std::string text;
  for (const client::IndexStatus& i : list) text += i.path + "\n";
  return text;
}

int Fs::ApplyIndexesText(const std::string& collection, const std::string& text) {
  std::set<std::string> want;
  size_t line_no = 0;
  for (size_t at = 0; at <= text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Result<query::Path> p = query::ParseIndexPath(line);
    if (!p.ok()) {
      LOG_WARN(log_) << collection << "/.indexes line " << line_no << ": " << p.status().message()
                     << " (no index changed)";
      return EINVAL;
    }
    want.insert(p->ToString());
  }
  Result<std::string> current = IndexesText(collection);
  if (!current.ok()) return ErrnoOf(current.status());
  std::set<std::string> have;
  for (size_t at = 0; at < current->size();) {
    const size_t end = current->find('\n', at);
    have.insert(current->substr(at, end - at));
    at = end + 1;
  }
  for (const std::string& p : want) {
    if (have.count(p) != 0) continue;
    Status s = client_->CreateIndex(collection, p);
    if (!s.ok() && s.code() != StatusCode::kAlreadyExists) {
      LOG_WARN(log_) << collection << "/.indexes: creating " << p << ": " << s.ToString();
      return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kTooLarge
                 ? EINVAL
                 : ErrnoOf(s);
    }
    LOG_INFO(log_) << collection << "/.indexes: created index " << p;
  }
  for (const std::string& p : have) {
    if (want.count(p) != 0) continue;
    Status s = client_->DropIndex(collection, p);
    if (!s.ok() && s.code() != StatusCode::kNotFound) {
      LOG_WARN(log_) << collection << "/.indexes: dropping " << p << ": " << s.ToString();
      return ErrnoOf(s);
    }
    LOG_INFO(log_) << collection << "/.indexes: dropped index " << p;
  }
  return 0;
}

int Fs::ApplyIndexesHandle(Handle& h) {
  if (!h.writable || !h.content_dirty) return 0;
  NodeKey key;
  if (int e = KeyOf(h.ino, &key)) return e;
  const int e = ApplyIndexesText(key.collection, h.content);
  // A bad text is reported once (at flush); release does not retry it.
  h.content_dirty = false;
  return e;
}

}  // namespace cairn::fsd
