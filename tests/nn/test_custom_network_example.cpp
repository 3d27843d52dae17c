// The custom-network example (examples/custom_network.cpp) builds and trains: run it for a few
// steps and check that its offsets left zero and that its ResNet took the user's GGDC policies.
#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

TEST_CASE("example custom-network trains a GGDC network") {
  const std::filesystem::path program = std::filesystem::path(CROSSVIEW_BINARY_DIR) / "bin" / "custom-network";
  if (!std::filesystem::exists(program)) {
    MESSAGE("custom-network not built (build the examples, or `all`): skipped");
    return;
  }
  const std::string command = program.string() + " --steps 3 --seed 1 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  REQUIRE(pipe);
  std::string output;
  std::array<char, 256> buffer{};
  while (fgets(buffer.data(), static_cast<int>(buffer.size()), pipe.get())) output += buffer.data();
  const int status = pclose(pipe.release());
  CAPTURE(output);
  CHECK(status == 0);
  CHECK(output.find("step   3") != std::string::npos);
  const auto at = output.find("mean |offset| ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(output.substr(at + 14)) > 0.0);
  CHECK(output.find("ResNet-18 with 8 GGDC<LearnedGradient, ModulatedHead> layers") != std::string::npos);
}
