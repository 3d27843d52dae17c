// SyncBatchNorm in the models and sharded evaluation, across 2 processes on loopback:
// - the network crossview-train builds with --sync-bn (make_network: PSPNet on ResNet-18 with GGDC,
//   every normalisation layer a SyncBatchNorm over the run's group), trained 2 processes x batch 2
//   with the trainer's sharding, loss normalisation and c10d Reducer, reaches the weights and
//   running statistics of the BatchNorm2d network trained 1 process x batch 4 (dropout off: its
//   masks are drawn per rank); the same 2 x 2 training without --sync-bn does not;
// - crossview-train --sync-bn in one process trains exactly the weights it trains without;
// - crossview-train --sync-bn on 2 ranks: each rank evaluates its share of the evaluation pairs
//   and results.json equals that of one process evaluating the same weights alone.

#include "launch.hpp"

#include <crossview_programs/distributed.hpp>
#include <crossview_programs/model.hpp>
#include <crossview_programs/trained_network.hpp>
#include <crossview_programs/trainer.hpp>

#include <crossview/nn/sync_batch_norm.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace cp = crossview_programs;
namespace ct = crossview_test;

#if CROSSVIEW_WITH_DISTRIBUTED

namespace {

bool role_is(const char* role) {
  const char* r = std::getenv("CROSSVIEW_TEST_ROLE");
  return r != nullptr && std::string(r) == role;
}

std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("crossview_sync_bn_" + std::to_string(::getpid())) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// The tiny network of the tests: PSPNet on ResNet-18 x0.125 with GGDC in the last block of each
/// stage, as crossview-train builds it (make_network).
cp::Network tiny_network(bool sync_bn) {
  cp::ModelOptions m;
  m.depth = 18;
  m.width = 0.125;
  m.deep_stem = false;
  m.ggdc = true;
  m.ggdc_blocks = "last";
  m.sync_bn = sync_bn;
  torch::manual_seed(7);
  auto net = cp::make_network(m, 5);
  net->train();
  // Dropout draws its masks per rank: switched off here, so the comparison is exact up to rounding.
  for (const auto& module : net->modules()) {
    if (module->as<torch::nn::Dropout2d>() != nullptr) module->eval();
  }
  return net;
}

/// The global batch of step `step`: 4 normalised images [4, 3, 32, 32] and labels with a different
/// number of ignored pixels in each half.
cp::TrainBatch global_batch(int step) {
  torch::manual_seed(200 + step);
  cp::TrainBatch b;
  b.images = torch::randn({4, 3, 32, 32});
  b.labels = torch::randint(0, 5, {4, 32, 32}, torch::kInt64);
  b.labels.slice(0, 0, 1).slice(1, 0, 4 + 3 * step).fill_(255);
  b.labels.slice(0, 3, 4).slice(2, 0, 9).fill_(255);
  return b;
}

double max_relative_difference(torch::nn::Module& a, torch::nn::Module& b, std::string* where) {
  double worst = 0;
  const auto pb = b.named_parameters();
  for (const auto& p : a.named_parameters()) {
    const auto& q = pb[p.key()];
    const double d = ((p.value() - q).abs() / (p.value().abs() + 1e-3)).max().item<double>();
    if (d > worst) {
      worst = d;
      *where = p.key();
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("worker sync_bn_model") {
  if (!role_is("sync_bn_model")) return;
  at::set_num_threads(1);
  const auto env = cp::launch_environment();
  REQUIRE(env.has_value());
  auto dist = std::make_shared<cp::Distributed>(*env, std::chrono::seconds(60));
  const int rank = dist->rank(), world = dist->world_size();
  REQUIRE(world == 2);

  cp::set_current_distributed(nullptr);
  auto reference = tiny_network(false);  // one process, BatchNorm2d
  auto plain = tiny_network(false);      // 2 x 2 without --sync-bn
  cp::set_current_distributed(dist);
  auto synced = tiny_network(true);  // 2 x 2 with --sync-bn: make_network takes the run's group
  int64_t sync_layers = 0;
  for (const auto& module : synced->modules()) {
    if (const auto* bn = module->as<crossview::SyncBatchNormImpl>()) {
      CHECK(bn->process_group().get() == dist->group().get());
      ++sync_layers;
    }
  }
  CHECK(sync_layers > 20);
  for (auto* net : {&plain, &synced}) dist->broadcast_module_(**net);

  const auto sgd = torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4);
  torch::optim::SGD ref_opt(reference->parameters(), sgd), plain_opt(plain->parameters(), sgd),
      sync_opt(synced->parameters(), sgd);
  cp::GradientAverager plain_avg(*dist, *plain), sync_avg(*dist, *synced);
  const double aux_weight = 0.4;

  for (int step = 0; step < 5; ++step) {
    const auto batch = global_batch(step);
    ref_opt.zero_grad();
    const auto ref_out = reference->forward(batch.images);
    (cp::masked_cross_entropy(ref_out.logits, batch.labels) +
     aux_weight * cp::masked_cross_entropy(ref_out.aux_logits, batch.labels))
        .backward();
    ref_opt.step();

    // What train_stage does on each rank (trainer.hpp).
    const auto share = cp::shard_batch(batch, rank, world);
    auto count = (share.labels != 255).sum().to(torch::kFloat64).reshape({1});
    dist->all_reduce_sum_(count);
    const double scale = double(world) / count.item<double>();
    struct Replica {
      cp::Network& net;
      torch::optim::SGD& opt;
      cp::GradientAverager& averager;
    };
    for (auto replica : {Replica{plain, plain_opt, plain_avg}, Replica{synced, sync_opt, sync_avg}}) {
      auto buffers = replica.net->buffers();
      dist->broadcast_(buffers);
      replica.averager.prepare_for_forward();
      const auto out = replica.net->forward(share.images);
      const auto loss = cp::cross_entropy_sum(out.logits, share.labels) * scale +
                        aux_weight * cp::cross_entropy_sum(out.aux_logits, share.labels) * scale;
      replica.opt.zero_grad();
      replica.averager.prepare_for_backward();
      loss.backward();
      replica.opt.step();
    }
  }

  std::string sync_where, plain_where;
  const double sync_diff = max_relative_difference(*reference, *synced, &sync_where);
  const double plain_diff = max_relative_difference(*reference, *plain, &plain_where);
  std::printf("rank %d: max |w - w_ref| / (|w_ref| + 1e-3): --sync-bn %.3g (%s), without %.3g (%s)\n", rank, sync_diff,
              sync_where.c_str(), plain_diff, plain_where.c_str());
  // Tolerance: float32 reductions in another order (per-rank sums, then the allreduce; SyncBatchNorm
  // combines the ranks' statistics in float64) over 5 SGD steps through ~30 layers: measured 9e-7
  // relative at most; 1e-4 leaves a factor of 100 and stays far below what per-rank BatchNorm
  // statistics change (measured 1.2 relative, in backbone.conv1.weight; checked below).
  const double rtol = 1e-4, atol = 1e-6;
  const auto ps = synced->named_parameters();
  for (const auto& p : reference->named_parameters()) {
    const auto& q = ps[p.key()];
    CHECK_MESSAGE(torch::allclose(p.value(), q, rtol, atol), p.key(), " max diff ",
                  (p.value() - q).abs().max().item<double>());
  }
  const auto bs = synced->named_buffers();
  for (const auto& b : reference->named_buffers()) {
    const auto& q = bs[b.key()];
    CHECK_MESSAGE(torch::allclose(b.value().to(torch::kFloat64), q.to(torch::kFloat64), rtol, atol), b.key());
  }
  CHECK(bs["backbone.bn1.num_batches_tracked"].item<int64_t>() == 5);
  // Without --sync-bn each rank normalises its 2 images alone: the weights go elsewhere.
  CHECK(plain_diff > 100 * rtol);
  // The weights moved.
  CHECK(!torch::allclose(reference->parameters()[0], tiny_network(false)->parameters()[0]));
  dist->barrier();
  cp::set_current_distributed(nullptr);
  std::printf("worker sync_bn_model: rank %d done\n", rank);
}

TEST_CASE("--sync-bn network: 2 processes x batch 2 = 1 process x batch 4 (PSPNet, GGDC, Reducer)") {
  if (std::getenv("CROSSVIEW_TEST_ROLE") != nullptr) return;
  const auto self = std::filesystem::read_symlink("/proc/self/exe").string();
  const auto results = ct::launch_ranks({self, "--test-case=worker sync_bn_model", "--no-version"}, 2,
                                        fresh_dir("model"), std::chrono::seconds(180),
                                        {{"CROSSVIEW_TEST_ROLE", "sync_bn_model"}, {"OMP_NUM_THREADS", "1"}});
  const auto text = ct::describe(results);
  for (const auto& r : results) {
    CHECK_MESSAGE(!r.timed_out, text);
    CHECK_MESSAGE(r.exit_code == 0, text);
    CHECK_MESSAGE(r.output.find("worker sync_bn_model: rank") != std::string::npos, text);
  }
  const auto at = results[0].output.find("rank 0: max");
  if (at != std::string::npos) MESSAGE(results[0].output.substr(at, results[0].output.find('\n', at) - at));
}

namespace {

const std::string kTrain = CROSSVIEW_BINARY_DIR "/bin/crossview-train";

std::vector<std::string> tiny_args(const std::filesystem::path& out) {
  return {kTrain, "--iterations", "4", "--batch", "4", "--crop", "48", "--width", "0.125", "--train-images", "3",
          "--eval-images", "5", "--eval-height", "64", "--eval-width", "96", "--threads", "1", "--figure-samples",
          "1", "--warmup", "0", "--closs-start", "0.5", "--variants", "vvd+ggdc+closs", "--quiet", "--dist-timeout",
          "60", "--out", out.string()};
}

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), path.string());
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("crossview-train --sync-bn in one process trains the weights of BatchNorm2d") {
  if (std::getenv("CROSSVIEW_TEST_ROLE") != nullptr) return;
  const auto dir = fresh_dir("one_process");
  const auto plain = ct::launch_ranks(tiny_args(dir / "plain"), 1, dir / "plain_logs", std::chrono::seconds(180));
  REQUIRE_MESSAGE(plain[0].exit_code == 0, ct::describe(plain));
  auto args = tiny_args(dir / "sync");
  args.push_back("--sync-bn");
  const auto sync = ct::launch_ranks(args, 1, dir / "sync_logs", std::chrono::seconds(180));
  REQUIRE_MESSAGE(sync[0].exit_code == 0, ct::describe(sync));

  CHECK(!read_json(dir / "plain" / "results.json").at("config").at("model").contains("sync_bn"));
  CHECK(read_json(dir / "sync" / "results.json").at("config").at("model").at("sync_bn") == true);
  const auto a = cp::load_trained_network(dir / "plain" / "vvd_ggdc_closs" / "model.pt");
  const auto b = cp::load_trained_network(dir / "sync" / "vvd_ggdc_closs" / "model.pt");
  const auto pb = b.network->named_parameters();
  for (const auto& p : a.network->named_parameters()) CHECK_MESSAGE(torch::equal(p.value(), pb[p.key()]), p.key());
  const auto bb = b.network->named_buffers();
  for (const auto& q : a.network->named_buffers()) CHECK_MESSAGE(torch::equal(q.value(), bb[q.key()]), q.key());
}

TEST_CASE("crossview-train --sync-bn on 2 ranks: sharded evaluation gives the one-process results.json") {
  if (std::getenv("CROSSVIEW_TEST_ROLE") != nullptr) return;
  const auto dir = fresh_dir("sharded_eval");
  auto args = tiny_args(dir / "two");
  args.push_back("--sync-bn");
  const auto two = ct::launch_ranks(args, 2, dir / "two_logs", std::chrono::seconds(240));
  REQUIRE_MESSAGE((two[0].exit_code == 0 && two[1].exit_code == 0), ct::describe(two));
  // 5 pairs, the first kept for the figures: rank 0 evaluates pairs 0, 2, 4; rank 1 pairs 1, 3.
  CHECK_MESSAGE(two[0].output.find("evaluated 3 of 5 evaluation pairs (rank 0 of 2)") != std::string::npos,
                ct::describe(two));
  CHECK_MESSAGE(two[1].output.find("evaluated 2 of 5 evaluation pairs (rank 1 of 2)") != std::string::npos,
                ct::describe(two));
  const auto sharded = read_json(dir / "two" / "results.json");
  CHECK(sharded.at("config").at("world_size") == 2);
  CHECK(sharded.at("config").at("model").at("sync_bn") == true);

  // One process evaluates the same weights alone: its --resume finds the finished model.
  std::filesystem::create_directories(dir / "one" / "vvd_ggdc_closs");
  std::filesystem::copy_file(dir / "two" / "vvd_ggdc_closs" / "model.pt", dir / "one" / "vvd_ggdc_closs" / "model.pt");
  auto one_args = tiny_args(dir / "one");
  one_args.insert(one_args.end(), {"--sync-bn", "--resume"});
  const auto one = ct::launch_ranks(one_args, 1, dir / "one_logs", std::chrono::seconds(180));
  REQUIRE_MESSAGE(one[0].exit_code == 0, ct::describe(one));
  CHECK(one[0].output.find("already trained (4 iterations)") != std::string::npos);
  const auto single = read_json(dir / "one" / "results.json");
  CHECK(single.at("config").at("world_size") == 1);

  // Every metric, per-class IoU, per-scene confusion matrix and GGDC offset statistic: equal.
  REQUIRE(sharded.at("variants").size() == 1);
  REQUIRE(single.at("variants").size() == 1);
  const auto& s = sharded.at("variants")[0];
  const auto& o = single.at("variants")[0];
  for (const auto& [key, value] : o.items()) {
    CHECK_MESSAGE(s.contains(key), key);
    if (s.contains(key)) CHECK_MESSAGE(s.at(key) == value, key, ": 2 ranks ", s.at(key).dump(), ", 1 process ", value.dump());
  }
  CHECK(s.size() == o.size());
  // The comparison is not between empty or trivial results.
  CHECK(o.at("per_scene_confusion").at("vvd").size() == 5);
  CHECK(o.at("seg_miou_vvd").get<double>() > 0.0);
}

#endif
