#include "server/faults.h"

#include <algorithm>
#include <array>
#include <cmath>

#include <nlohmann/json.hpp>

#include "server/auth.h"

namespace arrow_zerobus::emulator {

namespace {

using json = nlohmann::json;

constexpr std::array<const char*, 17> kCodeNames = {
    "OK",       "CANCELLED",         "UNKNOWN",           "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",   "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};

arrow::Result<int64_t> NonNegativeInt(const json& v, std::string_view key) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0) {
    return arrow::Status::Invalid("fault '", key, "' must be a non-negative integer");
  }
  return v.get<int64_t>();
}

arrow::Result<double> NonNegativeNumber(const json& v, std::string_view key) {
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0) {
    return arrow::Status::Invalid("fault '", key, "' must be a non-negative number");
  }
  return v.get<double>();
}

}  // namespace

int64_t PartialAckFault::AckedOf(int64_t message_rows) const {
  int64_t acked = rows ? *rows
                       : static_cast<int64_t>(std::floor(fraction.value_or(0) *
                                                         static_cast<double>(message_rows)));
  return std::clamp<int64_t>(acked, 0, message_rows);
}

std::optional<int> ParseGrpcCode(std::string_view name) {
  std::string upper(name);
  for (char& c : upper) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  for (size_t i = 0; i < kCodeNames.size(); ++i) {
    if (upper == kCodeNames[i]) return static_cast<int>(i);
  }
  if (!upper.empty() && upper.size() <= 2 &&
      std::all_of(upper.begin(), upper.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int v = std::stoi(upper);
    if (v >= 0 && v <= 16) return v;
  }
  return std::nullopt;
}

arrow::Result<FaultRule> FaultRuleFromJson(const json& j) {
  if (!j.is_object()) return arrow::Status::Invalid("a fault rule must be a JSON object");
  FaultRule rule;
  for (const auto& [key, v] : j.items()) {
    if (key == "table") {
      if (!v.is_string()) return arrow::Status::Invalid("fault 'table' must be a string");
      ARROW_RETURN_NOT_OK(SplitTableName(v.get<std::string>()).status());
      rule.table = LowerAscii(v.get<std::string>());
    } else if (key == "end_stream") {
      if (!v.is_object()) return arrow::Status::Invalid("fault 'end_stream' must be an object");
      EndStreamFault f;
      for (const auto& [k, x] : v.items()) {
        if (k == "after_requests") {
          ARROW_ASSIGN_OR_RAISE(f.after_requests, NonNegativeInt(x, "end_stream.after_requests"));
        } else if (k == "code") {
          std::optional<int> code;
          if (x.is_number_integer()) {
            code = ParseGrpcCode(std::to_string(x.get<int64_t>()));
          } else if (x.is_string()) {
            code = ParseGrpcCode(x.get<std::string>());
          }
          if (!code || *code == 0) {
            return arrow::Status::Invalid(
                "fault 'end_stream.code' must name a non-OK gRPC status (e.g. \"UNAVAILABLE\" "
                "or 14)");
          }
          f.code = *code;
        } else if (k == "message") {
          if (!x.is_string()) {
            return arrow::Status::Invalid("fault 'end_stream.message' must be a string");
          }
          f.message = x.get<std::string>();
        } else {
          return arrow::Status::Invalid("unknown fault key 'end_stream.", k, "'");
        }
      }
      rule.end_stream = std::move(f);
    } else if (key == "close_signal") {
      if (!v.is_object()) return arrow::Status::Invalid("fault 'close_signal' must be an object");
      CloseSignalFault f;
      for (const auto& [k, x] : v.items()) {
        if (k == "after_requests") {
          ARROW_ASSIGN_OR_RAISE(f.after_requests,
                                NonNegativeInt(x, "close_signal.after_requests"));
        } else if (k == "duration_ms") {
          ARROW_ASSIGN_OR_RAISE(f.duration_ms, NonNegativeInt(x, "close_signal.duration_ms"));
        } else {
          return arrow::Status::Invalid("unknown fault key 'close_signal.", k, "'");
        }
      }
      rule.close_signal = f;
    } else if (key == "partial_ack") {
      if (!v.is_object()) return arrow::Status::Invalid("fault 'partial_ack' must be an object");
      PartialAckFault f;
      for (const auto& [k, x] : v.items()) {
        if (k == "after_messages") {
          ARROW_ASSIGN_OR_RAISE(f.after_messages, NonNegativeInt(x, "partial_ack.after_messages"));
          if (f.after_messages == 0) {
            return arrow::Status::Invalid("fault 'partial_ack.after_messages' must be at least 1");
          }
        } else if (k == "rows") {
          ARROW_ASSIGN_OR_RAISE(f.rows, NonNegativeInt(x, "partial_ack.rows"));
        } else if (k == "fraction") {
          ARROW_ASSIGN_OR_RAISE(f.fraction, NonNegativeNumber(x, "partial_ack.fraction"));
          if (*f.fraction > 1) {
            return arrow::Status::Invalid("fault 'partial_ack.fraction' must be between 0 and 1");
          }
        } else {
          return arrow::Status::Invalid("unknown fault key 'partial_ack.", k, "'");
        }
      }
      if (f.rows.has_value() == f.fraction.has_value()) {
        return arrow::Status::Invalid(
            "fault 'partial_ack' needs exactly one of 'rows' and 'fraction'");
      }
      rule.partial_ack = f;
    } else if (key == "ack_delay_ms") {
      ARROW_ASSIGN_OR_RAISE(rule.ack_delay_ms, NonNegativeInt(v, key));
    } else if (key == "withhold_acks") {
      if (!v.is_boolean()) return arrow::Status::Invalid("fault 'withhold_acks' must be a bool");
      rule.withhold_acks = v.get<bool>();
    } else if (key == "max_records_per_s") {
      ARROW_ASSIGN_OR_RAISE(rule.max_records_per_s, NonNegativeNumber(v, key));
    } else if (key == "max_bytes_per_s") {
      ARROW_ASSIGN_OR_RAISE(rule.max_bytes_per_s, NonNegativeNumber(v, key));
    } else if (key == "times") {
      ARROW_ASSIGN_OR_RAISE(rule.times, NonNegativeInt(v, key));
    } else {
      return arrow::Status::Invalid("unknown fault key '", key, "'");
    }
  }
  return rule;
}

json FaultRuleToJson(const FaultRule& rule) {
  json j = json::object();
  if (!rule.table.empty()) j["table"] = rule.table;
  if (rule.end_stream) {
    j["end_stream"] = {{"after_requests", rule.end_stream->after_requests},
                       {"code", kCodeNames[static_cast<size_t>(rule.end_stream->code)]},
                       {"message", rule.end_stream->message}};
  }
  if (rule.close_signal) {
    j["close_signal"] = {{"after_requests", rule.close_signal->after_requests},
                         {"duration_ms", rule.close_signal->duration_ms}};
  }
  if (rule.partial_ack) {
    json p = {{"after_messages", rule.partial_ack->after_messages}};
    if (rule.partial_ack->rows) p["rows"] = *rule.partial_ack->rows;
    if (rule.partial_ack->fraction) p["fraction"] = *rule.partial_ack->fraction;
    j["partial_ack"] = std::move(p);
  }
  if (rule.ack_delay_ms) j["ack_delay_ms"] = rule.ack_delay_ms;
  if (rule.withhold_acks) j["withhold_acks"] = true;
  if (rule.max_records_per_s > 0) j["max_records_per_s"] = rule.max_records_per_s;
  if (rule.max_bytes_per_s > 0) j["max_bytes_per_s"] = rule.max_bytes_per_s;
  if (rule.times) j["times"] = rule.times;
  return j;
}

int64_t FaultRegistry::Add(FaultRule rule) {
  int64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_id_++;
    rules_.push_back(Entry{id, std::move(rule)});
    version_.fetch_add(1, std::memory_order_acq_rel);
  }
  Changed();
  return id;
}

void FaultRegistry::Clear() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    rules_.clear();
    blocked_until_.clear();
    version_.fetch_add(1, std::memory_order_acq_rel);
  }
  Changed();
}

std::vector<std::pair<int64_t, FaultRule>> FaultRegistry::Rules() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<int64_t, FaultRule>> out;
  for (const auto& e : rules_) out.emplace_back(e.id, e.rule);
  return out;
}

void FaultRegistry::BlockCreation(std::string table, std::chrono::milliseconds duration) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    blocked_until_[LowerAscii(table)] = Clock::now() + duration;
    version_.fetch_add(1, std::memory_order_acq_rel);
  }
  Changed();
}

bool FaultRegistry::CreationBlocked(std::string_view table) {
  std::lock_guard<std::mutex> lock(mu_);
  auto now = Clock::now();
  for (const auto& [t, until] : blocked_until_) {
    if ((t.empty() || t == table) && now < until) {
      ++creations_refused_;
      return true;
    }
  }
  return false;
}

int64_t FaultRegistry::creations_refused() const {
  std::lock_guard<std::mutex> lock(mu_);
  return creations_refused_;
}

StreamFaults FaultRegistry::For(std::string_view table) const {
  std::lock_guard<std::mutex> lock(mu_);
  StreamFaults out;
  for (const auto& e : rules_) {
    const FaultRule& r = e.rule;
    if (!r.table.empty() && r.table != table) continue;
    bool used_up = r.times > 0 && e.fired >= r.times;
    if (r.end_stream && !out.end_stream && !used_up) {
      out.end_stream = r.end_stream;
      out.end_stream_rule = e.id;
    }
    if (r.close_signal && !out.close_signal && !used_up) {
      out.close_signal = r.close_signal;
      out.close_signal_rule = e.id;
    }
    if (r.partial_ack && !out.partial_ack && !used_up) {
      out.partial_ack = r.partial_ack;
      out.partial_ack_rule = e.id;
    }
    out.ack_delay_ms = std::max(out.ack_delay_ms, r.ack_delay_ms);
    out.withhold_acks = out.withhold_acks || r.withhold_acks;
    auto tighter = [](double current, double limit) {
      if (limit <= 0) return current;
      return current <= 0 ? limit : std::min(current, limit);
    };
    out.max_records_per_s = tighter(out.max_records_per_s, r.max_records_per_s);
    out.max_bytes_per_s = tighter(out.max_bytes_per_s, r.max_bytes_per_s);
  }
  return out;
}

bool FaultRegistry::Claim(int64_t rule_id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& e : rules_) {
    if (e.id != rule_id) continue;
    if (e.rule.times > 0 && e.fired >= e.rule.times) return false;
    ++e.fired;
    return true;
  }
  return false;
}

}  // namespace arrow_zerobus::emulator
