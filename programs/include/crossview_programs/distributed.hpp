#pragma once
/// \file
/// Data-parallel training across processes and machines on PyTorch's own distributed engine, c10d:
/// a `c10d::ProcessGroup` with `c10d::ProcessGroupGloo` (TCP) for CPU tensors and, when training on
/// CUDA, `c10d::ProcessGroupNCCL` for CUDA tensors (libtorch built with NCCL; otherwise Gloo
/// reduces CUDA tensors through host copies); gradients averaged by c10d's `Reducer` (the engine
/// behind PyTorch's DistributedDataParallel: bucketed allreduce started from autograd hooks while
/// the backward pass runs), parameters and buffers broadcast with `c10d::broadcast_coalesced`.
///
/// Launch convention (torchrun's, and that of any launcher that sets these variables): MASTER_ADDR,
/// MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK. Under torchrun's agent
/// (TORCHELASTIC_USE_AGENT_STORE=True) the agent already serves the TCPStore at
/// MASTER_ADDR:MASTER_PORT and every rank is a client; otherwise rank 0 serves it. Keys live under
/// "/worker/attempt_<TORCHELASTIC_RESTART_COUNT>/", as in torch.distributed's env:// rendezvous, so
/// a restarted attempt does not read the keys of the previous one. With `--device cuda` each
/// process trains on cuda:LOCAL_RANK.
///
/// Without CROSSVIEW_WITH_DISTRIBUTED (libtorch without Gloo, or no Gloo headers), the launch
/// variables are still read and a world size above 1 is refused with a message saying why.

#include <crossview/nn/norm_layer.hpp>
#include <crossview/nn/sync_batch_norm.hpp>
#include <torch/torch.h>

#ifndef CROSSVIEW_WITH_DISTRIBUTED  // set by the CMake target crossview::distributed
#define CROSSVIEW_WITH_DISTRIBUTED 0
#endif

#if CROSSVIEW_WITH_DISTRIBUTED
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/comm.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#endif

// NCCL for CUDA tensors: libtorch built with it (torch_cuda's usage requirements define
// USE_C10D_NCCL) and an nccl.h on the include path (the wheel's nvidia/nccl/include; a CUDA
// toolkit need not have one). -DCROSSVIEW_WITH_NCCL=0 keeps CUDA tensors on Gloo.
#ifndef CROSSVIEW_WITH_NCCL
#if CROSSVIEW_WITH_DISTRIBUTED && defined(USE_C10D_NCCL) && __has_include(<nccl.h>)
#define CROSSVIEW_WITH_NCCL 1
#else
#define CROSSVIEW_WITH_NCCL 0
#endif
#endif

#if CROSSVIEW_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace crossview_programs {

/// Whether this build can run more than one process (c10d with Gloo compiled in).
inline constexpr bool kDistributedAvailable = CROSSVIEW_WITH_DISTRIBUTED != 0;
/// Whether CUDA tensors of a multi-process run travel through NCCL (otherwise through Gloo).
inline constexpr bool kNcclAvailable = CROSSVIEW_WITH_NCCL != 0;

/// Where this process sits in a multi-process launch, read from the launcher's variables.
struct LaunchEnvironment {
  int rank{0};
  int world_size{1};
  int local_rank{0};
  std::string master_addr;
  int master_port{0};
  bool agent_store{false};  ///< TORCHELASTIC_USE_AGENT_STORE=True: the store exists, every rank is a client
  int restart_count{0};     ///< TORCHELASTIC_RESTART_COUNT (0 outside torchrun)
};

namespace detail {

inline const char* launch_variable(const char* name) {
  const char* value = std::getenv(name);
  return (value != nullptr && *value != '\0') ? value : nullptr;
}

/// A launch variable as an integer in [lo, hi], with a message naming the variable otherwise.
inline int launch_integer(const char* name, int lo, int hi) {
  const char* text = launch_variable(name);
  if (text == nullptr) {
    throw std::invalid_argument(std::string("crossview-train: multi-process launch: environment variable ") + name +
                                " is not set (a launcher sets MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK)");
  }
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value < lo || value > hi) {
    throw std::invalid_argument(std::string("crossview-train: multi-process launch: ") + name +
                                " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                "], got \"" + text + "\"");
  }
  return int(value);
}

}  // namespace detail

/// The launch described by the environment, or nothing when none of RANK, WORLD_SIZE,
/// MASTER_ADDR, MASTER_PORT is set (a plain single-process run).
/// \throws std::invalid_argument when some are set but not all, or a value is not valid.
inline std::optional<LaunchEnvironment> launch_environment() {
  const bool any = detail::launch_variable("RANK") || detail::launch_variable("WORLD_SIZE") ||
                   detail::launch_variable("MASTER_ADDR") || detail::launch_variable("MASTER_PORT");
  if (!any) return std::nullopt;
  LaunchEnvironment env;
  env.world_size = detail::launch_integer("WORLD_SIZE", 1, 1 << 20);
  env.rank = detail::launch_integer("RANK", 0, env.world_size - 1);
  env.local_rank = detail::launch_variable("LOCAL_RANK") ? detail::launch_integer("LOCAL_RANK", 0, 1 << 20) : 0;
  env.master_port = detail::launch_integer("MASTER_PORT", 1, 65535);
  const char* addr = detail::launch_variable("MASTER_ADDR");
  if (addr == nullptr) {
    throw std::invalid_argument("crossview-train: multi-process launch: environment variable MASTER_ADDR is not set");
  }
  env.master_addr = addr;
  const char* agent = detail::launch_variable("TORCHELASTIC_USE_AGENT_STORE");
  env.agent_store = agent != nullptr && (std::string(agent) == "True" || std::string(agent) == "1" ||
                                         std::string(agent) == "true");
  env.restart_count =
      detail::launch_variable("TORCHELASTIC_RESTART_COUNT") ? detail::launch_integer("TORCHELASTIC_RESTART_COUNT", 0, 1 << 20) : 0;
  return env;
}

/// The device process `env` trains on for `--device requested`: the CPU for "cpu"; for "cuda",
/// cuda:LOCAL_RANK (one GPU per process of a node, as torchrun's --nproc-per-node assumes).
/// \throws std::invalid_argument when `requested` is neither "cpu" nor "cuda".
/// \throws std::runtime_error (one line, naming LOCAL_RANK and the number of visible GPUs) when
///         fewer than LOCAL_RANK + 1 CUDA devices are visible.
inline torch::Device rank_device(const LaunchEnvironment& env, const std::string& requested) {
  if (requested == "cpu") return torch::Device(torch::kCPU);
  if (requested != "cuda") {
    throw std::invalid_argument("rank_device: requested must be \"cpu\" or \"cuda\", got \"" + requested + "\"");
  }
  const int visible = int(torch::cuda::device_count());
  if (env.local_rank >= visible) {
    const std::string advice = visible == 0 ? "train with --device cpu, or check the driver and CUDA_VISIBLE_DEVICES"
                                            : "start at most " + std::to_string(visible) + " processes per node";
    throw std::runtime_error("--device cuda: LOCAL_RANK=" + std::to_string(env.local_rank) + " but this machine has " +
                             std::to_string(visible) + " visible CUDA device(s); " + advice);
  }
  return torch::Device(torch::kCUDA, c10::DeviceIndex(env.local_rank));
}

namespace detail {

/// Makes `device` this thread's current CUDA device (c10::cuda::set_device, through c10's device
/// guard interface so that a build without CUDA links too); nothing for the CPU. NCCL creates a
/// process's communicators on the current device, and CUDA contexts of other devices stay unmade.
inline void use_device(const torch::Device& device) {
  if (device.is_cuda()) c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(device);
}

}  // namespace detail

#if CROSSVIEW_WITH_DISTRIBUTED

/// One process's membership of the group: the store, the process group (Gloo for CPU tensors;
/// NCCL or Gloo for CUDA tensors), and the few collectives the training loop needs. Construction
/// blocks until every rank has joined (or `timeout` passes). When a peer is gone, a Gloo
/// collective fails with an error after `timeout`; an NCCL one is ended after `timeout` by
/// ProcessGroupNCCL's watchdog, which by default tears the process down
/// (TORCH_NCCL_ASYNC_ERROR_HANDLING).
class Distributed {
 public:
  /// Joins the group of the launch `env`; this process trains on `rank_device(env, device)`
  /// ("cpu" | "cuda"), which becomes its current CUDA device. With "cuda" and NCCL compiled in,
  /// CUDA tensors go through ProcessGroupNCCL (the group's default backend), CPU tensors (flags,
  /// losses, confusion matrices) through Gloo.
  /// \throws std::runtime_error when the device is not there (before contacting the store), the
  ///         store cannot be reached within `timeout`, or nccl.h differs from libtorch's NCCL.
  Distributed(const LaunchEnvironment& env, std::chrono::milliseconds timeout, const std::string& device = "cpu")
      : env_(env), device_(rank_device(env, device)) {
    detail::use_device(device_);
#if CROSSVIEW_WITH_NCCL
    if (device_.is_cuda()) check_nccl_header();  // before contacting the store, as the device check
#endif
    c10d::TCPStoreOptions store_options;
    store_options.port = uint16_t(env.master_port);
    store_options.isServer = env.rank == 0 && !env.agent_store;
    store_options.numWorkers = env.agent_store ? std::nullopt : std::optional<std::size_t>(env.world_size);
    store_options.waitWorkers = !env.agent_store;
    store_options.timeout = timeout;
    c10::intrusive_ptr<c10d::Store> tcp;
    try {
      tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    } catch (const std::exception& e) {
      throw std::runtime_error("crossview-train: rank " + std::to_string(env.rank) + " could not reach the store at " +
                               env.master_addr + ":" + std::to_string(env.master_port) + " within " +
                               std::to_string(timeout.count() / 1000) + " s: " + first_line(e.what()));
    }
    store_ = c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + std::to_string(env.restart_count), tcp);
    auto group_store = c10::make_intrusive<c10d::PrefixStore>("crossview/", store_);

    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    // The address this host resolves to for its peers; loopback-only hosts fall back to 127.0.0.1.
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(group_store, env.rank, env.world_size, options);
    group_ = c10::make_intrusive<c10d::ProcessGroup>(group_store, env.rank, env.world_size);
    group_->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, gloo);
#if CROSSVIEW_WITH_NCCL
    if (device_.is_cuda()) {
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = timeout;
      // Communicators are created at the first collective, on the device of its tensors; the bound
      // device is the one barrier() and the watchdog use.
      group_->setBoundDeviceId(device_);
      auto nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          c10::make_intrusive<c10d::PrefixStore>("crossview_nccl/", store_), env.rank, env.world_size, nccl_options);
      group_->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::NCCL, nccl);
      group_->setDefaultBackend(c10d::ProcessGroup::BackendType::NCCL);
      backend_ = "nccl";
    }
#endif
    if (backend_ == "gloo") {
      // Without NCCL, Gloo also reduces CUDA tensors (through host memory).
      group_->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::GLOO, gloo);
      group_->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
    }
    group_->setGroupName("crossview");
  }

  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  /// With NCCL: shuts the backends down (pending work finished, communicators destroyed), as
  /// torch.distributed.destroy_process_group does; release the group before main returns.
  ~Distributed() {
    if (backend_ != "nccl" || !group_) return;
    try {
      group_->shutdown();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "crossview-train: rank %d: NCCL shutdown: %s\n", env_.rank, first_line(e.what()).c_str());
    }
  }

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  bool is_main() const { return env_.rank == 0; }
  /// The device this process trains on: the CPU, or cuda:LOCAL_RANK.
  torch::Device device() const { return device_; }
  /// The backend of the training tensors: "nccl" (CUDA with NCCL) or "gloo".
  std::string backend() const { return backend_; }
  const c10::intrusive_ptr<c10d::ProcessGroup>& group() const { return group_; }
  /// The launch's store (under this attempt's prefix).
  const c10::intrusive_ptr<c10d::Store>& store() const { return store_; }

  /// Copies rank `root`'s values of `tensors` (any devices, dtypes) into every rank's, in place,
  /// in coalesced messages of up to 250 MiB (DistributedDataParallel's module-state sync).
  void broadcast_(std::vector<torch::Tensor> tensors, int root = 0) const {
    torch::NoGradGuard no_grad;
    if (!tensors.empty()) c10d::broadcast_coalesced(group_, tensors, size_t(250) << 20, root);
  }

  /// Rank 0's parameters and buffers into every rank's `module`.
  void broadcast_module_(torch::nn::Module& module) const {
    auto tensors = module.parameters();
    for (const auto& b : module.buffers()) tensors.push_back(b);
    broadcast_(tensors);
  }

  /// The element-wise sum over ranks of `tensor`, in place (every rank gets it).
  void all_reduce_sum_(torch::Tensor& tensor) const {
    std::vector<at::Tensor> v{tensor};
    group_->allreduce(v, c10d::AllreduceOptions{})->wait();
  }

  /// Every rank's `tensor` (same shape on every rank), in rank order.
  std::vector<torch::Tensor> all_gather(const torch::Tensor& tensor) const {
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < env_.world_size; ++r) out[0].push_back(torch::empty_like(tensor));
    std::vector<at::Tensor> in{tensor.contiguous()};
    group_->allgather(out, in)->wait();
    return out[0];
  }

  /// True on every rank when `flag` is true on any rank.
  bool any(bool flag) const {
    auto t = torch::tensor({flag ? 1 : 0}, torch::kInt32);
    all_reduce_sum_(t);
    return t.item<int>() > 0;
  }

  /// Waits until every rank has arrived.
  void barrier() const { group_->barrier()->wait(); }

 private:
  static std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

#if CROSSVIEW_WITH_NCCL
  /// ProcessGroupNCCL::Options holds an ncclConfig_t, which grows from one NCCL minor version to
  /// the next: built against another nccl.h than libtorch's, this program and libtorch would
  /// disagree on its layout. torch::cuda::nccl::version() is the NCCL libtorch was compiled with.
  static void check_nccl_header() {
    const std::uint64_t v = torch::cuda::nccl::version();
    const auto major = int(v >> 32), minor = int((v >> 16) & 0xffff), patch = int(v & 0xffff);
    if (major != NCCL_MAJOR || minor != NCCL_MINOR) {
      throw std::runtime_error(
          "--device cuda: NCCL: this program was compiled against nccl.h " + std::to_string(NCCL_MAJOR) + "." +
          std::to_string(NCCL_MINOR) + "." + std::to_string(NCCL_PATCH) + " but libtorch uses NCCL " +
          std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch) +
          " (their ncclConfig_t differ); rebuild with that NCCL's include directory (the wheel's nvidia/nccl/include) "
          "ahead of the CUDA toolkit's, or with -DCROSSVIEW_WITH_NCCL=0 to reduce CUDA tensors through Gloo");
    }
  }
#endif

  LaunchEnvironment env_;
  torch::Device device_;
  std::string backend_{"gloo"};
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
};

/// Gradient averaging for one module through c10d's Reducer: buckets of about `bucket_mib` MiB
/// (a first, small 1 MiB bucket so communication starts early, as DistributedDataParallel does),
/// each allreduced as soon as the backward pass has produced all of its gradients, divided by the
/// world size, and written into the parameters' `.grad()` before `backward()` returns.
///
/// Use per step: `prepare_for_forward()`, forward, `prepare_for_backward()`, `loss.backward()`.
/// Every parameter that requires a gradient must receive one in every step (no unused parameters).
class GradientAverager {
 public:
  GradientAverager(const Distributed& dist, torch::nn::Module& module, double bucket_mib = 25.0) {
    std::vector<at::Tensor> params;
    std::unordered_map<size_t, std::string> names;
    for (const auto& p : module.named_parameters()) {
      if (!p.value().requires_grad()) continue;
      names.emplace(params.size(), p.key());
      params.push_back(p.value());
    }
    TORCH_CHECK(!params.empty(), "GradientAverager: the module has no parameter that requires a gradient");
    const int64_t first_cap = int64_t(1) << 20;
    const int64_t cap = int64_t(bucket_mib * double(1 << 20));
    const std::vector<bool> sparse(params.size(), false);
    c10d::verify_params_across_processes(dist.group(), params, std::nullopt);
    auto [buckets, limits] = c10d::compute_bucket_assignment_by_size(
        params, {size_t(first_cap), size_t(cap)}, sparse);
    // Gradients arrive roughly in reverse order of registration: reverse the buckets, as DDP does.
    std::reverse(buckets.begin(), buckets.end());
    std::reverse(limits.begin(), limits.end());
    bucket_count_ = buckets.size();
    reducer_ = std::make_unique<c10d::Reducer>(params, buckets, dist.group(), sparse, cap,
                                               /*find_unused_parameters=*/false,
                                               /*gradient_as_bucket_view=*/false, names, first_cap,
                                               /*skip_all_reduce_unused_params=*/false,
                                               /*use_python_reducer=*/false,
                                               std::vector<int64_t>(limits.begin(), limits.end()));
  }

  void prepare_for_forward() { reducer_->prepare_for_forward(); }
  void prepare_for_backward() { reducer_->prepare_for_backward({}); }
  /// How many buckets the gradients travel in.
  size_t bucket_count() const { return bucket_count_; }

 private:
  std::unique_ptr<c10d::Reducer> reducer_;
  size_t bucket_count_{0};
};

#else  // !CROSSVIEW_WITH_DISTRIBUTED

/// Stand-in of a build without c10d/Gloo: a world of one process, so the training loop reads the
/// same either way; a launch of more than one process is refused.
class Distributed {
 public:
  Distributed(const LaunchEnvironment& env, std::chrono::milliseconds, const std::string& device = "cpu") {
    if (env.world_size > 1) {
      throw std::runtime_error(
          "crossview-train: WORLD_SIZE=" + std::to_string(env.world_size) +
          " but this build has no multi-process support (libtorch without Gloo, or configured with "
          "-DCROSSVIEW_WITH_DISTRIBUTED=OFF)");
    }
    device_ = rank_device(env, device);
    detail::use_device(device_);
  }
  int rank() const { return 0; }
  int world_size() const { return 1; }
  int local_rank() const { return 0; }
  bool is_main() const { return true; }
  torch::Device device() const { return device_; }
  std::string backend() const { return "none"; }
  void broadcast_(std::vector<torch::Tensor>, int = 0) const {}
  void broadcast_module_(torch::nn::Module&) const {}
  void all_reduce_sum_(torch::Tensor&) const {}
  std::vector<torch::Tensor> all_gather(const torch::Tensor& tensor) const { return {tensor}; }
  bool any(bool flag) const { return flag; }
  void barrier() const {}

 private:
  torch::Device device_{torch::kCPU};
};

/// Stand-in: nothing to average in a world of one.
class GradientAverager {
 public:
  GradientAverager(const Distributed&, torch::nn::Module&, double = 25.0) {}
  void prepare_for_forward() {}
  void prepare_for_backward() {}
  size_t bucket_count() const { return 0; }
};

#endif

/// The process group this process trains in, or null for a single-process run. crossview-train
/// sets it once in main (`set_current_distributed`), before any training; the training loop and
/// the program read it.
inline std::shared_ptr<Distributed>& current_distributed_slot() {
  static std::shared_ptr<Distributed> slot;
  return slot;
}
inline Distributed* current_distributed() { return current_distributed_slot().get(); }
inline void set_current_distributed(std::shared_ptr<Distributed> dist) { current_distributed_slot() = std::move(dist); }

/// True in a single-process run and on rank 0: the process that reads and writes files.
inline bool is_main_process() { return current_distributed() == nullptr || current_distributed()->is_main(); }

/// The normalisation layers of the networks this process builds (crossview-train --sync-bn):
/// without `sync_bn`, BatchNorm2d; with it, crossview::SyncBatchNorm over the run's process group
/// (`current_distributed()`), whose batch statistics span every rank's share of the global batch.
/// In a single process (or a libtorch without c10d) SyncBatchNorm has no group and computes what
/// BatchNorm2d computes. The layers keep BatchNorm's names, so checkpoints load either way.
inline crossview::NormFactory norm_layer_for_run(bool sync_bn) {
  if (!sync_bn) return crossview::batch_norm_factory();
#if CROSSVIEW_HAS_SYNC_BATCH_NORM
  c10::intrusive_ptr<c10d::ProcessGroup> group;
#if CROSSVIEW_WITH_DISTRIBUTED
  if (const auto* dist = current_distributed()) group = dist->group();
#endif
  return crossview::sync_batch_norm_factory(group);
#else
  return crossview::batch_norm_factory();
#endif
}

}  // namespace crossview_programs
