// The StepExecutor an engine runs on. A tensor-parallel engine on the CPU runs
// its ranks at once (TensorParallelGraph: the given backend for rank 0, a CPU
// backend more per further rank, the process's threads shared out between
// them); every other engine runs one DecoderGraph on `backend` (a GPU's ranks
// still in turn on one device). KILN_TP_SEQUENTIAL=1 keeps CPU ranks in turn
// too, for comparison.
#pragma once

#include <memory>

#include "engine/engine_reader.h"
#include "runtime/backend.h"
#include "runtime/step_executor.h"

namespace kiln::runtime {

std::unique_ptr<StepExecutor> make_step_executor(const engine::Engine& engine, Backend& backend);

}  // namespace kiln::runtime
