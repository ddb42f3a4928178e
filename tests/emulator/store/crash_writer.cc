// Helper for the crash test: appends rows with ascending ids to one Delta table forever and
// prints "ACK <first_id> <last_id>" for every append once it is durable. The test kills it with
// SIGKILL at random moments. Usage: crash_writer DATA_DIR FIRST_ID
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <arrow/api.h>

#include "decode/table_schema.h"
#include "store/table_store.h"

using namespace arrow_zerobus::emulator;

namespace {

void Say(const std::string& line) {
  // One write per line: lines never interleave and survive the kill once written.
  std::string text = line + "\n";
  (void)!::write(1, text.data(), text.size());
}

std::shared_ptr<arrow::RecordBatch> MakeBatch(const std::shared_ptr<arrow::Schema>& schema,
                                              int64_t first, int rows) {
  arrow::Int64Builder ids;
  arrow::StringBuilder payload;
  for (int i = 0; i < rows; ++i) {
    (void)ids.Append(first + i);
    (void)payload.Append("row-" + std::to_string(first + i));
  }
  return arrow::RecordBatch::Make(schema, rows, {*ids.Finish(), *payload.Finish()});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: crash_writer DATA_DIR FIRST_ID\n");
    return 2;
  }
  TableStoreOptions options;
  options.data_dir = argv[1];
  options.commit_interval_ms = 5;
  options.commit_max_rows = 2000;
  auto store = TableStore::Open(options);
  if (!store.ok()) {
    Say("ERROR " + store.status().ToString());
    return 1;
  }
  auto schema = SchemaFromDeclaration(
      R"({"columns": [{"name": "id", "type": "bigint", "nullable": false},
                      {"name": "payload", "type": "string", "nullable": false}]})");
  auto st = (*store)->Declare("crash.test.rows", *schema);
  auto table = (*store)->OpenExisting("crash.test.rows");
  if (!st.ok() || !table.ok()) {
    Say("ERROR " + st.ToString() + " " + table.status().ToString());
    return 1;
  }
  Say("READY");
  std::atomic<int> inflight{0};
  int64_t next = std::atoll(argv[2]);
  for (int i = 0;; ++i) {
    int rows = 1 + (i * 37) % 400;
    int64_t first = next, last = next + rows - 1;
    next += rows;
    ++inflight;
    (*table)->Append(MakeBatch(*schema, first, rows), rows * 16, [first, last, &inflight](arrow::Status s) {
      if (s.ok()) Say("ACK " + std::to_string(first) + " " + std::to_string(last));
      else Say("FAIL " + s.ToString());
      --inflight;
    });
    while (inflight.load() > 16) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}
