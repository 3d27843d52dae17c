#pragma once
/// \file
/// A clean stop on SIGTERM / SIGINT: the handler only records the signal (async-signal-safe, a
/// lock-free atomic); the training loop polls `stop_requested()` between iterations, writes a
/// checkpoint and exits with `stop_exit_code()` (128 + signal, the shell's convention, so a
/// scheduler sees a non-zero exit). A second signal while the first is pending is not ignored:
/// the handler restores the default action and re-raises, so Ctrl-C twice still kills at once.
///
/// Use: call `install_stop_signal_handlers()` once at the start of main (later calls do nothing);
/// poll `stop_requested()`; report with `stop_signal_name()`.

#include <atomic>
#include <csignal>
#include <mutex>
#include <string>

#include <signal.h>

namespace crossview_programs {

namespace detail {

static_assert(std::atomic<int>::is_always_lock_free,
              "stop_signal.hpp: the stop flag must be a lock-free atomic to be set from a signal handler");

/// The signal that asked for a stop, 0 while none has.
inline std::atomic<int> stop_signal_number{0};

inline void on_stop_signal(int signal_number) {
  int expected = 0;
  if (!stop_signal_number.compare_exchange_strong(expected, signal_number)) {
    // A second signal: the user insists. Default action (terminate), delivered now.
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    ::sigaction(signal_number, &default_action, nullptr);
    ::raise(signal_number);
  }
}

}  // namespace detail

/// Installs the SIGTERM and SIGINT handlers once per process (thread-safe; later calls return
/// at once). SA_RESTART keeps file writes and reads going through the signal.
inline void install_stop_signal_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_handler = &detail::on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    ::sigaction(SIGTERM, &action, nullptr);
    ::sigaction(SIGINT, &action, nullptr);
  });
}

/// True once SIGTERM or SIGINT has arrived (after `install_stop_signal_handlers()`).
inline bool stop_requested() { return detail::stop_signal_number.load() != 0; }

/// The signal that asked for the stop (SIGTERM, SIGINT), 0 when none has.
inline int stop_signal() { return detail::stop_signal_number.load(); }

/// "SIGTERM", "SIGINT", or "signal N"; "" when no stop was requested.
inline std::string stop_signal_name() {
  int const s = stop_signal();
  if (s == 0) return "";
  if (s == SIGTERM) return "SIGTERM";
  if (s == SIGINT) return "SIGINT";
  return "signal " + std::to_string(s);
}

/// The exit status after a requested stop: 128 + signal (143 for SIGTERM, 130 for SIGINT), what
/// a shell reports for a process the signal killed; 1 when no signal is recorded.
inline int stop_exit_code() {
  int const s = stop_signal();
  return s == 0 ? 1 : 128 + s;
}

/// Records a stop as if `signal_number` had arrived (tests; a program's own "stop now" path).
inline void request_stop(int signal_number = SIGTERM) {
  int expected = 0;
  detail::stop_signal_number.compare_exchange_strong(expected, signal_number);
}

}  // namespace crossview_programs
