// crossview-video and what it stands on: the exact flow of a homography and of the synthetic
// panning video (against per-pixel brute force and against the renderer's own labels), DIS
// optical flow on a known sub-pixel translation, the inconsistency map against
// crossview::flow_consistency, and the program end to end (files, columns, frame counts, a
// constant predictor at 100 %, and one-line errors for bad input).

#include <crossview_programs/checkpoint.hpp>
#include <crossview_programs/trained_network.hpp>
#include <crossview_programs/video.hpp>

#include <crossview/data/synthetic_street.hpp>
#include <crossview/data/synthetic_video.hpp>
#include <crossview/geometry/homography.hpp>
#include <crossview/geometry/rotation.hpp>
#include <crossview/metrics/confusion_matrix.hpp>
#include <crossview/metrics/flow_consistency.hpp>
#include <crossview/warp/homography_flow.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <torch/torch.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace cp = crossview_programs;
namespace fs = std::filesystem;

namespace {

const std::string kVideo = CROSSVIEW_BINARY_DIR "/bin/crossview-video";
const std::string kTrainProgram = CROSSVIEW_BINARY_DIR "/bin/crossview-train";

fs::path video_test_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("crossview_video_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

struct ProgramRun {
  int status{-1};
  std::string output;
};

ProgramRun run_program(const std::string& command, const fs::path& log) {
  const int raw = std::system((command + " > " + log.string() + " 2>&1").c_str());
  ProgramRun r;
  r.status = (raw != -1 && WIFEXITED(raw)) ? WEXITSTATUS(raw) : -1;
  std::ifstream in(log);
  std::stringstream s;
  s << in.rdbuf();
  r.output = s.str();
  return r;
}

std::vector<std::string> lines_of(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> cells_of(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream row(line);
  for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

/// A tiny crossview-train checkpoint (trained once per test process) and a copy of it whose
/// classifier predicts class 3 everywhere (weights 0, bias 10 for class 3).
struct TinyCheckpoints {
  fs::path trained, constant;
};

const TinyCheckpoints& tiny_checkpoints() {
  static const TinyCheckpoints checkpoints = [] {
    REQUIRE_MESSAGE(fs::exists(kTrainProgram), kTrainProgram, " is missing: build crossview-train first");
    const auto dir = video_test_dir("checkpoints");
    const auto r = run_program(kTrainProgram +
                                   " --variants baseline --iterations 2 --batch 2 --crop 48 --width 0.125 "
                                   "--train-images 2 --eval-images 1 --eval-height 64 --eval-width 96 --warmup 0 "
                                   "--threads 2 --figure-samples 1 --quiet --out " +
                                   (dir / "train").string(),
                               dir / "train.txt");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    TinyCheckpoints c{dir / "train" / "baseline" / "model.pt", dir / "constant.pt"};
    REQUIRE(fs::exists(c.trained));
    auto loaded = cp::load_trained_network(c.trained);
    bool found = false;
    {
      torch::NoGradGuard no_grad;
      for (auto& p : loaded.network->named_parameters()) {
        if (p.key() == "classifier.weight") p.value().zero_();
        if (p.key() == "classifier.bias") {
          p.value().zero_();
          p.value()[3] = 10.0;
          found = true;
        }
      }
    }
    REQUIRE_MESSAGE(found, "the network has no classifier.bias");
    cp::save_checkpoint(c.constant, *loaded.network, nullptr, cp::read_checkpoint_meta(c.trained));
    return c;
  }();
  return checkpoints;
}

void require_video_program() {
  REQUIRE_MESSAGE(fs::exists(kVideo), kVideo, " is missing: build the crossview-video target first");
}

/// The non-empty lines of a program's output.
std::vector<std::string> output_lines(const std::string& output) {
  std::vector<std::string> lines;
  std::stringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

}  // namespace

TEST_CASE("homography_flow equals transform_point pixel by pixel; behind the camera is NaN and invalid") {
  Eigen::Matrix3d H;
  H << 1.02, 0.03, -4.5, -0.02, 0.97, 2.25, 4e-4, -3e-4, 1.0;
  const crossview::SizeHW b_hw{23, 31}, a_hw{19, 27};
  auto check = [&](const Eigen::Matrix3d& M) {
    const auto f = crossview::homography_flow(M, b_hw, a_hw);
    REQUIRE(f.flow.sizes() == torch::IntArrayRef({2, 23, 31}));
    REQUIRE(f.valid.sizes() == torch::IntArrayRef({23, 31}));
    const auto flow = f.flow.accessor<float, 3>();
    const auto valid = f.valid.accessor<bool, 2>();
    int64_t n_valid = 0, n_behind = 0;
    for (int y = 0; y < 23; ++y) {
      for (int x = 0; x < 31; ++x) {
        const auto q = crossview::transform_point(M, Eigen::Vector2d(x, y));
        if (!q) {
          ++n_behind;
          CHECK(std::isnan(flow[0][y][x]));
          CHECK_FALSE(valid[y][x]);
          continue;
        }
        CHECK(flow[0][y][x] == doctest::Approx((*q)(0) - x).epsilon(1e-6));
        CHECK(flow[1][y][x] == doctest::Approx((*q)(1) - y).epsilon(1e-6));
        const bool inside = (*q)(0) >= 0 && (*q)(0) <= 26 && (*q)(1) >= 0 && (*q)(1) <= 18;
        CHECK(valid[y][x] == inside);
        n_valid += inside;
      }
    }
    return std::pair<int64_t, int64_t>{n_valid, n_behind};
  };
  const auto [valid_plain, behind_plain] = check(H);
  CHECK(valid_plain > 200);  // most pixels land inside, some leave (a must be able to fail both ways)
  CHECK(valid_plain < 23 * 31);
  CHECK(behind_plain == 0);
  // A horizon through the image: w = x - 15.
  Eigen::Matrix3d G;
  G << 1, 0, 0, 0, 1, 0, 1, 0, -15;
  const auto [valid_horizon, behind_horizon] = check(G);
  CHECK(behind_horizon == 23 * 16);
  (void)valid_horizon;
  CHECK_THROWS_WITH_AS(crossview::homography_flow(H, crossview::SizeHW{0, 4}, a_hw),
                       doctest::Contains("homography_flow: b_hw must be positive"), std::invalid_argument);
}

TEST_CASE("SyntheticVideo: the exact flow is K R_a R_b^T K^-1 from the render's own rays, brute force") {
  const crossview::SyntheticVideo video(crossview::SyntheticVideoOptions().frames(10).height(40).width(64));
  const auto K = video.intrinsics();
  for (const auto& [b, a] : {std::pair<int64_t, int64_t>{1, 0}, {7, 6}, {3, 8}}) {
    const auto f = video.flow(b, a);
    const auto flow = f.flow.accessor<float, 3>();
    const auto valid = f.valid.accessor<bool, 2>();
    // Pixel p of b shows the street ray d = R_b^T K^-1 p (SyntheticStreet::render); a sees d at K R_a d.
    const Eigen::Matrix3d Kinv = K.matrix().inverse();
    const Eigen::Matrix3d Ra = video.rotation(a), Rb = video.rotation(b);
    double moved = 0;
    for (int y = 0; y < 40; ++y) {
      for (int x = 0; x < 64; ++x) {
        const Eigen::Vector3d d = Rb.transpose() * Kinv * Eigen::Vector3d(x, y, 1);
        const Eigen::Vector3d q = K.matrix() * (Ra * d);
        REQUIRE(q(2) > 0);
        const double qx = q(0) / q(2), qy = q(1) / q(2);
        CHECK(flow[0][y][x] == doctest::Approx(qx - x).epsilon(1e-5));
        CHECK(flow[1][y][x] == doctest::Approx(qy - y).epsilon(1e-5));
        CHECK(valid[y][x] == (qx >= 0 && qx <= 63 && qy >= 0 && qy <= 39));
        moved += std::hypot(qx - x, qy - y);
      }
    }
    CHECK(moved / (40 * 64) > 0.5);  // the camera moves between these frames
  }
  // The motion: frame 0 looks along the street, the pan is a sine of the frame index.
  CHECK(video.rotation(0).isApprox(Eigen::Matrix3d::Identity()));
  const double w = 2 * M_PI / 48.0;
  CHECK(crossview::rad2deg(video.angles(5).yaw) == doctest::Approx(20.0 * std::sin(5 * w)));
  CHECK(crossview::rad2deg(video.angles(5).pitch) == doctest::Approx(5.0 * std::sin(10 * w)));
  CHECK_THROWS_WITH(video.flow(10, 0), doctest::Contains("SyntheticVideo: frame b must be in [0, 10), got 10"));
  CHECK_THROWS_WITH(video.homography(0, -1), doctest::Contains("SyntheticVideo: frame src must be in [0, 10), got -1"));
  CHECK_THROWS_WITH(crossview::SyntheticVideo(crossview::SyntheticVideoOptions().frames(1)),
                    doctest::Contains("options.frames must be >= 2"));
}

TEST_CASE("SyntheticVideo: the exact flow carries one frame's rendered labels onto the next's") {
  const crossview::SyntheticVideo video(crossview::SyntheticVideoOptions().frames(8).height(128).width(256).seed(3));
  const auto a = video.frame(2), b = video.frame(3);
  CHECK_FALSE(torch::equal(a.label, b.label));  // the view changed
  const auto exact = video.flow(3, 2);
  crossview::ConfusionMatrix along(19, 255), reversed(19, 255), still(19, 255);
  const auto counted = crossview::flow_consistency(a.label, b.label, exact.flow, along);
  CHECK(counted == exact.valid.sum().item<int64_t>());
  // Labels are exact renders; only pixels whose nearest neighbour crosses a class edge disagree
  // (about 1.5 % at 256 x 128, twice that at half the size).
  CHECK(100.0 * along.pixel_accuracy() > 97.0);
  // The same measure under a wrong flow (the opposite direction, or none) is clearly lower.
  crossview::flow_consistency(a.label, b.label, video.flow(2, 3).flow, reversed);
  crossview::flow_consistency(a.label, b.label, torch::zeros_like(exact.flow), still);
  CHECK(100.0 * reversed.pixel_accuracy() < 100.0 * along.pixel_accuracy() - 3.0);
  CHECK(100.0 * still.pixel_accuracy() < 100.0 * along.pixel_accuracy() - 1.5);
}

TEST_CASE("dis_flow recovers a known sub-pixel translation within 0.5 px on interior pixels") {
  // Frame b is rendered with its principal point moved by (s, t): pixel p of b shows the ray
  // frame a shows at p - (s, t), an exact translation of the scene, so flow_b_a = (-s, -t).
  const crossview::SyntheticStreet street(11);
  const double s = 2.5, t = -1.25;
  const int64_t H = 128, W = 192;
  const auto Ka = crossview::Intrinsicsd::centered(crossview::cityscapes_focal_for_width(double(W)), double(W), double(H));
  auto Kb = Ka;
  Kb.cx += s;
  Kb.cy += t;
  const Eigen::Matrix3d R = crossview::rotation_from_euler(0.15, -0.05, 0.0);  // buildings and cars in view
  const auto a = cp::frame_from_tensor("a", street.render(Ka, R, H, W).image);
  const auto b = cp::frame_from_tensor("b", street.render(Kb, R, H, W).image);
  const auto flow = cp::dis_flow(b.grey, a.grey);
  REQUIRE(flow.sizes() == torch::IntArrayRef({2, H, W}));
  const auto truth = torch::stack({torch::full({H, W}, -s), torch::full({H, W}, -t)}).to(torch::kFloat32);
  auto interior = torch::zeros({H, W}, torch::kBool);
  interior.slice(0, 8, H - 8).slice(1, 8, W - 8).fill_(true);
  const auto e = cp::end_point_error(flow, truth, interior);
  MESSAGE("DIS end-point error on a (2.5, -1.25) px translation: mean ", e.mean, " px, median ", e.median, " px, ",
          e.over_1px, " % over 1 px");
  CHECK(e.mean < 0.5);
  CHECK(e.median < 0.5);
  // The direction matters: the opposite flow is off by twice the shift.
  CHECK(cp::end_point_error(-flow, truth, interior).mean > 4.0);
  // And the flow the other way is the negative shift.
  CHECK(cp::end_point_error(cp::dis_flow(a.grey, b.grey), -truth, interior).mean < 0.5);
}

TEST_CASE("carry_labels draws what flow_consistency counts (nearest, frame edge, forward-backward check)") {
  const crossview::SyntheticVideo video(crossview::SyntheticVideoOptions().frames(6).height(64).width(96).seed(5));
  const auto fa = cp::frame_from_tensor("a", video.frame(1).image);
  const auto fb = cp::frame_from_tensor("b", video.frame(2).image);
  const auto flow_b_a = cp::dis_flow(fb.grey, fa.grey), flow_a_b = cp::dis_flow(fa.grey, fb.grey);
  torch::manual_seed(3);
  // Blocky random labels, so that most pixels agree and some do not.
  const auto blocks = torch::randint(0, 4, {1, 1, 8, 12}, torch::kFloat32);
  const auto labels_a = torch::nn::functional::interpolate(blocks, torch::nn::functional::InterpolateFuncOptions()
                                                                       .size(std::vector<int64_t>{64, 96})
                                                                       .mode(torch::kNearest))
                            .squeeze()
                            .to(torch::kInt64);
  const auto labels_b = labels_a.roll({2}, {1});
  for (const bool with_check : {false, true}) {
    auto options = crossview::FlowConsistencyOptions();
    if (with_check) options.flow_a_b(flow_a_b).fb_alpha(0.01).fb_beta(0.5);
    crossview::ConfusionMatrix m(4, 255);
    const auto counted = crossview::flow_consistency(labels_a, labels_b, flow_b_a, m, options);
    const auto carried = cp::carry_labels(labels_a, flow_b_a, options);
    const auto compared = carried != 255;
    CHECK(compared.sum().item<int64_t>() == counted);
    const double agree = ((carried == labels_b) & compared).sum().item<double>();
    CHECK(100.0 * agree / double(counted) == doctest::Approx(100.0 * m.pixel_accuracy()).epsilon(1e-12));
    CHECK(counted > 64 * 96 / 2);
    if (with_check) CHECK(counted < 64 * 96);
  }
}

TEST_CASE("summarize: mean, sample sd, min over finite values; CSV cells quoted when needed") {
  const auto s = cp::summarize({90.0, 80.0, std::nan(""), 100.0});
  CHECK(s.n == 3);
  CHECK(s.mean == doctest::Approx(90.0));
  CHECK(s.sd == doctest::Approx(10.0));  // sqrt(((0)^2 + 10^2 + 10^2) / 2)
  CHECK(s.min == 80.0);
  CHECK(s.max == 100.0);
  CHECK(std::isnan(cp::summarize({}).mean));
  CHECK(cp::csv_cell("a,b") == "\"a,b\"");
  CHECK(cp::csv_cell("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(cp::csv_cell("plain") == "plain");
}

TEST_CASE("crossview-video on synthetic frames: CSV, JSON and figures; a constant predictor is 100 % consistent") {
  require_video_program();
  const auto& c = tiny_checkpoints();
  const auto dir = video_test_dir("synthetic");
  const auto out = dir / "out";
  const std::string command = kVideo + " --checkpoint " + c.trained.string() + " --checkpoint " + c.constant.string() +
                              " --synthetic 5 --height 64 --width 96 --threads 2 --strip-frames 3 --out " + out.string();
  const auto r = run_program(command, dir / "log.txt");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("end-point error") != std::string::npos);
  // consistency.csv: 2 checkpoints x 4 pairs x 2 flows (exact, dis).
  const auto rows = lines_of(out / "consistency.csv");
  REQUIRE(rows.size() == 1 + 2 * 4 * 2);
  CHECK(rows[0] == "checkpoint,name,frame,frame_a,frame_b,flow,consistency,counted_pixels,frame_pixels");
  int constant_rows = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto cells = cells_of(rows[i]);
    REQUIRE(cells.size() == 9);
    CHECK((cells[5] == "exact" || cells[5] == "dis"));
    CHECK(std::stoll(cells[8]) == 64 * 96);
    CHECK(std::stoll(cells[7]) > 0);
    CHECK(std::stoll(cells[7]) <= 64 * 96);
    const int frame = std::stoi(cells[2]);
    CHECK(frame >= 1);
    CHECK(frame <= 4);
    CHECK(cells[4] == "frame_00000" + std::to_string(frame));
    if (cells[0] == "2") {
      ++constant_rows;
      CHECK(cells[6] == "100.0000");
    } else {
      const double v = std::stod(cells[6]);
      CHECK(v >= 0.0);
      CHECK(v <= 100.0);
    }
  }
  CHECK(constant_rows == 8);
  const auto flow_rows = lines_of(out / "flow.csv");
  REQUIRE(flow_rows.size() == 1 + 4 * 2);
  CHECK(flow_rows[0] ==
        "frame,frame_a,frame_b,flow,coverage,mean_magnitude,epe_mean,epe_median,epe_over_1px,gt_consistency");
  for (size_t i = 1; i < flow_rows.size(); ++i) {
    const auto cells = cells_of(flow_rows[i]);
    REQUIRE(cells.size() == 10);
    CHECK(cells[6].empty() == (cells[3] == "exact"));  // end-point error: DIS against exact only
    // The rendered labels carried along the exact flow: all but class-edge pixels agree.
    if (cells[3] == "exact") CHECK(std::stod(cells[9]) > 95.0);
  }
  std::ifstream in(out / "video.json");
  const auto j = nlohmann::json::parse(in);
  CHECK(j.at("frames") == 5);
  CHECK(j.at("pairs") == 4);
  CHECK(j.at("source").at("kind") == "synthetic");
  CHECK(j.at("flow").at("used") == "exact");
  REQUIRE(j.at("checkpoints").size() == 2);
  const auto& constant = j.at("checkpoints")[1];
  CHECK(constant.at("consistency").at("exact").at("mean").get<double>() == 100.0);
  CHECK(constant.at("consistency").at("exact").at("sd").get<double>() == 0.0);
  CHECK(constant.at("consistency").at("exact").at("min").get<double>() == 100.0);
  CHECK(constant.at("consistency").at("dis").at("mean").get<double>() == 100.0);
  CHECK(constant.at("consistency").at("exact").at("pairs") == 4);
  CHECK(j.at("flow").at("per_flow").at("dis").at("epe_mean").at("mean").is_number());
  for (const char* png : {"fig7_consistency.png", "fig_video_strip.png"}) {
    const auto image = cv::imread((out / png).string());
    CHECK_MESSAGE(!image.empty(), png);
    CHECK(image.cols > 400);
  }
  // A second run does not overwrite the first unless asked.
  const auto again = run_program(command + " --quiet", dir / "again.txt");
  CHECK(again.status != 0);
  CHECK(again.output.find("--force") != std::string::npos);
  CHECK(run_program(command + " --quiet --force", dir / "force.txt").status == 0);
}

TEST_CASE("crossview-video on a folder of frames and on a video file (DIS flow)") {
  require_video_program();
  const auto& c = tiny_checkpoints();
  const auto dir = video_test_dir("real");
  const crossview::SyntheticVideo video(crossview::SyntheticVideoOptions().frames(4).height(64).width(96).seed(2));
  fs::create_directories(dir / "frames");
  cv::VideoWriter writer;
  const bool can_write_video =
      writer.open((dir / "clip.avi").string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10.0, cv::Size(96, 64));
  for (int64_t t = 0; t < 4; ++t) {
    const auto bgr = cp::image_to_bgr(video.frame(t).image);
    cv::imwrite((dir / "frames" / ("street_" + std::to_string(t) + ".png")).string(), bgr);
    if (can_write_video) writer.write(bgr);
  }
  writer.release();
  fs::create_directories(dir / "frames" / "subfolder");  // not a frame
  std::ofstream(dir / "frames" / "notes.txt") << "not a frame\n";
  const auto r = run_program(kVideo + " --checkpoint " + c.constant.string() + " --frames " + (dir / "frames").string() +
                                 " --threads 2 --out " + (dir / "out").string(),
                             dir / "log.txt");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const auto rows = lines_of(dir / "out" / "consistency.csv");
  REQUIRE(rows.size() == 1 + 3);
  CHECK(cells_of(rows[1])[3] == "street_0.png");
  CHECK(cells_of(rows[3])[4] == "street_3.png");
  for (size_t i = 1; i < rows.size(); ++i) {
    CHECK(cells_of(rows[i])[5] == "dis");
    CHECK(cells_of(rows[i])[6] == "100.0000");
  }
  std::ifstream in(dir / "out" / "video.json");
  const auto j = nlohmann::json::parse(in);
  CHECK(j.at("source").at("kind") == "frames");
  CHECK(j.at("flow").at("used") == "dis");
  CHECK(j.at("frames") == 4);
  // --match keeps one sequence; --max-frames cuts it.
  const auto cut = run_program(kVideo + " --checkpoint " + c.constant.string() + " --frames " +
                                   (dir / "frames").string() + " --match street_ --max-frames 3 --quiet --out " +
                                   (dir / "cut").string(),
                               dir / "cut.txt");
  REQUIRE_MESSAGE(cut.status == 0, cut.output);
  CHECK(lines_of(dir / "cut" / "consistency.csv").size() == 1 + 2);
  if (!can_write_video) {
    MESSAGE("OpenCV cannot write MJPG .avi here; the --video run is skipped");
    return;
  }
  const auto v = run_program(kVideo + " --checkpoint " + c.constant.string() + " --video " +
                                 (dir / "clip.avi").string() + " --quiet --out " + (dir / "video_out").string(),
                             dir / "video.txt");
  REQUIRE_MESSAGE(v.status == 0, v.output);
  const auto video_rows = lines_of(dir / "video_out" / "consistency.csv");
  REQUIRE(video_rows.size() == 1 + 3);
  CHECK(cells_of(video_rows[1])[4] == "frame_000001");
}

TEST_CASE("crossview-video: bad input gives a one-line error naming the flag and the file, non-zero exit") {
  require_video_program();
  const auto& c = tiny_checkpoints();
  const auto dir = video_test_dir("errors");
  const std::string base = kVideo + " --quiet --threads 1 --out " + (dir / "out").string();
  const auto ckpt = " --checkpoint " + c.constant.string();
  fs::create_directories(dir / "empty");
  fs::create_directories(dir / "mixed");
  cv::imwrite((dir / "mixed" / "a.png").string(), cv::Mat(64, 96, CV_8UC3, cv::Scalar(10, 20, 30)));
  cv::imwrite((dir / "mixed" / "b.png").string(), cv::Mat(48, 96, CV_8UC3, cv::Scalar(10, 20, 30)));
  std::ofstream(dir / "broken.mp4") << "this is not a video";
  std::ofstream(dir / "broken.pt") << "this is not a checkpoint";
  struct Case {
    std::string args, must_contain_1, must_contain_2;
  };
  const std::vector<Case> cases = {
      {ckpt + " --frames " + (dir / "nowhere").string(), "--frames", (dir / "nowhere").string()},
      {ckpt + " --frames " + (dir / "empty").string(), "--frames", "at least 2 image files"},
      {ckpt + " --frames " + (dir / "mixed").string(), (dir / "mixed" / "b.png").string(), "a.png"},
      {ckpt + " --video " + (dir / "broken.mp4").string(), "--video", (dir / "broken.mp4").string()},
      {ckpt + " --video " + (dir / "missing.mp4").string(), "--video", (dir / "missing.mp4").string()},
      {" --checkpoint " + (dir / "missing.pt").string(), "--checkpoint", (dir / "missing.pt").string()},
      {" --checkpoint " + (dir / "broken.pt").string() + " --synthetic 3", "--checkpoint",
       (dir / "broken.pt").string()},
      {ckpt + " --frames " + (dir / "mixed").string() + " --flow exact", "--flow exact", "--synthetic"},
      {ckpt + " --frames " + (dir / "mixed").string() + " --video " + (dir / "broken.mp4").string(), "--frames",
       "--video"},
  };
  for (const auto& k : cases) {
    CAPTURE(k.args);
    const auto r = run_program(base + k.args, dir / "log.txt");
    CHECK(r.status != 0);
    const auto lines = output_lines(r.output);
    REQUIRE_FALSE(lines.empty());
    // One line says what is wrong (CLI11's parse errors add its "Run with --help" hint).
    CHECK((lines.size() == 1 || (lines.size() == 2 && lines[1].find("--help") != std::string::npos)));
    CHECK_MESSAGE(lines[0].find(k.must_contain_1) != std::string::npos, lines[0]);
    CHECK_MESSAGE(lines[0].find(k.must_contain_2) != std::string::npos, lines[0]);
  }
  CHECK_FALSE(fs::exists(dir / "out" / "video.json"));
}

TEST_CASE("crossview-video --help names the inputs, the flows and the outputs") {
  require_video_program();
  const auto dir = video_test_dir("help");
  const auto r = run_program(kVideo + " --help", dir / "log.txt");
  CHECK(r.status == 0);
  for (const char* text : {"--checkpoint", "--frames", "--video", "--synthetic", "--flow", "--out", "--threads",
                           "--device", "fig7_consistency.png", "consistency.csv"}) {
    CHECK_MESSAGE(r.output.find(text) != std::string::npos, text);
  }
}
