// Standard base64 (RFC 4648, with '=' padding), as etcd's JSON gateway
// encodes keys and values. Strict decoding: any other byte, bad padding or
// non-zero padding bits is an error.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace cairn::metaserver {

std::string Base64Encode(std::string_view bytes);
// InvalidArgument on malformed input.
Result<std::string> Base64Decode(std::string_view text);

}  // namespace cairn::metaserver
