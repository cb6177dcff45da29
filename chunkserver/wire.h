// Little-endian encoding helpers for the document log (doc_log_format.h):
// an appending Encoder and a bounds-checked Decoder that never reads past its
// input (a short or malformed input makes it fail, and every later read
// returns zero). Not thread-safe; one per encoding.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::chunkserver {

static_assert(std::endian::native == std::endian::little, "big-endian hosts unsupported");

template <typename T>
inline void StoreLE(std::byte* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

template <typename T>
inline T LoadLE(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

class Encoder {
 public:
  explicit Encoder(std::vector<std::byte>* out) : out_(out) {}

  template <typename T>
  void Put(T v) {
    const size_t at = out_->size();
    out_->resize(at + sizeof(T));
    StoreLE<T>(out_->data() + at, v);
  }
  void PutBytes(std::span<const std::byte> b) { out_->insert(out_->end(), b.begin(), b.end()); }
  void PutBytes(std::string_view s) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    out_->insert(out_->end(), p, p + s.size());
  }
  // Callers check the length limits before encoding (names are <= 255 bytes).
  void PutString16(std::string_view s) {
    Put<uint16_t>(static_cast<uint16_t>(s.size()));
    PutBytes(s);
  }
  void PutString32(std::string_view s) {
    Put<uint32_t>(static_cast<uint32_t>(s.size()));
    PutBytes(s);
  }
  size_t size() const { return out_->size(); }

 private:
  std::vector<std::byte>* const out_;  // borrowed
};

class Decoder {
 public:
  explicit Decoder(std::span<const std::byte> in) : in_(in) {}

  template <typename T>
  T Get() {
    if (!Need(sizeof(T))) return T{};
    T v = LoadLE<T>(in_.data() + pos_);
    pos_ += sizeof(T);
    return v;
  }
  std::span<const std::byte> GetBytes(size_t n) {
    if (!Need(n)) return {};
    auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  std::string GetString(size_t n) {
    auto b = GetBytes(n);
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  std::string GetString16() { return GetString(Get<uint16_t>()); }
  std::string GetString32() { return GetString(Get<uint32_t>()); }

  bool ok() const { return ok_; }
  size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }
  // True if everything was read and nothing went wrong.
  bool done() const { return ok_ && pos_ == in_.size(); }
  // Marks the input malformed (a field failed a semantic check).
  void Fail() { ok_ = false; }

 private:
  bool Need(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }

  std::span<const std::byte> in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace cairn::chunkserver
