// Runs a Python helper script of the tests and returns its stdout (header-only test helper).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace arrow_zerobus::testing {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

inline std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Runs `AZ_PYTHON_EXECUTABLE script args...`; stderr is appended to the output so failures show.
inline CommandResult RunPython(const std::string& script, const std::vector<std::string>& args) {
  std::string cmd = ShellQuote(AZ_PYTHON_EXECUTABLE) + " " + ShellQuote(script);
  for (const auto& a : args) cmd += " " + ShellQuote(a);
  cmd += " 2>&1";
  CommandResult result;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace arrow_zerobus::testing
