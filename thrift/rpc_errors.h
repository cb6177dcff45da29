// Status <-> CairnError at the RPC edge (STYLE.md rule 5: exceptions exist
// only there). Codes map one to one where both sides have them; Corruption
// becomes DATA_LOSS (the bytes could not be verified), the rest INTERNAL.
#pragma once

#include "cairn_types.h"
#include "common/status.h"

namespace cairn::net {

rpc::ErrorCode::type ToErrorCode(StatusCode code);
StatusCode FromErrorCode(rpc::ErrorCode::type code);

// The exception a handler throws for `s` (which must not be OK).
rpc::CairnError ToCairnError(const Status& s);
Status FromCairnError(const rpc::CairnError& e);

// In a handler: throws ToCairnError(s) unless s is OK.
void ThrowIfError(const Status& s);

}  // namespace cairn::net
