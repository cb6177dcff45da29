// The `cairn` command (client/README.md has the reference). main.cc only
// calls Main(); the commands are in commands.cc (documents, collections,
// status) and certs_cmd.cc (the cluster CA), the shared parsing in args.h.
#pragma once

namespace cairn::cli {

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       // the operation failed (not found, version...)
inline constexpr int kExitUnreachable = 2;  // the cluster could not be reached
inline constexpr int kExitUsage = 64;       // bad command line (EX_USAGE)
// `cairn query`: the query text does not parse (the message names the
// column). EX_DATAERR: distinct from an unreachable cluster (2), so that a
// script can tell "fix the query" from "try again".
inline constexpr int kExitBadQuery = 65;

// Runs one command; writes results to stdout and errors to stderr.
int Main(int argc, char** argv);

}  // namespace cairn::cli
