#include "importers/torchscript/torchscript_archive.h"

#include <zip.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <memory>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

namespace edgeopt::torchscript {
namespace {

struct ZipCloser {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipCloser>;

ZipPtr open_zip(const std::string& path) {
  int code = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_RDONLY, &code);
  if (archive == nullptr) {
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    std::string why = zip_error_strerror(&error);
    zip_error_fini(&error);
    fail(ErrorCode::kCorruptFile, "'" + path + "' is not a readable ZIP archive: " + why,
         "the file may be truncated; save or download it again");
  }
  return ZipPtr(archive);
}

std::string entry_bytes(zip_t* archive, zip_int64_t index, const zip_stat_t& st, const std::string& source) {
  std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> file(zip_fopen_index(archive, static_cast<zip_uint64_t>(index), 0), zip_fclose);
  if (!file) fail(ErrorCode::kCorruptFile, source + ": cannot open entry '" + st.name + "'", "the file may be truncated; save it again");
  std::string bytes(static_cast<std::size_t>(st.size), '\0');
  const zip_int64_t got = bytes.empty() ? 0 : zip_fread(file.get(), bytes.data(), bytes.size());
  if (got != static_cast<zip_int64_t>(bytes.size())) {
    fail(ErrorCode::kCorruptFile, source + ": entry '" + std::string(st.name) + "' is damaged (short or failed read)",
         "the file may be truncated; save it again");
  }
  return bytes;
}

// ---- a pickle walker: follows the opcodes TorchScript's pickler writes, builds plain values,
// calls nothing. REDUCE of torch._utils._rebuild_tensor_v2 is where a tensor meets its storage.
struct PValue {
  enum class Kind { kNone, kInt, kFloat, kBool, kStr, kTuple, kList, kDict, kGlobal, kStorage, kObject, kMark };
  Kind kind = Kind::kNone;
  std::int64_t i = 0;
  std::string s;  // str, global "module.name", storage key
  std::shared_ptr<std::vector<PValue>> items;
  std::int64_t storage_bytes = 0;
  std::int64_t element_size = 0;
};

std::int64_t element_size_of(const std::string& storage_type) {
  static const std::map<std::string, std::int64_t> sizes = {
      {"torch.FloatStorage", 4}, {"torch.DoubleStorage", 8}, {"torch.HalfStorage", 2}, {"torch.BFloat16Storage", 2},
      {"torch.LongStorage", 8}, {"torch.IntStorage", 4}, {"torch.ShortStorage", 2}, {"torch.CharStorage", 1},
      {"torch.ByteStorage", 1}, {"torch.BoolStorage", 1}, {"torch.QInt8Storage", 1}, {"torch.QUInt8Storage", 1},
      {"torch.QInt32Storage", 4}, {"torch.QUInt4x2Storage", 1}, {"torch.ComplexFloatStorage", 8},
      {"torch.ComplexDoubleStorage", 16}};
  const auto it = sizes.find(storage_type);
  return it == sizes.end() ? 0 : it->second;
}

class PickleWalker {
 public:
  PickleWalker(std::string_view bytes, std::string where, std::string data_dir, const std::map<std::string, std::uint64_t>& entries,
               std::uint64_t* storage_total, std::uint64_t max_storage)
      : b_(bytes), where_(std::move(where)), data_dir_(std::move(data_dir)), entries_(entries), storage_total_(storage_total), max_storage_(max_storage) {}

  void run() {
    while (true) {
      const unsigned char op = byte();
      switch (op) {
        case 0x80: byte(); break;                  // PROTO
        case 0x95: take(8); break;                 // FRAME
        case '.': return;                           // STOP
        case '(': push(mark()); break;              // MARK
        case 'N': push({}); break;
        case 0x88: case 0x89: { PValue v; v.kind = PValue::Kind::kBool; v.i = op == 0x88; push(v); break; }
        case 'J': push(integer(static_cast<std::int32_t>(le(4)))); break;
        case 'K': push(integer(static_cast<std::int64_t>(le(1)))); break;
        case 'M': push(integer(static_cast<std::int64_t>(le(2)))); break;
        case 0x8a: push(long_int(byte())); break;  // LONG1
        case 0x8b: push(long_int(le(4))); break;   // LONG4
        case 'G': { take(8); PValue v; v.kind = PValue::Kind::kFloat; push(v); break; }
        case 'X': push(str(take(le(4)))); break;             // BINUNICODE
        case 0x8c: push(str(take(byte()))); break;           // SHORT_BINUNICODE
        case 0x8d: push(str(take(le(8)))); break;            // BINUNICODE8
        case 'T': push(str(take(le(4)))); break;             // BINSTRING
        case 'U': push(str(take(byte()))); break;            // SHORT_BINSTRING
        case 'B': push(str(take(le(4)))); break;             // BINBYTES
        case 'C': push(str(take(byte()))); break;            // SHORT_BINBYTES
        case 0x8e: push(str(take(le(8)))); break;            // BINBYTES8
        case 'c': {                                          // GLOBAL module\nname\n
          std::string module = line(), name = line();
          PValue v; v.kind = PValue::Kind::kGlobal; v.s = module + "." + name; push(v); break;
        }
        case 0x93: {                                         // STACK_GLOBAL
          PValue name = pop(), module = pop();
          PValue v; v.kind = PValue::Kind::kGlobal; v.s = module.s + "." + name.s; push(v); break;
        }
        case ')': push(sequence(PValue::Kind::kTuple, {})); break;
        case 0x85: case 0x86: case 0x87: {                   // TUPLE1..3
          std::vector<PValue> items(op - 0x84);
          for (auto it = items.rbegin(); it != items.rend(); ++it) *it = pop();
          push(sequence(PValue::Kind::kTuple, std::move(items))); break;
        }
        case 't': push(sequence(PValue::Kind::kTuple, pop_to_mark())); break;
        case ']': push(sequence(PValue::Kind::kList, {})); break;
        case 'l': push(sequence(PValue::Kind::kList, pop_to_mark())); break;
        case 'a': { PValue v = pop(); list_top().push_back(std::move(v)); break; }
        case 'e': { std::vector<PValue> v = pop_to_mark(); for (auto& x : v) list_top().push_back(std::move(x)); break; }
        case '}': push(sequence(PValue::Kind::kDict, {})); break;
        case 'd': push(sequence(PValue::Kind::kDict, pop_to_mark())); break;
        case 's': { PValue v = pop(), k = pop(); top(); break; }
        case 'u': pop_to_mark(); top(); break;
        case 'q': memo_[le(1)] = top(); break;               // BINPUT
        case 'r': memo_[le(4)] = top(); break;               // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(); break;       // MEMOIZE
        case 'h': push(get(le(1))); break;                   // BINGET
        case 'j': push(get(le(4))); break;                   // LONG_BINGET
        case '0': pop(); break;
        case '2': push(top()); break;
        case '1': pop_to_mark(); break;
        case 'Q': push(storage(pop())); break;               // BINPERSID
        case 'R': { PValue args = pop(), callable = pop(); push(reduce(callable, args)); break; }
        case 0x81: { pop(); pop(); PValue v; v.kind = PValue::Kind::kObject; push(v); break; }  // NEWOBJ
        case 'b': pop(); top(); break;                       // BUILD
        default:
          bad("holds pickle opcode 0x" + hex(op) + ", which TorchScript never writes");
      }
      if (++steps_ > 50'000'000 || stack_.size() > 10'000'000) bad("is too large a pickle");
    }
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    fail(ErrorCode::kCorruptFile, where_ + " " + what + "; the archive is damaged or crafted",
         "save the model again with torch.jit.save(torch.jit.script(model.eval()), \"model.pt\")");
  }
  static std::string hex(unsigned v) {
    const char* digits = "0123456789abcdef";
    return std::string{digits[(v >> 4) & 15], digits[v & 15]};
  }
  std::string_view take(std::uint64_t n) {
    if (n > b_.size() - at_) bad("ends in the middle of a value");
    std::string_view v = b_.substr(at_, static_cast<std::size_t>(n));
    at_ += static_cast<std::size_t>(n);
    return v;
  }
  unsigned char byte() { return static_cast<unsigned char>(take(1)[0]); }
  std::uint64_t le(int n) {
    const std::string_view v = take(static_cast<std::uint64_t>(n));
    std::uint64_t x = 0;
    for (int k = n - 1; k >= 0; --k) x = (x << 8) | static_cast<unsigned char>(v[static_cast<std::size_t>(k)]);
    return x;
  }
  std::string line() {
    const std::size_t end = b_.find('\n', at_);
    if (end == std::string_view::npos || end - at_ > 4096) bad("has an unterminated GLOBAL");
    std::string v(b_.substr(at_, end - at_));
    at_ = end + 1;
    return v;
  }
  static PValue integer(std::int64_t v) { PValue p; p.kind = PValue::Kind::kInt; p.i = v; return p; }
  PValue long_int(std::uint64_t n) {
    const std::string_view v = take(n);
    if (n > 8) bad("holds an integer wider than 64 bits");
    std::uint64_t x = 0;
    for (std::size_t k = v.size(); k-- > 0;) x = (x << 8) | static_cast<unsigned char>(v[k]);
    if (n > 0 && n < 8 && (static_cast<unsigned char>(v[n - 1]) & 0x80)) x |= ~0ULL << (8 * n);  // sign extension
    return integer(static_cast<std::int64_t>(x));
  }
  static PValue str(std::string_view v) { PValue p; p.kind = PValue::Kind::kStr; p.s = v; return p; }
  static PValue mark() { PValue p; p.kind = PValue::Kind::kMark; return p; }
  static PValue sequence(PValue::Kind kind, std::vector<PValue> items) {
    PValue p; p.kind = kind; p.items = std::make_shared<std::vector<PValue>>(std::move(items)); return p;
  }
  void push(PValue v) { stack_.push_back(std::move(v)); }
  PValue pop() {
    if (stack_.empty() || stack_.back().kind == PValue::Kind::kMark) bad("pops an empty pickle stack");
    PValue v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  PValue& top() {
    if (stack_.empty() || stack_.back().kind == PValue::Kind::kMark) bad("reads an empty pickle stack");
    if (!stack_.back().items && (stack_.back().kind == PValue::Kind::kList || stack_.back().kind == PValue::Kind::kDict)) bad("is inconsistent");
    return stack_.back();
  }
  // APPEND and APPENDS add to a list; anything else under them is a crafted pickle.
  std::vector<PValue>& list_top() {
    PValue& t = top();
    if (t.kind != PValue::Kind::kList || !t.items) bad("appends to something that is not a list");
    return *t.items;
  }
  std::vector<PValue> pop_to_mark() {
    std::vector<PValue> items;
    while (!stack_.empty() && stack_.back().kind != PValue::Kind::kMark) {
      items.push_back(std::move(stack_.back()));
      stack_.pop_back();
    }
    if (stack_.empty()) bad("closes a MARK it never opened");
    stack_.pop_back();
    std::reverse(items.begin(), items.end());
    return items;
  }
  PValue get(std::uint64_t key) {
    const auto it = memo_.find(key);
    if (it == memo_.end()) bad("reads a memo slot it never wrote");
    return it->second;
  }
  // ('storage', torch.FloatStorage, key, location, numel): the entry data/<key> must hold
  // exactly numel elements.
  PValue storage(const PValue& pid) {
    const auto* t = pid.items.get();
    if (pid.kind != PValue::Kind::kTuple || !t || t->size() != 5 || (*t)[0].s != "storage" || (*t)[1].kind != PValue::Kind::kGlobal ||
        (*t)[2].kind != PValue::Kind::kStr || (*t)[4].kind != PValue::Kind::kInt) {
      bad("names a persistent object that is not a tensor storage");
    }
    const std::int64_t element = element_size_of((*t)[1].s);
    if (element == 0) bad("names an unknown storage type '" + (*t)[1].s + "'");
    const std::int64_t numel = (*t)[4].i;
    if (numel < 0 || numel > (std::int64_t{1} << 40)) bad("declares a storage of " + std::to_string(numel) + " elements");
    const std::string entry = data_dir_ + (*t)[2].s;
    const auto it = entries_.find(entry);
    if (it == entries_.end()) bad("names storage '" + (*t)[2].s + "', which has no entry " + entry);
    const std::uint64_t want = static_cast<std::uint64_t>(numel * element);
    if (it->second != want) {
      bad("declares storage " + entry + " as " + std::to_string(want) + " bytes (" + std::to_string(numel) + " elements), but the entry holds " +
          std::to_string(it->second));
    }
    if (seen_.insert(entry).second) {
      *storage_total_ += want;
      if (*storage_total_ > max_storage_) bad("holds more tensor data than the limit of " + std::to_string(max_storage_ >> 20) + " MiB");
    }
    PValue v;
    v.kind = PValue::Kind::kStorage;
    v.s = entry;
    v.storage_bytes = static_cast<std::int64_t>(want);
    v.element_size = element;
    return v;
  }
  PValue reduce(const PValue& callable, const PValue& args) {
    if (callable.kind == PValue::Kind::kGlobal &&
        (callable.s == "torch._utils._rebuild_tensor_v2" || callable.s == "torch._utils._rebuild_tensor" || callable.s == "torch._utils._rebuild_qtensor")) {
      check_tensor(args);
    }
    PValue v;
    v.kind = PValue::Kind::kObject;
    return v;
  }
  // (storage, storage_offset, size, stride, ...): the last element a view reaches must lie
  // inside its storage, or LibTorch would read past it.
  void check_tensor(const PValue& args) {
    const auto* a = args.items.get();
    if (args.kind != PValue::Kind::kTuple || !a || a->size() < 4 || (*a)[0].kind != PValue::Kind::kStorage || (*a)[1].kind != PValue::Kind::kInt ||
        (*a)[2].kind != PValue::Kind::kTuple || (*a)[3].kind != PValue::Kind::kTuple || (*a)[2].items->size() != (*a)[3].items->size()) {
      bad("builds a tensor from arguments TorchScript never writes");
    }
    const PValue& st = (*a)[0];
    const std::int64_t offset = (*a)[1].i;
    if (offset < 0) bad("builds a tensor at a negative storage offset");
    unsigned __int128 last = static_cast<unsigned __int128>(offset);
    bool empty = false;
    for (std::size_t d = 0; d < (*a)[2].items->size(); ++d) {
      const PValue& size = (*(*a)[2].items)[d];
      const PValue& stride = (*(*a)[3].items)[d];
      if (size.kind != PValue::Kind::kInt || stride.kind != PValue::Kind::kInt || size.i < 0 || stride.i < 0 || size.i > (std::int64_t{1} << 40)) {
        bad("builds a tensor with a negative or non-integer size or stride");
      }
      if (size.i == 0) empty = true;
      else last += static_cast<unsigned __int128>(size.i - 1) * static_cast<unsigned __int128>(stride.i);
    }
    if (empty) return;
    const unsigned __int128 end_bytes = (last + 1) * static_cast<unsigned __int128>(st.element_size);
    if (end_bytes > static_cast<unsigned __int128>(st.storage_bytes)) {
      bad("builds a tensor that reaches past the end of its storage " + st.s + " (" + std::to_string(st.storage_bytes) + " bytes)");
    }
  }

  std::string_view b_;
  std::size_t at_ = 0;
  std::string where_, data_dir_;
  const std::map<std::string, std::uint64_t>& entries_;
  std::uint64_t* storage_total_;
  std::uint64_t max_storage_;
  std::vector<PValue> stack_;
  std::map<std::uint64_t, PValue> memo_;
  std::set<std::string> seen_;
  std::uint64_t steps_ = 0;
};

// Methods in code/: `def name(` indented inside a class. LibTorch runs __setstate__ while it
// loads; anything else runs only when called, so every method must be forward or called.
void check_code(const std::string& code, const std::string& source) {
  static const std::regex method(R"(\n([ \t]+)def\s+(\w+)\s*\()");
  static const std::set<std::string> harmless = {"forward", "__len__", "__contains__", "__getitem__", "__iter__"};
  for (auto it = std::sregex_iterator(code.begin(), code.end(), method); it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[2];
    if (name == "__setstate__" || name == "__getstate__") {
      fail(ErrorCode::kUnsupportedFormat,
           source + ": a class in the archive defines " + name + "(); LibTorch runs a class's __setstate__() while it loads the file, and EdgeOpt never runs a model's own code",
           "export the model to ONNX instead: torch.onnx.export(model.eval(), torch.randn(1, 3, 224, 224), \"model.onnx\", opset_version=13)");
    }
    // forward__0, forward__1, ...: the compiled overloads of forward (torch.jit._overload_method).
    static const std::regex overload(R"(forward__\d+)");
    if (harmless.count(name) == 0 && !std::regex_match(name, overload) && code.find("." + name + "(") == std::string::npos) {
      fail(ErrorCode::kUnsupportedFormat,
           source + ": a class in the archive defines method " + name + "(), which forward() never calls; EdgeOpt reads only forward() and what it calls",
           "script only the model (torch.jit.script(model.eval())) without extra exported methods, or export ONNX: "
           "torch.onnx.export(model.eval(), torch.randn(1, 3, 224, 224), \"model.onnx\", opset_version=13)");
    }
  }
}

Status check_archive_zip(zip_t* archive, const std::string& source, std::uint64_t max_storage_bytes) {
  return capture([&] {
    const zip_int64_t count = zip_get_num_entries(archive, 0);
    if (count > 1'000'000) fail(ErrorCode::kUnsafeArchive, source + ": the archive has " + std::to_string(count) + " entries");
    std::map<std::string, std::uint64_t> sizes;
    std::map<std::string, zip_int64_t> index;
    for (zip_int64_t i = 0; i < count; ++i) {
      zip_stat_t st;
      zip_stat_init(&st);
      if (zip_stat_index(archive, static_cast<zip_uint64_t>(i), 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME) || !(st.valid & ZIP_STAT_SIZE)) {
        fail(ErrorCode::kCorruptFile, source + ": entry " + std::to_string(i) + " of the archive is unreadable", "save the model again");
      }
      const std::uint64_t compressed = (st.valid & ZIP_STAT_COMP_SIZE) ? st.comp_size : st.size;
      if (st.size > (16ULL << 20) && st.size / std::max<std::uint64_t>(compressed, 1) > 100) {
        fail(ErrorCode::kUnsafeArchive,
             source + ": entry '" + std::string(st.name) + "' inflates from " + std::to_string(compressed) + " to " + std::to_string(st.size) + " bytes (a ZIP bomb)",
             "PyTorch stores tensor data uncompressed; save the model again with torch.jit.save");
      }
      // Two ZIP readers (libzip here, miniz in LibTorch) must never see different files.
      if (!sizes.emplace(st.name, st.size).second) {
        fail(ErrorCode::kUnsafeArchive, source + ": the archive holds two entries named '" + std::string(st.name) + "'", "save the model again with torch.jit.save");
      }
      index[st.name] = i;
    }
    auto bytes_of = [&](const std::string& name) {
      zip_stat_t st;
      zip_stat_init(&st);
      zip_stat_index(archive, static_cast<zip_uint64_t>(index[name]), 0, &st);
      return entry_bytes(archive, index[name], st, source);
    };
    // Every top folder is checked, not only the one we would pick: LibTorch picks its own.
    std::uint64_t code_total = 0, storage_total = 0;
    for (const auto& [name, size] : sizes) {
      const auto slash = name.find('/');
      if (slash == std::string::npos) continue;
      const std::string root = name.substr(0, slash), rest = name.substr(slash + 1);
      if (rest.rfind("code/", 0) == 0 && rest.size() > 3 && rest.compare(rest.size() - 3, 3, ".py") == 0) {
        code_total += size;
        if (code_total > (256ULL << 20)) fail(ErrorCode::kUnsafeArchive, source + ": the archive's code is larger than 256 MiB");
        check_code("\n" + bytes_of(name), source);
      } else if (rest == "data.pkl" || rest == "constants.pkl") {
        if (size > (256ULL << 20)) fail(ErrorCode::kUnsafeArchive, source + ": " + name + " is larger than 256 MiB");
        const std::string dir = root + "/" + (rest == "data.pkl" ? "data/" : "constants/");
        PickleWalker(bytes_of(name), source + ": " + name, dir, sizes, &storage_total, max_storage_bytes).run();
      }
    }
    return Unit{};
  });
}

}  // namespace

Result<std::vector<std::string>> zip_entry_names(const std::string& path) {
  return capture([&] {
    ZipPtr archive = open_zip(path);
    const zip_int64_t count = zip_get_num_entries(archive.get(), 0);
    std::vector<std::string> names;
    for (zip_int64_t i = 0; i < count; ++i) {
      const char* name = zip_get_name(archive.get(), static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW);
      if (name != nullptr) names.emplace_back(name);
    }
    return names;
  });
}

Result<std::string> read_zip_entry(const std::string& path, const std::string& entry, std::size_t max_bytes) {
  return capture([&] {
    ZipPtr archive = open_zip(path);
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat(archive.get(), entry.c_str(), 0, &stat) != 0 || (stat.valid & ZIP_STAT_SIZE) == 0) {
      fail(ErrorCode::kNotFound, "'" + path + "' has no entry '" + entry + "'");
    }
    if (stat.size > max_bytes) {
      fail(ErrorCode::kCorruptFile, "entry '" + entry + "' of '" + path + "' is " + std::to_string(stat.size) +
                                        " bytes; at most " + std::to_string(max_bytes) + " are expected");
    }
    std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> file(zip_fopen(archive.get(), entry.c_str(), 0), zip_fclose);
    if (!file) fail(ErrorCode::kCorruptFile, "cannot open entry '" + entry + "' of '" + path + "'");
    std::string bytes(static_cast<std::size_t>(stat.size), '\0');
    const zip_int64_t got = bytes.empty() ? 0 : zip_fread(file.get(), bytes.data(), bytes.size());
    if (got != static_cast<zip_int64_t>(bytes.size())) {
      fail(ErrorCode::kCorruptFile, "entry '" + entry + "' of '" + path + "' is damaged (short or failed read)",
           "the file may be truncated; save or download it again");
    }
    return bytes;
  });
}

Result<ArchiveInfo> read_archive_info(const std::string& path) {
  Result<std::vector<std::string>> names = zip_entry_names(path);
  if (!names) return names.error();
  ArchiveInfo info;
  // PyTorch puts every entry under one top folder; its name is free (the file's stem by default).
  for (const std::string& name : names.value()) {
    const auto slash = name.find('/');
    if (slash == std::string::npos || slash == 0) continue;
    const std::string root = name.substr(0, slash);
    const std::string rest = name.substr(slash + 1);
    if (rest == "data.pkl" || rest == "version" || rest == "constants.pkl" || rest.rfind("code/", 0) == 0) {
      if (info.root.empty()) info.root = root;
      if (root != info.root) continue;
      info.has_code = info.has_code || rest.rfind("code/", 0) == 0;
      info.has_constants = info.has_constants || rest == "constants.pkl";
      info.has_data_pickle = info.has_data_pickle || rest == "data.pkl";
    }
  }
  if (info.root.empty()) return info;
  const auto& all = names.value();
  auto has = [&](const std::string& entry) { return std::find(all.begin(), all.end(), entry) != all.end(); };
  if (has(info.root + "/version")) {
    Result<std::string> text = read_zip_entry(path, info.root + "/version", 64);
    if (!text) return text.error();
    std::string digits;
    for (char c : text.value()) {
      if (std::isdigit(static_cast<unsigned char>(c)))
        digits += c;
      else if (!std::isspace(static_cast<unsigned char>(c))) {
        digits.clear();
        break;
      }
    }
    if (!digits.empty() && digits.size() < 18) info.file_format_version = std::stoll(digits);
  }
  if (has(info.root + "/extra/edgeopt.json")) {
    Result<std::string> text = read_zip_entry(path, info.root + "/extra/edgeopt.json", 64 * 1024);
    if (!text) return text.error();
    info.edgeopt_json = text.value();
  }
  return info;
}

Status check_archive(const std::string& path, std::uint64_t max_storage_bytes) {
  Result<ZipPtr> archive = capture([&] { return open_zip(path); });
  if (!archive) return archive.error();
  return check_archive_zip(archive->get(), "'" + path + "'", max_storage_bytes);
}

Status check_archive_bytes(std::string_view zip_bytes, const std::string& source, std::uint64_t max_storage_bytes) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* zip_source = zip_source_buffer_create(zip_bytes.data(), zip_bytes.size(), 0, &error);
  zip_t* archive = zip_source ? zip_open_from_source(zip_source, ZIP_RDONLY, &error) : nullptr;
  zip_error_fini(&error);
  if (!archive) {
    if (zip_source) zip_source_free(zip_source);
    return Error{ErrorCode::kCorruptFile, source + ": not a readable ZIP archive", "the file may be truncated; save or download it again"};
  }
  ZipPtr owned(archive);
  return check_archive_zip(archive, source, max_storage_bytes);
}

Result<std::vector<std::int64_t>> parse_edgeopt_extra(const std::string& json_text, const std::string& source) {
  const std::string hint =
      "write it as torch.jit.save(m, path, _extra_files={\"edgeopt.json\": '{\"input_shape\": [1, 3, 224, 224]}'})";
  const nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Error{ErrorCode::kCorruptFile, source + ": extra/edgeopt.json is not a JSON object", hint};
  }
  const auto it = doc.find("input_shape");
  if (it == doc.end() || !it->is_array() || it->empty() || it->size() > 8) {
    return Error{ErrorCode::kCorruptFile, source + ": extra/edgeopt.json has no \"input_shape\" list of 1 to 8 sizes",
                 hint};
  }
  std::vector<std::int64_t> shape;
  for (const auto& dim : *it) {
    if (!dim.is_number_integer() || dim.get<std::int64_t>() <= 0 || dim.get<std::int64_t>() > (1 << 20)) {
      return Error{ErrorCode::kCorruptFile, source + ": extra/edgeopt.json \"input_shape\" must hold positive integers",
                   hint};
    }
    shape.push_back(dim.get<std::int64_t>());
  }
  return shape;
}

}  // namespace edgeopt::torchscript
