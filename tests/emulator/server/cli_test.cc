// The zerobus-emulator executable: --help, flag errors, the listen line, faults from flags,
// declared tables, clean exit on SIGTERM.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <regex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "server_test_util.h"

namespace arrow_zerobus::emulator::testing {
namespace {

using ::testing::HasSubstr;

// A child process with stdout and stderr captured through pipes.
class Process {
 public:
  explicit Process(std::vector<std::string> args) {
    int out[2], err[2];
    EXPECT_EQ(pipe(out), 0);
    EXPECT_EQ(pipe(err), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      dup2(err[1], 2);
      close(out[0]);
      close(err[0]);
      std::vector<char*> argv;
      std::string exe = AZ_EMULATOR_EXE;
      argv.push_back(exe.data());
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(exe.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }
  ~Process() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      Wait();
    }
    close(out_);
    close(err_);
  }

  // One line of stdout, waiting at most `timeout`.
  std::string ReadLine(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char c;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      if (read(out_, &c, 1) != 1) break;
      if (c == '\n') return line;
      line.push_back(c);
    }
    return line;
  }

  std::string ReadAll(int fd) {
    std::string s;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) s.append(buf, static_cast<size_t>(n));
    return s;
  }
  std::string Stdout() { return ReadAll(out_); }
  std::string Stderr() { return ReadAll(err_); }

  // Exit code (or 128 + signal).
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  void Signal(int sig) { kill(pid_, sig); }

 private:
  pid_t pid_ = -1;
  int out_ = -1, err_ = -1;
  bool exited_ = false;
};

struct Listen {
  int grpc_port = 0, http_port = 0;
};

std::optional<Listen> ParseListen(const std::string& line) {
  std::smatch m;
  static const std::regex re(
      R"(zerobus-emulator listening grpc=127\.0\.0\.1:(\d+) http=127\.0\.0\.1:(\d+) tls=off)");
  if (!std::regex_match(line, m, re)) return std::nullopt;
  return Listen{std::stoi(m[1]), std::stoi(m[2])};
}

TEST(EmulatorCli, HelpListsTheOptions) {
  Process p({"--help"});
  std::string out = p.Stdout();
  EXPECT_EQ(p.Wait(), 0);
  for (const char* flag : {"--data-dir", "--grpc-port", "--http-port", "--tls-cert", "--no-auth",
                           "--client", "--strict", "--table", "--sink", "--fault-end-stream",
                           "--fault-close-signal", "--fault-block-creation-s"}) {
    EXPECT_THAT(out, HasSubstr(flag));
  }
}

TEST(EmulatorCli, BadFlagsFailWithAMessage) {
  TempDir dir;
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  std::vector<Case> cases = {
      {{"--data-dir", dir.path()}, "--client"},
      {{"--no-auth"}, "--data-dir is required"},
      {{"--data-dir", dir.path(), "--client", "nosecret"}, "CLIENT_ID:CLIENT_SECRET"},
      {{"--data-dir", dir.path(), "--no-auth", "--fault-end-stream", "x:UNAVAILABLE"},
       "--fault-end-stream"},
      {{"--data-dir", dir.path(), "--no-auth", "--fault-end-stream", "1:OK"}, "non-OK"},
      {{"--data-dir", dir.path(), "--no-auth", "--fault-close-signal", "1"}, "N:DURATION_MS"},
      {{"--data-dir", dir.path(), "--no-auth", "--fault", "{\"nope\": 1}"}, "nope"},
      {{"--data-dir", dir.path(), "--no-auth", "--table", "a.b.c"}, "--table must be"},
      {{"--data-dir", dir.path(), "--no-auth", "--table", "a.b.c=/does/not/exist.json"},
       "/does/not/exist.json"},
      {{"--data-dir", dir.path(), "--no-auth", "--sink", "kafka"}, "--sink"},
      {{"--data-dir", dir.path(), "--no-auth", "--log-level", "loud"}, "--log-level"},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.message);
    Process p(c.args);
    std::string err = p.Stderr();
    EXPECT_EQ(p.Wait(), 2);  // usage error, whether the parser or the checks after it refuse
    EXPECT_THAT(err, HasSubstr(c.message));
  }
}

TEST(EmulatorCli, ServesPrintsWhereAndStopsCleanlyOnSigterm) {
  TempDir dir;
  std::string decl = dir.path() + "/decl.json";
  std::ofstream(decl) << R"({"columns": [{"name": "id", "type": "bigint", "nullable": false},
                                          {"name": "name", "type": "string"},
                                          {"name": "value", "type": "double"}]})";
  Process p({"--data-dir", dir.path() + "/data", "--client", "cid:csecret", "--strict", "--table",
             "main.default.declared=" + decl, "--fault-table", "main.default.declared",
             "--fault-end-stream", "1:RESOURCE_EXHAUSTED:quota from flags", "--fault-times", "1"});
  std::string line = p.ReadLine();
  auto listen = ParseListen(line);
  ASSERT_TRUE(listen.has_value()) << line << p.Stderr();
  EXPECT_GT(listen->grpc_port, 0);
  EXPECT_GT(listen->http_port, 0);

  // The token comes from the executable's own OAuth endpoint.
  Client client("127.0.0.1:" + std::to_string(listen->grpc_port));
  auto desc = RowDescriptor();
  RowEncoder enc;
  std::string details;
  for (const char* table : {"main.default.declared", "main.default.undeclared"}) {
    details += std::string(details.empty() ? "" : ",") +
               R"({"type":"unity_catalog_privileges","privileges":["SELECT","MODIFY"],)"
               R"("object_type":"TABLE","object_full_path":")" + table +
               R"(","operations":["zerobuswrite"]})";
  }
  details = R"([{"type":"unity_catalog_privileges","privileges":["USE CATALOG"],)"
            R"("object_type":"CATALOG","object_full_path":"main"},)"
            R"({"type":"unity_catalog_privileges","privileges":["USE SCHEMA"],)"
            R"("object_type":"SCHEMA","object_full_path":"main.default"},)" +
            details + "]";
  httplib::Params form = {
      {"grant_type", "client_credentials"},
      {"scope", "all-apis"},
      {"resource", "api://databricks/workspaces/42/zerobusDirectWriteApi"},
      {"authorization_details", details}};
  httplib::Client http("127.0.0.1", listen->http_port);
  auto r = http.Post("/oidc/v1/token", {{"Authorization", "Basic " + Base64("cid:csecret")}},
                     httplib::detail::params_to_query_str(form),
                     "application/x-www-form-urlencoded");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  ASSERT_EQ(r->status, 200) << r->body;
  std::string token =
      "Bearer " + nlohmann::json::parse(r->body)["access_token"].get<std::string>();

  // Strict mode: an undeclared table is NOT_FOUND.
  grpc::Status st = CreateStatus(client, token, "main.default.undeclared",
                                 CreateRequest("main.default.undeclared", &desc));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();

  // The fault from the flags ends the first stream after one request.
  auto call = OpenCreated(client, token, "main.default.declared", &desc);
  call.Write(ProtoRecord(0, enc.Encode(1, "a", 1)));
  call.Write(ProtoRecord(1, enc.Encode(2, "b", 2)));
  st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(st.error_message(), "quota from flags");
  // --fault-times 1: the next stream is not affected.
  auto next = OpenCreated(client, token, "main.default.declared", &desc);
  ASSERT_TRUE(next.Write(ProtoRecord(0, enc.Encode(3, "c", 3))));
  EXPECT_EQ(next.ReadAcksUntil(0).back(), 0);
  EXPECT_TRUE(next.Close().ok());

  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(), 0);
  // One line per stream on stderr, with how it ended; never the token.
  std::string log = p.Stderr();
  EXPECT_THAT(log, HasSubstr("table=main.default.declared opened (PROTO)"));
  EXPECT_THAT(log, HasSubstr("requests=1 rows=1 ended code=8: quota from flags"));
  EXPECT_THAT(log, HasSubstr("stream not created code=5"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr(token.substr(7))));
  auto rows = ReadDeltaTable(dir.path() + "/data/main/default/declared");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ((*rows)->num_rows(), 2);  // request 0 of the ended stream, and the next stream's
}

TEST(EmulatorCli, SigintAlsoStopsCleanly) {
  TempDir dir;
  Process p({"--data-dir", dir.path(), "--no-auth", "--sink", "null"});
  ASSERT_TRUE(ParseListen(p.ReadLine()).has_value());
  p.Signal(SIGINT);
  EXPECT_EQ(p.Wait(), 0);
  EXPECT_THAT(p.Stderr(), HasSubstr("zerobus-emulator: signal 2, shutting down"));
}

TEST(EmulatorCli, LogLevelAboveInfoSilencesTheInfoLines) {
  TempDir dir;
  Process p({"--data-dir", dir.path(), "--no-auth", "--sink", "null", "--log-level", "warning"});
  ASSERT_TRUE(ParseListen(p.ReadLine()).has_value());
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(), 0);
  EXPECT_EQ(p.Stderr(), "");
}

}  // namespace
}  // namespace arrow_zerobus::emulator::testing
