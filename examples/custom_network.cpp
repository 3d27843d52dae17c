// custom-network: GGDC in a user's own network. A tiny segmentation net (conv stem, one GGDC
// layer, 1x1 classifier) trained for a few SGD steps on random images whose labels are a fixed
// function of the pixels; prints the loss and how far the learned offsets moved.
//
//   custom-network [--steps 20] [--seed 0] [--cuda]
#include <crossview/nn.hpp>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <cstdio>

namespace {

constexpr int64_t kClasses = 4;
constexpr int64_t kBatch = 4;
constexpr int64_t kSize = 32;
constexpr int64_t kWidth = 16;
constexpr double kLearningRate = 0.05;

/// conv 3x3 -> ReLU -> GGDC 3x3 (dilation 2, modulated) -> ReLU -> conv 1x1 to class logits.
struct TinySegNetImpl : torch::nn::Module {
  TinySegNetImpl()
      : stem(register_module("stem", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, kWidth, 3).padding(1)))),
        ggdc(register_module("ggdc", crossview::GGDC<>(crossview::GGDCOptions(kWidth, kWidth, 3)
                                                           .padding(2)
                                                           .dilation(2)
                                                           .modulated(true)))),
        classifier(register_module("classifier", torch::nn::Conv2d(torch::nn::Conv2dOptions(kWidth, kClasses, 1)))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    return classifier(torch::relu(ggdc(torch::relu(stem(x)))));
  }

  torch::nn::Conv2d stem;
  crossview::GGDC<> ggdc;
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
  CLI::App app{"Train a small network with a GGDC layer on random data for a few steps"};
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
  const auto [offset, mask] = net->ggdc->offsets_and_mask(torch::relu(net->stem(images)));
  std::printf("loss %.4f -> %.4f; GGDC offsets: mean |offset| %.4f px, mask in [%.3f, %.3f] (device %s)\n", first_loss,
              last_loss, offset.abs().mean().item<double>(), mask.min().item<double>(), mask.max().item<double>(),
              device.str().c_str());
  return 0;
}
