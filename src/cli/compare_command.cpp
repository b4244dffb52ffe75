#include "compare_command.hpp"

#include <iostream>
#include <map>
#include <memory>

#include "attnmap/compare.hpp"
#include "attnmap/error.hpp"
#include "attnmap/options.hpp"
#include "cli/cli_common.hpp"

namespace attnmap::cli {

namespace {

struct CompareArgs {
  std::string baseline, candidate, metric = "max-abs", layers = "all", report, diff_images;
  CompareOptions options;
};

// A threshold flag only means something for its metric; accepting it silently for another one
// would let `--metric cosine --atol 1e-3` look stricter than it is.
void check_threshold_flags(const CLI::App& sub, CompareMetric metric) {
  const std::map<std::string, CompareMetric> owner = {
      {"--atol", CompareMetric::MaxAbs},       {"--rtol", CompareMetric::MaxAbs},   {"--min-cosine", CompareMetric::Cosine},
      {"--top-k", CompareMetric::IouTopK},     {"--min-iou", CompareMetric::IouTopK},
      {"--max-peak-shift", CompareMetric::PeakShift}};
  for (const auto& [flag, m] : owner) {
    if (sub.count(flag) > 0 && m != metric) {
      throw Error(ErrorKind::Usage, flag + " applies to --metric " + metric_name(m) + " only, but the metric is " +
                                        metric_name(metric) + "; drop it or pass --metric " + metric_name(m));
    }
  }
}

int run_compare(const CLI::App& sub, CompareArgs& args) {
  try {
    args.options.metric = parse_metric(args.metric);
    args.options.layers = parse_layer_selection(args.layers);
    check_threshold_flags(sub, args.options.metric);
    args.options.report_path = args.report;
    args.options.diff_images_dir = args.diff_images;
    const CompareResult result = compare_runs(args.baseline, args.candidate, args.options);
    std::cout << summary_text(result) << std::flush;
    write_compare_outputs(result);
    return result.pass ? 0 : 1;
  } catch (const Error& e) {
    std::cerr << "attnmap: error: " << e.what() << "\n";
    // compare's contract is 0/1/2: every user-side problem (options, inputs, unwritable report) is 2.
    return e.kind() == ErrorKind::Internal ? 70 : 2;
  }
}

}  // namespace

void add_compare_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<CompareArgs>();
  CLI::App* sub = app.add_subcommand(
      "compare",
      "Compare the raw attention maps of two run or batch output folders; exit 0 if all are within tolerance, 1 if not, "
      "2 on usage/input errors");
  const CompareOptions defaults;
  sub->add_option("baseline", args->baseline, "Baseline folder (attnmap run --out or attnmap batch --out)")->required();
  sub->add_option("candidate", args->candidate, "Candidate folder of the same kind")->required();
  sub->add_option("--metric", args->metric, "Figure that decides pass/fail")
      ->check(CLI::IsMember({"max-abs", "cosine", "iou-top-k", "peak-shift"}))
      ->capture_default_str();
  sub->add_option("--atol", args->options.atol, "max-abs: absolute tolerance, cell passes if |b-c| <= atol + rtol*|b|")
      ->capture_default_str();
  sub->add_option("--rtol", args->options.rtol, "max-abs: relative tolerance (times the baseline value)")->capture_default_str();
  sub->add_option("--min-cosine", args->options.min_cosine, "cosine: a layer passes if cosine similarity >= this")
      ->capture_default_str();
  sub->add_option("--top-k", args->options.top_k_percent, "iou-top-k: percentage of cells in each map's top set")
      ->capture_default_str();
  sub->add_option("--min-iou", args->options.min_iou, "iou-top-k: a layer passes if IoU of the top sets >= this")
      ->capture_default_str();
  sub->add_option("--max-peak-shift", args->options.max_peak_shift,
                  "peak-shift: a layer passes if the argmax cells are at most this many cells apart")
      ->capture_default_str();
  sub->add_option("--layers", args->layers, "Decoder layers to compare: all | 4,8,12 | 0-5")->capture_default_str();
  sub->add_option("--report", args->report, "Write a full report: FILE.json or FILE.md");
  sub->add_option("--diff-images", args->diff_images, "Write baseline|candidate|diff JPEGs of failing layers into DIR");
  sub->add_flag("--allow-answer-change", args->options.allow_answer_change,
                "Runs made with --answer: report a changed answer without failing on it (its maps are still not compared)");
  // run_compare maps attnmap errors to compare's 0/1/2 itself; guarded() turns anything else
  // (a bug, a libtorch or OpenCV exception) into one line and exit 70 instead of a crash.
  sub->callback([sub, args, &exit_code] { exit_code = guarded([&] { return run_compare(*sub, *args); }); });
}

}  // namespace attnmap::cli
