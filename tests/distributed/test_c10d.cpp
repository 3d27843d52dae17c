// c10d through the vendored Gloo headers (third_party/gloo) against the Gloo inside libtorch_cpu:
// two processes on loopback run the store, broadcast, allreduce, allgather and c10d's Reducer
// (gradient averaging), and a rank that dies makes its peer fail within the timeout instead of
// hanging. With CUDA devices, the same collectives on cuda:LOCAL_RANK through ProcessGroupNCCL
// (skipped without a GPU); without enough of them, one line naming LOCAL_RANK. The expected
// values are computed here from the ranks' inputs, not taken from c10d.
//
// The launcher test cases re-run this binary as the ranks (--test-case=<worker>); a worker test
// case does nothing unless CROSSVIEW_TEST_ROLE names it, so a plain run skips them.

#include "launch.hpp"

#include <crossview_programs/distributed.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace cp = crossview_programs;
namespace ct = crossview_test;

namespace {

bool role_is(const char* role) {
  const char* r = std::getenv("CROSSVIEW_TEST_ROLE");
  return r != nullptr && std::string(r) == role;
}

std::filesystem::path scratch(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("crossview_distributed_" + std::to_string(::getpid())) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::vector<ct::RankResult> run_workers(const std::string& role, int world, std::chrono::seconds timeout,
                                        std::vector<std::map<std::string, std::string>> per_rank = {}) {
  const auto self = std::filesystem::read_symlink("/proc/self/exe").string();
  return ct::launch_ranks({self, "--test-case=worker " + role, "--no-version"}, world, scratch(role), timeout,
                          {{"CROSSVIEW_TEST_ROLE", role}, {"OMP_NUM_THREADS", "1"}}, per_rank);
}

#if CROSSVIEW_WITH_DISTRIBUTED
/// c10d's Reducer (cp::GradientAverager) on a Linear layer on `device`: after one backward pass
/// every rank holds the mean of the ranks' gradients, computed here from each rank's input.
void check_reducer_averages_gradients(const cp::Distributed& dist, const torch::Device& device) {
  const int rank = dist.rank();
  const int world = dist.world_size();
  torch::manual_seed(11);
  torch::nn::Linear layer(torch::nn::LinearOptions(5, 3));
  layer->to(device);
  auto input_of = [&](int r) {
    return (torch::linspace(-1.0, 1.0, 20).reshape({4, 5}) * double(r + 1) + 0.3 * r).to(device);
  };
  std::vector<torch::Tensor> expected;
  for (const auto& p : layer->parameters()) expected.push_back(torch::zeros_like(p));
  for (int r = 0; r < world; ++r) {
    auto copy = std::dynamic_pointer_cast<torch::nn::LinearImpl>(layer->clone(device));
    copy->forward(input_of(r)).pow(2).sum().backward();
    const auto ps = copy->parameters();
    for (size_t k = 0; k < ps.size(); ++k) expected[k] += ps[k].grad() / double(world);
  }
  cp::GradientAverager averager(dist, *layer, 25.0);
  averager.prepare_for_forward();
  const auto loss = layer->forward(input_of(rank)).pow(2).sum();
  averager.prepare_for_backward();
  loss.backward();
  const auto ps = layer->parameters();
  for (size_t k = 0; k < ps.size(); ++k) {
    REQUIRE(ps[k].grad().defined());
    CHECK(torch::allclose(ps[k].grad(), expected[k], 1e-5, 1e-6));
  }
}
#endif

}  // namespace

#if CROSSVIEW_WITH_DISTRIBUTED

TEST_CASE("worker collectives") {
  if (!role_is("collectives")) return;
  at::set_num_threads(1);
  const auto env = cp::launch_environment();
  REQUIRE(env.has_value());
  const cp::Distributed dist(*env, std::chrono::seconds(30));
  const int rank = dist.rank();
  const int world = dist.world_size();
  REQUIRE(world == 2);
  CHECK(dist.backend() == "gloo");
  CHECK(dist.device() == torch::Device(torch::kCPU));

  // Store: each rank sets its key; both read the other's (wait blocks until it exists).
  auto& store = dist.store();
  const std::string mine = "value of rank " + std::to_string(rank);
  store->set("key" + std::to_string(rank), std::vector<uint8_t>(mine.begin(), mine.end()));
  const std::string other_key = "key" + std::to_string(1 - rank);
  store->wait({other_key});
  const auto got = store->get(other_key);
  CHECK(std::string(got.begin(), got.end()) == "value of rank " + std::to_string(1 - rank));
  CHECK(store->add("counter", 5) >= 5);

  // Broadcast from rank 0: rank 1's zeros become rank 0's values (float and int64 together).
  auto f = rank == 0 ? torch::arange(7, torch::kFloat32) * 3.5f : torch::zeros({7});
  auto i = rank == 0 ? torch::tensor({int64_t(1) << 40, int64_t(-3)}) : torch::zeros({2}, torch::kInt64);
  dist.broadcast_({f, i});
  for (int k = 0; k < 7; ++k) CHECK(f[k].item<float>() == doctest::Approx(3.5 * k));
  CHECK(i[0].item<int64_t>() == (int64_t(1) << 40));
  CHECK(i[1].item<int64_t>() == -3);

  // Allreduce sum: rank r contributes (r + 1) * [1, 2, 3] + r / 10 -> 3 * [1, 2, 3] + 0.1.
  auto s = torch::tensor({1.0, 2.0, 3.0}, torch::kFloat64) * double(rank + 1) + rank / 10.0;
  dist.all_reduce_sum_(s);
  CHECK(s[0].item<double>() == doctest::Approx(3.1));
  CHECK(s[1].item<double>() == doctest::Approx(6.1));
  CHECK(s[2].item<double>() == doctest::Approx(9.1));

  // Allgather: rank r's [10 r, 10 r + 1, 10 r + 2, 10 r + 3].
  const auto parts = dist.all_gather(torch::arange(4, torch::kInt32) + 10 * rank);
  REQUIRE(parts.size() == 2);
  for (int r = 0; r < 2; ++r) {
    for (int k = 0; k < 4; ++k) CHECK(parts[size_t(r)][k].item<int>() == 10 * r + k);
  }
  CHECK(dist.any(rank == 1));
  CHECK(!dist.any(false));

  // Allreduce average through c10d's Reducer: a linear layer, rank-dependent inputs; the averaged
  // gradient must equal the mean of both ranks' gradients, computed here without communication.
  check_reducer_averages_gradients(dist, torch::Device(torch::kCPU));
  dist.barrier();
  std::printf("worker collectives: rank %d done\n", rank);
}

TEST_CASE("worker peer_dies") {
  if (!role_is("peer_dies")) return;
  at::set_num_threads(1);
  const auto env = cp::launch_environment();
  REQUIRE(env.has_value());
  const cp::Distributed dist(*env, std::chrono::seconds(8));
  if (dist.rank() == 1) std::_Exit(7);  // dies without a word, like a killed process
  const auto t0 = std::chrono::steady_clock::now();
  auto t = torch::ones({1000});
  std::string message;
  try {
    for (int k = 0; k < 3; ++k) dist.all_reduce_sum_(t);
  } catch (const std::exception& e) {
    message = e.what();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("rank 0 saw after ", seconds, " s: ", message.substr(0, 200));
  CHECK(!message.empty());
  CHECK(seconds < 20.0);
  std::printf("worker peer_dies: rank 0 saw the error\n");
}

TEST_CASE("worker nccl") {
  if (!role_is("nccl")) return;
  at::set_num_threads(1);
  const auto env = cp::launch_environment();
  REQUIRE(env.has_value());
  const cp::Distributed dist(*env, std::chrono::seconds(60), "cuda");
  const int rank = dist.rank();
  const int world = dist.world_size();
  const auto device = dist.device();
  CHECK(device == torch::Device(torch::kCUDA, c10::DeviceIndex(env->local_rank)));
  CHECK(dist.backend() == (cp::kNcclAvailable ? "nccl" : "gloo"));
  const auto on_gpu = torch::TensorOptions().device(device);

  // CUDA tensors (NCCL): broadcast from rank 0, allreduce sum, allgather.
  auto f = rank == 0 ? torch::arange(7, on_gpu.dtype(torch::kFloat32)) * 3.5f : torch::zeros({7}, on_gpu);
  dist.broadcast_({f});
  CHECK(torch::equal(f.cpu(), torch::arange(7, torch::kFloat32) * 3.5f));
  auto s = torch::full({3}, double(rank + 1), on_gpu.dtype(torch::kFloat64));
  dist.all_reduce_sum_(s);
  CHECK(s.cpu()[2].item<double>() == doctest::Approx(world * (world + 1) / 2.0));
  const auto parts = dist.all_gather(torch::arange(4, on_gpu.dtype(torch::kInt32)) + 10 * rank);
  REQUIRE(parts.size() == size_t(world));
  for (int r = 0; r < world; ++r) CHECK(parts[size_t(r)].cpu()[3].item<int>() == 10 * r + 3);

  // CPU tensors of the same group (Gloo): the evaluation's int64 confusion matrices, flags.
  auto m = torch::full({2, 2}, (int64_t(1) << 40) + rank, torch::kInt64);
  dist.all_reduce_sum_(m);
  CHECK(m[1][1].item<int64_t>() == world * (int64_t(1) << 40) + world * (world - 1) / 2);
  CHECK(dist.any(rank == world - 1));

  // c10d's Reducer on CUDA parameters: the mean of the ranks' gradients, computed here.
  check_reducer_averages_gradients(dist, device);
  dist.barrier();
  std::printf("worker nccl: rank %d done\n", rank);
}

TEST_CASE("c10d NCCL: CUDA tensors through NCCL, CPU tensors through Gloo, each rank on cuda:LOCAL_RANK") {
  if (std::getenv("CROSSVIEW_TEST_ROLE") != nullptr) return;
  const int gpus = int(torch::cuda::device_count());
  if (gpus == 0) {
    MESSAGE("skipped: no CUDA device");
    return;
  }
  // Forked before any CUDA work in this process; each rank execs at once.
  const auto results = run_workers("nccl", std::min(2, gpus), std::chrono::seconds(180));
  const auto text = ct::describe(results);
  for (const auto& r : results) {
    CHECK_MESSAGE(!r.timed_out, text);
    CHECK_MESSAGE(r.exit_code == 0, text);
    CHECK_MESSAGE(r.output.find("worker nccl: rank") != std::string::npos, text);
  }
}

TEST_CASE("c10d Gloo: store, broadcast, allreduce sum and average, allgather across 2 processes") {
  if (std::getenv("CROSSVIEW_TEST_ROLE") != nullptr) return;
  const auto results = run_workers("collectives", 2, std::chrono::seconds(60));
  const auto text = ct::describe(results);
  for (const auto& r : results) {
    CHECK_MESSAGE(!r.timed_out, text);
    CHECK_MESSAGE(r.exit_code == 0, text);
    // The worker case ran to its end (not filtered away).
    CHECK_MESSAGE(r.output.find("worker collectives: rank") != std::string::npos, text);
  }
}

TEST_CASE("c10d Gloo: a rank that dies makes its peer fail within the timeout") {
  if (std::getenv("CROSSVIEW_TEST_ROLE") != nullptr) return;
  const auto results = run_workers("peer_dies", 2, std::chrono::seconds(60));
  const auto text = ct::describe(results);
  REQUIRE(results.size() == 2);
  CHECK_MESSAGE(!results[0].timed_out, text);
  CHECK_MESSAGE(results[0].exit_code == 0, text);
  CHECK_MESSAGE(results[1].exit_code == 7, text);
  CHECK_MESSAGE(results[0].output.find("worker peer_dies: rank 0 saw the error") != std::string::npos, text);
}

#endif

TEST_CASE("rank_device: cpu, cuda:LOCAL_RANK, and too few visible GPUs in one line") {
  if (std::getenv("CROSSVIEW_TEST_ROLE") != nullptr) return;
  cp::LaunchEnvironment env;
  env.world_size = 4;
  env.rank = 3;
  env.local_rank = 1;
  CHECK(cp::rank_device(env, "cpu") == torch::Device(torch::kCPU));
  CHECK_THROWS_WITH_AS(cp::rank_device(env, "gpu"), "rank_device: requested must be \"cpu\" or \"cuda\", got \"gpu\"",
                       std::invalid_argument);
  // One LOCAL_RANK past the visible GPUs, on any machine (0 here without a GPU).
  const int visible = int(torch::cuda::device_count());
  env.local_rank = visible;
  const std::string advice = visible == 0 ? "train with --device cpu, or check the driver and CUDA_VISIBLE_DEVICES"
                                          : "start at most " + std::to_string(visible) + " processes per node";
  const std::string expected = "--device cuda: LOCAL_RANK=" + std::to_string(visible) + " but this machine has " +
                               std::to_string(visible) + " visible CUDA device(s); " + advice;
  CHECK_THROWS_WITH_AS(cp::rank_device(env, "cuda"), expected.c_str(), std::runtime_error);
  if (visible > 0) {
    env.local_rank = visible - 1;
    CHECK(cp::rank_device(env, "cuda") == torch::Device(torch::kCUDA, c10::DeviceIndex(visible - 1)));
  }
#if CROSSVIEW_WITH_DISTRIBUTED
  // The device is checked before the store is contacted: no store listens on this port, and the
  // error comes at once, not after the timeout.
  env.master_addr = "127.0.0.1";
  env.master_port = ct::free_loopback_port();
  env.local_rank = visible;
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(cp::Distributed(env, std::chrono::seconds(30), "cuda"), expected.c_str(), std::runtime_error);
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 10.0);
#endif
}

TEST_CASE("launch_environment: absent, complete, and wrong variables") {
  if (std::getenv("CROSSVIEW_TEST_ROLE") != nullptr) return;
  const char* names[] = {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"};
  for (const char* n : names) ::unsetenv(n);
  CHECK(!cp::launch_environment().has_value());
  ::setenv("RANK", "1", 1);
  CHECK_THROWS_WITH(cp::launch_environment(),
                    doctest::Contains("environment variable WORLD_SIZE is not set"));
  ::setenv("WORLD_SIZE", "2", 1);
  ::setenv("MASTER_PORT", "70000", 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  CHECK_THROWS_WITH(cp::launch_environment(), "crossview-train: multi-process launch: MASTER_PORT must be an integer in "
                                              "[1, 65535], got \"70000\"");
  ::setenv("MASTER_PORT", "29500", 1);
  ::setenv("RANK", "2", 1);
  CHECK_THROWS_WITH(cp::launch_environment(), doctest::Contains("RANK must be an integer in [0, 1], got \"2\""));
  ::setenv("RANK", "1", 1);
  const auto env = cp::launch_environment();
  REQUIRE(env.has_value());
  CHECK(env->rank == 1);
  CHECK(env->world_size == 2);
  CHECK(env->local_rank == 0);
  CHECK(env->master_port == 29500);
  CHECK(!env->agent_store);
  for (const char* n : names) ::unsetenv(n);
}
