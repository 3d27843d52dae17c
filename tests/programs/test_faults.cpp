// Faults during training, on the real crossview-train: a disk that fills up while a checkpoint is
// written (a file-size limit, RLIMIT_FSIZE with SIGXFSZ ignored: the write fails with EFBIG as it
// would with ENOSPC; mounting a small tmpfs needs privileges the test suite does not assume), a
// SIGTERM (clean stop: checkpoint, one line, non-zero exit, --resume continues), and kill -9 at
// three moments of a run, each followed by --resume, which must reach the weights of an
// uninterrupted run.

#include <crossview_programs/checkpoint.hpp>
#include <crossview_programs/trained_network.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

const std::string kTrain = CROSSVIEW_BINARY_DIR "/bin/crossview-train";

/// A tiny SyntheticStreet run: two variants trained from scratch, a checkpoint every 2 iterations.
const std::string kTiny =
    " --iterations 8 --batch 4 --crop 48 --width 0.125 --train-images 3 --eval-images 2 --eval-height 64"
    " --eval-width 96 --checkpoint-every 2 --threads 1 --figure-samples 1 --closs-start 0.3 --warmup 0 --quiet";

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path fresh_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("crossview_faults_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

/// A started program: its pid and the file its stdout and stderr go to.
struct Child {
  pid_t pid{-1};
  fs::path log;
};

/// Starts `command` through /bin/sh (exec'd, so the pid is the program's), with its output in
/// `log`; `file_size_limit` > 0 sets RLIMIT_FSIZE and ignores SIGXFSZ in the child, so writes past
/// the limit fail with EFBIG, as on a full disk. Only async-signal-safe calls after fork.
Child start(const std::string& command, const fs::path& log, rlim_t file_size_limit = 0) {
  const std::string shell_command = "exec " + command;
  const std::string log_path = log.string();
  const rlimit limit{file_size_limit, file_size_limit};
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (file_size_limit > 0) {
      ::signal(SIGXFSZ, SIG_IGN);
      ::setrlimit(RLIMIT_FSIZE, &limit);
    }
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) ::_exit(127);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl("/bin/sh", "sh", "-c", shell_command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return {pid, log};
}

struct Ended {
  int exit_code{-1};  ///< -1 when killed by a signal
  int signal{0};      ///< the signal that killed it, 0 when it exited
  std::string output;
};

Ended wait_for(const Child& child) {
  int status = 0;
  REQUIRE(::waitpid(child.pid, &status, 0) == child.pid);
  Ended e;
  if (WIFEXITED(status)) e.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) e.signal = WTERMSIG(status);
  e.output = slurp(child.log);
  return e;
}

/// Polls `condition` every millisecond until it holds (true) or the child ended (false).
bool wait_until(const Child& child, const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    int status = 0;
    if (::waitpid(child.pid, &status, WNOHANG) == child.pid) {
      // Ended before the moment came: put the status back for wait_for's caller by failing here.
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

Ended run(const std::string& command, const fs::path& log) { return wait_for(start(command, log)); }

/// The parameters and buffers of a checkpoint, by name.
std::vector<std::pair<std::string, torch::Tensor>> checkpoint_tensors(const fs::path& path) {
  auto network = crossview_programs::load_trained_network(path).network;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : network->named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto& b : network->named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

/// Number of tensors that differ between two checkpoints (each named in a message).
int64_t differing_tensors(const fs::path& a_path, const fs::path& b_path) {
  const auto a = checkpoint_tensors(a_path);
  const auto b = checkpoint_tensors(b_path);
  REQUIRE(a.size() > 10);
  REQUIRE(a.size() == b.size());
  int64_t differing = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].first == b[i].first);
    if (!torch::equal(a[i].second, b[i].second)) {
      ++differing;
      MESSAGE(a[i].first, " differs by ", (a[i].second - b[i].second).abs().max().item<double>());
    }
  }
  return differing;
}

/// Files whose name holds ".tmp-" under `dir` (left-over temporary checkpoints).
std::vector<std::string> temporary_files(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.path().filename().string().find(".tmp-") != std::string::npos) found.push_back(entry.path().string());
  }
  return found;
}

/// The lines of `text` that hold ": error: ".
std::vector<std::string> error_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find(": error: ") != std::string::npos) lines.push_back(line);
  }
  return lines;
}

void require_program() { REQUIRE_MESSAGE(fs::exists(kTrain), kTrain, " is missing: build the crossview-train target first"); }

}  // namespace

TEST_CASE("crossview-train: a full disk while a checkpoint is written keeps the previous one and stops with one line") {
  require_program();
  const auto dir = fresh_dir("disk_full");
  const std::string command = kTrain + kTiny + " --variants baseline --out " + (dir / "out").string();
  const auto stopped = run(command + " --stop-after 4", dir / "stopped.txt");
  REQUIRE_MESSAGE(stopped.exit_code == 3, stopped.output);  // the hidden abrupt stop after iteration 4
  const auto checkpoint = dir / "out" / "baseline" / "checkpoint.pt";
  REQUIRE(fs::exists(checkpoint));
  const auto before = slurp(checkpoint);
  REQUIRE(crossview_programs::read_checkpoint_meta(checkpoint).iteration == 4);

  // Resumed with room for half a checkpoint: the one of iteration 6 cannot be written.
  const auto full = wait_for(start(command + " --resume", dir / "full.txt", rlim_t(before.size() / 2)));
  CAPTURE(full.output);
  CHECK(full.signal == 0);  // no SIGXFSZ death, no crash
  CHECK(full.exit_code == 1);
  const auto errors = error_lines(full.output);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("crossview-train: error: save_checkpoint: cannot write " + checkpoint.string() +
                       ": File too large") != std::string::npos);
  CHECK(errors[0].find("previous checkpoint") != std::string::npos);
  CHECK(slurp(checkpoint) == before);  // the previous checkpoint, byte for byte
  CHECK(crossview_programs::read_checkpoint_meta(checkpoint).iteration == 4);
  CHECK(temporary_files(dir / "out").empty());
  CHECK_FALSE(fs::exists(dir / "out" / "baseline" / "model.pt"));

  // With room again, --resume finishes from that checkpoint.
  const auto resumed = run(command + " --resume", dir / "resumed.txt");
  CHECK_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK(resumed.output.find("resuming at iteration 4") != std::string::npos);
  CHECK(fs::exists(dir / "out" / "baseline" / "model.pt"));
}

TEST_CASE("crossview-train: kill -9 at three moments, each followed by --resume, ends at the uninterrupted weights") {
  require_program();
  const auto dir = fresh_dir("kill9");
  const std::string common = kTrain + kTiny + " --variants baseline,vvd+ggdc+closs --out ";
  const auto whole = run(common + (dir / "whole").string(), dir / "whole.txt");
  REQUIRE_MESSAGE(whole.exit_code == 0, whole.output);

  struct Moment {
    std::string name;
    std::function<bool(const fs::path&)> reached;  ///< given --out
  };
  const std::vector<Moment> moments = {
      // Training of the first variant has begun (its log exists), no checkpoint yet.
      {"before the first checkpoint", [](const fs::path& out) { return fs::exists(out / "baseline" / "train_log.csv"); }},
      // The first variant's first checkpoint is on disk.
      {"after a checkpoint", [](const fs::path& out) { return fs::exists(out / "baseline" / "checkpoint.pt"); }},
      // The first variant is finished; the second is being trained.
      {"between variants",
       [](const fs::path& out) { return fs::exists(out / "vvd_ggdc_closs" / "train_log.csv"); }},
  };
  for (size_t m = 0; m < moments.size(); ++m) {
    CAPTURE(moments[m].name);
    const auto out = dir / ("killed_" + std::to_string(m));
    const auto child = start(common + out.string(), dir / ("killed_" + std::to_string(m) + ".txt"));
    const bool reached = wait_until(child, [&] { return moments[m].reached(out); });
    REQUIRE_MESSAGE(reached, "the run ended before the moment: ", slurp(child.log));
    REQUIRE(::kill(child.pid, SIGKILL) == 0);
    const auto killed = wait_for(child);
    CHECK(killed.signal == SIGKILL);
    CHECK_FALSE(fs::exists(out / "vvd_ggdc_closs" / "model.pt"));
    const auto resumed = run(common + out.string() + " --resume", dir / ("resumed_" + std::to_string(m) + ".txt"));
    REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
    CHECK(temporary_files(out).empty());
    for (const char* variant : {"baseline", "vvd_ggdc_closs"}) {
      CAPTURE(variant);
      CHECK(differing_tensors(dir / "whole" / variant / "model.pt", out / variant / "model.pt") == 0);
    }
  }
}

TEST_CASE("crossview-train: SIGTERM writes a checkpoint, says so on one line, exits non-zero; --resume continues") {
  require_program();
  const auto dir = fresh_dir("sigterm");
  const std::string common = kTrain + kTiny + " --variants vvd+ggdc+closs --out ";
  const auto whole = run(common + (dir / "whole").string(), dir / "whole.txt");
  REQUIRE_MESSAGE(whole.exit_code == 0, whole.output);

  const auto out = dir / "stopped";
  const auto checkpoint = out / "vvd_ggdc_closs" / "checkpoint.pt";
  const auto child = start(common + out.string(), dir / "stopped.txt");
  REQUIRE_MESSAGE(wait_until(child, [&] { return fs::exists(checkpoint); }), slurp(child.log));
  REQUIRE(::kill(child.pid, SIGTERM) == 0);
  const auto stopped = wait_for(child);
  CAPTURE(stopped.output);
  CHECK(stopped.signal == 0);  // it handled the signal and exited by itself
  CHECK(stopped.exit_code != 0);
  CHECK(stopped.exit_code != -1);
  std::vector<std::string> signal_lines;
  std::istringstream lines(stopped.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("SIGTERM") != std::string::npos) signal_lines.push_back(line);
  }
  REQUIRE(signal_lines.size() == 1);
  CHECK(signal_lines[0].find(checkpoint.string()) != std::string::npos);
  REQUIRE(fs::exists(checkpoint));
  CHECK(crossview_programs::read_checkpoint_meta(checkpoint).iteration >= 2);
  CHECK_FALSE(fs::exists(out / "vvd_ggdc_closs" / "model.pt"));
  CHECK(temporary_files(out).empty());

  const auto resumed = run(common + out.string() + " --resume", dir / "resumed.txt");
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK(resumed.output.find("resuming at iteration") != std::string::npos);
  CHECK(differing_tensors(dir / "whole" / "vvd_ggdc_closs" / "model.pt", out / "vvd_ggdc_closs" / "model.pt") == 0);
}
