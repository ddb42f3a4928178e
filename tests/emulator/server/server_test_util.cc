#include "server_test_util.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <arrow/io/file.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <parquet/arrow/reader.h>

#include "server/auth.h"

namespace arrow_zerobus::emulator::testing {

namespace fs = std::filesystem;
using google::protobuf::FieldDescriptorProto;

TempDir::TempDir() {
  std::random_device rd;
  path_ = (fs::temp_directory_path() / ("az-emu-" + std::to_string(rd()) + std::to_string(rd())))
              .string();
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

EmulatorOptions TestOptions(const std::string& dir) {
  EmulatorOptions o = EmulatorOptions::Defaults();
  o.data_dir = dir;
  o.commit_interval_ms = 5;
  o.fsync = false;
  o.principals = {{"test-client", "test-secret"}};
  return o;
}

google::protobuf::DescriptorProto RowDescriptor() {
  google::protobuf::DescriptorProto d;
  d.set_name("Row");
  auto add = [&](const char* name, int number, FieldDescriptorProto::Type type,
                 FieldDescriptorProto::Label label) {
    auto* f = d.add_field();
    f->set_name(name);
    f->set_number(number);
    f->set_type(type);
    f->set_label(label);
  };
  add("id", 1, FieldDescriptorProto::TYPE_INT64, FieldDescriptorProto::LABEL_REQUIRED);
  add("name", 2, FieldDescriptorProto::TYPE_STRING, FieldDescriptorProto::LABEL_OPTIONAL);
  add("value", 3, FieldDescriptorProto::TYPE_DOUBLE, FieldDescriptorProto::LABEL_OPTIONAL);
  return d;
}

RowEncoder::RowEncoder() {
  google::protobuf::FileDescriptorProto file;
  file.set_name("row_test.proto");
  file.set_syntax("proto2");
  *file.add_message_type() = RowDescriptor();
  const auto* fd = pool_.BuildFile(file);
  descriptor_ = fd->FindMessageTypeByName("Row");
}

std::string RowEncoder::Encode(int64_t id, const std::string* name, const double* value) const {
  std::unique_ptr<google::protobuf::Message> m(factory_.GetPrototype(descriptor_)->New());
  const auto* refl = m->GetReflection();
  refl->SetInt64(m.get(), descriptor_->FindFieldByName("id"), id);
  if (name) refl->SetString(m.get(), descriptor_->FindFieldByName("name"), *name);
  if (value) refl->SetDouble(m.get(), descriptor_->FindFieldByName("value"), *value);
  return m->SerializeAsString();
}

grpc::Status StreamCall::Close(std::vector<zb::EphemeralStreamResponse>* rest) {
  stream->WritesDone();
  zb::EphemeralStreamResponse r;
  while (stream->Read(&r)) {
    if (rest) rest->push_back(r);
  }
  return stream->Finish();
}

std::vector<int64_t> StreamCall::ReadAcksUntil(int64_t offset) {
  std::vector<int64_t> acks;
  zb::EphemeralStreamResponse r;
  while (stream->Read(&r)) {
    if (!r.has_ingest_record_response()) continue;
    acks.push_back(r.ingest_record_response().durability_ack_up_to_offset());
    if (acks.back() >= offset) break;
  }
  return acks;
}

Client::Client(const std::string& target, std::shared_ptr<grpc::ChannelCredentials> creds) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(64 * 1024 * 1024);
  channel_ = grpc::CreateCustomChannel(
      target, creds ? creds : grpc::InsecureChannelCredentials(), args);
  stub_ = zb::Zerobus::NewStub(channel_);
}

StreamCall Client::Open(const std::string& token, const std::string& table_header,
                        std::chrono::milliseconds deadline) {
  StreamCall call;
  call.context = std::make_unique<grpc::ClientContext>();
  call.context->set_deadline(std::chrono::system_clock::now() + deadline);
  if (!token.empty()) call.context->AddMetadata("authorization", token);
  if (!table_header.empty()) {
    call.context->AddMetadata("x-databricks-zerobus-table-name", table_header);
  }
  call.context->AddMetadata("user-agent", "az-emulator-test/0.1");
  call.stream = stub_->EphemeralStream(call.context.get());
  return call;
}

zb::EphemeralStreamRequest CreateRequest(const std::string& table,
                                         const google::protobuf::DescriptorProto* descriptor,
                                         zb::RecordType type) {
  zb::EphemeralStreamRequest r;
  auto* c = r.mutable_create_stream();
  c->set_table_name(table);
  if (descriptor) c->set_descriptor_proto(descriptor->SerializeAsString());
  c->set_record_type(type);
  return r;
}

zb::EphemeralStreamRequest ProtoRecord(int64_t offset, std::string bytes) {
  zb::EphemeralStreamRequest r;
  r.mutable_ingest_record()->set_offset_id(offset);
  r.mutable_ingest_record()->set_proto_encoded_record(std::move(bytes));
  return r;
}

zb::EphemeralStreamRequest ProtoBatch(int64_t offset, std::vector<std::string> records) {
  zb::EphemeralStreamRequest r;
  r.mutable_ingest_record_batch()->set_offset_id(offset);
  auto* b = r.mutable_ingest_record_batch()->mutable_proto_encoded_batch();
  for (auto& rec : records) b->add_records(std::move(rec));
  return r;
}

zb::EphemeralStreamRequest JsonRecord(int64_t offset, std::string json) {
  zb::EphemeralStreamRequest r;
  r.mutable_ingest_record()->set_offset_id(offset);
  r.mutable_ingest_record()->set_json_record(std::move(json));
  return r;
}

zb::EphemeralStreamRequest JsonBatch(int64_t offset, std::vector<std::string> records) {
  zb::EphemeralStreamRequest r;
  r.mutable_ingest_record_batch()->set_offset_id(offset);
  auto* b = r.mutable_ingest_record_batch()->mutable_json_batch();
  for (auto& rec : records) b->add_records(std::move(rec));
  return r;
}

StreamCall OpenCreated(Client& client, const std::string& token, const std::string& table,
                       const google::protobuf::DescriptorProto* descriptor, zb::RecordType type,
                       std::string* stream_id) {
  StreamCall call = client.Open(token, table);
  EXPECT_TRUE(call.Write(CreateRequest(table, descriptor, type)));
  zb::EphemeralStreamResponse r;
  if (!call.Read(&r)) {
    grpc::Status st = call.stream->Finish();
    ADD_FAILURE() << "create_stream refused: " << st.error_code() << " " << st.error_message();
    return call;
  }
  EXPECT_TRUE(r.has_create_stream_response());
  if (stream_id) *stream_id = r.create_stream_response().stream_id();
  return call;
}

grpc::Status CreateStatus(Client& client, const std::string& token, const std::string& header,
                          const zb::EphemeralStreamRequest& create) {
  StreamCall call = client.Open(token, header);
  call.Write(create);
  zb::EphemeralStreamResponse r;
  if (call.Read(&r) && r.has_create_stream_response()) {
    call.context->TryCancel();
    call.stream->Finish();
    return grpc::Status::OK;
  }
  return call.stream->Finish();
}

std::string BearerFor(Emulator& emulator, const std::string& table,
                      std::chrono::seconds lifetime) {
  return "Bearer " + emulator.tokens().IssueForTesting("test-client", {table}, lifetime);
}

namespace {

std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

arrow::Result<std::shared_ptr<arrow::Table>> ReadDeltaTable(const std::string& table_dir) {
  fs::path log = fs::path(table_dir) / "_delta_log";
  std::vector<fs::path> commits;
  for (const auto& e : fs::directory_iterator(log)) {
    if (e.path().extension() == ".json") commits.push_back(e.path());
  }
  std::sort(commits.begin(), commits.end());
  std::vector<std::string> files;
  std::set<std::string> removed;
  for (const auto& c : commits) {
    std::ifstream in(c);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line);
      if (j.contains("add")) files.push_back(PercentDecode(j["add"]["path"]));
      if (j.contains("remove")) removed.insert(PercentDecode(j["remove"]["path"]));
    }
  }
  std::vector<std::shared_ptr<arrow::Table>> parts;
  for (const auto& f : files) {
    if (removed.count(f)) continue;
    ARROW_ASSIGN_OR_RAISE(auto input,
                          arrow::io::ReadableFile::Open((fs::path(table_dir) / f).string()));
    ARROW_ASSIGN_OR_RAISE(auto reader,
                          parquet::arrow::OpenFile(input, arrow::default_memory_pool()));
    ARROW_ASSIGN_OR_RAISE(auto t, reader->ReadTable());
    parts.push_back(std::move(t));
  }
  if (parts.empty()) return arrow::Status::Invalid("Delta table has no data files");
  return arrow::ConcatenateTables(parts);
}

std::string Base64(const std::string& in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += {kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

namespace {

std::unique_ptr<httplib::Client> HttpClientFor(const Emulator& emulator) {
  auto c = std::make_unique<httplib::Client>(emulator.http_endpoint());
  c->enable_server_certificate_verification(false);
  c->set_connection_timeout(5);
  c->set_read_timeout(10);
  return c;
}

HttpResult ToResult(const httplib::Result& r) {
  if (!r) return HttpResult{-1, "transport error " + httplib::to_string(r.error())};
  return HttpResult{r->status, r->body};
}

}  // namespace

HttpResult HttpGet(const Emulator& emulator, const std::string& path,
                   const std::string& bearer) {
  auto c = HttpClientFor(emulator);
  httplib::Headers h;
  if (!bearer.empty()) h.emplace("Authorization", bearer);
  return ToResult(c->Get(path, h));
}

HttpResult HttpPost(const Emulator& emulator, const std::string& path, const std::string& body,
                    const std::string& content_type,
                    const std::vector<std::pair<std::string, std::string>>& headers) {
  auto c = HttpClientFor(emulator);
  httplib::Headers h;
  for (const auto& [k, v] : headers) h.emplace(k, v);
  return ToResult(c->Post(path, h, body, content_type));
}

HttpResult HttpDelete(const Emulator& emulator, const std::string& path) {
  auto c = HttpClientFor(emulator);
  return ToResult(c->Delete(path));
}

bool WaitForStreamsEnded(const Emulator& emulator) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (emulator.open_streams() > 0) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace arrow_zerobus::emulator::testing
