// Logging: one small leveled facility for the library (stream, wrapper). Records go to a sink
// (stderr by default; the Python package installs one that feeds Python's `logging`). Messages
// never carry secrets or tokens: callers log names, counts and rendered errors only.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace arrow_zerobus {

// Numbered like Python's logging levels, so a bridge passes them through unchanged.
enum class LogSeverity : int { kDebug = 10, kInfo = 20, kWarning = 30, kError = 40, kOff = 100 };

using LogSink = std::function<void(LogSeverity severity, std::string_view message)>;

// Replaces the sink (thread-safe); nullptr restores the stderr sink. A sink may be called from
// any library thread, and must not call back into the library.
void SetLogSink(LogSink sink);
// Records below `threshold` are not produced (their text is not even formatted). The default is
// kWarning, or the AZ_LOG_LEVEL environment variable (debug, info, warning, error, off).
void SetLogThreshold(LogSeverity threshold);
LogSeverity GetLogThreshold();
bool LogEnabled(LogSeverity severity);
void Log(LogSeverity severity, std::string_view message);

}  // namespace arrow_zerobus
