#include "chunkserver/doc_log_reader.h"

#include <algorithm>
#include <array>
#include <string>

namespace cairn::chunkserver {

Result<RecordHeader> ReadRecordHeader(raidlib::Volume* volume, uint64_t offset) {
  std::array<std::byte, kRecordHeaderBytes> buf;
  RETURN_IF_ERROR(volume->Read(offset, buf));
  return DecodeRecordHeader(buf, offset);
}

Result<std::vector<std::byte>> ReadRecordPayload(raidlib::Volume* volume, uint64_t offset,
                                                 const RecordHeader& h) {
  std::vector<std::byte> payload(h.payload_len);
  if (!payload.empty()) RETURN_IF_ERROR(volume->Read(offset + kRecordHeaderBytes, payload));
  RETURN_IF_ERROR(VerifyPayload(h, payload, offset));
  return payload;
}

LogScanner::LogScanner(raidlib::Volume* volume, uint64_t from, uint64_t end,
                       std::vector<std::pair<uint64_t, uint64_t>> skips)
    : volume_(volume), end_(end), skips_(std::move(skips)), pos_(from) {
  std::sort(skips_.begin(), skips_.end());
}

Result<bool> LogScanner::Next() {
  for (;;) {
    auto skip =
        std::find_if(skips_.begin(), skips_.end(), [&](const auto& s) { return s.first == pos_; });
    if (skip == skips_.end()) break;
    pos_ = skip->second;
  }
  if (pos_ >= end_) return false;
  if (end_ - pos_ < kRecordHeaderBytes) {
    torn_at_ = pos_;
    return false;
  }
  ASSIGN_OR_RETURN(header_, ReadRecordHeader(volume_, pos_));
  if (header_.record_len() > end_ - pos_) {
    torn_at_ = pos_;
    return false;
  }
  offset_ = pos_;
  pos_ += header_.record_len();
  return true;
}

}  // namespace cairn::chunkserver
