// The gRPC side: Zerobus.EphemeralStream implemented with the callback API (one
// ServerBidiReactor per RPC; see docs/emulator.md for why callback rather than async), plus the
// per-stream statistics the admin API shows.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "server/auth.h"
#include "server/faults.h"
#include "server/scheduler_internal.h"
#include "store/table_store.h"
#include "zerobus.grpc.pb.h"

namespace arrow_zerobus::emulator {

// Counters of one stream; written by its reactor, read by the admin API. Thread-safe.
struct StreamStats {
  std::string stream_id;
  std::string table;
  std::string record_type;
  std::chrono::system_clock::time_point opened_at;
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> rows{0};
  std::atomic<int64_t> bytes{0};
  std::atomic<int64_t> acks{0};             // ack messages sent
  std::atomic<int64_t> last_ack_offset{-1};
  std::atomic<int64_t> close_signals{0};
  std::atomic<bool> open{true};
  mutable std::mutex mu;
  int final_code = 0;  // guarded by mu, valid once !open
  std::string final_message;
};

// Thread-safe.
class StatsRegistry {
 public:
  void Add(std::shared_ptr<StreamStats> stream);
  // {"tables": [...], "streams": [...]} (the caller adds server-wide fields).
  nlohmann::json ToJson(const TableStore& store) const;
  int64_t open_streams() const { return open_.load(); }
  void StreamOpened() { open_.fetch_add(1); }
  void StreamClosed() { open_.fetch_sub(1); }

 private:
  mutable std::mutex mu_;
  std::list<std::shared_ptr<StreamStats>> streams_;  // newest last; closed ones trimmed
  std::atomic<int64_t> open_{0};
};

struct ServiceContext {
  std::shared_ptr<TableStore> store;
  TokenStore* tokens = nullptr;
  FaultRegistry* faults = nullptr;
  Scheduler* scheduler = nullptr;
  StatsRegistry* stats = nullptr;
  bool no_auth = false;
  int64_t max_message_bytes = 10 * 1024 * 1024;
  int64_t max_pending_bytes_per_stream = 64 * 1024 * 1024;
  // One line per stream opened / ended (or refused); nullptr = silent. Called from gRPC threads.
  std::function<void(const std::string&)> log;
};

class StreamReactor;

// Thread-safe. Must outlive the grpc::Server it is registered with.
class ZerobusService final : public databricks::zerobus::Zerobus::CallbackService {
 public:
  explicit ZerobusService(ServiceContext context) : context_(std::move(context)) {}

  grpc::ServerBidiReactor<databricks::zerobus::EphemeralStreamRequest,
                          databricks::zerobus::EphemeralStreamResponse>*
  EphemeralStream(grpc::CallbackServerContext* context) override;

  // Re-evaluates every open stream's acks (after faults changed, e.g. withheld acks released).
  void KickAll();

  // Reactors register themselves while their RPC runs.
  void Register(const std::shared_ptr<StreamReactor>& reactor);
  void Unregister(const StreamReactor* reactor);

 private:
  ServiceContext context_;
  std::mutex mu_;
  std::list<std::weak_ptr<StreamReactor>> live_;
};

}  // namespace arrow_zerobus::emulator
