// Crash safety: a writer process is killed with SIGKILL at random moments after some acks; every
// acked row must be in the table, no row twice, and the table must reopen and stay readable.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <iostream>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "emulator/store/store_test_util.h"
#include "store/table_store.h"

namespace arrow_zerobus::emulator {
namespace {

namespace fs = std::filesystem;

struct WriterRun {
  std::vector<std::pair<int64_t, int64_t>> acked;
  std::string errors;
};

// Starts the writer, waits for `min_acks` acks, waits `delay`, kills it, returns all its acks.
WriterRun RunAndKill(const std::string& dir, int64_t first_id, int min_acks, std::chrono::microseconds delay) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    std::string id = std::to_string(first_id);
    ::execl(AZ_CRASH_WRITER, AZ_CRASH_WRITER, dir.c_str(), id.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  WriterRun run;
  std::string buffer;
  int acks = 0;
  bool killed = false;
  char chunk[4096];
  auto parse = [&]() {
    size_t nl;
    while ((nl = buffer.find('\n')) != std::string::npos) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      int64_t a, b;
      if (std::sscanf(line.c_str(), "ACK %ld %ld", &a, &b) == 2) {
        run.acked.emplace_back(a, b);
        ++acks;
      } else if (line != "READY") {
        run.errors += line + "\n";
      }
    }
  };
  while (true) {
    ssize_t n = ::read(fds[0], chunk, sizeof(chunk));
    if (n <= 0) break;
    buffer.append(chunk, static_cast<size_t>(n));
    parse();
    if (!killed && acks >= min_acks) {
      std::this_thread::sleep_for(delay);
      ::kill(pid, SIGKILL);
      killed = true;
    }
    if (!run.errors.empty() && !killed) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "writer ended by itself: " << run.errors;
  return run;
}

TEST(CrashSafety, EveryAckedRowSurvivesKillNine) {
  std::string tmpl = (fs::temp_directory_path() / "az_crash_XXXXXX").string();
  std::string dir = ::mkdtemp(tmpl.data());
  std::mt19937 rng(20240607);
  std::set<std::pair<int64_t, int64_t>> acked;
  int64_t acked_rows = 0;
  for (int round = 0; round < 6; ++round) {
    int min_acks = std::uniform_int_distribution<int>(1, 40)(rng);
    auto delay = std::chrono::microseconds(std::uniform_int_distribution<int>(0, 30000)(rng));
    WriterRun run = RunAndKill(dir, int64_t{round} * 1000000000, min_acks, delay);
    ASSERT_TRUE(run.errors.empty()) << run.errors;
    ASSERT_GE(static_cast<int>(run.acked.size()), min_acks);
    for (const auto& r : run.acked) {
      acked.insert(r);
      acked_rows += r.second - r.first + 1;
    }
    // The table reopens after every crash (schema from the log, next version after the last).
    TableStoreOptions options;
    options.data_dir = dir;
    auto store = TableStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto stats = (*store)->Stats("crash.test.rows");
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    EXPECT_GE(stats->version, 1);
    ASSERT_TRUE((*store)->Close().ok());
  }
  const std::string table_dir = dir + "/crash/test/rows";
  auto rows = testing::ReadDeltaRows(table_dir, nullptr);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  std::set<int64_t> present;
  int64_t duplicates = 0;
  for (const auto& chunk : (*rows)->GetColumnByName("id")->chunks()) {
    auto ids = std::static_pointer_cast<arrow::Int64Array>(chunk);
    for (int64_t i = 0; i < ids->length(); ++i) duplicates += !present.insert(ids->Value(i)).second;
  }
  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(static_cast<int64_t>(present.size()), (*rows)->num_rows());
  int64_t missing = 0;
  for (const auto& [first, last] : acked) {
    for (int64_t id = first; id <= last; ++id) missing += present.count(id) == 0;
  }
  EXPECT_EQ(missing, 0) << "acked rows missing after kill -9";
  EXPECT_GE(static_cast<int64_t>(present.size()), acked_rows);
  std::cout << "acked rows " << acked_rows << ", rows in table " << present.size() << "\n";

  // An independent reader agrees on the row count.
  // os._exit: deltalake 1.6.6 with pyarrow 26 can abort in interpreter teardown after printing.
  std::string cmd = std::string(AZ_PYTHON) +
                    " -c \"import deltalake,os,sys; print(deltalake.DeltaTable(sys.argv[1])"
                    ".to_pyarrow_table().num_rows, flush=True); os._exit(0)\" " +
                    table_dir + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char out[256] = {0};
  size_t n = std::fread(out, 1, sizeof(out) - 1, pipe);
  ::pclose(pipe);
  EXPECT_EQ(std::string(out, n), std::to_string(present.size()) + "\n");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace arrow_zerobus::emulator
