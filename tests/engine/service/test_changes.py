"""The change feed: listeners, long polls and gaps."""
import threading

from engine.service.changes import KEEP, ChangeFeed


def test_listeners_and_polls_see_each_change():
    feed = ChangeFeed()
    seen = []
    stop = feed.subscribe(seen.append)
    threading.Timer(0.05, feed.publish, args=("add", ["a"])).start()
    seq, events = feed.wait(0, timeout=5)
    assert seq == 1 and events == [{"seq": 1, "kind": "add", "ids": ["a"]}] and seen == events
    stop()
    feed.publish("delete", ["a"])
    assert len(seen) == 1
    assert feed.wait(2, timeout=0.01) == (2, [])


def test_a_client_too_far_behind_is_told_to_resync():
    feed = ChangeFeed()
    for i in range(KEEP + 5):
        feed.publish("add", [str(i)])
    seq, events = feed.wait(1, timeout=0)
    assert events == [{"seq": seq, "kind": "resync", "ids": []}]
