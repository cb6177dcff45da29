// cairn: the command-line client (client/README.md).
#include "client/cli/cli.h"

int main(int argc, char** argv) { return cairn::cli::Main(argc, argv); }
