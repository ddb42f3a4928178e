// Identity of the emulator build, shown by --version and the admin API.
namespace arrow_zerobus::emulator {
const char* EmulatorVersion() { return "0.1.0"; }
}  // namespace arrow_zerobus::emulator
