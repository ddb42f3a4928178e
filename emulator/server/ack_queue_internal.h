// Cumulative acknowledgement bookkeeping of one stream: requests in arrival order, each one
// acknowledgeable once its rows are durable, the fault's ack delay has passed since then and the
// per-stream quota pacing allows it. Not thread-safe (the owning reactor's lock guards it).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>

#include "server/faults.h"

namespace arrow_zerobus::emulator {

class AckQueue {
 public:
  using Clock = std::chrono::steady_clock;

  struct Entry {
    int64_t offset = 0;
    int64_t rows = 0;
    int64_t rows_through = 0;  // rows of this request and every earlier one on the stream
    Clock::time_point not_before{};  // quota pacing
    bool durable = false;
    Clock::time_point durable_at{};
  };

  // Adds the request at `offset` holding `rows` rows and `wire_bytes` bytes. A request with
  // nothing to store is durable as soon as everything before it is.
  void Add(int64_t offset, int64_t rows, int64_t wire_bytes, const StreamFaults& faults) {
    auto now = Clock::now();
    rows_ += rows;
    Entry entry{offset, rows, rows_, now, false, {}};
    double cost_s = 0;
    if (faults.max_records_per_s > 0) cost_s = std::max(cost_s, rows / faults.max_records_per_s);
    if (faults.max_bytes_per_s > 0) cost_s = std::max(cost_s, wire_bytes / faults.max_bytes_per_s);
    if (cost_s > 0) {
      rate_cursor_ = std::max(rate_cursor_, now) +
                     std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cost_s));
      entry.not_before = rate_cursor_;
    }
    if (rows == 0 && (entries_.empty() || entries_.back().durable)) {
      entry.durable = true;
      entry.durable_at = now;
    }
    entries_.push_back(entry);
  }

  // The rows of every request up to `offset` are durable.
  void MarkDurable(int64_t offset) {
    auto now = Clock::now();
    for (auto& e : entries_) {
      // Empty requests right after the durable ones have nothing to wait for.
      if (e.offset > offset && e.rows != 0) break;
      if (!e.durable) {
        e.durable = true;
        e.durable_at = now;
      }
    }
  }

  // Pops every entry that may be acknowledged now and returns the last one popped (nullopt:
  // none). `*next_release` is set when a durable entry must still wait (delay or pacing).
  // `stop_at` >= 0: entries from that offset on stay (a fault acknowledges it otherwise).
  std::optional<Entry> Release(std::chrono::milliseconds delay,
                               std::optional<Clock::time_point>* next_release,
                               int64_t stop_at = -1) {
    auto now = Clock::now();
    std::optional<Entry> last;
    while (!entries_.empty() && entries_.front().durable &&
           (stop_at < 0 || entries_.front().offset < stop_at)) {
      const Entry& e = entries_.front();
      auto release = std::max(e.durable_at + delay, e.not_before);
      if (release > now) {
        *next_release = release;
        break;
      }
      last = e;
      entries_.pop_front();
    }
    return last;
  }

  bool empty() const { return entries_.empty(); }
  // The oldest entry not yet released (null: none).
  const Entry* front() const { return entries_.empty() ? nullptr : &entries_.front(); }

 private:
  std::deque<Entry> entries_;
  Clock::time_point rate_cursor_{};
  int64_t rows_ = 0;
};

}  // namespace arrow_zerobus::emulator
