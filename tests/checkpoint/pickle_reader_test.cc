#include "checkpoint/pickle_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "checkpoint_test_support.h"
#include "core/error.h"

namespace kiln::checkpoint {
namespace {

using ::testing::HasSubstr;
using testing::PickleWriter;

PickleRef read(const std::string& bytes) {
  return read_pickle(std::as_bytes(std::span(bytes.data(), bytes.size())), "test.pkl");
}

std::string read_error(const std::string& bytes) {
  try {
    read(bytes);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

template <typename T>
const T& as(const PickleRef& v) {
  const T* p = std::get_if<T>(&v->value);
  if (p == nullptr) throw std::runtime_error("unexpected " + std::string(pickle_kind(*v)));
  return *p;
}

TEST(PickleReader, ReadsScalarsStringsAndContainers) {
  PickleWriter p;
  p.proto(4).op(0x95).op(0).op(0).op(0).op(0).op(0).op(0).op(0).op(0);  // FRAME of 0 bytes
  p.op(']').op(0x94);                                                   // EMPTY_LIST, MEMOIZE (0)
  p.mark();
  p.int1(200).op('M').op(0x34).op(0x12).int4(-5);                                            // BININT1, BININT2, BININT
  p.op(0x8a).op(2).op(0x00).op(0x80);                                                        // LONG1 -32768
  p.op(0x8a).op(8).op(0xff).op(0xff).op(0xff).op(0xff).op(0xff).op(0xff).op(0xff).op(0x7f);  // LONG1 int64 max
  p.op(0x8a).op(0);                                                                          // LONG1 0
  p.op('G').op(0x3f).op(0xf8).op(0).op(0).op(0).op(0).op(0).op(0);     // BINFLOAT 1.5 (big-endian)
  p.op(0x88).op(0x89).op('N');                                         // True, False, None
  p.op(0x8c).op(2).op('h').op('i').put(1);                             // SHORT_BINUNICODE, BINPUT 1
  p.op(0x8d).op(1).op(0).op(0).op(0).op(0).op(0).op(0).op(0).op('z');  // BINUNICODE8
  p.op('U').op(1).op('s');                                             // SHORT_BINSTRING
  p.op('T').op(2).op(0).op(0).op(0).op('o').op('k');                   // BINSTRING
  p.op('e');                                                           // APPENDS
  p.int1(1).int1(2).op(0x86).op('a');                                  // (1, 2) APPEND
  p.int1(3).op(0x85).op('a');                                          // (3,) APPEND
  p.int1(1).int1(2).int1(3).op(0x87).op('a');                          // (1, 2, 3) APPEND
  p.mark().int1(4).int1(5).op('l').op('a');                            // LIST [4, 5] APPEND
  p.mark().unicode("k").int1(6).op('d').op('a');                       // DICT {"k": 6} APPEND
  p.op('}').unicode("x").op('N').op('s').op('a');                      // {"x": None} via SETITEM, APPEND
  p.get(1).op('a');                                                    // BINGET 1: the same "hi"
  p.stop();

  const PickleRef root = read(p.bytes());
  const auto& items = as<PickleList>(root).items;
  ASSERT_EQ(items.size(), 21u);
  EXPECT_EQ(as<int64_t>(items[0]), 200);
  EXPECT_EQ(as<int64_t>(items[1]), 0x1234);
  EXPECT_EQ(as<int64_t>(items[2]), -5);
  EXPECT_EQ(as<int64_t>(items[3]), -32768);
  EXPECT_EQ(as<int64_t>(items[4]), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(as<int64_t>(items[5]), 0);
  EXPECT_EQ(as<double>(items[6]), 1.5);
  EXPECT_TRUE(as<bool>(items[7]));
  EXPECT_FALSE(as<bool>(items[8]));
  EXPECT_EQ(pickle_kind(*items[9]), "None");
  EXPECT_EQ(as<std::string>(items[10]), "hi");
  EXPECT_EQ(as<std::string>(items[11]), "z");
  EXPECT_EQ(as<std::string>(items[12]), "s");
  EXPECT_EQ(as<std::string>(items[13]), "ok");
  EXPECT_EQ(as<PickleTuple>(items[14]).items.size(), 2u);
  EXPECT_EQ(as<int64_t>(as<PickleTuple>(items[14]).items[1]), 2);
  EXPECT_EQ(as<PickleTuple>(items[15]).items.size(), 1u);
  EXPECT_EQ(as<PickleTuple>(items[16]).items.size(), 3u);
  EXPECT_EQ(as<int64_t>(as<PickleList>(items[17]).items[1]), 5);
  const auto& dict = as<PickleDict>(items[18]).items;
  ASSERT_EQ(dict.size(), 1u);
  EXPECT_EQ(as<std::string>(dict[0].first), "k");
  EXPECT_EQ(as<int64_t>(dict[0].second), 6);
  EXPECT_EQ(pickle_kind(*as<PickleDict>(items[19]).items[0].second), "None");
  EXPECT_EQ(items[20], items[10]);  // the memo hands back the same object
}

// The opcodes torch.save emits for {"w": tensor} with an OrderedDict root,
// a parameter wrapper, memoized globals and BUILD with module metadata.
TEST(PickleReader, ReadsAStateDictAsTorchWritesIt) {
  PickleWriter p;
  p.proto(2).global("collections", "OrderedDict").put(0).op(')').op('R').put(1);
  p.mark();
  p.unicode("w").global("torch._utils", "_rebuild_parameter").mark();
  p.tensor("BFloat16Storage", "7", 24, 4, {2, 3}, {1, 2});
  p.op(0x88).get(0).op(')').op('R').op('t').op('R');  // (tensor, True, OrderedDict()) -> parameter
  p.unicode("n");
  p.tensor("LongStorage", "8", 1, 0, {}, {});
  p.op('u');                                             // SETITEMS
  p.op('}').unicode("version").int1(1).op('s').op('b');  // BUILD with a state dict: ignored
  p.stop();

  const PickleRef root = read(p.bytes());
  const auto& items = as<PickleDict>(root).items;
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(as<std::string>(items[0].first), "w");
  const auto& w = as<TorchTensorRef>(items[0].second);
  EXPECT_EQ(w.storage.dtype, DType::bf16);
  EXPECT_EQ(w.storage.key, "7");
  EXPECT_EQ(w.storage_offset, 4);
  EXPECT_EQ(w.size, (Shape{2, 3}));
  EXPECT_EQ(w.stride, (std::vector<int64_t>{1, 2}));
  const auto& n = as<TorchTensorRef>(items[1].second);
  EXPECT_EQ(n.storage.dtype, DType::i64);
  EXPECT_TRUE(n.size.empty());
}

TEST(PickleReader, MapsEveryStorageTypeToItsDtype) {
  const std::pair<std::string, DType> types[] = {
      {"DoubleStorage", DType::f64},    {"FloatStorage", DType::f32}, {"HalfStorage", DType::f16},
      {"BFloat16Storage", DType::bf16}, {"LongStorage", DType::i64},  {"IntStorage", DType::i32},
      {"CharStorage", DType::i8},       {"ByteStorage", DType::u8},   {"BoolStorage", DType::boolean},
  };
  for (const auto& [type, dtype] : types) {
    SCOPED_TRACE(type);
    const PickleRef tensor = read(PickleWriter().proto(2).tensor(type, "0", 1, 0, {1}, {1}).stop().bytes());
    EXPECT_EQ(as<TorchTensorRef>(tensor).storage.dtype, dtype);
  }
}

TEST(PickleReader, RefusesAnyOtherGlobal) {
  const std::string os_system = read_error(
      PickleWriter().proto(2).global("os", "system").mark().unicode("echo pwned").op('t').op('R').stop().bytes());
  EXPECT_THAT(os_system, HasSubstr("unsupported pickle global os.system in test.pkl"));
  EXPECT_THAT(os_system, HasSubstr("no code is executed"));

  // STACK_GLOBAL takes module and name from the stack.
  const std::string eval =
      read_error(PickleWriter().proto(4).unicode("builtins").unicode("eval").op(0x93).stop().bytes());
  EXPECT_THAT(eval, HasSubstr("unsupported pickle global builtins.eval in test.pkl"));

  // Recognised globals used in the wrong role are refused too.
  EXPECT_THAT(read_error(PickleWriter().proto(2).global("torch", "FloatStorage").op(')').op('R').stop().bytes()),
              HasSubstr("cannot call torch.FloatStorage"));
  EXPECT_THAT(
      read_error(PickleWriter().proto(2).global("torch._utils", "_rebuild_tensor_v2").op(')').op(0x81).stop().bytes()),
      HasSubstr("cannot instantiate torch._utils._rebuild_tensor_v2"));
}

TEST(PickleReader, RefusesStorageTypesKilnHasNoDtypeFor) {
  const std::string message = read_error(PickleWriter().proto(2).tensor("ShortStorage", "0", 1, 0, {1}, {1}).bytes());
  EXPECT_THAT(message, HasSubstr("unsupported tensor storage type torch.ShortStorage in test.pkl"));
  EXPECT_THAT(message, HasSubstr("HalfStorage"));
}

TEST(PickleReader, RejectsMalformedPickles) {
  EXPECT_THAT(read_error(PickleWriter().proto(2).op('}').bytes()), HasSubstr("test.pkl: truncated pickle (no STOP"));
  EXPECT_THAT(read_error(PickleWriter().proto(2).op('X').op(9).bytes()), HasSubstr("truncated pickle"));
  EXPECT_THAT(read_error(PickleWriter().proto(2).op('i').stop().bytes()), HasSubstr("unsupported pickle opcode 0x69"));
  EXPECT_THAT(read_error(PickleWriter().proto(6).stop().bytes()), HasSubstr("unsupported pickle protocol 6"));
  EXPECT_THAT(read_error(PickleWriter().proto(2).get(3).stop().bytes()), HasSubstr("memo key 3 was never stored"));
  EXPECT_THAT(read_error(PickleWriter().proto(2).op('t').stop().bytes()), HasSubstr("no MARK"));
  EXPECT_THAT(read_error(PickleWriter().proto(2).op('.').bytes()), HasSubstr("stack underflow"));
  EXPECT_THAT(read_error(PickleWriter().proto(2).int1(0).int1(1).int1(2).op('s').stop().bytes()),
              HasSubstr("SETITEM on a value of type int, not a dict"));
  EXPECT_THAT(read_error(PickleWriter().proto(2).op('}').mark().int1(1).op('u').stop().bytes()),
              HasSubstr("odd number of items"));
  // A persistent id that is not torch's storage tuple.
  EXPECT_THAT(read_error(PickleWriter().proto(2).mark().unicode("module").op('t').op('Q').stop().bytes()),
              HasSubstr("unsupported persistent id"));
  // _rebuild_tensor_v2 with a size and stride of different rank.
  const std::string rank = read_error(PickleWriter().proto(2).tensor("FloatStorage", "0", 4, 0, {2, 2}, {1}).bytes());
  EXPECT_THAT(rank, HasSubstr("tensor size [2, 2] and stride [1] differ in rank"));
}

// Found by pickle_reader_fuzz: a dict or list made to hold itself through the memo leaked (a shared_ptr cycle).
TEST(PickleReader, RefusesReferenceCycles) {
  // d = {}; d[1] = d
  EXPECT_THAT(read_error(PickleWriter().proto(2).op('}').put(0).int1(1).get(0).op('s').stop().bytes()),
              HasSubstr("a dict is added to itself"));
  // l = []; l.append([l]) -- l is stored in the inner list, then changed.
  EXPECT_THAT(read_error(PickleWriter().proto(2).op(']').put(0).mark().get(0).op('l').op('a').stop().bytes()),
              HasSubstr("a list is changed after it was stored in another container"));
  // t = ({},); t[0]['k'] = t
  EXPECT_THAT(
      read_error(PickleWriter().proto(2).op('}').put(1).op(0x85).put(0).get(1).int1(1).get(0).op('s').stop().bytes()),
      HasSubstr("changed after it was stored"));
  // Shared but acyclic references stay fine: [x, x] with x = {} filled first.
  const PickleRef shared = read(
      PickleWriter().proto(2).op(']').op('}').put(0).int1(1).int1(2).op('s').op('a').get(0).op('a').stop().bytes());
  EXPECT_EQ(std::get<PickleList>(shared->value).items.size(), 2u);
}

}  // namespace
}  // namespace kiln::checkpoint
