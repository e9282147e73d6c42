// The syntax tree of a parsed Jinja template: expressions (Jinja2's nodes.Expr subclasses) and statements
// (template text, {{ }} output and the {% %} tags), each remembering its line for error messages.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_operators.h"
#include "tokenizer/jinja_value.h"

namespace kiln::tokenizer::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// Filters and tests are resolved when parsing; an unknown name stays null and fails when evaluated, which is
// when Jinja2 reports names inside conditional branches.
using FilterFn = Value (*)(const Value& input, const CallArgs& args);
using TestFn = bool (*)(const Value& input, const CallArgs& args);

enum class ExprKind {
  kConst,      // a literal
  kName,       // a variable
  kNsRef,      // ns.attr as an assignment target
  kGetattr,    // obj.attr
  kGetitem,    // obj[key]
  kSlice,      // start:stop:step, only as a Getitem key
  kCall,       // f(args)
  kFilter,     // value | filter(args)
  kTest,       // value is test(args)
  kUnary,      // -x, +x, not x
  kBinary,     // arithmetic
  kAnd,        // a and b
  kOr,         // a or b
  kCompare,    // a < b == c, in, not in
  kConcat,     // a ~ b ~ c
  kCondition,  // a if cond else b
  kList,       // [a, b] or a tuple (a, b)
  kDict,       // {k: v}
};

struct Expr {
  Expr(ExprKind k, int l) : kind(k), line(l) {}
  virtual ~Expr() = default;
  ExprKind kind;
  int line;
};

struct Arguments {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
  ExprPtr star_args;    // *args
  ExprPtr star_kwargs;  // **kwargs
};

struct ConstExpr : Expr {
  ConstExpr(Value v, int l) : Expr(ExprKind::kConst, l), value(std::move(v)) {}
  Value value;
};

struct NameExpr : Expr {
  NameExpr(std::string n, int l) : Expr(ExprKind::kName, l), name(std::move(n)) {}
  std::string name;
};

struct NsRefExpr : Expr {
  NsRefExpr(std::string n, std::string a, int l) : Expr(ExprKind::kNsRef, l), name(std::move(n)), attr(std::move(a)) {}
  std::string name;
  std::string attr;
};

struct GetattrExpr : Expr {
  GetattrExpr(ExprPtr o, std::string a, int l)
      : Expr(ExprKind::kGetattr, l), object(std::move(o)), attr(std::move(a)) {}
  ExprPtr object;
  std::string attr;
};

struct GetitemExpr : Expr {
  GetitemExpr(ExprPtr o, ExprPtr k, int l) : Expr(ExprKind::kGetitem, l), object(std::move(o)), key(std::move(k)) {}
  ExprPtr object;
  ExprPtr key;
};

struct SliceExpr : Expr {
  explicit SliceExpr(int l) : Expr(ExprKind::kSlice, l) {}
  ExprPtr start, stop, step;  // each may be null
};

struct CallExpr : Expr {
  explicit CallExpr(int l) : Expr(ExprKind::kCall, l) {}
  ExprPtr callee;
  Arguments args;
};

struct FilterExpr : Expr {
  explicit FilterExpr(int l) : Expr(ExprKind::kFilter, l) {}
  ExprPtr operand;  // null in {% filter %} and {% set x | f %}: the block's text is the input
  std::string name;
  FilterFn filter = nullptr;
  Arguments args;
};

struct TestExpr : Expr {
  explicit TestExpr(int l) : Expr(ExprKind::kTest, l) {}
  ExprPtr operand;
  std::string name;
  TestFn test = nullptr;
  Arguments args;
};

enum class UnaryOp { kNeg, kPos, kNot };

struct UnaryExpr : Expr {
  UnaryExpr(UnaryOp o, ExprPtr e, int l) : Expr(ExprKind::kUnary, l), op(o), operand(std::move(e)) {}
  UnaryOp op;
  ExprPtr operand;
};

struct BinaryExpr : Expr {
  BinaryExpr(ExprKind k, BinaryOp o, ExprPtr a, ExprPtr b, int l)
      : Expr(k, l), op(o), left(std::move(a)), right(std::move(b)) {}
  BinaryOp op;  // for kBinary; kAnd and kOr ignore it
  ExprPtr left, right;
};

struct CompareExpr : Expr {
  explicit CompareExpr(int l) : Expr(ExprKind::kCompare, l) {}
  ExprPtr first;
  std::vector<std::pair<CompareOp, ExprPtr>> rest;
};

struct ConcatExpr : Expr {
  explicit ConcatExpr(int l) : Expr(ExprKind::kConcat, l) {}
  std::vector<ExprPtr> parts;
};

struct ConditionExpr : Expr {
  explicit ConditionExpr(int l) : Expr(ExprKind::kCondition, l) {}
  ExprPtr test, if_true, if_false;  // if_false may be null: the result is then Undefined
};

struct ListExpr : Expr {
  ListExpr(bool tuple, int l) : Expr(ExprKind::kList, l), is_tuple(tuple) {}
  bool is_tuple;
  std::vector<ExprPtr> items;
};

struct DictExpr : Expr {
  explicit DictExpr(int l) : Expr(ExprKind::kDict, l) {}
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
};

enum class StmtKind {
  kText,         // template text
  kOutput,       // {{ expr }}
  kIf,           // {% if %}{% elif %}{% else %}{% endif %}
  kFor,          // {% for target in iterable if filter %}{% else %}{% endfor %}
  kSet,          // {% set target = value %}
  kSetBlock,     // {% set target | filter %}body{% endset %}
  kMacro,        // {% macro name(params) %}body{% endmacro %}
  kCallBlock,    // {% call(params) macro(args) %}body{% endcall %}
  kFilterBlock,  // {% filter f %}body{% endfilter %}
  kWith,         // {% with a = 1 %}body{% endwith %}
  kScope,        // a body in the enclosing scope: {% generation %}
  kBreak,
  kContinue,
};

struct Stmt {
  Stmt(StmtKind k, int l) : kind(k), line(l) {}
  virtual ~Stmt() = default;
  StmtKind kind;
  int line;
};

struct TextStmt : Stmt {
  TextStmt(std::string t, int l) : Stmt(StmtKind::kText, l), text(std::move(t)) {}
  std::string text;
};

struct OutputStmt : Stmt {
  OutputStmt(ExprPtr e, int l) : Stmt(StmtKind::kOutput, l), expr(std::move(e)) {}
  ExprPtr expr;
};

struct IfStmt : Stmt {
  explicit IfStmt(int l) : Stmt(StmtKind::kIf, l) {}
  std::vector<std::pair<ExprPtr, Body>> branches;  // if, then each elif
  Body else_body;
};

struct ForStmt : Stmt {
  explicit ForStmt(int l) : Stmt(StmtKind::kFor, l) {}
  ExprPtr target;  // a name or a tuple of names
  ExprPtr iterable;
  ExprPtr filter;  // may be null
  bool recursive = false;
  Body body;
  Body else_body;
};

struct SetStmt : Stmt {
  explicit SetStmt(int l) : Stmt(StmtKind::kSet, l) {}
  ExprPtr target;  // a name, a tuple of names, or ns.attr
  ExprPtr value;
};

struct SetBlockStmt : Stmt {
  explicit SetBlockStmt(int l) : Stmt(StmtKind::kSetBlock, l) {}
  ExprPtr target;
  ExprPtr filter;  // may be null
  Body body;
};

struct MacroParams {
  std::vector<std::string> names;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() names
};

struct MacroStmt : Stmt {
  explicit MacroStmt(int l) : Stmt(StmtKind::kMacro, l) {}
  std::string name;
  MacroParams params;
  Body body;
  // Whether the body reads varargs / kwargs / caller: only then may a call pass extra arguments.
  bool uses_varargs = false, uses_kwargs = false, uses_caller = false;
};

struct CallBlockStmt : Stmt {
  explicit CallBlockStmt(int l) : Stmt(StmtKind::kCallBlock, l) {}
  MacroStmt caller{0};  // the body as the `caller` macro
  std::unique_ptr<CallExpr> call;
};

struct FilterBlockStmt : Stmt {
  explicit FilterBlockStmt(int l) : Stmt(StmtKind::kFilterBlock, l) {}
  ExprPtr filter;
  Body body;
};

struct WithStmt : Stmt {
  explicit WithStmt(int l) : Stmt(StmtKind::kWith, l) {}
  std::vector<std::pair<ExprPtr, ExprPtr>> assignments;
  Body body;
};

struct ScopeStmt : Stmt {
  explicit ScopeStmt(int l) : Stmt(StmtKind::kScope, l) {}
  Body body;
};

}  // namespace kiln::tokenizer::jinja
