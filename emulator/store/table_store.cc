#include "store/table_store.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include <arrow/record_batch.h>
#include <arrow/type.h>

#include "store/delta_table_internal.h"
#include "store/file_util_internal.h"

namespace arrow_zerobus::emulator {

namespace {

using Clock = std::chrono::steady_clock;

// Shared by the store, its tables and the committer thread (tables may outlive the store).
struct CommitSignal {
  std::mutex mu;
  std::condition_variable wake;  // the committer waits for work
  std::condition_variable done;  // Flush() waits for commits
  uint64_t generation = 0;
  int flush_requests = 0;
  bool stop = false;
};

struct PendingAppend {
  std::shared_ptr<arrow::RecordBatch> batch;
  int64_t wire_bytes;
  DurableCallback on_durable;
};

class TableImpl final : public Table {
 public:
  TableImpl(std::string name, std::shared_ptr<arrow::Schema> schema,
            std::unique_ptr<internal::DeltaTable> delta, std::shared_ptr<CommitSignal> signal,
            const TableStoreOptions& options)
      : name_(std::move(name)),
        schema_(std::move(schema)),
        delta_(std::move(delta)),
        signal_(std::move(signal)),
        null_sink_(options.sink == SinkKind::kNull),
        interval_(std::chrono::milliseconds(options.commit_interval_ms)),
        max_rows_(options.commit_max_rows) {
    if (delta_) version_ = delta_->version();
  }

  const std::string& name() const override { return name_; }
  const std::shared_ptr<arrow::Schema>& schema() const override { return schema_; }

  void Append(std::shared_ptr<arrow::RecordBatch> batch, int64_t wire_bytes,
              DurableCallback on_durable) override {
    if (!batch) {
      on_durable(arrow::Status::Invalid("table '", name_, "': Append of a null batch"));
      return;
    }
    if (batch->schema() != schema_ && !batch->schema()->Equals(*schema_, /*check_metadata=*/false)) {
      on_durable(arrow::Status::Invalid("table '", name_, "': batch schema ", batch->schema()->ToString(),
                                        " differs from the table schema ", schema_->ToString()));
      return;
    }
    const int64_t rows = batch->num_rows();
    if (null_sink_) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (closed_) {
          on_durable(arrow::Status::IOError("table store is closed"));
          return;
        }
        rows_ += rows;
        bytes_ += wire_bytes;
      }
      on_durable(arrow::Status::OK());
      return;
    }
    bool notify;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) {
        on_durable(arrow::Status::IOError("table store is closed"));
        return;
      }
      if (pending_.empty()) oldest_ = Clock::now();
      pending_.push_back(PendingAppend{std::move(batch), wire_bytes, std::move(on_durable)});
      pending_rows_ += rows;
      ++appended_seq_;
      notify = pending_.size() == 1 || pending_rows_ >= max_rows_;
    }
    if (notify) {
      std::lock_guard<std::mutex> lock(signal_->mu);
      ++signal_->generation;
      signal_->wake.notify_one();
    }
  }

  TableStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    TableStats s;
    s.rows = rows_;
    s.bytes = bytes_;
    s.commits = commits_;
    s.version = version_;
    s.pending_rows = pending_rows_;
    return s;
  }

  // --- committer side ---

  // Whether pending rows must be committed now; otherwise lowers *deadline to when they must.
  bool IsDue(Clock::time_point now, bool force, Clock::time_point* deadline) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.empty()) return false;
    if (force || pending_rows_ >= max_rows_ || now >= oldest_ + interval_) return true;
    *deadline = std::min(*deadline, oldest_ + interval_);
    return false;
  }

  uint64_t appended_seq() const {
    std::lock_guard<std::mutex> lock(mu_);
    return appended_seq_;
  }
  uint64_t durable_seq() const {
    std::lock_guard<std::mutex> lock(mu_);
    return durable_seq_;
  }

  // Commits everything pending as one Delta version, then runs the callbacks in order.
  // Only the committer thread (or Close after it stopped) calls this.
  void CommitPending() {
    std::vector<PendingAppend> work;
    {
      std::lock_guard<std::mutex> lock(mu_);
      work.swap(pending_);
      pending_rows_ = 0;
    }
    if (work.empty()) return;
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    int64_t rows = 0, bytes = 0;
    for (const auto& p : work) {
      rows += p.batch->num_rows();
      bytes += p.wire_bytes;
      if (p.batch->num_rows() > 0) batches.push_back(p.batch);
    }
    arrow::Status status;
    int64_t version = -1;
    if (delta_ && !batches.empty()) {
      auto result = delta_->Append(batches);
      status = result.status();
      if (result.ok()) version = result->version;
    }
    if (!status.ok()) {
      status = arrow::Status::IOError("table '", name_, "': commit failed: ", status.message());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (status.ok()) {
        rows_ += rows;
        bytes_ += bytes;
        if (version >= 0) {
          ++commits_;
          version_ = version;
        }
      }
      durable_seq_ += work.size();
    }
    for (auto& p : work) p.on_durable(status);
  }

  void MarkClosed() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }

  std::string path() const { return delta_ ? delta_->path() : std::string(); }

 private:
  const std::string name_;
  const std::shared_ptr<arrow::Schema> schema_;
  const std::unique_ptr<internal::DeltaTable> delta_;  // null for the null sink
  const std::shared_ptr<CommitSignal> signal_;
  const bool null_sink_;
  const Clock::duration interval_;
  const int64_t max_rows_;

  mutable std::mutex mu_;
  std::vector<PendingAppend> pending_;
  int64_t pending_rows_ = 0;
  Clock::time_point oldest_;
  uint64_t appended_seq_ = 0;
  uint64_t durable_seq_ = 0;
  bool closed_ = false;
  int64_t rows_ = 0, bytes_ = 0, commits_ = 0, version_ = -1;
};

// "Cat.Sch.Tbl" -> "cat.sch.tbl" (Unity Catalog names are case-insensitive).
arrow::Result<std::string> NormalizeName(const std::string& name, std::vector<std::string>* parts) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    out.push_back(name.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  bool ok = out.size() == 3;
  for (auto& part : out) {
    if (part.empty() || part.size() > 255 ||
        !std::all_of(part.begin(), part.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; })) {
      ok = false;
    }
    for (char& c : part) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (!ok) {
    return InvalidArgument("table name '" + name +
                           "' must have three parts catalog.schema.table, each of letters, digits "
                           "and underscores");
  }
  if (parts) *parts = out;
  return out[0] + "." + out[1] + "." + out[2];
}

class TableStoreImpl final : public TableStore {
 public:
  explicit TableStoreImpl(TableStoreOptions options)
      : TableStore(std::move(options)), signal_(std::make_shared<CommitSignal>()) {}

  ~TableStoreImpl() override { (void)Close(); }

  arrow::Status Init() {
    if (options_.sink == SinkKind::kNull) return arrow::Status::OK();
    if (options_.data_dir.empty()) {
      return InvalidArgument("TableStoreOptions.data_dir is required for the Delta sink");
    }
    ARROW_RETURN_NOT_OK(internal::MakeDirs(options_.data_dir, options_.fsync));
    ARROW_ASSIGN_OR_RAISE(lock_, internal::DirLock::Acquire(options_.data_dir + "/.zerobus-emulator.lock"));
    ARROW_RETURN_NOT_OK(LoadTables());
    committer_ = std::thread([this] { CommitterLoop(); });
    return arrow::Status::OK();
  }

  arrow::Status Declare(const std::string& name, std::shared_ptr<arrow::Schema> schema) override {
    std::vector<std::string> parts;
    ARROW_ASSIGN_OR_RAISE(std::string key, NormalizeName(name, &parts));
    if (!schema) return InvalidArgument("table '" + key + "': no schema");
    auto normalized = NormalizeTableSchema(*schema);
    if (!normalized.ok()) return InvalidArgument("table '" + key + "': " + normalized.status().message());
    std::lock_guard<std::mutex> lock(mu_);
    ARROW_RETURN_NOT_OK(CheckOpen());
    auto it = tables_.find(key);
    if (it != tables_.end()) {
      if (it->second->schema()->Equals(**normalized, false)) return arrow::Status::OK();
      return arrow::Status::AlreadyExists("table '", key, "' already exists with schema ",
                                          it->second->schema()->ToString(), "; declared ",
                                          (*normalized)->ToString());
    }
    return CreateLocked(key, parts, *normalized).status();
  }

  arrow::Result<std::shared_ptr<Table>> OpenForWrite(const std::string& name,
                                                     const DescriptorProto& descriptor) override {
    std::vector<std::string> parts;
    ARROW_ASSIGN_OR_RAISE(std::string key, NormalizeName(name, &parts));
    std::lock_guard<std::mutex> lock(mu_);
    ARROW_RETURN_NOT_OK(CheckOpen());
    auto it = tables_.find(key);
    if (it != tables_.end()) {
      arrow::Status st = CheckDescriptorAgainstSchema(descriptor, *it->second->schema());
      if (!st.ok()) return st.WithMessage("table '", key, "': ", st.message());
      return std::static_pointer_cast<Table>(it->second);
    }
    if (options_.strict) {
      return NotFound("table '" + key + "' does not exist (the emulator runs in strict mode: tables must be declared)");
    }
    auto schema = SchemaFromDescriptor(descriptor);
    if (!schema.ok()) {
      return schema.status().WithMessage("cannot create table '", key, "' from the descriptor: ",
                                         schema.status().message());
    }
    ARROW_ASSIGN_OR_RAISE(auto table, CreateLocked(key, parts, *schema));
    return std::static_pointer_cast<Table>(table);
  }

  arrow::Result<std::shared_ptr<Table>> OpenExisting(const std::string& name) override {
    ARROW_ASSIGN_OR_RAISE(auto table, Find(name));
    return std::static_pointer_cast<Table>(table);
  }

  arrow::Result<std::shared_ptr<arrow::Schema>> GetSchema(const std::string& name) const override {
    ARROW_ASSIGN_OR_RAISE(auto table, Find(name));
    return table->schema();
  }

  std::vector<std::string> ListTables() const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> names;
    for (const auto& [name, table] : tables_) names.push_back(name);
    return names;  // std::map: sorted
  }

  arrow::Result<TableStats> Stats(const std::string& name) const override {
    ARROW_ASSIGN_OR_RAISE(auto table, Find(name));
    return table->stats();
  }

  arrow::Result<std::string> TablePath(const std::string& name) const override {
    ARROW_ASSIGN_OR_RAISE(auto table, Find(name));
    return table->path();
  }

  arrow::Status Flush() override {
    if (options_.sink == SinkKind::kNull) return arrow::Status::OK();
    std::vector<std::pair<std::shared_ptr<TableImpl>, uint64_t>> targets;
    for (const auto& t : Snapshot()) targets.emplace_back(t, t->appended_seq());
    std::unique_lock<std::mutex> lock(signal_->mu);
    if (signal_->stop) return arrow::Status::OK();  // Close() committed everything
    ++signal_->flush_requests;
    ++signal_->generation;
    signal_->wake.notify_one();
    signal_->done.wait(lock, [&] {
      if (signal_->stop) return true;
      return std::all_of(targets.begin(), targets.end(),
                         [](const auto& t) { return t.first->durable_seq() >= t.second; });
    });
    --signal_->flush_requests;
    return arrow::Status::OK();
  }

  arrow::Status Close() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return arrow::Status::OK();
      closed_ = true;
    }
    {
      std::lock_guard<std::mutex> lock(signal_->mu);
      signal_->stop = true;
      signal_->wake.notify_all();
      signal_->done.notify_all();
    }
    if (committer_.joinable()) committer_.join();
    // Appends that raced with the stop: no more can arrive once each table is marked closed.
    for (const auto& t : Snapshot()) {
      t->MarkClosed();
      t->CommitPending();
    }
    lock_.reset();
    return arrow::Status::OK();
  }

 private:
  arrow::Status CheckOpen() const {
    if (closed_) return arrow::Status::IOError("table store is closed");
    return arrow::Status::OK();
  }

  arrow::Result<std::shared_ptr<TableImpl>> Find(const std::string& name) const {
    ARROW_ASSIGN_OR_RAISE(std::string key, NormalizeName(name, nullptr));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tables_.find(key);
    if (it == tables_.end()) return NotFound("table '" + key + "' does not exist");
    return it->second;
  }

  std::vector<std::shared_ptr<TableImpl>> Snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::shared_ptr<TableImpl>> out;
    for (const auto& [name, table] : tables_) out.push_back(table);
    return out;
  }

  std::string PathOf(const std::vector<std::string>& parts) const {
    return options_.data_dir + "/" + parts[0] + "/" + parts[1] + "/" + parts[2];
  }

  arrow::Result<std::shared_ptr<TableImpl>> CreateLocked(const std::string& key,
                                                         const std::vector<std::string>& parts,
                                                         std::shared_ptr<arrow::Schema> schema) {
    std::unique_ptr<internal::DeltaTable> delta;
    if (options_.sink == SinkKind::kDelta) {
      ARROW_ASSIGN_OR_RAISE(delta, internal::DeltaTable::Create(PathOf(parts), key, schema, options_.fsync));
    }
    auto table = std::make_shared<TableImpl>(key, std::move(schema), std::move(delta), signal_, options_);
    tables_.emplace(key, table);
    return table;
  }

  arrow::Status LoadTables() {
    const std::string& root = options_.data_dir;
    ARROW_ASSIGN_OR_RAISE(auto catalogs, internal::ListDir(root));
    for (const auto& c : catalogs) {
      if (!internal::IsDirectory(root + "/" + c)) continue;
      ARROW_ASSIGN_OR_RAISE(auto schemas, internal::ListDir(root + "/" + c));
      for (const auto& s : schemas) {
        if (!internal::IsDirectory(root + "/" + c + "/" + s)) continue;
        ARROW_ASSIGN_OR_RAISE(auto tables, internal::ListDir(root + "/" + c + "/" + s));
        for (const auto& t : tables) {
          std::string path = root + "/" + c + "/" + s + "/" + t;
          if (!internal::DeltaTable::Exists(path)) continue;
          std::vector<std::string> parts;
          auto key = NormalizeName(c + "." + s + "." + t, &parts);
          if (!key.ok() || PathOf(parts) != path) continue;  // not a name the emulator makes
          auto delta = internal::DeltaTable::Open(path, options_.fsync);
          if (!delta.ok()) {
            return delta.status().WithMessage("cannot reopen table '", *key, "': ", delta.status().message());
          }
          auto schema = (*delta)->schema();
          tables_.emplace(*key, std::make_shared<TableImpl>(*key, std::move(schema), std::move(*delta),
                                                            signal_, options_));
        }
      }
    }
    return arrow::Status::OK();
  }

  void CommitterLoop() {
    while (true) {
      std::vector<std::shared_ptr<TableImpl>> due;
      {
        std::unique_lock<std::mutex> lock(signal_->mu);
        while (true) {
          const bool force = signal_->flush_requests > 0 || signal_->stop;
          const auto now = Clock::now();
          auto deadline = now + std::chrono::seconds(1);
          for (const auto& t : Snapshot()) {
            if (t->IsDue(now, force, &deadline)) due.push_back(t);
          }
          if (!due.empty()) break;
          if (signal_->stop) return;
          const uint64_t generation = signal_->generation;
          signal_->wake.wait_until(lock, deadline,
                                   [&] { return signal_->generation != generation || signal_->stop; });
        }
      }
      for (const auto& t : due) t->CommitPending();
      std::lock_guard<std::mutex> lock(signal_->mu);
      signal_->done.notify_all();
    }
  }

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<TableImpl>> tables_;
  bool closed_ = false;
  std::shared_ptr<CommitSignal> signal_;
  std::unique_ptr<internal::DirLock> lock_;
  std::thread committer_;
};

}  // namespace

arrow::Result<std::shared_ptr<TableStore>> TableStore::Open(const TableStoreOptions& options) {
  if (options.commit_interval_ms < 0) {
    return InvalidArgument("TableStoreOptions.commit_interval_ms must be >= 0");
  }
  if (options.commit_max_rows < 1) {
    return InvalidArgument("TableStoreOptions.commit_max_rows must be >= 1");
  }
  auto store = std::make_shared<TableStoreImpl>(options);
  ARROW_RETURN_NOT_OK(store->Init());
  return store;
}

}  // namespace arrow_zerobus::emulator
