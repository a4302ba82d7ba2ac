# SPDX-License-Identifier: GPL-3.0-or-later
"""host-local allocator and store on a temp dir (Go's allocator_test.go / backend_test.go cases)."""

import fcntl
import os
import threading

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.host_local import format_ip, load_ipam_config, parse_ip
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.netconf import parse_netconf
from ansible_collections.nodenet.cni.plugins.module_utils.cni.ipam import allocator
from ansible_collections.nodenet.cni.plugins.module_utils.cni.ipam.store import (
    Lease,
    Store,
    is_lease_name,
    list_leases,
    parse_lease_content,
)
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import ERR_INTERNAL, ERR_TRY_AGAIN, CNIError

NET = "testnet"


def conf_for(tmp_path, ranges, cni_args="", **top):
    raw = {"cniVersion": "1.0.0", "name": NET, "type": "host-local",
           "ipam": {"type": "host-local", "dataDir": str(tmp_path), "ranges": ranges}}
    raw.update(top)
    return load_ipam_config(parse_netconf(raw), cni_args)


@pytest.fixture
def store(tmp_path):
    with Store(str(tmp_path), NET) as s:
        yield s


def add(store, conf, cid, ifname="eth0"):
    return [a.ip_config().address for a in allocator.allocate_all(store, conf, cid, ifname)]


def files(tmp_path):
    return sorted(os.listdir(tmp_path / NET))


def read(tmp_path, name):
    return (tmp_path / NET / name).read_bytes()


# -- store format -------------------------------------------------------------


def test_store_layout_and_modes(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}]])
    assert add(store, conf, "ctr1") == ["10.1.2.2/24"]
    assert files(tmp_path) == ["10.1.2.2", "last_reserved_ip.0", "lock"]
    assert read(tmp_path, "10.1.2.2") == b"ctr1\r\neth0"
    assert read(tmp_path, "last_reserved_ip.0") == b"10.1.2.2"

    def mode(name):
        return os.stat(tmp_path / NET / name).st_mode & 0o777

    assert mode("10.1.2.2") == 0o600 and mode("last_reserved_ip.0") == 0o600
    assert os.stat(tmp_path / NET).st_mode & 0o777 == 0o755 & ~current_umask()
    assert os.path.getsize(tmp_path / NET / "lock") == 0


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_lease_content_parsing():
    assert parse_lease_content("  abc\r\neth0 \n") == ("abc", "eth0")
    assert parse_lease_content("abc\n") == ("abc", "")
    assert not is_lease_name("lock") and not is_lease_name("last_reserved_ip.0") and not is_lease_name(".nodenet-tmp-1-a")
    assert is_lease_name("10.0.0.1") and is_lease_name("fd00::1")


def test_list_leases_for_tooling(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}], [{"subnet": "fd00:1::/64"}]])
    add(store, conf, "ctr1")
    (tmp_path / NET / "10.1.2.77").write_text("legacy-id")
    leases = list_leases(str(tmp_path), NET)
    assert leases == [
        Lease("10.1.2.2", "ctr1", "eth0", str(tmp_path / NET / "10.1.2.2")),
        Lease("10.1.2.77", "legacy-id", "", str(tmp_path / NET / "10.1.2.77")),
        Lease("fd00:1::2", "ctr1", "eth0", str(tmp_path / NET / "fd00:1::2")),
    ]
    assert leases[1].legacy and list_leases(str(tmp_path), NET, lock=True) == leases
    assert list_leases(str(tmp_path), "other") == []


# -- iteration ----------------------------------------------------------------


def test_first_lease_is_dot_two_and_ids_get_consecutive_addresses(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}]])
    assert [add(store, conf, "c%d" % i)[0] for i in range(3)] == ["10.1.2.2/24", "10.1.2.3/24", "10.1.2.4/24"]


def test_round_robin_does_not_reuse_a_released_address_immediately(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}]])
    add(store, conf, "a")
    allocator.release_all(store, conf, "a", "eth0")
    assert add(store, conf, "b") == ["10.1.2.3/24"]


def test_start_after_last_reserved_in_the_middle_and_wrap_at_the_end(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}]])
    (tmp_path / NET / "last_reserved_ip.0").write_text("10.1.2.100")
    assert add(store, conf, "a") == ["10.1.2.101/24"]
    (tmp_path / NET / "last_reserved_ip.0").write_text("10.1.2.254")
    assert add(store, conf, "b") == ["10.1.2.2/24"]  # wraps, skipping the gateway .1


def test_last_reserved_outside_the_set_or_garbage_restarts_at_range_start(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}]])
    (tmp_path / NET / "last_reserved_ip.0").write_text("192.168.0.9")
    assert add(store, conf, "a") == ["10.1.2.2/24"]
    (tmp_path / NET / "last_reserved_ip.0").write_text("garbage")
    assert add(store, conf, "b") == ["10.1.2.3/24"]


def test_cursor_crosses_ranges_and_wraps_to_range_zero(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.1.0/30"}, {"subnet": "10.1.2.0/30"}, {"subnet": "10.1.3.0/30"}]])
    (tmp_path / NET / "last_reserved_ip.0").write_text("10.1.1.2")
    assert add(store, conf, "a") == ["10.1.2.2/30"]  # .1 of each range is its gateway
    assert add(store, conf, "b") == ["10.1.3.2/30"]
    assert add(store, conf, "c") == ["10.1.1.2/30"]  # wrapped
    with pytest.raises(CNIError) as exc:
        add(store, conf, "d")
    assert exc.value.msg == ("failed to allocate for range 0: no IP addresses available in range set: "
                             "10.1.1.1-10.1.1.2,10.1.2.1-10.1.2.2,10.1.3.1-10.1.3.2")


def test_iteration_visits_every_address_once_and_never_the_broadcast(tmp_path):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/29", "gateway": "10.1.2.4"}]])
    seen = [format_ip(ip) for ip, _range in allocator.iter_candidates(conf.range_sets[0], parse_ip("10.1.2.3", "x"))]
    assert seen == ["10.1.2.5", "10.1.2.6", "10.1.2.1", "10.1.2.2", "10.1.2.3"]


def test_whole_small_range_then_exhaustion_message_like_go(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.5.0.0/30"}]])
    assert add(store, conf, "a") == ["10.5.0.2/30"]
    with pytest.raises(CNIError) as exc:
        add(store, conf, "b")
    assert exc.value.code == ERR_INTERNAL
    assert exc.value.msg == "failed to allocate for range 0: no IP addresses available in range set: 10.5.0.1-10.5.0.2"


def test_a_slash_29_hands_out_five_and_never_network_gateway_or_broadcast(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.5.0.0/29"}]])
    got = [add(store, conf, "c%d" % i)[0] for i in range(5)]
    assert got == ["10.5.0.%d/29" % i for i in range(2, 7)]
    with pytest.raises(CNIError):
        add(store, conf, "c9")


# -- requested IPs ------------------------------------------------------------


def test_requested_ip_is_honoured_and_recorded(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}]], cni_args="IP=10.1.2.77")
    assert add(store, conf, "a") == ["10.1.2.77/24"]
    assert read(tmp_path, "last_reserved_ip.0") == b"10.1.2.77"
    with pytest.raises(CNIError) as exc:
        add(store, conf, "b")
    assert exc.value.msg == ("failed to allocate for range 0: requested IP address 10.1.2.77 "
                             "is not available in range set 10.1.2.1-10.1.2.254")


def test_requested_gateway_is_refused(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}]], args={"cni": {"ips": ["10.1.2.1"]}})
    with pytest.raises(CNIError) as exc:
        add(store, conf, "a")
    assert exc.value.msg == "failed to allocate for range 0: requested ip 10.1.2.1 is subnet's gateway"
    assert files(tmp_path) == ["lock"]


def test_requested_outside_any_set_fails_before_leasing(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.1.3.0/24"}]], runtimeConfig={"ips": ["10.9.9.9"]})
    with pytest.raises(CNIError) as exc:
        add(store, conf, "a")
    assert "failed to allocate all requested IPs: 10.9.9.9" in exc.value.msg
    assert files(tmp_path) == ["lock"]


def test_allocate_ip_directly_with_a_requested_ip_outside_the_set(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24", "rangeEnd": "10.1.2.50"}]])
    with pytest.raises(CNIError) as exc:
        allocator.allocate_ip(store, conf.range_sets[0], 0, "a", "eth0", parse_ip("10.1.2.60", "x"))
    assert exc.value.msg == "10.1.2.60 not in range set 10.1.2.1-10.1.2.50"


def test_requested_in_one_set_rest_allocated_normally(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}], [{"subnet": "fd00:1::/64"}]], cni_args="IP=fd00:1::abcd")
    assert add(store, conf, "a") == ["10.1.2.2/24", "fd00:1::abcd/64"]


# -- duplicates, dual-stack, rollback -------------------------------------------


def test_duplicate_add_is_an_error_but_another_ifname_is_fine(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}]])
    add(store, conf, "a")
    with pytest.raises(CNIError) as exc:
        add(store, conf, "a")
    assert exc.value.msg == "failed to allocate for range 0: 10.1.2.2 has been allocated to a, duplicate allocation is not allowed"
    assert add(store, conf, "a", "eth1") == ["10.1.2.3/24"]
    assert add(store, conf, "b") == ["10.1.2.4/24"]


def test_legacy_id_only_lease_counts_as_duplicate(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}]])
    (tmp_path / NET / "10.1.2.50").write_text("a")
    with pytest.raises(CNIError) as exc:
        add(store, conf, "a")
    assert "10.1.2.50 has been allocated to a" in exc.value.msg


def test_dual_stack_one_address_per_set_with_own_cursor(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}], [{"subnet": "2001:db8:1::/64"}]])
    assert add(store, conf, "a") == ["10.1.2.2/24", "2001:db8:1::2/64"]
    assert add(store, conf, "b") == ["10.1.2.3/24", "2001:db8:1::3/64"]
    assert files(tmp_path) == ["10.1.2.2", "10.1.2.3", "2001:db8:1::2", "2001:db8:1::3", "last_reserved_ip.0", "last_reserved_ip.1", "lock"]
    assert read(tmp_path, "last_reserved_ip.1") == b"2001:db8:1::3"


def test_ipv6_lease_names_are_gos_compressed_spelling(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "2001:db8:0:1::/64", "rangeStart": "2001:db8:0:1:0:0:1:0"}]])
    assert add(store, conf, "a") == ["2001:db8:0:1::1:0/64"]
    assert "2001:db8:0:1::1:0" in files(tmp_path)


def test_failure_in_a_later_set_releases_only_what_this_add_leased(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.5.0.0/30"}]])
    add(store, conf, "a")  # takes the only address of set 1
    with pytest.raises(CNIError) as exc:
        add(store, conf, "b")
    assert exc.value.msg.startswith("failed to allocate for range 1: no IP addresses available")
    assert [le.container_id for le in list_leases(str(tmp_path), NET)] == ["a", "a"]


# -- release / find / gc --------------------------------------------------------


def test_release_by_id_and_ifname_leaves_others(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}]])
    add(store, conf, "a")
    add(store, conf, "a", "eth1")
    add(store, conf, "b")
    assert allocator.release_all(store, conf, "a", "eth0") == ["10.1.2.2"]
    assert [(le.container_id, le.ifname) for le in list_leases(str(tmp_path), NET)] == [("a", "eth1"), ("b", "eth0")]
    assert allocator.release_all(store, conf, "zzz", "eth0") == []


def test_release_of_legacy_id_only_files(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}]])
    (tmp_path / NET / "10.1.2.9").write_text("old")
    (tmp_path / NET / "10.1.2.10").write_text("other")
    assert allocator.release_all(store, conf, "old", "eth0") == ["10.1.2.9"]
    assert files(tmp_path) == ["10.1.2.10", "lock"]


def test_whitespace_in_files_is_trimmed(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}]])
    (tmp_path / NET / "10.1.2.9").write_bytes(b"  dummy\r\neth0 \n")
    (tmp_path / NET / "10.1.2.10").write_bytes(b"\tlegacy \n")
    assert [le.ip for le in allocator.find_allocation(store, "dummy", "eth0")] == ["10.1.2.9"]
    assert allocator.release_all(store, conf, "dummy", "eth0") == ["10.1.2.9"]
    assert allocator.release_all(store, conf, "legacy", "eth0") == ["10.1.2.10"]


def test_find_allocation_exact_then_legacy(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}]])
    add(store, conf, "a")
    assert allocator.find_allocation(store, "a", "eth1") == []
    assert [le.ip for le in allocator.find_allocation(store, "a", "eth0")] == ["10.1.2.2"]
    (tmp_path / NET / "10.1.2.9").write_text("old")
    assert [le.ip for le in allocator.find_allocation(store, "old", "eth0")] == ["10.1.2.9"]


def test_release_never_touches_lock_or_last_reserved_even_if_an_id_equals_their_content(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}]])
    add(store, conf, "a")
    allocator.release_all(store, conf, "10.1.2.2", "eth0")  # legacy pass would match last_reserved_ip.0 in Go
    assert files(tmp_path) == ["10.1.2.2", "last_reserved_ip.0", "lock"]


def test_gc_keeps_valid_attachments_and_legacy_files_of_valid_ids(tmp_path, store):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.2.0/24"}]])
    for cid, ifn in [("a", "eth0"), ("a", "eth1"), ("b", "eth0")]:
        add(store, conf, cid, ifn)
    (tmp_path / NET / "10.1.2.50").write_text("a")
    (tmp_path / NET / "10.1.2.51").write_text("gone")
    (tmp_path / NET / ".nodenet-tmp-1-dead").write_text("x")
    released, errors = allocator.collect_garbage(store, {("a", "eth0")})
    assert errors == [] and sorted(le.ip for le in released) == ["10.1.2.3", "10.1.2.4", "10.1.2.51"]
    assert files(tmp_path) == ["10.1.2.2", "10.1.2.50", "last_reserved_ip.0", "lock"]
    released, _errors = allocator.collect_garbage(store, set())
    assert files(tmp_path) == ["last_reserved_ip.0", "lock"]


# -- locking ------------------------------------------------------------------


def test_store_lock_is_flock_on_the_lock_file_and_times_out_with_code_11(tmp_path, store):
    fd = os.open(str(tmp_path / NET / "lock"), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process (e.g. Go) holds it
        with Store(str(tmp_path), NET, lock_timeout=0.2) as other:
            with pytest.raises(CNIError) as exc:
                with other.locked():
                    pass
        assert exc.value.code == ERR_TRY_AGAIN
    finally:
        os.close(fd)
    with store.locked():  # free again
        pass


def test_parallel_allocations_in_threads_get_distinct_addresses(tmp_path):
    conf = conf_for(tmp_path, [[{"subnet": "10.1.0.0/24"}]])
    results, errors = [], []

    def worker(i):
        try:
            with Store(str(tmp_path), NET) as s:  # own fd -> own flock, like separate processes
                results.append(add(s, conf, "c%d" % i)[0])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(results) == 40 and len(set(results)) == 40
