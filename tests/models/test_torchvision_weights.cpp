// Loading torchvision ResNet weights: the test exports randomly initialised torchvision ResNets
// (with randomised BatchNorm statistics) and their stage outputs with the project's Python, loads
// them into crossview::ResNet and compares every stage output (ResNet-18 plain, ResNet-50 with
// torchvision's replace_stride_with_dilation = [False, True, True], i.e. output stride 8).
#include <crossview/models/torchvision_weights.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

using crossview::GGDCPlacement;
using crossview::ResNet;
using crossview::ResNetOptions;

namespace fs = std::filesystem;

/// Runs tests/models/export_torchvision_resnet.py once per process; returns its output folder, or
/// an empty string (with a MESSAGE) when the Python environment is missing.
const std::string& fixture_dir() {
  static const std::string dir = [] {
    const char* env_python = std::getenv("CROSSVIEW_PYTHON");
    const std::string python = env_python ? env_python : CROSSVIEW_SOURCE_DIR "/.venv/bin/python";
    if (!fs::exists(python)) return std::string();
    const std::string out = CROSSVIEW_BINARY_DIR "/tests/models_fixture";
    const std::string command = "\"" + python + "\" \"" CROSSVIEW_SOURCE_DIR
                                "/tests/models/export_torchvision_resnet.py\" \"" + out + "\"";
    if (std::system(command.c_str()) != 0) return std::string();
    return out;
  }();
  return dir;
}

bool have_fixture() {
  if (fixture_dir().empty()) {
    MESSAGE("skipped: no Python with torch + torchvision (.venv/bin/python or $CROSSVIEW_PYTHON) to export the "
            "reference ResNets");
    return false;
  }
  return true;
}

/// max |a - b| / (1 + max |b|)
double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b).abs().max().item<double>() / (1.0 + b.abs().max().item<double>());
}

template <typename T>
void check_against_torchvision(const char* name, ResNetOptions options, size_t offset_head_tensors = 0) {
  const auto dir = fixture_dir();
  constexpr auto dtype = std::is_same_v<T, double> ? torch::kFloat64 : torch::kFloat32;
  const double tolerance = std::is_same_v<T, double> ? 1e-10 : 1e-4;

  ResNet net(options);
  net->to(dtype);
  const auto report = crossview::load_torchvision_resnet(*net, dir + "/" + name + "_weights.pt");
  CHECK(report.unused == std::vector<std::string>{"fc.weight", "fc.bias"});
  CHECK(report.loaded.size() + offset_head_tensors == net->named_parameters().size() + net->named_buffers().size());
  CHECK(report.not_in_file.size() == offset_head_tensors);
  for (const auto& missing : report.not_in_file) CHECK(missing.find(".conv2.offset_head.") != std::string::npos);
  // BatchNorm running statistics came along (the export randomised them).
  const auto buffers = net->named_buffers();
  CHECK(buffers["layer1.0.bn1.num_batches_tracked"].item<int64_t>() == 3);
  CHECK(buffers["bn1.running_var"].min().item<double>() >= 0.5);

  const auto reference = crossview::load_state_dict_file(dir + "/" + name + "_reference.pt");
  net->eval();
  torch::NoGradGuard no_grad;
  const auto stages = net->forward(reference["input"].to(dtype));
  for (int s = 0; s < 4; ++s) {
    const auto& expected = reference["layer" + std::to_string(s + 1)];
    CAPTURE(s);
    REQUIRE(stages[s].sizes() == expected.sizes());
    CHECK(relative_error(stages[s], expected) < tolerance);
  }
}

}  // namespace

TEST_CASE_TEMPLATE("load_torchvision_resnet: ResNet-18 reproduces torchvision's stage outputs", T, float, double) {
  if (!have_fixture()) return;
  check_against_torchvision<T>("resnet18", ResNetOptions(18).output_stride(32).ggdc_placement(GGDCPlacement::kNone));
}

TEST_CASE_TEMPLATE("load_torchvision_resnet: dilated ResNet-50 (output stride 8) reproduces torchvision's", T, float,
                   double) {
  if (!have_fixture()) return;
  check_against_torchvision<T>("resnet50_os8", ResNetOptions(50).output_stride(8).ggdc_placement(GGDCPlacement::kNone));
}

TEST_CASE("load_torchvision_resnet: a GGDC-everywhere ResNet-50 starts as the pretrained plain one") {
  if (!have_fixture()) return;
  // 16 blocks, each offset head an output conv with weight and bias; strict loading accepts them
  // missing, and with zero offsets every stage equals torchvision's.
  // float only: float64 equality of fresh GGDC and plain networks is tested in test_resnet.cpp.
  check_against_torchvision<float>("resnet50_os8",
                                   ResNetOptions(50).output_stride(8).ggdc_placement(GGDCPlacement::kAllBlocks),
                                   /*offset_head_tensors=*/32);
}

TEST_CASE("ResNet: names and shapes of every depth are torchvision's (fc aside), also when dilated") {
  if (!have_fixture()) return;
  for (const int64_t depth : {18, 34, 50, 101}) {
    CAPTURE(depth);
    const auto shapes = crossview::load_state_dict_file(fixture_dir() + "/resnet" + std::to_string(depth) + "_shapes.pt");
    ResNet net(ResNetOptions(depth).output_stride(8).ggdc_placement(GGDCPlacement::kNone));
    auto tensors = net->named_parameters();
    for (const auto& item : net->named_buffers()) tensors.insert(item.key(), item.value());
    CHECK(tensors.size() + 2 == shapes.size());  // + fc.weight, fc.bias
    for (const auto& item : shapes) {
      if (item.key().rfind("fc.", 0) == 0) continue;
      CAPTURE(item.key());
      const auto* tensor = tensors.find(item.key());
      REQUIRE(tensor != nullptr);
      CHECK(tensor->sizes() == torch::IntArrayRef(std::vector<int64_t>(
                                   item.value().data_ptr<int64_t>(), item.value().data_ptr<int64_t>() + item.value().numel())));
    }
  }
}

TEST_CASE("load_torchvision_resnet: the comparison can fail — without the running statistics outputs differ") {
  if (!have_fixture()) return;
  ResNet net(ResNetOptions(50).ggdc_placement(GGDCPlacement::kNone));
  crossview::load_torchvision_resnet(*net, fixture_dir() + "/resnet50_os8_weights.pt");
  const auto reference = crossview::load_state_dict_file(fixture_dir() + "/resnet50_os8_reference.pt");
  torch::NoGradGuard no_grad;
  for (auto& buffer : net->named_buffers()) {
    if (buffer.key().find("running_mean") != std::string::npos) buffer.value().zero_();
    if (buffer.key().find("running_var") != std::string::npos) buffer.value().fill_(1.0);
  }
  net->eval();
  const auto stages = net->forward(reference["input"].to(torch::kFloat32));
  CHECK(relative_error(stages[0], reference["layer1"]) > 1e-2);
}

TEST_CASE("load_torchvision_resnet: mismatches and unreadable files are refused with a message") {
  if (!have_fixture()) return;
  const auto r18 = fixture_dir() + "/resnet18_weights.pt";
  SUBCASE("other width") {
    ResNet net(ResNetOptions(18).width_multiplier(0.5).ggdc_placement(GGDCPlacement::kNone));
    CHECK_THROWS_WITH_AS(crossview::load_torchvision_resnet(*net, r18),
                         doctest::Contains("load_torchvision_resnet: 'conv1.weight' must have shape [32, 3, 7, 7]"),
                         c10::Error);
  }
  SUBCASE("other depth") {
    ResNet net(ResNetOptions(34).ggdc_placement(GGDCPlacement::kNone));
    CHECK_THROWS_WITH_AS(crossview::load_torchvision_resnet(*net, r18),
                         doctest::Contains("tensors of the model: layer1.2.conv1.weight"), c10::Error);
  }
  SUBCASE("deep stem: strict refuses, non-strict loads the rest and reports") {
    ResNet net(ResNetOptions(18).deep_stem(true).ggdc_placement(GGDCPlacement::kNone));
    CHECK_THROWS_WITH_AS(crossview::load_torchvision_resnet(*net, r18),
                         doctest::Contains("lacks 18 tensors of the model: stem.0.weight, stem.1.weight"), c10::Error);
    const auto report = crossview::load_torchvision_resnet(*net, r18, /*strict=*/false);
    CHECK(report.not_in_file.size() == 18);  // 3 convs + 3 BNs (2 parameters + 3 buffers each)
    CHECK(report.unused.size() == 2 + 1 + 5);  // fc.*, conv1.weight, bn1.*
    CHECK(report.loaded.size() == 62 + 60 - 2 - 1 - 5);  // all of the file but the unused
  }
  SUBCASE("not a file of tensors") {
    const auto path = fixture_dir() + "/not_a_dict.pt";
    const auto bytes = torch::pickle_save(torch::IValue(torch::ones({2})));
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ResNet net(ResNetOptions(18).ggdc_placement(GGDCPlacement::kNone));
    const std::string expected = "load_state_dict_file: '" + path + "' must hold a dict of tensors, got Tensor";
    CHECK_THROWS_WITH_AS(crossview::load_torchvision_resnet(*net, path), doctest::Contains(expected.c_str()),
                         c10::Error);
  }
  SUBCASE("state_dict() saved as is (an OrderedDict): the message says how to export") {
    ResNet net(ResNetOptions(18).ggdc_placement(GGDCPlacement::kNone));
    const auto path = fixture_dir() + "/ordered_dict.pt";
    const std::string expected = "load_state_dict_file: cannot read '" + path +
                                 "' as a dict of tensors (export it in Python with "
                                 "torch.save(dict(model.state_dict()), path)";
    CHECK_THROWS_WITH_AS(crossview::load_torchvision_resnet(*net, path), doctest::Contains(expected.c_str()),
                         c10::Error);
  }
  SUBCASE("missing file") {
    ResNet net(ResNetOptions(18).ggdc_placement(GGDCPlacement::kNone));
    CHECK_THROWS_WITH_AS(crossview::load_torchvision_resnet(*net, "/nonexistent/resnet18.pt"),
                         doctest::Contains("load_state_dict_file: cannot open '/nonexistent/resnet18.pt'"), c10::Error);
  }
}
