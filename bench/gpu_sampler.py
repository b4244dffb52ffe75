"""GPU busy fraction and memory, sampled in a background thread while a benchmark's child runs.

NVML through ctypes (libnvidia-ml.so.1, no pynvml needed); if it cannot be loaded, `nvidia-smi
--query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 100`. Each sample is
(monotonic time, busy %, device memory used MiB, memory of the watched processes MiB or None).
"busy %" is NVML's utilization.gpu: the share of the last sample period in which at least one kernel
ran on the device (not SM occupancy). The parent never initialises CUDA, so its own context does not
show up in the figures.

    sampler = GpuSampler(index=0, interval=0.1)
    sampler.start(); proc = subprocess.Popen(...); sampler.watch_pid(proc.pid); ...; sampler.stop()
    stats = summarize(sampler.samples, t0, t1)   # steady state between two monotonic times
"""
import ctypes
import subprocess
import threading
import time
from typing import Iterable, List, NamedTuple, Optional, Set, Tuple

NVML_SUCCESS = 0
NVML_ERROR_INSUFFICIENT_SIZE = 7
NVML_VALUE_NOT_AVAILABLE = (1 << 64) - 1  # usedGpuMemory when the driver does not tell (containers, WDDM)


class Sample(NamedTuple):
    t: float                    # time.monotonic()
    busy: Optional[float]       # percent
    used_mib: Optional[float]   # whole device
    proc_mib: Optional[float]   # sum over the watched pids, None when NVML cannot attribute memory


class _Utilization(ctypes.Structure):
    _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]


class _Memory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


class _ProcessInfoV1(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_uint), ("usedGpuMemory", ctypes.c_ulonglong)]


class _ProcessInfoV2(ctypes.Structure):  # also the layout of the _v3 entry point
    _fields_ = [("pid", ctypes.c_uint), ("usedGpuMemory", ctypes.c_ulonglong),
                ("gpuInstanceId", ctypes.c_uint), ("computeInstanceId", ctypes.c_uint)]


class NvmlError(RuntimeError):
    pass


class Nvml:
    """The few NVML calls the benchmarks need."""

    def __init__(self, index: int = 0, library: str = "libnvidia-ml.so.1"):
        try:
            self.lib = ctypes.CDLL(library)
        except OSError as e:
            raise NvmlError(f"cannot load {library}: {e}")
        self._check(self.lib.nvmlInit_v2(), "nvmlInit_v2")
        self.handle = ctypes.c_void_p()
        self._check(self.lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(index), ctypes.byref(self.handle)),
                    "nvmlDeviceGetHandleByIndex_v2")
        self._procs = None
        for name, struct in (("nvmlDeviceGetComputeRunningProcesses_v3", _ProcessInfoV2),
                             ("nvmlDeviceGetComputeRunningProcesses_v2", _ProcessInfoV2),
                             ("nvmlDeviceGetComputeRunningProcesses", _ProcessInfoV1)):
            if hasattr(self.lib, name):
                self._procs = (getattr(self.lib, name), struct)
                break

    def _check(self, rc: int, what: str) -> None:
        if rc != NVML_SUCCESS:
            msg = f"{what} failed with NVML error {rc}"
            try:
                self.lib.nvmlErrorString.restype = ctypes.c_char_p
                msg += f" ({self.lib.nvmlErrorString(rc).decode()})"
            except Exception:
                pass
            raise NvmlError(msg)

    def name(self) -> str:
        buf = ctypes.create_string_buffer(96)
        self._check(self.lib.nvmlDeviceGetName(self.handle, buf, ctypes.c_uint(96)), "nvmlDeviceGetName")
        return buf.value.decode(errors="replace")

    def utilization(self) -> float:
        u = _Utilization()
        self._check(self.lib.nvmlDeviceGetUtilizationRates(self.handle, ctypes.byref(u)),
                    "nvmlDeviceGetUtilizationRates")
        return float(u.gpu)

    def memory(self) -> Tuple[float, float]:
        """(used, total) MiB of the whole device."""
        m = _Memory()
        self._check(self.lib.nvmlDeviceGetMemoryInfo(self.handle, ctypes.byref(m)), "nvmlDeviceGetMemoryInfo")
        return m.used / 2**20, m.total / 2**20

    def process_memory(self) -> Optional[dict]:
        """{pid: MiB} of the compute processes on the device; None if NVML cannot list them."""
        if self._procs is None:
            return None
        fn, struct = self._procs
        count = ctypes.c_uint(0)
        rc = fn(self.handle, ctypes.byref(count), None)
        if rc == NVML_SUCCESS:
            return {}
        if rc != NVML_ERROR_INSUFFICIENT_SIZE:
            return None
        count = ctypes.c_uint(count.value + 8)  # processes may start between the two calls
        infos = (struct * count.value)()
        if fn(self.handle, ctypes.byref(count), infos) != NVML_SUCCESS:
            return None
        return {infos[i].pid: (None if infos[i].usedGpuMemory == NVML_VALUE_NOT_AVAILABLE
                               else infos[i].usedGpuMemory / 2**20) for i in range(count.value)}

    def close(self) -> None:
        self.lib.nvmlShutdown()


def parse_smi_line(line: str) -> Optional[Tuple[Optional[float], Optional[float]]]:
    """'87, 40960' (utilization.gpu, memory.used in MiB, csv,noheader,nounits) -> (87.0, 40960.0).
    Fields nvidia-smi cannot read ('[N/A]', '[Not Supported]') become None; other lines (errors,
    blank) give None."""
    parts = [p.strip() for p in line.strip().split(",")]
    if len(parts) != 2:
        return None
    values: List[Optional[float]] = []
    for p in parts:
        try:
            values.append(float(p))
        except ValueError:
            if p.startswith("[") and p.endswith("]"):
                values.append(None)
            else:
                return None
    return values[0], values[1]


def parse_smi_output(text: str, start: float = 0.0, interval: float = 0.1) -> List[Sample]:
    """Canned `nvidia-smi ... -lms` output -> samples spaced `interval` apart from `start`."""
    samples = []
    for line in text.splitlines():
        parsed = parse_smi_line(line)
        if parsed is not None:
            samples.append(Sample(start + interval * len(samples), parsed[0], parsed[1], None))
    return samples


class GpuSampler:
    """Samples one GPU every `interval` seconds in a daemon thread (NVML, else nvidia-smi)."""

    def __init__(self, index: int = 0, interval: float = 0.1, backend: str = "auto",
                 nvml_library: str = "libnvidia-ml.so.1"):
        self.index = index
        self.interval = interval
        self.samples: List[Sample] = []
        self.pids: Set[int] = set()
        self.backend = None
        self.error = None
        self._stop = threading.Event()
        self._thread = None
        self._smi = None
        self._nvml = None
        if backend in ("auto", "nvml"):
            try:
                self._nvml = Nvml(index, nvml_library)
                self.backend = "nvml"
            except NvmlError as e:
                self.error = str(e)
                if backend == "nvml":
                    raise
        if self._nvml is None and backend in ("auto", "nvidia-smi"):
            self.backend = "nvidia-smi"

    def device_name(self) -> Optional[str]:
        if self._nvml is not None:
            try:
                return self._nvml.name()
            except NvmlError:
                return None
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", str(self.index)],
                                 capture_output=True, text=True, timeout=30)
            return out.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None

    def watch_pid(self, pid: int) -> None:
        self.pids.add(pid)

    def start(self) -> "GpuSampler":
        self._stop.clear()
        if self.backend == "nvml":
            self._thread = threading.Thread(target=self._run_nvml, daemon=True)
        elif self.backend == "nvidia-smi":
            try:
                self._smi = subprocess.Popen(
                    ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
                     "-lms", str(max(1, int(self.interval * 1000))), "-i", str(self.index)],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            except OSError as e:
                self.error = f"{self.error}; nvidia-smi: {e}" if self.error else f"nvidia-smi: {e}"
                self.backend = None
                return self
            self._thread = threading.Thread(target=self._run_smi, daemon=True)
        else:
            return self
        self._thread.start()
        return self

    def _run_nvml(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                busy = self._nvml.utilization()
                used, _ = self._nvml.memory()
                procs = self._nvml.process_memory() if self.pids else None
            except NvmlError as e:
                self.error = str(e)
                break
            mine = None
            if procs is not None:
                known = [procs[p] for p in self.pids if p in procs and procs[p] is not None]
                mine = sum(known) if known else None
            self.samples.append(Sample(t, busy, used, mine))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t)))

    def _run_smi(self) -> None:
        for line in self._smi.stdout:
            parsed = parse_smi_line(line)
            if parsed is not None:
                self.samples.append(Sample(time.monotonic(), parsed[0], parsed[1], None))
            if self._stop.is_set():
                break

    def stop(self) -> List[Sample]:
        self._stop.set()
        if self._smi is not None:
            self._smi.terminate()
            try:
                self._smi.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._smi.kill()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return self.samples

    def close(self) -> None:
        if self._nvml is not None:
            self._nvml.close()
            self._nvml = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def window(samples: Iterable[Sample], t0: Optional[float] = None, t1: Optional[float] = None) -> List[Sample]:
    return [s for s in samples if (t0 is None or s.t >= t0) and (t1 is None or s.t <= t1)]


def summarize(samples: List[Sample], t0: Optional[float] = None, t1: Optional[float] = None,
              baseline_mib: Optional[float] = None) -> dict:
    """Mean busy % over [t0, t1] (the steady state), and memory peaks over all samples:
    peak device memory used, that minus `baseline_mib` (the device before the child started), and
    the peak that NVML attributes to the watched processes (None when it cannot)."""
    steady = [s.busy for s in window(samples, t0, t1) if s.busy is not None]
    used = [s.used_mib for s in samples if s.used_mib is not None]
    proc = [s.proc_mib for s in samples if s.proc_mib is not None]
    peak_used = max(used) if used else None
    return {
        "steady_samples": len(steady),
        "mean_busy_pct": sum(steady) / len(steady) if steady else None,
        "min_busy_pct": min(steady) if steady else None,
        "peak_device_used_mib": peak_used,
        "peak_device_used_over_baseline_mib": (peak_used - baseline_mib
                                               if peak_used is not None and baseline_mib is not None else None),
        "peak_process_mib": max(proc) if proc else None,
    }


def baseline_used_mib(samples: List[Sample], before: float) -> Optional[float]:
    """Device memory used just before `before` (the child's start): what other processes held."""
    prior = [s.used_mib for s in samples if s.t <= before and s.used_mib is not None]
    return prior[-1] if prior else None
