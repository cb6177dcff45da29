#include "chunkserver/block_codec.h"

#include <zstd.h>

#include <cstring>
#include <memory>
#include <string>

#include "chunkserver/doc_record.h"
#include "common/assert.h"
#include "common/checksum.h"

namespace cairn::chunkserver {
namespace {

struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

ZSTD_CCtx* ThreadCCtx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxFree> ctx(ZSTD_createCCtx());
  return ctx.get();
}

ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxFree> ctx(ZSTD_createDCtx());
  return ctx.get();
}

constexpr size_t kStoredAt = kRecordHeaderBytes + kBlockHeaderBytes;

// Whether compressing the whole block can pay: a sample of it (16 slices of
// 4 KiB spread over the block, 1/16 of a 1 MiB block) is compressed at the
// fastest level, and a block whose sample does not shrink by an eighth is
// stored raw without compressing it all (incompressible data, such as media
// or already compressed files, then costs 1/16 of a fast compression instead
// of a full one at the configured level). Small blocks are always tried.
bool WorthCompressing(ZSTD_CCtx* cctx, std::span<const std::byte> raw) {
  constexpr size_t kSlices = 16;
  constexpr size_t kSlice = 4096;
  if (raw.size() <= 4 * kSlices * kSlice) return true;
  thread_local std::vector<std::byte> sample;
  thread_local std::vector<std::byte> out;
  sample.resize(kSlices * kSlice);
  out.resize(ZSTD_compressBound(sample.size()));
  const size_t stride = (raw.size() - kSlice) / (kSlices - 1);
  for (size_t i = 0; i < kSlices; ++i) {
    std::memcpy(sample.data() + i * kSlice, raw.data() + i * stride, kSlice);
  }
  const size_t n = ZSTD_compressCCtx(cctx, out.data(), out.size(), sample.data(), sample.size(), 1);
  return !ZSTD_isError(n) && n <= sample.size() - sample.size() / 8;
}

}  // namespace

std::vector<std::byte> EncodeBlockRecord(std::span<const std::byte> raw, int zstd_level,
                                         BlockRef* ref) {
  CAIRN_CHECK(!raw.empty() && raw.size() <= kMaxBlockBytes)
      << "block of " << raw.size() << " bytes";
  std::vector<std::byte> rec(kStoredAt + ZSTD_compressBound(raw.size()));
  BlockHeader bh;
  bh.raw_len = static_cast<uint32_t>(raw.size());
  bh.raw_hash = Checksum64(raw);
  ZSTD_CCtx* cctx = ThreadCCtx();
  const bool tried = cctx != nullptr && WorthCompressing(cctx, raw);
  size_t n = tried ? ZSTD_compressCCtx(cctx, rec.data() + kStoredAt, rec.size() - kStoredAt,
                                       raw.data(), raw.size(), zstd_level)
                   : 0;
  // Compressed only when that saves at least an eighth (as ZFS decides): a
  // block that barely compresses costs a whole-block decompression on every
  // read, also of 4 KiB of it, for almost no space; a raw block serves small
  // reads straight from the volume (doc_store_read.cc, ReadSlice).
  if (tried && !ZSTD_isError(n) && n <= raw.size() - raw.size() / 8) {
    bh.codec = BlockCodec::kZstd;
  } else {
    // Incompressible enough (or zstd failed): store the bytes as they are.
    bh.codec = BlockCodec::kRaw;
    n = raw.size();
    std::memcpy(rec.data() + kStoredAt, raw.data(), raw.size());
  }
  rec.resize(kStoredAt + n);
  EncodeBlockHeader(bh, rec.data() + kRecordHeaderBytes);
  FillRecordHeader(RecordType::kBlock, rec);
  ref->stored_len = static_cast<uint32_t>(n);
  ref->raw_len = bh.raw_len;
  ref->hash = bh.raw_hash;
  ref->codec = bh.codec;
  return rec;
}

Status VerifyBlockRecord(std::span<const std::byte> record, const BlockRef& ref) {
  if (record.size() != ref.record_len()) {
    return Status::Corruption("block record at " + std::to_string(ref.offset) +
                              ": length does not match its reference");
  }
  ASSIGN_OR_RETURN(RecordHeader h, DecodeRecordHeader(record, ref.offset));
  const auto payload = record.subspan(kRecordHeaderBytes);
  RETURN_IF_ERROR(VerifyPayload(h, payload, ref.offset));
  ASSIGN_OR_RETURN(BlockHeader b, DecodeBlockHeader(payload, ref.offset));
  return CheckBlockMatchesRef(h, b, ref);
}

Status DecodeBlockRecordInto(std::span<const std::byte> record, const BlockRef& ref,
                             std::span<std::byte> raw) {
  RETURN_IF_ERROR(VerifyBlockRecord(record, ref));
  if (raw.size() != ref.raw_len) {
    return Status::InvalidArgument("block at " + std::to_string(ref.offset) + ": " +
                                   std::to_string(raw.size()) + " bytes given for " +
                                   std::to_string(ref.raw_len));
  }
  const auto stored = record.subspan(kStoredAt);
  if (ref.codec == BlockCodec::kRaw) {
    if (stored.size() != raw.size()) {
      return Status::Corruption("raw block at " + std::to_string(ref.offset) +
                                ": stored length differs from raw length");
    }
    std::memcpy(raw.data(), stored.data(), raw.size());
  } else {
    ZSTD_DCtx* dctx = ThreadDCtx();
    if (dctx == nullptr) return Status::Unavailable("zstd: cannot allocate a context");
    const size_t n =
        ZSTD_decompressDCtx(dctx, raw.data(), raw.size(), stored.data(), stored.size());
    if (ZSTD_isError(n) || n != raw.size()) {
      return Status::Corruption(
          "block at " + std::to_string(ref.offset) +
          ": zstd: " + (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong decompressed length"));
    }
  }
  if (Checksum64(raw) != ref.hash) {
    return Status::Corruption("block at " + std::to_string(ref.offset) +
                              ": raw bytes fail their XXH3-64");
  }
  return Status::Ok();
}

Result<std::vector<std::byte>> DecodeBlockRecord(std::span<const std::byte> record,
                                                 const BlockRef& ref) {
  std::vector<std::byte> raw(ref.raw_len);
  RETURN_IF_ERROR(DecodeBlockRecordInto(record, ref, raw));
  return raw;
}

}  // namespace cairn::chunkserver
