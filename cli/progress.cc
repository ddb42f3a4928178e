#include "progress.h"

#include <unistd.h>

#include <cstdio>

namespace arrow_zerobus::cli {

namespace {

std::string Grouped(int64_t v) {
  const std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out = v < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return buf;
}

}  // namespace

Progress::Mode Progress::ModeFromName(const std::string& name, bool quiet) {
  if (quiet || name == "none") return Mode::kQuiet;
  if (name == "lines") return Mode::kLines;
  if (name == "bar") return Mode::kTerminal;
  return isatty(STDERR_FILENO) ? Mode::kTerminal : Mode::kLines;
}

Progress::Progress(Mode mode, const ProgressCounters& counters) : mode_(mode), c_(counters) {}

Progress::~Progress() { Stop(); }

void Progress::Start() {
  start_ = std::chrono::steady_clock::now();
  if (mode_ == Mode::kQuiet) return;
  thread_ = std::thread([this] { Run(); });
}

std::string Progress::Line() const {
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t read = c_.rows_read.load(), landed = c_.rows_landed.load(),
                failed = c_.rows_failed.load(), total = c_.total_rows.load();
  const double done = static_cast<double>(landed + failed);
  std::string line = "rows " + Grouped(read) + " read, " + Grouped(landed) + " landed, " +
                     Grouped(failed) + " failed";
  char buf[160];
  std::snprintf(buf, sizeof(buf), " | %.1f MB sent | %.2f M rows/s",
                static_cast<double>(c_.bytes_sent.load()) / 1e6,
                secs > 0 ? done / secs / 1e6 : 0.0);
  line += buf;
  if (total > 0) {
    std::snprintf(buf, sizeof(buf), " | %.0f%%", 100.0 * done / static_cast<double>(total));
    line += buf;
    if (done > 0 && done < static_cast<double>(total)) {
      line += " | ETA " + Duration(secs * (static_cast<double>(total) - done) / done);
    }
  }
  line += " | " + Duration(secs);
  return line;
}

void Progress::Run() {
  const auto period = mode_ == Mode::kTerminal ? std::chrono::milliseconds(200)
                                               : std::chrono::milliseconds(5000);
  std::unique_lock<std::mutex> lk(mu_);
  while (!cv_.wait_for(lk, period, [this] { return stop_; })) {
    if (mode_ == Mode::kTerminal) {
      std::fprintf(stderr, "\r%s\x1b[K", Line().c_str());
      line_shown_ = true;
    } else {
      std::fprintf(stderr, "progress: %s\n", Line().c_str());
    }
    std::fflush(stderr);
  }
}

void Progress::Stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (mode_ == Mode::kTerminal) {
    std::fprintf(stderr, "\r%s\x1b[K\n", Line().c_str());
  } else if (mode_ == Mode::kLines) {
    std::fprintf(stderr, "progress: %s\n", Line().c_str());
  }
  std::fflush(stderr);
}

void Progress::Message(const std::string& line) {
  std::lock_guard<std::mutex> lk(mu_);
  if (mode_ == Mode::kTerminal && line_shown_) std::fprintf(stderr, "\r\x1b[K");
  std::fflush(stderr);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace arrow_zerobus::cli
