#include "techniques/distillation.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include "backend/executor.h"
#include "pipeline/evaluate.h"
#include "techniques/channel_surgery.h"

namespace edgeopt::techniques {
namespace {

// Images of `images` at `indices`, in that order.
data::ImageSet pick(const data::ImageSet& images, const std::vector<std::int64_t>& indices) {
  data::ImageSet out;
  out.count = static_cast<std::int64_t>(indices.size());
  out.height = images.height;
  out.width = images.width;
  out.channels = images.channels;
  const std::int64_t per_image = images.height * images.width * images.channels;
  out.pixels.reserve(static_cast<std::size_t>(out.count * per_image));
  for (std::int64_t i : indices) {
    const auto begin = images.pixels.begin() + i * per_image;
    out.pixels.insert(out.pixels.end(), begin, begin + per_image);
    out.labels.push_back(images.labels[static_cast<std::size_t>(i)]);
  }
  return out;
}

// Conv/Gemm weights whose channels the student narrows: every one but the classifier's.
bool is_weighted(const ir::Graph& g, const ir::Node& n) {
  return (n.op == ir::OpKind::kConv || n.op == ir::OpKind::kGemm) && n.inputs.size() > 1 && n.inputs[1] >= 0 &&
         g.value(n.inputs[1]).is_constant && !g.value(n.inputs[1]).f32.empty();
}

// Fresh weights for the student trained from scratch: He-normal for Conv/Gemm weights (seeded),
// zero biases, BatchNorm as identity. The architecture is the narrowed one; only values change.
// The images mirrored left-right (pixels are stored row-major, channels last).
data::ImageSet mirrored(const data::ImageSet& images) {
  data::ImageSet m = images;
  const std::int64_t w = images.width;
  const std::int64_t c = images.channels;
  const std::int64_t rows = images.count * images.height;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::uint8_t* src = images.pixels.data() + r * w * c;
    std::uint8_t* dst = m.pixels.data() + r * w * c;
    for (std::int64_t x = 0; x < w; ++x) {
      for (std::int64_t k = 0; k < c; ++k) dst[x * c + k] = src[(w - 1 - x) * c + k];
    }
  }
  return m;
}

void reinitialise(ir::Graph& g, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (const ir::Node& n : g.nodes) {
    if (is_weighted(g, n)) {
      ir::Value& w = g.value(n.inputs[1]);
      const std::int64_t fan_in = w.shape.size() > 1 ? static_cast<std::int64_t>(w.f32.size()) / w.shape[0] : 1;
      std::normal_distribution<float> dist(0.0F, std::sqrt(2.0F / static_cast<float>(std::max<std::int64_t>(1, fan_in))));
      for (float& v : w.f32) v = dist(rng);
      if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
        auto& b = g.value(n.inputs[2]).f32;
        std::fill(b.begin(), b.end(), 0.0F);
      }
    } else if (n.op == ir::OpKind::kBatchNorm && n.inputs.size() == 5) {
      const float fills[] = {1.0F, 0.0F, 0.0F, 1.0F};
      for (std::size_t i = 0; i < 4; ++i) {
        auto& p = g.value(n.inputs[i + 1]).f32;
        std::fill(p.begin(), p.end(), fills[i]);
      }
    }
  }
}

double ratio(const ir::Graph& teacher, const ir::Graph& student) {
  return static_cast<double>(teacher.param_count()) / static_cast<double>(std::max<std::int64_t>(1, student.param_count()));
}

}  // namespace

Result<DistillationResult> distill(const Context& context, const DistillationOptions& options) {
  return capture([&]() -> DistillationResult {
    if (!context.baseline) fail(ErrorCode::kInvalidArgument, "distillation needs the model to distil");
    if (!context.train || context.train->count == 0) {
      fail(ErrorCode::kInvalidArgument, "distillation trains the student on the training split, and it is empty",
           "give a dataset with a training split");
    }
    auto cancelled = [&] { return context.cancelled && context.cancelled(); };
    auto progress = [&](double f, const std::string& msg) {
      if (context.progress) context.progress(std::clamp(f, 0.0, 1.0), msg);
    };
    const ir::Graph& teacher = *context.baseline;
    DistillationResult result;

    // The student: the largest keep fraction that still reaches the parameter ratio (channel
    // counts are integers, so search it), unless the caller fixed the fraction.
    progress(0.0, "deriving the student");
    auto narrowed = [&](double keep) {
      auto s = surgery::shrink(teacher, keep, surgery::Importance::kBnScaledL1);
      if (!s) throw Failure{s.error()};
      return std::move(s.value());
    };
    double keep = options.keep_fraction;
    if (keep <= 0) {
      double lo = 0.0;  // reaches the ratio (or is the floor)
      double hi = 1.0;  // does not
      for (int i = 0; i < 16; ++i) {
        const double mid = 0.5 * (lo + hi);
        if (ratio(teacher, narrowed(mid)) >= options.target_param_ratio) lo = mid;
        else hi = mid;
      }
      keep = std::max(lo, 1e-3);
    }
    result.keep_fraction = keep;
    ir::Graph student = narrowed(keep);
    ir::Graph scratch = student;
    reinitialise(scratch, context.seed);
    if (!options.init_from_teacher) student = scratch;
    result.student_params = student.param_count();

    // Data: an evenly strided slice of the training split, every k-th image of it held out to
    // compare the two students (the pipeline scores the result on the test split separately).
    const data::ImageSet& all = *context.train;
    const std::int64_t wanted = std::min(all.count, options.max_train_images + std::max<std::int64_t>(0, options.held_out_images));
    const std::int64_t held_count = options.held_out_images > 0 && wanted >= 2 ? std::min(options.held_out_images, wanted / 2) : 0;
    const std::int64_t every = held_count > 0 ? wanted / held_count : 0;
    std::vector<std::int64_t> train_idx;
    std::vector<std::int64_t> held_idx;
    for (std::int64_t i = 0; i < wanted; ++i) {
      const std::int64_t at = i * all.count / wanted;
      if (every > 0 && i % every == every - 1 && static_cast<std::int64_t>(held_idx.size()) < held_count) held_idx.push_back(at);
      else train_idx.push_back(at);
    }
    const data::ImageSet train_set = pick(all, train_idx);
    const data::ImageSet held_set = pick(all, held_idx);
    result.train_images = train_set.count;
    result.held_out_images = held_set.count;
    std::vector<float> inputs;
    pipeline::prepare_batch(train_set, 0, train_set.count, context.spec, context.norm, inputs);

    backend::TrainOptions base;
    const std::int64_t steps_per_epoch = std::max<std::int64_t>(1, (train_set.count + options.batch_size - 1) / options.batch_size);
    base.epochs = static_cast<int>(std::max<std::int64_t>(options.epochs, (options.min_steps + steps_per_epoch - 1) / steps_per_epoch));
    result.epochs = base.epochs;
    base.batch_size = options.batch_size;
    base.learning_rate = options.learning_rate;
    base.schedule = backend::TrainOptions::Schedule::kCosine;
    base.seed = context.seed;
    auto held_accuracy = [&](const ir::Graph& g, const data::ImageSet& images) {
      if (images.count == 0) return 0.0;
      auto exec = backend::Executor::create(g);
      if (!exec) throw Failure{exec.error()};
      auto r = pipeline::evaluate(*exec.value(), images, context.spec, context.norm);
      if (!r) throw Failure{r.error()};
      return r->accuracy;
    };
    const ir::Value& input = teacher.value(teacher.inputs[0]);
    result.teacher_accuracy = held_accuracy(teacher, held_set);
    result.teacher_mirrored_accuracy = held_accuracy(teacher, mirrored(held_set));
    result.flipped = options.random_flip && input.layout == ir::Layout::kNCHW && input.shape.size() == 4 && held_set.count > 0 &&
                     100 * (result.teacher_accuracy - result.teacher_mirrored_accuracy) <= options.flip_tolerance_pp;
    base.random_flip = result.flipped;

    // Trains a copy of the student, with or without the teacher, on otherwise identical options
    // (same init, data, order, augmentation and seed); progress spans [from, to).
    auto train_student = [&](const ir::Graph& init, bool with_teacher, const std::string& what, double from, double to) {
      ir::Graph g = init;
      backend::TrainOptions o = base;
      if (with_teacher) {
        o.teacher = &teacher;
        o.distill_temperature = options.temperature;
        o.distill_alpha = options.alpha;
      }
      o.on_step = [&](std::int64_t step, std::int64_t total, float loss) {
        std::ostringstream msg;
        msg << what << ", step " << step << "/" << total << ", loss " << loss;
        progress(from + (to - from) * static_cast<double>(step) / static_cast<double>(total), msg.str());
        return !cancelled();
      };
      if (cancelled()) fail(ErrorCode::kInvalidArgument, "cancelled");
      auto report = backend::train(g, inputs.data(), train_set.labels.data(), train_set.count, o);
      if (!report) throw Failure{report.error()};
      if (report->stopped_early) fail(ErrorCode::kInvalidArgument, "cancelled");
      return g;
    };

    const bool scratch_run = options.compare_from_scratch && options.init_from_teacher;
    const double share = scratch_run ? 0.32 : 0.47;
    result.student = train_student(student, true, "distilling the student", 0.02, 0.02 + share);
    result.student_alone = train_student(student, false, "training the same student alone (baseline)", 0.02 + share, 0.02 + 2 * share);
    if (scratch_run) result.student_scratch = train_student(scratch, false, "training the student from scratch alone (baseline)", 0.02 + 2 * share, 0.98);
    if (cancelled()) fail(ErrorCode::kInvalidArgument, "cancelled");
    progress(0.98, "scoring the students on held-out training images");
    result.distilled_accuracy = held_accuracy(result.student, held_set);
    result.alone_accuracy = held_accuracy(result.student_alone, held_set);
    if (scratch_run) result.scratch_accuracy = held_accuracy(result.student_scratch, held_set);
    if (!options.init_from_teacher) result.scratch_accuracy = result.alone_accuracy;
    progress(1.0, "done");
    return result;
  });
}

Result<Output> Distillation::run(const Context& context) const {
  auto r = distill(context, options_);
  if (!r) return r.error();
  Output out;
  out.graph = std::move(r->student);
  const double params_ratio = static_cast<double>(context.baseline->param_count()) / static_cast<double>(std::max<std::int64_t>(1, r->student_params));
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(2);
  s << "student: every hidden Conv/Gemm keeps " << 100.0 * r->keep_fraction
    << " % of its channels (dependency-aware surgery, BN-scaled L1 importance), classifier outputs kept; " << r->student_params
    << " params vs the teacher's " << context.baseline->param_count() << " (" << params_ratio << "x fewer); initialised "
    << (options_.init_from_teacher ? "from the teacher's most important channels" : "at random (He, seeded)");
  out.notes.push_back(s.str());
  s.str("");
  s << "trained " << r->epochs << " epoch(s) on " << r->train_images << " training images (Adam, lr " << std::defaultfloat
    << options_.learning_rate << std::fixed << ", cosine, batch " << options_.batch_size
    << (r->flipped ? ", random flips" : ", no flips") << ") on the teacher's logits at temperature " << options_.temperature
    << " with alpha " << options_.alpha << " (loss = alpha*T^2*KL + (1-alpha)*CE)";
  out.notes.push_back(s.str());
  if (r->held_out_images > 0) {
    s.str("");
    s << "on " << r->held_out_images << " training images the students never saw (the teacher may have): teacher "
      << 100 * r->teacher_accuracy << " % (" << 100 * r->teacher_mirrored_accuracy << " % mirrored, so flips were "
      << (r->flipped ? "used" : "not used") << "), distilled student " << 100 * r->distilled_accuracy << " %";
    if (r->scratch_accuracy >= 0) s << ", the same student trained alone from scratch " << 100 * r->scratch_accuracy << " %";
    if (options_.init_from_teacher) s << ", the same student from the same teacher-derived init trained alone " << 100 * r->alone_accuracy << " %";
    out.notes.push_back(s.str());
    out.metrics["teacher_heldout_accuracy"] = r->teacher_accuracy;
    out.metrics["distilled_heldout_accuracy"] = r->distilled_accuracy;
    out.metrics["heldout_images"] = static_cast<double>(r->held_out_images);
    if (r->scratch_accuracy >= 0) {
      out.metrics["student_alone_heldout_accuracy"] = r->scratch_accuracy;
      out.metrics["gain_over_student_alone_pp"] = 100 * (r->distilled_accuracy - r->scratch_accuracy);
    }
    if (options_.init_from_teacher) {
      out.metrics["same_init_alone_heldout_accuracy"] = r->alone_accuracy;
      out.metrics["gain_over_same_init_alone_pp"] = 100 * (r->distilled_accuracy - r->alone_accuracy);
    }
    if (r->distilled_accuracy < r->alone_accuracy) out.notes.push_back("the teacher's logits did not help this student here; more epochs or a lower alpha may");
  }
  out.metrics["student_params_ratio"] = params_ratio;
  return out;
}

std::vector<ParamField<DistillationOptions>> Distillation::fields() {
  using O = DistillationOptions;
  const std::vector<ParamField<O>> fields{
      field<O>("target_param_ratio", [](O& o) -> auto& { return o.target_param_ratio; }, "teacher params / student params, at least", 1, 1000),
      field<O>("keep_fraction", [](O& o) -> auto& { return o.keep_fraction; }, "channels kept per hidden layer (0: the largest that reaches the ratio)", 0, 1),
      field<O>("temperature", [](O& o) -> auto& { return o.temperature; }, "softmax temperature of the distillation term", 0.1, 100),
      field<O>("alpha", [](O& o) -> auto& { return o.alpha; }, "weight of the distillation term (1 - alpha on the labels)", 0, 1),
      field<O>("epochs", [](O& o) -> auto& { return o.epochs; }, "training epochs (more on small splits, see min_steps)", 1, 1000),
      field<O>("held_out_images", [](O& o) -> auto& { return o.held_out_images; }, "further training images the students are compared on", 0, 1e9),
      field<O>("init_from_teacher", [](O& o) -> auto& { return o.init_from_teacher; }, "start the student from the teacher's strongest channels"),
      field<O>("compare_from_scratch", [](O& o) -> auto& { return o.compare_from_scratch; }, "also train the student from scratch on the labels (the baseline)"),
      field<O>("min_steps", [](O& o) -> auto& { return o.min_steps; }, "optimizer steps at least (small splits get more epochs)", 0, 1e9),
  };
  return concat(fields, training_fields<O>());
}

WorkEstimate Distillation::estimate_work(std::int64_t train_images) const {
  const auto held = static_cast<double>(std::min(options_.held_out_images, train_images / 2));
  const double images = std::min(static_cast<double>(options_.max_train_images), static_cast<double>(train_images) - held);
  const double steps_per_epoch = std::max(1.0, std::ceil(images / static_cast<double>(options_.batch_size)));
  const double epochs = std::max(static_cast<double>(options_.epochs), std::ceil(static_cast<double>(options_.min_steps) / steps_per_epoch));
  // The student has 1/ratio of the teacher's weights (and about as large a share of its MACs):
  // distilled (student step + teacher forward), the same student on labels alone, from scratch too.
  const double student = 3.0 / options_.target_param_ratio;
  const double runs = (student + 1.0) + student * (1.0 + (options_.compare_from_scratch && options_.init_from_teacher ? 1.0 : 0.0));
  return {images * epochs * runs + 2.0 * held};
}

}  // namespace edgeopt::techniques
