#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "io/atomic_file.hpp"
#include "attnmap/batch.hpp"
#include "batch/batch_index.hpp"
#include "attnmap/error.hpp"
#include "attnmap/run_folder.hpp"
#include "model/torch_failure.hpp"
#include "batch/bounded_queue.hpp"
#include "batch/progress.hpp"
#include "run/stopwatch.hpp"

namespace attnmap {
namespace fs = std::filesystem;

namespace {

std::string message_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return error_from_exception(e).what();
  }
  return "unknown error";
}

nlohmann::json summary_line(const BatchItemResult& r) {
  nlohmann::json line = {{"id", r.item.id},
                         {"image", r.item.input().string()},  // a video item: its video (or first frame)
                         {"prompt", r.item.prompt},
                         {"status", r.status},
                         {"error", r.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.error)},
                         {"output", r.item.out_dir.string()},
                         {"timings_ms", r.timings}};
  if (r.peak_device_memory_mib) line["peak_device_memory_mib"] = *r.peak_device_memory_mib;
  if (r.answer) line["answer"] = *r.answer;
  if (!r.item.video.empty()) line["video"] = r.item.video.string();
  if (!r.item.frames.empty()) {
    nlohmann::json frames = nlohmann::json::array();
    for (const auto& f : r.item.frames) frames.push_back(f.string());
    line["frames"] = frames;
  }
  return line;
}

// Collects results from all threads; the summary is streamed to a temporary file as items finish
// (so a killed run leaves a readable trace) and atomically replaced by the ordered one at the end.
class ResultBook {
 public:
  ResultBook(std::vector<RunItem> items, fs::path summary_path, Progress& progress)
      : summary_path_(std::move(summary_path)), progress_(progress) {
    results_.resize(items.size());
    for (size_t i = 0; i < items.size(); ++i) results_[i].item = std::move(items[i]);
    stream_path_ = summary_path_.parent_path() / (summary_path_.filename().string() + ".partial");
    stream_.open(stream_path_, std::ios::trunc);
  }

  // On every way out but a kill, the streamed copy goes: the complete summary replaces it, and a
  // run that fails (a full disk: exit 5) must not leave a half-written file behind.
  ~ResultBook() {
    stream_.close();
    std::error_code ignored;
    fs::remove(stream_path_, ignored);
  }

  const RunItem& item(size_t i) const { return results_[i].item; }
  size_t size() const { return results_.size(); }

  void record(size_t i, const std::string& status, const std::string& error, const StageTimings& timings,
              std::optional<double> peak_device_memory_mib = std::nullopt,
              std::optional<std::string> answer = std::nullopt) {
    std::lock_guard<std::mutex> lock(mutex_);
    BatchItemResult& r = results_[i];
    r.answer = std::move(answer);
    r.status = status;
    r.error = error;
    r.timings = timings;
    r.peak_device_memory_mib = peak_device_memory_mib;
    if (stream_) stream_ << summary_line(r).dump() << "\n" << std::flush;
    progress_.advance(status == "error");
  }

  BatchSummary finish(double seconds) {
    stream_.close();
    std::string all;
    BatchSummary summary;
    for (const BatchItemResult& r : results_) {
      all += summary_line(r).dump() + "\n";
      if (r.status == "ok") ++summary.ok;
      if (r.status == "error") ++summary.failed;
      if (r.status == "skipped") ++summary.skipped;
    }
    write_file_atomically(summary_path_, all);
    summary.items = results_;
    summary.seconds = seconds;
    summary.summary_file = summary_path_;
    return summary;
  }

 private:
  std::vector<BatchItemResult> results_;
  fs::path summary_path_, stream_path_;
  std::ofstream stream_;
  std::mutex mutex_;
  Progress& progress_;
};

// Checked before any work on the item: the id is its folder's name, and no file system takes
// a name over 255 bytes (the error would otherwise come only after the forward).
void check_folder_name(const RunItem& item) {
  constexpr size_t kNameMax = 255;
  if (item.id.size() <= kNameMax) return;
  throw Error(ErrorKind::Input, "item '" + item.input().string() + "': its id is " + std::to_string(item.id.size()) +
                                    " bytes, longer than the " + std::to_string(kNameMax) +
                                    " a folder name may have; give it a shorter \"id\" in the manifest "
                                    "(or a shorter file name)");
}

}  // namespace

BatchPlan plan_batch(const BatchOptions& options) {
  BatchPlan plan;
  plan.items = shard_items(list_batch_items(options), options.shard);
  ensure_directory(options.out_dir);
  remove_stale_temporary_files_in(options.out_dir);  // the summaries' temporaries
  for (const auto& item : plan.items) remove_stale_temporary_files_in(item.out_dir);
  plan.summary_file = options.out_dir / output::summary_file_name(options.shard);
  return plan;
}

BatchSummary run_batch(Runner& runner, const BatchOptions& options) {
  return run_batch(runner, options, plan_batch(options));
}

BatchSummary run_batch(Runner& runner, const BatchOptions& options, BatchPlan plan) {
  Stopwatch clock;
  Progress progress(plan.items.size(), options.progress);
  ResultBook book(std::move(plan.items), plan.summary_file, progress);

  const int workers = options.cpu_workers > 0
                          ? options.cpu_workers
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / 2);
  struct Prepared {
    size_t index;
    PreparedItem item;
  };
  struct Inferred {
    size_t index;
    InferredItem item;
  };
  BoundedQueue<Prepared> to_device(static_cast<size_t>(options.queue_depth));
  BoundedQueue<Inferred> to_writer(static_cast<size_t>(options.queue_depth));

  std::atomic<size_t> next{0};
  std::atomic<int> preparers_left{workers};
  std::vector<std::thread> preparers, writers;
  for (int w = 0; w < workers; ++w) {
    preparers.emplace_back([&] {
      for (size_t i = next++; i < book.size(); i = next++) {
        const RunItem& item = book.item(i);
        if (options.resume && output::is_complete(item.out_dir)) {
          book.record(i, "skipped", "", {});
          continue;
        }
        try {
          check_folder_name(item);
          if (item.prompt.empty()) {
            throw Error(ErrorKind::Input, "item '" + item.id + "' has no prompt; give --prompt or a \"prompt\" in the manifest");
          }
          to_device.push({i, runner.prepare(item)});
        } catch (...) {
          book.record(i, "error", message_of(std::current_exception()), {});
        }
      }
      if (--preparers_left == 0) to_device.close();
    });
  }
  for (int w = 0; w < workers; ++w) {
    writers.emplace_back([&] {
      while (auto job = to_writer.pop()) {
        try {
          // The summary carries the timings attention.json carries: one dictionary per item.
          const RunRecord record = runner.write(job->item);
          book.record(job->index, "ok", "", record.timings, record.peak_device_memory_mib,
                      record.answer ? std::optional<std::string>(record.answer->text) : std::nullopt);
        } catch (...) {
          book.record(job->index, "error", message_of(std::current_exception()), job->item.record.timings);
        }
      }
    });
  }
  // The device stage runs here, one item at a time, while the pools prepare and write around it.
  while (auto job = to_device.pop()) {
    const StageTimings timings = job->item.timings;
    try {
      to_writer.push({job->index, runner.infer(std::move(job->item))});
    } catch (...) {
      book.record(job->index, "error", message_of(std::current_exception()), timings);
    }
  }
  to_writer.close();
  for (auto& t : preparers) t.join();
  for (auto& t : writers) t.join();
  progress.finish();
  BatchSummary summary = book.finish(clock.lap() / 1000.0);
  if (runner.options().write_viewer) write_batch_index(summary, options.out_dir, options.shard);
  return summary;
}

}  // namespace attnmap
