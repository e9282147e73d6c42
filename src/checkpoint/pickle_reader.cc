#include "checkpoint/pickle_reader.h"

#include <bit>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"

namespace kiln::checkpoint {
namespace {

// Opcode values from CPython's Lib/pickle.py.
enum Opcode : uint8_t {
  kMark = '(',
  kStop = '.',
  kBinFloat = 'G',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kNone = 'N',
  kBinPersId = 'Q',
  kReduce = 'R',
  kBinString = 'T',
  kShortBinString = 'U',
  kBinUnicode = 'X',
  kAppend = 'a',
  kBuild = 'b',
  kGlobal = 'c',
  kDict = 'd',
  kAppends = 'e',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kList = 'l',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kSetItems = 'u',
  kEmptyDict = '}',
  kEmptyList = ']',
  kEmptyTuple = ')',
  kProto = 0x80,
  kNewObj = 0x81,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
  kShortBinUnicode = 0x8c,
  kBinUnicode8 = 0x8d,
  kStackGlobal = 0x93,
  kMemoize = 0x94,
  kFrame = 0x95,
};

constexpr int kHighestProtocol = 5;

struct StorageType {
  std::string_view name;
  DType dtype;
};
// The typed storage classes torch names in a storage's persistent id.
// UntypedStorage holds raw bytes, which is what torch itself reads it as.
constexpr StorageType kStorageTypes[] = {
    {"DoubleStorage", DType::f64},    {"FloatStorage", DType::f32}, {"HalfStorage", DType::f16},
    {"BFloat16Storage", DType::bf16}, {"LongStorage", DType::i64},  {"IntStorage", DType::i32},
    {"CharStorage", DType::i8},       {"ByteStorage", DType::u8},   {"BoolStorage", DType::boolean},
    {"UntypedStorage", DType::u8},
};

std::optional<DType> storage_dtype(const PickleGlobal& g) {
  const bool torch_module = g.module == "torch" || (g.module == "torch.storage" && g.name == "UntypedStorage");
  if (!torch_module) return std::nullopt;
  for (const auto& t : kStorageTypes) {
    if (t.name == g.name) return t.dtype;
  }
  return std::nullopt;
}

bool is_global(const PickleGlobal& g, std::string_view module, std::string_view name) {
  return g.module == module && g.name == name;
}

template <typename T>
PickleRef make_value(T v) {
  auto ref = std::make_shared<PickleValue>();
  ref->value.template emplace<T>(std::move(v));
  return ref;
}

class Unpickler {
 public:
  Unpickler(std::span<const std::byte> bytes, const std::string& source) : bytes_(bytes), source_(source) {}

  PickleRef run() {
    while (pos_ < bytes_.size()) {
      opcode_pos_ = pos_;
      const uint8_t op = u8();
      if (op == kStop) return pop();
      step(op);
    }
    fail("truncated pickle (no STOP opcode)");
  }

 private:
  template <typename... Parts>
  [[noreturn]] void fail(Parts&&... parts) const {
    throw_error("pickle ", source_, ": ", std::forward<Parts>(parts)..., " (at byte ", opcode_pos_, ")");
  }

  void step(uint8_t op) {
    switch (op) {
      case kProto: {
        const uint8_t version = u8();
        if (version > kHighestProtocol) fail("unsupported pickle protocol ", int{version});
        return;
      }
      case kFrame: skip(8); return;  // frames only group opcodes for buffered reading
      case kMark: marks_.push_back(stack_.size()); return;

      case kNone: push(make_value(PickleNone{})); return;
      case kNewTrue: push(make_value(true)); return;
      case kNewFalse: push(make_value(false)); return;
      case kBinInt: push(make_value<int64_t>(static_cast<int32_t>(little_endian(4)))); return;
      case kBinInt1: push(make_value<int64_t>(u8())); return;
      case kBinInt2: push(make_value<int64_t>(little_endian(2))); return;
      case kLong1: push(make_value(long1())); return;
      case kBinFloat: push(make_value(std::bit_cast<double>(big_endian64()))); return;

      case kShortBinUnicode:
      case kShortBinString: push(make_value(std::string(take(u8())))); return;
      case kBinUnicode: push(make_value(std::string(take(little_endian(4))))); return;
      case kBinUnicode8: push(make_value(std::string(take(little_endian(8))))); return;
      case kBinString: {
        const auto length = static_cast<int32_t>(little_endian(4));
        if (length < 0) fail("negative string length");
        push(make_value(std::string(take(static_cast<uint64_t>(length)))));
        return;
      }

      case kEmptyTuple: push(make_value(PickleTuple{})); return;
      case kTuple: push(make_value(PickleTuple{sealed(pop_mark())})); return;
      case kTuple1:
      case kTuple2:
      case kTuple3: {
        const std::size_t n = op - kTuple1 + 1;
        if (stack_.size() < n + floor()) fail("stack underflow");
        PickleTuple tuple{sealed(std::vector<PickleRef>(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end()))};
        stack_.resize(stack_.size() - n);
        push(make_value(std::move(tuple)));
        return;
      }
      case kEmptyList: push(make_value(PickleList{})); return;
      case kList: push(make_value(PickleList{sealed(pop_mark())})); return;
      case kAppend: {
        PickleRef item = pop();
        check_mutable(top(), {item});
        list_on_top().items.push_back(std::move(item));
        return;
      }
      case kAppends: {
        std::vector<PickleRef> items = pop_mark();
        check_mutable(top(), items);
        auto& list = list_on_top();
        list.items.insert(list.items.end(), items.begin(), items.end());
        return;
      }
      case kEmptyDict: push(make_value(PickleDict{})); return;
      case kDict: {
        PickleDict dict;
        add_pairs(dict, sealed(pop_mark()));
        push(make_value(std::move(dict)));
        return;
      }
      case kSetItem: {
        PickleRef value = pop();
        PickleRef key = pop();
        check_mutable(top(), {key, value});
        dict_on_top().items.emplace_back(std::move(key), std::move(value));
        return;
      }
      case kSetItems: {
        std::vector<PickleRef> items = pop_mark();
        check_mutable(top(), items);
        add_pairs(dict_on_top(), std::move(items));
        return;
      }

      case kBinPut: memo_[u8()] = top(); return;
      case kLongBinPut: memo_[little_endian(4)] = top(); return;
      case kMemoize: memo_[memo_.size()] = top(); return;
      case kBinGet: push(memo_get(u8())); return;
      case kLongBinGet: push(memo_get(little_endian(4))); return;

      case kGlobal: {
        std::string module = line();
        std::string name = line();
        push(make_value(recognised_global(std::move(module), std::move(name))));
        return;
      }
      case kStackGlobal: {
        std::string name = string_of(pop(), "STACK_GLOBAL name");
        std::string module = string_of(pop(), "STACK_GLOBAL module");
        push(make_value(recognised_global(std::move(module), std::move(name))));
        return;
      }
      case kReduce: {
        PickleRef args = pop();
        PickleRef callable = pop();
        push(call(callable, args));
        return;
      }
      case kNewObj: {
        pop();  // the arguments of cls.__new__, which OrderedDict ignores
        push(instantiate(pop()));
        return;
      }
      case kBuild:
        // BUILD sets attributes of the object below it from a state (OrderedDict's
        // `_metadata` of module versions); none of them bear on the tensors, so
        // the state is dropped and the object left as it is.
        pop();
        if (stack_.size() <= floor()) fail("BUILD with no object");
        return;
      case kBinPersId: push(persistent_load(pop())); return;
      default: fail("unsupported pickle opcode ", concat("0x", std::hex, int{op}));
    }
  }

  // --- reading the byte stream
  uint8_t u8() { return static_cast<uint8_t>(take(1)[0]); }
  uint64_t little_endian(int n) {
    const std::string_view b = take(n);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(b[i]);
    return v;
  }
  uint64_t big_endian64() {
    const std::string_view b = take(8);
    uint64_t v = 0;
    for (char c : b) v = v << 8 | static_cast<uint8_t>(c);
    return v;
  }
  // LONG1: a little-endian two's complement integer of n bytes.
  int64_t long1() {
    const uint8_t n = u8();
    if (n > 8) fail("integer of ", int{n}, " bytes does not fit in 64 bits");
    if (n == 0) return 0;
    uint64_t v = little_endian(n);
    if (n < 8 && (v >> (8 * n - 1)) & 1u) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }
  std::string_view take(uint64_t n) {
    if (n > bytes_.size() - pos_) fail("truncated pickle");
    const std::string_view out(reinterpret_cast<const char*>(bytes_.data()) + pos_, n);
    pos_ += n;
    return out;
  }
  void skip(uint64_t n) { take(n); }
  std::string line() {
    const auto* begin = reinterpret_cast<const char*>(bytes_.data()) + pos_;
    const auto* end = static_cast<const char*>(std::memchr(begin, '\n', bytes_.size() - pos_));
    if (end == nullptr) fail("truncated pickle (unterminated GLOBAL)");
    pos_ += static_cast<std::size_t>(end - begin) + 1;
    return std::string(begin, end);
  }

  // --- the stack; MARK positions split it so that no opcode reaches below one
  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(PickleRef v) { stack_.push_back(std::move(v)); }
  PickleRef pop() {
    if (stack_.size() <= floor()) fail("stack underflow");
    PickleRef v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  const PickleRef& top() const {
    if (stack_.size() <= floor()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<PickleRef> pop_mark() {
    if (marks_.empty()) fail("no MARK for a collection opcode");
    const auto mark = static_cast<std::ptrdiff_t>(marks_.back());
    marks_.pop_back();
    std::vector<PickleRef> items(stack_.begin() + mark, stack_.end());
    stack_.resize(static_cast<std::size_t>(mark));
    return items;
  }
  PickleList& list_on_top() {
    auto* list = std::get_if<PickleList>(&top()->value);
    if (list == nullptr) fail("APPEND to a value of type ", pickle_kind(*top()), ", not a list");
    return *list;
  }
  PickleDict& dict_on_top() {
    auto* dict = std::get_if<PickleDict>(&top()->value);
    if (dict == nullptr) fail("SETITEM on a value of type ", pickle_kind(*top()), ", not a dict");
    return *dict;
  }
  // A list or dict becomes immutable once it is stored in another container: APPEND or SETITEM on it then fails.
  // So no value can come to hold itself (a reference cycle of shared_ptrs would never be freed); the pickles
  // torch writes fill each container before storing it.
  static bool is_container(const PickleRef& v) {
    return std::holds_alternative<PickleList>(v->value) || std::holds_alternative<PickleDict>(v->value);
  }
  std::vector<PickleRef> sealed(std::vector<PickleRef> items) {
    for (const PickleRef& item : items) {
      if (is_container(item)) sealed_.insert(item);
    }
    return items;
  }
  // Before `items` are added to `target`: `target` may still change, and none of them is `target` itself.
  void check_mutable(const PickleRef& target, const std::vector<PickleRef>& items) {
    if (sealed_.contains(target)) {
      fail("a ", pickle_kind(*target), " is changed after it was stored in another container (a reference cycle?)");
    }
    for (const PickleRef& item : items) {
      if (item == target) fail("a ", pickle_kind(*target), " is added to itself");
    }
    sealed(items);
  }

  void add_pairs(PickleDict& dict, std::vector<PickleRef> items) {
    if (items.size() % 2 != 0) fail("odd number of items for a dict");
    for (std::size_t i = 0; i < items.size(); i += 2) dict.items.emplace_back(items[i], items[i + 1]);
  }
  PickleRef memo_get(uint64_t key) const {
    const auto it = memo_.find(key);
    if (it == memo_.end()) fail("memo key ", key, " was never stored");
    return it->second;
  }

  // --- typed access to values
  template <typename T>
  const T& as(const PickleRef& v, std::string_view what, std::string_view expected) const {
    const T* p = std::get_if<T>(&v->value);
    if (p == nullptr) fail(what, " is of type ", pickle_kind(*v), ", expected ", expected);
    return *p;
  }
  std::string string_of(const PickleRef& v, std::string_view what) const { return as<std::string>(v, what, "str"); }
  int64_t int_of(const PickleRef& v, std::string_view what) const { return as<int64_t>(v, what, "int"); }
  std::vector<int64_t> ints_of(const PickleRef& v, std::string_view what) const {
    std::vector<int64_t> out;
    for (const PickleRef& item : as<PickleTuple>(v, what, "tuple").items) {
      out.push_back(int_of(item, what));
      if (out.back() < 0) fail(what, " holds a negative value");
    }
    return out;
  }

  // --- the globals a state dict uses, and what calling them means
  PickleGlobal recognised_global(std::string module, std::string name) const {
    PickleGlobal g{std::move(module), std::move(name)};
    if (is_global(g, "collections", "OrderedDict") || is_global(g, "torch._utils", "_rebuild_tensor_v2") ||
        is_global(g, "torch._utils", "_rebuild_parameter") || storage_dtype(g)) {
      return g;
    }
    if (g.module == "torch" && g.name.ends_with("Storage")) {
      std::string supported;
      for (const auto& t : kStorageTypes) supported += concat(supported.empty() ? "" : ", ", t.name);
      throw_error("unsupported tensor storage type torch.", g.name, " in ", source_, " (supported: ", supported, ")");
    }
    throw_error("unsupported pickle global ", g.module, ".", g.name, " in ", source_,
                ": kiln reads state dicts only; no code is executed");
  }

  PickleRef call(const PickleRef& callable, const PickleRef& args_ref) {
    const PickleGlobal& f = as<PickleGlobal>(callable, "the callable of REDUCE", "global");
    const auto& args = as<PickleTuple>(args_ref, concat("the arguments of ", f.module, ".", f.name), "tuple").items;
    if (is_global(f, "collections", "OrderedDict")) {
      if (!args.empty()) fail("collections.OrderedDict called with arguments");
      return make_value(PickleDict{});
    }
    if (is_global(f, "torch._utils", "_rebuild_tensor_v2")) return rebuild_tensor(args);
    if (is_global(f, "torch._utils", "_rebuild_parameter")) {
      // (data, requires_grad, backward_hooks): a Parameter is its tensor to kiln.
      if (args.size() != 3) fail("torch._utils._rebuild_parameter takes 3 arguments, got ", args.size());
      as<TorchTensorRef>(args[0], "the data of a parameter", "tensor");
      return args[0];
    }
    fail("cannot call ", f.module, ".", f.name);
  }

  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  PickleRef rebuild_tensor(const std::vector<PickleRef>& args) const {
    if (args.size() != 6 && args.size() != 7) {
      fail("torch._utils._rebuild_tensor_v2 takes 6 or 7 arguments, got ", args.size());
    }
    TorchTensorRef tensor;
    tensor.storage = as<TorchStorageRef>(args[0], "the storage of a tensor", "storage");
    tensor.storage_offset = int_of(args[1], "the storage offset of a tensor");
    if (tensor.storage_offset < 0) fail("negative storage offset");
    tensor.size = ints_of(args[2], "the size of a tensor");
    tensor.stride = ints_of(args[3], "the stride of a tensor");
    if (tensor.size.size() != tensor.stride.size()) {
      fail("tensor size ", shape_str(tensor.size), " and stride ", shape_str(tensor.stride), " differ in rank");
    }
    return make_value(std::move(tensor));
  }

  PickleRef instantiate(const PickleRef& cls) const {
    const PickleGlobal& c = as<PickleGlobal>(cls, "the class of NEWOBJ", "global");
    if (!is_global(c, "collections", "OrderedDict")) fail("cannot instantiate ", c.module, ".", c.name);
    return make_value(PickleDict{});
  }

  // ('storage', storage_type, key, location, numel): torch's reference to data/<key>.
  PickleRef persistent_load(const PickleRef& pid_ref) const {
    const auto& pid = as<PickleTuple>(pid_ref, "a persistent id", "tuple").items;
    if (pid.size() != 5 || string_of(pid[0], "the persistent id tag") != "storage") {
      fail("unsupported persistent id (expected ('storage', type, key, location, numel))");
    }
    const PickleGlobal& type = as<PickleGlobal>(pid[1], "the storage type", "global");
    const auto dtype = storage_dtype(type);
    if (!dtype) fail(type.module, ".", type.name, " is not a storage type");
    return make_value(TorchStorageRef{*dtype, string_of(pid[2], "the storage key")});
  }

  std::span<const std::byte> bytes_;
  const std::string& source_;
  std::size_t pos_ = 0;
  std::size_t opcode_pos_ = 0;
  std::vector<PickleRef> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<uint64_t, PickleRef> memo_;
  // Held, not just pointed at: a freed container's address could come back as a new, unsealed one.
  std::unordered_set<PickleRef> sealed_;
};

}  // namespace

std::string_view pickle_kind(const PickleValue& v) {
  static constexpr std::string_view kNames[] = {"None", "bool", "int",    "float",   "str",   "tuple",
                                                "list", "dict", "global", "storage", "tensor"};
  static_assert(std::size(kNames) == std::variant_size_v<decltype(PickleValue::value)>);
  return kNames[v.value.index()];
}

PickleRef read_pickle(std::span<const std::byte> bytes, const std::string& source) {
  return Unpickler(bytes, source).run();
}

}  // namespace kiln::checkpoint
