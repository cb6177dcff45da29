#include "metaserver/base64.h"

#include <gtest/gtest.h>

namespace cairn::metaserver {
namespace {

TEST(Base64, KnownVectors) {
  // RFC 4648 section 10.
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    auto decoded = Base64Decode(encoded);
    ASSERT_TRUE(decoded.ok()) << encoded;
    EXPECT_EQ(*decoded, plain);
  }
}

TEST(Base64, EveryByteRoundTrips) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t len = 0; len <= all.size(); len += 37) {
    const std::string part = all.substr(all.size() - len);
    auto back = Base64Decode(Base64Encode(part));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, part);
  }
}

TEST(Base64, MalformedTextIsRefused) {
  for (const char* bad :
       {"Zg=", "Zg", "Z===", "Zm9v!", "Zm9v\n", "Zh==", "Zm9=", "=Zm9", "Zg==Zg==", "Zm=v"}) {
    EXPECT_EQ(Base64Decode(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace cairn::metaserver
