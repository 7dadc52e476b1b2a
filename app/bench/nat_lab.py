"""A NAT lab in network namespaces: a public network, two MASQUERADE routers and a host
behind each (root, iproute2 and iptables needed), for the NAT tests and ``p2psip bench
attach``. Whoever builds a :class:`Topology` tears it down (:meth:`Topology.teardown`).

::

        lan1 (10.1.0.2)          inet: bridge 198.51.100.1/24           lan2 (10.2.0.2)
            |                     public peers 198.51.100.2                   |
        nat1 10.1.0.1 ---------- TURN server 198.51.100.3 ---------- nat2 10.2.0.1
             198.51.100.11 (MASQUERADE)            (MASQUERADE) 198.51.100.12

Only addresses inside these namespaces are used (TEST-NET-2 and 10/8 there). Linux
MASQUERADE maps endpoint-independently and filters by address and port, so ICE's
server-reflexive candidates punch through it (the routers drop unsolicited inbound
packets, as home routers do); :meth:`Topology.block_peer_to_peer`
makes the routers drop UDP between the two NATs' public addresses, so that only a
relayed candidate can work; :meth:`Topology.lose` drops packets at random with
iptables' statistic match (the kernel here has no netem).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
"""The source tree, put on the PYTHONPATH of the processes started in namespaces."""

PUBLIC_PEER = "198.51.100.2"
TURN_SERVER = "198.51.100.3"
NAT1_WAN = "198.51.100.11"
NAT2_WAN = "198.51.100.12"
LAN1_HOST = "10.1.0.2"
LAN2_HOST = "10.2.0.2"

_counter = itertools.count()


class TurnUnavailable(RuntimeError):
    """coturn's ``turnserver`` is not installed."""


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.name != "posix" or os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (tools/bootstrap.sh installs iproute2 and iptables)"
    probe = f"p2i-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns is unavailable: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def run(*argv: str) -> None:
    done = subprocess.run(list(argv), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}")


@dataclass
class Topology:
    prefix: str
    namespaces: list[str] = field(default_factory=list)
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)
    _drains: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def inet(self) -> str:
        return f"{self.prefix}-inet"

    @property
    def nat1(self) -> str:
        return f"{self.prefix}-nat1"

    @property
    def lan1(self) -> str:
        return f"{self.prefix}-lan1"

    @property
    def nat2(self) -> str:
        return f"{self.prefix}-nat2"

    @property
    def lan2(self) -> str:
        return f"{self.prefix}-lan2"

    # -- building

    def _ns(self, name: str) -> None:
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")

    def build(self) -> None:
        self._ns(self.inet)
        run("ip", "-n", self.inet, "link", "add", "br0", "type", "bridge")
        for addr in ("198.51.100.1", PUBLIC_PEER, TURN_SERVER):
            run("ip", "-n", self.inet, "addr", "add", f"{addr}/24", "dev", "br0")
        run("ip", "-n", self.inet, "link", "set", "br0", "up")
        for nat, lan, wan_addr, net in (
            (self.nat1, self.lan1, NAT1_WAN, "10.1.0"),
            (self.nat2, self.lan2, NAT2_WAN, "10.2.0"),
        ):
            self._ns(nat)
            self._ns(lan)
            # wan: nat's eth0 <-> a port of inet's bridge; lan: nat's eth1 <-> lan's eth0
            port = f"{nat[-4:]}p"
            run(
                "ip",
                "link",
                "add",
                "eth0",
                "netns",
                nat,
                "type",
                "veth",
                "peer",
                "name",
                port,
                "netns",
                self.inet,
            )
            run("ip", "-n", self.inet, "link", "set", port, "master", "br0", "up")
            run(
                "ip",
                "link",
                "add",
                "eth1",
                "netns",
                nat,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                lan,
            )
            run("ip", "-n", nat, "addr", "add", f"{wan_addr}/24", "dev", "eth0")
            run("ip", "-n", nat, "addr", "add", f"{net}.1/24", "dev", "eth1")
            run("ip", "-n", nat, "link", "set", "eth0", "up")
            run("ip", "-n", nat, "link", "set", "eth1", "up")
            run("ip", "netns", "exec", nat, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
            run(
                "ip",
                "netns",
                "exec",
                nat,
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                "eth0",
                "-j",
                "MASQUERADE",
            )
            # A home router's firewall: unsolicited packets to the router itself are dropped.
            # Dropped before conntrack confirms them, they leave no entry behind; otherwise a
            # peer's check that arrives before our first outgoing packet to that peer would
            # hold the tuple, and MASQUERADE would then map our packet to another port.
            run(
                "ip", "netns", "exec", nat, "iptables", "-A", "INPUT", "-i", "eth0",
                "-m", "conntrack", "--ctstate", "NEW,INVALID", "-j", "DROP",
            )  # fmt: skip
            run("ip", "-n", lan, "addr", "add", f"{net}.2/24", "dev", "eth0")
            run("ip", "-n", lan, "link", "set", "eth0", "up")
            run("ip", "-n", lan, "route", "add", "default", "via", f"{net}.1")

    def block_peer_to_peer(self) -> None:
        """The NATs drop UDP between each other's public addresses (a firewall that only
        lets the TURN server's traffic through)."""
        run(
            "ip",
            "netns",
            "exec",
            self.nat1,
            "iptables",
            "-A",
            "FORWARD",
            "-p",
            "udp",
            "-d",
            NAT2_WAN,
            "-j",
            "DROP",
        )
        run(
            "ip",
            "netns",
            "exec",
            self.nat1,
            "iptables",
            "-A",
            "FORWARD",
            "-p",
            "udp",
            "-s",
            NAT2_WAN,
            "-j",
            "DROP",
        )
        run(
            "ip",
            "netns",
            "exec",
            self.nat2,
            "iptables",
            "-A",
            "FORWARD",
            "-p",
            "udp",
            "-d",
            NAT1_WAN,
            "-j",
            "DROP",
        )
        run(
            "ip",
            "netns",
            "exec",
            self.nat2,
            "iptables",
            "-A",
            "FORWARD",
            "-p",
            "udp",
            "-s",
            NAT1_WAN,
            "-j",
            "DROP",
        )

    def lose(self, namespace: str, probability: float) -> None:
        """Drop forwarded UDP packets through router ``namespace`` at random, both ways."""
        run(
            "ip", "netns", "exec", namespace, "iptables", "-I", "FORWARD", "-p", "udp",
            "-m", "statistic", "--mode", "random", "--probability", str(probability), "-j", "DROP",
        )  # fmt: skip

    def dropped(self, namespace: str) -> int:
        """Packets the router's FORWARD chain dropped so far."""
        out = subprocess.run(
            ["ip", "netns", "exec", namespace, "iptables", "-L", "FORWARD", "-v", "-n", "-x"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return sum(int(line.split()[0]) for line in out.splitlines() if " DROP " in f" {line} ")

    # -- processes

    async def spawn(self, namespace: str, argv: Sequence[str], **kwargs: Any) -> asyncio.subprocess.Process:
        """Start ``argv`` inside ``namespace``; it is killed at teardown."""
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", namespace, *argv, env=env, cwd=str(ROOT), **kwargs
        )
        self.processes.append(proc)
        return proc

    async def start_turn(
        self, directory: Path, *, user: tuple[str, str] | None = None, secret: str | None = None
    ) -> None:
        """coturn at TURN_SERVER:3478 in the public namespace, with long-term credentials
        ``user`` (name, password) or ``secret`` (its use-auth-secret mode); its log goes to
        ``directory``/turnserver.log."""
        if shutil.which("turnserver") is None:
            raise TurnUnavailable("coturn is not installed (tools/bootstrap.sh installs it)")
        auth = (
            [f"--user={user[0]}:{user[1]}"]
            if user
            else ["--use-auth-secret", f"--static-auth-secret={secret}"]
        )
        proc = await self.spawn(
            self.inet,
            [
                "turnserver", "-n", "-v", "--log-file=stdout", "--simple-log",
                f"--listening-ip={TURN_SERVER}", f"--relay-ip={TURN_SERVER}", "--listening-port=3478",
                "--min-port=49152", "--max-port=49400", "--lt-cred-mech", *auth,
                "--realm=ice.test.example", "--no-tls", "--no-dtls", "--no-cli", "--no-tcp", "--no-tcp-relay",
                # As RFC 8656 §21.1 advises, no relaying into private networks (here the LANs
                # behind the NATs, which the public side cannot route to anyway).
                "--denied-peer-ip=10.0.0.0-10.255.255.255",
                f"--pidfile={directory / 'turnserver.pid'}", f"--userdb={directory / 'turndb'}",
            ],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip

        async def ready() -> None:
            assert proc.stdout is not None
            while True:
                line = await proc.stdout.readline()
                if not line:
                    raise RuntimeError("turnserver exited")
                if b"UDP listener opened on" in line:
                    return

        await asyncio.wait_for(ready(), 10)
        # Keep reading its log (into a file, for post-mortems) so that the pipe never fills.
        self._drains.append(
            asyncio.get_running_loop().create_task(_drain(proc, directory / "turnserver.log"))
        )

    async def stop_processes(self) -> None:
        for proc in self.processes:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            if proc.returncode is None:
                try:
                    await asyncio.wait_for(proc.wait(), 3)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        self.processes.clear()
        for task in self._drains:
            await asyncio.gather(task, return_exceptions=True)
        self._drains.clear()

    def teardown(self) -> None:
        for proc in self.processes:  # the async stop did not run (e.g. loop gone)
            if proc.returncode is None:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self.namespaces.clear()


async def _drain(proc: asyncio.subprocess.Process, log: Path) -> None:
    assert proc.stdout is not None
    with log.open("ab") as out:
        while line := await proc.stdout.readline():
            out.write(line)
            out.flush()


def new_topology() -> Topology:
    return Topology(f"p2i{os.getpid() % 100000}x{next(_counter)}")


__all__ = [
    "LAN1_HOST",
    "LAN2_HOST",
    "NAT1_WAN",
    "NAT2_WAN",
    "PUBLIC_PEER",
    "ROOT",
    "TURN_SERVER",
    "Topology",
    "TurnUnavailable",
    "new_topology",
    "run",
    "unavailable_reason",
]
