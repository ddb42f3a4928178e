// Fault injection for the emulator: rules set from the command line or POST /admin/faults that
// make streams fail the ways the real service can, so clients can be tested against them.
//
// A rule optionally targets one table; a stream evaluates the rules of its table live (a rule
// added while a stream runs applies to it from its next request on).
//
// Thread-safety: FaultRegistry is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>
#include <nlohmann/json_fwd.hpp>

namespace arrow_zerobus::emulator {

// End the stream with `code` (grpc::StatusCode value) and `message` once `after_requests`
// ingest requests have been received and appended (0: right after create_stream answers).
struct EndStreamFault {
  int64_t after_requests = 0;
  int code = 14;  // UNAVAILABLE
  std::string message = "injected fault";
};

// Send CloseStreamSignal{duration} once `after_requests` ingest requests have been received;
// the server ends the RPC with OK when `duration_ms` has passed.
struct CloseSignalFault {
  int64_t after_requests = 0;
  int64_t duration_ms = 1000;
};

// Arrow Flight only (its acks count rows): once the data message at index `after_messages` - 1
// is durable, acknowledge only `rows` of its rows (or floor(`fraction` * its rows); at most all
// of them), then end the DoPut UNAVAILABLE. The whole message is in the table: the ack merely
// claims less than is durable, as from a server that acked late.
struct PartialAckFault {
  int64_t after_messages = 1;
  std::optional<int64_t> rows;
  std::optional<double> fraction;

  // The rows acknowledged of a message holding `message_rows`.
  int64_t AckedOf(int64_t message_rows) const;
};

struct FaultRule {
  // Three-part table name (case-insensitive) the rule applies to; empty = every table.
  std::string table;
  std::optional<EndStreamFault> end_stream;
  std::optional<CloseSignalFault> close_signal;
  std::optional<PartialAckFault> partial_ack;
  // Acks go out this long after the rows are durable.
  int64_t ack_delay_ms = 0;
  // No acks at all while the rule is in force (withheld acks are sent once it is removed).
  bool withhold_acks = false;
  // Per-stream quota: acks are paced so a stream is acknowledged at most this many records /
  // wire bytes per second (0 = no limit).
  double max_records_per_s = 0;
  double max_bytes_per_s = 0;
  // How many streams end_stream / close_signal / partial_ack fire on before the rule stops firing them
  // (0 = every stream).
  int64_t times = 0;
};

// The faults in force for one stream at one moment (the merge of the matching rules).
struct StreamFaults {
  // Rule ids, so a `times`-limited rule is claimed once per stream.
  std::optional<EndStreamFault> end_stream;
  int64_t end_stream_rule = -1;
  std::optional<CloseSignalFault> close_signal;
  int64_t close_signal_rule = -1;
  std::optional<PartialAckFault> partial_ack;
  int64_t partial_ack_rule = -1;
  int64_t ack_delay_ms = 0;
  bool withhold_acks = false;
  double max_records_per_s = 0;
  double max_bytes_per_s = 0;
};

// Parses one rule from JSON (the POST /admin/faults body, see docs/emulator.md):
//   {"table": "c.s.t", "end_stream": {"after_requests": 3, "code": "UNAVAILABLE" | 14,
//    "message": "..."}, "close_signal": {"after_requests": 2, "duration_ms": 500},
//    "partial_ack": {"after_messages": 2, "rows": 10 | "fraction": 0.5},
//    "ack_delay_ms": 200, "withhold_acks": true, "max_records_per_s": 1000,
//    "max_bytes_per_s": 1e6, "times": 1}
// Unknown keys and bad values are Invalid naming the key.
arrow::Result<FaultRule> FaultRuleFromJson(const nlohmann::json& j);
nlohmann::json FaultRuleToJson(const FaultRule& rule);

// grpc::StatusCode value for "UNAVAILABLE", "unavailable", "14", ...
std::optional<int> ParseGrpcCode(std::string_view name);

class FaultRegistry {
 public:
  using Clock = std::chrono::steady_clock;

  // Returns the rule's id.
  int64_t Add(FaultRule rule);
  // Removes every rule and any creation block.
  void Clear();
  std::vector<std::pair<int64_t, FaultRule>> Rules() const;

  // Refuse create_stream for `table` (empty: all tables) for `duration`.
  void BlockCreation(std::string table, std::chrono::milliseconds duration);
  // Whether a stream opening now on `table` is refused; each refusal is counted.
  bool CreationBlocked(std::string_view table);
  // How many stream openings a creation block refused so far (tests wait on it instead of
  // guessing how long the client takes to reach the server).
  int64_t creations_refused() const;

  // The merged faults for a stream on `table` (lower-cased full name).
  StreamFaults For(std::string_view table) const;
  // Takes one firing of a `times`-limited rule; false when the rule is used up or gone.
  bool Claim(int64_t rule_id);

  // Increases on every change, so streams re-read their faults only when something changed.
  uint64_t version() const { return version_.load(std::memory_order_acquire); }

  // Called (without the lock held) after every change, e.g. to release withheld acks at once.
  // Set before the registry is shared.
  void SetChangeListener(std::function<void()> listener) { listener_ = std::move(listener); }

 private:
  struct Entry {
    int64_t id;
    FaultRule rule;
    int64_t fired = 0;
  };
  mutable std::mutex mu_;
  std::vector<Entry> rules_;
  std::map<std::string, Clock::time_point> blocked_until_;  // "" = all tables
  int64_t creations_refused_ = 0;
  int64_t next_id_ = 1;
  std::atomic<uint64_t> version_{1};
  std::function<void()> listener_;

  void Changed() {
    if (listener_) listener_();
  }
};

}  // namespace arrow_zerobus::emulator
