// The training program's parts, through its own include path (<crossview_programs/...>): the
// options' JSON round trip, the configuration check of --resume, the warm-up hand-over to a GGDC
// network, the optimiser's parameter groups, the per-scene matrices' JSON, and --seeds parsing.

#include <crossview_programs/study.hpp>
#include <crossview_programs/trainer.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace cp = crossview_programs;

namespace {

cp::ModelOptions tiny_model(bool ggdc) {
  cp::ModelOptions m;
  m.depth = 18;
  m.width = 0.125;
  m.deep_stem = false;
  m.ggdc = ggdc;
  return m;
}

}  // namespace

TEST_CASE("TrainOptions: to_json and from_json are inverses, every option in its section") {
  cp::TrainOptions o;
  o.dataset = "camvid";
  o.root = "/data/camvid";
  o.focal = 530;
  o.eval_split = "val";
  o.model = tiny_model(true);
  o.model.ggdc_gradient = "scharr";
  o.model.ggdc_head_channels = 7;
  o.iterations = 321;
  o.closs_alpha = 2.5;
  o.closs_start = 0.25;
  o.closs_layers = "stages";
  o.aux_weight = 0.3;
  o.momentum = 0.8;
  o.warmup = 0.4;
  o.offset_lr_mult = 0.2;
  o.seed = 17;
  o.seeds = "1-3";
  o.eval_images = 12;
  const nlohmann::json j = o;
  CHECK(j.at("training").at("closs_alpha") == 2.5);
  CHECK(j.at("training").at("momentum") == 0.8);
  CHECK(j.at("model").at("ggdc_gradient") == "scharr");
  CHECK(j.at("data").at("eval_split") == "val");
  const auto back = j.get<cp::TrainOptions>();
  CHECK(nlohmann::json(back) == j);
  // A JSON without some sections keeps the defaults for them.
  const auto partial = nlohmann::json{{"training", {{"lr", 0.5}}}}.get<cp::TrainOptions>();
  CHECK(partial.lr == 0.5);
  CHECK(partial.iterations == cp::TrainOptions().iterations);
}

TEST_CASE("check_same_configuration names the options that differ") {
  cp::TrainOptions o;
  const auto spec = cp::variant_spec("vvd+closs");
  const auto config = cp::checkpoint_config(o, spec, 19, {"a"}, 283.0);
  cp::CheckpointMeta meta;
  meta.config_json = config.dump();
  CHECK_NOTHROW(cp::check_same_configuration("c.pt", meta, config));
  auto other = o;
  other.closs_alpha = 3;
  other.aux_weight = 0.1;
  const auto changed = cp::checkpoint_config(other, spec, 19, {"a"}, 283.0);
  try {
    cp::check_same_configuration("c.pt", meta, changed);
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    CHECK(what.find("c.pt was written with another configuration") != std::string::npos);
    CHECK(what.find("/training/closs_alpha") != std::string::npos);
    CHECK(what.find("/training/aux_weight") != std::string::npos);
  }
  // The run-only options (output folder, threads, figures) do not count.
  auto elsewhere = o;
  elsewhere.out = "/tmp/elsewhere";
  elsewhere.threads = 7;
  CHECK(cp::checkpoint_config(elsewhere, spec, 19, {"a"}, 283.0) == config);
}

TEST_CASE("copy_shared_state hands a plain network's weights to a GGDC network, which then computes the same") {
  torch::manual_seed(1);
  auto plain = cp::make_network(tiny_model(false), 5);
  torch::manual_seed(2);
  auto ggdc = cp::make_network(tiny_model(true), 5);
  REQUIRE(cp::ggdc_layers(*ggdc).size() == 8);  // every block of ResNet-18
  // Make the plain network's BatchNorm statistics non-trivial.
  plain->train();
  plain->forward(torch::randn({2, 3, 48, 64}));
  cp::copy_shared_state(*plain, *ggdc);
  plain->eval();
  ggdc->eval();
  const auto x = torch::randn({1, 3, 48, 64});
  const auto a = plain->forward(x).logits;
  const auto b = ggdc->forward(x).logits;
  CHECK(torch::allclose(a, b, 1e-5, 1e-5));  // zero offsets: GGDC = the conv it replaces
  for (const auto& [name, value] : cp::mean_abs_offsets(*ggdc)) {
    CAPTURE(name);
    CHECK(value == 0.0);
  }
  // The other way round a tensor has no home.
  CHECK_THROWS_WITH_AS(cp::copy_shared_state(*ggdc, *plain),
                       doctest::Contains("copy_shared_state: the network has no tensor"), std::runtime_error);
}

TEST_CASE("make_optimizer puts GGDC's offset heads in their own group at offset_lr_mult") {
  cp::TrainOptions o;
  o.offset_lr_mult = 0.1;
  auto ggdc = cp::make_network(tiny_model(true), 5);
  auto optimizer = cp::make_optimizer(ggdc, o);
  REQUIRE(optimizer.sgd->param_groups().size() == 2);
  CHECK(optimizer.multipliers == std::vector<double>{1.0, 0.1});
  int64_t heads = 0;
  for (const auto& p : ggdc->named_parameters()) heads += p.key().find("offset_head") != std::string::npos ? 1 : 0;
  CHECK(int64_t(optimizer.sgd->param_groups()[1].params().size()) == heads);
  CHECK(optimizer.sgd->param_groups()[0].params().size() + optimizer.sgd->param_groups()[1].params().size() ==
        ggdc->parameters().size());
  auto plain = cp::make_network(tiny_model(false), 5);
  CHECK(cp::make_optimizer(plain, o).sgd->param_groups().size() == 1);
}

TEST_CASE("per-scene confusion matrices survive their sparse JSON form") {
  const auto m = torch::tensor({0, 3, 0, 0, 0, 7, 2, 0, 0}, torch::kInt64).view({3, 3});
  const auto j = cp::sparse_matrix_json(m);
  CHECK(j.at("index") == std::vector<int64_t>{1, 5, 6});
  CHECK(j.at("count") == std::vector<int64_t>{3, 7, 2});
  CHECK(torch::equal(cp::sparse_matrix_from_json(j), m));
  CHECK_THROWS_AS(cp::sparse_matrix_from_json({{"k", 2}, {"index", {9}}, {"count", {1}}}), std::invalid_argument);
}

TEST_CASE("--seeds takes a range or a list") {
  CHECK(cp::parse_seeds("1-6") == std::vector<uint64_t>{1, 2, 3, 4, 5, 6});
  CHECK(cp::parse_seeds("4") == std::vector<uint64_t>{4});
  CHECK(cp::parse_seeds("1,4,9") == std::vector<uint64_t>{1, 4, 9});
  for (const char* bad : {"", "6-1", "a-b", "1,,2", "1-", "-3", "1.5"}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(cp::parse_seeds(bad), doctest::Contains("--seeds: expected A-B"), std::invalid_argument);
  }
}
