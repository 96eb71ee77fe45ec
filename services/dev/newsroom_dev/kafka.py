"""A real Apache Kafka broker (or 3-node cluster) on this machine, without Docker.

Used by ``make kafka-up``/``make run`` and by the integration tests. The broker jars come from
Maven Central through the small pom in ``deploy/local-kafka/`` and are copied into a cache
directory outside git (``~/.cache/newsroom-notify/kafka-<hash>``). Each node runs in KRaft
combined mode (broker + controller) with its own ports and log dir:

1. ``kafka.tools.StorageTool format --cluster-id=<id> -c server.properties`` (static quorum:
   ``controller.quorum.voters`` set, so no ``--standalone``). The id is drawn as Kafka's own
   ``Uuid.randomUuid()`` does (never starting with ``-``) and passed attached to its option, so
   the tool can never read it as an option; a failed format raises with the tool's output;
2. ``kafka.Kafka server.properties`` with the JVM options ``kafka-server-start.sh`` gives it (a
   1 GiB heap, G1 with 20 ms pauses: ``BROKER_JVM``);
3. ready when the node logs "Kafka Server started" and its port accepts connections. Ports come
   from ``free_port()``, which another process may take before the node binds it: a node that
   exits because its address is in use is started again on new ports (the ports the caller
   fixed are never changed; a start that fails for another reason raises with the log's tail);
4. stopped with SIGTERM to its pid (SIGKILL after a grace period).

Command line (what the Makefile calls)::

    python -m newsroom_dev.kafka up   --dir .run/kafka [--port 9092] [--nodes 3]
    python -m newsroom_dev.kafka down --dir .run/kafka
    python -m newsroom_dev.kafka status --dir .run/kafka
    python -m newsroom_dev.kafka fetch
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]  # services/dev/newsroom_dev/kafka.py
DEFAULT_POM = REPO_ROOT / "deploy" / "local-kafka" / "pom.xml"
LOG4J2_CONFIG = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
"""
READY_LINE = "Kafka Server started"
# What Kafka's own scripts start a broker with (``kafka-run-class.sh``'s
# KAFKA_JVM_PERFORMANCE_OPTS; the heap is ``LocalKafka.heap``, kafka-server-start.sh's 1 GiB).
# With the heap used before (``-Xms128m -Xmx512m``, G1's defaults), G1's concurrent marking
# thread took 5.2 CPU seconds (of 7.5 or more for the whole broker) while one worker notified
# 200,000 followers, on the two cores the benchmarks share with the worker; with these, too
# little to count.
BROKER_JVM = (
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
)
BIND_FAILURES = ("Address already in use", "BindException")
PORT_ATTEMPTS = 5
# Kafka's Uuid.randomUuid() draws again for these two reserved ids (Uuid.ZERO_UUID and
# Uuid.METADATA_TOPIC_ID), and for any id whose string starts with "-".
RESERVED_IDS = frozenset({"AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAQ"})


class KafkaHarnessError(RuntimeError):
    """The local broker could not be fetched, formatted or started."""


class PortInUse(KafkaHarnessError):
    """A node exited during start because one of its ports was taken by another process."""


def new_cluster_id(draw: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """16 random bytes in unpadded base64url, as Kafka's ``Uuid.randomUuid()``: drawn again
    while the id starts with ``-`` (a command line would read it as an option, one draw in 64)
    or is one of Kafka's reserved ids."""
    while True:
        cluster_id = base64.urlsafe_b64encode(draw()).decode().rstrip("=")
        if not cluster_id.startswith("-") and cluster_id not in RESERVED_IDS:
            return cluster_id


def cache_root() -> Path:
    """Where the jars are cached (outside git); ``NEWSROOM_KAFKA_CACHE`` overrides it."""
    override = os.environ.get("NEWSROOM_KAFKA_CACHE")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "newsroom-notify"


def fetch_jars(pom: Path = DEFAULT_POM) -> Path:
    """Copy the broker's runtime classpath from Maven into the cache; return the jar directory.

    The directory name carries a hash of the pom, so changing the Kafka version fetches anew.
    Two checkouts installing at once (a clone and a worktree) share the cache: an exclusive
    lock on the version's directory lets one fetch while the other waits and then finds the
    jars there, and Maven writes into a directory of its own, renamed into place when complete.
    """
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    libs = cache_root() / f"kafka-{digest}" / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    if shutil.which("mvn") is None:
        raise KafkaHarnessError("Maven (mvn) is needed to fetch the Kafka jars; install it")
    libs.parent.mkdir(parents=True, exist_ok=True)
    with (libs.parent / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("waiting for another checkout's fetch of the Kafka jars", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():  # fetched by whoever held the lock before us
            return libs
        for stale in libs.parent.glob("libs*.partial"):  # a fetch killed midway
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix="libs.", suffix=".partial", dir=libs.parent))
        try:
            cmd = [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={tmp}",
            ]
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise KafkaHarnessError(f"mvn failed:\n{result.stdout}\n{result.stderr}")
            shutil.rmtree(libs, ignore_errors=True)  # jars without their marker: incomplete
            tmp.rename(libs)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        marker.touch()
    return libs


def ephemeral_ports() -> range:
    """The ports the kernel hands out for outgoing connections (Linux; the usual range
    elsewhere)."""
    with contextlib.suppress(OSError, ValueError):
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    return range(32768, 61000)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now, drawn at random below the ephemeral
    range: a port the kernel chose (bind to 0) comes from the range every outgoing
    connection (Kafka clients, HTTP) also draws from, so one of those could take it before the
    process it is meant for binds it (seen in make test runs). A caller still handles a bind
    failure (``ServiceProcess`` draws again)."""
    ephemeral = ephemeral_ports()
    low = 10_000
    for _ in range(50):
        port = random.randrange(low, max(ephemeral.start, low + 1000))  # noqa: S311 - not a secret
        if port in ephemeral:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # a crowded machine: let the kernel choose
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


@dataclass
class Node:
    """One KRaft node (broker + controller) of a local cluster."""

    node_id: int
    port: int
    controller_port: int
    directory: Path
    pid: int | None = None

    @property
    def log_file(self) -> Path:
        return self.directory / "broker.log"

    @property
    def properties_file(self) -> Path:
        return self.directory / "server.properties"


@dataclass
class LocalKafka:
    """A single node or a 3-node KRaft cluster of real Apache Kafka on 127.0.0.1."""

    directory: Path
    nodes: list[Node] = field(default_factory=list)
    cluster_id: str = ""
    heap: str = "-Xms1g -Xmx1g"
    # How many "started" lines each node's log held before its latest start.
    _starts_logged: dict[int, int] = field(default_factory=dict)
    # The client port the caller chose for the first node (never moved on a collision).
    fixed_port: int | None = None
    # Where each node's log stood at its latest start (its tail explains a failed start).
    _log_offsets: dict[int, int] = field(default_factory=dict)

    @classmethod
    def create(cls, directory: Path, size: int = 1, port: int | None = None) -> LocalKafka:
        """Lay out a cluster of ``size`` nodes; ``port`` fixes the first node's client port."""
        directory.mkdir(parents=True, exist_ok=True)
        nodes = []
        for i in range(1, size + 1):
            client = port if (port is not None and i == 1) else free_port()
            nodes.append(Node(i, client, free_port(), directory / f"node-{i}"))
        return cls(directory=directory, nodes=nodes, cluster_id=new_cluster_id(), fixed_port=port)

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def _properties(self, node: Node) -> str:
        size = len(self.nodes)
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        rf = 3 if size >= 3 else 1
        isr = 2 if size >= 3 else 1
        props = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": node.directory / "data",
            "num.partitions": 1,
            "default.replication.factor": rf,
            "min.insync.replicas": isr,
            "offsets.topic.replication.factor": rf,
            "offsets.topic.num.partitions": 10,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": isr,
            "transaction.state.log.num.partitions": 10,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": isr,
            "group.initial.rebalance.delay.ms": 0,
            # Tests create topics explicitly; an auto-created topic would get 1 partition and
            # break Faust's co-partitioning of tables with their source topics.
            "auto.create.topics.enable": "false",
            "message.max.bytes": 8 * 1024 * 1024 + 1024,
            "replica.fetch.max.bytes": 8 * 1024 * 1024 + 1024,
            "log.segment.bytes": 64 * 1024 * 1024,
            "num.network.threads": 2,
            "num.io.threads": 4,
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _java(self, libs: Path, *args: str, broker: bool = False) -> list[str]:
        log4j = self.directory / "log4j2.yaml"
        return [
            "java",
            "-XX:+UseG1GC",
            # A broker as Kafka's scripts start it; short-lived tools (StorageTool) start
            # faster without the C2 compiler.
            *([*self.heap.split(), *BROKER_JVM] if broker else ["-XX:TieredStopAtLevel=1"]),
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            f"{libs}/*",
            *args,
        ]

    def broker_command(self, libs: Path, node: Node) -> list[str]:
        """The command running ``node``'s broker (and controller)."""
        return self._java(libs, "kafka.Kafka", str(node.properties_file), broker=True)

    def format_command(self, libs: Path, node: Node) -> list[str]:
        """The StorageTool command formatting ``node``; the id is attached to its option
        (``--cluster-id=<id>``), so no id can be read as an option of its own."""
        return self._java(
            libs,
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={self.cluster_id}",
            "-c",
            str(node.properties_file),
            "--ignore-formatted",
        )

    def write_properties(self) -> None:
        """Write the logging config and each node's server.properties (ports included)."""
        (self.directory / "log4j2.yaml").write_text(LOG4J2_CONFIG)
        for node in self.nodes:
            node.directory.mkdir(parents=True, exist_ok=True)
            node.properties_file.write_text(self._properties(node))

    def format(self, libs: Path) -> None:
        """Write each node's properties and format its storage (idempotent).

        A failure raises with the tool's own output: it is not retried, since running the
        same command again gives the same answer (the retries here used to hide the one id in
        64 that started with "-" and was read as an option)."""
        self.write_properties()
        for node in self.nodes:
            cmd = self.format_command(libs, node)
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise KafkaHarnessError(
                    f"format of node {node.node_id} failed (exit {result.returncode}): "
                    f"{' '.join(cmd[-6:])}\n{result.stdout}{result.stderr}"
                )

    def start_node(self, node: Node, libs: Path) -> None:
        """Start one node in its own session (so Ctrl-C of a parent does not reach it)."""
        cmd = self.broker_command(libs, node)
        with node.log_file.open("ab") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        node.pid = proc.pid
        self._save()

    def wait_ready(self, node: Node, timeout: float = 90.0) -> None:
        """Block until the node logged its start and accepts connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.pid is not None and not _alive(node.pid):
                text = node.log_file.read_text(errors="replace")
                tail = text[self._log_offsets.get(node.node_id, 0) :][-3000:]
                error = PortInUse if any(f in tail for f in BIND_FAILURES) else KafkaHarnessError
                raise error(f"node {node.node_id} exited during start:\n{tail}")
            text = node.log_file.read_text(errors="replace") if node.log_file.exists() else ""
            if text.count(READY_LINE) >= self._starts_logged.get(node.node_id, 0) + 1 and (
                port_open(node.port)
            ):
                self._starts_logged[node.node_id] = text.count(READY_LINE)
                return
            time.sleep(0.1)
        raise KafkaHarnessError(f"node {node.node_id} not ready after {timeout}s")

    def start(self, libs: Path | None = None, timeout: float = 120.0) -> None:
        """Fetch jars if needed, format and start every node, wait until all are ready.

        A node that exits because a port was taken since ``free_port()`` chose it: every node
        is stopped, the ports not fixed by the caller are drawn again, and all start again (the
        controller ports are in every node's voter list), at most ``PORT_ATTEMPTS`` times."""
        libs = libs or fetch_jars()
        if self.fixed_port is not None and port_open(self.fixed_port):
            raise KafkaHarnessError(f"port {self.fixed_port} is in use: choose another port")
        self.format(libs)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._start_all(libs, timeout)
            except PortInUse:
                self.stop()
                if attempt == PORT_ATTEMPTS:
                    raise
                self.redraw_ports()
                self.write_properties()
            else:
                return

    def _start_all(self, libs: Path, timeout: float) -> None:
        for node in self.nodes:
            self._starts_logged[node.node_id] = _count_ready(node)
            self._log_offsets[node.node_id] = _log_size(node)
            self.start_node(node, libs)
        for node in self.nodes:
            self.wait_ready(node, timeout)

    def redraw_ports(self) -> None:
        """New free ports for every node, except the client port the caller fixed."""
        for node in self.nodes:
            if not (node.node_id == 1 and self.fixed_port is not None):
                node.port = free_port()
            node.controller_port = free_port()

    def restart_node(self, node: Node, timeout: float = 90.0) -> None:
        """Start a stopped/killed node again and wait until it is ready."""
        self._starts_logged[node.node_id] = _count_ready(node)
        self._log_offsets[node.node_id] = _log_size(node)
        self.start_node(node, fetch_jars())
        self.wait_ready(node, timeout)

    def stop_node(self, node: Node, sig: int = signal.SIGTERM, grace: float = 30.0) -> None:
        """Stop one node: ``sig`` first, SIGKILL if it is still alive after ``grace`` seconds."""
        if node.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(node.pid, sig)
        deadline = time.monotonic() + grace
        while _alive(node.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(node.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.pid, signal.SIGKILL)
            while _alive(node.pid):
                time.sleep(0.05)
        node.pid = None
        self._save()

    def stop(self) -> None:
        """Stop every node (brokers first would leave controllers without quorum: all at once)."""
        for node in self.nodes:
            if node.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.pid, signal.SIGTERM)
        for node in self.nodes:
            self.stop_node(node)

    def _save(self) -> None:
        state = {
            "cluster_id": self.cluster_id,
            "bootstrap_servers": self.bootstrap_servers,
            "nodes": [
                {
                    "node_id": n.node_id,
                    "port": n.port,
                    "controller_port": n.controller_port,
                    "directory": str(n.directory),
                    "pid": n.pid,
                }
                for n in self.nodes
            ],
        }
        (self.directory / "cluster.json").write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, directory: Path) -> LocalKafka | None:
        """The cluster described by ``directory/cluster.json``, if any."""
        path = directory / "cluster.json"
        if not path.exists():
            return None
        state = json.loads(path.read_text())
        nodes = [
            Node(n["node_id"], n["port"], n["controller_port"], Path(n["directory"]), n["pid"])
            for n in state["nodes"]
        ]
        return cls(directory=directory, nodes=nodes, cluster_id=state["cluster_id"])

    def running(self) -> bool:
        """Whether every node's process is alive."""
        return all(n.pid is not None and _alive(n.pid) for n in self.nodes)


def _count_ready(node: Node) -> int:
    if not node.log_file.exists():
        return 0
    return node.log_file.read_text(errors="replace").count(READY_LINE)


def _log_size(node: Node) -> int:
    return len(node.log_file.read_text(errors="replace")) if node.log_file.exists() else 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed child that nobody reaped yet is a zombie: not alive for our purposes.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def _up(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    existing = LocalKafka.load(directory)
    if existing is not None and existing.running():
        print(existing.bootstrap_servers)
        return 0
    if existing is not None and args.port in (None, existing.nodes[0].port):
        # Same layout: keep the data, start again.
        cluster = existing
    else:
        shutil.rmtree(directory, ignore_errors=True)
        cluster = LocalKafka.create(directory, size=args.nodes, port=args.port)
    cluster.fixed_port = args.port
    started = time.monotonic()
    cluster.start()
    print(
        f"Kafka ({len(cluster.nodes)} node(s)) ready in {time.monotonic() - started:.1f}s "
        f"at {cluster.bootstrap_servers}",
        file=sys.stderr,
    )
    print(cluster.bootstrap_servers)
    return 0


def _down(args: argparse.Namespace) -> int:
    cluster = LocalKafka.load(Path(args.dir))
    if cluster is None:
        print("no local Kafka recorded in", args.dir, file=sys.stderr)
        return 0
    cluster.stop()
    print("local Kafka stopped", file=sys.stderr)
    return 0


def _status(args: argparse.Namespace) -> int:
    cluster = LocalKafka.load(Path(args.dir))
    if cluster is None or not cluster.running():
        print("not running", file=sys.stderr)
        return 1
    print(cluster.bootstrap_servers)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m newsroom_dev.kafka``."""
    parser = argparse.ArgumentParser(prog="devkafka", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a local broker (or cluster) and print its bootstrap")
    up.add_argument("--dir", default=".run/kafka")
    up.add_argument("--port", type=int, default=None)
    up.add_argument("--nodes", type=int, default=1, choices=[1, 3])
    up.set_defaults(func=_up)
    down = sub.add_parser("down", help="stop the local broker(s) started by 'up'")
    down.add_argument("--dir", default=".run/kafka")
    down.set_defaults(func=_down)
    status = sub.add_parser("status", help="exit 0 and print the bootstrap if it is running")
    status.add_argument("--dir", default=".run/kafka")
    status.set_defaults(func=_status)
    fetch = sub.add_parser("fetch", help="fetch the Kafka jars from Maven Central")
    fetch.set_defaults(func=lambda _a: print(fetch_jars()) or 0)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KafkaHarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
