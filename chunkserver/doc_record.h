// Encoding and decoding of document-log records and of the application root
// (doc_log_format.h, docs/docstore-format.md). Pure functions: no I/O, no
// locking. Decoders never trust their input: anything malformed is a
// Corruption status naming the offset.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "chunkserver/doc_log_format.h"
#include "chunkserver/doc_types.h"
#include "chunkserver/wire.h"
#include "common/status.h"

namespace cairn::chunkserver {

// ---- record framing ----

struct RecordHeader {
  RecordType type = RecordType::kBlock;
  uint32_t payload_len = 0;
  uint64_t payload_checksum = 0;
  uint64_t record_len() const { return uint64_t{kRecordHeaderBytes} + payload_len; }
};

// Returns header + payload with the payload checksum filled in and the
// header checksum still zero: SealRecord() fills it once the record's volume
// offset is known. Kept apart so the payload is hashed outside the append lock.
std::vector<std::byte> FrameRecord(RecordType type, std::span<const std::byte> payload);
// The same for a record built in place: `record` is kRecordHeaderBytes of
// header space followed by the payload.
void FillRecordHeader(RecordType type, std::span<std::byte> record);
// Writes the header checksum of a framed record that will sit at `offset`.
void SealRecord(std::span<std::byte> record, uint64_t offset);
// Parses and verifies a header read at `offset`. Corruption if it is not a
// valid record header of this format for that offset.
Result<RecordHeader> DecodeRecordHeader(std::span<const std::byte> header, uint64_t offset);
// Corruption if `payload` does not match the header's checksum.
Status VerifyPayload(const RecordHeader& h, std::span<const std::byte> payload, uint64_t offset);

// Put, delete, rename: records that change a document.
bool IsMutation(RecordType t);
// A replicated log entry: a mutation or a no-op (each takes one LSN).
bool IsLogEntry(RecordType t);
// Encoded with the mutation prefix (EncodeMutation): log entries and truncates.
bool HasMutationPrefix(RecordType t);

// ---- block records ----

struct BlockHeader {
  BlockCodec codec = BlockCodec::kRaw;
  uint32_t raw_len = 0;
  uint64_t raw_hash = 0;
};
void EncodeBlockHeader(const BlockHeader& h, std::byte* out);  // kBlockHeaderBytes
Result<BlockHeader> DecodeBlockHeader(std::span<const std::byte> payload, uint64_t offset);
// Corruption unless the record at ref.offset (header `h`, block header `b`)
// is the block `ref` describes.
Status CheckBlockMatchesRef(const RecordHeader& h, const BlockHeader& b, const BlockRef& ref);

// ---- mutation records ----

// What a put, delete or rename record says happened.
struct MutationRecord {
  // kPut, kDelete, kRename; or kNoop / kTruncate (collection and id empty;
  // a truncate's lsn is the last entry it keeps)
  RecordType type = RecordType::kPut;
  PartitionId partition;
  Lsn lsn;
  Epoch epoch;
  RequestId request_id;
  uint64_t version = 0;
  std::string collection;
  std::string id;
  std::string to_id;  // rename
  DocMetadata meta;   // put
  uint64_t body_hash = 0;
  std::vector<BlockRef> blocks;
};

// The record of mutation `m` (its LSN is the new version), naming `blocks`
// (m.blocks after the store's translation of moved references) for a put.
MutationRecord RecordOf(const Mutation& m, std::vector<BlockRef> blocks);

std::vector<std::byte> EncodeMutation(const MutationRecord& m);
Result<MutationRecord> DecodeMutation(RecordType type, std::span<const std::byte> payload,
                                      uint64_t offset);

// Pieces shared with the checkpoint encoding (doc_index.cc).
void EncodeMetadata(const DocMetadata& m, Encoder* e);
DocMetadata DecodeMetadata(Decoder* d);
void EncodeBlockRefs(const std::vector<BlockRef>& refs, Encoder* e);
std::vector<BlockRef> DecodeBlockRefs(Decoder* d);
void EncodeRequestId(const RequestId& r, Encoder* e);
RequestId DecodeRequestId(Decoder* d);

// ---- checkpoint records ----

struct CheckpointPartHeader {
  uint64_t seq = 0;
  PartitionId partition;
  uint32_t index = 0;  // within the partition
  bool last = false;   // the partition's last part
};
std::vector<std::byte> EncodeCheckpointPart(const CheckpointPartHeader& h,
                                            std::span<const std::byte> data);
// Returns the header; `data` is set to the slice of state it carries.
Result<CheckpointPartHeader> DecodeCheckpointPart(std::span<const std::byte> payload,
                                                  uint64_t offset,
                                                  std::span<const std::byte>* data);

struct CheckpointEnd {
  uint64_t seq = 0;
  uint64_t replay_from = 0;
  std::vector<std::pair<uint64_t, uint32_t>> parts;  // (offset, record length), in order
};
std::vector<std::byte> EncodeCheckpointEnd(const CheckpointEnd& e);
Result<CheckpointEnd> DecodeCheckpointEnd(std::span<const std::byte> payload, uint64_t offset);

// ---- the application root ----

struct DocRoot {
  bool has_checkpoint = false;
  uint64_t checkpoint_seq = 0;
  uint64_t end_offset = 0;  // the checkpoint's end record
  uint32_t end_len = 0;
  uint64_t replay_from = 0;  // replay mutation records from here
  // Torn ranges [start, end) left by crashes: the log resumes at `end`.
  std::vector<std::pair<uint64_t, uint64_t>> skips;
  bool operator==(const DocRoot&) const = default;
};
std::vector<std::byte> EncodeRoot(const DocRoot& r);
Result<DocRoot> DecodeRoot(std::span<const std::byte> bytes);

}  // namespace cairn::chunkserver
