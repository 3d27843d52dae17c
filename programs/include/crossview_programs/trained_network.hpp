#pragma once
/// \file
/// What a checkpoint says about the network in it: the configuration crossview-train stores (the
/// variant, the classes and every option that changes the weights a run reaches), the check that
/// a resumed run uses the same one, and the rebuilding of a trained network from a checkpoint
/// alone (crossview-eval, the tests).

#include <crossview_programs/checkpoint.hpp>
#include <crossview_programs/model.hpp>
#include <crossview_programs/options.hpp>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace crossview_programs {

/// The configuration stored in a variant's checkpoints: {"variant", "num_classes", "class_names",
/// "focal", "data", "model", "training"}, the last three as to_json(TrainOptions) writes them with
/// the variant's model options ("model" names the network: {"name": "deeplabv3", "depth": ...}).
/// Two runs with equal configurations take the same steps.
inline nlohmann::json checkpoint_config(const TrainOptions& o, const VariantSpec& spec, int64_t num_classes,
                                        const std::vector<std::string>& class_names, double focal) {
  const nlohmann::json options = o;
  return {{"variant", spec.name},
          {"num_classes", num_classes},
          {"class_names", class_names},
          {"focal", focal},
          {"data", options.at("data")},
          {"model", model_options(o, spec)},
          {"training", options.at("training")}};
}

/// `config` (a stored configuration, or results.json's "config") as the current version writes it:
/// a "model" section without "name" was written before --model existed, by a PSPNet run.
inline nlohmann::json with_model_name(nlohmann::json config) {
  if (config.is_object() && config.contains("model") && config.at("model").is_object() &&
      !config.at("model").contains("name")) {
    config["model"]["name"] = "pspnet";
  }
  return config;
}

/// \throws std::runtime_error naming `path` and the differing keys when the configuration stored
/// in a checkpoint is not `config` (a resumed run must not silently mix two configurations; a
/// checkpoint of another --model differs in "/model/name").
inline void check_same_configuration(const std::filesystem::path& path, const CheckpointMeta& meta,
                                     const nlohmann::json& config) {
  nlohmann::json stored;
  try {
    stored = with_model_name(nlohmann::json::parse(meta.config_json));
  } catch (const nlohmann::json::exception&) {
    throw std::runtime_error("crossview-train: " + path.string() + " holds no readable configuration");
  }
  if (stored == config) return;
  std::string keys;
  for (const auto& op : nlohmann::json::diff(stored, config)) {
    keys += (keys.empty() ? "" : ", ") + op.at("path").get<std::string>();
  }
  throw std::runtime_error("crossview-train: " + path.string() + " was written with another configuration (" + keys +
                           " differ); use another --out or drop --resume");
}

/// A network rebuilt from a checkpoint, with its weights.
struct TrainedNetwork {
  std::string variant;
  Network network{nullptr};
  int64_t num_classes{0};
  int64_t iterations{0};
  double train_seconds{0};
  nlohmann::json config;  ///< the stored configuration (see checkpoint_config)
};

/// Rebuilds the network a crossview-train checkpoint (model.pt or checkpoint.pt) holds from the
/// configuration stored in it (PSPNet, DeepLabV3 or CCNet; PSPNet for a checkpoint written before
/// --model existed), loads its weights onto `device`.
/// \throws std::runtime_error naming `path` when it is no crossview-train checkpoint of this version.
inline TrainedNetwork load_trained_network(const std::filesystem::path& path, torch::Device device = torch::kCPU) {
  const auto meta = read_checkpoint_meta(path);
  TrainedNetwork loaded;
  try {
    loaded.config = with_model_name(nlohmann::json::parse(meta.config_json));
    loaded.variant = loaded.config.at("variant").get<std::string>();
    loaded.num_classes = loaded.config.at("num_classes").get<int64_t>();
    ModelOptions model;
    loaded.config.at("model").get_to(model);
    model.pretrained.clear();  // the checkpoint holds the weights
    loaded.network = make_network(model, loaded.num_classes);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path.string() + ": its configuration describes no network this crossview-train builds (" +
                             e.what() + ")");
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path.string() + ": not a checkpoint of this crossview-train (its configuration lacks " +
                             "variant, num_classes or model: " + e.what() + ")");
  }
  loaded.network->to(device);
  load_checkpoint(path, *loaded.network, nullptr, device);
  loaded.iterations = meta.iteration;
  loaded.train_seconds = meta.train_seconds;
  return loaded;
}

}  // namespace crossview_programs
