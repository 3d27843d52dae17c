// custom-network: GGDC in a user's own network, with the user's own GGDC policies: gradients from
// a learned depthwise 3x3 filter (LearnedGradient) instead of Sobel, offsets and a DCNv2 modulation
// mask from a two-layer head (ModulatedHead). A tiny segmentation net (conv stem, one GGDC layer,
// 1x1 classifier) trains for a few SGD steps on random images whose labels are a fixed function
// of the pixels; then the same policies go into every residual block of a small ResNet-18
// through `ggdc_factory`. Prints the loss and how far the learned offsets moved.
//
//   custom-network [--steps 20] [--seed 0] [--cuda]
#include <crossview/models/resnet.hpp>
#include <crossview/nn.hpp>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <utility>

namespace {

constexpr int64_t kClasses = 4;
constexpr int64_t kBatch = 4;
constexpr int64_t kSize = 32;
constexpr int64_t kWidth = 16;
constexpr int64_t kHeadWidth = 16;
constexpr double kBackboneWidth = 0.125;
constexpr double kLearningRate = 0.05;

/// Gradient operator with weights (a module, see crossview/nn/ggdc_policies.hpp): one learned
/// depthwise 3x3 filter pair per channel, starting as Sobel. [N, C, H, W] -> [N, 2C, H, W].
class LearnedGradientImpl : public torch::nn::Cloneable<LearnedGradientImpl> {
 public:
  explicit LearnedGradientImpl(const crossview::GGDCOptions& options) : channels(options.in_channels()) { reset(); }

  void reset() override {
    filter = register_module("filter", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, 2 * channels, 3)
                                                             .padding(1)
                                                             .padding_mode(torch::kReplicate)
                                                             .groups(channels)
                                                             .bias(false)));
    torch::NoGradGuard no_grad;
    const auto sobel_x = torch::tensor({-1.0, 0.0, 1.0, -2.0, 0.0, 2.0, -1.0, 0.0, 1.0}).view({3, 3}) / 8;
    filter->weight.copy_(torch::stack({sobel_x, sobel_x.t()}).unsqueeze(1).repeat({channels, 1, 1, 1}));
  }

  torch::Tensor forward(const torch::Tensor& x) { return filter(x); }

  int64_t channels;
  torch::nn::Conv2d filter{nullptr};
};
TORCH_MODULE(LearnedGradient);

/// DCNv2 offset head: a conv with the GGDC's geometry (so its output has the GGDC's size) to
/// head_channels + ReLU, then a zero-initialised 1x1 conv to two offsets and one mask logit per
/// tap (zero offsets and a unit mask: a fresh GGDC computes its plain convolution).
class ModulatedHeadImpl : public torch::nn::Cloneable<ModulatedHeadImpl> {
 public:
  explicit ModulatedHeadImpl(const crossview::GGDCOptions& options) : options(options) { reset(); }

  void reset() override {
    TORCH_CHECK(options.modulated() && options.head_channels() > 0,
                "ModulatedHead: set GGDCOptions::modulated(true) (it predicts a mask) and head_channels > 0");
    const auto k = *options.kernel_size();
    const int64_t taps = options.offset_groups() * k[0] * k[1];
    hidden = register_module("hidden", torch::nn::Conv2d(torch::nn::Conv2dOptions(
                                                             crossview::offset_head_in_channels(options),
                                                             options.head_channels(), options.kernel_size())
                                                             .stride(options.stride())
                                                             .padding(options.padding())
                                                             .dilation(options.dilation())));
    output =
        register_module("output", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.head_channels(), 3 * taps, 1)));
    torch::NoGradGuard no_grad;
    output->weight.zero_();
    output->bias.zero_();
  }

  torch::Tensor forward(const torch::Tensor& gradients) { return output(torch::relu(hidden(gradients))); }

  crossview::GGDCOptions options;
  torch::nn::Conv2d hidden{nullptr};
  torch::nn::Conv2d output{nullptr};
};
TORCH_MODULE(ModulatedHead);

using MyGGDC = crossview::GGDC<LearnedGradient, ModulatedHead>;

/// conv 3x3 -> ReLU -> GGDC 3x3 (dilation 2, the user's policies) -> ReLU -> conv 1x1 to logits.
struct TinySegNetImpl : torch::nn::Module {
  TinySegNetImpl()
      : stem(register_module("stem", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, kWidth, 3).padding(1)))),
        ggdc(register_module("ggdc", MyGGDC(crossview::GGDCOptions(kWidth, kWidth, 3)
                                                .padding(2)
                                                .dilation(2)
                                                .modulated(true)
                                                .head_channels(kHeadWidth)))),
        classifier(register_module("classifier", torch::nn::Conv2d(torch::nn::Conv2dOptions(kWidth, kClasses, 1)))) {}

  torch::Tensor forward(const torch::Tensor& x) { return classifier(torch::relu(ggdc(torch::relu(stem(x))))); }

  torch::nn::Conv2d stem;
  MyGGDC ggdc;
  torch::nn::Conv2d classifier;
};
TORCH_MODULE(TinySegNet);

/// Random images [N, 3, H, W] and labels [N, H, W]: the class of a pixel is the quantised,
/// blurred difference of its first two channels (learnable, spatially structured).
std::pair<torch::Tensor, torch::Tensor> random_batch(const torch::Device& device) {
  const auto images = torch::randn({kBatch, 3, kSize, kSize});
  const auto smooth = torch::avg_pool2d(images, 5, 1, 2);
  const auto score = smooth.select(1, 0) - smooth.select(1, 1);
  const auto labels = torch::bucketize(score, torch::tensor({-0.3, 0.0, 0.3})).to(torch::kLong);
  return {images.to(device), labels.to(device)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train a small network whose GGDC layer uses user-written policies, on random data"};
  int steps = 20;
  uint64_t seed = 0;
  bool use_cuda = false;
  app.add_option("--steps", steps, "optimiser steps")->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "random seed");
  app.add_flag("--cuda", use_cuda, "train on the GPU when one is available");
  CLI11_PARSE(app, argc, argv);

  torch::manual_seed(seed);
  const torch::Device device = use_cuda && torch::cuda::is_available() ? torch::kCUDA : torch::kCPU;
  TinySegNet net;
  net->to(device);
  torch::optim::SGD optimiser(net->parameters(), torch::optim::SGDOptions(kLearningRate).momentum(0.9));

  double first_loss = 0, last_loss = 0;
  for (int step = 1; step <= steps; ++step) {
    const auto [images, labels] = random_batch(device);
    optimiser.zero_grad();
    const auto loss = torch::nn::functional::cross_entropy(net->forward(images), labels);
    loss.backward();
    optimiser.step();
    last_loss = loss.item<double>();
    if (step == 1) first_loss = last_loss;
    std::printf("step %3d  loss %.4f\n", step, last_loss);
  }
  torch::NoGradGuard no_grad;
  const auto [images, labels] = random_batch(device);
  net->forward(images);  // GGDC layers record the mean |offset| of their last forward
  const auto [offset, mask] = net->ggdc->offsets_and_mask(torch::relu(net->stem(images)));
  std::printf("loss %.4f -> %.4f; GGDC offsets: mean |offset| %.3g px, mask in [%.3f, %.3f] (device %s)\n", first_loss,
              last_loss, net->ggdc->mean_abs_offset().item<double>(), mask.min().item<double>(),
              mask.max().item<double>(), device.str().c_str());

  // The same policies in every residual block of a ResNet-18: the factory receives each block
  // conv's shape, `configure` adds what the head needs. Names stay torchvision's (conv2.weight).
  crossview::ResNet backbone(crossview::ResNetOptions(18).width_multiplier(kBackboneWidth).ggdc_factory(
      crossview::ggdc_factory<LearnedGradient, ModulatedHead>(
          [](crossview::GGDCOptions& o) { o.modulated(true).head_channels(kHeadWidth); })));
  backbone->to(device);
  backbone->eval();
  const auto stages = backbone->forward(images);
  int64_t ggdc_layers = 0;
  for (const auto& module : backbone->modules(/*include_self=*/false)) {
    ggdc_layers += std::dynamic_pointer_cast<crossview::GGDCBase>(module) != nullptr;
  }
  std::printf("ResNet-18 with %lld GGDC<LearnedGradient, ModulatedHead> layers: layer4 output %s\n",
              static_cast<long long>(ggdc_layers), c10::str(stages[3].sizes()).c_str());
  return 0;
}
