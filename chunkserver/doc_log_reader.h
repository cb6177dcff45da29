// Reading the document log back from the volume: one record at a time, with
// verification, and a forward scan that knows where a crash tore the tail.
//
// A record is intact when its header verifies for its offset and the whole
// record lies below the volume's end. raidlib returns only bytes that were
// appended (or an error), and it cuts a torn tail at stripe granularity, so
// the only damage a crash leaves is the last record cut short: the scan
// reports that as a torn tail, never as corruption. A header that fails
// verification anywhere else is Corruption.
//
// Not thread-safe (one scanner per scan); the volume is borrowed.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "chunkserver/doc_record.h"
#include "common/status.h"
#include "raidlib/volume.h"

namespace cairn::chunkserver {

// Reads and verifies the header of the record at `offset`.
Result<RecordHeader> ReadRecordHeader(raidlib::Volume* volume, uint64_t offset);
// Reads the payload of the record at `offset` whose header is `h`, verified.
Result<std::vector<std::byte>> ReadRecordPayload(raidlib::Volume* volume, uint64_t offset,
                                                 const RecordHeader& h);

class LogScanner {
 public:
  // Scans [from, end); `skips` are torn ranges [start, end) left by earlier
  // crashes (the root's list): a record start equal to a skip's start jumps
  // to its end.
  LogScanner(raidlib::Volume* volume, uint64_t from, uint64_t end,
             std::vector<std::pair<uint64_t, uint64_t>> skips);

  // Moves to the next record. Returns false at the end of the log or at a
  // torn tail (torn_at() says where it starts).
  Result<bool> Next();
  uint64_t offset() const { return offset_; }
  const RecordHeader& header() const { return header_; }
  Result<std::vector<std::byte>> ReadPayload() {
    return ReadRecordPayload(volume_, offset_, header_);
  }
  // Where the intact log ends (valid after Next() returned false).
  uint64_t valid_end() const { return pos_; }
  std::optional<uint64_t> torn_at() const { return torn_at_; }

 private:
  raidlib::Volume* const volume_;  // borrowed
  const uint64_t end_;
  std::vector<std::pair<uint64_t, uint64_t>> skips_;
  uint64_t pos_;  // next record start
  uint64_t offset_ = 0;
  RecordHeader header_;
  std::optional<uint64_t> torn_at_;
};

}  // namespace cairn::chunkserver
