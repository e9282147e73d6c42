// Which backend runs an engine, and which target this machine builds for.
// The CUDA backend exists only in binaries built with the CUDA toolkit.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>

#include "engine/manifest.h"
#include "runtime/backend.h"

namespace kiln::runtime {

// True when this binary has the CUDA backend compiled in.
bool built_with_cuda();

// "cpu", "cuda" (this machine's GPU; throws when there is none), "cuda:sm_XY"
// (that architecture, GPU or not) or "auto" (the GPU when there is one, else the CPU).
engine::Target resolve_target(const std::string& name);

// The target this machine offers for engines built for `built` (the same
// backend): the check Engine::open makes against the manifest. Throws, naming
// the engine's target, when this machine cannot run that backend at all.
engine::Target runtime_target_for(const engine::Target& built);

// The backend that runs `manifest`'s engine here.
std::unique_ptr<Backend> make_backend(const engine::Manifest& manifest);

// The kernel_choices of an engine about to be written with `manifest` (all
// but its rank tables): empty for the CPU target; for the CUDA target the
// engine's GEMMs (runtime/gemm_plan.h), measured on this machine's GPU when
// `tune` and the GPU has the engine's architecture, else recorded untuned with
// the reason (the runtime then lets cuBLASLt's heuristic choose). Throws on a
// CUDA failure while measuring, or when `stop` is requested.
nlohmann::json tune_kernel_choices(const engine::Manifest& manifest, bool tune, std::stop_token stop = {});

}  // namespace kiln::runtime
