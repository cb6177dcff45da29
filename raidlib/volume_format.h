// On-disk format of a raidlib volume, version 1. The prose page is
// docs/raidlib-format.md; change both together and bump kFormatVersion.
//
// A volume is N disk directories. Each holds:
//   VOLUME            the superblock (superblock.h), replaced atomically
//   seg-NNNNNNNN      segment files, append-only
// A stripe occupies the same byte range [file_offset, file_offset + stride)
// of the same segment file on every member disk; each member holds one unit:
//   [unit header, header_len bytes][payload, unit_len bytes]
// All integers are little-endian.
#pragma once

#include <cstdint>

namespace cairn::raidlib {

inline constexpr uint32_t kFormatVersion = 1;

// Alignment of headers and payloads, and the checksum granularity: a read
// verifies whole 4 KiB chunks only.
inline constexpr uint32_t kChunkSize = 4096;

inline constexpr uint32_t kMaxDisks = 16;
inline constexpr uint8_t kNoParity = 0xFF;

// ---- superblock ("VOLUME") ----
inline constexpr char kSuperblockName[] = "VOLUME";
inline constexpr uint64_t kSuperblockMagic = 0x4B4C4256'4E524143ull;  // "CARNVBLK"
inline constexpr uint32_t kSuperblockMaxBytes = 1u << 20;
// The application root kept in the superblock (Volume::SetAppRoot).
inline constexpr uint32_t kMaxAppRootBytes = 4096;

// ---- unit header ----
inline constexpr uint64_t kUnitMagic = 0x54494E55'4E524143ull;  // "CARNUNIT"
// Fixed part; the chunk checksum array (8 bytes per payload chunk) follows.
inline constexpr uint32_t kUnitHeaderFixedBytes = 128;
// Byte offsets of the fixed fields.
namespace unit_field {
inline constexpr uint32_t kMagic = 0;              // u64
inline constexpr uint32_t kVersion = 8;            // u32
inline constexpr uint32_t kHeaderLen = 12;         // u32, multiple of kChunkSize
inline constexpr uint32_t kVolumeId = 16;          // 16 bytes
inline constexpr uint32_t kSeq = 32;               // u64 stripe sequence number, from 1
inline constexpr uint32_t kGeneration = 40;        // u64 volume open generation that wrote it
inline constexpr uint32_t kLogicalStart = 48;      // u64 logical offset of the stripe's data
inline constexpr uint32_t kDataLen = 56;           // u32 user bytes in the stripe
inline constexpr uint32_t kUnitLen = 60;           // u32 payload bytes per unit
inline constexpr uint32_t kSegment = 64;           // u32 segment id
inline constexpr uint32_t kMemberMask = 68;        // u32 bit i: disk i holds a unit
inline constexpr uint32_t kParityDisk = 72;        // u8 disk holding parity, kNoParity if none
inline constexpr uint32_t kThisDisk = 73;          // u8 disk this unit was written for
inline constexpr uint32_t kNumDisks = 74;          // u8 volume width N
inline constexpr uint32_t kFlags = 75;             // u8, zero in version 1
inline constexpr uint32_t kChunkCount = 76;        // u32 = unit_len / kChunkSize
inline constexpr uint32_t kCommittedThrough = 80;  // u64 highest seq durable when written
inline constexpr uint32_t kFileOffset = 88;        // u64 where the unit sits in its file
inline constexpr uint32_t kHeaderChecksum = 120;   // u64 XXH3 of [0,120) ++ checksum array
}  // namespace unit_field

inline constexpr uint32_t kMaxUnitBytes = 16u << 20;

// Segment file name for a segment id: "seg-%08u".
inline constexpr char kSegmentPrefix[] = "seg-";

}  // namespace cairn::raidlib
