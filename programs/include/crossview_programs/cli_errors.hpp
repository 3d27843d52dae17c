#pragma once
/// \file
/// One-line errors for the programs: every failure a program reports is a single line
/// "<program>: error: <what>", naming the flag or file and what was expected, so that a script's
/// log shows it whole and a test can pin it. CLI11's own messages are made to follow: its default
/// prints two lines, and a flag given twice read "--threads: At Most 1 required but received 2".
///
/// A flag that takes one value may be given once: a second --threads is a mistake in a script (two
/// sources disagree), so it is an error that names both values, not a silent "last one wins".

#include <CLI/CLI.hpp>

#include <filesystem>
#include <string>

namespace crossview_programs {

/// `text` on one line: line breaks become "; ", trailing blanks are dropped.
inline std::string one_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r')) text.pop_back();
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') continue;
    if (text[i] == '\n') {
      out += "; ";
      while (i + 1 < text.size() && (text[i + 1] == ' ' || text[i + 1] == '\n')) ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

/// The program's name as the user typed it, without its folder (CLI11 names the app after argv[0]).
inline std::string program_name(const CLI::App& app) {
  const auto name = std::filesystem::path(app.get_name()).filename().string();
  return name.empty() ? "program" : name;
}

/// CLI11's failure message, on one line: "<program>: error: <what> (see --help)". A single-value
/// option given more than once is named with the values it got.
inline std::string one_line_failure(const CLI::App* app, const CLI::Error& e) {
  std::string what = e.what();
  for (const CLI::Option* option : app->get_options()) {
    if (option->count() > 1 && option->get_items_expected_max() == 1 &&
        option->get_multi_option_policy() == CLI::MultiOptionPolicy::Throw) {
      std::string values;
      for (const auto& v : option->results()) values += (values.empty() ? "" : ", ") + v;
      what = option->get_name() + " was given " + std::to_string(option->count()) + " times (" + values +
             "); give it once";
      break;
    }
  }
  return program_name(*app) + ": error: " + one_line(what) + " (see --help)\n";
}

/// Makes `app` report every parse and validation error on one line (one_line_failure).
inline void use_one_line_errors(CLI::App& app) { app.failure_message(one_line_failure); }

}  // namespace crossview_programs
