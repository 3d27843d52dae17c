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

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/torch.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace crossview_programs {

/// What a checkpoint records besides the tensors.
struct CheckpointMeta {
  int64_t iteration{0};      ///< iterations completed
  double train_seconds{0};   ///< wall-clock training time spent so far
  std::string config_json;   ///< the run's model + training configuration (JSON text)
};

namespace detail {

/// Writes a file atomically: `write(fd)` fills a temporary file in the same folder
/// (PATH.tmp-<pid>), which is flushed to the disk (fsync) and renamed over `path`; the folder is
/// fsynced too, so the rename survives a power cut. When any step fails (a full disk, a file-size
/// limit, a folder that became read-only) the temporary file is removed and the file at `path`
/// is left as it was. `write` returns 0 or the errno of its failure.
/// \throws std::runtime_error "<function>: cannot write PATH: <reason> (<kept>)".
inline void write_file_atomically(const char* function, const std::filesystem::path& path, const char* kept,
                                  const std::function<int(int fd)>& write) {
  const auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  const auto fail = [&](const std::string& reason) {
    throw std::runtime_error(std::string(function) + ": cannot write " + path.string() + ": " + reason + " (" + kept +
                             ")");
  };
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("cannot create folder " + dir.string() + ": " + ec.message());
  auto tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(std::strerror(errno));
  const auto remove_and_fail = [&](int error, bool close_fd) {
    if (close_fd) ::close(fd);
    ::unlink(tmp.c_str());
    fail(std::strerror(error));
  };
  std::string write_failure;
  int error = 0;
  try {
    error = write(fd);
  } catch (const c10::Error& e) {
    write_failure = e.what_without_backtrace();
  }
  if (!write_failure.empty()) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(write_failure.substr(0, write_failure.find('\n')));
  }
  if (error != 0) remove_and_fail(error, true);
  if (::fsync(fd) != 0) remove_and_fail(errno, true);
  if (::close(fd) != 0) remove_and_fail(errno, false);
  if (::rename(tmp.c_str(), path.c_str()) != 0) remove_and_fail(errno, false);  // atomic within one file system
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

/// Writes all `size` bytes at `data` to `fd`; 0 or the errno of the failure (ENOSPC for a write
/// that makes no progress).
inline int write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : ENOSPC;
    data += n;
    size -= size_t(n);
  }
  return 0;
}

}  // namespace detail

/// The file Python reads a final model from: PATH with ".pt" replaced by ".weights.pt"
/// (model.pt -> model.weights.pt).
inline std::filesystem::path python_weights_path(const std::filesystem::path& path) {
  auto out = path;
  out.replace_extension(".weights.pt");
  return out;
}

/// Writes `value` (dicts of strings, ints, floats and tensors) as a file in torch.save's zip format
/// that Python's `torch.load(path)` reads with its default weights_only=True, atomically (see
/// detail::write_file_atomically). torch::pickle_save is not used: it tags every dict with its
/// C++ type (torch.jit._pickle.restore_type_tag), a global the weights-only unpickler refuses.
/// \throws std::runtime_error "<function>: cannot write PATH: <reason>".
inline void save_for_torch_load(const char* function, const std::filesystem::path& path, const c10::IValue& value) {
  std::vector<char> pickle;
  torch::jit::Pickler pickler([&](const char* data, size_t size) { pickle.insert(pickle.end(), data, data + size); },
                              /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
                              /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(value);
  pickler.stop();
  detail::write_file_atomically(function, path, "an earlier file, if any, is left as it was", [&](int fd) {
    int error = 0;
    {
      // As in save_checkpoint: a failed write is reported after the zip writer is done.
      caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) -> size_t {
        if (error == 0) error = detail::write_all(fd, static_cast<const char*>(data), size);
        return size;
      });
      torch::jit::writeArchiveAndTensors("data", pickle.data(), pickle.size(), pickler.tensorData(), writer);
      writer.writeEndOfFile();
    }
    return error;
  });
}

/// Writes `model`'s parameters and buffers for Python users: a dict
/// {"state_dict": {name: tensor (CPU)}, "config": <the configuration, JSON text>, "iteration": int}
/// that `torch.load(path)` reads with its default weights_only=True (save_for_torch_load). Names
/// are the C++ module's, which for the backbone are torchvision's ("backbone.layer1.0.conv1.weight").
/// \throws std::runtime_error "save_python_weights: cannot write PATH: <reason>".
inline void save_python_weights(const std::filesystem::path& path, torch::nn::Module& model, const CheckpointMeta& meta) {
  c10::Dict<std::string, torch::Tensor> state;
  for (const auto& p : model.named_parameters()) {
    if (p.value().defined()) state.insert(p.key(), p.value().detach().cpu());
  }
  for (const auto& b : model.named_buffers()) {
    if (b.value().defined()) state.insert(b.key(), b.value().detach().cpu());
  }
  c10::impl::GenericDict root(c10::StringType::get(), c10::AnyType::get());
  root.insert("state_dict", c10::IValue(state));
  root.insert("config", c10::IValue(meta.config_json));
  root.insert("iteration", c10::IValue(meta.iteration));
  save_for_torch_load("save_python_weights", path, c10::IValue(root));
}

/// Saves `model` (and `optimizer` if given) with `meta` to `path` atomically (see
/// detail::write_file_atomically: temporary file, fsync, rename; on a full disk the previous
/// checkpoint at `path` is left as it was and the error names the file and the reason). A final
/// model (no optimizer) is also exported for Python beside it (python_weights_path,
/// save_python_weights).
/// \throws std::runtime_error "save_checkpoint: cannot write PATH: <reason> (...)".
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
  detail::write_file_atomically(
      "save_checkpoint", path, "the previous checkpoint, if any, is left as it was", [&](int fd) {
        // After a failed write the rest is discarded but reported as written: libtorch's zip writer
        // checks short writes in its destructor, where its exception ends the process
        // (std::terminate, "unexpected pos"), so the failure is raised here, after save_to.
        int error = 0;
        archive.save_to([&](const void* data, size_t size) -> size_t {
          if (error == 0) error = detail::write_all(fd, static_cast<const char*>(data), size);
          return size;
        });
        return error;
      });
  if (optimizer == nullptr) save_python_weights(python_weights_path(path), model, meta);
}

namespace detail {

/// The first line of a libtorch error, without its backtrace.
inline std::string first_line(const c10::Error& e) {
  std::string text = e.what_without_backtrace();
  const auto newline = text.find('\n');
  return newline == std::string::npos ? text : text.substr(0, newline);
}

/// Opens `path` as a libtorch archive onto `device`.
/// \throws std::runtime_error naming `function` and `path`: missing file, truncated or foreign file.
inline void open_checkpoint(const char* function, const std::filesystem::path& path,
                            torch::serialize::InputArchive& archive, torch::Device device) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw std::runtime_error(std::string(function) + ": no checkpoint file " + path.string());
  }
  try {
    archive.load_from(path.string(), device);
  } catch (const c10::Error& e) {
    const std::string name = path.filename().string();
    const bool export_file = name.size() > 11 && name.compare(name.size() - 11, 11, ".weights.pt") == 0;
    throw std::runtime_error(std::string(function) + ": " + path.string() +
                             (export_file ? " is the export for Python (torch.load); give the checkpoint beside it, "
                                            "model.pt"
                                          : " is not a readable checkpoint (truncated, or not a libtorch archive): " +
                                                first_line(e)));
  }
}

}  // namespace detail

/// Reads only the metadata of a checkpoint.
/// \throws std::runtime_error naming `path` when it is missing, truncated, or no crossview-train
/// checkpoint (no iteration, train_seconds or config record).
inline CheckpointMeta read_checkpoint_meta(const std::filesystem::path& path) {
  torch::serialize::InputArchive archive;
  detail::open_checkpoint("read_checkpoint_meta", path, archive, torch::kCPU);
  CheckpointMeta meta;
  c10::IValue value;
  const auto read = [&](const char* key, bool (c10::IValue::*is)() const) {
    if (!archive.try_read(key, value) || !(value.*is)()) {
      throw std::runtime_error("read_checkpoint_meta: " + path.string() +
                               " is not a crossview-train checkpoint: it has no '" + key + "' record of the right type");
    }
  };
  read("iteration", &c10::IValue::isInt);
  meta.iteration = value.toInt();
  read("train_seconds", &c10::IValue::isDouble);
  meta.train_seconds = value.toDouble();
  read("config", &c10::IValue::isString);
  meta.config_json = value.toStringRef();
  return meta;
}

/// Loads a checkpoint into `model` (and `optimizer` if given; the checkpoint must hold one) and
/// returns its metadata. Tensors are loaded onto `device`.
/// \throws std::runtime_error naming `path`: unreadable, or tensors that do not fit `model`.
inline CheckpointMeta load_checkpoint(const std::filesystem::path& path, torch::nn::Module& model,
                                      torch::optim::Optimizer* optimizer, torch::Device device = torch::kCPU) {
  const auto meta = read_checkpoint_meta(path);
  torch::serialize::InputArchive archive;
  detail::open_checkpoint("load_checkpoint", path, archive, device);
  try {
    torch::serialize::InputArchive model_archive;
    if (!archive.try_read("model", model_archive)) {
      throw std::runtime_error("load_checkpoint: " + path.string() + " holds no model");
    }
    model.load(model_archive);
    if (optimizer != nullptr) {
      torch::serialize::InputArchive optimizer_archive;
      if (!archive.try_read("optimizer", optimizer_archive)) {
        throw std::runtime_error("load_checkpoint: " + path.string() + " holds no optimizer state");
      }
      optimizer->load(optimizer_archive);
    }
  } catch (const c10::Error& e) {
    throw std::runtime_error("load_checkpoint: the tensors in " + path.string() +
                             " do not fit the network its configuration describes: " + detail::first_line(e));
  }
  return meta;
}

}  // namespace crossview_programs
