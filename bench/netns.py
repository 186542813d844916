"""Hosts on one machine: Linux network namespaces joined by veth pairs to a bridge, and partitions between them.

    hub (the root namespace)                        host i (namespace <tag>h<i>)
      bridge <tag>br  10.A.B.1/24  ── veth ──>  <tag>n<i>  10.A.B.(10+i)/24
      Redis and PostgreSQL listen on 10.A.B.1

A process started with `run_in(i)` in front of its command (`ip netns exec`)
sees only its host's interfaces: it reaches the hub's services through its veth,
and a partition of that host is a set of nftables rules inside its own
namespace dropping packets to and from the hub's ports (`cut`), removed again
by `heal`. Dropped, not refused: the host's connections hang as on a real
partition, until their timeouts. Nothing outside the namespaces is filtered,
and the only changes to the root namespace are the bridge and the veth ends,
named after a random tag and removed on exit with the namespaces and every
process still running in them, whatever happened.

Needs root, `ip` (iproute2) and `nft` (nftables), installed by scripts/services.sh.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
import uuid

TABLE = "solo_partition"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=30)


def unsupported() -> str | None:
    """Why namespaces cannot be made here (not root, no `ip` or `nft`, no kernel support), or None."""
    import os

    if os.geteuid() != 0:
        return "network namespaces need root"
    for program, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(program) is None:
            return f"`{program}` is not installed (package {package}; scripts/services.sh installs it)"
    probe = f"soprobe{uuid.uuid4().hex[:6]}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    try:
        table = f"table inet {TABLE} {{\n  chain out {{ type filter hook output priority 0; tcp dport 1 drop; }}\n}}\n"
        nft = subprocess.run(
            ["ip", "netns", "exec", probe, "nft", "-f", "-"], input=table, capture_output=True, text=True, timeout=30
        )
        if nft.returncode != 0:
            return f"nftables does not work in a namespace: {nft.stderr.strip()}"
    finally:
        _ip("netns", "del", probe, check=False)
    return None


def _free_subnet() -> str:
    """A 10.A.B.0/24 no interface or route of the machine uses yet: '10.A.B'."""
    used = _ip("-4", "addr").stdout + _ip("-4", "route").stdout
    for _ in range(100):
        prefix = f"10.{random.randint(160, 250)}.{random.randint(0, 255)}"
        if f"{prefix}." not in used:
            return prefix
    raise RuntimeError("no free 10.x.y.0/24 subnet found")


class Network:
    """`with Network(hosts=3) as net:` a bridge in the root namespace and `hosts` namespaces on it."""

    def __init__(self, hosts: int) -> None:
        self.tag = "so" + uuid.uuid4().hex[:4]
        self.hosts = hosts
        self.subnet = _free_subnet()
        self.hub = f"{self.subnet}.1"
        self.cidr = f"{self.subnet}.0/24"
        self.bridge = f"{self.tag}br"
        self.cuts: dict[int, tuple[int, ...]] = {}  # host -> hub ports it is cut off from

    def namespace(self, host: int) -> str:
        return f"{self.tag}h{host}"

    def address(self, host: int) -> str:
        return f"{self.subnet}.{10 + host}"

    def run_in(self, host: int) -> list[str]:
        """The command prefix that runs a program on `host` (it execs the program: same pid)."""
        return ["ip", "netns", "exec", self.namespace(host)]

    def up(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.hub}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for host in range(self.hosts):
            ns, outer, inner = self.namespace(host), f"{self.tag}v{host}", f"{self.tag}n{host}"
            _ip("netns", "add", ns)
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "master", self.bridge)
            _ip("link", "set", outer, "up")
            _ip("-n", ns, "addr", "add", f"{self.address(host)}/24", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def cut(self, host: int, ports: tuple[int, ...]) -> None:
        """Drop every packet between `host` and the hub's `ports`, both ways (replaces an earlier cut)."""
        if host in self.cuts:
            self.heal(host)
        hub, listed = self.hub, ", ".join(str(p) for p in ports)
        rules = (
            f"table inet {TABLE} {{\n"
            f"  chain out {{ type filter hook output priority 0; ip daddr {hub} tcp dport {{ {listed} }} drop; }}\n"
            f"  chain in {{ type filter hook input priority 0; ip saddr {hub} tcp sport {{ {listed} }} drop; }}\n"
            "}\n"
        )
        subprocess.run([*self.run_in(host), "nft", "-f", "-"], input=rules, text=True, check=True, timeout=30)
        self.cuts[host] = ports

    def heal(self, host: int) -> None:
        """Remove `host`'s cut: its packets flow again (connections that timed out meanwhile stay closed)."""
        if self.cuts.pop(host, None) is not None:
            subprocess.run([*self.run_in(host), "nft", "delete", "table", "inet", TABLE], check=True, timeout=30)

    def down(self) -> None:
        """Kill what still runs in the namespaces, delete them (their veths go with them), then the bridge."""
        for host in range(self.hosts):
            ns = self.namespace(host)
            if _ip("netns", "pids", ns, check=False).returncode != 0:
                continue  # never made
            for _ in range(50):
                pids = _ip("netns", "pids", ns, check=False).stdout.split()
                if not pids:
                    break
                subprocess.run(["kill", "-KILL", *pids], capture_output=True, timeout=30)
                time.sleep(0.1)
            _ip("netns", "del", ns, check=False)
            _ip("link", "del", f"{self.tag}v{host}", check=False)  # gone with the namespace, unless it never moved
        _ip("link", "del", self.bridge, check=False)

    def leftovers(self) -> list[str]:
        """Namespaces and links of this network still present (none after `down`)."""
        names = _ip("netns", "list").stdout + _ip("-o", "link").stdout
        return sorted({word.split("@")[0].rstrip(":") for word in names.split() if word.startswith(self.tag)})

    def __enter__(self) -> Network:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.down()
