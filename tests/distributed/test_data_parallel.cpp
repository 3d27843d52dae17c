// Data-parallel training on c10d across 2 processes on loopback:
// - SyncBatchNorm against BatchNorm2d on the concatenated batch (outputs and input gradients), and
//   2 processes x batch 2 (GradientAverager = c10d's Reducer, crossview-train's batch sharding and
//   loss normalisation) reaching the weights and running statistics of 1 process x batch 4 after
//   several SGD steps; the single-process reference is computed in each worker, without c10d;
// - crossview-train under 2 ranks: killed and resumed reaches the uninterrupted run's weights;
//   a rank that dies makes the other fail with an error within --dist-timeout; --device cuda
//   without enough visible GPUs fails on every rank with one line naming LOCAL_RANK.

#include "launch.hpp"

#include <crossview/nn/sync_batch_norm.hpp>
#include <crossview_programs/distributed.hpp>
#include <crossview_programs/trained_network.hpp>
#include <crossview_programs/trainer.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace cp = crossview_programs;
namespace ct = crossview_test;

#if CROSSVIEW_WITH_DISTRIBUTED

namespace {

bool worker_role_is(const char* role) {
  const char* r = std::getenv("CROSSVIEW_TEST_ROLE");
  return r != nullptr && std::string(r) == role;
}

std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("crossview_data_parallel_" + std::to_string(::getpid())) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// conv 3->6 (3x3) -> batch norm -> ReLU -> conv 6->3 (1x1): BatchNorm2d or SyncBatchNorm.
torch::nn::Sequential small_net(bool synchronised, const c10::intrusive_ptr<c10d::ProcessGroup>& group) {
  torch::manual_seed(5);
  torch::nn::Sequential net;
  net->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 6, 3).padding(1)));
  if (synchronised) {
    crossview::SyncBatchNorm bn(6);
    bn->set_process_group(group);
    net->push_back(bn);
  } else {
    net->push_back(torch::nn::BatchNorm2d(6));
  }
  net->push_back(torch::nn::ReLU());
  net->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 3, 1)));
  return net;
}

/// The global batch of step `step`: 4 images and labels with a different number of ignored
/// pixels in each half (so per-rank means would differ from the global mean).
cp::TrainBatch global_batch(int step) {
  torch::manual_seed(100 + step);
  cp::TrainBatch b;
  b.images = torch::randn({4, 3, 8, 8}) * 2.0 + 0.5;
  b.labels = torch::randint(0, 3, {4, 8, 8}, torch::kInt64);
  b.labels.slice(0, 0, 1).slice(1, 0, 2 + step).fill_(255);
  b.labels.slice(0, 3, 4).slice(2, 0, 5).fill_(255);
  return b;
}

}  // namespace

TEST_CASE("worker data_parallel") {
  if (!worker_role_is("data_parallel")) return;
  at::set_num_threads(1);
  const auto env = cp::launch_environment();
  REQUIRE(env.has_value());
  const cp::Distributed dist(*env, std::chrono::seconds(30));
  const int rank = dist.rank(), world = dist.world_size();
  REQUIRE(world == 2);

  auto reference = small_net(false, {});
  auto replica = small_net(true, dist.group());
  dist.broadcast_module_(*replica);
  {  // the replica starts from the reference's weights (same seed; checked, not assumed)
    const auto a = reference->parameters(), b = replica->parameters();
    REQUIRE(a.size() == b.size());
    for (size_t k = 0; k < a.size(); ++k) REQUIRE(torch::equal(a[k], b[k]));
  }
  const auto sgd = torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(1e-4);
  torch::optim::SGD ref_opt(reference->parameters(), sgd), rep_opt(replica->parameters(), sgd);
  cp::GradientAverager averager(dist, *replica, 25.0);

  for (int step = 0; step < 4; ++step) {
    const auto batch = global_batch(step);
    const auto input = batch.images.clone().requires_grad_(step == 0);
    // Reference: one process, the whole batch, the mean over its labelled pixels.
    ref_opt.zero_grad();
    const auto ref_out = reference->forward(input);
    cp::masked_cross_entropy(ref_out, batch.labels).backward();
    ref_opt.step();

    // This rank: its share, the loss normalised by the global count times the world size.
    const auto share = cp::shard_batch(batch, rank, world);
    const auto share_input = share.images.clone().requires_grad_(step == 0);
    rep_opt.zero_grad();
    averager.prepare_for_forward();
    const auto out = replica->forward(share_input);
    auto count = (share.labels != 255).sum().to(torch::kFloat64).reshape({1});
    dist.all_reduce_sum_(count);
    const auto loss = cp::cross_entropy_sum(out, share.labels) * (double(world) / count.item<double>());
    averager.prepare_for_backward();
    loss.backward();
    rep_opt.step();

    if (step == 0) {
      // SyncBatchNorm on the shares = BatchNorm2d on the concatenated batch: outputs, and input
      // gradients (which carry the factor world_size of the loss normalisation).
      CHECK(torch::allclose(out, ref_out.slice(0, 2 * rank, 2 * rank + 2), 1e-5, 1e-6));
      const auto ref_grad = input.grad().slice(0, 2 * rank, 2 * rank + 2) * double(world);
      CHECK(torch::allclose(share_input.grad(), ref_grad, 1e-4, 1e-7));
    }
  }
  // Tolerance: float32 sums in another order (rtol 1e-4, atol 1e-6).
  const auto a = reference->named_parameters(), b = replica->named_parameters();
  for (const auto& p : a) {
    const auto& q = b[p.key()];
    CHECK_MESSAGE(torch::allclose(p.value(), q, 1e-4, 1e-6), p.key(), " max diff ",
                  (p.value() - q).abs().max().item<double>());
  }
  const auto ba = reference->named_buffers(), bb = replica->named_buffers();
  for (const auto& p : ba) {
    const auto& q = bb[p.key()];
    CHECK_MESSAGE(torch::allclose(p.value().to(torch::kFloat64), q.to(torch::kFloat64), 1e-4, 1e-6), p.key());
  }
  // The weights moved: the comparison is not between two untouched copies.
  CHECK(!torch::allclose(reference->parameters()[0], small_net(false, {})->parameters()[0]));
  dist.barrier();
  std::printf("worker data_parallel: rank %d done\n", rank);
}

TEST_CASE("2 processes x batch 2 = 1 process x batch 4 (Reducer, SyncBatchNorm, loss normalisation)") {
  if (std::getenv("CROSSVIEW_TEST_ROLE") != nullptr) return;
  const auto self = std::filesystem::read_symlink("/proc/self/exe").string();
  const auto results = ct::launch_ranks({self, "--test-case=worker data_parallel", "--no-version"}, 2,
                                        fresh_dir("data_parallel"), std::chrono::seconds(90),
                                        {{"CROSSVIEW_TEST_ROLE", "data_parallel"}, {"OMP_NUM_THREADS", "1"}});
  const auto text = ct::describe(results);
  for (const auto& r : results) {
    CHECK_MESSAGE(!r.timed_out, text);
    CHECK_MESSAGE(r.exit_code == 0, text);
    CHECK_MESSAGE(r.output.find("worker data_parallel: rank") != std::string::npos, text);
  }
}

namespace {

const std::string kTrainBinary = CROSSVIEW_BINARY_DIR "/bin/crossview-train";

std::vector<std::string> tiny_train_args(const std::filesystem::path& out) {
  return {kTrainBinary, "--iterations", "6", "--batch", "4", "--crop", "48", "--width", "0.125", "--train-images",
          "3", "--eval-images", "2", "--eval-height", "64", "--eval-width", "96", "--checkpoint-every", "2",
          "--threads", "1", "--figure-samples", "1", "--warmup", "0", "--closs-start", "0.3", "--variants",
          "vvd+ggdc+closs", "--quiet", "--dist-timeout", "30", "--out", out.string()};
}

}  // namespace

TEST_CASE("crossview-train on 2 ranks: killed after iteration 5, --resume reaches the uninterrupted weights") {
  if (std::getenv("CROSSVIEW_TEST_ROLE") != nullptr) return;
  const auto dir = fresh_dir("train_resume");
  const auto whole = ct::launch_ranks(tiny_train_args(dir / "whole"), 2, dir / "whole_logs", std::chrono::seconds(240));
  REQUIRE_MESSAGE((whole[0].exit_code == 0 && whole[1].exit_code == 0), ct::describe(whole));
  // Only rank 0 wrote; results.json records the world size and backend.
  std::ifstream in(dir / "whole" / "results.json");
  const auto results = nlohmann::json::parse(in);
  CHECK(results.at("config").at("world_size") == 2);
  CHECK(results.at("config").at("backend") == "gloo");
  CHECK(whole[1].output.find("Table 1") == std::string::npos);
  CHECK(whole[0].output.find("Table 1") != std::string::npos);

  auto split_args = tiny_train_args(dir / "split");
  auto stop_args = split_args;
  stop_args.insert(stop_args.end(), {"--stop-after", "5"});
  const auto stopped = ct::launch_ranks(stop_args, 2, dir / "stopped_logs", std::chrono::seconds(240));
  REQUIRE_MESSAGE((stopped[0].exit_code == 3 && stopped[1].exit_code == 3), ct::describe(stopped));
  CHECK(std::filesystem::exists(dir / "split" / "vvd_ggdc_closs" / "checkpoint.pt"));
  CHECK(cp::read_checkpoint_meta(dir / "split" / "vvd_ggdc_closs" / "checkpoint.pt").iteration == 4);
  split_args.push_back("--resume");
  const auto resumed = ct::launch_ranks(split_args, 2, dir / "resumed_logs", std::chrono::seconds(240));
  REQUIRE_MESSAGE((resumed[0].exit_code == 0 && resumed[1].exit_code == 0), ct::describe(resumed));
  CHECK(resumed[0].output.find("resuming at iteration 4") != std::string::npos);

  const auto a = cp::load_trained_network(dir / "whole" / "vvd_ggdc_closs" / "model.pt");
  const auto b = cp::load_trained_network(dir / "split" / "vvd_ggdc_closs" / "model.pt");
  const auto pb = b.network->named_parameters();
  size_t compared = 0;
  for (const auto& p : a.network->named_parameters()) {
    CHECK_MESSAGE(torch::equal(p.value(), pb[p.key()]), p.key());
    ++compared;
  }
  CHECK(compared > 10);
}

TEST_CASE("crossview-train on 2 ranks: a rank that dies stops the other with an error, not a hang") {
  if (std::getenv("CROSSVIEW_TEST_ROLE") != nullptr) return;
  const auto dir = fresh_dir("train_dies");
  // Rank 1 exits abruptly after iteration 3 (as if killed); rank 0 must fail in its next collective.
  const auto t0 = std::chrono::steady_clock::now();
  const auto results = ct::launch_ranks(tiny_train_args(dir / "out"), 2, dir / "logs", std::chrono::seconds(120), {},
                                        {}, {{}, {"--stop-after", "3"}});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto text = ct::describe(results);
  CHECK_MESSAGE(results[1].exit_code == 3, text);
  CHECK_MESSAGE(!results[0].timed_out, text);
  CHECK_MESSAGE(results[0].exit_code == 1, text);
  CHECK_MESSAGE(results[0].output.find("crossview-train: error: rank 0 of 2: ") != std::string::npos, text);
  CHECK_MESSAGE(results[0].output.find("another process of the run died") != std::string::npos, text);
  CHECK(seconds < 100.0);
}

TEST_CASE("crossview-train --device cuda on 2 ranks without visible GPUs: one line naming LOCAL_RANK, at once") {
  if (std::getenv("CROSSVIEW_TEST_ROLE") != nullptr) return;
  const auto dir = fresh_dir("train_cuda_without_gpu");
  auto args = tiny_train_args(dir / "out");
  args.insert(args.end(), {"--device", "cuda"});
  // CUDA_VISIBLE_DEVICES="" hides every GPU, so the case reads the same on a GPU machine.
  const auto t0 = std::chrono::steady_clock::now();
  const auto results =
      ct::launch_ranks(args, 2, dir / "logs", std::chrono::seconds(60), {{"CUDA_VISIBLE_DEVICES", ""}});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto text = ct::describe(results);
  for (int r = 0; r < 2; ++r) {
    const auto& result = results[size_t(r)];
    CHECK_MESSAGE(!result.timed_out, text);
    CHECK_MESSAGE(result.exit_code == 1, text);
    // Refused by cp::Distributed (crossview-train passes --device to it) before the store is
    // contacted: nothing else is printed, and no rank waits for the other.
    CHECK_MESSAGE(result.output == "crossview-train: error: --device cuda: LOCAL_RANK=" + std::to_string(r) +
                                       " but this machine has 0 visible CUDA device(s); train with --device cpu, or "
                                       "check the driver and CUDA_VISIBLE_DEVICES\n",
                  text);
  }
  CHECK(seconds < 30.0);
  CHECK(!std::filesystem::exists(dir / "out"));
}

TEST_CASE("crossview-train on 2 ranks: SIGTERM to one rank stops both with a checkpoint; --resume continues") {
  if (std::getenv("CROSSVIEW_TEST_ROLE") != nullptr) return;
  const auto dir = fresh_dir("train_sigterm");
  auto args = tiny_train_args(dir / "out");
  for (size_t k = 0; k + 1 < args.size(); ++k) {
    if (args[k] == "--iterations") args[k + 1] = "200";
    if (args[k] == "--checkpoint-every") args[k + 1] = "1000";
  }
  ct::SignalWhen term;
  term.rank = 1;
  term.after = "synthetic: 3 training images";
  term.delay = std::chrono::milliseconds(1500);
  const auto stopped = ct::launch_ranks(args, 2, dir / "stopped_logs", std::chrono::seconds(240), {}, {}, {}, term);
  const auto text = ct::describe(stopped);
  CHECK_MESSAGE(stopped[1].exit_code == 128 + SIGTERM, text);
  CHECK_MESSAGE(stopped[0].exit_code == 1, text);
  CHECK_MESSAGE(stopped[1].output.find("crossview-train: stopped by SIGTERM after iteration ") != std::string::npos, text);
  const auto at = stopped[0].output.find("crossview-train: stopped by a stop request on another rank after iteration ");
  REQUIRE_MESSAGE(at != std::string::npos, text);
  const auto checkpoint = dir / "out" / "vvd_ggdc_closs" / "checkpoint.pt";
  REQUIRE(std::filesystem::exists(checkpoint));
  const int64_t stopped_at = cp::read_checkpoint_meta(checkpoint).iteration;
  CHECK(stopped_at > 0);
  CHECK(stopped_at < 200);
  CHECK(stopped[0].output.find("after iteration " + std::to_string(stopped_at) + " of vvd+ggdc+closs; checkpoint") !=
        std::string::npos);
  args.push_back("--resume");
  const auto resumed = ct::launch_ranks(args, 2, dir / "resumed_logs", std::chrono::seconds(240));
  REQUIRE_MESSAGE((resumed[0].exit_code == 0 && resumed[1].exit_code == 0), ct::describe(resumed));
  CHECK(resumed[0].output.find("resuming at iteration " + std::to_string(stopped_at)) != std::string::npos);
  CHECK(cp::read_checkpoint_meta(dir / "out" / "vvd_ggdc_closs" / "model.pt").iteration == 200);
}

#endif
