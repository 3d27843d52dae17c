#pragma once
/// \file
/// A per-variant progress bar on stderr (iteration, loss terms, it/s, ETA) and the CSV training
/// log.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace crossview_programs {

/// Named loss terms of one iteration, in a fixed order (e.g. {"ce", 0.7}, {"aux", 0.3}).
using LossTerms = std::vector<std::pair<std::string, double>>;

/// "1:02:03" / "02:03".
inline std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--:--";
  const auto s = int64_t(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
                  (long long)(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  }
  return buf;
}

/// Redraws one line on a terminal (at most 5 times a second); on a pipe or file prints a line at
/// every 10% instead, so logs stay short.
class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, int64_t start, bool enabled)
      : label_(std::move(label)), total_(total), start_(start), enabled_(enabled), tty_(::isatty(2) != 0),
        t0_(Clock::now()), last_draw_(t0_ - std::chrono::seconds(1)) {}

  /// Reports that `iteration` (1-based count of completed iterations) is done.
  void update(int64_t iteration, const LossTerms& terms) {
    if (!enabled_) return;
    const auto now = Clock::now();
    const bool last = iteration >= total_;
    if (tty_) {
      if (!last && now - last_draw_ < std::chrono::milliseconds(200)) return;
    } else {
      const int64_t step = std::max<int64_t>(1, total_ / 10);
      if (!last && iteration % step != 0) return;
    }
    last_draw_ = now;
    const double elapsed = std::chrono::duration<double>(now - t0_).count();
    const double rate = elapsed > 0 ? double(iteration - start_) / elapsed : 0.0;
    const double eta = rate > 0 ? double(total_ - iteration) / rate : -1.0;
    constexpr int kBarWidth = 24;
    const int filled = int(double(kBarWidth) * double(iteration) / double(std::max<int64_t>(1, total_)));
    std::ostringstream line;
    line << (tty_ ? "\r\033[K" : "") << label_ << " [";
    for (int i = 0; i < kBarWidth; ++i) line << (i < filled ? '#' : (i == filled ? '>' : '.'));
    line << "] " << iteration << "/" << total_;
    char buf[64];
    for (const auto& [name, value] : terms) {
      std::snprintf(buf, sizeof buf, " %s %.3f", name.c_str(), value);
      line << buf;
    }
    std::snprintf(buf, sizeof buf, " | %.2f it/s | ETA %s", rate, format_duration(eta).c_str());
    line << buf << (tty_ && !last ? "" : "\n");
    std::fputs(line.str().c_str(), stderr);
    std::fflush(stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::string label_;
  int64_t total_, start_;
  bool enabled_, tty_;
  Clock::time_point t0_, last_draw_;
};

/// The CSV training log of one variant: iteration, lr, loss terms, seconds. On resume, rows past
/// the checkpoint's iteration (written after it by the killed run) are dropped first, so the log
/// of a resumed run equals that of an uninterrupted one apart from the timing column.
class CsvLog {
 public:
  CsvLog(const std::filesystem::path& path, const std::vector<std::string>& term_names, int64_t resume_iteration) {
    std::vector<std::string> kept;
    if (resume_iteration > 0 && std::filesystem::exists(path)) {
      std::ifstream in(path);
      std::string line;
      bool header = true;
      while (std::getline(in, line)) {
        if (header) {
          header = false;
          continue;
        }
        const auto comma = line.find(',');
        if (comma == std::string::npos) continue;
        if (std::stoll(line.substr(0, comma)) <= resume_iteration) kept.push_back(line);
      }
    }
    out_.open(path, std::ios::trunc);
    out_ << "iteration,lr";
    for (const auto& name : term_names) out_ << "," << name;
    out_ << ",seconds\n";
    for (const auto& line : kept) out_ << line << "\n";
    out_.flush();
  }

  void write(int64_t iteration, double lr, const LossTerms& terms, double seconds) {
    out_ << iteration << "," << lr;
    for (const auto& term : terms) out_ << "," << term.second;
    out_ << "," << seconds << "\n";
  }

  void flush() { out_.flush(); }

 private:
  std::ofstream out_;
};

}  // namespace crossview_programs
