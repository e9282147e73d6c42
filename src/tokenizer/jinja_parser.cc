#include "tokenizer/jinja_parser.h"

#include <algorithm>
#include <initializer_list>
#include <set>

#include "tokenizer/jinja_filters.h"
#include "tokenizer/jinja_lexer.h"
#include "tokenizer/jinja_tests.h"

namespace kiln::tokenizer::jinja {

namespace {

using EndTokens = std::initializer_list<std::string_view>;

// Statements and expressions may nest this deep: parsing, rendering and freeing a template recurse through its
// tree, so a deeper one ("((((...", "x|f|f|f...", a thousand nested ifs) could overflow the stack. Real chat
// templates nest a dozen levels.
constexpr int kMaxNesting = 256;

// What a token is called in error messages, as Jinja2's describe_token says it.
std::string describe(const Token& token) {
  switch (token.type) {
    case TokenType::kData: return "template data / text";
    case TokenType::kVariableBegin: return "begin of print statement";
    case TokenType::kVariableEnd: return "end of print statement";
    case TokenType::kBlockBegin: return "begin of statement block";
    case TokenType::kBlockEnd: return "end of statement block";
    case TokenType::kEnd: return "end of template";
    case TokenType::kString: return "string";
    case TokenType::kInteger: return "integer";
    case TokenType::kFloat: return "float";
    default: return token.text;
  }
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Body parse() {
    Body body = subparse({});
    if (current().type != TokenType::kEnd) fail(concat("unexpected ", describe(current())));
    return body;
  }

 private:
  // ---- token stream ----
  const Token& current() const { return tokens_[index_]; }
  const Token& look() const { return tokens_[std::min(index_ + 1, tokens_.size() - 1)]; }
  const Token& next() {
    const Token& token = tokens_[index_];
    if (index_ + 1 < tokens_.size()) ++index_;
    return token;
  }
  bool is_name(std::string_view name) const { return current().type == TokenType::kName && current().text == name; }
  bool is_op(std::string_view op) const { return current().type == TokenType::kOperator && current().text == op; }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  [[noreturn]] void fail(std::string_view message) const { throw_syntax_error(current().line, message); }
  [[noreturn]] void fail_expected(std::string_view expected) const {
    if (current().type == TokenType::kEnd) fail(concat("unexpected end of template, expected '", expected, "'."));
    fail(concat("expected token '", expected, "', got '", describe(current()), "'"));
  }
  const Token& expect_op(std::string_view op) {
    if (!is_op(op)) fail_expected(op);
    return next();
  }
  const Token& expect_name() {
    if (current().type != TokenType::kName) fail_expected("name");
    return next();
  }
  void expect_name(std::string_view name) {
    if (!is_name(name)) fail_expected(concat("name:", name));
    next();
  }
  void expect(TokenType type) {
    if (current().type != type) fail_expected(describe(Token{type, "", 0, 0, 0}));
    next();
  }

  // One more level of nesting for each deeper() while it lives; the depth is restored when it ends.
  class Nesting {
   public:
    explicit Nesting(Parser& parser) : parser_(parser), saved_(parser.depth_) {}
    ~Nesting() { parser_.depth_ = saved_; }
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;
    void deeper() {
      if (++parser_.depth_ > kMaxNesting) {
        parser_.fail(
            concat("TemplateLimitError: statements and expressions nest more than ", kMaxNesting, " levels deep"));
      }
    }

   private:
    Parser& parser_;
    int saved_;
  };

  // ---- statements ----
  Body subparse(EndTokens end_tokens) {
    Body body;
    if (end_tokens.size() > 0) end_token_stack_.emplace_back(end_tokens.begin(), end_tokens.end());
    while (current().type != TokenType::kEnd) {
      const Token& token = current();
      if (token.type == TokenType::kData) {
        body.push_back(std::make_unique<TextStmt>(token.text, token.line));
        next();
      } else if (token.type == TokenType::kVariableBegin) {
        next();
        body.push_back(std::make_unique<OutputStmt>(parse_tuple(false, true, {}, false, false), token.line));
        expect(TokenType::kVariableEnd);
      } else if (token.type == TokenType::kBlockBegin) {
        next();
        if (current().type == TokenType::kName &&
            std::find(end_tokens.begin(), end_tokens.end(), current().text) != end_tokens.end()) {
          end_token_stack_.pop_back();
          return body;
        }
        if (StmtPtr statement = parse_statement()) body.push_back(std::move(statement));
        expect(TokenType::kBlockEnd);
      } else {
        fail(concat("unexpected ", describe(token)));
      }
    }
    if (end_tokens.size() > 0) end_token_stack_.pop_back();
    return body;
  }

  // The body of a block statement, up to one of `end_tokens` (left current unless drop_needle).
  Body parse_statements(EndTokens end_tokens, bool drop_needle = false) {
    skip_op(":");
    expect(TokenType::kBlockEnd);
    Body body = subparse(end_tokens);
    if (current().type == TokenType::kEnd) fail_eof(end_tokens);
    if (drop_needle) next();
    return body;
  }

  [[noreturn]] void fail_eof(EndTokens end_tokens) const {
    std::string message = "Unexpected end of template.";
    if (end_tokens.size() > 0) {
      message += " Jinja was looking for the following tags: ";
      bool first = true;
      for (std::string_view token : end_tokens) {
        message += concat(first ? "" : " or ", "'", token, "'");
        first = false;
      }
      message += ".";
    }
    fail(message);
  }

  StmtPtr parse_statement() {
    Nesting nesting(*this);
    nesting.deeper();
    const Token& token = current();
    if (token.type != TokenType::kName) fail("tag name expected");
    const std::string& tag = token.text;
    if (tag == "for") return parse_for();
    if (tag == "if") return parse_if();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "call") return parse_call_block();
    if (tag == "filter") return parse_filter_block();
    if (tag == "with") return parse_with();
    if (tag == "print") return parse_print();
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail(concat("'", tag, "' outside loop"));
      const int line = next().line;
      return std::make_unique<Stmt>(tag == "break" ? StmtKind::kBreak : StmtKind::kContinue, line);
    }
    // transformers' AssistantTracker extension marks assistant text with {% generation %}; rendering ignores it.
    if (tag == "generation") {
      auto scope = std::make_unique<ScopeStmt>(next().line);
      scope->body = parse_statements({"endgeneration"}, true);
      return scope;
    }
    if (tag == "autoescape") {
      const int line = next().line;
      parse_expression(true);
      auto scope = std::make_unique<ScopeStmt>(line);
      scope->body = parse_statements({"endautoescape"}, true);
      return scope;
    }
    if (tag == "block") {
      const int line = next().line;
      expect_name();
      skip_name("scoped");
      skip_name("required");
      auto scope = std::make_unique<ScopeStmt>(line);
      scope->body = parse_statements({"endblock"}, true);
      if (current().type == TokenType::kName) next();  // {% endblock name %}
      return scope;
    }
    if (tag == "extends" || tag == "include" || tag == "import" || tag == "from") {
      fail(concat("'", tag, "' needs a template loader, which chat templates do not have"));
    }
    std::string message = concat("Encountered unknown tag '", tag, "'.");
    if (!end_token_stack_.empty()) {
      message += " Jinja was looking for the following tags: ";
      bool first = true;
      for (std::string_view end : end_token_stack_.back()) {
        message += concat(first ? "" : " or ", "'", end, "'");
        first = false;
      }
      message += ".";
    }
    fail(message);
  }

  StmtPtr parse_for() {
    auto node = std::make_unique<ForStmt>(next().line);
    node->target = parse_assign_target(true, false, {"in"}, false);
    expect_name("in");
    node->iterable = parse_tuple(false, false, {"recursive"}, false, false);
    if (skip_name("if")) node->filter = parse_expression(true);
    node->recursive = skip_name("recursive");
    ++loop_depth_;
    node->body = parse_statements({"endfor", "else"});
    --loop_depth_;
    if (next().text != "endfor") node->else_body = parse_statements({"endfor"}, true);
    return node;
  }

  StmtPtr parse_if() {
    auto node = std::make_unique<IfStmt>(next().line);
    while (true) {
      ExprPtr test = parse_tuple(false, false, {}, false, false);
      Body body = parse_statements({"elif", "else", "endif"});
      node->branches.emplace_back(std::move(test), std::move(body));
      const Token& token = next();
      if (token.text == "elif") continue;
      if (token.text == "else") node->else_body = parse_statements({"endif"}, true);
      break;
    }
    return node;
  }

  StmtPtr parse_set() {
    const int line = next().line;
    ExprPtr target = parse_assign_target(true, false, {}, true);
    if (skip_op("=")) {
      auto node = std::make_unique<SetStmt>(line);
      node->target = std::move(target);
      node->value = parse_tuple(false, true, {}, false, false);
      return node;
    }
    auto node = std::make_unique<SetBlockStmt>(line);
    node->target = std::move(target);
    node->filter = parse_filter(nullptr, false);
    node->body = parse_statements({"endset"}, true);
    return node;
  }

  void parse_signature(MacroParams& params) {
    expect_op("(");
    while (!is_op(")")) {
      if (!params.names.empty()) expect_op(",");
      params.names.push_back(expect_name().text);
      if (skip_op("=")) {
        params.defaults.push_back(parse_expression(true));
      } else if (!params.defaults.empty()) {
        fail("non-default argument follows default argument");
      }
    }
    expect_op(")");
  }

  // Parses a macro body, noting whether it reads varargs, kwargs or caller.
  void parse_macro_body(MacroStmt& macro, std::string_view end_tag) {
    macro_names_.emplace_back();
    const int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    macro.body = end_tag == "endmacro" ? parse_statements({"endmacro"}, true) : parse_statements({"endcall"}, true);
    loop_depth_ = saved_loop_depth;
    const std::set<std::string>& names = macro_names_.back();
    macro.uses_varargs = names.contains("varargs");
    macro.uses_kwargs = names.contains("kwargs");
    macro.uses_caller = names.contains("caller");
    macro_names_.pop_back();
  }

  StmtPtr parse_macro() {
    auto node = std::make_unique<MacroStmt>(next().line);
    node->name = expect_name().text;
    parse_signature(node->params);
    parse_macro_body(*node, "endmacro");
    return node;
  }

  StmtPtr parse_call_block() {
    auto node = std::make_unique<CallBlockStmt>(next().line);
    node->caller.name = "caller";
    node->caller.line = node->line;
    if (is_op("(")) parse_signature(node->caller.params);
    ExprPtr call = parse_expression(true);
    if (call->kind != ExprKind::kCall) throw_syntax_error(node->line, "expected call");
    node->call.reset(static_cast<CallExpr*>(call.release()));
    parse_macro_body(node->caller, "endcall");
    return node;
  }

  StmtPtr parse_filter_block() {
    auto node = std::make_unique<FilterBlockStmt>(next().line);
    node->filter = parse_filter(nullptr, true);
    node->body = parse_statements({"endfilter"}, true);
    return node;
  }

  StmtPtr parse_with() {
    auto node = std::make_unique<WithStmt>(next().line);
    while (current().type != TokenType::kBlockEnd) {
      if (!node->assignments.empty()) expect_op(",");
      ExprPtr target = parse_assign_target(true, false, {}, false);
      expect_op("=");
      node->assignments.emplace_back(std::move(target), parse_expression(true));
    }
    node->body = parse_statements({"endwith"}, true);
    return node;
  }

  StmtPtr parse_print() {
    const int line = next().line;
    auto items = std::make_unique<ListExpr>(false, line);
    while (current().type != TokenType::kBlockEnd) {
      if (!items->items.empty()) expect_op(",");
      items->items.push_back(parse_expression(true));
    }
    auto concat_expr = std::make_unique<ConcatExpr>(line);
    concat_expr->parts = std::move(items->items);
    return std::make_unique<OutputStmt>(std::move(concat_expr), line);
  }

  // ---- assignment targets ----
  static bool can_assign(const Expr& target) {
    if (target.kind == ExprKind::kName || target.kind == ExprKind::kNsRef) return true;
    if (target.kind == ExprKind::kList && static_cast<const ListExpr&>(target).is_tuple) {
      const auto& items = static_cast<const ListExpr&>(target).items;
      return std::all_of(items.begin(), items.end(), [](const ExprPtr& item) { return can_assign(*item); });
    }
    return false;
  }

  ExprPtr parse_assign_target(bool with_tuple, bool name_only, EndTokens extra_end_rules, bool with_namespace) {
    ExprPtr target;
    if (name_only) {
      const Token& token = expect_name();
      target = std::make_unique<NameExpr>(token.text, token.line);
    } else if (with_tuple) {
      target = parse_tuple(true, true, extra_end_rules, false, with_namespace);
    } else {
      target = parse_primary(with_namespace);
    }
    if (!can_assign(*target)) throw_syntax_error(target->line, "can't assign to this expression");
    return target;
  }

  // ---- expressions ----
  bool is_tuple_end(EndTokens extra_end_rules) const {
    const Token& token = current();
    if (token.type == TokenType::kVariableEnd || token.type == TokenType::kBlockEnd || is_op(")")) return true;
    return token.type == TokenType::kName &&
           std::find(extra_end_rules.begin(), extra_end_rules.end(), token.text) != extra_end_rules.end();
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, EndTokens extra_end_rules, bool explicit_parentheses,
                      bool with_namespace) {
    const int line = current().line;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end_rules)) break;
      args.push_back(simplified ? parse_primary(with_namespace) : parse_expression(with_condexpr));
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parentheses) fail(concat("Expected an expression, got '", describe(current()), "'"));
    }
    auto tuple = std::make_unique<ListExpr>(true, line);
    tuple->items = std::move(args);
    return tuple;
  }

  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    int line = current().line;
    ExprPtr expr1 = parse_or();
    Nesting nesting(*this);
    while (skip_name("if")) {
      nesting.deeper();
      auto node = std::make_unique<ConditionExpr>(line);
      node->test = parse_or();
      if (skip_name("else")) node->if_false = parse_condexpr();
      node->if_true = std::move(expr1);
      expr1 = std::move(node);
      line = current().line;
    }
    return expr1;
  }

  ExprPtr parse_or() {
    const int line = current().line;
    ExprPtr left = parse_and();
    Nesting nesting(*this);
    while (skip_name("or")) {
      nesting.deeper();
      left = std::make_unique<BinaryExpr>(ExprKind::kOr, BinaryOp::kAdd, std::move(left), parse_and(), line);
    }
    return left;
  }

  ExprPtr parse_and() {
    const int line = current().line;
    ExprPtr left = parse_not();
    Nesting nesting(*this);
    while (skip_name("and")) {
      nesting.deeper();
      left = std::make_unique<BinaryExpr>(ExprKind::kAnd, BinaryOp::kAdd, std::move(left), parse_not(), line);
    }
    return left;
  }

  ExprPtr parse_not() {
    Nesting nesting(*this);
    nesting.deeper();
    if (is_name("not")) {
      const int line = next().line;
      return std::make_unique<UnaryExpr>(UnaryOp::kNot, parse_not(), line);
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const int line = current().line;
    ExprPtr expr = parse_math1();
    auto node = std::make_unique<CompareExpr>(line);
    static const std::pair<std::string_view, CompareOp> kOperators[] = {{"==", CompareOp::kEq}, {"!=", CompareOp::kNe},
                                                                        {"<", CompareOp::kLt},  {"<=", CompareOp::kLe},
                                                                        {">", CompareOp::kGt},  {">=", CompareOp::kGe}};
    while (true) {
      std::optional<CompareOp> op;
      for (const auto& [text, compare_op] : kOperators) {
        if (is_op(text)) op = compare_op;
      }
      if (op) {
        next();
      } else if (skip_name("in")) {
        op = CompareOp::kIn;
      } else if (is_name("not") && look().type == TokenType::kName && look().text == "in") {
        next();
        next();
        op = CompareOp::kNotIn;
      } else {
        break;
      }
      node->rest.emplace_back(*op, parse_math1());
    }
    if (node->rest.empty()) return expr;
    node->first = std::move(expr);
    return node;
  }

  ExprPtr parse_math1() {
    const int line = current().line;
    ExprPtr left = parse_concat();
    Nesting nesting(*this);
    while (is_op("+") || is_op("-")) {
      nesting.deeper();
      const BinaryOp op = next().text == "+" ? BinaryOp::kAdd : BinaryOp::kSub;
      left = std::make_unique<BinaryExpr>(ExprKind::kBinary, op, std::move(left), parse_concat(), line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    const int line = current().line;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto node = std::make_unique<ConcatExpr>(line);
    node->parts.push_back(std::move(first));
    while (skip_op("~")) node->parts.push_back(parse_math2());
    return node;
  }

  ExprPtr parse_math2() {
    const int line = current().line;
    ExprPtr left = parse_pow();
    Nesting nesting(*this);
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      nesting.deeper();
      const std::string& text = next().text;
      const BinaryOp op = text == "*"    ? BinaryOp::kMul
                          : text == "/"  ? BinaryOp::kDiv
                          : text == "//" ? BinaryOp::kFloorDiv
                                         : BinaryOp::kMod;
      left = std::make_unique<BinaryExpr>(ExprKind::kBinary, op, std::move(left), parse_pow(), line);
    }
    return left;
  }

  ExprPtr parse_pow() {
    const int line = current().line;
    ExprPtr left = parse_unary(true);
    Nesting nesting(*this);
    while (skip_op("**")) {
      nesting.deeper();
      left = std::make_unique<BinaryExpr>(ExprKind::kBinary, BinaryOp::kPow, std::move(left), parse_unary(true), line);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    Nesting nesting(*this);
    nesting.deeper();
    const int line = current().line;
    ExprPtr node;
    if (skip_op("-")) {
      node = std::make_unique<UnaryExpr>(UnaryOp::kNeg, parse_unary(false), line);
    } else if (skip_op("+")) {
      node = std::make_unique<UnaryExpr>(UnaryOp::kPos, parse_unary(false), line);
    } else {
      node = parse_primary(false);
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary(bool with_namespace) {
    const Token& token = current();
    const int line = token.line;
    switch (token.type) {
      case TokenType::kName: {
        const std::string name = next().text;
        if (name == "true" || name == "True") return std::make_unique<ConstExpr>(Value(true), line);
        if (name == "false" || name == "False") return std::make_unique<ConstExpr>(Value(false), line);
        if (name == "none" || name == "None") return std::make_unique<ConstExpr>(Value(None{}), line);
        if (with_namespace && is_op(".")) {
          next();
          return std::make_unique<NsRefExpr>(name, expect_name().text, line);
        }
        for (auto& names : macro_names_) names.insert(name);
        return std::make_unique<NameExpr>(name, line);
      }
      case TokenType::kString: {
        std::string text;
        while (current().type == TokenType::kString) text += next().text;
        return std::make_unique<ConstExpr>(Value(std::move(text)), line);
      }
      case TokenType::kInteger: return std::make_unique<ConstExpr>(Value(next().integer), line);
      case TokenType::kFloat: return std::make_unique<ConstExpr>(Value(next().number), line);
      case TokenType::kOperator:
        if (skip_op("(")) {
          ExprPtr node = parse_tuple(false, true, {}, true, false);
          expect_op(")");
          return node;
        }
        if (is_op("[")) return parse_list();
        if (is_op("{")) return parse_dict();
        break;
      default: break;
    }
    fail(concat("unexpected '", describe(token), "'"));
  }

  ExprPtr parse_list() {
    auto node = std::make_unique<ListExpr>(false, expect_op("[").line);
    while (!is_op("]")) {
      if (!node->items.empty()) expect_op(",");
      if (is_op("]")) break;
      node->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return node;
  }

  ExprPtr parse_dict() {
    auto node = std::make_unique<DictExpr>(expect_op("{").line);
    while (!is_op("}")) {
      if (!node->items.empty()) expect_op(",");
      if (is_op("}")) break;
      ExprPtr key = parse_expression(true);
      expect_op(":");
      node->items.emplace_back(std::move(key), parse_expression(true));
    }
    expect_op("}");
    return node;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    Nesting nesting(*this);
    while (true) {
      nesting.deeper();
      if (is_op(".") || is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    Nesting nesting(*this);
    while (true) {
      nesting.deeper();
      if (is_op("|")) {
        node = parse_filter(std::move(node), false);
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& token = next();
    const int line = token.line;
    if (token.text == ".") {
      const Token& attr = next();
      if (attr.type == TokenType::kName) return std::make_unique<GetattrExpr>(std::move(node), attr.text, line);
      if (attr.type != TokenType::kInteger) throw_syntax_error(attr.line, "expected name or number");
      return std::make_unique<GetitemExpr>(std::move(node), std::make_unique<ConstExpr>(Value(attr.integer), line),
                                           line);
    }
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    ExprPtr key;
    if (args.size() == 1) {
      key = std::move(args[0]);
    } else {
      auto tuple = std::make_unique<ListExpr>(true, line);
      tuple->items = std::move(args);
      key = std::move(tuple);
    }
    return std::make_unique<GetitemExpr>(std::move(node), std::move(key), line);
  }

  ExprPtr parse_subscribed() {
    const int line = current().line;
    auto slice = std::make_unique<SliceExpr>(line);
    if (!skip_op(":")) {
      ExprPtr node = parse_expression(true);
      if (!skip_op(":")) return node;
      slice->start = std::move(node);
    }
    if (!is_op(":") && !is_op("]") && !is_op(",")) slice->stop = parse_expression(true);
    if (skip_op(":")) {
      if (!is_op("]") && !is_op(",")) slice->step = parse_expression(true);
    }
    return slice;
  }

  Arguments parse_call_args() {
    const int line = expect_op("(").line;
    Arguments args;
    bool require_comma = false;
    auto ensure = [line](bool ok) {
      if (!ok) throw_syntax_error(line, "invalid syntax for function call expression");
    };
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")")) break;  // trailing comma
      }
      if (skip_op("*")) {
        ensure(!args.star_args && !args.star_kwargs);
        args.star_args = parse_expression(true);
      } else if (skip_op("**")) {
        ensure(!args.star_kwargs);
        args.star_kwargs = parse_expression(true);
      } else if (current().type == TokenType::kName && look().type == TokenType::kOperator && look().text == "=") {
        ensure(!args.star_kwargs);
        std::string key = next().text;
        next();
        args.keyword.emplace_back(std::move(key), parse_expression(true));
      } else {
        ensure(!args.star_args && !args.star_kwargs && args.keyword.empty());
        args.positional.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
    return args;
  }

  ExprPtr parse_call(ExprPtr node) {
    auto call = std::make_unique<CallExpr>(current().line);
    call->args = parse_call_args();
    call->callee = std::move(node);
    return call;
  }

  // Dotted names (filter and test names may contain dots in Jinja2).
  std::string parse_dotted_name() {
    std::string name = expect_name().text;
    while (skip_op(".")) name += "." + expect_name().text;
    return name;
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    Nesting nesting(*this);
    while (is_op("|") || start_inline) {
      nesting.deeper();
      if (!start_inline) next();
      start_inline = false;
      auto filter = std::make_unique<FilterExpr>(current().line);
      filter->name = parse_dotted_name();
      filter->filter = find_filter(filter->name);
      if (is_op("(")) filter->args = parse_call_args();
      filter->operand = std::move(node);
      node = std::move(filter);
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    const int line = next().line;
    const bool negated = skip_name("not");
    auto test = std::make_unique<TestExpr>(line);
    test->name = parse_dotted_name();
    test->test = find_test(test->name);
    const Token& token = current();
    if (is_op("(")) {
      test->args = parse_call_args();
    } else if ((token.type == TokenType::kName || token.type == TokenType::kString ||
                token.type == TokenType::kInteger || token.type == TokenType::kFloat || is_op("(") || is_op("[") ||
                is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      // A single argument without parentheses: `x is divisibleby 3`, `x is sameas none`.
      if (is_name("is")) fail("You cannot chain multiple tests with is");
      test->args.positional.push_back(parse_postfix(parse_primary(false)));
    }
    test->operand = std::move(node);
    if (negated) return std::make_unique<UnaryExpr>(UnaryOp::kNot, std::move(test), line);
    return test;
  }

  std::vector<Token> tokens_;
  std::size_t index_ = 0;
  // The end tags each open block waits for, innermost last (for error messages).
  std::vector<std::vector<std::string_view>> end_token_stack_;
  std::vector<std::set<std::string>> macro_names_;
  int loop_depth_ = 0;
  // How deeply the statement or expression being parsed nests (Nesting).
  int depth_ = 0;
};

}  // namespace

Body parse_template(std::string_view source) { return Parser(tokenize(source)).parse(); }

}  // namespace kiln::tokenizer::jinja
