// arrow_zerobus_sdk_wrapper._core: the C++ library as seen from Python (python/CORE_API.md).
//
// Arrow data arrives as PyCapsules (the Arrow PyCapsule interface) and is imported with Arrow
// C++'s C Data Interface: the buffers stay the producer's. Every call that converts, sends or
// waits releases the GIL; a send returns a Pending at once, completed by the library's own
// threads, which never run Python code (asyncio learns of completions through an eventfd).

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <arrow/array.h>
#include <arrow/c/abi.h>
#include <arrow/c/bridge.h>
#include <arrow/record_batch.h>

#include "arrow_zerobus/arrow_zerobus.h"

namespace nb = nanobind;
using namespace nb::literals;
namespace az = arrow_zerobus;

namespace {

// ---- errors ------------------------------------------------------------------------------------

// Raises the package's exception class for the status's kind (arrow_zerobus_sdk_wrapper._errors),
// with the rendered message and the retryable flag.
[[noreturn]] void RaiseStatus(const arrow::Status& st) {
  const az::ErrorKind kind = az::GetErrorKind(st);
  const std::string message = az::RenderError(st);
  nb::object errors = nb::module_::import_("arrow_zerobus_sdk_wrapper._errors");
  nb::object cls = errors.attr(std::string(az::ErrorKindName(kind)).c_str());
  nb::object exc = cls(message);
  exc.attr("retryable") = nb::bool_(az::IsRetryable(st));
  PyErr_SetObject(cls.ptr(), exc.ptr());
  throw nb::python_error();
}

void Check(const arrow::Status& st) {
  if (!st.ok()) RaiseStatus(st);
}

template <typename T>
T Unwrap(arrow::Result<T> r) {
  if (!r.ok()) RaiseStatus(r.status());
  return std::move(r).ValueUnsafe();
}

[[noreturn]] void RaiseConfig(const std::string& message) { RaiseStatus(az::ConfigurationError(message)); }

// ---- options (dict <-> WrapperConfiguration) -----------------------------------------------------

std::string TypeName(nb::handle h) { return nb::cast<std::string>(nb::type_name(h.type())); }

// Conversion of one dict value, with errors naming the option.
struct OptionReader {
  const char* name;
  nb::handle value;

  bool is_none() const { return value.is_none(); }

  [[noreturn]] void WrongType(const char* expected) const {
    PyErr_Format(PyExc_TypeError, "WrapperConfiguration option '%s' must be %s, got %s", name,
                 expected, TypeName(value).c_str());
    throw nb::python_error();
  }

  std::string String() const {
    if (nb::isinstance<nb::str>(value)) return nb::cast<std::string>(value);
    WrongType("a str");
  }
  std::string PathString() const {
    if (nb::isinstance<nb::str>(value)) return nb::cast<std::string>(value);
    nb::object fspath = nb::module_::import_("os").attr("fspath");
    try {
      nb::object p = fspath(value);
      if (nb::isinstance<nb::str>(p)) return nb::cast<std::string>(p);
    } catch (const nb::python_error&) {
    }
    WrongType("a str or os.PathLike");
  }
  bool Bool() const {
    if (nb::isinstance<nb::bool_>(value)) return nb::cast<bool>(value);
    WrongType("a bool");
  }
  int64_t Int(int64_t lo = INT64_MIN, int64_t hi = INT64_MAX) const {
    if (!nb::isinstance<nb::int_>(value) || nb::isinstance<nb::bool_>(value)) WrongType("an int");
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
    if (overflow != 0 || v < lo || v > hi) {
      RaiseConfig(std::string(name) + ": " + nb::cast<std::string>(nb::str(value)) +
                  " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return v;
  }
  double Double() const {
    if (nb::isinstance<nb::bool_>(value)) WrongType("a number");
    if (nb::isinstance<nb::float_>(value) || nb::isinstance<nb::int_>(value)) {
      return nb::cast<double>(value);
    }
    WrongType("a number");
  }
  std::string Bytes() const {
    if (nb::isinstance<nb::bytes>(value)) {
      nb::bytes b = nb::borrow<nb::bytes>(value);
      return std::string(b.c_str(), b.size());
    }
    if (nb::hasattr(value, "SerializeToString")) {
      nb::bytes b = nb::cast<nb::bytes>(value.attr("SerializeToString")());
      return std::string(b.c_str(), b.size());
    }
    WrongType("bytes (a serialized DescriptorProto) or a protobuf message");
  }
};

constexpr const char* kOptionNames[] = {
    "endpoint", "table_name", "client_id", "client_secret", "unity_catalog_url",
    "observability_enabled", "observability_config", "debug_enabled", "debug_arrow_enabled",
    "debug_protobuf_enabled", "debug_output_dir", "debug_flush_interval_secs",
    "debug_max_file_size", "debug_max_files_retained", "retry_max_attempts",
    "retry_base_delay_ms", "retry_max_delay_ms", "zerobus_writer_disabled",
    "debug_max_records_per_file", "streams_per_table", "max_inflight_requests",
    "max_inflight_bytes", "when_inflight_full", "stream_open_timeout_ms", "recovery_backoff_ms",
    "recovery_retries", "flush_timeout_ms", "ack_timeout_ms", "application_name", "ca_file",
    "record_type", "transport", "ipc_compression", "descriptor_source", "descriptor",
    "failure_rate_threshold",
    "failure_rate_min_rows", "failure_cooldown_ms", "cooldown_jitter_ms",
    "pipeline_blocked_cooldown_ms", "send_timeout_ms", "max_sends_per_row",
};

void ApplyObservability(az::WrapperConfiguration& c, nb::handle value) {
  if (value.is_none()) {
    c.observability_config.reset();
    return;
  }
  if (!nb::isinstance<nb::dict>(value)) {
    OptionReader{"observability_config", value}.WrongType("a dict or None");
  }
  az::ObservabilityConfig o = az::ObservabilityConfig::Defaults();
  for (auto [k, v] : nb::borrow<nb::dict>(value)) {
    const std::string key = nb::cast<std::string>(nb::str(k));
    const std::string full = "observability_config." + key;
    OptionReader r{full.c_str(), v};
    if (key == "endpoint") {
      o.endpoint = r.is_none() ? std::nullopt : std::optional<std::string>(r.String());
    } else if (key == "output_dir") {
      o.output_dir = r.is_none() ? std::nullopt : std::optional<std::string>(r.PathString());
    } else if (key == "write_interval_secs") {
      o.write_interval_secs = r.Int();
    } else if (key == "log_level") {
      o.log_level = Unwrap(az::ParseLogLevel(r.String(), full));
    } else {
      RaiseConfig("observability_config: unknown key '" + key +
                  "' (known: endpoint, output_dir, write_interval_secs, log_level)");
    }
  }
  c.observability_config = o;
}

void ApplyOption(az::WrapperConfiguration& c, const std::string& key, nb::handle value) {
  OptionReader r{key.c_str(), value};
  auto opt_str = [&]() { return r.is_none() ? std::nullopt : std::optional<std::string>(r.String()); };
  auto opt_path = [&]() {
    return r.is_none() ? std::nullopt : std::optional<std::string>(r.PathString());
  };
  auto opt_int = [&]() { return r.is_none() ? std::nullopt : std::optional<int64_t>(r.Int()); };
  auto opt_bool = [&]() { return r.is_none() ? std::nullopt : std::optional<bool>(r.Bool()); };
  constexpr int64_t i32max = INT32_MAX, i32min = INT32_MIN;
  if (key == "endpoint") c.endpoint = r.String();
  else if (key == "table_name") c.table_name = r.String();
  else if (key == "client_id") c.client_id = opt_str();
  else if (key == "client_secret") {
    if (r.is_none()) c.client_secret.reset();
    else if (nb::isinstance<nb::str>(value)) c.client_secret = az::SecretString(nb::cast<std::string>(value));
    else r.WrongType("a str");  // the message names the type, never the value
  }
  else if (key == "unity_catalog_url") c.unity_catalog_url = opt_str();
  else if (key == "observability_enabled") c.observability_enabled = r.Bool();
  else if (key == "observability_config") ApplyObservability(c, value);
  else if (key == "debug_enabled") c.debug_enabled = r.Bool();
  else if (key == "debug_arrow_enabled") c.debug_arrow_enabled = opt_bool();
  else if (key == "debug_protobuf_enabled") c.debug_protobuf_enabled = opt_bool();
  else if (key == "debug_output_dir") c.debug_output_dir = opt_path();
  else if (key == "debug_flush_interval_secs") c.debug_flush_interval_secs = r.Int();
  else if (key == "debug_max_file_size") c.debug_max_file_size = opt_int();
  else if (key == "debug_max_files_retained") c.debug_max_files_retained = opt_int();
  else if (key == "retry_max_attempts") c.retry_max_attempts = static_cast<int32_t>(r.Int(i32min, i32max));
  else if (key == "retry_base_delay_ms") c.retry_base_delay_ms = r.Int();
  else if (key == "retry_max_delay_ms") c.retry_max_delay_ms = r.Int();
  else if (key == "send_timeout_ms") c.send_timeout_ms = r.Int();
  else if (key == "max_sends_per_row") c.max_sends_per_row = static_cast<int32_t>(r.Int(i32min, i32max));
  else if (key == "zerobus_writer_disabled") c.zerobus_writer_disabled = r.Bool();
  else if (key == "debug_max_records_per_file") c.debug_max_records_per_file = opt_int();
  else if (key == "streams_per_table") c.streams_per_table = static_cast<int32_t>(r.Int(i32min, i32max));
  else if (key == "max_inflight_requests") c.max_inflight_requests = r.Int();
  else if (key == "max_inflight_bytes") c.max_inflight_bytes = r.Int();
  else if (key == "when_inflight_full") c.when_inflight_full = Unwrap(az::ParseInFlightFullPolicy(r.String(), key));
  else if (key == "stream_open_timeout_ms") c.stream_open_timeout_ms = r.Int();
  else if (key == "recovery_backoff_ms") c.recovery_backoff_ms = r.Int();
  else if (key == "recovery_retries") c.recovery_retries = static_cast<int32_t>(r.Int(i32min, i32max));
  else if (key == "flush_timeout_ms") c.flush_timeout_ms = r.Int();
  else if (key == "ack_timeout_ms") c.ack_timeout_ms = r.Int();
  else if (key == "application_name") c.application_name = opt_str();
  else if (key == "ca_file") c.ca_file = opt_path();
  else if (key == "record_type") c.record_type = Unwrap(az::ParseRecordFormat(r.String(), key));
  else if (key == "transport") c.transport = Unwrap(az::ParseTransport(r.String(), key));
  else if (key == "ipc_compression") c.ipc_compression = Unwrap(az::ParseIpcCompression(r.String(), key));
  else if (key == "descriptor_source") c.descriptor_source = Unwrap(az::ParseDescriptorSource(r.String(), key));
  else if (key == "descriptor") {
    if (r.is_none()) {
      c.descriptor.reset();
    } else {
      google::protobuf::DescriptorProto d;
      if (!d.ParseFromString(r.Bytes())) {
        RaiseConfig("descriptor: not a serialized google.protobuf.DescriptorProto");
      }
      c.descriptor = std::move(d);
    }
  }
  else if (key == "failure_rate_threshold") c.failure_rate_threshold = r.Double();
  else if (key == "failure_rate_min_rows") c.failure_rate_min_rows = r.Int();
  else if (key == "failure_cooldown_ms") c.failure_cooldown_ms = r.Int();
  else if (key == "cooldown_jitter_ms") c.cooldown_jitter_ms = r.Int();
  else if (key == "pipeline_blocked_cooldown_ms") c.pipeline_blocked_cooldown_ms = r.Int();
  else RaiseConfig("unknown option '" + key + "'");
}

az::WrapperConfiguration ConfigFromDict(const nb::dict& options) {
  az::WrapperConfiguration c = az::WrapperConfiguration::Defaults();
  for (auto [k, v] : options) {
    if (!nb::isinstance<nb::str>(k)) {
      PyErr_SetString(PyExc_TypeError, "WrapperConfiguration option names must be str");
      throw nb::python_error();
    }
    ApplyOption(c, nb::cast<std::string>(k), v);
  }
  return c;
}

template <typename T>
nb::object OrNone(const std::optional<T>& v) {
  return v ? nb::cast(*v) : nb::none();
}

nb::dict ConfigToDict(const az::WrapperConfiguration& c) {
  nb::dict d;
  d["endpoint"] = c.endpoint;
  d["table_name"] = c.table_name;
  d["client_id"] = OrNone(c.client_id);
  d["client_secret"] = c.client_secret ? nb::cast(c.client_secret->Reveal()) : nb::none();
  d["unity_catalog_url"] = OrNone(c.unity_catalog_url);
  d["observability_enabled"] = c.observability_enabled;
  if (c.observability_config) {
    nb::dict o;
    o["endpoint"] = OrNone(c.observability_config->endpoint);
    o["output_dir"] = OrNone(c.observability_config->output_dir);
    o["write_interval_secs"] = c.observability_config->write_interval_secs;
    o["log_level"] = std::string(az::LogLevelName(c.observability_config->log_level));
    d["observability_config"] = o;
  } else {
    d["observability_config"] = nb::none();
  }
  d["debug_enabled"] = c.debug_enabled;
  d["debug_arrow_enabled"] = OrNone(c.debug_arrow_enabled);
  d["debug_protobuf_enabled"] = OrNone(c.debug_protobuf_enabled);
  d["debug_output_dir"] = OrNone(c.debug_output_dir);
  d["debug_flush_interval_secs"] = c.debug_flush_interval_secs;
  d["debug_max_file_size"] = OrNone(c.debug_max_file_size);
  d["debug_max_files_retained"] = OrNone(c.debug_max_files_retained);
  d["retry_max_attempts"] = c.retry_max_attempts;
  d["retry_base_delay_ms"] = c.retry_base_delay_ms;
  d["retry_max_delay_ms"] = c.retry_max_delay_ms;
  d["send_timeout_ms"] = c.send_timeout_ms;
  d["max_sends_per_row"] = c.max_sends_per_row;
  d["zerobus_writer_disabled"] = c.zerobus_writer_disabled;
  d["debug_max_records_per_file"] = OrNone(c.debug_max_records_per_file);
  d["streams_per_table"] = c.streams_per_table;
  d["max_inflight_requests"] = c.max_inflight_requests;
  d["max_inflight_bytes"] = c.max_inflight_bytes;
  d["when_inflight_full"] = std::string(az::InFlightFullPolicyName(c.when_inflight_full));
  d["stream_open_timeout_ms"] = c.stream_open_timeout_ms;
  d["recovery_backoff_ms"] = c.recovery_backoff_ms;
  d["recovery_retries"] = c.recovery_retries;
  d["flush_timeout_ms"] = c.flush_timeout_ms;
  d["ack_timeout_ms"] = c.ack_timeout_ms;
  d["application_name"] = OrNone(c.application_name);
  d["ca_file"] = OrNone(c.ca_file);
  d["record_type"] = std::string(az::RecordFormatName(c.record_type));
  d["transport"] = std::string(az::TransportName(c.transport));
  d["ipc_compression"] = std::string(az::IpcCompressionName(c.ipc_compression));
  d["descriptor_source"] = std::string(az::DescriptorSourceName(c.descriptor_source));
  if (c.descriptor) {
    const std::string bytes = c.descriptor->SerializeAsString();
    d["descriptor"] = nb::bytes(bytes.data(), bytes.size());
  } else {
    d["descriptor"] = nb::none();
  }
  d["failure_rate_threshold"] = c.failure_rate_threshold;
  d["failure_rate_min_rows"] = c.failure_rate_min_rows;
  d["failure_cooldown_ms"] = c.failure_cooldown_ms;
  d["cooldown_jitter_ms"] = c.cooldown_jitter_ms;
  d["pipeline_blocked_cooldown_ms"] = c.pipeline_blocked_cooldown_ms;
  return d;
}

struct Config {
  az::WrapperConfiguration config;
};

// ---- Arrow import --------------------------------------------------------------------------------

template <typename T>
T* CapsulePointer(nb::handle capsule, const char* name, const char* what) {
  if (!PyCapsule_CheckExact(capsule.ptr()) || !PyCapsule_IsValid(capsule.ptr(), name)) {
    PyErr_Format(PyExc_TypeError, "expected a PyCapsule named '%s' (%s), got %s", name, what,
                 TypeName(capsule).c_str());
    throw nb::python_error();
  }
  return static_cast<T*>(PyCapsule_GetPointer(capsule.ptr(), name));
}

// Moves the producer's structs into Arrow C++ (the capsules are left released, as the protocol
// allows); no buffer is copied.
std::shared_ptr<arrow::RecordBatch> ImportBatch(nb::handle schema_capsule, nb::handle array_capsule) {
  auto* schema = CapsulePointer<ArrowSchema>(schema_capsule, "arrow_schema", "__arrow_c_array__()[0]");
  auto* array = CapsulePointer<ArrowArray>(array_capsule, "arrow_array", "__arrow_c_array__()[1]");
  if (schema->release == nullptr || array->release == nullptr) {
    PyErr_SetString(PyExc_ValueError, "the Arrow capsule was already consumed");
    throw nb::python_error();
  }
  if (schema->format == nullptr || std::string(schema->format) != "+s") {
    PyErr_Format(PyExc_TypeError,
                 "send_batch expects a record batch (an Arrow struct array); got an array of "
                 "Arrow format '%s'",
                 schema->format ? schema->format : "?");
    throw nb::python_error();
  }
  auto batch = arrow::ImportRecordBatch(array, schema);
  if (!batch.ok()) {
    PyErr_Format(PyExc_ValueError, "the Arrow data could not be imported: %s",
                 batch.status().ToString().c_str());
    throw nb::python_error();
  }
  return *batch;
}

std::shared_ptr<arrow::RecordBatchReader> ImportStream(nb::handle capsule) {
  auto* stream = CapsulePointer<ArrowArrayStream>(capsule, "arrow_array_stream", "__arrow_c_stream__()");
  if (stream->release == nullptr) {
    PyErr_SetString(PyExc_ValueError, "the Arrow stream capsule was already consumed");
    throw nb::python_error();
  }
  // A stream of plain arrays (a ChunkedArray, a Series) is not a table: say so as for arrays.
  ArrowSchema schema{};
  if (stream->get_schema(stream, &schema) == 0) {
    const std::string format = schema.format ? schema.format : "?";
    if (schema.release) schema.release(&schema);
    if (format != "+s") {
      PyErr_Format(PyExc_TypeError,
                   "send_batch expects a stream of record batches (Arrow struct arrays); got a "
                   "stream of Arrow format '%s'",
                   format.c_str());
      throw nb::python_error();
    }
  }
  auto reader = arrow::ImportRecordBatchReader(stream);
  if (!reader.ok()) {
    PyErr_Format(PyExc_ValueError, "the Arrow stream could not be imported: %s",
                 reader.status().ToString().c_str());
    throw nb::python_error();
  }
  return *reader;
}

// ---- completions -----------------------------------------------------------------------------

// The asyncio bridge: library threads queue tokens and make an eventfd readable; the event loop
// drains it. No Python runs on library threads.
class Notifier {
 public:
  Notifier() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) {
      PyErr_SetFromErrno(PyExc_OSError);
      throw nb::python_error();
    }
  }
  ~Notifier() { Close(); }

  int fileno() const { return fd_; }

  void Push(uint64_t token) {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_) return;
    tokens_.push_back(token);
    if (tokens_.size() == 1) {
      const uint64_t one = 1;
      ssize_t w;
      do {
        w = ::write(fd_, &one, sizeof(one));
      } while (w < 0 && errno == EINTR);
    }
  }

  std::vector<uint64_t> Drain() {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_) return {};
    uint64_t count;
    ssize_t r;
    do {
      r = ::read(fd_, &count, sizeof(count));
    } while (r < 0 && errno == EINTR);
    std::vector<uint64_t> out;
    out.swap(tokens_);
    return out;
  }

  void Close() {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_) return;
    closed_ = true;
    ::close(fd_);
  }

 private:
  std::mutex mu_;
  int fd_;
  bool closed_ = false;
  std::vector<uint64_t> tokens_;
};

struct NativeResult {
  az::TransmissionResult r;
};

struct Pending {
  arrow::Future<az::TransmissionResult> future;

  bool done() const { return future.is_finished(); }

  // Waits in short slices with the GIL released, checking for signals between slices so Ctrl-C
  // raises KeyboardInterrupt promptly (the send goes on; its result can be read later).
  bool wait(std::optional<double> timeout) const {
    const auto deadline = timeout ? std::chrono::steady_clock::now() +
                                        std::chrono::duration<double>(std::max(0.0, *timeout))
                                  : std::chrono::steady_clock::time_point::max();
    while (true) {
      double slice = 0.1;
      if (timeout) {
        const double left =
            std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
        slice = std::min(slice, std::max(0.0, left));
      }
      bool finished;
      {
        nb::gil_scoped_release release;
        finished = future.Wait(slice);
      }
      if (finished) return true;
      if (PyErr_CheckSignals() != 0) throw nb::python_error();
      if (timeout && std::chrono::steady_clock::now() >= deadline) return false;
    }
  }

  std::shared_ptr<NativeResult> result() const {
    wait(std::nullopt);
    const auto& r = future.result();
    if (!r.ok()) RaiseStatus(r.status());  // sends complete with a value; kept for safety
    return std::make_shared<NativeResult>(NativeResult{*r});
  }

  void notify(std::shared_ptr<Notifier> notifier, uint64_t token) const {
    future.AddCallback([notifier = std::move(notifier), token](const arrow::Result<az::TransmissionResult>&) {
      notifier->Push(token);
    });
  }
};

// ---- wrapper ---------------------------------------------------------------------------------------

nb::dict StatsToDict(const az::WrapperStats& s) {
  nb::dict d;
  d["batches"] = s.batches;
  d["rows"] = s.rows;
  d["rows_successful"] = s.rows_successful;
  d["rows_failed"] = s.rows_failed;
  d["rows_in_doubt"] = s.rows_in_doubt;
  d["bytes_sent"] = s.bytes_sent;
  d["retries"] = s.retries;
  d["rows_retried"] = s.rows_retried;
  d["replayed_records"] = s.replayed_records;
  d["wire_copies"] = s.wire_copies;
  d["rows_sent_more_than_once"] = s.rows_sent_more_than_once;
  d["streams_opened"] = s.streams_opened;
  d["stream_open_failures"] = s.stream_open_failures;
  d["streams_failed"] = s.streams_failed;
  d["pools_evicted"] = s.pools_evicted;
  d["cooldowns_started"] = s.cooldowns_started;
  d["batches_refused_in_cooldown"] = s.batches_refused_in_cooldown;
  d["debug_write_failures"] = s.debug_write_failures;
  d["last_debug_error"] = OrNone(s.last_debug_error);
  nb::list streams;
  for (const auto& w : s.streams) {
    nb::dict sd;
    sd["slot"] = w.slot;
    sd["open"] = w.open;
    sd["state"] = std::string(az::StreamStateName(w.state));
    sd["inflight_bytes"] = w.inflight_bytes;
    sd["requests_acked"] = w.requests_acked;
    sd["records_acked"] = w.records_acked;
    sd["requests_sent"] = w.current.requests_sent;
    sd["records_replayed"] = w.current.records_replayed;
    sd["rpcs_opened"] = w.current.rpcs_opened;
    sd["rpc_failures"] = w.current.rpc_failures;
    sd["close_signals"] = w.current.close_signals;
    sd["inflight_requests"] = w.current.inflight_requests;
    sd["stream_id"] = w.current.stream_id;
    streams.append(sd);
  }
  d["streams"] = streams;
  return d;
}

bool InterpreterFinalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

struct Wrapper {
  std::optional<az::ZerobusWrapper> w;

  explicit Wrapper(az::ZerobusWrapper wrapper) : w(std::move(wrapper)) {}
  Wrapper(const Wrapper&) = delete;
  Wrapper& operator=(const Wrapper&) = delete;
  // Dropping the last handle shuts the wrapper down (streams close, threads join): never with
  // the GIL held, since a library thread may be waiting for it to log.
  ~Wrapper() {
    if (Py_IsInitialized() && !InterpreterFinalizing() && PyGILState_Check()) {
      nb::gil_scoped_release release;
      w.reset();
    } else {
      w.reset();
    }
  }

  az::ZerobusWrapper& get() { return *w; }

  // `block` false on an event loop's thread: a full in-flight budget must not block it.
  Pending send_array(nb::handle schema_capsule, nb::handle array_capsule, bool block) {
    std::shared_ptr<arrow::RecordBatch> batch = ImportBatch(schema_capsule, array_capsule);
    arrow::Result<arrow::Future<az::TransmissionResult>> f;
    {
      nb::gil_scoped_release release;
      f = get().SendBatchAsync(*batch, block);
      batch.reset();  // the producer's release callback runs without the GIL held by us
    }
    return Pending{Unwrap(std::move(f))};
  }

  Pending send_stream(nb::handle stream_capsule, bool block) {
    std::shared_ptr<arrow::RecordBatchReader> reader = ImportStream(stream_capsule);
    arrow::Result<arrow::Future<az::TransmissionResult>> f;
    {
      nb::gil_scoped_release release;
      f = get().SendStreamAsync(*reader, block);
      reader.reset();
    }
    return Pending{Unwrap(std::move(f))};
  }

  // Flush / Shutdown on their own thread, waited for in slices so Ctrl-C raises
  // KeyboardInterrupt promptly (the work itself goes on to its end).
  void RunInterruptible(arrow::Status (*work)(az::ZerobusWrapper&)) {
    auto done = std::make_shared<std::promise<arrow::Status>>();
    std::future<arrow::Status> result = done->get_future();
    std::thread([w = get(), done, work]() mutable { done->set_value(work(w)); }).detach();
    while (true) {
      std::future_status ready;
      {
        nb::gil_scoped_release release;
        ready = result.wait_for(std::chrono::milliseconds(100));
      }
      if (ready == std::future_status::ready) return Check(result.get());
      if (PyErr_CheckSignals() != 0) throw nb::python_error();
    }
  }
};

// ---- logging -----------------------------------------------------------------------------------

std::mutex g_log_mu;
PyObject* g_log_handler = nullptr;  // a strong reference, swapped under g_log_mu and the GIL

void SetLogHandler(nb::object handler) {
  PyObject* next = handler.is_none() ? nullptr : handler.inc_ref().ptr();
  PyObject* prev;
  {
    std::lock_guard<std::mutex> lk(g_log_mu);
    prev = g_log_handler;
    g_log_handler = next;
  }
  Py_XDECREF(prev);
  if (next == nullptr) {
    az::SetLogSink(nullptr);
    return;
  }
  az::SetLogSink([](az::LogSeverity severity, std::string_view message) {
    if (!Py_IsInitialized() || InterpreterFinalizing()) return;
    nb::gil_scoped_acquire gil;
    PyObject* h;
    {
      std::lock_guard<std::mutex> lk(g_log_mu);
      h = g_log_handler;
      Py_XINCREF(h);
    }
    if (h == nullptr) return;
    nb::object handler_obj = nb::steal(h);
    try {
      handler_obj(static_cast<int>(severity), nb::str(message.data(), message.size()));
    } catch (nb::python_error& e) {
      e.discard_as_unraisable("arrow_zerobus_sdk_wrapper log handler");
    }
  });
}

}  // namespace

NB_MODULE(_core, m) {
  m.doc() = "arrow_zerobus_sdk_wrapper native core (see python/CORE_API.md)";
  m.attr("__version__") = std::string(az::kVersion);

  // ---- options
  m.def("default_options", [] { return ConfigToDict(az::WrapperConfiguration::Defaults()); });
  m.def("option_names", [] {
    std::vector<std::string> names(std::begin(kOptionNames), std::end(kOptionNames));
    return names;
  });
  m.def("options_from_env",
        [] { return ConfigToDict(Unwrap(az::WrapperConfiguration::FromEnvironment())); });
  m.def("options_from_yaml", [](const std::string& path) {
    return ConfigToDict(Unwrap(az::WrapperConfiguration::FromYamlFile(path)));
  }, "path"_a);

  nb::class_<Config>(m, "Config")
      .def("__init__", [](Config* self, const nb::dict& options) {
        new (self) Config{ConfigFromDict(options)};
      }, "options"_a)
      .def("validate", [](const Config& c) { Check(c.config.Validate()); })
      .def("validate_for_wrapper", [](const Config& c) { Check(c.config.ValidateForWrapper()); })
      .def("validate_debug_output_dir",
           [](const Config& c) { Check(c.config.ValidateDebugOutputDir()); })
      .def("to_dict", [](const Config& c) { return ConfigToDict(c.config); })
      .def("__repr__", [](const Config& c) { return c.config.ToString(); });

  // ---- completions
  nb::class_<Notifier>(m, "Notifier")
      .def(nb::init<>())
      .def("fileno", &Notifier::fileno)
      .def("drain", &Notifier::Drain)
      .def("close", &Notifier::Close);

  nb::class_<NativeResult>(m, "NativeResult")
      .def_prop_ro("success", [](const NativeResult& n) { return n.r.success; })
      .def_prop_ro("error", [](const NativeResult& n) { return n.r.error; })
      .def_prop_ro("attempts", [](const NativeResult& n) { return n.r.attempts; })
      .def_prop_ro("latency_ms", [](const NativeResult& n) { return n.r.latency_ms; })
      .def_prop_ro("batch_size_bytes", [](const NativeResult& n) { return n.r.batch_size_bytes; })
      .def_prop_ro("total_rows", [](const NativeResult& n) { return n.r.total_rows; })
      .def_prop_ro("successful_count", [](const NativeResult& n) { return n.r.successful_count; })
      .def_prop_ro("failed_count", [](const NativeResult& n) { return n.r.failed_count; })
      .def_prop_ro("retried_rows", [](const NativeResult& n) { return n.r.retried_rows; })
      .def_prop_ro("replayed_rows", [](const NativeResult& n) { return n.r.replayed_rows; })
      .def_prop_ro("wire_copies", [](const NativeResult& n) { return n.r.wire_copies; })
      .def_prop_ro("rows_sent_more_than_once",
                   [](const NativeResult& n) { return n.r.rows_sent_more_than_once; })
      .def_prop_ro("in_doubt_count",
                   [](const NativeResult& n) { return static_cast<int64_t>(n.r.in_doubt_rows.size()); })
      .def_prop_ro("failed_rows", [](const NativeResult& n) {
        // Rows that failed together share one message: one Python string per run of equal
        // messages, not one per row.
        nb::list out;
        const std::string* last = nullptr;
        nb::str text;
        for (const auto& f : n.r.failed_rows) {
          if (last == nullptr || f.message != *last) {
            text = nb::str(f.message.data(), f.message.size());
            last = &f.message;
          }
          out.append(nb::make_tuple(f.row_index, text));
        }
        return out;
      })
      .def_prop_ro("failed_row_indices", [](const NativeResult& n) { return n.r.FailedRowIndices(); })
      .def_prop_ro("successful_rows", [](const NativeResult& n) { return n.r.successful_rows; })
      .def_prop_ro("in_doubt_rows", [](const NativeResult& n) { return n.r.in_doubt_rows; })
      .def("__repr__", [](const NativeResult& n) { return n.r.ToString(); });

  nb::class_<Pending>(m, "Pending")
      .def("done", &Pending::done)
      .def("wait", &Pending::wait, "timeout"_a = nb::none())
      .def("result", &Pending::result)
      .def("notify", &Pending::notify, "notifier"_a, "token"_a);

  // ---- wrapper
  nb::class_<Wrapper>(m, "Wrapper")
      .def("__init__", [](Wrapper* self, const Config& c) {
        az::WrapperConfiguration config = c.config;
        arrow::Result<az::ZerobusWrapper> made;
        {
          nb::gil_scoped_release release;
          made = az::ZerobusWrapper::Make(std::move(config));
        }
        new (self) Wrapper(Unwrap(std::move(made)));
      }, "config"_a)
      .def("send_array", &Wrapper::send_array, "schema_capsule"_a, "array_capsule"_a,
           "block"_a = true)
      .def("send_stream", &Wrapper::send_stream, "stream_capsule"_a, "block"_a = true)
      .def("flush", [](Wrapper& w) {
        w.RunInterruptible([](az::ZerobusWrapper& z) { return z.Flush(); });
      })
      .def("shutdown", [](Wrapper& w) {
        w.RunInterruptible([](az::ZerobusWrapper& z) { return z.Shutdown(); });
      })
      .def("is_shutdown", [](Wrapper& w) { return w.get().is_shutdown(); })
      .def("stats", [](Wrapper& w) {
        az::WrapperStats s;
        {
          nb::gil_scoped_release release;
          s = w.get().stats();
        }
        return StatsToDict(s);
      })
      .def("cooldown", [](Wrapper& w) -> nb::object {
        auto cd = w.get().cooldown();
        if (!cd) return nb::none();
        nb::dict d;
        d["reason"] = cd->reason;
        d["remaining_ms"] = static_cast<int64_t>(cd->remaining.count());
        return d;
      })
      .def("descriptor_proto", [](Wrapper& w, nb::handle schema_capsule, nb::handle array_capsule) {
        auto batch = ImportBatch(schema_capsule, array_capsule);
        auto d = Unwrap(w.get().DescriptorFor(batch->schema()));
        const std::string bytes = d.SerializeAsString();
        return nb::bytes(bytes.data(), bytes.size());
      }, "schema_capsule"_a, "array_capsule"_a);

  // ---- logging
  m.def("set_log_handler", &SetLogHandler, "handler"_a.none());
  m.def("set_log_level", [](int level) {
    az::SetLogThreshold(level <= 10   ? az::LogSeverity::kDebug
                        : level <= 20 ? az::LogSeverity::kInfo
                        : level <= 30 ? az::LogSeverity::kWarning
                        : level <= 40 ? az::LogSeverity::kError
                                      : az::LogSeverity::kOff);
  }, "level"_a);
  m.def("get_log_level", [] { return static_cast<int>(az::GetLogThreshold()); });
  m.def("log", [](int level, const std::string& message) {
    // Lets tests check the bridge from C++ to Python logging end to end.
    az::Log(static_cast<az::LogSeverity>(level), message);
  }, "level"_a, "message"_a);

  // ---- test hooks
  m.def("buffer_addresses", [](nb::handle schema_capsule, nb::handle array_capsule) {
    auto batch = ImportBatch(schema_capsule, array_capsule);
    std::vector<std::vector<uintptr_t>> out;
    for (const auto& column : batch->columns()) {
      std::vector<uintptr_t> addrs;
      for (const auto& b : column->data()->buffers) {
        addrs.push_back(b ? reinterpret_cast<uintptr_t>(b->data()) : 0);
      }
      out.push_back(std::move(addrs));
    }
    return out;
  }, "schema_capsule"_a, "array_capsule"_a);
}
