"""redis-py's Sentinel support against a caskdb group: every node answers SENTINEL, so a
client given the nodes as its sentinels finds the leader (master_for) and the followers
(slave_for), and reads its writes through either.

    python3 sentinel_test.py --ports 7001,7002,7003 [--protocol 2|3]
"""
import argparse

from redis.sentinel import Sentinel


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ports", required=True)
    p.add_argument("--protocol", type=int, default=3)
    a = p.parse_args()
    ports = [int(x) for x in a.ports.split(",")]
    sentinel = Sentinel(
        [("127.0.0.1", port) for port in ports],
        socket_timeout=10,
        sentinel_kwargs={"socket_timeout": 10, "protocol": a.protocol},
        protocol=a.protocol,
    )
    host, port = sentinel.discover_master("caskdb")
    assert host == "127.0.0.1" and port in ports, (host, port)
    replicas = sentinel.discover_slaves("caskdb")
    assert sorted(p for _, p in replicas) == sorted(p for p in ports if p != port), replicas

    master = sentinel.master_for("caskdb", socket_timeout=10)
    assert master.set("sentinel:k", "v") is True
    assert master.get("sentinel:k") == b"v"
    assert master.incr("sentinel:n") >= 1
    # The master's ROLE says so (redis-py checks it when it reconnects).
    assert master.execute_command("ROLE")[0] in (b"master", "master")

    # A follower forwards what it does not answer itself.
    replica = sentinel.slave_for("caskdb", socket_timeout=10)
    assert replica.get("sentinel:k") == b"v"
    assert replica.set("sentinel:from-replica", "1") is True
    assert master.get("sentinel:from-replica") == b"1"
    print("ok")


if __name__ == "__main__":
    main()
