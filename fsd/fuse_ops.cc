#include "fsd/fuse_ops.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "fsd/fs.h"

namespace cairn::fsd {

namespace {

Fs& FsOf(fuse_req_t req) { return *static_cast<Fs*>(fuse_req_userdata(req)); }

void ToTimespec(int64_t ns, struct timespec* ts) {
  ts->tv_sec = static_cast<time_t>(ns / 1000000000);
  ts->tv_nsec = static_cast<long>(ns % 1000000000);
}

struct stat ToStat(const Attr& a) {
  struct stat st;
  std::memset(&st, 0, sizeof(st));
  st.st_ino = a.ino;
  st.st_mode = a.mode;
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blksize = static_cast<blksize_t>(a.blksize);
  st.st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  ToTimespec(a.mtime_ns, &st.st_mtim);
  ToTimespec(a.mtime_ns, &st.st_atim);
  ToTimespec(a.ctime_ns, &st.st_ctim);
  return st;
}

fuse_entry_param ToEntry(Fs& fs, const EntryOut& e) {
  fuse_entry_param p;
  std::memset(&p, 0, sizeof(p));
  p.ino = e.ino.value();
  p.generation = 1;
  p.attr = ToStat(e.attr);
  p.attr.st_ino = p.ino;
  p.attr_timeout = e.attr.uncached ? 0 : fs.options().attr_timeout_s;
  p.entry_timeout = e.attr.uncached ? 0 : fs.options().entry_timeout_s;
  return p;
}

void ReplyAttr(fuse_req_t req, Fs& fs, int err, const Attr& a) {
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  struct stat st = ToStat(a);
  fuse_reply_attr(req, &st, a.uncached ? 0 : fs.options().attr_timeout_s);
}

InodeId Ino(fuse_ino_t ino) { return InodeId(ino); }

void OpInit(void*, fuse_conn_info* conn) {
  // O_TRUNC arrives with open() (one atomic new version at close) instead
  // of a separate truncate to zero first.
  if ((conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) != 0) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  conn->max_write = 1u << 20;
  conn->max_readahead = 1u << 20;
}

void OpDestroy(void* userdata) { static_cast<Fs*>(userdata)->CommitAll(); }

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Fs& fs = FsOf(req);
  EntryOut e;
  if (int err = fs.Lookup(Ino(parent), name, &e)) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_entry_param p = ToEntry(fs, e);
  if (fuse_reply_entry(req, &p) != 0) fs.Forget(e.ino, 1);  // interrupted: not counted
}

void OpForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  FsOf(req).Forget(Ino(ino), nlookup);
  fuse_reply_none(req);
}

void OpForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  Fs& fs = FsOf(req);
  for (size_t i = 0; i < count; ++i) fs.Forget(Ino(forgets[i].ino), forgets[i].nlookup);
  fuse_reply_none(req);
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Fs& fs = FsOf(req);
  Attr a;
  ReplyAttr(req, fs, fs.GetAttr(Ino(ino), &a), a);
}

void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  Fs& fs = FsOf(req);
  SetAttrIn in;
  if ((to_set & FUSE_SET_ATTR_MODE) != 0) in.mode = static_cast<uint32_t>(attr->st_mode);
  if ((to_set & FUSE_SET_ATTR_UID) != 0) in.uid = static_cast<uint32_t>(attr->st_uid);
  if ((to_set & FUSE_SET_ATTR_GID) != 0) in.gid = static_cast<uint32_t>(attr->st_gid);
  if ((to_set & FUSE_SET_ATTR_SIZE) != 0) in.size = static_cast<uint64_t>(attr->st_size);
  if ((to_set & FUSE_SET_ATTR_MTIME_NOW) != 0) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    in.mtime_ns = static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
  } else if ((to_set & FUSE_SET_ATTR_MTIME) != 0) {
    in.mtime_ns = static_cast<int64_t>(attr->st_mtim.tv_sec) * 1000000000 + attr->st_mtim.tv_nsec;
  }
  std::optional<uint64_t> fh;
  if (fi != nullptr) fh = fi->fh;
  Attr a;
  ReplyAttr(req, fs, fs.SetAttr(Ino(ino), fh, in, &a), a);
}

void OpMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t) {
  Fs& fs = FsOf(req);
  EntryOut e;
  if (int err = fs.Mkdir(Ino(parent), name, &e)) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_entry_param p = ToEntry(fs, e);
  if (fuse_reply_entry(req, &p) != 0) fs.Forget(e.ino, 1);
}

void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_reply_err(req, FsOf(req).Unlink(Ino(parent), name));
}

void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_reply_err(req, FsOf(req).Rmdir(Ino(parent), name));
}

void OpRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
              const char* newname, unsigned int flags) {
  fuse_reply_err(req, FsOf(req).Rename(Ino(parent), name, Ino(newparent), newname, flags));
}

void ReplyOpen(fuse_req_t req, Fs& fs, fuse_ino_t ino, const OpenOut& o, fuse_file_info* fi) {
  fi->fh = o.fh;
  fi->keep_cache = o.keep_cache ? 1 : 0;
  fi->direct_io = o.direct_io ? 1 : 0;
  if (fuse_reply_open(req, fi) != 0) fs.Release(Ino(ino), o.fh);
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Fs& fs = FsOf(req);
  OpenOut o;
  if (int err = fs.Open(Ino(ino), fi->flags, &o)) {
    fuse_reply_err(req, err);
    return;
  }
  ReplyOpen(req, fs, ino, o, fi);
}

void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  Fs& fs = FsOf(req);
  const fuse_ctx* ctx = fuse_req_ctx(req);
  EntryOut e;
  OpenOut o;
  if (int err =
          fs.Create(Ino(parent), name, static_cast<uint32_t>(mode), fi->flags,
                    static_cast<uint32_t>(ctx->uid), static_cast<uint32_t>(ctx->gid), &e, &o)) {
    fuse_reply_err(req, err);
    return;
  }
  fi->fh = o.fh;
  fi->keep_cache = 0;
  fi->direct_io = 0;
  fuse_entry_param p = ToEntry(fs, e);
  if (fuse_reply_create(req, &p, fi) != 0) {
    fs.Release(e.ino, o.fh);
    fs.Forget(e.ino, 1);
  }
}

void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  std::string data;
  if (int err = FsOf(req).Read(Ino(ino), fi->fh, static_cast<uint64_t>(off), size, &data)) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_buf(req, data.data(), data.size());
}

void OpWrite(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
             fuse_file_info* fi) {
  if (int err = FsOf(req).Write(Ino(ino), fi->fh, static_cast<uint64_t>(off),
                                std::string_view(buf, size))) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_write(req, size);
}

void OpFlush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  fuse_reply_err(req, FsOf(req).Flush(Ino(ino), fi->fh));
}

void OpFsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info* fi) {
  fuse_reply_err(req, FsOf(req).Fsync(Ino(ino), fi->fh));
}

void OpRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  FsOf(req).Release(Ino(ino), fi->fh);
  fuse_reply_err(req, 0);
}

void OpOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  uint64_t dh = 0;
  if (int err = FsOf(req).OpenDir(Ino(ino), &dh)) {
    fuse_reply_err(req, err);
    return;
  }
  fi->fh = dh;
  if (fuse_reply_open(req, fi) != 0) FsOf(req).ReleaseDir(dh);
}

void DoReaddir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  Fs& fs = FsOf(req);
  std::vector<DirEntry> entries;
  // A generous upper bound of what fits; the loop stops when the buffer does.
  const size_t want = std::max<size_t>(16, size / 32);
  if (int err = fs.ReadDir(fi->fh, static_cast<uint64_t>(off), want, &entries)) {
    fuse_reply_err(req, err);
    return;
  }
  std::vector<char> buf(size);
  size_t used = 0;
  uint64_t next = static_cast<uint64_t>(off);
  for (const DirEntry& e : entries) {
    ++next;
    const char* name = e.name.c_str();
    size_t need;
    if (plus) {
      fuse_entry_param p;
      std::memset(&p, 0, sizeof(p));
      need = fuse_add_direntry_plus(req, nullptr, 0, name, nullptr, 0);
      if (used + need > size) break;
      if (!e.dot) {
        // A lookup the kernel will forget: count it only for entries sent.
        EntryOut eo;
        eo.ino = fs.inodes().Lookup(e.key);
        eo.attr = e.attr;  // from the listing page: no call per entry
        eo.attr.ino = eo.ino.value();
        p = ToEntry(fs, eo);
      } else {
        p.attr.st_mode = e.attr.mode;
        p.attr.st_ino = 1;
      }
      fuse_add_direntry_plus(req, buf.data() + used, size - used, name, &p,
                             static_cast<off_t>(next));
    } else {
      struct stat st;
      std::memset(&st, 0, sizeof(st));
      st.st_mode = e.attr.mode;
      st.st_ino = 0xffffffffu;  // unknown: the kernel looks the name up when needed
      need = fuse_add_direntry(req, nullptr, 0, name, nullptr, 0);
      if (used + need > size) break;
      fuse_add_direntry(req, buf.data() + used, size - used, name, &st, static_cast<off_t>(next));
    }
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  DoReaddir(req, ino, size, off, fi, false);
}

void OpReaddirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  DoReaddir(req, ino, size, off, fi, true);
}

void OpFsyncdir(fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) {
  fuse_reply_err(req, FsOf(req).FsyncDir(fi->fh));
}

void OpReleasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  FsOf(req).ReleaseDir(fi->fh);
  fuse_reply_err(req, 0);
}

void OpStatfs(fuse_req_t req, fuse_ino_t) {
  StatFsOut o;
  if (int err = FsOf(req).StatFs(&o)) {
    fuse_reply_err(req, err);
    return;
  }
  struct statvfs sv;
  std::memset(&sv, 0, sizeof(sv));
  constexpr uint64_t kUnit = 4096;
  sv.f_bsize = kUnit;
  sv.f_frsize = kUnit;
  sv.f_blocks = o.capacity_bytes / kUnit;
  sv.f_bfree = o.free_bytes / kUnit;
  sv.f_bavail = o.free_bytes / kUnit;
  sv.f_files = 1ull << 32;
  sv.f_ffree = 1ull << 31;
  sv.f_favail = 1ull << 31;
  sv.f_namemax = kNameMax;
  fuse_reply_statfs(req, &sv);
}

void OpSetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                int flags) {
  fuse_reply_err(req, FsOf(req).SetXattr(Ino(ino), name, std::string(value, size), flags));
}

void OpGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  std::string value;
  if (int err = FsOf(req).GetXattr(Ino(ino), name, &value)) {
    fuse_reply_err(req, err);
    return;
  }
  if (size == 0) {
    fuse_reply_xattr(req, value.size());
  } else if (value.size() > size) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, value.data(), value.size());
  }
}

void OpListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  std::vector<std::string> names;
  if (int err = FsOf(req).ListXattr(Ino(ino), &names)) {
    fuse_reply_err(req, err);
    return;
  }
  std::string out;
  for (const std::string& n : names) {
    out += n;
    out.push_back('\0');
  }
  if (size == 0) {
    fuse_reply_xattr(req, out.size());
  } else if (out.size() > size) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, out.data(), out.size());
  }
}

void OpRemovexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  fuse_reply_err(req, FsOf(req).RemoveXattr(Ino(ino), name));
}

// Links, symbolic links and device nodes do not exist in the layout.
void OpSymlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); }
void OpLink(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); }
void OpMknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { fuse_reply_err(req, EPERM); }

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof(ops));
  ops.init = OpInit;
  ops.destroy = OpDestroy;
  ops.lookup = OpLookup;
  ops.forget = OpForget;
  ops.forget_multi = OpForgetMulti;
  ops.getattr = OpGetattr;
  ops.setattr = OpSetattr;
  ops.mkdir = OpMkdir;
  ops.unlink = OpUnlink;
  ops.rmdir = OpRmdir;
  ops.rename = OpRename;
  ops.open = OpOpen;
  ops.create = OpCreate;
  ops.read = OpRead;
  ops.write = OpWrite;
  ops.flush = OpFlush;
  ops.fsync = OpFsync;
  ops.release = OpRelease;
  ops.opendir = OpOpendir;
  ops.readdir = OpReaddir;
  ops.readdirplus = OpReaddirplus;
  ops.releasedir = OpReleasedir;
  ops.fsyncdir = OpFsyncdir;
  ops.statfs = OpStatfs;
  ops.setxattr = OpSetxattr;
  ops.getxattr = OpGetxattr;
  ops.listxattr = OpListxattr;
  ops.removexattr = OpRemovexattr;
  ops.symlink = OpSymlink;
  ops.link = OpLink;
  ops.mknod = OpMknod;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& CairnFuseOps() {
  static const fuse_lowlevel_ops ops = MakeOps();
  return ops;
}

}  // namespace cairn::fsd
