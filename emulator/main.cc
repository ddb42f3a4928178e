// zerobus-emulator: the local Zerobus server as a program. Prints one line saying where it
// listens, serves until SIGINT/SIGTERM, then shuts down cleanly (pending rows are committed).
// The options are shared with `zerobus-arrow serve` (server/command.h).
#include <string>

#include <CLI/CLI.hpp>

#include "server/command.h"

namespace arrow_zerobus::emulator {
const char* EmulatorVersion();
}

int main(int argc, char** argv) {
  arrow_zerobus::emulator::EmulatorCommand command;
  CLI::App app{
      "zerobus-emulator: a local Zerobus Ingest server (gRPC EphemeralStream + OAuth + Unity "
      "Catalog tables endpoint + admin API) that lands rows in Delta tables on disk."};
  app.set_version_flag("--version", std::string(arrow_zerobus::emulator::EmulatorVersion()));
  arrow_zerobus::emulator::AddEmulatorOptions(app, command);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every refused flag is a usage error (2), as documented.
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (int code = arrow_zerobus::emulator::BuildEmulatorOptions(command, "zerobus-emulator")) {
    return code;
  }
  return arrow_zerobus::emulator::ServeUntilSignal(command.options, "zerobus-emulator");
}
