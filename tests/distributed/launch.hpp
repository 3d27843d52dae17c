#pragma once
// Test helper: runs a command as the ranks of a loopback launch (MASTER_ADDR=127.0.0.1, a free
// MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK), each rank's stdout+stderr in its own file, and waits
// at most `timeout` for all of them; ranks still running then are killed (SIGKILL) and reported
// as timed out. Nothing here knows about c10d: the ranks find each other themselves.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace crossview_test {

/// A TCP port on 127.0.0.1 that was free a moment ago.
inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    throw std::runtime_error("free_loopback_port: cannot bind a socket on 127.0.0.1");
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct RankResult {
  int exit_code{-1};     ///< exit status; 128 + signal when killed by one
  bool timed_out{false};
  std::string output;    ///< stdout + stderr
};

/// A signal to send to one rank once its log contains `after` (plus `delay`).
struct SignalWhen {
  int rank{-1};
  std::string after;
  std::chrono::milliseconds delay{0};
  int signal{SIGTERM};
};

/// Runs `argv` as `world_size` ranks with the launch variables plus `extra_env` (per rank:
/// extra_env_per_rank[rank], may be empty) and rank r's `extra_args_per_rank[r]` appended, in
/// `dir`/rank<r>.log.
inline std::vector<RankResult> launch_ranks(const std::vector<std::string>& argv, int world_size,
                                            const std::filesystem::path& dir, std::chrono::seconds timeout,
                                            const std::map<std::string, std::string>& extra_env = {},
                                            const std::vector<std::map<std::string, std::string>>& extra_env_per_rank = {},
                                            const std::vector<std::vector<std::string>>& extra_args_per_rank = {},
                                            const SignalWhen& send = {}) {
  std::filesystem::create_directories(dir);
  const int port = free_loopback_port();
  std::vector<pid_t> pids(size_t(world_size), -1);
  std::vector<std::filesystem::path> logs;
  for (int r = 0; r < world_size; ++r) {
    logs.push_back(dir / ("rank" + std::to_string(r) + ".log"));
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int out = ::open(logs.back().c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(out, 1);
      ::dup2(out, 2);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(world_size).c_str(), 1);
      for (const auto& [k, v] : extra_env) ::setenv(k.c_str(), v.c_str(), 1);
      if (size_t(r) < extra_env_per_rank.size()) {
        for (const auto& [k, v] : extra_env_per_rank[size_t(r)]) ::setenv(k.c_str(), v.c_str(), 1);
      }
      std::vector<std::string> all = argv;
      if (size_t(r) < extra_args_per_rank.size()) {
        all.insert(all.end(), extra_args_per_rank[size_t(r)].begin(), extra_args_per_rank[size_t(r)].end());
      }
      std::vector<char*> args;
      for (const auto& a : all) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    pids[size_t(r)] = pid;
  }
  std::vector<RankResult> results(static_cast<size_t>(world_size));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int running = world_size;
  bool sent = send.rank < 0;
  std::optional<std::chrono::steady_clock::time_point> send_at;
  while (running > 0) {
    if (!sent && pids[size_t(send.rank)] > 0) {
      if (!send_at) {
        std::ifstream in(logs[size_t(send.rank)]);
        std::stringstream text;
        text << in.rdbuf();
        if (text.str().find(send.after) != std::string::npos) send_at = std::chrono::steady_clock::now() + send.delay;
      }
      if (send_at && std::chrono::steady_clock::now() >= *send_at) {
        ::kill(pids[size_t(send.rank)], send.signal);
        sent = true;
      }
    }
    for (int r = 0; r < world_size; ++r) {
      if (pids[size_t(r)] < 0) continue;
      int status = 0;
      if (::waitpid(pids[size_t(r)], &status, WNOHANG) == pids[size_t(r)]) {
        results[size_t(r)].exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pids[size_t(r)] = -1;
        --running;
      }
    }
    if (running == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      for (int r = 0; r < world_size; ++r) {
        if (pids[size_t(r)] < 0) continue;
        ::kill(pids[size_t(r)], SIGKILL);
        ::waitpid(pids[size_t(r)], nullptr, 0);
        results[size_t(r)].timed_out = true;
        pids[size_t(r)] = -1;
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (int r = 0; r < world_size; ++r) {
    std::ifstream in(logs[size_t(r)]);
    std::stringstream text;
    text << in.rdbuf();
    results[size_t(r)].output = text.str();
  }
  return results;
}

/// "rank r: exit e[, timed out]\n<output>" for every rank, for failure messages.
inline std::string describe(const std::vector<RankResult>& results) {
  std::string text;
  for (size_t r = 0; r < results.size(); ++r) {
    text += "--- rank " + std::to_string(r) + ": exit " + std::to_string(results[r].exit_code) +
            (results[r].timed_out ? ", timed out" : "") + "\n" + results[r].output + "\n";
  }
  return text;
}

}  // namespace crossview_test
