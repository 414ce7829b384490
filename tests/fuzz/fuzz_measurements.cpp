// libFuzzer target: the measurements.json parser behind `edgeopt calibrate --measured` (a file a
// user brings back from a board).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "estimator/local_calibration.h"

namespace {

struct Resources {
  edgeopt::estimator::DeviceCatalog catalog;
  edgeopt::estimator::Calibration calibration;
};

const std::optional<Resources>& resources() {
  static const std::optional<Resources> r = []() -> std::optional<Resources> {
    const std::string dir = edgeopt::estimator::find_data_dir();
    auto catalog = edgeopt::estimator::load_device_catalog(dir + "/devices");
    auto calibration = edgeopt::estimator::load_calibration(dir + "/estimator");
    if (!catalog || !calibration) return std::nullopt;
    return Resources{std::move(catalog).value(), std::move(calibration).value()};
  }();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& r = resources();
  if (!r) return 0;
  const auto result = edgeopt::estimator::read_measurements(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz", r->catalog, r->calibration);
  (void)result;
  return 0;
}
