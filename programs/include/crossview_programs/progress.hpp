#pragma once
/// \file
/// The programs' progress bar on stderr (count, loss terms, rate, ETA; terminal-aware) and the CSV
/// training log.

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

/// A progress bar on stderr: "<label> [####>....] done/total <terms> | <rate> <unit>/s | ETA
/// mm:ss", plus "| k <skipped note>" once items were skipped. On a terminal it redraws one line (at
/// most 5 times a second); on a pipe or file it prints a line at every 10 % instead (and at the
/// end), so logs stay short: at most 11 lines however long the run.
///
///   ProgressBar bar("[1/4 baseline]", iterations, resumed_at, !quiet);   // crossview-train
///   ProgressBar bar("deriving", pairs, 0, true);                          // crossview-derive-vvd
///   bar.unit("img").skipped_note("already there");
class ProgressBar {
 public:
  /// `total` items, of which `start` were done before (resuming: not counted in the rate);
  /// `enabled` false prints nothing.
  ProgressBar(std::string label, int64_t total, int64_t start, bool enabled)
      : label_(std::move(label)), total_(total), start_(start), enabled_(enabled), tty_(::isatty(2) != 0),
        t0_(Clock::now()), last_draw_(t0_ - std::chrono::seconds(1)) {}

  /// The unit of the rate: "it" (default) -> "it/s".
  ProgressBar& unit(std::string unit) {
    unit_ = std::move(unit);
    return *this;
  }
  /// What skipped items are called after their count (default "skipped").
  ProgressBar& skipped_note(std::string note) {
    skipped_note_ = std::move(note);
    return *this;
  }

  /// Reports that `done` items (a 1-based count) are complete, the last with loss `terms` shown
  /// after the count; `skipped`: the last one needed no work (an existing result kept), so it is
  /// left out of the rate and the ETA.
  void update(int64_t done, const LossTerms& terms = {}, bool skipped = false) {
    if (skipped) ++skipped_;
    if (!enabled_) return;
    const auto now = Clock::now();
    const bool last = done >= total_;
    if (tty_) {
      if (!last && now - last_draw_ < std::chrono::milliseconds(200)) return;
    } else {
      const int64_t step = std::max<int64_t>(1, (total_ + 9) / 10);
      if (!last && done % step != 0) return;
    }
    last_draw_ = now;
    const double elapsed = std::chrono::duration<double>(now - t0_).count();
    const int64_t worked = done - start_ - skipped_;
    const double rate = elapsed > 0 ? double(worked) / elapsed : 0.0;
    const double eta = last ? 0.0 : (rate > 0 ? double(total_ - done) / rate : -1.0);
    constexpr int kBarWidth = 24;
    const int filled = int(double(kBarWidth) * double(done) / double(std::max<int64_t>(1, total_)));
    std::ostringstream line;
    line << (tty_ ? "\r\033[K" : "") << label_ << " [";
    for (int i = 0; i < kBarWidth; ++i) line << (i < filled ? '#' : (i == filled ? '>' : '.'));
    line << "] " << done << "/" << total_;
    char buf[96];
    for (const auto& [name, value] : terms) {
      std::snprintf(buf, sizeof buf, " %s %.3f", name.c_str(), value);
      line << buf;
    }
    std::snprintf(buf, sizeof buf, " | %.2f %s/s | ETA %s", rate, unit_.c_str(), format_duration(eta).c_str());
    line << buf;
    if (skipped_ > 0) line << " | " << skipped_ << " " << skipped_note_;
    line << (tty_ && !last ? "" : "\n");
    std::fputs(line.str().c_str(), stderr);
    std::fflush(stderr);
  }

  /// Items reported as skipped so far.
  int64_t skipped() const { return skipped_; }

 private:
  using Clock = std::chrono::steady_clock;
  std::string label_;
  int64_t total_, start_;
  bool enabled_, tty_;
  std::string unit_{"it"}, skipped_note_{"skipped"};
  int64_t skipped_{0};
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
