// A single timer thread for delayed work (paced or delayed acks, close-signal deadlines), so
// streams need no thread of their own. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace arrow_zerobus::emulator {

class Scheduler {
 public:
  using Clock = std::chrono::steady_clock;

  Scheduler() : thread_([this] { Run(); }) {}
  ~Scheduler() { Stop(); }

  // Runs `fn` on the timer thread at `when` (at once if it is past). Dropped after Stop().
  void At(Clock::time_point when, std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    queue_.push(Item{when, seq_++, std::move(fn)});
    cv_.notify_one();
  }

  // Drops pending work and joins the thread. Idempotent.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopped_ = true;
      queue_ = {};
      cv_.notify_one();
    }
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

 private:
  struct Item {
    Clock::time_point when;
    uint64_t seq;
    std::function<void()> fn;
    // Earliest first; equal times in insertion order.
    bool operator>(const Item& o) const {
      return when != o.when ? when > o.when : seq > o.seq;
    }
  };

  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopped_) {
      if (queue_.empty()) {
        cv_.wait(lock);
        continue;
      }
      auto when = queue_.top().when;
      if (Clock::now() < when) {
        cv_.wait_until(lock, when);
        continue;
      }
      auto fn = std::move(const_cast<Item&>(queue_.top()).fn);
      queue_.pop();
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> queue_;
  uint64_t seq_ = 0;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace arrow_zerobus::emulator
