// The bounds of one render: how much text and how many list items a template may create, how many steps it may
// take and how deeply its evaluation may nest. A chat template comes with the model, so it is untrusted input:
// without bounds {{ 'a' * 1000000000 }} or two nested range() loops would hold a server thread for minutes.
// A render that passes a bound fails with kiln::Error("TemplateLimitError: ..."), naming the bound.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace kiln::tokenizer::jinja {

// The defaults are far above what real chat templates need: they render a conversation in thousands of steps,
// while the HTTP server accepts bodies of at most 16 MiB.
struct RenderLimits {
  // Any one string the render creates, its output and the text of each {% set %} block or macro call included.
  std::size_t max_string_bytes = std::size_t{32} << 20;
  // Any one list (or tuple, or the items a loop iterates).
  std::size_t max_list_items = std::size_t{1} << 22;
  // All the strings (bytes) and list items (sizeof(Value) each) the render creates or copies, together.
  std::uint64_t max_total_bytes = std::uint64_t{1} << 30;
  // Statements executed and expressions evaluated, together, a loop iteration counting as kLoopIterationSteps
  // (it costs a scope of its own). A step takes tens of nanoseconds: this bounds a render to a fraction of a second.
  std::uint64_t max_steps = 5'000'000;
  // Statements and expressions being evaluated inside one another, macro calls and recursive loops included.
  int max_depth = 1000;
  // Lists and dicts inside one another ([[[...]]]): printing, comparing and freeing them recurse.
  std::uint32_t max_value_depth = 500;
};

// The budget of the render running on this thread: render_template installs one for the render's duration (and
// restores the one before it, so renders may nest). Outside a render nothing is counted.
class RenderBudget {
 public:
  explicit RenderBudget(const RenderLimits& limits);
  ~RenderBudget();
  RenderBudget(const RenderBudget&) = delete;
  RenderBudget& operator=(const RenderBudget&) = delete;

  static RenderBudget* current() { return current_; }

  void charge_string(std::size_t bytes);
  void charge_items(std::size_t items);
  void check_string_size(std::size_t bytes) const;
  void check_value_depth(std::uint32_t depth) const;
  // Keeps `object` until the render ends, then calls release(object) (namespaces: to break reference cycles).
  void keep_until_end(std::shared_ptr<void> object, void (*release)(void*)) {
    kept_.emplace_back(std::move(object), release);
  }
  void step(std::uint64_t steps = 1) {
    steps_ += steps;
    if (steps_ > limits_.max_steps) fail_steps();
  }
  void enter() {
    if (++depth_ > limits_.max_depth) fail_depth();
  }
  void leave() { --depth_; }

 private:
  [[noreturn]] void fail_steps() const;
  [[noreturn]] void fail_depth() const;
  void charge_total(std::uint64_t bytes);

  RenderLimits limits_;
  std::uint64_t steps_ = 0;
  std::uint64_t total_bytes_ = 0;
  int depth_ = 0;
  std::vector<std::pair<std::shared_ptr<void>, void (*)(void*)>> kept_;
  RenderBudget* previous_;
  static thread_local RenderBudget* current_;
};

// Checks, before a string of `bytes` bytes is created, that the render may create it, and counts it.
inline void charge_string(std::size_t bytes) {
  if (RenderBudget* budget = RenderBudget::current()) budget->charge_string(bytes);
}
// The same for a list of `items` items.
inline void charge_items(std::size_t items) {
  if (RenderBudget* budget = RenderBudget::current()) budget->charge_items(items);
}
// Checks that a string being built (`bytes` long so far) is still within the bound of one string; counts nothing.
inline void check_string_size(std::size_t bytes) {
  if (RenderBudget* budget = RenderBudget::current()) budget->check_string_size(bytes);
}
// Checks that lists and dicts may nest `depth` deep.
inline void check_value_depth(std::uint32_t depth) {
  if (RenderBudget* budget = RenderBudget::current()) budget->check_value_depth(depth);
}
// A step of the render (a statement, an expression), or `steps` of them.
inline void charge_step(std::uint64_t steps = 1) {
  if (RenderBudget* budget = RenderBudget::current()) budget->step(steps);
}
// What one loop iteration costs, in steps.
constexpr std::uint64_t kLoopIterationSteps = 4;
// a * b, or SIZE_MAX when that overflows: the size of a repetition, checked before it is made.
inline std::size_t saturating_product(std::size_t a, std::size_t b) {
  std::size_t product = 0;
  return __builtin_mul_overflow(a, b, &product) ? SIZE_MAX : product;
}

// One level of nesting while it lives.
class DepthGuard {
 public:
  DepthGuard() : budget_(RenderBudget::current()) {
    if (budget_ != nullptr) budget_->enter();
  }
  ~DepthGuard() {
    if (budget_ != nullptr) budget_->leave();
  }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;

 private:
  RenderBudget* budget_;
};

}  // namespace kiln::tokenizer::jinja
