"""The owner's loopback service: key required, public methods only, changes reported."""
import http.client
import json

from engine.service import ServedMemory, announce


def _post(port, body, key):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/rpc", body=json.dumps(body), headers={"Authorization": f"Token {key}"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


def test_service_needs_the_key_and_offers_only_public_methods(tmp_path, embedder):
    with ServedMemory(tmp_path / "s", embedder=embedder) as mem:
        ann = announce.read(mem.data_dir)
        assert ann.state == "serving" and ann.host == "127.0.0.1"
        key = (mem.data_dir / "api_key").read_text().strip()
        assert _post(ann.port, {"method": "count"}, "wrong")[0] == 401
        status, body = _post(ann.port, {"method": "_commit"}, key)
        assert status == 400 and "not a method" in body["error"]["message"]
        assert _post(ann.port, {"method": "count"}, key) == (200, {"result": 0})
        events = []
        mem.subscribe(events.append)
        _post(ann.port, {"method": "add", "args": ["hello"], "kwargs": {"user_id": "u", "infer": False}}, key)
        assert [e["kind"] for e in events] == ["add"]
    assert announce.read(tmp_path / "s").state == "closed"


class SlowLLM:
    """Implements the engine's LLM protocol; takes seconds per call, like a real model on a laptop."""

    def __init__(self) -> None:
        import threading

        self.started = threading.Event()

    def complete_json(self, messages, schema, *, max_tokens):
        import time

        self.started.set()
        time.sleep(2.0)
        return '{"memories":[{"text":"Maya moved to Oslo.","type":"event","sources":[1]}]}'


def test_a_long_extraction_does_not_hold_up_other_clients(tmp_path, embedder):
    import threading
    import time

    from engine.service import open_memory

    llm = SlowLLM()
    with ServedMemory(tmp_path / "s", {"extraction": {"mode": "extract"}}, embedder=embedder, llm=llm) as owner:
        owner.add("Tea is my favourite drink", user_id="maya", infer=False)
        writer, reader = open_memory(tmp_path / "s"), open_memory(tmp_path / "s")
        result = {}
        adding = threading.Thread(target=lambda: result.update(writer.add(
            "I moved to Oslo last month", user_id="maya", infer=True)))
        adding.start()
        assert llm.started.wait(30)
        t = time.monotonic()
        hits = reader.search("favourite drink", user_id="maya")["results"]
        listed = reader.get_all(user_id="maya")["results"]
        took = time.monotonic() - t
        still_extracting = adding.is_alive()
        adding.join(60)
        assert hits[0]["memory"] == "Tea is my favourite drink" and len(listed) == 1
        assert still_extracting, f"reads took {took:.1f}s: they waited for the extraction"
        assert result["episodes"] and result["episodes"][0]["event"] == "ADD"  # the add itself completed
        writer.close()
        reader.close()


def test_a_served_store_reports_entity_links_found_after_an_add(tmp_path, embedder) -> None:
    mem = ServedMemory(tmp_path / "s", embedder=embedder, serve=False)
    try:
        events: list[dict] = []
        mem.subscribe(events.append)
        out = mem.add("Maya moved to Oslo with her sister Ingrid.", user_id="maya", infer=False)
        mem.wait_for_entities()
        ids = [r["id"] for r in out["results"]]
        assert [e["kind"] for e in events] == ["add", "linked"] and events[1]["ids"] == ids
        assert "Oslo" in mem.get_record(ids[0]).entities
    finally:
        mem.close()
