// End-to-end throughput: encoded `iot` chunks (64k-row batches) -> ZerobusStream -> gRPC over
// loopback -> the in-process emulator (null sink) -> durable ack. In the same run, the vendor's
// Python SDK (databricks-zerobus-ingest-sdk) ingests the same rows, pre-encoded, with its batch
// API against the same emulator, as the baseline.
//
// Also measured: the request framing kernels (hand-framed header + slice over the encoder's
// buffer vs. a generated EphemeralStreamRequest), and the end-to-end run with each.
//
// Options (environment): AZ_E2E_BATCHES (default 32 batches of 65536 rows, for both clients),
// AZ_E2E_REPEAT (best of 3 per client mode), AZ_E2E_ROUNDS (3 interleaved rounds), AZ_PYTHON
// (python3), AZ_E2E_NO_VENDOR=1, AZ_E2E_NO_RAW=1 (no client-bound rounds).
//
// Like for like: in every round each client sends the same rows with 1 stream, then each with
// 2 streams (who goes first alternates by round); every ratio compares equal stream counts and
// is the median of the per-round ratios. Rows per CPU second (whole process: client + emulator
// for ours; the SDK's process + the emulator for the vendor) are printed too, as a load-robust
// comparison.
//
// Ends with: {"name":"e2e_iot","rows":..,"streams":S,"rows_per_s":..,"vendor_rows_per_s":..,
//   "ratio_vs_vendor":.. (these three at S streams each, S = the count at which ours is faster),
//   then per stream count (suffix _1_stream, _2_streams): rows_per_s, vendor_rows_per_s,
//   ratio_vs_vendor, rows_per_cpu_s, vendor_rows_per_cpu_s, cpu_ratio_vs_vendor,
//   generated_path_rows_per_s, client_bound_rows_per_s, client_bound_vendor_rows_per_s,
//   client_bound_ratio_vs_vendor}
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <mutex>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <arrow/api.h>
#include <benchmark/benchmark.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <nlohmann/json.hpp>

#include "arrow_zerobus/auth.h"
#include "arrow_zerobus/encode.h"
#include "arrow_zerobus/stream.h"
#include "e2e/e2e_common.h"
#include "server/emulator.h"
#include "transport/wire_internal.h"

namespace {

namespace az = arrow_zerobus;
namespace fs = std::filesystem;
using namespace arrow_zerobus::bench;  // NOLINT: the shared e2e helpers
using Clock = std::chrono::steady_clock;

constexpr const char* kTable = "main.bench.iot";
constexpr const char* kVendorTable = "main.bench.iot_vendor";

Workload MakeWorkload(int64_t num_batches) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  for (int64_t b = 0; b < num_batches; ++b) {
    batches.push_back(IotBatch(b * kBatchRows, 1234 + static_cast<uint64_t>(b)));
  }
  return EncodeWorkload(batches);
}

// ---- framing kernels ---------------------------------------------------------------------------

const Workload* g_kernel_work = nullptr;

void BM_FrameZeroCopy(benchmark::State& state) {
  const auto& b = g_kernel_work->batches[0];
  const std::string_view body = b.framed(b.chunks[0]);
  int64_t offset = 0;
  for (auto _ : state) {
    grpc::ByteBuffer bb =
        az::internal::MakeIngestRequest(true, az::RecordType::kProto, offset++, b.buffer, body, true);
    benchmark::DoNotOptimize(bb);
  }
  state.SetItemsProcessed(state.iterations() * (b.chunks[0].end - b.chunks[0].begin));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}

void BM_FrameGeneratedMessage(benchmark::State& state) {
  const auto& b = g_kernel_work->batches[0];
  const std::string_view body = b.framed(b.chunks[0]);
  int64_t offset = 0;
  for (auto _ : state) {
    grpc::ByteBuffer bb = az::internal::MakeIngestRequest(true, az::RecordType::kProto, offset++,
                                                          b.buffer, body, false);
    benchmark::DoNotOptimize(bb);
  }
  state.SetItemsProcessed(state.iterations() * (b.chunks[0].end - b.chunks[0].begin));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}

BENCHMARK(BM_FrameZeroCopy)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_FrameGeneratedMessage)->Unit(benchmark::kMicrosecond);

// ---- end to end ---------------------------------------------------------------------------------

struct RunResult {
  double seconds = 0;
  double rows_per_s = 0;
  double mb_per_s = 0;
  double cpu_seconds = 0;  // whole process: client and emulator
  int64_t replayed = 0;
};

RunResult RunClient(const az::emulator::Emulator& emu, const Workload& w, int streams,
                    bool zero_copy, const std::string& grpc_endpoint = "") {
  az::StreamOptions so = az::StreamOptions::Defaults();
  so.endpoint = grpc_endpoint.empty() ? emu.grpc_endpoint() : grpc_endpoint;
  so.table_name = kTable;
  so.descriptor = w.descriptor;
  so.headers_provider = BenchHeaders(emu, kTable);
  so.zero_copy = zero_copy;
  so.application_name = "bench_e2e";
  std::vector<std::unique_ptr<az::ZerobusStream>> ss;
  for (int i = 0; i < streams; ++i) {
    auto s = az::ZerobusStream::Open(so);
    if (!s.ok()) {
      std::fprintf(stderr, "open failed: %s\n", s.status().ToString().c_str());
      std::exit(1);
    }
    ss.push_back(std::move(*s));
  }
  std::vector<arrow::Future<az::IngestAck>> futures;
  futures.reserve(w.batches.size() * 2);
  const double cpu0 = ProcessCpuSeconds();
  const auto start = Clock::now();
  size_t next = 0;
  for (const auto& b : w.batches) {
    for (const auto& chunk : b.chunks) {
      auto f = ss[next++ % ss.size()]->IngestChunk(b, chunk);
      if (!f.ok()) {
        std::fprintf(stderr, "ingest failed: %s\n", f.status().ToString().c_str());
        std::exit(1);
      }
      futures.push_back(*f);
    }
  }
  for (auto& s : ss) {
    auto st = s->Flush();
    if (!st.ok()) {
      std::fprintf(stderr, "flush failed: %s\n", st.ToString().c_str());
      std::exit(1);
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  RunResult r;
  r.cpu_seconds = ProcessCpuSeconds() - cpu0;
  for (auto& f : futures) {
    if (!f.status().ok()) {
      std::fprintf(stderr, "request failed: %s\n", f.status().ToString().c_str());
      std::exit(1);
    }
  }
  for (auto& s : ss) {
    r.replayed += s->stats().requests_replayed;
    (void)s->Close();
  }
  r.seconds = secs;
  r.rows_per_s = static_cast<double>(w.rows) / secs;
  r.mb_per_s = static_cast<double>(w.bytes) / secs / 1e6;
  return r;
}

RunResult Best(const az::emulator::Emulator& emu, const Workload& w, int streams, bool zero_copy,
               int repeat) {
  RunResult best;
  for (int i = 0; i < repeat; ++i) {
    RunResult r = RunClient(emu, w, streams, zero_copy);
    if (r.rows_per_s > best.rows_per_s) best = r;
  }
  return best;
}

// ---- raw ack server -----------------------------------------------------------------------------

// A Zerobus endpoint that does no work per row: it answers create_stream and acks every request
// after reading only its offset (from the first bytes of the message). Against it, a run measures
// what the client and gRPC cost, without the emulator's decoding. Auth is not checked.
class RawAckServer : public grpc::CallbackGenericService {
 public:
  RawAckServer() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.SetMaxReceiveMessageSize(64 * 1024 * 1024);
    builder.RegisterCallbackGenericService(this);
    server_ = builder.BuildAndStart();
  }
  ~RawAckServer() override {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    server_->Wait();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  class Reactor : public grpc::ServerGenericBidiReactor {
   public:
    Reactor() {
      StartSendInitialMetadata();
      StartRead(&in_);
    }
    void OnReadDone(bool ok) override {
      if (!ok) {
        std::unique_lock<std::mutex> lk(mu_);
        finish_ = true;
        Pump(lk);
        return;
      }
      // First bytes: outer tag, length, [inner tag 0x08, offset] for ingest requests.
      uint8_t head[32];
      const size_t n = Peek(head, sizeof(head));
      std::string reply;
      if (n > 0 && head[0] == 0x0A) {
        // create_stream -> create_stream_response{stream_id "raw"}
        reply = std::string("\x0a\x05\x0a\x03raw", 7);
      } else {
        size_t i = 1;
        while (i < n && (head[i] & 0x80)) ++i;  // skip the length
        ++i;
        if (i < n && head[i] == 0x08) {
          ++i;
          uint64_t off = 0;
          int shift = 0;
          while (i < n) {
            off |= static_cast<uint64_t>(head[i] & 0x7f) << shift;
            shift += 7;
            if (!(head[i++] & 0x80)) break;
          }
          uint8_t inner[12];
          inner[0] = 0x08;
          const int len = 1 + az::internal::WriteVarint(off, inner + 1);
          reply.push_back(0x12);
          reply.push_back(static_cast<char>(len));
          reply.append(reinterpret_cast<char*>(inner), len);
        }
      }
      in_.Clear();
      {
        std::unique_lock<std::mutex> lk(mu_);
        if (!reply.empty()) {
          // Acks are cumulative: a newer one replaces one still waiting.
          if (!queue_.empty() && queue_.back()[0] == 0x12) {
            queue_.back() = reply;
          } else {
            queue_.push_back(reply);
          }
        }
        Pump(lk);
      }
      StartRead(&in_);
    }
    void OnWriteDone(bool) override {
      std::unique_lock<std::mutex> lk(mu_);
      writing_ = false;
      Pump(lk);
    }
    void OnCancel() override {
      std::unique_lock<std::mutex> lk(mu_);
      finish_ = true;
      Pump(lk);
    }
    void OnDone() override { delete this; }

   private:
    size_t Peek(uint8_t* out, size_t max) {
      std::vector<grpc::Slice> slices;
      if (!in_.Dump(&slices).ok()) return 0;
      size_t n = 0;
      for (const auto& sl : slices) {
        const size_t take = std::min(max - n, sl.size());
        std::memcpy(out + n, sl.begin(), take);
        n += take;
        if (n == max) break;
      }
      return n;
    }
    void Pump(std::unique_lock<std::mutex>& lk) {
      if (writing_ || finished_) return;
      if (!queue_.empty()) {
        grpc::Slice slice(queue_.front());
        queue_.pop_front();
        out_ = grpc::ByteBuffer(&slice, 1);
        writing_ = true;
        lk.unlock();
        StartWrite(&out_);
        return;
      }
      if (finish_) {
        finished_ = true;
        lk.unlock();
        Finish(grpc::Status::OK);
      }
    }
    grpc::ByteBuffer in_, out_;
    std::mutex mu_;
    std::deque<std::string> queue_;
    bool writing_ = false, finish_ = false, finished_ = false;
  };

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    return new Reactor();
  }
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// One client's figures per round, for one stream count.
struct Series {
  std::vector<double> ours, ours_mbps, ours_cpu, vendor, vendor_cpu, ratio, cpu_ratio;
};

// Ours and the vendor's with `streams` streams each, on the same rows, in the given order.
// Returns false when the vendor run failed.
bool RoundPair(const az::emulator::Emulator& emu, const Workload& w, int streams,
               bool vendor_first, const std::string& rows_file, const std::string& desc_file,
               const std::string& endpoint, Series* s) {
  RunResult ours;
  std::optional<nlohmann::json> v;
  double emulator_cpu = 0;
  auto run_vendor = [&] {
    const double cpu0 = ProcessCpuSeconds();  // the emulator's (our client is idle)
    v = RunVendor(emu, kVendorTable, "--rows " + rows_file + " --descriptor " + desc_file,
                  streams, endpoint);
    emulator_cpu = ProcessCpuSeconds() - cpu0;
  };
  // Against the emulator, each client's run must land every row in its table (a failed vendor
  // run is reported by the caller).
  auto checked = [&](const char* table, const std::function<void()>& fn) {
    const int64_t before = RowsTaken(emu, table);
    fn();
    const int64_t taken = RowsTaken(emu, table) - before;
    const bool failed_vendor = table == kVendorTable && !v;
    if (endpoint.empty() && !failed_vendor && taken < w.rows) {
      std::fprintf(stderr, "%s: the emulator took %lld rows of %lld\n", table,
                   static_cast<long long>(taken), static_cast<long long>(w.rows));
      std::exit(1);
    }
  };
  auto run_ours = [&] { ours = RunClient(emu, w, streams, true, endpoint); };
  if (vendor_first) checked(kVendorTable, run_vendor);
  checked(kTable, run_ours);
  if (!vendor_first) checked(kVendorTable, run_vendor);
  if (!v) return false;
  const auto& vj = *v;
  const double vr = vj["rows_per_s"].get<double>();
  if (vj["rows"].get<int64_t>() != w.rows) {
    std::fprintf(stderr, "vendor sent %lld rows, ours %lld\n",
                 static_cast<long long>(vj["rows"].get<int64_t>()),
                 static_cast<long long>(w.rows));
    return false;
  }
  const double vcpu = vj["cpu_seconds"].get<double>() + emulator_cpu;
  const double ours_per_cpu = static_cast<double>(w.rows) / ours.cpu_seconds;
  const double vendor_per_cpu = static_cast<double>(w.rows) / vcpu;
  s->ours.push_back(ours.rows_per_s);
  s->ours_mbps.push_back(ours.mb_per_s);
  s->ours_cpu.push_back(ours_per_cpu);
  s->vendor.push_back(vr);
  s->vendor_cpu.push_back(vendor_per_cpu);
  s->ratio.push_back(ours.rows_per_s / vr);
  s->cpu_ratio.push_back(ours_per_cpu / vendor_per_cpu);
  std::printf("  %d stream%s: ours %10.0f rows/s (%8.0f rows/cpu-s)   vendor %10.0f rows/s "
              "(%8.0f rows/cpu-s)   ratio %.2f\n",
              streams, streams == 1 ? " " : "s", ours.rows_per_s, ours_per_cpu, vr,
              vendor_per_cpu, ours.rows_per_s / vr);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t num_batches = EnvInt("AZ_E2E_BATCHES", 32);
  const int repeat = static_cast<int>(EnvInt("AZ_E2E_REPEAT", 3));
  const int rounds = static_cast<int>(EnvInt("AZ_E2E_ROUNDS", 3));
  const bool vendor = EnvInt("AZ_E2E_NO_VENDOR", 0) == 0;
  const int stream_counts[] = {1, 2};

  const auto t_enc = Clock::now();
  Workload w = MakeWorkload(num_batches);
  const double enc_s = std::chrono::duration<double>(Clock::now() - t_enc).count();
  std::printf("workload: %lld batches x %lld rows = %lld rows, %.1f MB framed (%.1f B/row); "
              "generate+encode %.2f s\n",
              static_cast<long long>(num_batches), static_cast<long long>(kBatchRows),
              static_cast<long long>(w.rows), w.bytes / 1e6,
              static_cast<double>(w.bytes) / static_cast<double>(w.rows), enc_s);

  g_kernel_work = &w;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();

  fs::path dir = fs::temp_directory_path() / ("az_bench_e2e_" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto emu_owner = StartNullSinkEmulator((dir / "data").string());
  az::emulator::Emulator& emu = *emu_owner;

  // Warm-up (connections, allocator).
  (void)RunClient(emu, w, 1, true);
  struct Mode {
    const char* label;
    int streams;
    bool zero_copy;
    RunResult r;
  };
  std::vector<Mode> modes = {{"zero-copy, 1 stream", 1, true, {}},
                             {"generated messages, 1 stream", 1, false, {}},
                             {"zero-copy, 2 streams", 2, true, {}},
                             {"generated messages, 2 streams", 2, false, {}}};
  std::printf("\n%-32s %12s %9s %14s\n", "client -> emulator (null sink)", "rows/s", "MB/s",
              "rows/cpu-s");
  const int only_streams = static_cast<int>(EnvInt("AZ_E2E_ONLY_STREAMS", 0));  // experiments
  for (auto& m : modes) {
    if (only_streams != 0 && m.streams != only_streams) continue;
    m.r = Best(emu, w, m.streams, m.zero_copy, repeat);
    std::printf("%-32s %12.0f %9.1f %14.0f   (best of %d, %.3f s, replayed %lld)\n", m.label,
                m.r.rows_per_s, m.r.mb_per_s, static_cast<double>(w.rows) / m.r.cpu_seconds,
                repeat, m.r.seconds, static_cast<long long>(m.r.replayed));
  }

  // Ours and the vendor's, each with 1 and with 2 streams on the same rows, interleaved round by
  // round (who goes first alternates) so both see the same machine load; each ratio compares the
  // same stream count and is the median of the per-round ratios.
  Series series[2], raw_series[2];
  std::string rows_file, desc_file;
  bool vendor_ok = vendor;
  if (vendor) {
    rows_file = WriteRowsFile(w, dir.string());
    desc_file = WriteDescriptorFile(w, dir.string());
    std::printf("\nrounds into the emulator (ours: zero copy; vendor: Python SDK record stream; "
                "%lld rows each)\n",
                static_cast<long long>(w.rows));
  }
  for (int round = 0; vendor_ok && round < rounds; ++round) {
    std::printf("round %d\n", round + 1);
    for (int i = 0; i < 2 && vendor_ok; ++i) {
      vendor_ok = RoundPair(emu, w, stream_counts[i], round % 2 == 1, rows_file, desc_file, "",
                            &series[i]);
    }
  }
  if (vendor && !vendor_ok) std::fprintf(stderr, "vendor run failed; no ratio\n");
  // Client-bound: the same runs against a server that does no per-row work (tokens still come
  // from the emulator's OAuth endpoint).
  if (vendor_ok && EnvInt("AZ_E2E_NO_RAW", 0) == 0) {
    RawAckServer raw;
    std::printf("\nclient-bound rounds (server acks without decoding)\n");
    bool ok = true;
    for (int round = 0; ok && round < rounds; ++round) {
      std::printf("round %d\n", round + 1);
      for (int i = 0; i < 2 && ok; ++i) {
        ok = RoundPair(emu, w, stream_counts[i], round % 2 == 1, rows_file, desc_file,
                       raw.endpoint(), &raw_series[i]);
      }
    }
  }
  (void)emu.Shutdown();
  std::error_code ec;
  fs::remove_all(dir, ec);

  auto round2 = [](double x) { return std::round(x * 100) / 100; };
  const char* suffix[2] = {"_1_stream", "_2_streams"};
  // The headline: the stream count at which ours is faster, against the vendor's same count.
  const int best = Median(series[1].ours) > Median(series[0].ours) ? 1 : 0;
  const Mode& best_mode = modes[best == 0 ? 0 : 2];
  nlohmann::ordered_json out = {
      {"name", "e2e_iot"},
      {"rows", w.rows},
      {"rounds", series[best].ours.size()},
      {"streams", stream_counts[best]},
      {"rows_per_s", std::round(series[best].ours.empty() ? best_mode.r.rows_per_s
                                                          : Median(series[best].ours))},
      {"mb_per_s", std::round((series[best].ours_mbps.empty() ? best_mode.r.mb_per_s
                                                              : Median(series[best].ours_mbps)) *
                              10) /
                       10},
      {"vendor_rows_per_s", std::round(Median(series[best].vendor))},
      {"ratio_vs_vendor", round2(Median(series[best].ratio))}};
  for (int i = 0; i < 2; ++i) {
    const std::string sfx = suffix[i];
    out["rows_per_s" + sfx] = std::round(Median(series[i].ours));
    out["vendor_rows_per_s" + sfx] = std::round(Median(series[i].vendor));
    out["ratio_vs_vendor" + sfx] = round2(Median(series[i].ratio));
    out["rows_per_cpu_s" + sfx] = std::round(Median(series[i].ours_cpu));
    out["vendor_rows_per_cpu_s" + sfx] = std::round(Median(series[i].vendor_cpu));
    out["cpu_ratio_vs_vendor" + sfx] = round2(Median(series[i].cpu_ratio));
    out["generated_path_rows_per_s" + sfx] = std::round(modes[i == 0 ? 1 : 3].r.rows_per_s);
    out["client_bound_rows_per_s" + sfx] = std::round(Median(raw_series[i].ours));
    out["client_bound_vendor_rows_per_s" + sfx] = std::round(Median(raw_series[i].vendor));
    out["client_bound_ratio_vs_vendor" + sfx] = round2(Median(raw_series[i].ratio));
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
