#pragma once
/// \file
/// Training checkpoints: model parameters and buffers, optimiser state (SGD momentum buffers),
/// the iteration reached, the training time spent, and the run's configuration, in one libtorch
/// archive. Written atomically: to a temporary file in the same folder, then renamed over the old
/// checkpoint, so a process killed at any moment leaves either the previous or the new checkpoint,
/// never a torn one.
///
/// There is no random-number state to store: the training data of iteration i and the seed of
/// libtorch's generator during that step are pure functions of (seed, i) (see trainer.hpp), so
/// the iteration number is the RNG state.

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace crossview_programs {

/// What a checkpoint records besides the tensors.
struct CheckpointMeta {
  int64_t iteration{0};      ///< iterations completed
  double train_seconds{0};   ///< wall-clock training time spent so far
  std::string config_json;   ///< the run's model + training configuration (JSON text)
};

/// Saves `model` (and `optimizer` if given) with `meta` to `path` atomically.
inline void save_checkpoint(const std::filesystem::path& path, torch::nn::Module& model,
                            torch::optim::Optimizer* optimizer, const CheckpointMeta& meta) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive;
  model.save(model_archive);
  archive.write("model", model_archive);
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  archive.write("iteration", c10::IValue(meta.iteration));
  archive.write("train_seconds", c10::IValue(meta.train_seconds));
  archive.write("config", c10::IValue(meta.config_json));
  std::filesystem::create_directories(path.parent_path().empty() ? "." : path.parent_path());
  auto tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid());
  archive.save_to(tmp.string());
  std::filesystem::rename(tmp, path);  // atomic on POSIX within one file system
}

/// Reads only the metadata of a checkpoint.
inline CheckpointMeta read_checkpoint_meta(const std::filesystem::path& path) {
  torch::serialize::InputArchive archive;
  archive.load_from(path.string());
  CheckpointMeta meta;
  c10::IValue value;
  archive.read("iteration", value);
  meta.iteration = value.toInt();
  archive.read("train_seconds", value);
  meta.train_seconds = value.toDouble();
  archive.read("config", value);
  meta.config_json = value.toStringRef();
  return meta;
}

/// Loads a checkpoint into `model` (and `optimizer` if given; the checkpoint must hold one) and
/// returns its metadata. Tensors are loaded onto `device`.
inline CheckpointMeta load_checkpoint(const std::filesystem::path& path, torch::nn::Module& model,
                                      torch::optim::Optimizer* optimizer, torch::Device device = torch::kCPU) {
  torch::serialize::InputArchive archive;
  archive.load_from(path.string(), device);
  torch::serialize::InputArchive model_archive;
  archive.read("model", model_archive);
  model.load(model_archive);
  if (optimizer != nullptr) {
    torch::serialize::InputArchive optimizer_archive;
    TORCH_CHECK(archive.try_read("optimizer", optimizer_archive), "load_checkpoint: ", path.string(),
                " holds no optimizer state");
    optimizer->load(optimizer_archive);
  }
  return read_checkpoint_meta(path);
}

}  // namespace crossview_programs
