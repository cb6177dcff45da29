#include <iostream>

#include "raidlib/volume_tool.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return cairn::raidlib::RunVolumeTool(args, std::cout, std::cerr);
}
