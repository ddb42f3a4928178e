// ZerobusWrapper: encoders per schema, stream pools per descriptor (streams_per_table slots each,
// opened lazily, least in-flight first), per-row accounting over chunk futures, retries of
// unacknowledged chunks on fresh streams, per-wrapper cool-downs, debug files and telemetry.
//
// Locks: `Impl::mu` guards the caches, the cool-down and the lifecycle; each slot has its own
// mutex (held while choosing or replacing its stream, never while waiting for acks or while a
// stream opens); StreamHandle::mu guards the requests taken back from a failed stream. No lock is
// held while a send waits for its futures, sleeps between attempts or opens a stream.

#include "arrow_zerobus/wrapper.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <functional>
#include <random>
#include <thread>
#include <unordered_map>

#include <arrow/io/interfaces.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>
#include <arrow/util/byte_size.h>
#include <arrow/util/thread_pool.h>

#include "arrow_zerobus/auth.h"
#include "arrow_zerobus/encode.h"
#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/flight_schema.h"
#include "arrow_zerobus/log.h"
#include "common/retry_policy.h"
#include "wrapper/json_rows_internal.h"
#include "wrapper/wrapper_internal.h"

namespace arrow_zerobus {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Encoders kept per wrapper; beyond this the least recently used is dropped, and with it the
// stream pool no cached encoder uses any more (its streams closed), so a feed of ever-new schemas
// grows neither memory nor threads, channels and sockets without bound.
constexpr size_t kMaxCachedEncoders = 64;

double UnitRandom() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

int64_t JitterMs(int64_t max_ms) {
  if (max_ms <= 0) return 0;
  return static_cast<int64_t>(UnitRandom() * static_cast<double>(max_ms + 1));
}

std::string FormatPercent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", v * 100.0);
  return buf;
}

// One opened stream. After its final failure the requests it never acknowledged are taken back
// once and kept here (their buffers stay alive, so their addresses identify them) to tell each
// batch how often its chunks went on the wire.
struct StreamHandle {
  explicit StreamHandle(std::unique_ptr<ZerobusStream> s) : stream(std::move(s)) {}

  // Wire sends of the request whose bytes start at `data` (0 when it never went out).
  int32_t SendsOf(const char* data) {
    std::lock_guard<std::mutex> lk(mu);
    TakeLocked();
    auto it = sends.find(data);
    return it == sends.end() ? 0 : it->second;
  }
  // Arrow Flight: the request numbered `seq` as taken back (null when it was acked or never
  // admitted). Valid as long as the handle.
  const UnackedRequest* UnackedOf(int64_t seq) {
    std::lock_guard<std::mutex> lk(mu);
    TakeLocked();
    auto it = by_seq.find(seq);
    return it == by_seq.end() ? nullptr : &unacked[it->second];
  }
  void TakeLocked() {
    if (taken) return;
    taken = true;
    unacked = stream->TakeUnacked();
    for (size_t i = 0; i < unacked.size(); ++i) {
      if (unacked[i].rows) {
        by_seq[unacked[i].seq] = i;
      } else {
        sends[unacked[i].bytes.data()] = unacked[i].sends;
      }
    }
  }

  std::unique_ptr<ZerobusStream> stream;
  std::mutex mu;
  bool taken = false;
  std::vector<UnackedRequest> unacked;
  std::unordered_map<const char*, int32_t> sends;
  std::unordered_map<int64_t, size_t> by_seq;  // index into unacked
};

struct StreamSlot {
  std::mutex mu;
  std::condition_variable cv;  // waits for an open in progress
  std::shared_ptr<StreamHandle> handle;
  bool opening = false;
  int64_t open_generation = 0;
  arrow::Status last_open_error;
  std::atomic<int64_t> inflight_bytes{0};
  // Acks of the streams this slot held before the current one.
  int64_t retired_requests_acked = 0;
  int64_t retired_records_acked = 0;
};

struct StreamPool {
  DescriptorProto descriptor;
  std::shared_ptr<arrow::Schema> arrow_schema;  // Arrow Flight pools: the streams' schema
  std::vector<std::unique_ptr<StreamSlot>> slots;
  std::atomic<uint64_t> next{0};  // rotates the tie-break among equally loaded slots
  // Sends (and encoders being planned) using the pool; guarded by Impl::mu. A pool is evicted
  // only at zero.
  int leases = 0;
};

struct EncoderEntry {
  std::shared_ptr<arrow::Schema> schema;
  std::shared_ptr<RecordBatchEncoder> encoder;
  std::shared_ptr<StreamPool> pool;  // null when the writer is disabled
  // record_type json: transcodes the encoded rows (null for proto).
  std::shared_ptr<const internal::JsonRowsConverter> json;
  // transport kArrowFlight (no encoder): the table the rows are cast for and its Flight schema.
  std::shared_ptr<const FlightTarget> flight;
};

// Runs tasks at a given time on Arrow's I/O executor (a retry may block opening a stream, and must
// hold up neither the others nor a stream's worker). One thread, started on first use.
class RetryTimer {
 public:
  ~RetryTimer() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    // Tasks still queued (none after Shutdown) run now, so no send is left unfinished.
    for (auto& [when, task] : queue_) task();
  }

  void RunAt(Clock::time_point when, std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      queue_.emplace(when, std::move(task));
      if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
    }
    cv_.notify_all();
  }

  // Every queued task becomes due now (shutdown: the tasks see it and finish their sends).
  void FireAll() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      std::multimap<Clock::time_point, std::function<void()>> now;
      for (auto& [when, task] : queue_) now.emplace(Clock::time_point::min(), std::move(task));
      queue_ = std::move(now);
    }
    cv_.notify_all();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lk(mu_);
    while (!stop_) {
      if (queue_.empty()) {
        cv_.wait(lk);
        continue;
      }
      auto first = queue_.begin();
      if (first->first > Clock::now()) {
        cv_.wait_until(lk, first->first);
        continue;
      }
      auto task = std::make_shared<std::function<void()>>(std::move(first->second));
      queue_.erase(first);
      lk.unlock();
      if (!arrow::io::default_io_context().executor()->Spawn([task] { (*task)(); }).ok()) {
        (*task)();
      }
      lk.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<Clock::time_point, std::function<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

// A run of encoded records that travels as one request, and how often it went on the wire.
struct Chunk {
  RecordRange range;
  int64_t bytes = 0;
  int32_t wire_sends = 0;
  int64_t seq = -1;  // Arrow Flight: the piece's request number on the attempt's stream
};

}  // namespace

struct ZerobusWrapper::Impl : std::enable_shared_from_this<ZerobusWrapper::Impl> {
  explicit Impl(WrapperConfiguration c)
      : config(std::move(c)),
        retry_prototype(config.retry_max_attempts, milliseconds(config.send_timeout_ms)),
        backoff_prototype(milliseconds(config.retry_base_delay_ms),
                          milliseconds(config.retry_max_delay_ms), 2.0, 0.0) {}
  ~Impl() { (void)Shutdown(); }

  // ---- configuration and parts (set by Make, then read-only) ---------------------------------
  WrapperConfiguration config;
  // Cloned per send: retry_max_attempts within send_timeout_ms, full-jitter exponential backoff.
  const internal::AttemptsAndTimeRetryPolicy retry_prototype;
  const internal::ExponentialBackoffPolicy backoff_prototype;
  std::shared_ptr<HeadersProvider> headers;  // null without credentials
  std::unique_ptr<DebugWriter> debug;
  std::unique_ptr<Telemetry> telemetry;

  // ---- guarded by mu ---------------------------------------------------------------------------
  mutable std::mutex mu;
  std::condition_variable cv;  // lifecycle changes; wakes sleeping retries on shutdown
  std::vector<EncoderEntry> encoders;
  std::map<std::string, std::shared_ptr<StreamPool>> pools;  // by serialized descriptor
  Clock::time_point cooldown_until{};
  std::string cooldown_reason;
  bool shutting_down = false;
  bool shutdown_running = false;
  std::optional<arrow::Status> shutdown_status;
  int active_sends = 0;
  // Sends started and not finished (Flush waits for them), by send id.
  std::map<uint64_t, arrow::Future<TransmissionResult>> sends_in_progress;
  uint64_t next_send_id = 0;

  // Retries waiting out their backoff (queued under `mu`, see Decide).
  RetryTimer retry_timer;

  // Unity Catalog descriptor, fetched once (its own lock: the fetch is network I/O).
  std::mutex uc_mu;
  std::optional<DescriptorProto> uc_descriptor;
  std::shared_ptr<const FlightTarget> uc_flight_target;  // Arrow Flight with kUnityCatalog

  // ---- counters (guarded by stats_mu) ----------------------------------------------------------
  mutable std::mutex stats_mu;
  WrapperStats counters;                // scalar fields only
  int64_t retired_records_replayed = 0;  // by streams no longer in a slot
  int64_t wrapper_replays = 0;           // re-sends of chunks that had been on the wire

  // ---- lifecycle -------------------------------------------------------------------------------

  arrow::Status Shutdown() {
    {
      std::unique_lock<std::mutex> lk(mu);
      if (shutdown_status) return *shutdown_status;
      if (shutdown_running) {
        cv.wait(lk, [&] { return shutdown_status.has_value(); });
        return *shutdown_status;
      }
      shutdown_running = true;
      shutting_down = true;
      cv.notify_all();
      lk.unlock();
      retry_timer.FireAll();  // retries waiting for their backoff give up now
      lk.lock();
      cv.wait(lk, [&] { return active_sends == 0; });
    }
    arrow::Status first;
    auto keep = [&first](arrow::Status st) {
      if (first.ok() && !st.ok()) first = std::move(st);
    };
    for (auto& handle : TakeAllHandles()) keep(handle->stream->Close());
    if (debug) keep(debug->Close());
    if (telemetry) {
      telemetry->SetInFlight(0, 0);
      telemetry->Shutdown();  // one last export
    }
    std::lock_guard<std::mutex> lk(mu);
    shutdown_status = first;
    cv.notify_all();
    return first;
  }

  // Empties every slot (shutdown), keeping their counters.
  std::vector<std::shared_ptr<StreamHandle>> TakeAllHandles() {
    std::vector<std::shared_ptr<StreamPool>> all;
    {
      std::lock_guard<std::mutex> lk(mu);
      for (auto& [key, pool] : pools) all.push_back(pool);
    }
    std::vector<std::shared_ptr<StreamHandle>> out;
    for (auto& pool : all) {
      for (auto& slot : pool->slots) {
        std::lock_guard<std::mutex> lk(slot->mu);
        if (!slot->handle) continue;
        out.push_back(slot->handle);
        RetireLocked(*slot, /*failed=*/false);
      }
    }
    return out;
  }

  std::vector<std::shared_ptr<StreamHandle>> LiveHandles() const {
    std::vector<std::shared_ptr<StreamPool>> all;
    {
      std::lock_guard<std::mutex> lk(mu);
      for (const auto& [key, pool] : pools) all.push_back(pool);
    }
    std::vector<std::shared_ptr<StreamHandle>> out;
    for (auto& pool : all) {
      for (auto& slot : pool->slots) {
        std::lock_guard<std::mutex> lk(slot->mu);
        if (slot->handle) out.push_back(slot->handle);
      }
    }
    return out;
  }

  arrow::Status Flush() {
    {
      std::lock_guard<std::mutex> lk(mu);
      if (shutdown_status) return arrow::Status::OK();  // everything was flushed by Shutdown
    }
    arrow::Status first;
    // Every send started before this call gets its outcome (including sends whose requests an
    // I/O thread is still handing to a stream), within flush_timeout_ms.
    std::vector<arrow::Future<TransmissionResult>> started;
    {
      std::lock_guard<std::mutex> lk(mu);
      started.reserve(sends_in_progress.size());
      for (const auto& [id, f] : sends_in_progress) started.push_back(f);
    }
    const auto deadline = Clock::now() + milliseconds(std::clamp<int64_t>(
                                             config.flush_timeout_ms, 0, int64_t{1} << 40));
    for (size_t i = 0; i < started.size(); ++i) {
      const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
      if (!started[i].Wait(std::max(0.0, left))) {
        first = MakeError(ErrorKind::kTransmission, true,
                          "flush: " + std::to_string(started.size() - i) +
                              " send(s) still in progress after flush_timeout_ms (" +
                              std::to_string(config.flush_timeout_ms) + " ms)");
        break;
      }
    }
    for (auto& handle : LiveHandles()) {
      const StreamState state = handle->stream->state();
      if (state == StreamState::kFailed || state == StreamState::kClosed) continue;
      arrow::Status st = handle->stream->Flush(milliseconds(config.flush_timeout_ms));
      if (first.ok() && !st.ok()) first = std::move(st);
    }
    if (debug) {
      arrow::Status st = debug->Flush();
      if (first.ok() && !st.ok()) first = std::move(st);
    }
    return first;
  }

  // ---- cool-downs ------------------------------------------------------------------------------

  std::optional<CooldownInfo> ActiveCooldown() const {
    std::lock_guard<std::mutex> lk(mu);
    const auto now = Clock::now();
    if (now >= cooldown_until) return std::nullopt;
    CooldownInfo info;
    info.reason = cooldown_reason;
    // Round up so a cool-down in force never reports 0 ms left.
    info.remaining = std::chrono::ceil<milliseconds>(cooldown_until - now);
    return info;
  }

  void StartCooldown(int64_t base_ms, std::string reason) {
    const auto until = Clock::now() + milliseconds(base_ms + JitterMs(config.cooldown_jitter_ms));
    {
      std::lock_guard<std::mutex> lk(mu);
      if (until <= cooldown_until) return;  // a longer one is already in force
      cooldown_until = until;
      cooldown_reason = std::move(reason);
    }
    std::lock_guard<std::mutex> lk(stats_mu);
    ++counters.cooldowns_started;
  }

  arrow::Status CooldownError(const CooldownInfo& info) const {
    return MakeError(ErrorKind::kTransmission, true,
                     "cool-down in force after " + info.reason + ": send_batch refused for " +
                         std::to_string(info.remaining.count()) +
                         " ms more (no row was sent)");
  }

  // ---- encoders and pools ----------------------------------------------------------------------

  UnityCatalogOptions UnityCatalogRequest() const {
    UnityCatalogOptions o = UnityCatalogOptions::Defaults();
    o.unity_catalog_url = config.unity_catalog_url.value_or("");
    o.table_name = config.table_name;
    o.headers_provider = headers;
    o.timeout = milliseconds(config.stream_open_timeout_ms);
    o.ca_file = config.ca_file.value_or("");
    return o;
  }

  arrow::Result<DescriptorProto> UnityCatalogDescriptor() {
    std::lock_guard<std::mutex> lk(uc_mu);
    if (uc_descriptor) return *uc_descriptor;
    ARROW_ASSIGN_OR_RAISE(DescriptorProto d, FetchUnityCatalogDescriptor(UnityCatalogRequest()));
    uc_descriptor = d;
    return d;
  }

  // Arrow Flight: the table batches of `schema` land in: Unity Catalog's (fetched once), or the
  // one the batch's schema maps to.
  arrow::Result<std::shared_ptr<const FlightTarget>> FlightTargetFor(const arrow::Schema& schema) {
    if (config.descriptor_source != DescriptorSource::kUnityCatalog) {
      ARROW_ASSIGN_OR_RAISE(auto target, FlightTargetForArrowSchema(schema));
      return std::make_shared<const FlightTarget>(std::move(target));
    }
    std::lock_guard<std::mutex> lk(uc_mu);
    if (uc_flight_target) return uc_flight_target;
    ARROW_ASSIGN_OR_RAISE(auto table_schema,
                          internal::FetchUnityCatalogTableSchema(UnityCatalogRequest()));
    ARROW_ASSIGN_OR_RAISE(auto target, FlightTargetForTableSchema(std::move(table_schema)));
    uc_flight_target = std::make_shared<const FlightTarget>(std::move(target));
    return uc_flight_target;
  }

  // The pool for `descriptor`, with a lease taken (so it is not evicted while the caller
  // finishes planning); the caller gives the lease back or keeps it for a send.
  std::shared_ptr<StreamPool> LeasePool(const DescriptorProto& descriptor,
                                        std::shared_ptr<arrow::Schema> arrow_schema = nullptr) {
    std::string key = arrow_schema ? "arrow:" + arrow_schema->ToString(/*show_metadata=*/true)
                                   : descriptor.SerializeAsString();
    std::lock_guard<std::mutex> lk(mu);
    auto& pool = pools[key];
    if (!pool) {
      pool = std::make_shared<StreamPool>();
      pool->descriptor = descriptor;
      pool->arrow_schema = std::move(arrow_schema);
      for (int32_t i = 0; i < config.streams_per_table; ++i) {
        pool->slots.push_back(std::make_unique<StreamSlot>());
      }
    }
    ++pool->leases;
    return pool;
  }

  // The cached entry for `schema` (most recently used moves to the back), with a lease on its
  // pool when `lease`. Called with mu held.
  std::optional<EncoderEntry> FindEncoderLocked(const arrow::Schema& schema, const void* same,
                                                bool lease) {
    for (size_t i = 0; i < encoders.size(); ++i) {
      if (encoders[i].schema.get() != same &&
          !encoders[i].schema->Equals(schema, /*check_metadata=*/false)) {
        continue;
      }
      std::rotate(encoders.begin() + static_cast<std::ptrdiff_t>(i),
                  encoders.begin() + static_cast<std::ptrdiff_t>(i) + 1, encoders.end());
      EncoderEntry e = encoders.back();
      if (lease && e.pool) ++e.pool->leases;
      return e;
    }
    return std::nullopt;
  }

  // Pools no cached encoder uses and no send holds: out of the map, to be closed by the caller.
  std::vector<std::shared_ptr<StreamPool>> TakeIdlePoolsLocked() {
    std::vector<std::shared_ptr<StreamPool>> idle;
    for (auto it = pools.begin(); it != pools.end();) {
      const bool used = it->second->leases > 0 ||
                        std::any_of(encoders.begin(), encoders.end(),
                                    [&](const EncoderEntry& e) { return e.pool == it->second; });
      if (used) {
        ++it;
        continue;
      }
      idle.push_back(it->second);
      it = pools.erase(it);
    }
    return idle;
  }

  // Closes the streams of evicted pools (nothing is in flight on them: no send holds a lease).
  void CloseEvicted(const std::vector<std::shared_ptr<StreamPool>>& evicted) {
    for (const auto& pool : evicted) {
      for (auto& slot : pool->slots) {
        std::shared_ptr<StreamHandle> handle;
        {
          std::lock_guard<std::mutex> lk(slot->mu);
          if (!slot->handle) continue;
          handle = slot->handle;
          RetireLocked(*slot, /*failed=*/false);
        }
        (void)handle->stream->Close();
      }
    }
    if (!evicted.empty()) {
      std::lock_guard<std::mutex> lk(stats_mu);
      counters.pools_evicted += static_cast<int64_t>(evicted.size());
    }
  }

  // The encoder for `schema` (planned once, cached); with `lease`, its pool is leased to the
  // caller (a send), who gives the lease back when the send completes (Complete).
  arrow::Result<EncoderEntry> EncoderFor(const std::shared_ptr<arrow::Schema>& schema,
                                         bool lease = false) {
    {
      std::lock_guard<std::mutex> lk(mu);
      if (auto e = FindEncoderLocked(*schema, schema.get(), lease)) return *e;
    }
    // Plan outside the lock: binding a wide schema takes a while.
    std::unique_ptr<RecordBatchEncoder> encoder;
    std::shared_ptr<const FlightTarget> flight;
    if (config.effective_transport() == Transport::kArrowFlight) {
      ARROW_ASSIGN_OR_RAISE(flight, FlightTargetFor(*schema));
    } else switch (config.descriptor_source) {
      case DescriptorSource::kArrowSchema: {
        ARROW_ASSIGN_OR_RAISE(encoder, RecordBatchEncoder::Make(schema));
        break;
      }
      case DescriptorSource::kGiven: {
        ARROW_ASSIGN_OR_RAISE(encoder, RecordBatchEncoder::Make(schema, *config.descriptor));
        break;
      }
      case DescriptorSource::kUnityCatalog: {
        ARROW_ASSIGN_OR_RAISE(DescriptorProto d, UnityCatalogDescriptor());
        ARROW_ASSIGN_OR_RAISE(encoder, RecordBatchEncoder::Make(schema, d));
        break;
      }
    }
    EncoderEntry entry;
    entry.schema = schema;
    entry.encoder = std::shared_ptr<RecordBatchEncoder>(std::move(encoder));
    entry.flight = flight;
    if (!config.zerobus_writer_disabled && flight) {
      entry.pool = LeasePool(DescriptorProto(), flight->flight_schema);
    } else if (!config.zerobus_writer_disabled) {
      if (config.effective_transport() == Transport::kJson) {
        ARROW_ASSIGN_OR_RAISE(entry.json,
                              internal::JsonRowsConverter::Make(entry.encoder->descriptor()));
      }
      entry.pool = LeasePool(entry.encoder->descriptor());
    }
    std::vector<std::shared_ptr<StreamPool>> evicted;
    {
      std::lock_guard<std::mutex> lk(mu);
      if (auto e = FindEncoderLocked(*schema, schema.get(), lease)) {  // a racing planner won
        if (entry.pool) --entry.pool->leases;
        evicted = TakeIdlePoolsLocked();
        entry = *e;
      } else {
        if (encoders.size() >= kMaxCachedEncoders) encoders.erase(encoders.begin());
        encoders.push_back(entry);
        if (entry.pool && !lease) --entry.pool->leases;
        evicted = TakeIdlePoolsLocked();
      }
    }
    CloseEvicted(evicted);
    return entry;
  }

  // ---- streams ---------------------------------------------------------------------------------

  StreamOptions StreamOptionsFor(const DescriptorProto& descriptor,
                                 internal::Deadline deadline) const {
    StreamOptions o = StreamOptions::Defaults();
    o.open_deadline = deadline.at();
    o.endpoint = config.endpoint;
    o.table_name = config.table_name;
    // JSON streams carry no descriptor: the table must exist (Zerobus checks the rows against it).
    o.record_type = config.effective_transport() == Transport::kJson ? RecordType::kJson
                                                                      : RecordType::kProto;
    o.descriptor = descriptor;
    o.headers_provider = headers;
    o.application_name = config.application_name.value_or("");
    o.ca_file = config.ca_file.value_or("");
    o.max_inflight_requests = config.max_inflight_requests;
    o.max_inflight_bytes = config.max_inflight_bytes;
    o.when_full = config.when_inflight_full == InFlightFullPolicy::kReject ? FullPolicy::kReject
                                                                           : FullPolicy::kBlock;
    o.block_timeout = milliseconds(config.flush_timeout_ms);
    o.recovery = true;
    o.recovery_timeout = milliseconds(config.stream_open_timeout_ms);
    o.recovery_backoff = milliseconds(config.recovery_backoff_ms);
    o.recovery_backoff_max =
        milliseconds(std::max(config.recovery_backoff_ms, config.retry_max_delay_ms));
    o.recovery_retries = config.recovery_retries;
    o.server_lack_of_ack_timeout = milliseconds(config.ack_timeout_ms);
    o.flush_timeout = milliseconds(config.flush_timeout_ms);
    return o;
  }

  // Takes the stream out of its slot, keeping its counters. Called with slot.mu held; the
  // handle itself is released by the caller's copy (the stream may take a moment to stop).
  void RetireLocked(StreamSlot& slot, bool failed) {
    const StreamStats s = slot.handle->stream->stats();
    slot.retired_requests_acked += s.requests_acked;
    slot.retired_records_acked += s.records_acked;
    slot.handle.reset();
    std::lock_guard<std::mutex> lk(stats_mu);
    retired_records_replayed += s.records_replayed;
    if (failed) ++counters.streams_failed;
  }

  StreamSlot& ChooseSlot(StreamPool& pool) {
    const size_t n = pool.slots.size();
    const size_t start = static_cast<size_t>(pool.next.fetch_add(1) % n);
    size_t best = start;
    int64_t best_load = pool.slots[start]->inflight_bytes.load();
    for (size_t k = 1; k < n; ++k) {
      const size_t i = (start + k) % n;
      const int64_t load = pool.slots[i]->inflight_bytes.load();
      if (load < best_load) {
        best = i;
        best_load = load;
      }
    }
    return *pool.slots[best];
  }

  // A usable stream in `slot`, opening one if needed. Only one sender opens a slot's stream at a
  // time; the others wait for it (without holding the lock while it opens) and share its error.
  // Gives up at `deadline` (the send's budget), also while another sender opens the stream.
  arrow::Result<std::shared_ptr<StreamHandle>> Acquire(StreamPool& pool, StreamSlot& slot,
                                                       internal::Deadline deadline) {
    std::shared_ptr<StreamHandle> dropped;  // released after the lock
    std::unique_lock<std::mutex> lk(slot.mu);
    const int64_t generation = slot.open_generation;
    while (true) {
      if (slot.handle) {
        const StreamState state = slot.handle->stream->state();
        if (state != StreamState::kFailed && state != StreamState::kClosed) return slot.handle;
        dropped = slot.handle;
        RetireLocked(slot, state == StreamState::kFailed);
      }
      if (slot.opening) {
        if (!slot.cv.wait_until(lk, deadline.at(), [&] { return !slot.opening; })) {
          return MakeError(ErrorKind::kConnection, true,
                           "the send's time budget ended while another send was opening the "
                           "stream to " + config.table_name);
        }
        if (slot.open_generation != generation && !slot.last_open_error.ok()) {
          return slot.last_open_error;
        }
        continue;
      }
      slot.opening = true;
      lk.unlock();
      StreamOptions options = StreamOptionsFor(pool.descriptor, deadline);
      if (pool.arrow_schema) {
        options.record_type = RecordType::kArrow;
        options.descriptor.reset();
        options.arrow_schema = pool.arrow_schema;
        options.ipc_compression = config.ipc_compression;
      }
      auto opened = ZerobusStream::Open(std::move(options));
      lk.lock();
      slot.opening = false;
      ++slot.open_generation;
      slot.cv.notify_all();
      std::lock_guard<std::mutex> stats_lock(stats_mu);
      if (!opened.ok()) {
        slot.last_open_error = opened.status();
        ++counters.stream_open_failures;
        return opened.status();
      }
      slot.last_open_error = arrow::Status::OK();
      ++counters.streams_opened;
      slot.handle = std::make_shared<StreamHandle>(std::move(*opened));
      return slot.handle;
    }
  }

  // Drops `handle` from `slot` if it failed and is still there, so the next send opens a fresh
  // stream.
  void RetireIfFailed(StreamSlot& slot, const std::shared_ptr<StreamHandle>& handle) {
    std::shared_ptr<StreamHandle> dropped;
    std::lock_guard<std::mutex> lk(slot.mu);
    if (slot.handle != handle) return;
    if (handle->stream->state() != StreamState::kFailed) return;
    dropped = slot.handle;
    RetireLocked(slot, /*failed=*/true);
  }

  // ---- send_batch ------------------------------------------------------------------------------

  struct SendOutcome {
    TransmissionResult result;
    int64_t replayed = 0;        // records that went on the wire again
    int64_t wire_copies = 0;     // row copies that went on the wire, first sends included
    int64_t rows_sent_more_than_once = 0;
    int64_t resent_rows = 0;     // rows sent again by the wrapper after a stream failed
    int64_t wrapper_replays = 0;  // of those, rows whose request had been on the wire
    int64_t transmission_failed = 0;  // failed rows that were not conversion failures
    bool refused_in_cooldown = false;
  };

  // One send in progress: its encoded rows, per-row outcomes so far, and the attempt in flight.
  // Heap-allocated and shared by the ack callbacks; the attempt fields are touched by one
  // thread at a time (the submitter, then the thread that completes the last ack).
  struct SendState {
    std::shared_ptr<Impl> impl;  // the wrapper lives until its sends finish
    uint64_t id = 0;             // key in sends_in_progress
    bool leased = false;         // holds a lease on entry.pool
    arrow::Future<TransmissionResult> future = arrow::Future<TransmissionResult>::Make();
    std::chrono::system_clock::time_point wall_start;
    Clock::time_point start;
    SendOutcome out;
    int64_t n = 0;
    EncoderEntry entry;
    EncodedBatch encoded;
    EncodedBatch json_rows;
    const EncodedBatch* wire = nullptr;  // &encoded or &json_rows
    // Arrow Flight: the rows cast to the stream's schema (encoded.source_rows maps them back).
    std::shared_ptr<arrow::RecordBatch> flight_rows;
    std::vector<FailedRow> failed;
    std::vector<int64_t> successful;
    std::vector<Chunk> pending;   // not acknowledged yet
    std::vector<Chunk> finished;  // acknowledged
    arrow::Status last_error;
    // The first attempt's failure: when a later attempt is only cut short by the time budget,
    // this is the cause a person needs (a refused connection, say).
    arrow::Status first_error;
    int32_t attempt = 0;
    int64_t bytes_sent = 0;
    std::unique_ptr<internal::RetryPolicy> retry;
    std::unique_ptr<internal::ExponentialBackoffPolicy> backoff;
    // Not acknowledged, and already max_sends_per_row times on the wire: not sent again.
    std::vector<Chunk> spent;
    bool exhausted = false;
    bool out_of_time = false;
    bool stopped_by_cooldown = false;
    bool stopped_by_shutdown = false;
    // The attempt in flight.
    StreamSlot* slot = nullptr;
    std::shared_ptr<StreamHandle> handle;
    std::vector<arrow::Future<IngestAck>> futures;
    int64_t admitted_bytes = 0;
    std::atomic<size_t> outstanding{0};
  };

  void NoteDebugError(const arrow::Status& st) {
    std::lock_guard<std::mutex> lk(stats_mu);
    ++counters.debug_write_failures;
    counters.last_debug_error = st.ToString();
  }

  static std::vector<FailedRow> ConversionFailures(const EncodedBatch& encoded) {
    std::vector<FailedRow> failed;
    failed.reserve(encoded.failed_rows.size());
    for (const auto& e : encoded.failed_rows) {
      failed.push_back({e.row, RenderError(ConversionError(e.message))});
    }
    return failed;
  }

  // Debug files, cool-down check, encoding. True when rows are to be transmitted; otherwise the
  // outcome is complete in s.out.
  bool Prepare(const arrow::RecordBatch& batch, SendState& s) {
    SendOutcome& out = s.out;
    const int64_t n = s.n;
    if (debug && config.arrow_debug_on() && n > 0) {
      arrow::Status st = debug->WriteArrow(batch);
      if (!st.ok()) {
        NoteDebugError(st);
        if (config.zerobus_writer_disabled) {
          out.result = TransmissionResult::WholeBatchFailure(
              n, MakeError(ErrorKind::kTransmission, false,
                           "writing the Arrow debug file failed: " + st.message()));
          out.transmission_failed = n;
          return false;
        }
      }
    }
    if (n == 0) {
      out.result = TransmissionResult::FromRowOutcomes(0, {}, {}).ValueOrDie();
      return false;
    }
    if (!config.zerobus_writer_disabled) {
      if (auto cd = ActiveCooldown()) {
        out.result = TransmissionResult::WholeBatchFailure(n, CooldownError(*cd));
        out.refused_in_cooldown = true;
        return false;
      }
    }
    auto entry = EncoderFor(batch.schema(), /*lease=*/true);
    if (!entry.ok()) {
      out.result = TransmissionResult::WholeBatchFailure(n, entry.status());
      if (GetErrorKind(entry.status()) != ErrorKind::kConversion) out.transmission_failed = n;
      return false;
    }
    s.entry = std::move(*entry);
    s.leased = s.entry.pool != nullptr;  // given back in Complete
    if (s.entry.flight) return PrepareFlight(batch, s);
    auto encoded_result = s.entry.encoder->Encode(batch);
    if (!encoded_result.ok()) {
      out.result = TransmissionResult::WholeBatchFailure(n, encoded_result.status());
      return false;
    }
    s.encoded = std::move(*encoded_result);
    const EncodedBatch& encoded = s.encoded;
    const int64_t encoded_bytes =
        encoded.record_offsets.empty() ? 0 : encoded.record_offsets.back();
    if (debug && config.protobuf_debug_on() && encoded.num_records() > 0) {
      arrow::Status st = debug->WriteProtobuf(s.entry.encoder->descriptor(), encoded);
      if (!st.ok()) {
        NoteDebugError(st);
        if (config.zerobus_writer_disabled) {
          out.result = TransmissionResult::WholeBatchFailure(
              n, MakeError(ErrorKind::kTransmission, false,
                           "writing the protobuf debug file failed: " + st.message()));
          out.transmission_failed = n;
          return false;
        }
      }
    }
    if (config.zerobus_writer_disabled) {
      std::vector<FailedRow> failed = ConversionFailures(encoded);
      std::vector<int64_t> successful;
      // The debug files are the output: every converted row counts as written.
      successful.assign(encoded.source_rows.begin(), encoded.source_rows.end());
      auto result =
          TransmissionResult::FromRowOutcomes(n, std::move(successful), std::move(failed));
      // The encoder partitions the rows; an error here would be its bug, reported as such.
      out.result = result.ok() ? std::move(*result)
                               : TransmissionResult::WholeBatchFailure(n, result.status());
      out.result.batch_size_bytes = encoded_bytes;
      return false;
    }

    // What goes on the wire: the protobuf records, or the same rows as JSON.
    s.wire = &s.encoded;
    if (s.entry.json) {
      auto converted = s.entry.json->Convert(s.encoded);
      if (!converted.ok()) {
        out.result = TransmissionResult::WholeBatchFailure(n, converted.status());
        return false;
      }
      s.json_rows = std::move(*converted);
      s.wire = &s.json_rows;
    }
    const EncodedBatch& wire = *s.wire;
    s.failed = ConversionFailures(wire);
    s.successful.reserve(static_cast<size_t>(wire.num_records()));
    s.pending.reserve(wire.chunks.size());
    for (const auto& range : wire.chunks) {
      s.pending.push_back(
          {range, wire.record_offsets[range.end] - wire.record_offsets[range.begin], 0});
    }
    if (s.pending.empty()) {  // every row failed conversion
      auto result = TransmissionResult::FromRowOutcomes(n, {}, std::move(s.failed));
      out.result = result.ok() ? std::move(*result)
                               : TransmissionResult::WholeBatchFailure(n, result.status());
      return false;
    }
    return true;
  }

  // Arrow Flight: the rows cast to the stream's schema (rows that cannot be cast fail here, the
  // rest go on), pending as one run that the stream splits into pieces.
  bool PrepareFlight(const arrow::RecordBatch& batch, SendState& s) {
    SendOutcome& out = s.out;
    const int64_t n = s.n;
    auto cast = CastForFlight(batch, *s.entry.flight);
    if (!cast.ok()) {
      out.result = TransmissionResult::WholeBatchFailure(n, cast.status());
      if (GetErrorKind(cast.status()) != ErrorKind::kConversion) out.transmission_failed = n;
      return false;
    }
    s.flight_rows = std::move(cast->batch);
    if (cast->kept_rows.empty()) {
      s.encoded.source_rows.resize(static_cast<size_t>(s.flight_rows->num_rows()));
      for (size_t i = 0; i < s.encoded.source_rows.size(); ++i) {
        s.encoded.source_rows[i] = static_cast<int64_t>(i);
      }
    } else {
      s.encoded.source_rows = std::move(cast->kept_rows);
    }
    for (auto& f : cast->failures) {
      s.encoded.failed_rows.push_back({f.row, "column '" + f.column + "': " + f.reason});
    }
    s.wire = &s.encoded;
    s.failed = ConversionFailures(s.encoded);
    const int64_t rows = s.encoded.num_records();
    int64_t bytes = 0;
    for (const auto& c : s.flight_rows->columns()) bytes += arrow::util::TotalBufferSize(*c);
    if (config.zerobus_writer_disabled || rows == 0) {
      // Writer disabled: the debug files are the output, every cast row counts as written.
      std::vector<int64_t> successful;
      if (config.zerobus_writer_disabled) successful = s.encoded.source_rows;
      auto result =
          TransmissionResult::FromRowOutcomes(n, std::move(successful), std::move(s.failed));
      out.result = result.ok() ? std::move(*result)
                               : TransmissionResult::WholeBatchFailure(n, result.status());
      if (config.zerobus_writer_disabled) out.result.batch_size_bytes = bytes;
      return false;
    }
    s.pending.push_back({RecordRange{0, rows}, bytes, 0});
    return true;
  }

  // Arrow Flight: each pending run of rows goes to the stream as one batch, which splits it into
  // pieces. s.pending becomes one chunk per piece, in the order of s.futures (a piece that was
  // not admitted has a finished future with the reason), then the runs not handed over.
  void AdmitFlight(SendState& s, ZerobusStream& stream, const internal::Deadline& deadline) {
    std::vector<Chunk> pieces;
    size_t next = 0;
    bool refused = false;
    for (; next < s.pending.size() && !refused; ++next) {
      const Chunk& c = s.pending[next];
      const int64_t rows = c.range.end - c.range.begin;
      RequestLimits limits;
      limits.deadline = deadline.at();
      limits.max_sends = config.max_sends_per_row - c.wire_sends;
      for (auto& p : stream.IngestArrowBatch(s.flight_rows->Slice(c.range.begin, rows), limits)) {
        const int64_t part = p.range.end - p.range.begin;
        Chunk piece{{c.range.begin + p.range.begin, c.range.begin + p.range.end},
                    c.bytes * part / std::max<int64_t>(rows, 1), c.wire_sends, p.seq};
        if (p.seq < 0) {
          refused = true;
        } else {
          s.bytes_sent += piece.bytes;
        }
        pieces.push_back(piece);
        s.futures.push_back(std::move(p.ack));
      }
    }
    pieces.insert(pieces.end(), s.pending.begin() + static_cast<std::ptrdiff_t>(next),
                  s.pending.end());
    s.pending = std::move(pieces);
  }

  // One attempt: a stream from the pool, every pending chunk handed to it; Collect runs when the
  // last chunk has its outcome. Runs on the caller's thread (first attempt) or the retry
  // executor (never on a stream's worker: IngestChunk may block there when the budget is full).
  void StartAttempt(const std::shared_ptr<SendState>& s) {
    ++s->attempt;
    if (s->attempt > 1) {
      for (const auto& c : s->pending) {
        const int64_t rows = c.range.end - c.range.begin;
        s->out.resent_rows += rows;
        if (c.wire_sends > 0) s->out.wrapper_replays += rows;
      }
      // Another send may have started a cool-down meanwhile: waiting it out here would hold
      // the caller for its whole length.
      if (auto cd = ActiveCooldown()) {
        s->last_error = CooldownError(*cd);
        s->stopped_by_cooldown = true;
        Finish(s);
        return;
      }
    }
    StreamPool& pool = *s->entry.pool;
    StreamSlot& slot = ChooseSlot(pool);
    const internal::Deadline deadline = s->retry->deadline();
    {
      // Scoped: no copy of the error stays on this thread once Decide hands `s` to a retry.
      auto handle = Acquire(pool, slot, deadline);
      if (handle.ok()) {
        s->handle = std::move(*handle);
      } else {
        s->last_error = handle.status();
      }
    }
    if (!s->handle) {
      Decide(s);
      return;
    }
    s->slot = &slot;
    ZerobusStream& stream = *s->handle->stream;
    s->admitted_bytes = 0;
    for (const auto& c : s->pending) s->admitted_bytes += c.bytes;
    slot.inflight_bytes.fetch_add(s->admitted_bytes);
    s->futures.clear();
    s->futures.reserve(s->pending.size());
    const std::vector<Chunk> none;  // Arrow Flight admits its own way
    if (s->flight_rows) AdmitFlight(*s, stream, deadline);
    for (const auto& c : s->flight_rows ? none : s->pending) {
      RequestLimits limits;
      limits.deadline = deadline.at();
      limits.max_sends = config.max_sends_per_row - c.wire_sends;
      auto f = stream.IngestChunk(*s->wire, c.range, limits);
      if (!f.ok()) {
        s->last_error = f.status();
        break;
      }
      s->bytes_sent += c.bytes;
      s->futures.push_back(std::move(*f));
    }
    if (s->futures.empty()) {
      Collect(s);
      return;
    }
    // From here on `s` belongs to the callbacks: the last one to run collects the outcomes
    // (possibly on this thread, possibly on the stream's worker while this loop still runs, so
    // the loop walks its own copy of the futures).
    const std::vector<arrow::Future<IngestAck>> futures = s->futures;
    s->outstanding.store(futures.size());
    for (const auto& f : futures) {
      f.AddCallback([s](const arrow::Result<IngestAck>&) {
        if (s->outstanding.fetch_sub(1) == 1) s->impl->Collect(s);
      });
    }
  }

  // Every admitted chunk has its ack or its stream's final error: sort the rows out.
  void Collect(const std::shared_ptr<SendState>& s) {
    std::vector<Chunk> next;
    const size_t admitted = s->futures.size();
    for (size_t i = 0; i < admitted; ++i) {
      Chunk& c = s->pending[i];
      const arrow::Result<IngestAck>& r = s->futures[i].result();
      if (r.ok()) {
        c.wire_sends += r->sends;
        for (int64_t k = c.range.begin; k < c.range.end; ++k) {
          s->successful.push_back(s->wire->source_rows[static_cast<size_t>(k)]);
        }
        s->finished.push_back(c);
      } else {
        s->last_error = r.status();
        if (s->flight_rows) {
          // Only an admitted piece (seq >= 0) fails with its stream; a refused one never went
          // out, and its stream may still be open (nothing to take back yet).
          const UnackedRequest* u = c.seq >= 0 ? s->handle->UnackedOf(c.seq) : nullptr;
          if (u) {
            c.wire_sends += u->sends;
            // Rows at the front of a piece that the server acknowledged are delivered.
            for (int64_t k = c.range.begin; k < c.range.begin + u->acked_rows; ++k) {
              s->successful.push_back(s->wire->source_rows[static_cast<size_t>(k)]);
            }
            c.range.begin += u->acked_rows;
          }
        } else {
          c.wire_sends += s->handle->SendsOf(s->wire->framed(c.range).data());
        }
        next.push_back(c);
      }
    }
    for (size_t i = admitted; i < s->pending.size(); ++i) next.push_back(s->pending[i]);
    s->futures.clear();
    if (s->slot != nullptr) {
      s->slot->inflight_bytes.fetch_sub(s->admitted_bytes);
      RetireIfFailed(*s->slot, s->handle);
      s->slot = nullptr;
    }
    s->handle.reset();
    s->pending = std::move(next);
    Decide(s);
  }

  // After an attempt: finished, given up, or a retry after a backoff.
  void Decide(const std::shared_ptr<SendState>& s) {
    if (s->first_error.ok()) s->first_error = s->last_error;
    // Rows already sent as often as max_sends_per_row allows are not sent again.
    std::vector<Chunk> left;
    for (auto& c : s->pending) {
      (c.wire_sends >= config.max_sends_per_row ? s->spent : left).push_back(c);
    }
    s->pending = std::move(left);
    if (s->pending.empty()) return Finish(s);
    if (IsPipelineBlocked(s->last_error)) {
      StartCooldown(config.pipeline_blocked_cooldown_ms, "pipeline creation was blocked (6006)");
      s->stopped_by_cooldown = true;
      return Finish(s);
    }
    if (!s->retry->OnFailure(s->last_error)) {
      if (IsRetryable(s->last_error)) {
        s->exhausted = true;
        s->out_of_time = s->retry->deadline().expired();
      }
      return Finish(s);
    }
    const int64_t delay_ms = s->backoff->OnCompletion().count();
    if (!s->retry->deadline().Allows(milliseconds(delay_ms))) {
      s->exhausted = true;
      s->out_of_time = true;
      return Finish(s);
    }
    if (LogEnabled(LogSeverity::kWarning)) {
      Log(LogSeverity::kWarning,
          "table " + config.table_name + ": " + std::to_string(s->pending.size()) +
              " request(s) not acknowledged after attempt " + std::to_string(s->attempt) +
              " of " + std::to_string(config.retry_max_attempts) + " (" +
              RenderError(s->last_error) + "); next attempt in " + std::to_string(delay_ms) +
              " ms");
    }
    {
      // Checked and queued under `mu`: Shutdown sets shutting_down under it, then fires every
      // queued retry, so none sleeps through a shutdown.
      std::lock_guard<std::mutex> lk(mu);
      if (!shutting_down) {
        retry_timer.RunAt(Clock::now() + milliseconds(delay_ms), [s] {
          Impl& impl = *s->impl;
          bool stop;
          {
            std::lock_guard<std::mutex> lk(impl.mu);
            stop = impl.shutting_down;
          }
          if (stop) {
            s->stopped_by_shutdown = true;
            impl.Finish(s);
          } else {
            impl.StartAttempt(s);
          }
        });
        return;
      }
    }
    s->stopped_by_shutdown = true;
    Finish(s);
  }

  // The rows still pending failed finally: build the result, count, complete the future.
  void Finish(const std::shared_ptr<SendState>& s) {
    SendOutcome& out = s->out;
    const int64_t n = s->n;
    std::optional<std::string> transmission_error;
    std::vector<int64_t> in_doubt;
    if (!s->pending.empty() || !s->spent.empty()) {
      std::string message;
      const arrow::Status& last_error = s->last_error;
      if (s->exhausted) {
        const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - s->start);
        const std::string why =
            s->out_of_time
                ? "the send's time budget, send_timeout_ms=" +
                      std::to_string(config.send_timeout_ms) + ", ran out"
                : "retry_max_attempts=" + std::to_string(config.retry_max_attempts) + " used up";
        const std::string last = RenderError(last_error);
        const std::string first = RenderError(s->first_error);
        message = RenderError(MakeError(
            ErrorKind::kRetryExhausted, false,
            "gave up after " + std::to_string(s->attempt) + " attempts; last cause: " + last +
                (s->first_error.ok() || first == last ? "" : "; first attempt's cause: " + first) +
                " (" + why + " after " + std::to_string(took.count()) + " ms)"));
      } else if (s->stopped_by_shutdown) {
        message = RenderError(MakeError(ErrorKind::kTransmission, false,
                                        "the wrapper shut down before a retry; last cause: " +
                                            RenderError(last_error)));
      } else if (s->stopped_by_cooldown && IsPipelineBlocked(last_error)) {
        auto cd = ActiveCooldown();
        message = RenderError(last_error) + " (cool-down: send_batch refused for " +
                  std::to_string(cd ? cd->remaining.count() : 0) + " ms)";
      } else {
        message = RenderError(last_error);
      }
      // Only failures that say the service struggles count toward the failure-rate cool-down:
      // a permanent refusal (the table's schema, a missing grant) is not helped by pausing.
      const bool service_caused = s->exhausted || IsRetryable(last_error);
      // A request that went on the wire and was never acknowledged may have been stored.
      const std::string doubt_note =
          " [in doubt: the request reached the server and was not acknowledged before its "
          "stream ended; the row may be in the table, and sending it again may duplicate it]";
      const std::string spent_message = RenderError(MakeError(
          ErrorKind::kRetryExhausted, false,
          "sent " + std::to_string(config.max_sends_per_row) +
              " time(s), the most max_sends_per_row allows, without an acknowledgement; last "
              "cause: " + RenderError(last_error)));
      auto fail_rows = [&](const std::vector<Chunk>& chunks, const std::string& why) {
        const std::string in_doubt_message = why + doubt_note;
        for (const auto& c : chunks) {
          const bool doubt = c.wire_sends > 0;
          for (int64_t k = c.range.begin; k < c.range.end; ++k) {
            const int64_t row = s->wire->source_rows[static_cast<size_t>(k)];
            s->failed.push_back({row, doubt ? in_doubt_message : why});
            if (doubt) in_doubt.push_back(row);
            if (service_caused) ++out.transmission_failed;
          }
        }
      };
      fail_rows(s->pending, message);
      fail_rows(s->spent, spent_message);
      transmission_error = s->pending.empty() ? spent_message : std::move(message);
    }
    // Copies on the wire: every send of every row, acknowledged or not.
    for (const auto* chunks : {&s->finished, &s->pending, &s->spent}) {
      for (const auto& c : *chunks) {
        const int64_t rows = c.range.end - c.range.begin;
        out.replayed += std::max(0, c.wire_sends - 1) * rows;
        out.wire_copies += static_cast<int64_t>(c.wire_sends) * rows;
        if (c.wire_sends > 1) out.rows_sent_more_than_once += rows;
      }
    }
    auto result =
        TransmissionResult::FromRowOutcomes(n, std::move(s->successful), std::move(s->failed));
    if (!result.ok()) {
      // Cannot happen (every row is in exactly one list); keep the invariant even so.
      out.result = TransmissionResult::WholeBatchFailure(n, result.status(), s->attempt);
    } else {
      out.result = std::move(*result);
      if (transmission_error) out.result.error = std::move(transmission_error);
      std::sort(in_doubt.begin(), in_doubt.end());
      out.result.in_doubt_rows = std::move(in_doubt);
      out.result.attempts = std::max<int32_t>(s->attempt, 1);
      out.result.batch_size_bytes = s->bytes_sent;
    }
    Complete(s);
  }

  // Latency, cool-downs, counters and telemetry; then the future completes and the send leaves.
  void Complete(const std::shared_ptr<SendState>& s) {
    SendOutcome& out = s->out;
    TransmissionResult& result = out.result;
    result.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - s->start).count();
    result.retried_rows = out.resent_rows;
    result.replayed_rows = out.replayed;
    result.wire_copies = out.wire_copies;
    result.rows_sent_more_than_once = out.rows_sent_more_than_once;

    // Failure-rate cool-down: only failures the service caused count (a batch with bad rows says
    // nothing about the service, and pausing would not fix it).
    if (!config.zerobus_writer_disabled && !out.refused_in_cooldown &&
        result.total_rows >= config.failure_rate_min_rows && result.total_rows > 0) {
      const double rate =
          static_cast<double>(out.transmission_failed) / static_cast<double>(result.total_rows);
      if (rate > config.failure_rate_threshold) {
        std::string reason = "a failure rate of " + FormatPercent(rate) + " (" +
                             std::to_string(out.transmission_failed) + " of " +
                             std::to_string(result.total_rows) + " rows; threshold " +
                             FormatPercent(config.failure_rate_threshold) + ")";
        Log(LogSeverity::kWarning, "table " + config.table_name + ": cool-down started after " +
                                       reason);
        StartCooldown(config.failure_cooldown_ms, std::move(reason));
      }
    }
    {
      std::lock_guard<std::mutex> lk(stats_mu);
      ++counters.batches;
      counters.rows += result.total_rows;
      counters.rows_successful += result.successful_count;
      counters.rows_failed += result.failed_count;
      counters.rows_in_doubt += static_cast<int64_t>(result.in_doubt_rows.size());
      counters.bytes_sent += result.batch_size_bytes;
      counters.retries += std::max(0, result.attempts - 1);
      counters.rows_retried += out.resent_rows;
      counters.wire_copies += out.wire_copies;
      counters.rows_sent_more_than_once += out.rows_sent_more_than_once;
      wrapper_replays += out.wrapper_replays;
      if (out.refused_in_cooldown) ++counters.batches_refused_in_cooldown;
    }
    if (telemetry) {
      telemetry->RecordSend(result, s->wall_start, std::chrono::system_clock::now(),
                            out.replayed);
      int64_t requests = 0, bytes = 0;
      for (auto& handle : LiveHandles()) {
        const StreamStats st = handle->stream->stats();
        requests += st.inflight_requests;
        bytes += st.inflight_bytes;
      }
      telemetry->SetInFlight(requests, bytes);
    }
    // Free the rows before anyone sees the result; the future's own callbacks run here.
    s->encoded = EncodedBatch();
    s->json_rows = EncodedBatch();
    s->flight_rows.reset();
    s->future.MarkFinished(std::move(result));
    {
      std::lock_guard<std::mutex> lk(mu);
      sends_in_progress.erase(s->id);
      if (s->leased) --s->entry.pool->leases;
      if (--active_sends == 0) cv.notify_all();
    }
    // The last reference to the wrapper may be this send's: drop it on an I/O thread, never on a
    // stream's worker (destroying the wrapper closes that very stream). Nothing touches `this`
    // after this line.
    ReleaseElsewhere(std::move(s->impl));
  }

  static void ReleaseElsewhere(std::shared_ptr<Impl> impl) {
    if (!impl) return;
    auto* executor = arrow::io::default_io_context().executor();
    auto holder = std::make_shared<std::shared_ptr<Impl>>(std::move(impl));
    if (!executor->Spawn([holder] { holder->reset(); }).ok()) holder->reset();
  }

  arrow::Status EnterSend() {
    std::lock_guard<std::mutex> lk(mu);
    if (shutting_down) {
      return MakeError(ErrorKind::kTransmission, false,
                       "ZerobusWrapper for table '" + config.table_name +
                           "' is shut down: send_batch is not allowed after shutdown()");
    }
    ++active_sends;
    return arrow::Status::OK();
  }

  arrow::Result<arrow::Future<TransmissionResult>> SendBatchAsync(
      const arrow::RecordBatch& batch, bool caller_may_block) {
    ARROW_RETURN_NOT_OK(EnterSend());
    auto s = std::make_shared<SendState>();
    s->impl = shared_from_this();
    s->wall_start = std::chrono::system_clock::now();
    s->start = Clock::now();
    s->retry = retry_prototype.clone();
    s->backoff = backoff_prototype.clone();
    s->n = batch.num_rows();
    auto future = s->future;
    {
      std::lock_guard<std::mutex> lk(mu);
      s->id = next_send_id++;
      sends_in_progress.emplace(s->id, future);
    }
    if (!Prepare(batch, *s)) {
      Complete(s);
    } else if (caller_may_block ||
               !arrow::io::default_io_context().executor()->Spawn([s] {
                  s->impl->StartAttempt(s);
                }).ok()) {
      StartAttempt(s);
    }
    return future;
  }

  arrow::Result<arrow::Future<TransmissionResult>> SendStreamAsync(
      arrow::RecordBatchReader& reader, bool caller_may_block) {
    ARROW_RETURN_NOT_OK(EnterSend());  // held while reading: Shutdown waits for the reader
    struct Leave {
      Impl* impl;
      ~Leave() {
        std::lock_guard<std::mutex> lk(impl->mu);
        if (--impl->active_sends == 0) impl->cv.notify_all();
      }
    } leave{this};
    const auto start = Clock::now();
    std::vector<arrow::Future<TransmissionResult>> parts;
    arrow::Status read_error;
    int64_t rows_read = 0;
    while (true) {
      std::shared_ptr<arrow::RecordBatch> b;
      arrow::Status st = reader.ReadNext(&b);
      if (!st.ok()) {
        read_error = st;
        break;
      }
      if (!b) break;
      auto f = SendBatchAsync(*b, caller_may_block);
      if (!f.ok()) {
        read_error = f.status();
        break;
      }
      rows_read += b->num_rows();
      parts.push_back(std::move(*f));
    }
    std::optional<std::string> stopped;
    if (!read_error.ok()) {
      const std::string cause = GetZerobusDetail(read_error) != nullptr
                                    ? RenderError(read_error)
                                    : read_error.ToString();
      stopped = RenderError(ConversionError("reading the input stopped after " +
                                            std::to_string(rows_read) + " rows: " + cause));
    }
    return arrow::All(std::move(parts))
        .Then([start, stopped](const std::vector<arrow::Result<TransmissionResult>>& results) {
          std::vector<TransmissionResult> ok;
          ok.reserve(results.size());
          for (const auto& r : results) ok.push_back(r.ValueOrDie());  // sends never fail
          TransmissionResult combined = TransmissionResult::Concatenate(ok);
          combined.latency_ms =
              std::chrono::duration<double, std::milli>(Clock::now() - start).count();
          if (stopped) combined.error = stopped;
          return combined;
        });
  }

  arrow::Result<TransmissionResult> SendBatch(const arrow::RecordBatch& batch) {
    ARROW_ASSIGN_OR_RAISE(auto future, SendBatchAsync(batch, /*caller_may_block=*/true));
    return future.result();
  }

  WrapperStats Stats() const {
    WrapperStats s;
    int64_t live_replayed = 0;
    {
      std::vector<std::shared_ptr<StreamPool>> all;
      {
        std::lock_guard<std::mutex> lk(mu);
        for (const auto& [key, pool] : pools) all.push_back(pool);
      }
      int32_t index = 0;
      for (auto& pool : all) {
        for (auto& slot : pool->slots) {
          WrapperStreamStats w;
          w.slot = index++;
          std::lock_guard<std::mutex> lk(slot->mu);
          w.inflight_bytes = slot->inflight_bytes.load();
          w.requests_acked = slot->retired_requests_acked;
          w.records_acked = slot->retired_records_acked;
          if (slot->handle) {
            w.open = true;
            w.state = slot->handle->stream->state();
            w.current = slot->handle->stream->stats();
            w.requests_acked += w.current.requests_acked;
            w.records_acked += w.current.records_acked;
            live_replayed += w.current.records_replayed;
          }
          s.streams.push_back(std::move(w));
        }
      }
    }
    std::lock_guard<std::mutex> lk(stats_mu);
    auto streams = std::move(s.streams);
    s = counters;
    s.streams = std::move(streams);
    s.replayed_records = retired_records_replayed + live_replayed + wrapper_replays;
    return s;
  }
};

// ---- ZerobusWrapper ----------------------------------------------------------------------------

ZerobusWrapper::ZerobusWrapper(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

namespace {

// Debug writer and telemetry: the parts every wrapper has.
arrow::Status StartOutputs(ZerobusWrapper::Impl* impl);

}  // namespace

arrow::Result<ZerobusWrapper> ZerobusWrapper::Make(WrapperConfiguration config) {
  ARROW_RETURN_NOT_OK(config.ValidateForWrapper());
  auto impl = std::make_shared<Impl>(std::move(config));
  const WrapperConfiguration& c = impl->config;
  const bool needs_auth = !c.zerobus_writer_disabled ||
                          c.descriptor_source == DescriptorSource::kUnityCatalog;
  if (needs_auth && c.client_id && c.client_secret && c.unity_catalog_url) {
    OAuthOptions o = OAuthOptions::Defaults();
    o.unity_catalog_url = *c.unity_catalog_url;
    o.client_id = *c.client_id;
    o.client_secret = *c.client_secret;
    o.table_name = c.table_name;
    if (!c.endpoint.empty()) {
      ARROW_ASSIGN_OR_RAISE(o.workspace_id, WorkspaceIdFromEndpoint(c.endpoint));
    }
    o.ca_file = c.ca_file.value_or("");
    o.application_name = c.application_name.value_or("");
    ARROW_ASSIGN_OR_RAISE(impl->headers, MakeOAuthHeadersProvider(std::move(o)));
  }
  if (!impl->headers && needs_auth) {
    return ConfigurationError(
        "client_id, client_secret and unity_catalog_url are required to reach Zerobus");
  }
  ARROW_RETURN_NOT_OK(StartOutputs(impl.get()));
  return ZerobusWrapper(std::move(impl));
}

arrow::Result<ZerobusWrapper> ZerobusWrapper::Make(
    WrapperConfiguration config, std::shared_ptr<HeadersProvider> headers_provider) {
  if (!headers_provider) {
    return ConfigurationError("headers_provider: a provider is required (or use Make(config))");
  }
  if (config.client_id || config.client_secret) {
    return ConfigurationError(
        "client_id / client_secret: not used with a headers provider; give one or the other");
  }
  // The rules about credentials do not apply: check the rest with stand-ins for them.
  WrapperConfiguration check = config;
  check.client_id = "headers-provider";
  check.client_secret = SecretString("headers-provider");
  if (!check.unity_catalog_url && check.descriptor_source != DescriptorSource::kUnityCatalog) {
    check.unity_catalog_url = "https://headers-provider.invalid";
  }
  ARROW_RETURN_NOT_OK(check.ValidateForWrapper());
  auto impl = std::make_shared<Impl>(std::move(config));
  impl->headers = std::move(headers_provider);
  ARROW_RETURN_NOT_OK(StartOutputs(impl.get()));
  return ZerobusWrapper(std::move(impl));
}

namespace {

arrow::Status StartOutputs(ZerobusWrapper::Impl* impl) {
  const WrapperConfiguration& c = impl->config;
  if (c.any_debug_on()) {
    ARROW_ASSIGN_OR_RAISE(impl->debug, DebugWriter::Open(DebugWriterOptions::FromConfig(c)));
  }
  if (c.protobuf_debug_on() && c.effective_transport() == Transport::kArrowFlight) {
    // Arrow Flight encodes no protobuf rows: say so once instead of leaving the files missing.
    Log(LogSeverity::kWarning, "table " + c.table_name +
                                   ": transport arrow_flight writes no protobuf debug files "
                                   "(only the Arrow ones)");
  }
  if (c.observability_enabled) {
    ARROW_ASSIGN_OR_RAISE(impl->telemetry, Telemetry::Start(TelemetryOptions::FromConfig(c)));
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Result<TransmissionResult> ZerobusWrapper::SendBatch(const arrow::RecordBatch& batch) {
  return impl_->SendBatch(batch);
}

arrow::Result<arrow::Future<TransmissionResult>> ZerobusWrapper::SendBatchAsync(
    const arrow::RecordBatch& batch, bool caller_may_block) {
  return impl_->SendBatchAsync(batch, caller_may_block);
}

arrow::Result<arrow::Future<TransmissionResult>> ZerobusWrapper::SendStreamAsync(
    arrow::RecordBatchReader& reader, bool caller_may_block) {
  return impl_->SendStreamAsync(reader, caller_may_block);
}

arrow::Status ZerobusWrapper::Flush() { return impl_->Flush(); }

arrow::Status ZerobusWrapper::Shutdown() { return impl_->Shutdown(); }

bool ZerobusWrapper::is_shutdown() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->shutting_down;
}

std::optional<CooldownInfo> ZerobusWrapper::cooldown() const { return impl_->ActiveCooldown(); }

WrapperStats ZerobusWrapper::stats() const { return impl_->Stats(); }

std::optional<TelemetrySnapshot> ZerobusWrapper::telemetry() const {
  if (!impl_->telemetry) return std::nullopt;
  return impl_->telemetry->Snapshot();
}

const WrapperConfiguration& ZerobusWrapper::config() const { return impl_->config; }

arrow::Result<DescriptorProto> ZerobusWrapper::DescriptorFor(
    const std::shared_ptr<arrow::Schema>& schema) {
  ARROW_ASSIGN_OR_RAISE(auto entry, impl_->EncoderFor(schema));
  return entry.encoder->descriptor();
}

}  // namespace arrow_zerobus
