"""Light renders take turns per process (engine/turns.py): one computes at a time, a nested block
of the same thread passes, and a thread that waits on a read lets another compute meanwhile."""

import threading

from ogc_gateway.engine import turns


def test_one_light_render_at_a_time_and_nested_blocks_pass():
    inside = []
    release = threading.Event()

    def first():
        with turns.light(), turns.light():          # nested: no self-deadlock
            inside.append("first")
            release.wait(5)

    t = threading.Thread(target=first)
    t.start()
    while not inside:
        pass
    got = turns._turn.acquire(timeout=0.2)          # held by the first thread
    assert not got
    release.set()
    t.join(5)
    assert turns._turn.acquire(timeout=1)
    turns._turn.release()


def test_a_waiting_thread_lets_another_compute():
    order = []
    reading = threading.Event()
    computed = threading.Event()

    def reader():
        with turns.light():
            with turns.waiting():                    # e.g. a read from S3
                reading.set()
                assert computed.wait(5)
            order.append("reader back")

    def other():
        assert reading.wait(5)
        with turns.light():
            order.append("other computed")
        computed.set()

    threads = [threading.Thread(target=reader), threading.Thread(target=other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert order == ["other computed", "reader back"]


def test_waiting_without_a_turn_is_a_plain_block():
    with turns.waiting():
        pass
    assert turns._turn.acquire(blocking=False)
    turns._turn.release()
