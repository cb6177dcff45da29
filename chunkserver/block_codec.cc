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
  size_t n = cctx == nullptr
                 ? 0
                 : ZSTD_compressCCtx(cctx, rec.data() + kStoredAt, rec.size() - kStoredAt,
                                     raw.data(), raw.size(), zstd_level);
  if (cctx != nullptr && !ZSTD_isError(n) && n < raw.size()) {
    bh.codec = BlockCodec::kZstd;
  } else {
    // Incompressible (or zstd failed): store the bytes as they are.
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

Result<std::vector<std::byte>> DecodeBlockRecord(std::span<const std::byte> record,
                                                 const BlockRef& ref) {
  RETURN_IF_ERROR(VerifyBlockRecord(record, ref));
  const auto stored = record.subspan(kStoredAt);
  std::vector<std::byte> raw(ref.raw_len);
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
  return raw;
}

}  // namespace cairn::chunkserver
