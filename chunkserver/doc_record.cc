#include "chunkserver/doc_record.h"

#include <string>

#include "common/checksum.h"

namespace cairn::chunkserver {
namespace {

Status Bad(uint64_t offset, const std::string& what) {
  return Status::Corruption("document log record at offset " + std::to_string(offset) + ": " +
                            what);
}

bool KnownType(uint8_t t) {
  return t >= static_cast<uint8_t>(RecordType::kBlock) &&
         t <= static_cast<uint8_t>(RecordType::kSnapshot);
}

bool KnownCodec(uint8_t c) {
  return c == static_cast<uint8_t>(BlockCodec::kRaw) ||
         c == static_cast<uint8_t>(BlockCodec::kZstd);
}

}  // namespace

// ---- record framing ----

std::vector<std::byte> FrameRecord(RecordType type, std::span<const std::byte> payload) {
  std::vector<std::byte> rec(kRecordHeaderBytes + payload.size());
  if (!payload.empty())
    std::memcpy(rec.data() + kRecordHeaderBytes, payload.data(), payload.size());
  FillRecordHeader(type, rec);
  return rec;
}

void FillRecordHeader(RecordType type, std::span<std::byte> record) {
  std::byte* h = record.data();
  const auto payload = record.subspan(kRecordHeaderBytes);
  StoreLE<uint32_t>(h + record_field::kMagic, kRecordMagic);
  StoreLE<uint16_t>(h + record_field::kVersion, kLogFormatVersion);
  StoreLE<uint8_t>(h + record_field::kType, static_cast<uint8_t>(type));
  StoreLE<uint8_t>(h + record_field::kFlags, 0);
  StoreLE<uint32_t>(h + record_field::kPayloadLen, static_cast<uint32_t>(payload.size()));
  StoreLE<uint32_t>(h + record_field::kReserved, 0);
  StoreLE<uint64_t>(h + record_field::kPayloadChecksum, Checksum64(payload));
  StoreLE<uint64_t>(h + record_field::kHeaderChecksum, 0);
}

void SealRecord(std::span<std::byte> record, uint64_t offset) {
  StoreLE<uint64_t>(record.data() + record_field::kHeaderChecksum,
                    Checksum64(record.data(), record_field::kHeaderChecksum, offset));
}

Result<RecordHeader> DecodeRecordHeader(std::span<const std::byte> header, uint64_t offset) {
  if (header.size() < kRecordHeaderBytes) return Bad(offset, "short header");
  const std::byte* h = header.data();
  if (LoadLE<uint32_t>(h + record_field::kMagic) != kRecordMagic) return Bad(offset, "bad magic");
  if (LoadLE<uint64_t>(h + record_field::kHeaderChecksum) !=
      Checksum64(h, record_field::kHeaderChecksum, offset)) {
    return Bad(offset, "header checksum mismatch");
  }
  const uint16_t version = LoadLE<uint16_t>(h + record_field::kVersion);
  if (version != kLogFormatVersion) {
    return Bad(offset, "format version " + std::to_string(version) + ", expected " +
                           std::to_string(kLogFormatVersion));
  }
  const uint8_t type = LoadLE<uint8_t>(h + record_field::kType);
  if (!KnownType(type)) return Bad(offset, "unknown record type " + std::to_string(type));
  RecordHeader out;
  out.type = static_cast<RecordType>(type);
  out.payload_len = LoadLE<uint32_t>(h + record_field::kPayloadLen);
  out.payload_checksum = LoadLE<uint64_t>(h + record_field::kPayloadChecksum);
  if (out.payload_len > kMaxPayloadBytes) {
    return Bad(offset, "payload length " + std::to_string(out.payload_len) + " too large");
  }
  return out;
}

Status VerifyPayload(const RecordHeader& h, std::span<const std::byte> payload, uint64_t offset) {
  if (payload.size() != h.payload_len) return Bad(offset, "payload length mismatch");
  if (Checksum64(payload) != h.payload_checksum) return Bad(offset, "payload checksum mismatch");
  return Status::Ok();
}

bool IsMutation(RecordType t) {
  return t == RecordType::kPut || t == RecordType::kDelete || t == RecordType::kRename;
}

bool IsLogEntry(RecordType t) { return IsMutation(t) || t == RecordType::kNoop; }

bool HasMutationPrefix(RecordType t) { return IsLogEntry(t) || t == RecordType::kTruncate; }

// ---- block records ----

void EncodeBlockHeader(const BlockHeader& h, std::byte* out) {
  std::memset(out, 0, kBlockHeaderBytes);
  StoreLE<uint8_t>(out + block_field::kCodec, static_cast<uint8_t>(h.codec));
  StoreLE<uint32_t>(out + block_field::kRawLen, h.raw_len);
  StoreLE<uint64_t>(out + block_field::kRawHash, h.raw_hash);
}

Result<BlockHeader> DecodeBlockHeader(std::span<const std::byte> payload, uint64_t offset) {
  if (payload.size() < kBlockHeaderBytes) return Bad(offset, "short block header");
  const uint8_t codec = LoadLE<uint8_t>(payload.data() + block_field::kCodec);
  if (!KnownCodec(codec)) return Bad(offset, "unknown block codec " + std::to_string(codec));
  BlockHeader b;
  b.codec = static_cast<BlockCodec>(codec);
  b.raw_len = LoadLE<uint32_t>(payload.data() + block_field::kRawLen);
  b.raw_hash = LoadLE<uint64_t>(payload.data() + block_field::kRawHash);
  if (b.raw_len == 0 || b.raw_len > kMaxBlockBytes) {
    return Bad(offset, "block raw length " + std::to_string(b.raw_len));
  }
  return b;
}

Status CheckBlockMatchesRef(const RecordHeader& h, const BlockHeader& b, const BlockRef& ref) {
  if (h.type != RecordType::kBlock) return Bad(ref.offset, "not a block record");
  if (h.payload_len != uint64_t{kBlockHeaderBytes} + ref.stored_len || b.codec != ref.codec ||
      b.raw_len != ref.raw_len || b.raw_hash != ref.hash) {
    return Bad(ref.offset, "block record does not match its reference");
  }
  return Status::Ok();
}

// ---- mutation records ----

void EncodeRequestId(const RequestId& r, Encoder* e) {
  e->Put<uint64_t>(r.client_hi);
  e->Put<uint64_t>(r.client_lo);
  e->Put<uint64_t>(r.seq);
}

RequestId DecodeRequestId(Decoder* d) {
  RequestId r;
  r.client_hi = d->Get<uint64_t>();
  r.client_lo = d->Get<uint64_t>();
  r.seq = d->Get<uint64_t>();
  return r;
}

void EncodeMetadata(const DocMetadata& m, Encoder* e) {
  e->Put<uint64_t>(m.size);
  e->Put<int64_t>(m.mtime_ns);
  e->Put<int64_t>(m.ctime_ns);
  e->Put<uint32_t>(m.mode);
  e->Put<uint32_t>(m.uid);
  e->Put<uint32_t>(m.gid);
  e->Put<uint32_t>(static_cast<uint32_t>(m.xattrs.size()));
  for (const auto& [k, v] : m.xattrs) {
    e->PutString16(k);
    e->PutString32(v);
  }
}

DocMetadata DecodeMetadata(Decoder* d) {
  DocMetadata m;
  m.size = d->Get<uint64_t>();
  m.mtime_ns = d->Get<int64_t>();
  m.ctime_ns = d->Get<int64_t>();
  m.mode = d->Get<uint32_t>();
  m.uid = d->Get<uint32_t>();
  m.gid = d->Get<uint32_t>();
  const uint32_t n = d->Get<uint32_t>();
  // Each attribute takes at least 6 bytes: a bad count fails fast.
  if (uint64_t{n} * 6 > d->remaining()) {
    d->Fail();
    return m;
  }
  for (uint32_t i = 0; i < n && d->ok(); ++i) {
    std::string k = d->GetString16();
    std::string v = d->GetString32();
    m.xattrs.emplace(std::move(k), std::move(v));
  }
  return m;
}

void EncodeBlockRefs(const std::vector<BlockRef>& refs, Encoder* e) {
  e->Put<uint32_t>(static_cast<uint32_t>(refs.size()));
  for (const BlockRef& r : refs) {
    e->Put<uint64_t>(r.offset);
    e->Put<uint32_t>(r.stored_len);
    e->Put<uint32_t>(r.raw_len);
    e->Put<uint64_t>(r.hash);
    e->Put<uint8_t>(static_cast<uint8_t>(r.codec));
    e->Put<uint8_t>(0);
    e->Put<uint16_t>(0);
  }
}

std::vector<BlockRef> DecodeBlockRefs(Decoder* d) {
  const uint32_t n = d->Get<uint32_t>();
  std::vector<BlockRef> refs;
  if (uint64_t{n} * kBlockRefBytes > d->remaining()) {
    d->Fail();
    return refs;
  }
  refs.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    BlockRef r;
    r.offset = d->Get<uint64_t>();
    r.stored_len = d->Get<uint32_t>();
    r.raw_len = d->Get<uint32_t>();
    r.hash = d->Get<uint64_t>();
    const uint8_t codec = d->Get<uint8_t>();
    d->Get<uint8_t>();
    d->Get<uint16_t>();
    if (!KnownCodec(codec) || r.raw_len == 0) d->Fail();
    r.codec = static_cast<BlockCodec>(codec);
    refs.push_back(r);
  }
  return refs;
}

MutationRecord RecordOf(const Mutation& m, std::vector<BlockRef> blocks) {
  MutationRecord rec;
  switch (m.type) {
    case MutationType::kPut:
      rec.type = RecordType::kPut;
      break;
    case MutationType::kDelete:
      rec.type = RecordType::kDelete;
      break;
    case MutationType::kRename:
      rec.type = RecordType::kRename;
      break;
  }
  rec.partition = m.partition;
  rec.lsn = m.lsn;
  rec.epoch = m.epoch;
  rec.request_id = m.request_id;
  rec.version = m.lsn.value();
  rec.collection = m.collection;
  rec.id = m.id;
  if (m.type == MutationType::kRename) rec.to_id = m.to_id;
  if (m.type == MutationType::kPut) {
    rec.meta = m.meta;
    rec.body_hash = m.body_hash;
    rec.blocks = std::move(blocks);
  }
  return rec;
}

std::vector<std::byte> EncodeMutation(const MutationRecord& m) {
  std::vector<std::byte> out;
  Encoder e(&out);
  e.Put<uint32_t>(m.partition.value());
  e.Put<uint64_t>(m.lsn.value());
  e.Put<uint64_t>(m.epoch.value());
  EncodeRequestId(m.request_id, &e);
  e.Put<uint64_t>(m.version);
  e.PutString16(m.collection);
  e.PutString16(m.id);
  switch (m.type) {
    case RecordType::kPut:
      EncodeMetadata(m.meta, &e);
      e.Put<uint64_t>(m.body_hash);
      EncodeBlockRefs(m.blocks, &e);
      break;
    case RecordType::kRename:
      e.PutString16(m.to_id);
      break;
    default:
      break;
  }
  return out;
}

Result<MutationRecord> DecodeMutation(RecordType type, std::span<const std::byte> payload,
                                      uint64_t offset) {
  if (!HasMutationPrefix(type)) return Bad(offset, "not a mutation record");
  MutationRecord m;
  m.type = type;
  Decoder d(payload);
  m.partition = PartitionId(d.Get<uint32_t>());
  m.lsn = Lsn(d.Get<uint64_t>());
  m.epoch = Epoch(d.Get<uint64_t>());
  m.request_id = DecodeRequestId(&d);
  m.version = d.Get<uint64_t>();
  m.collection = d.GetString16();
  m.id = d.GetString16();
  if (type == RecordType::kPut) {
    m.meta = DecodeMetadata(&d);
    m.body_hash = d.Get<uint64_t>();
    m.blocks = DecodeBlockRefs(&d);
  } else if (type == RecordType::kRename) {
    m.to_id = d.GetString16();
  }
  if (!d.done()) return Bad(offset, "malformed mutation record");
  if (!IsMutation(type) && (!m.collection.empty() || !m.id.empty())) {
    return Bad(offset, "a truncate or no-op record names a document");
  }
  return m;
}

// ---- checkpoint records ----

std::vector<std::byte> EncodeCheckpointPart(const CheckpointPartHeader& h,
                                            std::span<const std::byte> data) {
  std::vector<std::byte> out;
  out.reserve(kCheckpointPartHeaderBytes + data.size());
  Encoder e(&out);
  e.Put<uint64_t>(h.seq);
  e.Put<uint32_t>(h.partition.value());
  e.Put<uint32_t>(h.index);
  e.Put<uint32_t>(h.last ? kPartFlagLast : 0);
  e.Put<uint32_t>(0);
  e.PutBytes(data);
  return out;
}

Result<CheckpointPartHeader> DecodeCheckpointPart(std::span<const std::byte> payload,
                                                  uint64_t offset,
                                                  std::span<const std::byte>* data) {
  Decoder d(payload);
  CheckpointPartHeader h;
  h.seq = d.Get<uint64_t>();
  h.partition = PartitionId(d.Get<uint32_t>());
  h.index = d.Get<uint32_t>();
  const uint32_t flags = d.Get<uint32_t>();
  d.Get<uint32_t>();
  if (!d.ok()) return Bad(offset, "short checkpoint part");
  h.last = (flags & kPartFlagLast) != 0;
  *data = payload.subspan(kCheckpointPartHeaderBytes);
  return h;
}

std::vector<std::byte> EncodeCheckpointEnd(const CheckpointEnd& c) {
  std::vector<std::byte> out;
  Encoder e(&out);
  e.Put<uint64_t>(c.seq);
  e.Put<uint64_t>(c.replay_from);
  e.Put<uint32_t>(static_cast<uint32_t>(c.parts.size()));
  e.Put<uint32_t>(0);
  for (const auto& [off, len] : c.parts) {
    e.Put<uint64_t>(off);
    e.Put<uint32_t>(len);
    e.Put<uint32_t>(0);
  }
  return out;
}

Result<CheckpointEnd> DecodeCheckpointEnd(std::span<const std::byte> payload, uint64_t offset) {
  Decoder d(payload);
  CheckpointEnd c;
  c.seq = d.Get<uint64_t>();
  c.replay_from = d.Get<uint64_t>();
  const uint32_t n = d.Get<uint32_t>();
  d.Get<uint32_t>();
  if (!d.ok() || uint64_t{n} * kCheckpointEndEntryBytes != d.remaining()) {
    return Bad(offset, "malformed checkpoint end record");
  }
  c.parts.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    const uint64_t off = d.Get<uint64_t>();
    const uint32_t len = d.Get<uint32_t>();
    d.Get<uint32_t>();
    c.parts.emplace_back(off, len);
  }
  return c;
}

// ---- the application root ----

std::vector<std::byte> EncodeRoot(const DocRoot& r) {
  std::vector<std::byte> out;
  Encoder e(&out);
  e.Put<uint64_t>(kRootMagic);
  e.Put<uint16_t>(kLogFormatVersion);
  e.Put<uint16_t>(r.has_checkpoint ? kRootFlagCheckpoint : 0);
  e.Put<uint32_t>(static_cast<uint32_t>(r.skips.size()));
  e.Put<uint64_t>(r.checkpoint_seq);
  e.Put<uint64_t>(r.end_offset);
  e.Put<uint32_t>(r.end_len);
  e.Put<uint32_t>(0);
  e.Put<uint64_t>(r.replay_from);
  for (const auto& [a, b] : r.skips) {
    e.Put<uint64_t>(a);
    e.Put<uint64_t>(b);
  }
  e.Put<uint64_t>(Checksum64(out));
  return out;
}

Result<DocRoot> DecodeRoot(std::span<const std::byte> bytes) {
  auto bad = [](const std::string& what) {
    return Status::Corruption("document store root in the volume superblock: " + what);
  };
  if (bytes.size() < kRootFixedBytes + 8) return bad("too short");
  const size_t body = bytes.size() - 8;
  if (LoadLE<uint64_t>(bytes.data() + body) != Checksum64(bytes.data(), body)) {
    return bad("checksum mismatch");
  }
  Decoder d(bytes.first(body));
  DocRoot r;
  if (d.Get<uint64_t>() != kRootMagic) return bad("bad magic (not a document store volume?)");
  const uint16_t version = d.Get<uint16_t>();
  if (version != kLogFormatVersion) return bad("format version " + std::to_string(version));
  r.has_checkpoint = (d.Get<uint16_t>() & kRootFlagCheckpoint) != 0;
  const uint32_t skips = d.Get<uint32_t>();
  r.checkpoint_seq = d.Get<uint64_t>();
  r.end_offset = d.Get<uint64_t>();
  r.end_len = d.Get<uint32_t>();
  d.Get<uint32_t>();
  r.replay_from = d.Get<uint64_t>();
  if (skips > kMaxRootSkips || d.remaining() != uint64_t{skips} * 16) return bad("bad skip list");
  for (uint32_t i = 0; i < skips; ++i) {
    const uint64_t a = d.Get<uint64_t>();
    const uint64_t b = d.Get<uint64_t>();
    if (b <= a) return bad("empty skip range");
    r.skips.emplace_back(a, b);
  }
  if (!d.done()) return bad("malformed");
  return r;
}

}  // namespace cairn::chunkserver
