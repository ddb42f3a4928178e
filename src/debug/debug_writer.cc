#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <thread>

#include <arrow/io/buffered.h>
#include <arrow/io/file.h>
#include <arrow/ipc/writer.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>

#include "arrow_zerobus/config.h"
#include "arrow_zerobus/debug.h"
#include "arrow_zerobus/encode.h"
#include "arrow_zerobus/errors.h"

namespace arrow_zerobus {

namespace fs = std::filesystem;

DebugWriterOptions DebugWriterOptions::FromConfig(const WrapperConfiguration& config) {
  DebugWriterOptions o;
  o.output_dir = config.debug_output_dir.value_or("");
  o.table_name = config.table_name;
  o.arrow_enabled = config.arrow_debug_on();
  o.protobuf_enabled = config.protobuf_debug_on();
  o.flush_interval = std::chrono::seconds(config.debug_flush_interval_secs);
  o.max_file_size = config.debug_max_file_size;
  o.max_records_per_file = config.debug_max_records_per_file;
  o.max_files_retained = config.debug_max_files_retained;
  return o;
}

namespace {

constexpr int64_t kBufferBytes = 1 << 20;

struct OpenFile {
  std::string path;
  std::string desc_path;  // protobuf only
  std::shared_ptr<arrow::io::BufferedOutputStream> stream;
  std::shared_ptr<arrow::ipc::RecordBatchWriter> ipc;  // arrow only
  std::shared_ptr<arrow::Schema> schema;               // arrow only
  std::string descriptor_bytes;                        // protobuf only
  int64_t records = 0;
  int64_t bytes = 0;
  bool dirty = false;

  bool is_open() const { return stream != nullptr; }
};

std::string UtcTimestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string SequenceText(int64_t seq) {
  std::string s = std::to_string(seq);
  if (s.size() < 6) s.insert(0, 6 - s.size(), '0');
  return s;
}

arrow::Status CheckTableName(const std::string& table) {
  if (table.empty()) return ConfigurationError("debug writer: table_name is empty");
  if (table.front() == '.') {
    return ConfigurationError("debug writer: table_name '" + table + "' must not start with '.'");
  }
  for (char c : table) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) {
      return ConfigurationError("debug writer: table_name '" + table +
                                "' may hold only letters, digits, '_' and '.' (it names files)");
    }
  }
  return arrow::Status::OK();
}

// Creates `path` only if it does not exist yet; nullopt when it does (the caller picks another
// sequence number), so a file is never overwritten.
arrow::Result<std::optional<int>> CreateExclusive(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd >= 0) return std::optional<int>(fd);
  if (errno == EEXIST) return std::optional<int>();
  return arrow::Status::IOError("cannot create debug file '", path, "': ", std::strerror(errno));
}

arrow::Status WriteAll(int fd, const std::string& bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return arrow::Status::IOError("cannot write '", path, "': ", std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  return arrow::Status::OK();
}

}  // namespace

struct DebugWriter::Impl {
  DebugWriterOptions options;
  mutable std::mutex mu;
  std::condition_variable cv;
  bool closed = false;
  std::thread flusher;
  int64_t next_sequence = 0;
  OpenFile arrow_file;
  OpenFile proto_file;
  DebugWriterStats stats;
  // A failure of the background flusher, reported by the next call.
  arrow::Status deferred;

  arrow::Status TakeDeferred() {
    arrow::Status st = std::move(deferred);
    deferred = arrow::Status::OK();
    return st;
  }

  arrow::Status CheckOpen() const {
    if (closed) return arrow::Status::Invalid("debug writer for '", options.table_name, "' is closed");
    return arrow::Status::OK();
  }

  std::string Stem(int64_t seq, const std::string& timestamp) const {
    return (fs::path(options.output_dir) /
            (options.table_name + "--" + timestamp + "--" + SequenceText(seq)))
        .string();
  }

  // Opens the stream of a new data file; for protobuf the .desc is written first so a reader
  // that sees the .pb always finds its descriptor.
  arrow::Status OpenFileFor(DebugFormat format, OpenFile* file,
                            const std::string& descriptor_bytes) {
    const std::string timestamp = UtcTimestamp();
    const std::string ext = format == DebugFormat::kArrow ? ".arrows" : ".pb";
    for (;;) {
      const int64_t seq = next_sequence++;
      const std::string stem = Stem(seq, timestamp);
      std::string desc_path;
      if (format == DebugFormat::kProtobuf) {
        desc_path = stem + ".desc";
        ARROW_ASSIGN_OR_RAISE(auto desc_fd, CreateExclusive(desc_path));
        if (!desc_fd) continue;
        const arrow::Status st = WriteAll(*desc_fd, descriptor_bytes, desc_path);
        ::close(*desc_fd);
        ARROW_RETURN_NOT_OK(st);
      }
      const std::string path = stem + ext;
      ARROW_ASSIGN_OR_RAISE(auto fd, CreateExclusive(path));
      if (!fd) {
        if (!desc_path.empty()) ::unlink(desc_path.c_str());
        continue;
      }
      ARROW_ASSIGN_OR_RAISE(auto raw, arrow::io::FileOutputStream::Open(*fd));
      ARROW_ASSIGN_OR_RAISE(file->stream, arrow::io::BufferedOutputStream::Create(
                                              kBufferBytes, arrow::default_memory_pool(), raw));
      file->path = path;
      file->desc_path = desc_path;
      file->records = 0;
      file->bytes = 0;
      file->dirty = false;
      break;
    }
    if (format == DebugFormat::kArrow) {
      ++stats.arrow_files;
    } else {
      ++stats.protobuf_files;
    }
    return ApplyRetention(format, file->path);
  }

  // Deletes this table's oldest files of `format` beyond max_files_retained; never `keep`.
  arrow::Status ApplyRetention(DebugFormat format, const std::string& keep) {
    if (!options.max_files_retained) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto files, ListDebugFiles(options.output_dir, options.table_name, format));
    int64_t excess = static_cast<int64_t>(files.size()) - *options.max_files_retained;
    for (const auto& path : files) {
      if (excess <= 0) break;
      if (path == keep) continue;
      std::error_code ec;
      fs::remove(path, ec);
      if (format == DebugFormat::kProtobuf) {
        fs::remove(path.substr(0, path.size() - 3) + ".desc", ec);
      }
      ++stats.files_deleted;
      --excess;
    }
    return arrow::Status::OK();
  }

  arrow::Status CloseFile(OpenFile* file) {
    if (!file->is_open()) return arrow::Status::OK();
    arrow::Status st;
    if (file->ipc) st = file->ipc->Close();  // writes the end-of-stream marker
    const int64_t before = file->bytes;
    auto pos = file->stream->Tell();
    if (pos.ok()) stats.bytes_written += *pos - before;
    st &= file->stream->Close();
    *file = OpenFile();
    return st;
  }

  void AccountBytes(OpenFile* file) {
    auto pos = file->stream->Tell();
    if (!pos.ok()) return;
    stats.bytes_written += *pos - file->bytes;
    file->bytes = *pos;
  }

  // After a write: close the file when it is full by count or by size.
  arrow::Status MaybeRotate(OpenFile* file) {
    const bool full_by_count =
        options.max_records_per_file && file->records >= *options.max_records_per_file;
    const bool full_by_size = options.max_file_size && file->bytes >= *options.max_file_size;
    if (full_by_count || full_by_size) return CloseFile(file);
    return arrow::Status::OK();
  }

  int64_t RoomInFile(const OpenFile& file, int64_t wanted) const {
    if (!options.max_records_per_file) return wanted;
    return std::min(wanted, *options.max_records_per_file - file.records);
  }

  arrow::Status WriteArrowLocked(const arrow::RecordBatch& batch) {
    OpenFile* f = &arrow_file;
    if (f->is_open() && !f->schema->Equals(*batch.schema(), /*check_metadata=*/true)) {
      ARROW_RETURN_NOT_OK(CloseFile(f));
    }
    const int64_t n = batch.num_rows();
    int64_t offset = 0;
    do {
      if (!f->is_open()) {
        ARROW_RETURN_NOT_OK(OpenFileFor(DebugFormat::kArrow, f, ""));
        f->schema = batch.schema();
        ARROW_ASSIGN_OR_RAISE(f->ipc, arrow::ipc::MakeStreamWriter(f->stream, f->schema));
      }
      const int64_t take = RoomInFile(*f, n - offset);
      if (offset == 0 && take == n) {
        ARROW_RETURN_NOT_OK(f->ipc->WriteRecordBatch(batch));
      } else {
        ARROW_RETURN_NOT_OK(f->ipc->WriteRecordBatch(*batch.Slice(offset, take)));
      }
      f->records += take;
      f->dirty = true;
      stats.arrow_rows += take;
      offset += take;
      AccountBytes(f);
      ARROW_RETURN_NOT_OK(MaybeRotate(f));
    } while (offset < n);
    return arrow::Status::OK();
  }

  arrow::Status WriteProtoLocked(const google::protobuf::DescriptorProto& descriptor,
                                 const std::vector<std::string_view>& records) {
    OpenFile* f = &proto_file;
    std::string descriptor_bytes = descriptor.SerializeAsString();
    if (f->is_open() && f->descriptor_bytes != descriptor_bytes) {
      ARROW_RETURN_NOT_OK(CloseFile(f));
    }
    const int64_t n = static_cast<int64_t>(records.size());
    int64_t i = 0;
    while (i < n) {
      if (!f->is_open()) {
        ARROW_RETURN_NOT_OK(OpenFileFor(DebugFormat::kProtobuf, f, descriptor_bytes));
        f->descriptor_bytes = descriptor_bytes;
      }
      const int64_t begin = i;
      const int64_t end = i + RoomInFile(*f, n - i);
      for (; i < end; ++i) {
        // varint length, then the bytes: the framing protobuf's delimited readers expect.
        uint8_t head[10];
        int len = 0;
        uint64_t v = records[i].size();
        while (v >= 0x80) {
          head[len++] = static_cast<uint8_t>(v | 0x80);
          v >>= 7;
        }
        head[len++] = static_cast<uint8_t>(v);
        ARROW_RETURN_NOT_OK(f->stream->Write(head, len));
        ARROW_RETURN_NOT_OK(f->stream->Write(records[i].data(),
                                             static_cast<int64_t>(records[i].size())));
      }
      f->records += end - begin;
      stats.protobuf_records += end - begin;
      f->dirty = true;
      AccountBytes(f);
      ARROW_RETURN_NOT_OK(MaybeRotate(f));
    }
    return arrow::Status::OK();
  }

  arrow::Status FlushLocked() {
    arrow::Status st;
    for (OpenFile* f : {&arrow_file, &proto_file}) {
      if (f->is_open() && f->dirty) {
        st &= f->stream->Flush();
        f->dirty = false;
        ++stats.flushes;
      }
    }
    return st;
  }

  void FlusherLoop() {
    std::unique_lock<std::mutex> lock(mu);
    while (!closed) {
      cv.wait_for(lock, options.flush_interval, [this] { return closed; });
      if (closed) break;
      arrow::Status st = FlushLocked();
      if (!st.ok() && deferred.ok()) deferred = std::move(st);
    }
  }
};

DebugWriter::DebugWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DebugWriter::~DebugWriter() {
  if (impl_) (void)Close();
}

arrow::Result<std::unique_ptr<DebugWriter>> DebugWriter::Open(DebugWriterOptions options) {
  if (options.output_dir.empty()) {
    return ConfigurationError("debug_output_dir is required for debug files");
  }
  ARROW_RETURN_NOT_OK(CheckTableName(options.table_name));
  if (options.flush_interval.count() <= 0) {
    return ConfigurationError("debug_flush_interval_secs must be positive");
  }
  if (options.max_file_size && *options.max_file_size <= 0) {
    return ConfigurationError("debug_max_file_size must be positive, got " +
                              std::to_string(*options.max_file_size));
  }
  if (options.max_records_per_file && *options.max_records_per_file <= 0) {
    return ConfigurationError("debug_max_records_per_file must be positive, got " +
                              std::to_string(*options.max_records_per_file));
  }
  if (options.max_files_retained && *options.max_files_retained <= 0) {
    return ConfigurationError("debug_max_files_retained must be positive, got " +
                              std::to_string(*options.max_files_retained));
  }
  std::error_code ec;
  fs::create_directories(options.output_dir, ec);
  if (ec || !fs::is_directory(options.output_dir)) {
    return arrow::Status::IOError("debug_output_dir '", options.output_dir,
                                  "' cannot be created: ",
                                  ec ? ec.message() : std::string("not a directory"));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  // Continue after the highest sequence already on disk for this table (either format), so a
  // restarted writer never reuses a name even within the same second.
  for (fs::directory_iterator it(impl->options.output_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    const auto parsed = ParseDebugFileName(it->path().filename().string());
    if (parsed && parsed->table == impl->options.table_name) {
      impl->next_sequence = std::max(impl->next_sequence, parsed->sequence + 1);
    }
  }
  Impl* raw = impl.get();
  impl->flusher = std::thread([raw] { raw->FlusherLoop(); });
  return std::unique_ptr<DebugWriter>(new DebugWriter(std::move(impl)));
}

arrow::Status DebugWriter::WriteArrow(const arrow::RecordBatch& batch) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ARROW_RETURN_NOT_OK(impl_->CheckOpen());
  ARROW_RETURN_NOT_OK(impl_->TakeDeferred());
  if (!impl_->options.arrow_enabled) return arrow::Status::OK();
  return impl_->WriteArrowLocked(batch);
}

arrow::Status DebugWriter::WriteProtobuf(const google::protobuf::DescriptorProto& descriptor,
                                         const std::vector<std::string_view>& records) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ARROW_RETURN_NOT_OK(impl_->CheckOpen());
  ARROW_RETURN_NOT_OK(impl_->TakeDeferred());
  if (!impl_->options.protobuf_enabled) return arrow::Status::OK();
  return impl_->WriteProtoLocked(descriptor, records);
}

arrow::Status DebugWriter::WriteProtobuf(const google::protobuf::DescriptorProto& descriptor,
                                         const EncodedBatch& encoded) {
  if (!impl_->options.protobuf_enabled) return arrow::Status::OK();
  std::vector<std::string_view> records;
  records.reserve(static_cast<size_t>(encoded.num_records()));
  for (int64_t i = 0; i < encoded.num_records(); ++i) records.push_back(encoded.record(i));
  return WriteProtobuf(descriptor, records);
}

arrow::Status DebugWriter::Flush() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ARROW_RETURN_NOT_OK(impl_->CheckOpen());
  ARROW_RETURN_NOT_OK(impl_->TakeDeferred());
  return impl_->FlushLocked();
}

arrow::Status DebugWriter::Rotate() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ARROW_RETURN_NOT_OK(impl_->CheckOpen());
  arrow::Status st = impl_->CloseFile(&impl_->arrow_file);
  st &= impl_->CloseFile(&impl_->proto_file);
  return st;
}

arrow::Status DebugWriter::Close() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->closed) return arrow::Status::OK();
    impl_->closed = true;
  }
  impl_->cv.notify_all();
  if (impl_->flusher.joinable()) impl_->flusher.join();
  std::lock_guard<std::mutex> lock(impl_->mu);
  arrow::Status st = impl_->TakeDeferred();
  st &= impl_->CloseFile(&impl_->arrow_file);
  st &= impl_->CloseFile(&impl_->proto_file);
  return st;
}

DebugWriterStats DebugWriter::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

const DebugWriterOptions& DebugWriter::options() const { return impl_->options; }

}  // namespace arrow_zerobus
