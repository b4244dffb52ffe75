"""What the benchmark scripts share: the machine line, running one child process with its own peak
RSS (os.wait4), an optional address-space cap, a timeout, and a callback polled while it runs."""
import dataclasses
import os
import platform
import resource
import signal
import subprocess
import tempfile
import time
from typing import Callable, List, Optional


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine(gpu_name: Optional[str] = None) -> str:
    mem = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem = f", {pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError):
        pass
    gpu = f", GPU: {gpu_name}" if gpu_name else ""
    return (f"{platform.node()}: {os.cpu_count()} cores, {cpu_model()}{mem}{gpu}, "
            f"{platform.system()} {platform.release()}")


def load_average() -> str:
    """The 1/5/15-minute load averages: other work on the machine skews CPU timings (on 2 busy cores,
    OpenMP threads that wait for a descheduled peer make a forward many times slower)."""
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load average unknown"


@dataclasses.dataclass
class ChildResult:
    seconds: float
    peak_rss_mib: float
    returncode: Optional[int]     # None when killed by a signal
    signal: Optional[int]
    timed_out: bool
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        """One phrase for a failed child: exit code, signal, timeout."""
        if self.timed_out:
            return f"timed out after {self.seconds:.0f} s"
        if self.signal is not None:
            name = signal.Signals(self.signal).name if self.signal in signal.Signals._value2member_map_ else self.signal
            hint = " (the kernel's OOM killer?)" if self.signal == signal.SIGKILL else ""
            return f"killed by {name}{hint}"
        return f"exit code {self.returncode}"


def run_child(cmd: List[str], env: Optional[dict] = None, timeout: Optional[float] = None,
              address_space_bytes: Optional[int] = None, poll: Optional[Callable[[], None]] = None,
              poll_interval: float = 0.05, on_start: Optional[Callable[[int], None]] = None) -> ChildResult:
    """Runs cmd in its own session and returns its wall time and its own peak RSS (rusage from wait4,
    so other processes do not count). `address_space_bytes` caps the child's virtual memory
    (RLIMIT_AS) so that an allocation past it fails inside the child instead of exhausting the
    machine (do not use it with CUDA, which reserves far more address space than it uses).
    `poll` is called every `poll_interval` s while the child runs; `on_start(pid)` once."""

    def limit():
        if address_space_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes, address_space_bytes))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, start_new_session=True,
                                preexec_fn=limit if address_space_bytes else None)
        if on_start:
            on_start(proc.pid)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if poll:
                poll()
            if timeout is not None and time.perf_counter() - start > timeout and not timed_out:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)  # the child's own session: only what we started
            time.sleep(poll_interval)
        proc.returncode = os.waitstatus_to_exitcode(status)  # keeps Popen from waiting again
        seconds = time.perf_counter() - start
        if poll:
            poll()
        out.seek(0)
        err.seek(0)
        sig = -proc.returncode if proc.returncode < 0 else None
        return ChildResult(seconds, usage.ru_maxrss / 1024.0, None if sig else proc.returncode, sig, timed_out,
                           out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def side_for_tokens(tokens: int) -> int:
    """Merged-token side of the square image closest to `tokens` image tokens (one token = 28x28 px)."""
    return max(1, round(tokens ** 0.5))


def parse_size(text: str):
    """'868x644' (pixels, width x height, multiples of 28) or '1000' (image tokens: the nearest square)
    -> (height, width). One image token covers 28x28 pixels, so tokens = (H/28)*(W/28)."""
    text = text.strip().lower()
    if "x" in text:
        w, h = (int(v) for v in text.split("x", 1))
        if h % 28 or w % 28 or h < 56 or w < 56:
            raise ValueError(f"size {text}: width and height must be multiples of 28 and >= 56 "
                             "(so the processor's smart_resize keeps them)")
        return h, w
    side = side_for_tokens(int(text)) * 28
    return side, side
