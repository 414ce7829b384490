#include "estimator/calibrate.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <functional>
#include <numeric>
#include <set>
#include <sstream>

namespace edgeopt::estimator {
namespace {

using nlohmann::json;

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  std::stringstream s(line);
  while (std::getline(s, field, ',')) fields.push_back(field);
  if (!line.empty() && line.back() == ',') fields.emplace_back();
  return fields;
}

std::vector<Measurement> parse_measurements(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(ErrorCode::kNotFound, "cannot open measurements " + path);
  std::vector<Measurement> rows;
  std::string line;
  bool header = true;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    if (header) {
      header = false;
      continue;
    }
    auto f = split_csv(line);
    if (f.size() < 13) fail(ErrorCode::kCorruptFile, path + ":" + std::to_string(number) + ": expected 13 columns");
    for (std::size_t i = 13; i < f.size(); ++i) f[12] += "," + f[i];  // the note may hold commas
    Measurement m;
    m.line = f[0];
    m.device = f[1];
    m.model = f[2];
    m.runtime = f[3];
    auto p = precision_from_name(f[4]);
    if (!p) fail(ErrorCode::kCorruptFile, path + ":" + std::to_string(number) + ": unknown precision '" + f[4] + "'");
    m.precision = *p;
    try {
      m.threads = std::stoi(f[5]);
      m.cpu_mhz = std::stod(f[6]);
      m.latency_ms = std::stod(f[7]);
    } catch (const std::exception&) {
      fail(ErrorCode::kCorruptFile,
           path + ":" + std::to_string(number) + ": threads, cpu_mhz and latency_ms must be numbers");
    }
    m.postprocess = f[8].find("postproc") != std::string::npos;
    m.end_to_end = f[8].find("e2e") != std::string::npos;
    m.legacy = f[8].find("legacy") != std::string::npos;
    m.use = f[9] == "use";
    m.family = f[10];
    m.source = f[11];
    m.note = f[12];
    m.order = rows.size();
    if (m.use && (m.family.empty() || m.source.empty()))
      fail(ErrorCode::kCorruptFile, path + ":" + std::to_string(number) + ": a used row needs a family and a source");
    if (m.use && (m.model.empty() || m.latency_ms <= 0)) {
      fail(ErrorCode::kCorruptFile,
           path + ":" + std::to_string(number) + ": a used row needs a model and a positive latency");
    }
    rows.push_back(std::move(m));
  }
  return rows;
}

EstimateOptions options_for(const Measurement& m) {
  EstimateOptions o;
  o.device = m.device;
  o.runtime = m.runtime;
  o.precision = m.precision;
  o.threads = m.threads;
  o.cpu_mhz = m.cpu_mhz;
  o.include_postprocess = m.postprocess;
  o.end_to_end = m.end_to_end;
  o.legacy_timing = m.legacy;
  o.latency_only = true;
  return o;
}

double huber(double r) {
  constexpr double kDelta = 0.25;
  const double a = std::fabs(r);
  return a <= kDelta ? 0.5 * r * r : kDelta * (a - 0.5 * kDelta);
}

struct Fitter {
  Calibration cal;
  std::vector<const Measurement*> rows;
  std::vector<const LayerTable*> tables;
  const DeviceCatalog* catalog = nullptr;
  std::vector<double> residual;                             // log(pred / measured)
  std::map<std::string, std::vector<std::size_t>> rows_of;  // parameter -> rows that read it
  struct Param {
    std::string key;
    std::string family;
    Unit unit;
  };
  std::vector<Param> params;

  double predict(std::size_t i, std::set<std::string>* used = nullptr) {
    auto e = estimate(*tables[i], *catalog, cal, options_for(*rows[i]));
    if (!e) fail(e.error().code, "measurement line " + rows[i]->line + ": " + e.error().message, e.error().hint);
    if (used) *used = e->parameters_used;
    return e->latency_ms;
  }

  double prior_term(const Param& p) const {
    const auto& pr = cal.prior(p.key, p.family, p.unit);
    const double z = (std::log(cal.params.at(p.key)) - std::log(pr.value)) / std::max(pr.log_sd, 1e-3);
    return 0.5 * cal.prior_weight * z * z;
  }

  void setup() {
    residual.resize(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      std::set<std::string> used;
      const double ms = predict(i, &used);
      residual[i] = std::log(ms / rows[i]->latency_ms);
      const Device* d = catalog->find(rows[i]->device);
      for (const auto& key : used) {
        if (!rows_of.count(key)) {
          // The unit of a key decides its prior; the runtime named in the key gives it.
          Unit unit = Unit::kCpu;
          for (const auto& rt : d->runtimes) {
            if (key.find("/" + rt.id + "/gpu") != std::string::npos || key == "mem/gpu" || key == "cache_x/gpu")
              unit = Unit::kGpu;
            if (key.find("/" + rt.id + "/tpu") != std::string::npos || key == "mem/tpu" || key == "cache_x/tpu" ||
                key.rfind("stream_gbs/", 0) == 0)
              unit = Unit::kTpu;
          }
          const std::string family = key.substr(0, key.find('/'));
          params.push_back({key, family, unit});
          cal.params[key] = cal.prior(key, family, unit).value;
        }
        rows_of[key].push_back(i);
      }
    }
    // Re-evaluate with every parameter at its prior (setup added them one by one).
    for (std::size_t i = 0; i < rows.size(); ++i) residual[i] = std::log(predict(i) / rows[i]->latency_ms);
  }

  double total_loss() const {
    double l = 0;
    for (double r : residual) l += huber(r);
    for (const auto& p : params) l += prior_term(p);
    return l;
  }

  void refresh(const std::vector<std::size_t>& which) {
    for (auto i : which) residual[i] = std::log(predict(i) / rows[i]->latency_ms);
  }

  std::vector<double> huber_weights() const {
    std::vector<double> weight(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const double a = std::fabs(residual[i]);
      weight[i] = a <= 0.25 ? 1.0 : 0.25 / a;
    }
    return weight;
  }

  // A = J' W J + prior precision and g = J' W r + prior gradient, with J = d residual / d log(param)
  // from finite differences over the rows each parameter touches (sparse).
  void normal_equations(const std::vector<double>& weight, std::vector<double>& a, std::vector<double>& g) {
    const std::size_t n = params.size();
    std::vector<std::vector<std::pair<std::size_t, double>>> jac(n);
    constexpr double kH = 1e-3;
    for (std::size_t k = 0; k < n; ++k) {
      const auto& key = params[k].key;
      const double old_value = cal.params[key];
      cal.params[key] = old_value * std::exp(kH);
      for (auto i : rows_of[key]) {
        const double r = std::log(predict(i) / rows[i]->latency_ms);
        jac[k].push_back({i, (r - residual[i]) / kH});
      }
      cal.params[key] = old_value;
    }
    a.assign(n * n, 0.0);
    g.assign(n, 0.0);
    std::vector<double> dense(rows.size());
    for (std::size_t k = 0; k < n; ++k) {
      std::fill(dense.begin(), dense.end(), 0.0);
      for (auto [i, d] : jac[k]) dense[i] = d;
      for (std::size_t l = k; l < n; ++l) {
        double sum = 0;
        for (auto [i, d] : jac[l]) sum += weight[i] * dense[i] * d;
        a[k * n + l] = a[l * n + k] = sum;
      }
      for (auto [i, d] : jac[k]) g[k] += weight[i] * d * residual[i];
      const auto& pr = cal.prior(params[k].key, params[k].family, params[k].unit);
      const double inv_var = cal.prior_weight / std::max(pr.log_sd * pr.log_sd, 1e-6);
      a[k * n + k] += inv_var;
      g[k] += inv_var * (std::log(cal.params[params[k].key]) - std::log(pr.value));
    }
  }

  // Laplace approximation at the optimum: cov(log params) = s^2 A^-1, s^2 the weighted residual
  // variance per degree of freedom (at least 1 left).
  std::vector<FittedParam> uncertainties() {
    const std::size_t n = params.size();
    const auto weight = huber_weights();
    std::vector<double> a, g;
    normal_equations(weight, a, g);
    double ss = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) ss += weight[i] * residual[i] * residual[i];
    const double dof = std::max(1.0, static_cast<double>(rows.size()) - static_cast<double>(n));
    const double s2 = ss / dof;
    std::vector<FittedParam> out;
    for (std::size_t k = 0; k < n; ++k) {
      std::vector<double> e(n, 0.0);
      e[k] = 1;
      const double var = solve(a, e, n)[k];
      const auto& pr = cal.prior(params[k].key, params[k].family, params[k].unit);
      const double prior_var = std::max(pr.log_sd * pr.log_sd, 1e-6) / cal.prior_weight;
      FittedParam p;
      // Share of this parameter the data determines (1 - posterior / prior variance): its
      // contribution to the effective number of free parameters (the trace of the hat matrix).
      p.data_share = std::clamp(1 - var / prior_var, 0.0, 1.0);
      p.key = params[k].key;
      p.value = cal.params.at(p.key);
      p.log_sd = std::sqrt(std::max(0.0, var * s2));
      p.rows = static_cast<int>(rows_of[p.key].size());
      std::set<std::string> devices;
      for (auto i : rows_of[p.key]) devices.insert(rows[i]->device);
      if (devices.size() == 1) p.device = *devices.begin();
      out.push_back(p);
    }
    std::sort(out.begin(), out.end(), [](const FittedParam& x, const FittedParam& y) { return x.key < y.key; });
    return out;
  }

  // Levenberg-Marquardt on log-parameters with Huber weights (IRLS) and the priors as extra
  // residuals; the Jacobian comes from finite differences over the rows each parameter touches.
  void run() {
    const std::size_t n = params.size();
    std::vector<std::size_t> all(rows.size());
    std::iota(all.begin(), all.end(), 0);
    double mu = 1e-2;
    double loss = total_loss();
    for (int iter = 0; iter < 60; ++iter) {
      const std::vector<double> weight = huber_weights();
      std::vector<double> a, g;
      normal_equations(weight, a, g);
      bool accepted = false;
      for (int attempt = 0; attempt < 8 && !accepted; ++attempt) {
        std::vector<double> m = a, rhs(n);
        for (std::size_t k = 0; k < n; ++k) {
          m[k * n + k] *= 1 + mu;
          rhs[k] = -g[k];
        }
        const std::vector<double> delta = solve(m, rhs, n);
        std::map<std::string, double> saved;
        for (std::size_t k = 0; k < n; ++k) {
          saved[params[k].key] = cal.params[params[k].key];
          cal.params[params[k].key] *= std::exp(std::clamp(delta[k], -2.0, 2.0));
        }
        const std::vector<double> old_residual = residual;
        refresh(all);
        const double new_loss = total_loss();
        if (new_loss < loss - 1e-10) {
          accepted = true;
          const double gain = loss - new_loss;
          loss = new_loss;
          mu = std::max(mu / 3, 1e-6);
          if (gain < 1e-7) return;
        } else {
          for (const auto& [key, value] : saved) cal.params[key] = value;
          residual = old_residual;
          mu *= 4;
        }
      }
      if (!accepted) return;
    }
  }

  // Gaussian elimination with partial pivoting; the system is small (one row per parameter).
  static std::vector<double> solve(std::vector<double> m, std::vector<double> b, std::size_t n) {
    for (std::size_t c = 0; c < n; ++c) {
      std::size_t pivot = c;
      for (std::size_t r = c + 1; r < n; ++r)
        if (std::fabs(m[r * n + c]) > std::fabs(m[pivot * n + c])) pivot = r;
      if (std::fabs(m[pivot * n + c]) < 1e-12) continue;
      if (pivot != c) {
        for (std::size_t k = 0; k < n; ++k) std::swap(m[c * n + k], m[pivot * n + k]);
        std::swap(b[c], b[pivot]);
      }
      for (std::size_t r = c + 1; r < n; ++r) {
        const double f = m[r * n + c] / m[c * n + c];
        if (f == 0) continue;
        for (std::size_t k = c; k < n; ++k) m[r * n + k] -= f * m[c * n + k];
        b[r] -= f * b[c];
      }
    }
    std::vector<double> x(n, 0.0);
    for (std::size_t c = n; c-- > 0;) {
      if (std::fabs(m[c * n + c]) < 1e-12) continue;
      double sum = b[c];
      for (std::size_t k = c + 1; k < n; ++k) sum -= m[c * n + k] * x[k];
      x[c] = sum / m[c * n + c];
    }
    return x;
  }
};

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 1;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<std::size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](auto a, auto b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (std::size_t i = 0; i < idx.size();) {
    std::size_t j = i;
    while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
    for (std::size_t k = i; k <= j; ++k) r[idx[k]] = 0.5 * static_cast<double>(i + j) + 1;  // ties share the mean rank
    i = j + 1;
  }
  return r;
}

using Leave = std::function<bool(const Measurement&)>;

Fitter make_fitter(const Calibration& base, const std::vector<Measurement>& rows,
                   const std::map<std::string, LayerTable>& tables, const DeviceCatalog& catalog,
                   const Leave& left_out) {
  Fitter f;
  f.cal = base;
  f.cal.params.clear();
  f.catalog = &catalog;
  for (const auto& m : rows) {
    if (!m.use || (left_out && left_out(m))) continue;
    const auto t = tables.find(m.model);
    if (t == tables.end())
      fail(ErrorCode::kNotFound, "no layer table for model '" + m.model + "' (line " + m.line + ")",
           "run `make calibrate` to export the calibration models");
    f.rows.push_back(&m);
    f.tables.push_back(&t->second);
  }
  f.setup();
  f.run();
  return f;
}

Calibration fit(const Calibration& base, const std::vector<Measurement>& rows,
                const std::map<std::string, LayerTable>& tables, const DeviceCatalog& catalog, const Leave& left_out) {
  return make_fitter(base, rows, tables, catalog, left_out).cal;
}

// Predicts every used row with a fit that left out all rows sharing its group (architecture,
// family or source); the fits run once per group.
HeldOut held_out(const std::string& method, const std::function<std::string(const Measurement&)>& group_of,
                 const Calibration& base, const std::vector<Measurement>& rows,
                 const std::map<std::string, LayerTable>& tables, const DeviceCatalog& catalog) {
  HeldOut h;
  h.method = method;
  std::set<std::string> groups;
  for (const auto& m : rows)
    if (m.use) groups.insert(group_of(m));
  for (const auto& g : groups) {
    const Calibration cal = fit(base, rows, tables, catalog, [&](const Measurement& m) { return group_of(m) == g; });
    for (const auto& m : rows) {
      if (!m.use || group_of(m) != g) continue;
      auto e = estimate(tables.at(m.model), catalog, cal, options_for(m));
      if (!e) fail(e.error().code, "line " + m.line + ": " + e.error().message, e.error().hint);
      h.predictions.push_back(Prediction{m, e->latency_ms});
    }
  }
  std::sort(h.predictions.begin(), h.predictions.end(),
            [](const Prediction& a, const Prediction& b) { return a.measurement.order < b.measurement.order; });
  h.per_device = group_stats(h.predictions, false);
  h.per_device_runtime = group_stats(h.predictions, true);
  return h;
}

// Share of held-out rows whose measurement lies inside the interval published for their device.
void coverage(HeldOut& h, const Calibration& cal) {
  std::map<std::string, std::pair<int, int>> in;  // device -> (inside, rows)
  int inside = 0;
  for (const auto& p : h.predictions) {
    const auto it = cal.intervals.find(p.measurement.device);
    const Calibration::Interval iv = it != cal.intervals.end() ? it->second : cal.default_interval;
    const double r = p.measurement.latency_ms / p.predicted_ms;
    const bool ok = r >= iv.low * (1 - 1e-9) && r <= iv.high * (1 + 1e-9);
    inside += ok;
    in[p.measurement.device].first += ok;
    in[p.measurement.device].second += 1;
  }
  h.coverage = h.predictions.empty() ? 0 : static_cast<double>(inside) / static_cast<double>(h.predictions.size());
  for (const auto& [d, c] : in) h.coverage_of[d] = static_cast<double>(c.first) / c.second;
}

Validation validate(const Calibration& base, const std::vector<Measurement>& rows,
                    const std::map<std::string, LayerTable>& tables, const DeviceCatalog& catalog) {
  Validation v;
  Fitter full = make_fitter(base, rows, tables, catalog, {});
  v.fitted = full.cal;
  v.params = full.uncertainties();
  for (const auto& m : rows)
    if (!m.use) v.excluded.push_back(m);
  for (const auto& m : rows) {
    if (!m.use) continue;
    auto e = estimate(tables.at(m.model), catalog, v.fitted, options_for(m));
    if (!e) fail(e.error().code, "line " + m.line + ": " + e.error().message, e.error().hint);
    v.in_sample.push_back(Prediction{m, e->latency_ms});
  }
  v.lomo = held_out("lomo", [](const Measurement& m) { return m.architecture(); }, base, rows, tables, catalog);
  v.lofo = held_out("lofo", [](const Measurement& m) { return m.family; }, base, rows, tables, catalog);
  v.loso = held_out("loso", [](const Measurement& m) { return m.source; }, base, rows, tables, catalog);

  // Intervals: the central share of measured / predicted over each device's leave-one-family-out
  // rows (a new architecture is the case the product meets); all devices' when < 5 rows. Order
  // statistics, not interpolated quantiles: floor(n x tail) rows are left out at each end, so at
  // least the stated share of the rows lies inside (interpolation covered 78 % for 80 %).
  const double tail = (1 - v.interval_share) / 2;
  auto quantile = [tail](std::vector<double> r, bool upper) {
    if (r.empty()) return 1.0;
    std::sort(r.begin(), r.end());
    const auto cut = static_cast<std::size_t>(std::floor(static_cast<double>(r.size()) * tail + 1e-9));
    return upper ? r[r.size() - 1 - cut] : r[cut];
  };
  std::map<std::string, std::vector<double>> ratios;
  std::vector<double> all;
  for (const auto& p : v.lofo.predictions) {
    const double r = p.measurement.latency_ms / p.predicted_ms;
    ratios[p.measurement.device].push_back(r);
    all.push_back(r);
  }
  for (const auto& [device, r] : ratios) {
    const auto& src = r.size() >= 5 ? r : all;
    v.fitted.intervals[device] = {std::min(1.0, quantile(src, false)), std::max(1.0, quantile(src, true)),
                                  static_cast<int>(r.size())};
  }
  v.fitted.default_interval = {std::min(1.0, quantile(all, false)), std::max(1.0, quantile(all, true)),
                               static_cast<int>(all.size())};
  coverage(v.lomo, v.fitted);
  coverage(v.lofo, v.fitted);
  coverage(v.loso, v.fitted);
  return v;
}

json stats_json(const std::vector<GroupStats>& stats) {
  json out = json::array();
  for (const auto& s : stats) {
    out.push_back({{"group", s.group},
                   {"rows", s.rows},
                   {"median_abs_error", s.median_abs_error},
                   {"within_10", s.within_10},
                   {"within_25", s.within_25},
                   {"spearman", s.spearman}});
  }
  return out;
}

}  // namespace

std::string Measurement::architecture() const {
  const auto cut = model.find_last_of('_');
  if (cut == std::string::npos || cut + 1 >= model.size()) return model;
  for (std::size_t i = cut + 1; i < model.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(model[i]))) return model;
  return model.substr(0, cut);
}

double Prediction::error() const { return (predicted_ms - measurement.latency_ms) / measurement.latency_ms; }

Result<std::vector<Measurement>> load_measurements(const std::string& csv_path) {
  return capture([&] { return parse_measurements(csv_path); });
}

Result<Calibration> fit_calibration(const Calibration& base, const std::vector<Measurement>& rows,
                                    const std::map<std::string, LayerTable>& tables, const DeviceCatalog& catalog,
                                    const std::string& left_out_architecture) {
  return capture([&] {
    return fit(base, rows, tables, catalog, [&](const Measurement& m) {
      return !left_out_architecture.empty() && m.architecture() == left_out_architecture;
    });
  });
}

Result<Validation> calibrate_and_validate(const Calibration& base, const std::vector<Measurement>& rows,
                                          const std::map<std::string, LayerTable>& tables,
                                          const DeviceCatalog& catalog) {
  return capture([&] { return validate(base, rows, tables, catalog); });
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.size() < 2) return 0;
  const auto ra = ranks(a), rb = ranks(b);
  const double n = static_cast<double>(a.size());
  const double mean = (n + 1) / 2;
  double num = 0, da = 0, db = 0;
  for (std::size_t i = 0; i < ra.size(); ++i) {
    num += (ra[i] - mean) * (rb[i] - mean);
    da += (ra[i] - mean) * (ra[i] - mean);
    db += (rb[i] - mean) * (rb[i] - mean);
  }
  return da > 0 && db > 0 ? num / std::sqrt(da * db) : 0;
}

std::vector<GroupStats> group_stats(const std::vector<Prediction>& predictions, bool by_runtime) {
  std::map<std::string, std::vector<const Prediction*>> groups;
  for (const auto& p : predictions) {
    const auto& m = p.measurement;
    groups[by_runtime ? m.device + " / " + m.runtime : m.device].push_back(&p);
  }
  std::vector<GroupStats> out;
  for (const auto& [name, rows] : groups) {
    GroupStats s;
    s.group = name;
    s.rows = static_cast<int>(rows.size());
    std::vector<double> errors, predicted, measured;
    int in10 = 0, in25 = 0;
    for (const auto* p : rows) {
      const double e = std::fabs(p->error());
      errors.push_back(e);
      in10 += e <= 0.10;
      in25 += e <= 0.25;
      predicted.push_back(p->predicted_ms);
      measured.push_back(p->measurement.latency_ms);
    }
    s.median_abs_error = quantile(errors, 0.5);
    s.within_10 = static_cast<double>(in10) / s.rows;
    s.within_25 = static_cast<double>(in25) / s.rows;
    s.spearman = spearman(predicted, measured);
    out.push_back(s);
  }
  return out;
}

json validation_to_json(const Validation& v) {
  // Every held-out list and in_sample hold the used rows in file order, so index i is one row.
  json rows = json::array();
  for (std::size_t i = 0; i < v.in_sample.size(); ++i) {
    const auto& m = v.in_sample[i].measurement;
    rows.push_back({{"line", m.line},
                    {"device", m.device},
                    {"model", m.model},
                    {"family", m.family},
                    {"source", m.source},
                    {"runtime", m.runtime},
                    {"precision", precision_name(m.precision)},
                    {"threads", m.threads},
                    {"measured_ms", m.latency_ms},
                    {"fitted_ms", v.in_sample[i].predicted_ms},
                    {"lomo_ms", v.lomo.predictions.at(i).predicted_ms},
                    {"lofo_ms", v.lofo.predictions.at(i).predicted_ms},
                    {"loso_ms", v.loso.predictions.at(i).predicted_ms}});
  }
  json excluded = json::array();
  for (const auto& m : v.excluded) excluded.push_back({{"line", m.line}, {"device", m.device}, {"reason", m.note}});
  json params = json::array();
  for (const auto& p : v.params) {
    params.push_back({{"key", p.key},
                      {"value", p.value},
                      {"log_sd", p.log_sd},
                      {"data_share", p.data_share},
                      {"rows", p.rows},
                      {"device", p.device}});
  }
  auto held = [](const HeldOut& h) {
    return json{{"per_device", stats_json(h.per_device)},
                {"per_device_runtime", stats_json(h.per_device_runtime)},
                {"interval_coverage", h.coverage},
                {"interval_coverage_per_device", h.coverage_of}};
  };
  Calibration c = v.fitted;
  c.validation = {{"methods",
                   {{"lomo", "leave-one-model-out: each architecture's rows are predicted by a fit without them"},
                    {"lofo", "leave-one-family-out: each backbone family's rows are predicted by a fit without them"},
                    {"loso", "leave-one-source-out: each publication's rows are predicted by a fit without them"}}},
                  {"interval_share", v.interval_share},
                  {"lomo", held(v.lomo)},
                  {"lofo", held(v.lofo)},
                  {"loso", held(v.loso)},
                  {"parameters", params},
                  {"rows", rows},
                  {"excluded", excluded}};
  return calibration_to_json(c);
}

}  // namespace edgeopt::estimator
