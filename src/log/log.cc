#include "arrow_zerobus/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

namespace arrow_zerobus {

namespace {

LogSeverity ThresholdFromEnvironment() {
  const char* v = std::getenv("AZ_LOG_LEVEL");
  if (v == nullptr) return LogSeverity::kWarning;
  const std::string s(v);
  if (s == "debug" || s == "trace") return LogSeverity::kDebug;
  if (s == "info") return LogSeverity::kInfo;
  if (s == "error") return LogSeverity::kError;
  if (s == "off") return LogSeverity::kOff;
  return LogSeverity::kWarning;
}

std::atomic<int>& Threshold() {
  static std::atomic<int> threshold{static_cast<int>(ThresholdFromEnvironment())};
  return threshold;
}

std::string_view SeverityName(LogSeverity s) {
  switch (s) {
    case LogSeverity::kDebug: return "DEBUG";
    case LogSeverity::kInfo: return "INFO";
    case LogSeverity::kWarning: return "WARNING";
    case LogSeverity::kError: return "ERROR";
    case LogSeverity::kOff: break;
  }
  return "OFF";
}

// The sink is swapped under a mutex and called through a shared_ptr copy, so a sink being
// replaced is never destroyed while a thread is inside it.
struct SinkHolder {
  std::mutex mu;
  std::shared_ptr<const LogSink> sink;
};

SinkHolder& Holder() {
  static SinkHolder* holder = new SinkHolder();  // never destroyed: threads may log at exit
  return *holder;
}

}  // namespace

void SetLogSink(LogSink sink) {
  auto next = sink ? std::make_shared<const LogSink>(std::move(sink)) : nullptr;
  std::lock_guard<std::mutex> lk(Holder().mu);
  Holder().sink = std::move(next);
}

void SetLogThreshold(LogSeverity threshold) {
  Threshold().store(static_cast<int>(threshold), std::memory_order_relaxed);
}

LogSeverity GetLogThreshold() {
  return static_cast<LogSeverity>(Threshold().load(std::memory_order_relaxed));
}

bool LogEnabled(LogSeverity severity) {
  return severity != LogSeverity::kOff &&
         static_cast<int>(severity) >= Threshold().load(std::memory_order_relaxed);
}

void Log(LogSeverity severity, std::string_view message) {
  if (!LogEnabled(severity)) return;
  std::shared_ptr<const LogSink> sink;
  {
    std::lock_guard<std::mutex> lk(Holder().mu);
    sink = Holder().sink;
  }
  if (sink) {
    (*sink)(severity, message);
    return;
  }
  const std::string_view name = SeverityName(severity);
  std::fprintf(stderr, "[arrow_zerobus %.*s] %.*s\n", static_cast<int>(name.size()), name.data(),
               static_cast<int>(message.size()), message.data());
}

}  // namespace arrow_zerobus
