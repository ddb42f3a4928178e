// Debug file names, listing, and the readers (docs/debug-files.md).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>
#include <arrow/table.h>

#include "arrow_zerobus/debug.h"
#include "common/proto_wire.h"

namespace arrow_zerobus {

namespace fs = std::filesystem;

namespace {

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
}

// "YYYYMMDDTHHMMSSZ"
bool IsTimestamp(std::string_view s) {
  return s.size() == 16 && AllDigits(s.substr(0, 8)) && s[8] == 'T' &&
         AllDigits(s.substr(9, 6)) && s[15] == 'Z';
}

}  // namespace

std::optional<DebugFileName> ParseDebugFileName(std::string_view name) {
  // Table names hold only [A-Za-z0-9_.], so "--" separates the three parts unambiguously.
  const size_t first = name.find("--");
  if (first == std::string_view::npos || first == 0) return std::nullopt;
  const size_t second = name.find("--", first + 2);
  if (second == std::string_view::npos) return std::nullopt;
  if (name.find("--", second + 2) != std::string_view::npos) return std::nullopt;
  const std::string_view table = name.substr(0, first);
  const std::string_view timestamp = name.substr(first + 2, second - first - 2);
  const std::string_view rest = name.substr(second + 2);
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const std::string_view seq = rest.substr(0, dot);
  const std::string_view ext = rest.substr(dot + 1);
  if (!IsTimestamp(timestamp) || !AllDigits(seq) || seq.size() > 18) return std::nullopt;
  if (ext != "arrows" && ext != "pb" && ext != "desc") return std::nullopt;
  for (char c : table) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) return std::nullopt;
  }
  DebugFileName out;
  out.table = std::string(table);
  out.timestamp = std::string(timestamp);
  out.sequence = std::stoll(std::string(seq));
  out.extension = std::string(ext);
  return out;
}

arrow::Result<std::vector<std::string>> ListDebugFiles(const std::string& dir,
                                                       std::string_view table_name,
                                                       DebugFormat format) {
  const std::string_view ext = format == DebugFormat::kArrow ? "arrows" : "pb";
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const auto parsed = ParseDebugFileName(name);
    if (!parsed || parsed->table != table_name || parsed->extension != ext) continue;
    found.emplace_back(parsed->sequence, it->path().string());
  }
  if (ec) {
    return arrow::Status::IOError("cannot list debug directory '", dir, "': ", ec.message());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  out.reserve(found.size());
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

arrow::Result<std::shared_ptr<arrow::Table>> ReadArrowDebugFile(const std::string& path) {
  auto file = arrow::io::ReadableFile::Open(path);
  if (!file.ok()) {
    return arrow::Status::IOError("cannot open Arrow debug file '", path,
                                  "': ", file.status().message());
  }
  auto reader = arrow::ipc::RecordBatchStreamReader::Open(*file);
  if (!reader.ok()) {
    return arrow::Status::Invalid("'", path, "' is not an Arrow IPC stream: ",
                                  reader.status().message());
  }
  auto table = (*reader)->ToTable();
  if (!table.ok()) {
    return arrow::Status::Invalid("'", path, "': ", table.status().message());
  }
  return *table;
}

arrow::Result<ProtobufDebugFile> ReadProtobufDebugFile(const std::string& path) {
  constexpr std::string_view kExt = ".pb";
  if (path.size() < kExt.size() || path.compare(path.size() - kExt.size(), kExt.size(), kExt)) {
    return arrow::Status::Invalid("'", path, "' is not a protobuf debug file (.pb)");
  }
  const std::string desc_path = path.substr(0, path.size() - kExt.size()) + ".desc";
  auto slurp = [](const std::string& p, std::string* out) -> arrow::Status {
    std::ifstream in(p, std::ios::binary);
    if (!in) return arrow::Status::IOError("cannot open '", p, "'");
    std::ostringstream buf;
    buf << in.rdbuf();
    *out = std::move(buf).str();
    return arrow::Status::OK();
  };
  std::string desc_bytes, data;
  ARROW_RETURN_NOT_OK(slurp(desc_path, &desc_bytes));
  ARROW_RETURN_NOT_OK(slurp(path, &data));
  ProtobufDebugFile out;
  if (!out.descriptor.ParseFromString(desc_bytes)) {
    return arrow::Status::Invalid("'", desc_path, "' does not hold a serialized DescriptorProto");
  }
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t start = pos;
    const auto* base = reinterpret_cast<const uint8_t*>(data.data());
    const uint8_t* p = base + pos;
    uint64_t length = 0;
    const bool done = wire::ReadVarint(p, base + data.size(), &length);
    pos = static_cast<size_t>(p - base);
    if (!done) {
      return arrow::Status::Invalid("'", path, "': record ", out.records.size(), " at byte ",
                                    start, ": truncated or malformed length");
    }
    if (length > data.size() - pos) {
      return arrow::Status::Invalid("'", path, "': record ", out.records.size(), " at byte ",
                                    start, ": length ", length, " but only ", data.size() - pos,
                                    " bytes left (truncated file)");
    }
    out.records.emplace_back(data, pos, length);
    pos += length;
  }
  return out;
}

}  // namespace arrow_zerobus
