// Technique parameters by name: each technique lists the fields of its options struct that a user
// may change (`edgeopt techniques` shows them with their defaults; `edgeopt optimize --param
// ptq_int4.group_size=64` sets one), and gets a configured copy of itself from text values.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/error.h"

namespace edgeopt::techniques {

// A parameter as shown to users: its name, its value as text, what it does.
struct Param {
  std::string name;
  std::string value;
  std::string help;
};

// One settable field of an options struct `O`.
template <class O>
struct ParamField {
  std::string name;
  std::string help;
  std::function<std::string(const O&)> get;
  std::function<void(O&, const std::string&)> set;  // fails with a message on bad text
};

namespace params_detail {

std::string format_double(double v);
// Parses the whole of `text` or fails naming `what`; ranges are checked by the caller.
double parse_number(const std::string& text, const std::string& what, bool integer);
bool parse_bool(const std::string& text, const std::string& what);
std::vector<double> parse_list(const std::string& text, const std::string& what);

}  // namespace params_detail

// A field reached by `ref(options)` (a member, or a member of a nested struct), with numbers kept
// within [lo, hi]. T: int, std::int64_t, float, double, bool or std::vector<double> (comma-separated).
template <class O, class Ref>
ParamField<O> field(std::string name, Ref ref, std::string help, double lo = 0, double hi = 1e12) {
  using T = std::remove_reference_t<decltype(ref(std::declval<O&>()))>;
  ParamField<O> f;
  f.name = name;
  f.help = std::move(help);
  f.get = [ref](const O& o) -> std::string {
    const T& v = ref(const_cast<O&>(o));
    if constexpr (std::is_same_v<T, bool>) {
      return v ? "true" : "false";
    } else if constexpr (std::is_same_v<T, std::vector<double>>) {
      std::string s;
      for (double x : v) s += (s.empty() ? "" : ",") + params_detail::format_double(x);
      return s;
    } else if constexpr (std::is_integral_v<T>) {
      return std::to_string(v);
    } else {
      return params_detail::format_double(static_cast<double>(v));
    }
  };
  f.set = [ref, name, lo, hi](O& o, const std::string& text) {
    T& v = ref(o);
    auto in_range = [&](double x) {
      if (x < lo || x > hi) {
        fail(ErrorCode::kInvalidArgument, "parameter '" + name + "' = " + text + " is outside [" + params_detail::format_double(lo) + ", " +
                                              params_detail::format_double(hi) + "]");
      }
      return x;
    };
    if constexpr (std::is_same_v<T, bool>) {
      v = params_detail::parse_bool(text, name);
    } else if constexpr (std::is_same_v<T, std::vector<double>>) {
      std::vector<double> list = params_detail::parse_list(text, name);
      for (double x : list) in_range(x);
      v = std::move(list);
    } else {
      v = static_cast<T>(in_range(params_detail::parse_number(text, name, std::is_integral_v<T>)));
    }
  };
  return f;
}

// The fine-tuning fields shared by techniques whose options have `max_train_images`,
// `learning_rate` and `batch_size`.
template <class O>
std::vector<ParamField<O>> training_fields() {
  return {field<O>("max_train_images", [](O& o) -> auto& { return o.max_train_images; }, "training images used (an evenly strided subset)", 1, 1e9),
          field<O>("learning_rate", [](O& o) -> auto& { return o.learning_rate; }, "Adam learning rate (decay: see docs/techniques.md)", 1e-8, 1),
          field<O>("batch_size", [](O& o) -> auto& { return o.batch_size; }, "images per step", 1, 65536)};
}

// Distillation from the FP32 model while fine-tuning, for options with `distill_from_baseline`,
// `distill_temperature` and `distill_alpha`.
template <class O>
std::vector<ParamField<O>> distill_fields() {
  return {field<O>("distill_from_baseline", [](O& o) -> auto& { return o.distill_from_baseline; }, "also learn from the FP32 model's softened logits"),
          field<O>("distill_temperature", [](O& o) -> auto& { return o.distill_temperature; }, "softmax temperature of the distillation term", 0.1, 100),
          field<O>("distill_alpha", [](O& o) -> auto& { return o.distill_alpha; }, "weight of the distillation term (1 - alpha on the labels)", 0, 1)};
}

template <class O>
std::vector<ParamField<O>> concat(std::vector<ParamField<O>> a, const std::vector<ParamField<O>>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

template <class O>
std::vector<Param> describe(const O& options, const std::vector<ParamField<O>>& fields) {
  std::vector<Param> out;
  for (const auto& f : fields) out.push_back({f.name, f.get(options), f.help});
  return out;
}

// Applies `values` (name -> text) to `options`; an unknown name is an error listing the known ones.
template <class O>
void apply(O& options, const std::vector<ParamField<O>>& fields, const std::map<std::string, std::string>& values, std::string_view technique) {
  for (const auto& [name, text] : values) {
    const ParamField<O>* found = nullptr;
    for (const auto& f : fields) {
      if (f.name == name) found = &f;
    }
    if (!found) {
      std::string known;
      for (const auto& f : fields) known += (known.empty() ? "" : ", ") + f.name;
      fail(ErrorCode::kInvalidArgument, std::string(technique) + " has no parameter '" + name + "'",
           known.empty() ? "it takes no parameters" : "its parameters: " + known);
    }
    try {
      found->set(options, text);
    } catch (const Failure& e) {
      Error error = e.error;
      error.message = std::string(technique) + ": " + error.message;
      throw Failure{error};
    }
  }
}

}  // namespace edgeopt::techniques
