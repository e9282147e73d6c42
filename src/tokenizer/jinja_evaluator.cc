#include "tokenizer/jinja_evaluator.h"

#include <algorithm>

#include "tokenizer/jinja_access.h"
#include "tokenizer/jinja_globals.h"
#include "tokenizer/jinja_loop_context.h"
#include "tokenizer/jinja_methods.h"
#include "tokenizer/jinja_scope.h"

namespace kiln::tokenizer::jinja {

namespace {

// Macro calls may nest this deep before the render fails (Python would hit its recursion limit).
constexpr int kMaxCallDepth = 256;

enum class Flow { kNormal, kBreak, kContinue };

// Appends rendered text to `out`, within the render's bound on one string and counted against its total.
void emit(std::string& out, std::string_view text) {
  check_string_size(out.size() + text.size());
  charge_string(text.size());
  out += text;
}

class Renderer;

// A {% macro %} (or a {% call %} block's caller) bound to the scope it was defined in.
class Macro : public Callable {
 public:
  Macro(const MacroStmt& definition, ScopePtr closure, Renderer& renderer)
      : definition_(definition), closure_(std::move(closure)), renderer_(renderer) {}
  Value call(const CallArgs& args) const override;
  std::string type_name() const override { return "Macro"; }
  std::string repr() const override { return "<Macro '" + definition_.name + "'>"; }
  // The closure holds the scope that holds this macro: the renderer breaks that cycle when it finishes.
  void release() { closure_.reset(); }

 private:
  const MacroStmt& definition_;
  ScopePtr closure_;
  Renderer& renderer_;
};

class Renderer {
 public:
  ~Renderer() {
    for (const auto& macro : macros_) macro->release();
  }

  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const StmtPtr& statement : body) {
      const Flow flow = exec(*statement, scope, out);
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  Value invoke_macro(const MacroStmt& macro, const ScopePtr& closure, const CallArgs& args);

 private:
  Flow exec(const Stmt& statement, const ScopePtr& scope, std::string& out);
  Flow exec_for(const ForStmt& loop, const ScopePtr& scope, std::string& out);
  Flow run_loop(const ForStmt& loop, const Value& iterable, const ScopePtr& scope, int depth, std::string& out);
  void assign(const Expr& target, const Value& value, Scope& scope);
  Value make_macro(const MacroStmt& definition, const ScopePtr& scope) {
    macros_.push_back(std::make_shared<Macro>(definition, scope, *this));
    return Value(std::shared_ptr<const Callable>(macros_.back()));
  }

  Value eval(const Expr& expr, const Scope& scope);
  CallArgs eval_args(const Arguments& arguments, const Scope& scope);
  Value eval_call(const CallExpr& call, const Scope& scope, const Value* caller);
  Value eval_getitem(const GetitemExpr& getitem, const Scope& scope);
  Value eval_filter(const FilterExpr& filter, const Scope& scope);
  static Value call_value(const Value& callee, const CallArgs& args);
  static void emit_value(const Value& value, std::string& out) {
    if (value.is_string()) {
      emit(out, value.as_string());
    } else if (!value.is_undefined()) {
      emit(out, value.repr());
    }
  }

  std::vector<std::shared_ptr<Macro>> macros_;
  // The text of the {% filter %} or {% set %} block a filter chain without an operand applies to.
  const Value* block_input_ = nullptr;
  int call_depth_ = 0;
};

Value Macro::call(const CallArgs& args) const { return renderer_.invoke_macro(definition_, closure_, args); }

Flow Renderer::exec(const Stmt& statement, const ScopePtr& scope, std::string& out) {
  charge_step();
  const DepthGuard nesting;
  switch (statement.kind) {
    case StmtKind::kText: emit(out, static_cast<const TextStmt&>(statement).text); return Flow::kNormal;
    case StmtKind::kOutput:
      emit_value(eval(*static_cast<const OutputStmt&>(statement).expr, *scope), out);
      return Flow::kNormal;
    case StmtKind::kIf: {
      const auto& node = static_cast<const IfStmt&>(statement);
      for (const auto& [test, body] : node.branches) {
        if (eval(*test, *scope).truthy()) return exec_body(body, scope, out);
      }
      return exec_body(node.else_body, scope, out);
    }
    case StmtKind::kFor: return exec_for(static_cast<const ForStmt&>(statement), scope, out);
    case StmtKind::kSet: {
      const auto& node = static_cast<const SetStmt&>(statement);
      assign(*node.target, eval(*node.value, *scope), *scope);
      return Flow::kNormal;
    }
    case StmtKind::kSetBlock: {
      const auto& node = static_cast<const SetBlockStmt&>(statement);
      std::string text;
      exec_body(node.body, std::make_shared<Scope>(scope), text);
      Value value(std::move(text));
      if (node.filter) {
        block_input_ = &value;
        value = eval(*node.filter, *scope);
      }
      assign(*node.target, value, *scope);
      return Flow::kNormal;
    }
    case StmtKind::kMacro: {
      const auto& node = static_cast<const MacroStmt&>(statement);
      scope->set(node.name, make_macro(node, scope));
      return Flow::kNormal;
    }
    case StmtKind::kCallBlock: {
      const auto& node = static_cast<const CallBlockStmt&>(statement);
      const Value caller = make_macro(node.caller, scope);
      emit_value(eval_call(*node.call, *scope, &caller), out);
      return Flow::kNormal;
    }
    case StmtKind::kFilterBlock: {
      const auto& node = static_cast<const FilterBlockStmt&>(statement);
      std::string text;
      exec_body(node.body, std::make_shared<Scope>(scope), text);
      const Value input(std::move(text));
      block_input_ = &input;
      emit_value(eval(*node.filter, *scope), out);
      return Flow::kNormal;
    }
    case StmtKind::kWith: {
      const auto& node = static_cast<const WithStmt&>(statement);
      auto inner = std::make_shared<Scope>(scope);
      // The values are evaluated in the enclosing scope, as Jinja2 does.
      for (const auto& [target, value] : node.assignments) assign(*target, eval(*value, *scope), *inner);
      return exec_body(node.body, inner, out);
    }
    case StmtKind::kScope: return exec_body(static_cast<const ScopeStmt&>(statement).body, scope, out);
    case StmtKind::kBreak: return Flow::kBreak;
    case StmtKind::kContinue: return Flow::kContinue;
  }
  return Flow::kNormal;
}

Flow Renderer::exec_for(const ForStmt& loop, const ScopePtr& scope, std::string& out) {
  return run_loop(loop, eval(*loop.iterable, *scope), scope, 1, out);
}

Flow Renderer::run_loop(const ForStmt& loop, const Value& iterable, const ScopePtr& scope, int depth,
                        std::string& out) {
  std::vector<Value> items = iterate(iterable);
  if (loop.filter) {
    // `for x in xs if cond` filters before looping, so loop.index and loop.length count the kept items.
    std::vector<Value> kept;
    for (Value& item : items) {
      charge_step(kLoopIterationSteps);
      Scope candidate(scope);
      assign(*loop.target, item, candidate);
      if (eval(*loop.filter, candidate).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec_body(loop.else_body, std::make_shared<Scope>(scope), out);
  LoopContext::Recursion recursion;
  if (loop.recursive) {
    recursion = [this, &loop, scope, depth](const Value& children) {
      if (call_depth_ >= kMaxCallDepth) throw_python_error("RecursionError", "maximum recursion depth exceeded");
      ++call_depth_;
      std::string text;
      run_loop(loop, children, scope, depth + 1, text);
      --call_depth_;
      return Value(std::move(text));
    };
  }
  const auto shared_items = std::make_shared<const std::vector<Value>>(std::move(items));
  const auto context = std::make_shared<LoopContext>(shared_items, depth, std::move(recursion));
  const Value loop_value{std::shared_ptr<Object>(context)};
  for (std::size_t i = 0; i < shared_items->size(); ++i) {
    charge_step(kLoopIterationSteps);
    context->set_index(i);
    // Each iteration starts from the enclosing scope: a {% set %} in the body lasts for that iteration only.
    auto iteration = std::make_shared<Scope>(scope);
    assign(*loop.target, (*shared_items)[i], *iteration);
    iteration->set("loop", loop_value);
    if (exec_body(loop.body, iteration, out) == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

void Renderer::assign(const Expr& target, const Value& value, Scope& scope) {
  switch (target.kind) {
    case ExprKind::kName: scope.set(static_cast<const NameExpr&>(target).name, value); return;
    case ExprKind::kNsRef: {
      const auto& ref = static_cast<const NsRefExpr&>(target);
      const Value* space = scope.find(ref.name);
      auto* ns = space != nullptr && space->is_object() ? dynamic_cast<Namespace*>(space->as_object().get()) : nullptr;
      if (ns == nullptr) {
        throw_python_error("TemplateRuntimeError", "cannot assign attribute on non-namespace object");
      }
      ns->set(ref.attr, value);
      return;
    }
    case ExprKind::kList: {
      const auto& targets = static_cast<const ListExpr&>(target).items;
      const std::vector<Value> values = iterate(value);
      if (values.size() < targets.size()) {
        throw_python_error("ValueError", "not enough values to unpack (expected ", targets.size(), ", got ",
                           values.size(), ")");
      }
      if (values.size() > targets.size()) {
        throw_python_error("ValueError", "too many values to unpack (expected ", targets.size(), ")");
      }
      for (std::size_t i = 0; i < targets.size(); ++i) assign(*targets[i], values[i], scope);
      return;
    }
    default: throw_python_error("TemplateRuntimeError", "cannot assign to this expression");
  }
}

Value Renderer::invoke_macro(const MacroStmt& macro, const ScopePtr& closure, const CallArgs& args) {
  // Binds arguments as Jinja2's Macro.__call__ does: positional arguments fill the first parameters and keywords
  // the rest; a keyword naming a parameter already filled positionally is left over like an unknown one.
  const auto& names = macro.params.names;
  std::vector<std::pair<std::string, Value>> keywords = args.keyword;
  auto take_keyword = [&keywords](std::string_view name) -> std::optional<Value> {
    for (auto it = keywords.begin(); it != keywords.end(); ++it) {
      if (it->first == name) {
        Value value = std::move(it->second);
        keywords.erase(it);
        return value;
      }
    }
    return std::nullopt;
  };
  std::vector<std::optional<Value>> values(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    values[i] = i < args.positional.size() ? std::optional<Value>(args.positional[i]) : take_keyword(names[i]);
  }
  std::optional<Value> caller;
  if (macro.uses_caller) caller = take_keyword("caller");
  if (!macro.uses_kwargs && !keywords.empty()) {
    throw_python_error("TypeError", "macro '", macro.name, "' takes no keyword argument '", keywords.front().first,
                       "'");
  }
  if (!macro.uses_varargs && args.positional.size() > names.size()) {
    throw_python_error("TypeError", "macro '", macro.name, "' takes not more than ", names.size(), " argument(s)");
  }
  if (call_depth_ >= kMaxCallDepth) throw_python_error("RecursionError", "maximum recursion depth exceeded");

  auto scope = std::make_shared<Scope>(closure);
  const std::size_t first_default = names.size() - macro.params.defaults.size();
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (values[i]) {
      scope->set(names[i], std::move(*values[i]));
    } else if (i >= first_default) {
      // Defaults are evaluated at call time, after the parameters before them are bound.
      scope->set(names[i], eval(*macro.params.defaults[i - first_default], *scope));
    } else {
      scope->set(names[i], Value::undefined(concat("parameter '", names[i], "' was not provided")));
    }
  }
  if (macro.uses_varargs) {
    std::vector<Value> extra;
    for (std::size_t i = names.size(); i < args.positional.size(); ++i) extra.push_back(args.positional[i]);
    scope->set("varargs", Value::tuple(std::move(extra)));
  }
  if (macro.uses_kwargs) {
    Dict extra;
    for (auto& [key, value] : keywords) extra.set(Value(key), std::move(value));
    scope->set("kwargs", Value::dict(std::move(extra)));
  }
  if (macro.uses_caller) scope->set("caller", caller ? *caller : Value::undefined("No caller defined"));
  ++call_depth_;
  std::string out;
  exec_body(macro.body, scope, out);
  --call_depth_;
  return Value(std::move(out));
}

Value Renderer::eval(const Expr& expr, const Scope& scope) {
  charge_step();
  const DepthGuard nesting;
  switch (expr.kind) {
    case ExprKind::kConst: return static_cast<const ConstExpr&>(expr).value;
    case ExprKind::kName: {
      const auto& name = static_cast<const NameExpr&>(expr).name;
      if (const Value* value = scope.find(name)) return *value;
      return Value::undefined(concat("'", name, "' is undefined"));
    }
    case ExprKind::kGetattr: {
      const auto& node = static_cast<const GetattrExpr&>(expr);
      return get_attribute(eval(*node.object, scope), node.attr);
    }
    case ExprKind::kGetitem: return eval_getitem(static_cast<const GetitemExpr&>(expr), scope);
    case ExprKind::kCall: return eval_call(static_cast<const CallExpr&>(expr), scope, nullptr);
    case ExprKind::kFilter: return eval_filter(static_cast<const FilterExpr&>(expr), scope);
    case ExprKind::kTest: {
      const auto& node = static_cast<const TestExpr&>(expr);
      if (node.test == nullptr) throw_python_error("TemplateAssertionError", "No test named '", node.name, "'.");
      const Value operand = eval(*node.operand, scope);
      return Value(node.test(operand, eval_args(node.args, scope)));
    }
    case ExprKind::kUnary: {
      const auto& node = static_cast<const UnaryExpr&>(expr);
      const Value operand = eval(*node.operand, scope);
      switch (node.op) {
        case UnaryOp::kNeg: return negate(operand);
        case UnaryOp::kPos: return unary_plus(operand);
        case UnaryOp::kNot: return Value(!operand.truthy());
      }
      return operand;
    }
    case ExprKind::kBinary: {
      const auto& node = static_cast<const BinaryExpr&>(expr);
      const Value left = eval(*node.left, scope);
      return apply_binary(node.op, left, eval(*node.right, scope));
    }
    case ExprKind::kAnd: {
      // Python's `and`/`or` return an operand, not a bool.
      const auto& node = static_cast<const BinaryExpr&>(expr);
      Value left = eval(*node.left, scope);
      return left.truthy() ? eval(*node.right, scope) : left;
    }
    case ExprKind::kOr: {
      const auto& node = static_cast<const BinaryExpr&>(expr);
      Value left = eval(*node.left, scope);
      return left.truthy() ? left : eval(*node.right, scope);
    }
    case ExprKind::kCompare: {
      const auto& node = static_cast<const CompareExpr&>(expr);
      Value left = eval(*node.first, scope);
      for (const auto& [op, operand] : node.rest) {
        Value right = eval(*operand, scope);
        if (!compare(op, left, right)) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case ExprKind::kConcat: {
      std::string out;
      for (const ExprPtr& part : static_cast<const ConcatExpr&>(expr).parts) emit_value(eval(*part, scope), out);
      return Value(std::move(out));
    }
    case ExprKind::kCondition: {
      const auto& node = static_cast<const ConditionExpr&>(expr);
      if (eval(*node.test, scope).truthy()) return eval(*node.if_true, scope);
      if (node.if_false) return eval(*node.if_false, scope);
      return Value::undefined(concat("the inline if-expression on line ", node.line,
                                     " evaluated to false and no else section was defined."));
    }
    case ExprKind::kList: {
      const auto& node = static_cast<const ListExpr&>(expr);
      std::vector<Value> items;
      items.reserve(node.items.size());
      for (const ExprPtr& item : node.items) items.push_back(eval(*item, scope));
      return node.is_tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
    }
    case ExprKind::kDict: {
      Dict dict;
      for (const auto& [key_expr, value_expr] : static_cast<const DictExpr&>(expr).items) {
        Value key = eval(*key_expr, scope);
        if (key.is_dict() || (key.is_list() && !key.is_tuple()) || key.is_undefined()) {
          throw_python_error("TypeError", "unhashable type: '", key.type_name(), "'");
        }
        dict.set(std::move(key), eval(*value_expr, scope));
      }
      return Value::dict(std::move(dict));
    }
    case ExprKind::kNsRef:
    case ExprKind::kSlice: break;
  }
  throw_python_error("TemplateRuntimeError", "expression cannot be evaluated here (line ", expr.line, ")");
}

CallArgs Renderer::eval_args(const Arguments& arguments, const Scope& scope) {
  CallArgs args;
  args.positional.reserve(arguments.positional.size());
  for (const ExprPtr& arg : arguments.positional) args.positional.push_back(eval(*arg, scope));
  if (arguments.star_args) {
    for (Value& item : iterate(eval(*arguments.star_args, scope))) args.positional.push_back(std::move(item));
  }
  for (const auto& [name, arg] : arguments.keyword) args.keyword.emplace_back(name, eval(*arg, scope));
  if (arguments.star_kwargs) {
    const Value mapping = eval(*arguments.star_kwargs, scope);
    if (!mapping.is_dict())
      throw_python_error("TypeError", "argument after ** must be a mapping, not ", mapping.type_name());
    for (const auto& [key, value] : mapping.as_dict().entries()) {
      if (!key.is_string()) throw_python_error("TypeError", "keywords must be strings");
      args.keyword.emplace_back(key.as_string(), value);
    }
  }
  return args;
}

Value Renderer::call_value(const Value& callee, const CallArgs& args) {
  if (callee.is_callable()) return callee.as_callable().call(args);
  if (callee.is_undefined()) callee.as_undefined().fail();
  if (callee.is_object()) {
    if (const auto* loop = dynamic_cast<const LoopContext*>(callee.as_object().get())) return loop->call(args);
  }
  throw_python_error("TypeError", "'", callee.type_name(), "' object is not callable");
}

Value Renderer::eval_call(const CallExpr& call, const Scope& scope, const Value* caller) {
  Value callee;
  if (call.callee->kind == ExprKind::kGetattr) {
    // Method calls on strings, lists and dicts go straight to the method, without binding it first.
    const auto& getattr = static_cast<const GetattrExpr&>(*call.callee);
    Value receiver = eval(*getattr.object, scope);
    if ((receiver.is_string() || receiver.is_list() || receiver.is_dict()) && !getattr.attr.starts_with("_") &&
        find_method(receiver, getattr.attr) == MethodSafety::kSafe && caller == nullptr) {
      return call_method(receiver, getattr.attr, eval_args(call.args, scope));
    }
    callee = get_attribute(receiver, getattr.attr);
  } else {
    callee = eval(*call.callee, scope);
  }
  CallArgs args = eval_args(call.args, scope);
  if (caller != nullptr) args.keyword.emplace_back("caller", *caller);
  return call_value(callee, args);
}

Value Renderer::eval_getitem(const GetitemExpr& getitem, const Scope& scope) {
  const Value object = eval(*getitem.object, scope);
  if (getitem.key->kind != ExprKind::kSlice) return get_item(object, eval(*getitem.key, scope));
  const auto& slice = static_cast<const SliceExpr&>(*getitem.key);
  auto bound = [this, &scope](const ExprPtr& part) -> std::optional<std::int64_t> {
    if (!part) return std::nullopt;
    const Value value = eval(*part, scope);
    if (value.is_none()) return std::nullopt;
    if (!value.is_int() && !value.is_bool()) {
      throw_python_error("TypeError", "slice indices must be integers or None or have an __index__ method");
    }
    return value.as_int();
  };
  return get_slice(object, bound(slice.start), bound(slice.stop), bound(slice.step));
}

Value Renderer::eval_filter(const FilterExpr& filter, const Scope& scope) {
  Value input;
  if (filter.operand) {
    input = eval(*filter.operand, scope);
  } else if (block_input_ != nullptr) {
    input = *block_input_;
  }
  if (filter.filter == nullptr) throw_python_error("TemplateAssertionError", "No filter named '", filter.name, "'.");
  return filter.filter(input, eval_args(filter.args, scope));
}

}  // namespace

std::string render_template(const Body& body, const std::vector<std::pair<std::string, Value>>& variables,
                            const RenderLimits& limits) {
  const RenderBudget budget(limits);
  auto globals = std::make_shared<Scope>(nullptr);
  for (const auto& [name, value] : global_functions()) globals->set(name, value);
  auto root = std::make_shared<Scope>(globals);
  for (const auto& [name, value] : variables) root->set(name, value);
  Renderer renderer;
  std::string out;
  renderer.exec_body(body, root, out);
  return out;
}

}  // namespace kiln::tokenizer::jinja
