// tkmsctl: the operator CLI. All logic lives in the tkms_tkmsctl library
// (cli.h, mikey_command.h, mikey_json.h, input_format.h).
#include <iostream>

#include "tools/tkmsctl/cli.h"

int main(int argc, char** argv) { return tkms::tkmsctl::RunCli(argc, argv, std::cout, std::cerr); }
