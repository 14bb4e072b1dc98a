#!/usr/bin/python3
"""bench.py — what encryption costs: cmkfs side by side with its baselines.

Every configuration runs on the same backing store (a tmpfs mounted for the
run, or --backing DIR), each on a fresh file or volume.  The cmkfs mounts
take FUSE requests over io_uring when the kernel has it (--fuse-io-uring;
the bench enables it for the run and restores the kernel's setting):

  raw        fio on a plain file in the backing store: the ceiling
  null       cmkfs, benchmark-only cipher_null volume, `cmkfs mount --raw`:
             FUSE + io_uring alone (`cmkfs create --cipher null
             --insecure`; NOT encrypted)
  xts        cmkfs, AES-256-XTS volume, `cmkfs mount --raw`: the product
  xts-devfuse  the same volume type served through /dev/fuse instead of FUSE
             over io_uring (`--fuse-io-uring off`): what the transport
             brings (only when the kernel has FUSE over io_uring)
  loop-xts   the xts volume's plaintext file through a loop device attached
             as `cmkfs mount` attaches one (direct I/O, the volume's sector
             size); fio on the block device
  gocryptfs  a file in a gocryptfs mount whose cipher dir is in the backing
             store (when installed; --no-peers leaves it out)

The workloads are the sections of bench/fio/workloads.fio.  Repetitions are
interleaved (repetition 1: workload 1 on every configuration, workload 2 on
every configuration, ...; then repetition 2) so that drift hits all alike;
the report gives medians with min-max, and ratios computed pair by pair
within each repetition.  --db adds pgbench on ext4 over cmkfs (`cmkfs mount
--fs ext4`) against ext4 over a plain loop device.  Then the xts volume is
reencrypted while mounted (`cmkfs reencrypt`): fio during the job against
fio without one, pair by pair, and the time of a job alone
(--no-reencrypt leaves it out).  Everything it mounts,
attaches and starts is undone at the end, on failure and on Ctrl-C.

Needs root (tmpfs, FUSE, loop devices).  Output: a Markdown report on stdout
and in OUT/report.md, OUT/results.json, OUT/fio/*.json (every fio run),
OUT/*.png (gnuplot), where OUT is --out, else bench/results/<timestamp> in a
source tree (`make bench`) and ./cmkfs-bench-<timestamp> for an installed
cmkfs (`cmkfs bench`).

Two layouts, and where each finds the programs it drives:
  source tree  bench/bench.py; cmkfs, cmkfs-kmsd and cmkfs-crypto-speed in
               the build directory (--build, default $BUILD or build)
  installed    PREFIX/lib/cmkfs/bench/bench.py; cmkfs and cmkfs-kmsd in
               PREFIX/bin, cmkfs-crypto-speed in PREFIX/lib/cmkfs
--cmkfs, --kmsd and --crypto-speed name each program explicitly (`cmkfs
bench` passes them).
"""

import argparse
import json
import os
import re
import shutil
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
# A source tree has the C sources beside this file; an installed copy
# (PREFIX/lib/cmkfs/bench) has only what the bench reads.
IN_SOURCE = os.path.exists(os.path.join(HERE, "crypto_speed.c"))
LIBDIR = os.path.dirname(HERE)  # installed: PREFIX/lib/cmkfs
BINDIR = os.path.normpath(os.path.join(LIBDIR, "..", "..", "bin"))
# `cmkfs bench` runs us under its own name (for --help and usage errors);
# not passed on to the programs we start.
PROG = os.environ.pop("CMKFS_BENCH_PROG", None) or "bench.py"
FIO_JOBS = os.path.join(HERE, "fio", "workloads.fio")
CONFIGS = ["raw", "null", "xts", "xts-devfuse", "loop-xts", "gocryptfs"]
# The online reencryption's workloads, and the block it rewrites at a time
# (LUKS2_HOTZONE_BYTES).
REENC_WORKLOADS = ["randrw70-4k-qd32"]
REENC_BLOCK = 4 << 20
CMKFS_CONFIGS = ("null", "xts", "xts-devfuse", "loop-xts")
# Ratios of throughput, each computed within one repetition.
RATIOS = [("xts", "null"), ("xts", "raw"), ("xts", "gocryptfs"),
          ("loop-xts", "xts"), ("xts", "xts-devfuse")]
FUSE_URING_PARAM = "/sys/module/fuse/parameters/enable_uring"
MIB = 1 << 20
GIB = 1 << 30
TICK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


class Unavailable(Exception):
    """A configuration that cannot run here: skipped with the reason."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# Debian packages of the tools the bench cannot do without.
PACKAGES = {"fio": "fio", "losetup": "mount", "cryptsetup": "cryptsetup-bin"}


def how_to_get(what):
    """How to get a missing tool or program, for error messages."""
    if what in PACKAGES:
        return ("scripts/deps.sh installs it" if IN_SOURCE else
                f"install it, e.g. apt-get install {PACKAGES[what]}")
    return "run make" if IN_SOURCE else "reinstall cmkfs (make install)"


def run(cmd, env=None, check=True, quiet=False, timeout=None, **kw):
    """Run cmd; return its stdout.  On failure raise BenchError with stderr."""
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout,
                       **kw)
    if check and p.returncode != 0:
        raise BenchError(f"{' '.join(cmd)}: exit {p.returncode}: "
                         f"{(p.stderr or p.stdout).strip()}")
    if not quiet and p.returncode != 0:
        log(f"bench: {' '.join(cmd)}: exit {p.returncode}: "
            f"{p.stderr.strip()}")
    return p.stdout


def parse_size(s):
    m = re.fullmatch(r"(\d+)([KMGT]?)i?B?", s.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {s!r} (e.g. 512M, 2G)")
    return int(m.group(1)) << (10 * " KMGT".index(m.group(2).upper() or " "))


def human(n):
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


def workloads():
    """The workload sections of the fio job file, in order."""
    names = []
    with open(FIO_JOBS) as f:
        for line in f:
            m = re.match(r"\[([^\]]+)\]", line.strip())
            if m and m.group(1) not in ("global", "prefill"):
                names.append(m.group(1))
    return names


def is_mount(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


# ---- cleanup ----------------------------------------------------------------

class Cleanup:
    """Undo actions, run last-in first-out, each at most once, each allowed
    to fail without stopping the others."""

    def __init__(self):
        self.stack = []

    def push(self, what, fn):
        self.stack.append((what, fn))
        return len(self.stack) - 1

    def pop(self, idx):
        """Run one action now (e.g. an unmount before the run ends)."""
        what, fn = self.stack[idx]
        self.stack[idx] = (what, None)
        if fn:
            self._do(what, fn)

    def _do(self, what, fn):
        try:
            fn()
        except Exception as e:  # keep undoing the rest
            log(f"bench: cleanup: {what}: {e}")

    def run_all(self):
        while self.stack:
            what, fn = self.stack.pop()
            if fn:
                self._do(what, fn)


INTERRUPTED = []


def on_signal(signum, _frame):
    # Turn SIGINT/SIGTERM/SIGHUP into an exception so that every finally
    # runs; further signals are ignored while cleaning up.
    INTERRUPTED.append(signum)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


# ---- CPU accounting -----------------------------------------------------------

def proc_cpu(pid):
    """utime + stime of pid (all its threads) in seconds, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def system_cpu():
    """Busy CPU seconds of the whole machine (user, nice, system, irq,
    softirq, steal): includes kernel workers such as the loop device's."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / TICK


# ---- the local KMS ------------------------------------------------------------

class Kms:
    """cmkfs-kmsd in a private directory, with a key for the volumes."""

    def __init__(self, kmsd, cmkfs, work, cleanup):
        self.dir = os.path.join(work, "kms")
        state = os.path.join(self.dir, "state")
        os.makedirs(self.dir)
        admin = run([kmsd, "init", "--state", state, "--account",
                     "111111111111", "--region", "us-east-1"])
        host = run([kmsd, "principal", "add", "--state", state,
                    "arn:aws:iam::111111111111:role/db-host"])
        out = open(os.path.join(self.dir, "kmsd.out"), "w")
        self.proc = subprocess.Popen(
            [kmsd, "serve", "--state", state, "--listen", "127.0.0.1:0",
             "--log", os.path.join(self.dir, "access.log")],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        cleanup.push("stop cmkfs-kmsd", self.stop)
        url = None
        for _ in range(100):
            with open(os.path.join(self.dir, "kmsd.out")) as f:
                m = re.search(r"listening on (http:\S+)", f.read())
            if m:
                url = m.group(1)
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        if not url:
            raise BenchError("cmkfs-kmsd did not start")
        self.admin_env = self._env(admin, url)
        self.host_env = self._env(host, url)
        self.key = run([cmkfs, "kms", "create-key", "--description",
                        "cmkfs bench"], env=self.admin_env).split()[-1]

    @staticmethod
    def _env(text, url):
        """The environment cmkfs-kmsd prints for a principal, applied to a
        copy of ours with nothing else of AWS left in it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        for line in text.splitlines():
            m = re.match(r"export (\w+)=(.*)$", line.strip())
            if m:
                env[m.group(1)] = m.group(2).strip("'\"")
        env["AWS_ENDPOINT_URL_KMS"] = url
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        return env

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- targets: what fio runs against ----------------------------------------------

class Target:
    """One configuration, set up: fio's target path and the process whose
    CPU time counts with fio's (the daemon), if any."""

    def __init__(self, name, path, pid=None, note="", vol=None):
        self.name, self.path, self.pid, self.note = name, path, pid, note
        self.vol = vol  # the cmkfs volume behind it, if any


class Bench:
    def __init__(self, args):
        self.args = args
        self.cleanup = Cleanup()
        self.cmkfs = args.cmkfs
        self.kmsd = args.kmsd
        self.kms = None
        self.targets = {}
        self.skipped = {}  # configuration -> reason
        self._transport = None
        self.notes = {}

    # -- setup --

    def setup_work(self):
        self.work = tempfile.mkdtemp(prefix="cmkfs-bench.")
        # postgres (--db) must traverse it
        os.chmod(self.work, 0o711)
        self.cleanup.push(f"remove {self.work}",
                          lambda: shutil.rmtree(self.work, ignore_errors=True))
        # The daemons' runtime state, private to the run.  Not below the
        # work directory: a control socket's path must fit sun_path (108
        # bytes), and the work directory may lie deep (TMPDIR).
        self.runtime_dir = tempfile.mkdtemp(
            prefix="cmkfs-bench.",
            dir="/run" if os.access("/run", os.W_OK) else None)
        self.cleanup.push(f"remove {self.runtime_dir}", lambda: shutil.rmtree(
            self.runtime_dir, ignore_errors=True))
        if self.args.backing:
            self.backing = tempfile.mkdtemp(prefix="cmkfs-bench.",
                                            dir=self.args.backing)
            os.chmod(self.backing, 0o711)
            self.cleanup.push(f"remove {self.backing}", lambda: shutil.rmtree(
                self.backing, ignore_errors=True))
        else:
            self.backing = os.path.join(self.work, "backing")
            os.makedirs(self.backing)
            need = self.tmpfs_size()
            with open("/proc/meminfo") as f:
                avail = int(re.search(r"MemAvailable:\s+(\d+)",
                                      f.read()).group(1)) << 10
            if need > avail * 0.8:
                raise BenchError(
                    f"the tmpfs backing store needs {need >> 20} MiB, "
                    f"{avail >> 20} MiB of memory available: lower --size "
                    "or use --backing DIR")
            run(["mount", "-t", "tmpfs", "-o",
                 f"size={need >> 20}m,mode=0711", "cmkfs-bench",
                 self.backing])
            self.cleanup.push(f"unmount tmpfs {self.backing}",
                              lambda: self.umount_path(self.backing))

    def tmpfs_size(self):
        files = (len(self.configs) + 1) * (self.args.size + 32 * MIB)
        if self.args.db:
            files += 2 * (self.args.db_size + 32 * MIB)
        return files + 256 * MIB

    def cmkfs_env(self, principal="host"):
        env = dict(self.kms.host_env if principal == "host"
                   else self.kms.admin_env)
        env["CMKFS_RUNTIME_DIR"] = self.runtime_dir
        env["HOME"] = self.work
        return env

    def need_kms(self):
        if self.kms is None:
            if not os.access(self.kmsd, os.X_OK):
                raise Unavailable(f"{self.kmsd} is missing "
                                  f"({how_to_get('cmkfs-kmsd')})")
            self.kms = Kms(self.kmsd, self.cmkfs, self.work, self.cleanup)

    def mount_available(self):
        """cmkfs mount exists in the binary we were given."""
        if not hasattr(self, "_mount_ok"):
            p = subprocess.run([self.cmkfs, "help", "mount"],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            self._mount_ok = (p.returncode == 0 and
                              "usage: cmkfs mount" in p.stdout)
        return self._mount_ok

    def create_volume(self, name, size, null=False):
        self.need_kms()
        vol = os.path.join(self.backing, f"{name}.img")
        # BENCHMARK ONLY: a cipher_null volume is not encrypted.
        null_args = ["--cipher", "null", "--insecure"] if null else []
        out = run([self.cmkfs, "create", vol, "--size", f"{size >> 20}M",
                   "--key-arn", self.kms.key] + null_args,
                  env=self.cmkfs_env())
        self.cleanup.push(f"remove {vol}", lambda: os.path.exists(vol) and
                          os.unlink(vol))
        if null:
            dump = run(["cryptsetup", "luksDump", vol])
            if "cipher: cipher_null" not in dump:
                raise BenchError(f"{vol}: cryptsetup does not see cipher_null")
        m = re.search(r"uuid\s+(\S+)", out)
        uuid = m.group(1) if m else run(["cryptsetup", "luksUUID",
                                         vol]).strip()
        return vol, uuid

    def need_mount(self):
        if not self.mount_available():
            raise Unavailable(f"cmkfs mount unavailable in {self.cmkfs} "
                              "(--cmkfs PATH or $CMKFS_BENCH_CMKFS names "
                              "a binary that has it)")

    def transport(self):
        """on or off: --fuse-io-uring for the cmkfs mounts.  With on, the
        kernel's setting is turned on for the run and restored after."""
        if self._transport is None:
            want = self.args.fuse_io_uring
            try:
                with open(FUSE_URING_PARAM) as f:
                    orig = f.read().strip()
            except OSError:
                orig = None
            if want == "auto":
                want = "off" if orig is None else "on"
            if want == "on" and orig is None:
                raise BenchError("--fuse-io-uring on: this kernel has no "
                                 "FUSE over io_uring (Linux 6.14+)")
            if want == "on" and orig != "Y":
                def restore():
                    with open(FUSE_URING_PARAM, "w") as f:
                        f.write(orig + "\n")
                self.cleanup.push(f"restore {FUSE_URING_PARAM}={orig}",
                                  restore)
            self._transport = want
        return self._transport

    def cmkfs_mount(self, vol, uuid, target, extra):
        self.need_mount()
        logf = os.path.join(self.work, f"daemon-{uuid}.log")
        run([self.cmkfs, "mount", vol, target, *extra,
             *shlex.split(self.args.mount_args), "--log", logf],
            env=self.cmkfs_env())
        self.cleanup.push(f"cmkfs umount {target}",
                          lambda: self.cmkfs_umount(target, uuid))
        pid = None
        for name in ("pid", "state"):
            try:
                with open(os.path.join(self.runtime_dir, uuid, name)) as f:
                    m = re.search(r"(?:^|pid=)(\d+)", f.read(), re.M)
                if m:
                    pid = int(m.group(1))
                    break
            except OSError:
                pass
        if pid is None:
            raise BenchError(f"no daemon pid in {self.runtime_dir}/{uuid}")
        return pid

    def cmkfs_umount(self, target, uuid):
        state = {}
        try:
            with open(os.path.join(self.runtime_dir, uuid, "state")) as f:
                state = dict(line.split("=", 1) for line in
                             f.read().splitlines() if "=" in line)
        except OSError:
            pass
        p = subprocess.run([self.cmkfs, "umount", target],
                           env=self.cmkfs_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        if p.returncode == 0:
            return
        log(f"bench: cmkfs umount {target}: {p.stdout.strip()}; "
            "cleaning up by hand")
        for path in (target, state.get("fuse", "")):
            if path and is_mount(path):
                subprocess.run(["umount", "-l", path])
        if state.get("loop"):
            subprocess.run(["losetup", "-d", state["loop"]])
        pid = int(state.get("pid", "0") or 0)
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def umount_path(self, path):
        # A loop device just detached lets go of its file a moment later:
        # retry a little before a lazy unmount.
        for _ in range(20):
            if not is_mount(path):
                return
            if subprocess.run(["umount", path],
                              stderr=subprocess.DEVNULL).returncode == 0:
                return
            time.sleep(0.1)
        log(f"bench: {path} is busy; unmounting it lazily")
        subprocess.run(["umount", "-l", path])

    def loop_attach(self, path, sector=4096):
        dev = run(["losetup", "--direct-io=on", "--sector-size", str(sector),
                   "--show", "-f", path]).strip()
        self.cleanup.push(f"detach {dev}", lambda: run(["losetup", "-d", dev]))
        return dev

    def setup(self, name):
        size = self.args.size
        if name == "raw":
            path = os.path.join(self.backing, "raw.img")
            with open(path, "wb") as f:
                f.truncate(size)
            return Target(name, path)
        if name in ("null", "xts", "xts-devfuse"):
            self.need_mount()
            transport = self.transport()
            if name == "xts-devfuse":
                if transport == "off":
                    raise Unavailable("the same as xts here: no FUSE over "
                                      "io_uring (see --fuse-io-uring)")
                transport = "off"
            vol, uuid = self.create_volume(name, size, null=(name == "null"))
            plain = os.path.join(self.work, f"{name}.plain")
            # BENCHMARK ONLY: the header allow-list refuses a cipher_null
            # volume unless told it is one on purpose.
            insecure = ["--insecure"] if name == "null" else []
            pid = self.cmkfs_mount(vol, uuid, plain,
                                   ["--raw", "--fuse-io-uring", transport,
                                    *insecure])
            return Target(name, plain, pid,
                          "FUSE over io_uring" if transport == "on"
                          else "FUSE through /dev/fuse", vol=vol)
        if name == "loop-xts":
            if "xts" not in self.targets:
                raise Unavailable("needs the xts configuration "
                                  f"({self.skipped.get('xts', 'not run')})")
            xts = self.targets["xts"]
            dev = self.loop_attach(xts.path)
            return Target(name, dev, xts.pid,
                          "loop device (direct I/O, 4096-byte sectors) "
                          "on the xts plaintext file")
        if name == "gocryptfs":
            return self.setup_gocryptfs()
        raise BenchError(f"unknown configuration {name}")

    def setup_gocryptfs(self):
        exe = shutil.which("gocryptfs")
        if not exe:
            raise Unavailable("gocryptfs is not installed")
        fusermount = shutil.which("fusermount3") or shutil.which("fusermount")
        cipher = os.path.join(self.backing, "gocryptfs.cipher")
        mnt = os.path.join(self.work, "gocryptfs.mnt")
        pw = os.path.join(self.work, "gocryptfs.pw")
        os.makedirs(cipher)
        os.makedirs(mnt)
        with open(pw, "w") as f:
            f.write(os.urandom(16).hex() + "\n")
        extpass = ["-extpass", f"cat {pw}"]
        run([exe, "-init", "-q", "-scryptn", "10", *extpass, cipher])
        proc = subprocess.Popen([exe, "-fg", "-q", *extpass, cipher, mnt],
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)

        def stop():
            # An io_uring that fio left behind holds the file a moment
            # after fio is gone: retry, then unmount lazily.
            for _ in range(30):
                if not is_mount(mnt) or subprocess.run(
                        [fusermount, "-u", mnt] if fusermount
                        else ["umount", mnt],
                        stderr=subprocess.DEVNULL).returncode == 0:
                    break
                time.sleep(0.1)
            else:
                subprocess.run(["umount", "-l", mnt])
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.cleanup.push(f"unmount gocryptfs {mnt}", stop)
        for _ in range(100):
            if is_mount(mnt):
                break
            if proc.poll() is not None:
                raise BenchError("gocryptfs exited: " +
                                 proc.stderr.read().decode().strip())
            time.sleep(0.05)
        else:
            raise BenchError("gocryptfs did not mount")
        path = os.path.join(mnt, "bench.dat")
        with open(path, "wb") as f:
            f.truncate(self.args.size)
        v = run([exe, "-version"]).split(";")[0].strip()
        return Target("gocryptfs", path, proc.pid,
                      f"{v}, default cipher (AES-256-GCM)")

    # -- fio --

    def fio(self, target, section, outfile, runtime, ramp):
        env = dict(os.environ, TARGET=target.path, SIZE=str(self.args.size),
                   RUNTIME=str(runtime), RAMP=f"{int(ramp * 1000)}ms")
        cmd = ["fio", f"--section={section}", "--output-format=json",
               f"--output={outfile}", FIO_JOBS]
        d0 = proc_cpu(target.pid) if target.pid else None
        s0 = system_cpu()
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            while True:
                try:
                    out, err = proc.communicate(timeout=1)
                    break
                except subprocess.TimeoutExpired:
                    self.tick(time.monotonic() - t0)
        except BaseException:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
        wall = time.monotonic() - t0
        s1 = system_cpu()
        d1 = proc_cpu(target.pid) if target.pid else None
        if proc.returncode != 0 and (INTERRUPTED or proc.returncode < 0):
            # Ctrl-C reached fio (same process group) before us.
            raise KeyboardInterrupt("fio interrupted")
        if proc.returncode != 0:
            raise BenchError(f"fio {section} on {target.name}: "
                             f"{(err or out).strip()[-500:]}")
        with open(outfile) as f:
            text = f.read()
        # fio may print warnings before the JSON in the same file
        data = json.loads(text[text.index("{"):])
        return data, wall, (d0, d1), s1 - s0

    def prefill(self, target):
        out = os.path.join(self.out, "fio", f"prefill-{target.name}.json")
        self.fio(target, "prefill", out, 0, 0)

    def drop_caches(self):
        """On a disk, every run starts from a cold page cache: gocryptfs
        reads its backing files through it (the others bypass it with
        O_DIRECT), and a block it cached in an earlier run would make it
        look faster than the disk.  tmpfs is itself page cache: nothing to
        drop there."""
        if not self.args.backing:
            return False
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")
        return True

    def measure(self, target, section, rep):
        out = os.path.join(self.out, "fio",
                           f"r{rep}-{target.name}-{section}.json")
        dropped = self.drop_caches()
        data, wall, (d0, d1), sys_cpu = self.fio(
            target, section, out, self.args.runtime, self.args.ramp)
        job = data["jobs"][0]
        rt = job["job_runtime"] / 1000.0  # measured part, after the ramp
        # The daemon's and the machine's CPU are read around the whole fio
        # process; count the share of the measured part (the load is the
        # same during the ramp).
        share = rt / (rt + self.args.ramp) if rt > 0 else 0
        nbytes = iops = 0
        lat = {}
        for d in ("read", "write"):
            nbytes += job[d]["io_bytes"]
            iops += job[d]["iops"]
        # Latency of the reads in a mix, of the fdatasync in a commit
        # workload, else of the side that ran.
        side = ("read" if job["read"]["io_bytes"] else
                "sync" if job.get("sync", {}).get("total_ios") else "write")
        pct = (job[side].get("lat_ns", {}).get("percentile") or
               job[side].get("clat_ns", {}).get("percentile") or {})
        for k, v in pct.items():
            lat[f"p{float(k):g}"] = v / 1000.0
        worst = (job[side].get("lat_ns") or job[side].get("clat_ns") or
                 {}).get("max")
        if worst:
            lat["max"] = worst / 1000.0
        fio_cpu = (job["usr_cpu"] + job["sys_cpu"]) / 100.0 * rt
        daemon_cpu = ((d1 - d0) * share
                      if d0 is not None and d1 is not None else 0.0)
        gib = nbytes / GIB
        return {
            "config": target.name, "workload": section, "rep": rep,
            "runtime_s": rt, "bytes": nbytes,
            "mbps": nbytes / rt / 1e6 if rt else 0.0, "iops": iops,
            "lat_us": lat, "lat_side": side,
            "cpu_fio_s": fio_cpu, "cpu_daemon_s": daemon_cpu,
            "cpu_system_s": sys_cpu * share,
            "cpu_s_per_gib": (fio_cpu + daemon_cpu) / gib if gib else None,
            "system_cpu_s_per_gib": sys_cpu * share / gib if gib else None,
            "fio_json": os.path.relpath(out, self.out), "wall_s": wall,
            "cache_dropped": dropped,
            # what share of the target this run read: the most a page
            # cache filled during the run could serve again
            "read_share": job["read"]["io_bytes"] / self.args.size,
        }

    # -- progress --

    def progress(self, line, done=False):
        self.cur = line
        if self.tty:
            end = "\n" if done else ""
            sys.stderr.write(f"\r\033[K{line}{end}")
            sys.stderr.flush()
        elif done:
            log(line)

    def tick(self, secs):
        if self.tty:
            sys.stderr.write(f"\r\033[K{self.cur}  {secs:4.0f}s")
            sys.stderr.flush()

    def elapsed(self):
        s = int(time.monotonic() - self.t_start)
        return f"{s // 60}m{s % 60:02d}s"

    # -- the run --

    def main(self):
        a = self.args
        self.tty = sys.stderr.isatty()
        self.t_start = time.monotonic()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        # Installed, the results go where the user is, not below PREFIX.
        self.out = os.path.abspath(
            a.out or (os.path.join(HERE, "results", stamp) if IN_SOURCE
                      else f"cmkfs-bench-{stamp}"))
        os.makedirs(os.path.join(self.out, "fio"), exist_ok=True)
        self.configs = [c for c in CONFIGS
                        if not (a.no_peers and c == "gocryptfs")]
        wls = workloads()
        if a.only:
            # The pattern selects configurations, workloads, or both.
            pat = re.compile(a.only)
            if any(pat.search(c) for c in self.configs):
                self.configs = [c for c in self.configs if pat.search(c)]
            if any(pat.search(w) for w in wls):
                wls = [w for w in wls if pat.search(w)]
        # loop-xts runs on the xts volume: set that up even when only
        # loop-xts is measured.
        setups = list(self.configs)
        if "loop-xts" in setups and "xts" not in setups:
            setups.insert(setups.index("loop-xts"), "xts")
        self.setup_work()
        self.machine = machine_info(self.backing, a.backing)
        log(f"bench: {self.machine['cpu']}, {self.machine['cores']} cores, "
            f"kernel {self.machine['kernel']}; backing store: "
            f"{self.machine['backing']}; results in {self.out}")
        crypto = crypto_ceiling(a.crypto_speed, 0.5 if a.quick else 2)

        for name in setups:
            try:
                t = self.setup(name)
                self.progress(f"[setup] {name}: prefill {human(a.size)}")
                self.prefill(t)
                self.progress(f"[setup] {name}: ready ({t.path})", done=True)
                self.targets[name] = t
                if t.note:
                    self.notes[name] = t.note
            except Unavailable as e:
                self.skipped[name] = str(e)
                log(f"bench: {name}: skipped: {e}")
        ran = [c for c in self.configs if c in self.targets]
        if not ran:
            raise BenchError("no configuration could run: " + "; ".join(
                f"{c}: {r}" for c, r in self.skipped.items()))
        runs = []
        total = a.repeat * len(wls) * len(ran)
        n = 0
        for rep in range(1, a.repeat + 1):
            for wl in wls:
                for name in ran:
                    n += 1
                    self.progress(f"[{n:3d}/{total}] rep {rep}/{a.repeat} "
                                  f"{name:<9} {wl:<18} elapsed "
                                  f"{self.elapsed()}")
                    r = self.measure(self.targets[name], wl, rep)
                    runs.append(r)
                    self.progress(
                        f"[{n:3d}/{total}] rep {rep}/{a.repeat} {name:<9} "
                        f"{wl:<18} {r['mbps']:9.1f} MB/s {r['iops']:9.0f} "
                        f"IOPS  p99 {r['lat_us'].get('p99', 0):8.1f} us  "
                        f"elapsed {self.elapsed()}", done=True)

        reenc = self.extra("online reencryption",
                           self.run_reencrypt) if a.reencrypt else None
        db = self.extra("pgbench", self.run_db) if a.db else None
        results = {
            "machine": self.machine,
            "params": {"runtime_s": a.runtime, "ramp_s": a.ramp,
                       "size": a.size, "repeat": a.repeat, "quick": a.quick,
                       "only": a.only, "cmkfs": self.cmkfs,
                       "mount_args": a.mount_args,
                       "fio": run(["fio", "--version"]).strip(),
                       "started": self.started},
            "configs": {c: {"ran": c in self.targets,
                            "skipped": self.skipped.get(c),
                            "note": self.notes.get(c)}
                        for c in self.configs},
            "workloads": wls, "crypto": crypto, "runs": runs,
            "summary": summarize(runs, ran, wls),
            "ratios": ratios(runs, ran, wls),
            # > 1: the first of the pair waits longer at the 99th percentile
            "ratios_p99": ratios(runs, ran, wls,
                                 lambda r: r["lat_us"].get("p99")),
            "db": db,
            "reencrypt": reenc,
        }
        results["charts"] = charts(results, self.out)
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        report = render(results)
        with open(os.path.join(self.out, "report.md"), "w") as f:
            f.write(report)
        print(report)
        log(f"bench: done in {self.elapsed()}; {self.out}/report.md")
        return 0

    # -- online reencryption --

    def reencrypt_state(self, vol):
        out = run([self.cmkfs, "status", "--json", vol], env=self.cmkfs_env(),
                  quiet=True)
        return json.loads(out)["reencrypt"]

    def extra(self, what, run_it):
        """Run a workload after fio's: a failure must not lose the fio
        results, so it is reported in the results instead of raised."""
        try:
            return run_it()
        except (BenchError, OSError, subprocess.SubprocessError) as e:
            log(f"bench: {what}: {e}")
            return {"error": str(e)}

    def run_reencrypt(self):
        """The xts volume reencrypted while mounted: fio (REENC_WORKLOADS)
        during the job at the default throttle against the same without a
        job, pair by pair; then the time of a job alone, unthrottled."""
        a = self.args
        t = self.targets.get("xts")
        if not t or not t.vol:
            return {"skipped": "needs the xts configuration " +
                    f"({self.skipped.get('xts', 'not run')})"}
        res = {"size": a.size, "block": REENC_BLOCK, "runs": [],
               "alone": []}
        wls = [w for w in REENC_WORKLOADS if w in workloads()]
        for rep in range(1, a.repeat + 1):
            for wl in wls:
                self.progress(f"[reencrypt] rep {rep}/{a.repeat} {wl}: "
                              f"without a job, elapsed {self.elapsed()}")
                idle = self.measure(t, wl, f"{rep}-idle")
                self.progress(f"[reencrypt] rep {rep}/{a.repeat} {wl}: "
                              "during a job")
                t0 = time.monotonic()
                run([self.cmkfs, "reencrypt", t.vol, "--background"],
                    env=self.cmkfs_env())
                busy = self.measure(t, wl, f"{rep}-reencrypt")
                st = self.reencrypt_state(t.vol)
                overlapped = st["state"] == "running"
                while st["state"] not in ("done", "paused", "crashed"):
                    time.sleep(0.2)
                    st = self.reencrypt_state(t.vol)
                if st["state"] != "done":
                    raise BenchError(f"the online reencryption of {t.vol} "
                                     f"ended {st['state']}: "
                                     f"{st.get('error')}")
                res["runs"].append({
                    "rep": rep, "workload": wl, "idle": idle, "busy": busy,
                    "job_s": time.monotonic() - t0,
                    "max_rate": st.get("max_rate"),
                    "overlapped": overlapped})
                self.progress(
                    f"[reencrypt] rep {rep}/{a.repeat} {wl}: "
                    f"{busy['iops'] / idle['iops']:.2f} of the IOPS, p99 "
                    f"{busy['lat_us'].get('p99', 0):.0f} us against "
                    f"{idle['lat_us'].get('p99', 0):.0f} us", done=True)
            self.progress(f"[reencrypt] rep {rep}/{a.repeat}: a job alone, "
                          "unthrottled")
            t0 = time.monotonic()
            run([self.cmkfs, "reencrypt", t.vol, "--max-rate", "0"],
                env=self.cmkfs_env(), quiet=True)
            res["alone"].append(time.monotonic() - t0)
            self.progress(f"[reencrypt] rep {rep}/{a.repeat}: "
                          f"{human(a.size)} in {res['alone'][-1]:.1f} s",
                          done=True)
        return res

    # -- pgbench --

    def run_db(self):
        """pgbench on ext4 over a plain loop device and over cmkfs."""
        a = self.args
        res = {"scale": a.db_scale, "seconds": a.db_time, "clients": 4,
               "size": a.db_size, "memory": a.db_memory, "setups": {},
               "runs": []}
        pg = find_postgres()
        if not pg:
            res["skipped"] = "PostgreSQL (initdb, pg_ctl) is not installed"
            return res
        if subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x",
                           self.work], stdin=subprocess.DEVNULL).returncode:
            raise BenchError(f"--db: the postgres user cannot reach "
                             f"{self.work}: let it through the directories "
                             f"above (chmod o+x) or set TMPDIR elsewhere")
        setups = {}
        # plain: ext4 on a loop device configured as cmkfs configures its own
        img = os.path.join(self.backing, "db-plain.img")
        with open(img, "wb") as f:
            f.truncate(a.db_size)
        dev = self.loop_attach(img)
        run(["mkfs.ext4", "-q", "-F", dev])
        mnt = os.path.join(self.work, "db-plain")
        os.makedirs(mnt)
        run(["mount", dev, mnt])
        self.cleanup.push(f"unmount {mnt}",
                          lambda m=mnt: self.umount_path(m))
        setups["plain-loop"] = (mnt, None)
        try:
            vol, uuid = self.create_volume("db-xts", a.db_size)
            mnt2 = os.path.join(self.work, "db-xts")
            os.makedirs(mnt2)
            pid = self.cmkfs_mount(vol, uuid, mnt2,
                                   ["--fs", "ext4", "--fuse-io-uring",
                                    self.transport()])
            setups["cmkfs-ext4"] = (mnt2, pid)
        except Unavailable as e:
            res["setups"]["cmkfs-ext4"] = {"skipped": str(e)}
            log(f"bench: db on cmkfs: skipped: {e}")
        servers = {}
        for i, (name, (mnt, pid)) in enumerate(setups.items()):
            self.progress(f"[db] {name}: initdb, pgbench -i -s {a.db_scale}")
            servers[name] = Postgres(pg, mnt, 5432 + i, self.cleanup,
                                     a.db_memory)
            servers[name].pgbench(["-i", "-q", "-s", str(a.db_scale)])
            res["setups"][name] = {"mount": mnt, "daemon_pid": pid}
        for rep in range(1, a.repeat + 1):
            for mode, flags in (("read-write", []), ("select-only", ["-S"])):
                for name, srv in servers.items():
                    self.progress(f"[db] rep {rep}/{a.repeat} {name} {mode} "
                                  f"elapsed {self.elapsed()}")
                    pid = setups[name][1]
                    d0 = proc_cpu(pid) if pid else None
                    s0, t0 = system_cpu(), time.monotonic()
                    out = srv.pgbench(["-c", "4", "-j", "2", "-T",
                                       str(a.db_time), "-r", *flags])
                    r = {"setup": name, "mode": mode, "rep": rep,
                         **pgbench_result(out),
                         **cpu_per_tx(out, s0, t0, pid, d0)}
                    res["runs"].append(r)
                    self.progress(f"[db] rep {rep}/{a.repeat} {name:<10} "
                                  f"{mode:<11} {r['tps']} tps, "
                                  f"{r['latency_ms']} ms", done=True)
        return res

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if getattr(self, "tty", False):
            sys.stderr.write("\r\033[K")
        self.cleanup.run_all()
        return False


# ---- PostgreSQL ---------------------------------------------------------------

def find_postgres():
    base = "/usr/lib/postgresql"
    try:
        versions = sorted(os.listdir(base), key=lambda v: int(v)
                          if v.isdigit() else 0)
    except OSError:
        return None
    for v in reversed(versions):
        b = os.path.join(base, v, "bin")
        if os.access(os.path.join(b, "initdb"), os.X_OK):
            return b
    return None


class Postgres:
    """A private PostgreSQL server, data on mnt, a unix socket only."""

    def __init__(self, bindir, mnt, port, cleanup, memory=None):
        self.bin, self.port = bindir, port
        self.data = os.path.join(mnt, "pgdata")
        self.sock = os.path.join(mnt, "sock")
        for d in (self.data, self.sock):
            os.makedirs(d)
            shutil.chown(d, "postgres", "postgres")
        os.chmod(self.data, 0o700)
        self.as_pg([os.path.join(bindir, "initdb"), "-D", self.data, "-U",
                    "postgres", "--auth=trust", "-E", "UTF8"])
        buffers = f"{memory // 4 // MIB}MB" if memory else "128MB"
        enter = None
        if memory:
            procs = memory_cgroup(f"cmkfs-bench-pg{port}", memory, cleanup)

            def enter():
                with open(procs, "w") as f:
                    f.write(str(os.getpid()))
        # Pushed before the start: a cgroup is removed only once empty.
        cleanup.push(f"stop PostgreSQL in {self.data}", self.stop)
        self.as_pg([os.path.join(bindir, "pg_ctl"), "-D", self.data, "-w",
                    "-l", os.path.join(self.sock, "server.log"), "-o",
                    f"-k {self.sock} -c listen_addresses='' -p {port} "
                    f"-c shared_buffers={buffers}", "start"], enter)
        self.as_pg([os.path.join(bindir, "createdb"), "-h", self.sock, "-p",
                    str(port), "bench"])

    @staticmethod
    def as_pg(cmd, preexec=None):
        return run(["runuser", "-u", "postgres", "--", *cmd], cwd="/",
                   preexec_fn=preexec)

    def pgbench(self, args):
        return self.as_pg([os.path.join(self.bin, "pgbench"), "-h", self.sock,
                           "-p", str(self.port), *args, "bench"])

    def stop(self):
        p = subprocess.run(["runuser", "-u", "postgres", "--",
                            os.path.join(self.bin, "pg_ctl"), "-D", self.data,
                            "-m", "fast", "-w", "stop"], cwd="/",
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if p.returncode != 0:
            try:
                with open(os.path.join(self.data, "postmaster.pid")) as f:
                    os.kill(int(f.readline()), signal.SIGKILL)
                time.sleep(0.5)
            except (OSError, ValueError):
                pass


def pgbench_result(out):
    """TPS, average latency and each SQL statement's average latency (ms)
    from pgbench -r's output."""
    tps = re.search(r"tps = ([\d.]+) \(without", out)
    lat = re.search(r"latency average = ([\d.]+) ms", out)
    stmts = {}
    for m in re.finditer(r"^\s+([\d.]+)\s+(?:\d+\s+)?([A-Z]\w*[^\n]*)$",
                         out.split("statement latencies", 1)[-1], re.M):
        # "UPDATE pgbench_accounts SET ...": "UPDATE pgbench_accounts"
        words = m.group(2).split()
        name = " ".join(words[:3 if words[0] == "INSERT" else 2])
        stmts[name.rstrip(";")] = float(m.group(1))
    return {"tps": float(tps.group(1)) if tps else None,
            "latency_ms": float(lat.group(1)) if lat else None,
            "statements_ms": stmts}


def cpu_per_tx(out, s0, t0, pid, d0):
    """Busy CPU ms per transaction, of the machine (every process and
    kernel worker: the loop device's too) and of the cmkfs daemon, and the
    share of CPU time idle, since s0/t0/d0."""
    busy, wall = system_cpu() - s0, time.monotonic() - t0
    n = re.search(r"number of transactions actually processed: (\d+)", out)
    n = int(n.group(1)) if n else 0
    d1 = proc_cpu(pid) if pid else None
    return {"cpu_ms_per_tx": busy * 1000 / n if n else None,
            "daemon_ms_per_tx": (d1 - d0) * 1000 / n
            if n and d0 is not None and d1 is not None else None,
            "idle": max(0.0, 1 - busy / (wall * os.cpu_count()))}


def memory_cgroup(name, limit, cleanup):
    """A memory cgroup limited to limit bytes (page cache included),
    removed at the end; returns the file a process joins it by."""
    v1, v2 = "/sys/fs/cgroup/memory", "/sys/fs/cgroup"
    try:
        with open(os.path.join(v2, "cgroup.subtree_control")) as f:
            v2_memory = "memory" in f.read().split()
    except OSError:
        v2_memory = False
    if os.path.exists(os.path.join(v1, "memory.limit_in_bytes")):
        root, knob = v1, "memory.limit_in_bytes"
    elif v2_memory:
        root, knob = v2, "memory.max"
    else:
        raise BenchError("--db-memory: no memory cgroup controller "
                         "(cgroup v1 memory, or v2 with memory enabled)")
    path = os.path.join(root, name)
    os.makedirs(path, exist_ok=True)
    cleanup.push(f"remove cgroup {path}", lambda: os.path.isdir(path) and
                 os.rmdir(path))
    try:
        with open(os.path.join(path, knob), "w") as f:
            f.write(str(limit))
    except OSError as e:
        raise BenchError(f"--db-memory: cannot limit {path}: {e}")
    return os.path.join(path, "cgroup.procs")


# ---- machine and crypto ceiling ---------------------------------------------------

def machine_info(backing, given):
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
        if m:
            cpu = m.group(1).strip()
    src = run(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "-T", backing],
              check=False).split()
    fstype = src[1] if len(src) > 1 else "?"
    if given:
        what = f"{given} ({fstype} on {src[0] if src else '?'})"
    else:
        what = "tmpfs (mounted for this run)"
    return {"cpu": cpu, "cores": os.cpu_count(),
            "kernel": os.uname().release, "host": os.uname().nodename,
            "backing": what, "backing_fstype": fstype,
            "memory_gib": round(os.sysconf("SC_PHYS_PAGES") *
                                os.sysconf("SC_PAGE_SIZE") / GIB, 1)}


def crypto_ceiling(exe, secs):
    """cmkfs's sector cipher (the cmkfs-crypto-speed program exe) and
    openssl speed, as bench/crypto.sh."""
    res = {"seconds": secs, "cmkfs": [], "openssl_gbps": None}
    if os.access(exe, os.X_OK):
        out = run([exe, "--seconds", str(secs), "--tsv"], check=False)
        for line in out.splitlines():
            f = line.split("\t")
            if len(f) == 4:
                res["cmkfs"].append({"cipher": f[0], "sector": f[1],
                                     "op": f[2], "gbps": float(f[3])})
    out = run(["openssl", "speed", "-evp", "aes-256-xts", "-bytes", "4096",
               "-seconds", str(max(1, round(secs)))], check=False, quiet=True)
    for line in out.splitlines():
        if re.match(r"aes-256-xts", line, re.I):
            res["openssl_gbps"] = float(line.split()[-1].rstrip("k")) * 1e3 / 1e9
    return res


# ---- statistics -----------------------------------------------------------------

def _stat(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals),
            "max": max(vals), "n": len(vals)}


def summarize(runs, configs, wls):
    out = {}
    for wl in wls:
        for c in configs:
            rs = [r for r in runs if r["config"] == c and r["workload"] == wl]
            if not rs:
                continue
            out.setdefault(wl, {})[c] = {
                "mbps": _stat([r["mbps"] for r in rs]),
                "iops": _stat([r["iops"] for r in rs]),
                "p50_us": _stat([r["lat_us"].get("p50") for r in rs]),
                "p99_us": _stat([r["lat_us"].get("p99") for r in rs]),
                "p99.9_us": _stat([r["lat_us"].get("p99.9") for r in rs]),
                "cpu_s_per_gib": _stat([r["cpu_s_per_gib"] for r in rs]),
                "system_cpu_s_per_gib": _stat([r["system_cpu_s_per_gib"]
                                               for r in rs]),
            }
    return out


def ratios(runs, configs, wls, metric=lambda r: r["mbps"]):
    """Ratios of a metric (default: throughput), each within one
    repetition, then summarized."""
    by = {(r["config"], r["workload"], r["rep"]): metric(r) for r in runs}
    reps = sorted({r["rep"] for r in runs})
    out = {}
    for a, b in RATIOS:
        if a not in configs or b not in configs:
            continue
        key = f"{a}/{b}"
        for wl in wls:
            vals = [by[(a, wl, p)] / by[(b, wl, p)] for p in reps
                    if by.get((b, wl, p)) and (a, wl, p) in by]
            s = _stat(vals)
            if s:
                s["per_rep"] = vals
                out.setdefault(key, {})[wl] = s
    return out


# ---- charts ------------------------------------------------------------------------

def charts(res, outdir):
    gp = shutil.which("gnuplot")
    if not gp or not res["summary"]:
        return {}
    term = "pngcairo" if "pngcairo" in subprocess.run(
        [gp, "-e", "set terminal"], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True).stdout else "png"
    wls = [w for w in res["workloads"] if w in res["summary"]]
    configs = [c for c in CONFIGS if any(c in res["summary"][w] for w in wls)]
    made = {}

    def chart(name, metric, title, ylabel, only=None):
        ws = [w for w in wls if only is None or only(w)]
        dat = os.path.join(outdir, f"{name}.dat")
        with open(dat, "w") as f:
            f.write("# workload " + " ".join(
                f"{c}:median {c}:min {c}:max" for c in configs) + "\n")
            for w in ws:
                row = [w]
                for c in configs:
                    s = res["summary"][w].get(c, {}).get(metric)
                    row += ([f"{s['median']:.6g}", f"{s['min']:.6g}",
                             f"{s['max']:.6g}"] if s else ["?"] * 3)
                f.write(" ".join(row) + "\n")
        png = os.path.join(outdir, f"{name}.png")
        plots = ", ".join(
            f"'{dat}' using {2 + 3 * i}:{3 + 3 * i}:{4 + 3 * i}"
            f"{':xtic(1)' if i == 0 else ''} title '{c}'"
            for i, c in enumerate(configs))
        script = f"""
set terminal {term} size 1200,600 font ',10'
set output '{png}'
set title "{title}"
set ylabel '{ylabel}'
set logscale y
set grid ytics
set key top left
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set xtics rotate by -20
set yrange [*:*]
plot {plots}
"""
        with open(os.path.join(outdir, f"{name}.gp"), "w") as f:
            f.write(script)
        p = subprocess.run([gp], input=script, text=True,
                           stderr=subprocess.PIPE)
        if p.returncode == 0 and os.path.exists(png):
            made[name] = os.path.basename(png)
        else:
            log(f"bench: gnuplot {name}: {p.stderr.strip()}")

    m = res["machine"]
    sub = f"{m['cpu']}, {m['cores']} cores, {m['backing']}"
    chart("throughput", "mbps", f"Throughput, median and min-max\\n{sub}",
          "MB/s (log)")
    chart("latency-p50", "p50_us", f"Latency p50, median and min-max\\n{sub}",
          "microseconds (log)")
    chart("latency-p99", "p99_us", f"Latency p99, median and min-max\\n{sub}",
          "microseconds (log)")
    chart("cpu", "cpu_s_per_gib",
          f"CPU seconds per GiB moved (fio + daemon)\\n{sub}",
          "CPU s / GiB (log)")
    return made


# ---- report --------------------------------------------------------------------------

def fmt(s, digits=1, spread=True):
    if not s:
        return "—"
    v = s["median"]
    d = 0 if v >= 1000 else digits
    if s["n"] > 1 and spread:
        return f"{v:,.{d}f} ({s['min']:,.{d}f}–{s['max']:,.{d}f})"
    return f"{v:,.{d}f}"


def statement_table(runs):
    """Where a read-write transaction's time goes: pgbench -r's average
    latency of each statement, per setup (medians of the repetitions)."""
    setups = ("plain-loop", "cmkfs-ext4")
    rw = [r for r in runs if r["mode"] == "read-write"]
    names = []
    for r in rw:
        names += [n for n in r.get("statements_ms", {}) if n not in names]
    if not names:
        return []
    L = ["Read-write, each statement's average latency (ms, `pgbench -r`):",
         "", "| statement | " + " | ".join(setups) + " | difference |",
         "|---|--:|--:|--:|"]
    for n in names:
        m = [_stat([r["statements_ms"].get(n) for r in rw
                    if r["setup"] == s and r.get("statements_ms")])
             for s in setups]
        diff = (f"{m[1]['median'] - m[0]['median']:+.3f}"
                if m[0] and m[1] else "—")
        L.append(f"| {n} | {fmt(m[0], 3, False)} | {fmt(m[1], 3, False)} | "
                 f"{diff} |")
    return L + [""]


def cache_note(res):
    """How each configuration met the page cache, as the report says it."""
    runs = res["runs"]
    if not any(r.get("cache_dropped") for r in runs):
        return ("the backing store is tmpfs, itself memory: every "
                "configuration reads and writes memory, gocryptfs's backing "
                "files and cmkfs's volume alike")
    share = max((r["read_share"] for r in runs
                 if r["config"] == "gocryptfs" and
                 r["workload"].startswith("rand")), default=None)
    note = ("dropped before every run (`vm.drop_caches`); raw, null, xts "
            "and loop-xts bypass it (O_DIRECT: fio's, and cmkfs's own on "
            "its volume)")
    if share is not None:
        note += (f"; gocryptfs reads its backing files through it, so a "
                 f"block read twice in one run may come from memory the "
                 f"second time: its random runs read at most {share:.0%} of "
                 f"the target, and a sequential run that reads the whole "
                 f"target reads it again from memory (not like for like "
                 f"there)")
    return note


def render(res):
    m, p = res["machine"], res["params"]
    L = [f"# cmkfs benchmark — {p['started']}", "",
         f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
         f"kernel {m['kernel']}",
         f"- backing store: {m['backing']}",
         f"- fio: {p['fio']}, io_uring (psync at queue depth 1), direct=1, "
         f"{human(p['size'])} per "
         f"target, {p['runtime_s']} s measured after {p['ramp_s']} s ramp, "
         f"{p['repeat']} interleaved repetition(s); values are medians "
         "(min–max)",
         f"- cmkfs: {p['cmkfs']}" + (f", mounted with {p['mount_args']}"
                                     if p.get("mount_args") else ""),
         f"- page cache: {cache_note(res)}", ""]
    L += ["## Configurations", "", "| configuration | status |", "|---|---|"]
    for c, info in res["configs"].items():
        if info["ran"]:
            st = "ran" + (f": {info['note']}" if info["note"] else "")
        else:
            st = f"**skipped**: {info['skipped']}"
        L.append(f"| {c} | {st} |")
    L.append("")
    for wl in res["workloads"]:
        rows = res["summary"].get(wl)
        if not rows:
            continue
        L += [f"## {wl}", "",
              "| configuration | MB/s | IOPS | p50 µs | p99 µs | "
              "CPU s/GiB | machine CPU s/GiB |",
              "|---|--:|--:|--:|--:|--:|--:|"]
        for c, s in rows.items():
            L.append(f"| {c} | {fmt(s['mbps'])} | {fmt(s['iops'], 0)} | "
                     f"{fmt(s['p50_us'])} | {fmt(s['p99_us'])} | "
                     f"{fmt(s['cpu_s_per_gib'], 2)} | "
                     f"{fmt(s['system_cpu_s_per_gib'], 2, False)} |")
        L.append("")
    L += ["Latency is fio's total latency (of the reads, in the 70/30 mix). "
          "CPU s/GiB: fio's user+system time plus the serving daemon's "
          "(cmkfs, gocryptfs; /proc/PID/stat) per GiB moved; machine CPU "
          "s/GiB: every busy CPU second of the machine over the run "
          "(/proc/stat), which also counts kernel threads such as the loop "
          "device's workers.", ""]
    if res["ratios"]:
        keys = list(res["ratios"])
        p99 = res.get("ratios_p99", {})
        L += ["## Ratios (pair by pair within a repetition)", "",
              "Throughput, then p99 latency (of the reads in the mix, of the "
              "fdatasync in commit): a throughput ratio below 1 and a p99 "
              "ratio above 1 mean the first of the pair is slower.", "",
              "| workload | " + " | ".join(f"{k} | {k} p99" for k in keys) +
              " |", "|---|" + "--:|--:|" * len(keys)]
        for wl in res["workloads"]:
            cells = [f"{fmt(res['ratios'][k].get(wl), 3)} | "
                     f"{fmt(p99.get(k, {}).get(wl), 2)}" for k in keys]
            L.append(f"| {wl} | " + " | ".join(cells) + " |")
        L.append("")
    c = res["crypto"]
    L += ["## Crypto ceiling (one core, bench/crypto.sh)", "",
          "| cipher | sector | operation | GB/s |", "|---|--:|---|--:|"]
    for r in c["cmkfs"]:
        L.append(f"| {r['cipher']} | {r['sector']} | {r['op']} | "
                 f"{r['gbps']:.2f} |")
    if c["openssl_gbps"]:
        L.append(f"| openssl speed -evp aes-256-xts | 4096 | encrypt | "
                 f"{c['openssl_gbps']:.2f} |")
    L.append("")
    db = res.get("db")
    if db:
        L += ["## PostgreSQL (pgbench)", ""]
        if db.get("skipped") or db.get("error"):
            L += [f"skipped: {db['skipped']}" if db.get("skipped")
                  else f"failed: {db['error']}", ""]
        else:
            L += [f"scale {db['scale']}, {db['clients']} clients, "
                  f"{db['seconds']} s per run, ext4 on {human(db['size'])}"
                  + (f", PostgreSQL in a memory cgroup of "
                     f"{human(db['memory'])} (page cache included; "
                     f"shared_buffers a quarter of it)"
                     if db.get("memory") else "") + "; "
                  "plain-loop: a loop device (direct I/O, 4096-byte sectors) "
                  "on a plain file; cmkfs-ext4: `cmkfs mount --fs ext4`.", "",
                  "CPU ms per transaction: busy CPU time of the whole "
                  "machine (PostgreSQL, pgbench, kernel workers, the cmkfs "
                  "daemon) per transaction; of it, the daemon's.", "",
                  "| setup | mode | TPS | latency ms | CPU ms/tx | "
                  "daemon ms/tx | idle |", "|---|---|--:|--:|--:|--:|--:|"]
            for name, s in db["setups"].items():
                if s.get("skipped"):
                    L.append(f"| {name} | — | skipped: {s['skipped']} "
                             "| | | | |")
            keys = sorted({(r["setup"], r["mode"]) for r in db["runs"]},
                          key=lambda k: (k[1], k[0]))
            for setup, mode in keys:
                rs = [r for r in db["runs"] if r["setup"] == setup and
                      r["mode"] == mode]
                idle = _stat([r.get("idle") for r in rs])
                cpu = _stat([r.get("cpu_ms_per_tx") for r in rs])
                dmn = _stat([r.get("daemon_ms_per_tx") for r in rs])
                idle = f"{idle['median']:.0%}" if idle else "—"
                L.append(f"| {setup} | {mode} | "
                         f"{fmt(_stat([r['tps'] for r in rs]))} | "
                         f"{fmt(_stat([r['latency_ms'] for r in rs]), 3)} | "
                         f"{fmt(cpu, 3)} | {fmt(dmn, 3)} | {idle} |")
            for mode in ("read-write", "select-only"):
                vals = []
                for rep in sorted({r["rep"] for r in db["runs"]}):
                    t = {r["setup"]: r["tps"] for r in db["runs"]
                         if r["rep"] == rep and r["mode"] == mode}
                    if t.get("cmkfs-ext4") and t.get("plain-loop"):
                        vals.append(t["cmkfs-ext4"] / t["plain-loop"])
                if vals:
                    L.append(f"| cmkfs-ext4/plain-loop | {mode} | "
                             f"{fmt(_stat(vals), 3)} | | | | |")
            L += [""] + statement_table(db["runs"])
    rz = res.get("reencrypt")
    if rz:
        L += ["## Online reencryption", ""]
        if rz.get("skipped") or rz.get("error"):
            L += [f"skipped: {rz['skipped']}" if rz.get("skipped")
                  else f"failed: {rz['error']}", ""]
        else:
            alone = _stat(rz["alone"])
            step = (alone["median"] / (rz["size"] / rz["block"]) * 1000
                    if alone and rz["size"] else 0)
            L += [f"The xts volume ({human(rz['size'])}) reencrypted while "
                  "mounted (`cmkfs reencrypt`, default throttle "
                  f"{human(rz['runs'][0]['max_rate'] or 0)}/s), fio on its "
                  "plaintext during the job against the same without a "
                  "job, pair by pair. A job alone, unthrottled: "
                  f"{fmt(alone)} s, one {human(rz['block'])} step "
                  f"≈ {step:.0f} ms.", "",
                  "| workload | IOPS during/without | p99 µs without | "
                  "p99 µs during | max µs during | job s (throttled) |",
                  "|---|--:|--:|--:|--:|--:|"]
            for wl in sorted({r["workload"] for r in rz["runs"]}):
                rs = [r for r in rz["runs"] if r["workload"] == wl]
                L.append(
                    f"| {wl} | "
                    f"{fmt(_stat([r['busy']['iops'] / r['idle']['iops'] for r in rs]), 3)} | "
                    f"{fmt(_stat([r['idle']['lat_us'].get('p99', 0) for r in rs]), 0)} | "
                    f"{fmt(_stat([r['busy']['lat_us'].get('p99', 0) for r in rs]), 0)} | "
                    f"{fmt(_stat([r['busy']['lat_us'].get('max', 0) for r in rs]), 0)} | "
                    f"{fmt(_stat([r['job_s'] for r in rs]))} |")
            if not all(r["overlapped"] for r in rz["runs"]):
                L.append("")
                L.append("Some jobs ended before fio did: those runs "
                         "understate the cost (raise --size).")
            L.append("")
    if res.get("charts"):
        L += ["## Charts", ""]
        L += [f"![{k}]({v})" for k, v in res["charts"].items()]
        L.append("")
    return "\n".join(L)


# ---- main ------------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0].replace("bench.py", PROG, 1),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Defaults: --runtime 10 --ramp 2 --size 1G --repeat 3; "
               "--quick: --runtime 1 --ramp 0.25 --size 64M --repeat 1, "
               "shorter crypto and pgbench runs.")
    ap.add_argument("--quick", action="store_true",
                    help="short smoke run (CI)")
    ap.add_argument("--runtime", type=float, help="measured seconds per run")
    ap.add_argument("--ramp", type=float, help="warm-up seconds per run")
    ap.add_argument("--size", type=parse_size,
                    help="bytes per target file or volume (e.g. 1G)")
    ap.add_argument("--repeat", type=int, help="interleaved repetitions")
    ap.add_argument("--only", metavar="PATTERN",
                    help="regex: only the configurations and workloads it "
                         "matches (e.g. 'raw|xts', 'randread')")
    ap.add_argument("--backing", metavar="DIR",
                    help="backing store directory (default: a fresh tmpfs)")
    ap.add_argument("--fuse-io-uring", choices=("auto", "on", "off"),
                    default="auto",
                    help="how the cmkfs mounts take FUSE requests: over "
                         "io_uring (on; auto: when the kernel has it) or "
                         "through /dev/fuse (off)")
    ap.add_argument("--mount-args", metavar="ARGS", default="",
                    help="more arguments for every `cmkfs mount` of the "
                         "run, e.g. '--poll-us 0'")
    ap.add_argument("--no-peers", action="store_true",
                    help="leave out gocryptfs")
    ap.add_argument("--no-reencrypt", dest="reencrypt",
                    action="store_false",
                    help="leave out the online reencryption of the xts "
                         "volume (fio during the job against without)")
    ap.add_argument("--db", action="store_true",
                    help="also pgbench: ext4 on cmkfs vs on a plain loop")
    ap.add_argument("--db-scale", type=int, help="pgbench scale factor")
    ap.add_argument("--db-time", type=int, help="seconds per pgbench run")
    ap.add_argument("--db-memory", type=parse_size, metavar="SIZE",
                    help="run PostgreSQL in a memory cgroup of SIZE (its "
                         "page cache included) with shared_buffers a "
                         "quarter of it: with --db-scale large enough, an "
                         "I/O-bound pgbench")
    # The same help installed and in a source tree: the man page is made
    # from it.
    ap.add_argument("--out", metavar="DIR",
                    help="results directory (default ./cmkfs-bench-<time>; "
                         "in a source tree, bench/results/<time>)")
    ap.add_argument("--cmkfs", metavar="PATH",
                    default=os.environ.get("CMKFS_BENCH_CMKFS"),
                    help="cmkfs binary (default: $CMKFS_BENCH_CMKFS, else "
                         "the one in --build, else the installed one)")
    ap.add_argument("--kmsd", metavar="PATH",
                    help="cmkfs-kmsd binary (default: the one in --build, "
                         "else the installed one)")
    ap.add_argument("--crypto-speed", metavar="PATH",
                    help="cmkfs-crypto-speed binary (default: the one in "
                         "--build, else the installed one)")
    ap.add_argument("--build", metavar="DIR",
                    default=os.path.join(SRC, os.environ.get("BUILD",
                                                             "build"))
                    if IN_SOURCE else None,
                    help="build directory with cmkfs, cmkfs-kmsd and "
                         "cmkfs-crypto-speed (default: in a source tree, "
                         "$BUILD or build; installed, none)")
    a = ap.parse_args(argv)
    # A build directory holds all three programs; an install puts
    # cmkfs-crypto-speed apart, in PREFIX/lib/cmkfs.
    bindir, libdir = (a.build, a.build) if a.build else (BINDIR, LIBDIR)
    a.cmkfs = os.path.abspath(a.cmkfs or os.path.join(bindir, "cmkfs"))
    a.kmsd = os.path.abspath(a.kmsd or os.path.join(bindir, "cmkfs-kmsd"))
    a.crypto_speed = os.path.abspath(
        a.crypto_speed or os.path.join(libdir, "cmkfs-crypto-speed"))
    q = a.quick
    for k, full, quick in (("runtime", 10, 1), ("ramp", 2, 0.25),
                           ("size", GIB, 64 * MIB), ("repeat", 3, 1),
                           ("db_scale", 50, 2), ("db_time", 30, 3)):
        if getattr(a, k) is None:
            setattr(a, k, quick if q else full)
    # pgbench's tables take ~16 MiB per scale unit; PostgreSQL's WAL up to
    # max_wal_size (1 GiB by default) more.
    a.db_size = a.db_scale * 24 * MIB + (256 if q else 1536) * MIB
    a.runtime = max(1, int(a.runtime))
    if a.repeat < 1 or a.size < 16 * MIB or a.size % MIB:
        ap.error("--repeat must be >= 1, --size a multiple of 1M >= 16M")
    return a


def main(argv):
    args = parse_args(argv)
    if os.geteuid() != 0:
        log("bench: needs root (tmpfs, FUSE, loop devices)")
        return 2
    for tool in PACKAGES:
        if not shutil.which(tool):
            log(f"bench: {tool} is missing ({how_to_get(tool)})")
            return 2
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    with Bench(args) as b:
        b.started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        try:
            return b.main()
        except KeyboardInterrupt:
            log("\nbench: interrupted; cleaning up")
            return 130
        except (BenchError, OSError, subprocess.SubprocessError) as e:
            log(f"\nbench: {e}; cleaning up")
            return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
