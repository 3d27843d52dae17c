// The training program's parts, through its own include path (<crossview_programs/...>): the
// options' JSON round trip, the configuration check of --resume, the three networks of --model (and
// PSPNet checkpoints written before it), the warm-up hand-over to a GGDC network, the optimiser's
// parameter groups, the paper's figures in the table, the per-scene matrices' JSON, and --seeds
// parsing, and crossview-eval's --vvd-control crops.

#include <crossview_programs/study.hpp>
#include <crossview_programs/trainer.hpp>
#include <crossview_programs/vvd_control.hpp>

#include <crossview/data/synthetic_dataset.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace cp = crossview_programs;

namespace {

cp::ModelOptions tiny_model(bool ggdc, const std::string& name = "pspnet") {
  cp::ModelOptions m;
  m.name = name;
  m.depth = 18;
  m.width = 0.125;
  m.deep_stem = false;
  m.ggdc = ggdc;
  return m;
}

/// What print_table writes for `rows`.
std::string table_text(const std::string& dataset, const std::string& model,
                       const std::vector<cp::VariantResult>& rows, const std::string& protocol = "") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  cp::print_table(f, dataset, rows, model, protocol);
  std::rewind(f);
  std::string text;
  for (int c = std::fgetc(f); c != EOF; c = std::fgetc(f)) text += char(c);
  std::fclose(f);
  return text;
}

/// Every parameter and buffer of `module`, by name.
std::vector<std::pair<std::string, torch::Tensor>> named_tensors(torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : module.named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

}  // namespace

TEST_CASE("TrainOptions: to_json and from_json are inverses, every option in its section") {
  cp::TrainOptions o;
  o.dataset = "camvid";
  o.root = "/data/camvid";
  o.focal = 530;
  o.eval_split = "val";
  o.model = tiny_model(true, "ccnet");
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
  CHECK(j.at("model").at("name") == "ccnet");
  CHECK(j.at("data").at("eval_split") == "val");
  const auto back = j.get<cp::TrainOptions>();
  CHECK(nlohmann::json(back) == j);
  // A JSON without some sections keeps the defaults for them.
  const auto partial = nlohmann::json{{"training", {{"lr", 0.5}}}}.get<cp::TrainOptions>();
  CHECK(partial.lr == 0.5);
  CHECK(partial.iterations == cp::TrainOptions().iterations);
  // A model section written before --model existed was PSPNet's.
  CHECK(nlohmann::json{{"model", {{"depth", 18}}}}.get<cp::TrainOptions>().model.name == "pspnet");
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

TEST_CASE("check_same_configuration refuses a checkpoint of another --model; one written before --model is PSPNet's") {
  cp::TrainOptions o;
  o.model = tiny_model(false, "ccnet");
  const auto spec = cp::variant_spec("baseline");
  cp::CheckpointMeta meta;
  meta.config_json = cp::checkpoint_config(o, spec, 19, {"a"}, 283.0).dump();
  auto other = o;
  other.model.name = "deeplabv3";
  CHECK_THROWS_WITH_AS(cp::check_same_configuration("c.pt", meta, cp::checkpoint_config(other, spec, 19, {"a"}, 283.0)),
                       doctest::Contains("(/model/name differ)"), std::runtime_error);
  // A configuration without model.name (written before --model) equals PSPNet's.
  other.model.name = "pspnet";
  auto old = cp::checkpoint_config(other, spec, 19, {"a"}, 283.0);
  old["model"].erase("name");
  meta.config_json = old.dump();
  CHECK_NOTHROW(cp::check_same_configuration("c.pt", meta, cp::checkpoint_config(other, spec, 19, {"a"}, 283.0)));
  CHECK_THROWS_WITH_AS(cp::check_same_configuration("c.pt", meta, cp::checkpoint_config(o, spec, 19, {"a"}, 283.0)),
                       doctest::Contains("/model/name"), std::runtime_error);
}

TEST_CASE("make_network builds the --model network behind one Network type") {
  const auto x = torch::randn({2, 3, 48, 64});
  const auto target = torch::randint(0, 5, {2, 48, 64}, torch::kInt64);
  for (const std::string name : {"pspnet", "deeplabv3", "ccnet"}) {
    CAPTURE(name);
    torch::manual_seed(3);
    auto net = cp::make_network(tiny_model(true, name), 5);
    CHECK(net->model_name() == name);
    CHECK(cp::ggdc_layers(*net).size() == 8);  // GGDC placement is the backbone's, whatever the head
    CHECK(cp::ggdc_layers(*net).front().first == "backbone.layer1.0.conv2");
    REQUIRE_FALSE(net->backbone.is_empty());
    net->train();
    const auto out = net->forward(x);
    CHECK(out.logits.sizes().vec() == std::vector<int64_t>{2, 5, 48, 64});
    CHECK(out.aux_logits.defined());
    CHECK(out.features.size() == 4);
    CHECK(out.block_features.size() == 8);
    const auto loss = net->loss(out, target);
    CHECK(std::isfinite(loss.item<double>()));
    loss.backward();
    // eval() reaches the model itself (not a child of Network): no auxiliary logits.
    net->eval();
    CHECK_FALSE(net->forward(x).aux_logits.defined());
    // Head widths scale with the backbone (512 * 0.125).
    if (name == "deeplabv3") CHECK(net->model<crossview::DeepLabV3Impl>()->options.channels() == 64);
    if (name == "ccnet") CHECK(net->model<crossview::CCNetImpl>()->options.channels() == 64);
    if (name == "pspnet") CHECK(net->model<crossview::PSPNetImpl>()->options.aux_channels() == 32);
    CHECK((name == "pspnet") == (net->model<crossview::PSPNetImpl>() != nullptr));
  }
  auto bad = tiny_model(false, "segformer");
  CHECK_THROWS_WITH_AS(cp::make_network(bad, 5),
                       "make_network: the model must be pspnet, deeplabv3 or ccnet, got 'segformer'",
                       std::invalid_argument);
}

TEST_CASE("Network keeps the plain model's parameter names: a PSPNet checkpoint written before --model loads") {
  // What make_network built when Network was crossview::PSPNet itself.
  const auto m = tiny_model(false);
  const auto backbone = crossview::ResNetOptions(m.depth)
                            .deep_stem(m.deep_stem)
                            .width_multiplier(m.width)
                            .ggdc_placement(crossview::GGDCPlacement::kNone);
  torch::manual_seed(5);
  crossview::PSPNet plain(crossview::PSPNetOptions(5, backbone).channels(64).aux_channels(32));
  plain->train();
  plain->forward(torch::randn({2, 3, 48, 64}));  // BatchNorm statistics away from 0 / 1
  {
    torch::NoGradGuard no_grad;
    for (auto& p : plain->parameters()) p.add_(0.01 * torch::randn_like(p));
  }
  torch::manual_seed(5);
  auto network = cp::make_network(m, 5);
  std::vector<std::string> plain_names, network_names;
  for (const auto& [name, tensor] : named_tensors(*plain)) plain_names.push_back(name);
  for (const auto& [name, tensor] : named_tensors(*network)) network_names.push_back(name);
  CHECK(network_names == plain_names);
  CHECK(std::find(network_names.begin(), network_names.end(), "ppm.0.1.weight") != network_names.end());

  // The configuration of that time: no model.name.
  cp::TrainOptions o;
  o.model = m;
  auto config = cp::checkpoint_config(o, cp::variant_spec("baseline"), 5, {"a", "b", "c", "d", "e"}, 283.0);
  config["model"].erase("name");
  const auto dir = std::filesystem::temp_directory_path() / ("crossview_parts_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / "old_pspnet.pt";
  cp::save_checkpoint(path, *plain, nullptr, {7, 1.5, config.dump()});
  auto loaded = cp::load_trained_network(path);
  CHECK(loaded.network->model_name() == "pspnet");
  CHECK(loaded.config.at("model").at("name") == "pspnet");
  CHECK(loaded.iterations == 7);
  const auto a = named_tensors(*plain);
  const auto b = named_tensors(*loaded.network);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(a[i].first);
    REQUIRE(a[i].first == b[i].first);
    CHECK(torch::equal(a[i].second, b[i].second));
  }
  plain->eval();
  loaded.network->eval();
  const auto x = torch::randn({1, 3, 48, 64});
  CHECK(torch::equal(plain->forward(x).logits, loaded.network->forward(x).logits));

  // And the other way: a Network's checkpoint is a plain model's archive.
  const auto path2 = dir / "network.pt";
  cp::save_checkpoint(path2, *loaded.network, nullptr, {7, 1.5, config.dump()});
  torch::manual_seed(9);
  crossview::PSPNet again(crossview::PSPNetOptions(5, backbone).channels(64).aux_channels(32));
  cp::load_checkpoint(path2, *again, nullptr);
  again->eval();
  CHECK(torch::equal(again->forward(x).logits, plain->forward(x).logits));
  std::filesystem::remove_all(dir);
}

TEST_CASE("print_table shows the model's figures: Table 1 / 4 for PSPNet, Table 3 for DeepLabV3 and CCNet") {
  cp::VariantResult base, full;
  base.name = "baseline";
  full.name = "vvd+ggdc+closs";
  base.seg_miou_vvd = 50, full.seg_miou_vvd = 55;
  const std::vector<cp::VariantResult> rows{base, full};

  const auto deeplab = table_text("cityscapes", "deeplabv3", rows);
  CHECK(deeplab.find("Table 3 on cityscapes, DeepLabV3 (in brackets: the paper's Table 3, Cityscapes / DeepLabV3") !=
        std::string::npos);
  for (const char* figure : {"( 73.61)", "( 82.89)", "( 77.13)", "( 76.88)", "( 87.24)", "( 77.58)"}) {
    CAPTURE(figure);
    CHECK(deeplab.find(figure) != std::string::npos);
  }
  CHECK(deeplab.find("(   -  )") != std::string::npos);  // Table 3 gives no pixel accuracy
  const auto ccnet = table_text("cityscapes", "ccnet", rows);
  for (const char* figure : {"Table 3 on cityscapes, CCNet", "( 73.94)", "( 81.47)", "( 77.62)", "( 76.95)", "( 86.82)",
                             "( 77.80)"}) {
    CAPTURE(figure);
    CHECK(ccnet.find(figure) != std::string::npos);
  }
  const auto psp = table_text("cityscapes", "pspnet", rows);
  CHECK(psp.find("Table 1 on cityscapes, PSPNet") != std::string::npos);
  CHECK(psp.find("( 72.79)") != std::string::npos);
  CHECK(table_text("camvid", "pspnet", rows).find("( 74.08)") != std::string::npos);  // Table 4

  // Synthetic data: no brackets; the model's Cityscapes figures named below.
  const auto synthetic = table_text("synthetic", "ccnet", rows);
  CHECK(synthetic.find("Table 3 on synthetic, CCNet") != std::string::npos);
  CHECK(synthetic.find("( 73.94)") == std::string::npos);
  CHECK(synthetic.find("not comparable with synthetic data (Table 3: baseline VVD / CVC mIoU 73.94 / 81.47, full "
                       "method 76.95 / 86.82)") != std::string::npos);
  // CamVid with DeepLabV3: the paper ran none.
  const auto camvid = table_text("camvid", "deeplabv3", rows);
  CHECK(camvid.find("( 7") == std::string::npos);
  CHECK(camvid.find("the paper gives none on camvid (Table 3: baseline VVD / CVC mIoU 73.61 / 82.89") !=
        std::string::npos);
  // Checkpoints of several models (crossview-eval): no paper figures at all.
  const auto mixed = table_text("cityscapes", "", rows);
  CHECK(mixed.find("( 7") == std::string::npos);
  CHECK(mixed.find("The paper's figures") == std::string::npos);
  // Another protocol (crossview-eval --vvd-control): named in the caption, no paper figures.
  const auto control = table_text("camvid", "pspnet", rows, "unrotated crops");
  CHECK(control.find("Table 1 on camvid, PSPNet (unrotated crops)") != std::string::npos);
  CHECK(control.find("( 7") == std::string::npos);
  CHECK(control.find("Sec. 4.2") == std::string::npos);
}

TEST_CASE("print_table adds a bootstrap over scenes of the full method's difference to the baseline") {
  cp::VariantResult base, full;
  base.name = "baseline";
  full.name = "vvd+ggdc+closs";
  // Without per-scene matrices: no bootstrap line.
  CHECK(table_text("synthetic", "pspnet", {base, full}).find("bootstrap") == std::string::npos);
  // Every scene the same: every resample equals the observed difference, computed by hand:
  // baseline [[3, 1], [1, 3]] -> pixAcc 75 %, IoU 3 / (4 + 4 - 3) = 60 % per class; full method
  // [[4, 0], [0, 4]] -> 100 %, 100 %. Differences +25.00 and +40.00 points.
  const auto b = torch::tensor({{3, 1}, {1, 3}}, torch::kInt64);
  const auto f = torch::tensor({{4, 0}, {0, 4}}, torch::kInt64);
  for (int s = 0; s < 5; ++s) {
    base.scene_original.push_back(b), base.scene_vvd.push_back(b), base.scene_cvc.push_back(b);
    full.scene_original.push_back(f), full.scene_vvd.push_back(f), full.scene_cvc.push_back(f);
  }
  const auto text = table_text("synthetic", "pspnet", {base, full});
  CHECK(text.find("95 % bootstrap over the 5 evaluation scenes (their sampling error only, not seed noise): "
                  "VVD mIoU [+40.00, +40.00], CVC mIoU [+40.00, +40.00], CVC pixAcc [+25.00, +25.00], "
                  "original mIoU [+40.00, +40.00]\n") != std::string::npos);
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

TEST_CASE("rotated_minus_control: pooled differences with a paired scene bootstrap; unpaired scenes refused") {
  // Two classes, two scenes. Rotated: scene 0 all correct, scene 1 half wrong; control: all correct.
  const auto m = [](std::vector<int64_t> v) { return torch::tensor(v, torch::kInt64).view({2, 2}); };
  cp::VariantResult rotated, control;
  rotated.scene_vvd = rotated.scene_cvc = {m({4, 0, 0, 4}), m({2, 2, 0, 4})};
  control.scene_vvd = control.scene_cvc = {m({4, 0, 0, 4}), m({4, 0, 0, 4})};
  std::FILE* sink = std::tmpfile();
  const auto j = cp::rotated_minus_control(sink, "net", rotated, control);
  std::fclose(sink);
  // Pooled rotated [[6, 2], [0, 8]]: IoU 6/8 and 8/10, mIoU 0.775; pixel accuracy 14/16.
  CHECK(j.at("seg_miou_vvd").at("observed").get<double>() == doctest::Approx(100.0 * (0.775 - 1.0)));
  CHECK(j.at("cvc_pixacc").at("observed").get<double>() == doctest::Approx(100.0 * (14.0 / 16.0 - 1.0)));
  // Every resample of scenes {0, 1} lies between "scene 0 twice" (0) and "scene 1 twice"
  // (pooled [[4, 4], [0, 8]]: IoU 4/8 and 8/12).
  const double worst = 100.0 * ((4.0 / 8.0 + 8.0 / 12.0) / 2.0 - 1.0);
  for (const char* key : {"seg_miou_vvd", "cvc_miou"}) {
    CAPTURE(key);
    const auto& ci = j.at(key).at("ci95");
    CHECK(ci[0].get<double>() >= worst - 1e-9);
    CHECK(ci[1].get<double>() <= 1e-9);
    CHECK(ci[0].get<double>() <= ci[1].get<double>());
  }
  control.scene_vvd.pop_back();
  CHECK_THROWS_WITH_AS(cp::rotated_minus_control(stdout, "net", rotated, control),
                       doctest::Contains("net: the per-scene matrices of seg_miou_vvd must cover the same scenes, "
                                         "got 2 rotated and 1 control scenes"),
                       std::invalid_argument);
}

TEST_CASE("control_pair: an unrotated crop of the VVD crop's size, centred on what the VVD crop sees") {
  // Exact renders of the synthetic VVD split (paper ranges, cropped to what the original sees).
  crossview::SyntheticVVDDataset vvd(crossview::SyntheticStreetOptions().size(6).height(48).width(96));
  for (size_t i = 0; i < 6; ++i) {
    CAPTURE(i);
    const auto s = vvd.get(i);
    const cp::EvalPair pair{"s" + std::to_string(i), {s.image, s.label}, {s.derived_image, s.derived_label},
                            s.H_derived_source, {s.derived_image, s.derived_label}, s.H_derived_source};
    const auto c = cp::control_pair(pair);
    const int64_t h = s.derived_image.size(1), w = s.derived_image.size(2), H = 48, W = 96;
    REQUIRE(c.vvd.image.sizes() == s.derived_image.sizes());
    REQUIRE(c.vvd.label.sizes() == s.derived_label.sizes());
    CHECK_FALSE(c.vvd_whole.image.defined());
    // H maps original pixels to control pixels by a pure translation (-x0, -y0).
    CHECK((c.H_vvd_orig.topLeftCorner<2, 2>() - Eigen::Matrix2d::Identity()).norm() == 0.0);
    CHECK(c.H_vvd_orig.row(2).norm() == doctest::Approx(1.0));
    const int64_t x0 = -int64_t(c.H_vvd_orig(0, 2)), y0 = -int64_t(c.H_vvd_orig(1, 2));
    REQUIRE(x0 >= 0);
    REQUIRE(y0 >= 0);
    REQUIRE(x0 + w <= W);
    REQUIRE(y0 + h <= H);
    using torch::indexing::Slice;
    CHECK(torch::equal(c.vvd.image, s.image.index({Slice(), Slice(y0, y0 + h), Slice(x0, x0 + w)})));
    CHECK(torch::equal(c.vvd.label, s.label.index({Slice(y0, y0 + h), Slice(x0, x0 + w)})));
    // Brute force, forward mapping only: the original pixel that lands nearest the VVD crop's centre.
    double best = 1e300, bx = 0, by = 0;
    for (int64_t y = 0; y < H; ++y) {
      for (int64_t x = 0; x < W; ++x) {
        const Eigen::Vector3d q = s.H_derived_source * Eigen::Vector3d(double(x), double(y), 1.0);
        const double d = std::hypot(q.x() / q.z() - 0.5 * double(w - 1), q.y() / q.z() - 0.5 * double(h - 1));
        if (d < best) best = d, bx = double(x), by = double(y);
      }
    }
    // The control's centre lies within a pixel of it, unless the rectangle had to move inside.
    const double cx = double(x0) + 0.5 * double(w - 1), cy = double(y0) + 0.5 * double(h - 1);
    if (x0 > 0 && x0 + w < W) CHECK(std::abs(cx - bx) <= 1.0);
    if (y0 > 0 && y0 + h < H) CHECK(std::abs(cy - by) <= 1.0);
  }
  // A VVD view wider than the original (derived views of real images can be): the control is as
  // wide as the original, the height kept.
  const auto s = vvd.get(0);
  const auto narrow = s.image.narrow(2, 10, 40), narrow_label = s.label.narrow(1, 10, 40);
  const cp::EvalPair wide{"wide", {narrow, narrow_label}, {s.image.narrow(1, 0, 20), s.label.narrow(0, 0, 20)},
                          Eigen::Matrix3d::Identity()};
  const auto c = cp::control_pair(wide);
  CHECK(c.vvd.image.sizes() == torch::IntArrayRef{3, 20, 40});
  // Centre of the 96-wide view (47.5, 9.5) -> the 40 x 20 rectangle from (28, 0), moved left to x0 = 0.
  CHECK(torch::equal(c.vvd.label, narrow_label.narrow(0, 0, 20)));
  // A singular homography has no centre.
  const cp::EvalPair singular{"singular", {s.image, s.label}, {s.derived_image, s.derived_label}, Eigen::Matrix3d::Zero()};
  CHECK_THROWS_WITH_AS(cp::control_pair(singular), doctest::Contains("control_pair: pair.H_vvd_orig must be invertible"),
                       std::invalid_argument);
}
