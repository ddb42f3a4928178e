// Progress of a send: one updating line on a terminal, a plain line every few seconds
// otherwise, nothing with --quiet. Messages (failed rows) are printed above the line.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace arrow_zerobus::cli {

struct ProgressCounters {
  std::atomic<int64_t> rows_read{0};
  std::atomic<int64_t> rows_landed{0};
  std::atomic<int64_t> rows_failed{0};
  std::atomic<int64_t> bytes_sent{0};
  std::atomic<int64_t> total_rows{-1};  // -1: not known in advance
};

class Progress {
 public:
  enum class Mode { kTerminal, kLines, kQuiet };
  // "auto" picks kTerminal when stderr is a terminal, kLines otherwise.
  static Mode ModeFromName(const std::string& name, bool quiet);

  Progress(Mode mode, const ProgressCounters& counters);
  ~Progress();
  void Start();
  // Prints the last state and ends the line.
  void Stop();
  // A message line (stdout), printed without tearing the progress line.
  void Message(const std::string& line);

 private:
  void Run();
  std::string Line() const;

  Mode mode_;
  const ProgressCounters& c_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool line_shown_ = false;
  std::thread thread_;
};

}  // namespace arrow_zerobus::cli
