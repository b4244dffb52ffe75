"""The benchmark tooling that can be checked without a GPU: random checkpoints in the real shapes
(attnmap_tools.testing.make_random_checkpoint), the GPU sampler's parsing and steady-state averaging
(bench/gpu_sampler.py), child-process measurement (bench/bench_common.py), the generate bench's
KV-cache size, checks and table (bench/generate_bench.py) and the batch bench's
summary watcher. The CUDA paths themselves run only on a GPU machine (bench/gpu_bench.sh).
bench/ is on the import path through pyproject.toml's [tool.pytest.ini_options] pythonpath."""
import json
import subprocess
import sys
import time

import pytest
import torch

import bench_common
import gpu_sampler
from attnmap_tools.testing import hf_reference as ref
from attnmap_tools.testing import random_checkpoint as rc


@pytest.fixture(scope="module")
def random_tiny(tmp_path_factory):
    """make_random_checkpoint as a user runs it: tiny.py's widths, 2 decoder layers, 3 vision
    blocks, 8 MiB shards so that the sharded layout (index file) is used."""
    ckpt = tmp_path_factory.mktemp("random_tiny") / "ckpt"
    proc = subprocess.run([sys.executable, "-m", "attnmap_tools.testing.make_random_checkpoint", "--shape", "tiny",
                           "--out-checkpoint", str(ckpt), "--text-layers", "2", "--vision-layers", "3", "--seed", "5",
                           "--max-shard-gb", str(8 / 1024)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "random-qwen2_5_vl-tiny-t2-v3 (bf16)" in proc.stdout
    return ckpt


def test_7b_and_3b_configs_have_the_real_shapes():
    from transformers import Qwen2_5_VLConfig

    cfg = Qwen2_5_VLConfig(**rc.hub_config("7b"))
    t, v = cfg.text_config, cfg.vision_config
    assert (t.hidden_size, t.intermediate_size, t.num_hidden_layers, t.num_attention_heads, t.num_key_value_heads,
            t.vocab_size) == (3584, 18944, 28, 28, 4, 152064)
    rope = getattr(t, "rope_parameters", None) or t.rope_scaling
    assert rope["mrope_section"] == [16, 24, 24] and rope.get("rope_theta", getattr(t, "rope_theta", None)) == 1e6
    assert cfg.tie_word_embeddings is False and t.rms_norm_eps == 1e-6
    assert (v.depth, v.hidden_size, v.intermediate_size, v.num_heads, v.out_hidden_size, v.window_size,
            v.fullatt_block_indexes) == (32, 1280, 3420, 16, 3584, 112, [7, 15, 23, 31])
    # Parameter counts of the hub's Qwen2.5-VL-7B-Instruct (8.29 B) and 3B-Instruct (3.75 B, tied lm_head).
    count = lambda plan: sum(torch.Size(s).numel() for _, s in plan)
    assert count(rc.tensor_plan(rc.hub_config("7b"))) == 8_292_166_656
    plan3 = rc.tensor_plan(rc.hub_config("3b"))
    assert count(plan3) == 3_754_622_976 and "lm_head.weight" not in dict(plan3)


def test_depth_overrides_keep_full_attention_blocks():
    cfg = rc.hub_config("7b", text_layers=1, vision_layers=10)
    assert cfg["num_hidden_layers"] == 1 and cfg["hidden_size"] == 3584
    assert cfg["vision_config"]["depth"] == 10 and cfg["vision_config"]["fullatt_block_indexes"] == [7]
    assert rc.hub_config("7b", vision_layers=2)["vision_config"]["fullatt_block_indexes"] == [1]
    with pytest.raises(ValueError):
        rc.hub_config("7b", text_layers=0)


def test_streamed_safetensors_read_back(tmp_path):
    from safetensors import safe_open

    values = {"a.weight": torch.randn(3, 5).to(torch.bfloat16), "b.bias": torch.randn(7).to(torch.bfloat16)}
    plan = [(k, list(v.shape)) for k, v in values.items()]
    written = rc._write_safetensors(tmp_path / "x.safetensors", plan, "BF16", 2, lambda n, s: values[n])
    assert written == 2 * (15 + 7)
    raw = (tmp_path / "x.safetensors").read_bytes()
    assert (8 + int.from_bytes(raw[:8], "little")) % 8 == 0
    with safe_open(str(tmp_path / "x.safetensors"), framework="pt") as f:
        for k, v in values.items():
            assert torch.equal(f.get_tensor(k), v)


def test_random_checkpoint_loads_in_transformers(random_tiny):
    from transformers import Qwen2_5_VLForConditionalGeneration

    ckpt = random_tiny
    index = json.loads((ckpt / "model.safetensors.index.json").read_text())
    shards = sorted(p.name for p in ckpt.glob("*.safetensors"))
    assert len(shards) > 1 and sorted(set(index["weight_map"].values())) == shards
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json",
                 "chat_template.json"):
        assert (ckpt / name).is_file()
    model, loading = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(ckpt), output_loading_info=True,
                                                                         dtype=torch.bfloat16)
    assert not loading["missing_keys"] and not loading["unexpected_keys"] and not loading["mismatched_keys"]
    assert model.config.text_config.num_hidden_layers == 2 and model.config.vision_config.depth == 3
    assert model.config.vision_config.fullatt_block_indexes == [1]
    weights = dict(model.named_parameters())
    assert torch.all(weights["model.language_model.norm.weight"] == 1)
    std = weights["model.language_model.layers.0.mlp.up_proj.weight"].float().std().item()
    assert 0.015 < std < 0.025


def test_random_checkpoint_exports_and_attnmap_reads_it(random_tiny, attnmap_bin, tmp_path):
    from memory_bench import model_metadata

    ckpt = random_tiny
    pt = tmp_path / "random.pt"
    proc = ref.export_checkpoint(ckpt, pt, dtype="bf16")
    assert proc.returncode == 0, proc.stderr
    meta = model_metadata(str(pt))  # read from the zip, as memory_bench does, without loading weights
    stored = json.loads((ckpt / "model.safetensors.index.json").read_text())["metadata"]["total_size"]
    assert meta["parameters"]["total"] * 2 == stored  # bf16; the tied lm_head is neither stored nor counted
    assert meta["dtype"] == "bfloat16"
    out = subprocess.run([attnmap_bin, "info", "--model", str(pt), "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    shown = shown.get("metadata", shown)
    assert shown["text"]["num_hidden_layers"] == 2 and shown["vision"]["fullatt_block_indexes"] == [1]
    assert shown["model_name"] == "random-qwen2_5_vl-tiny-t2-v3"


SMI = """\
0, 1024
0, 18000
[N/A], 18010
93, 30500
97, 31000
Unable to determine the device handle for GPU 0000:01:00.0: Unknown Error

100, 31020
12, 31020
"""


def test_nvidia_smi_csv_parsing():
    assert gpu_sampler.parse_smi_line("87, 40960\n") == (87.0, 40960.0)
    assert gpu_sampler.parse_smi_line("[Not Supported], 512") == (None, 512.0)
    assert gpu_sampler.parse_smi_line("No devices were found") is None
    assert gpu_sampler.parse_smi_line("") is None
    samples = gpu_sampler.parse_smi_output(SMI, start=10.0, interval=0.1)
    assert [s.busy for s in samples] == [0, 0, None, 93, 97, 100, 12]
    assert samples[3].t == pytest.approx(10.3) and samples[-1].used_mib == 31020


def test_steady_state_drops_the_load_phase():
    samples = gpu_sampler.parse_smi_output(SMI, start=10.0, interval=0.1)
    # Model loading (t < 10.3) and the tail after the last summary line (t > 10.55) are left out.
    stats = gpu_sampler.summarize(samples, t0=10.3, t1=10.55, baseline_mib=1024)
    assert stats["steady_samples"] == 3 and stats["mean_busy_pct"] == pytest.approx((93 + 97 + 100) / 3)
    assert stats["min_busy_pct"] == 93
    assert stats["peak_device_used_mib"] == 31020 and stats["peak_device_used_over_baseline_mib"] == 31020 - 1024
    assert stats["peak_process_mib"] is None
    assert gpu_sampler.baseline_used_mib(samples, before=10.05) == 1024
    empty = gpu_sampler.summarize([], 0, 1)
    assert empty["mean_busy_pct"] is None and empty["peak_device_used_mib"] is None


def test_sampler_without_a_gpu_does_not_fail(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi either
    with pytest.raises(gpu_sampler.NvmlError):
        gpu_sampler.Nvml(library=str(tmp_path / "libnvidia-ml.so.1"))
    s = gpu_sampler.GpuSampler(backend="nvidia-smi")
    s.start()
    assert s.stop() == [] and s.backend is None and "nvidia-smi" in s.error


FAKE_NVML = r"""
#include <stdio.h>
typedef struct { unsigned int gpu, memory; } util_t;
typedef struct { unsigned long long total, free, used; } mem_t;
typedef struct { unsigned int pid; unsigned long long used; unsigned int gi, ci; } proc_t;
static unsigned int calls;
int nvmlInit_v2(void) { return 0; }
int nvmlShutdown(void) { return 0; }
const char *nvmlErrorString(int rc) { return "fake"; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **h) { *h = (void *)0x1234; return i == 0 ? 0 : 2; }
int nvmlDeviceGetName(void *h, char *buf, unsigned int n) { snprintf(buf, n, "Fake GPU"); return h ? 0 : 1; }
int nvmlDeviceGetUtilizationRates(void *h, util_t *u) { u->gpu = 90 + calls++ % 3; u->memory = 5; return 0; }
int nvmlDeviceGetMemoryInfo(void *h, mem_t *m) { m->total = 80ULL << 30; m->used = 20ULL << 30; m->free = 60ULL << 30; return 0; }
int nvmlDeviceGetComputeRunningProcesses_v3(void *h, unsigned int *count, proc_t *p) {
  if (!p || *count < 2) { *count = 2; return 7; }  /* NVML_ERROR_INSUFFICIENT_SIZE */
  p[0].pid = 4242; p[0].used = 10ULL << 30; p[1].pid = 99; p[1].used = ~0ULL; *count = 2; return 0;
}
"""


def test_nvml_bindings_against_a_fake_library(tmp_path):
    """The ctypes plumbing (struct layouts, the two-call process listing, 'not available' memory)
    against a stand-in libnvidia-ml with NVML's signatures; the real library only exists on GPU machines."""
    import shutil

    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler for the fake NVML library")
    (tmp_path / "fake.c").write_text(FAKE_NVML)
    lib = tmp_path / "libfake-nvml.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(tmp_path / "fake.c")], check=True)
    nvml = gpu_sampler.Nvml(library=str(lib))
    assert nvml.name() == "Fake GPU"
    assert nvml.memory() == (20480.0, 81920.0)
    assert nvml.process_memory() == {4242: 10240.0, 99: None}
    s = gpu_sampler.GpuSampler(interval=0.02, nvml_library=str(lib))
    assert s.backend == "nvml" and s.device_name() == "Fake GPU"
    s.watch_pid(4242)
    s.start()
    time.sleep(0.2)
    samples = s.stop()
    s.close()
    assert len(samples) >= 3 and s.error is None
    assert all(90 <= x.busy <= 92 and x.used_mib == 20480 and x.proc_mib == 10240 for x in samples)
    assert gpu_sampler.summarize(samples)["peak_process_mib"] == 10240


def test_run_child_reports_rss_timeout_signal_and_memory_cap():
    py = sys.executable
    r = bench_common.run_child([py, "-c", "b = bytearray(200 << 20); print(len(b))"])
    assert r.ok and r.stdout.strip() == str(200 << 20) and r.peak_rss_mib > 200
    r = bench_common.run_child([py, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert r.timed_out and not r.ok and r.seconds < 10 and "timed out" in r.describe()
    r = bench_common.run_child([py, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    assert r.signal == 9 and "SIGKILL" in r.describe()
    r = bench_common.run_child([py, "-c", "bytearray(2 << 30)"], address_space_bytes=1 << 30)
    assert r.returncode == 1 and "MemoryError" in r.stderr


def test_sizes_are_multiples_of_28():
    assert bench_common.parse_size("1000") == (896, 896)      # 32 x 32 = 1,024 image tokens
    assert bench_common.parse_size("4000") == (1764, 1764)    # 3,969
    assert bench_common.parse_size("16000") == (3528, 3528)   # 15,876
    assert bench_common.parse_size("868x644") == (644, 868)   # width x height
    with pytest.raises(ValueError):
        bench_common.parse_size("870x644")


def test_batch_watcher_times_the_summary_lines(tmp_path):
    from batch_bench import LineWatcher

    w = LineWatcher(tmp_path)
    w()
    assert w.first is None
    partial = tmp_path / "summary.jsonl.partial"
    partial.write_text('{"id": 1}\n')
    w()
    first = w.first
    time.sleep(0.01)
    partial.write_text('{"id": 1}\n{"id": 2}\n{"id": 3}\n')
    w()
    partial.unlink()
    (tmp_path / "summary.jsonl").write_text('{"id": 1}\n{"id": 2}\n{"id": 3}\n')
    w()  # the final, renamed summary adds no line: the last time stays
    assert w.first == first and w.last > first and w.count == 3


def test_generate_bench_kv_cache_and_answer_maps_sizes():
    import generate_bench as gb

    meta = {"text": {"num_hidden_layers": 4, "num_key_value_heads": 2, "head_dim": 128}}
    # keys + values, 4 layers, 2 KV heads, 1,100 positions, 128 wide, fp32
    assert gb.kv_cache_bytes(meta, 1100) == 2 * 4 * 2 * 1100 * 128 * 4 == 9_011_200
    assert gb.kv_cache_bytes(meta, 1100, bytes_per_value=2) == 4_505_600
    assert gb.answer_maps_bytes(64, 4, 1024) == 64 * 4 * 1024 * 4


def test_generate_bench_per_token_and_timing_key():
    import generate_bench as gb

    assert gb.per_token_ms(630.0, 64) == pytest.approx(10.0)  # 63 decode steps after the prefill
    assert gb.per_token_ms(0.0, 1) is None and gb.per_token_ms(None, 8) is None
    assert gb.decode_timing_ms({"generate": 500.0, "decode": 0.1, "forward": 9.0}) == 500.0
    assert gb.decode_timing_ms({"decode": 420.0, "forward": 9.0}) is None  # "decode" is the image's
    assert gb.decode_timing_ms({"forward": 9.0}) is None


def test_generate_bench_scaling_verdict():
    import generate_bench as gb

    small = {"prefill_s": 2.0, "per_token_ms": 100.0, "seq_len": 290}
    cached = gb.scaling_verdict(small, {"prefill_s": 9.0, "per_token_ms": 115.0, "seq_len": 1050})
    assert cached["ok"] is True and cached["prefill_growth"] == pytest.approx(4.5)
    assert cached["per_token_growth"] == pytest.approx(1.15) and cached["seq_growth"] == pytest.approx(1050 / 290)
    # a decode step that re-ran the prefix grows like the prefill
    assert gb.scaling_verdict(small, {"prefill_s": 9.0, "per_token_ms": 400.0, "seq_len": 1050})["ok"] is False
    # tiny model: the prefill grows little, the per-token time not at all
    assert gb.scaling_verdict(small, {"prefill_s": 2.6, "per_token_ms": 99.0, "seq_len": 580})["ok"] is True
    assert gb.scaling_verdict(small, {"prefill_s": 2.0, "per_token_ms": 99.0, "seq_len": 580})["ok"] is None
    assert gb.scaling_verdict(small, {"prefill_s": 9.0, "per_token_ms": None, "seq_len": 1050})["ok"] is None


def test_generate_bench_memory_verdict():
    import generate_bench as gb

    kv, maps = 9 * 2**20, 1 * 2**20
    v = gb.memory_verdict(4000.0, 4020.0, kv, maps, slack_mib=32)
    assert v["ok"] and v["bound_mib"] == pytest.approx(42.0) and v["growth_mib"] == pytest.approx(20.0)
    assert not gb.memory_verdict(4000.0, 4043.0, kv, maps, slack_mib=32)["ok"]


def test_generate_bench_table_ratios_and_token_note():
    import generate_bench as gb

    def row(engine, tokens, prefill, per_token, rss):
        return {"model": "3b", "label": "1024 tokens", "engine": engine, "ok": True, "status": "ok",
                "image_tokens": 1024, "seq_len": 1049, "tokens": tokens, "prefill_s": prefill,
                "per_token_ms": per_token, "generate_s": prefill + per_token * (tokens - 1) / 1000,
                "process_s": 20.0, "peak_rss_mib": rss}

    rows = [row("attnmap", 30, 10.0, 300.0, 4000.0), row("eager", 64, 14.0, 450.0, 6000.0),
            row("sdpa", 64, 10.0, 250.0, 5000.0),
            {"model": "3b", "label": "1024 tokens", "engine": "eager", "ok": False, "status": "out of memory"}]
    lines = gb.result_table(rows).splitlines()
    assert lines[0].startswith("| model | image tokens | seq | engine | tokens |") and len(lines) == 6
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[3].startswith("attnmap") and cells[4] == "30" and cells[5] == "10.00" and cells[6] == "300.0"
    assert cells[-3:] == ["1.00x", "1.20x", "0.80x"]  # prefill, per token, RSS against sdpa
    assert [c.strip() for c in lines[4].strip("|").split("|")][-3:] == ["1.00x", "1.00x", "1.00x"]
    assert "out of memory" in lines[5]
    note = gb.token_counts_note(rows)
    assert note and "attnmap 30" in note and "eager 64" in note
    assert gb.token_counts_note([row("attnmap", 64, 1, 1, 1), row("sdpa", 64, 1, 1, 1)]) is None
    assert gb.same_prefix([1, 2, 3, 9], [1, 2, 3, 4, 5]) == 3 and gb.same_prefix([], [1]) == 0
