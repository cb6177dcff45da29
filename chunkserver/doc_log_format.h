// On-disk format of the document log, version 1: records appended to the
// chunk server's raidlib volume, and the application root kept in the
// volume's superblocks. The prose page is docs/docstore-format.md; change both
// together and bump kLogFormatVersion.
//
// Every record is
//   [record header, kRecordHeaderBytes][payload, payload_len bytes]
// and the next record starts right after it, so the log can be walked from
// any record start. All integers are little-endian.
#pragma once

#include <cstdint>

namespace cairn::chunkserver {

inline constexpr uint16_t kLogFormatVersion = 1;

// ---- record header ----
inline constexpr uint32_t kRecordMagic = 0x434F4443;  // "CDOC"
inline constexpr uint32_t kRecordHeaderBytes = 32;
namespace record_field {
inline constexpr uint32_t kMagic = 0;             // u32
inline constexpr uint32_t kVersion = 4;           // u16
inline constexpr uint32_t kType = 6;              // u8 (RecordType)
inline constexpr uint32_t kFlags = 7;             // u8, 0
inline constexpr uint32_t kPayloadLen = 8;        // u32
inline constexpr uint32_t kReserved = 12;         // u32, 0
inline constexpr uint32_t kPayloadChecksum = 16;  // u64: XXH3-64 of the payload, seed 0
inline constexpr uint32_t kHeaderChecksum = 24;   // u64: XXH3-64 of bytes [0, 24), seed = the
                                                  // record's volume offset
}  // namespace record_field
// Larger payloads are refused as corrupt.
inline constexpr uint32_t kMaxPayloadBytes = 64u << 20;

enum class RecordType : uint8_t {
  kBlock = 1,           // one block of a document body
  kPut = 2,             // a document version: metadata + block references
  kDelete = 3,          // the document is gone
  kRename = 4,          // within one partition
  kCheckpointPart = 5,  // a slice of one partition's checkpointed state
  kCheckpointEnd = 6,   // lists the parts of a checkpoint; the root points here
  // Replication (docs/design-replication.md): a replica's uncommitted tail
  // cut off, and the no-op entry that starts a primary's epoch. Both use the
  // mutation prefix with an empty collection and id; a truncate's LSN is the
  // last entry it keeps. Builds before these types refuse them as unknown.
  kTruncate = 7,
  kNoop = 8,
  // A replica's partition replaced by a snapshot of the primary's applied
  // state: partition u32, lsn u64, epoch u64, then the partition's state as a
  // checkpoint part holds it (with this volume's block references).
  kSnapshot = 9,
};

// ---- block record payload ----
inline constexpr uint32_t kBlockHeaderBytes = 16;
namespace block_field {
inline constexpr uint32_t kCodec = 0;     // u8 (BlockCodec)
inline constexpr uint32_t kReserved = 1;  // 3 bytes, 0
inline constexpr uint32_t kRawLen = 4;    // u32
inline constexpr uint32_t kRawHash = 8;   // u64: XXH3-64 of the raw (uncompressed) bytes, seed 0
// The stored bytes follow: stored_len = payload_len - kBlockHeaderBytes.
}  // namespace block_field
// Upper bound on a block's raw size (DocStoreOptions::block_bytes).
inline constexpr uint32_t kMaxBlockBytes = 16u << 20;

enum class BlockCodec : uint8_t {
  kRaw = 0,   // stored as is (compression did not help)
  kZstd = 1,  // one zstd frame
};

// ---- mutation records (put, delete, rename; truncate and no-op too) ----
// Common prefix: partition u32, lsn u64, epoch u64, request id (3 x u64),
// version u64; then per type (strings are u16 length + bytes unless noted):
//   put:    collection, id, metadata, body_hash u64, u32 count x block ref
//   delete: collection, id
//   rename: collection, from id, to id
// metadata: size u64, mtime_ns i64, ctime_ns i64, mode u32, uid u32, gid u32,
//           u32 count x (key: u16 len + bytes, value: u32 len + bytes)
inline constexpr uint32_t kMutationPrefixBytes = 4 + 8 + 8 + 24 + 8;
// block ref: offset u64, stored_len u32, raw_len u32, hash u64, codec u8,
// 3 reserved bytes.
inline constexpr uint32_t kBlockRefBytes = 28;

// ---- checkpoint ----
// A part: checkpoint seq u64, partition u32, part index u32 (within the
// partition, from 0), flags u32 (bit 0: last part of the partition),
// reserved u32, then a slice of the partition's state (docs/docstore-format.md).
inline constexpr uint32_t kCheckpointPartHeaderBytes = 24;
inline constexpr uint32_t kPartFlagLast = 1;
// The end: checkpoint seq u64, replay_from u64, part count u32, reserved u32,
// then per part: offset u64, record length u32, reserved u32.
inline constexpr uint32_t kCheckpointEndHeaderBytes = 24;
inline constexpr uint32_t kCheckpointEndEntryBytes = 16;

// ---- application root (Volume::SetAppRoot, at most 4 KiB) ----
inline constexpr uint64_t kRootMagic = 0x544F4F52434F4443ull;  // "CDOCROOT"
namespace root_field {
inline constexpr uint32_t kMagic = 0;           // u64
inline constexpr uint32_t kVersion = 8;         // u16
inline constexpr uint32_t kFlags = 10;          // u16 (bit 0: a checkpoint exists)
inline constexpr uint32_t kSkipCount = 12;      // u32
inline constexpr uint32_t kCheckpointSeq = 16;  // u64
inline constexpr uint32_t kEndOffset = 24;      // u64: the checkpoint's end record
inline constexpr uint32_t kEndLen = 32;         // u32: its total length
inline constexpr uint32_t kReserved = 36;       // u32, 0
inline constexpr uint32_t kReplayFrom = 40;     // u64: replay the log from here
inline constexpr uint32_t kSkips = 48;          // skip_count x (start u64, end u64)
// Then an XXH3-64 (seed 0) of every byte before it.
}  // namespace root_field
inline constexpr uint32_t kRootFixedBytes = 48;
inline constexpr uint16_t kRootFlagCheckpoint = 1;
// Torn ranges remembered in the root; one more forces a checkpoint.
inline constexpr uint32_t kMaxRootSkips = 128;

}  // namespace cairn::chunkserver
